// Small text encodings shared by both sides: the one parser of decimal integers and the one
// hex and base64 (RFC 4648, standard alphabet, '=' padding) encoders of the tree.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace replsync {

// Parses all of `text` as an unsigned decimal. False (and *out unspecified) when `text` is
// empty, has anything but digits, or does not fit in 64 bits.
bool ParseU64(std::string_view text, uint64_t* out);

// Lower-case hex of `bytes`, two digits per byte; writes 2 * bytes.size() chars at `out` and
// returns the end.
char* EncodeHex(std::string_view bytes, char* out);
std::string HexOf(std::string_view bytes);

// Base64 of `bytes`: Base64Size(n) chars written at `out`; returns the end.
constexpr size_t Base64Size(size_t n) { return (n + 2) / 3 * 4; }
char* EncodeBase64(std::string_view bytes, char* out);
void AppendBase64(std::string_view bytes, std::string* out);

}  // namespace replsync
