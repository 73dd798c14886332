#include "capture/files/repo_paths.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "replsync.pb.h"
#include "sync/files/open_beneath.h"
#include "sync/path_text.h"

namespace replsync::capture {

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

bool NotInRepository(const Status& why) {
  return why.IsNotFound() || why.code() == Status::Code::kInvalidArgument;
}

Result<Looked> LookBeneath(int root_fd, const std::string& root, const std::string& path) {
  RS_ASSIGN_OR_RETURN(UniqueFd fd, OpenBeneath(root_fd, root, path, O_PATH | O_NOFOLLOW));
  Looked looked{std::move(fd), {}};
  if (fstat(looked.fd.get(), &looked.st) != 0) {
    const int err = errno;
    return Status::IoError(fmt::format("stat '{}' in {}: {}", path, root, Errno(err)));
  }
  return looked;
}

Result<struct stat> LstatBeneath(int root_fd, const std::string& root, const std::string& path) {
  RS_ASSIGN_OR_RETURN(Looked looked, LookBeneath(root_fd, root, path));
  return looked.st;
}

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

int64_t ParentMtime(int root_fd, const std::string& root, const std::string& path) {
  const Result<struct stat> st = LstatBeneath(root_fd, root, ParentPath(path));
  if (!st.ok() || !S_ISDIR(st->st_mode)) return -1;
  return Nanos(st->st_mtim);
}

}  // namespace replsync::capture
