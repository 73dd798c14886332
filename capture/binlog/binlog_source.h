// BinlogSource: where raw binlog events come from (a live server or binlog files).
//
// A source hands out whole events, header to checksum, exactly as they are in the binary log;
// it does not interpret them beyond what it needs to frame them. Verifying checksums and decoding
// is BinlogDecoder's work, so every downstream stage runs the same from a server or from files.
// Thread-safety: not thread-safe; one reader at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sync/status.h"

namespace replsync::capture {

struct RawEvent {
  // The whole event: 19-byte common header, body, and the 4-byte checksum when the binlog has
  // one. Valid until the next call to BinlogSource::Next.
  std::string_view data;
  // The binlog file this event belongs to, and the 64-bit offset of its first byte in that file.
  // For events a server sends that are not in any file (artificial ROTATE, heartbeats, the
  // FORMAT_DESCRIPTION resent after a reconnect) `offset` is the current position, unchanged.
  std::string_view file;
  uint64_t offset = 0;
  // Offset just after this event in `file` (where reading resumes).
  uint64_t next_offset = 0;
};

class BinlogSource {
 public:
  virtual ~BinlogSource() = default;

  // Reads the next event into *event. Returns true when an event was read, false at the end of
  // the input (all files read; a non-blocking server dump that reached the end). Errors: IoError
  // and Network (retryable) for failed reads, Corruption for bytes that cannot be framed
  // (bad magic, an event length shorter than a header or past the end of the file), NotFound for
  // a missing file or a purged binlog.
  virtual Result<bool> Next(RawEvent* event) = 0;

  // A short description for logs and errors: "file /tmp/binlog.000001", "server 127.0.0.1:3306".
  virtual std::string Describe() const = 0;
};

}  // namespace replsync::capture
