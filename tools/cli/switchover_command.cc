#include "tools/cli/switchover_command.h"

#include <fmt/format.h>

#include "sync/node/role_request.h"
#include "sync/node/role_state.h"
#include "sync/node/status_file.h"
#include "sync/verify/consistent_point.h"
#include "tools/cli/promote_command.h"
#include "tools/cli/rejoin_command.h"

namespace replsync::cli {

int RunSwitchover(const SwitchoverCommandOptions& options, std::FILE* out) {
  Result<NodeConfig> config = LoadNodeConfig(options.config_path);
  if (!config.ok()) {
    fmt::print(stderr, "replsync switchover: {}\n", config.status().message());
    return 2;
  }
  const std::string& state_dir = config->node.state_dir;
  if (!ReplsyncdRunning(state_dir)) {
    fmt::print(stderr,
               "replsync switchover: replsyncd is not running with state_dir {}: run switchover "
               "on the primary while its daemon runs\n",
               state_dir);
    return 2;
  }
  if (config->node.role != NodeRole::kPrimary) {
    fmt::print(stderr,
               "replsync switchover: this node is a secondary: run switchover on the primary "
               "(it hands its role to this node, or to the one --to names)\n");
    return 1;
  }
  const int code =
      AskAndPrint(state_dir,
                  {.token = verify::NewBarrierToken(),
                   .action = RoleRequest::Action::kSwitchover,
                   .force = false,
                   .dry_run = false,
                   .target = options.target},
                  options.timeout, options.poll, options.json, "replsync switchover", out);
  if (code != 0) return code;
  // The old primary, fenced by the promotion, follows the new one (its tail is empty).
  return RunRejoin({.config_path = options.config_path,
                    .dry_run = false,
                    .json = options.json,
                    .timeout = options.timeout,
                    .poll = options.poll},
                   out);
}

}  // namespace replsync::cli
