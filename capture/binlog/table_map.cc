#include "capture/binlog/table_map.h"

namespace replsync::capture {
namespace {

// MariaDB column types for compressed columns (MariaDB enum_field_types; not in MySQL).
constexpr uint8_t kMariadbVarcharCompressed = 140;
constexpr uint8_t kMariadbBlobCompressed = 141;

}  // namespace

const char* ColumnTypeName(ColumnType type) {
  // clang-format off
  switch (type) {
    case ColumnType::kDecimal: return "OLD_DECIMAL";
    case ColumnType::kTiny: return "TINYINT";
    case ColumnType::kShort: return "SMALLINT";
    case ColumnType::kLong: return "INT";
    case ColumnType::kFloat: return "FLOAT";
    case ColumnType::kDouble: return "DOUBLE";
    case ColumnType::kNull: return "NULL";
    case ColumnType::kTimestamp: return "TIMESTAMP";
    case ColumnType::kLongLong: return "BIGINT";
    case ColumnType::kInt24: return "MEDIUMINT";
    case ColumnType::kDate: return "DATE";
    case ColumnType::kTime: return "TIME";
    case ColumnType::kDateTime: return "DATETIME";
    case ColumnType::kYear: return "YEAR";
    case ColumnType::kNewDate: return "NEWDATE";
    case ColumnType::kVarchar: return "VARCHAR";
    case ColumnType::kBit: return "BIT";
    case ColumnType::kTimestamp2: return "TIMESTAMP2";
    case ColumnType::kDateTime2: return "DATETIME2";
    case ColumnType::kTime2: return "TIME2";
    case ColumnType::kTypedArray: return "TYPED_ARRAY";
    case ColumnType::kVector: return "VECTOR";
    case ColumnType::kInvalid: return "INVALID";
    case ColumnType::kBool: return "BOOL";
    case ColumnType::kJson: return "JSON";
    case ColumnType::kNewDecimal: return "DECIMAL";
    case ColumnType::kEnum: return "ENUM";
    case ColumnType::kSet: return "SET";
    case ColumnType::kTinyBlob: return "TINYBLOB";
    case ColumnType::kMediumBlob: return "MEDIUMBLOB";
    case ColumnType::kLongBlob: return "LONGBLOB";
    case ColumnType::kBlob: return "BLOB";
    case ColumnType::kVarString: return "VAR_STRING";
    case ColumnType::kString: return "CHAR";
    case ColumnType::kGeometry: return "GEOMETRY";
    case ColumnType::kVarcharCompressed: return "VARCHAR_COMPRESSED";
    case ColumnType::kBlobCompressed: return "BLOB_COMPRESSED";
  }
  // clang-format on
  return "UNKNOWN";
}

bool ColumnDef::is_text() const {
  switch (static_cast<uint8_t>(type)) {
    case static_cast<uint8_t>(ColumnType::kString):
    case static_cast<uint8_t>(ColumnType::kVarchar):
    case static_cast<uint8_t>(ColumnType::kVarString):
    case kMariadbVarcharCompressed:
      // CHAR/VARCHAR without charset metadata are taken as text (the binary ones are the
      // exception and are logged with collation 63 when metadata is present).
      return collation != kBinaryCollation;
    case static_cast<uint8_t>(ColumnType::kTinyBlob):
    case static_cast<uint8_t>(ColumnType::kMediumBlob):
    case static_cast<uint8_t>(ColumnType::kLongBlob):
    case static_cast<uint8_t>(ColumnType::kBlob):
    case kMariadbBlobCompressed:
      // Without charset metadata BLOB and TEXT cannot be told apart: treated as binary.
      return collation != 0 && collation != kBinaryCollation;
    default:
      return false;
  }
}

bool ColumnDef::is_numeric() const {
  switch (type) {
    case ColumnType::kDecimal:
    case ColumnType::kTiny:
    case ColumnType::kShort:
    case ColumnType::kLong:
    case ColumnType::kFloat:
    case ColumnType::kDouble:
    case ColumnType::kLongLong:
    case ColumnType::kInt24:
    case ColumnType::kNewDecimal:
      return true;
    default:
      return false;
  }
}

}  // namespace replsync::capture
