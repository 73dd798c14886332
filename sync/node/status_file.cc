#include "sync/node/status_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sync/file_lock.h"
#include "sync/atomic_file.h"

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

std::string DaemonLockPath(const std::string& state_dir) { return state_dir + "/replsyncd.lock"; }

Result<FileLock> ClaimStateDir(const std::string& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return Status::IoError("create state directory " + state_dir + ": " + ec.message());
  const std::string path = DaemonLockPath(state_dir);
  Result<FileLock> lock =
      FileLock::Acquire(path, FileLock::kDefaultWait, fmt::format("{}\n", getpid()));
  if (!lock.ok() && lock.status().code() == Status::Code::kAborted) {
    return Status::Aborted(fmt::format(
        "another replsyncd (pid {}) runs with the state folder {}; stop it first, or give this "
        "node its own [node] state_dir",
        FileLock::HolderText(path), state_dir));
  }
  return lock;
}

bool ReplsyncdRunning(const std::string& state_dir) {
  Result<bool> held = FileLock::Held(DaemonLockPath(state_dir));
  return held.ok() && *held;
}

}  // namespace replsync
