// HealthMonitor: the health paths of a running replsyncd. The daemon's main loop hands it every
// status it takes (NodeRunOptions::on_status); HealthServer's threads ask it, and each answer is
// decided by the path's function (sync/health/node_health.h) on one copy of the latest status
// and the clock's time. A request's parameters are checked here: /health/secondary takes
// max_lag_seconds (seconds, overriding the configured limit), the other paths take none, and a
// parameter that is unknown, repeated or malformed is answered 400 with the reason.
// Thread-safety: thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "sync/clock.h"
#include "sync/health/health_answer.h"
#include "sync/health/health_server.h"
#include "sync/health/node_health.h"
#include "sync/node/node_status.h"

namespace replsync::health {

class HealthMonitor {
 public:
  // `clock` (not owned) gives the wall-clock time the status times are compared with.
  explicit HealthMonitor(HealthLimits limits, Clock& clock = SystemClock());

  // The main loop's latest status (its heartbeat).
  void Publish(const NodeStatus& status);
  // The node fenced itself just now: /health/primary answers 503 from this moment, before the
  // next status (and before the peer that caused it hears the answer it waits for).
  void MarkFenced(const std::string& reason);
  // A switchover began (`reason` says to which node) or, with "", ended: /health/primary answers
  // 503 while it runs.
  void SetHandingOver(const std::string& reason);

  // The answer to a query of one of the four paths (kPrimaryPath ...); 404 for another path.
  HealthAnswer Answer(const HealthQuery& query) const;

  // The four paths with Answer as their provider, for HealthServer: the monitor must outlive
  // the server.
  std::map<std::string, HealthProvider> Paths() const;

 private:
  HealthInput Input() const;

  const HealthLimits limits_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::optional<NodeStatus> latest_;  // guarded by mu_
  std::string handing_over_;          // guarded by mu_
};

}  // namespace replsync::health
