#include "sync/wire/curve_keys.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstring>

#include "sync/unique_fd.h"

namespace replsync {

namespace {

// The largest key file worth reading: one key, a newline, maybe a CR or trailing blanks.
constexpr size_t kMaxKeyFileSize = 4096;

bool IsZ85Key(const std::string& text) {
  static constexpr std::string_view kZ85 =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (text.size() != kCurveKeyTextSize) return false;
  for (char c : text) {
    if (kZ85.find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

Result<CurveKeyPair> GenerateCurveKeyPair() {
  char public_key[kCurveKeyTextSize + 1] = {};
  char secret_key[kCurveKeyTextSize + 1] = {};
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return Status::Unsupported(fmt::format(
        "generate a CURVE key pair: {} (libzmq must be built with CURVE support, libsodium)",
        zmq_strerror(zmq_errno())));
  }
  return CurveKeyPair{public_key, secret_key};
}

Result<std::string> CurvePublicKeyOf(const std::string& secret_key) {
  if (!IsZ85Key(secret_key)) {
    return Status::InvalidArgument(
        fmt::format("a CURVE secret key is {} characters of Z85 text; got {} characters",
                    kCurveKeyTextSize, secret_key.size()));
  }
  char public_key[kCurveKeyTextSize + 1] = {};
  if (zmq_curve_public(public_key, secret_key.c_str()) != 0) {
    return Status::InvalidArgument(fmt::format("derive the CURVE public key: {}",
                                               zmq_strerror(zmq_errno())));
  }
  return std::string(public_key);
}

Status WriteCurveSecretKeyFile(const std::string& path, const std::string& secret_key) {
  if (!IsZ85Key(secret_key)) {
    return Status::InvalidArgument(fmt::format("write key file {}: not a Z85 secret key", path));
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    const int err = errno;
    if (err == EEXIST) {
      return Status::InvalidArgument(fmt::format(
          "key file {} already exists: replsync never overwrites a key (the peers that know its "
          "public key would be locked out); choose another path or remove it first",
          path));
    }
    return Status::IoError(fmt::format("create key file {}: {}", path, std::strerror(err)));
  }
  auto fail = [&](const char* step, int err) {
    ::unlink(path.c_str());
    return Status::IoError(fmt::format("{} key file {}: {}", step, path, std::strerror(err)));
  };
  // The umask may have narrowed 0600 further, never widened it; make it exactly 0600.
  if (::fchmod(fd.get(), 0600) != 0) return fail("chmod", errno);
  const std::string line = secret_key + "\n";
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd.get(), line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync", errno);
  if (::close(fd.release()) != 0) return fail("close", errno);
  return Status::Ok();
}

Result<CurveKeyPair> LoadCurveSecretKeyFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::NotFound(fmt::format(
          "key file {} does not exist; make one with: replsync keygen --out {}", path, path));
    }
    return Status::IoError(fmt::format("open key file {}: {}", path, std::strerror(err)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return Status::IoError(fmt::format("stat key file {}: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("key file {} is not a regular file", path));
  }
  if ((st.st_mode & 077) != 0) {
    return Status::InvalidArgument(fmt::format(
        "key file {}: mode {:04o} lets group or others read this secret key; run: chmod 600 {}",
        path, st.st_mode & 07777, path));
  }
  std::string text(kMaxKeyFileSize + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(fmt::format("read key file {}: {}", path, std::strerror(errno)));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > kMaxKeyFileSize) {
    return Status::InvalidArgument(fmt::format(
        "key file {} is not a key file (over {} bytes); it should hold one line written by "
        "replsync keygen",
        path, kMaxKeyFileSize));
  }
  text.resize(got);
  // One line; a trailing newline (and CR, blanks) is allowed.
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.pop_back();
  }
  if (!IsZ85Key(text)) {
    return Status::InvalidArgument(fmt::format(
        "key file {} does not hold a CURVE secret key (one line of {} Z85 characters, as "
        "written by replsync keygen)",
        path, kCurveKeyTextSize));
  }
  Result<std::string> public_key = CurvePublicKeyOf(text);
  if (!public_key.ok()) {
    return Status::InvalidArgument(
        fmt::format("key file {}: {}", path, public_key.status().message()));
  }
  return CurveKeyPair{std::move(public_key).value(), std::move(text)};
}

}  // namespace replsync
