#include "capture/capture_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <optional>
#include <utility>

#include "capture/binlog/file_binlog_source.h"
#include "capture/binlog/mariadb_binlog_source.h"
#include "capture/binlog/mysql_connection.h"
#include "replsync.pb.h"
#include "sync/crc32.h"
#include "sync/text.h"

namespace replsync::capture {

namespace {

constexpr char kMetaFile[] = "capture.file";
constexpr char kMetaOffset[] = "capture.offset";
constexpr char kMetaGtid[] = "capture.gtid";
constexpr char kMetaLastCompleteSeq[] = "capture.last_complete_seq";

constexpr uint8_t kStmtEndFlag = 0x01;

void StoreLe32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::string Shorten(std::string_view sql, size_t max = 200) {
  std::string out(sql.substr(0, max));
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (sql.size() > max) out += "...";
  return out;
}

void FillSession(const QueryEvent& query, uint32_t timestamp, pb::SessionVars* session) {
  const QueryStatusVars& v = query.status;
  if (v.sql_mode) session->set_sql_mode(*v.sql_mode);
  if (v.flags2) session->set_flags2(*v.flags2);
  if (v.charset_client) session->set_charset_client(*v.charset_client);
  if (v.collation_connection) session->set_collation_connection(*v.collation_connection);
  if (v.collation_server) session->set_collation_server(*v.collation_server);
  if (v.collation_database) session->set_collation_database(*v.collation_database);
  if (v.time_zone) session->set_time_zone(*v.time_zone);
  if (v.lc_time_names) session->set_lc_time_names(*v.lc_time_names);
  if (v.auto_increment_increment) {
    session->set_auto_increment_increment(*v.auto_increment_increment);
  }
  if (v.auto_increment_offset) session->set_auto_increment_offset(*v.auto_increment_offset);
  if (v.default_collation_for_utf8mb4) {
    session->set_default_collation_for_utf8mb4(*v.default_collation_for_utf8mb4);
  }
  if (v.explicit_defaults_for_timestamp) {
    session->set_explicit_defaults_for_timestamp(*v.explicit_defaults_for_timestamp);
  }
  session->set_timestamp(timestamp);
  if (v.microseconds) session->set_microseconds(*v.microseconds);
}

}  // namespace

const char* CaptureStateName(CaptureState state) {
  switch (state) {
    case CaptureState::kStopped:
      return "stopped";
    case CaptureState::kConnecting:
      return "connecting";
    case CaptureState::kRunning:
      return "running";
    case CaptureState::kJournalFull:
      return "journal full";
    case CaptureState::kFinished:
      return "finished";
    case CaptureState::kFailed:
      return "failed";
  }
  return "unknown";
}

// ---- MariadbSourceFactory ---------------------------------------------------------------------

// The open source, registered with the factory so that Interrupt can reach it.
class MariadbSourceFactory::Source : public BinlogSource {
 public:
  Source(MariadbSourceFactory* factory, std::unique_ptr<MariadbBinlogSource> source)
      : factory_(factory), source_(std::move(source)) {}
  ~Source() override {
    std::lock_guard<std::mutex> lock(factory_->mu_);
    if (factory_->current_ == source_.get()) factory_->current_ = nullptr;
  }
  Result<bool> Next(RawEvent* event) override { return source_->Next(event); }
  std::string Describe() const override { return source_->Describe(); }

 private:
  MariadbSourceFactory* factory_;
  std::unique_ptr<MariadbBinlogSource> source_;
};

MariadbSourceFactory::MariadbSourceFactory(const NodeConfig& config) : config_(config.mysql) {}
MariadbSourceFactory::~MariadbSourceFactory() = default;

std::string MariadbSourceFactory::Describe() const {
  return fmt::format("server {}:{}", config_.host, config_.port);
}

Result<BinlogPosition> MariadbSourceFactory::CurrentPosition() {
  ConnectOptions options;
  options.host = config_.host;
  options.port = config_.port;
  options.socket = config_.socket;
  options.user = config_.user;
  options.password = config_.password;
  options.timeout = std::chrono::seconds(config_.connect_timeout_s);
  RS_ASSIGN_OR_RETURN(std::unique_ptr<MysqlConnection> conn, MysqlConnection::Open(options));
  RS_RETURN_IF_ERROR(CheckBinlogSettings(*conn));
  RS_ASSIGN_OR_RETURN(std::vector<MysqlConnection::Row> rows, conn->Query("SHOW MASTER STATUS"));
  if (rows.empty() || rows[0].size() < 2 || !rows[0][0] || !rows[0][1]) {
    return Status::InvalidArgument(fmt::format(
        "SHOW MASTER STATUS on {} returned no position: binary logging is off; set log_bin in "
        "the server's configuration and restart it",
        Describe()));
  }
  uint64_t offset = 0;
  if (!ParseU64(*rows[0][1], &offset)) {
    return Status::Server(
        fmt::format("SHOW MASTER STATUS on {}: bad position '{}'", Describe(), *rows[0][1]));
  }
  return BinlogPosition{*rows[0][0], offset};
}

Result<std::unique_ptr<BinlogSource>> MariadbSourceFactory::Open(const BinlogPosition& start) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (interrupted_) return Status::Aborted(Describe() + ": stopped");
  }
  ConnectOptions connect;
  connect.host = config_.host;
  connect.port = config_.port;
  connect.socket = config_.socket;
  connect.user = config_.user;
  connect.password = config_.password;
  connect.timeout = std::chrono::seconds(config_.connect_timeout_s);
  {
    RS_ASSIGN_OR_RETURN(std::unique_ptr<MysqlConnection> conn, MysqlConnection::Open(connect));
    RS_RETURN_IF_ERROR(CheckBinlogSettings(*conn));
  }
  MariadbSourceOptions options;
  options.host = config_.host;
  options.port = config_.port;
  options.socket = config_.socket;
  options.user = config_.user;
  options.password = config_.password;
  options.replica_server_id = config_.replica_server_id;
  options.start = start;
  options.follow = true;
  options.heartbeat = std::chrono::milliseconds(config_.heartbeat_ms);
  options.connect_timeout = std::chrono::seconds(config_.connect_timeout_s);
  RS_ASSIGN_OR_RETURN(std::unique_ptr<MariadbBinlogSource> source,
                      MariadbBinlogSource::Open(std::move(options)));
  std::lock_guard<std::mutex> lock(mu_);
  if (interrupted_) return Status::Aborted(Describe() + ": stopped");
  current_ = source.get();
  return std::unique_ptr<BinlogSource>(new Source(this, std::move(source)));
}

void MariadbSourceFactory::Interrupt() {
  std::lock_guard<std::mutex> lock(mu_);
  interrupted_ = true;
  if (current_ != nullptr) current_->Stop();
}

void MariadbSourceFactory::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  interrupted_ = false;
}

// ---- FileSourceFactory ------------------------------------------------------------------------

// Skips the events before the start offset in the first file, except FORMAT_DESCRIPTION.
class FileSourceFactory::Source : public BinlogSource {
 public:
  Source(std::unique_ptr<FileBinlogSource> files, BinlogPosition start)
      : files_(std::move(files)), start_(std::move(start)) {}
  Result<bool> Next(RawEvent* event) override {
    while (true) {
      RS_ASSIGN_OR_RETURN(bool more, files_->Next(event));
      if (!more) return false;
      if (skipping_ && (event->file != start_.file || event->offset >= start_.offset)) {
        skipping_ = false;
      }
      if (!skipping_) return true;
      if (event->data.size() > 4 && static_cast<uint8_t>(event->data[4]) ==
                                        static_cast<uint8_t>(EventType::kFormatDescription)) {
        return true;
      }
    }
  }
  std::string Describe() const override { return files_->Describe(); }

 private:
  std::unique_ptr<FileBinlogSource> files_;
  BinlogPosition start_;
  bool skipping_ = true;
};

FileSourceFactory::FileSourceFactory(std::vector<std::string> paths) : paths_(std::move(paths)) {}

std::string FileSourceFactory::Describe() const {
  if (paths_.empty()) return "no binlog files";
  return paths_.size() == 1 ? "file " + paths_[0]
                            : fmt::format("files {} .. {}", paths_.front(), paths_.back());
}

Result<BinlogPosition> FileSourceFactory::CurrentPosition() {
  if (paths_.empty()) return Status::InvalidArgument("file binlog source: no files");
  return BinlogPosition{std::filesystem::path(paths_[0]).filename().string(), 4};
}

Result<std::unique_ptr<BinlogSource>> FileSourceFactory::Open(const BinlogPosition& start) {
  size_t first = paths_.size();
  for (size_t i = 0; i < paths_.size(); ++i) {
    if (std::filesystem::path(paths_[i]).filename().string() == start.file) {
      first = i;
      break;
    }
  }
  if (first == paths_.size()) {
    return Status::NotFound(
        fmt::format("binlog file {} (capture position {}) is not among {}: it was purged or "
                    "never existed; re-bootstrap the secondary",
                    start.file, start.ToString(), Describe()));
  }
  std::vector<std::string> paths(paths_.begin() + static_cast<std::ptrdiff_t>(first), paths_.end());
  RS_ASSIGN_OR_RETURN(std::unique_ptr<FileBinlogSource> files,
                      FileBinlogSource::Open(std::move(paths)));
  return std::unique_ptr<BinlogSource>(new Source(std::move(files), start));
}

// ---- CaptureService ---------------------------------------------------------------------------

class CaptureService::Sink : public TransactionSink {
 public:
  explicit Sink(CaptureService* service) : service_(service) {}
  Status OnBegin(const TransactionInfo& txn) override { return service_->BeginTxn(txn); }
  Status OnRows(const TransactionInfo& txn, const Event& event, const RowsEvent& rows) override {
    return service_->AddRows(event, rows);
  }
  Status OnDdl(const TransactionInfo& txn, const Event& event, const DdlStatement& ddl) override {
    return service_->AddDdl(txn, event, ddl);
  }
  Status OnCommit(const TransactionInfo& txn) override { return service_->EndTxn(txn, false); }
  Status OnRollback(const TransactionInfo& txn) override { return service_->EndTxn(txn, true); }

 private:
  CaptureService* service_;
};

CaptureService::CaptureService(Journal* journal, BinlogSourceFactory* factory,
                               CaptureOptions options)
    : journal_(journal),
      factory_(factory),
      options_(std::move(options)),
      filter_(options_.databases) {}

CaptureService::~CaptureService() { Stop(); }

Status CaptureService::Start() {
  if (started_) return Status::Internal("capture service already started");
  RS_ASSIGN_OR_RETURN(std::optional<std::string> file, journal_->GetMeta(kMetaFile));
  RS_ASSIGN_OR_RETURN(std::optional<std::string> offset, journal_->GetMeta(kMetaOffset));
  RS_ASSIGN_OR_RETURN(std::optional<std::string> gtid, journal_->GetMeta(kMetaGtid));
  RS_ASSIGN_OR_RETURN(std::optional<std::string> complete, journal_->GetMeta(kMetaLastCompleteSeq));
  committed_ = BinlogPosition{};
  committed_gtid_.clear();
  if (file.has_value()) {
    uint64_t value = 0;
    if (!offset.has_value() || !ParseU64(*offset, &value)) {
      return Status::Corruption(fmt::format("journal {}: capture checkpoint {} has no valid offset",
                                            journal_->path(), *file));
    }
    committed_ = BinlogPosition{*file, value};
    committed_gtid_ = gtid.value_or("");
  }
  uint64_t last_complete = journal_->last_seq();
  if (complete.has_value() && !ParseU64(*complete, &last_complete)) {
    return Status::Corruption(
        fmt::format("journal {}: bad {} '{}'", journal_->path(), kMetaLastCompleteSeq, *complete));
  }
  if (last_complete > journal_->last_seq()) {
    return Status::Corruption(fmt::format(
        "journal {}: the capture checkpoint names sequence {} but the journal ends at {}",
        journal_->path(), last_complete, journal_->last_seq()));
  }
  if (journal_->last_seq() > last_complete) {
    spdlog::warn(
        "capture: removing journal entries {}..{}: parts of a transaction that was not complete "
        "when capture stopped; it is read again from {}",
        last_complete + 1, journal_->last_seq(),
        committed_.empty() ? std::string("the start") : committed_.ToString());
    RS_RETURN_IF_ERROR(journal_->TruncateAfter(last_complete));
    AfterJournalWrite("TruncateAfter");
  }
  last_complete_seq_ = last_complete;
  if (committed_.empty()) {
    spdlog::info(
        "capture: the journal {} has no checkpoint; starting at the current position of {}",
        journal_->path(), factory_->Describe());
  } else {
    spdlog::info("capture: resuming {} at {}{} (journal sequence {})", factory_->Describe(),
                 committed_.ToString(), committed_gtid_.empty() ? "" : ", GTID " + committed_gtid_,
                 last_complete);
  }
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    durable_ = Checkpoint{committed_, committed_gtid_};
    read_position_ = committed_;
    state_ = CaptureState::kConnecting;
    error_ = Status::Ok();
  }
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    ClearQueueLocked();
    writer_stop_ = false;
    writer_drained_ = false;
    writer_exit_ = false;
    writer_failed_ = false;
    txn_open_ = false;
    external_open_ = false;
    writer_running_ = true;
  }
  stop_ = false;
  factory_->Resume();
  started_ = true;
  writer_thread_ = std::thread([this] { WriterThread(); });
  capture_thread_ = std::thread([this] { CaptureThread(); });
  return Status::Ok();
}

void CaptureService::Stop() {
  if (!started_) return;
  stop_ = true;
  factory_->Interrupt();
  space_cv_.notify_all();
  queue_cv_.notify_all();
  if (capture_thread_.joinable()) capture_thread_.join();
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    writer_exit_ = true;
  }
  queue_cv_.notify_all();
  if (writer_thread_.joinable()) writer_thread_.join();
  started_ = false;
  std::lock_guard<std::mutex> lock(status_mu_);
  if (state_ != CaptureState::kFailed && state_ != CaptureState::kFinished) {
    state_ = CaptureState::kStopped;
  }
  spdlog::info("capture: stopped at {} (journal sequence {})", durable_.position.ToString(),
               last_complete_seq_.load());
}

Status CaptureService::Wait() {
  if (capture_thread_.joinable()) capture_thread_.join();
  {
    // The writer thread stays for retention until Stop; what the capture queued is written.
    std::unique_lock<std::mutex> lock(queue_mu_);
    space_cv_.wait(lock, [this] { return writer_drained_ || !writer_running_; });
  }
  std::lock_guard<std::mutex> lock(status_mu_);
  return error_;
}

CaptureStatus CaptureService::status() const {
  CaptureStatus s;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    s.state = state_;
    s.checkpoint = durable_.position;
    s.checkpoint_gtid = durable_.gtid;
    s.read_position = read_position_;
    s.last_error = error_.ok() ? std::string() : error_.ToString();
  }
  s.source = factory_->Describe();
  s.last_complete_seq = last_complete_seq_.load();
  s.transactions = transactions_.load();
  s.skipped_transactions = skipped_.load();
  s.rows = rows_.load();
  s.bytes = bytes_.load();
  s.journal_bytes = journal_->bytes();
  s.journal_max_bytes = options_.journal_max_bytes;
  s.journal_full = journal_->full();
  int64_t last = last_event_time_.load();
  if (!idle_.load() && last > 0) {
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    s.lag_seconds = std::max<int64_t>(0, now - last);
  }
  return s;
}

void CaptureService::Fail(const Status& status) {
  std::lock_guard<std::mutex> lock(status_mu_);
  if (state_ != CaptureState::kFailed) {
    error_ = status;
    spdlog::error("capture stopped: {}", status.ToString());
  }
  state_ = CaptureState::kFailed;
}

void CaptureService::SetState(CaptureState state) {
  std::lock_guard<std::mutex> lock(status_mu_);
  if (state_ != CaptureState::kFailed) state_ = state;
}

// ---- capture thread

void CaptureService::CaptureThread() {
  auto delay = options_.retry_min;
  while (!stop_) {
    progressed_ = false;
    Status s = RunSource();
    if (stop_) break;
    if (s.ok()) {
      spdlog::info("capture: {} read to its end at {}", factory_->Describe(),
                   committed_.ToString());
      SetState(CaptureState::kFinished);
      break;
    }
    Status discarded = DiscardUnfinished();
    if (!discarded.ok()) {
      Fail(discarded);
      break;
    }
    if (!s.retryable()) {
      if (s.IsNotFound()) {
        Fail(s.WithContext(fmt::format(
            "capture cannot continue from {}: the binlog it needs is gone (purged); nothing was "
            "skipped",
            committed_.ToString())));
      } else {
        Fail(s);
      }
      break;
    }
    if (progressed_) delay = options_.retry_min;
    {
      std::lock_guard<std::mutex> lock(status_mu_);
      error_ = s;
      if (state_ != CaptureState::kFailed) state_ = CaptureState::kConnecting;
    }
    spdlog::warn("capture: {}; retrying {} from {} in {} ms", s.ToString(), factory_->Describe(),
                 committed_.empty() ? std::string("its current position") : committed_.ToString(),
                 delay.count());
    std::unique_lock<std::mutex> lock(queue_mu_);
    space_cv_.wait_for(lock, delay, [this] { return stop_.load(); });
    delay = std::min(delay * 2, options_.retry_max);
  }
  // Whatever transaction was open is dropped: it is read again after a restart.
  part_.reset();
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    writer_stop_ = true;
  }
  queue_cv_.notify_all();
}

Status CaptureService::RunSource() {
  SetState(CaptureState::kConnecting);
  if (committed_.empty()) {
    RS_ASSIGN_OR_RETURN(BinlogPosition start, factory_->CurrentPosition());
    if (options_.before_first_checkpoint) options_.before_first_checkpoint();
    // The first checkpoint, durable before anything is read: a restart before the first
    // transaction must not start later. The writer writes it (with its own last_complete_seq:
    // file groups may be appended meanwhile) and publishes it as durable_.
    WriteItem item;
    item.completes = true;
    item.request = Request::kCheckpoint;
    item.checkpoint = Checkpoint{start, ""};
    uint64_t ticket = 0;
    RS_RETURN_IF_ERROR(Enqueue(std::move(item), &ticket));
    RS_RETURN_IF_ERROR(WaitWritten(ticket));
    spdlog::info("capture: starting at the current position of {}: {}", factory_->Describe(),
                 start.ToString());
    committed_ = start;
    committed_gtid_.clear();
  }
  RS_ASSIGN_OR_RETURN(std::unique_ptr<BinlogSource> source, factory_->Open(committed_));
  spdlog::info("capture: reading {} from {}", source->Describe(), committed_.ToString());
  decoder_ = std::make_unique<BinlogDecoder>();
  sink_ = std::make_unique<Sink>(this);
  assembler_ = std::make_unique<TransactionAssembler>(sink_.get());
  part_.reset();
  pending_maps_.clear();
  EndBinlogStatement();
  format_description_.clear();
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    state_ = state_ == CaptureState::kFailed ? state_ : CaptureState::kRunning;
    error_ = Status::Ok();
  }
  RawEvent raw;
  while (!stop_) {
    RS_RETURN_IF_ERROR(WaitForJournalSpace(assembler_->in_transaction()));
    RS_ASSIGN_OR_RETURN(bool more, source->Next(&raw));
    if (!more) {
      // A finite source ended; an open transaction is incomplete and dropped.
      return Status::Ok();
    }
    RS_RETURN_IF_ERROR(decoder_->Feed(raw));
    while (true) {
      RS_ASSIGN_OR_RETURN(bool got, decoder_->Next(&event_));
      if (!got) break;
      RS_RETURN_IF_ERROR(OnEvent(event_, decoder_->raw_event()));
    }
  }
  return Status::Aborted("capture stopped");
}

Status CaptureService::OnEvent(const Event& event, std::string_view raw) {
  progressed_ = true;
  if (std::holds_alternative<HeartbeatEvent>(event.body)) {
    idle_ = true;
  } else if ((event.header.flags & kFlagArtificial) == 0 && event.header.timestamp != 0) {
    last_event_time_ = event.header.timestamp;
    idle_ = false;
  }
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    read_position_.file.assign(event.position.file);
    read_position_.offset = event.next_offset;
  }
  if (std::holds_alternative<FormatDescriptionEvent>(event.body)) {
    format_description_.assign(raw);
  } else if (const auto* rotate = std::get_if<RotateEvent>(&event.body)) {
    // The end of a binlog file between transactions: checkpoint the start of the next one, so
    // that a restart never needs a file the server may purge once it is read.
    if ((event.header.flags & kFlagArtificial) == 0 && !event.in_payload &&
        !assembler_->in_transaction() && !rotate->next_file.empty()) {
      committed_ = BinlogPosition{rotate->next_file, rotate->position};
      WriteItem item;
      item.completes = true;
      item.rotation = true;
      item.checkpoint = Checkpoint{committed_, committed_gtid_};
      RS_RETURN_IF_ERROR(Enqueue(std::move(item)));
    }
  } else if (const auto* map = std::get_if<TableMapEvent>(&event.body)) {
    // Table maps precede the rows of their binlog statement: rows already emitted mean a new
    // statement began (one without STMT_END_F before it).
    if (statement_emitted_) EndBinlogStatement();
    if (map->table != nullptr && filter_.Replicated(map->table->db)) {
      pending_maps_.push_back(EventBytes(raw, event.in_payload));
    }
  }
  current_raw_ = raw;
  current_in_payload_ = event.in_payload;
  return assembler_->Feed(event);
}

Status CaptureService::WaitForJournalSpace(bool in_transaction) {
  while (true) {
    if (!journal_->full()) {
      if (state_full_) {
        state_full_ = false;
        SetState(CaptureState::kRunning);
        spdlog::info("capture: journal {} has room again ({} of {} bytes); reading resumes",
                     journal_->path(), journal_->bytes(), options_.journal_max_bytes);
      }
      return Status::Ok();
    }
    // A transaction larger than the whole cap: nothing complete is left to free, so waiting
    // would never end. Let it through, loudly.
    if (in_transaction && journal_->first_seq() > last_complete_seq_.load()) {
      if (!oversize_reported_) {
        oversize_reported_ = true;
        spdlog::error(
            "capture: the journal {} is over its cap ({} of {} bytes) with parts of one "
            "transaction only; writing on past the cap until the transaction is complete. Raise "
            "the journal size cap above the largest transaction",
            journal_->path(), journal_->bytes(), options_.journal_max_bytes);
      }
      return Status::Ok();
    }
    oversize_reported_ = false;
    if (!state_full_) {
      state_full_ = true;
      last_full_report_ = std::chrono::steady_clock::time_point{};
    }
    SetState(CaptureState::kJournalFull);
    auto now = std::chrono::steady_clock::now();
    if (last_full_report_ == std::chrono::steady_clock::time_point{} ||
        now - last_full_report_ >= options_.full_report_interval) {
      last_full_report_ = now;
      spdlog::error(
          "capture paused: journal {} is full ({} of {} bytes, entries {}..{}); the binlog is "
          "not read past {} until secondaries acknowledge entries and the shipper deletes them. "
          "Check that every secondary is running and connected (replsync status), or raise the "
          "journal size cap. Nothing is dropped, but the server may purge binlogs capture has "
          "not read yet",
          journal_->path(), journal_->bytes(), options_.journal_max_bytes, journal_->first_seq(),
          journal_->last_seq(), read_position().ToString());
    }
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      space_cv_.wait_for(lock, options_.full_poll, [this] { return stop_.load(); });
    }
    if (stop_) return Status::Aborted("capture stopped");
  }
}

BinlogPosition CaptureService::read_position() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return read_position_;
}

Status CaptureService::DiscardUnfinished() {
  part_.reset();
  pending_maps_.clear();
  EndBinlogStatement();
  // The writer removes the parts (AppendBatch), after everything queued before the request and
  // after an external group it is appending: only the transaction's parts are removed.
  WriteItem item;
  item.request = Request::kDiscard;
  uint64_t ticket = 0;
  RS_RETURN_IF_ERROR(Enqueue(std::move(item), &ticket));
  return WaitWritten(ticket);
}

// ---- transaction building

Status CaptureService::BeginTxn(const TransactionInfo& txn) {
  part_ = std::make_unique<pb::JournalEntry>();
  pb::DbTransaction* db = part_->mutable_db();
  db->set_gtid(txn.gtid.ToString());
  db->set_begin_file(txn.begin.file);
  db->set_begin_offset(txn.begin.offset);
  db->set_timestamp(txn.timestamp);
  rows_statement_ = nullptr;
  part_bytes_ = 0;
  part_number_ = 0;
  part_rows_ = 0;
  part_event_bytes_ = 0;
  txn_is_ddl_ = false;
  writeset_.Reset();
  return Status::Ok();
}

std::string CaptureService::EventBytes(std::string_view raw, bool in_payload) const {
  std::string bytes(raw);
  if (in_payload && decoder_->format().checksum == ChecksumAlg::kCrc32 &&
      bytes.size() >= kEventHeaderSize) {
    // Inner events of a TRANSACTION_PAYLOAD carry no checksum; give them one so that the event
    // agrees with the FORMAT_DESCRIPTION it is replayed under.
    StoreLe32(bytes.data() + 9, static_cast<uint32_t>(bytes.size() + kChecksumSize));
    uint32_t crc = Crc32(0, bytes.data(), bytes.size());
    char tail[4];
    StoreLe32(tail, crc);
    bytes.append(tail, 4);
  }
  return bytes;
}

void CaptureService::EndBinlogStatement() {
  pending_maps_.clear();
  statement_emitted_ = false;
  last_rows_index_ = -1;
}

Status CaptureService::AddRows(const Event& event, const RowsEvent& rows) {
  if (part_ == nullptr) return Status::Internal("rows outside a transaction");
  const bool ends = rows.end_of_statement();
  if (!filter_.Replicated(rows.table->db)) {
    if (ends) {
      if (statement_emitted_ && last_rows_index_ >= 0 && rows_statement_ != nullptr) {
        // The statement's last event is not replicated: end it at the last one that is.
        std::string* last = rows_statement_->mutable_events(last_rows_index_);
        RS_RETURN_IF_ERROR(SetStatementEnd(last));
      }
      EndBinlogStatement();
    }
    return Status::Ok();
  }
  uint64_t count = 0;
  row_decoder_.Reset(rows);
  const bool has_before = rows.kind != RowsKind::kWrite;
  const bool has_after = rows.kind != RowsKind::kDelete;
  while (true) {
    RS_ASSIGN_OR_RETURN(bool more, row_decoder_.Next(has_before ? &before_image_ : nullptr,
                                                     has_after ? &after_image_ : nullptr));
    if (!more) break;
    writeset_.AddRow(*rows.table, has_before ? &before_image_ : nullptr,
                     has_after ? &after_image_ : nullptr);
    ++count;
  }
  std::string bytes = EventBytes(current_raw_, current_in_payload_);
  size_t add = bytes.size();
  if (!statement_emitted_) {
    for (const std::string& map : pending_maps_) add += map.size();
  }
  if (part_bytes_ > 0 && part_bytes_ + add > options_.part_bytes) {
    RS_RETURN_IF_ERROR(FlushPart(false, nullptr, false));
  }
  if (rows_statement_ == nullptr) {
    rows_statement_ = part_->mutable_db()->add_statements();
    rows_statement_->set_kind(pb::Statement::ROWS);
  }
  if (!statement_emitted_) {
    for (std::string& map : pending_maps_) rows_statement_->add_events(std::move(map));
    pending_maps_.clear();
    statement_emitted_ = true;
  }
  rows_statement_->add_events(std::move(bytes));
  last_rows_index_ = rows_statement_->events_size() - 1;
  part_bytes_ += add;
  part_event_bytes_ += add;
  part_rows_ += count;
  if (ends) EndBinlogStatement();
  return Status::Ok();
}

Status CaptureService::SetStatementEnd(std::string* event) const {
  if (event->size() < kEventHeaderSize) return Status::Internal("short rows event");
  auto type = static_cast<uint8_t>((*event)[4]);
  const std::vector<uint8_t>& lengths = decoder_->format().post_header_lengths;
  uint8_t post_header = type >= 1 && type <= lengths.size() ? lengths[type - 1] : 8;
  size_t flags_at = kEventHeaderSize + (post_header == 6 ? 4 : 6);
  if (event->size() < flags_at + 2) return Status::Internal("short rows event");
  (*event)[flags_at] = static_cast<char>(static_cast<uint8_t>((*event)[flags_at]) | kStmtEndFlag);
  if (decoder_->format().checksum == ChecksumAlg::kCrc32) {
    size_t n = event->size() - kChecksumSize;
    StoreLe32(event->data() + n, Crc32(0, event->data(), n));
  }
  return Status::Ok();
}

Status CaptureService::AddDdl(const TransactionInfo& txn, const Event& event,
                              const DdlStatement& ddl) {
  if (part_ == nullptr) return Status::Internal("DDL outside a transaction");
  uint64_t sql_mode = 0;
  if (ddl.query != nullptr && ddl.query->status.sql_mode) sql_mode = *ddl.query->status.sql_mode;
  StatementTargets targets = AnalyzeStatement(ddl.sql, ddl.db, SqlSyntax::FromSqlMode(sql_mode));
  if (targets.kind == StatementKind::kControl) return Status::Ok();
  Decision decision = Decide(targets, filter_);
  const std::string where = event.position.ToString();
  if (targets.kind == StatementKind::kDml) {
    if (decision == Decision::kSkip) {
      if (dml_warnings_++ % 1000 == 0) {
        spdlog::warn(
            "capture: {}: statement-format DML on databases that are not replicated ignored "
            "('{}'); the server does not log in ROW format for every session ({} such so far)",
            where, Shorten(ddl.sql), dml_warnings_);
      }
      return Status::Ok();
    }
    return Status::Unsupported(fmt::format(
        "{}: transaction {} changes rows with a statement logged as SQL text ('{}', default "
        "database '{}'): the server wrote it with binlog_format STATEMENT or MIXED, so it has no "
        "row events to replicate. Set binlog_format=ROW in the server's configuration and "
        "globally (SET GLOBAL binlog_format=ROW), make sure no client sets it per session, then "
        "re-bootstrap the secondary from a fresh copy of the primary: this transaction cannot be "
        "replicated",
        where, txn.gtid.empty() ? txn.begin.ToString() : txn.gtid.ToString(), Shorten(ddl.sql),
        ddl.db));
  }
  std::string dbs;
  for (const std::string& db : targets.databases) dbs += (dbs.empty() ? "" : ", ") + db;
  switch (decision) {
    case Decision::kSkip:
      spdlog::debug("capture: {}: DDL on {} not replicated: '{}'", where, dbs, Shorten(ddl.sql));
      return Status::Ok();
    case Decision::kSkipUncertain:
      spdlog::warn(
          "capture: {}: statement not replicated: it touches no replicated database that "
          "replsync can tell ({}; default database '{}'): '{}'",
          where, dbs.empty() ? "none found" : dbs, ddl.db, Shorten(ddl.sql));
      return Status::Ok();
    case Decision::kReplicatePartial:
      spdlog::warn(
          "capture: {}: statement replicated although it also touches databases that are not "
          "replicated, or ones replsync cannot tell ({}; replicated: {}): '{}'",
          where, dbs, filter_.Describe(), Shorten(ddl.sql));
      break;
    case Decision::kReplicate:
      break;
  }
  size_t add = ddl.sql.size() + ddl.db.size();
  if (part_bytes_ > 0 && part_bytes_ + add > options_.part_bytes) {
    RS_RETURN_IF_ERROR(FlushPart(false, nullptr, false));
  }
  pb::Statement* statement = part_->mutable_db()->add_statements();
  statement->set_kind(pb::Statement::DDL);
  // The default database only when it replicates: the secondary may not have another one, and
  // a statement that needs it touches it (and was warned about above).
  if (filter_.Replicated(ddl.db)) statement->set_db(ddl.db);
  statement->set_sql(ddl.sql);
  if (ddl.query != nullptr) {
    FillSession(*ddl.query, event.header.timestamp, statement->mutable_session());
  } else {
    statement->mutable_session()->set_timestamp(event.header.timestamp);
  }
  rows_statement_ = nullptr;
  txn_is_ddl_ = true;
  part_bytes_ += add;
  return Status::Ok();
}

Status CaptureService::EndTxn(const TransactionInfo& txn, bool rollback) {
  EndBinlogStatement();
  committed_ = txn.end;
  committed_gtid_ = txn.gtid.ToString();
  if (part_ != nullptr && (part_number_ > 0 || part_->db().statements_size() > 0)) {
    RS_RETURN_IF_ERROR(FlushPart(true, &txn, rollback));
  } else {
    WriteItem item;
    item.completes = true;
    item.checkpoint = Checkpoint{committed_, committed_gtid_};
    RS_RETURN_IF_ERROR(Enqueue(std::move(item)));
  }
  part_.reset();
  rows_statement_ = nullptr;
  return Status::Ok();
}

Status CaptureService::FlushPart(bool final, const TransactionInfo* txn, bool rollback) {
  pb::DbTransaction* db = part_->mutable_db();
  db->set_part(part_number_);
  db->set_last_part(final);
  db->set_format_description(format_description_);
  db->set_row_count(part_rows_);
  db->set_is_ddl(txn_is_ddl_);
  writeset_.Fill(db);
  writeset_.Reset();
  if (final) {
    db->set_end_file(txn->end.file);
    db->set_end_offset(txn->end.offset);
    db->set_rollback(rollback);
  }
  WriteItem item;
  item.entry = part_->SerializeAsString();
  item.has_entry = true;
  item.completes = final;
  item.rows = part_rows_;
  item.event_bytes = part_event_bytes_;
  if (final) item.checkpoint = Checkpoint{committed_, committed_gtid_};
  ++part_number_;
  db->clear_statements();
  rows_statement_ = nullptr;
  last_rows_index_ = -1;
  part_bytes_ = 0;
  part_rows_ = 0;
  part_event_bytes_ = 0;
  return Enqueue(std::move(item));
}

Status CaptureService::Enqueue(WriteItem item, uint64_t* ticket) {
  std::unique_lock<std::mutex> lock(queue_mu_);
  space_cv_.wait(lock, [this] {
    return queued_bytes_ - external_bytes_ < options_.queue_bytes || stop_.load() || writer_failed_;
  });
  if (writer_failed_) return Status::Aborted("journal writer failed");
  if (stop_ && queued_bytes_ - external_bytes_ >= options_.queue_bytes) {
    return Status::Aborted("capture stopped");
  }
  if (!item.has_entry && item.completes && !has_checkpoint_queued_) {
    has_checkpoint_queued_ = true;
    first_checkpoint_queued_ = std::chrono::steady_clock::now();
  }
  if (item.has_entry) ++queued_entries_;
  if (item.request != Request::kNone) ++queued_requests_;
  queued_bytes_ += item.entry.size() + 64;
  item.ticket = ++next_ticket_;
  if (ticket != nullptr) *ticket = item.ticket;
  queue_.push_back(std::move(item));
  lock.unlock();
  queue_cv_.notify_one();
  return Status::Ok();
}

Result<uint64_t> CaptureService::SubmitExternal(std::string entry, bool completes) {
  std::unique_lock<std::mutex> lock(queue_mu_);
  space_cv_.wait(lock, [this] {
    // Its own budget: the writer cannot take these while a transaction's parts are half
    // appended, and the capture thread must still be able to queue the rest of them.
    return external_bytes_ < options_.queue_bytes || stop_.load() || writer_failed_ || writer_stop_;
  });
  if (writer_failed_) return Status::Aborted("journal writer failed");
  if (stop_ || writer_stop_) return Status::Aborted("capture stopped");
  WriteItem item;
  item.entry = std::move(entry);
  item.has_entry = true;
  item.completes = completes;
  item.external = true;
  item.ticket = ++next_ticket_;
  const uint64_t ticket = item.ticket;
  ++queued_entries_;
  queued_bytes_ += item.entry.size() + 64;
  external_bytes_ += item.entry.size() + 64;
  external_.push_back(std::move(item));
  lock.unlock();
  queue_cv_.notify_one();
  return ticket;
}

Status CaptureService::WaitDurable(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(queue_mu_);
  space_cv_.wait(lock, [&] {
    return durable_ticket_ >= ticket || writer_failed_ || stop_.load() || writer_stop_;
  });
  if (durable_ticket_ >= ticket) return Status::Ok();
  return Status::Aborted(writer_failed_ ? "journal writer failed" : "capture stopped");
}

Status CaptureService::WaitWritten(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(queue_mu_);
  space_cv_.wait(lock, [&] { return written_ticket_ >= ticket || writer_failed_ || stop_.load(); });
  if (written_ticket_ >= ticket) return Status::Ok();
  return Status::Aborted(writer_failed_ ? "journal writer failed" : "capture stopped");
}

bool CaptureService::WorkReadyLocked() const {
  if (external_open_) return !external_.empty();
  if (txn_open_) return !queue_.empty();
  return !queue_.empty() || !external_.empty();
}

bool CaptureService::TakeNextLocked(std::vector<WriteItem>* batch, size_t* entries, size_t* bytes) {
  std::deque<WriteItem>* from = nullptr;
  if (external_open_) {
    if (!external_.empty()) from = &external_;
  } else if (txn_open_) {
    if (!queue_.empty()) from = &queue_;
  } else if (!queue_.empty() && !external_.empty()) {
    from = queue_.front().ticket < external_.front().ticket ? &queue_ : &external_;
  } else if (!queue_.empty()) {
    from = &queue_;
  } else if (!external_.empty()) {
    from = &external_;
  }
  if (from == nullptr) return false;
  WriteItem& item = from->front();
  if (item.request != Request::kNone) --queued_requests_;
  // The transaction's appended parts are removed by this request before anything else is taken.
  if (item.request == Request::kDiscard) txn_open_ = false;
  if (item.has_entry) {
    ++*entries;
    --queued_entries_;
    if (item.external) {
      external_open_ = !item.completes;
    } else {
      txn_open_ = !item.completes;
    }
  }
  *bytes += item.entry.size();
  queued_bytes_ -= item.entry.size() + 64;
  if (item.external) external_bytes_ -= item.entry.size() + 64;
  batch->push_back(std::move(item));
  from->pop_front();
  return true;
}

// ---- writer thread

void CaptureService::WriterThread() {
  std::vector<WriteItem> batch;
  while (true) {
    std::optional<Retention> retention;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      bool take = false;
      while (true) {
        const bool ready = WorkReadyLocked();
        // Only checkpoints queued: they are written after checkpoint_delay.
        const auto deadline = first_checkpoint_queued_ + options_.checkpoint_delay;
        if (ready && (queued_entries_ > 0 || queued_requests_ > 0 || writer_stop_ ||
                      std::chrono::steady_clock::now() >= deadline)) {
          take = true;
          break;
        }
        if (!ready && writer_stop_ && !writer_drained_) {
          writer_drained_ = true;  // Wait returns: the capture's queue is written
          space_cv_.notify_all();
        }
        // A retention waits for nothing queued (not for the rest of a group, not for capture,
        // which may be paused for the very space it frees).
        if (retention_.has_value()) break;
        if (!ready && writer_exit_) {
          writer_running_ = false;
          return;
        }
        if (ready) {
          queue_cv_.wait_until(lock, deadline);
        } else {
          queue_cv_.wait(lock);
        }
      }
      if (take) {
        if (options_.batch_delay.count() > 0 && !writer_stop_ && queued_requests_ == 0) {
          queue_cv_.wait_for(lock, options_.batch_delay, [this] {
            return writer_stop_ || queued_requests_ > 0 ||
                   queued_entries_ >= options_.batch_entries ||
                   queued_bytes_ >= options_.batch_bytes;
          });
        }
        // A request ends the batch: AppendBatch carries it out after appending the rest.
        size_t entries = 0, bytes = 0;
        while (batch.empty() ||
               (batch.back().request == Request::kNone && entries < options_.batch_entries &&
                bytes < options_.batch_bytes)) {
          if (!TakeNextLocked(&batch, &entries, &bytes)) break;
        }
        has_checkpoint_queued_ = false;
        for (const WriteItem& item : queue_) {
          if (!item.has_entry && item.completes) {
            has_checkpoint_queued_ = true;
            first_checkpoint_queued_ = std::chrono::steady_clock::now();
            break;
          }
        }
      }
      retention = std::move(retention_);
      retention_.reset();
    }
    space_cv_.notify_all();
    Status s = batch.empty() ? Status::Ok() : AppendBatch(&batch);
    batch.clear();
    if (s.ok() && retention.has_value()) {
      // Its failure is the shipper's to report; the capture goes on.
      Status retained = RunRetention(*retention);
      for (auto& done : retention->done) done(retained);
      retention.reset();
    }
    if (!s.ok()) {
      {
        std::lock_guard<std::mutex> lock(queue_mu_);
        writer_failed_ = true;
        writer_running_ = false;  // SubmitRetention answers Aborted from now on
        ClearQueueLocked();
        if (!retention.has_value()) {
          retention = std::move(retention_);
        } else if (retention_.has_value()) {
          for (auto& done : retention_->done) retention->done.push_back(std::move(done));
        }
        retention_.reset();
      }
      space_cv_.notify_all();
      if (retention.has_value()) {
        const Status aborted = Status::Aborted(fmt::format(
            "journal {}: retention not carried out: the capture's journal writer failed: {}",
            journal_->path(), s.message()));
        for (auto& done : retention->done) done(aborted);
      }
      Fail(s);
      stop_ = true;
      factory_->Interrupt();
      return;
    }
    space_cv_.notify_all();
  }
}

Status CaptureService::RunRetention(const Retention& retention) {
  // Entries after last_complete_seq may be parts of an unfinished group, removed again.
  const uint64_t up_to = std::min(retention.up_to, last_complete_seq_.load());
  if (up_to >= journal_->first_seq()) {
    RS_RETURN_IF_ERROR(journal_->DeleteUpTo(up_to, retention.meta));
    AfterJournalWrite("DeleteUpTo");
  } else if (!retention.meta.empty()) {
    RS_RETURN_IF_ERROR(journal_->PutMeta(retention.meta));
    AfterJournalWrite("PutMeta");
  }
  return Status::Ok();
}

void CaptureService::SubmitRetention(uint64_t up_to,
                                     std::vector<std::pair<std::string, std::string>> meta,
                                     std::function<void(Status)> done) {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (writer_running_) {
      // Assigned, not emplaced: clang 14 does not see a nested struct with default member
      // initializers as default-constructible inside its enclosing class.
      if (!retention_.has_value()) retention_ = Retention{};
      Retention& pending = *retention_;
      pending.up_to = up_to;
      for (auto& kv : meta) {
        auto it = std::find_if(pending.meta.begin(), pending.meta.end(),
                               [&kv](const auto& held) { return held.first == kv.first; });
        if (it != pending.meta.end()) {
          it->second = std::move(kv.second);
        } else {
          pending.meta.push_back(std::move(kv));
        }
      }
      if (done) pending.done.push_back(std::move(done));
      queue_cv_.notify_one();
      return;
    }
  }
  if (done) {
    done(Status::Aborted(fmt::format(
        "journal {}: retention not carried out: the capture's journal writer is not running "
        "(not started, stopped, or failed)",
        journal_->path())));
  }
}

void CaptureService::ClearQueueLocked() {
  queue_.clear();
  external_.clear();
  queued_bytes_ = 0;
  external_bytes_ = 0;
  queued_entries_ = 0;
  queued_requests_ = 0;
}

void CaptureService::AfterJournalWrite(const char* op) const {
  if (options_.after_journal_write) options_.after_journal_write(op);
}

Status CaptureService::AppendBatch(std::vector<WriteItem>* batch) {
  std::vector<std::string> entries;
  entries.reserve(batch->size());
  const uint64_t first = journal_->last_seq() + 1;
  std::optional<uint64_t> complete_seq;
  const Checkpoint* checkpoint = nullptr;
  uint64_t transactions = 0, skipped = 0, rows = 0, bytes = 0;
  uint64_t external_ticket = 0;  // the last external group this batch completes
  for (WriteItem& item : *batch) {
    if (item.has_entry) {
      entries.push_back(std::move(item.entry));
      rows += item.rows;
      bytes += item.event_bytes;
      if (item.completes) {
        complete_seq = first + entries.size() - 1;
        if (item.external) {
          external_ticket = item.ticket;
        } else {
          ++transactions;
        }
      }
    } else if (item.completes && !item.rotation && item.request == Request::kNone) {
      ++skipped;
    }
    if (item.completes && !item.external) checkpoint = &item.checkpoint;
  }
  std::vector<std::pair<std::string, std::string>> meta;
  uint64_t new_complete = complete_seq.value_or(last_complete_seq_.load());
  if (checkpoint != nullptr) {
    meta = {{kMetaFile, checkpoint->position.file},
            {kMetaOffset, std::to_string(checkpoint->position.offset)},
            {kMetaGtid, checkpoint->gtid},
            {kMetaLastCompleteSeq, std::to_string(new_complete)}};
  } else if (complete_seq.has_value()) {
    meta = {{kMetaLastCompleteSeq, std::to_string(new_complete)}};
  }
  if (!entries.empty() || !meta.empty()) {
    uint64_t got_first = 0;
    RS_RETURN_IF_ERROR(journal_->Append(entries, meta, &got_first));
    AfterJournalWrite("Append");
    if (!entries.empty() && got_first != first) {
      return Status::Internal(fmt::format(
          "journal {}: entries got sequence {} where capture expected {} (a second writer?)",
          journal_->path(), got_first, first));
    }
  }
  transactions_ += transactions;
  skipped_ += skipped;
  rows_ += rows;
  bytes_ += bytes;
  if (complete_seq.has_value()) last_complete_seq_ = new_complete;
  if (checkpoint != nullptr) {
    last_complete_seq_ = new_complete;
    std::lock_guard<std::mutex> lock(status_mu_);
    durable_ = *checkpoint;
  }
  if (!batch->empty() && batch->back().request == Request::kDiscard) {
    // TakeNextLocked cleared txn_open_ already; nothing is taken before this returns.
    const uint64_t complete = last_complete_seq_.load();
    if (journal_->last_seq() > complete) {
      spdlog::info("capture: removing journal entries {}..{} of an unfinished transaction",
                   complete + 1, journal_->last_seq());
      RS_RETURN_IF_ERROR(journal_->TruncateAfter(complete));
      AfterJournalWrite("TruncateAfter");
    }
  }
  uint64_t written_ticket = 0;
  for (const WriteItem& item : *batch) {
    if (!item.external) written_ticket = item.ticket;
  }
  if (external_ticket != 0 || written_ticket != 0) {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (external_ticket != 0) durable_ticket_ = external_ticket;
    if (written_ticket != 0) written_ticket_ = written_ticket;
  }
  if (complete_seq.has_value() && options_.on_append) options_.on_append();
  return Status::Ok();
}

}  // namespace replsync::capture
