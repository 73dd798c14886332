// Repository paths as text for messages and logs.
// Thread-safety: stateless.
#pragma once

#include <string>
#include <string_view>

namespace replsync {

// `path` with '\\' doubled, newline and tab as "\n" and "\t", other control bytes (NUL
// included) and DEL as "\xNN" ("line\nbreak", "\x01"); UTF-8 and other bytes stay as they are.
// Two different paths never escape to the same text.
std::string EscapePath(std::string_view path);

// EscapePath(path) in double quotes, with '"' also escaped as "\"", so that the path's end is
// unambiguous in a longer message: "a \"b\"\n".
std::string QuotePath(std::string_view path);

}  // namespace replsync
