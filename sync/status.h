// Status and Result<T>: how replsync reports errors across module boundaries.
//
// No exception crosses a module boundary: wrappers around zmq, Connector/C++ and std::filesystem
// turn what they throw into a Status. A message names the operation and the object once, e.g.
// "open checkpoint db /var/lib/replsync/state: No space left on device".
// Thread-safety: value types, safe to copy between threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace replsync {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // bad input from the user: configuration, command line, paths
    kNotFound,         // a file, table, binlog or key that should exist does not
    kCorruption,       // data that fails its checks: CRC mismatch, truncated or impossible event
    kUnsupported,      // well-formed input replsync cannot handle (an unknown mandatory event)
    kIoError,          // the operating system refused a read or write
    kNetwork,          // a connection failed or was dropped
    kServer,           // the database server returned an error
    kAborted,          // the operation was stopped on request
    kInternal,         // a broken invariant inside replsync
    kUnavailable,      // not possible now, may be later (a bootstrap round to ask again for)
    kFailedPrecondition,  // the state is not the one the operation needs now; it may be later
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status Unsupported(std::string msg) { return Status(Code::kUnsupported, std::move(msg)); }
  static Status IoError(std::string msg) { return Status(Code::kIoError, std::move(msg)); }
  // Network failures are retryable unless said otherwise.
  static Status Network(std::string msg, bool retryable = true) {
    return Status(Code::kNetwork, std::move(msg), retryable);
  }
  static Status Server(std::string msg, bool retryable = false) {
    return Status(Code::kServer, std::move(msg), retryable);
  }
  static Status Aborted(std::string msg) { return Status(Code::kAborted, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }
  // Always retryable.
  static Status Unavailable(std::string msg) {
    return Status(Code::kUnavailable, std::move(msg), true);
  }
  static Status FailedPrecondition(std::string msg) {
    return Status(Code::kFailedPrecondition, std::move(msg));
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // True when trying the same operation again later may succeed (network, lock waits).
  bool retryable() const { return retryable_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;
  // Returns a copy whose message is "<context>: <message>"; code and retryable flag are kept.
  Status WithContext(const std::string& context) const;

  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }

 private:
  Status(Code code, std::string msg, bool retryable = false)
      : code_(code), retryable_(retryable), message_(std::move(msg)) {}

  Code code_ = Code::kOk;
  bool retryable_ = false;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace replsync

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define RS_RETURN_IF_ERROR(expr)                       \
  do {                                                 \
    ::replsync::Status _rs_status = (expr);            \
    if (!_rs_status.ok()) return _rs_status;           \
  } while (0)

#define RS_CONCAT_INNER(a, b) a##b
#define RS_CONCAT(a, b) RS_CONCAT_INNER(a, b)
// Declares `lhs` from a Result<T> expression, or returns its Status from the enclosing function.
#define RS_ASSIGN_OR_RETURN(lhs, expr) \
  RS_ASSIGN_OR_RETURN_IMPL(RS_CONCAT(_rs_result_, __LINE__), lhs, expr)
#define RS_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
