// `replsync promote --config FILE [--force] [--json]` (schemas/failover.md "replsync promote"):
// asks this secondary's replsyncd to become the primary: it applies everything it received,
// refuses when the old primary was known to hold more (unless --force, which records what is
// lost), makes its database writable, raises the group's epoch and serves the other nodes.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "sync/node/role_request.h"
#include "sync/node/role_state.h"

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

// Why a node in `state` may not be promoted ("" when it may): a secondary may; a primary fenced
// by another primary of its epoch (no node known to have taken over from it) may with `force`,
// its data kept (schemas/failover.md "Two primaries"); any other primary may not.
std::string PromoteRefusal(const RoleState& state, const std::string& self, bool force);

// What promote and switchover do with their request: ask the daemon (AskReplsyncd), print its
// reply (`command`: its message, on stderr unless it succeeded; `json`: the reply object) and
// return its exit code (2 when no reply came).
int AskAndPrint(const std::string& state_dir, const RoleRequest& request,
                std::chrono::seconds timeout, std::chrono::milliseconds poll, bool json,
                const char* command, std::FILE* out);

}  // namespace replsync::cli
