// FileContentReader: fills in the content references of a FileChange from the primary's files
// (ContentOp source_* fields, schemas/files.md "Content in the journal"): each referenced range
// is read from `root`/path and must have the XXH3-128 the capture recorded.
// Thread-safety: one thread (the shipper's).
#pragma once

#include <string>

#include "sync/status.h"
#include "sync/unique_fd.h"

namespace replsync::pb {
class FileChange;
}  // namespace replsync::pb

namespace replsync::capture {

class FileContentReader {
 public:
  explicit FileContentReader(std::string root);
  ~FileContentReader();
  FileContentReader(const FileContentReader&) = delete;
  FileContentReader& operator=(const FileContentReader&) = delete;
  // True when every reference was filled (or there was none); false when the file is gone or
  // its bytes are no longer those the capture read (a later entry carries the newer state):
  // the change's references are then left as they are. Errors: IoError when the file exists
  // but cannot be read.
  Result<bool> Fill(pb::FileChange* change);

 private:
  std::string root_;
  UniqueFd root_fd_;
  // The file of the last call, kept open for the next part of the same file.
  std::string open_path_;
  UniqueFd open_fd_;
};

}  // namespace replsync::capture
