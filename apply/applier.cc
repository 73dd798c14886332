#include "apply/applier.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "apply/bootstrap/deferred_indexes.h"
#include "apply/ddl_replay.h"
#include "sync/mysql/statement_targets.h"
#include "sync/text.h"

namespace replsync::apply {
namespace {

constexpr int kErrBadDb = 1049;  // ER_BAD_DB_ERROR: Unknown database

// replsync.applied, format 1 (schemas/applied_position.md).
constexpr char kCreateSchemaSql[] = "CREATE DATABASE IF NOT EXISTS replsync";
constexpr char kCreateTableSql[] =
    "CREATE TABLE IF NOT EXISTS replsync.applied ("
    "channel VARCHAR(64) NOT NULL, "
    "seq BIGINT UNSIGNED NOT NULL DEFAULT 0, "
    "gtid VARCHAR(256) NOT NULL DEFAULT '', "
    "source_file VARCHAR(512) NOT NULL DEFAULT '', "
    "source_offset BIGINT UNSIGNED NOT NULL DEFAULT 0, "
    "applied_at TIMESTAMP(6) NULL DEFAULT NULL, "
    "ddl_pending_seq BIGINT UNSIGNED NULL DEFAULT NULL, "
    "PRIMARY KEY (channel)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='replsync applied position, format 1'";

// The unsigned number in a column read from the server (`what` names it); 0 for NULL or "".
// Corruption naming the column and the text when it is not one.
Result<uint64_t> ParseColumn(const std::optional<std::string>& text, std::string_view what) {
  if (!text || text->empty()) return uint64_t{0};
  uint64_t value = 0;
  if (!ParseU64(*text, &value)) {
    return Status::Corruption(fmt::format("{} is '{}', not an unsigned number", what, *text));
  }
  return value;
}

}  // namespace

const char* ApplierStateName(ApplierState state) {
  switch (state) {
    case ApplierState::kStopped:
      return "stopped";
    case ApplierState::kConnecting:
      return "connecting";
    case ApplierState::kApplying:
      return "applying";
    case ApplierState::kWaiting:
      return "waiting";
    case ApplierState::kRetrying:
      return "retrying";
    case ApplierState::kError:
      return "error";
  }
  return "unknown";
}

Applier::Applier(ApplierOptions options, Journal* relay)
    : options_(std::move(options)),
      relay_(relay),
      cursor_(relay),
      targets_(options_.databases),
      max_statement_bytes_(options_.max_statement_bytes) {}

Applier::~Applier() { Stop(); }

Status Applier::Start() {
  if (thread_.joinable()) return Status::InvalidArgument("applier already started");
  if (relay_ == nullptr) return Status::InvalidArgument("applier needs a relay journal");
  stop_ = false;
  crashed_ = false;
  // The position is read again at connect: until then the receiver must not take the one from
  // before (a bootstrap may have written replsync.applied while the applier was stopped).
  position_known_ = false;
  // A run of file entries stopped in the middle of a file's parts was not committed: it is
  // applied again from its first part, so no file may stay in progress from before.
  files_.reset();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_error_ = Status::Ok();
    status_.state = ApplierState::kConnecting;
    status_.waiting_for = fmt::format("MySQL at {}:{}", options_.mysql.host, options_.mysql.port);
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void Applier::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Applier::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
  }
  wake_cv_.notify_all();
}

ApplierStatus Applier::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

bool Applier::WaitForApplied(uint64_t seq, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  progress_cv_.wait_for(lock, timeout, [&] {
    return applied_seq_.load() >= seq || status_.state == ApplierState::kError ||
           status_.state == ApplierState::kStopped;
  });
  return applied_seq_.load() >= seq;
}

void Applier::SetState(ApplierState state, std::string waiting_for) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.state = state;
    status_.waiting_for = std::move(waiting_for);
  }
  progress_cv_.notify_all();
}

void Applier::SetError(const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  status_.last_error = error;
}

void Applier::Publish(const Position& position, bool applied, uint32_t source_timestamp,
                      uint64_t rows, bool ddl) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    PublishLocked(position, applied, source_timestamp, rows, ddl);
  }
  progress_cv_.notify_all();
}

void Applier::PublishLocked(const Position& position, bool applied, uint32_t source_timestamp,
                            uint64_t rows, bool ddl) {
  {
    status_.applied_seq = position.seq;
    status_.gtid = position.gtid;
    status_.source_position = position.source;
    if (applied) {
      status_.last_source_timestamp = source_timestamp;
      ++status_.transactions_applied;
      status_.rows_applied += rows;
      if (ddl) ++status_.ddl_applied;
    }
    status_.binlog_statements =
        (writer_ != nullptr ? writer_->statements_emitted() : 0) + worker_statements_.load();
    applied_seq_.store(position.seq);
  }
}

void Applier::SleepFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  options_.clock->WaitFor(wake_cv_, lock, d, [&] { return stop_.load(); });
}

bool Applier::CrashAt(std::string_view point, uint64_t seq) {
  if (!options_.crash_point || !options_.crash_point(point, seq)) return false;
  spdlog::warn("applier: simulated crash at {} while applying seq {}", point, seq);
  crashed_ = true;
  session_.reset();  // closes the socket: the server rolls back whatever is open
  ddl_session_.reset();
  return true;
}

std::string Applier::Describe(uint64_t seq, const pb::DbTransaction& txn) const {
  return fmt::format("seq {} (gtid {}, source {}:{})", seq, txn.gtid().empty() ? "-" : txn.gtid(),
                     txn.begin_file(), txn.begin_offset());
}

Status Applier::Execute(const std::string& sql) { return session_->Execute(sql, "SQL"); }

bool Applier::BatchEnds(const std::vector<std::string>& pending, size_t pending_bytes,
                        size_t next_bytes, size_t max_bytes) {
  return !pending.empty() &&
         (pending.back().rfind("BINLOG", 0) == 0 || pending_bytes + next_bytes > max_bytes);
}

Status Applier::Queue(std::string sql) {
  if (BatchEnds(pending_, pending_bytes_, sql.size(), max_statement_bytes_)) {
    RS_RETURN_IF_ERROR(SendPending());
  }
  pending_bytes_ += sql.size();
  pending_.push_back(std::move(sql));
  return Status::Ok();
}

Status Applier::SendPending() {
  if (pending_.empty()) return Status::Ok();
  Status st = session_->ExecuteBatch(pending_, "SQL");
  pending_.clear();
  pending_bytes_ = 0;
  if (st.ok() && deferred_) {
    const DeferredCommit d = std::move(*deferred_);
    deferred_.reset();
    Publish(d.position, /*applied=*/true, d.source_timestamp, d.rows, d.ddl);
  }
  return st;
}

const char* Applier::StepName(Step step) {
  switch (step) {
    case Step::kRecover:
      return "recover";
    case Step::kConnect:
      return "connect";
    case Step::kLoadResync:
      return "load resync";
    case Step::kRead:
      return "read";
    case Step::kDrain:
      return "drain";
    case Step::kCommit:
      return "commit";
    case Step::kHold:
      return "hold";
    case Step::kWait:
      return "wait";
    case Step::kApplyFiles:
      return "apply files";
    case Step::kDispatch:
      return "dispatch";
    case Step::kApplySerial:
      return "apply";
  }
  return "unknown";
}

void Applier::Run() {
  MysqlThreadScope thread_scope;
  backoff_ = options_.retry_min;
  operator_stop_ = false;
  resync_loaded_ = false;
  next_.reset();
  StartWorkers();
  while (!stop_) {
    const Step step = NextStep();
    Status st = RunStep(step);
    if (st.ok()) continue;
    if (!HandleFailure(st, step)) break;
  }
  if (deferred_ && session_ != nullptr) {
    // Stopping between two transactions: commit the one whose COMMIT still waits.
    Status st = SendPending();
    if (!st.ok()) spdlog::warn("applier: commit before stopping: {}", st.message());
  }
  StopWorkers();
  deferred_.reset();
  session_.reset();
  ddl_session_.reset();
  next_.reset();
  ClearHeld();
  if (!operator_stop_) SetState(ApplierState::kStopped);
}

Applier::Step Applier::NextStep() {
  if (WorkerFailed()) return Step::kRecover;
  if (session_ == nullptr) return InFlightEmpty() ? Step::kConnect : Step::kDrain;
  if (!resync_loaded_) return Step::kLoadResync;
  if (!next_ || next_->seq != dispatched_ + 1) return Step::kRead;
  barrier_holding_ = BarrierHolds(*next_);
  own_hold_holding_ = OwnHoldHolds(*next_);
  const bool holds = barrier_holding_ || own_hold_holding_;
  const bool to_worker = !holds && next_->is_db() && next_parallel_;
  // Everything but handing a transaction to a worker waits until nothing is in flight.
  if (!to_worker && !InFlightEmpty()) return Step::kDrain;
  // Everything but the coordinator's own next transaction first sends the COMMIT that waits
  // for company (that transaction takes it along in its first round trip).
  const bool serial = !holds && next_->is_db() && !next_parallel_;
  if (deferred_ && !serial) return Step::kCommit;
  if (holds) return Step::kHold;
  if (next_->not_yet()) return Step::kWait;
  if (next_->is_file()) return Step::kApplyFiles;
  return to_worker ? Step::kDispatch : Step::kApplySerial;
}

Status Applier::RunStep(Step step) {
  switch (step) {
    case Step::kRecover:
      ClearHeld();
      RecoverFromWorkerFailure();
      next_.reset();
      return Status::Ok();
    case Step::kConnect: {
      const std::string server = fmt::format("{}:{}", options_.mysql.host, options_.mysql.port);
      SetState(ApplierState::kConnecting, "MySQL at " + server);
      next_.reset();
      ClearHeld();
      RS_RETURN_IF_ERROR(Connect());
      dispatched_ = position_.seq;
      return Status::Ok();
    }
    case Step::kLoadResync:
      RS_RETURN_IF_ERROR(LoadFileResync());
      resync_loaded_ = true;
      return Status::Ok();
    case Step::kRead: {
      next_.reset();
      RS_ASSIGN_OR_RETURN(RelayItem item, ReadRelay(dispatched_ + 1));
      next_parallel_ = false;
      // Targets outside [mysql] databases stop the applier before anything of it runs (a later
      // part of a large transaction is checked as ApplyTransaction reads it).
      if (item.is_db()) RS_RETURN_IF_ERROR(targets_.Check(item.seq, item.db()));
      if (item.is_db() && !workers_.empty() && item.seq > serial_through_ && !any_entering_) {
        RS_ASSIGN_OR_RETURN(next_parallel_, ParallelEligible(item.db()));
      }
      next_ = std::move(item);
      return Status::Ok();
    }
    case Step::kDrain:
      WaitForWorkers(/*or_notified=*/next_ && next_->not_yet());
      if (next_ && next_->not_yet()) next_.reset();  // look again
      return Status::Ok();
    case Step::kCommit:
      return SendPending().WithContext("commit the previous transaction");
    case Step::kHold:
      WaitHolding();
      if (next_->not_yet()) next_.reset();
      return Status::Ok();
    case Step::kWait:
      SetState(ApplierState::kWaiting, fmt::format("entry {} from the primary", next_->seq));
      WaitForNotify();
      next_.reset();
      return Status::Ok();
    case Step::kDispatch:
      ClearHeld();
      SetState(ApplierState::kApplying);
      if (Dispatch(next_->seq, &next_->db())) {
        next_.reset();
        backoff_ = options_.retry_min;
      }
      return Status::Ok();
    case Step::kApplyFiles:
    case Step::kApplySerial: {
      ClearHeld();
      RelayItem item = std::move(*next_);
      next_.reset();
      RS_RETURN_IF_ERROR(item.is_file() ? ApplyFiles(item.seq, std::move(item.file()))
                                        : ApplyTransaction(item.seq, std::move(item.db())));
      dispatched_ = position_.seq;
      backoff_ = options_.retry_min;
      return Status::Ok();
    }
  }
  return Status::Internal("applier: unknown step");
}

bool Applier::Retryable(const Status& st, Step step) {
  // Connecting is always tried again: credentials and privileges get fixed while it waits.
  if (step == Step::kConnect) return true;
  switch (st.code()) {
    case Status::Code::kNetwork:
    case Status::Code::kIoError:
      return true;
    default:
      return st.retryable();
  }
}

bool Applier::HandleFailure(const Status& st, Step step) {
  // Whatever the failed attempt left open is rolled back with the session; the position is read
  // again when it reconnects.
  deferred_.reset();
  pending_.clear();
  pending_bytes_ = 0;
  session_.reset();
  ddl_session_.reset();
  next_.reset();
  ClearHeld();
  if (crashed_ || (stop_ && st.code() == Status::Code::kAborted)) return false;
  spdlog::debug("applier: step '{}' failed: {}", StepName(step), st.message());
  const uint64_t next = position_.seq + 1;
  SetError(st.message());
  if (Retryable(st, step)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++status_.retries;
    }
    if (step == Step::kConnect) {
      const std::string server = fmt::format("{}:{}", options_.mysql.host, options_.mysql.port);
      SetState(ApplierState::kRetrying, fmt::format("MySQL at {} ({})", server, st.message()));
      if (st.retryable()) {
        spdlog::warn("applier: waiting for MySQL at {}: {}; retrying in {} ms", server,
                     st.message(), backoff_.count());
      } else {
        spdlog::error(
            "applier: cannot use MySQL at {}: {}; fix it (credentials, privileges: "
            "BINLOG ADMIN or SUPER, BINLOG REPLAY); retrying in {} ms",
            server, st.message(), backoff_.count());
      }
    } else {
      SetState(ApplierState::kRetrying,
               fmt::format("retry of seq {} after: {}", next, st.message()));
      spdlog::warn("applier: {}; what it had begun was rolled back; trying again in {} ms",
                   st.message(), backoff_.count());
    }
    SleepFor(backoff_);
    backoff_ = std::min(backoff_ * 2, options_.retry_max);
    return true;
  }
  const std::string message = fmt::format(
      "applying stopped: {}. Nothing of this transaction was applied; the relay journal keeps it "
      "and everything after it. Fix the cause on the secondary (for example create the missing "
      "table, or grant the missing privilege), then restart replsyncd: it resumes at seq {}",
      st.message(), next);
  spdlog::error("applier: {}", message);
  SetError(message);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_error_ = Status(st).WithContext("applying stopped");
  }
  SetState(ApplierState::kError);
  operator_stop_ = true;
  return false;
}

Result<RelayItem> Applier::ReadRelay(uint64_t seq) {
  {
    // Cleared before the read: a Notify for an entry stored after it ends the next wait.
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = false;
  }
  return cursor_.Read(seq);
}

void Applier::WaitForNotify() {
  std::unique_lock<std::mutex> lock(mu_);
  options_.clock->WaitFor(wake_cv_, lock, options_.idle_wait,
                          [&] { return notified_ || stop_.load(); });
  notified_ = false;
}

Status Applier::Connect() {
  RS_ASSIGN_OR_RETURN(session_, OpenSession());
  last_fde_.clear();
  RS_RETURN_IF_ERROR(SetUpSession(session_.get()));
  RS_ASSIGN_OR_RETURN(auto info,
                      session_->Query("SELECT VERSION(), @@max_allowed_packet, @@sql_log_bin",
                                      "applier session set-up"));
  if (info.empty() || info[0].size() < 3) {
    return Status::Internal("applier session set-up: SELECT VERSION() returned no row");
  }
  mariadb_ = info[0][0].value_or("").find("MariaDB") != std::string::npos;
  if (info[0][2].value_or("1") != "0") {
    return Status::Internal("applier session set-up: sql_log_bin is still on after SET");
  }
  RS_ASSIGN_OR_RETURN(const uint64_t max_packet,
                      ParseColumn(info[0][1], "the server's @@max_allowed_packet"));
  max_statement_bytes_ = options_.max_statement_bytes;
  if (max_packet > 8192) {
    max_statement_bytes_ = std::min<size_t>(max_statement_bytes_.load(), max_packet - 4096);
  }
  writer_ = std::make_unique<BinlogStatementWriter>(
      max_statement_bytes_, [this](const std::string& sql) { return Queue(sql); });

  if (lenient_) {
    RS_RETURN_IF_ERROR(session_->Execute("SET GLOBAL slave_exec_mode = 'IDEMPOTENT'",
                                         "bootstrap's lenient window: slave_exec_mode"));
  }
  RS_RETURN_IF_ERROR(session_->Execute(kCreateSchemaSql, "create replsync schema"));
  RS_RETURN_IF_ERROR(session_->Execute(kCreateTableSql, "create replsync.applied"));
  RS_RETURN_IF_ERROR(session_->Execute("INSERT IGNORE INTO replsync.applied (channel) VALUES (" +
                                           QuoteString(options_.channel) + ")",
                                       "create the channel's row in replsync.applied"));
  RS_ASSIGN_OR_RETURN(
      auto rows,
      session_->Query("SELECT seq, gtid, source_file, source_offset, ddl_pending_seq FROM "
                      "replsync.applied WHERE channel = " +
                          QuoteString(options_.channel),
                      "read replsync.applied"));
  RS_RETURN_IF_ERROR(LoadEntering());
  position_ = Position{};
  pending_ddl_seq_ = 0;
  if (!rows.empty()) {
    const auto& row = rows[0];
    const std::string where = fmt::format("of channel '{}'", options_.channel);
    RS_ASSIGN_OR_RETURN(position_.seq, ParseColumn(row[0], "replsync.applied.seq " + where));
    position_.gtid = row[1].value_or("");
    position_.source.file = row[2].value_or("");
    RS_ASSIGN_OR_RETURN(position_.source.offset,
                        ParseColumn(row[3], "replsync.applied.source_offset " + where));
    RS_ASSIGN_OR_RETURN(pending_ddl_seq_,
                        ParseColumn(row[4], "replsync.applied.ddl_pending_seq " + where));
  }
  Publish(position_, /*applied=*/false);
  position_known_ = true;
  spdlog::info(
      "applier: connected to MySQL {} ({}); applied up to seq {} (gtid {}, source {}); "
      "resuming at seq {}",
      session_->Describe(), info[0][0].value_or(""), position_.seq,
      position_.gtid.empty() ? "-" : position_.gtid,
      position_.source.empty() ? "-" : position_.source.ToString(), position_.seq + 1);
  if (pending_ddl_seq_ != 0 && pending_ddl_seq_ == position_.seq + 1) {
    spdlog::warn(
        "applier: the DDL of seq {} was in flight when the applier stopped; it is run "
        "again and an error showing it already took effect counts as done",
        pending_ddl_seq_);
  }
  return Status::Ok();
}

Result<std::unique_ptr<SqlSession>> Applier::OpenSession(bool multi_statements) const {
  MysqlOptions mysql = options_.mysql;
  mysql.multi_statements = multi_statements;
  if (options_.open_session) return options_.open_session(mysql);
  RS_ASSIGN_OR_RETURN(std::unique_ptr<MysqlSession> session, MysqlSession::Open(mysql));
  return std::unique_ptr<SqlSession>(std::move(session));
}

Status Applier::SetUpSession(SqlSession* session) {
  Status st = session->Execute("SET SESSION sql_log_bin=0", "applier session set-up");
  if (!st.ok()) {
    return st.WithContext(
        "the applier's MySQL user needs BINLOG ADMIN (or SUPER) to keep applied changes out of "
        "the secondary's binlog");
  }
  return session->Execute(BaseSessionSql(), "applier session set-up");
}

Result<pb::DbTransaction> Applier::WaitForEntry(uint64_t seq) {
  bool waited = false;
  while (!stop_) {
    RS_ASSIGN_OR_RETURN(RelayItem item, ReadRelay(seq));
    if (item.is_db()) {
      if (waited) SetState(ApplierState::kApplying);
      return std::move(item.db());
    }
    if (item.is_file()) {
      return Status::Corruption(fmt::format(
          "relay entry {} is a file change where the next part of a database transaction was "
          "expected",
          seq));
    }
    if (!waited) {
      SetState(ApplierState::kApplying,
               fmt::format("part at seq {} of a large transaction from the primary", seq));
      waited = true;
    }
    WaitForNotify();
  }
  return Status::Aborted("applier stopping");
}

std::string Applier::PositionSql(uint64_t seq, const pb::DbTransaction& last_part,
                                 std::optional<uint64_t> previous_seq) const {
  // A plain UPDATE of the channel's row (Connect makes sure it exists): cheaper for the server
  // than INSERT ... ON DUPLICATE KEY UPDATE, and it runs once per source transaction. With
  // `previous_seq` it changes the row only when the row is at that seq (parallel apply).
  return fmt::format(
      "UPDATE replsync.applied SET seq={}, gtid={}, source_file={}, source_offset={}, "
      "applied_at=NOW(6), ddl_pending_seq=NULL WHERE channel={}{}",
      seq, QuoteString(last_part.gtid()), QuoteString(last_part.end_file()), last_part.end_offset(),
      QuoteString(options_.channel),
      previous_seq ? fmt::format(" AND seq={}", *previous_seq) : std::string());
}

Status Applier::ApplyTransaction(uint64_t seq, pb::DbTransaction first) {
  SetState(ApplierState::kApplying);
  pb::DbTransaction txn = std::move(first);
  const std::string what = Describe(seq, txn);
  auto fail = [&](const Status& s) {
    pending_.clear();
    pending_bytes_ = 0;
    deferred_.reset();  // never committed: the session is dropped and the position read again
    return s.WithContext("apply " + what);
  };

  const bool recovering = pending_ddl_seq_ == seq;
  bool marker_written = false;
  bool in_txn = false;
  bool has_ddl = false;
  uint64_t skipped_ddl = 0;
  uint64_t rows = 0;
  uint64_t part_seq = seq;
  std::vector<std::string> entering_sql;  // replsync.entering changes, with the position
  writer_->Reset();
  if (!deferred_) {
    pending_.clear();
    pending_bytes_ = 0;
  }
  while (true) {
    const std::string& fde = txn.format_description();
    if (!fde.empty() && fde != last_fde_) {
      Status st = Queue(BinlogStatementWriter::ForEvent(fde));
      if (!st.ok()) return fail(st);
      last_fde_ = fde;
    }
    for (const pb::Statement& statement : txn.statements()) {
      switch (statement.kind()) {
        case pb::Statement::ROWS: {
          if (statement.events().empty()) break;
          if (last_fde_.empty()) {
            return fail(Status::Corruption("row events without a FORMAT_DESCRIPTION"));
          }
          if (!in_txn) {
            Status st = Queue("START TRANSACTION");
            if (!st.ok()) return fail(st);
            in_txn = true;
          }
          for (const std::string& event : statement.events()) {
            if (LeftOut(event)) continue;  // a table entering the set: copied later
            Status st = writer_->Add(event);
            if (!st.ok()) return fail(st);
          }
          break;
        }
        case pb::Statement::DDL: {
          Status st = writer_->Flush();
          if (st.ok()) st = SendPending();
          if (!st.ok()) return fail(st);
          if (in_txn) {
            return fail(Status::Unsupported(
                "a DDL statement after row changes inside one transaction (a DDL commits "
                "implicitly, so the position could not be kept atomic with the rows)"));
          }
          if (SkipsObjectDdl(statement, seq)) {
            ++skipped_ddl;
            break;
          }
          // A table entering or leaving the set: what runs instead, and the entering rows that
          // commit with the position.
          TableSetPlan plan = PlanTableSet(statement, seq);
          std::vector<pb::Statement> own;
          if (!plan.planned) own.push_back(statement);
          const std::vector<pb::Statement>& to_run = plan.planned ? plan.run : own;
          for (std::string& sql : plan.entering_sql) entering_sql.push_back(std::move(sql));
          has_ddl = has_ddl || plan.planned;
          for (const pb::Statement& ddl : to_run) {
            if (!marker_written) {
              st =
                  Execute(fmt::format("INSERT INTO replsync.applied (channel, seq, "
                                      "ddl_pending_seq) VALUES ({}, {}, {}) ON DUPLICATE KEY "
                                      "UPDATE ddl_pending_seq=VALUES(ddl_pending_seq)",
                                      QuoteString(options_.channel), position_.seq, seq));
              if (!st.ok()) return fail(st.WithContext("mark DDL pending"));
              marker_written = true;
              pending_ddl_seq_ = seq;
              if (CrashAt("after_ddl_marker", seq)) {
                return fail(Status::Aborted("simulated crash"));
              }
            }
            st = ApplyDdl(ddl, seq, recovering);
            transactional_.clear();  // the DDL may have changed a table's engine
            if (!st.ok()) return fail(st);
            has_ddl = true;
            if (CrashAt("after_ddl", seq)) return fail(Status::Aborted("simulated crash"));
          }
          break;
        }
        default:
          return fail(Status::Unsupported(fmt::format(
              "statement kind {} unknown to this replsync; upgrade replsync on the secondary",
              static_cast<int>(statement.kind()))));
      }
    }
    Status st = writer_->Flush();
    if (!st.ok()) return fail(st);
    rows += txn.row_count();
    if (in_txn && options_.crash_point) {
      st = SendPending();
      if (!st.ok()) return fail(st);
      if (CrashAt("after_rows", part_seq)) return fail(Status::Aborted("simulated crash"));
    }
    if (txn.last_part()) break;
    Result<pb::DbTransaction> read = WaitForEntry(part_seq + 1);
    if (!read.ok()) return fail(read.status());
    pb::DbTransaction next = std::move(read).value();
    if (next.part() != txn.part() + 1 || next.gtid() != txn.gtid() ||
        next.begin_file() != txn.begin_file() || next.begin_offset() != txn.begin_offset()) {
      return fail(Status::Corruption(fmt::format(
          "relay entry {} is not the next part of the transaction (part {} of {} at {}:{}, "
          "expected part {})",
          part_seq + 1, next.part(), next.gtid().empty() ? "-" : next.gtid(), next.begin_file(),
          next.begin_offset(), txn.part() + 1)));
    }
    // What the part targets, before any of it runs (its earlier parts roll back on refusal).
    if (Status st = targets_.Check(part_seq + 1, next); !st.ok()) return fail(st);
    txn = std::move(next);
    ++part_seq;
  }
  if (options_.crash_point) {
    Status st = SendPending();
    if (!st.ok()) return fail(st);
    if (CrashAt("before_commit", part_seq)) return fail(Status::Aborted("simulated crash"));
  }
  // A small transaction takes two round trips: START TRANSACTION + BINLOG, position + COMMIT.
  Status st;
  if (txn.rollback() && in_txn) {
    // The source group ended with ROLLBACK: its transactional changes were undone on the
    // primary, its non-transactional ones kept. Rolling back here does the same.
    st = Queue("ROLLBACK");
    in_txn = false;
  }
  if (st.ok() && !entering_sql.empty()) {
    if (!in_txn) st = Queue("START TRANSACTION");
    in_txn = true;
    for (const std::string& sql : entering_sql) {
      if (st.ok()) st = Queue(sql);
    }
  }
  if (st.ok()) st = Queue(PositionSql(part_seq, txn));
  if (st.ok() && in_txn) st = Queue("COMMIT");
  if (!st.ok()) return fail(st);
  pending_ddl_seq_ = 0;
  position_.seq = part_seq;
  position_.gtid = txn.gtid();
  position_.source = BinlogPosition{txn.end_file(), txn.end_offset()};
  if (!has_ddl && skipped_ddl == 0 && !options_.crash_point && cursor_.HasAfter(part_seq)) {
    // The next transaction is already here: its first round trip carries this COMMIT, so a
    // small transaction costs one round trip instead of two.
    deferred_ = DeferredCommit{position_, txn.timestamp(), rows, has_ddl};
    return Status::Ok();
  }
  st = SendPending();
  if (!st.ok()) return fail(st);
  if (skipped_ddl != 0) {
    std::lock_guard<std::mutex> lock(mu_);
    status_.ddl_skipped += skipped_ddl;
  }
  Publish(position_, /*applied=*/true, txn.timestamp(), rows, has_ddl);
  return Status::Ok();
}

void Applier::SetSkipObjectDdl(bool on) {
  if (skip_object_ddl_.exchange(on) != on) {
    spdlog::info("applier: replicated DDL of views, routines, triggers and events is {}",
                 on ? "skipped from now on (the bootstrap copies those objects at its end)"
                    : "applied again");
  }
}

void Applier::SetLenient(bool on) {
  lenient_ = on;
  SetSkipObjectDdl(on);
}

Result<uint64_t> Applier::ReadAppliedSeq(SqlSession& session, const std::string& channel) {
  RS_ASSIGN_OR_RETURN(auto exists,
                      session.Query("SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                                    "TABLE_SCHEMA = 'replsync' AND TABLE_NAME = 'applied'",
                                    "look for replsync.applied"));
  if (exists.empty() || exists[0][0].value_or("0") == "0") return uint64_t{0};
  RS_ASSIGN_OR_RETURN(auto rows, session.Query("SELECT seq FROM replsync.applied WHERE channel = " +
                                                   QuoteString(channel),
                                               "read replsync.applied"));
  if (rows.empty()) return uint64_t{0};
  return ParseColumn(rows[0][0], "replsync.applied.seq of channel '" + channel + "'");
}

Status Applier::WritePosition(SqlSession& session, const std::string& channel, uint64_t seq,
                              const std::string& gtid, const BinlogPosition& source) {
  RS_RETURN_IF_ERROR(session.Execute(kCreateSchemaSql, "create replsync schema"));
  RS_RETURN_IF_ERROR(session.Execute(kCreateTableSql, "create replsync.applied"));
  return session.Execute(
      fmt::format("INSERT INTO replsync.applied (channel, seq, gtid, source_file, source_offset, "
                  "applied_at, ddl_pending_seq) VALUES ({0}, {1}, {2}, {3}, {4}, NOW(6), NULL) "
                  "ON DUPLICATE KEY UPDATE seq = {1}, gtid = {2}, source_file = {3}, "
                  "source_offset = {4}, applied_at = NOW(6), ddl_pending_seq = NULL",
                  QuoteString(channel), seq, QuoteString(gtid), QuoteString(source.file),
                  source.offset),
      "write replsync.applied");
}

bool Applier::SkipsObjectDdl(const pb::Statement& statement, uint64_t seq) {
  if (!skip_object_ddl_.load()) return false;
  const SqlSyntax syntax = statement.session().has_sql_mode()
                               ? SqlSyntax::FromSqlMode(statement.session().sql_mode())
                               : SqlSyntax{};
  const DdlObject object = AnalyzeDdlObject(statement.sql(), syntax);
  if (!IsStoredObject(object.kind)) return false;
  ++skipped_unlogged_;
  const Clock::TimePoint now = options_.clock->Now();
  if (!skip_logged_at_ || now - *skip_logged_at_ >= std::chrono::minutes(1)) {
    const char* verb = object.verb == DdlVerb::kCreate  ? "CREATE"
                       : object.verb == DdlVerb::kAlter ? "ALTER"
                                                        : "DROP";
    spdlog::info(
        "applier: skipped {} replicated DDL statement(s) of views, routines, triggers and events "
        "since the last such message (the bootstrap copies those objects at its end); the "
        "latest: seq {}, {} {} {}",
        skipped_unlogged_, seq, verb, ObjectKindName(object.kind),
        object.db.empty() ? object.name : object.db + "." + object.name);
    skipped_unlogged_ = 0;
    skip_logged_at_ = now;
  }
  return true;
}

Status Applier::ApplyDdl(const pb::Statement& statement, uint64_t seq, bool recovering) {
  // The DDL runs on a session of its own without multi-statements, so its `sql` is exactly one
  // statement: "CREATE TABLE t (a int); DROP DATABASE x" is a syntax error, not two statements.
  // Its marker and position stay on the main session (committed before and after it).
  if (ddl_session_ == nullptr) {
    RS_ASSIGN_OR_RETURN(ddl_session_, OpenSession(/*multi_statements=*/false));
    RS_RETURN_IF_ERROR(SetUpSession(ddl_session_.get()));
  }
  SqlSession* ddl = ddl_session_.get();
  auto run = [&](const std::string& sql) { return ddl->Execute(sql, "SQL"); };
  // The default database the statement ran with; replsync's own schema when it had none or
  // the secondary does not have it (`DROP DATABASE d` run in d, applied again after a restart).
  // There, a statement must name its objects fully: the target filter refuses one whose
  // unqualified names would land in replsync's schema (before the entry, for one that had none).
  bool use_own = statement.db().empty();
  if (!use_own) {
    Status st = run("USE " + QuoteIdentifier(statement.db()));
    if (!st.ok()) {
      if (ddl->last_error_code() != kErrBadDb) return st;
      // Its names were checked against its own default database; in replsync's schema its
      // unqualified ones would change replsync's tables.
      RS_RETURN_IF_ERROR(targets_.CheckDdl(seq, statement, {.default_database_missing = true}));
      use_own = true;
    }
  }
  if (use_own) RS_RETURN_IF_ERROR(run("USE " + QuoteIdentifier(kDdlFallbackSchema)));
  const SqlSyntax syntax = statement.session().has_sql_mode()
                               ? SqlSyntax::FromSqlMode(statement.session().sql_mode())
                               : SqlSyntax{};
  // The indexes a bootstrap deferred in the databases it touches are built first, so that it
  // finds their tables as the primary had them (apply/bootstrap/deferred_indexes.h).
  const StatementTargets targets = AnalyzeStatement(statement.sql(), statement.db(), syntax);
  RS_RETURN_IF_ERROR(DeferredIndexes::Build(
      *ddl, options_.channel, targets.complete ? targets.databases : std::vector<std::string>{}));
  const std::string set = DdlSessionSql(statement.session(), mariadb_);
  if (!set.empty()) RS_RETURN_IF_ERROR(run(set).WithContext("DDL session settings"));

  // An event that would be enabled is created (or altered) DISABLE ON SLAVE instead.
  const std::optional<std::string> disabled = WithEventDisabledOnSlave(statement.sql(), syntax);
  Status st = run(disabled ? *disabled : statement.sql());
  if (!st.ok()) {
    const int code = ddl->last_error_code();
    if (recovering && !st.retryable() && IsAlreadyAppliedError(statement.sql(), code)) {
      spdlog::info(
          "applier: the DDL of seq {} had already taken effect before the restart (the "
          "server answers: {}); counting it as applied",
          seq, st.message());
    } else if (!st.retryable() && !recovering) {
      // DDL is atomic: this one did not take effect. Clear the marker, so that a restart runs it
      // as a first attempt again rather than mistaking its error for "already applied".
      Status clear = Execute("UPDATE replsync.applied SET ddl_pending_seq=NULL WHERE channel = " +
                             QuoteString(options_.channel));
      if (clear.ok()) pending_ddl_seq_ = 0;
      return st;
    } else {
      return st;
    }
  }
  RS_RETURN_IF_ERROR(
      DisableEventOnSlave(statement).WithContext("disable the event on the secondary"));
  return run(ResetSessionSql(mariadb_)).WithContext("reset session after DDL");
}

Status Applier::DisableEventOnSlave(const pb::Statement& statement) {
  const SqlSyntax syntax = statement.session().has_sql_mode()
                               ? SqlSyntax::FromSqlMode(statement.session().sql_mode())
                               : SqlSyntax{};
  const DdlObject event = AnalyzeDdlObject(statement.sql(), syntax);
  if (event.kind != ObjectKind::kEvent || event.verb == DdlVerb::kDrop) return Status::Ok();
  const std::string db = event.new_name.empty() ? event.db : event.new_db;
  const std::string name = event.new_name.empty() ? event.name : event.new_name;
  if (name.empty()) return Status::Ok();
  // The DDL session's default database is the statement's: an unqualified name is there.
  RS_ASSIGN_OR_RETURN(
      auto rows,
      ddl_session_->Query(
          fmt::format("SELECT STATUS, DEFINER FROM information_schema.EVENTS WHERE "
                      "EVENT_SCHEMA = {} AND EVENT_NAME = {}",
                      db.empty() ? std::string("DATABASE()") : QuoteString(db), QuoteString(name)),
          "read the event's status"));
  if (rows.empty() || rows[0].size() < 2 || rows[0][0].value_or("") != "ENABLED") {
    return Status::Ok();
  }
  // Keep its definer (an ALTER without DEFINER may make the applier's user the definer).
  std::string definer;
  const std::string text = rows[0][1].value_or("");
  const size_t at = text.rfind('@');
  if (at != std::string::npos) {
    definer = fmt::format("DEFINER={}@{} ", QuoteString(text.substr(0, at)),
                          QuoteString(text.substr(at + 1)));
  }
  const std::string qualified =
      (db.empty() ? std::string() : QuoteIdentifier(db) + ".") + QuoteIdentifier(name);
  spdlog::info(
      "applier: the replicated event {} is enabled on the secondary; making it DISABLE "
      "ON SLAVE so that only the primary runs it",
      qualified);
  return ddl_session_->Execute(fmt::format("ALTER {}EVENT {} DISABLE ON SLAVE", definer, qualified),
                               "SQL");
}

}  // namespace replsync::apply
