#include "capture/files/file_capture.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <set>

#include "capture/files/repo_watcher.h"
#include "replsync.pb.h"
#include "sync/files/content_hash.h"
#include "sync/files/file_delta.h"
#include "sync/files/manifest.h"
#include "sync/files/open_beneath.h"
#include "sync/path_text.h"
#include "sync/unique_fd.h"

namespace replsync::capture {

namespace {

using Clock = std::chrono::steady_clock;

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool Below(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

std::string Errno(int err) { return std::strerror(err); }

void FillMeta(const struct stat& st, pb::FileMeta* meta) {
  meta->set_mode(st.st_mode & 07777);
  meta->set_uid(st.st_uid);
  meta->set_gid(st.st_gid);
  meta->set_mtime_ns(Nanos(st.st_mtim));
  if (S_ISREG(st.st_mode)) meta->set_size(static_cast<uint64_t>(st.st_size));
}

ManifestEntry EntryFromStat(const std::string& path, ManifestEntry::Type type,
                            const struct stat& st) {
  ManifestEntry e;
  e.path = path;
  e.type = type;
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.size = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  e.mtime_ns = Nanos(st.st_mtim);
  e.ctime_ns = Nanos(st.st_ctim);
  e.inode = st.st_ino;
  return e;
}

bool SameFileState(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_size == b.st_size && Nanos(a.st_mtim) == Nanos(b.st_mtim) &&
         Nanos(a.st_ctim) == Nanos(b.st_ctim);
}

bool MetaEqual(const ManifestEntry& e, const struct stat& st) {
  return e.mode == (st.st_mode & 07777) && e.uid == st.st_uid && e.gid == st.st_gid &&
         e.mtime_ns == Nanos(st.st_mtim);
}

// Whether OpenBeneath's `why` says the path is not in the repository as a path of its own: it
// is missing, a folder on the way is not a folder, or it goes through a symbolic link (a
// symlinked folder is replicated as the link; what it points at is never read).
bool NotInRepository(const Status& why) {
  return why.IsNotFound() || why.code() == Status::Code::kInvalidArgument;
}

// A repository path looked at without following any symbolic link, on the way or at its end:
// a descriptor of the path itself (O_PATH; a symbolic link's own) and its lstat, taken from that
// descriptor, so that what is read next (a link's target) is the object that was stat'ed.
struct Looked {
  UniqueFd fd;
  struct stat st;
};

// Errors: OpenBeneath's (NotInRepository tells the path is not there), IoError when fstat fails.
Result<Looked> LookBeneath(int root_fd, const std::string& root, const std::string& path) {
  RS_ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath(root_fd, root, path, O_PATH | O_NOFOLLOW));
  Looked looked{std::move(fd), {}};
  if (fstat(looked.fd.get(), &looked.st) != 0) {
    const int err = errno;
    return Status::IoError(fmt::format("stat '{}' in {}: {}", path, root, Errno(err)));
  }
  return looked;
}

// The lstat of `path` below `root_fd`, as LookBeneath takes it.
Result<struct stat> LstatBeneath(int root_fd, const std::string& root, const std::string& path) {
  RS_ASSIGN_OR_RETURN(Looked looked, LookBeneath(root_fd, root, path));
  return looked.st;
}

// Reads a directory's names (without "." and ".."), sorted. NotFound when it is gone (or no
// longer a directory of the repository: replaced by a link, or below one).
Result<std::vector<std::string>> ListDirectory(int root_fd, const std::string& root,
                                               const std::string& path) {
  Result<UniqueFd> opened = OpenBeneath(root_fd, root, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!opened.ok()) {
    if (NotInRepository(opened.status())) {
      return Status::NotFound(fmt::format("directory '{}' is gone", path));
    }
    return opened.status();
  }
  UniqueFd fd = std::move(opened).value();
  DIR* dir = fdopendir(fd.get());
  if (dir == nullptr) {
    const int err = errno;
    return Status::IoError(fmt::format("read directory '{}': {}", path, Errno(err)));
  }
  (void)fd.release();  // closedir closes it
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* d = readdir(dir)) {
    if (std::strcmp(d->d_name, ".") == 0 || std::strcmp(d->d_name, "..") == 0) continue;
    names.emplace_back(d->d_name);
  }
  const int err = errno;
  closedir(dir);
  if (err != 0) return Status::IoError(fmt::format("read directory '{}': {}", path, Errno(err)));
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

FileCapture::FileCapture(FileCaptureOptions options, FileEntrySink sink)
    : options_(std::move(options)), sink_(std::move(sink)) {
  status_.root = options_.root;
}

FileCapture::~FileCapture() { Stop(); }

Status FileCapture::Start() {
  if (started_) return Status::Internal("file capture already started");
  root_fd_.Reset(open(options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd_.valid()) {
    const int err = errno;
    return Status::NotFound(fmt::format(
        "open repository {}: {}; create it or set [repository] path to the folder to replicate",
        options_.root, Errno(err)));
  }
  // The open-for-writing test takes a read lease and drops it at once; a writer opening the
  // file in between would make the kernel signal SIGIO, which must not end the process.
  signal(SIGIO, SIG_IGN);
  RS_ASSIGN_OR_RETURN(manifest_, Manifest::Open(options_.manifest_path));
  RS_ASSIGN_OR_RETURN(watcher_, RepoWatcher::Open(options_.root));
  stop_ = false;
  rescan_reason_ = "start";
  started_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_ = true;
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void FileCapture::Stop() {
  if (!started_) return;
  stop_ = true;
  if (watcher_) watcher_->Interrupt();
  if (thread_.joinable()) thread_.join();
  started_ = false;
  SetState("stopped");
}

void FileCapture::RequestResync(const std::vector<std::string>& paths) {
  std::lock_guard<std::mutex> lock(mu_);
  resync_requests_.insert(resync_requests_.end(), paths.begin(), paths.end());
  status_.resyncs_requested += paths.size();
  if (watcher_) watcher_->Interrupt();
}

void FileCapture::RequestTreeSnapshot(TreeSnapshotRequest request) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!accepting_) {
    lock.unlock();
    request.done(Status::Aborted("the file capture is not running"));
    return;
  }
  snapshot_requests_.push_back(std::move(request));
  if (watcher_) watcher_->Interrupt();
}

FileCaptureStatus FileCapture::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

Status FileCapture::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void FileCapture::SetState(const std::string& state) {
  std::lock_guard<std::mutex> lock(mu_);
  if (status_.state != "failed") status_.state = state;
}

void FileCapture::Run() {
  Status st = RunLoop();
  {
    std::vector<TreeSnapshotRequest> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      accepting_ = false;
      left.swap(snapshot_requests_);
    }
    for (TreeSnapshotRequest& request : left) {
      request.done(Status::Aborted("the primary's file capture stopped"));
    }
  }
  // What was submitted and is durable stays in the manifest; the rest is found again by the
  // next start's rescan.
  if (in_txn_) {
    Status committed = CommitManifest(/*force=*/true);
    if (!committed.ok() && st.ok()) st = committed;
    if (in_txn_) {
      (void)manifest_->Rollback();
      in_txn_ = false;
    }
  }
  if (!st.ok() && !stop_) {
    spdlog::error("files: capture of {} stopped: {}", options_.root, st.message());
    std::lock_guard<std::mutex> lock(mu_);
    error_ = st;
    status_.state = "failed";
    status_.last_error = st.message();
  }
}

Status FileCapture::RunLoop() {
  std::vector<RepoEvent> events;
  while (!stop_) {
    {
      std::vector<std::string> requests;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests.swap(resync_requests_);
      }
      for (const std::string& path : requests) {
        spdlog::info("files: the secondary asks for '{}' whole; journaling it again", path);
        Mark(path, /*deep=*/true, /*force=*/true, false, false);
      }
    }
    {
      std::vector<TreeSnapshotRequest> requests;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests.swap(snapshot_requests_);
      }
      for (TreeSnapshotRequest& request : requests) {
        Result<FileTreeSnapshot> snapshot = TakeTreeSnapshot(request);
        // Only the request's own problems go back to it; the capture's own errors stop it.
        if (!snapshot.ok() && snapshot.status().code() != Status::Code::kInvalidArgument) {
          request.done(
              Status::Aborted("the primary's file capture failed: " + snapshot.status().message()));
          return snapshot.status();
        }
        request.done(std::move(snapshot));
      }
    }
    if (!rescan_reason_.empty()) {
      const std::string reason = std::move(rescan_reason_);
      rescan_reason_.clear();
      Status st = Rescan(reason);
      if (stop_) break;
      if (!st.ok()) return st;
      continue;
    }
    // Wait for events until the next path is due (at most 100 ms, so commits and resync
    // requests are not held up).
    auto wait = std::chrono::milliseconds(100);
    const auto now = Clock::now();
    for (const auto& [path, d] : dirty_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(d.due - now);
      wait = std::max(std::chrono::milliseconds(0), std::min(wait, left));
    }
    events.clear();
    Status st = watcher_->Poll(wait, &events);
    if (!st.ok()) return st;
    for (const RepoEvent& event : events) {
      if (event.kind == RepoEvent::Kind::kMoved) {
        // A move is taken at once. Paths waiting below the old name move with it (HandleMove):
        // looking at them first would find them gone and journal their deletion.
        RS_RETURN_IF_ERROR(HandleMove(event.from_path, event.path));
      } else {
        OnEvent(event);
      }
    }
    RS_RETURN_IF_ERROR(ProcessDue(/*all=*/false));
    RS_RETURN_IF_ERROR(CommitManifest(/*force=*/dirty_.empty()));
    {
      std::lock_guard<std::mutex> lock(mu_);
      status_.files_pending = dirty_.size();
      uint64_t bytes = 0;
      for (const auto& [path, d] : dirty_) bytes += d.size;
      status_.bytes_pending = bytes;
      status_.watches = watcher_->watch_count();
      if (status_.state != "failed") status_.state = "watching";
    }
  }
  return Status::Ok();
}

void FileCapture::OnEvent(const RepoEvent& event) {
  using Kind = RepoEvent::Kind;
  switch (event.kind) {
    case Kind::kChanged:
    case Kind::kRemoved:
      Mark(event.path, false, false, false, false);
      break;
    case Kind::kWriting:
      Mark(event.path, false, false, true, false);
      break;
    case Kind::kClosedWrite:
      Mark(event.path, false, false, false, true);
      break;
    case Kind::kSubtree:
      Mark(event.path, true, false, false, false);
      break;
    case Kind::kMoved:
      break;  // handled by the caller
    case Kind::kRescan:
      spdlog::warn("files: rescanning {}: {}", options_.root, event.reason);
      rescan_reason_ = event.reason;
      break;
  }
}

void FileCapture::Mark(const std::string& path, bool deep, bool force, bool writing_event,
                       bool closed_event) {
  Dirty& d = dirty_[path];
  d.deep = d.deep || deep;
  d.force = d.force || force;
  if (writing_event) d.writing = true;
  if (closed_event) d.writing = false;
  d.due = Clock::now() + (d.writing ? options_.open_write_quiet : options_.quiet);
  if (force) d.due = Clock::now();
  const Result<struct stat> st = LstatBeneath(root_fd_.get(), options_.root, path);
  if (st.ok() && S_ISREG(st->st_mode)) d.size = static_cast<uint64_t>(st->st_size);
}

Status FileCapture::ProcessDue(bool all) {
  const auto now = Clock::now();
  // In path order, so a directory comes before what is in it.
  for (auto it = dirty_.begin(); it != dirty_.end() && !stop_;) {
    if (!all && it->second.due > now) {
      ++it;
      continue;
    }
    const std::string path = it->first;
    const Dirty d = it->second;
    it = dirty_.erase(it);
    RS_RETURN_IF_ERROR(Reconcile(path, d.deep, d.force));
    // A deep look covered the paths below it that were waiting too.
    if (d.deep) {
      while (it != dirty_.end() && Below(it->first, path) && !it->second.force &&
             !it->second.writing && it->second.due <= now) {
        it = dirty_.erase(it);
      }
    }
    if (Clock::now() - last_commit_ > options_.commit_interval) {
      RS_RETURN_IF_ERROR(CommitManifest(/*force=*/false));
    }
  }
  return Status::Ok();
}

Status FileCapture::Rescan(const std::string& reason) {
  SetState("scanning");
  const auto started = Clock::now();
  spdlog::info("files: scanning {} against the manifest ({})", options_.root, reason);
  // Events queued so far are covered by the scan; later ones are handled after it.
  dirty_.clear();
  RS_RETURN_IF_ERROR(Reconcile("", /*deep=*/true, /*force=*/false));
  RS_RETURN_IF_ERROR(CommitManifest(/*force=*/true));
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  uint64_t count = 0;
  if (auto n = manifest_->Count(); n.ok()) count = *n;
  spdlog::info("files: scan of {} done in {} ms: {} paths in the manifest", options_.root, ms,
               count);
  RS_RETURN_IF_ERROR(
      manifest_->PutMeta("last_rescan", fmt::format("{} {}", std::time(nullptr), reason)));
  std::lock_guard<std::mutex> lock(mu_);
  status_.last_rescan_unix = std::time(nullptr);
  status_.last_rescan_reason = reason;
  ++status_.rescans;
  return Status::Ok();
}

Status FileCapture::Reconcile(const std::string& path, bool deep, bool force) {
  if (!in_txn_) {
    RS_RETURN_IF_ERROR(manifest_->Begin());
    in_txn_ = true;
  }
  std::optional<ManifestEntry> known;
  if (!path.empty()) {
    RS_ASSIGN_OR_RETURN(known, manifest_->Get(path));
  }
  // Never through a symbolic link: a path below a symlinked folder is not in the repository
  // (the link is journaled as a link), so what the link points at is never read.
  Result<Looked> looked = LookBeneath(root_fd_.get(), options_.root, path);
  if (!looked.ok()) {
    const Status& why = looked.status();
    if (!NotInRepository(why)) return why;
    if (path.empty()) {
      return Status::NotFound(fmt::format("the repository {} is gone", options_.root));
    }
    if (!known && !force) return Status::Ok();
    if (!known && why.code() == Status::Code::kInvalidArgument) {
      // Asked for whole, but below a symbolic link: the secondary refuses a DELETE through its
      // link, and the path was never journaled; the link itself is journaled as a link.
      spdlog::warn("files: '{}' in {} goes through a symbolic link; it is not journaled ({})", path,
                   options_.root, why.message());
      return Status::Ok();
    }
    pb::FileChange change;
    change.set_kind(pb::FileChange::DELETE);
    change.set_path(path);
    change.set_parent_mtime_ns(ParentMtime(path));
    change.set_last_part(true);
    change.set_reason(force ? "resync" : "event");
    RS_RETURN_IF_ERROR(Submit(change, true));
    RS_RETURN_IF_ERROR(manifest_->Delete(path));
    return SetParentMtimeInManifest(path, change.parent_mtime_ns());
  }
  const struct stat& st = looked->st;
  if (S_ISDIR(st.st_mode)) {
    return ReconcileDirectory(path, st, deep, force, known ? &*known : nullptr);
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    // The link's own descriptor (O_PATH): "" reads the target of the link that was stat'ed.
    ssize_t n = readlinkat(looked->fd.get(), "", target.data(), target.size());
    if (n < 0) {
      const int err = errno;
      if (err == ENOENT || err == EINVAL) {  // replaced meanwhile: look again
        Mark(path, false, force, false, false);
        return Status::Ok();
      }
      return Status::IoError(fmt::format("read symbolic link '{}': {}", path, Errno(err)));
    }
    if (static_cast<size_t>(n) >= target.size()) {  // grew meanwhile
      Mark(path, false, force, false, false);
      return Status::Ok();
    }
    target.resize(static_cast<size_t>(n));
    if (!force && known && known->type == ManifestEntry::Type::kSymlink &&
        known->link_target == target && known->uid == st.st_uid && known->gid == st.st_gid &&
        known->mtime_ns == Nanos(st.st_mtim)) {
      return Status::Ok();
    }
    pb::FileChange change;
    change.set_kind(pb::FileChange::SYMLINK);
    change.set_path(path);
    FillMeta(st, change.mutable_meta());
    change.set_link_target(target);
    change.set_parent_mtime_ns(ParentMtime(path));
    change.set_last_part(true);
    change.set_reason(force ? "resync" : "event");
    RS_RETURN_IF_ERROR(Submit(change, true));
    if (known && known->type == ManifestEntry::Type::kDirectory) {
      RS_RETURN_IF_ERROR(manifest_->Delete(path));
    }
    ManifestEntry e = EntryFromStat(path, ManifestEntry::Type::kSymlink, st);
    e.link_target = target;
    RS_RETURN_IF_ERROR(manifest_->Put(e));
    return SetParentMtimeInManifest(path, change.parent_mtime_ns());
  }
  if (S_ISREG(st.st_mode)) return ShipFile(path, st, force, known ? &*known : nullptr);
  if (!warned_special_) {
    spdlog::warn(
        "files: '{}' in {} is not a regular file, directory or symbolic link (a FIFO, "
        "socket or device); such paths are not replicated",
        path, options_.root);
    warned_special_ = true;
  }
  return Status::Ok();
}

Status FileCapture::ReconcileDirectory(const std::string& path, const struct stat& st, bool deep,
                                       bool force, const ManifestEntry* known) {
  const bool was_dir = known != nullptr && known->type == ManifestEntry::Type::kDirectory;
  if (!path.empty() && (force || !was_dir || !MetaEqual(*known, st))) {
    pb::FileChange change;
    change.set_kind(pb::FileChange::DIRECTORY);
    change.set_path(path);
    FillMeta(st, change.mutable_meta());
    change.set_parent_mtime_ns(ParentMtime(path));
    change.set_last_part(true);
    change.set_reason(force ? "resync" : "event");
    RS_RETURN_IF_ERROR(Submit(change, true));
    if (known != nullptr && !was_dir) RS_RETURN_IF_ERROR(manifest_->Delete(path));
    RS_RETURN_IF_ERROR(manifest_->Put(EntryFromStat(path, ManifestEntry::Type::kDirectory, st)));
    RS_RETURN_IF_ERROR(SetParentMtimeInManifest(path, change.parent_mtime_ns()));
  }
  if (!deep && was_dir) return Status::Ok();
  Result<std::vector<std::string>> names = ListDirectory(root_fd_.get(), options_.root, path);
  if (!names.ok()) {
    if (names.status().IsNotFound()) {  // replaced meanwhile: look again
      Mark(path, true, force, false, false);
      return Status::Ok();
    }
    return names.status();
  }
  std::set<std::string> present;
  for (const std::string& name : *names) {
    if (stop_) return Status::Ok();
    const std::string child = JoinPath(path, name);
    present.insert(child);
    RS_RETURN_IF_ERROR(Reconcile(child, /*deep=*/true, force));
    if (Clock::now() - last_commit_ > options_.commit_interval) {
      RS_RETURN_IF_ERROR(CommitManifest(/*force=*/false));
    }
  }
  RS_ASSIGN_OR_RETURN(std::vector<ManifestEntry> children, manifest_->Children(path));
  for (const ManifestEntry& child : children) {
    if (present.count(child.path) == 0) RS_RETURN_IF_ERROR(Reconcile(child.path, false, force));
  }
  return Status::Ok();
}

Status FileCapture::ShipFile(const std::string& path, const struct stat& st, bool force,
                             const ManifestEntry* known) {
  const bool was_file = known != nullptr && known->type == ManifestEntry::Type::kFile;
  if (!force && was_file && known->inode == st.st_ino && known->size == uint64_t(st.st_size) &&
      known->mtime_ns == Nanos(st.st_mtim) && known->ctime_ns == Nanos(st.st_ctim)) {
    return Status::Ok();
  }
  // Written a moment ago (the scan at start has seen no event for it): let it settle.
  struct timespec now_ts;
  clock_gettime(CLOCK_REALTIME, &now_ts);
  const int64_t age_ns = Nanos(now_ts) - std::max(Nanos(st.st_mtim), Nanos(st.st_ctim));
  if (age_ns >= 0 && age_ns < std::chrono::nanoseconds(options_.quiet).count()) {
    Mark(path, false, force, false, false);
    return Status::Ok();
  }
  pb::FileChange first;
  first.set_kind(pb::FileChange::FILE);
  first.set_path(path);
  FillMeta(st, first.mutable_meta());
  first.set_parent_mtime_ns(ParentMtime(path));
  first.set_reason(force ? "resync" : "event");
  const int64_t parent_mtime = first.parent_mtime_ns();

  if (!force && was_file && known->inode == st.st_ino && known->size == uint64_t(st.st_size) &&
      known->mtime_ns == Nanos(st.st_mtim)) {
    // Only the inode's metadata changed (chmod, chown): no content is read.
    first.set_content_unchanged(true);
    first.set_content_hash(known->content_hash);
    first.set_last_part(true);
    RS_RETURN_IF_ERROR(Submit(first, true));
    ManifestEntry e = *known;
    ManifestEntry fresh = EntryFromStat(path, ManifestEntry::Type::kFile, st);
    e.mode = fresh.mode;
    e.uid = fresh.uid;
    e.gid = fresh.gid;
    e.ctime_ns = fresh.ctime_ns;
    RS_RETURN_IF_ERROR(manifest_->Put(e));
    return SetParentMtimeInManifest(path, parent_mtime);
  }

  // Opened beneath the root: a folder on the way replaced by a symbolic link since the stat is
  // refused, not followed out of the repository.
  Result<UniqueFd> opened =
      OpenBeneath(root_fd_.get(), options_.root, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (!opened.ok()) {
    if (NotInRepository(opened.status())) {  // replaced meanwhile
      Mark(path, false, force, false, false);
      return Status::Ok();
    }
    return opened.status();
  }
  const UniqueFd closer = std::move(opened).value();
  const int fd = closer.get();
  struct stat before;
  if (fstat(fd, &before) != 0 || !S_ISREG(before.st_mode) || before.st_ino != st.st_ino) {
    Mark(path, false, force, false, false);
    return Status::Ok();
  }
  // Someone still has it open for writing (a read lease is refused then): wait for the close,
  // unless the writer has been idle for open_write_quiet (a file held open for good).
  if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
    (void)fcntl(fd, F_SETLEASE, F_UNLCK);
  } else if ((errno == EAGAIN || errno == EBUSY) &&
             age_ns < std::chrono::nanoseconds(options_.open_write_quiet).count()) {
    Mark(path, false, force, /*writing_event=*/true, false);
    return Status::Ok();
  }

  std::vector<ChunkInfo> base;
  const bool use_base = !force && was_file && !known->chunks.empty();
  if (use_base) {
    Result<std::vector<ChunkInfo>> decoded = DecodeChunkList(known->chunks);
    if (decoded.ok()) {
      base = std::move(*decoded);
    } else {
      spdlog::warn("files: manifest chunk list of '{}' is unreadable ({}); shipping it whole", path,
                   decoded.status().message());
    }
  }
  if (!base.empty()) first.set_base_hash(known->content_hash);
  DeltaEncoder encoder(base, options_.part_bytes);
  // One part is held back, so that the last one can carry last_part and the content hash.
  std::optional<pb::FileChange> held;
  uint32_t part = 0;
  uint64_t new_offset = 0;  // where the next op's bytes start in the new content
  auto emit = [&](std::vector<pb::ContentOp>&& ops) -> Status {
    pb::FileChange next;
    if (part == 0) {
      next = first;
    } else {
      next.set_kind(pb::FileChange::FILE);
      next.set_path(path);
      next.set_parent_mtime_ns(first.parent_mtime_ns());  // every part: the last one sets it
      next.set_reason(first.reason());
    }
    next.set_part(part++);
    for (pb::ContentOp& op : ops) {
      if (op.data().size() >= options_.inline_bytes) {
        // The journal keeps a reference; the shipper reads the bytes when it sends the entry.
        const ChunkHash hash = ChunkHash::Of(op.data());
        op.set_source_offset(new_offset);
        op.set_source_length(op.data().size());
        op.set_source_hash_high(hash.high);
        op.set_source_hash_low(hash.low);
        new_offset += op.data().size();
        op.clear_data();
      } else {
        new_offset += op.data().empty() ? op.length() : op.data().size();
      }
      *next.add_ops() = std::move(op);
    }
    if (held) RS_RETURN_IF_ERROR(Submit(*held, false));
    held = std::move(next);
    return Status::Ok();
  };
  // One buffer for every file (a fresh 1 MiB one per file cost more than reading small files).
  std::string& block = read_buffer_;
  if (block.size() != options_.read_block) block.assign(options_.read_block, '\0');
  uint64_t offset = 0;
  while (true) {
    ssize_t n = pread(fd, block.data(), block.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      return Status::IoError(fmt::format("read '{}' in {}: {}", path, options_.root, Errno(err)));
    }
    if (n == 0) break;
    offset += static_cast<uint64_t>(n);
    RS_RETURN_IF_ERROR(
        encoder.Update(std::string_view(block.data(), static_cast<size_t>(n)), emit));
    if (stop_) break;
  }
  RS_RETURN_IF_ERROR(encoder.Finish(emit));
  if (!held) RS_RETURN_IF_ERROR(emit({}));

  struct stat after;
  Result<struct stat> again = LstatBeneath(root_fd_.get(), options_.root, path);
  const bool changed = stop_ || fstat(fd, &after) != 0 || !SameFileState(before, after) ||
                       !again.ok() || !SameFileState(before, *again);
  if (changed) {
    // Whatever the earlier parts said is void; the path is looked at again once it settles.
    if (part > 1) {
      held->clear_ops();
      held->set_abandoned(true);
      held->set_last_part(true);
      RS_RETURN_IF_ERROR(Submit(*held, true));
    }
    if (!stop_) {
      std::lock_guard<std::mutex> lock(mu_);
      ++status_.abandoned;
    }
    if (!stop_) Mark(path, false, force, false, false);
    return Status::Ok();
  }
  const std::string hash = encoder.content_hash();
  if (part == 1 && !force && was_file && known->content_hash == hash) {
    // Same content (a touch, or rewritten with the same bytes): metadata only.
    held->clear_ops();
    held->clear_base_hash();
    held->set_content_unchanged(true);
  }
  held->set_content_hash(hash);
  held->set_last_part(true);
  RS_RETURN_IF_ERROR(Submit(*held, true));
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.literal_bytes += encoder.literal_bytes();
    status_.copied_bytes += encoder.copied_bytes();
  }
  if (known != nullptr && known->type == ManifestEntry::Type::kDirectory) {
    RS_RETURN_IF_ERROR(manifest_->Delete(path));
  }
  ManifestEntry e = EntryFromStat(path, ManifestEntry::Type::kFile, before);
  e.content_hash = hash;
  e.chunks = EncodeChunkList(encoder.chunks());
  RS_RETURN_IF_ERROR(manifest_->Put(e));
  return SetParentMtimeInManifest(path, parent_mtime);
}

Status FileCapture::HandleMove(const std::string& from, const std::string& to) {
  if (!in_txn_) {
    RS_RETURN_IF_ERROR(manifest_->Begin());
    in_txn_ = true;
  }
  // Paths waiting below the old name wait under the new one.
  std::vector<std::pair<std::string, Dirty>> moved;
  for (auto it = dirty_.lower_bound(from); it != dirty_.end();) {
    if (it->first == from || Below(it->first, from)) {
      moved.emplace_back(to + it->first.substr(from.size()), it->second);
      it = dirty_.erase(it);
    } else if (it->first.compare(0, from.size(), from) == 0) {
      ++it;  // a sibling with the same prefix ("a/b.txt" after "a/b")
    } else {
      break;
    }
  }
  for (auto& [path, d] : moved) dirty_[path] = d;

  RS_ASSIGN_OR_RETURN(std::optional<ManifestEntry> known, manifest_->Get(from));
  const Result<struct stat> st = LstatBeneath(root_fd_.get(), options_.root, to);
  if (!known || !st.ok() || known->inode != st->st_ino) {
    // Not provable as a rename of what the secondary has: the old path goes, the new one is
    // looked at as new.
    Mark(from, false, false, false, false);
    Mark(to, true, false, false, false);
    return Status::Ok();
  }
  pb::FileChange change;
  change.set_kind(pb::FileChange::RENAME);
  change.set_path(to);
  change.set_from_path(from);
  pb::FileMeta* meta = change.mutable_meta();
  meta->set_mode(known->mode);
  meta->set_uid(known->uid);
  meta->set_gid(known->gid);
  meta->set_mtime_ns(known->mtime_ns);
  meta->set_size(known->size);
  change.set_parent_mtime_ns(ParentMtime(to));
  change.set_from_parent_mtime_ns(ParentMtime(from));
  change.set_last_part(true);
  change.set_reason("event");
  RS_RETURN_IF_ERROR(Submit(change, true));
  RS_RETURN_IF_ERROR(manifest_->Rename(from, to));
  RS_RETURN_IF_ERROR(SetParentMtimeInManifest(to, change.parent_mtime_ns()));
  RS_RETURN_IF_ERROR(SetParentMtimeInManifest(from, change.from_parent_mtime_ns()));
  // Its inode's ctime changed with the move; whatever else changed is found when it settles.
  Mark(to, false, false, false, false);
  return Status::Ok();
}

int64_t FileCapture::ParentMtime(const std::string& path) {
  const Result<struct stat> st = LstatBeneath(root_fd_.get(), options_.root, ParentPath(path));
  if (!st.ok() || !S_ISDIR(st->st_mode)) return -1;
  return Nanos(st->st_mtim);
}

Status FileCapture::SetParentMtimeInManifest(const std::string& path, int64_t mtime_ns) {
  const std::string parent = ParentPath(path);
  if (parent.empty() || mtime_ns < 0) return Status::Ok();
  RS_ASSIGN_OR_RETURN(std::optional<ManifestEntry> e, manifest_->Get(parent));
  if (!e || e->type != ManifestEntry::Type::kDirectory || e->mtime_ns == mtime_ns) {
    return Status::Ok();
  }
  e->mtime_ns = mtime_ns;
  return manifest_->Put(*e);
}

Status FileCapture::Submit(const pb::FileChange& change, bool completes) {
  // Nothing is dropped while the journal is full: wait (the capture service says so loudly).
  while (sink_.journal_full && sink_.journal_full() && !stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
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
    std::lock_guard<std::mutex> lock(mu_);
    ++status_.changes_journaled;
  }
  return Status::Ok();
}

Status FileCapture::CommitManifest(bool force) {
  if (!in_txn_) return Status::Ok();
  if (!force && Clock::now() - last_commit_ < options_.commit_interval) return Status::Ok();
  if (uncommitted_ && last_ticket_ != 0) RS_RETURN_IF_ERROR(sink_.wait_durable(last_ticket_));
  RS_RETURN_IF_ERROR(manifest_->Commit());
  in_txn_ = false;
  uncommitted_ = false;
  last_commit_ = Clock::now();
  return Status::Ok();
}

Result<FileTreeSnapshot> FileCapture::TakeTreeSnapshot(const TreeSnapshotRequest& request) {
  for (const std::string& path : request.resync_paths) {
    // The manifest checks the path (InvalidArgument names what is wrong with it).
    if (path.empty()) return Status::InvalidArgument("an empty path cannot be journaled again");
    RS_RETURN_IF_ERROR(manifest_->Get(path).status());
  }
  if (!request.resync_paths.empty()) {
    spdlog::info("files: verify's repair asks for {} path(s) whole; journaling them again",
                 request.resync_paths.size());
  }
  for (const std::string& path : request.resync_paths) {
    RS_RETURN_IF_ERROR(Reconcile(path, /*deep=*/true, /*force=*/true));
    // Journaled now: an event or request for it that was waiting is done too.
    dirty_.erase(path);
  }
  if (request.deep) {
    spdlog::info("files: verify --deep: rescanning {} and rereading every file", options_.root);
    RS_RETURN_IF_ERROR(Reconcile("", /*deep=*/true, /*force=*/false));
    RS_RETURN_IF_ERROR(RehashUnchanged());
  }
  RS_RETURN_IF_ERROR(CommitManifest(/*force=*/true));
  FileTreeSnapshot snapshot;
  snapshot.journal_seq = sink_.journal_last_seq ? sink_.journal_last_seq() : 0;
  RS_ASSIGN_OR_RETURN(FileTree tree, FileTree::FromManifest(*manifest_));
  tree.Finish(/*with_content=*/request.deep);
  spdlog::info("files: verify's snapshot of {} paths at journal sequence {}", tree.size(),
               snapshot.journal_seq);
  snapshot.tree = std::make_shared<const FileTree>(std::move(tree));
  return snapshot;
}

Status FileCapture::RehashUnchanged() {
  std::vector<std::string> changed;
  RS_RETURN_IF_ERROR(manifest_->ForEach([&](const ManifestEntry& e) {
    if (stop_ || e.type != ManifestEntry::Type::kFile) return Status::Ok();
    Result<UniqueFd> opened =
        OpenBeneath(root_fd_.get(), options_.root, e.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (!opened.ok()) {
      changed.push_back(e.path);  // gone or replaced: Reconcile journals what is there
      return Status::Ok();
    }
    const UniqueFd fd = std::move(opened).value();
    struct stat st;
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || e.inode != st.st_ino ||
        e.size != uint64_t(st.st_size) || e.mtime_ns != Nanos(st.st_mtim) ||
        e.ctime_ns != Nanos(st.st_ctim)) {
      changed.push_back(e.path);  // changed since journaled; its event may still be waiting
      return Status::Ok();
    }
    Result<std::string> hash = Sha256OfFile(fd.get());
    if (!hash.ok()) {
      return hash.status().WithContext(fmt::format("reread '{}' in {}", e.path, options_.root));
    }
    if (*hash != e.content_hash) {
      spdlog::warn(
          "files: verify --deep: '{}' in {} has new content with the size and mtime it "
          "had when journaled (changed behind the watcher's back); journaling it again",
          e.path, options_.root);
      changed.push_back(e.path);
    }
    return Status::Ok();
  }));
  for (const std::string& path : changed) {
    RS_RETURN_IF_ERROR(Reconcile(path, /*deep=*/false, /*force=*/true));
    dirty_.erase(path);
  }
  return Status::Ok();
}

}  // namespace replsync::capture

namespace replsync::capture {

FileContentReader::FileContentReader(std::string root) : root_(std::move(root)) {}

FileContentReader::~FileContentReader() = default;

Result<bool> FileContentReader::Fill(pb::FileChange* change) {
  bool has_refs = false;
  for (const pb::ContentOp& op : change->ops()) has_refs = has_refs || op.source_length() > 0;
  if (!has_refs) return true;
  if (!root_fd_.valid()) {
    root_fd_.Reset(open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd_.valid()) {
      const int err = errno;
      return Status::IoError(fmt::format("open repository {}: {}", root_, Errno(err)));
    }
  }
  if (open_fd_.valid() && (open_path_ != change->path() || change->part() == 0)) open_fd_.Reset();
  if (!open_fd_.valid()) {
    // Beneath the root: a folder on the way replaced by a symbolic link since the capture read
    // the file is refused (the bytes there are not the repository's), not followed.
    Result<UniqueFd> opened =
        OpenBeneath(root_fd_.get(), root_, change->path(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (!opened.ok()) {
      if (NotInRepository(opened.status())) return false;
      return opened.status().WithContext("send a file's content");
    }
    open_fd_ = std::move(opened).value();
    open_path_ = change->path();
  }
  // The file stays open for the following parts: even when it is replaced meanwhile, the
  // descriptor still reads the version the capture read (the hashes tell).
  const int fd = open_fd_.get();
  // After the last part the file is closed on return.
  const UniqueFd closer(change->last_part() ? open_fd_.release() : -1);
  for (pb::ContentOp& op : *change->mutable_ops()) {
    if (op.source_length() == 0) continue;
    std::string data(op.source_length(), '\0');
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = pread(fd, data.data() + done, data.size() - done,
                        static_cast<off_t>(op.source_offset() + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        return Status::IoError(
            fmt::format("read '{}' in {} to send it: {}", change->path(), root_, Errno(err)));
      }
      if (n == 0) return false;  // shorter now
      done += static_cast<size_t>(n);
    }
    const ChunkHash hash = ChunkHash::Of(data);
    if (hash.high != op.source_hash_high() || hash.low != op.source_hash_low()) return false;
    op.set_data(std::move(data));
    op.clear_source_offset();
    op.clear_source_length();
    op.clear_source_hash_high();
    op.clear_source_hash_low();
  }
  return true;
}

}  // namespace replsync::capture
