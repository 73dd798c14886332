#include "capture/files/file_journaler.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <vector>

#include "capture/files/change_writer.h"
#include "capture/files/repo_paths.h"
#include "capture/files/settler.h"
#include "replsync.pb.h"
#include "sync/files/content_hash.h"
#include "sync/files/file_delta.h"
#include "sync/files/manifest.h"
#include "sync/files/open_beneath.h"
#include "sync/unique_fd.h"

namespace replsync::capture {

FileJournaler::FileJournaler(int root_fd, const FileCaptureOptions& options, Manifest& manifest,
                             ChangeWriter& writer, Settler& settler, Clock& clock,
                             const std::atomic<bool>& stop, FileCaptureCounters& counters)
    : root_fd_(root_fd),
      options_(options),
      manifest_(manifest),
      writer_(writer),
      settler_(settler),
      clock_(clock),
      stop_(stop),
      counters_(counters) {}

Status FileJournaler::Journal(const std::string& path, const struct stat& st, bool force,
                              const ManifestEntry* known) {
  const bool was_file = known != nullptr && known->type == ManifestEntry::Type::kFile;
  if (!force && was_file && known->inode == st.st_ino && known->size == uint64_t(st.st_size) &&
      known->mtime_ns == Nanos(st.st_mtim) && known->ctime_ns == Nanos(st.st_ctim)) {
    return Status::Ok();
  }
  // Written a moment ago (the scan at start has seen no event for it): let it settle.
  const int64_t now_ns = clock_.UnixMillis() * 1000000;
  const int64_t age_ns = now_ns - std::max(Nanos(st.st_mtim), Nanos(st.st_ctim));
  if (age_ns >= 0 && age_ns < std::chrono::nanoseconds(options_.quiet).count()) {
    settler_.Mark(path, {.force = force});
    return Status::Ok();
  }
  pb::FileChange first;
  first.set_kind(pb::FileChange::FILE);
  first.set_path(path);
  FillMeta(st, first.mutable_meta());
  first.set_parent_mtime_ns(ParentMtime(root_fd_, options_.root, path));
  first.set_reason(force ? "resync" : "event");
  const int64_t parent_mtime = first.parent_mtime_ns();

  if (!force && was_file && known->inode == st.st_ino && known->size == uint64_t(st.st_size) &&
      known->mtime_ns == Nanos(st.st_mtim)) {
    // Only the inode's metadata changed (chmod, chown): no content is read.
    first.set_content_unchanged(true);
    first.set_content_hash(known->content_hash);
    first.set_last_part(true);
    RS_RETURN_IF_ERROR(writer_.Submit(first, true));
    ManifestEntry e = *known;
    ManifestEntry fresh = EntryFromStat(path, ManifestEntry::Type::kFile, st);
    e.mode = fresh.mode;
    e.uid = fresh.uid;
    e.gid = fresh.gid;
    e.ctime_ns = fresh.ctime_ns;
    RS_RETURN_IF_ERROR(manifest_.Put(e));
    return writer_.RecordParentMtime(path, parent_mtime);
  }

  // Opened beneath the root: a folder on the way replaced by a symbolic link since the stat is
  // refused, not followed out of the repository.
  Result<UniqueFd> opened =
      OpenBeneath(root_fd_, options_.root, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (!opened.ok()) {
    if (NotInRepository(opened.status())) {  // replaced meanwhile
      settler_.Mark(path, {.force = force});
      return Status::Ok();
    }
    return opened.status();
  }
  const UniqueFd closer = std::move(opened).value();
  const int fd = closer.get();
  struct stat before;
  if (fstat(fd, &before) != 0 || !S_ISREG(before.st_mode) || before.st_ino != st.st_ino) {
    settler_.Mark(path, {.force = force});
    return Status::Ok();
  }
  // Someone still has it open for writing (a read lease is refused then): wait for the close,
  // unless the writer has been idle for open_write_quiet (a file held open for good).
  if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
    (void)fcntl(fd, F_SETLEASE, F_UNLCK);
  } else if ((errno == EAGAIN || errno == EBUSY) &&
             age_ns < std::chrono::nanoseconds(options_.open_write_quiet).count()) {
    settler_.Mark(path, {.force = force, .write = WriteEvent::kWriting});
    return Status::Ok();
  }

  std::vector<ChunkInfo> base;
  const bool use_base = !force && was_file && !known->chunks.empty();
  if (use_base) {
    Result<std::vector<ChunkInfo>> decoded = DecodeChunkList(known->chunks);
    if (decoded.ok()) {
      base = std::move(*decoded);
    } else {
      spdlog::warn("files: manifest chunk list of '{}' is unreadable ({}); shipping it whole", path,
                   decoded.status().message());
    }
  }
  if (!base.empty()) first.set_base_hash(known->content_hash);
  DeltaEncoder encoder(base, options_.part_bytes);
  // One part is held back, so that the last one can carry last_part and the content hash.
  std::optional<pb::FileChange> held;
  uint32_t part = 0;
  uint64_t new_offset = 0;  // where the next op's bytes start in the new content
  auto emit = [&](std::vector<pb::ContentOp>&& ops) -> Status {
    pb::FileChange next;
    if (part == 0) {
      next = first;
    } else {
      next.set_kind(pb::FileChange::FILE);
      next.set_path(path);
      next.set_parent_mtime_ns(first.parent_mtime_ns());  // every part: the last one sets it
      next.set_reason(first.reason());
    }
    next.set_part(part++);
    for (pb::ContentOp& op : ops) {
      if (op.data().size() >= options_.inline_bytes) {
        // The journal keeps a reference; the shipper reads the bytes when it sends the entry.
        const ChunkHash hash = ChunkHash::Of(op.data());
        op.set_source_offset(new_offset);
        op.set_source_length(op.data().size());
        op.set_source_hash_high(hash.high);
        op.set_source_hash_low(hash.low);
        new_offset += op.data().size();
        op.clear_data();
      } else {
        new_offset += op.data().empty() ? op.length() : op.data().size();
      }
      *next.add_ops() = std::move(op);
    }
    if (held) RS_RETURN_IF_ERROR(writer_.Submit(*held, false));
    held = std::move(next);
    return Status::Ok();
  };
  std::string& block = read_buffer_;
  if (block.size() != options_.read_block) block.assign(options_.read_block, '\0');
  uint64_t offset = 0;
  while (true) {
    ssize_t n = pread(fd, block.data(), block.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      return Status::IoError(fmt::format("read '{}' in {}: {}", path, options_.root, Errno(err)));
    }
    if (n == 0) break;
    offset += static_cast<uint64_t>(n);
    RS_RETURN_IF_ERROR(
        encoder.Update(std::string_view(block.data(), static_cast<size_t>(n)), emit));
    if (stop_) break;
  }
  RS_RETURN_IF_ERROR(encoder.Finish(emit));
  if (!held) RS_RETURN_IF_ERROR(emit({}));

  struct stat after;
  Result<struct stat> again = LstatBeneath(root_fd_, options_.root, path);
  const bool changed = stop_ || fstat(fd, &after) != 0 || !SameFileState(before, after) ||
                       !again.ok() || !SameFileState(before, *again);
  if (changed) {
    // Whatever the earlier parts said is void; the path is looked at again once it settles.
    if (part > 1) {
      held->clear_ops();
      held->set_abandoned(true);
      held->set_last_part(true);
      RS_RETURN_IF_ERROR(writer_.Submit(*held, true));
    }
    if (!stop_) {
      ++counters_.abandoned;
      settler_.Mark(path, {.force = force});
    }
    return Status::Ok();
  }
  const std::string hash = encoder.content_hash();
  if (part == 1 && !force && was_file && known->content_hash == hash) {
    // Same content (a touch, or rewritten with the same bytes): metadata only.
    held->clear_ops();
    held->clear_base_hash();
    held->set_content_unchanged(true);
  }
  held->set_content_hash(hash);
  held->set_last_part(true);
  RS_RETURN_IF_ERROR(writer_.Submit(*held, true));
  counters_.literal_bytes += encoder.literal_bytes();
  counters_.copied_bytes += encoder.copied_bytes();
  if (known != nullptr && known->type == ManifestEntry::Type::kDirectory) {
    RS_RETURN_IF_ERROR(manifest_.Delete(path));
  }
  ManifestEntry e = EntryFromStat(path, ManifestEntry::Type::kFile, before);
  e.content_hash = hash;
  e.chunks = EncodeChunkList(encoder.chunks());
  RS_RETURN_IF_ERROR(manifest_.Put(e));
  return writer_.RecordParentMtime(path, parent_mtime);
}

}  // namespace replsync::capture
