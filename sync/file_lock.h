// FileLock: an exclusive lock on a file, held for the owner's lifetime (liveness by locks, not
// by pids: a pid can be reused, a lock dies with its holder however it ends, kill -9 included).
//
// Open file description locks (fcntl F_OFD_SETLK over the whole file): like flock(2) they belong
// to the descriptor and go with it, and unlike flock they can be probed without being taken
// (F_OFD_GETLK), so asking "is replsyncd running?" never gets in the way of a replsyncd that is
// starting. Every user of a lock file goes through this class (flock(2) locks would not see
// these).
// Thread-safety: a FileLock is a value owned by one thread; the static functions are
// thread-safe.
#pragma once

#include <chrono>
#include <string>

#include "sync/clock.h"
#include "sync/status.h"
#include "sync/unique_fd.h"

namespace replsync {

class FileLock {
 public:
  // How long Acquire tries by default while another holds the lock: a prober that takes it to
  // act atomically (the applier lifting a dead verify's barrier) holds it only for an instant.
  static constexpr std::chrono::milliseconds kDefaultWait{2000};

  // Takes the lock on `path` (created 0644 if missing), trying for up to `wait` of `clock`
  // (every 5 ms), and writes `holder` into the file (e.g. "1234\n", the holder's pid, for
  // messages; "" leaves it).
  // Aborted when another holds it after `wait` ("<path> is held by <the holder's text>");
  // NotFound when the folder does not exist; IoError otherwise. The message names the path.
  static Result<FileLock> Acquire(const std::string& path,
                                  std::chrono::milliseconds wait = kDefaultWait,
                                  const std::string& holder = {},
                                  Clock& clock = SystemClock());
  // Whether some process holds the lock on `path`, without taking it. False when the file does
  // not exist. IoError when it cannot be asked.
  static Result<bool> Held(const std::string& path);
  // What the holder wrote into `path` (its first line), "" when unknown.
  static std::string HolderText(const std::string& path);

  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;
  // Releases the lock (closes the descriptor).
  ~FileLock() = default;

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace replsync
