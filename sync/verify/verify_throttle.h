// RunningThrottle: `replsync verify` and `replsync repair` give way to a busy server
// (schemas/verify.md, "Throttle"). Before each chunk (at most every `recheck` while the servers
// are quiet) they ask every server for its Threads_running (SHOW GLOBAL STATUS); while one runs
// more than the limit of other queries they sleep in steps until it drops, at most `max_wait` per
// wait, after which they go on anyway with a warning.
//
// Other queries: Threads_running less the asking session itself and replication's binlog dump
// threads (a primary counts each as running even while it waits for the binlog to grow), so that
// a limit of 1 on an idle pair does not wait.
//
// Thread-safety: not thread-safe; one thread uses a throttle (and its sessions) at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sync/clock.h"
#include "sync/mysql/mysql_session.h"
#include "sync/status.h"

namespace replsync::verify {

struct ThrottleOptions {
  // Wait while a server runs more other queries than this; 0 disables the throttle.
  uint64_t max_running = 25;
  // The longest one wait lasts; then the chunk goes ahead with a warning.
  std::chrono::milliseconds max_wait{std::chrono::seconds(60)};
  // How long to sleep between two looks.
  std::chrono::milliseconds step{100};
  // After a look found the servers quiet, the next this much later at the earliest.
  std::chrono::milliseconds recheck{200};
};

// A server to watch: its name for messages ("primary") and a session on it (not owned).
struct ThrottledServer {
  std::string name;
  SqlSession* session = nullptr;
};

class RunningThrottle {
 public:
  // Waits and the time spent go by `clock` (tests: a ManualClock, so they drive the steps).
  RunningThrottle(ThrottleOptions options, std::vector<ThrottledServer> servers,
                  Clock& clock = SystemClock());

  // Returns when every server's Threads_running is at most max_running, or after max_wait (then
  // with a warning on stderr). `table` names what waits, for messages: the first wait for a
  // table is logged on stderr, once. `on_wait` (optional) is told each look that waits ("primary:
  // 30 other queries running > 25"), for a progress line.
  // Errors: the Status of SHOW GLOBAL STATUS failing on a session.
  Status Wait(const std::string& table,
              const std::function<void(const std::string& why)>& on_wait = {});

  // Total time spent waiting, over every call.
  std::chrono::milliseconds waited() const { return waited_; }

 private:
  // The first server above the limit and its Threads_running; empty name when none is.
  Result<std::pair<std::string, uint64_t>> Busiest();

  ThrottleOptions options_;
  std::vector<ThrottledServer> servers_;
  Clock& clock_;
  std::string logged_table_;  // the last table whose wait was logged
  std::chrono::milliseconds waited_{0};
  std::optional<Clock::TimePoint> last_quiet_;
};

}  // namespace replsync::verify
