// Applying a replicated path's metadata (pb::FileMeta) to what a secondary wrote: the file
// applier's (apply/file_applier.h) and the bootstrap's bulk file copy's (apply/bootstrap/
// file_copier.h) one way of doing it.
// Thread-safety: stateless functions.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>

#include "replsync.pb.h"
#include "sync/status.h"

namespace replsync {

// Nanoseconds since the epoch as a timespec (tv_nsec in 0..999,999,999, also before 1970).
inline timespec ToTimespec(int64_t ns) {
  constexpr int64_t kNanosPerSecond = 1000000000;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(ns / kNanosPerSecond);
  ts.tv_nsec = static_cast<long>(ns % kNanosPerSecond);
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += kNanosPerSecond;
    ts.tv_sec -= 1;
  }
  return ts;
}

// The permission bits of `meta` that are applied: setuid/setgid only with keep_setid.
inline mode_t ModeOf(const pb::FileMeta& meta, bool keep_setid) {
  return static_cast<mode_t>(meta.mode() & (keep_setid ? 07777 : 01777));
}

// Owner, then mode (chown clears set-user-ID bits), then atime = mtime = meta.mtime_ns, on the
// open `fd` of `full` (named in errors: IoError "<what> <full>: <errno text>").
inline Status ApplyMetaFd(int fd, const pb::FileMeta& meta, bool keep_setid,
                          const std::string& full) {
  auto error = [&](const char* what) {
    return Status::IoError(std::string(what) + " " + full + ": " + std::strerror(errno));
  };
  if (::fchown(fd, meta.uid(), meta.gid()) != 0) return error("chown");
  if (::fchmod(fd, ModeOf(meta, keep_setid)) != 0) return error("chmod");
  timespec times[2] = {ToTimespec(meta.mtime_ns()), ToTimespec(meta.mtime_ns())};
  if (::futimens(fd, times) != 0) return error("set times of");
  return Status::Ok();
}

}  // namespace replsync
