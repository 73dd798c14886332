// `replsync rejoin --config FILE --dry-run [--json]` on a fenced old primary (schemas/failover.md
// "replsync rejoin"): reports its unshipped tail - the transactions in its own binlog after the
// fork point (where the promoted node's data left this node's) that changed the replicated
// databases - as text or one JSON object. Exit 1 when there is a tail, 0 when there is none,
// 2 when it could not tell. Quarantining the tail and following the new primary (rejoin without
// --dry-run) are not built yet: the command says so and exits 2.
#pragma once

#include <cstdio>
#include <string>

namespace replsync::cli {

struct RejoinCommandOptions {
  std::string config_path;
  bool dry_run = false;
  bool json = false;
};

int RunRejoin(const RejoinCommandOptions& options, std::FILE* out);

}  // namespace replsync::cli
