// MoveDetector: turns the watcher's move of a path inside the tree into one RENAME entry, when
// it can prove the move: the manifest knows the old path and the new path is the same inode.
// Anything it cannot prove is handled as a delete plus a new path (both marked in the Settler).
// Paths waiting below the old name wait under the new one either way; after a RENAME the new
// path is marked too (its ctime changed; whatever else changed is found once it settles).
// Thread-safety: not thread-safe; the capture's thread only.
#pragma once

#include <string>

#include "sync/status.h"

namespace replsync {
class Manifest;
}  // namespace replsync

namespace replsync::capture {

class ChangeWriter;
class Settler;

class MoveDetector {
 public:
  // Every reference must outlive the detector; `root_fd` is the repository's open folder,
  // `root` its name for messages.
  MoveDetector(int root_fd, const std::string& root, Manifest& manifest, ChangeWriter& writer,
               Settler& settler);

  // `from` was renamed to `to` within the tree (RepoEvent::kMoved). Taken at once, before the
  // paths waiting below `from` are looked at (they would be found gone). Errors: the writer's
  // and the manifest's.
  Status OnMoved(const std::string& from, const std::string& to);

 private:
  const int root_fd_;
  const std::string& root_;
  Manifest& manifest_;
  ChangeWriter& writer_;
  Settler& settler_;
};

}  // namespace replsync::capture
