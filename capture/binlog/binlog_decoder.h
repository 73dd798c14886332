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

#include "capture/binlog/binlog_event.h"
#include "capture/binlog/binlog_source.h"

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
  // returned false. Feed checks the framing and the CRC32 and unpacks a payload; Next decodes
  // the bodies. Errors of both (all "<file>:<offset> <EVENT_NAME>: <what>"):
  //   Corruption: CRC32 mismatch, a truncated event, a length or count that overruns the event,
  //     ROWS for a table id with no TABLE_MAP, a payload that does not decompress;
  //   Unsupported: an unknown event type without LOG_EVENT_IGNORABLE_F, encrypted binlogs.
  // An error does not poison the decoder: the next Feed starts afresh.
  Status Feed(const RawEvent& raw);

  // Fills *event with the next decoded event from what Feed took. Returns false when there is
  // none left. Views in *event stay valid until the next Feed. Inner events of a payload carry
  // the payload event's position and next_offset (a restart replays the whole payload).
  // Decoding a ROWS event allocates nothing once the buffers have grown.
  Result<bool> Next(Event* event);

  // The bytes of the event the last successful Next returned: for a top-level event the whole
  // event as read (with its checksum when the binlog has checksums); for an event from a
  // TRANSACTION_PAYLOAD the inner event, which has no checksum. Valid until the next Feed.
  std::string_view raw_event() const { return raw_event_; }

  const FormatDescriptionEvent& format() const { return format_; }
  // The table map for `table_id`, or nullptr.
  const TableMap* FindTable(uint64_t table_id) const;

 private:
  struct ZstdContext;
  // One cached TABLE_MAP: the decoded map and the event bytes it came from, so an identical
  // TABLE_MAP (one per transaction on a busy table) reuses the map instead of rebuilding it.
  struct CachedTable {
    std::string bytes;
    std::shared_ptr<const TableMap> table;
  };

  // Checks the framing and the checksum of `data` (one whole top-level event) and returns in
  // *length_without_crc its length without the checksum.
  Status CheckEvent(std::string_view data, size_t* length_without_crc);
  // Unpacks a TRANSACTION_PAYLOAD body into payload_.
  Status UnpackPayload(std::string_view body);
  // Decodes one event (header + body, checksum already removed) into *event.
  Status DecodeOne(std::string_view data, Event* event);
  Status DecodeBody(const EventHeader& header, std::string_view body, Event* event);
  Status DecodeFormatDescription(std::string_view body, Event* event);
  Status DecodeQuery(std::string_view body, bool compressed, Event* event);
  Status DecodeTableMap(std::string_view body, Event* event);
  Status DecodeRows(uint8_t type, std::string_view body, Event* event);
  Status DecodeGtidTagged(std::string_view body, Event* event);
  // Inflates a MariaDB compressed block (header byte, big-endian length, zlib data) into
  // inflated_.
  Status Inflate(std::string_view block, const char* what);
  // Post-header length of `type` from the current FORMAT_DESCRIPTION (or the v4 default).
  uint8_t PostHeaderLength(uint8_t type) const;
  // "<file>:<offset> <EVENT_NAME>: <what>" for the event being decoded.
  Status Corrupt(std::string_view what) const;
  Status Unsupported(std::string_view what) const;

  DecoderOptions options_;
  FormatDescriptionEvent format_;
  bool permuted_types_ = false;  // a pre-GA 5.1/5.2 binlog with the old type numbering
  // The table maps by table id (one shared_ptr per id, replaced by a differing TABLE_MAP).
  std::unordered_map<uint64_t, CachedTable> table_cache_;
  bool statement_ended_ = true;  // the last ROWS event had STMT_END_F (maps may be dropped)
  // The event Feed took, waiting for Next; `pending_length_` excludes the checksum.
  RawEvent pending_;
  size_t pending_length_ = 0;
  bool has_pending_ = false;
  std::string_view raw_event_;  // see raw_event()
  // An unpacked TRANSACTION_PAYLOAD: its bytes and the offset of the next inner event.
  std::string payload_;
  size_t payload_offset_ = 0;
  bool in_payload_ = false;
  BinlogPosition payload_position_;
  uint64_t payload_next_offset_ = 0;
  std::unique_ptr<ZstdContext> zstd_;
  // Inflated MariaDB compressed event bodies live here until the next Feed.
  std::string inflated_;
  // The event being decoded, for error messages.
  std::string_view cur_file_;
  uint64_t cur_offset_ = 0;
  uint8_t cur_type_ = 0;
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
