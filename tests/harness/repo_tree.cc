#include "tests/harness/repo_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "sync/path_text.h"
#include "sync/unique_fd.h"

namespace replsync::testing {
namespace {

// openat(dir_fd, name, flags | O_CLOEXEC, mode). Errors: NotFound for ENOENT, IoError
// otherwise, both naming `display`.
Result<UniqueFd> OpenAt(int dir_fd, const std::string& name, int flags, const std::string& display,
                        mode_t mode = 0) {
  UniqueFd fd(openat(dir_fd, name.c_str(), flags | O_CLOEXEC, mode));
  if (!fd.valid()) {
    int err = errno;
    std::string msg = "open " + display + ": " + std::strerror(err);
    return err == ENOENT ? Status::NotFound(msg) : Status::IoError(msg);
  }
  return fd;
}

Status ErrnoStatus(const std::string& op, const std::string& path, int err) {
  std::string msg = op + " " + EscapePath(path) + ": " + std::strerror(err);
  return err == ENOENT ? Status::NotFound(msg) : Status::IoError(msg);
}
Status ErrnoStatus(const std::string& op, const std::string& path) {
  return ErrnoStatus(op, path, errno);
}

// The names in the directory open as `dir_fd` (without "." and ".."), sorted.
Result<std::vector<std::string>> ListDirectory(int dir_fd, const std::string& display) {
  UniqueFd fd(dup(dir_fd));
  if (!fd.valid()) return ErrnoStatus("dup directory fd of", display);
  DIR* dir = fdopendir(fd.get());
  if (dir == nullptr) return ErrnoStatus("opendir", display);
  (void)fd.release();  // closedir closes it
  std::unique_ptr<DIR, int (*)(DIR*)> owner(dir, closedir);
  rewinddir(dir);  // the dup shares the offset with dir_fd
  std::vector<std::string> names;
  while (true) {
    errno = 0;
    dirent* ent = readdir(dir);
    if (ent == nullptr) {
      if (errno != 0) return ErrnoStatus("readdir", display);
      break;
    }
    std::string_view name = ent->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

EntryType TypeOf(mode_t mode) {
  if (S_ISREG(mode)) return EntryType::kFile;
  if (S_ISDIR(mode)) return EntryType::kDirectory;
  if (S_ISLNK(mode)) return EntryType::kSymlink;
  return EntryType::kOther;
}

TreeEntry EntryFromStat(const struct stat& st, const SnapshotOptions& options) {
  TreeEntry e;
  e.type = TypeOf(st.st_mode);
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.mtime_ns = MtimeNs(st);
  if (e.type == EntryType::kFile || e.type == EntryType::kSymlink) {
    e.size = static_cast<uint64_t>(st.st_size);
  }
  if (e.type == EntryType::kDirectory && !options.directory_mtimes) e.mtime_ns = 0;
  return e;
}

// Hashes the regular file `name` in `dir_fd` into `entry` (type, metadata and content from the
// opened file). Errors: IoError when it cannot be read or changes size while read.
Status HashFile(int dir_fd, const std::string& name, const std::string& display,
                const SnapshotOptions& options, std::vector<char>* buffer, TreeEntry* entry) {
  RS_ASSIGN_OR_RETURN(UniqueFd fd,
                      OpenAt(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, display));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat", display);
  *entry = EntryFromStat(st, options);
  if (entry->type != EntryType::kFile) {
    return Status::IoError("snapshot " + display + ": replaced by a " +
                           std::string(EntryTypeName(entry->type)) + " while walking the tree");
  }
  std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> state(XXH3_createState(),
                                                                        XXH3_freeState);
  if (state == nullptr) return Status::Internal("XXH3_createState: out of memory");
  XXH3_128bits_reset(state.get());
  uint64_t total = 0;
  while (true) {
    ssize_t n = read(fd.get(), buffer->data(), buffer->size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", display);
    }
    if (n == 0) break;
    XXH3_128bits_update(state.get(), buffer->data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  if (total != entry->size) {
    return Status::IoError("snapshot " + display + ": size changed while reading (" +
                           std::to_string(entry->size) + " then " + std::to_string(total) +
                           " bytes); is the tree still being written?");
  }
  XXH128_hash_t h = XXH3_128bits_digest(state.get());
  entry->content_hash = {h.high64, h.low64};
  return Status::Ok();
}

Status SnapshotDirectory(int dir_fd, const std::string& rel, const std::string& root,
                         const SnapshotOptions& options, std::vector<char>* buffer,
                         TreeSnapshot* out) {
  std::string dir_display = rel.empty() ? root : root + "/" + EscapePath(rel);
  RS_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir_fd, dir_display));
  for (const std::string& name : names) {
    if (options.skip_temporaries && name.starts_with(kReplsyncTempPrefix)) continue;
    std::string child = JoinPath(rel, name);
    std::string display = root + "/" + EscapePath(child);
    struct stat st;
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus("lstat", display).WithContext("snapshot tree " + root);
    }
    TreeEntry entry = EntryFromStat(st, options);
    if (entry.type == EntryType::kFile) {
      RS_RETURN_IF_ERROR(HashFile(dir_fd, name, display, options, buffer, &entry));
    } else if (entry.type == EntryType::kSymlink) {
      char target[PATH_MAX + 1];
      ssize_t n = readlinkat(dir_fd, name.c_str(), target, sizeof(target));
      if (n < 0) return ErrnoStatus("readlink", display).WithContext("snapshot tree " + root);
      entry.link_target.assign(target, static_cast<size_t>(n));
      entry.size = entry.link_target.size();
    } else if (entry.type == EntryType::kDirectory) {
      RS_ASSIGN_OR_RETURN(UniqueFd sub,
                          OpenAt(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, display));
      RS_RETURN_IF_ERROR(SnapshotDirectory(sub.get(), child, root, options, buffer, out));
    }
    (*out)[child] = std::move(entry);
  }
  return Status::Ok();
}

std::string FormatMode(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04o", mode);
  return buf;
}

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void PutLe64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t GetLe64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

constexpr std::string_view kCheckedMagic = "RSCHECK1";

}  // namespace

// ---------------------------------------------------------------------------------------------
// Snapshots

std::string_view EntryTypeName(EntryType type) {
  switch (type) {
    case EntryType::kFile:
      return "file";
    case EntryType::kDirectory:
      return "directory";
    case EntryType::kSymlink:
      return "symlink";
    case EntryType::kOther:
      return "other";
  }
  return "other";
}

std::string FormatNanos(int64_t ns) {
  int64_t sec = ns / 1000000000;
  int64_t frac = ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    sec -= 1;
  }
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%" PRId64 ".%09" PRId64, sec, frac);
  return buf;
}

Result<TreeSnapshot> SnapshotTree(const std::string& root, const SnapshotOptions& options) {
  struct stat st;
  if (stat(root.c_str(), &st) != 0) return ErrnoStatus("snapshot tree", root);
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("snapshot tree " + root + ": not a directory");
  }
  RS_ASSIGN_OR_RETURN(UniqueFd fd, OpenAt(AT_FDCWD, root, O_RDONLY | O_DIRECTORY, root));
  TreeSnapshot out;
  std::vector<char> buffer(1 << 20);
  RS_RETURN_IF_ERROR(SnapshotDirectory(fd.get(), "", root, options, &buffer, &out));
  if (options.include_root) {
    if (fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat", root);
    out["."] = EntryFromStat(st, options);
  }
  return out;
}

std::vector<std::string> CompareTrees(const TreeSnapshot& primary, const TreeSnapshot& secondary,
                                      size_t max_lines) {
  // A difference; entries below a missing (or extra) directory are counted on its difference.
  struct Diff {
    std::string text;          // everything but the note on entries below
    bool close_paren = false;  // text ends inside "(...": the note goes before ')'
    size_t missing_below = 0;
    size_t extra_below = 0;
  };
  std::vector<Diff> diffs;
  std::map<std::string, size_t> missing_roots;  // directory path -> index in diffs
  std::map<std::string, size_t> extra_roots;
  auto covered_by = [](const std::map<std::string, size_t>& roots,
                       const std::string& path) -> std::optional<size_t> {
    for (size_t i = path.find('/'); i != std::string::npos; i = path.find('/', i + 1)) {
      auto it = roots.find(path.substr(0, i));
      if (it != roots.end()) return it->second;
    }
    return std::nullopt;
  };

  auto a = primary.begin();
  auto b = secondary.begin();
  while (a != primary.end() || b != secondary.end()) {
    bool only_a = b == secondary.end() || (a != primary.end() && a->first < b->first);
    bool only_b = a == primary.end() || (b != secondary.end() && b->first < a->first);
    if (only_a) {
      if (auto idx = covered_by(missing_roots, a->first)) {
        ++diffs[*idx].missing_below;
      } else {
        if (a->second.type == EntryType::kDirectory) missing_roots[a->first] = diffs.size();
        diffs.push_back({"missing on secondary: " + EscapePath(a->first)});
      }
      ++a;
      continue;
    }
    if (only_b) {
      if (auto idx = covered_by(extra_roots, b->first)) {
        ++diffs[*idx].extra_below;
      } else {
        if (b->second.type == EntryType::kDirectory) extra_roots[b->first] = diffs.size();
        diffs.push_back({"extra on secondary: " + EscapePath(b->first)});
      }
      ++b;
      continue;
    }
    const std::string path = EscapePath(a->first);
    const TreeEntry& x = a->second;
    const TreeEntry& y = b->second;
    if (x.type != y.type) {
      if (x.type == EntryType::kDirectory) missing_roots[a->first] = diffs.size();
      if (y.type == EntryType::kDirectory) extra_roots[a->first] = diffs.size();
      diffs.push_back({"type differs: " + path + " (" + std::string(EntryTypeName(x.type)) +
                           " vs " + std::string(EntryTypeName(y.type)),
                       true});
    } else {
      if (x.type == EntryType::kFile && (x.size != y.size || x.content_hash != y.content_hash)) {
        diffs.push_back({"content differs: " + path +
                         (x.size != y.size ? " (size " + std::to_string(x.size) + " vs " +
                                                 std::to_string(y.size) + ")"
                                           : " (same size " + std::to_string(x.size) + ")")});
      }
      if (x.type == EntryType::kSymlink && x.link_target != y.link_target) {
        diffs.push_back({"link target differs: " + path + " (\"" + EscapePath(x.link_target) +
                         "\" vs \"" + EscapePath(y.link_target) + "\")"});
      }
      if (x.mode != y.mode) {
        diffs.push_back({"mode differs: " + path + " (" + FormatMode(x.mode) + " vs " +
                         FormatMode(y.mode) + ")"});
      }
      if (x.uid != y.uid || x.gid != y.gid) {
        diffs.push_back({"owner differs: " + path + " (uid:gid " + std::to_string(x.uid) + ":" +
                         std::to_string(x.gid) + " vs " + std::to_string(y.uid) + ":" +
                         std::to_string(y.gid) + ")"});
      }
      if (x.mtime_ns != y.mtime_ns) {
        diffs.push_back({"mtime differs: " + path + " (" + FormatNanos(x.mtime_ns) + " vs " +
                         FormatNanos(y.mtime_ns) + ")"});
      }
    }
    ++a;
    ++b;
  }

  std::vector<std::string> lines;
  for (const Diff& d : diffs) {
    if (lines.size() == max_lines) {
      lines.push_back("... and " + std::to_string(diffs.size() - max_lines) + " more");
      break;
    }
    std::string note;
    if (d.missing_below > 0) {
      note += std::to_string(d.missing_below) + " entries below it missing on secondary";
    }
    if (d.extra_below > 0) {
      if (!note.empty()) note += "; ";
      note += std::to_string(d.extra_below) + " entries below it extra on secondary";
    }
    if (d.close_paren) {
      lines.push_back(d.text + (note.empty() ? "" : "; " + note) + ")");
    } else {
      lines.push_back(note.empty() ? d.text : d.text + " (" + note + ")");
    }
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Checked content

std::string PseudoRandomBytes(uint64_t seed, size_t size) {
  std::string out(size, '\0');
  uint64_t state = seed;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t v = SplitMix64(&state);
    std::memcpy(out.data() + i, &v, 8);
  }
  if (i < size) {
    uint64_t v = SplitMix64(&state);
    std::memcpy(out.data() + i, &v, size - i);
  }
  return out;
}

std::string MakeCheckedContent(uint64_t seed, size_t size) {
  size = std::max(size, kCheckedTrailerBytes);
  std::string out = PseudoRandomBytes(seed, size - kCheckedTrailerBytes);
  char trailer[kCheckedTrailerBytes];
  std::memcpy(trailer, kCheckedMagic.data(), 8);
  PutLe64(trailer + 8, size);
  PutLe64(trailer + 16, XXH3_64bits(out.data(), out.size()));
  PutLe64(trailer + 24, XXH3_64bits(trailer, 24));
  out.append(trailer, sizeof(trailer));
  return out;
}

bool IsCheckedContentComplete(std::string_view content) {
  if (content.size() < kCheckedTrailerBytes) return false;
  std::string_view body = content.substr(0, content.size() - kCheckedTrailerBytes);
  const char* t = content.data() + body.size();
  return std::string_view(t, 8) == kCheckedMagic && GetLe64(t + 8) == content.size() &&
         GetLe64(t + 24) == XXH3_64bits(t, 24) &&
         GetLe64(t + 16) == XXH3_64bits(body.data(), body.size());
}

// ---------------------------------------------------------------------------------------------
// PartialFileSampler

PartialFileSampler::PartialFileSampler(std::string root, Options options)
    : root_(std::move(root)), options_(options) {}

PartialFileSampler::~PartialFileSampler() { Stop(); }

void PartialFileSampler::Start() {
  std::lock_guard control(control_mutex_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void PartialFileSampler::Stop() {
  std::lock_guard control(control_mutex_);
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::vector<PartialFileSampler::Finding> PartialFileSampler::findings() const {
  std::lock_guard lock(mutex_);
  return findings_;
}

uint64_t PartialFileSampler::rounds() const {
  std::lock_guard lock(mutex_);
  return rounds_;
}

bool PartialFileSampler::WaitRounds(uint64_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const uint64_t target = rounds_ + n;
  return cv_.wait_for(lock, timeout, [&] { return rounds_ >= target; });
}

uint64_t PartialFileSampler::files_checked() const {
  std::lock_guard lock(mutex_);
  return files_checked_;
}

void PartialFileSampler::Run() {
  while (!stop_) {
    auto root = OpenAt(AT_FDCWD, root_, O_RDONLY | O_DIRECTORY, root_);
    if (root.ok()) ScanDirectory(root->get(), "");
    std::unique_lock lock(mutex_);
    if (stop_) break;
    ++rounds_;
    cv_.notify_all();
    cv_.wait_for(lock, options_.pause_between_rounds, [this] { return stop_.load(); });
  }
}

void PartialFileSampler::ScanDirectory(int dir_fd, const std::string& rel) {
  auto names = ListDirectory(dir_fd, rel);
  if (!names.ok()) return;  // renamed or removed under us: the next round sees the new tree
  for (const std::string& name : *names) {
    if (stop_) return;
    if (name.starts_with(kReplsyncTempPrefix)) continue;
    std::string child = JoinPath(rel, name);
    struct stat st;
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      auto sub = OpenAt(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, child);
      if (sub.ok()) ScanDirectory(sub->get(), child);
    } else if (S_ISREG(st.st_mode)) {
      CheckFile(dir_fd, name, child);
    }
  }
}

void PartialFileSampler::CheckFile(int dir_fd, const std::string& name, const std::string& rel) {
  // O_NONBLOCK: the name may have become a FIFO since the fstatat.
  auto fd = OpenAt(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, rel);
  if (!fd.ok()) return;  // vanished (or replaced by a symlink) since readdir
  struct stat before;
  if (fstat(fd->get(), &before) != 0 || !S_ISREG(before.st_mode)) return;
  size_t expected = static_cast<size_t>(before.st_size);
  // One byte more than expected, to notice growth.
  if (buffer_.size() < expected + 1) buffer_.resize(expected + 1);
  size_t total = 0;
  while (total < expected + 1) {
    ssize_t n = read(fd->get(), buffer_.data() + total, expected + 1 - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  struct stat after;
  if (fstat(fd->get(), &after) != 0) return;
  bool stable = total == expected && after.st_ino == before.st_ino &&
                after.st_dev == before.st_dev && after.st_size == before.st_size &&
                MtimeNs(after) == MtimeNs(before) &&
                after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
                after.st_ctim.tv_nsec == before.st_ctim.tv_nsec;
  if (!stable) return;  // changing under us: read it again next round
  bool complete = !name.starts_with(kCheckedPrefix) ||
                  IsCheckedContentComplete(std::string_view(buffer_.data(), total));
  std::lock_guard lock(mutex_);
  ++files_checked_;
  if (!complete) {
    Finding f{rel, static_cast<uint64_t>(total)};
    if (finding_set_.insert(f).second) findings_.push_back(std::move(f));
  }
}

// ---------------------------------------------------------------------------------------------
// ChurnWorkload

// Threads that write checked files in place, slowly. Thread-safety: Start and WaitAll from the
// workload's thread only.
class ChurnWorkload::SlowWriters {
 public:
  ~SlowWriters() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // Starts writing `content` to `path`, waiting for the oldest writer first when `max_running`
  // are running.
  void Start(std::string path, std::string content, int pieces, std::chrono::milliseconds duration,
             int max_running) {
    while (static_cast<int>(threads_.size()) >= std::max(1, max_running)) {
      threads_.front().join();
      threads_.pop_front();
    }
    threads_.emplace_back([this, path = std::move(path), content = std::move(content), pieces,
                           duration] { Write(path, content, pieces, duration); });
  }

  Status WaitAll() {
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::lock_guard lock(mutex_);
    return first_error_;
  }

 private:
  void Write(const std::string& path, const std::string& content, int pieces,
             std::chrono::milliseconds duration) {
    Status st = DoWrite(path, content, std::max(1, pieces), duration);
    if (!st.ok()) {
      std::lock_guard lock(mutex_);
      if (first_error_.ok()) first_error_ = st.WithContext("slow writer");
    }
  }

  Status DoWrite(const std::string& path, const std::string& content, int pieces,
                 std::chrono::milliseconds duration) {
    RS_ASSIGN_OR_RETURN(
        UniqueFd fd,
        OpenAt(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, EscapePath(path), 0644));
    size_t piece = (content.size() + pieces - 1) / pieces;
    auto pause = pieces > 1 ? duration / (pieces - 1) : std::chrono::milliseconds(0);
    for (size_t off = 0; off < content.size(); off += piece) {
      size_t len = std::min(piece, content.size() - off);
      size_t done = 0;
      while (done < len) {
        ssize_t n = write(fd.get(), content.data() + off + done, len - done);
        if (n < 0) {
          if (errno == EINTR) continue;
          return ErrnoStatus("write", path);
        }
        done += static_cast<size_t>(n);
      }
      if (off + len < content.size()) {
        std::unique_lock lock(mutex_);
        if (cv_.wait_for(lock, pause, [this] { return stop_; })) return Status::Ok();
      }
    }
    return Status::Ok();
  }

  std::deque<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;   // guarded by mutex_
  Status first_error_;  // guarded by mutex_
};

namespace {

bool IsCheckedName(const std::string& rel) {
  size_t slash = rel.rfind('/');
  std::string_view base =
      slash == std::string::npos ? std::string_view(rel) : std::string_view(rel).substr(slash + 1);
  return base.starts_with(kCheckedPrefix);
}

bool IsLargeName(const std::string& rel) {
  size_t slash = rel.rfind('/');
  std::string_view base =
      slash == std::string::npos ? std::string_view(rel) : std::string_view(rel).substr(slash + 1);
  return base.starts_with("large-");
}

constexpr std::string_view kChurnTempPrefix = ".churn-tmp-";
constexpr std::string_view kSlowDir = "slow";

Status WriteWhole(const std::string& path, std::string_view data, int extra_flags = O_TRUNC) {
  RS_ASSIGN_OR_RETURN(UniqueFd fd,
                      OpenAt(AT_FDCWD, path, O_WRONLY | O_CREAT | O_NOFOLLOW | extra_flags,
                             EscapePath(path), 0644));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", path);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<std::string> ReadWhole(const std::string& path) {
  RS_ASSIGN_OR_RETURN(UniqueFd fd, OpenAt(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW, EscapePath(path)));
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status PwriteAll(int fd, std::string_view data, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("pwrite", path);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

const std::vector<ChurnWorkload::Kind>& ChurnWorkload::AllKinds() {
  static const std::vector<Kind> kinds = {
      Kind::kSmallFileBurst, Kind::kLargeFile,     Kind::kOverwriteMiddle, Kind::kInsertMiddle,
      Kind::kAppend,         Kind::kTruncate,      Kind::kRenameFile,      Kind::kRenameDirectory,
      Kind::kDelete,         Kind::kRecreate,      Kind::kChmod,           Kind::kTouch,
      Kind::kChown,          Kind::kSymlink,       Kind::kRetargetSymlink, Kind::kSlowWrite,
      Kind::kSpecialNames,   Kind::kMakeDirectory,
  };
  return kinds;
}

std::string_view ChurnWorkload::KindName(Kind kind) {
  switch (kind) {
    case Kind::kSmallFileBurst:
      return "small_file_burst";
    case Kind::kLargeFile:
      return "large_file";
    case Kind::kOverwriteMiddle:
      return "overwrite_middle";
    case Kind::kInsertMiddle:
      return "insert_middle";
    case Kind::kAppend:
      return "append";
    case Kind::kTruncate:
      return "truncate";
    case Kind::kRenameFile:
      return "rename_file";
    case Kind::kRenameDirectory:
      return "rename_directory";
    case Kind::kDelete:
      return "delete";
    case Kind::kRecreate:
      return "recreate";
    case Kind::kChmod:
      return "chmod";
    case Kind::kTouch:
      return "touch";
    case Kind::kChown:
      return "chown";
    case Kind::kSymlink:
      return "symlink";
    case Kind::kRetargetSymlink:
      return "retarget_symlink";
    case Kind::kSlowWrite:
      return "slow_write";
    case Kind::kSpecialNames:
      return "special_names";
    case Kind::kMakeDirectory:
      return "make_directory";
  }
  return "unknown";
}

ChurnWorkload::ChurnWorkload(std::string root, ChurnOptions options)
    : root_(std::move(root)),
      options_(options),
      rng_(options.seed),
      slow_writers_(std::make_unique<SlowWriters>()) {}

ChurnWorkload::~ChurnWorkload() = default;

Result<std::unique_ptr<ChurnWorkload>> ChurnWorkload::Open(const std::string& root,
                                                           ChurnOptions options) {
  struct stat st;
  if (stat(root.c_str(), &st) != 0) return ErrnoStatus("open churn workload on", root);
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("open churn workload on " + root + ": not a directory");
  }
  std::unique_ptr<ChurnWorkload> w(new ChurnWorkload(root, options));
  RS_RETURN_IF_ERROR(w->Scan());
  return w;
}

Status ChurnWorkload::Scan() {
  std::vector<std::string> pending = {""};
  while (!pending.empty()) {
    std::string rel = pending.back();
    pending.pop_back();
    std::string full = Full(rel);
    RS_ASSIGN_OR_RETURN(UniqueFd fd,
                        OpenAt(AT_FDCWD, full, O_RDONLY | O_DIRECTORY, EscapePath(full)));
    RS_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(fd.get(), full));
    for (const std::string& name : names) {
      if (rel.empty() && name == kSlowDir) continue;
      if (name.starts_with(kReplsyncTempPrefix)) continue;
      std::string child = Join(rel, name);
      struct stat st;
      if (fstatat(fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoStatus("lstat", Full(child));
      }
      if (S_ISDIR(st.st_mode)) {
        model_[child] = Node::kDirectory;
        pending.push_back(child);
      } else if (S_ISREG(st.st_mode)) {
        model_[child] = Node::kFile;
      } else if (S_ISLNK(st.st_mode)) {
        model_[child] = Node::kSymlink;
      }
    }
  }
  return Status::Ok();
}

uint64_t ChurnWorkload::Next() { return rng_(); }

uint64_t ChurnWorkload::Uniform(uint64_t lo, uint64_t hi) {
  if (hi <= lo) return lo;
  uint64_t span = hi - lo + 1;
  return span == 0 ? Next() : lo + Next() % span;
}

bool ChurnWorkload::OneIn(uint64_t n) { return Uniform(1, n) == 1; }

std::string ChurnWorkload::Join(const std::string& dir, const std::string& name) {
  return JoinPath(dir, name);
}

std::string ChurnWorkload::Parent(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? "" : rel.substr(0, slash);
}

std::string ChurnWorkload::BaseName(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

int ChurnWorkload::Depth(const std::string& rel) const {
  if (rel.empty()) return 0;
  return 1 + static_cast<int>(std::count(rel.begin(), rel.end(), '/'));
}

std::string ChurnWorkload::Full(const std::string& rel) const {
  return rel.empty() ? root_ : root_ + "/" + rel;
}

void ChurnWorkload::Log(std::string line) { history_.push_back(std::move(line)); }

std::string ChurnWorkload::NewPath(const std::string& dir, std::string_view prefix,
                                   std::string_view extension) {
  static const char* const kSuffixes[] = {" Grüße ünïcödé", " 日本語", " with space", "\nnewline",
                                          " -rf"};
  while (true) {
    std::string name = std::string(prefix) + std::to_string(++counter_);
    if (OneIn(6)) name += kSuffixes[Uniform(0, std::size(kSuffixes) - 1)];
    name += extension;
    std::string rel = Join(dir, name);
    if (!model_.contains(rel) && !(dir.empty() && name == kSlowDir)) return rel;
  }
}

std::vector<std::string> ChurnWorkload::Entries(bool (*filter)(const std::string&, Node)) const {
  std::vector<std::string> out;
  for (const auto& [rel, node] : model_) {
    if (filter(rel, node)) out.push_back(rel);
  }
  return out;
}

std::string ChurnWorkload::Pick(const std::vector<std::string>& candidates) {
  return candidates[Uniform(0, candidates.size() - 1)];
}

std::string ChurnWorkload::PickDirectory(bool for_new_child) {
  std::vector<std::string> dirs = {""};
  int limit = for_new_child ? options_.max_depth : options_.max_depth + 1;
  for (const auto& [rel, node] : model_) {
    if (node == Node::kDirectory && Depth(rel) < limit) dirs.push_back(rel);
  }
  return Pick(dirs);
}

void ChurnWorkload::ForgetSubtree(const std::string& rel) {
  model_.erase(rel);
  model_.erase(model_.lower_bound(rel + "/"), model_.lower_bound(rel + "0"));
}

void ChurnWorkload::MoveSubtree(const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, Node>> moved;
  auto first = model_.lower_bound(from + "/");
  auto last = model_.lower_bound(from + "0");
  for (auto it = first; it != last; ++it) {
    moved.emplace_back(to + it->first.substr(from.size()), it->second);
  }
  model_.erase(first, last);
  Node node = model_[from];
  model_.erase(from);
  model_[to] = node;
  for (auto& [rel, n] : moved) model_[rel] = n;
}

Status ChurnWorkload::CreateFile(const std::string& rel) {
  std::string content =
      IsCheckedName(rel)
          ? MakeCheckedContent(Next(), Uniform(kCheckedTrailerBytes, options_.small_file_max_bytes))
          : PseudoRandomBytes(Next(), Uniform(0, options_.plain_file_max_bytes));
  RS_RETURN_IF_ERROR(WriteWhole(Full(rel), content));
  model_[rel] = Node::kFile;
  return Status::Ok();
}

Status ChurnWorkload::CreateLargeFile(const std::string& rel) {
  uint64_t size = Uniform(options_.min_large_bytes, options_.max_large_bytes);
  RS_RETURN_IF_ERROR(WriteWhole(Full(rel), PseudoRandomBytes(Next(), size)));
  model_[rel] = Node::kFile;
  return Status::Ok();
}

Status ChurnWorkload::CreateDirectory(const std::string& rel) {
  if (mkdir(Full(rel).c_str(), 0755) != 0) return ErrnoStatus("mkdir", Full(rel));
  model_[rel] = Node::kDirectory;
  return Status::Ok();
}

std::string ChurnWorkload::SymlinkTarget(const std::string& link_rel) {
  std::vector<std::string> all = Entries([](const std::string&, Node) { return true; });
  std::erase(all, link_rel);
  switch (Uniform(0, 3)) {
    case 0:
    case 1:
      if (!all.empty()) {
        std::string target = Pick(all);
        std::string parent = Parent(link_rel);
        if (Parent(target) == parent) return BaseName(target);
        std::string up;
        for (int i = 0; i < Depth(parent); ++i) up += "../";
        return up + target;
      }
      break;
    case 2:
      return all.empty() ? root_ : root_ + "/" + Pick(all);
    default:
      break;
  }
  switch (Uniform(0, 2)) {
    case 0:
      return "missing-" + std::to_string(++counter_);
    case 1:
      return "../nowhere/" + std::to_string(++counter_);
    default:
      return "/nonexistent/replsync-" + std::to_string(++counter_);
  }
}

Status ChurnWorkload::CreateSymlink(const std::string& rel) {
  std::string target = SymlinkTarget(rel);
  if (symlink(target.c_str(), Full(rel).c_str()) != 0) return ErrnoStatus("symlink", Full(rel));
  model_[rel] = Node::kSymlink;
  return Status::Ok();
}

Result<std::string> ChurnWorkload::EnsurePlainFile() {
  auto files = Entries(
      [](const std::string& rel, Node n) { return n == Node::kFile && !IsCheckedName(rel); });
  if (!files.empty()) return Pick(files);
  std::string rel = NewPath(PickDirectory(false), "data-");
  RS_RETURN_IF_ERROR(CreateFile(rel));
  return rel;
}

Result<std::string> ChurnWorkload::EnsureLargeFile() {
  auto files =
      Entries([](const std::string& rel, Node n) { return n == Node::kFile && IsLargeName(rel); });
  if (!files.empty()) return Pick(files);
  std::string rel = NewPath(PickDirectory(false), "large-", ".bin");
  RS_RETURN_IF_ERROR(CreateLargeFile(rel));
  return rel;
}

Result<std::string> ChurnWorkload::EnsureSymlink() {
  auto links = Entries([](const std::string&, Node n) { return n == Node::kSymlink; });
  if (!links.empty()) return Pick(links);
  std::string rel = NewPath(PickDirectory(false), "link-");
  RS_RETURN_IF_ERROR(CreateSymlink(rel));
  return rel;
}

Result<std::string> ChurnWorkload::EnsureDirectory() {
  auto dirs = Entries([](const std::string&, Node n) { return n == Node::kDirectory; });
  if (!dirs.empty()) return Pick(dirs);
  std::string rel = NewPath(PickDirectory(true), "dir-");
  RS_RETURN_IF_ERROR(CreateDirectory(rel));
  RS_RETURN_IF_ERROR(CreateFile(NewPath(rel, "checked-")));
  return rel;
}

Status ChurnWorkload::SmallFileBurst() {
  std::string dir = PickDirectory(false);
  if (OneIn(2)) {
    dir = NewPath(PickDirectory(true), "burst-");
    RS_RETURN_IF_ERROR(CreateDirectory(dir));
  }
  int n = static_cast<int>(Uniform(options_.min_burst_files, options_.max_burst_files));
  for (int i = 0; i < n; ++i) RS_RETURN_IF_ERROR(CreateFile(NewPath(dir, "checked-")));
  Log("small_file_burst " + std::to_string(n) + " files in /" + EscapePath(dir));
  return Status::Ok();
}

Status ChurnWorkload::LargeFile() {
  auto large =
      Entries([](const std::string& rel, Node n) { return n == Node::kFile && IsLargeName(rel); });
  std::string rel = static_cast<int>(large.size()) >= options_.max_large_files
                        ? Pick(large)
                        : NewPath(PickDirectory(false), "large-", ".bin");
  RS_RETURN_IF_ERROR(CreateLargeFile(rel));
  Log("large_file " + EscapePath(rel));
  return Status::Ok();
}

Status ChurnWorkload::OverwriteMiddle() {
  RS_ASSIGN_OR_RETURN(std::string rel, EnsureLargeFile());
  std::string full = Full(rel);
  RS_ASSIGN_OR_RETURN(UniqueFd fd, OpenAt(AT_FDCWD, full, O_WRONLY | O_NOFOLLOW, EscapePath(full)));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat", full);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t len = std::min<uint64_t>(Uniform(1024, 8192), std::max<uint64_t>(size, 1));
  uint64_t offset = Uniform(0, size - std::min(size, len));
  RS_RETURN_IF_ERROR(PwriteAll(fd.get(), PseudoRandomBytes(Next(), len), offset, full));
  Log("overwrite_middle " + EscapePath(rel) + " " + std::to_string(len) + " bytes at " +
      std::to_string(offset));
  return Status::Ok();
}

Status ChurnWorkload::InsertMiddle() {
  RS_ASSIGN_OR_RETURN(std::string rel, EnsureLargeFile());
  std::string full = Full(rel);
  RS_ASSIGN_OR_RETURN(std::string content, ReadWhole(full));
  uint64_t offset = Uniform(0, content.size());
  std::string inserted = PseudoRandomBytes(Next(), Uniform(1, 8192));
  content.insert(offset, inserted);
  bool via_rename = OneIn(2);
  if (via_rename) {
    std::string tmp =
        Full(Join(Parent(rel), std::string(kChurnTempPrefix) + std::to_string(++counter_)));
    RS_RETURN_IF_ERROR(WriteWhole(tmp, content));
    if (rename(tmp.c_str(), full.c_str()) != 0) return ErrnoStatus("rename over", full);
  } else {
    RS_ASSIGN_OR_RETURN(UniqueFd fd,
                        OpenAt(AT_FDCWD, full, O_WRONLY | O_NOFOLLOW, EscapePath(full)));
    RS_RETURN_IF_ERROR(PwriteAll(fd.get(), std::string_view(content).substr(offset), offset, full));
  }
  Log("insert_middle " + EscapePath(rel) + " " + std::to_string(inserted.size()) + " bytes at " +
      std::to_string(offset) + (via_rename ? " (temp+rename)" : " (in place)"));
  return Status::Ok();
}

Status ChurnWorkload::Append() {
  RS_ASSIGN_OR_RETURN(std::string rel, EnsurePlainFile());
  std::string data = PseudoRandomBytes(Next(), Uniform(1, 16 << 10));
  RS_RETURN_IF_ERROR(WriteWhole(Full(rel), data, O_APPEND));
  Log("append " + EscapePath(rel) + " " + std::to_string(data.size()) + " bytes");
  return Status::Ok();
}

Status ChurnWorkload::Truncate() {
  RS_ASSIGN_OR_RETURN(std::string rel, EnsurePlainFile());
  std::string full = Full(rel);
  RS_ASSIGN_OR_RETURN(UniqueFd fd, OpenAt(AT_FDCWD, full, O_WRONLY | O_NOFOLLOW, EscapePath(full)));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat", full);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t new_size;
  if (OneIn(5)) {
    new_size = 0;
  } else if (OneIn(4)) {
    new_size = size + Uniform(1, 64 << 10);  // extends with a hole
  } else {
    new_size = Uniform(0, size);
  }
  if (ftruncate(fd.get(), static_cast<off_t>(new_size)) != 0) return ErrnoStatus("ftruncate", full);
  Log("truncate " + EscapePath(rel) + " " + std::to_string(size) + " -> " +
      std::to_string(new_size));
  return Status::Ok();
}

Status ChurnWorkload::RenameFile() {
  auto sources = Entries([](const std::string&, Node n) { return n != Node::kDirectory; });
  if (sources.empty()) {
    std::string rel = NewPath(PickDirectory(false), "data-");
    RS_RETURN_IF_ERROR(CreateFile(rel));
    sources.push_back(rel);
  }
  std::string src = Pick(sources);
  Node node = model_.at(src);
  bool checked = node == Node::kFile && IsCheckedName(src);
  std::string dst;
  if (OneIn(4)) {
    // Over an existing entry; a checked name only ever gets checked content.
    std::vector<std::string> targets;
    for (const auto& [rel, n] : model_) {
      if (rel == src || n == Node::kDirectory) continue;
      bool target_checked = n == Node::kFile && IsCheckedName(rel);
      if (target_checked == checked && !(checked && n != Node::kFile)) targets.push_back(rel);
    }
    if (!targets.empty()) dst = Pick(targets);
  }
  if (dst.empty()) {
    std::string dir = PickDirectory(false);
    if (checked) {
      dst = NewPath(dir, "checked-r");
    } else if (node == Node::kFile && IsLargeName(src)) {
      dst = NewPath(dir, "large-r", ".bin");
    } else if (node == Node::kSymlink) {
      dst = NewPath(dir, "link-r");
    } else {
      dst = NewPath(dir, OneIn(6) ? "-r" : "renamed-");
    }
  }
  if (rename(Full(src).c_str(), Full(dst).c_str()) != 0) {
    return ErrnoStatus("rename " + EscapePath(Full(src)) + " to", Full(dst));
  }
  model_.erase(src);
  model_[dst] = node;
  Log("rename_file " + EscapePath(src) + " -> " + EscapePath(dst));
  return Status::Ok();
}

Status ChurnWorkload::RenameDirectory() {
  RS_ASSIGN_OR_RETURN(std::string src, EnsureDirectory());
  int height = 0;
  for (auto it = model_.lower_bound(src + "/"); it != model_.lower_bound(src + "0"); ++it) {
    height = std::max(height, Depth(it->first) - Depth(src));
  }
  std::vector<std::string> parents = {""};
  for (const auto& [rel, n] : model_) {
    if (n != Node::kDirectory || rel == src || rel.starts_with(src + "/")) continue;
    if (Depth(rel) + 1 + height <= options_.max_depth) parents.push_back(rel);
  }
  std::string dst = NewPath(Pick(parents), OneIn(8) ? "-rf" : "dir-r");
  if (rename(Full(src).c_str(), Full(dst).c_str()) != 0) {
    return ErrnoStatus("rename " + EscapePath(Full(src)) + " to", Full(dst));
  }
  MoveSubtree(src, dst);
  Log("rename_directory " + EscapePath(src) + " -> " + EscapePath(dst));
  return Status::Ok();
}

Status ChurnWorkload::Delete() {
  bool directory = OneIn(4);
  auto candidates = directory
                        ? Entries([](const std::string&, Node n) { return n == Node::kDirectory; })
                        : Entries([](const std::string&, Node n) { return n != Node::kDirectory; });
  if (candidates.empty()) {
    candidates = Entries([](const std::string&, Node) { return true; });
  }
  if (candidates.empty()) {
    std::string rel = NewPath(PickDirectory(false), "data-");
    RS_RETURN_IF_ERROR(CreateFile(rel));
    candidates.push_back(rel);
  }
  std::string rel = Pick(candidates);
  Node node = model_.at(rel);
  std::string full = Full(rel);
  if (node == Node::kDirectory) {
    std::error_code ec;
    std::filesystem::remove_all(full, ec);
    if (ec) return Status::IoError("remove " + EscapePath(full) + ": " + ec.message());
  } else if (unlink(full.c_str()) != 0) {
    return ErrnoStatus("unlink", full);
  }
  ForgetSubtree(rel);
  deleted_.emplace_back(rel, node);
  if (deleted_.size() > 64) deleted_.pop_front();
  Log("delete " + EscapePath(rel));
  return Status::Ok();
}

Status ChurnWorkload::Recreate() {
  std::vector<size_t> usable;
  for (size_t i = 0; i < deleted_.size(); ++i) {
    const std::string& rel = deleted_[i].first;
    std::string parent = Parent(rel);
    bool parent_ok =
        parent.empty() || (model_.contains(parent) && model_.at(parent) == Node::kDirectory);
    if (parent_ok && !model_.contains(rel)) usable.push_back(i);
  }
  if (usable.empty()) {
    std::string rel = NewPath(PickDirectory(false), "data-");
    RS_RETURN_IF_ERROR(CreateFile(rel));
    Log("recreate (nothing deleted to recreate) created " + EscapePath(rel));
    return Status::Ok();
  }
  size_t index = usable[Uniform(0, usable.size() - 1)];
  auto [rel, old] = deleted_[index];
  deleted_.erase(deleted_.begin() + static_cast<std::ptrdiff_t>(index));
  Node node = old;
  if (old == Node::kFile && OneIn(4)) {
    node = Node::kDirectory;
  } else if (old != Node::kFile && OneIn(3)) {
    node = Node::kFile;
  }
  if (node == Node::kDirectory) {
    RS_RETURN_IF_ERROR(CreateDirectory(rel));
  } else if (node == Node::kSymlink) {
    RS_RETURN_IF_ERROR(CreateSymlink(rel));
  } else {
    RS_RETURN_IF_ERROR(CreateFile(rel));
  }
  Log("recreate " + EscapePath(rel) + (node == old ? "" : " with another type"));
  return Status::Ok();
}

Status ChurnWorkload::Chmod() {
  auto candidates = Entries([](const std::string&, Node n) { return n != Node::kSymlink; });
  if (candidates.empty()) {
    RS_ASSIGN_OR_RETURN(std::string rel, EnsurePlainFile());
    candidates.push_back(rel);
  }
  static constexpr mode_t kFileModes[] = {0600, 0644, 0755, 04755, 0640, 0444, 02755, 0700};
  static constexpr mode_t kDirModes[] = {0755, 0700, 0750, 02775, 01777, 0711};
  std::string rel = Pick(candidates);
  mode_t mode = model_.at(rel) == Node::kDirectory
                    ? kDirModes[Uniform(0, std::size(kDirModes) - 1)]
                    : kFileModes[Uniform(0, std::size(kFileModes) - 1)];
  if (fchmodat(AT_FDCWD, Full(rel).c_str(), mode, 0) != 0) return ErrnoStatus("chmod", Full(rel));
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode));
  Log("chmod " + EscapePath(rel) + " " + buf);
  return Status::Ok();
}

Status ChurnWorkload::Touch() {
  auto candidates = Entries([](const std::string&, Node) { return true; });
  if (candidates.empty()) {
    RS_ASSIGN_OR_RETURN(std::string rel, EnsurePlainFile());
    candidates.push_back(rel);
  }
  std::string rel = Pick(candidates);
  struct timespec times[2];
  times[0].tv_sec = static_cast<time_t>(Uniform(1000000000, 2000000000));
  times[0].tv_nsec = static_cast<long>(Uniform(0, 999999999));
  times[1].tv_sec = static_cast<time_t>(Uniform(1000000000, 2000000000));
  times[1].tv_nsec = static_cast<long>(Uniform(0, 999999999));
  if (utimensat(AT_FDCWD, Full(rel).c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("utimensat", Full(rel));
  }
  Log("touch " + EscapePath(rel) + " " +
      FormatNanos(static_cast<int64_t>(times[1].tv_sec) * 1000000000 + times[1].tv_nsec));
  return Status::Ok();
}

Status ChurnWorkload::Chown() {
  auto candidates = Entries([](const std::string&, Node) { return true; });
  if (candidates.empty()) {
    RS_ASSIGN_OR_RETURN(std::string rel, EnsurePlainFile());
    candidates.push_back(rel);
  }
  std::string rel = Pick(candidates);
  uid_t uid = static_cast<uid_t>(Uniform(1, 60000));
  gid_t gid = static_cast<gid_t>(Uniform(1, 60000));
  switch (Uniform(0, 3)) {
    case 0:
      uid = static_cast<uid_t>(-1);
      break;
    case 1:
      gid = static_cast<gid_t>(-1);
      break;
    default:
      break;
  }
  if (fchownat(AT_FDCWD, Full(rel).c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("chown", Full(rel));
  }
  Log("chown " + EscapePath(rel) + " " +
      std::to_string(static_cast<int64_t>(uid == uid_t(-1) ? -1 : uid)) + ":" +
      std::to_string(static_cast<int64_t>(gid == gid_t(-1) ? -1 : gid)));
  return Status::Ok();
}

Status ChurnWorkload::Symlink() {
  std::string rel = NewPath(PickDirectory(false), "link-");
  RS_RETURN_IF_ERROR(CreateSymlink(rel));
  Log("symlink " + EscapePath(rel));
  return Status::Ok();
}

Status ChurnWorkload::RetargetSymlink() {
  RS_ASSIGN_OR_RETURN(std::string rel, EnsureSymlink());
  std::string target = SymlinkTarget(rel);
  std::string tmp =
      Full(Join(Parent(rel), std::string(kChurnTempPrefix) + std::to_string(++counter_)));
  if (symlink(target.c_str(), tmp.c_str()) != 0) return ErrnoStatus("symlink", tmp);
  if (rename(tmp.c_str(), Full(rel).c_str()) != 0) return ErrnoStatus("rename over", Full(rel));
  Log("retarget_symlink " + EscapePath(rel) + " -> " + EscapePath(target));
  return Status::Ok();
}

Status ChurnWorkload::SlowWrite() {
  std::string dir = Full(std::string(kSlowDir));
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoStatus("mkdir", dir);
  uint64_t slots = 2 * static_cast<uint64_t>(std::max(1, options_.max_slow_writers));
  std::string rel =
      std::string(kSlowDir) + "/checked-slow-" + std::to_string(slow_counter_++ % slots);
  std::string content =
      MakeCheckedContent(Next(), Uniform(kCheckedTrailerBytes, options_.slow_file_max_bytes));
  auto duration = std::chrono::milliseconds(
      Uniform(static_cast<uint64_t>(options_.min_slow_write_duration.count()),
              static_cast<uint64_t>(options_.max_slow_write_duration.count())));
  Log("slow_write " + rel + " " + std::to_string(content.size()) + " bytes over " +
      std::to_string(duration.count()) + " ms");
  slow_writers_->Start(Full(rel), std::move(content), options_.slow_write_pieces, duration,
                       options_.max_slow_writers);
  return Status::Ok();
}

Status ChurnWorkload::SpecialNames() {
  static const char* const kNames[] = {"Grüße ünïcödé.txt", "日本語",         "-rf",
                                       "line\nbreak",       "with space.txt", " leading space",
                                       "trailing space "};
  std::string dir = PickDirectory(true);
  std::string name = kNames[Uniform(0, std::size(kNames) - 1)];
  std::string rel = Join(dir, name);
  if (model_.contains(rel)) rel = NewPath(dir, name + " ");
  switch (Uniform(0, 3)) {
    case 0:
      RS_RETURN_IF_ERROR(CreateDirectory(rel));
      RS_RETURN_IF_ERROR(CreateFile(Join(rel, "ファイル " + std::to_string(++counter_) + ".txt")));
      break;
    case 1:
      RS_RETURN_IF_ERROR(CreateSymlink(rel));
      break;
    default:
      RS_RETURN_IF_ERROR(CreateFile(rel));
      break;
  }
  Log("special_names " + EscapePath(rel));
  return Status::Ok();
}

Status ChurnWorkload::MakeDirectory() {
  std::string rel = NewPath(PickDirectory(true), OneIn(8) ? "-rf" : "dir-");
  RS_RETURN_IF_ERROR(CreateDirectory(rel));
  Log("make_directory " + EscapePath(rel));
  return Status::Ok();
}

Status ChurnWorkload::RunStep(Kind kind) {
  Status st;
  switch (kind) {
    case Kind::kSmallFileBurst:
      st = SmallFileBurst();
      break;
    case Kind::kLargeFile:
      st = LargeFile();
      break;
    case Kind::kOverwriteMiddle:
      st = OverwriteMiddle();
      break;
    case Kind::kInsertMiddle:
      st = InsertMiddle();
      break;
    case Kind::kAppend:
      st = Append();
      break;
    case Kind::kTruncate:
      st = Truncate();
      break;
    case Kind::kRenameFile:
      st = RenameFile();
      break;
    case Kind::kRenameDirectory:
      st = RenameDirectory();
      break;
    case Kind::kDelete:
      st = Delete();
      break;
    case Kind::kRecreate:
      st = Recreate();
      break;
    case Kind::kChmod:
      st = Chmod();
      break;
    case Kind::kTouch:
      st = Touch();
      break;
    case Kind::kChown:
      st = Chown();
      break;
    case Kind::kSymlink:
      st = Symlink();
      break;
    case Kind::kRetargetSymlink:
      st = RetargetSymlink();
      break;
    case Kind::kSlowWrite:
      st = SlowWrite();
      break;
    case Kind::kSpecialNames:
      st = SpecialNames();
      break;
    case Kind::kMakeDirectory:
      st = MakeDirectory();
      break;
  }
  ++steps_run_;
  if (!st.ok()) return st.WithContext("churn step " + std::string(KindName(kind)) + " in " + root_);
  return st;
}

Status ChurnWorkload::RunRandomSteps(int n) {
  struct Weighted {
    Kind kind;
    uint64_t weight;
  };
  static constexpr Weighted kWeights[] = {
      {Kind::kSmallFileBurst, 5}, {Kind::kLargeFile, 2},       {Kind::kOverwriteMiddle, 4},
      {Kind::kInsertMiddle, 3},   {Kind::kAppend, 5},          {Kind::kTruncate, 3},
      {Kind::kRenameFile, 6},     {Kind::kRenameDirectory, 2}, {Kind::kDelete, 5},
      {Kind::kRecreate, 4},       {Kind::kChmod, 4},           {Kind::kTouch, 4},
      {Kind::kChown, 3},          {Kind::kSymlink, 4},         {Kind::kRetargetSymlink, 3},
      {Kind::kSlowWrite, 1},      {Kind::kSpecialNames, 2},    {Kind::kMakeDirectory, 3},
  };
  uint64_t total = 0;
  for (const auto& w : kWeights) total += w.weight;
  for (int i = 0; i < n; ++i) {
    uint64_t r = Uniform(0, total - 1);
    Kind kind = kWeights[0].kind;
    for (const auto& w : kWeights) {
      if (r < w.weight) {
        kind = w.kind;
        break;
      }
      r -= w.weight;
    }
    RS_RETURN_IF_ERROR(RunStep(kind));
  }
  return Status::Ok();
}

Status ChurnWorkload::WaitForSlowWriters() { return slow_writers_->WaitAll(); }

}  // namespace replsync::testing
