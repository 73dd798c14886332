#include "sync/files/open_beneath.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "sync/path_text.h"

namespace replsync {

namespace {

// openat2 gives up with EAGAIN when a rename elsewhere in the file system raced with a ".."
// lookup; it asks to be called again. A lookup that loses this many times in a row is reported.
constexpr int kRacedLookupAttempts = 100;

}  // namespace

Result<UniqueFd> OpenBeneath(int dir_fd, std::string_view dir_name, std::string_view path,
                             int flags) {
  const std::string what = path.empty() ? fmt::format("open {}", dir_name)
                                        : fmt::format("open {} in {}", QuotePath(path), dir_name);
  // O_TMPFILE includes the O_DIRECTORY bit: only all of its bits mean O_TMPFILE.
  if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
    return Status::InvalidArgument(what + ": OpenBeneath does not create files");
  }
  if (path.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(what + ": the path holds a NUL byte");
  }
  const std::string at = path.empty() ? std::string(".") : std::string(path);
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int err = 0;
  for (int attempt = 0; attempt < kRacedLookupAttempts; ++attempt) {
    const long fd = ::syscall(SYS_openat2, dir_fd, at.c_str(), &how, sizeof(how));
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    err = errno;
    if (err != EINTR && err != EAGAIN) break;
  }
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return Status::NotFound(fmt::format("{}: {}", what, std::strerror(err)));
    case ELOOP:
      return Status::InvalidArgument(
          what + ": the path is or goes through a symbolic link, and none is followed here");
    case EXDEV:
      return Status::InvalidArgument(
          what + ": the path leaves the folder (by \"..\" or by being absolute)");
    case ENOSYS:
      return Status::Unsupported(what + ": openat2(2) needs Linux 5.6 or later");
    case EAGAIN:
      return Status::IoError(fmt::format("{}: the lookup raced with renames {} times in a row",
                                         what, kRacedLookupAttempts));
    default:
      return Status::IoError(fmt::format("{}: {}", what, std::strerror(err)));
  }
}

}  // namespace replsync
