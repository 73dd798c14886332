// TableMap: a table's column layout as a TABLE_MAP_EVENT describes it, with every optional
// metadata field (binlog_row_metadata=FULL / MINIMAL) resolved per column.
//
// MySQL docs: "Table_map_event" in libbinlogevents (rows_event.h), optional metadata types
// 1..13 (SIGNEDNESS .. VECTOR_DIMENSIONALITY); MariaDB KB "Table_map_event".
// Thread-safety: immutable once built; shared as shared_ptr<const TableMap>.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace replsync::capture {

// MySQL enum_field_types as they appear in TABLE_MAP column type bytes.
enum class ColumnType : uint8_t {
  kDecimal = 0,
  kTiny = 1,
  kShort = 2,
  kLong = 3,
  kFloat = 4,
  kDouble = 5,
  kNull = 6,
  kTimestamp = 7,
  kLongLong = 8,
  kInt24 = 9,
  kDate = 10,
  kTime = 11,
  kDateTime = 12,
  kYear = 13,
  kNewDate = 14,
  kVarchar = 15,
  kBit = 16,
  kTimestamp2 = 17,
  kDateTime2 = 18,
  kTime2 = 19,
  kTypedArray = 20,
  kVarcharCompressed = 140,  // MariaDB COMPRESSED columns (10.3+): metadata as VARCHAR
  kBlobCompressed = 141,     // ... as BLOB
  kVector = 242,
  kInvalid = 243,
  kBool = 244,
  kJson = 245,
  kNewDecimal = 246,
  kEnum = 247,
  kSet = 248,
  kTinyBlob = 249,
  kMediumBlob = 250,
  kLongBlob = 251,
  kBlob = 252,
  kVarString = 253,
  kString = 254,
  kGeometry = 255,
};

// "INT", "VARCHAR", ... for the text dump and errors.
const char* ColumnTypeName(ColumnType type);

constexpr uint32_t kBinaryCollation = 63;

struct ColumnDef {
  // The type as binlogged. For MYSQL_TYPE_STRING columns that are really ENUM or SET, the real
  // type is taken from the metadata (first byte) and stored here; `meta` is then the length.
  ColumnType type = ColumnType::kNull;
  // Type metadata from the table map, normalised to one 16-bit value:
  //   FLOAT/DOUBLE/BLOB/GEOMETRY/JSON/VECTOR: byte count of the length prefix (or of the value);
  //   VARCHAR/VAR_STRING: maximum length in bytes; STRING: maximum length in bytes (decoded from
  //   the packed two bytes); NEWDECIMAL: precision << 8 | scale; BIT: bits (bytes*8 + bits);
  //   TIME2/DATETIME2/TIMESTAMP2: fractional digits; ENUM/SET: storage size in bytes.
  uint16_t meta = 0;
  bool nullable = true;
  // From optional metadata SIGNEDNESS; false when the table map has none (then integers are
  // shown signed, as mysqlbinlog does).
  bool is_unsigned = false;
  // Collation id from DEFAULT_CHARSET / COLUMN_CHARSET (or the ENUM/SET ones); 0 when unknown.
  uint32_t collation = 0;
  std::string name;                      // COLUMN_NAME; empty when not logged
  std::vector<std::string> enum_values;  // ENUM_STR_VALUE / SET_STR_VALUE labels, in order
  uint32_t geometry_type = 0;            // GEOMETRY_TYPE
  uint32_t vector_dimensions = 0;        // VECTOR_DIMENSIONALITY
  bool visible = true;                   // COLUMN_VISIBILITY
  bool operator==(const ColumnDef&) const = default;

  bool is_text() const;       // a character column whose collation is not binary
  bool is_numeric() const;    // integer, decimal or floating-point type
};

struct TableMap {
  uint64_t table_id = 0;
  uint16_t flags = 0;
  std::string db;
  std::string table;
  std::vector<ColumnDef> columns;
  // SIMPLE_PRIMARY_KEY / PRIMARY_KEY_WITH_PREFIX: column indexes of the primary key, in key
  // order; `primary_key_prefix` holds the prefix length per key column (0 = whole column).
  std::vector<uint32_t> primary_key;
  std::vector<uint32_t> primary_key_prefix;
  bool has_optional_metadata = false;
  bool operator==(const TableMap&) const = default;
};

}  // namespace replsync::capture
