#include "sync/node/node.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "sync/node/status_file.h"

namespace replsync {

double UnixSeconds(const Clock& clock) { return static_cast<double>(clock.UnixMillis()) / 1000.0; }

NodeStatus NodeStatusHeader(const NodeConfig& config, double started_at, const Clock& clock) {
  NodeStatus status;
  status.role = RoleName(config.node.role);
  status.name = config.node.name;
  status.pid = getpid();
  status.started_at = started_at;
  status.updated_at = UnixSeconds(clock);
  status.transport = config.transport.insecure ? "insecure" : "curve";
  return status;
}

void StopRequest::Request() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    requested_ = true;
  }
  cv_.notify_all();
}

bool StopRequest::requested() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requested_;
}

void StopRequest::Poke() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

bool StopRequest::WaitFor(Clock& clock, Clock::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  clock.WaitFor(cv_, lock, timeout, [this] { return requested_ || poked_; });
  poked_ = false;
  return requested_;
}

namespace {

void Publish(const NodeRunOptions& options, const NodeStatus& status) {
  Status st = WriteStatusFile(options.state_dir, status.ToJson());
  if (!st.ok()) spdlog::warn("{}", st.message());
  if (options.on_status) options.on_status(status);
}

}  // namespace

Status RunNode(Node& node, StopRequest& stop, const NodeRunOptions& options) {
  RS_RETURN_IF_ERROR(node.Start());
  if (options.on_status) options.on_status(node.status());
  auto every = [&options] {
    return options.hurry && options.hurry() ? std::chrono::milliseconds(50) : options.status_every;
  };
  while (!stop.WaitFor(*options.clock, every())) {
    Publish(options, node.status());
  }
  node.Stop();
  Publish(options, node.status());
  return Status::Ok();
}

}  // namespace replsync
