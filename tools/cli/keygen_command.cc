#include "tools/cli/keygen_command.h"

#include <fmt/format.h>

#include "sync/wire/curve_keys.h"

namespace replsync::cli {

int RunKeygen(const std::string& out_path, std::FILE* out, std::FILE* err) {
  Result<CurveKeyPair> pair = GenerateCurveKeyPair();
  if (!pair.ok()) {
    fmt::print(err, "replsync keygen: {}\n", pair.status().message());
    return 2;
  }
  Status written = WriteCurveSecretKeyFile(out_path, pair->secret_key);
  if (!written.ok()) {
    fmt::print(err, "replsync keygen: {}\n", written.message());
    return 2;
  }
  fmt::print(out,
             "wrote the secret key to {} (mode 0600; keep it on this node only)\n"
             "this node's public key, for the other nodes' [peers.<name>] public_key:\n"
             "{}\n",
             out_path, pair->public_key);
  std::fflush(out);
  return 0;
}

int RunShowPublicKey(const std::string& key_path, std::FILE* out, std::FILE* err) {
  Result<CurveKeyPair> pair = LoadCurveSecretKeyFile(key_path);
  if (!pair.ok()) {
    fmt::print(err, "replsync keygen: {}\n", pair.status().message());
    return 2;
  }
  fmt::print(out, "{}\n", pair->public_key);
  std::fflush(out);
  return 0;
}

}  // namespace replsync::cli
