#include "sync/health/health_monitor.h"

namespace replsync::health {

HealthMonitor::HealthMonitor(HealthLimits limits, Clock& clock) : limits_(limits), clock_(clock) {}

void HealthMonitor::Publish(const NodeStatus& status) {
  std::lock_guard<std::mutex> lock(mu_);
  latest_ = status;
}

void HealthMonitor::MarkFenced(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!latest_) return;
  latest_->fenced = true;
  latest_->fenced_by = reason;
  latest_->state = "fencing";
}

void HealthMonitor::SetHandingOver(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  handing_over_ = reason;
}

HealthInput HealthMonitor::Input() const {
  HealthInput in;
  {
    std::lock_guard<std::mutex> lock(mu_);
    in.status = latest_;
    in.handing_over = handing_over_;
  }
  in.now = static_cast<double>(clock_.UnixMillis()) / 1000.0;
  return in;
}

HealthAnswer HealthMonitor::Answer(const HealthQuery& query) const {
  const std::string_view path = query.path;
  if (path == kSecondaryPath) {
    if (Status st = CheckParams(query, {"max_lag_seconds"}); !st.ok()) {
      return ReasonAnswer(400, st.message());
    }
    Result<std::optional<double>> max_lag = SecondsParam(query, "max_lag_seconds");
    if (!max_lag.ok()) return ReasonAnswer(400, max_lag.status().message());
    HealthLimits limits = limits_;
    if (max_lag->has_value()) limits.max_lag_seconds = **max_lag;
    return SecondaryHealth(Input(), limits);
  }
  HealthAnswer (*decide)(const HealthInput&, const HealthLimits&) = nullptr;
  if (path == kPrimaryPath) {
    decide = &PrimaryHealth;
  } else if (path == kReadyPath) {
    decide = &ReadyHealth;
  } else if (path == kLivePath) {
    decide = &LiveHealth;
  } else {
    return ReasonAnswer(404, "no such path: " + query.path);
  }
  if (Status st = CheckParams(query, {}); !st.ok()) return ReasonAnswer(400, st.message());
  return decide(Input(), limits_);
}

std::map<std::string, HealthProvider> HealthMonitor::Paths() const {
  std::map<std::string, HealthProvider> paths;
  for (std::string_view path : {kPrimaryPath, kSecondaryPath, kReadyPath, kLivePath}) {
    paths.emplace(path, [this](const HealthQuery& query) { return Answer(query); });
  }
  return paths;
}

}  // namespace replsync::health
