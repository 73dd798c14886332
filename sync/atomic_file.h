// Small files other processes read (status, verify's barrier and records, the applier's resync
// list, the request files), written atomically and read whole. Each file's layout belongs to its
// own owner; this is only the write and the read.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>

#include "sync/status.h"

namespace replsync {

struct AtomicWriteOptions {
  // The file's mode, exactly (not narrowed by the umask): these files hold replication state
  // (positions, table and path names), readable by the owner only unless a caller says otherwise.
  mode_t mode = 0600;
  // Called with the temporary file's path once it is written, synced and closed, just before
  // it is renamed over `path`: the window in which a reader or another writer could interfere
  // (tests run a second writer there). Optional.
  std::function<void(const std::string& temp_path)> before_rename;
};

// Writes `content` to `path` so that a reader never sees a partial file and a crash leaves
// either the old or the new content: a temporary file of a fresh name in the same folder
// (`path`.tmp.<random>, created with O_EXCL so that two writers of one path never share it, with
// options.mode set by fchmod before any byte is written, so the new file never has another mode),
// every byte written, fsync'ed and closed (close's error checked), renamed over `path`, then the
// folder fsync'ed so that the rename is durable. `what` names the file in messages ("status file").
// Errors: IoError "write <what> <path>: <step>: <reason>"; on any failure before the rename the
// temporary is removed and `path` is as it was. A failed folder fsync comes after the rename:
// `path` then has the new content, which a crash may still undo.
Status WriteFileAtomically(const std::string& path, std::string_view content, std::string_view what,
                           const AtomicWriteOptions& options = {});

// The whole text of the file at `path`. NotFound "no <what> <path>" when it does not exist;
// IoError "read <what> <path>: <reason>" when it cannot be read.
Result<std::string> ReadSmallFile(const std::string& path, std::string_view what);

// Removes the file at `path`; one already gone is not an error. IoError "remove <what> <path>:
// <reason>".
Status RemoveSmallFile(const std::string& path, std::string_view what);

}  // namespace replsync
