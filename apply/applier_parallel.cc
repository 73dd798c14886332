// Parallel apply: the coordinator's dispatch and the worker sessions (see "Parallel apply" in
// applier.h).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "apply/applier.h"

namespace replsync::apply {

namespace {

// Statements of a worker's transaction travel together until a BINLOG statement, which must end
// its batch (MysqlSession::ExecuteBatch).
Status SendWorkerPending(SqlSession* session, std::vector<std::string>* pending,
                         size_t* pending_bytes) {
  if (pending->empty()) return Status::Ok();
  Status st = session->ExecuteBatch(*pending, "SQL");
  pending->clear();
  *pending_bytes = 0;
  return st;
}

}  // namespace

void Applier::StartWorkers() {
  workers_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers_stop_ = false;
    worker_failed_ = false;
    in_flight_.clear();
    status_.workers = 1;
  }
  busy_keys_.clear();
  serial_through_ = 0;
  // The crash-point test hook names points of the serial path; tests using it apply serially.
  if (options_.workers <= 1 || options_.crash_point) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.workers = options_.workers;
  }
  for (int i = 0; i < options_.workers; ++i) {
    auto worker = std::make_unique<Worker>();
    worker->id = i + 1;
    Worker* w = worker.get();
    workers_.push_back(std::move(worker));
    w->thread = std::thread([this, w] { WorkerLoop(w); });
  }
}

void Applier::StopWorkers() {
  if (workers_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers_stop_ = true;
    ++epoch_;  // whatever waits for its turn rolls back
  }
  turn_cv_.notify_all();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    CollectLocked();
    in_flight_.clear();
  }
  progress_cv_.notify_all();
  busy_keys_.clear();
  workers_.clear();
}

bool Applier::InFlightEmpty() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_.empty();
}

bool Applier::WorkerFailed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return worker_failed_;
}

void Applier::WaitForWorkers(bool or_notified) {
  std::unique_lock<std::mutex> lock(mu_);
  CollectLocked();
  // Woken by WorkerReport (a result), a worker ready for more, Notify or Stop; the predicate
  // makes a wake-up that came before the wait count.
  options_.clock->WaitFor(wake_cv_, lock, options_.idle_wait, [&] {
    return stop_ || worker_failed_ || in_flight_.empty() || in_flight_.begin()->second.state != 0 ||
           (or_notified && notified_);
  });
  CollectLocked();
}

void Applier::WorkerReport(uint64_t seq, const Status& st) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = in_flight_.find(seq);
    if (it != in_flight_.end()) it->second.state = st.ok() ? 1 : 2;
    if (!st.ok()) {
      if (st.code() != Status::Code::kAborted && (failure_.empty() || seq < failed_seq_)) {
        failed_seq_ = seq;
        failure_ = st.message();
      }
      if (!workers_stop_) worker_failed_ = true;
      ++epoch_;  // the others roll back what they hold
    }
  }
  turn_cv_.notify_all();
  wake_cv_.notify_all();
}

void Applier::WorkerLoop(Worker* w) {
  MysqlThreadScope thread_scope;
  // A transaction whose position UPDATE went through and whose COMMIT waits to travel with the
  // first statements of the worker's next transaction (0: none).
  uint64_t commit_seq = 0;
  auto commit_alone = [&] {
    if (commit_seq == 0) return;
    Status st = w->session != nullptr ? w->session->Execute("COMMIT", "SQL")
                                      : Status::Network("worker session lost");
    if (!st.ok()) w->session.reset();
    WorkerReport(commit_seq, st);
    commit_seq = 0;
  };
  while (true) {
    Task task;
    uint64_t epoch = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (commit_seq == 0) {
        turn_cv_.wait(lock, [&] { return workers_stop_ || w->task.has_value(); });
      }
      if (!w->task) {
        lock.unlock();
        if (commit_seq == 0) break;  // stopping with nothing assigned
        // No next transaction to pair it with: commit now (the next one in order waits for it).
        commit_alone();
        continue;
      }
      task = std::move(*w->task);
      w->task.reset();
      epoch = epoch_;
      if (worker_failed_ || workers_stop_) {
        // Handed over before a failure (or the stop) was seen: it must not start now.
        auto it = in_flight_.find(task.seq);
        if (it != in_flight_.end()) it->second.state = 2;
        lock.unlock();
        turn_cv_.notify_all();
        wake_cv_.notify_all();
        commit_alone();
        continue;
      }
      w->busy = true;
    }
    wake_cv_.notify_all();  // its queue is free: the coordinator may hand it the next one
    Status st = WorkerApply(w, task, epoch, commit_seq);
    commit_seq = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      w->busy = false;
    }
    if (st.ok()) {
      commit_seq = task.seq;  // its COMMIT goes with what comes next
      wake_cv_.notify_all();  // the coordinator may hand this worker another transaction
    } else {
      WorkerReport(task.seq, st);
    }
  }
  w->session.reset();
}

Status Applier::WorkerApply(Worker* w, const Task& task, uint64_t epoch, uint64_t commit_seq) {
  auto rollback = [w] {
    if (w->session == nullptr) return;
    if (w->session->broken() || !w->session->Execute("ROLLBACK").ok()) {
      w->session.reset();
      w->last_fde.clear();
    }
  };
  auto fail = [&](const Status& st) {
    w->pending.clear();
    w->pending_bytes = 0;
    rollback();
    return st.WithContext(fmt::format("worker {}: apply {}", w->id, Describe(task.seq, task.txn)));
  };
  if (w->session == nullptr && commit_seq != 0) {
    WorkerReport(commit_seq, Status::Network("worker session lost before COMMIT"));
    commit_seq = 0;
  }
  if (w->session == nullptr) {
    auto opened = OpenSession();
    if (!opened.ok()) return fail(opened.status());
    w->session = std::move(*opened);
    w->last_fde.clear();
    Status st = SetUpSession(w->session.get());
    if (st.ok()) {
      st = w->session->Execute(fmt::format("SET SESSION innodb_lock_wait_timeout={}",
                                           options_.worker_lock_wait_timeout_s),
                               "worker session set-up");
    }
    // Every statement of a worker belongs to the transaction it applies: a COMMIT ends it and
    // the next statement starts the next one.
    if (st.ok()) st = w->session->Execute("SET SESSION autocommit=0", "worker session set-up");
    if (!st.ok()) {
      w->session.reset();
      return fail(st);
    }
    w->max_statement_bytes = max_statement_bytes_;
    w->counted_statements = 0;
    w->writer = std::make_unique<BinlogStatementWriter>(
        w->max_statement_bytes, [w](const std::string& sql) -> Status {
          if (BatchEnds(w->pending, w->pending_bytes, sql.size(), w->max_statement_bytes)) {
            RS_RETURN_IF_ERROR(SendWorkerPending(w->session.get(), &w->pending, &w->pending_bytes));
          }
          w->pending_bytes += sql.size();
          w->pending.push_back(sql);
          return Status::Ok();
        });
  }
  if (options_.before_worker_apply) options_.before_worker_apply(task.seq);
  const pb::DbTransaction& txn = task.txn;
  w->pending.clear();
  w->pending_bytes = 0;
  w->writer->Reset();
  if (commit_seq != 0) w->pending.push_back("COMMIT");
  const std::string& fde = txn.format_description();
  if (!fde.empty() && fde != w->last_fde) {
    w->pending.push_back(BinlogStatementWriter::ForEvent(fde));
    w->pending_bytes += w->pending.back().size();
    w->last_fde = fde;
  }
  Status st;
  for (const pb::Statement& statement : txn.statements()) {
    if (!st.ok()) break;
    if (statement.kind() != pb::Statement::ROWS) {
      st = Status::Internal("a worker got a statement that is not ROWS");
      break;
    }
    if (!statement.events().empty() && w->last_fde.empty()) {
      st = Status::Corruption("row events without a FORMAT_DESCRIPTION");
      break;
    }
    for (const std::string& event : statement.events()) {
      st = w->writer->Add(event);
      if (!st.ok()) break;
    }
  }
  if (st.ok()) st = w->writer->Flush();
  if (st.ok()) st = SendWorkerPending(w->session.get(), &w->pending, &w->pending_bytes);
  if (commit_seq != 0) {
    // The previous transaction's COMMIT went in the first batch. After an error it is unknown
    // whether that COMMIT took effect; the failure makes the applier read the position again.
    WorkerReport(commit_seq, st);
  }
  if (!st.ok()) return fail(st);
  worker_statements_.fetch_add(w->writer->statements_emitted() - w->counted_statements);
  w->counted_statements = w->writer->statements_emitted();

  // Wait for the turn: the transaction before this one holds (or has committed) the position.
  {
    std::unique_lock<std::mutex> lock(mu_);
    turn_cv_.wait(lock, [&] { return order_head_ + 1 >= task.seq || epoch_ != epoch; });
    if (epoch_ != epoch) {
      lock.unlock();
      rollback();
      return Status::Aborted(
          fmt::format("seq {} rolled back: another transaction in flight failed", task.seq));
    }
  }
  Result<uint64_t> changed =
      w->session->ExecuteUpdate(PositionSql(task.seq, txn, task.seq - 1), "SQL");
  if (!changed.ok()) return fail(changed.status());
  if (*changed != 1) {
    bool aborted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      aborted = epoch_ != epoch;
    }
    rollback();
    if (aborted) {
      return Status::Aborted(
          fmt::format("seq {} rolled back: the one before it was rolled back", task.seq));
    }
    return fail(Status::Internal(
        fmt::format("replsync.applied of channel '{}' was not at seq {} when seq {} came to commit",
                    options_.channel, task.seq - 1, task.seq)));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    order_head_ = std::max(order_head_, task.seq);
  }
  turn_cv_.notify_all();
  return Status::Ok();  // the caller sends the COMMIT (WorkerLoop)
}

Result<bool> Applier::ParallelEligible(const pb::DbTransaction& txn) {
  // In a bootstrap's lenient window the server skips a row it cannot find instead of failing,
  // so a conflict between workers that a writeset cannot see would be silent; and an update of a
  // row not copied yet takes a gap lock that another worker's insert then waits on until the
  // lock wait times out. The window is short: everything is applied one at a time in it.
  if (lenient_ || workers_.empty() || txn.writeset_version() < 1 || txn.part() != 0 ||
      !txn.last_part() || txn.is_ddl() || txn.rollback()) {
    return false;
  }
  for (const pb::Statement& statement : txn.statements()) {
    if (statement.kind() != pb::Statement::ROWS) return false;
  }
  for (const pb::TableName& t : txn.tables()) {
    auto key = std::make_pair(t.db(), t.table());
    auto it = transactional_.find(key);
    if (it == transactional_.end()) {
      // A writeset holds the keys of the rows a transaction changes, not the parent rows its
      // foreign keys check or the child rows they cascade to: two transactions on either side
      // of a foreign key may conflict unseen (a child inserted before its parent commits fails;
      // a parent's delete waits on a child's lock until the lock wait times out). Such tables
      // are applied serially.
      const std::string db = QuoteString(t.db());
      const std::string table = QuoteString(t.table());
      RS_ASSIGN_OR_RETURN(
          auto rows,
          session_->Query(
              fmt::format("SELECT ENGINE, (SELECT COUNT(*) FROM "
                          "information_schema.REFERENTIAL_CONSTRAINTS WHERE (CONSTRAINT_SCHEMA = "
                          "{0} AND TABLE_NAME = {1}) OR (UNIQUE_CONSTRAINT_SCHEMA = {0} AND "
                          "REFERENCED_TABLE_NAME = {1})) FROM information_schema.TABLES WHERE "
                          "TABLE_SCHEMA = {0} AND TABLE_NAME = {1}",
                          db, table),
              "look up the engine and foreign keys of a table"));
      const bool eligible = !rows.empty() && rows[0].size() >= 2 && rows[0][0].has_value() &&
                            *rows[0][0] == "InnoDB" && rows[0][1].value_or("1") == "0";
      it = transactional_.emplace(key, eligible).first;
    }
    if (!it->second) return false;
  }
  return true;
}

bool Applier::Dispatch(uint64_t seq, pb::DbTransaction* txn_in) {
  pb::DbTransaction& txn = *txn_in;
  Worker* free = nullptr;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // True when done waiting: stopping, a worker failed, or `free` is set.
    auto pick = [&] {
      CollectLocked();
      if (stop_ || worker_failed_) return true;
      for (uint64_t key : txn.writeset()) {
        if (busy_keys_.count(key) != 0) return false;
      }
      // A worker with nothing queued; an idle one first, else one that is busy (its next
      // transaction then waits in its queue, and its COMMIT travels with that one's start).
      free = nullptr;
      for (auto& w : workers_) {
        if (w->task) continue;
        if (!w->busy) {
          free = w.get();
          break;
        }
        if (free == nullptr) free = w.get();
      }
      return free != nullptr;
    };
    // Woken when a worker takes its task or reports a result, and by Stop; the timeout only
    // bounds a wake-up this could miss.
    while (!pick()) options_.clock->WaitFor(wake_cv_, lock, std::chrono::milliseconds(100), pick);
    if (stop_ || worker_failed_) return false;
    if (in_flight_.empty()) order_head_ = position_.seq;
    InFlight& f = in_flight_[seq];
    f.keys.assign(txn.writeset().begin(), txn.writeset().end());
    for (uint64_t key : f.keys) busy_keys_.insert(key);
    f.end.seq = seq;
    f.end.gtid = txn.gtid();
    f.end.source = BinlogPosition{txn.end_file(), txn.end_offset()};
    f.source_timestamp = txn.timestamp();
    f.rows = txn.row_count();
    free->task = Task{seq, std::move(txn)};
    dispatched_ = seq;
  }
  turn_cv_.notify_all();
  return true;
}

void Applier::CollectLocked() {
  bool published = false;
  while (!in_flight_.empty()) {
    auto it = in_flight_.begin();
    if (it->first != position_.seq + 1 || it->second.state != 1) break;
    for (uint64_t key : it->second.keys) busy_keys_.erase(key);
    position_ = it->second.end;
    ++status_.parallel_applied;
    PublishLocked(position_, /*applied=*/true, it->second.source_timestamp, it->second.rows,
                  /*ddl=*/false);
    in_flight_.erase(it);
    published = true;
  }
  if (published) progress_cv_.notify_all();
}

void Applier::RecoverFromWorkerFailure() {
  uint64_t failed_seq = 0;
  uint64_t last = 0;
  std::string failure;
  {
    std::unique_lock<std::mutex> lock(mu_);
    ++epoch_;
    turn_cv_.notify_all();
    // True once no worker runs a transaction and none is left in flight.
    auto settled = [&] {
      bool busy = false;
      for (auto& w : workers_) {
        if (w->task) {  // handed over but not started: never runs
          auto it = in_flight_.find(w->task->seq);
          if (it != in_flight_.end()) it->second.state = 2;
          w->task.reset();
        }
        busy = busy || w->busy;
      }
      bool running = false;
      for (const auto& [seq, f] : in_flight_) running = running || f.state == 0;
      return !busy && !running;
    };
    // Woken by the workers' results (WorkerReport, WorkerLoop); the timeout only bounds a
    // wake-up this could miss.
    while (!settled()) {
      options_.clock->WaitFor(wake_cv_, lock, std::chrono::milliseconds(50), settled);
    }
    CollectLocked();
    last = in_flight_.empty() ? dispatched_ : in_flight_.rbegin()->first;
    in_flight_.clear();
    worker_failed_ = false;
    failed_seq = failed_seq_;
    failure = std::move(failure_);
    failure_.clear();
    ++status_.serial_fallbacks;
  }
  busy_keys_.clear();
  serial_through_ = std::max(serial_through_, last);
  spdlog::warn(
      "applier: parallel apply stopped at seq {}: {}; the transactions in flight were rolled "
      "back; applying one at a time through seq {}, then in parallel again",
      failed_seq, failure, serial_through_);
  // The position is read again from replsync.applied when the session reconnects.
  deferred_.reset();
  session_.reset();
  ddl_session_.reset();
}

}  // namespace replsync::apply
