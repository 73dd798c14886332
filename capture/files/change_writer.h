// ChangeWriter: journals the file capture's pb::FileChange entries through the FileEntrySink
// and keeps the manifest's open SQLite transaction in step with the journal.
//
// The manifest is changed in an open transaction as entries are submitted (Begin opens it) and
// committed only after the journal made those entries durable (Commit: every `commit_interval`,
// and when forced), so the committed manifest never claims more than the journal holds.
// While the journal is full nothing is dropped: Submit waits (on the clock) until it has room or
// the capture stops.
// Thread-safety: not thread-safe; the capture's thread only, except WakeForStop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "sync/clock.h"
#include "sync/status.h"

namespace replsync {
class Manifest;
namespace pb {
class FileChange;
}  // namespace pb
}  // namespace replsync

namespace replsync::capture {

// Where FileCapture's entries go: the journal writer (CaptureService::SubmitExternal and
// WaitDurable in the daemon).
struct FileEntrySink {
  // Queues one serialized JournalEntry; `completes` ends a group (a file's last part). Returns
  // a ticket for wait_durable.
  std::function<Result<uint64_t>(std::string entry, bool completes)> submit;
  std::function<Status(uint64_t ticket)> wait_durable;
  std::function<bool()> journal_full;
  // The journal's last sequence (durable); a tree snapshot's journal_seq.
  std::function<uint64_t()> journal_last_seq;
};

// What the capture journaled since Start, for FileCaptureStatus; read from any thread.
struct FileCaptureCounters {
  std::atomic<uint64_t> changes_journaled{0};  // FileChange groups
  std::atomic<uint64_t> literal_bytes{0};      // content bytes shipped as data
  std::atomic<uint64_t> copied_bytes{0};       // content bytes the secondary copies
  std::atomic<uint64_t> abandoned{0};          // files that changed while read
};

class ChangeWriter {
 public:
  // Every reference must outlive the writer; `stop` ends a wait for journal room.
  ChangeWriter(Manifest& manifest, const FileEntrySink& sink, Clock& clock,
               std::chrono::milliseconds commit_interval, const std::atomic<bool>& stop,
               FileCaptureCounters& counters);

  // Opens the manifest's transaction unless one is open. Errors: the manifest's.
  Status Begin();
  // Journals `change`; `completes` ends its group (then the manifest has uncommitted changes).
  // Errors: Internal when it cannot be serialized, the sink's.
  Status Submit(const pb::FileChange& change, bool completes);
  // Commits the open transaction, once the journal holds every group submitted in it durably;
  // unless `force`, only when commit_interval passed since the last commit. Errors: the
  // sink's wait_durable, the manifest's.
  Status Commit(bool force);
  // Commit(false) when more than commit_interval passed since the last commit.
  Status CommitIfDue();
  // Sets the manifest's mtime of `path`'s parent folder to `mtime_ns` (journaled with the
  // change); nothing when there is no parent row or `mtime_ns` is -1.
  Status RecordParentMtime(const std::string& path, int64_t mtime_ns);
  // Ends the transaction without committing it (the capture stopped on an error).
  void Rollback();
  bool in_transaction() const { return in_txn_; }
  // Wakes a Submit waiting for journal room (the capture is stopping). Any thread.
  void WakeForStop();
  // Adopting (FileCaptureOptions::adopt_changed_before_ns; the reconciler sets it for each path
  // of the adopting scan): Submit journals nothing and counts the groups it was given; the
  // manifest still records what the reconciler puts there.
  void set_adopting(bool on) { adopting_ = on; }
  uint64_t adopted() const { return adopted_; }

 private:
  Manifest& manifest_;
  const FileEntrySink& sink_;
  Clock& clock_;
  const std::chrono::milliseconds commit_interval_;
  const std::atomic<bool>& stop_;
  FileCaptureCounters& counters_;

  bool adopting_ = false;
  uint64_t adopted_ = 0;      // groups given to Submit while adopting
  bool in_txn_ = false;       // the manifest has an open transaction
  bool uncommitted_ = false;  // ... with changes in it
  uint64_t last_ticket_ = 0;  // the last submitted group's ticket
  Clock::TimePoint last_commit_{};

  std::mutex full_mu_;  // guards nothing; the journal-full wait's mutex
  std::condition_variable full_cv_;
};

}  // namespace replsync::capture
