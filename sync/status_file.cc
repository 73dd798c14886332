#include "sync/status_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "sync/key_value_file.h"

namespace replsync {

std::string StatusFilePath(const std::string& state_dir) { return state_dir + "/status.json"; }

Status WriteStatusFile(const std::string& state_dir, const std::string& json) {
  return WriteFileAtomically(StatusFilePath(state_dir), json, "status file");
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
