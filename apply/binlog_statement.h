// BinlogStatementWriter: turns raw binlog events (TABLE_MAP, ROWS, FORMAT_DESCRIPTION) into
// `BINLOG '<base64>'` statements, the form in which the secondary's own server applies them
// (what mysqlbinlog prints; MariaDB KB "BINLOG"). Each event is encoded as its own base64 block,
// one per line, which the server's decoder accepts as several chunks.
//
// Size bound: a statement grows up to `max_statement_bytes` and is then cut at an event boundary.
// The server forgets the statement's table maps at the end of every BINLOG statement, and ROWS
// events whose table id has no map are skipped WITHOUT an error — so every statement after a cut
// starts with all TABLE_MAP events of the current binlog statement again (the set is reset at the
// first TABLE_MAP after a ROWS event with STMT_END_F). Several binlog statements (of one
// transaction) may share one BINLOG statement: that saves round trips on small transactions.
// An event larger than the bound gets a statement of its own (the server's max_allowed_packet
// must then admit it).
// Thread-safety: not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sync/status.h"

namespace replsync::apply {

constexpr uint8_t kTableMapEvent = 19;
// True for the ROWS event types: v0 (20-22), v1 (23-25), v2 (30-32), PARTIAL_UPDATE_ROWS (39)
// and MariaDB's compressed ones (166-171).
bool IsRowsEventType(uint8_t type);

class BinlogStatementWriter {
 public:
  // Receives each complete statement; the string is valid only during the call. A non-OK
  // Status stops the writer and is returned by Add/Flush.
  using Emit = std::function<Status(const std::string& sql)>;

  BinlogStatementWriter(size_t max_statement_bytes, Emit emit);

  // Adds one whole event (header to checksum). May emit the statement built so far.
  // InvalidArgument for a buffer shorter than an event header.
  Status Add(std::string_view event);
  // Emits what is pending (nothing when nothing is). Call at the end of a transaction (part)
  // and before anything else runs on the session.
  Status Flush();
  // Forgets the table maps (a new target transaction or session).
  void Reset();

  uint64_t statements_emitted() const { return statements_emitted_; }

  // `BINLOG '<base64 of event>'` for one event (the FORMAT_DESCRIPTION).
  static std::string ForEvent(std::string_view event);

 private:
  // Starts a statement: the prefix and every table map of the current binlog statement.
  void Start();
  void Append(const std::string& encoded);

  size_t max_bytes_;
  Emit emit_;
  std::string sql_;                      // the statement being built ("" when none)
  bool has_rows_ = false;                // sql_ holds at least one non-TABLE_MAP event
  std::vector<std::string> table_maps_;  // encoded TABLE_MAPs of the current binlog statement
  bool statement_ended_ = true;          // the last ROWS event had STMT_END_F
  std::string scratch_;
  uint64_t statements_emitted_ = 0;
};

}  // namespace replsync::apply
