#include "tools/cli/promote_command.h"

#include <fmt/format.h>

#include "sync/config.h"
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
  if (Result<RoleState> role = ReadRoleState(state_dir);
      role.ok() && role->role != NodeRole::kSecondary) {
    fmt::print(stderr, "replsync promote: this node is already the primary (epoch {}{})\n",
               role->epoch, role->fenced ? ", fenced: `replsync rejoin` makes it follow" : "");
    return 1;
  }
  return AskAndPrint(state_dir,
                     {.token = verify::NewBarrierToken(),
                      .action = RoleRequest::Action::kPromote,
                      .force = options.force,
                      .dry_run = false,
                      .target = ""},
                     options.timeout, options.poll, options.json, "replsync promote", out);
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
