// LastVerify: state_dir/verify.last, the outcome of the node's most recent `replsync verify`
// (schemas/verify.md, "The last verify"). Written by verify when it ends, read by
// `replsync status`. The only code that knows the file's layout.
// Thread-safety: value type and stateless functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "sync/status.h"

namespace replsync::verify {

struct LastVerify {
  double at = 0;       // when it ended, seconds since the epoch
  double seconds = 0;  // how long it took
  int exit_code = 2;   // as verify's: 0 consistent, 1 differences, 2 could not verify
  std::string what;    // "all", "database" or "files"
  uint64_t tables = 0;
  uint64_t tables_differing = 0;
  bool files_verified = false;
  uint64_t paths_differing = 0;
  std::string error;  // why it could not verify (exit 2)

  // One JSON object on one line (no newline).
  std::string ToJson() const;
  // nullopt when `text` is not a JSON object; missing or mistyped members keep their defaults.
  static std::optional<LastVerify> Parse(std::string_view text);
  bool operator==(const LastVerify&) const = default;
};

std::string LastVerifyPath(const std::string& state_dir);  // state_dir/verify.last

// Replaces the file atomically. IoError names the path.
Status WriteLastVerify(const std::string& state_dir, const LastVerify& last);
// The file's text; "" when there is none (no verify ran on this node) or it cannot be read.
std::string ReadLastVerifyText(const std::string& state_dir);

}  // namespace replsync::verify
