// Node: one replsyncd role as the daemon runs it (the primary: capture/primary_node.h; the
// secondary: apply/secondary_node.h), and RunNode, the loop both share: start the node, write its
// status to <state_dir>/status.json about once a second until a stop is requested, stop it,
// write its last status.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "sync/clock.h"
#include "sync/config.h"
#include "sync/node/node_status.h"
#include "sync/node/role_state.h"
#include "sync/status.h"

namespace replsync {

// A file change an old primary journaled after a sequence (`replsync rejoin`'s file tail).
struct TailFileChange {
  uint64_t seq = 0;
  std::string change;     // "file", "directory", "symlink", "delete", "rename"
  std::string path;       // relative to the repository
  std::string from_path;  // rename: where it came from
  // `replsync rejoin`: the node promoted after this one changed this path (or one above or
  // below it) after the fork too.
  bool conflict = false;
};

// A running role. Thread-safety: status() may be called from any thread while the node runs;
// Start and Stop from the thread that owns the node.
class Node {
 public:
  virtual ~Node() = default;

  // Starts the node's threads. On error the message names the part that failed ("capture:
  // ..."); what had started keeps running until Stop (or the destructor) stops it.
  virtual Status Start() = 0;
  // Stops every thread, in the order the data flows, and logs where the node stopped once it
  // had started. Idempotent.
  virtual void Stop() = 0;
  // What the node reports now (each part's status is one consistent snapshot of that part).
  virtual NodeStatus status() const = 0;
  // A secondary's part of `replsync promote` (schemas/failover.md): stops receiving, applies
  // everything it received, and returns where its data leaves the old primary's (the fork point;
  // its epoch, node and time are the caller's). FailedPrecondition when the node must refuse
  // (not a secondary, a bootstrap under way, or - without `force` - the primary was known to
  // hold more than this node received; the message says what would be lost); other errors: it
  // could not. After an error the node keeps following its primary.
  virtual Result<ForkPoint> PrepareForPromotion(bool force, std::chrono::seconds timeout) {
    (void)force;
    (void)timeout;
    return Status::FailedPrecondition("this node is not a secondary");
  }
  // A primary's part of `replsync rejoin`: the file changes its journal holds after sequence
  // `seq` (parts of one change once), oldest first.
  virtual Result<std::vector<TailFileChange>> FileChangesAfter(uint64_t seq) const {
    (void)seq;
    return Status::FailedPrecondition("this node is not a primary");
  }
};

// The top-level fields every node reports: version, role, name, this process's pid,
// `started_at` (seconds since the epoch), and updated_at = `clock`'s wall-clock time.
NodeStatus NodeStatusHeader(const NodeConfig& config, double started_at, const Clock& clock);

// Wall-clock seconds since the epoch on `clock`, as the status file writes times.
double UnixSeconds(const Clock& clock);

// A request to stop, made once from another thread (replsyncd's signal watcher).
// Thread-safety: thread-safe.
class StopRequest {
 public:
  void Request();
  bool requested() const;
  // Ends the current (or next) WaitFor early without asking for a stop: RunNode then takes a
  // status at once (a switchover's handover is acted on without waiting for the next tick).
  void Poke();
  // Waits up to `timeout` of `clock`'s time for the request or a Poke; returns whether the
  // request came.
  bool WaitFor(Clock& clock, Clock::Duration timeout);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;  // guarded by mu_
  bool poked_ = false;      // guarded by mu_
};

struct NodeRunOptions {
  std::string state_dir;  // status.json is written there
  Clock* clock = &SystemClock();
  std::chrono::milliseconds status_every{1000};
  // Called from the loop's thread with every status it takes: once right after Start, then with
  // each one it writes (replsyncd's health endpoint reads the loop's heartbeat and the node's
  // state from these). Optional.
  std::function<void(const NodeStatus&)> on_status = nullptr;
  // While it returns true, statuses are taken every 50 ms instead of status_every (a switchover's
  // handover waits for the applier to reach its sequence). Optional.
  std::function<bool()> hurry = nullptr;
};

// Starts `node`; then, until `stop` is requested, writes node.status() to the status file every
// `status_every`; then stops the node and writes its last status. Returns Start's error (the
// caller exits; the node's destructor stops what had started). A status file that cannot be
// written is a warning: the node keeps running.
Status RunNode(Node& node, StopRequest& stop, const NodeRunOptions& options);

}  // namespace replsync
