// Source positions: where a change came from in the primary's binary log.
//
// BinlogPosition is a binlog file name and a 64-bit byte offset in it; its text form is
// "binlog.000001:1234". Gtid is one global transaction id in either flavour: MariaDB
// "domain-server-sequence" (0-1-5) or MySQL "uuid:number" / tagged "uuid:tag:number".
// Every type here has Parse/ToString round trips and a total order.
// Thread-safety: value types.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "sync/status.h"

namespace replsync {

struct BinlogPosition {
  std::string file;     // e.g. "binlog.000001"; empty means "unknown"
  uint64_t offset = 0;  // byte offset in that file

  // Parses "FILE:OFFSET". The file name may itself contain ':'; the last one separates.
  static Result<BinlogPosition> Parse(std::string_view text);
  std::string ToString() const;
  bool empty() const { return file.empty(); }

  // Binlog files sort by their numeric extension (binlog.000010 after binlog.000009), then by
  // offset. Files with different base names compare by name.
  std::strong_ordering operator<=>(const BinlogPosition& other) const;
  bool operator==(const BinlogPosition& other) const = default;
};

// Splits "base.000123" into ("base", 123). Returns false when there is no numeric extension.
bool SplitBinlogFileName(std::string_view name, std::string_view* base, uint64_t* index);

struct Gtid {
  enum class Flavor : uint8_t { kNone, kMariadb, kMysql };

  Flavor flavor = Flavor::kNone;
  // MariaDB
  uint32_t domain_id = 0;
  uint32_t server_id = 0;
  // MySQL: source uuid (16 bytes) and optional tag (MySQL 8.4+ tagged GTIDs, lower case)
  std::array<uint8_t, 16> uuid{};
  std::string tag;
  // MariaDB sequence number, or MySQL transaction number (gno)
  uint64_t sequence = 0;

  static Gtid Mariadb(uint32_t domain, uint32_t server, uint64_t seq);
  static Gtid Mysql(const std::array<uint8_t, 16>& uuid, std::string tag, uint64_t gno);
  // Accepts "0-1-5", "3E11FA47-71CA-11E1-9E33-C80AA9429562:23" and "uuid:tag:23".
  static Result<Gtid> Parse(std::string_view text);
  // MariaDB "0-1-5"; MySQL lower-case "uuid:23" or "uuid:tag:23"; "" for kNone.
  std::string ToString() const;
  bool empty() const { return flavor == Flavor::kNone; }
  bool operator==(const Gtid& other) const = default;
};

// Formats 16 bytes as the canonical 8-4-4-4-12 lower-case uuid text.
std::string FormatUuid(const std::array<uint8_t, 16>& uuid);
// Parses canonical uuid text (either case, with dashes).
bool ParseUuid(std::string_view text, std::array<uint8_t, 16>* uuid);

}  // namespace replsync
