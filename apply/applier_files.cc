// The applier's file side: runs of FileChange entries (see "File changes" in applier.h).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "apply/applier.h"
#include "sync/atomic_file.h"

namespace replsync::apply {

namespace {

// Where replsync 0.4 kept the list: a meta value of the relay, which the receiver writes. Read
// (never written) when the list's own file does not exist yet.
constexpr char kLegacyMetaFileResync[] = "file_resync";

}  // namespace

std::string Applier::FileResyncPath() const {
  return options_.file_resync_path.empty() ? relay_->path() + ".file_resync"
                                           : options_.file_resync_path;
}

Status Applier::LoadFileResync() {
  const std::string path = FileResyncPath();
  std::optional<std::string> saved;
  std::ifstream in(path, std::ios::binary);
  if (in) {
    saved.emplace((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return Status::IoError(fmt::format("read {}: {}", path, std::strerror(errno)));
  } else if (errno != ENOENT) {
    return Status::IoError(fmt::format("open {}: {}", path, std::strerror(errno)));
  } else {
    RS_ASSIGN_OR_RETURN(saved, relay_->GetMeta(kLegacyMetaFileResync));
  }
  resync_.clear();
  if (saved && !saved->empty()) {
    pb::FileResync list;
    if (!list.ParseFromString(*saved)) {
      return Status::Corruption(fmt::format(
          "{} does not parse as a list of paths (schemas/files.md); remove it and run "
          "replsync verify --files-only and replsync repair to find and fix what it listed",
          path));
    }
    resync_.insert(list.paths().begin(), list.paths().end());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.file_resync_pending = resync_.size();
  }
  if (!resync_.empty()) {
    spdlog::info("applier: {} path(s) still wait for the primary's whole copy", resync_.size());
  }
  if (options_.on_file_resync) {
    options_.on_file_resync(std::vector<std::string>(resync_.begin(), resync_.end()));
  }
  return Status::Ok();
}

Status Applier::SaveFileResync() {
  pb::FileResync list;
  for (const std::string& path : resync_) list.add_paths(path);
  std::string bytes;
  list.SerializeToString(&bytes);
  return WriteFileAtomically(FileResyncPath(), bytes, "the paths waiting for a whole copy");
}

Status Applier::ApplyFiles(uint64_t seq, pb::FileChange first) {
  if (files_ == nullptr) {
    if (options_.repository.empty()) {
      return Status::InvalidArgument(fmt::format(
          "relay entry {} is a change of the primary's file repository, but this node's "
          "[repository] path is not set; set it to the secondary's repository folder and restart "
          "replsyncd",
          seq));
    }
    RS_ASSIGN_OR_RETURN(files_,
                        FileApplier::Open(FileApplierOptions{.root = options_.repository,
                                                             .keep_setid = options_.keep_setid}));
  }
  SetState(ApplierState::kApplying);
  uint64_t at = seq;
  uint64_t changes = 0;
  uint64_t bytes = 0;
  bool resync_changed = false;
  pb::FileChange change = std::move(first);
  while (true) {
    for (const pb::ContentOp& op : change.ops()) bytes += op.data().size();
    Result<FileApplyOutcome> outcome = files_->Apply(change);
    if (!outcome.ok()) {
      return outcome.status().WithContext(
          fmt::format("apply file entry {} ('{}')", at, change.path()));
    }
    if (*outcome == FileApplyOutcome::kRefused) {
      // Logged (rate-limited) by the file applier; counted here; replication goes on.
      std::lock_guard<std::mutex> lock(mu_);
      ++status_.file_changes_refused;
    } else if (*outcome == FileApplyOutcome::kNeedsResync) {
      if (resync_.insert(change.path()).second) resync_changed = true;
      spdlog::warn(
          "applier: '{}' on the secondary is not the version entry {} builds on (changed behind "
          "replsync's back?); it is left as it is and the primary is asked for it whole",
          change.path(), at);
    } else if (change.reason() == "resync" && change.last_part() && !change.abandoned() &&
               resync_.erase(change.path()) != 0) {
      resync_changed = true;
    }
    const bool in_parts = !change.last_part();
    if (change.last_part()) ++changes;
    if (!in_parts &&
        (changes >= options_.file_batch_entries || bytes >= options_.file_batch_bytes)) {
      break;
    }
    // The next entry, read once: more of this run, or what comes after it.
    RelayItem next;
    while (true) {
      RS_ASSIGN_OR_RETURN(next, ReadRelay(at + 1));
      if (!next.not_yet() || !in_parts) break;
      // The rest of a file's parts is on its way.
      if (stop_) return Status::Aborted("applier stopping");
      WaitForNotify();
    }
    if (next.not_yet()) break;
    if (in_parts && !next.is_file()) {
      return Status::Corruption(
          fmt::format("relay entry {} is not the next part of the file '{}' of entry {}", at + 1,
                      change.path(), at));
    }
    // A hold before a sequence (verify's barrier or the owner's) ends the run there.
    auto seq_hold = [&](const StopPoint& p) { return p.stop_seq != 0 && at + 1 >= p.stop_seq; };
    const bool barrier_before = !in_parts && ((barrier_ && seq_hold(barrier_->point)) ||
                                              (own_hold_point_ && seq_hold(*own_hold_point_)));
    if (!next.is_file() || barrier_before) {
      next_ = std::move(next);  // acted on by the loop, as read
      next_parallel_ = false;   // applied on the coordinator's session
      break;
    }
    change = std::move(next.file());
    ++at;
  }
  RS_RETURN_IF_ERROR(files_->Sync());
  if (resync_changed) {
    RS_RETURN_IF_ERROR(SaveFileResync());
    if (options_.on_file_resync) {
      options_.on_file_resync(std::vector<std::string>(resync_.begin(), resync_.end()));
    }
  }
  // The position row moves past the run only now that the run is durable.
  pb::DbTransaction here;
  here.set_gtid(position_.gtid);
  here.set_end_file(position_.source.file);
  here.set_end_offset(position_.source.offset);
  RS_RETURN_IF_ERROR(Execute(PositionSql(at, here)).WithContext("record applied file entries"));
  position_.seq = at;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.file_changes_applied += changes;
    ++status_.file_batches;
    status_.file_resync_pending = resync_.size();
  }
  Publish(position_, /*applied=*/false);
  return Status::Ok();
}

}  // namespace replsync::apply
