// CopyRepositoryFiles: the bulk first pass of a bootstrap's files phase (schemas/bootstrap.md
// "Files"). The paths the tree comparison found missing or different on the secondary are read
// from the primary with READ_FILES (many small files per round trip, large ones in pieces) and
// written straight into the repository folder, instead of travelling through the primary's
// journal, the relay and the file applier one path at a time.
//
// It is a first pass only: the exact pass (VerifyFiles + RepairFiles) always runs after it and
// decides the result. So the bulk pass may leave anything to it: a path changed on the primary
// while copied, a path the stream's applier writes meanwhile (the last rename wins; the exact
// pass compares again), a path whose parent chain holds a symbolic link, a non-directory where
// the primary has a directory, a file it failed to write (logged, counted in `skipped`). Paths
// extra on the secondary are never removed here.
//
// Writing follows the file applier's conventions (apply/file_applier.h): every path checked with
// CheckRepositoryPath, parents resolved with OpenBeneath and missing ones made (0755), the last
// component touched with *at calls that do not follow it; a file is written under a temporary
// name in its folder (".replsync-tmp." + 16 hex digits, which the file applier removes at its
// start after a crash), given owner, mode (setuid/setgid only with keep_setid) and mtime (atime =
// mtime), and renamed over the path; directories are made (their children copied then) and get
// their mtime last, deepest first, after the files written into them; symbolic links are made
// under a temporary name and renamed over the path. Durability as the applier's: one syncfs(2)
// at the end, not an fsync per file; the bootstrap records the phase done only after the exact
// pass, and a phase that runs again compares the trees again.
//
// Memory: each worker holds one reply (about request_bytes of content) at a time.
// Thread-safety: one call at a time per repository; it runs `workers` threads of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sync/bootstrap/bootstrap_client.h"
#include "sync/status.h"

namespace replsync::apply {

struct FileCopierOptions {
  std::string root;  // [repository] path on the secondary (must exist)
  bool keep_setid = false;
  size_t workers = 2;                          // threads, each with a client connection of its own
  uint64_t request_bytes = uint64_t{4} << 20;  // content asked for per READ_FILES
  // A new client connection to the primary (the bootstrapper's connect).
  std::function<Result<std::unique_ptr<BootstrapClient>>()> connect;
  // Paths done of the paths known so far (directories add their children), from any worker.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct FileCopyResult {
  uint64_t files = 0;        // regular files written
  uint64_t directories = 0;  // directories made or given their metadata
  uint64_t symlinks = 0;
  uint64_t bytes = 0;     // content written
  uint64_t gone = 0;      // paths the primary no longer had
  uint64_t refused = 0;   // devices, FIFOs, sockets on the primary
  uint64_t skipped = 0;   // left to the exact pass (see above)
  uint64_t requests = 0;  // READ_FILES round trips
};

// Copies `paths` (repository paths, each with everything below it when it is a directory the
// secondary does not have) from the primary into options.root. Errors: InvalidArgument when root
// cannot be opened; the first client error of any worker (connection, a refused request); IoError
// when syncfs fails. A path that cannot be written is not an error (skipped).
Result<FileCopyResult> CopyRepositoryFiles(const FileCopierOptions& options,
                                           std::vector<std::string> paths);

}  // namespace replsync::apply
