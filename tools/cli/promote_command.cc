#include "tools/cli/promote_command.h"

#include <fmt/format.h>

#include <thread>

#include "sync/config.h"
#include "sync/node/promote_request.h"
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
  const std::string token = verify::NewBarrierToken();
  if (Status st = WritePromoteRequest(state_dir, {.token = token, .force = options.force});
      !st.ok()) {
    fmt::print(stderr, "replsync promote: {}\n", st.message());
    return 2;
  }
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    Result<PromoteReply> reply = ReadPromoteReply(state_dir);
    if (reply.ok() && reply->token == token) {
      if (options.json) {
        fmt::print(out, "{}\n", reply->ToJson());
      } else {
        fmt::print(reply->exit_code == 0 ? out : stderr, "replsync promote: {}\n", reply->message);
      }
      return reply->exit_code;
    }
    std::this_thread::sleep_for(options.poll);
  }
  (void)RemovePromoteRequest(state_dir);
  fmt::print(stderr,
             "replsync promote: no answer from replsyncd in {} s (its log says what it does); "
             "the request was withdrawn if it was not taken\n",
             options.timeout.count());
  return 2;
}

}  // namespace replsync::cli
