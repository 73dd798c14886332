// `replsync switchover --config FILE [--to NAME] [--json]` on the primary (schemas/failover.md
// "replsync switchover"): a planned change of primary with nothing lost by construction. The
// primary's replsyncd refuses writes (read_only=ON, /health/primary 503), lets its capture reach
// the binlog's end, and asks the secondary to promote itself once it applied everything; when
// the promoted node's epoch reaches it, the old primary is fenced, and the command then runs
// `replsync rejoin` on it, so that it follows the new primary. Exit 0 when the old primary
// follows; 1 refused (not the serving primary, the secondary not connected, several peers and no
// --to); 2 could not (the secondary did not take over in time: the primary serves again).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace replsync::cli {

struct SwitchoverCommandOptions {
  std::string config_path;
  std::string target;  // --to: the secondary to promote ("": the only peer)
  bool json = false;
  std::chrono::seconds timeout{120};
  std::chrono::milliseconds poll{100};
};

int RunSwitchover(const SwitchoverCommandOptions& options, std::FILE* out);

}  // namespace replsync::cli
