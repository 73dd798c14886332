// PLACEHOLDER: replaced by the real decoder.
#include "capture/binlog_decoder.h"

namespace replsync::capture {
std::string EventTypeName(uint8_t type) { return "EVENT(" + std::to_string(type) + ")"; }
BinlogDecoder::BinlogDecoder(DecoderOptions options) : options_(options) {}
BinlogDecoder::~BinlogDecoder() = default;
Status BinlogDecoder::Feed(const RawEvent& raw) { return Status::Internal("not implemented"); }
Result<bool> BinlogDecoder::Next(Event* event) { return Status::Internal("not implemented"); }
const TableMap* BinlogDecoder::FindTable(uint64_t table_id) const { return nullptr; }
BinlogReader::BinlogReader(std::unique_ptr<BinlogSource> source, DecoderOptions options)
    : source_(std::move(source)), decoder_(options) {}
Result<const Event*> BinlogReader::Next() { return Status::Internal("not implemented"); }
}  // namespace replsync::capture
