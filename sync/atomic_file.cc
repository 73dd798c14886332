#include "sync/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "sync/unique_fd.h"

namespace replsync {

namespace {

// Fresh names tried before giving up (each collision means another file took that name).
constexpr int kTempNameAttempts = 100;

std::string RandomSuffix() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{:016x}", rng());
}

// The folder holding `path` ("." for a bare name), for the fsync after the rename.
std::string FolderOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteAll(int fd, std::string_view content) {
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Status WriteFileAtomically(const std::string& path, std::string_view content, std::string_view what,
                           const AtomicWriteOptions& options) {
  const std::string prefix = fmt::format("write {} {}", what, path);
  auto fail = [&](const std::string& step, int err) {
    return Status::IoError(fmt::format("{}: {}: {}", prefix, step, std::strerror(err)));
  };

  std::string temp;
  UniqueFd fd;
  for (int attempt = 0; !fd.valid(); ++attempt) {
    temp = path + ".tmp." + RandomSuffix();
    fd.Reset(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    options.mode & 0600));
    if (!fd.valid() && (errno != EEXIST || attempt + 1 >= kTempNameAttempts)) {
      return fail("create the temporary file " + temp, errno);
    }
  }
  // From here on the temporary is ours: removed on every failure before the rename.
  auto remove_temp = [&temp] { ::unlink(temp.c_str()); };
  // Created at most 0600 (less the umask); now exactly the mode asked for, before any content.
  if (::fchmod(fd.get(), options.mode) != 0) {
    const int err = errno;
    remove_temp();
    return fail("chmod the temporary file " + temp, err);
  }

  Status written = WriteAll(fd.get(), content);
  if (!written.ok()) {
    remove_temp();
    return Status::IoError(
        fmt::format("{}: write the temporary file {}: {}", prefix, temp, written.message()));
  }
  if (::fsync(fd.get()) != 0) {
    const int err = errno;
    remove_temp();
    return fail("fsync the temporary file " + temp, err);
  }
  // A close error (NFS, quota) can be the first report of a failed write.
  if (::close(fd.release()) != 0) {
    const int err = errno;
    remove_temp();
    return fail("close the temporary file " + temp, err);
  }
  if (options.before_rename) options.before_rename(temp);
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    remove_temp();
    return fail("rename " + temp + " over it", err);
  }
  const std::string folder = FolderOf(path);
  const UniqueFd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return fail("open its folder " + folder + " to fsync the rename", errno);
  if (::fsync(dir.get()) != 0) return fail("fsync its folder " + folder, errno);
  return Status::Ok();
}

Result<std::string> ReadSmallFile(const std::string& path, std::string_view what) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return Status::NotFound(fmt::format("no {} {}", what, path));
    return Status::IoError(fmt::format("read {} {}: {}", what, path, std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Status RemoveSmallFile(const std::string& path, std::string_view what) {
  if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
    return Status::IoError(fmt::format("remove {} {}: {}", what, path, std::strerror(errno)));
  }
  return Status::Ok();
}

}  // namespace replsync
