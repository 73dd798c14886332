// RepoWatcher: the primary's recursive inotify watch of the repository folder.
//
// It only reports what happened, as hints about which paths to look at again: the consumer
// (FileCapture) decides what to journal by lstat-ing those paths against the manifest
// (schemas/files.md). Correctness must not depend on seeing every event: when events are lost
// (queue overflow) or a directory cannot be watched, the watcher says so with kRescan and the
// consumer rescans the whole repository.
//
// Every directory below the root has a watch (symbolic links are never followed: directories are
// opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) relative to the root and watched
// through that descriptor). A directory created later gets its watch, and the directories below
// it theirs, before kSubtree is reported, so a scan made after the report misses nothing and
// later changes arrive as events.
//
// Time: the watcher's own timers (move_pairing_window, rewatch_interval) run on the injected
// Clock, so tests move them by hand; Poll's timeout bounds a wait on the kernel (poll(2)), which
// only real time can end, and is measured on the steady clock.
// Thread-safety: not thread-safe; one thread calls Poll, any thread may call Interrupt.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sync/clock.h"
#include "sync/status.h"
#include "sync/unique_fd.h"

struct inotify_event;

namespace replsync::capture {

// One change in the repository. Paths are relative to the root, '/' separated, "" is the root
// itself; names may hold any byte except '/' and NUL.
struct RepoEvent {
  enum class Kind : uint8_t {
    kChanged,      // `path` (file, symlink, directory itself) may have new content or metadata
    kWriting,      // the regular file `path` was modified (IN_MODIFY) and may still be open
    kClosedWrite,  // a file opened for writing at `path` was closed (IN_CLOSE_WRITE)
    kRemoved,      // `path` was deleted or moved out of the tree (a directory with all below it)
    kMoved,        // `from_path` was renamed to `path` within the tree (replacing what was there)
    kSubtree,      // the directory `path` appeared (created or moved in): scan everything below it
    kRescan,       // events were lost or a directory has no watch: rescan all; see `reason`
  };

  Kind kind = Kind::kChanged;
  std::string path;
  std::string from_path;  // kMoved only
  bool is_dir = false;    // the object is (or was) a directory, as inotify reports it
  std::string reason;     // kRescan only: what happened and what the operator can do about it

  friend bool operator==(const RepoEvent&, const RepoEvent&) = default;
};

const char* RepoEventKindName(RepoEvent::Kind kind);
// "kMoved a -> b (dir)", for logs and test failure messages.
std::string ToString(const RepoEvent& event);

struct RepoWatcherOptions {
  // How long a directory entry's IN_MOVED_FROM waits for the IN_MOVED_TO with its cookie; when
  // none comes the entry was moved out of the tree and is reported as kRemoved. The kernel queues
  // both halves of a rename together, so this only covers a read that splits the pair.
  std::chrono::milliseconds move_pairing_window{50};
  // While some directories have no watch (watch limit reached, unreadable directory), how often
  // the watcher tries to add the missing watches again. Each try reports kRescan, so changes in
  // unwatched directories are still picked up by the consumer's rescans.
  std::chrono::milliseconds rewatch_interval{std::chrono::seconds(30)};
};

class RepoWatcher {
 public:
  // Creates the inotify instance and adds watches on `root` and every directory below it.
  // Directories that cannot be watched (fs.inotify.max_user_watches reached, permission denied)
  // do not fail Open: the first Poll reports kRescan naming them, and the watcher retries them
  // every rewatch_interval. Errors: NotFound when `root` does not exist, InvalidArgument when it
  // is not a directory, IoError when the inotify instance or the root's own watch cannot be
  // created (the message says which limit to raise). `clock` must outlive the watcher.
  static Result<std::unique_ptr<RepoWatcher>> Open(const std::string& root,
                                                   const RepoWatcherOptions& options = {},
                                                   Clock& clock = SystemClock());
  ~RepoWatcher();
  RepoWatcher(const RepoWatcher&) = delete;
  RepoWatcher& operator=(const RepoWatcher&) = delete;

  // Waits up to `timeout` of real time (negative counts as zero) for events and appends them to
  // *out in the order they happened, then returns Ok. Returns Ok with nothing appended on timeout
  // or when Interrupt was called (also when it was called before this Poll started). A kRemoved for
  // a move out of the tree can come up to move_pairing_window after the events that followed it. A
  // kChanged, kWriting or kClosedWrite equal to the previous event for its path in the same call is
  // left out. When the root itself is deleted, moved or unmounted, one kRescan says so and nothing
  // is watched any more (the consumer should stop, or Open again once it is back). Errors: IoError
  // when reading the inotify descriptor or poll(2) fails.
  Status Poll(std::chrono::milliseconds timeout, std::vector<RepoEvent>* out);

  // Makes the current (or next) Poll return at once. Safe from any thread and signal handlers.
  void Interrupt();

  // Directories currently watched: the root, those below it, and those of a directory moved away
  // whose move is not resolved yet (at most move_pairing_window).
  size_t watch_count() const { return wd_to_path_.size(); }
  const std::string& root() const { return root_; }

 private:
  struct PendingMove {
    uint32_t cookie;
    std::string from_path;
    bool is_dir;
    Clock::TimePoint deadline;  // on clock_
    std::vector<int> watches;   // a directory's watches, detached from their paths meanwhile
  };

  RepoWatcher(std::string root, const RepoWatcherOptions& options, Clock& clock,
              UniqueFd inotify_fd, UniqueFd event_fd);

  // Adds watches on the directory `rel` and every directory below it; returns the watch
  // descriptors it holds afterwards. Directories that vanish meanwhile are skipped; other
  // failures are recorded in failures_ / first_failure_.
  std::vector<int> WatchTree(const std::string& rel);
  // Walks the whole tree again: adds missing watches, corrects paths, and drops watches on
  // directories no longer found in the tree. Returns true when every directory has a watch.
  bool Rewatch();
  // Records that `rel` (a directory) has the watch `wd`: a directory known under another path
  // is renamed there with everything below it; a different directory known at `rel` is dropped.
  void SetWatch(int wd, const std::string& rel);
  // Moves `from` and every watched directory below it to `to`, dropping what was watched there.
  void RenamePrefix(const std::string& from, const std::string& to);
  // A detached watch still maps to its old path for reporting, but no path maps to it: its
  // directory was moved away and the move is not paired yet.
  bool IsDetached(int wd) const;
  // Detaches the watches on `rel` and every directory below it; returns them.
  std::vector<int> Detach(const std::string& rel);
  // Attaches a paired move's detached watches below `to`, dropping what was watched there.
  void Reattach(const PendingMove& move, const std::string& to);
  // Removes the watches on `rel` and every directory below it.
  void DropTree(const std::string& rel);
  void DropWatch(int wd);
  // Removes the mapping for `wd` only (the kernel already removed the watch).
  void ForgetWatch(int wd);
  // Counts a directory below the root that could not be watched; the first one's reason is
  // reported. `operation` failed with `err` (ENOSPC: the watch limit was hit).
  void RecordFailure(const std::string& rel, const char* operation, int err);
  // ... `why` describes the failure already (OpenBeneath's Status).
  void RecordFailure(const std::string& rel, const Status& why);
  std::string FailureReason() const;
  void LoseRoot(const std::string& what);

  // Reads and handles every queued inotify event.
  Status ReadEvents();
  // `name` is the entry the event is about, "" for the watched directory itself.
  void HandleEvent(const inotify_event& event, const std::string& name);
  // After a batch of events: reports an overflow, expired moves, new watch failures, and
  // retries missing watches when due.
  void FinishBatch(Clock::TimePoint now);
  void Emit(RepoEvent event);

  const std::string root_;  // absolute
  const RepoWatcherOptions options_;
  Clock& clock_;
  const UniqueFd inotify_fd_;
  const UniqueFd event_fd_;
  // Watch through "/proc/self/fd/N" of a directory opened without following symbolic links;
  // false when /proc is not mounted: watch by path with IN_DONT_FOLLOW instead.
  bool use_proc_fd_ = true;
  int root_wd_ = -1;
  bool root_lost_ = false;

  // Every watch, with its directory's path; path_to_wd_ is the reverse for attached watches.
  std::unordered_map<int, std::string> wd_to_path_;
  std::map<std::string, int> path_to_wd_;  // ordered: a directory's descendants are one range
  std::vector<PendingMove> pending_moves_;

  // Watch failures not reported yet.
  size_t failures_ = 0;
  std::string first_failure_path_;
  Status first_failure_;  // its reason, naming the operation and the directory
  bool watch_limit_hit_ = false;
  // Some directory has no watch: retry at next_rewatch_.
  bool incomplete_ = false;
  Clock::TimePoint next_rewatch_;  // on clock_
  bool overflowed_ = false;

  std::vector<char> buffer_;
  // The Poll in progress: its output and, per path, the index of the last event appended for it.
  std::vector<RepoEvent>* out_ = nullptr;
  std::unordered_map<std::string, size_t> last_for_path_;
};

}  // namespace replsync::capture
