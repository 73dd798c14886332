// Test harness for file replication (schemas/files.md): snapshots of a repository folder and
// their comparison, self-validating file content with a sampler that looks for files a secondary
// shows half written, and a deterministic churn workload for the primary's repository.
//
// None of this depends on the daemons' file code; tests compare what ends up on disk.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "sync/path_text.h"
#include "sync/status.h"

namespace replsync::testing {

// ---------------------------------------------------------------------------------------------
// Tree snapshots

// Name prefix of the secondary's temporary files (schemas/files.md, "Atomic apply").
inline constexpr std::string_view kReplsyncTempPrefix = ".replsync-tmp.";

enum class EntryType { kFile, kDirectory, kSymlink, kOther };

// "file", "directory", "symlink", "other".
std::string_view EntryTypeName(EntryType type);

// What replicates of one path: everything here must be equal on primary and secondary.
struct TreeEntry {
  EntryType type = EntryType::kOther;
  uint32_t mode = 0;  // st_mode & 07777 (permission, setuid, setgid, sticky bits)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;        // files: bytes; symlinks: length of the target; others: 0
  int64_t mtime_ns = 0;     // 0 for directories when SnapshotOptions::directory_mtimes is false
  std::string link_target;  // symlinks only, as stored (never followed)
  std::array<uint64_t, 2> content_hash{};  // files only: XXH3-128 of the content {high, low}

  bool operator==(const TreeEntry&) const = default;
};

// Relative path ("a/b", '/' separated, as in FileChange.path) -> entry; the root is ".".
using TreeSnapshot = std::map<std::string, TreeEntry>;

struct SnapshotOptions {
  // Leave out entries whose name starts with ".replsync-tmp." (and what is below them).
  bool skip_temporaries = true;
  // Record directories' mtimes; when false they are recorded as 0, so they compare equal.
  // Take both snapshots of a comparison with the same options.
  bool directory_mtimes = true;
  // Include the root directory itself, under the path ".".
  bool include_root = false;
};

// Walks the tree below `root` with lstat semantics (a symbolic link is recorded, never
// followed) and reads every regular file to hash it. The tree should be quiet while this runs.
// Errors: InvalidArgument when `root` is not a directory; NotFound when it does not exist;
// IoError (naming the path) when an entry cannot be read or vanishes during the walk.
Result<TreeSnapshot> SnapshotTree(const std::string& root, const SnapshotOptions& options = {});

// Describes how `secondary` differs from `primary`, one human-readable line per difference,
// paths with control characters escaped ("line\nbreak"); empty when they are equal:
//   "missing on secondary: x"        "extra on secondary: w"
//   "type differs: x (file vs directory)"
//   "content differs: x (size 10 vs 12)"
//   "link target differs: x (\"a\" vs \"b\")"
//   "mode differs: x (0644 vs 0600)"  "owner differs: x (uid:gid 0:0 vs 7:7)"
//   "mtime differs: x (1700000000.123456789 vs 1700000000.123456000)"
// The entries below a missing or extra directory are counted on its line, not listed. At most
// `max_lines` differences are listed, then a line "... and N more".
std::vector<std::string> CompareTrees(const TreeSnapshot& primary, const TreeSnapshot& secondary,
                                      size_t max_lines = 50);

// "1700000000.123456789" (seconds.nanoseconds since the epoch).
std::string FormatNanos(int64_t ns);

// A path with '\\', control bytes and DEL escaped ("line\nbreak", "\x01"); UTF-8 stays as is.
using ::replsync::EscapePath;

// ---------------------------------------------------------------------------------------------
// Self-validating content

// Files whose name starts with this prefix hold MakeCheckedContent content.
inline constexpr std::string_view kCheckedPrefix = "checked-";
inline constexpr size_t kCheckedTrailerBytes = 32;

// Deterministic pseudo-random bytes for `seed`, followed by a 32-byte trailer: magic
// "RSCHECK1", the total length (uint64 little-endian), XXH3-64 of the body and XXH3-64 of the
// trailer's first 24 bytes. Sizes below 32 are raised to 32 (an empty body).
std::string MakeCheckedContent(uint64_t seed, size_t size);

// True when `content` is exactly one whole MakeCheckedContent output: a truncated, extended or
// modified one fails.
bool IsCheckedContentComplete(std::string_view content);

// `size` deterministic pseudo-random bytes for `seed` (the body generator of checked content).
std::string PseudoRandomBytes(uint64_t seed, size_t size);

// ---------------------------------------------------------------------------------------------
// Partial-file sampler

// Scans a directory tree over and over from its own thread, reading every regular file whose
// name does not start with ".replsync-tmp.", and records each file named "checked-*" whose
// content is not IsCheckedContentComplete: on a secondary, such a file was made visible half
// written. A file that vanishes before it is opened, or changes while it is read (inode, size,
// mtime or ctime differ between fstat before and after, or the read comes up short), is not a
// finding; the next round reads it again. Unreadable directories and a missing root are skipped.
// Thread-safety: all public methods are thread-safe.
class PartialFileSampler {
 public:
  struct Finding {
    std::string path;  // relative to the root
    uint64_t size = 0;
    bool operator==(const Finding&) const = default;
    auto operator<=>(const Finding&) const = default;
  };
  struct Options {
    // Pause between two rounds, so the scan leaves CPU to the daemons.
    std::chrono::milliseconds pause_between_rounds{5};
  };

  explicit PartialFileSampler(std::string root) : PartialFileSampler(std::move(root), Options{}) {}
  PartialFileSampler(std::string root, Options options);
  ~PartialFileSampler();  // Stop()
  PartialFileSampler(const PartialFileSampler&) = delete;
  PartialFileSampler& operator=(const PartialFileSampler&) = delete;

  // Starts the scanning thread; does nothing when it runs already.
  void Start();
  // Stops and joins the thread after the file it is reading. Idempotent; Start() may follow.
  void Stop();

  // Each (path, size) found incomplete, once, in the order found.
  std::vector<Finding> findings() const;
  // Whole scans of the tree completed.
  uint64_t rounds() const;
  // Blocks until `n` more whole scans have completed after the call, or `timeout` passed.
  // Returns whether they did.
  bool WaitRounds(uint64_t n, std::chrono::milliseconds timeout);
  // Regular files read consistently (checked or not) over all rounds.
  uint64_t files_checked() const;

 private:
  void Run();
  void ScanDirectory(int dir_fd, const std::string& rel);
  void CheckFile(int dir_fd, const std::string& name, const std::string& rel);

  const std::string root_;
  const Options options_;
  std::thread thread_;  // used by Start/Stop only, under control_mutex_
  std::mutex control_mutex_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;  // stop_ and rounds_ changes
  std::atomic<bool> stop_{false};  // also waited for under mutex_
  std::vector<Finding> findings_;  // guarded by mutex_
  std::set<Finding> finding_set_;  // guarded by mutex_
  uint64_t rounds_ = 0;            // guarded by mutex_
  uint64_t files_checked_ = 0;     // guarded by mutex_
  std::vector<char> buffer_;       // scanning thread only
};

// ---------------------------------------------------------------------------------------------
// Churn workload

struct ChurnOptions {
  uint64_t seed = 1;
  // Large files: created with a size in [min, max]; at most max_large_files exist at a time
  // (another creation rewrites one of them instead).
  uint64_t min_large_bytes = 8ull << 20;
  uint64_t max_large_bytes = 48ull << 20;
  int max_large_files = 4;
  // Small-file bursts: this many "checked-" files of 32..small_file_max_bytes bytes.
  int min_burst_files = 20;
  int max_burst_files = 100;
  size_t small_file_max_bytes = 16 << 10;
  // Plain (non-checked) small files: 0..plain_file_max_bytes bytes.
  size_t plain_file_max_bytes = 64 << 10;
  // Slow writers: a checked file of up to slow_file_max_bytes written in place in
  // slow_write_pieces pieces, spread over a time between min and max slow_write_duration.
  std::chrono::milliseconds min_slow_write_duration{1000};
  std::chrono::milliseconds max_slow_write_duration{2000};
  int slow_write_pieces = 10;
  size_t slow_file_max_bytes = 256 << 10;
  int max_slow_writers = 4;  // running at a time; one more waits for the oldest to finish
  // Directories are created at most this deep (1 = directly below the root).
  int max_depth = 4;
};

// Changes a repository folder (the primary's) the way users would, step by step, so a test can
// interleave steps with daemon kills. Everything it does follows from the seed and the tree
// it started from: names, sizes, content, modes, owners (uid/gid 1..60000: run as root), mtimes.
//
// Files named "checked-*" always hold whole MakeCheckedContent content once their writer is
// done, so the PartialFileSampler can watch the secondary; other files never get that prefix.
// Slow writers write "slow/checked-slow-<n>" in place (O_TRUNC, pieces, sleeps) from their own
// threads; no other step touches "slow/". Temporary names the workload itself renames from
// start with ".churn-tmp-".
// Thread-safety: not thread-safe (the slow writers' threads are internal).
class ChurnWorkload {
 public:
  enum class Kind {
    kSmallFileBurst,   // many small checked files in one directory (sometimes a new one)
    kLargeFile,        // a large file (random content), or rewrite of one in place
    kOverwriteMiddle,  // overwrite a few KiB at an offset of a large file, in place
    kInsertMiddle,     // insert bytes in the middle of a large file (temp+rename or in place)
    kAppend,           // append to a non-checked file
    kTruncate,         // shrink (sometimes to 0) or extend a non-checked file
    kRenameFile,       // rename a file or symlink, across directories, sometimes over another
    kRenameDirectory,  // rename a whole directory tree to another place
    kDelete,           // remove a file, symlink or whole directory tree
    kRecreate,         // create again a recently deleted path, possibly with another type
    kChmod,            // mode-only change (0600, 0755, 04755, ...; directories too)
    kTouch,            // mtime-only change with nanoseconds (utimensat, also on symlinks)
    kChown,            // owner-only change to uid/gid in 1..60000 (lchown semantics)
    kSymlink,          // a symlink: relative, absolute to inside the root, or dangling
    kRetargetSymlink,  // replace a symlink by one with another target (temp+rename)
    kSlowWrite,        // start a slow writer thread
    kSpecialNames,     // entries named with spaces, non-ASCII, a leading dash, a newline
    kMakeDirectory,    // an empty directory
  };
  static const std::vector<Kind>& AllKinds();
  static std::string_view KindName(Kind kind);

  // Prepares a workload on the existing directory `root` (its current entries are known to
  // the workload from the start). Errors: NotFound / InvalidArgument when `root` is not a
  // directory; IoError when it cannot be listed.
  static Result<std::unique_ptr<ChurnWorkload>> Open(const std::string& root,
                                                     ChurnOptions options = {});
  ~ChurnWorkload();  // stops the slow writers (their files may stay incomplete) and joins them
  ChurnWorkload(const ChurnWorkload&) = delete;
  ChurnWorkload& operator=(const ChurnWorkload&) = delete;

  // Runs one step of `kind`. When no entry suits it (nothing to rename), it first creates one.
  // Errors: IoError naming the step and the path; the tree is then as far as the step got.
  Status RunStep(Kind kind);
  // Runs `n` steps of kinds chosen at random (weighted); stops at the first error.
  Status RunRandomSteps(int n);
  // Waits until every slow writer has finished; returns the first error one of them had.
  Status WaitForSlowWriters();

  const std::string& root() const { return root_; }
  uint64_t steps_run() const { return steps_run_; }
  // One line per step run ("rename_file a/b -> c"), for failure messages.
  const std::vector<std::string>& history() const { return history_; }

 private:
  enum class Node { kFile, kDirectory, kSymlink };
  class SlowWriters;

  ChurnWorkload(std::string root, ChurnOptions options);
  Status Scan();

  // Random choices.
  uint64_t Next();
  uint64_t Uniform(uint64_t lo, uint64_t hi);  // inclusive
  bool OneIn(uint64_t n);
  // `dir`/<prefix><unique number>[special suffix]<extension>, not in the model yet.
  std::string NewPath(const std::string& dir, std::string_view prefix,
                      std::string_view extension = "");
  std::string PickDirectory(bool for_new_child);  // "" = the root
  std::vector<std::string> Entries(bool (*filter)(const std::string&, Node)) const;
  std::string Pick(const std::vector<std::string>& candidates);
  std::string Full(const std::string& rel) const;
  static std::string Join(const std::string& dir, const std::string& name);
  static std::string Parent(const std::string& rel);
  static std::string BaseName(const std::string& rel);
  int Depth(const std::string& rel) const;
  void Log(std::string line);

  // Creation helpers shared by steps; each updates the model.
  Status CreateFile(const std::string& rel);  // checked or plain content, by name
  Status CreateLargeFile(const std::string& rel);
  Status CreateDirectory(const std::string& rel);
  Status CreateSymlink(const std::string& rel);
  std::string SymlinkTarget(const std::string& link_rel);
  Result<std::string> EnsurePlainFile();
  Result<std::string> EnsureLargeFile();
  Result<std::string> EnsureSymlink();
  Result<std::string> EnsureDirectory();
  void ForgetSubtree(const std::string& rel);
  void MoveSubtree(const std::string& from, const std::string& to);

  Status SmallFileBurst();
  Status LargeFile();
  Status OverwriteMiddle();
  Status InsertMiddle();
  Status Append();
  Status Truncate();
  Status RenameFile();
  Status RenameDirectory();
  Status Delete();
  Status Recreate();
  Status Chmod();
  Status Touch();
  Status Chown();
  Status Symlink();
  Status RetargetSymlink();
  Status SlowWrite();
  Status SpecialNames();
  Status MakeDirectory();

  const std::string root_;
  const ChurnOptions options_;
  std::mt19937_64 rng_;
  uint64_t counter_ = 0;  // for unique names
  uint64_t slow_counter_ = 0;
  std::map<std::string, Node> model_;                 // every entry below the root except "slow/"
  std::deque<std::pair<std::string, Node>> deleted_;  // recently deleted paths, newest last
  std::unique_ptr<SlowWriters> slow_writers_;
  uint64_t steps_run_ = 0;
  std::vector<std::string> history_;
};

}  // namespace replsync::testing
