// PLACEHOLDER: replaced by the real file source.
#include "capture/file_binlog_source.h"

namespace replsync::capture {
class FileBinlogSource::Reader {};
FileBinlogSource::FileBinlogSource(std::vector<std::string> paths) : paths_(std::move(paths)) {}
FileBinlogSource::~FileBinlogSource() = default;
Result<std::unique_ptr<FileBinlogSource>> FileBinlogSource::Open(std::vector<std::string> paths) {
  return Status::Internal("not implemented");
}
Result<bool> FileBinlogSource::Next(RawEvent* event) { return Status::Internal("not implemented"); }
std::string FileBinlogSource::Describe() const { return "files"; }
}  // namespace replsync::capture
