// Applier: applies the relay journal's entries, in sequence order, to the secondary's database,
// each source transaction exactly once. Written down in schemas/applied_position.md.
//
// Rows are replayed through the server's own row applier: `BINLOG '<base64>'` of the entry's
// FORMAT_DESCRIPTION (once per session and whenever it changes), then of its TABLE_MAP + ROWS
// events (BinlogStatementWriter). This keeps every type exact, fires no trigger on the secondary
// (row events bypass triggers; the primary's trigger-made rows arrive as row events of their
// own) and honours the events' foreign-key / unique-check flags. The session runs with
// sql_log_bin=0, so nothing applied reaches the secondary's own binlog.
//
// One source transaction = one target transaction: START TRANSACTION; BINLOG ...; INSERT INTO
// replsync.applied (seq, gtid, source position) ... ON DUPLICATE KEY UPDATE; COMMIT (a small
// transaction in two round trips: START TRANSACTION + BINLOG, then position + COMMIT). The parts
// of a large transaction are read one at a time from the relay (memory bounded by a part) and all
// applied inside that one target transaction. On (re)connect the applier reads
// replsync.applied.seq — the truth, committed with the rows — and resumes at seq + 1.
//
// DDL runs on a second session of the applier, opened without multi-statements (its `sql` is
// one statement, never several). DDL commits implicitly, so it is bracketed:
// replsync.applied.ddl_pending_seq = seq is committed first (on the main session), then `USE db`
// (replsync's own schema when db is empty or missing on the secondary; the target filter refuses
// a statement whose unqualified names would land there), the QUERY event's session settings, the
// DDL, and the position with ddl_pending_seq cleared. Finding ddl_pending_seq == seq at start
// means the DDL may or may not have run: it is run again and an error that only its own earlier
// success explains (IsAlreadyAppliedError) counts as done, with a log line saying so.
//
// The loop is a step machine (Run): NextStep decides the next step from what the applier holds
// — the relay entry after the last one dispatched, read once (RelayCursor) and kept until it is
// acted on; the transactions in flight on workers; a COMMIT waiting for company; verify's
// barrier — and RunStep carries it out. A failed step goes to HandleFailure, the one place that
// decides between trying again and stopping.
//
// Errors: what replsync can retry it retries, with exponential backoff, rolling back what the
// failed attempt left open and saying in the log and the status (state kRetrying) what it waits
// for: lost connections, server restarts, lock waits, deadlocks, errors of the file system
// (a full disk, a permission fixed later) and any error while connecting. What an operator must
// fix stops applying (state kError): rows or DDL aimed at a database outside [mysql] databases
// (TargetFilter: refused before any of it runs), an SQL error the server gives every time (a
// missing table, a missing privilege, a duplicate key), a relay entry that does not parse or a
// part out of order, an entry kind this replsync cannot apply, a file entry without [repository]
// path. The relay keeps the entry and everything after it; the status and the log give the error,
// seq, gtid, source position and what to do. Nothing is ever skipped.
//
// Parallel apply (workers > 1): the applier's own thread is a coordinator that reads the relay
// in sequence order and hands each small transaction (one part, rows only, a writeset from the
// primary — schemas/journal.md "Writesets" — and only InnoDB tables in no foreign key, since a
// writeset does not show the rows a foreign key checks or cascades to) to one of `workers` worker
// sessions, as soon as no transaction still in flight shares a key with it. A worker runs
// START TRANSACTION + BINLOG, waits for its turn, then runs
//   UPDATE replsync.applied SET seq = S, ... WHERE channel = C AND seq = S - 1
// and COMMIT. Its turn comes when the transaction before it holds the lock of the channel's row
// (its UPDATE returned), so the UPDATEs queue on that row lock in sequence order and commits
// happen in source commit order, while their log flushes overlap (group commit). The
// `seq = S - 1` condition makes any other order impossible: an UPDATE that changes no row means
// the order broke, and the transaction is rolled back. Everything else — DDL, large
// transactions, ROLLBACK groups, non-InnoDB tables, entries without a writeset — waits until
// nothing is in flight and is applied on the coordinator's session as before. Any error in a
// worker (a conflict the writeset could not see shows up as a lock wait timeout, a duplicate
// key or a missing row) rolls back every transaction in flight; the position is read again from
// replsync.applied and the transactions up to the failed one are applied one at a time, where a
// real error is reported as without workers.
//
// File changes (schemas/files.md) share the sequence: when the next entry is a FileChange, the
// applier waits until no transaction is in flight, applies a run of consecutive file entries
// (up to `file_batch_entries` / `file_batch_bytes`, never stopping inside a file's parts)
// through FileApplier, makes them durable with one syncfs, and only then moves the position
// row to the run's last sequence (an UPDATE of replsync.applied that keeps gtid and source
// position). A crash before that UPDATE applies the run again, which the state-based apply
// makes harmless. Paths the secondary could not rebuild (its copy was not the base an entry
// expects) are kept in the file `file_resync_path` (written before the position moves) and
// handed to `on_file_resync` (the receiver asks the primary for them whole) until a "resync"
// entry for each has been applied.
//
// The owner's hold (bootstrap, schemas/bootstrap.md "Exactness"): SetHold(stop) makes the
// applier hold as verify's barrier does, without files: before the next database transaction
// ("now"), any entry ("all"), a database transaction that begins at or after a binlog position
// of the primary, or any entry from a relay sequence on ("seq:N"). Both apply: the applier holds
// where either says so. Once it holds at the hold — nothing in flight, every transaction before
// the stop applied and committed — WaitHeld returns where it stands. A hold at a binlog
// position P also holds while the applier is idle with its applied source position at or past P
// (no transaction that begins before P can come any more); when the last replicated
// transaction before P ended before P (transactions of other databases, a binlog rotation in
// between), it holds only once the next one, beginning at or after P, is in the relay. The hold
// is the Applier object's state: set before Start, it holds from the first step; it survives
// Stop/Start; nullopt lifts it.
//
// The bootstrap's lenient window (SetSkipObjectDdl): replicated DDL of views, stored routines,
// packages, triggers and events (IsStoredObject, sync/mysql/statement_targets.h) is recorded as
// applied without running: the position moves past it, counted in ddl_skipped and logged at
// most once a minute. Events never run twice: a replicated CREATE EVENT, or an ALTER EVENT that
// enables one, runs with DISABLE ON SLAVE in place of its status (WithEventDisabledOnSlave),
// so the secondary's event scheduler never runs an event whose rows arrive through the stream;
// should the event still be ENABLED afterwards (a form the rewrite did not recognise), an
// ALTER EVENT ... DISABLE ON SLAVE follows on the same session.
//
// Thread-safety: Start/Stop from one owning thread; Notify, SetHold, WaitHeld, SetSkipObjectDdl,
// status(), applied_seq() and WaitForApplied from any thread. The applier's thread is the only
// one touching the session.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "apply/binlog_statement.h"
#include "apply/file_applier.h"
#include "apply/relay_cursor.h"
#include "apply/target_filter.h"
#include "replsync.pb.h"
#include "sync/clock.h"
#include "sync/journal/journal.h"
#include "sync/mysql/mysql_session.h"
#include "sync/position.h"
#include "sync/status.h"
#include "sync/verify/barrier.h"

namespace replsync::apply {

struct ApplierOptions {
  MysqlOptions mysql;  // the secondary's own server ([mysql] in its NodeConfig)
  // Opens a session to the secondary's server (the coordinator's and each worker's). Empty:
  // MysqlSession::Open(mysql). Unit tests of the applier's loop give a fake.
  std::function<Result<std::unique_ptr<SqlSession>>(const MysqlOptions&)> open_session;
  // The row of replsync.applied this applier owns (one per primary followed).
  std::string channel = "default";
  // [mysql] databases of this node: row changes and DDL aimed at other databases are refused
  // and stop the applier (TargetFilter; empty = all but the system schemas).
  std::vector<std::string> databases;
  // Upper bound of one BINLOG statement (further capped by the server's max_allowed_packet).
  size_t max_statement_bytes = 4 << 20;
  // Backoff between reconnects / retries of a failed transaction.
  std::chrono::milliseconds retry_min{200};
  std::chrono::milliseconds retry_max{30000};
  // How often an idle applier looks at the relay (and verify's barrier) without being notified.
  std::chrono::milliseconds idle_wait{200};
  // The time of every wait, backoff and hold of the applier's own threads (not owned; outlives
  // the applier). Unit tests give a ManualClock.
  Clock* clock = &SystemClock();
  // Sessions applying independent transactions at the same time ([apply] workers); 1 applies
  // every transaction on one session, one after the other. See "Parallel apply" above.
  int workers = 4;
  // innodb_lock_wait_timeout of the worker sessions, seconds: a lock wait this long among
  // transactions applied in parallel is taken for an undetected conflict (rolled back, applied
  // one at a time).
  int worker_lock_wait_timeout_s = 5;
  // The repository folder ([repository] path): "" when files do not replicate here (a file
  // entry then stops the applier with an error saying so).
  std::string repository;
  // [repository] keep_setid: apply the setuid/setgid bits of file entries (FileApplierOptions).
  bool keep_setid = false;
  size_t file_batch_entries = 4096;
  size_t file_batch_bytes = 256 << 20;
  // Verify's barrier (schemas/verify.md): while the file `barrier_path` exists, the applier
  // applies no database transaction that begins at or after its stop position ("now": none at
  // all), and once it waits there it writes where it stands to `paused_path`. "" = no barrier.
  std::string barrier_path;
  std::string paused_path;
  // verify.lock, which a running verify holds (FileLock) for its whole run: a barrier whose
  // verify no longer holds it died (kill -9) and is lifted. "" = barriers are never lifted here.
  std::string verify_lock_path;
  // Where the applier keeps the paths it waits to get whole from the primary (written atomically
  // before the position moves past the entry that needed it). "" = the relay's path +
  // ".file_resync". The relay itself is the receiver's alone to write.
  std::string file_resync_path;
  // The paths to ask the primary for whole (Receiver::SetFileResync): called at start and
  // whenever the set changes, from the applier's thread.
  std::function<void(std::vector<std::string> paths)> on_file_resync;
  // Test hook: called by a worker before it starts applying `seq` (a test delays one to make a
  // later transaction overtake it).
  std::function<void(uint64_t seq)> before_worker_apply;
  // Test hook: called at named points ("after_ddl_marker", "after_ddl", "after_rows",
  // "before_commit") with the sequence being applied; returning true makes the applier drop its
  // connection right there, without ROLLBACK or COMMIT, and stop (state kStopped), as a crash of
  // the daemon would.
  std::function<bool(std::string_view point, uint64_t seq)> crash_point;
};

enum class ApplierState {
  kStopped,     // not started, stopped, or crashed on purpose (crash_point)
  kConnecting,  // connecting to the secondary's server
  kApplying,
  kWaiting,   // caught up: waiting for entries from the relay
  kRetrying,  // a retryable error: waiting before trying again
  kError,     // stopped on an error that needs the operator (see last_error)
};
const char* ApplierStateName(ApplierState state);

struct ApplierStatus {
  ApplierState state = ApplierState::kStopped;
  uint64_t applied_seq = 0;            // replsync.applied.seq: the last sequence applied
  std::string gtid;                    // that transaction's GTID ("" if none or not yet known)
  BinlogPosition source_position;      // the primary's binlog position after it
  uint32_t last_source_timestamp = 0;  // its source commit time (seconds since the epoch)
  uint64_t transactions_applied = 0;   // since Start
  uint64_t rows_applied = 0;           // since Start (row_count of the entries)
  uint64_t ddl_applied = 0;            // since Start
  uint64_t ddl_skipped = 0;            // object DDL recorded as applied unrun (SetSkipObjectDdl)
  uint64_t retries = 0;                // transactions rolled back and tried again
  uint64_t binlog_statements = 0;      // BINLOG statements run, since Start
  int workers = 1;                     // worker sessions (1: no parallel apply)
  uint64_t parallel_applied = 0;       // transactions applied by workers, since Start
  uint64_t serial_fallbacks = 0;       // worker failures that made the applier go serial
  uint64_t file_changes_applied = 0;   // file entries applied (parts count once), since Start
  uint64_t file_batches = 0;           // runs of file entries made durable (one syncfs each)
  uint64_t file_resync_pending = 0;    // paths waiting for the primary's whole copy
  uint64_t file_changes_refused = 0;   // devices / FIFOs / sockets not created, since Start
  std::string waiting_for;             // what it waits for now; "" when busy
  std::string last_error;              // the latest error (retryable ones too); "" if none
};

class Applier {
 public:
  // `relay` is not owned and must outlive the applier, which only reads it (the receiver is its
  // one writer).
  Applier(ApplierOptions options, Journal* relay);
  // Stops the thread (as Stop).
  ~Applier();
  Applier(const Applier&) = delete;
  Applier& operator=(const Applier&) = delete;

  // Starts the applying thread and returns at once. InvalidArgument when already started.
  Status Start();
  // Asks the thread to stop, wakes it and joins it. An open target transaction is rolled back
  // (the connection is closed). Idempotent.
  void Stop();
  // New entries are in the relay (called by the receiver after each durable Put).
  void Notify();

  ApplierStatus status() const;
  // The last sequence applied (0 until the position was read from the database).
  uint64_t applied_seq() const { return applied_seq_.load(); }
  // The same, or nullopt until the applier has read its position from the database once (the
  // receiver's first Hello waits for it: before that, 0 would ask for the whole journal).
  std::optional<uint64_t> known_applied_seq() const {
    if (!position_known_.load()) return std::nullopt;
    return applied_seq_.load();
  }
  // Waits until applied_seq() >= seq (true), or the applier stopped / hit an error, or the
  // timeout passed (false). The timeout is real time, whatever the options' clock: it bounds the
  // caller's wait, and a test driving the applier with a ManualClock may wait here.
  bool WaitForApplied(uint64_t seq, std::chrono::milliseconds timeout) const;

  // Sets the owner's hold (see the file comment); nullopt lifts it. Takes effect at the
  // applier's next step (it is woken): a transaction already handed to a worker or being
  // applied completes first. Survives Stop/Start.
  void SetHold(std::optional<verify::StopBefore> stop);
  // Waits until the applier holds at the current hold and returns where it stands: applied_seq,
  // source ("file:offset" after the last applied transaction), gtid, and the hold as `stop`
  // (token ""). Errors: InvalidArgument when no hold is set; Unavailable when `timeout` (real
  // time) passed first, or the hold was moved or lifted meanwhile; Aborted when the applier is
  // not running (never started, stopped) or stopped on an error that needs the operator (the
  // message is that error).
  Result<verify::PausedAt> WaitHeld(std::chrono::milliseconds timeout) const;
  // Turns the skipping of object DDL (see the file comment) on or off; it applies from the next
  // transaction the applier begins. Survives Stop/Start.
  void SetSkipObjectDdl(bool on);
  // A bootstrap's lenient window (schemas/bootstrap.md): object DDL skipped (SetSkipObjectDdl),
  // every transaction applied one at a time (no workers: the server would skip silently what a
  // conflict between them broke), and, at every connect, the secondary server's
  // `slave_exec_mode` set to IDEMPOTENT (a server restarted meanwhile starts STRICT again). The
  // owner sets the server's mode itself when the window opens or closes; this keeps it across
  // reconnects. Survives Stop/Start.
  void SetLenient(bool on);

  // Tables entering the set (schemas/bootstrap.md "Tables entering and leaving the set"): a
  // table renamed in from outside it, or created LIKE a table outside it. Their row events are
  // left out (their TABLE_MAPs dropped: the server skips ROWS events of an unmapped table) and
  // their DDL skipped, until the bootstrapper has copied them whole at a point the applier holds
  // at and calls ForgetEntering. Kept in replsync.entering, changed atomically with the
  // position; read again at every connect. Thread-safe.
  using TableId = std::pair<std::string, std::string>;  // db, table
  std::vector<TableId> Entering() const;
  // `tables` are copied and their rows of replsync.entering deleted (by the caller, while the
  // applier holds): their events are applied again from the next transaction on.
  void ForgetEntering(const std::vector<TableId>& tables);
  // replsync.entering, created when missing. Errors: the session's.
  static Status CreateEnteringTable(SqlSession& session);
  // Deletes `tables`' rows of `channel` from replsync.entering.
  static Status DeleteEntering(SqlSession& session, const std::string& channel,
                               const std::vector<TableId>& tables);

  // The last sequence `channel` applied, as replsync.applied in `session` says (0 when it has no
  // row, or the table does not exist). Errors: the session's; Corruption for a bad value.
  static Result<uint64_t> ReadAppliedSeq(SqlSession& session, const std::string& channel);
  // Records in `session` (the secondary's server) that everything up to journal sequence `seq`
  // is applied, the last of it at `source` with `gtid`: replsync.applied's row of `channel`,
  // created (with the table) when missing. For a bootstrap that rebases the stream on its copy's
  // point; the applier must not run meanwhile. Errors: the session's.
  static Status WritePosition(SqlSession& session, const std::string& channel, uint64_t seq,
                              const std::string& gtid, const BinlogPosition& source);

 private:
  struct Position {
    uint64_t seq = 0;
    std::string gtid;
    BinlogPosition source;
  };

  struct Task {
    uint64_t seq = 0;
    pb::DbTransaction txn;
  };
  struct Worker {
    int id = 0;
    std::thread thread;
    // Guarded by the applier's mu_.
    std::optional<Task> task;  // assigned, not yet taken by the worker
    bool busy = false;         // running a transaction (up to its position UPDATE)
    // Worker thread only.
    std::unique_ptr<SqlSession> session;
    std::unique_ptr<BinlogStatementWriter> writer;
    std::string last_fde;
    size_t max_statement_bytes = 0;
    std::vector<std::string> pending;
    size_t pending_bytes = 0;
    uint64_t counted_statements = 0;  // of writer's statements, already added to the status
  };
  struct InFlight {
    std::vector<uint64_t> keys;
    Position end;
    uint32_t source_timestamp = 0;
    uint64_t rows = 0;
    int state = 0;  // 0 running, 1 committed, 2 failed or rolled back
  };

  // ---- the step machine (applier.cc)
  enum class Step {
    kRecover,      // a worker failed: roll back what is in flight, then apply serially
    kConnect,      // (re)connect and read the applied position
    kLoadResync,   // read the paths waiting for the primary's whole copy (once per start)
    kRead,         // read the relay entry after the last one dispatched (once)
    kDrain,        // wait for the transactions in flight on workers
    kCommit,       // send the COMMIT that waits for company
    kHold,         // verify's barrier or the owner's hold holds: wait there
    kWait,         // nothing to apply: wait for the receiver
    kApplyFiles,   // apply the run of file entries starting at next_
    kDispatch,     // hand next_ to a worker
    kApplySerial,  // apply next_ on the coordinator's session
  };
  static const char* StepName(Step step);
  void Run();
  // Decides the next step from the state (no side effects but reading verify's barrier file).
  Step NextStep();
  Status RunStep(Step step);
  // The one place a failed step goes: rolls back, then true to go on (after a backoff) or false
  // to stop (state kError for what the operator must fix; stopping or a simulated crash).
  bool HandleFailure(const Status& st, Step step);
  // What replsync can retry by itself (see "Errors" above).
  static bool Retryable(const Status& st, Step step);
  // Reads the relay entry at `seq` once; a Notify from now on ends the next WaitForNotify.
  Result<RelayItem> ReadRelay(uint64_t seq);
  // ---- parallel apply (applier_parallel.cc)
  void StartWorkers();
  void StopWorkers();
  void WorkerLoop(Worker* worker);
  // Applies `task` on the worker's session; true when committed.
  // Runs the task up to its position UPDATE (its COMMIT is left to the caller); a COMMIT of the
  // worker's previous transaction `commit_seq` (0: none) goes in the first round trip.
  Status WorkerApply(Worker* worker, const Task& task, uint64_t epoch, uint64_t commit_seq);
  // Records a worker's result for `seq`: committed (ok) or failed/rolled back.
  void WorkerReport(uint64_t seq, const Status& st);
  // True when `txn` (first and only part at `seq`) may go to a worker.
  Result<bool> ParallelEligible(const pb::DbTransaction& txn);
  // Hands `txn` to a free worker once none in flight shares a key with it. False when it could
  // not (stopping, or a worker failed); the caller goes round its loop again.
  // `*txn` is moved from only when it was handed over.
  bool Dispatch(uint64_t seq, pb::DbTransaction* txn);
  // Takes the workers' results: advances and publishes the applied position. Under mu_.
  void CollectLocked();
  // After a worker failed: waits until nothing is in flight, drops the session (the position is
  // read again at reconnect) and applies serially up to the failed transaction.
  void RecoverFromWorkerFailure();
  bool InFlightEmpty() const;
  bool WorkerFailed() const;
  // Waits (up to idle_wait) until the oldest transaction in flight is done, a worker failed, or
  // — when `or_notified` — new relay entries came; publishes what committed.
  void WaitForWorkers(bool or_notified);
  // Connects, sets the session up, creates replsync.applied if missing and reads the position.
  Status Connect();
  // Applies the source transaction whose first part, at `seq`, is `first` (read already); its
  // other parts are read from the relay as they come.
  Status ApplyTransaction(uint64_t seq, pb::DbTransaction first);
  Status ApplyDdl(const pb::Statement& statement, uint64_t seq, bool recovering);
  // What a DDL statement becomes when it moves a table into or out of the set, or touches a
  // table entering it (planned = false: it runs as it is): the statements to run instead (each
  // within the set), and the changes to replsync.entering that commit with the position.
  struct TableSetPlan {
    bool planned = false;
    std::vector<pb::Statement> run;
    std::vector<std::string> entering_sql;
  };
  TableSetPlan PlanTableSet(const pb::Statement& statement, uint64_t seq);
  bool IsEntering(const std::string& db, const std::string& table) const;
  // A TABLE_MAP event of a table entering the set (left out of the BINLOG statement).
  bool LeftOut(std::string_view event) const;
  // Reads replsync.entering (at connect).
  Status LoadEntering();
  // Applies the run of file entries whose first, at `seq`, is `first` (read already); see "File
  // changes" above. An entry it read after the run (a database transaction, or a file entry
  // the run stopped before) is left in next_, to be acted on as read.
  Status ApplyFiles(uint64_t seq, pb::FileChange first);
  // Reads the saved paths waiting for a whole copy into resync_ and reports them (at start).
  Status LoadFileResync();
  std::string FileResyncPath() const;
  Status SaveFileResync();
  // A StopBefore in the terms the loop decides by.
  struct StopPoint {
    bool now = false;       // hold before any database transaction
    BinlogPosition stop;    // ... else before one that begins at or after this
    uint64_t stop_seq = 0;  // not 0: before any entry from this sequence on ("all": 1)
    static StopPoint Of(const verify::StopBefore& at);
    // True when `next` (the relay entry read at its seq, perhaps not there yet) must wait.
    // "now": before any database transaction, and when there is nothing to apply; "all":
    // before any entry, and when idle; "file:offset": before a database transaction beginning
    // at or after it; "seq:N": before any entry from sequence N on (also when idle past N - 1).
    bool Holds(const RelayItem& next) const;
  };
  // Verify's barrier: true when `next` must wait (the barrier is read again at most every
  // 50 ms, 5 ms while held); the caller then holds (kHold) once nothing is in flight.
  bool BarrierHolds(const RelayItem& next);
  // The owner's hold: the same for SetHold's stop (taken over from hold_ when it changed); a
  // position hold also holds when idle with the applied source position at or past it.
  bool OwnHoldHolds(const RelayItem& next);
  // Reads the barrier file (at most every 50 ms, 5 ms while held) into barrier_; lifts a barrier
  // whose verify no longer runs.
  void RefreshBarrier();
  // kHold: says where it holds (verify.paused for the barrier, held_ for the owner's hold) and
  // waits a moment (5 ms while a barrier file is there, else up to idle_wait or a SetHold).
  void WaitHolding();
  // "the next transaction", "relay entry 12", ... for the log.
  static std::string Where(const verify::StopBefore& at);
  // Forgets where it held (it is about to apply something, or it stops). Applier thread.
  void ClearHeld();
  // Skips `statement` (a DDL) when SetSkipObjectDdl is on and it is object DDL: true, counted
  // and logged (at most once a minute).
  bool SkipsObjectDdl(const pb::Statement& statement, uint64_t seq);
  // After a replicated CREATE / ALTER EVENT ran: an event left ENABLED on the secondary is made
  // DISABLE ON SLAVE on the DDL session (see the file comment).
  Status DisableEventOnSlave(const pb::Statement& statement);
  // Waits up to idle_wait for Notify (new relay entries) or Stop.
  void WaitForNotify();
  // Waits for the entry at `seq` (the next part of a transaction); a file change there is
  // Corruption. Aborted when stopping.
  Result<pb::DbTransaction> WaitForEntry(uint64_t seq);
  // Runs `sql` on the session (errors name the server and quote the statement).
  Status Execute(const std::string& sql);
  // Queues a statement of the transaction being applied; queued statements go to the server
  // together (one round trip) when SendPending is called or the queue would pass
  // max_statement_bytes_.
  Status Queue(std::string sql);
  // True when a statement of `next_bytes` must not join the queued `pending` (holding
  // `pending_bytes`): the last one is a BINLOG statement, which must end its batch
  // (MysqlSession::ExecuteBatch), or the batch would pass `max_bytes`. Serial and worker
  // sessions batch by this rule.
  static bool BatchEnds(const std::vector<std::string>& pending, size_t pending_bytes,
                        size_t next_bytes, size_t max_bytes);
  Status SendPending();
  std::string PositionSql(uint64_t seq, const pb::DbTransaction& last_part,
                          std::optional<uint64_t> previous_seq = std::nullopt) const;
  // sql_log_bin=0 and the base session settings, on the coordinator's and the workers' sessions.
  static Status SetUpSession(SqlSession* session);
  // A session to the secondary's server; `multi_statements` off for the DDL session.
  Result<std::unique_ptr<SqlSession>> OpenSession(bool multi_statements = true) const;
  // True when the test hook asks for a crash at `point`: drops the session.
  bool CrashAt(std::string_view point, uint64_t seq);
  // Sleeps up to `d`, returning early when stopping.
  void SleepFor(std::chrono::milliseconds d);
  void SetState(ApplierState state, std::string waiting_for = {});
  void SetError(const std::string& error);
  // Publishes the applied position; `applied` counts one more transaction (of `rows` rows,
  // with a DDL when `ddl`) committed at source time `source_timestamp`.
  void Publish(const Position& position, bool applied, uint32_t source_timestamp = 0,
               uint64_t rows = 0, bool ddl = false);
  // The same under mu_ (the caller notifies progress_cv_).
  void PublishLocked(const Position& position, bool applied, uint32_t source_timestamp,
                     uint64_t rows, bool ddl);
  // "seq 12 (gtid 0-1-5, source binlog.000001:1234)"
  std::string Describe(uint64_t seq, const pb::DbTransaction& txn) const;

  const ApplierOptions options_;
  Journal* const relay_;
  const RelayCursor cursor_;
  const TargetFilter targets_;

  // Applier thread only.
  std::unique_ptr<SqlSession> session_;
  // Where DDL runs: without multi-statements (opened at the first DDL, dropped with session_).
  std::unique_ptr<SqlSession> ddl_session_;
  // The relay entry at dispatched_ + 1 as read (perhaps "not yet"), until acted on.
  std::optional<RelayItem> next_;
  bool next_parallel_ = false;  // next_ may go to a worker
  std::chrono::milliseconds backoff_{0};
  bool operator_stop_ = false;                     // stopped on an error that needs the operator
  bool resync_loaded_ = false;                     // LoadFileResync done since Start
  std::unique_ptr<BinlogStatementWriter> writer_;  // made at each connect
  std::string last_fde_;                           // FORMAT_DESCRIPTION last sent on this session
  bool mariadb_ = true;                            // the secondary's server is MariaDB
  // options_ capped by max_allowed_packet; set by the coordinator at each connect, read by
  // workers when they connect.
  std::atomic<size_t> max_statement_bytes_;
  uint64_t pending_ddl_seq_ = 0;
  std::vector<std::string> pending_;  // queued statements (Queue)
  size_t pending_bytes_ = 0;
  // A transaction whose "position + COMMIT" waits in pending_ to travel in the same round trip
  // as the next transaction's first statements (only when that one is already in the relay).
  // It is published as applied once the batch holding its COMMIT has succeeded; a failure
  // before that drops the session, which rolls it back, and the position is read again.
  struct DeferredCommit {
    Position position;
    uint32_t source_timestamp = 0;
    uint64_t rows = 0;
    bool ddl = false;
  };
  std::optional<DeferredCommit> deferred_;
  Position position_;
  // ---- files (applier_files.cc). Applier thread only.
  std::unique_ptr<FileApplier> files_;
  std::set<std::string> resync_;  // paths asked for whole (persisted in FileResyncPath())
  // ---- verify's barrier (applier_barrier.cc). Applier thread only.
  // The barrier file's content (sync/verify/barrier.h) in the terms the loop decides by.
  struct Barrier {
    std::string token;
    verify::StopBefore at;  // as read, written back to the paused file
    StopPoint point;
  };
  std::optional<Barrier> barrier_;
  // What held at the last NextStep that chose kHold: verify's barrier, the owner's hold.
  bool barrier_holding_ = false;
  bool own_hold_holding_ = false;
  // ---- the owner's hold. Applier thread: hold_ as last taken over, and its version.
  std::optional<verify::StopBefore> own_hold_;
  std::optional<StopPoint> own_hold_point_;
  uint64_t own_hold_version_ = 0;
  bool held_published_ = false;  // held_ may be set
  // Skipped object DDL not logged yet, and when it was last logged.
  uint64_t skipped_unlogged_ = 0;
  std::optional<Clock::TimePoint> skip_logged_at_;
  std::chrono::steady_clock::time_point barrier_checked_{};
  std::chrono::steady_clock::time_point verify_probed_{};
  // The barrier file last read: its token and stop, or why it is ignored ("" when none).
  std::string barrier_seen_;
  std::optional<verify::PausedAt> paused_written_;  // the paused file's last content

  // ---- parallel apply. Coordinator only:
  std::vector<std::unique_ptr<Worker>> workers_;
  uint64_t dispatched_ = 0;      // the last seq dispatched or applied
  uint64_t serial_through_ = 0;  // apply serially up to this seq (after a worker failure)
  std::unordered_set<uint64_t> busy_keys_;
  // Tables whose transactions may go to workers: InnoDB, in no foreign key (either side).
  std::map<std::pair<std::string, std::string>, bool> transactional_;
  // Guarded by mu_:
  std::map<uint64_t, InFlight> in_flight_;
  uint64_t order_head_ = 0;  // the last seq whose position row is locked (or committed)
  uint64_t epoch_ = 0;       // bumped to make every worker roll back what it has in flight
  bool worker_failed_ = false;
  bool workers_stop_ = false;
  uint64_t failed_seq_ = 0;
  std::string failure_;
  std::atomic<uint64_t> worker_statements_{0};  // BINLOG statements run by workers
  std::condition_variable turn_cv_;             // order_head_ / epoch_ changed; a task was assigned

  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> crashed_{false};
  std::atomic<uint64_t> applied_seq_{0};
  std::atomic<bool> position_known_{false};

  mutable std::mutex mu_;
  mutable std::condition_variable wake_cv_;      // Notify / Stop
  mutable std::condition_variable progress_cv_;  // applied_seq_ or state changed
  bool notified_ = false;                        // guarded by mu_
  ApplierStatus status_;                         // guarded by mu_
  // The owner's hold (SetHold), guarded by mu_; hold_version_ is bumped by every SetHold (read
  // without mu_ by the applier's thread to see a change).
  std::optional<verify::StopBefore> hold_;
  std::atomic<uint64_t> hold_version_{0};
  // Where the applier holds at the owner's hold of version held_version_ (guarded by mu_;
  // progress_cv_ is notified when it is set).
  std::optional<verify::PausedAt> held_;
  uint64_t held_version_ = 0;
  // The error that stopped the applier (state kError), guarded by mu_.
  Status stop_error_;
  std::atomic<bool> skip_object_ddl_{false};
  std::atomic<bool> lenient_{false};
  mutable std::mutex entering_mu_;
  std::set<TableId> entering_;  // guarded by entering_mu_
  std::atomic<bool> any_entering_{false};
};

}  // namespace replsync::apply
