#include "apply/file_applier.h"

#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "sync/files/content_hash.h"
#include "sync/files/file_delta.h"
#include "sync/files/file_meta.h"
#include "sync/files/open_beneath.h"
#include "sync/files/repository_path.h"
#include "sync/path_text.h"
#include "sync/unique_fd.h"

namespace replsync::apply {
namespace {

// Calls `f` again while it fails with EINTR.
template <typename F>
auto RetryEintr(F f) {
  for (;;) {
    auto r = f();
    if (r >= 0 || errno != EINTR) return r;
  }
}

Status IoErr(const std::string& op, const std::string& object, int err) {
  return Status::IoError(op + " " + object + ": " + std::strerror(err));
}

// OK when `path` is a repository path (sync/files/repository_path.h).
Status ValidatePath(const std::string& path) {
  const std::string_view problem = RepositoryPathProblem(path);
  if (problem.empty()) return Status::Ok();
  return Status::InvalidArgument("refusing path '" + EscapePath(path) + "': it " +
                                 std::string(problem) + "; nothing was written");
}

std::string NameOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Join(const std::string& dir, const std::string& name) {
  return name.empty() ? dir : dir + "/" + name;
}

// The folders a directory is opened with: read for listing and *at calls, no link followed.
constexpr int kDirFlags = O_RDONLY | O_DIRECTORY;

// Why the folder of `path` could not be opened (`why`: OpenBeneath's Status): a symbolic link
// or ".." on the way is refused as the path's fault; anything else is the file system's.
Status ParentError(const std::string& path, const Status& why) {
  switch (why.code()) {
    case Status::Code::kInvalidArgument:
      return Status::InvalidArgument("path '" + EscapePath(path) +
                                     "' would leave the repository through a symbolic link or "
                                     "'..' (" +
                                     why.message() + "); nothing was written");
    case Status::Code::kUnsupported:
      return why;
    default:
      return Status::IoError(why.message());
  }
}

// Opens the parent directory of the (validated) relative `path` below root_fd without following
// any symbolic link (OpenBeneath). With `create`, missing directories are made (mode 0755).
// Without it, an invalid UniqueFd when the parent does not exist (or a component is not a
// directory).
Result<UniqueFd> OpenParent(int root_fd, const std::string& root, const std::string& path,
                            bool create) {
  const std::string parent = ParentPath(path);
  Result<UniqueFd> direct = OpenBeneath(root_fd, root, parent, kDirFlags);
  if (direct.ok()) return std::move(direct).value();
  if (!direct.status().IsNotFound()) return ParentError(path, direct.status());
  if (!create) return UniqueFd();
  // Walk down one component at a time, making what is missing; each step is itself opened
  // beneath the folder above it, so a link planted meanwhile is still refused.
  Result<UniqueFd> root_dir = OpenBeneath(root_fd, root, "", kDirFlags);
  if (!root_dir.ok()) return ParentError(path, root_dir.status());
  UniqueFd current = std::move(root_dir).value();
  std::string current_name = root;
  size_t start = 0;
  while (start < parent.size()) {
    size_t end = parent.find('/', start);
    if (end == std::string::npos) end = parent.size();
    const std::string component = parent.substr(start, end - start);
    Result<UniqueFd> next = OpenBeneath(current.get(), current_name, component, kDirFlags);
    if (!next.ok() && next.status().IsNotFound()) {
      if (::mkdirat(current.get(), component.c_str(), 0755) != 0 && errno != EEXIST) {
        return IoErr("create directory", Join(root, parent.substr(0, end)), errno);
      }
      next = OpenBeneath(current.get(), current_name, component, kDirFlags);
    }
    if (!next.ok()) return ParentError(path, next.status());
    current = std::move(next).value();
    current_name = Join(root, parent.substr(0, end));
    start = end + 1;
  }
  return current;
}

// lstat of `name` in `dirfd`: 0, or the errno.
int LstatAt(int dirfd, const std::string& name, struct stat* st) {
  return ::fstatat(dirfd, name.c_str(), st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

// Opens `name` in `dirfd` for metadata changes and reading, never following a symbolic link
// and never blocking (a FIFO). -1 with errno set on failure.
int OpenNoFollow(int dirfd, const std::string& name) {
  return RetryEintr([&] {
    return ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  });
}

// Applies `meta` to whatever is at `name` in `dirfd` (owner and times only for a symbolic link).
Status ApplyMetaAt(int dirfd, const std::string& name, const pb::FileMeta& meta, bool keep_setid,
                   const std::string& full) {
  struct stat st {};
  if (int err = LstatAt(dirfd, name, &st); err != 0) return IoErr("stat", full, err);
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
    UniqueFd fd(OpenNoFollow(dirfd, name));
    if (!fd.valid()) return IoErr("open", full, errno);
    return ApplyMetaFd(fd.get(), meta, keep_setid, full);
  }
  if (::fchownat(dirfd, name.c_str(), meta.uid(), meta.gid(), AT_SYMLINK_NOFOLLOW) != 0) {
    return IoErr("chown", full, errno);
  }
  if (!S_ISLNK(st.st_mode) && ::fchmodat(dirfd, name.c_str(), ModeOf(meta, keep_setid), 0) != 0) {
    return IoErr("chmod", full, errno);
  }
  timespec times[2] = {ToTimespec(meta.mtime_ns()), ToTimespec(meta.mtime_ns())};
  if (::utimensat(dirfd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return IoErr("set times of", full, errno);
  }
  return Status::Ok();
}

// The mtime a change's parent directory `dirfd` must have after the change: `wanted`, or when the
// primary could not say (wanted < 0: the directory was being deleted there too, and the primary's
// manifest keeps its old mtime) the one it has now, before the change. -1 when unknown.
int64_t ParentMtimeAfter(int dirfd, int64_t wanted) {
  if (wanted >= 0 || dirfd < 0) return wanted;
  struct stat st {};
  if (::fstat(dirfd, &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// Sets a directory's mtime, keeping its atime; nothing when mtime_ns < 0.
Status SetDirMtime(int dirfd, int64_t mtime_ns, const std::string& full) {
  if (mtime_ns < 0) return Status::Ok();
  timespec times[2] = {{0, UTIME_OMIT}, ToTimespec(mtime_ns)};
  if (::futimens(dirfd, times) != 0) return IoErr("set mtime of directory", full, errno);
  return Status::Ok();
}

struct DirEntry {
  std::string name;
  unsigned char type;  // d_type
};

// The entries of the directory `fd` (without "." and ".."); `fd` stays open.
Result<std::vector<DirEntry>> ListDir(int fd, const std::string& full) {
  UniqueFd dup_fd(RetryEintr([&] { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }));
  if (!dup_fd.valid()) return IoErr("read directory", full, errno);
  DIR* dir = ::fdopendir(dup_fd.get());
  if (dir == nullptr) return IoErr("read directory", full, errno);
  (void)dup_fd.release();  // closedir closes it
  std::vector<DirEntry> entries;
  for (;;) {
    errno = 0;
    dirent* entry = ::readdir(dir);
    if (entry == nullptr) {
      int err = errno;
      ::closedir(dir);
      if (err != 0) return IoErr("read directory", full, err);
      return entries;
    }
    std::string_view name(entry->d_name);
    if (name == "." || name == "..") continue;
    entries.push_back(DirEntry{std::string(name), entry->d_type});
  }
}

bool IsDirEntry(int dirfd, const DirEntry& entry) {
  if (entry.type != DT_UNKNOWN) return entry.type == DT_DIR;
  struct stat st {};
  return LstatAt(dirfd, entry.name, &st) == 0 && S_ISDIR(st.st_mode);
}

Status RemoveAt(int dirfd, const std::string& name, const std::string& full);

// Removes the directory `name` in `dirfd` with everything in it, never following a symbolic
// link. A missing directory is fine; a non-directory there is unlinked.
Status RemoveTree(int dirfd, const std::string& name, const std::string& full) {
  UniqueFd fd(RetryEintr([&] {
    return ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }));
  if (!fd.valid()) {
    if (errno == ENOENT) return Status::Ok();
    if (errno == ENOTDIR || errno == ELOOP) {
      if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
        return IoErr("remove", full, errno);
      }
      return Status::Ok();
    }
    return IoErr("open directory", full, errno);
  }
  RS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, ListDir(fd.get(), full));
  for (const DirEntry& entry : entries) {
    std::string child = full + "/" + entry.name;
    if (IsDirEntry(fd.get(), entry)) {
      RS_RETURN_IF_ERROR(RemoveTree(fd.get(), entry.name, child));
    } else {
      RS_RETURN_IF_ERROR(RemoveAt(fd.get(), entry.name, child));
    }
  }
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return IoErr("remove directory", full, errno);
  }
  return Status::Ok();
}

// Removes whatever is at `name` in `dirfd` (a directory with its contents); missing is fine.
Status RemoveAt(int dirfd, const std::string& name, const std::string& full) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return Status::Ok();
  if (errno == EISDIR) return RemoveTree(dirfd, name, full);
  return IoErr("remove", full, errno);
}

// Removes the entries named ".replsync-tmp.*" anywhere below the directory `fd`, counting them.
Status RemoveTemporaries(int fd, const std::string& full, uint64_t* removed) {
  RS_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, ListDir(fd, full));
  for (const DirEntry& entry : entries) {
    std::string child = full + "/" + entry.name;
    if (std::string_view(entry.name).substr(0, kApplierTempPrefix.size()) == kApplierTempPrefix) {
      RS_RETURN_IF_ERROR(RemoveAt(fd, entry.name, child));
      ++*removed;
      continue;
    }
    if (!IsDirEntry(fd, entry)) continue;
    UniqueFd sub(RetryEintr([&] {
      return ::openat(fd, entry.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }));
    if (!sub.valid()) {
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) continue;
      return IoErr("open directory", child, errno);
    }
    RS_RETURN_IF_ERROR(RemoveTemporaries(sub.get(), child, removed));
  }
  return Status::Ok();
}

// Whatever is at `name` in `dirfd` is about to be replaced by a rename of a non-directory:
// removes it first when it is a directory (rename cannot replace one).
Status ClearDirectory(int dirfd, const std::string& name, const std::string& full) {
  struct stat st {};
  int err = LstatAt(dirfd, name, &st);
  if (err == ENOENT) return Status::Ok();
  if (err != 0) return IoErr("stat", full, err);
  if (S_ISDIR(st.st_mode)) return RemoveTree(dirfd, name, full);
  return Status::Ok();
}

// Removes a temporary entry unless disarmed (the rename took it).
class TempGuard {
 public:
  TempGuard(int dirfd, std::string name) : dirfd_(dirfd), name_(std::move(name)) {}
  ~TempGuard() {
    if (armed_) ::unlinkat(dirfd_, name_.c_str(), 0);
  }
  TempGuard(const TempGuard&) = delete;
  TempGuard& operator=(const TempGuard&) = delete;
  void Disarm() { armed_ = false; }

 private:
  int dirfd_;
  std::string name_;
  bool armed_ = true;
};

std::string KindName(const pb::FileChange& change) {
  return pb::FileChange::Kind_Name(change.kind());
}

}  // namespace

const char* SpecialFileType(const pb::FileChange& change) {
  if (!change.has_meta()) return nullptr;
  const mode_t mode = static_cast<mode_t>(change.meta().mode());
  if (S_ISCHR(mode)) return "character device";
  if (S_ISBLK(mode)) return "block device";
  if (S_ISFIFO(mode)) return "FIFO";
  if (S_ISSOCK(mode)) return "socket";
  return nullptr;
}

const char* FileApplyOutcomeName(FileApplyOutcome outcome) {
  switch (outcome) {
    case FileApplyOutcome::kApplied:
      return "applied";
    case FileApplyOutcome::kAlreadyApplied:
      return "already applied";
    case FileApplyOutcome::kRefused:
      return "refused";
    case FileApplyOutcome::kNeedsResync:
      return "needs resync";
  }
  return "unknown";
}

// A multi-part FILE between its parts.
struct FileApplier::InProgress {
  std::string path;
  uint32_t next_part = 0;
  UniqueFd parent;                   // the directory of `path`
  int64_t parent_mtime_before = -1;  // its mtime before the temporary file was made there
  std::string name;                  // the last component of `path`
  std::string full;                  // root + "/" + path, for messages
  std::string temp_name;             // in `parent`
  UniqueFd temp;
  UniqueFd base;  // the current regular file at `path`, when there is one
  uint64_t base_size = 0;
  std::unique_ptr<DeltaDecoder> decoder;
  bool base_failed = false;  // a copy op did not fit the base (or there is none)
  pb::FileMeta meta;         // part 0's, in case the last part has none
  bool has_meta = false;
};

FileApplier::FileApplier(FileApplierOptions options, UniqueFd root_fd)
    : options_(std::move(options)), root_fd_(std::move(root_fd)), random_(std::random_device{}()) {}

FileApplier::~FileApplier() { DiscardInProgress(); }

Result<std::unique_ptr<FileApplier>> FileApplier::Open(FileApplierOptions options) {
  if (options.root.empty()) {
    return Status::InvalidArgument(
        "file applier: the repository path is empty; set [repository] path");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.root, ec);
  if (ec) return Status::IoError("create repository folder " + options.root + ": " + ec.message());
  UniqueFd fd(
      RetryEintr([&] { return ::open(options.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); }));
  if (!fd.valid()) return IoErr("open repository folder", options.root, errno);
  std::unique_ptr<FileApplier> applier(new FileApplier(std::move(options), std::move(fd)));
  uint64_t removed = 0;
  RS_RETURN_IF_ERROR(RemoveTemporaries(applier->root_fd_.get(), applier->options_.root, &removed)
                         .WithContext("remove leftover temporary files"));
  spdlog::info("file applier: removed {} leftover temporary file(s) below {}", removed,
               applier->options_.root);
  return applier;
}

Status FileApplier::Sync() {
  if (::syncfs(root_fd_.get()) != 0) return IoErr("syncfs repository folder", options_.root, errno);
  return Status::Ok();
}

std::string FileApplier::TempName() {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(random_()));
  return std::string(kApplierTempPrefix) + hex;
}

void FileApplier::DiscardInProgress() {
  if (in_progress_ == nullptr) return;
  if (in_progress_->temp.valid()) {
    ::unlinkat(in_progress_->parent.get(), in_progress_->temp_name.c_str(), 0);
  }
  in_progress_.reset();
}

Result<FileApplyOutcome> FileApplier::Apply(const pb::FileChange& change) {
  // The rest of a file refused at its part 0.
  if (refusing_ && change.kind() == pb::FileChange::FILE && change.path() == *refusing_ &&
      change.part() > 0) {
    if (change.last_part()) refusing_.reset();
    return FileApplyOutcome::kRefused;
  }
  refusing_.reset();
  if (const char* type = SpecialFileType(change); type != nullptr) {
    DiscardInProgress();
    ++refused_;
    if (refused_ % 1000 == 1) {
      spdlog::warn(
          "file applier: refused {} change for '{}': its mode 0{:o} makes it a {}, which the "
          "secondary never creates (a replsync primary sends none: check what runs there); "
          "nothing was changed, replication goes on ({} refused so far)",
          KindName(change), EscapePath(change.path()), change.meta().mode(), type, refused_);
    }
    if (change.kind() == pb::FileChange::FILE && !change.last_part()) refusing_ = change.path();
    return FileApplyOutcome::kRefused;
  }
  if (in_progress_ != nullptr) {
    const InProgress& current = *in_progress_;
    if (change.kind() != pb::FileChange::FILE || change.path() != current.path ||
        change.part() != current.next_part) {
      std::string message = KindName(change) + " change for '" + EscapePath(change.path()) +
                            "' (part " + std::to_string(change.part()) +
                            ") does not continue the file in progress '" + current.path +
                            "' (expecting its part " + std::to_string(current.next_part) +
                            "); the file in progress was discarded";
      DiscardInProgress();
      return Status::Corruption(message);
    }
  } else if (change.kind() == pb::FileChange::FILE && change.part() != 0) {
    // The rest of a file the primary abandoned (it changed before it was sent): nothing to do.
    if (change.abandoned()) return FileApplyOutcome::kApplied;
    // The rest of a file whose first parts this node never had: a stream that begins inside
    // it (a bootstrap joins the stream at its copy's point). The path stays as it is and is
    // asked for whole.
    ++orphan_parts_;
    if (orphan_parts_ % 1000 == 1) {
      spdlog::info(
          "file applier: part {} of '{}' without its first parts (the stream began "
          "inside this file): the path is asked for whole from the primary",
          change.part(), EscapePath(change.path()));
    }
    return FileApplyOutcome::kNeedsResync;
  }
  Result<FileApplyOutcome> result = ApplyChecked(change);
  if (!result.ok()) DiscardInProgress();
  return result;
}

Result<FileApplyOutcome> FileApplier::ApplyChecked(const pb::FileChange& change) {
  RS_RETURN_IF_ERROR(ValidatePath(change.path()));
  switch (change.kind()) {
    case pb::FileChange::FILE:
      return ApplyFile(change);
    case pb::FileChange::DIRECTORY:
      return ApplyDirectory(change);
    case pb::FileChange::SYMLINK:
      return ApplySymlink(change);
    case pb::FileChange::DELETE:
      return ApplyDelete(change);
    case pb::FileChange::RENAME:
      RS_RETURN_IF_ERROR(ValidatePath(change.from_path()));
      return ApplyRename(change);
    default:
      return Status::Corruption("file change for '" + EscapePath(change.path()) +
                                "' has unknown kind " + std::to_string(change.kind()));
  }
}

Result<FileApplyOutcome> FileApplier::ApplyFile(const pb::FileChange& change) {
  if (change.abandoned()) {
    DiscardInProgress();
    return FileApplyOutcome::kApplied;
  }
  if (in_progress_ == nullptr) {
    if (change.content_unchanged()) return ApplyFileMetaOnly(change);
    auto state = std::make_unique<InProgress>();
    state->path = change.path();
    state->name = NameOf(change.path());
    state->full = Join(options_.root, change.path());
    RS_ASSIGN_OR_RETURN(state->parent,
                        OpenParent(root_fd_.get(), options_.root, change.path(), true));
    state->parent_mtime_before = ParentMtimeAfter(state->parent.get(), -1);
    for (int attempt = 0; !state->temp.valid(); ++attempt) {
      state->temp_name = TempName();
      state->temp = UniqueFd(RetryEintr([&] {
        return ::openat(state->parent.get(), state->temp_name.c_str(),
                        O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      }));
      if (!state->temp.valid() && (errno != EEXIST || attempt >= 100)) {
        return IoErr("create",
                     Join(options_.root, Join(ParentPath(change.path()), state->temp_name)), errno);
      }
    }
    // The base for copy ops: the current version, when it is a regular file.
    UniqueFd base(OpenNoFollow(state->parent.get(), state->name));
    struct stat st {};
    if (base.valid() && ::fstat(base.get(), &st) == 0 && S_ISREG(st.st_mode)) {
      state->base = std::move(base);
      state->base_size = static_cast<uint64_t>(st.st_size);
    }
    state->decoder = std::make_unique<DeltaDecoder>(state->base.get(), state->temp.get());
    state->meta = change.meta();
    state->has_meta = change.has_meta();
    in_progress_ = std::move(state);
  }
  InProgress& current = *in_progress_;
  for (const pb::ContentOp& op : change.ops()) {
    if (current.base_failed) break;
    bool copy = op.data().empty() && op.length() > 0;
    if (copy && (!current.base.valid() || op.offset() > current.base_size ||
                 op.length() > current.base_size - op.offset())) {
      current.base_failed = true;
      break;
    }
    RS_RETURN_IF_ERROR(current.decoder->Apply(op).WithContext("rebuild " + current.full));
  }
  ++current.next_part;
  if (!change.last_part()) return FileApplyOutcome::kApplied;
  return FinishFile(change);
}

Result<FileApplyOutcome> FileApplier::FinishFile(const pb::FileChange& change) {
  InProgress& current = *in_progress_;
  if (change.content_hash().size() != Sha256::kSize) {
    return Status::Corruption("FILE change for '" + current.path + "': content_hash has " +
                              std::to_string(change.content_hash().size()) +
                              " bytes, not those of a SHA-256");
  }
  if (!change.has_meta() && !current.has_meta) {
    return Status::Corruption("FILE change for '" + current.path + "' has no meta");
  }
  const pb::FileMeta meta = change.has_meta() ? change.meta() : current.meta;
  bool rebuilt = false;
  if (!current.base_failed) {
    Result<std::string> hash = current.decoder->Finish();
    if (!hash.ok()) return hash.status().WithContext("rebuild " + current.full);
    rebuilt = *hash == change.content_hash();
  }
  if (!rebuilt) {
    // The copy ops did not fit the current version: keep it, unless it already is the result.
    UniqueFd parent = std::move(current.parent);
    std::string name = current.name;
    std::string full = current.full;
    ::unlinkat(parent.get(), current.temp_name.c_str(), 0);
    in_progress_.reset();
    UniqueFd fd(OpenNoFollow(parent.get(), name));
    if (!fd.valid()) {
      if (errno == ENOENT || errno == ELOOP || errno == ENXIO) {
        return FileApplyOutcome::kNeedsResync;
      }
      return IoErr("open", full, errno);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return IoErr("stat", full, errno);
    if (!S_ISREG(st.st_mode)) return FileApplyOutcome::kNeedsResync;
    Result<std::string> hash = Sha256OfFile(fd.get());
    if (!hash.ok()) return hash.status().WithContext("read " + full);
    if (*hash != change.content_hash()) return FileApplyOutcome::kNeedsResync;
    RS_RETURN_IF_ERROR(ApplyMetaFd(fd.get(), meta, options_.keep_setid, full));
    RS_RETURN_IF_ERROR(SetDirMtime(parent.get(), change.parent_mtime_ns(),
                                   Join(options_.root, ParentPath(change.path()))));
    return FileApplyOutcome::kAlreadyApplied;
  }
  std::string temp_full = Join(options_.root, Join(ParentPath(current.path), current.temp_name));
  RS_RETURN_IF_ERROR(ApplyMetaFd(current.temp.get(), meta, options_.keep_setid, temp_full));
  const int64_t parent_mtime =
      change.parent_mtime_ns() >= 0 ? change.parent_mtime_ns() : current.parent_mtime_before;
  RS_RETURN_IF_ERROR(ClearDirectory(current.parent.get(), current.name, current.full));
  if (::renameat(current.parent.get(), current.temp_name.c_str(), current.parent.get(),
                 current.name.c_str()) != 0) {
    return IoErr("rename " + temp_full + " to", current.full, errno);
  }
  UniqueFd parent = std::move(current.parent);
  in_progress_.reset();
  RS_RETURN_IF_ERROR(
      SetDirMtime(parent.get(), parent_mtime, Join(options_.root, ParentPath(change.path()))));
  return FileApplyOutcome::kApplied;
}

Result<FileApplyOutcome> FileApplier::ApplyFileMetaOnly(const pb::FileChange& change) {
  std::string full = Join(options_.root, change.path());
  RS_ASSIGN_OR_RETURN(UniqueFd parent,
                      OpenParent(root_fd_.get(), options_.root, change.path(), false));
  if (!parent.valid()) return FileApplyOutcome::kNeedsResync;
  UniqueFd fd(OpenNoFollow(parent.get(), NameOf(change.path())));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ELOOP || errno == ENXIO) return FileApplyOutcome::kNeedsResync;
    return IoErr("open", full, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return IoErr("stat", full, errno);
  if (!S_ISREG(st.st_mode)) return FileApplyOutcome::kNeedsResync;
  RS_RETURN_IF_ERROR(ApplyMetaFd(fd.get(), change.meta(), options_.keep_setid, full));
  RS_RETURN_IF_ERROR(SetDirMtime(parent.get(), change.parent_mtime_ns(),
                                 Join(options_.root, ParentPath(change.path()))));
  return FileApplyOutcome::kApplied;
}

Result<FileApplyOutcome> FileApplier::ApplyDirectory(const pb::FileChange& change) {
  std::string full = Join(options_.root, change.path());
  std::string name = NameOf(change.path());
  RS_ASSIGN_OR_RETURN(UniqueFd parent,
                      OpenParent(root_fd_.get(), options_.root, change.path(), true));
  const int64_t parent_mtime = ParentMtimeAfter(parent.get(), change.parent_mtime_ns());
  struct stat st {};
  int err = LstatAt(parent.get(), name, &st);
  if (err != 0 && err != ENOENT) return IoErr("stat", full, err);
  if (err == 0 && !S_ISDIR(st.st_mode)) {
    if (::unlinkat(parent.get(), name.c_str(), 0) != 0) return IoErr("remove", full, errno);
  }
  if (err != 0 || !S_ISDIR(st.st_mode)) {
    if (::mkdirat(parent.get(), name.c_str(), 0700) != 0) {
      return IoErr("create directory", full, errno);
    }
  }
  UniqueFd fd(RetryEintr([&] {
    return ::openat(parent.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }));
  if (!fd.valid()) return IoErr("open directory", full, errno);
  RS_RETURN_IF_ERROR(ApplyMetaFd(fd.get(), change.meta(), options_.keep_setid, full));
  RS_RETURN_IF_ERROR(
      SetDirMtime(parent.get(), parent_mtime, Join(options_.root, ParentPath(change.path()))));
  return FileApplyOutcome::kApplied;
}

Result<FileApplyOutcome> FileApplier::ApplySymlink(const pb::FileChange& change) {
  const std::string& target = change.link_target();
  if (target.empty() || target.find('\0') != std::string::npos) {
    return Status::Corruption("SYMLINK change for '" + change.path() +
                              "' has an empty link_target or one with a NUL byte");
  }
  std::string full = Join(options_.root, change.path());
  std::string name = NameOf(change.path());
  RS_ASSIGN_OR_RETURN(UniqueFd parent,
                      OpenParent(root_fd_.get(), options_.root, change.path(), true));
  const int64_t parent_mtime = ParentMtimeAfter(parent.get(), change.parent_mtime_ns());
  std::string temp_name;
  for (int attempt = 0;; ++attempt) {
    temp_name = TempName();
    if (::symlinkat(target.c_str(), parent.get(), temp_name.c_str()) == 0) break;
    if (errno != EEXIST || attempt >= 100) {
      return IoErr("create symbolic link",
                   Join(options_.root, Join(ParentPath(change.path()), temp_name)), errno);
    }
  }
  TempGuard guard(parent.get(), temp_name);
  std::string temp_full = Join(options_.root, Join(ParentPath(change.path()), temp_name));
  if (::fchownat(parent.get(), temp_name.c_str(), change.meta().uid(), change.meta().gid(),
                 AT_SYMLINK_NOFOLLOW) != 0) {
    return IoErr("chown", temp_full, errno);
  }
  timespec times[2] = {ToTimespec(change.meta().mtime_ns()), ToTimespec(change.meta().mtime_ns())};
  if (::utimensat(parent.get(), temp_name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return IoErr("set times of", temp_full, errno);
  }
  RS_RETURN_IF_ERROR(ClearDirectory(parent.get(), name, full));
  if (::renameat(parent.get(), temp_name.c_str(), parent.get(), name.c_str()) != 0) {
    return IoErr("rename " + temp_full + " to", full, errno);
  }
  guard.Disarm();
  RS_RETURN_IF_ERROR(
      SetDirMtime(parent.get(), parent_mtime, Join(options_.root, ParentPath(change.path()))));
  return FileApplyOutcome::kApplied;
}

Result<FileApplyOutcome> FileApplier::ApplyDelete(const pb::FileChange& change) {
  RS_ASSIGN_OR_RETURN(UniqueFd parent,
                      OpenParent(root_fd_.get(), options_.root, change.path(), false));
  if (!parent.valid()) return FileApplyOutcome::kApplied;  // its directory is gone already
  std::string full = Join(options_.root, change.path());
  const int64_t parent_mtime = ParentMtimeAfter(parent.get(), change.parent_mtime_ns());
  RS_RETURN_IF_ERROR(RemoveAt(parent.get(), NameOf(change.path()), full));
  RS_RETURN_IF_ERROR(
      SetDirMtime(parent.get(), parent_mtime, Join(options_.root, ParentPath(change.path()))));
  return FileApplyOutcome::kApplied;
}

Result<FileApplyOutcome> FileApplier::ApplyRename(const pb::FileChange& change) {
  const std::string& from = change.from_path();
  const std::string& to = change.path();
  if (from.size() < to.size() && to.compare(0, from.size() + 1, from + "/") == 0) {
    return Status::Corruption("RENAME change moves '" + from + "' into itself ('" + to + "')");
  }
  if (to.size() < from.size() && from.compare(0, to.size() + 1, to + "/") == 0) {
    return Status::Corruption("RENAME change moves '" + from + "' over its own ancestor '" + to +
                              "'");
  }
  std::string from_full = Join(options_.root, from);
  std::string to_full = Join(options_.root, to);
  std::string from_name = NameOf(from);
  std::string to_name = NameOf(to);
  RS_ASSIGN_OR_RETURN(UniqueFd from_parent, OpenParent(root_fd_.get(), options_.root, from, false));
  struct stat from_st {};
  int from_err = ENOENT;
  if (from_parent.valid() && from != to) {
    from_err = LstatAt(from_parent.get(), from_name, &from_st);
    if (from_err != 0 && from_err != ENOENT) return IoErr("stat", from_full, from_err);
  }
  // Missing directories above `to` are only made when there is something to move there.
  RS_ASSIGN_OR_RETURN(UniqueFd to_parent,
                      OpenParent(root_fd_.get(), options_.root, to, from_err != ENOENT));
  if (!to_parent.valid()) return FileApplyOutcome::kNeedsResync;
  struct stat to_st {};
  int to_err = LstatAt(to_parent.get(), to_name, &to_st);
  if (to_err != 0 && to_err != ENOENT) return IoErr("stat", to_full, to_err);

  const int64_t from_parent_mtime =
      ParentMtimeAfter(from_parent.get(), change.from_parent_mtime_ns());
  const int64_t to_parent_mtime = ParentMtimeAfter(to_parent.get(), change.parent_mtime_ns());
  FileApplyOutcome outcome = FileApplyOutcome::kApplied;
  if (from_err == ENOENT) {
    // Applied before (or `from` never arrived): only a plausible result at `to` is accepted.
    if (to_err == ENOENT) return FileApplyOutcome::kNeedsResync;
    if (change.has_meta() && S_ISREG(to_st.st_mode) &&
        static_cast<uint64_t>(to_st.st_size) != change.meta().size()) {
      return FileApplyOutcome::kNeedsResync;
    }
    outcome = from == to ? FileApplyOutcome::kApplied : FileApplyOutcome::kAlreadyApplied;
  } else {
    bool same_file =
        to_err == 0 && to_st.st_dev == from_st.st_dev && to_st.st_ino == from_st.st_ino;
    if (same_file) {
      // Hard links to one file: rename(2) would do nothing and leave `from` in place.
      if (::unlinkat(from_parent.get(), from_name.c_str(), 0) != 0) {
        return IoErr("remove", from_full, errno);
      }
    } else {
      if (to_err == 0 && (S_ISDIR(to_st.st_mode) || S_ISDIR(from_st.st_mode))) {
        // rename(2) replaces neither a non-empty directory nor a non-directory by a directory.
        RS_RETURN_IF_ERROR(RemoveAt(to_parent.get(), to_name, to_full));
      }
      if (::renameat(from_parent.get(), from_name.c_str(), to_parent.get(), to_name.c_str()) != 0) {
        return IoErr("rename " + from_full + " to", to_full, errno);
      }
    }
  }
  if (change.has_meta()) {
    RS_RETURN_IF_ERROR(
        ApplyMetaAt(to_parent.get(), to_name, change.meta(), options_.keep_setid, to_full));
  }
  if (from_parent.valid()) {
    RS_RETURN_IF_ERROR(
        SetDirMtime(from_parent.get(), from_parent_mtime, Join(options_.root, ParentPath(from))));
  }
  RS_RETURN_IF_ERROR(
      SetDirMtime(to_parent.get(), to_parent_mtime, Join(options_.root, ParentPath(to))));
  return outcome;
}

}  // namespace replsync::apply
