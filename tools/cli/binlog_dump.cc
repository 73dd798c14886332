// PLACEHOLDER: replaced by the real dump.
#include "tools/cli/binlog_dump.h"

namespace replsync::cli {
Status RunBinlogDump(const DumpOptions& options, std::FILE* out) {
  return Status::Internal("not implemented");
}
}  // namespace replsync::cli
