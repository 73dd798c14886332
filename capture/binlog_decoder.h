// BinlogDecoder: turns raw binlog events into typed Events.
//
// It keeps the state decoding needs: the current FORMAT_DESCRIPTION (checksum algorithm,
// post-header lengths; a second one mid-file replaces the first), the table maps by table id,
// and the events of a TRANSACTION_PAYLOAD being unpacked (zstd; inner events carry no checksum
// and log_pos 0). MariaDB compressed QUERY and ROWS events are inflated (zlib).
// References: MySQL libbinlogevents (binlog_event.h, control_events.h, statement_events.h,
// rows_event.h), MariaDB KB "Replication Protocol" and its per-event pages.
// Thread-safety: not thread-safe; one decoder per stream.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "capture/binlog_event.h"
#include "capture/binlog_source.h"

namespace replsync::capture {

struct DecoderOptions {
  // Verify each event's CRC32 when the FORMAT_DESCRIPTION says the binlog has checksums.
  bool verify_checksum = true;
};

class BinlogDecoder {
 public:
  explicit BinlogDecoder(DecoderOptions options = {});
  ~BinlogDecoder();

  // Takes one raw event. Afterwards, Next yields what it holds: one Event for an ordinary event,
  // every inner event for a TRANSACTION_PAYLOAD. The raw bytes must stay valid until Next has
  // returned false. Errors (all name the file, offset and event type):
  //   Corruption: CRC32 mismatch, a truncated event, a length or count that overruns the event,
  //     ROWS for a table id with no TABLE_MAP, a payload that does not decompress;
  //   Unsupported: an unknown event type without LOG_EVENT_IGNORABLE_F, encrypted binlogs.
  Status Feed(const RawEvent& raw);

  // Fills *event with the next decoded event from what Feed took. Returns false when there is
  // none left. Views in *event stay valid until the next Feed.
  Result<bool> Next(Event* event);

  const FormatDescriptionEvent& format() const { return format_; }
  // The table map for `table_id`, or nullptr.
  const TableMap* FindTable(uint64_t table_id) const;

 private:
  Status DecodeOne(std::string_view data, const BinlogPosition& position, uint64_t next_offset,
                   bool in_payload, Event* event);
  Status DecodeBody(const EventHeader& header, std::string_view body, Event* event);

  DecoderOptions options_;
  FormatDescriptionEvent format_;
  std::unordered_map<uint64_t, std::shared_ptr<const TableMap>> tables_;
  // The event Feed took, waiting for Next.
  RawEvent pending_;
  bool has_pending_ = false;
  // An unpacked TRANSACTION_PAYLOAD: its bytes and the offset of the next inner event.
  std::string payload_;
  size_t payload_offset_ = 0;
  bool in_payload_ = false;
  BinlogPosition payload_position_;
  uint64_t payload_next_offset_ = 0;
  // Inflated MariaDB compressed event bodies live here until the next Feed.
  std::string inflated_;
};

// Source plus decoder: the stream of decoded events most callers want.
// Thread-safety: not thread-safe.
class BinlogReader {
 public:
  BinlogReader(std::unique_ptr<BinlogSource> source, DecoderOptions options = {});

  // The next decoded event, or nullptr at the end of the input. The event and its views are
  // valid until the next call. Errors are the source's and the decoder's.
  Result<const Event*> Next();

  BinlogDecoder& decoder() { return decoder_; }
  BinlogSource& source() { return *source_; }

 private:
  std::unique_ptr<BinlogSource> source_;
  BinlogDecoder decoder_;
  Event event_;
};

}  // namespace replsync::capture
