// Value: one decoded column value of a row image, as a view.
//
// Values borrow their bytes from the event (or the decoder's scratch space) and are valid until
// the next event is read; copy what must outlive that. Each kind says which member holds it.
// Thread-safety: value type.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "capture/binlog/table_map.h"

namespace replsync::capture {

enum class ValueKind : uint8_t {
  kNull,
  kInt,        // i: TINYINT..BIGINT when signed
  kUInt,       // u: the same when unsigned
  kFloat,      // f
  kDouble,     // d
  kDecimal,    // bytes: exact digits as text, "-999.99" (scale digits always present)
  kDate,       // dt (time fields zero)
  kTime,       // tm; `decimals` fractional digits
  kDateTime,   // dt; `decimals`
  kTimestamp,  // ts: seconds since the epoch (UTC) and microseconds; `decimals`
  kYear,       // i: 0 or 1901..2155
  kBit,        // u: the bits as an unsigned integer (up to 64)
  kEnum,       // u: 1-based index into the column's labels; 0 is the '' error value
  kSet,        // u: bit mask over the column's labels
  kString,     // bytes: text in the column's character set (ColumnDef::collation)
  kBinary,     // bytes: BINARY/VARBINARY/BLOB and text columns with the binary collation
  kJson,       // bytes: MySQL binary JSON (MariaDB JSON is LONGTEXT and arrives as kString)
  kJsonDiff,   // bytes: a PARTIAL_UPDATE_ROWS JSON diff list (see json_binary.h)
  kGeometry,   // bytes: 4-byte SRID + WKB
  kVector,     // bytes: little-endian float32 values
};

struct DateTimeValue {
  uint16_t year;
  uint8_t month, day, hour, minute, second;
  uint32_t micro;
};

struct TimeValue {
  bool negative;
  uint32_t hours;  // may exceed 24 (up to 838, more in old TIME)
  uint8_t minute, second;
  uint32_t micro;
};

struct TimestampValue {
  int64_t seconds;
  uint32_t micro;
};

struct Value {
  ValueKind kind = ValueKind::kNull;
  uint8_t decimals = 0;  // fractional-second digits of TIME/DATETIME/TIMESTAMP (0..6)
  union {
    int64_t i;
    uint64_t u;
    float f;
    double d;
    DateTimeValue dt;
    TimeValue tm;
    TimestampValue ts;
  };
  std::string_view bytes;
  Value() : u(0) {}
};

// One row image: a value per table column. Columns not in the event's column bitmap
// (binlog_row_image=MINIMAL/NOBLOB) have present[i] == false and a kNull value.
struct RowImage {
  std::vector<Value> values;
  std::vector<bool> present;
};

}  // namespace replsync::capture
