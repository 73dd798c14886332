#include "capture/files/reconciler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <set>
#include <vector>

#include "capture/files/change_writer.h"
#include "capture/files/repo_paths.h"
#include "capture/files/settler.h"
#include "replsync.pb.h"
#include "sync/files/manifest.h"
#include "sync/path_text.h"

namespace replsync::capture {

Reconciler::Reconciler(int root_fd, const FileCaptureOptions& options, Manifest& manifest,
                       ChangeWriter& writer, Settler& settler, Clock& clock,
                       const std::atomic<bool>& stop, FileCaptureCounters& counters)
    : root_fd_(root_fd),
      options_(options),
      manifest_(manifest),
      writer_(writer),
      settler_(settler),
      stop_(stop),
      files_(root_fd, options, manifest, writer, settler, clock, stop, counters) {}

Status Reconciler::Reconcile(const std::string& path, const ReconcileOptions& options) {
  const bool force = options.force;
  RS_RETURN_IF_ERROR(writer_.Begin());
  std::optional<ManifestEntry> known;
  if (!path.empty()) {
    RS_ASSIGN_OR_RETURN(known, manifest_.Get(path));
  }
  // Never through a symbolic link: a path below a symlinked folder is not in the repository
  // (the link is journaled as a link), so what the link points at is never read.
  Result<Looked> looked = LookBeneath(root_fd_, options_.root, path);
  if (!looked.ok()) {
    const Status& why = looked.status();
    if (!NotInRepository(why)) return why;
    if (path.empty()) {
      return Status::NotFound(fmt::format("the repository {} is gone", options_.root));
    }
    if (!known && !force) return Status::Ok();
    if (!known && why.code() == Status::Code::kInvalidArgument) {
      // Asked for whole, but below a symbolic link: the secondary refuses a DELETE through its
      // link, and the path was never journaled; the link itself is journaled as a link.
      spdlog::warn("files: '{}' in {} goes through a symbolic link; it is not journaled ({})", path,
                   options_.root, why.message());
      return Status::Ok();
    }
    writer_.set_adopting(false);
    pb::FileChange change;
    change.set_kind(pb::FileChange::DELETE);
    change.set_path(path);
    change.set_parent_mtime_ns(ParentMtime(root_fd_, options_.root, path));
    change.set_last_part(true);
    change.set_reason(force ? "resync" : "event");
    RS_RETURN_IF_ERROR(writer_.Submit(change, true));
    RS_RETURN_IF_ERROR(manifest_.Delete(path));
    return writer_.RecordParentMtime(path, change.parent_mtime_ns());
  }
  const struct stat& st = looked->st;
  writer_.set_adopting(adopt_before_ns_ != 0 && Nanos(st.st_ctim) < adopt_before_ns_);
  if (S_ISDIR(st.st_mode)) {
    return ReconcileDirectory(path, st, options, known ? &*known : nullptr);
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    // The link's own descriptor (O_PATH): "" reads the target of the link that was stat'ed.
    ssize_t n = readlinkat(looked->fd.get(), "", target.data(), target.size());
    if (n < 0) {
      const int err = errno;
      if (err == ENOENT || err == EINVAL) {  // replaced meanwhile: look again
        settler_.Mark(path, {.force = force});
        return Status::Ok();
      }
      return Status::IoError(fmt::format("read symbolic link '{}': {}", path, Errno(err)));
    }
    if (static_cast<size_t>(n) >= target.size()) {  // grew meanwhile
      settler_.Mark(path, {.force = force});
      return Status::Ok();
    }
    target.resize(static_cast<size_t>(n));
    if (!force && known && known->type == ManifestEntry::Type::kSymlink &&
        known->link_target == target && known->uid == st.st_uid && known->gid == st.st_gid &&
        known->mtime_ns == Nanos(st.st_mtim)) {
      return Status::Ok();
    }
    pb::FileChange change;
    change.set_kind(pb::FileChange::SYMLINK);
    change.set_path(path);
    FillMeta(st, change.mutable_meta());
    change.set_link_target(target);
    change.set_parent_mtime_ns(ParentMtime(root_fd_, options_.root, path));
    change.set_last_part(true);
    change.set_reason(force ? "resync" : "event");
    RS_RETURN_IF_ERROR(writer_.Submit(change, true));
    if (known && known->type == ManifestEntry::Type::kDirectory) {
      RS_RETURN_IF_ERROR(manifest_.Delete(path));
    }
    ManifestEntry e = EntryFromStat(path, ManifestEntry::Type::kSymlink, st);
    e.link_target = target;
    RS_RETURN_IF_ERROR(manifest_.Put(e));
    return writer_.RecordParentMtime(path, change.parent_mtime_ns());
  }
  if (S_ISREG(st.st_mode)) return files_.Journal(path, st, force, known ? &*known : nullptr);
  if (!warned_special_) {
    spdlog::warn(
        "files: '{}' in {} is not a regular file, directory or symbolic link (a FIFO, "
        "socket or device); such paths are not replicated",
        path, options_.root);
    warned_special_ = true;
  }
  return Status::Ok();
}

Status Reconciler::ReconcileDirectory(const std::string& path, const struct stat& st,
                                      const ReconcileOptions& options, const ManifestEntry* known) {
  const bool force = options.force;
  const bool was_dir = known != nullptr && known->type == ManifestEntry::Type::kDirectory;
  if (!path.empty() && (force || !was_dir || !MetaEqual(*known, st))) {
    pb::FileChange change;
    change.set_kind(pb::FileChange::DIRECTORY);
    change.set_path(path);
    FillMeta(st, change.mutable_meta());
    change.set_parent_mtime_ns(ParentMtime(root_fd_, options_.root, path));
    change.set_last_part(true);
    change.set_reason(force ? "resync" : "event");
    RS_RETURN_IF_ERROR(writer_.Submit(change, true));
    if (known != nullptr && !was_dir) RS_RETURN_IF_ERROR(manifest_.Delete(path));
    RS_RETURN_IF_ERROR(manifest_.Put(EntryFromStat(path, ManifestEntry::Type::kDirectory, st)));
    RS_RETURN_IF_ERROR(writer_.RecordParentMtime(path, change.parent_mtime_ns()));
  }
  if (!options.deep && was_dir) return Status::Ok();
  Result<std::vector<std::string>> names = ListDirectory(root_fd_, options_.root, path);
  if (!names.ok()) {
    if (names.status().IsNotFound()) {  // replaced meanwhile: look again
      settler_.Mark(path, {.deep = true, .force = force});
      return Status::Ok();
    }
    return names.status();
  }
  std::set<std::string> present;
  for (const std::string& name : *names) {
    if (stop_) return Status::Ok();
    const std::string child = JoinPath(path, name);
    present.insert(child);
    RS_RETURN_IF_ERROR(Reconcile(child, {.deep = true, .force = force}));
    RS_RETURN_IF_ERROR(writer_.CommitIfDue());
  }
  RS_ASSIGN_OR_RETURN(std::vector<ManifestEntry> children, manifest_.Children(path));
  for (const ManifestEntry& child : children) {
    if (present.count(child.path) == 0) {
      RS_RETURN_IF_ERROR(Reconcile(child.path, {.force = force}));
    }
  }
  return Status::Ok();
}

}  // namespace replsync::capture
