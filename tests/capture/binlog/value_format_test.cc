#include "capture/binlog/value_format.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <time.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>

namespace replsync::cli {

using capture::AppendBase64;
using capture::AppendJsonString;
using capture::AppendSqlIdentifier;
using capture::AppendSqlString;
using capture::AppendUtcDateTime;
using capture::TextBuffer;
using capture::ValueFormatter;
namespace {

using capture::ColumnDef;
using capture::ColumnType;
using capture::RowImage;
using capture::TableMap;
using capture::Value;
using capture::ValueKind;

constexpr uint32_t kUtf8mb4 = 45;  // utf8mb4_general_ci
constexpr uint32_t kLatin1 = 8;    // latin1_swedish_ci

Value Int(int64_t v) {
  Value value;
  value.kind = ValueKind::kInt;
  value.i = v;
  return value;
}
Value UInt(uint64_t v, ValueKind kind = ValueKind::kUInt) {
  Value value;
  value.kind = kind;
  value.u = v;
  return value;
}
Value Bytes(ValueKind kind, std::string_view bytes) {
  Value value;
  value.kind = kind;
  value.bytes = bytes;
  return value;
}
Value DateTime(ValueKind kind, uint16_t y, uint8_t mo, uint8_t d, uint8_t h, uint8_t mi, uint8_t s,
               uint32_t micro, uint8_t decimals) {
  Value value;
  value.kind = kind;
  value.decimals = decimals;
  value.dt = {y, mo, d, h, mi, s, micro};
  return value;
}
Value Time(bool negative, uint32_t hours, uint8_t mi, uint8_t s, uint32_t micro, uint8_t decimals) {
  Value value;
  value.kind = ValueKind::kTime;
  value.decimals = decimals;
  value.tm = {negative, hours, mi, s, micro};
  return value;
}
Value Timestamp(int64_t seconds, uint32_t micro, uint8_t decimals) {
  Value value;
  value.kind = ValueKind::kTimestamp;
  value.decimals = decimals;
  value.ts = {seconds, micro};
  return value;
}

ColumnDef Column(ColumnType type, uint32_t collation = kUtf8mb4, std::string name = "") {
  ColumnDef column;
  column.type = type;
  column.collation = collation;
  column.name = std::move(name);
  return column;
}

class ValueFormatTest : public ::testing::Test {
 protected:
  std::string Json(const Value& value, const ColumnDef& column = ColumnDef(),
                   const Value* before = nullptr) {
    TextBuffer out;
    Status st = formatter_.AppendJson(column, value, before, &out);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out.str();
  }
  std::string Sql(const Value& value, const ColumnDef& column = ColumnDef(),
                  const Value* before = nullptr) {
    TextBuffer out;
    Status st = formatter_.AppendSql(column, value, before, &out);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return out.str();
  }
  ValueFormatter formatter_;
};

TEST_F(ValueFormatTest, IntegersCoverTheFull64BitRange) {
  EXPECT_EQ(Json(Int(std::numeric_limits<int64_t>::min())), "-9223372036854775808");
  EXPECT_EQ(Json(Int(std::numeric_limits<int64_t>::max())), "9223372036854775807");
  EXPECT_EQ(Json(Int(-1)), "-1");
  EXPECT_EQ(Json(UInt(std::numeric_limits<uint64_t>::max())), "18446744073709551615");
  EXPECT_EQ(Json(UInt(0)), "0");
  EXPECT_EQ(Sql(Int(std::numeric_limits<int64_t>::min())), "-9223372036854775808");
  EXPECT_EQ(Sql(UInt(std::numeric_limits<uint64_t>::max())), "18446744073709551615");
}

TEST_F(ValueFormatTest, LargeIntegersParseAsExactJsonIntegers) {
  std::string line = "[" + Json(UInt(std::numeric_limits<uint64_t>::max())) + "," +
                     Json(Int(std::numeric_limits<int64_t>::min())) + "]";
  rapidjson::Document doc;
  doc.Parse(line.c_str());
  ASSERT_FALSE(doc.HasParseError()) << line;
  EXPECT_TRUE(doc[0].IsUint64());
  EXPECT_EQ(doc[0].GetUint64(), std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(doc[1].IsInt64());
  EXPECT_EQ(doc[1].GetInt64(), std::numeric_limits<int64_t>::min());
}

TEST_F(ValueFormatTest, DecimalIsAStringOfExactDigits) {
  EXPECT_EQ(Json(Bytes(ValueKind::kDecimal, "-999.99")), "\"-999.99\"");
  EXPECT_EQ(Json(Bytes(ValueKind::kDecimal, "0.00000")), "\"0.00000\"");
  EXPECT_EQ(Json(Bytes(ValueKind::kDecimal, "12345678901234567890123456789012345.123456789")),
            "\"12345678901234567890123456789012345.123456789\"");
  EXPECT_EQ(Sql(Bytes(ValueKind::kDecimal, "-999.99")), "-999.99");
}

TEST_F(ValueFormatTest, FloatsUseShortestRoundTripText) {
  Value f;
  f.kind = ValueKind::kFloat;
  f.f = 3.14f;
  EXPECT_EQ(Json(f), "3.14");
  f.f = -0.5f;
  EXPECT_EQ(Json(f), "-0.5");
  f.f = 16777216.0f;
  EXPECT_EQ(Json(f), "16777216");
  Value d;
  d.kind = ValueKind::kDouble;
  d.d = 0.1;
  EXPECT_EQ(Json(d), "0.1");
  d.d = 1e300;
  EXPECT_EQ(Json(d), "1e+300");
  d.d = -2.5;
  EXPECT_EQ(Sql(d), "-2.5");
  // The text is the double's shortest round trip: parsing gives the same bits back.
  d.d = 0.30000000000000004;
  rapidjson::Document doc;
  std::string text = Json(d);
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(text.c_str());
  ASSERT_TRUE(doc.IsDouble()) << text;
  EXPECT_EQ(doc.GetDouble(), 0.30000000000000004);
}

TEST_F(ValueFormatTest, NonFiniteFloatsAreStrings) {
  Value d;
  d.kind = ValueKind::kDouble;
  d.d = std::numeric_limits<double>::infinity();
  EXPECT_EQ(Json(d), "\"inf\"");
  d.d = -std::numeric_limits<double>::infinity();
  EXPECT_EQ(Json(d), "\"-inf\"");
  d.d = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(Json(d), "\"nan\"");
}

TEST_F(ValueFormatTest, DatesAndDateTimesUseColumnFractionDigits) {
  EXPECT_EQ(Json(DateTime(ValueKind::kDate, 2024, 2, 29, 0, 0, 0, 0, 0)), "\"2024-02-29\"");
  EXPECT_EQ(Json(DateTime(ValueKind::kDate, 0, 0, 0, 0, 0, 0, 0, 0)), "\"0000-00-00\"");
  EXPECT_EQ(Json(DateTime(ValueKind::kDateTime, 2024, 2, 29, 12, 34, 56, 123400, 6)),
            "\"2024-02-29 12:34:56.123400\"");
  EXPECT_EQ(Json(DateTime(ValueKind::kDateTime, 2024, 2, 29, 12, 34, 56, 123400, 4)),
            "\"2024-02-29 12:34:56.1234\"");
  EXPECT_EQ(Json(DateTime(ValueKind::kDateTime, 2024, 2, 29, 12, 34, 56, 0, 0)),
            "\"2024-02-29 12:34:56\"");
  EXPECT_EQ(Json(DateTime(ValueKind::kDateTime, 0, 0, 0, 0, 0, 0, 0, 0)),
            "\"0000-00-00 00:00:00\"");
  EXPECT_EQ(Json(DateTime(ValueKind::kDateTime, 9999, 12, 31, 23, 59, 59, 999999, 6)),
            "\"9999-12-31 23:59:59.999999\"");
  EXPECT_EQ(Json(DateTime(ValueKind::kDateTime, 1, 1, 1, 0, 0, 0, 5, 6)),
            "\"0001-01-01 00:00:00.000005\"");
  EXPECT_EQ(Sql(DateTime(ValueKind::kDate, 1999, 12, 31, 0, 0, 0, 0, 0)), "'1999-12-31'");
}

TEST_F(ValueFormatTest, TimesKeepSignHoursAndFraction) {
  EXPECT_EQ(Json(Time(true, 838, 59, 58, 999999, 6)), "\"-838:59:58.999999\"");
  EXPECT_EQ(Json(Time(false, 838, 59, 59, 0, 0)), "\"838:59:59\"");
  EXPECT_EQ(Json(Time(false, 0, 0, 0, 0, 0)), "\"00:00:00\"");
  EXPECT_EQ(Json(Time(true, 507, 48, 27, 0, 0)), "\"-507:48:27\"");
  EXPECT_EQ(Json(Time(true, 0, 0, 1, 500000, 1)), "\"-00:00:01.5\"");
  EXPECT_EQ(Json(Time(false, 1, 2, 3, 450000, 3)), "\"01:02:03.450\"");
  EXPECT_EQ(Sql(Time(true, 12, 0, 0, 0, 0)), "'-12:00:00'");
}

TEST_F(ValueFormatTest, TimestampsPrintInUtcWithFraction) {
  EXPECT_EQ(Json(Timestamp(1709210096, 123400, 6)), "\"2024-02-29 12:34:56.123400\"");
  EXPECT_EQ(Json(Timestamp(1709210096, 123400, 2)), "\"2024-02-29 12:34:56.12\"");
  EXPECT_EQ(Json(Timestamp(2147483647, 0, 0)), "\"2038-01-19 03:14:07\"");
  EXPECT_EQ(Json(Timestamp(4294967295, 0, 0)), "\"2106-02-07 06:28:15\"");
  EXPECT_EQ(Json(Timestamp(1, 0, 0)), "\"1970-01-01 00:00:01\"");
  EXPECT_EQ(Json(Timestamp(0, 500000, 1)), "\"1970-01-01 00:00:00.5\"");
}

TEST_F(ValueFormatTest, ZeroTimestampIsTheZeroDate) {
  EXPECT_EQ(Json(Timestamp(0, 0, 0)), "\"0000-00-00 00:00:00\"");
  EXPECT_EQ(Json(Timestamp(0, 0, 3)), "\"0000-00-00 00:00:00.000\"");
  EXPECT_EQ(Sql(Timestamp(0, 0, 0)), "'0000-00-00 00:00:00'");
}

TEST_F(ValueFormatTest, UtcCalendarMatchesGmtime) {
  // Compare the civil-from-days arithmetic with the C library over many instants, including
  // leap days, century years and instants before the epoch.
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> dist(-62135596800LL, 253402300799LL);  // 0001..9999
  for (int i = 0; i < 20000; ++i) {
    int64_t seconds = i < 10 ? 951782400 + (i - 5) * 43200 : dist(rng);  // around 2000-02-29
    if (seconds == 0) continue;
    time_t t = static_cast<time_t>(seconds);
    struct tm tm;
    ASSERT_NE(gmtime_r(&t, &tm), nullptr);
    char expected[64];
    std::snprintf(expected, sizeof(expected), "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    TextBuffer got;
    AppendUtcDateTime(seconds, 0, 0, &got);
    ASSERT_EQ(got.view(), expected) << seconds;
  }
}

TEST_F(ValueFormatTest, YearIsAnInteger) {
  Value y;
  y.kind = ValueKind::kYear;
  y.i = 2024;
  EXPECT_EQ(Json(y), "2024");
  y.i = 0;
  EXPECT_EQ(Json(y), "0");
}

TEST_F(ValueFormatTest, BitIsAnUnsignedIntegerUpTo64Bits) {
  EXPECT_EQ(Json(UInt(std::numeric_limits<uint64_t>::max(), ValueKind::kBit)),
            "18446744073709551615");
  EXPECT_EQ(Json(UInt(5, ValueKind::kBit)), "5");
  ColumnDef bit3 = Column(ColumnType::kBit);
  bit3.meta = 3;
  EXPECT_EQ(Sql(UInt(5, ValueKind::kBit), bit3), "b'101'");
  EXPECT_EQ(Sql(UInt(1, ValueKind::kBit), bit3), "b'001'");
  ColumnDef bit64 = Column(ColumnType::kBit);
  bit64.meta = 64;
  EXPECT_EQ(Sql(UInt(std::numeric_limits<uint64_t>::max(), ValueKind::kBit), bit64),
            "b'" + std::string(64, '1') + "'");
}

TEST_F(ValueFormatTest, EnumPrintsItsLabel) {
  ColumnDef column = Column(ColumnType::kEnum);
  column.enum_values = {"small", "medium", "it's \"large\""};
  EXPECT_EQ(Json(UInt(1, ValueKind::kEnum), column), "\"small\"");
  EXPECT_EQ(Json(UInt(3, ValueKind::kEnum), column), "\"it's \\\"large\\\"\"");
  EXPECT_EQ(Sql(UInt(3, ValueKind::kEnum), column), "'it\\'s \"large\"'");
}

TEST_F(ValueFormatTest, EnumIndexZeroIsEmptyAndMissingLabelsFallBackToTheNumber) {
  ColumnDef column = Column(ColumnType::kEnum);
  column.enum_values = {"a", "b"};
  EXPECT_EQ(Json(UInt(0, ValueKind::kEnum), column), "\"\"");
  EXPECT_EQ(Sql(UInt(0, ValueKind::kEnum), column), "''");
  EXPECT_EQ(Json(UInt(3, ValueKind::kEnum), column), "3");
  ColumnDef unlabelled = Column(ColumnType::kEnum);
  EXPECT_EQ(Json(UInt(2, ValueKind::kEnum), unlabelled), "2");
  EXPECT_EQ(Sql(UInt(2, ValueKind::kEnum), unlabelled), "2");
}

TEST_F(ValueFormatTest, SetPrintsAnArrayOfLabels) {
  ColumnDef column = Column(ColumnType::kSet);
  column.enum_values = {"a", "b", "c"};
  EXPECT_EQ(Json(UInt(5, ValueKind::kSet), column), "[\"a\",\"c\"]");
  EXPECT_EQ(Json(UInt(0, ValueKind::kSet), column), "[]");
  EXPECT_EQ(Json(UInt(7, ValueKind::kSet), column), "[\"a\",\"b\",\"c\"]");
  EXPECT_EQ(Sql(UInt(5, ValueKind::kSet), column), "'a,c'");
  EXPECT_EQ(Sql(UInt(0, ValueKind::kSet), column), "''");
}

TEST_F(ValueFormatTest, SetWithoutLabelsForEveryBitIsTheMask) {
  ColumnDef column = Column(ColumnType::kSet);
  EXPECT_EQ(Json(UInt(5, ValueKind::kSet), column), "5");
  column.enum_values = {"a", "b", "c"};
  EXPECT_EQ(Json(UInt(9, ValueKind::kSet), column), "9");
  ColumnDef wide = Column(ColumnType::kSet);
  for (int i = 0; i < 64; ++i) wide.enum_values.push_back(fmt::format("v{}", i));
  EXPECT_EQ(Json(UInt(uint64_t{1} << 63, ValueKind::kSet), wide), "[\"v63\"]");
}

TEST_F(ValueFormatTest, Latin1TextIsConvertedToUtf8) {
  ColumnDef column = Column(ColumnType::kVarchar, kLatin1);
  EXPECT_EQ(Json(Bytes(ValueKind::kString,
                       "caf\xe9 \xa3"
                       "5"),
                 column),
            "\"caf\xc3\xa9 \xc2\xa3"
            "5\"");
  EXPECT_EQ(Sql(Bytes(ValueKind::kString, "d\xe9j\xe0"), column), "'d\xc3\xa9j\xc3\xa0'");
  ColumnDef enum_column = Column(ColumnType::kEnum, kLatin1);
  enum_column.enum_values = {"\xe9t\xe9"};
  EXPECT_EQ(Json(UInt(1, ValueKind::kEnum), enum_column), "\"\xc3\xa9t\xc3\xa9\"");
}

TEST_F(ValueFormatTest, Utf8TextIsEscapedForJson) {
  ColumnDef column = Column(ColumnType::kVarchar);
  EXPECT_EQ(Json(Bytes(ValueKind::kString, "a\"b\\c\nd\te\x01\x7f"), column),
            "\"a\\\"b\\\\c\\nd\\te\\u0001\x7f\"");
  EXPECT_EQ(Json(Bytes(ValueKind::kString, "\xe2\x82\xac \xf0\x9f\x98\x80"), column),
            "\"\xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(Json(Bytes(ValueKind::kString, ""), column), "\"\"");
}

TEST_F(ValueFormatTest, InvalidUtf8BecomesReplacementCharacter) {
  ColumnDef column = Column(ColumnType::kVarchar);
  // A stray continuation byte, an overlong '/', a surrogate and a truncated sequence.
  std::string json = Json(Bytes(ValueKind::kString,
                                "a\x80"
                                "b\xc0\xaf"
                                "c\xed\xa0\x80"
                                "d\xe2\x82"),
                          column);
  EXPECT_EQ(json,
            "\"a\xef\xbf\xbd"
            "b\xef\xbf\xbd\xef\xbf\xbd"
            "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
            "d\xef\xbf\xbd\xef\xbf\xbd\"");
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(json.c_str());
  EXPECT_FALSE(doc.HasParseError());
}

// Random valid UTF-8 text mixing plain runs, characters that need escaping and multi-byte
// characters at every alignment, long enough to cross the formatter's 16 KiB chunks.
std::string RandomUtf8(std::mt19937* rng, size_t length) {
  static const char* const kPieces[] = {"a",
                                        "b",
                                        "0",
                                        "~",
                                        " ",
                                        "\"",
                                        "\\",
                                        "'",
                                        "\n",
                                        "\t",
                                        "NUL",
                                        "\x01",
                                        "\x1a",
                                        "\x1f",
                                        "\x7f",
                                        "\xc3\xa9",
                                        "\xe2\x82\xac",
                                        "\xf0\x9f\x98\x80"};
  std::uniform_int_distribution<int> piece(0, std::size(kPieces) - 1);
  std::uniform_int_distribution<int> plain_run(0, 40);
  std::string text;
  while (text.size() < length) {
    text.append(static_cast<size_t>(plain_run(*rng)), 'x');
    std::string_view p = kPieces[piece(*rng)];
    if (p == "NUL") {
      text.push_back('\0');
    } else {
      text.append(p);
    }
  }
  return text;
}

// Undoes AppendSqlString's escapes (the literal without its quotes).
std::string UnescapeSql(std::string_view literal) {
  std::string text;
  for (size_t i = 0; i < literal.size(); ++i) {
    if (literal[i] != '\\') {
      text.push_back(literal[i]);
      continue;
    }
    char c = literal[++i];
    text.push_back(c == '0'   ? '\0'
                   : c == 'n' ? '\n'
                   : c == 'r' ? '\r'
                   : c == 't' ? '\t'
                   : c == 'Z' ? '\x1a'
                              : c);
  }
  return text;
}

TEST_F(ValueFormatTest, EscapingRoundTripsAtEveryAlignmentAndLength) {
  std::mt19937 rng(7);
  for (size_t length : {0, 1, 7, 8, 15, 16, 17, 31, 100, 1000, 16383, 16384, 40000}) {
    for (int round = 0; round < 5; ++round) {
      std::string text = RandomUtf8(&rng, length);
      TextBuffer json;
      AppendJsonString(text, &json);
      rapidjson::Document doc;
      doc.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
      ASSERT_FALSE(doc.HasParseError()) << length;
      ASSERT_TRUE(doc.IsString());
      ASSERT_EQ(std::string(doc.GetString(), doc.GetStringLength()), text) << length;
      for (char c : json.view()) ASSERT_GE(static_cast<unsigned char>(c), 0x20) << length;
      TextBuffer sql;
      AppendSqlString(text, &sql);
      std::string_view literal = sql.view();
      ASSERT_GE(literal.size(), 2u);
      ASSERT_EQ(UnescapeSql(literal.substr(1, literal.size() - 2)), text) << length;
    }
  }
}

TEST_F(ValueFormatTest, SqlStringsUseBackslashEscapes) {
  ColumnDef column = Column(ColumnType::kVarchar);
  EXPECT_EQ(Sql(Bytes(ValueKind::kString, std::string_view("it's\\\n\r\t\x1a\0x", 11)), column),
            "'it\\'s\\\\\\n\\r\\t\\Z\\0x'");
}

TEST_F(ValueFormatTest, BinaryIsBase64EvenWithZeroBytes) {
  std::string_view bytes("\0\x01\x02\xff\0", 5);
  ColumnDef column = Column(ColumnType::kBlob, capture::kBinaryCollation);
  EXPECT_EQ(Json(Bytes(ValueKind::kBinary, bytes), column), "{\"base64\":\"AAEC/wA=\"}");
  EXPECT_EQ(Json(Bytes(ValueKind::kBinary, ""), column), "{\"base64\":\"\"}");
  EXPECT_EQ(Sql(Bytes(ValueKind::kBinary, bytes), column), "X'000102FF00'");
  EXPECT_EQ(Sql(Bytes(ValueKind::kBinary, ""), column), "X''");
}

TEST_F(ValueFormatTest, Base64MatchesRfc4648Vectors) {
  const char* vectors[][2] = {{"", ""},
                              {"f", "Zg=="},
                              {"fo", "Zm8="},
                              {"foo", "Zm9v"},
                              {"foob", "Zm9vYg=="},
                              {"fooba", "Zm9vYmE="},
                              {"foobar", "Zm9vYmFy"}};
  for (const auto& v : vectors) {
    TextBuffer out;
    AppendBase64(v[0], &out);
    EXPECT_EQ(out.view(), v[1]) << v[0];
  }
}

TEST_F(ValueFormatTest, GeometryIsBase64OfSridAndWkb) {
  // SRID 0, WKB POINT(1 2) little-endian.
  std::string bytes("\0\0\0\0\x01\x01\0\0\0", 9);
  bytes.append("\0\0\0\0\0\0\xf0\x3f", 8);
  bytes.append("\0\0\0\0\0\0\0\x40", 8);
  EXPECT_EQ(Json(Bytes(ValueKind::kGeometry, bytes)),
            "{\"base64\":\"AAAAAAEBAAAAAAAAAAAA8D8AAAAAAAAAQA==\"}");
}

TEST_F(ValueFormatTest, VectorIsAnArrayOfFloats) {
  std::string bytes;
  for (float f : {1.5f, -2.0f, 0.1f}) {
    uint32_t bits = std::bit_cast<uint32_t>(f);
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>(bits >> (8 * i)));
  }
  EXPECT_EQ(Json(Bytes(ValueKind::kVector, bytes)), "[1.5,-2,0.1]");
  EXPECT_EQ(Sql(Bytes(ValueKind::kVector, bytes)), "'[1.5,-2,0.1]'");
  EXPECT_EQ(Json(Bytes(ValueKind::kVector, "")), "[]");
}

TEST_F(ValueFormatTest, VectorOfPartialFloatIsCorruption) {
  TextBuffer out;
  Status st = formatter_.AppendJson(ColumnDef(), Bytes(ValueKind::kVector, "abcde"), nullptr, &out);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
}

TEST_F(ValueFormatTest, NullIsNull) {
  EXPECT_EQ(Json(Value()), "null");
  EXPECT_EQ(Sql(Value()), "NULL");
}

TEST_F(ValueFormatTest, JsonIsInsertedAsRawJson) {
  // MySQL binary JSON for {"a":1}: small object, 1 member, 12 bytes; key entry (offset 11,
  // length 1); value entry int16 inlined = 1; key "a".
  std::string binary(
      "\x00\x01\x00\x0c\x00\x0b\x00\x01\x00\x05\x01\x00"
      "a",
      13);
  std::string json = Json(Bytes(ValueKind::kJson, binary), Column(ColumnType::kJson));
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  ASSERT_FALSE(doc.HasParseError()) << json;
  ASSERT_TRUE(doc.IsObject()) << json;
  ASSERT_TRUE(doc.HasMember("a"));
  EXPECT_EQ(doc["a"].GetInt(), 1);
  // In SQL the document is a quoted string.
  std::string sql = Sql(Bytes(ValueKind::kJson, binary), Column(ColumnType::kJson));
  EXPECT_EQ(sql.front(), '\'');
  EXPECT_EQ(sql.substr(1, sql.size() - 2), json);
}

TEST_F(ValueFormatTest, JsonLiteralIsInsertedAsRawJson) {
  EXPECT_EQ(Json(Bytes(ValueKind::kJson, std::string_view("\x04\x01", 2))), "true");
  EXPECT_EQ(Json(Bytes(ValueKind::kJson, std::string_view("\x04\x00", 2))), "null");
}

// PARTIAL_UPDATE_ROWS diff: REPLACE (0) at "$.age" (packed length 5) with binary JSON int16 26.
const std::string_view kReplaceAge("\x00\x05$.age\x03\x05\x1a\x00", 11);
// REMOVE (2) "$.a", then INSERT (1) "$.b" with the literal true.
const std::string_view kRemoveThenInsert("\x02\x03$.a\x01\x03$.b\x02\x04\x01", 13);

TEST_F(ValueFormatTest, JsonDiffWithoutBeforeDocumentListsTheOperations) {
  EXPECT_EQ(Json(Bytes(ValueKind::kJsonDiff, kReplaceAge)),
            "{\"json_diff\":[{\"op\":\"replace\",\"path\":\"$.age\",\"value\":26}]}");
  EXPECT_EQ(Json(Bytes(ValueKind::kJsonDiff, kRemoveThenInsert)),
            "{\"json_diff\":[{\"op\":\"remove\",\"path\":\"$.a\"},"
            "{\"op\":\"insert\",\"path\":\"$.b\",\"value\":true}]}");
}

TEST_F(ValueFormatTest, JsonDiffIsAppliedToTheBeforeDocument) {
  // {"a":1} (see JsonIsInsertedAsRawJson) with "$.a" replaced by 2.
  std::string before_binary(
      "\x00\x01\x00\x0c\x00\x0b\x00\x01\x00\x05\x01\x00"
      "a",
      13);
  Value before = Bytes(ValueKind::kJson, before_binary);
  std::string_view diff("\x00\x03$.a\x03\x05\x02\x00", 9);
  std::string json = Json(Bytes(ValueKind::kJsonDiff, diff), Column(ColumnType::kJson), &before);
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  ASSERT_FALSE(doc.HasParseError()) << json;
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("a")) << json;
  EXPECT_EQ(doc["a"].GetInt(), 2);
  EXPECT_EQ(doc.MemberCount(), 1u);
}

TEST_F(ValueFormatTest, MalformedJsonDiffIsCorruption) {
  TextBuffer out;
  Status st =
      formatter_.AppendJson(ColumnDef(), Bytes(ValueKind::kJsonDiff, "\x07"), nullptr, &out);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  st = formatter_.AppendJson(
      ColumnDef(), Bytes(ValueKind::kJsonDiff, std::string_view("\x00\x09$.a", 5)), nullptr, &out);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_EQ(out.view(), "");
}

TEST_F(ValueFormatTest, IdentifiersDoubleBackQuotes) {
  TextBuffer out;
  AppendSqlIdentifier("we`ird", &out);
  EXPECT_EQ(out.view(), "`we``ird`");
}

class ImageFormatTest : public ValueFormatTest {
 protected:
  void SetUp() override {
    table_.db = "shop";
    table_.table = "items";
    table_.columns = {Column(ColumnType::kLong, kUtf8mb4, "id"),
                      Column(ColumnType::kVarchar, kUtf8mb4, "name"),
                      Column(ColumnType::kNewDecimal, kUtf8mb4, "price")};
    image_.values = {Int(7), Bytes(ValueKind::kString, "pen"), Value()};
    image_.present = {true, true, true};
  }
  TableMap table_;
  RowImage image_;
};

TEST_F(ImageFormatTest, ColumnsAreKeyedByName) {
  TextBuffer out;
  ASSERT_TRUE(formatter_.AppendImageJson(table_, image_, nullptr, &out).ok());
  EXPECT_EQ(out.view(), "{\"id\":7,\"name\":\"pen\",\"price\":null}");
  out.clear();
  ASSERT_TRUE(formatter_.AppendImageSql(table_, image_, nullptr, false, &out).ok());
  EXPECT_EQ(out.view(), "`id`=7, `name`='pen', `price`=NULL");
  out.clear();
  ASSERT_TRUE(formatter_.AppendImageSql(table_, image_, nullptr, true, &out).ok());
  EXPECT_EQ(out.view(), "`id`=7 AND `name`='pen' AND `price` IS NULL");
}

TEST_F(ImageFormatTest, ColumnsWithoutNamesArePositions) {
  for (auto& column : table_.columns) column.name.clear();
  TextBuffer out;
  ASSERT_TRUE(formatter_.AppendImageJson(table_, image_, nullptr, &out).ok());
  EXPECT_EQ(out.view(), "{\"@1\":7,\"@2\":\"pen\",\"@3\":null}");
  out.clear();
  ASSERT_TRUE(formatter_.AppendImageSql(table_, image_, nullptr, false, &out).ok());
  EXPECT_EQ(out.view(), "@1=7, @2='pen', @3=NULL");
}

TEST_F(ImageFormatTest, ColumnsAbsentFromAPartialImageAreOmitted) {
  image_.present = {true, false, true};
  TextBuffer out;
  ASSERT_TRUE(formatter_.AppendImageJson(table_, image_, nullptr, &out).ok());
  EXPECT_EQ(out.view(), "{\"id\":7,\"price\":null}");
  image_.present = {false, false, false};
  out.clear();
  ASSERT_TRUE(formatter_.AppendImageJson(table_, image_, nullptr, &out).ok());
  EXPECT_EQ(out.view(), "{}");
}

TEST_F(ImageFormatTest, JsonDiffWithoutBeforeIsSqlFunctionCalls) {
  table_.columns.push_back(Column(ColumnType::kJson, kUtf8mb4, "doc"));
  image_.values.push_back(Bytes(ValueKind::kJsonDiff, kRemoveThenInsert));
  image_.present = {true, false, false, true};
  TextBuffer out;
  ASSERT_TRUE(formatter_.AppendImageSql(table_, image_, nullptr, false, &out).ok());
  EXPECT_EQ(out.view(),
            "`id`=7, `doc`=JSON_INSERT(JSON_REMOVE(`doc`, '$.a'), '$.b', CAST('true' AS JSON))");
}

TEST_F(ImageFormatTest, ErrorsNameTheColumn) {
  image_.values[2] = Bytes(ValueKind::kVector, "xyz");
  TextBuffer out;
  Status st = formatter_.AppendImageJson(table_, image_, nullptr, &out);
  ASSERT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("`shop`.`items`.price"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace replsync::cli
