#include "sync/status.h"

namespace replsync {

namespace {
const char* CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kInvalidArgument: return "invalid argument";
    case Status::Code::kNotFound: return "not found";
    case Status::Code::kCorruption: return "corruption";
    case Status::Code::kUnsupported: return "unsupported";
    case Status::Code::kIoError: return "I/O error";
    case Status::Code::kNetwork: return "network error";
    case Status::Code::kServer: return "server error";
    case Status::Code::kAborted: return "aborted";
    case Status::Code::kInternal: return "internal error";
    case Status::Code::kUnavailable: return "unavailable";
    case Status::Code::kFailedPrecondition: return "failed precondition";
  }
  return "unknown";
}
}  // namespace

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message_;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_, retryable_);
}

}  // namespace replsync
