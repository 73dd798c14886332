// TreeSnapshotter: the file capture's part of `replsync verify` / `repair` (schemas/verify.md
// "Files"): a snapshot of the journaled tree with the journal sequence it is exact at.
//
// Take first journals `resync_paths` whole; with `deep` it rescans the tree and rereads every
// file whose stat still matches its manifest row (a content change that kept size and mtime is
// journaled again); then it commits the manifest once the journal holds everything it describes
// and hands over the manifest's tree with the journal's last sequence: the tree is exactly the
// result of the file entries up to that sequence.
// Thread-safety: not thread-safe; the capture's thread only.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "sync/files/file_tree.h"
#include "sync/status.h"

namespace replsync {
class Manifest;
}  // namespace replsync

namespace replsync::capture {

class ChangeWriter;
class Reconciler;
class Settler;
struct FileEntrySink;

// A request for a snapshot (FileCapture::RequestTreeSnapshot). `done` is called once.
struct TreeSnapshotRequest {
  bool deep = false;
  std::vector<std::string> resync_paths;
  std::function<void(Result<FileTreeSnapshot>)> done;
};

class TreeSnapshotter {
 public:
  // Every reference must outlive the snapshotter; `root_fd` is the repository's open folder,
  // `root` its name for messages.
  TreeSnapshotter(int root_fd, const std::string& root, Manifest& manifest, ChangeWriter& writer,
                  Reconciler& reconciler, Settler& settler, const FileEntrySink& sink,
                  const std::atomic<bool>& stop);

  // Errors: InvalidArgument for a bad resync path (the request's own problem); the
  // reconciler's, the writer's and the manifest's otherwise.
  Result<FileTreeSnapshot> Take(const TreeSnapshotRequest& request);

 private:
  // --deep: rereads every file whose stat matches its manifest row; journals those whose content
  // is not the one the manifest holds.
  Status RehashUnchanged();

  const int root_fd_;
  const std::string& root_;
  Manifest& manifest_;
  ChangeWriter& writer_;
  Reconciler& reconciler_;
  Settler& settler_;
  const FileEntrySink& sink_;
  const std::atomic<bool>& stop_;
};

}  // namespace replsync::capture
