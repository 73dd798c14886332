#include "capture/bootstrap_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <optional>
#include <set>
#include <utility>

#include "capture/files/repo_paths.h"
#include "sync/bootstrap/chunk_summary.h"
#include "sync/bootstrap/key_range.h"
#include "sync/bootstrap/row_format.h"
#include "sync/files/open_beneath.h"
#include "sync/files/repository_path.h"
#include "sync/mysql/mariadb_connection.h"
#include "sync/verify/usable_key.h"
#include "sync/verify/verify_throttle.h"
#include "sync/zstd.h"

namespace replsync::capture {

namespace {

constexpr int kSnapshotTries = 20;
// MariaDB error numbers a chunk read meets when its table changed under the snapshot.
constexpr int kTableDefinitionChanged = 1412;  // ER_TABLE_DEF_CHANGED
constexpr int kNoSuchTable = 1146;             // ER_NO_SUCH_TABLE
constexpr int kSpecificAccessDenied = 1227;    // ER_SPECIFIC_ACCESS_DENIED_ERROR
// max_bytes of a READ_CHUNK is taken within these bounds (0: the default).
constexpr uint64_t kMinChunkBytes = 4 << 10;
constexpr uint64_t kMaxChunkBytes = 64 << 20;
constexpr uint64_t kDefaultChunkBytes = 8 << 20;
// A chunk's text never grows past this (the reply must stay under the transport's 256 MiB): a
// chunk that would is read again with half the rows.
constexpr uint64_t kMaxChunkText = 192ull << 20;
constexpr uint64_t kMaxChunkRows = 1000000;
constexpr uint64_t kFirstChunkRows = 1000;
constexpr size_t kBinlogEventsPerQuery = 1000;

std::string Qualified(const std::string& db, const std::string& table) {
  return QuoteIdentifier(db) + "." + QuoteIdentifier(table);
}

uint64_t ParseNumber(const std::optional<std::string>& text) {
  uint64_t value = 0;
  if (text.has_value()) std::from_chars(text->data(), text->data() + text->size(), value);
  return value;
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

pb::BootstrapReply ErrorReply(const std::string& error, bool retry) {
  pb::BootstrapReply reply;
  reply.set_error(error);
  reply.set_retry(retry);
  return reply;
}

// A reply for a failed Status: retry when trying again (a new round) may succeed.
pb::BootstrapReply ErrorReply(const Status& status) {
  return ErrorReply(status.message(), status.retryable() ||
                                          status.code() == Status::Code::kNetwork ||
                                          status.code() == Status::Code::kUnavailable);
}

// ---- key ranges of a chunk (sync/bootstrap/key_range.h)

// Whether `text` is a key literal of a form bootstrap::KeyLiteral writes: a peer's `after` goes
// into SQL, so anything else is refused.
bool IsHexLiteral(std::string_view s) {  // X'..'
  if (s.size() < 3 || s[0] != 'X' || s[1] != '\'' || s.back() != '\'') return false;
  for (size_t i = 2; i + 1 < s.size(); ++i) {
    if (!std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

bool IsQuotedLiteral(std::string_view s) {  // QuoteString's: no quote inside but escaped ones
  if (s.size() < 2 || s[0] != '\'' || s.back() != '\'') return false;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    if (s[i] == '\\') {
      if (i + 2 >= s.size()) return false;  // would escape the closing quote
      ++i;
    } else if (s[i] == '\'') {
      return false;
    }
  }
  return true;
}

bool IsNumberLiteral(std::string_view s) {  // -?digits[.digits][e[+-]digits]
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  size_t digits = 0;
  auto skip_digits = [&] {
    size_t n = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++n;
    return n;
  };
  digits += skip_digits();
  if (i < s.size() && s[i] == '.') {
    ++i;
    digits += skip_digits();
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (skip_digits() == 0) return false;
  }
  return i == s.size();
}

bool IsKeyLiteral(std::string_view text) {
  if (!text.empty() && text[0] == '_') {  // _charset X'..' or _charset '..'
    const size_t space = text.find(' ');
    if (space == std::string_view::npos || space < 2) return false;
    for (size_t i = 1; i < space; ++i) {
      const unsigned char c = static_cast<unsigned char>(text[i]);
      if (!std::isalnum(c) && c != '_') return false;
    }
    const std::string_view rest = text.substr(space + 1);
    return IsHexLiteral(rest) || IsQuotedLiteral(rest);
  }
  return IsHexLiteral(text) || IsQuotedLiteral(text) || IsNumberLiteral(text);
}

// ---- sessions

// A new session on the primary's server; `binary`: SET NAMES binary (chunks), else utf8mb4
// (definitions and objects, which the secondary runs as utf8mb4 text).
Result<std::unique_ptr<MariadbConnection>> OpenSession(const MysqlOptions& mysql, bool binary,
                                                       const char* what) {
  auto session = MariadbConnection::Open(mysql);
  if (!session.ok()) return session.status().WithContext(what);
  std::vector<std::string> setup = {
      "SET SESSION time_zone = '+00:00'",
      "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
      "SET SESSION net_write_timeout = 600, net_read_timeout = 600, max_statement_time = 0",
  };
  if (binary) setup.insert(setup.begin(), "SET NAMES binary");
  for (const std::string& sql : setup) {
    RS_RETURN_IF_ERROR((*session)->Execute(sql, what));
  }
  return session;
}

// Streams the rows of `sql` (every stored column of `table`) into `text` in the chunk format,
// counting them in *rows and keeping the last one's key literals (the columns at `positions`)
// in *last_key; stops with *too_big once `text` passes `cap` bytes.
Status StreamChunk(MariadbConnection& session, const std::string& sql, const std::string& table,
                   const std::vector<bootstrap::Column>& stored,
                   const std::vector<size_t>& positions, uint64_t cap, std::string* text,
                   uint64_t* rows, std::vector<std::string>* last_key, bool* too_big) {
  return session.Stream(
      sql,
      [&](const MariadbConnection::RowView& row) -> Status {
        if (row.count != stored.size()) {
          return Status::Internal(
              fmt::format("a row of {} has {} values, not {}", table, row.count, stored.size()));
        }
        bootstrap::AppendRow(row.values, row.lengths, row.count, text);
        ++*rows;
        for (size_t i = 0; i < positions.size(); ++i) {
          const size_t at = positions[i];
          (*last_key)[i] = bootstrap::KeyLiteral(stored[at], row.values[at] ? row.values[at] : "",
                                                 row.values[at] ? row.lengths[at] : 0);
        }
        if (text->size() > cap) {
          *too_big = true;
          return Status::Aborted("chunk too large");
        }
        return Status::Ok();
      },
      "read " + table);
}

// The GTID position at `point` (BINLOG_GTID_POS); "" when the server cannot tell.
std::string GtidAt(SqlSession& session, const BinlogPosition& point) {
  auto rows = session.Query(
      fmt::format("SELECT BINLOG_GTID_POS({}, {})", QuoteString(point.file), point.offset),
      "read the GTID position of the point");
  if (!rows.ok() || rows->empty() || rows->front().empty()) return "";
  return rows->front()[0].value_or("");
}

// Starts a consistent snapshot on `session` (ending what it had) and returns its position.
Result<BinlogPosition> OpenSnapshot(SqlSession& session) {
  RS_RETURN_IF_ERROR(session.Execute("ROLLBACK", "open a snapshot"));
  RS_RETURN_IF_ERROR(
      session.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT", "open a snapshot"));
  RS_ASSIGN_OR_RETURN(auto rows, session.Query("SHOW STATUS LIKE 'binlog_snapshot_%'",
                                               "read the snapshot's binlog position"));
  std::string file, offset;
  for (const auto& row : rows) {
    if (row.size() < 2 || !row[0] || !row[1]) continue;
    const std::string name = Lower(*row[0]);
    if (name == "binlog_snapshot_file") file = *row[1];
    if (name == "binlog_snapshot_position") offset = *row[1];
  }
  if (file.empty() || offset.empty()) {
    return Status::Server(
        "the primary reports no binlog_snapshot position (it needs MariaDB with log_bin)");
  }
  return BinlogPosition{file, ParseNumber(offset)};
}

// The first statement event other than BEGIN / COMMIT in the binlog between `from` and `to`
// ("" when there is none).
Result<std::string> StatementBetween(SqlSession& session, const BinlogPosition& from,
                                     const BinlogPosition& to) {
  const char* what = "list the binlog between the point and the end of the read";
  std::string file = from.file;
  uint64_t pos = from.offset;
  while (true) {
    if (BinlogPosition{file, 0} > BinlogPosition{to.file, 0}) return std::string();
    RS_ASSIGN_OR_RETURN(auto rows,
                        session.Query(fmt::format("SHOW BINLOG EVENTS IN {} FROM {} LIMIT {}",
                                                  QuoteString(file), pos, kBinlogEventsPerQuery),
                                      what));
    for (const auto& row : rows) {
      if (row.size() < 6) continue;
      const uint64_t at = ParseNumber(row[1]);
      if (file == to.file && at >= to.offset) return std::string();
      const std::string type = row[2].value_or("");
      if (type == "Query") {
        std::string info = row[5].value_or("");
        while (!info.empty() && std::isspace(static_cast<unsigned char>(info.back()))) {
          info.pop_back();
        }
        const std::string upper = Lower(info);
        if (upper != "begin" && upper != "commit") {
          return fmt::format("{} at {}:{}", info.size() > 200 ? info.substr(0, 200) + "..." : info,
                             file, at);
        }
      }
      pos = ParseNumber(row[4]);
    }
    if (rows.size() == kBinlogEventsPerQuery) continue;
    if (file == to.file) return std::string();
    // The next binlog file.
    RS_ASSIGN_OR_RETURN(auto logs, session.Query("SHOW BINARY LOGS", what));
    std::string next;
    for (const auto& log : logs) {
      if (log.empty() || !log[0]) continue;
      if (BinlogPosition{*log[0], 0} > BinlogPosition{file, 0}) {
        next = *log[0];
        break;
      }
    }
    if (next.empty()) return std::string();
    file = next;
    pos = 4;
  }
}

// Whether `text` matches the LIKE pattern `pattern` (%, _ and \ escapes; mysql.db's Db).
bool LikeMatch(std::string_view pattern, std::string_view text) {
  if (pattern.empty()) return text.empty();
  if (pattern[0] == '%') {
    for (size_t i = 0; i <= text.size(); ++i) {
      if (LikeMatch(pattern.substr(1), text.substr(i))) return true;
    }
    return false;
  }
  if (text.empty()) return false;
  if (pattern[0] == '\\' && pattern.size() > 1) {
    return pattern[1] == text[0] && LikeMatch(pattern.substr(2), text.substr(1));
  }
  if (pattern[0] == '_' || pattern[0] == text[0]) {
    return LikeMatch(pattern.substr(1), text.substr(1));
  }
  return false;
}

}  // namespace

// ---- rounds and readers

struct BootstrapServer::Reader {
  uint32_t index = 0;
  std::unique_ptr<MariadbConnection> session;
  uint64_t connection_id = 0;
  std::thread thread;
  std::mutex mu;  // guards jobs, closing
  std::condition_variable cv;
  std::deque<Job> jobs;
  bool closing = false;
  // A SELECT of a table without a key is open (its rows are being streamed).
  std::atomic<bool> streaming{false};
  // Reader thread only.
  std::map<std::string, uint64_t> rows_per_chunk;  // by `db`.`table`
  std::unique_ptr<verify::RunningThrottle> throttle;
  ZstdCCtx cctx;
};

struct BootstrapServer::Round {
  uint64_t id = 0;
  std::string peer;
  BinlogPosition point;
  std::string gtid;
  std::vector<std::unique_ptr<Reader>> readers;
  // Guarded by the server's mu_.
  Clock::TimePoint last_used{};
  uint64_t busy = 0;  // chunk requests queued or being read
};

BootstrapServer::BootstrapServer(BootstrapServerOptions options)
    : options_(std::move(options)), filter_(options_.databases), clock_(*options_.clock) {}

BootstrapServer::~BootstrapServer() { Stop(); }

Status BootstrapServer::Start() {
  if (running_) return Status::Internal("bootstrap server already running");
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  running_ = true;
  for (size_t i = 0; i < std::max<size_t>(options_.workers, 1); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  return Status::Ok();
}

void BootstrapServer::Stop() {
  if (!running_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  std::map<uint64_t, std::shared_ptr<Round>> rounds;
  std::deque<Job> jobs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rounds.swap(rounds_);
    jobs.swap(jobs_);
  }
  for (auto& [id, round] : rounds) CloseRound(round, "the primary's replsyncd is stopping");
  for (Job& job : jobs) {
    if (job.done) {
      pb::BootstrapReply reply =
          ErrorReply("the primary's replsyncd is stopping; ask again when it runs", true);
      reply.set_request_id(job.request.request_id());
      job.done(std::move(reply));
    }
  }
  running_ = false;
}

void BootstrapServer::Submit(const std::string& peer, pb::BootstrapRequest request, Done done) {
  if (request.op() == pb::BootstrapRequest::READ_CHUNK) {
    return QueueChunk(Job{peer, std::move(request), std::move(done)});
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    peers_[peer].name = peer;
    if (!stopping_ && running_) {
      jobs_.push_back(Job{peer, std::move(request), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  pb::BootstrapReply reply =
      ErrorReply("the primary's bootstrap service is not running; ask again later", true);
  reply.set_request_id(request.request_id());
  done(std::move(reply));
}

void BootstrapServer::ClosePeer(const std::string& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  // A job without `done`: close the peer's rounds (joins readers: never on the caller's thread).
  Job job;
  job.peer = peer;
  jobs_.push_back(std::move(job));
  cv_.notify_one();
}

BootstrapServerStatus BootstrapServer::status() const {
  BootstrapServerStatus s;
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, uint64_t> open;
  for (const auto& [id, round] : rounds_) ++open[round->peer];
  s.rounds_open = rounds_.size();
  for (const auto& [name, peer] : peers_) {
    BootstrapPeerStatus p = peer;
    p.rounds_open = open[name];
    s.peers.push_back(std::move(p));
  }
  return s;
}

void BootstrapServer::WorkerLoop() {
  MysqlThreadScope scope;
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      clock_.WaitFor(cv_, lock, std::chrono::seconds(1),
                     [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      if (!jobs_.empty()) {
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
    }
    if (job.peer.empty()) {
      CloseIdleRounds();
      continue;
    }
    Serve(job);
    CloseIdleRounds();
  }
}

void BootstrapServer::Serve(Job& job) {
  if (!job.done) {  // ClosePeer
    std::vector<std::shared_ptr<Round>> closing;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = rounds_.begin(); it != rounds_.end();) {
        if (it->second->peer != job.peer) {
          ++it;
          continue;
        }
        closing.push_back(it->second);
        it = rounds_.erase(it);
      }
    }
    for (auto& round : closing) CloseRound(round, "its peer's connection went away");
    return;
  }
  pb::BootstrapReply reply;
  switch (job.request.op()) {
    case pb::BootstrapRequest::BEGIN_ROUND:
      reply = BeginRound(job.peer, job.request);
      break;
    case pb::BootstrapRequest::END_ROUND:
      reply = EndRound(job.peer, job.request);
      break;
    case pb::BootstrapRequest::READ_OBJECTS:
      reply = ReadObjects(job.peer, job.request);
      break;
    case pb::BootstrapRequest::POSITION:
      reply = Position();
      break;
    case pb::BootstrapRequest::READ_FILES:
      reply = ReadFiles(job.request);
      break;
    default:
      reply = ErrorReply(fmt::format("unknown bootstrap request {} (a newer replsync on the "
                                     "secondary? update the primary)",
                                     static_cast<int>(job.request.op())),
                         false);
  }
  if (!reply.error().empty()) CountError(job.peer, reply.error());
  reply.set_request_id(job.request.request_id());
  job.done(std::move(reply));
}

pb::BootstrapReply BootstrapServer::BeginRound(const std::string& peer,
                                               const pb::BootstrapRequest& request) {
  const uint32_t readers = request.readers();
  if (readers < 1 || readers > options_.max_readers) {
    return ErrorReply(
        fmt::format("a round has 1 to {} readers, not {}", options_.max_readers, readers), false);
  }
  if (request.definitions() && (!options_.journal_seq_at || !options_.pin)) {
    return ErrorReply("this primary cannot start a bootstrap stream (no journal service)", false);
  }
  // At most max_rounds_per_peer rounds per peer: the oldest goes first.
  std::vector<std::shared_ptr<Round>> closing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<uint64_t> own;
    for (const auto& [id, round] : rounds_) {
      if (round->peer == peer) own.push_back(id);
    }
    const size_t keep = std::max<size_t>(options_.max_rounds_per_peer, 1) - 1;
    for (size_t i = 0; i + keep < own.size(); ++i) {
      closing.push_back(rounds_[own[i]]);
      rounds_.erase(own[i]);
    }
  }
  for (auto& round : closing) {
    CloseRound(round, fmt::format("{} began another round (at most {} at once)", peer,
                                  options_.max_rounds_per_peer));
  }

  auto round = std::make_shared<Round>();
  round->peer = peer;
  auto control = OpenSession(options_.mysql, false, "open the bootstrap's control session");
  if (!control.ok()) return ErrorReply(control.status());
  for (uint32_t i = 0; i < readers; ++i) {
    auto session = OpenSession(options_.mysql, true, "open a bootstrap reader session");
    if (!session.ok()) return ErrorReply(session.status());
    auto reader = std::make_unique<Reader>();
    reader->index = i;
    reader->connection_id = (*session)->thread_id();
    reader->session = std::move(session).value();
    round->readers.push_back(std::move(reader));
  }

  // The snapshots, sharing one point: the ones behind open again.
  std::vector<BinlogPosition> points(readers);
  auto open_all = [&](bool only_behind) -> Status {
    BinlogPosition newest;
    for (const BinlogPosition& p : points) newest = std::max(newest, p);
    for (uint32_t i = 0; i < readers; ++i) {
      if (only_behind && !(points[i] < newest)) continue;
      RS_ASSIGN_OR_RETURN(points[i], OpenSnapshot(*round->readers[i]->session));
    }
    return Status::Ok();
  };
  auto equal = [&] {
    return std::all_of(points.begin(), points.end(),
                       [&](const BinlogPosition& p) { return p == points[0]; });
  };
  if (Status st = open_all(false); !st.ok()) return ErrorReply(st);
  for (int tries = 1; tries < kSnapshotTries && !equal(); ++tries) {
    if (Status st = open_all(true); !st.ok()) return ErrorReply(st);
  }
  uint32_t lock_ms = 0;
  if (!equal()) {
    // Commits came between every try: block them while the snapshots open.
    const auto started = clock_.Now();
    Status st = (*control)->Execute("BACKUP STAGE START", "block commits (BACKUP STAGE)");
    if (st.ok()) {
      st = (*control)->Execute("BACKUP STAGE BLOCK_COMMIT", "block commits (BACKUP STAGE)");
    }
    if (st.ok()) st = open_all(false);
    Status ended = (*control)->Execute("BACKUP STAGE END", "end BACKUP STAGE");
    lock_ms = static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - started).count());
    if (!st.ok()) {
      if ((*control)->last_error_code() == kSpecificAccessDenied ||
          st.message().find("RELOAD") != std::string::npos) {
        return ErrorReply(fmt::format("the snapshots of a round could not share one point in {} "
                                      "tries while commits kept coming, and blocking commits "
                                      "for a moment (BACKUP STAGE) needs the RELOAD privilege "
                                      "for the primary's [mysql] user: {}",
                                      kSnapshotTries, st.message()),
                          false);
      }
      return ErrorReply(st);
    }
    if (!ended.ok()) return ErrorReply(ended);
    if (!equal()) {
      return ErrorReply(
          "the snapshots of a round report different binlog positions even with "
          "commits blocked",
          true);
    }
  }
  round->point = points[0];
  round->gtid = GtidAt(**control, round->point);

  pb::BootstrapReply reply;
  reply.set_point_file(round->point.file);
  reply.set_point_offset(round->point.offset);
  reply.set_point_gtid(round->gtid);
  reply.set_lock_ms(lock_ms);
  if (request.definitions()) {
    if (options_.after_snapshot) options_.after_snapshot(round->point);
    if (Status st = ReadDefinitions(**control, /*with_create=*/true, &reply); !st.ok()) {
      // A table dropped or changed while the definitions were read: a DDL came.
      const int code = (*control)->last_error_code();
      if (code == kNoSuchTable || code == kTableDefinitionChanged) {
        return ErrorReply(fmt::format("a DDL came while the definitions were read ({}); asking "
                                      "for a new round",
                                      st.message()),
                          true);
      }
      return ErrorReply(st);
    }
    auto q = MasterPosition(**control);
    if (!q.ok()) return ErrorReply(q.status());
    auto statement = StatementBetween(**control, round->point, *q);
    if (!statement.ok()) return ErrorReply(statement.status());
    if (!statement->empty()) {
      return ErrorReply(fmt::format("a DDL came while the definitions were read ({}); asking for "
                                    "a new round",
                                    *statement),
                        true);
    }
    auto seq = options_.journal_seq_at(round->point);
    if (!seq.ok()) return ErrorReply(seq.status());
    if (!request.keep_stream()) {
      if (Status st = options_.pin(peer, *seq); !st.ok()) return ErrorReply(st);
    }
    reply.set_journal_seq(*seq);
  } else {
    // Later rounds: the tables as they are now (a table that came after the point fails under
    // the snapshot and is read in a later round), and where the point falls in the journal, so
    // that the secondary can hold its applier there (nothing pinned).
    if (Status st = ReadDefinitions(**control, /*with_create=*/false, &reply); !st.ok()) {
      return ErrorReply(st.message(), true);
    }
    if (options_.journal_seq_at) {
      auto seq = options_.journal_seq_at(round->point);
      if (!seq.ok()) return ErrorReply(seq.status());
      reply.set_journal_seq(*seq);
    }
  }

  for (auto& reader : round->readers) {
    verify::ThrottleOptions topts;
    topts.max_running = options_.max_running;
    reader->throttle = std::make_unique<verify::RunningThrottle>(
        topts, std::vector<verify::ThrottledServer>{{"primary", reader->session.get()}}, clock_);
    reader->cctx.reset(ZSTD_createCCtx());
  }
  // The readers run before the round is listed: whoever takes it out of rounds_ joins them.
  for (auto& reader : round->readers) {
    Reader* r = reader.get();
    Round* owner = round.get();
    r->thread = std::thread([this, owner, r] { ReaderLoop(owner, r); });
  }
  bool stopping = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping = stopping_;
    if (!stopping) {
      round->id = next_round_++;
      round->last_used = clock_.Now();
      rounds_[round->id] = round;
      BootstrapPeerStatus& status = peers_[peer];
      status.name = peer;
      ++status.rounds_begun;
    }
  }
  if (stopping) {
    CloseRound(round, "the primary's replsyncd is stopping");
    return ErrorReply("the primary's replsyncd is stopping; ask again when it runs", true);
  }
  reply.set_round(round->id);
  spdlog::info("bootstrap: round {} of {} opened at {} ({} readers{}{})", round->id, peer,
               round->point.ToString(), readers,
               lock_ms > 0 ? fmt::format(", commits blocked {} ms", lock_ms) : std::string(),
               request.definitions() ? fmt::format(", {} tables, stream from {}",
                                                   reply.tables_size(), reply.journal_seq())
                                     : std::string());
  return reply;
}

Status BootstrapServer::ReadDefinitions(SqlSession& session, bool with_create,
                                        pb::BootstrapReply* reply) {
  const char* what = "read the definitions";
  if (with_create) {
    RS_ASSIGN_OR_RETURN(
        auto schemas, session.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY "
                                    "SCHEMA_NAME",
                                    what));
    for (const auto& row : schemas) {
      const std::string db = row.empty() ? "" : row[0].value_or("");
      if (db.empty() || !filter_.Replicated(db)) continue;
      RS_ASSIGN_OR_RETURN(auto create,
                          session.Query("SHOW CREATE DATABASE " + QuoteIdentifier(db), what));
      if (create.empty() || create[0].size() < 2 || !create[0][1]) {
        return Status::Server(
            fmt::format("SHOW CREATE DATABASE {} shows nothing", QuoteIdentifier(db)));
      }
      reply->add_databases(*create[0][1]);
    }
  }
  RS_ASSIGN_OR_RETURN(
      auto tables,
      session.Query("SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, IFNULL(ENGINE, ''), "
                    "IFNULL(TABLE_ROWS, 0), IFNULL(DATA_LENGTH, 0) FROM information_schema.TABLES "
                    "WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE') "
                    "ORDER BY TABLE_SCHEMA, TABLE_NAME",
                    what));
  std::set<std::pair<std::string, std::string>> in_set;
  for (const auto& row : tables) {
    if (row.size() < 6 || !filter_.Replicated(row[0].value_or(""))) continue;
    in_set.emplace(row[0].value_or(""), row[1].value_or(""));
  }
  RS_ASSIGN_OR_RETURN(
      auto references,
      session.Query("SELECT CONSTRAINT_SCHEMA, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, "
                    "REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
                    "ORDER BY CONSTRAINT_SCHEMA, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, "
                    "REFERENCED_TABLE_NAME",
                    what));
  std::map<std::pair<std::string, std::string>, std::set<std::pair<std::string, std::string>>>
      referenced;
  for (const auto& row : references) {
    if (row.size() < 4) continue;
    std::pair<std::string, std::string> child{row[0].value_or(""), row[1].value_or("")};
    std::pair<std::string, std::string> parent{row[2].value_or(""), row[3].value_or("")};
    if (in_set.count(child) > 0 && in_set.count(parent) > 0) referenced[child].insert(parent);
  }
  for (const auto& row : tables) {
    if (row.size() < 6) continue;
    const std::string db = row[0].value_or("");
    const std::string name = row[1].value_or("");
    if (in_set.count({db, name}) == 0) continue;
    pb::BootstrapTable* table = reply->add_tables();
    table->mutable_name()->set_db(db);
    table->mutable_name()->set_table(name);
    table->set_table_type(row[2].value_or(""));
    table->set_engine(row[3].value_or(""));
    table->set_estimated_rows(ParseNumber(row[4]));
    table->set_estimated_bytes(ParseNumber(row[5]));
    if (with_create) {
      const bool sequence = table->table_type() == "SEQUENCE";
      RS_ASSIGN_OR_RETURN(auto create, session.Query(std::string(sequence ? "SHOW CREATE SEQUENCE "
                                                                          : "SHOW CREATE TABLE ") +
                                                         Qualified(db, name),
                                                     what));
      if (create.empty() || create[0].size() < 2 || !create[0][1]) {
        return Status::Server(
            fmt::format("SHOW CREATE TABLE {} shows nothing", Qualified(db, name)));
      }
      table->set_create_sql(*create[0][1]);
    }
    RS_ASSIGN_OR_RETURN(verify::UsableKey key, verify::ReadUsableKey(session, db, name));
    for (const std::string& column : key.columns) table->add_key_columns(column);
    for (const auto& [parent_db, parent] : referenced[{db, name}]) {
      pb::TableName* ref = table->add_references();
      ref->set_db(parent_db);
      ref->set_table(parent);
    }
  }
  return Status::Ok();
}

pb::BootstrapReply BootstrapServer::EndRound(const std::string& peer,
                                             const pb::BootstrapRequest& request) {
  std::shared_ptr<Round> round;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rounds_.find(request.round());
    if (it != rounds_.end() && it->second->peer == peer) {
      round = it->second;
      rounds_.erase(it);
    }
  }
  // A round already closed (idle, or replaced) is ended all the same.
  if (round) CloseRound(round, "ended by its peer");
  pb::BootstrapReply reply;
  reply.set_round(request.round());
  return reply;
}

namespace {

// READ_FILES: paths per request and content per reply (the request's max_bytes is clamped here).
constexpr int kMaxFilePaths = 256;
constexpr uint64_t kMinFileBytes = 64 << 10;
constexpr uint64_t kMaxFileBytes = 16 << 20;
constexpr uint64_t kDefaultFileBytes = 4 << 20;
constexpr int kIncompressibleBeforeRaw = 4;

}  // namespace

pb::BootstrapReply BootstrapServer::ReadFiles(const pb::BootstrapRequest& request) {
  if (options_.repository.empty()) {
    return ErrorReply(
        "READ_FILES: the primary has no [repository] path; set the same [repository] on both "
        "nodes, or none",
        false);
  }
  if (request.paths_size() > kMaxFilePaths) {
    return ErrorReply(fmt::format("READ_FILES: {} paths in one request, over the limit of {}",
                                  request.paths_size(), kMaxFilePaths),
                      false);
  }
  // The whole request is refused for one bad path, as the shipper refuses a FileResync: a peer
  // that names such a path is broken or hostile, and nothing of it is read.
  for (const std::string& path : request.paths()) {
    if (Status st = CheckRepositoryPath(path); !st.ok()) {
      return ErrorReply("READ_FILES: " + st.message(), false);
    }
  }
  UniqueFd root(::open(options_.repository.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) {
    const int err = errno;
    return ErrorReply(fmt::format("READ_FILES: open the repository {}: {}", options_.repository,
                                  capture::Errno(err)),
                      true);
  }
  uint64_t budget = request.max_bytes() == 0 ? kDefaultFileBytes : request.max_bytes();
  budget = std::clamp(budget, kMinFileBytes, kMaxFileBytes);
  ZstdCCtx cctx(ZSTD_createCCtx());
  pb::BootstrapReply reply;
  uint64_t used = 0;
  int incompressible_in_a_row = 0;
  for (int i = 0; i < request.paths_size(); ++i) {
    // Each reply carries at least one path, so a client always makes progress.
    if (i > 0 && used >= budget) break;
    const std::string& path = request.paths(i);
    pb::BootstrapFile* file = reply.add_files();
    file->set_path(path);
    const uint64_t offset = i == 0 ? request.offset() : 0;
    if (Status st = ReadRepositoryFile(root.get(), path, offset, budget - std::min(used, budget),
                                       file, &used);
        !st.ok()) {
      return ErrorReply("READ_FILES: " + st.message(), st.retryable());
    }
    // After a few files in a row that did not shrink (media, archives, random bytes), the rest of
    // the reply travels as it is: trying costs the primary's CPU for every byte.
    if (file->kind() == pb::BootstrapFile::FILE && file->raw_bytes() > 0 &&
        incompressible_in_a_row < kIncompressibleBeforeRaw) {
      std::string& data = *file->mutable_data();
      std::string packed(ZSTD_compressBound(data.size()), '\0');
      const size_t n =
          cctx ? ZSTD_compressCCtx(cctx.get(), packed.data(), packed.size(), data.data(),
                                   data.size(), 1)
               : ZSTD_compress(packed.data(), packed.size(), data.data(), data.size(), 1);
      // Content that does not shrink (compressed media, random bytes) travels as it is.
      if (!ZSTD_isError(n) && n < data.size() - data.size() / 16) {
        packed.resize(n);
        data = std::move(packed);
        file->set_compressed(true);
        incompressible_in_a_row = 0;
      } else {
        ++incompressible_in_a_row;
      }
    }
    if (file->kind() == pb::BootstrapFile::FILE && !file->eof()) break;
  }
  return reply;
}

Status BootstrapServer::ReadRepositoryFile(int root_fd, const std::string& path, uint64_t offset,
                                           uint64_t budget, pb::BootstrapFile* file,
                                           uint64_t* used) {
  const std::string& root = options_.repository;
  Result<capture::Looked> looked = capture::LookBeneath(root_fd, root, path);
  if (!looked.ok()) {
    // Missing, below something that is not a folder, or through a symbolic link: not a path of
    // the repository now. The exact pass that follows settles it.
    if (capture::NotInRepository(looked.status())) {
      file->set_kind(pb::BootstrapFile::GONE);
      return Status::Ok();
    }
    return looked.status();
  }
  const struct stat& st = looked->st;
  if (S_ISLNK(st.st_mode)) {
    std::string target(PATH_MAX, '\0');
    const ssize_t n = ::readlinkat(looked->fd.get(), "", target.data(), target.size());
    if (n < 0) {
      const int err = errno;
      return Status::IoError(
          fmt::format("read the link '{}' in {}: {}", path, root, capture::Errno(err)));
    }
    target.resize(static_cast<size_t>(n));
    file->set_kind(pb::BootstrapFile::SYMLINK);
    file->set_link_target(std::move(target));
    capture::FillMeta(st, file->mutable_meta());
    return Status::Ok();
  }
  if (S_ISDIR(st.st_mode)) {
    Result<std::vector<std::string>> names = capture::ListDirectory(root_fd, root, path);
    if (!names.ok()) {
      if (names.status().IsNotFound()) {
        file->set_kind(pb::BootstrapFile::GONE);
        return Status::Ok();
      }
      return names.status();
    }
    file->set_kind(pb::BootstrapFile::DIRECTORY);
    capture::FillMeta(st, file->mutable_meta());
    for (std::string& name : *names) {
      *used += name.size() + 8;
      file->add_children(std::move(name));
    }
    return Status::Ok();
  }
  if (!S_ISREG(st.st_mode)) {
    file->set_kind(pb::BootstrapFile::REFUSED);
    return Status::Ok();
  }
  // Opened for reading only now that it was a regular file, without blocking (a FIFO swapped in
  // meanwhile), and checked again through the descriptor that is read.
  Result<UniqueFd> opened =
      OpenBeneath(root_fd, root, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (!opened.ok()) {
    if (capture::NotInRepository(opened.status())) {
      file->set_kind(pb::BootstrapFile::GONE);
      return Status::Ok();
    }
    return opened.status();
  }
  struct stat now {};
  if (::fstat(opened->get(), &now) != 0) {
    const int err = errno;
    return Status::IoError(fmt::format("stat '{}' in {}: {}", path, root, capture::Errno(err)));
  }
  if (!S_ISREG(now.st_mode)) {
    file->set_kind(pb::BootstrapFile::REFUSED);
    return Status::Ok();
  }
  file->set_kind(pb::BootstrapFile::FILE);
  capture::FillMeta(now, file->mutable_meta());
  const uint64_t size = static_cast<uint64_t>(now.st_size);
  const uint64_t want = offset >= size ? 0 : std::min(budget, size - offset);
  std::string& data = *file->mutable_data();
  data.resize(want);
  uint64_t got = 0;
  while (got < want) {
    const ssize_t n =
        ::pread(opened->get(), data.data() + got, want - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      return Status::IoError(fmt::format("read '{}' in {}: {}", path, root, capture::Errno(err)));
    }
    if (n == 0) break;  // shrunk while read: what there is (the exact pass settles it)
    got += static_cast<uint64_t>(n);
  }
  data.resize(got);
  file->set_offset(offset);
  file->set_raw_bytes(got);
  file->set_eof(got < want || offset + got >= size);
  *used += got;
  return Status::Ok();
}

pb::BootstrapReply BootstrapServer::Position() {
  auto session = OpenSession(options_.mysql, false, "open a session for the binlog position");
  if (!session.ok()) return ErrorReply(session.status());
  auto position = MasterPosition(**session);
  if (!position.ok()) return ErrorReply(position.status());
  pb::BootstrapReply reply;
  reply.set_point_file(position->file);
  reply.set_point_offset(position->offset);
  reply.set_point_gtid(GtidAt(**session, *position));
  return reply;
}

void BootstrapServer::CloseRound(const std::shared_ptr<Round>& round, const std::string& why) {
  // A reader inside a SELECT kept open (a table without a key) would read the rest of it before
  // it closes: end the query on the server first.
  bool streaming = false;
  for (auto& reader : round->readers) streaming |= reader->streaming.load();
  if (streaming) {
    auto killer = MariadbConnection::Open(options_.mysql);
    for (auto& reader : round->readers) {
      if (!reader->streaming.load() || !killer.ok()) continue;
      Status st = (*killer)->Execute(fmt::format("KILL QUERY {}", reader->connection_id),
                                     "end a bootstrap reader's query");
      if (!st.ok()) spdlog::warn("bootstrap: {}", st.message());
    }
  }
  for (auto& reader : round->readers) {
    {
      std::lock_guard<std::mutex> lock(reader->mu);
      reader->closing = true;
    }
    reader->cv.notify_all();
  }
  for (auto& reader : round->readers) {
    if (reader->thread.joinable()) reader->thread.join();
    reader->session.reset();  // the server ends the snapshot
  }
  spdlog::info("bootstrap: round {} of {} closed: {}", round->id, round->peer, why);
}

void BootstrapServer::CloseIdleRounds() {
  const auto limit = options_.snapshot_seconds * 6;
  const auto now = clock_.Now();
  std::vector<std::shared_ptr<Round>> closing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = rounds_.begin(); it != rounds_.end();) {
      if (it->second->busy > 0 || now - it->second->last_used <= limit) {
        ++it;
        continue;
      }
      closing.push_back(it->second);
      it = rounds_.erase(it);
    }
  }
  for (auto& round : closing) {
    CloseRound(round, fmt::format("no request for {} s", std::chrono::seconds(limit).count()));
  }
}

// ---- chunks

void BootstrapServer::QueueChunk(Job job) {
  const pb::BootstrapRequest& request = job.request;
  std::string error;
  bool retry = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    peers_[job.peer].name = job.peer;
    auto it = rounds_.find(request.round());
    if (it == rounds_.end() || it->second->peer != job.peer) {
      error = fmt::format(
          "no round {} of {} is open on the primary (rounds close after {} s "
          "without a request, or when a third one begins): begin a new round",
          request.round(), job.peer, (options_.snapshot_seconds * 6).count());
      retry = true;
    } else if (request.reader() >= it->second->readers.size()) {
      error = fmt::format("round {} has {} readers; there is no reader {}", request.round(),
                          it->second->readers.size(), request.reader());
    } else if (!filter_.Replicated(request.table().db()) || request.table().table().empty()) {
      error = fmt::format("{} is not a table of a replicated database on the primary",
                          Qualified(request.table().db(), request.table().table()));
    } else if (request.after_size() > 0 &&
               !std::all_of(request.after().begin(), request.after().end(),
                            [](const std::string& v) { return IsKeyLiteral(v); })) {
      error = fmt::format("the chunk's start key of {} is not a key literal the primary writes",
                          Qualified(request.table().db(), request.table().table()));
    } else if (!std::all_of(request.upper().begin(), request.upper().end(),
                            [](const std::string& v) { return IsKeyLiteral(v); })) {
      error = fmt::format("the chunk's end key of {} is not a key literal the primary writes",
                          Qualified(request.table().db(), request.table().table()));
    } else if (request.summary_only() && request.bounded()) {
      error = "a READ_CHUNK is summary_only or bounded, not both";
    } else {
      Round& round = *it->second;
      ++round.busy;
      round.last_used = clock_.Now();
      Reader& reader = *round.readers[request.reader()];
      std::lock_guard<std::mutex> reader_lock(reader.mu);
      if (!reader.closing) {
        reader.jobs.push_back(std::move(job));
        reader.cv.notify_all();
        return;
      }
      --round.busy;
      error = fmt::format("round {} is closing: begin a new round", request.round());
      retry = true;
    }
  }
  CountError(job.peer, error);
  pb::BootstrapReply reply = ErrorReply(error, retry);
  reply.set_request_id(job.request.request_id());
  reply.set_round(job.request.round());
  job.done(std::move(reply));
}

bool BootstrapServer::TakeJob(Reader& reader, Job* job) {
  std::unique_lock<std::mutex> lock(reader.mu);
  reader.cv.wait(lock, [&] { return reader.closing || !reader.jobs.empty(); });
  if (reader.closing) return false;
  *job = std::move(reader.jobs.front());
  reader.jobs.pop_front();
  return true;
}

void BootstrapServer::Answer(Round& round, Job& job, pb::BootstrapReply reply) {
  reply.set_request_id(job.request.request_id());
  reply.set_round(round.id);
  if (!reply.error().empty()) {
    CountError(job.peer, reply.error());
  } else {
    CountChunk(job.peer, reply.rows(), reply.raw_bytes(), reply.data().size());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (round.busy > 0) --round.busy;
    round.last_used = clock_.Now();
  }
  Done done = std::move(job.done);
  job.done = nullptr;
  if (done) done(std::move(reply));
}

void BootstrapServer::ReaderLoop(Round* round, Reader* reader) {
  MysqlThreadScope scope;
  std::optional<Job> next;
  while (true) {
    Job job;
    if (next.has_value()) {
      job = std::move(*next);
      next.reset();
    } else if (!TakeJob(*reader, &job)) {
      break;
    }
    ServeChunk(*round, *reader, job, &next);
  }
  std::deque<Job> left;
  {
    std::lock_guard<std::mutex> lock(reader->mu);
    left.swap(reader->jobs);
  }
  if (next.has_value()) left.push_front(std::move(*next));
  for (Job& job : left) {
    Answer(*round, job,
           ErrorReply(fmt::format("round {} was closed before this chunk was read: begin a new "
                                  "round",
                                  round->id),
                      true));
  }
}

pb::BootstrapReply BootstrapServer::ChunkError(Round& round, Reader& reader, const Status& status,
                                               const std::string& table) {
  const int code = reader.session ? reader.session->last_error_code() : 0;
  if (code == kTableDefinitionChanged || code == kNoSuchTable ||
      status.code() == Status::Code::kNotFound) {
    return ErrorReply(fmt::format("{} changed or went away after round {}'s snapshot ({}); it is "
                                  "read in a later round",
                                  table, round.id, status.message()),
                      true);
  }
  if (reader.session && reader.session->broken()) {
    return ErrorReply(fmt::format("reader {} of round {} lost its session ({}): begin a new round",
                                  reader.index, round.id, status.message()),
                      true);
  }
  return ErrorReply(status);
}

void BootstrapServer::ServeChunk(Round& round, Reader& reader, Job& job, std::optional<Job>* next) {
  const pb::BootstrapRequest& request = job.request;
  const std::string db = request.table().db();
  const std::string name = request.table().table();
  const std::string table = Qualified(db, name);
  MariadbConnection& session = *reader.session;
  if (request.continue_piece()) {
    return Answer(round, job,
                  ErrorReply(fmt::format("no piece of {} is being read by reader {} of round {} "
                                         "(its read was interrupted): read it again from its start",
                                         table, reader.index, round.id),
                             true));
  }
  uint64_t max_bytes = request.max_bytes() == 0 ? kDefaultChunkBytes : request.max_bytes();
  max_bytes = std::clamp(max_bytes, kMinChunkBytes, kMaxChunkBytes);
  if (Status st = reader.throttle->Wait(table); !st.ok()) {
    return Answer(round, job, ChunkError(round, reader, st, table));
  }
  if (options_.before_chunk) options_.before_chunk(db, name);

  auto columns = bootstrap::ReadColumns(session, db, name);
  if (!columns.ok()) return Answer(round, job, ChunkError(round, reader, columns.status(), table));
  const std::vector<bootstrap::Column> stored = bootstrap::StoredColumns(*columns);
  auto key = verify::ReadUsableKey(session, db, name);
  if (!key.ok()) return Answer(round, job, ChunkError(round, reader, key.status(), table));

  pb::BootstrapReply reply;
  for (const bootstrap::Column& c : stored) {
    reply.add_columns(c.name);
    pb::BootstrapColumn* typed = reply.add_column_types();
    typed->set_name(c.name);
    typed->set_data_type(c.data_type);
    typed->set_column_type(c.column_type);
    typed->set_generated(c.generated);
    typed->set_charset(c.charset);
  }
  std::string text;
  // Compresses `text` into the reply and sends it.
  auto send = [&](Job& to, pb::BootstrapReply r, uint64_t rows) {
    r.set_rows(rows);
    r.set_raw_bytes(text.size());
    std::string data(ZSTD_compressBound(text.size()), '\0');
    const size_t n = reader.cctx
                         ? ZSTD_compressCCtx(reader.cctx.get(), data.data(), data.size(),
                                             text.data(), text.size(), 1)
                         : ZSTD_compress(data.data(), data.size(), text.data(), text.size(), 1);
    if (ZSTD_isError(n)) {
      return Answer(
          round, to,
          ErrorReply(fmt::format("compress a chunk of {}: {}", table, ZSTD_getErrorName(n)),
                     false));
    }
    data.resize(n);
    r.set_data(std::move(data));
    Pace(text.size());
    Answer(round, to, std::move(r));
  };

  // Resync: the range's summary instead of its rows (sync/bootstrap/chunk_summary.h).
  auto send_summary = [&](const bootstrap::ChunkSummary& summary) {
    reply.set_rows(summary.rows);
    reply.set_summary_sha256(summary.sha256);
    reply.set_summary_exact(summary.exact);
    Answer(round, job, std::move(reply));
  };
  if (key->columns.empty() && (request.bounded() || request.upper_size() > 0)) {
    return Answer(round, job,
                  ErrorReply(fmt::format("{} has no usable key now: it has no key range (its "
                                         "definition changed)",
                                         table),
                             true));
  }
  if (key->columns.empty() && request.summary_only()) {
    auto summary = bootstrap::SummarizeChunk(session, db, name, stored, {}, "", {}, {});
    if (!summary.ok()) {
      return Answer(round, job, ChunkError(round, reader, summary.status(), table));
    }
    reply.set_table_done(true);
    return send_summary(*summary);
  }
  if (key->columns.empty()) {
    // No usable key: one SELECT, its rows in pieces of about max_bytes; the SELECT stays open
    // while the peer asks for the next piece.
    Job* current = &job;
    Job continued;
    uint64_t rows = 0;
    bool interrupted = false;
    reader.streaming = true;
    Status st = session.Stream(
        "SELECT " + bootstrap::SelectList(stored) + " FROM " + table,
        [&](const MariadbConnection::RowView& row) -> Status {
          bootstrap::AppendRow(row.values, row.lengths, std::min(row.count, stored.size()), &text);
          ++rows;
          if (text.size() < max_bytes) return Status::Ok();
          pb::BootstrapReply piece = reply;
          piece.set_more_pieces(true);
          send(*current, std::move(piece), rows);
          text.clear();
          rows = 0;
          Job following;
          if (!TakeJob(reader, &following)) {
            interrupted = true;
            return Status::Aborted("the round closed");
          }
          const pb::BootstrapRequest& f = following.request;
          if (f.continue_piece() && f.table().db() == db && f.table().table() == name) {
            max_bytes = std::clamp(f.max_bytes() == 0 ? kDefaultChunkBytes : f.max_bytes(),
                                   kMinChunkBytes, kMaxChunkBytes);
            continued = std::move(following);
            current = &continued;
            return Status::Ok();
          }
          // Another request: this table's read ends unfinished.
          *next = std::move(following);
          interrupted = true;
          return Status::Aborted("the peer asked for something else");
        },
        "read " + table);
    reader.streaming = false;
    if (interrupted) return;
    if (!st.ok()) return Answer(round, *current, ChunkError(round, reader, st, table));
    pb::BootstrapReply last = reply;
    last.set_table_done(true);
    return send(*current, std::move(last), rows);
  }

  // A keyed table: the rows after `after` in key order, at most n of them.
  if (request.after_size() > 0 &&
      static_cast<size_t>(request.after_size()) != key->columns.size()) {
    return Answer(round, job,
                  ErrorReply(fmt::format("the chunk's start key has {} values but the key of {} "
                                         "has {} columns now (its definition changed)",
                                         request.after_size(), table, key->columns.size()),
                             true));
  }
  auto positions = bootstrap::KeyPositions(stored, key->columns);
  if (!positions.ok()) {
    return Answer(round, job,
                  ErrorReply(fmt::format("{} cannot be read in key order: {} (a generated key "
                                         "column?)",
                                         table, positions.status().message()),
                             false));
  }
  uint64_t& n = reader.rows_per_chunk[table];
  if (n == 0) {
    auto average = session.Query(
        "SELECT IFNULL(AVG_ROW_LENGTH, 0) FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = " +
            QuoteString(db) + " AND TABLE_NAME = " + QuoteString(name),
        "read the average row length of " + table);
    uint64_t avg = 0;
    if (average.ok() && !average->empty() && !average->front().empty()) {
      avg = ParseNumber(average->front()[0]);
    }
    // The statistics may be stale (a table just filled): the first chunk stays small, the
    // next ones grow from the bytes per row actually read.
    n = std::clamp<uint64_t>(max_bytes / std::max<uint64_t>(avg, 16), 1, kFirstChunkRows);
  }
  const std::string hint =
      " FORCE INDEX (" +
      (key->name == "PRIMARY" ? std::string("PRIMARY") : QuoteIdentifier(key->name)) + ")";
  const std::vector<std::string> after(request.after().begin(), request.after().end());
  if (request.upper_size() > 0 &&
      static_cast<size_t>(request.upper_size()) != key->columns.size()) {
    return Answer(round, job,
                  ErrorReply(fmt::format("the chunk's end key has {} values but the key of {} "
                                         "has {} columns now (its definition changed)",
                                         request.upper_size(), table, key->columns.size()),
                             true));
  }
  if (request.summary_only()) {
    // The range's end as a chunk of n rows would have it: the n-th key after `after` (none when
    // fewer rows follow: to +infinity), then its summary.
    std::vector<bootstrap::Column> key_stored;
    for (size_t at : *positions) key_stored.push_back(stored[at]);
    uint64_t rows = 0;
    std::vector<std::string> last_key(key_stored.size());
    Status st = session.Stream(
        fmt::format("SELECT {} FROM {}{}{} ORDER BY {} LIMIT {}", bootstrap::SelectList(key_stored),
                    table, hint, bootstrap::KeyRangeWhere(key->columns, after, {}),
                    bootstrap::KeyOrder(key->columns), n),
        [&](const MariadbConnection::RowView& row) -> Status {
          if (row.count != key_stored.size()) {
            return Status::Internal(fmt::format("a key of {} has {} values, not {}", table,
                                                row.count, key_stored.size()));
          }
          ++rows;
          for (size_t i = 0; i < key_stored.size(); ++i) {
            last_key[i] = bootstrap::KeyLiteral(key_stored[i], row.values[i] ? row.values[i] : "",
                                                row.values[i] ? row.lengths[i] : 0);
          }
          return Status::Ok();
        },
        "read the keys of " + table);
    if (!st.ok()) return Answer(round, job, ChunkError(round, reader, st, table));
    const bool done = rows < n;
    auto summary = bootstrap::SummarizeChunk(session, db, name, stored, key->columns, key->name,
                                             after, done ? std::vector<std::string>{} : last_key);
    if (!summary.ok()) {
      return Answer(round, job, ChunkError(round, reader, summary.status(), table));
    }
    if (summary->rows != rows) {
      return Answer(round, job,
                    ErrorReply(fmt::format("{} holds {} rows after key {} in the snapshot but its "
                                           "summary counted {}",
                                           table, rows, bootstrap::DescribeBound(after, false),
                                           summary->rows),
                               false));
    }
    reply.set_table_done(done);
    if (rows > 0) {
      for (std::string& literal : last_key) reply.add_last_key(std::move(literal));
    }
    // The next range's size from this one's bytes per row; smaller when the server cut the
    // concatenation short.
    if (!summary->exact) {
      n = std::max<uint64_t>(1, n / 2);
    } else if (rows == n && rows > 0) {
      const uint64_t per_row = std::max<uint64_t>(summary->bytes / rows, 1);
      n = std::clamp<uint64_t>(max_bytes / per_row, std::max<uint64_t>(n / 4, 1),
                               std::min<uint64_t>(n * 4, kMaxChunkRows));
    }
    Pace(summary->bytes);
    return send_summary(*summary);
  }
  if (request.bounded()) {
    // Exactly the range a summary named, whatever its size (it was sized like a chunk).
    const std::vector<std::string> upper(request.upper().begin(), request.upper().end());
    uint64_t rows = 0;
    std::vector<std::string> last_key(positions->size());
    bool too_big = false;
    Status st =
        StreamChunk(session,
                    fmt::format("SELECT {} FROM {}{}{} ORDER BY {}", bootstrap::SelectList(stored),
                                table, hint, bootstrap::KeyRangeWhere(key->columns, after, upper),
                                bootstrap::KeyOrder(key->columns)),
                    table, stored, *positions, kMaxChunkText, &text, &rows, &last_key, &too_big);
    if (too_big) {
      return Answer(
          round, job,
          ErrorReply(fmt::format("the rows of {} in {} .. {} exceed {} MiB in the chunk "
                                 "format: they cannot be shipped in one chunk",
                                 table, bootstrap::DescribeBound(after, false),
                                 bootstrap::DescribeBound(upper, true), kMaxChunkText >> 20),
                     false));
    }
    if (!st.ok()) return Answer(round, job, ChunkError(round, reader, st, table));
    reply.set_table_done(upper.empty());
    if (rows > 0) {
      for (std::string& literal : last_key) reply.add_last_key(std::move(literal));
    }
    return send(job, std::move(reply), rows);
  }
  const std::string where = bootstrap::KeyRangeWhere(key->columns, after, {});
  const uint64_t text_cap =
      std::min<uint64_t>(kMaxChunkText, std::max<uint64_t>(4 * max_bytes, 16 << 20));
  while (true) {
    text.clear();
    uint64_t rows = 0;
    std::vector<std::string> last_key(positions->size());
    bool too_big = false;
    const std::string sql =
        fmt::format("SELECT {} FROM {}{}{} ORDER BY {} LIMIT {}", bootstrap::SelectList(stored),
                    table, hint, where, bootstrap::KeyOrder(key->columns), n);
    Status st = StreamChunk(session, sql, table, stored, *positions, text_cap, &text, &rows,
                            &last_key, &too_big);
    if (too_big) {
      if (rows <= 1) {
        return Answer(round, job,
                      ErrorReply(fmt::format("a row of {} after key ({}) is larger than {} MiB "
                                             "in the chunk format: it cannot be shipped",
                                             table, fmt::join(after, ", "), text_cap >> 20),
                                 false));
      }
      n = std::max<uint64_t>(1, rows / 2);
      continue;
    }
    if (!st.ok()) return Answer(round, job, ChunkError(round, reader, st, table));
    reply.set_table_done(rows < n);
    if (rows > 0) {
      for (std::string& literal : last_key) reply.add_last_key(std::move(literal));
    }
    // The next chunk's size from this one's bytes per row.
    if (rows == n && rows > 0) {
      const uint64_t per_row = std::max<uint64_t>(text.size() / rows, 1);
      n = std::clamp<uint64_t>(max_bytes / per_row, std::max<uint64_t>(n / 4, 1),
                               std::min<uint64_t>(n * 4, kMaxChunkRows));
    }
    return send(job, std::move(reply), rows);
  }
}

void BootstrapServer::Pace(uint64_t bytes) {
  if (options_.max_rate == 0 || bytes == 0) return;
  Clock::TimePoint wait_until;
  {
    std::lock_guard<std::mutex> lock(pace_mu_);
    const auto now = clock_.Now();
    const auto cost = std::chrono::duration_cast<Clock::Duration>(std::chrono::duration<double>(
        static_cast<double>(bytes) / static_cast<double>(options_.max_rate)));
    pace_next_ = std::max(pace_next_, now) + cost;
    wait_until = pace_next_ - cost;
  }
  const auto now = clock_.Now();
  if (wait_until > now) clock_.SleepFor(wait_until - now);
}

void BootstrapServer::CountChunk(const std::string& peer, uint64_t rows, uint64_t bytes,
                                 uint64_t wire_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  BootstrapPeerStatus& s = peers_[peer];
  s.name = peer;
  ++s.chunks;
  s.rows += rows;
  s.bytes += bytes;
  s.wire_bytes += wire_bytes;
}

void BootstrapServer::CountError(const std::string& peer, const std::string& error) {
  spdlog::warn("bootstrap: {}: {}", peer, error);
  std::lock_guard<std::mutex> lock(mu_);
  BootstrapPeerStatus& s = peers_[peer];
  s.name = peer;
  s.last_error = error;
}

// ---- schema objects

pb::BootstrapReply BootstrapServer::ReadObjects(const std::string& peer,
                                                const pb::BootstrapRequest& request) {
  if (request.point_file().empty()) {
    return ErrorReply("READ_OBJECTS needs the point the secondary holds at (point_file)", false);
  }
  const BinlogPosition point{request.point_file(), request.point_offset()};
  auto session = OpenSession(options_.mysql, false, "open a session for the schema objects");
  if (!session.ok()) return ErrorReply(session.status());
  std::vector<pb::BootstrapObject> objects;
  if (Status st = ReadSchemaObjects(**session, &objects); !st.ok()) return ErrorReply(st);
  if (request.users()) {
    std::set<std::string> excluded = {"root", "mariadb.sys", ""};
    for (const std::string& u : options_.own_users) excluded.insert(u);
    for (const std::string& u : request.exclude_users()) excluded.insert(u);
    if (Status st = ReadUsers(**session, excluded, &objects); !st.ok()) return ErrorReply(st);
  }
  auto q = MasterPosition(**session);
  if (!q.ok()) return ErrorReply(q.status());
  auto statement = StatementBetween(**session, point, *q);
  if (!statement.ok()) return ErrorReply(statement.status());
  if (!statement->empty()) {
    return ErrorReply(fmt::format("a DDL came while the schema objects were read ({}); ask again "
                                  "at a new point",
                                  *statement),
                      true);
  }
  pb::BootstrapReply reply;
  for (pb::BootstrapObject& object : objects) *reply.add_objects() = std::move(object);
  spdlog::info("bootstrap: {} schema objects read for {} at {}", reply.objects_size(), peer,
               point.ToString());
  return reply;
}

Status BootstrapServer::ReadSchemaObjects(SqlSession& session,
                                          std::vector<pb::BootstrapObject>* objects) {
  const char* what = "read the schema objects";
  auto add = [&](const std::string& kind, const std::string& db, const std::string& name,
                 std::vector<std::string> sql) {
    pb::BootstrapObject object;
    object.set_kind(kind);
    object.set_db(db);
    object.set_name(name);
    for (std::string& s : sql) object.add_sql(std::move(s));
    objects->push_back(std::move(object));
  };
  // `SHOW CREATE <kind>` of one object: the row, checked to have the statement at `column`.
  auto show = [&](const std::string& kind, const std::string& db, const std::string& name,
                  size_t column) -> Result<SqlSession::Row> {
    RS_ASSIGN_OR_RETURN(auto rows,
                        session.Query("SHOW CREATE " + kind + " " + Qualified(db, name), what));
    if (rows.empty() || rows[0].size() <= column || !rows[0][column]) {
      return Status::Server(
          fmt::format("SHOW CREATE {} {} shows no definition: the primary's [mysql] user needs the "
                      "privileges to see it (SHOW VIEW, SELECT on mysql.proc, TRIGGER, EVENT)",
                      kind, Qualified(db, name)));
    }
    return rows[0];
  };
  auto sql_mode = [](const SqlSession::Row& row) {
    return "SET SESSION sql_mode = " + QuoteString(row.size() > 1 ? row[1].value_or("") : "");
  };

  // Routines first (a view may call a function), packages before their bodies.
  RS_ASSIGN_OR_RETURN(
      auto routines,
      session.Query("SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE FROM "
                    "information_schema.ROUTINES ORDER BY FIELD(ROUTINE_TYPE, 'PACKAGE', "
                    "'PACKAGE BODY', 'FUNCTION', 'PROCEDURE'), ROUTINE_SCHEMA, ROUTINE_NAME",
                    what));
  for (const auto& row : routines) {
    if (row.size() < 3 || !filter_.Replicated(row[0].value_or(""))) continue;
    const std::string db = row[0].value_or(""), name = row[1].value_or("");
    const std::string kind = row[2].value_or("");
    RS_ASSIGN_OR_RETURN(auto create, show(kind, db, name, 2));
    add(kind, db, name, {sql_mode(create), *create[2]});
  }

  // Views, each after the views it selects from.
  RS_ASSIGN_OR_RETURN(auto views, session.Query("SELECT TABLE_SCHEMA, TABLE_NAME, "
                                                "VIEW_DEFINITION FROM information_schema.VIEWS "
                                                "ORDER BY TABLE_SCHEMA, TABLE_NAME",
                                                what));
  struct View {
    std::string db, name, definition;
    bool done = false;
  };
  std::vector<View> pending;
  for (const auto& row : views) {
    if (row.size() < 3 || !filter_.Replicated(row[0].value_or(""))) continue;
    pending.push_back(View{row[0].value_or(""), row[1].value_or(""), row[2].value_or("")});
  }
  for (size_t placed = 0; placed < pending.size();) {
    bool progress = false;
    for (View& v : pending) {
      if (v.done) continue;
      bool ready = true;
      for (const View& w : pending) {
        if (w.done || &w == &v) continue;
        if (v.definition.find(Qualified(w.db, w.name)) != std::string::npos) ready = false;
      }
      if (!ready) continue;
      RS_ASSIGN_OR_RETURN(auto create, show("VIEW", v.db, v.name, 1));
      add("VIEW", v.db, v.name, {*create[1]});
      v.done = true;
      ++placed;
      progress = true;
    }
    if (!progress) {  // a cycle cannot be; take the rest in name order
      for (View& v : pending) {
        if (v.done) continue;
        RS_ASSIGN_OR_RETURN(auto create, show("VIEW", v.db, v.name, 1));
        add("VIEW", v.db, v.name, {*create[1]});
        v.done = true;
        ++placed;
      }
    }
  }

  // Triggers: in ACTION_ORDER within their table, timing and event (each new one goes last).
  RS_ASSIGN_OR_RETURN(auto triggers,
                      session.Query("SELECT TRIGGER_SCHEMA, TRIGGER_NAME FROM "
                                    "information_schema.TRIGGERS ORDER BY TRIGGER_SCHEMA, "
                                    "EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, "
                                    "ACTION_ORDER",
                                    what));
  for (const auto& row : triggers) {
    if (row.size() < 2 || !filter_.Replicated(row[0].value_or(""))) continue;
    const std::string db = row[0].value_or(""), name = row[1].value_or("");
    RS_ASSIGN_OR_RETURN(auto create, show("TRIGGER", db, name, 2));
    add("TRIGGER", db, name, {sql_mode(create), *create[2]});
  }

  // Events, with their sql_mode and time_zone.
  RS_ASSIGN_OR_RETURN(auto events, session.Query("SELECT EVENT_SCHEMA, EVENT_NAME FROM "
                                                 "information_schema.EVENTS ORDER BY "
                                                 "EVENT_SCHEMA, EVENT_NAME",
                                                 what));
  for (const auto& row : events) {
    if (row.size() < 2 || !filter_.Replicated(row[0].value_or(""))) continue;
    const std::string db = row[0].value_or(""), name = row[1].value_or("");
    RS_ASSIGN_OR_RETURN(auto create, show("EVENT", db, name, 3));
    add("EVENT", db, name,
        {sql_mode(create) + ", time_zone = " + QuoteString(create[2].value_or("SYSTEM")),
         *create[3]});
  }
  return Status::Ok();
}

Status BootstrapServer::ReadUsers(SqlSession& session, const std::set<std::string>& excluded,
                                  std::vector<pb::BootstrapObject>* objects) {
  const char* what = "read the accounts with privileges on the replicated databases";
  RS_ASSIGN_OR_RETURN(auto schemas,
                      session.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA", what));
  std::vector<std::string> replicated;
  for (const auto& row : schemas) {
    const std::string db = row.empty() ? "" : row[0].value_or("");
    if (!db.empty() && filter_.Replicated(db)) replicated.push_back(db);
  }
  RS_ASSIGN_OR_RETURN(
      auto grants,
      session.Query("SELECT User, Host, Db, 1 FROM mysql.db UNION SELECT User, Host, Db, 0 FROM "
                    "mysql.tables_priv UNION SELECT User, Host, Db, 0 FROM mysql.columns_priv "
                    "UNION SELECT User, Host, Db, 0 FROM mysql.procs_priv",
                    what));
  std::set<std::pair<std::string, std::string>> accounts;
  for (const auto& row : grants) {
    if (row.size() < 4) continue;
    const std::string user = row[0].value_or(""), host = row[1].value_or("");
    const std::string db = row[2].value_or("");
    // Roles have no host; they are not accounts to create here.
    if (excluded.count(user) > 0 || host.empty()) continue;
    const bool pattern = row[3].value_or("0") == "1";  // mysql.db's Db may hold wildcards
    const bool matches = std::any_of(replicated.begin(), replicated.end(), [&](const auto& name) {
      return pattern ? LikeMatch(db, name) : db == name;
    });
    if (matches) accounts.emplace(user, host);
  }
  for (const auto& [user, host] : accounts) {
    const std::string account = QuoteString(user) + "@" + QuoteString(host);
    pb::BootstrapObject object;
    object.set_kind("USER");
    object.set_name(account);
    RS_ASSIGN_OR_RETURN(auto create, session.Query("SHOW CREATE USER " + account, what));
    if (create.empty() || create[0].empty() || !create[0][0]) {
      return Status::Server("SHOW CREATE USER " + account + " shows nothing");
    }
    object.add_sql(*create[0][0]);
    RS_ASSIGN_OR_RETURN(auto shown, session.Query("SHOW GRANTS FOR " + account, what));
    for (const auto& g : shown) {
      if (!g.empty() && g[0]) object.add_sql(*g[0]);
    }
    objects->push_back(std::move(object));
  }
  return Status::Ok();
}

}  // namespace replsync::capture
