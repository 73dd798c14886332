#include "capture/files/file_content_reader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

#include "capture/files/repo_paths.h"
#include "replsync.pb.h"
#include "sync/files/content_hash.h"
#include "sync/files/open_beneath.h"

namespace replsync::capture {

FileContentReader::FileContentReader(std::string root) : root_(std::move(root)) {}

FileContentReader::~FileContentReader() = default;

Result<bool> FileContentReader::Fill(pb::FileChange* change) {
  bool has_refs = false;
  for (const pb::ContentOp& op : change->ops()) has_refs = has_refs || op.source_length() > 0;
  if (!has_refs) return true;
  if (!root_fd_.valid()) {
    root_fd_.Reset(open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd_.valid()) {
      const int err = errno;
      return Status::IoError(fmt::format("open repository {}: {}", root_, Errno(err)));
    }
  }
  if (open_fd_.valid() && (open_path_ != change->path() || change->part() == 0)) open_fd_.Reset();
  if (!open_fd_.valid()) {
    // Beneath the root: a folder on the way replaced by a symbolic link since the capture read
    // the file is refused (the bytes there are not the repository's), not followed.
    Result<UniqueFd> opened =
        OpenBeneath(root_fd_.get(), root_, change->path(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (!opened.ok()) {
      if (NotInRepository(opened.status())) return false;
      return opened.status().WithContext("send a file's content");
    }
    open_fd_ = std::move(opened).value();
    open_path_ = change->path();
  }
  // The file stays open for the following parts: even when it is replaced meanwhile, the
  // descriptor still reads the version the capture read (the hashes tell).
  const int fd = open_fd_.get();
  // After the last part the file is closed on return.
  const UniqueFd closer(change->last_part() ? open_fd_.release() : -1);
  for (pb::ContentOp& op : *change->mutable_ops()) {
    if (op.source_length() == 0) continue;
    std::string data(op.source_length(), '\0');
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = pread(fd, data.data() + done, data.size() - done,
                        static_cast<off_t>(op.source_offset() + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        return Status::IoError(
            fmt::format("read '{}' in {} to send it: {}", change->path(), root_, Errno(err)));
      }
      if (n == 0) return false;  // shorter now
      done += static_cast<size_t>(n);
    }
    const ChunkHash hash = ChunkHash::Of(data);
    if (hash.high != op.source_hash_high() || hash.low != op.source_hash_low()) return false;
    op.set_data(std::move(data));
    op.clear_source_offset();
    op.clear_source_length();
    op.clear_source_hash_high();
    op.clear_source_hash_low();
  }
  return true;
}

}  // namespace replsync::capture
