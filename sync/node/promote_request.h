// The promote request and reply files (schemas/failover.md, "replsync promote"):
// `replsync promote` writes <state_dir>/promote.request (atomically, mode 0600) to ask the
// secondary's replsyncd to promote the node; the daemon removes it, promotes (or refuses), and
// writes <state_dir>/promote.reply under the request's token, which the command waits for. The
// one place that knows the two files' bytes.
// Thread-safety: a value type and stateless functions.
#pragma once

#include <string>
#include <string_view>

#include "sync/status.h"

namespace replsync {

struct PromoteRequest {
  std::string token;   // random hex naming the request
  bool force = false;  // promote even though the primary is known to hold more
  // {"token":"..","force":false}
  std::string ToJson() const;
  static Result<PromoteRequest> Parse(std::string_view json);
  bool operator==(const PromoteRequest&) const = default;
};

struct PromoteReply {
  std::string token;
  int exit_code = 2;    // 0 promoted, 1 refused (message says why), 2 could not
  std::string message;  // what happened, or why not and what to do
  uint64_t epoch = 0;   // the node's epoch afterwards
  // {"token":"..","exit_code":0,"message":"..","epoch":2}
  std::string ToJson() const;
  static Result<PromoteReply> Parse(std::string_view json);
  bool operator==(const PromoteReply&) const = default;
};

std::string PromoteRequestPath(const std::string& state_dir);  // promote.request
std::string PromoteReplyPath(const std::string& state_dir);    // promote.reply
// Replace the file atomically. IoError names the path.
Status WritePromoteRequest(const std::string& state_dir, const PromoteRequest& request);
Status WritePromoteReply(const std::string& state_dir, const PromoteReply& reply);
// NotFound when there is none; IoError when it cannot be read; Parse's errors.
Result<PromoteRequest> ReadPromoteRequest(const std::string& state_dir);
Result<PromoteReply> ReadPromoteReply(const std::string& state_dir);
// A file already gone is not an error. IoError names the path.
Status RemovePromoteRequest(const std::string& state_dir);

}  // namespace replsync
