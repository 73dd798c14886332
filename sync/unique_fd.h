// An owned POSIX file descriptor.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace replsync {

// Owns one file descriptor (or none: -1) and closes it on destruction; move-only.
// Thread-safety: none; one owner at a time, like the int it wraps.
class UniqueFd {
 public:
  UniqueFd() = default;
  // Takes ownership of `fd`; a negative `fd` (a failed open's result) makes an empty owner.
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  // The descriptor, still owned; -1 when there is none.
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing: returns the descriptor (-1 when none) and becomes empty.
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }
  // Closes the owned descriptor, if any, and takes `fd` instead. close() errors are ignored and
  // errno is left as it was, so it can still be read after a failed open.
  void Reset(int fd = -1) {
    if (fd_ >= 0) {
      const int saved_errno = errno;
      ::close(fd_);
      errno = saved_errno;
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace replsync
