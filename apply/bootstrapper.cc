#include "apply/bootstrapper.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "apply/applier.h"
#include "apply/bootstrap/chunk_loader.h"
#include "apply/bootstrap/deferred_indexes.h"
#include "apply/bootstrap/progress_store.h"
#include "apply/bootstrap/resync_plan.h"
#include "sync/bootstrap/chunk_summary.h"
#include "sync/database_filter.h"
#include "sync/mysql/mariadb_connection.h"
#include "sync/node/bootstrap_request.h"
#include "sync/node/node.h"
#include "sync/verify/consistent_point.h"
#include "sync/verify/usable_key.h"

namespace replsync::apply {
namespace {

constexpr int kRoundTries = 20;  // round 0 asked again after a DDL came during its definitions

bool InProgress(const std::string& phase) {
  return phase == "starting" || phase == "copying" || phase == "objects" || phase == "files";
}

std::string TableKey(const std::string& db, const std::string& table) { return db + "." + table; }

std::string QualifiedName(const std::string& db, const std::string& table) {
  return QuoteIdentifier(db) + "." + QuoteIdentifier(table);
}

// The session the bootstrapper writes its own rows and the definitions with: nothing it does
// reaches the secondary's binlog, and foreign keys are not checked while tables are created.
Result<std::unique_ptr<MysqlSession>> OpenSession(const MysqlOptions& mysql) {
  MysqlOptions options = mysql;
  options.multi_statements = false;  // definitions and objects run one statement per call
  Result<std::unique_ptr<MysqlSession>> session = MysqlSession::Open(options);
  if (!session.ok()) return session.status();
  for (const char* sql : {"SET SESSION sql_log_bin=0", "SET SESSION foreign_key_checks=0",
                          "SET SESSION time_zone='+00:00'", "SET NAMES utf8mb4"}) {
    RS_RETURN_IF_ERROR((*session)->Execute(sql, "bootstrap: set up the session"));
  }
  return session;
}

// The replicated databases that exist on the secondary.
Result<std::vector<std::string>> ReplicatedDatabases(SqlSession& session,
                                                     const std::vector<std::string>& databases) {
  Result<std::vector<SqlSession::Row>> rows =
      session.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME",
                    "bootstrap: list the databases");
  if (!rows.ok()) return rows.status();
  std::vector<std::string> out;
  for (const SqlSession::Row& row : *rows) {
    if (!row[0]) continue;
    if (IsSystemSchema(*row[0]) || *row[0] == "replsync") continue;
    if (!databases.empty() &&
        std::find(databases.begin(), databases.end(), *row[0]) == databases.end()) {
      continue;
    }
    out.push_back(*row[0]);
  }
  return out;
}

// What a bootstrap would replace on this secondary: its replicated databases with tables, and
// its repository's entries unless they may have come from the stream (`streamed`: the node has
// received entries from its primary; a secondary started before its bootstrap applies the
// primary's file entries at once). Empty: the secondary is fresh.
Result<std::vector<std::string>> WhatIsThere(SqlSession& session, const NodeConfig& config,
                                             bool streamed) {
  std::vector<std::string> there;
  Result<std::vector<std::string>> dbs = ReplicatedDatabases(session, config.mysql.databases);
  if (!dbs.ok()) return dbs.status();
  for (const std::string& db : *dbs) {
    Result<std::vector<SqlSession::Row>> rows = session.Query(
        "SELECT COUNT(*), COALESCE(SUM(TABLE_ROWS), 0) FROM information_schema.TABLES WHERE "
        "TABLE_SCHEMA = " +
            QuoteString(db),
        "bootstrap: count the tables");
    if (!rows.ok()) return rows.status();
    const std::string tables = (*rows)[0][0].value_or("0");
    if (tables == "0") continue;
    there.push_back(fmt::format("database {}: {} tables, about {} rows", db, tables,
                                (*rows)[0][1].value_or("0")));
  }
  if (!config.repository.path.empty() && !streamed) {
    std::error_code ec;
    uint64_t entries = 0;
    for (auto it = std::filesystem::recursive_directory_iterator(config.repository.path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      ++entries;
    }
    if (entries > 0) {
      there.push_back(
          fmt::format("repository {}: {} files and folders", config.repository.path, entries));
    }
  }
  return there;
}

// "CREATE DATABASE `app` ..." as SHOW CREATE DATABASE gives it, made IF NOT EXISTS.
std::string IfNotExists(const std::string& create_database) {
  static const std::string kPrefix = "CREATE DATABASE ";
  if (create_database.rfind(kPrefix, 0) != 0 ||
      create_database.compare(kPrefix.size(), 14, "IF NOT EXISTS ") == 0) {
    return create_database;
  }
  return kPrefix + "IF NOT EXISTS " + create_database.substr(kPrefix.size());
}

// Strongly connected components of the reference graph among `names` (Tarjan): each table's
// component id; a component of several tables, or a table that references itself, is a cycle.
std::map<std::string, int> Components(
    const std::vector<std::string>& names,
    const std::map<std::string, std::vector<std::string>>& references) {
  std::map<std::string, int> index, low, component;
  std::vector<std::string> stack;
  std::set<std::string> on_stack;
  int next_index = 0, next_component = 0;
  std::function<void(const std::string&)> visit = [&](const std::string& v) {
    index[v] = low[v] = next_index++;
    stack.push_back(v);
    on_stack.insert(v);
    auto refs = references.find(v);
    if (refs != references.end()) {
      for (const std::string& w : refs->second) {
        if (std::find(names.begin(), names.end(), w) == names.end()) continue;
        if (!index.count(w)) {
          visit(w);
          low[v] = std::min(low[v], low[w]);
        } else if (on_stack.count(w)) {
          low[v] = std::min(low[v], index[w]);
        }
      }
    }
    if (low[v] == index[v]) {
      for (;;) {
        std::string w = stack.back();
        stack.pop_back();
        on_stack.erase(w);
        component[w] = next_component;
        if (w == v) break;
      }
      ++next_component;
    }
  };
  for (const std::string& name : names) {
    if (!index.count(name)) visit(name);
  }
  return component;
}

}  // namespace

// One table's work in a round.
struct Bootstrapper::TableWork {
  std::string db, table;
  std::vector<std::string> key_columns;
  std::vector<std::string> parents;  // referenced tables outside its own cycle ("db.table")
  std::vector<std::string> group;    // its reference cycle ("db.table", itself included), or {}
  std::optional<std::vector<std::string>> after;  // the last loaded key; nullopt: none loaded
  bool done = false;
  bool taken = false;
  bool skip_round = false;  // changed under the round's snapshot: read again in the next round
};

Bootstrapper::Bootstrapper(BootstrapperOptions options)
    : options_(std::move(options)), clock_(*options_.clock) {}

Bootstrapper::~Bootstrapper() { Stop(); }

bool Bootstrapper::Streamed() const {
  return options_.stream.received_anything && options_.stream.received_anything();
}

void Bootstrapper::Prepare() {
  MysqlThreadScope scope;
  Result<std::unique_ptr<MysqlSession>> session =
      OpenSession(MysqlOptionsOf(options_.config.mysql));
  if (!session.ok()) return;
  ProgressStore store(**session, options_.channel);
  if (!store.Create().ok()) return;
  Result<std::optional<BootstrapState>> row = store.ReadBootstrap();
  if (!row.ok()) return;
  if (*row) {
    // The recorded bootstrap is this node's latest: status shows it from the start.
    Update([&](NodeStatus::Bootstrap& b) {
      b.token = (*row)->token;
      b.phase = (*row)->phase;
      b.resync = (*row)->resync;
      b.start_position = BinlogPosition{(*row)->start_file, (*row)->start_offset}.ToString();
      b.exit_code = (*row)->phase == "done" ? 0 : -1;
    });
  }
  if (*row && InProgress((*row)->phase)) {
    options_.stream.set_lenient((*row)->phase != "files");
    // While rows are copied the applier moves only to the next round's point, which is set once
    // that round has begun on the primary: running free until then it could pass the point, and
    // WaitHeld would report it held there while chunks read at the point undo what it applied
    // after it (a delete seemed undone, an insert lost).
    if ((*row)->phase == "starting" || (*row)->phase == "copying") {
      options_.stream.set_hold(verify::StopBefore::All());
    }
    return;
  }
  // A request waiting (`replsync bootstrap`, or `replsync rejoin`, which made this old primary a
  // secondary): the applier waits for the copy rather than apply a stream it is to replace.
  if (ReadBootstrapRequest(options_.config.node.state_dir).ok()) {
    options_.stream.set_hold(verify::StopBefore::All());
    return;
  }
  if (!*row && options_.config.node.bootstrap_auto) {
    Result<std::vector<std::string>> there = WhatIsThere(**session, options_.config, Streamed());
    if (there.ok() && there->empty()) options_.stream.set_hold(verify::StopBefore::All());
  }
}

Status Bootstrapper::Start() {
  if (thread_.joinable()) return Status::InvalidArgument("bootstrapper already started");
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void Bootstrapper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<NodeStatus::Bootstrap> Bootstrapper::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void Bootstrapper::Update(const std::function<void(NodeStatus::Bootstrap&)>& change) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!status_) status_.emplace();
  change(*status_);
}

bool Bootstrapper::Sleep(std::chrono::milliseconds how_long) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, how_long, [this] { return stop_.load(); });
  return !stop_;
}

bool Bootstrapper::PauseForTest(const std::string& phase) {
  if (options_.pause_file.empty()) return true;
  auto pausing = [&] {
    std::ifstream in(options_.pause_file);
    std::string word;
    in >> word;
    return word == phase;
  };
  if (!pausing()) return true;
  spdlog::warn("bootstrap: paused in the {} phase while {} says so (a test hook)", phase,
               options_.pause_file);
  Update([&](NodeStatus::Bootstrap& b) { b.error = "paused by the test hook in phase " + phase; });
  while (pausing()) {
    if (!Sleep(std::chrono::milliseconds(100))) return false;
  }
  Update([](NodeStatus::Bootstrap& b) { b.error.clear(); });
  return true;
}

void Bootstrapper::Fail(const Status& st) {
  spdlog::error("bootstrap: {}", st.message());
  Update([&](NodeStatus::Bootstrap& b) {
    b.error = st.message();
    b.exit_code = 2;
    b.finished_at = UnixSeconds(clock_);
  });
}

void Bootstrapper::Run() {
  MysqlThreadScope scope;
  std::chrono::milliseconds backoff = options_.retry_min;
  while (!stop_) {
    Status st = Step();
    if (stop_) break;
    if (st.ok()) {
      backoff = options_.retry_min;
      Sleep(options_.poll);
      continue;
    }
    if (st.retryable()) {
      recorded_checked_ = false;  // look at the recorded bootstrap again: it goes on
      spdlog::warn("bootstrap: {}; trying again in {} ms", st.message(), backoff.count());
      Update([&](NodeStatus::Bootstrap& b) { b.error = st.message(); });
      Sleep(backoff);
      backoff = std::min(backoff * 2, options_.retry_max);
      continue;
    }
    Fail(st);
    // Waits for a new request: the recorded progress is kept, and it continues from there.
    while (!stop_ && !ReadBootstrapRequest(options_.config.node.state_dir).ok()) {
      Sleep(options_.poll);
    }
  }
}

Status Bootstrapper::Step() {
  // The database is looked at only when there is something to decide: at the first pass (a
  // bootstrap recorded in progress continues), for a request, and once for "auto". An idle
  // secondary's server sees nothing of the bootstrapper.
  const std::string& state_dir = options_.config.node.state_dir;
  const bool asked = ReadBootstrapRequest(state_dir).ok();
  const bool auto_due = options_.config.node.bootstrap_auto && !auto_tried_;
  if (recorded_checked_ && !asked && !auto_due) {
    // Following the stream: tables that entered the set are copied.
    if (options_.stream.entering) {
      const auto entering = options_.stream.entering();
      if (entering.empty()) return Status::Ok();
      // Tried again until it is done, whatever failed: until then those tables' changes are
      // left out.
      Status st = CopyEntering(entering);
      if (st.ok() || st.retryable()) return st;
      return Status::Unavailable(
          st.WithContext("bootstrap: copy the tables entering the set").message());
    }
    return Status::Ok();
  }
  Result<std::unique_ptr<MysqlSession>> session =
      OpenSession(MysqlOptionsOf(options_.config.mysql));
  if (!session.ok())
    return session.status().WithContext("bootstrap: connect to this node's server");
  ProgressStore store(**session, options_.channel);
  RS_RETURN_IF_ERROR(store.Create());
  Result<std::optional<BootstrapState>> row = store.ReadBootstrap();
  if (!row.ok()) return row.status();
  recorded_checked_ = true;
  Result<BootstrapRequest> request = ReadBootstrapRequest(state_dir);
  if (request.ok()) (void)RemoveBootstrapRequest(state_dir);
  if (*row && InProgress((*row)->phase)) {
    std::string token = request.ok() ? request->token : (*row)->token;
    return Continue(token);
  }
  if (request.ok()) return Begin(request->token, request->force, request->resync);
  if (options_.config.node.bootstrap_auto && !auto_tried_ && !*row) {
    auto_tried_ = true;
    Result<std::vector<std::string>> there = WhatIsThere(**session, options_.config, Streamed());
    if (!there.ok()) return there.status();
    if (there->empty()) {
      spdlog::info(
          "bootstrap: this secondary is fresh and [node] bootstrap = \"auto\": bootstrapping");
      return Begin(verify::NewBarrierToken(), false, false);
    }
    options_.stream.set_hold(std::nullopt);
  }
  return Status::Ok();
}

Status Bootstrapper::Begin(const std::string& token, bool force, bool resync) {
  Update([&](NodeStatus::Bootstrap& b) {
    b = NodeStatus::Bootstrap{};
    b.token = token;
    b.phase = "starting";
    b.resync = resync;
    b.started_at = UnixSeconds(clock_);
  });
  Result<std::unique_ptr<MysqlSession>> session =
      OpenSession(MysqlOptionsOf(options_.config.mysql));
  if (!session.ok()) return session.status();
  SqlSession& db = **session;
  if (!force && !resync) {
    // A secondary started before its bootstrap applies the primary's file entries as they come
    // and records a run of them in replsync.applied only once the run is applied: looked at in
    // the middle of a run, its repository would seem its own. The applier holds first (an
    // applier stopped on an error has recorded the runs before it).
    options_.stream.set_hold(verify::StopBefore::All());
    for (;;) {
      Result<verify::PausedAt> held = options_.stream.wait_held(std::chrono::milliseconds(1000));
      if (held.ok() || !held.status().retryable()) break;
      if (stop_) return Status::Aborted("stopping");
    }
    Result<std::vector<std::string>> there = WhatIsThere(db, options_.config, Streamed());
    if (!there.ok()) return there.status();
    if (!there->empty()) {
      options_.stream.set_hold(std::nullopt);
      spdlog::warn(
          "bootstrap refused: this secondary is not empty ({}); run replsync bootstrap "
          "--force to replace it, or --resync to keep it and copy what differs",
          fmt::join(*there, "; "));
      Update([&](NodeStatus::Bootstrap& b) {
        b.phase = "refused";
        b.refused = *there;
        b.exit_code = 1;
        b.finished_at = UnixSeconds(clock_);
      });
      return Status::Ok();
    }
  }
  spdlog::info("bootstrap {}: starting ({})", token, resync ? "resync" : force ? "force" : "fresh");

  // Round 0: nothing is applied while it is taken, so that the applier's position is still
  // before its point when the node's stream is rebased onto it.
  options_.stream.set_hold(verify::StopBefore::All());
  Result<std::unique_ptr<BootstrapClient>> client = options_.connect();
  if (!client.ok()) return client.status();
  Result<BootstrapClient::Round> round = Status::Internal("no round");
  for (int attempt = 1;; ++attempt) {
    round = (*client)->BeginRound(options_.config.bootstrap.readers, /*definitions=*/true);
    if (round.ok() || !round.status().retryable() || attempt >= kRoundTries || stop_) break;
    spdlog::info("bootstrap: {} (attempt {})", round.status().message(), attempt);
    if (!Sleep(std::chrono::milliseconds(200))) return Status::Aborted("stopping");
  }
  if (!round.ok()) return round.status().WithContext("bootstrap: round 0 on the primary");
  const BootstrapClient::Round& r0 = *round;
  const std::string start = r0.point.ToString();
  Update([&](NodeStatus::Bootstrap& b) {
    b.start_position = start;
    b.round = r0.round;
    b.lock_ms = std::max(b.lock_ms, r0.lock_ms);
  });

  options_.stream.stop();
  // Whatever happens from here, the node's stream runs again when Begin returns (a failure
  // leaves phase "starting": the next attempt starts over from a new round 0).
  bool restarted = false;
  struct StartAgain {
    BootstrapperOptions::Stream& stream;
    bool& restarted;
    ~StartAgain() {
      if (restarted) return;
      if (Status st = stream.start(); !st.ok()) {
        spdlog::error("bootstrap: starting the stream again: {}", st.message());
      }
    }
  } start_again{options_.stream, restarted};
  ProgressStore store(db, options_.channel);
  BootstrapState row;
  row.token = token;
  row.phase = "starting";
  row.resync = resync;
  row.start_file = r0.point.file;
  row.start_offset = r0.point.offset;
  row.start_seq = r0.journal_seq;
  row.lenient = true;
  RS_RETURN_IF_ERROR(store.Reset());
  RS_RETURN_IF_ERROR(store.Start(row));
  // Tables that were entering the set are copied with all the others.
  RS_RETURN_IF_ERROR(Applier::CreateEnteringTable(db));
  RS_RETURN_IF_ERROR(
      db.Execute("DELETE FROM replsync.entering WHERE channel = " + QuoteString(options_.channel),
                 "bootstrap: forget the tables entering the set"));
  if (!resync) {
    Result<std::vector<std::string>> dbs = ReplicatedDatabases(db, options_.config.mysql.databases);
    if (!dbs.ok()) return dbs.status();
    for (const std::string& name : *dbs) {
      RS_RETURN_IF_ERROR(db.Execute("DROP DATABASE " + QuoteIdentifier(name),
                                    "bootstrap: drop the secondary's " + name));
    }
  }
  if (resync) RS_RETURN_IF_ERROR(ResyncDefinitions(db, r0));
  for (const std::string& create : r0.databases) {
    RS_RETURN_IF_ERROR(db.Execute(IfNotExists(create), "bootstrap: create a database"));
  }
  auto definition = [](const pb::BootstrapTable& t) {
    return TableDefinition{t.name().db(), t.name().table(), t.create_sql()};
  };
  std::vector<TableDefinition> definitions;
  for (const pb::BootstrapTable& t : r0.tables) definitions.push_back(definition(t));
  RS_RETURN_IF_ERROR(DeferredIndexes::Forget(db, options_.channel));
  for (const pb::BootstrapTable& t : r0.tables) {
    const std::string& schema = t.name().db();
    const std::string& name = t.name().table();
    Result<std::vector<SqlSession::Row>> exists =
        db.Query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = " +
                     QuoteString(schema) + " AND TABLE_NAME = " + QuoteString(name),
                 "bootstrap: look for " + TableKey(schema, name));
    if (!exists.ok()) return exists.status();
    if ((*exists)[0][0].value_or("0") == "0") {
      RS_RETURN_IF_ERROR(db.Execute("USE " + QuoteIdentifier(schema), "bootstrap"));
      RS_RETURN_IF_ERROR(db.Execute(t.create_sql(), "bootstrap: create " + TableKey(schema, name)));
      // Its plain secondary indexes are built once its rows are in (DeferredIndexes).
      RS_RETURN_IF_ERROR(DeferredIndexes::Defer(db, options_.channel, schema, name,
                                                DeferrableIndexes(definition(t), definitions)));
    }
    RS_RETURN_IF_ERROR(store.AddTable(schema, name));
  }
  RS_RETURN_IF_ERROR(
      Applier::WritePosition(db, options_.channel, r0.journal_seq - 1, r0.gtid, r0.point));
  RS_RETURN_IF_ERROR(store.SetPhase("copying"));
  spdlog::info(
      "bootstrap {}: {} databases and {} tables created at {}; the stream starts at "
      "journal sequence {}",
      token, r0.databases.size(), r0.tables.size(), start, r0.journal_seq);
  RS_RETURN_IF_ERROR(db.Execute("SET GLOBAL slave_exec_mode = 'IDEMPOTENT'",
                                "bootstrap: open the lenient window"));
  options_.stream.set_lenient(true);
  options_.stream.set_hold(verify::StopBefore::Seq(r0.journal_seq));
  restarted = true;
  RS_RETURN_IF_ERROR(options_.stream.start());
  first_round_ = std::move(*round);
  first_client_ = std::move(*client);
  return Continue(token);
}

Status Bootstrapper::HoldAt(uint64_t journal_seq) {
  if (journal_seq == 0) {
    return Status::Unsupported(
        "bootstrap: the primary does not say where its point falls in its journal: run the same "
        "replsync version on both nodes");
  }
  options_.stream.set_hold(verify::StopBefore::Seq(journal_seq));
  for (;;) {
    Result<verify::PausedAt> held = options_.stream.wait_held(std::chrono::milliseconds(1000));
    if (held.ok()) {
      // A hold before `journal_seq` also holds an applier that is past it: rows copied at the
      // point would then undo what it applied after it. Never: it was held before the point
      // was taken; checked, so that a mistake ends the round instead of the data.
      if (held->applied_seq + 1 != journal_seq) {
        return Status::Internal(fmt::format(
            "bootstrap: the applier holds at journal sequence {}, not right before the point's "
            "{}: the copy at that point cannot be joined to the stream",
            held->applied_seq, journal_seq));
      }
      return Status::Ok();
    }
    if (stop_) return Status::Aborted("stopping");
    if (!held.status().retryable()) return held.status().WithContext("bootstrap: the applier");
  }
}

Status Bootstrapper::CopyEntering(const std::vector<std::pair<std::string, std::string>>& tables) {
  std::vector<std::string> names;
  for (const auto& [db, table] : tables) names.push_back(TableKey(db, table));
  spdlog::info("bootstrap: copying {} from the primary (entering the replicated set)",
               fmt::join(names, ", "));
  Result<std::unique_ptr<BootstrapClient>> client = options_.connect();
  if (!client.ok()) return client.status();
  // Nothing is applied while the round is taken: every transaction applied is then before its
  // point, and the applier can be held exactly there (running on, it could pass the point
  // before the hold came, and the tables' changes in between would be lost).
  options_.stream.set_hold(verify::StopBefore::All());
  Result<BootstrapClient::Round> round = Status::Internal("no round");
  for (int attempt = 1;; ++attempt) {
    // One snapshot: the tables are copied one after the other by one loader.
    round = (*client)->BeginRound(1, /*definitions=*/true, /*keep_stream=*/true);
    if (round.ok() || !round.status().retryable() || attempt >= kRoundTries || stop_) break;
    if (!Sleep(std::chrono::milliseconds(200))) return Status::Aborted("stopping");
  }
  if (!round.ok()) {
    options_.stream.set_hold(std::nullopt);
    return round.status().WithContext("bootstrap: a round for tables entering the set");
  }
  struct EndRound {
    BootstrapClient& client;
    uint64_t round;
    BootstrapperOptions::Stream& stream;
    ~EndRound() {
      (void)client.EndRound(round);
      stream.set_hold(std::nullopt);
    }
  } end_round{**client, round->round, options_.stream};
  // The applier to exactly the round's point: the tables' events before it are left out, the
  // ones after it apply to the copy.
  RS_RETURN_IF_ERROR(HoldAt(round->journal_seq));
  Result<std::unique_ptr<MysqlSession>> session =
      OpenSession(MysqlOptionsOf(options_.config.mysql));
  if (!session.ok()) return session.status();
  SqlSession& db = **session;
  // Tables referencing an entering one keep their foreign keys across its drop and create.
  RS_RETURN_IF_ERROR(db.Execute("SET SESSION foreign_key_checks = 0, sql_log_bin = 0",
                                "bootstrap: session settings"));
  Result<std::unique_ptr<ChunkLoader>> loader =
      ChunkLoader::Open(MysqlOptionsOf(options_.config.mysql));
  if (!loader.ok()) return loader.status();
  ProgressStore store(db, options_.channel);
  RS_RETURN_IF_ERROR(store.Create());
  const uint64_t chunk_bytes = uint64_t{options_.config.bootstrap.chunk_megabytes} << 20;
  for (const auto& [schema, name] : tables) {
    const std::string key = TableKey(schema, name);
    RS_RETURN_IF_ERROR(db.Execute("DROP TABLE IF EXISTS " + QualifiedName(schema, name),
                                  "bootstrap: drop " + key + " before its copy"));
    const pb::BootstrapTable* found = nullptr;
    for (const pb::BootstrapTable& t : round->tables) {
      if (t.name().db() == schema && t.name().table() == name) found = &t;
    }
    if (found == nullptr) {
      spdlog::info("bootstrap: {} is gone on the primary at {}: nothing to copy", key,
                   round->point.ToString());
      continue;
    }
    RS_RETURN_IF_ERROR(db.Execute("USE " + QuoteIdentifier(schema), "bootstrap"));
    RS_RETURN_IF_ERROR(db.Execute(found->create_sql(), "bootstrap: create " + key));
    RS_RETURN_IF_ERROR(store.AddTable(schema, name));
    RS_RETURN_IF_ERROR(store.ResetTable(schema, name));
    TableWork w;
    w.db = schema;
    w.table = name;
    w.key_columns.assign(found->key_columns().begin(), found->key_columns().end());
    w.group = {key};  // whole, within this round
    RS_RETURN_IF_ERROR(
        CopyTable(**client, **loader, *round, 0, &w, chunk_bytes,
                  std::chrono::steady_clock::now() +
                      std::chrono::seconds(options_.config.bootstrap.snapshot_seconds)));
    spdlog::info("bootstrap: {} copied at {}; it follows the stream from journal sequence {}", key,
                 round->point.ToString(), round->journal_seq);
  }
  RS_RETURN_IF_ERROR(Applier::DeleteEntering(db, options_.channel, tables));
  options_.stream.forget_entering(tables);
  return Status::Ok();
}

Status Bootstrapper::Continue(const std::string& token) {
  Result<std::unique_ptr<MysqlSession>> session =
      OpenSession(MysqlOptionsOf(options_.config.mysql));
  if (!session.ok()) return session.status();
  ProgressStore store(**session, options_.channel);
  Result<std::optional<BootstrapState>> row = store.ReadBootstrap();
  if (!row.ok()) return row.status();
  if (!*row) return Status::Internal("bootstrap: no bootstrap row to continue");
  BootstrapState current = **row;
  Update([&](NodeStatus::Bootstrap& b) {
    if (b.token != token) {
      b = NodeStatus::Bootstrap{};
      b.token = token;
      b.started_at = UnixSeconds(clock_);
    }
    b.phase = current.phase;
    b.resync = current.resync;
    b.start_position = BinlogPosition{current.start_file, current.start_offset}.ToString();
    b.error.clear();
    b.exit_code = -1;
  });
  if (current.phase == "starting") {
    // Stopped while round 0's definitions were being created: start over from a new round 0.
    return Begin(token, /*force=*/!current.resync, current.resync);
  }
  resync_ = current.resync;
  if (current.phase == "copying") {
    options_.stream.set_lenient(true);
    RS_RETURN_IF_ERROR(CopyRows());
    current.phase = "objects";
    RS_RETURN_IF_ERROR(store.SetPhase(current.phase));
    Update([](NodeStatus::Bootstrap& b) { b.phase = "objects"; });
  }
  if (current.phase == "objects") {
    if (!PauseForTest("objects")) return Status::Aborted("stopping");
    RS_RETURN_IF_ERROR(CopyObjects());
    current.phase = "files";
    RS_RETURN_IF_ERROR(store.SetLenient(false));
    RS_RETURN_IF_ERROR(store.SetPhase(current.phase));
    Update([](NodeStatus::Bootstrap& b) { b.phase = "files"; });
  }
  if (current.phase == "files") {
    options_.stream.set_lenient(false);
    options_.stream.set_hold(std::nullopt);
    if (!PauseForTest("files")) return Status::Aborted("stopping");
    RS_RETURN_IF_ERROR(CopyFiles());
    current.phase = "done";
    RS_RETURN_IF_ERROR(store.SetPhase(current.phase));
  }
  spdlog::info("bootstrap {}: done; the secondary follows the stream", token);
  Update([&](NodeStatus::Bootstrap& b) {
    b.phase = "done";
    b.exit_code = 0;
    b.eta_seconds = 0;
    b.finished_at = UnixSeconds(clock_);
  });
  return Status::Ok();
}

Status Bootstrapper::CopyRows() {
  const NodeConfig::Bootstrap& settings = options_.config.bootstrap;
  copy_started_ = std::chrono::steady_clock::now();
  copy_bytes_at_start_ = 0;
  bool first_round = true;
  const uint64_t chunk_bytes = uint64_t{settings.chunk_megabytes} << 20;
  std::unique_ptr<BootstrapClient> client = std::move(first_client_);
  if (!client) {
    Result<std::unique_ptr<BootstrapClient>> connected = options_.connect();
    if (!connected.ok()) return connected.status();
    client = std::move(*connected);
  }
  for (;;) {
    if (stop_) return Status::Aborted("stopping");
    // The round: round 0's when it was just taken, else a new one.
    std::optional<BootstrapClient::Round> round = std::move(first_round_);
    first_round_.reset();
    // The test hook's pause between two rounds: no snapshot open on the primary (its DDL is not
    // held up by one), some chunks loaded.
    if (!round && !PauseForTest("copying")) return Status::Aborted("stopping");
    if (!round) {
      Result<BootstrapClient::Round> next =
          client->BeginRound(settings.readers, /*definitions=*/false);
      if (!next.ok()) return next.status().WithContext("bootstrap: begin a round on the primary");
      round = std::move(*next);
    }
    const auto round_began = std::chrono::steady_clock::now();
    Update([&](NodeStatus::Bootstrap& b) {
      b.round = round->round;
      b.lock_ms = std::max(b.lock_ms, round->lock_ms);
    });

    // The tables of the round: the primary's at its point, against the recorded progress.
    Result<std::unique_ptr<MysqlSession>> session =
        OpenSession(MysqlOptionsOf(options_.config.mysql));
    if (!session.ok()) return session.status();
    ProgressStore store(**session, options_.channel);
    Result<std::vector<TableProgress>> progress = store.ReadTables();
    if (!progress.ok()) return progress.status();
    std::map<std::string, TableProgress> recorded;
    for (TableProgress& p : *progress) {
      recorded[TableKey(p.db, p.table)] = std::move(p);
    }
    // A reference cycle is loaded within one round. One whose round was cut short (the daemon
    // or this node's server killed: a chunk of it committed, or a member complete, while
    // another member is not) holds rows of two points with a lenient window between them, in
    // which a change needing a row of the part not loaded yet was skipped (a parent's delete,
    // whose cascade the binlog does not carry): all of it starts over.
    {
      std::vector<std::string> keys;
      std::map<std::string, std::vector<std::string>> refs;
      for (const pb::BootstrapTable& t : round->tables) {
        const std::string key = TableKey(t.name().db(), t.name().table());
        keys.push_back(key);
        for (const pb::TableName& ref : t.references()) {
          refs[key].push_back(TableKey(ref.db(), ref.table()));
        }
      }
      std::map<int, std::vector<std::string>> cycles;
      for (const auto& [key, id] : Components(keys, refs)) cycles[id].push_back(key);
      for (const auto& [id, group] : cycles) {
        const std::vector<std::string>& first_refs = refs[group.front()];
        if (group.size() == 1 &&
            std::find(first_refs.begin(), first_refs.end(), group.front()) == first_refs.end()) {
          continue;
        }
        bool complete = true, begun = false;
        for (const std::string& key : group) {
          auto it = recorded.find(key);
          const bool done = it != recorded.end() && it->second.done;
          complete = complete && done;
          begun = begun || done || (it != recorded.end() && it->second.after_key.has_value());
        }
        if (complete || !begun) continue;
        for (const std::string& key : group) {
          auto it = recorded.find(key);
          if (it == recorded.end()) continue;
          spdlog::info(
              "bootstrap: {} is in a reference cycle whose round was cut short: it is copied "
              "again from its start",
              key);
          RS_RETURN_IF_ERROR(store.ResetTable(it->second.db, it->second.table));
          it->second.done = false;
          it->second.after_key.reset();
        }
      }
    }
    std::vector<TableWork> work;
    std::map<std::string, std::vector<std::string>> references;
    std::vector<std::string> pending;
    uint64_t rows_estimated = 0, bytes_estimated = 0, rows_done = 0, bytes_done = 0;
    for (const pb::BootstrapTable& t : round->tables) {
      const std::string key = TableKey(t.name().db(), t.name().table());
      auto it = recorded.find(key);
      if (it == recorded.end()) {
        // A table that came into the set after round 0 (created, renamed in): copied whole.
        RS_RETURN_IF_ERROR(store.AddTable(t.name().db(), t.name().table()));
        TableProgress added;
        added.db = t.name().db();
        added.table = t.name().table();
        it = recorded.emplace(key, std::move(added)).first;
      }
      rows_estimated += t.estimated_rows();
      bytes_estimated += t.estimated_bytes();
      rows_done += it->second.rows;
      bytes_done += it->second.bytes;
      if (it->second.done) continue;
      TableWork& w = work.emplace_back();
      w.db = t.name().db();
      w.table = t.name().table();
      w.key_columns.assign(t.key_columns().begin(), t.key_columns().end());
      w.after = it->second.after_key;
      for (const pb::TableName& ref : t.references()) {
        references[key].push_back(TableKey(ref.db(), ref.table()));
      }
      pending.push_back(key);
    }
    // Tables recorded, not complete, and missing from the round's tables: dropped or renamed
    // away (by the stream, at or before the round's point), or caught by the primary's listing
    // in the middle of a DDL (an ALTER ... ALGORITHM=COPY renames its new table in). Decided
    // below, once the applier holds at the point.
    std::vector<const TableProgress*> missing;
    for (const auto& [key, p] : recorded) {
      bool present = false;
      for (const pb::BootstrapTable& t : round->tables) {
        present = present || TableKey(t.name().db(), t.name().table()) == key;
      }
      if (!present && !p.done) missing.push_back(&p);
    }
    if (first_round) copy_bytes_at_start_ = bytes_done;
    first_round = false;
    Update([&](NodeStatus::Bootstrap& b) {
      b.tables_total = round->tables.size();
      b.tables_done = round->tables.size() - work.size();
      b.rows_estimated = std::max(rows_estimated, rows_done);
      b.bytes_estimated = std::max(bytes_estimated, bytes_done);
      b.rows_done = rows_done;
      b.bytes_done = bytes_done;
    });
    if (work.empty() && missing.empty()) {
      (void)client->EndRound(round->round);
      return Status::Ok();
    }

    // Reference cycles go whole within one round; other tables wait for the tables they
    // reference.
    std::map<std::string, int> component = Components(pending, references);
    std::map<int, std::vector<std::string>> members;
    for (const auto& [key, id] : component) members[id].push_back(key);
    for (TableWork& w : work) {
      const std::string key = TableKey(w.db, w.table);
      const std::vector<std::string>& same = members[component[key]];
      bool self = false;
      for (const std::string& ref : references[key]) {
        if (ref == key) self = true;
        if (component.count(ref) && component[ref] != component[key]) w.parents.push_back(ref);
      }
      if (same.size() > 1 || self) w.group = same;
    }

    // The applier to exactly the round's point: before the first journal entry at or after it
    // (the same as before the first transaction beginning there, and exact also when the
    // transactions before it were of other databases).
    Update([&](NodeStatus::Bootstrap& b) {
      b.error = fmt::format("waiting for the applier to reach round {}'s point {}", round->round,
                            round->point.ToString());
    });
    RS_RETURN_IF_ERROR(HoldAt(round->journal_seq));
    Update([](NodeStatus::Bootstrap& b) { b.error.clear(); });

    // A missing table that is not here at the point either is gone: nothing is left to copy of
    // it. One that is here (the listing caught a DDL in the middle, or it went after the point)
    // makes the round's tables unusable: were it a parent, its children would seem free to load.
    bool listing_usable = true;
    for (const TableProgress* p : missing) {
      Result<std::vector<SqlSession::Row>> here =
          (*session)->Query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = " +
                                QuoteString(p->db) + " AND TABLE_NAME = " + QuoteString(p->table),
                            "bootstrap: look for " + TableKey(p->db, p->table));
      if (!here.ok()) return here.status();
      if ((*here)[0][0].value_or("0") == "0") {
        RS_RETURN_IF_ERROR(store.AdvanceTable(p->db, p->table, {}, /*done=*/true, 0, 0));
        continue;
      }
      spdlog::info(
          "bootstrap: {} is missing from round {}'s tables on the primary but is here at the "
          "round's point: a new round is begun",
          TableKey(p->db, p->table), round->round);
      listing_usable = false;
    }
    if (!listing_usable || work.empty()) {
      (void)client->EndRound(round->round);
      continue;
    }

    Status round_status = CopyRound(*round, &work, chunk_bytes, round_began);
    (void)client->EndRound(round->round);
    if (!round_status.ok()) return round_status;
  }
}

Status Bootstrapper::CopyRound(const BootstrapClient::Round& round, std::vector<TableWork>* work,
                               uint64_t chunk_bytes, std::chrono::steady_clock::time_point began) {
  const auto deadline = began + std::chrono::seconds(options_.config.bootstrap.snapshot_seconds);
  std::mutex mu;  // guards *work and first_error
  Status first_error;
  auto done_keys = [&]() {
    std::set<std::string> done;
    for (const TableWork& w : *work) {
      if (w.done) done.insert(TableKey(w.db, w.table));
    }
    return done;
  };
  // The next table a reader may take: not done, not taken, not set aside this round, every
  // table it references complete; nullptr when none (now).
  // Reference cycles begun this round (their first table's key): they are finished in it,
  // whatever the time.
  std::set<std::string> open_groups;
  auto next = [&]() -> TableWork* {
    std::lock_guard<std::mutex> lock(mu);
    if (!first_error.ok()) return nullptr;
    const bool late = std::chrono::steady_clock::now() >= deadline;
    std::set<std::string> done = done_keys();
    for (TableWork& w : *work) {
      if (w.done || w.taken || w.skip_round) continue;
      if (late && (w.group.empty() || !open_groups.count(w.group.front()))) continue;
      bool ready = true;
      for (const std::string& parent : w.parents) ready = ready && done.count(parent) > 0;
      if (!ready) continue;
      w.taken = true;
      if (!w.group.empty()) open_groups.insert(w.group.front());
      return &w;
    }
    return nullptr;
  };
  auto reader = [&](uint32_t index) {
    MysqlThreadScope scope;
    Result<std::unique_ptr<BootstrapClient>> client = options_.connect();
    Result<std::unique_ptr<ChunkLoader>> loader =
        client.ok() ? ChunkLoader::Open(MysqlOptionsOf(options_.config.mysql))
                    : Result<std::unique_ptr<ChunkLoader>>(client.status());
    if (!loader.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.ok()) first_error = loader.status();
      return;
    }
    while (TableWork* w = next()) {
      Status st = CopyTable(**client, **loader, round, index, w, chunk_bytes, deadline);
      // Its rows are in: its deferred indexes are built now, while the other readers load.
      if (st.ok() && w->done) {
        st = DeferredIndexes::Build((*loader)->connection(), options_.channel, {w->db}, w->table);
      }
      std::lock_guard<std::mutex> lock(mu);
      w->taken = false;
      if (st.ok()) continue;
      // The table changed under the round's snapshot (a DDL: the primary answers `retry`, or an
      // instant ALTER shows its new columns through the old snapshot and the loader refuses the
      // chunk): read it again next round. Anything else, the primary or this node's server
      // away included, ends the round.
      if (st.code() == Status::Code::kUnavailable ||
          st.code() == Status::Code::kFailedPrecondition) {
        spdlog::info("bootstrap: {}: {}; it is read again in the next round",
                     TableKey(w->db, w->table), st.message());
        w->skip_round = true;
        continue;
      }
      if (first_error.ok()) first_error = st;
    }
  };
  std::vector<std::thread> threads;
  const uint32_t readers = std::max<uint32_t>(1, options_.config.bootstrap.readers);
  for (uint32_t i = 0; i < readers; ++i) threads.emplace_back(reader, i);
  for (std::thread& t : threads) t.join();
  // A cycle left unfinished (an error, a table set aside) would hold rows of two points with
  // a window between them: all its tables start over in the next round.
  for (const std::string& group : open_groups) {
    std::vector<TableWork*> members;
    bool complete = true;
    for (TableWork& w : *work) {
      if (w.group.empty() || w.group.front() != group) continue;
      members.push_back(&w);
      complete = complete && w.done;
    }
    if (complete) continue;
    Result<std::unique_ptr<MysqlSession>> session =
        OpenSession(MysqlOptionsOf(options_.config.mysql));
    if (!session.ok()) return session.status();
    for (TableWork* w : members) {
      spdlog::info(
          "bootstrap: {} is in a reference cycle that did not finish in round {}: it is "
          "copied again from its start",
          TableKey(w->db, w->table), round.round);
      RS_RETURN_IF_ERROR(ProgressStore(**session, options_.channel).ResetTable(w->db, w->table));
      w->done = false;
      w->after.reset();
    }
  }
  return first_error;
}

Status Bootstrapper::CopyTable(BootstrapClient& client, ChunkLoader& loader,
                               const BootstrapClient::Round& round, uint32_t reader, TableWork* w,
                               uint64_t chunk_bytes,
                               std::chrono::steady_clock::time_point deadline) {
  const std::string name = TableKey(w->db, w->table);
  const auto round_began =
      deadline - std::chrono::seconds(options_.config.bootstrap.snapshot_seconds);
  auto account = [&](uint64_t rows, uint64_t bytes) {
    const auto now = std::chrono::steady_clock::now();
    Update([&](NodeStatus::Bootstrap& b) {
      b.rows_done += rows;
      b.bytes_done += bytes;
      b.rows_estimated = std::max(b.rows_estimated, b.rows_done);
      b.bytes_estimated = std::max(b.bytes_estimated, b.bytes_done);
      // The rate since the copy (re)started in this daemon, and what it leaves.
      const double seconds = std::chrono::duration<double>(now - copy_started_).count();
      if (seconds > 0.5) b.bytes_per_second = (b.bytes_done - copy_bytes_at_start_) / seconds;
      if (b.bytes_per_second > 0) {
        b.eta_seconds =
            static_cast<int64_t>((b.bytes_estimated - b.bytes_done) / b.bytes_per_second);
      }
      b.snapshot_age_seconds = std::chrono::duration<double>(now - round_began).count();
    });
  };
  // Resync: the secondary's side of the comparison (its stored columns and key at P_r: the
  // applier holds, so they stay as read).
  std::optional<ResyncSide> side;
  if (resync_) {
    Result<ResyncSide> read = ReadResyncSide(loader.connection(), w->db, w->table);
    if (!read.ok()) return read.status();
    // A table without rows here (created at round 0) is copied as in a fresh bootstrap.
    if (!read->empty) side = std::move(*read);
  }
  if (w->key_columns.empty() && side) {
    Result<bool> equal =
        CompareChunk(client, loader, round, reader, *w, *side, chunk_bytes, nullptr);
    if (!equal.ok()) return equal.status();
    if (*equal) {
      w->done = true;
      spdlog::info("bootstrap: {} found equal (no key: compared whole)", name);
      return Status::Ok();
    }
  }
  if (w->key_columns.empty()) {
    // One chunk in pieces, all in one transaction on the secondary.
    RS_RETURN_IF_ERROR(loader.BeginWholeTable(options_.channel, w->db, w->table));
    bool first = true;
    uint64_t rows = 0, bytes = 0;
    for (;;) {
      Result<BootstrapClient::Chunk> piece =
          client.ReadChunk(round.round, reader, w->db, w->table, {}, chunk_bytes, !first);
      if (!piece.ok()) {
        // The loader takes its next table (this reader goes on with the round) clean.
        loader.AbandonWholeTable();
        return piece.status();
      }
      first = false;
      ChunkLoad load;
      load.channel = options_.channel;
      load.db = w->db;
      load.table = w->table;
      load.columns = piece->columns;
      load.text = piece->text;
      load.rows = piece->rows;
      load.bytes = piece->raw_bytes;
      RS_RETURN_IF_ERROR(loader.LoadPiece(load));
      rows += piece->rows;
      bytes += piece->raw_bytes;
      if (!piece->more_pieces) break;
    }
    RS_RETURN_IF_ERROR(loader.FinishWholeTable());
    w->done = true;
    account(rows, bytes);
    Update([](NodeStatus::Bootstrap& b) { ++b.chunks_loaded; });
    if (side) spdlog::info("bootstrap: {} differed (no key): copied whole", name);
    return Status::Ok();
  }
  const bool whole_round = !w->group.empty();
  for (;;) {
    if (stop_) return Status::Aborted("stopping");
    if (!whole_round && std::chrono::steady_clock::now() >= deadline) return Status::Ok();
    const std::vector<std::string> after = w->after.value_or(std::vector<std::string>{});
    Result<BootstrapClient::Chunk> chunk = Status::Internal("no chunk");
    if (side) {
      // Resync: the range's summaries compared; only a range that differs is read (the same
      // range: its upper bound is the summary's).
      BootstrapClient::Summary summary;
      Result<bool> equal =
          CompareChunk(client, loader, round, reader, *w, *side, chunk_bytes, &summary);
      if (!equal.ok()) return equal.status();
      if (*equal) {
        if (summary.table_done) {
          w->done = true;
          spdlog::info("bootstrap: {} compared", name);
          return Status::Ok();
        }
        w->after = summary.last_key;
        continue;
      }
      chunk = client.ReadRange(round.round, reader, w->db, w->table, after,
                               summary.table_done ? std::vector<std::string>{} : summary.last_key);
      if (chunk.ok() && !summary.table_done) {
        chunk->table_done = false;
        chunk->last_key = summary.last_key;
      }
    } else {
      chunk = client.ReadChunk(round.round, reader, w->db, w->table, after, chunk_bytes, false);
    }
    if (!chunk.ok()) return chunk.status();
    ChunkLoad load;
    load.channel = options_.channel;
    load.db = w->db;
    load.table = w->table;
    load.key_columns = w->key_columns;
    load.lower = after;
    if (!chunk->table_done) load.upper = chunk->last_key;
    load.columns = chunk->columns;
    load.text = chunk->text;
    load.rows = chunk->rows;
    load.bytes = chunk->raw_bytes;
    load.table_done = chunk->table_done;
    RS_RETURN_IF_ERROR(loader.LoadChunk(load));
    account(chunk->rows, chunk->raw_bytes);
    Update([](NodeStatus::Bootstrap& b) { ++b.chunks_loaded; });
    if (chunk->table_done) {
      w->done = true;
      spdlog::info("bootstrap: {} copied", name);
      return Status::Ok();
    }
    w->after = chunk->last_key;
  }
}

Status Bootstrapper::ResyncDefinitions(SqlSession& db, const BootstrapClient::Round& r0) {
  Result<std::vector<std::string>> dbs = ReplicatedDatabases(db, options_.config.mysql.databases);
  if (!dbs.ok()) return dbs.status();
  TableDefinitions secondary, primary;
  for (const std::string& schema : *dbs) {
    Result<std::vector<SqlSession::Row>> tables = db.Query(
        "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE "
        "TABLE_SCHEMA = " +
            QuoteString(schema) +
            " AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'SEQUENCE')",
        "bootstrap: list the secondary's tables");
    if (!tables.ok()) return tables.status();
    for (const SqlSession::Row& row : *tables) {
      const std::string name = row[0].value_or("");
      const bool sequence = row[1].value_or("") == "SEQUENCE";
      Result<std::vector<SqlSession::Row>> create =
          db.Query(std::string(sequence ? "SHOW CREATE SEQUENCE " : "SHOW CREATE TABLE ") +
                       QualifiedName(schema, name),
                   "bootstrap: read the secondary's definition of " + TableKey(schema, name));
      if (!create.ok()) return create.status();
      secondary[{schema, name}] =
          !create->empty() && create->front().size() > 1 ? create->front()[1].value_or("") : "";
    }
  }
  for (const pb::BootstrapTable& t : r0.tables) {
    primary[{t.name().db(), t.name().table()}] = t.create_sql();
  }
  std::vector<std::string> primary_databases;
  for (const std::string& create : r0.databases) {
    if (std::optional<std::string> name = DatabaseOfCreate(create)) {
      primary_databases.push_back(*name);
    }
  }
  const ResyncPlan plan = PlanResync(primary, primary_databases, secondary, *dbs);
  for (const auto& [schema, name] : plan.drop) {
    spdlog::warn("bootstrap --resync: {} is dropped: the primary has no such table",
                 TableKey(schema, name));
    RS_RETURN_IF_ERROR(db.Execute("DROP TABLE IF EXISTS " + QualifiedName(schema, name),
                                  "bootstrap: drop " + TableKey(schema, name)));
  }
  for (const std::string& schema : plan.drop_databases) {
    spdlog::warn("bootstrap --resync: database {} is dropped: the primary has no such database",
                 schema);
    RS_RETURN_IF_ERROR(db.Execute("DROP DATABASE IF EXISTS " + QuoteIdentifier(schema),
                                  "bootstrap: drop database " + schema));
  }
  for (const auto& [schema, name] : plan.recreate) {
    spdlog::warn(
        "bootstrap --resync: {} is defined otherwise than on the primary: it is dropped, "
        "created again and copied whole",
        TableKey(schema, name));
    RS_RETURN_IF_ERROR(db.Execute("DROP TABLE IF EXISTS " + QualifiedName(schema, name),
                                  "bootstrap: drop " + TableKey(schema, name)));
  }
  // Triggers would fire for the chunks' LOAD DATA (and write rows of their own into kept
  // tables): the schema objects go, as on a fresh secondary, and the primary's are created at
  // the end (CopyObjects), so that none but the primary's are left.
  uint64_t objects = 0;
  for (const char* query :
       {"SELECT TRIGGER_SCHEMA, TRIGGER_NAME, 'TRIGGER' FROM information_schema.TRIGGERS",
        "SELECT EVENT_SCHEMA, EVENT_NAME, 'EVENT' FROM information_schema.EVENTS",
        "SELECT TABLE_SCHEMA, TABLE_NAME, 'VIEW' FROM information_schema.VIEWS",
        "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
        "ORDER BY ROUTINE_TYPE = 'PACKAGE'"}) {
    Result<std::vector<SqlSession::Row>> rows =
        db.Query(query, "bootstrap: list the secondary's schema objects");
    if (!rows.ok()) return rows.status();
    for (const SqlSession::Row& row : *rows) {
      const std::string schema = row[0].value_or("");
      if (std::find(dbs->begin(), dbs->end(), schema) == dbs->end()) continue;
      const std::string kind = row[2].value_or("");
      RS_RETURN_IF_ERROR(db.Execute(
          fmt::format("DROP {} IF EXISTS {}", kind, QualifiedName(schema, row[1].value_or(""))),
          "bootstrap: drop the secondary's " + kind + " " + TableKey(schema, row[1].value_or(""))));
      ++objects;
    }
  }
  spdlog::info(
      "bootstrap --resync: {} tables kept (compared chunk by chunk), {} created, {} created "
      "again, {} dropped; {} triggers, events, views and routines dropped (the primary's are "
      "created at the end)",
      plan.keep.size(), plan.create.size(), plan.recreate.size(), plan.drop.size(), objects);
  return Status::Ok();
}

Result<Bootstrapper::ResyncSide> Bootstrapper::ReadResyncSide(SqlSession& session,
                                                              const std::string& db,
                                                              const std::string& table) {
  ResyncSide side;
  Result<std::vector<bootstrap::Column>> columns = bootstrap::ReadColumns(session, db, table);
  if (!columns.ok()) {
    // A table missing here has nothing to compare: it is copied (and fails as it would).
    if (columns.status().code() == Status::Code::kNotFound) {
      side.empty = true;
      return side;
    }
    return columns.status();
  }
  side.columns = bootstrap::StoredColumns(*columns);
  Result<verify::UsableKey> key = verify::ReadUsableKey(session, db, table);
  if (!key.ok()) return key.status();
  side.key_columns = key->columns;
  side.key_name = key->name;
  Result<std::vector<SqlSession::Row>> any =
      session.Query("SELECT EXISTS (SELECT 1 FROM " + QualifiedName(db, table) + ")",
                    "bootstrap: look for rows in " + TableKey(db, table));
  if (!any.ok()) return any.status();
  side.empty = !any->empty() && !any->front().empty() && any->front()[0].value_or("0") == "0";
  return side;
}

Result<bool> Bootstrapper::CompareChunk(BootstrapClient& client, ChunkLoader& loader,
                                        const BootstrapClient::Round& round, uint32_t reader,
                                        const TableWork& w, const ResyncSide& side,
                                        uint64_t chunk_bytes, BootstrapClient::Summary* out) {
  const std::vector<std::string> after = w.after.value_or(std::vector<std::string>{});
  Result<BootstrapClient::Summary> summary =
      client.SummarizeChunk(round.round, reader, w.db, w.table, after, chunk_bytes);
  if (!summary.ok()) return summary.status();
  if (out != nullptr) *out = *summary;
  const bool keyed = !w.key_columns.empty();
  const bool done = !keyed || summary->table_done;
  const std::vector<std::string> upper = done ? std::vector<std::string>{} : summary->last_key;
  // Comparable: the same stored columns and key on both sides, summaries the servers computed
  // whole.
  if (!summary->exact || side.columns.empty() || side.columns != summary->columns ||
      side.key_columns != w.key_columns) {
    return false;
  }
  Result<bootstrap::ChunkSummary> mine =
      bootstrap::SummarizeChunk(loader.connection(), w.db, w.table, side.columns, w.key_columns,
                                side.key_name, keyed ? after : std::vector<std::string>{}, upper);
  if (!mine.ok()) return mine.status();
  if (!mine->exact || mine->rows != summary->rows || mine->sha256 != summary->sha256) {
    return false;
  }
  RS_RETURN_IF_ERROR(loader.connection().Execute(
      ProgressStore::AdvanceTableSql(options_.channel, w.db, w.table, upper, done, summary->rows,
                                     0),
      "bootstrap: record an equal chunk of " + TableKey(w.db, w.table)));
  const uint64_t rows = summary->rows;
  Update([&](NodeStatus::Bootstrap& b) {
    b.rows_done += rows;
    b.rows_equal += rows;
    ++b.chunks_equal;
    b.rows_estimated = std::max(b.rows_estimated, b.rows_done);
  });
  return true;
}

Status Bootstrapper::CopyObjects() {
  Result<std::unique_ptr<BootstrapClient>> client = options_.connect();
  if (!client.ok()) return client.status();
  std::vector<std::string> exclude = options_.config.bootstrap.exclude_users;
  exclude.push_back(options_.config.mysql.user);
  for (int attempt = 1;; ++attempt) {
    if (stop_) return Status::Aborted("stopping");
    // F: the primary's position now; the applier applies exactly up to it and holds.
    // A round gives the point with its place in the journal, so that the applier holds
    // exactly there also when the primary is idle (its snapshot is not used).
    // Nothing is applied while F is taken (the applier catches up a backlog until then): every
    // transaction applied is before it, and the applier is held exactly there.
    options_.stream.set_hold(verify::StopBefore::All());
    Result<BootstrapClient::Round> round = (*client)->BeginRound(1, /*definitions=*/false);
    if (!round.ok()) return round.status().WithContext("bootstrap: the primary's point F");
    (void)(*client)->EndRound(round->round);
    const BinlogPosition* point = &round->point;
    RS_RETURN_IF_ERROR(HoldAt(round->journal_seq));
    RS_RETURN_IF_ERROR(BuildDeferredIndexes());
    Result<std::vector<pb::BootstrapObject>> objects =
        (*client)->ReadObjects(*point, options_.config.bootstrap.users, exclude);
    if (!objects.ok()) {
      if (objects.status().retryable() && attempt < kRoundTries) continue;  // a DDL came: again
      return objects.status().WithContext("bootstrap: read the schema objects on the primary");
    }
    Result<std::unique_ptr<MysqlSession>> session =
        OpenSession(MysqlOptionsOf(options_.config.mysql));
    if (!session.ok()) return session.status();
    RS_RETURN_IF_ERROR(CreateObjects(**session, *objects));
    // Every table holds the primary's rows at F: strict from here on. The applier first, so that
    // a reconnect of its own cannot set IDEMPOTENT again after the STRICT below.
    options_.stream.set_lenient(false);
    RS_RETURN_IF_ERROR((*session)->Execute("SET GLOBAL slave_exec_mode = 'STRICT'",
                                           "bootstrap: close the lenient window"));
    spdlog::info(
        "bootstrap: {} views, routines, triggers, events and users created at {}; the "
        "applier is strict again from there",
        objects->size(), point->ToString());
    return Status::Ok();
  }
}

// The indexes of tables whose copy did not build them (set aside after an error, or copied
// before a restart).
Status Bootstrapper::BuildDeferredIndexes() {
  Result<std::unique_ptr<MysqlSession>> session =
      OpenSession(MysqlOptionsOf(options_.config.mysql));
  if (!session.ok()) return session.status();
  return DeferredIndexes::Build(**session, options_.channel, {});
}

// Objects may depend on each other (a view on a view, a trigger calling a procedure): each is
// made once what it needs exists, going round while any pass makes progress.
Status Bootstrapper::CreateObjects(SqlSession& db, const std::vector<pb::BootstrapObject>& all) {
  std::vector<const pb::BootstrapObject*> left;
  for (const pb::BootstrapObject& o : all) left.push_back(&o);
  while (!left.empty()) {
    std::vector<const pb::BootstrapObject*> failed;
    Status last;
    for (const pb::BootstrapObject* o : left) {
      const std::string what = fmt::format("bootstrap: create {} {}{}{}", o->kind(), o->db(),
                                           o->db().empty() ? "" : ".", o->name());
      Status st = Status::Ok();
      if (!o->db().empty()) st = db.Execute("USE " + QuoteIdentifier(o->db()), what);
      if (st.ok() && o->kind() == "USER") {
        st = db.Execute("DROP USER IF EXISTS " + o->name(), what);
      } else if (st.ok()) {
        st = db.Execute(
            fmt::format("DROP {} IF EXISTS {}", o->kind(), QualifiedName(o->db(), o->name())),
            what);
      }
      for (const std::string& sql : o->sql()) {
        if (!st.ok()) break;
        st = db.Execute(sql, what);
      }
      if (st.ok() && o->kind() == "EVENT") {
        // Its rows arrive through the stream: the secondary's scheduler must never run it. Only
        // an enabled one is made SLAVESIDE_DISABLED (one the primary keeps disabled stays so): a
        // promotion enables exactly those (schemas/failover.md "Events").
        Result<std::vector<SqlSession::Row>> status = db.Query(
            fmt::format("SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {} "
                        "AND EVENT_NAME = {}",
                        QuoteString(o->db()), QuoteString(o->name())),
            what);
        if (!status.ok()) {
          st = status.status();
        } else if (!status->empty() && status->front()[0].value_or("") == "ENABLED") {
          st = db.Execute("ALTER EVENT " + QualifiedName(o->db(), o->name()) + " DISABLE ON SLAVE",
                          what);
        }
      }
      if (!st.ok()) {
        if (st.code() == Status::Code::kNetwork) return st;
        failed.push_back(o);
        last = st;
      }
    }
    if (failed.size() == left.size()) return last;
    left = std::move(failed);
  }
  return Status::Ok();
}

Status Bootstrapper::CopyFiles() {
  if (!options_.copy_files) return Status::Ok();
  return options_.copy_files([this](uint64_t done, uint64_t total) {
    Update([&](NodeStatus::Bootstrap& b) {
      b.files_done = done;
      b.files_total = total;
    });
  });
}

}  // namespace replsync::apply
