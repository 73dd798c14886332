#include "capture/files/tree_snapshot.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <memory>

#include "capture/files/change_writer.h"
#include "capture/files/reconciler.h"
#include "capture/files/repo_paths.h"
#include "capture/files/settler.h"
#include "sync/files/content_hash.h"
#include "sync/files/manifest.h"
#include "sync/files/open_beneath.h"
#include "sync/files/repository_path.h"
#include "sync/unique_fd.h"

namespace replsync::capture {

TreeSnapshotter::TreeSnapshotter(int root_fd, const std::string& root, Manifest& manifest,
                                 ChangeWriter& writer, Reconciler& reconciler, Settler& settler,
                                 const FileEntrySink& sink, const std::atomic<bool>& stop)
    : root_fd_(root_fd),
      root_(root),
      manifest_(manifest),
      writer_(writer),
      reconciler_(reconciler),
      settler_(settler),
      sink_(sink),
      stop_(stop) {}

Result<FileTreeSnapshot> TreeSnapshotter::Take(const TreeSnapshotRequest& request) {
  for (const std::string& path : request.resync_paths) {
    // Checked before anything is read; InvalidArgument (the request's own problem) names what
    // is wrong with it.
    Status checked = CheckRepositoryPath(path);
    if (!checked.ok()) {
      return Status::InvalidArgument("verify's repair asks to journal a path whole again: " +
                                     checked.message());
    }
  }
  if (!request.resync_paths.empty()) {
    spdlog::info("files: verify's repair asks for {} path(s) whole; journaling them again",
                 request.resync_paths.size());
  }
  for (const std::string& path : request.resync_paths) {
    RS_RETURN_IF_ERROR(reconciler_.Reconcile(path, {.deep = true, .force = true}));
    // Journaled now: an event or request for it that was waiting is done too.
    settler_.Erase(path);
  }
  if (request.deep) {
    spdlog::info("files: verify --deep: rescanning {} and rereading every file", root_);
    RS_RETURN_IF_ERROR(reconciler_.Reconcile("", {.deep = true}));
    RS_RETURN_IF_ERROR(RehashUnchanged());
  }
  RS_RETURN_IF_ERROR(writer_.Commit(/*force=*/true));
  FileTreeSnapshot snapshot;
  snapshot.journal_seq = sink_.journal_last_seq ? sink_.journal_last_seq() : 0;
  RS_ASSIGN_OR_RETURN(FileTree tree, FileTree::FromManifest(manifest_));
  tree.Finish(/*with_content=*/request.deep);
  spdlog::info("files: verify's snapshot of {} paths at journal sequence {}", tree.size(),
               snapshot.journal_seq);
  snapshot.tree = std::make_shared<const FileTree>(std::move(tree));
  return snapshot;
}

Status TreeSnapshotter::RehashUnchanged() {
  std::vector<std::string> changed;
  RS_RETURN_IF_ERROR(manifest_.ForEach([&](const ManifestEntry& e) {
    if (stop_ || e.type != ManifestEntry::Type::kFile) return Status::Ok();
    Result<UniqueFd> opened =
        OpenBeneath(root_fd_, root_, e.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (!opened.ok()) {
      changed.push_back(e.path);  // gone or replaced: Reconcile journals what is there
      return Status::Ok();
    }
    const UniqueFd fd = std::move(opened).value();
    struct stat st;
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || e.inode != st.st_ino ||
        e.size != uint64_t(st.st_size) || e.mtime_ns != Nanos(st.st_mtim) ||
        e.ctime_ns != Nanos(st.st_ctim)) {
      changed.push_back(e.path);  // changed since journaled; its event may still be waiting
      return Status::Ok();
    }
    Result<std::string> hash = Sha256OfFile(fd.get());
    if (!hash.ok()) {
      return hash.status().WithContext(fmt::format("reread '{}' in {}", e.path, root_));
    }
    if (*hash != e.content_hash) {
      spdlog::warn(
          "files: verify --deep: '{}' in {} has new content with the size and mtime it "
          "had when journaled (changed behind the watcher's back); journaling it again",
          e.path, root_);
      changed.push_back(e.path);
    }
    return Status::Ok();
  }));
  for (const std::string& path : changed) {
    RS_RETURN_IF_ERROR(reconciler_.Reconcile(path, {.force = true}));
    settler_.Erase(path);
  }
  return Status::Ok();
}

}  // namespace replsync::capture
