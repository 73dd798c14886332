#include "capture/files/move_detector.h"

#include <optional>

#include "capture/files/change_writer.h"
#include "capture/files/repo_paths.h"
#include "capture/files/settler.h"
#include "replsync.pb.h"
#include "sync/files/manifest.h"

namespace replsync::capture {

MoveDetector::MoveDetector(int root_fd, const std::string& root, Manifest& manifest,
                           ChangeWriter& writer, Settler& settler)
    : root_fd_(root_fd), root_(root), manifest_(manifest), writer_(writer), settler_(settler) {}

Status MoveDetector::OnMoved(const std::string& from, const std::string& to) {
  RS_RETURN_IF_ERROR(writer_.Begin());
  settler_.MovePrefix(from, to);

  RS_ASSIGN_OR_RETURN(std::optional<ManifestEntry> known, manifest_.Get(from));
  const Result<struct stat> st = LstatBeneath(root_fd_, root_, to);
  if (!known || !st.ok() || known->inode != st->st_ino) {
    // Not provable as a rename of what the secondary has: the old path goes, the new one is
    // looked at as new.
    settler_.Mark(from);
    settler_.Mark(to, {.deep = true});
    return Status::Ok();
  }
  pb::FileChange change;
  change.set_kind(pb::FileChange::RENAME);
  change.set_path(to);
  change.set_from_path(from);
  pb::FileMeta* meta = change.mutable_meta();
  meta->set_mode(known->mode);
  meta->set_uid(known->uid);
  meta->set_gid(known->gid);
  meta->set_mtime_ns(known->mtime_ns);
  meta->set_size(known->size);
  change.set_parent_mtime_ns(ParentMtime(root_fd_, root_, to));
  change.set_from_parent_mtime_ns(ParentMtime(root_fd_, root_, from));
  change.set_last_part(true);
  change.set_reason("event");
  RS_RETURN_IF_ERROR(writer_.Submit(change, true));
  RS_RETURN_IF_ERROR(manifest_.Rename(from, to));
  RS_RETURN_IF_ERROR(writer_.RecordParentMtime(to, change.parent_mtime_ns()));
  RS_RETURN_IF_ERROR(writer_.RecordParentMtime(from, change.from_parent_mtime_ns()));
  // Its inode's ctime changed with the move; whatever else changed is found when it settles.
  settler_.Mark(to);
  return Status::Ok();
}

}  // namespace replsync::capture
