#include "sync/journal/journal_writer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace replsync {

namespace {

// Accounting overhead of a queued item besides its entry's bytes.
constexpr size_t kItemOverhead = 64;
// How long an idle writer waits before it looks again (nothing depends on it: every change
// wakes the writer).
constexpr std::chrono::hours kIdleWait{24};

}  // namespace

JournalWriter::JournalWriter(Journal* journal, Options options, Clock& clock)
    : journal_(journal), options_(std::move(options)), clock_(clock) {}

JournalWriter::~JournalWriter() { Stop(); }

Status JournalWriter::Start(uint64_t last_complete_seq) {
  if (thread_.joinable()) return Status::Internal("journal writer already started");
  last_complete_seq_ = last_complete_seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ClearQueueLocked();
    aborted_ = false;
    input_ended_ = false;
    drained_ = false;
    exit_ = false;
    failed_ = false;
    txn_open_ = false;
    external_open_ = false;
    running_ = true;
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void JournalWriter::Abort() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_ = true;
    WakeWriterLocked();
  }
  space_cv_.notify_all();
}

void JournalWriter::EndOfInput() {
  std::lock_guard<std::mutex> lock(mu_);
  input_ended_ = true;
  WakeWriterLocked();
  space_cv_.notify_all();
}

void JournalWriter::WaitDrained() {
  std::unique_lock<std::mutex> lock(mu_);
  space_cv_.wait(lock, [this] { return drained_ || !running_; });
}

void JournalWriter::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    exit_ = true;
    WakeWriterLocked();
  }
  thread_.join();
}

void JournalWriter::WakeWriterLocked() {
  ++wakeups_;
  work_cv_.notify_all();
}

Result<uint64_t> JournalWriter::Submit(Item item) {
  std::unique_lock<std::mutex> lock(mu_);
  space_cv_.wait(lock, [this] {
    return queued_bytes_ - external_bytes_ < options_.queue_bytes || aborted_ || failed_;
  });
  if (failed_) return Status::Aborted("journal writer failed");
  if (aborted_ && queued_bytes_ - external_bytes_ >= options_.queue_bytes) {
    return Status::Aborted("capture stopped");
  }
  if (!item.has_entry && item.completes && !has_meta_queued_) {
    has_meta_queued_ = true;
    first_meta_queued_ = clock_.Now();
  }
  if (item.has_entry) ++queued_entries_;
  if (item.request != Request::kNone) ++queued_requests_;
  queued_bytes_ += item.entry.size() + kItemOverhead;
  const uint64_t ticket = ++next_ticket_;
  queue_.push_back(Queued{std::move(item), false, ticket});
  WakeWriterLocked();
  return ticket;
}

Result<uint64_t> JournalWriter::SubmitExternal(std::string entry, bool completes) {
  std::unique_lock<std::mutex> lock(mu_);
  space_cv_.wait(lock, [this] {
    // Its own budget: the writer cannot take these while a primary group is half appended,
    // and the primary producer must still be able to queue the rest of it.
    return external_bytes_ < options_.queue_bytes || aborted_ || failed_ || input_ended_;
  });
  if (failed_) return Status::Aborted("journal writer failed");
  if (aborted_ || input_ended_) return Status::Aborted("capture stopped");
  Queued queued;
  queued.item.entry = std::move(entry);
  queued.item.has_entry = true;
  queued.item.completes = completes;
  queued.external = true;
  queued.ticket = ++next_ticket_;
  const uint64_t ticket = queued.ticket;
  const size_t bytes = queued.item.entry.size() + kItemOverhead;
  ++queued_entries_;
  queued_bytes_ += bytes;
  external_bytes_ += bytes;
  external_.push_back(std::move(queued));
  WakeWriterLocked();
  return ticket;
}

Status JournalWriter::WaitDurable(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  space_cv_.wait(lock,
                 [&] { return durable_ticket_ >= ticket || failed_ || aborted_ || input_ended_; });
  if (durable_ticket_ >= ticket) return Status::Ok();
  return Status::Aborted(failed_ ? "journal writer failed" : "capture stopped");
}

Status JournalWriter::WaitWritten(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  space_cv_.wait(lock, [&] { return written_ticket_ >= ticket || failed_ || aborted_; });
  if (written_ticket_ >= ticket) return Status::Ok();
  return Status::Aborted(failed_ ? "journal writer failed" : "capture stopped");
}

bool JournalWriter::WorkReadyLocked() const {
  if (external_open_) return !external_.empty();
  if (txn_open_) return !queue_.empty();
  return !queue_.empty() || !external_.empty();
}

bool JournalWriter::TakeNextLocked(std::vector<Queued>* batch, size_t* entries, size_t* bytes) {
  std::deque<Queued>* from = nullptr;
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
  Queued& queued = from->front();
  const Item& item = queued.item;
  if (item.request != Request::kNone) --queued_requests_;
  // The group's appended parts are removed by this request before anything else is taken.
  if (item.request == Request::kDiscard) txn_open_ = false;
  if (item.has_entry) {
    ++*entries;
    --queued_entries_;
    if (queued.external) {
      external_open_ = !item.completes;
    } else {
      txn_open_ = !item.completes;
    }
  }
  *bytes += item.entry.size();
  queued_bytes_ -= item.entry.size() + kItemOverhead;
  if (queued.external) external_bytes_ -= item.entry.size() + kItemOverhead;
  batch->push_back(std::move(queued));
  from->pop_front();
  return true;
}

void JournalWriter::Run() {
  std::vector<Queued> batch;
  while (true) {
    std::optional<Retention> retention;
    {
      std::unique_lock<std::mutex> lock(mu_);
      bool take = false;
      while (true) {
        const bool ready = WorkReadyLocked();
        // Only meta queued: it is written after meta_delay.
        const Clock::TimePoint deadline = first_meta_queued_ + options_.meta_delay;
        if (ready && (queued_entries_ > 0 || queued_requests_ > 0 || input_ended_ ||
                      clock_.Now() >= deadline)) {
          take = true;
          break;
        }
        if (!ready && input_ended_ && !drained_) {
          drained_ = true;  // WaitDrained returns: the primary producer's queue is written
          space_cv_.notify_all();
        }
        // A retention waits for nothing queued (not for the rest of a group, not for the
        // producer, which may be paused for the very space it frees).
        if (retention_.has_value()) break;
        if (!ready && exit_) {
          running_ = false;
          space_cv_.notify_all();
          return;
        }
        const uint64_t seen = wakeups_;
        clock_.WaitUntil(work_cv_, lock, ready ? deadline : clock_.Now() + kIdleWait,
                         [&] { return wakeups_ != seen; });
      }
      if (take) {
        if (options_.batch_delay.count() > 0 && !input_ended_ && queued_requests_ == 0) {
          clock_.WaitFor(work_cv_, lock, options_.batch_delay, [this] {
            return input_ended_ || queued_requests_ > 0 ||
                   queued_entries_ >= options_.batch_entries ||
                   queued_bytes_ >= options_.batch_bytes;
          });
        }
        // A request ends the batch: AppendBatch carries it out after appending the rest.
        size_t entries = 0, bytes = 0;
        while (batch.empty() ||
               (batch.back().item.request == Request::kNone && entries < options_.batch_entries &&
                bytes < options_.batch_bytes)) {
          if (!TakeNextLocked(&batch, &entries, &bytes)) break;
        }
        has_meta_queued_ = false;
        for (const Queued& queued : queue_) {
          if (!queued.item.has_entry && queued.item.completes) {
            has_meta_queued_ = true;
            first_meta_queued_ = clock_.Now();
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
      // Its failure is the retention's submitter's to report; the writer goes on.
      Status retained = RunRetention(*retention);
      for (auto& done : retention->done) done(retained);
      retention.reset();
    }
    if (!s.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        failed_ = true;
        aborted_ = true;
        running_ = false;  // SubmitRetention answers Aborted from now on
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
      if (options_.on_failure) options_.on_failure(s);
      return;
    }
    space_cv_.notify_all();
  }
}

Status JournalWriter::RunRetention(const Retention& retention) {
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

void JournalWriter::SubmitRetention(uint64_t up_to, Meta meta, std::function<void(Status)> done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_) {
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
      WakeWriterLocked();
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

void JournalWriter::ClearQueueLocked() {
  queue_.clear();
  external_.clear();
  queued_bytes_ = 0;
  external_bytes_ = 0;
  queued_entries_ = 0;
  queued_requests_ = 0;
  has_meta_queued_ = false;
}

void JournalWriter::AfterJournalWrite(const char* op) const {
  if (options_.after_journal_write) options_.after_journal_write(op);
}

Status JournalWriter::AppendBatch(std::vector<Queued>* batch) {
  std::vector<std::string> entries;
  entries.reserve(batch->size());
  const uint64_t first = journal_->last_seq() + 1;
  std::optional<uint64_t> complete_seq;
  const Meta* group_meta = nullptr;  // the latest primary item that completes
  Written written;
  uint64_t external_ticket = 0;  // the last external group this batch completes
  uint64_t written_ticket = 0;   // the last primary item of the batch
  for (Queued& queued : *batch) {
    Item& item = queued.item;
    if (item.has_entry) {
      entries.push_back(std::move(item.entry));
      if (item.completes) {
        complete_seq = first + entries.size() - 1;
        if (queued.external) external_ticket = queued.ticket;
      }
    }
    if (!queued.external) {
      ++written.items;
      written.item_seqs.push_back(item.has_entry ? first + entries.size() - 1 : 0);
      written_ticket = queued.ticket;
      if (item.completes) group_meta = &item.meta;
    }
  }
  Meta meta;
  const uint64_t new_complete = complete_seq.value_or(last_complete_seq_.load());
  if (group_meta != nullptr) {
    meta = *group_meta;
    meta.emplace_back(options_.last_complete_key, std::to_string(new_complete));
  } else if (complete_seq.has_value()) {
    meta = {{options_.last_complete_key, std::to_string(new_complete)}};
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
  last_complete_seq_ = new_complete;
  if (!batch->empty() && batch->back().item.request == Request::kDiscard) {
    // TakeNextLocked cleared txn_open_ already; nothing is taken before this returns.
    const uint64_t complete = last_complete_seq_.load();
    if (journal_->last_seq() > complete) {
      spdlog::info("capture: removing journal entries {}..{} of an unfinished transaction",
                   complete + 1, journal_->last_seq());
      RS_RETURN_IF_ERROR(journal_->TruncateAfter(complete));
      AfterJournalWrite("TruncateAfter");
    }
  }
  written.completed_group = complete_seq.has_value();
  written.last_seq = journal_->last_seq();
  if (options_.on_written && (written.items > 0 || written.completed_group)) {
    options_.on_written(written);
  }
  if (external_ticket != 0 || written_ticket != 0) {
    std::lock_guard<std::mutex> lock(mu_);
    if (external_ticket != 0) durable_ticket_ = external_ticket;
    if (written_ticket != 0) written_ticket_ = written_ticket;
  }
  return Status::Ok();
}

}  // namespace replsync
