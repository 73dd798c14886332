#include "capture/files/change_writer.h"

#include <fmt/format.h>

#include <optional>

#include "replsync.pb.h"
#include "sync/files/manifest.h"
#include "sync/path_text.h"

namespace replsync::capture {

ChangeWriter::ChangeWriter(Manifest& manifest, const FileEntrySink& sink, Clock& clock,
                           std::chrono::milliseconds commit_interval, const std::atomic<bool>& stop,
                           FileCaptureCounters& counters)
    : manifest_(manifest),
      sink_(sink),
      clock_(clock),
      commit_interval_(commit_interval),
      stop_(stop),
      counters_(counters) {}

Status ChangeWriter::Begin() {
  if (in_txn_) return Status::Ok();
  RS_RETURN_IF_ERROR(manifest_.Begin());
  in_txn_ = true;
  return Status::Ok();
}

Status ChangeWriter::Submit(const pb::FileChange& change, bool completes) {
  if (adopting_) {
    if (completes) ++adopted_;
    return Status::Ok();
  }
  // Nothing is dropped while the journal is full: wait (the capture service says so loudly).
  while (sink_.journal_full && sink_.journal_full() && !stop_) {
    std::unique_lock<std::mutex> lock(full_mu_);
    clock_.WaitFor(full_cv_, lock, std::chrono::milliseconds(100), [this] { return stop_.load(); });
  }
  pb::JournalEntry entry;
  *entry.mutable_file() = change;
  std::string bytes;
  if (!entry.SerializeToString(&bytes)) {
    return Status::Internal(fmt::format("serialize the change of '{}'", change.path()));
  }
  RS_ASSIGN_OR_RETURN(uint64_t ticket, sink_.submit(std::move(bytes), completes));
  if (completes) {
    last_ticket_ = ticket;
    uncommitted_ = true;
    ++counters_.changes_journaled;
  }
  return Status::Ok();
}

Status ChangeWriter::Commit(bool force) {
  if (!in_txn_) return Status::Ok();
  if (!force && clock_.Now() - last_commit_ < commit_interval_) return Status::Ok();
  if (uncommitted_ && last_ticket_ != 0) RS_RETURN_IF_ERROR(sink_.wait_durable(last_ticket_));
  RS_RETURN_IF_ERROR(manifest_.Commit());
  in_txn_ = false;
  uncommitted_ = false;
  last_commit_ = clock_.Now();
  return Status::Ok();
}

Status ChangeWriter::CommitIfDue() {
  if (clock_.Now() - last_commit_ > commit_interval_) return Commit(/*force=*/false);
  return Status::Ok();
}

Status ChangeWriter::RecordParentMtime(const std::string& path, int64_t mtime_ns) {
  const std::string parent = ParentPath(path);
  if (parent.empty() || mtime_ns < 0) return Status::Ok();
  RS_ASSIGN_OR_RETURN(std::optional<ManifestEntry> e, manifest_.Get(parent));
  if (!e || e->type != ManifestEntry::Type::kDirectory || e->mtime_ns == mtime_ns) {
    return Status::Ok();
  }
  e->mtime_ns = mtime_ns;
  return manifest_.Put(*e);
}

void ChangeWriter::Rollback() {
  if (!in_txn_) return;
  (void)manifest_.Rollback();
  in_txn_ = false;
}

void ChangeWriter::WakeForStop() {
  std::lock_guard<std::mutex> lock(full_mu_);
  full_cv_.notify_all();
}

}  // namespace replsync::capture
