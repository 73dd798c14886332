// PLACEHOLDER: replaced by the real server source.
#include "capture/mariadb_binlog_source.h"

namespace replsync::capture {
class MariadbBinlogSource::Connection {};
MariadbBinlogSource::MariadbBinlogSource(MariadbSourceOptions options)
    : options_(std::move(options)) {}
MariadbBinlogSource::~MariadbBinlogSource() = default;
Result<std::unique_ptr<MariadbBinlogSource>> MariadbBinlogSource::Open(
    MariadbSourceOptions options) {
  return Status::Internal("not implemented");
}
Result<bool> MariadbBinlogSource::Next(RawEvent* event) {
  return Status::Internal("not implemented");
}
std::string MariadbBinlogSource::Describe() const { return "server"; }
void MariadbBinlogSource::Stop() { stop_ = true; }
BinlogPosition MariadbBinlogSource::position() const { return {file_, offset_}; }
}  // namespace replsync::capture
