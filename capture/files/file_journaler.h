// FileJournaler: journals the state of one regular file of the repository as a FileChange
// group (schemas/files.md), and records it in the manifest.
//
// - Unchanged (inode, size, mtime, ctime equal to the manifest row, and not forced): nothing.
// - Only the inode's metadata changed (chmod, chown): one metadata-only entry, no read.
// - Otherwise the content is read and FastCDC-chunked against the chunk list the manifest holds
//   for the path (sync/files/file_delta.h), so a small change in a large file ships about one
//   chunk; parts of about `part_bytes` keep memory bounded. Literal pieces of `inline_bytes` or
//   more are journaled as references into the file (FileContentReader fills them in).
// - Written a moment ago (less than `quiet` before the clock's wall time), still open for
//   writing (a read lease is refused) and idle for less than `open_write_quiet`, or replaced
//   meanwhile: the path is marked to be looked at again instead.
// - Changed while read (stat differs afterwards): the group ends with an `abandoned` part and
//   the path is marked again.
// Thread-safety: not thread-safe; the capture's thread only.
#pragma once

#include <atomic>
#include <string>

#include "capture/files/file_capture_options.h"
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

class FileJournaler {
 public:
  // Every reference must outlive the journaler; `root_fd` is the repository's open folder.
  FileJournaler(int root_fd, const FileCaptureOptions& options, Manifest& manifest,
                ChangeWriter& writer, Settler& settler, Clock& clock, const std::atomic<bool>& stop,
                FileCaptureCounters& counters);

  // `st` is the path's lstat (a regular file), `known` its manifest row or null; `force`
  // journals the whole content as literal data (a resync). Errors: IoError when the file
  // cannot be read, the writer's and the manifest's.
  Status Journal(const std::string& path, const struct stat& st, bool force,
                 const ManifestEntry* known);

 private:
  const int root_fd_;
  const FileCaptureOptions& options_;
  Manifest& manifest_;
  ChangeWriter& writer_;
  Settler& settler_;
  Clock& clock_;
  const std::atomic<bool>& stop_;
  FileCaptureCounters& counters_;
  // One read buffer for every file (a fresh 1 MiB one per file cost more than reading small
  // files).
  std::string read_buffer_;
};

}  // namespace replsync::capture
