#include "sync/file_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace replsync {
namespace {

struct flock WholeFile(short type) {
  struct flock lock = {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;  // to the end, however long
  return lock;
}

}  // namespace

Result<FileLock> FileLock::Acquire(const std::string& path, std::chrono::milliseconds wait,
                                   const std::string& holder, Clock& clock) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound(fmt::format("open {}: {}", path, std::strerror(err)));
    return Status::IoError(fmt::format("open {}: {}", path, std::strerror(err)));
  }
  const Clock::TimePoint deadline = clock.Now() + wait;
  while (true) {
    struct flock lock = WholeFile(F_WRLCK);
    if (fcntl(fd.get(), F_OFD_SETLK, &lock) == 0) break;
    const int err = errno;
    if (err != EAGAIN && err != EACCES && err != EINTR) {
      return Status::IoError(fmt::format("lock {}: {}", path, std::strerror(err)));
    }
    if (clock.Now() >= deadline) {
      const std::string holder = HolderText(path);
      return Status::Aborted(fmt::format("{} is held by {}", path,
                                         holder.empty() ? std::string("another process") : holder));
    }
    clock.SleepFor(std::chrono::milliseconds(5));
  }
  if (!holder.empty()) {
    if (ftruncate(fd.get(), 0) != 0 || pwrite(fd.get(), holder.data(), holder.size(), 0) < 0) {
      return Status::IoError(fmt::format("write {}: {}", path, std::strerror(errno)));
    }
  }
  return FileLock(std::move(fd));
}

Result<bool> FileLock::Held(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return false;
    return Status::IoError(fmt::format("open {}: {}", path, std::strerror(errno)));
  }
  // F_OFD_GETLK needs a lock type the descriptor could take; asking for a read lock finds any
  // write lock held by another description.
  struct flock lock = WholeFile(F_RDLCK);
  if (fcntl(fd.get(), F_OFD_GETLK, &lock) != 0) {
    return Status::IoError(fmt::format("probe the lock of {}: {}", path, std::strerror(errno)));
  }
  return lock.l_type != F_UNLCK;
}

std::string FileLock::HolderText(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace replsync
