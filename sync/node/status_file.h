// The status file: replsyncd writes its state as JSON to <state_dir>/status.json about once a
// second (write to a temporary file, then rename, so a reader never sees half of it);
// `replsync status` and, later, the health endpoint read it. Format: schemas/status.md, whose
// one owner is NodeStatus (sync/node/node_status.h); these functions move its bytes.
// replsyncd also holds <state_dir>/replsyncd.lock (FileLock) for its whole life: that lock, not
// the pid in the status file, says whether it runs.
// Thread-safety: stateless functions.
#pragma once

#include <string>

#include "sync/file_lock.h"
#include "sync/status.h"

namespace replsync {

std::string StatusFilePath(const std::string& state_dir);

// Replaces the status file atomically. IoError names the path.
Status WriteStatusFile(const std::string& state_dir, const std::string& json);

// The status file's text. NotFound when the daemon never ran with this state_dir.
Result<std::string> ReadStatusFile(const std::string& state_dir);

// <state_dir>/replsyncd.lock, held by the replsyncd running with state_dir.
std::string DaemonLockPath(const std::string& state_dir);
// Makes `state_dir` (and its parents) and takes DaemonLockPath for the caller's lifetime: one
// replsyncd per state folder. The folder holds every replicated row and file (journal, relay):
// it is made mode 0700, and an existing one that group or others may enter or read is tightened
// to 0700 with a warning in the log (its files were exposed until then: the warning says so).
// Aborted, with what to do, when another replsyncd holds it; IoError when the folder cannot be
// made or tightened; the lock's error otherwise.
Result<FileLock> ClaimStateDir(const std::string& state_dir);
// Whether a replsyncd runs with state_dir (it holds DaemonLockPath). False when it cannot tell.
bool ReplsyncdRunning(const std::string& state_dir);

}  // namespace replsync
