// Reconciler: brings the journal and the manifest to the state of a repository path on disk.
//
// The path is looked at without following any symbolic link (repo_paths.h): a link is journaled
// as a link, and nothing below a symlinked folder is read. Gone (or below a link): a DELETE when
// the manifest knows it. A folder: a DIRECTORY entry when its metadata changed, and with `deep`
// (or when it is new) everything below it too, including the DELETEs of what the manifest has
// below it that is gone. A regular file: FileJournaler. FIFOs, sockets and devices are skipped
// (warned once). A path that changes under the look is marked in the Settler to be looked at
// again. `force` (a resync) journals the whole state even when the manifest says it is
// unchanged, and a DELETE for a path the manifest does not know.
// Thread-safety: not thread-safe; the capture's thread only.
#pragma once

#include <atomic>
#include <string>

#include "capture/files/file_capture_options.h"
#include "capture/files/file_journaler.h"
#include "sync/clock.h"
#include "sync/status.h"

struct stat;

namespace replsync {
class Manifest;
struct ManifestEntry;
}  // namespace replsync

namespace replsync::capture {

class ChangeWriter;
class Settler;
struct FileCaptureCounters;

struct ReconcileOptions {
  bool deep = false;   // a folder: also everything below it
  bool force = false;  // resync: whole state, literal data only
};

class Reconciler {
 public:
  // Every reference must outlive the reconciler; `root_fd` is the repository's open folder.
  Reconciler(int root_fd, const FileCaptureOptions& options, Manifest& manifest,
             ChangeWriter& writer, Settler& settler, Clock& clock, const std::atomic<bool>& stop,
             FileCaptureCounters& counters);

  // Errors: NotFound when the repository itself ("") is gone; IoError when a path cannot be
  // read; the writer's and the manifest's.
  Status Reconcile(const std::string& path, const ReconcileOptions& options);
  // FileCaptureOptions::adopt_changed_before_ns for the scans from now on (0: none): a path
  // whose ctime is before it is recorded in the manifest, not journaled (ChangeWriter adopting).
  void AdoptChangedBefore(int64_t ns) { adopt_before_ns_ = ns; }

 private:
  Status ReconcileDirectory(const std::string& path, const struct stat& st,
                            const ReconcileOptions& options, const ManifestEntry* known);

  const int root_fd_;
  const FileCaptureOptions& options_;
  Manifest& manifest_;
  ChangeWriter& writer_;
  int64_t adopt_before_ns_ = 0;
  Settler& settler_;
  const std::atomic<bool>& stop_;
  FileJournaler files_;
  bool warned_special_ = false;
};

}  // namespace replsync::capture
