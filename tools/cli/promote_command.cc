#include "tools/cli/promote_command.h"

#include <fmt/format.h>

#include <thread>

#include "sync/config.h"
#include "sync/node/node_status.h"
#include "sync/node/role_request.h"
#include "sync/node/role_state.h"
#include "sync/node/status_file.h"
#include "sync/verify/consistent_point.h"

namespace replsync::cli {

int RunPromote(const PromoteCommandOptions& options, std::FILE* out) {
  Result<NodeConfig> config = NodeConfig::Load(options.config_path);
  if (!config.ok()) {
    fmt::print(stderr, "replsync promote: {}\n", config.status().message());
    return 2;
  }
  const std::string& state_dir = config->node.state_dir;
  if (!ReplsyncdRunning(state_dir)) {
    fmt::print(stderr,
               "replsync promote: replsyncd is not running with state_dir {}: the daemon "
               "promotes the node; start it first (systemctl start replsyncd, or replsyncd "
               "--config {})\n",
               state_dir, options.config_path);
    return 2;
  }
  if (Result<RoleState> role = ReadRoleState(state_dir); role.ok()) {
    if (const std::string refusal = PromoteRefusal(*role, config->node.name, options.force);
        !refusal.empty()) {
      fmt::print(stderr, "replsync promote: {}\n", refusal);
      return 1;
    }
  }
  const auto began = std::chrono::steady_clock::now();
  const int code =
      AskAndPrint(state_dir,
                  {.token = verify::NewBarrierToken(),
                   .action = RoleRequest::Action::kPromote,
                   .force = options.force,
                   .dry_run = false,
                   .target = ""},
                  options.timeout, options.poll, options.json, "replsync promote", out);
  if (code != 0) return code;
  // The daemon starts the node again as the primary; it makes the database writable once its
  // capture runs. Done when the status says so.
  for (const auto deadline = std::chrono::steady_clock::now() + options.timeout;;) {
    Result<std::string> text = ReadStatusFile(state_dir);
    Result<NodeStatus> status = text.ok() ? NodeStatus::Parse(*text) : text.status();
    if (status.ok() && status->primary && !status->fenced &&
        status->primary->capture_state == "running") {
      if (!options.json) {
        fmt::print(out,
                   "replsync promote: serving as the primary (capture running, database "
                   "writable) {:.1f} s after the request\n",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
      }
      return 0;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      fmt::print(stderr,
                 "replsync promote: promoted, but the node does not serve as the primary yet "
                 "(its status: {}): see replsyncd's log\n",
                 status.ok() ? status->state + (status->error.empty() ? "" : ", " + status->error)
                             : status.status().message());
      return 2;
    }
    std::this_thread::sleep_for(options.poll);
  }
}

std::string PromoteRefusal(const RoleState& state, const std::string& self, bool force) {
  if (state.role == NodeRole::kSecondary) return "";
  if (!state.fenced) {
    return fmt::format("this node is already the primary (epoch {})", state.epoch);
  }
  if (TakeoverFork(state, self)) {
    return fmt::format(
        "this node is a fenced old primary (epoch {}): another node was promoted after it; "
        "`replsync rejoin` makes it follow that node",
        state.epoch);
  }
  if (!force) {
    return fmt::format(
        "this node is a fenced primary ({}): to keep this node's data, `replsync promote "
        "--force` here makes it the primary at epoch {}; `replsync rejoin` on the other then "
        "quarantines what that one holds and makes it follow",
        state.fenced_by, state.epoch + 1);
  }
  return "";
}

int AskAndPrint(const std::string& state_dir, const RoleRequest& request,
                std::chrono::seconds timeout, std::chrono::milliseconds poll, bool json,
                const char* command, std::FILE* out) {
  Result<RoleReply> reply = AskReplsyncd(state_dir, request, timeout, poll);
  if (!reply.ok()) {
    fmt::print(stderr, "{}: {}\n", command, reply.status().message());
    return 2;
  }
  if (json) {
    fmt::print(out, "{}\n", reply->ToJson());
  } else {
    fmt::print(reply->exit_code == 0 ? out : stderr, "{}: {}\n", command, reply->message);
  }
  return reply->exit_code;
}

}  // namespace replsync::cli
