// CURVE key files: the secret key a node proves itself with on every ZeroMQ socket, written by
// `replsync keygen` and read by the daemon and the commands that talk to a peer.
//
// A key file holds one line: the 40-character Z85 text of a CURVE (Curve25519) secret key, then
// a newline. It is a secret: it is created with mode 0600 and never overwritten, and a file that
// group or others may read is refused. The public key is derived from it (zmq_curve_public), so
// it is never stored beside it: operators copy it into the other nodes' [peers] tables.
// Thread-safety: free functions on value types.
#pragma once

#include <string>

#include "sync/status.h"

namespace replsync {

// Z85 text of CURVE keys: 40 characters each.
inline constexpr size_t kCurveKeyTextSize = 40;

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

// A new key pair from libzmq (zmq_curve_keypair; libzmq built with libsodium).
// Errors: Unsupported when libzmq has no CURVE support.
Result<CurveKeyPair> GenerateCurveKeyPair();

// The public key of a Z85 secret key (zmq_curve_public).
// Errors: InvalidArgument when `secret_key` is not 40 characters of Z85.
Result<std::string> CurvePublicKeyOf(const std::string& secret_key);

// Creates `path` (O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600 whatever the umask) holding the
// secret key and a newline, fsync'ed. Never overwrites: an existing file (or symlink) is left
// alone. Errors: InvalidArgument "key file PATH already exists: ..." when the path exists (even
// as a dangling symlink); IoError for any other failure (the partly written file is removed).
Status WriteCurveSecretKeyFile(const std::string& path, const std::string& secret_key);

// Reads a key file written by WriteCurveSecretKeyFile and derives its public key.
// Errors: NotFound (no such file; the message says `replsync keygen --out PATH`),
// InvalidArgument (readable by group or others: the message says `chmod 600 PATH`; contents
// that are not one Z85 secret key), IoError (cannot be read).
Result<CurveKeyPair> LoadCurveSecretKeyFile(const std::string& path);

}  // namespace replsync
