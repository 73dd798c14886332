// VerifyFiles / RepairFiles: the repository part of `replsync verify` and `replsync repair`
// (schemas/verify.md, "Files").
//
// The point: the secondary's applier is held (verify's barrier), the primary's daemon is asked
// over the replication endpoint for a snapshot of its manifest (sync/wire/tree_client.h,
// TreeRequest, schemas/wire.md), which it takes at journal sequence S with every file entry up to
// S and none after; the applier then applies exactly through S (barrier "seq:S+1") and holds
// while the secondary's folder is scanned, so both sides describe the same moment of the file
// stream while changes keep flowing.
//
// The comparison: both trees carry Merkle hashes (sync/files/file_tree.h); from the root down, only
// folders whose children hash differs are listed by the primary, so an equal subtree costs one
// hash. Where metadata differs a path is reported: missing, extra, type, content, link, mode,
// owner, mtime (one entry per problem). Content is compared where the size or mtime differs
// (the secondary rehashes its file against the primary's SHA-256), or for every file with
// `deep` (both sides reread every file; the primary journals any content change its watcher
// missed first). An mtime is not reported on its own where it follows from another problem: a
// file whose content differs, a link whose target differs, a folder with entries missing, extra
// or of another type inside (repairing those restamps it).
//
// Repair: the primary journals every differing path's whole current state again (a path it does
// not have: a DELETE), which reaches the secondary through the normal stream and is applied
// there like any change (atomic replace); RepairFiles waits until the applier has applied it.
// Thread-safety: one call at a time per process (the barrier file is per node).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sync/clock.h"
#include "sync/config.h"
#include "sync/status.h"

namespace replsync::verify {

struct FileDifference {
  std::string path;
  std::string problem;  // missing, extra, type, content, link, mode, owner, mtime
  std::string detail;   // for people: "size 10 vs 12", "mode 0644 vs 0600"
};

struct FileVerifyOptions {
  bool deep = false;
  int barrier_timeout_s = 120;  // the longest wait for the applier to reach the point
  int reply_timeout_s = 120;    // the longest wait for a reply of the primary (not --deep)
  bool show_progress = false;   // a progress line on stderr
  Clock* clock = &SystemClock();  // the waits' deadlines and the progress line's times
};

struct FileVerifyResult {
  uint64_t journal_seq = 0;      // the point S
  uint64_t primary_paths = 0;    // paths in the primary's snapshot
  uint64_t secondary_paths = 0;  // paths on the secondary
  uint64_t listed_nodes = 0;     // nodes the primary sent (what the Merkle descent cost)
  uint64_t requests = 0;         // round trips to the primary
  uint64_t hashed_bytes = 0;     // content the secondary reread
  std::vector<FileDifference> differences;  // in path order
};

// Why verify's or repair's files part does not run with these flags ("" when it does):
// --database-only, or no [repository] path (unless --files-only asks for files: then VerifyFiles
// says what is missing).
std::string FilesSkipped(const NodeConfig& config, bool database_only, bool files_only);

// Compares the secondary's repository with the primary's (see above). Errors (the message says
// why the files could not be compared): not a secondary's configuration or no [repository]
// path, replsyncd not running, the primary unreachable, silent or failing a request (its
// TreeClient's errors), the applier not reaching the point, the secondary's folder unreadable.
Result<FileVerifyResult> VerifyFiles(const NodeConfig& config, const FileVerifyOptions& options);

struct FileRepairResult {
  uint64_t paths = 0;        // paths journaled again by the primary
  uint64_t journal_seq = 0;  // applied through this sequence on the secondary
};

// Asks the primary to journal `differences`' paths whole again and waits until the secondary's
// applier applied them (see above). Nothing to do: done at once. Errors: as VerifyFiles'.
Result<FileRepairResult> RepairFiles(const NodeConfig& config,
                                     const std::vector<FileDifference>& differences,
                                     const FileVerifyOptions& options);

}  // namespace replsync::verify
