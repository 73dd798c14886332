// FileCapture: the primary's file side — the repository folder to journal entries.
//
// RepoWatcher (inotify) says which paths to look at again; FileCapture compares each such path
// with the manifest (what was journaled before, sync/files/manifest.h) and journals the difference
// as pb::FileChange entries (schemas/files.md) through a FileEntrySink — the CaptureService, so
// that files and database transactions share one journal and one sequence.
//
// - At Start, and whenever the watcher lost events (queue overflow, watch limit), it rescans the
//   whole tree against the manifest, so changes made while the daemon was down are found; a file
//   whose size, mtime, ctime and inode equal its manifest row is not read again.
// - A path is looked at once it has settled: `quiet` after its last event, and for a file that
//   was modified and not closed again, `open_write_quiet` (a writer that pauses longer than that
//   without closing the file gets its file shipped as it is, and again when it changes). A file
//   read while it changes (its size, mtime, ctime or inode differ after the read) is not
//   shipped: the entry group ends with an `abandoned` part and the path is looked at again.
// - Content: FastCDC chunks against the chunk list the manifest holds for the path
//   (sync/files/file_delta.h), so a small change in a large file ships about one chunk; parts of
//   about `part_bytes` keep memory bounded. Literal pieces of `inline_bytes` or more are journaled
//   as references into the file, which FileContentReader fills in when the shipper sends them.
// - Before reading, a read lease is asked for: the kernel refuses it while anyone has the file
//   open for writing, which then waits like a file being written (SIGIO is ignored so that a
//   writer opening the file in that instant cannot end the process).
// - Paths are looked up and opened with OpenBeneath (sync/files/open_beneath.h), never through a
//   symbolic link: a link is journaled as a link, and nothing below a symlinked folder is read
//   (such a path is not in the repository; the content reader refuses it too).
// - Renames inside the tree (a watcher move of a path the manifest knows, with the same inode)
//   become one RENAME entry; anything it cannot prove is handled as a delete plus new paths.
// - The manifest is changed in an open SQLite transaction as entries are submitted and committed
//   only after the journal made those entries durable (every `commit_interval`, and when idle), so
//   the committed manifest never claims more than the journal holds. After a crash the rescan
//   finds what the lost manifest changes described and journals it again; the secondary's apply
//   is idempotent (state-based), so that costs bytes, never correctness.
// - RequestResync (the secondary could not rebuild a path): the path's whole current state is
//   journaled again with literal data only (a directory: everything below it; a path that does
//   not exist: a DELETE, so that a secondary drops what the primary does not have).
// - RequestTreeSnapshot (`replsync verify` / `repair`, schemas/verify.md "Files"): on the thread,
//   first journals `resync_paths` whole, with `deep` rescans the tree and rereads every file whose
//   stat still matches its manifest row (a content change that kept size and mtime is journaled),
//   commits the manifest once the journal holds everything it describes, and hands over the
//   manifest's tree with the journal's last sequence: the tree is exactly the result of the file
//   entries up to that sequence. Events wait meanwhile (a --deep verify of a large repository
//   holds them for as long as reading every file takes).
//
// The parts, each in its own file: Settler (when a path has settled), Reconciler (a path or the
// tree against the manifest) with FileJournaler (a regular file's content), MoveDetector
// (renames), ChangeWriter (journal entries and the manifest's transaction), TreeSnapshotter
// (verify's snapshots). FileCapture owns them and two threads: the watch thread reads the
// RepoWatcher's events into a bounded queue (when the capture falls behind, the kernel's queue
// overflows and a rescan follows, as before); the capture thread decides, on the injected
// Clock, when each path is looked at.
// Thread-safety: Start/Stop from one owning thread; RequestResync, RequestTreeSnapshot, status()
// and error() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capture/files/change_writer.h"
#include "capture/files/file_capture_options.h"
#include "capture/files/file_content_reader.h"
#include "capture/files/repo_watcher.h"
#include "capture/files/tree_snapshot.h"
#include "sync/clock.h"
#include "sync/files/file_tree.h"
#include "sync/status.h"
#include "sync/unique_fd.h"

namespace replsync {
class Manifest;
}  // namespace replsync

namespace replsync::capture {

class MoveDetector;
class Reconciler;
class Settler;

struct FileCaptureStatus {
  std::string state = "stopped";  // stopped, scanning, watching, failed
  std::string root;
  uint64_t files_pending = 0;  // paths waiting to settle or to be looked at
  uint64_t bytes_pending = 0;  // their sizes, as of their last event
  int64_t last_rescan_unix = 0;
  std::string last_rescan_reason;
  uint64_t rescans = 0;
  uint64_t watches = 0;
  uint64_t changes_journaled = 0;  // FileChange groups since Start
  uint64_t literal_bytes = 0;      // content bytes shipped as data since Start
  uint64_t copied_bytes = 0;       // content bytes the secondary copies from its own copy
  uint64_t abandoned = 0;          // files that changed while read
  uint64_t resyncs_requested = 0;
  std::string last_error;
};

class FileCapture {
 public:
  // Called on the capture thread each time it is about to wait for events or time, with the
  // watcher's events it handled since the previous call; status() is current then. For tests,
  // which wait on it instead of sleeping.
  using WaitHook = std::function<void(const std::vector<RepoEvent>& handled)>;

  // `clock` times settling, commits and the watcher's timers; it must outlive the capture.
  FileCapture(FileCaptureOptions options, FileEntrySink sink, Clock& clock,
              WaitHook on_wait = nullptr);
  // On the system clock.
  FileCapture(FileCaptureOptions options, FileEntrySink sink);
  ~FileCapture();  // stops
  FileCapture(const FileCapture&) = delete;
  FileCapture& operator=(const FileCapture&) = delete;

  // Opens the manifest and the watcher (watches are in place before the first rescan, so no
  // change is missed) and starts the threads; the capture thread rescans first. Errors: the
  // manifest's (IoError, Corruption) and the watcher's (NotFound: no such repository folder).
  Status Start();
  // Stops the threads; the manifest keeps what the journal holds durably. Idempotent.
  void Stop();
  // The secondary could not rebuild these paths: journal their whole state again.
  void RequestResync(const std::vector<std::string>& paths);
  // A snapshot of the journaled tree for verify (see above); `done` is called once, from the
  // capture's thread (or at once with Aborted when the capture stopped). Errors given to `done`:
  // InvalidArgument for a bad resync path, the manifest's errors.
  using TreeSnapshotRequest = capture::TreeSnapshotRequest;
  void RequestTreeSnapshot(TreeSnapshotRequest request);
  FileCaptureStatus status() const;
  // The last fatal error (the thread stopped), or OK.
  Status error() const;

 private:
  void Run();
  Status RunLoop();
  // The watch thread: moves the watcher's events into events_.
  void Watch();
  // Takes the requests other threads left (resyncs, snapshots). Errors: a snapshot's failure
  // that is the capture's own (it stops).
  Status TakeRequests();
  Status Rescan(const std::string& reason);
  void OnEvent(const RepoEvent& event);
  // Looks at the paths that are due (all of them with `all`), in path order.
  Status ProcessDue(bool all);
  void PublishStatus();
  void SetState(const std::string& state);

  FileCaptureOptions options_;
  FileEntrySink sink_;
  Clock& clock_;
  const WaitHook on_wait_;
  std::unique_ptr<Manifest> manifest_;
  std::unique_ptr<RepoWatcher> watcher_;
  UniqueFd root_fd_;
  FileCaptureCounters counters_;
  // The parts (repo_paths.h names what they share); made by Start, used by the capture thread.
  std::unique_ptr<Settler> settler_;
  std::unique_ptr<ChangeWriter> writer_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<MoveDetector> moves_;
  std::unique_ptr<TreeSnapshotter> snapshots_;
  std::thread thread_;
  std::thread watch_thread_;
  std::atomic<bool> stop_{false};
  bool started_ = false;

  // ---- the capture thread's state
  std::string rescan_reason_;  // "" when none is due
  bool adopting_ = false;      // the next scan adopts (adopt_changed_before_ns); capture thread
  std::vector<RepoEvent> handled_;  // for on_wait_

  // ---- shared (guarded by mu_)
  mutable std::mutex mu_;
  std::condition_variable wake_;  // the capture thread: events, requests, stop
  std::condition_variable room_;  // the watch thread: events_ has room again, stop
  std::vector<RepoEvent> events_;
  Status watch_error_;  // the watcher failed; the capture stops with it
  std::vector<std::string> resync_requests_;
  std::vector<TreeSnapshotRequest> snapshot_requests_;
  bool accepting_ = false;  // snapshot requests are taken (the thread runs)
  FileCaptureStatus status_;
  Status error_;
};

}  // namespace replsync::capture
