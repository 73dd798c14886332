#include "sync/status_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace replsync {

std::string StatusFilePath(const std::string& state_dir) { return state_dir + "/status.json"; }

Status WriteStatusFile(const std::string& state_dir, const std::string& json) {
  std::string path = StatusFilePath(state_dir);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("write status file " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < json.size()) {
    ssize_t n = ::write(fd, json.data() + done, json.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::IoError("write status file " + tmp + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IoError("rename status file to " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Result<std::string> ReadStatusFile(const std::string& state_dir) {
  std::string path = StatusFilePath(state_dir);
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) {
      return Status::NotFound("no status file " + path +
                              ": replsyncd has not run with this state_dir");
    }
    return Status::IoError("read status file " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace replsync
