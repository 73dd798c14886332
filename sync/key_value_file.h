// Small files other processes read: written atomically, and the "key value" line format of
// verify's barrier files (schemas/verify.md).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sync/status.h"

namespace replsync {

// Writes `content` to `path` so that a reader never sees a partial file: a temporary file
// (`path`.tmp) then rename. `what` names the file in error messages ("status file").
// Errors: IoError naming the operation, the file and the system's reason.
Status WriteFileAtomically(const std::string& path, std::string_view content,
                           std::string_view what);

// The "key value" lines of `path` (the value is the rest of the line after the first space;
// lines without a space are ignored); nullopt when the file cannot be opened (gone).
std::optional<std::map<std::string, std::string>> ReadKeyValueFile(const std::string& path);

}  // namespace replsync
