#include "capture/files/repo_watcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_set>
#include <utility>

#include "sync/files/open_beneath.h"
#include "sync/path_text.h"

namespace replsync::capture {

namespace {

// IN_DONT_FOLLOW is added only when watching by path: a watch through /proc/self/fd/N must
// follow that link to the directory, which was itself opened without following any symlink.
constexpr uint32_t kMask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB |
                           IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                           IN_ONLYDIR | IN_EXCL_UNLINK;
// One read(2) of the inotify descriptor; the kernel's queue (16384 events by default) of short
// names fits in one or two.
constexpr size_t kReadBuffer = size_t{256} << 10;
// Reads per ReadEvents call, so that a process writing without pause cannot keep Poll reading
// forever (moves still expire and Interrupt is still seen between calls).
constexpr int kMaxReadsPerCall = 64;

std::string Absolute(const std::string& root, const std::string& rel) {
  if (rel.empty()) return root;
  return root == "/" ? root + rel : root + "/" + rel;
}

bool IsAtOrBelow(const std::string& path, const std::string& dir) {
  return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

// Reads one integer from a /proc/sys file; -1 when missing.
long long ReadProcNumber(const char* file) {
  std::ifstream in(file);
  long long value = -1;
  if (!(in >> value)) return -1;
  return value;
}

long long WatchLimit() {
  // The user-namespace limit is the one that applies to this process; in the initial namespace
  // it is fs.inotify.max_user_watches itself.
  long long limit = ReadProcNumber("/proc/sys/user/max_inotify_watches");
  return limit >= 0 ? limit : ReadProcNumber("/proc/sys/fs/inotify/max_user_watches");
}

}  // namespace

const char* RepoEventKindName(RepoEvent::Kind kind) {
  switch (kind) {
    case RepoEvent::Kind::kChanged:
      return "kChanged";
    case RepoEvent::Kind::kWriting:
      return "kWriting";
    case RepoEvent::Kind::kClosedWrite:
      return "kClosedWrite";
    case RepoEvent::Kind::kRemoved:
      return "kRemoved";
    case RepoEvent::Kind::kMoved:
      return "kMoved";
    case RepoEvent::Kind::kSubtree:
      return "kSubtree";
    case RepoEvent::Kind::kRescan:
      return "kRescan";
  }
  return "unknown";
}

std::string ToString(const RepoEvent& event) {
  std::string s = RepoEventKindName(event.kind);
  if (event.kind == RepoEvent::Kind::kMoved) {
    s += fmt::format(" \"{}\" -> \"{}\"", event.from_path, event.path);
  } else if (event.kind != RepoEvent::Kind::kRescan) {
    s += fmt::format(" \"{}\"", event.path);
  }
  if (event.is_dir) s += " (dir)";
  if (!event.reason.empty()) s += ": " + event.reason;
  return s;
}

Result<std::unique_ptr<RepoWatcher>> RepoWatcher::Open(const std::string& root,
                                                       const RepoWatcherOptions& options,
                                                       Clock& clock) {
  if (root.empty()) return Status::InvalidArgument("watch repository: the path is empty");
  std::error_code ec;
  std::string abs = std::filesystem::absolute(root, ec).lexically_normal().string();
  if (ec) return Status::IoError(fmt::format("watch repository {}: {}", root, ec.message()));
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();

  struct stat st;
  if (::stat(abs.c_str(), &st) != 0) {
    int err = errno;
    std::string msg = fmt::format("watch repository {}: {}", abs, std::strerror(err));
    return err == ENOENT ? Status::NotFound(msg) : Status::IoError(msg);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("watch repository {}: not a directory", abs));
  }

  UniqueFd inotify_fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_fd.valid()) {
    int err = errno;
    std::string msg =
        fmt::format("create inotify instance for repository {}: {}", abs, std::strerror(err));
    if (err == EMFILE) {
      msg += fmt::format(
          " (fs.inotify.max_user_instances = {} reached, or the descriptor limit): raise it "
          "with sysctl -w fs.inotify.max_user_instances=N",
          ReadProcNumber("/proc/sys/fs/inotify/max_user_instances"));
    }
    return Status::IoError(msg);
  }
  UniqueFd event_fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!event_fd.valid()) {
    int err = errno;
    return Status::IoError(
        fmt::format("create eventfd for repository watcher {}: {}", abs, std::strerror(err)));
  }
  auto watcher = std::unique_ptr<RepoWatcher>(
      new RepoWatcher(abs, options, clock, std::move(inotify_fd), std::move(event_fd)));
  watcher->use_proc_fd_ = ::access("/proc/self/fd", X_OK) == 0;
  watcher->WatchTree("");
  auto it = watcher->path_to_wd_.find("");
  if (it == watcher->path_to_wd_.end()) {
    if (watcher->failures_ == 0) {
      return Status::NotFound(
          fmt::format("watch repository {}: it was removed or replaced while being opened", abs));
    }
    // The root is the first directory WatchTree tries, so the first failure is the root's.
    const Status& first = watcher->first_failure_;
    std::string msg = fmt::format("watch repository {}: {}", abs, first.message());
    if (watcher->watch_limit_hit_) {
      msg += fmt::format(": inotify watch limit {} reached, raise fs.inotify.max_user_watches",
                         WatchLimit());
    }
    if (first.IsNotFound()) return Status::NotFound(msg);
    if (first.code() == Status::Code::kUnsupported) return Status::Unsupported(msg);
    return Status::IoError(msg);
  }
  watcher->root_wd_ = it->second;
  return watcher;
}

RepoWatcher::RepoWatcher(std::string root, const RepoWatcherOptions& options, Clock& clock,
                         UniqueFd inotify_fd, UniqueFd event_fd)
    : root_(std::move(root)),
      options_(options),
      clock_(clock),
      inotify_fd_(std::move(inotify_fd)),
      event_fd_(std::move(event_fd)),
      buffer_(kReadBuffer) {}

RepoWatcher::~RepoWatcher() = default;

void RepoWatcher::Interrupt() {
  uint64_t one = 1;
  // Fails only when the counter would overflow, and then Poll is woken anyway.
  [[maybe_unused]] ssize_t n = ::write(event_fd_.get(), &one, sizeof(one));
}

Status RepoWatcher::Poll(std::chrono::milliseconds timeout, std::vector<RepoEvent>* out) {
  out_ = out;
  last_for_path_.clear();
  const size_t start = out->size();
  // The kernel wait is real time; the watcher's timers are on clock_.
  const auto deadline =
      std::chrono::steady_clock::now() + std::max(timeout, std::chrono::milliseconds(0));
  Status status;
  for (bool first = true;; first = false) {
    const Clock::TimePoint now = clock_.Now();
    FinishBatch(now);
    if (out->size() > start) break;
    const auto real_now = std::chrono::steady_clock::now();
    if (!first && real_now >= deadline) break;

    auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - real_now).count();
    for (const PendingMove& move : pending_moves_) {
      wait =
          std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(move.deadline - now).count());
    }
    if (incomplete_) {
      wait =
          std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(next_rewatch_ - now).count());
    }
    int wait_ms = static_cast<int>(std::clamp<decltype(wait)>(wait, 0, INT_MAX));

    pollfd fds[2] = {{inotify_fd_.get(), POLLIN, 0}, {event_fd_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      status = Status::IoError(
          fmt::format("wait for inotify events of repository {}: {}", root_, std::strerror(errno)));
      break;
    }
    if (fds[1].revents & POLLIN) {
      uint64_t count;
      [[maybe_unused]] ssize_t got = ::read(event_fd_.get(), &count, sizeof(count));
      break;
    }
    if (fds[0].revents & POLLIN) {
      status = ReadEvents();
      if (!status.ok()) break;
    }
  }
  out_ = nullptr;
  last_for_path_.clear();
  return status;
}

Status RepoWatcher::ReadEvents() {
  for (int reads = 0; reads < kMaxReadsPerCall; ++reads) {
    ssize_t n = ::read(inotify_fd_.get(), buffer_.data(), buffer_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return Status::Ok();
      return Status::IoError(
          fmt::format("read inotify events of repository {}: {}", root_, std::strerror(errno)));
    }
    if (n == 0) return Status::Ok();
    size_t offset = 0;
    while (offset + sizeof(inotify_event) <= static_cast<size_t>(n)) {
      inotify_event event;
      std::memcpy(&event, buffer_.data() + offset, sizeof(event));
      const char* name = buffer_.data() + offset + sizeof(inotify_event);
      // The name is NUL-padded to an aligned length; inotify never splits an event.
      HandleEvent(event, std::string(name, strnlen(name, event.len)));
      offset += sizeof(inotify_event) + event.len;
    }
  }
  return Status::Ok();
}

void RepoWatcher::HandleEvent(const inotify_event& event, const std::string& name) {
  if (event.mask & IN_Q_OVERFLOW) {
    overflowed_ = true;
    return;
  }
  auto it = wd_to_path_.find(event.wd);
  if (it == wd_to_path_.end()) return;  // a watch dropped already: its IN_IGNORED or stragglers
  if (event.wd == root_wd_ &&
      (event.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED))) {
    LoseRoot(event.mask & IN_DELETE_SELF ? "was deleted"
             : event.mask & IN_MOVE_SELF ? "was moved or renamed"
             : event.mask & IN_UNMOUNT   ? "was unmounted"
                                         : "lost its inotify watch");
    return;
  }
  if (event.mask & IN_IGNORED) {
    ForgetWatch(event.wd);
    return;
  }
  // A directory's own deletion, move or unmount is reported through its parent's events.
  if (event.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) return;
  const bool is_dir = (event.mask & IN_ISDIR) != 0;
  const std::string dir = it->second;  // copied: handling may change the maps
  if (name.empty()) {
    // The watched directory itself; only the root has no parent to report its changes.
    if ((event.mask & IN_ATTRIB) && event.wd == root_wd_) {
      Emit({RepoEvent::Kind::kChanged, dir, "", true, ""});
    }
    return;
  }
  const std::string path = JoinPath(dir, name);
  if (event.mask & IN_CREATE) {
    if (is_dir) {
      // Watch first, then report: whatever the consumer's scan misses arrives as events.
      WatchTree(path);
      Emit({RepoEvent::Kind::kSubtree, path, "", true, ""});
    } else {
      Emit({RepoEvent::Kind::kChanged, path, "", false, ""});
    }
  }
  if (event.mask & IN_MODIFY) Emit({RepoEvent::Kind::kWriting, path, "", is_dir, ""});
  if (event.mask & IN_CLOSE_WRITE) Emit({RepoEvent::Kind::kClosedWrite, path, "", is_dir, ""});
  if (event.mask & IN_ATTRIB) Emit({RepoEvent::Kind::kChanged, path, "", is_dir, ""});
  if (event.mask & IN_DELETE) {
    // The kernel drops a deleted directory's watch itself, maybe only once its last user lets
    // go; forget it now so that a new directory of the same name is watched afresh.
    if (is_dir) DropTree(path);
    Emit({RepoEvent::Kind::kRemoved, path, "", is_dir, ""});
  }
  if (event.mask & IN_MOVED_FROM) {
    PendingMove move{event.cookie, path, is_dir, clock_.Now() + options_.move_pairing_window, {}};
    // Detach the directory's watches from their paths (events from them are still reported
    // under the old paths), so that a new directory created there meanwhile is watched afresh.
    if (is_dir) move.watches = Detach(path);
    pending_moves_.push_back(std::move(move));
  }
  if (event.mask & IN_MOVED_TO) {
    auto move = std::find_if(pending_moves_.begin(), pending_moves_.end(),
                             [&](const PendingMove& m) { return m.cookie == event.cookie; });
    if (move != pending_moves_.end()) {
      PendingMove done = std::move(*move);
      pending_moves_.erase(move);
      if (is_dir) Reattach(done, path);
      std::string from = std::move(done.from_path);
      Emit({RepoEvent::Kind::kMoved, path, std::move(from), is_dir, ""});
    } else if (is_dir) {
      // Moved in from outside the tree (or from a directory without a watch).
      WatchTree(path);
      Emit({RepoEvent::Kind::kSubtree, path, "", true, ""});
    } else {
      Emit({RepoEvent::Kind::kChanged, path, "", false, ""});
    }
  }
}

void RepoWatcher::FinishBatch(Clock::TimePoint now) {
  if (root_lost_) {
    pending_moves_.clear();
    overflowed_ = false;
    failures_ = 0;
    return;
  }
  if (overflowed_) {
    overflowed_ = false;
    Emit({RepoEvent::Kind::kRescan, "", "", true,
          fmt::format("the inotify event queue of repository {} overflowed "
                      "(fs.inotify.max_queued_events = {}) and changes were lost: rescan the "
                      "repository; raise fs.inotify.max_queued_events if this happens often",
                      root_, ReadProcNumber("/proc/sys/fs/inotify/max_queued_events"))});
    // Moves, creations and deletions of directories may be among the lost events.
    pending_moves_.clear();
    incomplete_ = !Rewatch();
    if (incomplete_) next_rewatch_ = now + options_.rewatch_interval;
  }

  for (size_t i = 0; i < pending_moves_.size();) {
    if (pending_moves_[i].deadline > now) {
      ++i;
      continue;
    }
    PendingMove move = std::move(pending_moves_[i]);
    pending_moves_.erase(pending_moves_.begin() + static_cast<std::ptrdiff_t>(i));
    // Moved out of the tree: its watches go (those watched again meanwhile stay).
    for (int wd : move.watches) {
      if (IsDetached(wd)) DropWatch(wd);
    }
    Emit({RepoEvent::Kind::kRemoved, move.from_path, "", move.is_dir, ""});
  }

  if (incomplete_ && failures_ == 0 && now >= next_rewatch_) {
    if (Rewatch()) {
      incomplete_ = false;
      Emit({RepoEvent::Kind::kRescan, "", "", true,
            fmt::format("every directory of repository {} is watched again: rescan for changes "
                        "made while some were not",
                        root_)});
    }
  }
  if (failures_ > 0) {
    Emit({RepoEvent::Kind::kRescan, "", "", true, FailureReason()});
    failures_ = 0;
    incomplete_ = true;
    next_rewatch_ = now + options_.rewatch_interval;
  }
}

void RepoWatcher::Emit(RepoEvent event) {
  if (out_ == nullptr) return;
  const bool repeatable = event.kind == RepoEvent::Kind::kChanged ||
                          event.kind == RepoEvent::Kind::kWriting ||
                          event.kind == RepoEvent::Kind::kClosedWrite;
  auto it = last_for_path_.find(event.path);
  if (repeatable && it != last_for_path_.end() && (*out_)[it->second] == event) return;
  const size_t index = out_->size();
  last_for_path_[event.path] = index;
  if (event.kind == RepoEvent::Kind::kMoved) last_for_path_[event.from_path] = index;
  out_->push_back(std::move(event));
}

std::vector<int> RepoWatcher::WatchTree(const std::string& rel) {
  std::vector<int> watched;
  const UniqueFd root_fd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.valid()) {
    RecordFailure("", "open", errno);
    return watched;
  }
  std::vector<std::string> stack{rel};
  while (!stack.empty()) {
    std::string dir = std::move(stack.back());
    stack.pop_back();
    Result<UniqueFd> opened =
        OpenBeneath(root_fd.get(), root_, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!opened.ok()) {
      // Gone, or replaced by a non-directory or a symlink (or a folder on the way was), since
      // it was seen: nothing to watch.
      const Status& why = opened.status();
      if (!why.IsNotFound() && why.code() != Status::Code::kInvalidArgument) {
        RecordFailure(dir, why);
      }
      continue;
    }
    UniqueFd fd = std::move(opened).value();
    int wd;
    if (use_proc_fd_) {
      wd = inotify_add_watch(inotify_fd_.get(), fmt::format("/proc/self/fd/{}", fd.get()).c_str(),
                             kMask);
    } else {
      wd = inotify_add_watch(inotify_fd_.get(), Absolute(root_, dir).c_str(),
                             kMask | IN_DONT_FOLLOW);
    }
    if (wd >= 0) {
      SetWatch(wd, dir);
      watched.push_back(wd);
    } else if (errno != ENOENT && errno != ENOTDIR) {
      RecordFailure(dir, "watch", errno);
    }
    // Directories below an unwatched one are still watched: their changes are seen.
    DIR* listing = fdopendir(fd.get());
    if (listing == nullptr) {
      RecordFailure(dir, "list", errno);
      continue;
    }
    const int dir_fd = fd.release();  // closedir closes it
    errno = 0;
    while (const dirent* entry = readdir(listing)) {
      const char* name = entry->d_name;
      if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
      bool is_dir = entry->d_type == DT_DIR;
      if (entry->d_type == DT_UNKNOWN) {
        struct stat st;
        is_dir = fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
      }
      if (is_dir) stack.push_back(JoinPath(dir, name));
      errno = 0;
    }
    if (errno != 0) RecordFailure(dir, "list", errno);
    closedir(listing);
  }
  return watched;
}

bool RepoWatcher::Rewatch() {
  failures_ = 0;
  watch_limit_hit_ = false;
  std::vector<int> watched = WatchTree("");
  std::unordered_set<int> keep(watched.begin(), watched.end());
  std::vector<int> stale;
  for (const auto& [wd, path] : wd_to_path_) {
    if (!keep.count(wd)) stale.push_back(wd);
  }
  for (int wd : stale) DropWatch(wd);
  return failures_ == 0;
}

void RepoWatcher::SetWatch(int wd, const std::string& rel) {
  auto it = wd_to_path_.find(wd);
  if (it != wd_to_path_.end() && it->second != rel && !it->second.empty() && !rel.empty() &&
      !IsDetached(wd)) {
    // The same directory, known under another path: it was moved while events were lost.
    RenamePrefix(it->second, rel);
  }
  auto at = path_to_wd_.find(rel);
  if (at != path_to_wd_.end() && at->second == wd) return;
  // Another directory known at `rel` was replaced while events were lost.
  if (at != path_to_wd_.end()) DropTree(rel);
  path_to_wd_[rel] = wd;
  wd_to_path_[wd] = rel;
}

bool RepoWatcher::IsDetached(int wd) const {
  auto it = wd_to_path_.find(wd);
  if (it == wd_to_path_.end()) return false;
  auto at = path_to_wd_.find(it->second);
  return at == path_to_wd_.end() || at->second != wd;
}

std::vector<int> RepoWatcher::Detach(const std::string& rel) {
  std::vector<int> wds;
  for (auto it = path_to_wd_.lower_bound(rel);
       it != path_to_wd_.end() && it->first.compare(0, rel.size(), rel) == 0;) {
    if (IsAtOrBelow(it->first, rel)) {
      wds.push_back(it->second);
      it = path_to_wd_.erase(it);
    } else {
      ++it;
    }
  }
  return wds;
}

void RepoWatcher::Reattach(const PendingMove& move, const std::string& to) {
  // What the rename replaced goes; the moved directories themselves may have been attached
  // again at `to` by a walk in between, and stay.
  std::vector<int> replaced;
  for (auto it = path_to_wd_.lower_bound(to);
       it != path_to_wd_.end() && it->first.compare(0, to.size(), to) == 0; ++it) {
    if (IsAtOrBelow(it->first, to) &&
        std::find(move.watches.begin(), move.watches.end(), it->second) == move.watches.end()) {
      replaced.push_back(it->second);
    }
  }
  for (int wd : replaced) DropWatch(wd);
  for (int wd : move.watches) {
    if (!IsDetached(wd)) continue;  // dropped, or attached again by a walk
    std::string& path = wd_to_path_[wd];
    if (!IsAtOrBelow(path, move.from_path)) continue;
    path = to + path.substr(move.from_path.size());
    path_to_wd_[path] = wd;
  }
}

void RepoWatcher::RenamePrefix(const std::string& from, const std::string& to) {
  if (from == to || from.empty() || to.empty()) return;
  std::vector<std::pair<int, std::string>> moved;  // wd, path below `from` ("" or "/...")
  for (auto it = path_to_wd_.lower_bound(from);
       it != path_to_wd_.end() && it->first.compare(0, from.size(), from) == 0;) {
    if (IsAtOrBelow(it->first, from)) {
      moved.emplace_back(it->second, it->first.substr(from.size()));
      it = path_to_wd_.erase(it);
    } else {
      ++it;
    }
  }
  DropTree(to);  // what the rename replaced
  for (auto& [wd, rest] : moved) {
    std::string path = to + rest;
    path_to_wd_[path] = wd;
    wd_to_path_[wd] = std::move(path);
  }
}

void RepoWatcher::DropTree(const std::string& rel) {
  std::vector<int> wds;
  for (auto it = path_to_wd_.lower_bound(rel);
       it != path_to_wd_.end() && it->first.compare(0, rel.size(), rel) == 0; ++it) {
    if (IsAtOrBelow(it->first, rel)) wds.push_back(it->second);
  }
  for (int wd : wds) DropWatch(wd);
}

void RepoWatcher::DropWatch(int wd) {
  // EINVAL when the kernel removed it already (directory deleted): nothing left to do.
  inotify_rm_watch(inotify_fd_.get(), wd);
  ForgetWatch(wd);
}

void RepoWatcher::ForgetWatch(int wd) {
  auto it = wd_to_path_.find(wd);
  if (it == wd_to_path_.end()) return;
  auto p = path_to_wd_.find(it->second);
  if (p != path_to_wd_.end() && p->second == wd) path_to_wd_.erase(p);
  wd_to_path_.erase(it);
}

void RepoWatcher::RecordFailure(const std::string& rel, const char* operation, int err) {
  const std::string message =
      fmt::format("{} {}: {}", operation, Absolute(root_, rel), std::strerror(err));
  RecordFailure(rel, err == ENOENT ? Status::NotFound(message) : Status::IoError(message));
  if (err == ENOSPC) watch_limit_hit_ = true;
}

void RepoWatcher::RecordFailure(const std::string& rel, const Status& why) {
  if (failures_ == 0) {
    first_failure_path_ = rel;
    first_failure_ = why;
  }
  ++failures_;
}

std::string RepoWatcher::FailureReason() const {
  const long long every =
      std::chrono::ceil<std::chrono::seconds>(options_.rewatch_interval).count();
  const char* dirs = failures_ == 1 ? "directory" : "directories";
  if (watch_limit_hit_) {
    return fmt::format(
        "inotify watch limit reached: {} {} of repository {} not watched (first: {}); this "
        "watcher holds {} watches and the limit is {}: raise fs.inotify.max_user_watches "
        "(sysctl -w fs.inotify.max_user_watches=N, N well above {} plus what other programs "
        "use); until then changes there are found only by rescans, every {} s",
        failures_, dirs, root_, Absolute(root_, first_failure_path_), wd_to_path_.size(),
        WatchLimit(), wd_to_path_.size() + failures_, every);
  }
  return fmt::format(
      "cannot watch {} {} of repository {} (first: {}); changes there are found only by "
      "rescans, every {} s",
      failures_, dirs, root_, first_failure_.message(), every);
}

void RepoWatcher::LoseRoot(const std::string& what) {
  if (root_lost_) return;
  root_lost_ = true;
  Emit({RepoEvent::Kind::kRescan, "", "", true,
        fmt::format("repository root {} {}: nothing is watched any more; restart replsync once "
                    "the repository is back at {}",
                    root_, what, root_)});
  std::vector<int> wds;
  for (const auto& [wd, path] : wd_to_path_) wds.push_back(wd);
  for (int wd : wds) DropWatch(wd);
  pending_moves_.clear();
  incomplete_ = false;
}

}  // namespace replsync::capture
