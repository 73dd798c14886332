// FileCapture: the primary's file side — the repository folder to journal entries.
//
// RepoWatcher (inotify) says which paths to look at again; FileCapture compares each such path
// with the manifest (what was journaled before, sync/manifest.h) and journals the difference as
// pb::FileChange entries (schemas/files.md) through a FileEntrySink — the CaptureService, so
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
//   (sync/file_delta.h), so a small change in a large file ships about one chunk; parts of about
//   `part_bytes` keep memory bounded. Literal pieces of `inline_bytes` or more are journaled as
//   references into the file, which FileContentReader fills in when the shipper sends them.
// - Before reading, a read lease is asked for: the kernel refuses it while anyone has the file
//   open for writing, which then waits like a file being written (SIGIO is ignored so that a
//   writer opening the file in that instant cannot end the process).
// - Paths are looked up and opened with OpenBeneath (sync/open_beneath.h), never through a
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
// Thread-safety: Start/Stop from one owning thread; RequestResync and status() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sync/files/file_tree.h"
#include "sync/status.h"
#include "sync/unique_fd.h"

struct stat;

namespace replsync {
class Manifest;
struct ManifestEntry;
namespace pb {
class FileChange;
}  // namespace pb
}  // namespace replsync

namespace replsync::capture {

class RepoWatcher;
struct RepoEvent;

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

struct FileCaptureOptions {
  std::string root;           // [repository] path
  std::string manifest_path;  // state_dir/manifest.db
  std::chrono::milliseconds quiet{200};
  std::chrono::milliseconds open_write_quiet{10000};
  std::chrono::milliseconds commit_interval{500};
  size_t part_bytes = 4 << 20;
  size_t read_block = 1 << 20;
  // Literal content of at least this many bytes in one op is journaled as a reference to the
  // file (FileContentReader fills it in when the entry is sent); smaller pieces are inline.
  size_t inline_bytes = 64 << 10;
};

// Fills in the content references of a FileChange from the primary's files (ContentOp
// source_* fields, schemas/files.md "Content in the journal"): each referenced range is read
// from `root`/path and must have the XXH3-128 the capture recorded.
// Thread-safety: one thread (the shipper's).
class FileContentReader {
 public:
  explicit FileContentReader(std::string root);
  ~FileContentReader();
  FileContentReader(const FileContentReader&) = delete;
  FileContentReader& operator=(const FileContentReader&) = delete;
  // True when every reference was filled (or there was none); false when the file is gone or
  // its bytes are no longer those the capture read (a later entry carries the newer state):
  // the change's references are then left as they are. Errors: IoError when the file exists
  // but cannot be read.
  Result<bool> Fill(pb::FileChange* change);

 private:
  std::string root_;
  UniqueFd root_fd_;
  // The file of the last call, kept open for the next part of the same file.
  std::string open_path_;
  UniqueFd open_fd_;
};

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
  FileCapture(FileCaptureOptions options, FileEntrySink sink);
  ~FileCapture();  // stops
  FileCapture(const FileCapture&) = delete;
  FileCapture& operator=(const FileCapture&) = delete;

  // Opens the manifest and the watcher (watches are in place before the first rescan, so no
  // change is missed) and starts the thread, which rescans first. Errors: the manifest's
  // (IoError, Corruption) and the watcher's (NotFound: no such repository folder).
  Status Start();
  // Stops the thread; the manifest keeps what the journal holds durably. Idempotent.
  void Stop();
  // The secondary could not rebuild these paths: journal their whole state again.
  void RequestResync(const std::vector<std::string>& paths);
  // A snapshot of the journaled tree for verify (see above); `done` is called once, from the
  // capture's thread (or at once with Aborted when the capture stopped). Errors given to `done`:
  // InvalidArgument for a bad resync path, the manifest's errors.
  struct TreeSnapshotRequest {
    bool deep = false;
    std::vector<std::string> resync_paths;
    std::function<void(Result<FileTreeSnapshot>)> done;
  };
  void RequestTreeSnapshot(TreeSnapshotRequest request);
  FileCaptureStatus status() const;
  // The last fatal error (the thread stopped), or OK.
  Status error() const;

 private:
  struct Dirty {
    std::chrono::steady_clock::time_point due;
    bool deep = false;     // a directory: look at everything below it
    bool writing = false;  // modified and not closed yet
    bool force = false;    // resync: whole content, even when unchanged
    uint64_t size = 0;
  };

  void Run();
  Status RunLoop();
  Status Rescan(const std::string& reason);
  void OnEvent(const RepoEvent& event);
  void Mark(const std::string& path, bool deep, bool force, bool writing_event, bool closed_event);
  Status ProcessDue(bool all);
  // Brings the journal and the manifest to the state of `path` on disk. `deep`: for a
  // directory, also everything below it (and what the manifest has below it that is gone).
  Status Reconcile(const std::string& path, bool deep, bool force);
  Status ReconcileDirectory(const std::string& path, const struct stat& st, bool deep, bool force,
                            const ManifestEntry* known);
  Status ShipFile(const std::string& path, const struct stat& st, bool force,
                  const ManifestEntry* known);
  Status HandleMove(const std::string& from, const std::string& to);
  Status Submit(const pb::FileChange& change, bool completes);
  Status CommitManifest(bool force);
  // One snapshot request (the thread's part of RequestTreeSnapshot).
  Result<FileTreeSnapshot> TakeTreeSnapshot(const TreeSnapshotRequest& request);
  // --deep: rereads every file whose stat matches its manifest row; journals those whose content
  // is not the one the manifest holds.
  Status RehashUnchanged();
  int64_t ParentMtime(const std::string& path);
  Status SetParentMtimeInManifest(const std::string& path, int64_t mtime_ns);
  void SetState(const std::string& state);

  FileCaptureOptions options_;
  FileEntrySink sink_;
  std::unique_ptr<Manifest> manifest_;
  std::unique_ptr<RepoWatcher> watcher_;
  UniqueFd root_fd_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool started_ = false;

  // ---- the thread's state
  std::map<std::string, Dirty> dirty_;
  std::string rescan_reason_;  // "" when none is due
  bool in_txn_ = false;        // the manifest has an open transaction
  bool uncommitted_ = false;   // ... with changes in it
  uint64_t last_ticket_ = 0;   // the last submitted group's ticket
  std::chrono::steady_clock::time_point last_commit_{};
  bool warned_special_ = false;
  std::string read_buffer_;  // ShipFile's read block

  // ---- shared (guarded by mu_)
  mutable std::mutex mu_;
  std::vector<std::string> resync_requests_;
  std::vector<TreeSnapshotRequest> snapshot_requests_;
  bool accepting_ = false;  // snapshot requests are taken (the thread runs)
  FileCaptureStatus status_;
  Status error_;
};

}  // namespace replsync::capture
