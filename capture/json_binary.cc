// PLACEHOLDER: replaced by the real JSON decoder.
#include "capture/json_binary.h"

namespace replsync::capture {
Status JsonBinaryToText(std::string_view binary, std::string* out) {
  return Status::Internal("not implemented");
}
Status ApplyJsonDiff(std::string_view before_binary, std::string_view diff, std::string* out) {
  return Status::Internal("not implemented");
}
}  // namespace replsync::capture
