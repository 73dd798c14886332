#include "tools/cli/service.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>

#include "apply/secondary_node.h"
#include "capture/primary_node.h"
#include "sync/config.h"
#include "sync/health/health_monitor.h"
#include "sync/health/health_server.h"
#include "sync/logging.h"
#include "sync/node/node.h"
#include "sync/node/status_file.h"

namespace replsync::cli {

namespace {

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Waits for SIGINT/SIGTERM on its own thread (the signals are blocked in every other thread,
// which must be created after this object) and requests `stop`.
class SignalWatcher {
 public:
  explicit SignalWatcher(StopRequest& stop) {
    sigset_t set = StopSignals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([this, set, &stop] {
      int sig = 0;
      sigwait(&set, &sig);
      if (!done_) spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      signalled_ = true;
      stop.Request();
    });
  }
  ~SignalWatcher() {
    done_ = true;
    // Wake the watcher only when it still waits: a signal sent to a thread that has already
    // finished could end the whole process instead.
    if (!signalled_) pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::atomic<bool> signalled_{false};
  std::thread thread_;
};

// The node `config` names, opened (not started). On error, logs why and sets *exit_code.
std::unique_ptr<Node> OpenNode(const NodeConfig& config, int* exit_code) {
  // Keys first: a node without them (and not insecure) does not start.
  Result<TransportSecurity> security = LoadTransportSecurity(config);
  if (!security.ok()) {
    spdlog::error("{}", security.status().message());
    *exit_code = 2;
    return nullptr;
  }
  if (security->insecure) spdlog::warn("{}", kInsecureTransportWarning);
  if (config.peers.empty()) {
    spdlog::warn("{}: no [peers.<name>] table: {}", config.source_path,
                 config.node.role == NodeRole::kPrimary
                     ? "no secondary can connect to this primary"
                     : "the primary cannot be found");
  }
  if (config.node.role == NodeRole::kPrimary) {
    auto node = capture::PrimaryNode::Open(config, *security);
    if (node.ok()) return std::move(node).value();
    spdlog::error("{}", node.status().message());
    *exit_code = 1;
    return nullptr;
  }
  if (Status st = apply::SecondaryNode::CheckConfig(config); !st.ok()) {
    spdlog::error("{}", st.message());
    *exit_code = 2;
    return nullptr;
  }
  auto node = apply::SecondaryNode::Open(config, *security);
  if (node.ok()) return std::move(node).value();
  spdlog::error("{}", node.status().message());
  *exit_code = 1;
  return nullptr;
}

}  // namespace

int RunService(const std::string& config_path) {
  // Everything replsyncd creates (state folder, journal, relay, status, verify records, the
  // secondary's temporary files before their final mode is set) is its own: group and others
  // get nothing unless a file's own code grants it.
  ::umask(077);
  // Block SIGINT/SIGTERM before anything else: one that arrives while the node is still starting
  // stays pending and stops it cleanly once the watcher runs, instead of killing it.
  sigset_t stop_signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto config = NodeConfig::Load(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "replsyncd: %s\n", config.status().message().c_str());
    return 2;
  }
  if (Status st = SetUpLogging(config->log.level); !st.ok()) {
    std::fprintf(stderr, "replsyncd: %s\n", st.message().c_str());
    return 2;
  }
  // One replsyncd per state folder, for as long as it runs: `replsync status`, verify and repair
  // ask this lock whether it does.
  Result<FileLock> lock = ClaimStateDir(config->node.state_dir);
  if (!lock.ok()) {
    spdlog::error("{}", lock.status().message());
    return 1;
  }
  spdlog::info("replsyncd {} starting as {} '{}' (config {}, state {})", REPLSYNC_VERSION,
               RoleName(config->node.role), config->node.name, config_path, config->node.state_dir);
  StopRequest stop;
  SignalWatcher signals(stop);  // before any thread starts, so they all inherit the blocked signals
  int exit_code = 0;
  std::unique_ptr<Node> node = OpenNode(*config, &exit_code);
  if (node == nullptr) return exit_code;
  // [health] listen: the endpoint answers from the statuses the main loop takes (its heartbeat).
  health::HealthMonitor monitor(
      {.max_lag_seconds = static_cast<double>(config->health.max_lag_seconds),
       .peer_timeout_seconds = static_cast<double>(config->health.peer_timeout_seconds)});
  std::unique_ptr<health::HealthServer> health_server;
  if (!config->health.listen.empty()) {
    health_server = std::make_unique<health::HealthServer>(
        health::HealthServerOptions{.host = config->health.host, .port = config->health.port},
        monitor.Paths());
    if (Status st = health_server->Start(); !st.ok()) {
      spdlog::error("{} ([health] listen in {})", st.message(), config_path);
      return 1;
    }
    spdlog::info("health: serving http://{}/health/{{primary,secondary,ready,live}}",
                 config->health.listen);
  }
  NodeRunOptions run{.state_dir = config->node.state_dir};
  run.on_status = [&monitor](const NodeStatus& status) { monitor.Publish(status); };
  const Status st = RunNode(*node, stop, run);
  if (health_server) health_server->Stop();
  if (!st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  return 0;
}

}  // namespace replsync::cli
