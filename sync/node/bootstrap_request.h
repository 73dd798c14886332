// The bootstrap request file (schemas/bootstrap.md, "The files in state_dir"):
// `replsync bootstrap` writes <state_dir>/bootstrap.request (atomically, mode 0600) to ask the
// secondary's replsyncd for a bootstrap; the daemon reads it, removes it, and reports the
// bootstrap under the request's token in status.json ("secondary" -> "bootstrap"). The one place
// that knows the file's bytes.
// Thread-safety: a value type and stateless functions.
#pragma once

#include <string>
#include <string_view>

#include "sync/status.h"

namespace replsync {

struct BootstrapRequest {
  std::string token;    // random hex naming the request (the command follows this token)
  bool force = false;   // replace a secondary that is not empty
  bool resync = false;  // keep what the secondary holds; copy only what differs
  // {"token":"..","force":false,"resync":false}
  std::string ToJson() const;
  // The inverse of ToJson. InvalidArgument for text that is not such an object or lacks a token.
  static Result<BootstrapRequest> Parse(std::string_view json);
  bool operator==(const BootstrapRequest&) const = default;
};

std::string BootstrapRequestPath(const std::string& state_dir);  // bootstrap.request
// Replaces the file atomically. IoError names the path.
Status WriteBootstrapRequest(const std::string& state_dir, const BootstrapRequest& request);
// NotFound when there is none; IoError when it cannot be read; Parse's errors.
Result<BootstrapRequest> ReadBootstrapRequest(const std::string& state_dir);
// A file already gone is not an error. IoError names the path.
Status RemoveBootstrapRequest(const std::string& state_dir);

}  // namespace replsync
