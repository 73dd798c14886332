// The role request and reply files (schemas/failover.md, "replsync promote", "replsync rejoin"
// and "replsync switchover"): the command writes <state_dir>/role.request (atomically, mode
// 0600) to ask the node's replsyncd to promote the node, to rejoin it to the new primary, or to
// hand the primary's role over to a secondary; the daemon removes it, acts (or refuses), and
// writes <state_dir>/role.reply under the request's token, which the command waits for. The one
// place that knows the two files' bytes.
// Thread-safety: a value type and stateless functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "sync/status.h"

namespace replsync {

struct RoleRequest {
  enum class Action { kPromote, kRejoin, kSwitchover };
  std::string token;  // random hex naming the request
  Action action = Action::kPromote;
  bool force = false;    // promote: even though the primary is known to hold more
  bool dry_run = false;  // rejoin: report the tail, change nothing
  std::string target;    // switchover: the secondary to promote ("": the only peer)
  // {"token":"..","action":"promote"|"rejoin"|"switchover","force":false,"dry_run":false,
  //  "target":".."}
  std::string ToJson() const;
  static Result<RoleRequest> Parse(std::string_view json);
  bool operator==(const RoleRequest&) const = default;
};

struct RoleReply {
  std::string token;
  int exit_code = 2;    // 0 done, 1 refused (message says why), 2 could not
  std::string message;  // what happened, or why not and what to do
  uint64_t epoch = 0;   // the node's epoch afterwards
  std::string report;   // rejoin: the tail report (a JSON object), "" when none
  // {"token":"..","exit_code":0,"message":"..","epoch":2,"report":{..}} (report only when set)
  std::string ToJson() const;
  static Result<RoleReply> Parse(std::string_view json);
  bool operator==(const RoleReply&) const = default;
};

std::string RoleRequestPath(const std::string& state_dir);  // role.request
std::string RoleReplyPath(const std::string& state_dir);    // role.reply
// Replace the file atomically. IoError names the path.
Status WriteRoleRequest(const std::string& state_dir, const RoleRequest& request);
Status WriteRoleReply(const std::string& state_dir, const RoleReply& reply);
// NotFound when there is none; IoError when it cannot be read; Parse's errors.
Result<RoleRequest> ReadRoleRequest(const std::string& state_dir);
Result<RoleReply> ReadRoleReply(const std::string& state_dir);
// A file already gone is not an error. IoError names the path.
Status RemoveRoleRequest(const std::string& state_dir);

// What the commands do: writes `request` and waits up to `timeout` (reading every `poll`) for the
// daemon's reply under its token. Unavailable when none came (the request is withdrawn if it
// was not taken); the write's error.
Result<RoleReply> AskReplsyncd(const std::string& state_dir, const RoleRequest& request,
                               std::chrono::seconds timeout, std::chrono::milliseconds poll);

}  // namespace replsync
