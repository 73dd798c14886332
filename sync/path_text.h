// Repository paths (relative, '/' separated, "" = the root): joining, parents, and text for
// messages and logs.
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

// Name prefix of the secondary's file applier's temporary files (schemas/files.md, "Atomic
// apply"); a scan of a secondary's folder leaves such entries out.
inline constexpr std::string_view kApplierTempPrefix = ".replsync-tmp.";

// `dir`/`name`, or `name` when `dir` is the root ("").
std::string JoinPath(std::string_view dir, std::string_view name);
// The folder holding `path` ("" for a path directly below the root).
std::string ParentPath(std::string_view path);

}  // namespace replsync
