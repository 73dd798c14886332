#include "sync/node/status_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
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
  const bool existed = std::filesystem::exists(state_dir, ec);
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return Status::IoError("create state directory " + state_dir + ": " + ec.message());
  struct stat st {};
  if (::stat(state_dir.c_str(), &st) != 0) {
    return Status::IoError("stat state directory " + state_dir + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 07777) != 0700) {
    if (::chmod(state_dir.c_str(), 0700) != 0) {
      return Status::IoError(fmt::format(
          "make state directory {} private (chmod 700, it holds every replicated row and file): "
          "{}",
          state_dir, std::strerror(errno)));
    }
    if (existed && (st.st_mode & 077) != 0) {
      spdlog::warn(
          "state directory {} had mode {:04o}: group or others could read the journal, relay "
          "and status; tightened it to 0700",
          state_dir, st.st_mode & 07777);
    }
  }
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
