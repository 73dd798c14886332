// `replsync promote --config FILE [--force] [--json]` (schemas/failover.md "replsync promote"):
// asks this secondary's replsyncd to become the primary: it applies everything it received,
// refuses when the old primary was known to hold more (unless --force, which records what is
// lost), makes its database writable, raises the group's epoch and serves the other nodes.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace replsync::cli {

struct PromoteCommandOptions {
  std::string config_path;
  bool force = false;
  bool json = false;  // the daemon's reply as one JSON object
  // How long to wait for the daemon's reply (it applies what it received first).
  std::chrono::seconds timeout{660};
  std::chrono::milliseconds poll{200};
};

// Returns the exit code: 0 promoted; 1 refused (why, and what would be lost); 2 could not.
int RunPromote(const PromoteCommandOptions& options, std::FILE* out);

}  // namespace replsync::cli
