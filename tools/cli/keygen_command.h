// `replsync keygen --out FILE` / `--public FILE`: makes or shows a node's CURVE key pair (sync/wire/curve_keys.h).
#pragma once

#include <cstdio>
#include <string>

namespace replsync::cli {

// Writes a new secret key to `out_path` (mode 0600; an existing file is never overwritten) and
// prints what was done, with the public key alone on the last line of `out` (scripts take
// `tail -1`). Returns the exit code: 0 written; 2 nothing written (the reason goes to `err`).
int RunKeygen(const std::string& out_path, std::FILE* out, std::FILE* err);

// `replsync keygen --public FILE`: prints the public key of an existing secret key file (it must
// be 0600) alone on a line. Returns 0, or 2 with the reason on `err`.
int RunShowPublicKey(const std::string& key_path, std::FILE* out, std::FILE* err);

}  // namespace replsync::cli
