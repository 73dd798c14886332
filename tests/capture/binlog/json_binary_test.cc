#include "capture/binlog/json_binary.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace replsync::capture {
namespace {

// A test-side writer of MySQL binary JSON (sql-common/json_binary.h layout), independent of the
// reader under test.
struct J {
  uint8_t type;
  std::string data;  // the value without its type byte
};

std::string Le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
  return s;
}

std::string VarLength(size_t n) {
  std::string s;
  do {
    uint8_t b = n & 0x7f;
    n >>= 7;
    if (n != 0) b |= 0x80;
    s.push_back(static_cast<char>(b));
  } while (n != 0);
  return s;
}

J Null() { return {0x04, std::string(1, '\x00')}; }
J True() { return {0x04, std::string(1, '\x01')}; }
J False() { return {0x04, std::string(1, '\x02')}; }
J Int16(int16_t v) { return {0x05, Le(static_cast<uint16_t>(v), 2)}; }
J Uint16(uint16_t v) { return {0x06, Le(v, 2)}; }
J Int32(int32_t v) { return {0x07, Le(static_cast<uint32_t>(v), 4)}; }
J Uint32(uint32_t v) { return {0x08, Le(v, 4)}; }
J Int64(int64_t v) { return {0x09, Le(static_cast<uint64_t>(v), 8)}; }
J Uint64(uint64_t v) { return {0x0a, Le(v, 8)}; }
J Double(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  return {0x0b, Le(bits, 8)};
}
J Str(std::string_view s) { return {0x0c, VarLength(s.size()) + std::string(s)}; }
J Opaque(uint8_t field_type, std::string_view payload) {
  return {0x0f, std::string(1, static_cast<char>(field_type)) + VarLength(payload.size()) +
                    std::string(payload)};
}

bool Inlined(uint8_t type, bool large) {
  return type == 0x04 || type == 0x05 || type == 0x06 || (large && (type == 0x07 || type == 0x08));
}

J Container(bool object, const std::vector<std::pair<std::string, J>>& items, bool large) {
  const size_t off = large ? 4 : 2;
  const size_t n = items.size();
  const size_t header = 2 * off + n * ((object ? off + 2 : 0) + 1 + off);
  std::string keys, values;
  std::string key_entries, value_entries;
  size_t pos = header;
  if (object) {
    for (const auto& [key, value] : items) {
      key_entries += Le(pos, static_cast<int>(off)) + Le(key.size(), 2);
      keys += key;
      pos += key.size();
    }
  }
  for (const auto& [key, value] : items) {
    value_entries.push_back(static_cast<char>(value.type));
    if (Inlined(value.type, large)) {
      std::string field = value.data;
      field.resize(off, '\0');
      value_entries += field;
    } else {
      value_entries += Le(pos, static_cast<int>(off));
      values += value.data;
      pos += value.data.size();
    }
  }
  std::string data = Le(n, static_cast<int>(off)) + Le(pos, static_cast<int>(off)) + key_entries +
                     value_entries + keys + values;
  return {static_cast<uint8_t>(object ? (large ? 0x01 : 0x00) : (large ? 0x03 : 0x02)), data};
}

J Obj(const std::vector<std::pair<std::string, J>>& members, bool large = false) {
  return Container(true, members, large);
}

J Arr(const std::vector<J>& elements, bool large = false) {
  std::vector<std::pair<std::string, J>> items;
  for (const J& e : elements) items.emplace_back("", e);
  return Container(false, items, large);
}

std::string Doc(const J& j) { return std::string(1, static_cast<char>(j.type)) + j.data; }

std::string Text(const std::string& binary) {
  std::string out;
  Status s = JsonBinaryToText(binary, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

Status TextError(const std::string& binary) {
  std::string out;
  return JsonBinaryToText(binary, &out);
}

TEST(JsonBinaryTest, LiteralsAndEmptyInput) {
  EXPECT_EQ(Text(""), "null");
  EXPECT_EQ(Text(Doc(Null())), "null");
  EXPECT_EQ(Text(Doc(True())), "true");
  EXPECT_EQ(Text(Doc(False())), "false");
}

TEST(JsonBinaryTest, IntegersOfEveryWidth) {
  EXPECT_EQ(Text(Doc(Int16(-32768))), "-32768");
  EXPECT_EQ(Text(Doc(Uint16(65535))), "65535");
  EXPECT_EQ(Text(Doc(Int32(-2147483647 - 1))), "-2147483648");
  EXPECT_EQ(Text(Doc(Uint32(4294967295u))), "4294967295");
  EXPECT_EQ(Text(Doc(Int64(INT64_MIN))), "-9223372036854775808");
  EXPECT_EQ(Text(Doc(Uint64(UINT64_MAX))), "18446744073709551615");
}

TEST(JsonBinaryTest, DoublesPrintLikeMysql) {
  EXPECT_EQ(Text(Doc(Double(1.5))), "1.5");
  EXPECT_EQ(Text(Doc(Double(1.0))), "1.0");
  EXPECT_EQ(Text(Doc(Double(100.0))), "100.0");
  EXPECT_EQ(Text(Doc(Double(0.0))), "0.0");
  EXPECT_EQ(Text(Doc(Double(-0.0))), "-0.0");
  EXPECT_EQ(Text(Doc(Double(0.1))), "0.1");
  EXPECT_EQ(Text(Doc(Double(-2.5))), "-2.5");
  EXPECT_EQ(Text(Doc(Double(3.141592653589793))), "3.141592653589793");
  EXPECT_EQ(Text(Doc(Double(1e300))), "1e300");
  EXPECT_EQ(Text(Doc(Double(-1.25e-300))), "-1.25e-300");
  EXPECT_EQ(Text(Doc(Double(1e15))), "1e15");
  EXPECT_EQ(Text(Doc(Double(1e14))), "100000000000000.0");
  EXPECT_EQ(Text(Doc(Double(123456789012345.6))), "123456789012345.6");
  EXPECT_EQ(Text(Doc(Double(1e-6))), "0.000001");
  EXPECT_EQ(Text(Doc(Double(1e-15))), "0.000000000000001");
  EXPECT_EQ(Text(Doc(Double(1e-16))), "1e-16");
  EXPECT_EQ(Text(Doc(Double(1.7976931348623157e308))), "1.7976931348623157e308");
  EXPECT_EQ(Text(Doc(Double(5e-324))), "5e-324");
}

TEST(JsonBinaryTest, StringsAreEscapedLikeMysql) {
  EXPECT_EQ(Text(Doc(Str("plain"))), "\"plain\"");
  EXPECT_EQ(Text(Doc(Str("q\"b\\s/\b\f\n\r\t"))), R"("q\"b\\s/\b\f\n\r\t")");
  EXPECT_EQ(Text(Doc(Str(std::string("\x00\x01\x1f\x7f", 4)))), "\"\\u0000\\u0001\\u001f\x7f\"");
  // Non-ASCII text is UTF-8 and stays as it is.
  EXPECT_EQ(Text(Doc(Str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"))),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  const std::string long_text(300, 'x');  // two-byte variable length
  EXPECT_EQ(Text(Doc(Str(long_text))), "\"" + long_text + "\"");
}

TEST(JsonBinaryTest, NestedSmallObjectAndArray) {
  J doc = Obj({{"a", Int16(1)},
               {"b", Arr({Int16(1), Str("two"), Null(), Obj({}), Arr({})})},
               {"cc", Obj({{"x", Double(2.5)}, {"y", False()}})}});
  EXPECT_EQ(Text(Doc(doc)),
            R"({"a": 1, "b": [1, "two", null, {}, []], "cc": {"x": 2.5, "y": false}})");
}

TEST(JsonBinaryTest, LargeFormatInlinesThirtyTwoBitIntegers) {
  J doc = Obj({{"big", Arr({Int32(-7), Uint32(4000000000u), Int16(3), True()}, true)},
               {"s", Str("v")},
               {"n", Int32(70000)}},
              true);
  EXPECT_EQ(Text(Doc(doc)), R"({"big": [-7, 4000000000, 3, true], "s": "v", "n": 70000})");
  // In the small format 32-bit integers are stored at an offset instead.
  EXPECT_EQ(Text(Doc(Arr({Int32(-7), Uint32(7)}))), "[-7, 7]");
}

TEST(JsonBinaryTest, KeysPrintInStoredOrderWithEscapes) {
  J doc = Obj({{"z", Int16(1)}, {"a\"b", Int16(2)}, {"\xc3\xa9", Int16(3)}});
  EXPECT_EQ(Text(Doc(doc)), "{\"z\": 1, \"a\\\"b\": 2, \"\xc3\xa9\": 3}");
}

TEST(JsonBinaryTest, OffsetsAreFollowedAcrossHolesAndReordering) {
  // Small object {"k": "v", "m": [true]} laid out with the values first, keys last, and unused
  // bytes in between, as an in-place partial update can leave it.
  std::string data;
  data += Le(2, 2);                                                 // count
  data += Le(40, 2);                                                // size
  data += Le(38, 2) + Le(1, 2);                                     // key "k" at 38
  data += Le(39, 2) + Le(1, 2);                                     // key "m" at 39
  data += std::string(1, '\x0c') + Le(24, 2);                       // string at 24
  data += std::string(1, '\x02') + Le(28, 2);                       // array at 28
  data.resize(24, '\xee');                                          // a hole
  data += VarLength(1) + "v";                                       // 24..25
  data.resize(28, '\xee');                                          // another hole
  data += Le(1, 2) + Le(7, 2) + std::string(1, '\x04') + Le(1, 2);  // [true], 7 bytes
  data.resize(38, '\xee');
  data += "km";
  ASSERT_EQ(data.size(), 40u);
  EXPECT_EQ(Text(std::string(1, '\x00') + data), R"({"k": "v", "m": [true]})");
}

std::string PackedTime(bool negative, int hours, int minute, int second, int micro) {
  int64_t packed = ((static_cast<int64_t>(hours) << 12 | minute << 6 | second) << 24) + micro;
  if (negative) packed = -packed;
  return Le(static_cast<uint64_t>(packed), 8);
}

std::string PackedDateTime(int year, int month, int day, int hour, int minute, int second,
                           int micro) {
  const int64_t ymd = (static_cast<int64_t>(year) * 13 + month) << 5 | day;
  const int64_t hms = hour << 12 | minute << 6 | second;
  return Le(static_cast<uint64_t>(((ymd << 17 | hms) << 24) + micro), 8);
}

TEST(JsonBinaryTest, OpaqueTemporalValuesPrintAsQuotedStrings) {
  EXPECT_EQ(Text(Doc(Obj({{"b", Opaque(10, PackedDateTime(2012, 3, 18, 0, 0, 0, 0))}}))),
            R"({"b": "2012-03-18"})");
  EXPECT_EQ(Text(Doc(Obj({{"c", Opaque(12, PackedDateTime(2012, 3, 18, 11, 30, 45, 0))}}))),
            R"({"c": "2012-03-18 11:30:45.000000"})");
  EXPECT_EQ(Text(Doc(Opaque(7, PackedDateTime(1970, 1, 1, 0, 0, 1, 5)))),
            "\"1970-01-01 00:00:01.000005\"");
  EXPECT_EQ(Text(Doc(Obj({{"c", Opaque(11, PackedTime(false, 87, 31, 46, 654321))}}))),
            R"({"c": "87:31:46.654321"})");
  EXPECT_EQ(Text(Doc(Opaque(11, PackedTime(true, 838, 59, 59, 0)))), "\"-838:59:59.000000\"");
}

TEST(JsonBinaryTest, OpaqueDecimalIsANumberAndOtherTypesAreBase64) {
  // DECIMAL(6,3) 123.456: precision, scale, then decimal2bin (3 + 2 bytes).
  EXPECT_EQ(Text(Doc(Obj({{"d", Opaque(246, std::string("\x06\x03\x80\x7b\x01\xc8", 6))}}))),
            R"({"d": 123.456})");
  EXPECT_EQ(Text(Doc(Opaque(246, std::string("\x03\x02\x89\x00", 4)))), "9.00");
  EXPECT_EQ(Text(Doc(Obj({{"a", Opaque(15, "U")}}))), R"({"a": "base64:type15:VQ=="})");
  EXPECT_EQ(Text(Doc(Opaque(253, "as string"))), "\"as string\"");
  // MySQL's base64 breaks lines after 76 characters; the newline is escaped in the string.
  const std::string payload(60, 'A');
  std::string line;  // "AAA" encodes as "QUFB"
  for (int i = 0; i < 19; ++i) line += "QUFB";
  EXPECT_EQ(Text(Doc(Opaque(252, payload))), "\"base64:type252:" + line + "\\nQUFB\"");
}

TEST(JsonBinaryTest, CorruptInputIsCorruption) {
  EXPECT_TRUE(TextError("\x0d").IsCorruption());                          // unknown type
  EXPECT_TRUE(TextError(std::string("\x04\x03", 2)).IsCorruption());      // unknown literal
  EXPECT_TRUE(TextError(std::string("\x09\x01\x02", 3)).IsCorruption());  // short int64
  EXPECT_TRUE(TextError(std::string("\x0c\x05"
                                    "abc",
                                    5))
                  .IsCorruption());                                       // string overrun
  EXPECT_TRUE(TextError(std::string("\x0c\x80\x80", 3)).IsCorruption());  // unfinished length
  EXPECT_TRUE(TextError(Doc(Double(0.0)).substr(0, 5)).IsCorruption());
  // Container size larger than the value.
  std::string doc = Doc(Obj({{"a", Int16(1)}}));
  EXPECT_TRUE(TextError(doc.substr(0, doc.size() - 1)).IsCorruption());
  // Key offset outside the container.
  std::string bad_key = doc;
  bad_key[5] = 0x7f;
  EXPECT_TRUE(TextError(bad_key).IsCorruption());
  // Value offset outside the container.
  std::string bad_value = Doc(Arr({Str("x")}));
  bad_value[6] = 0x7f;
  EXPECT_TRUE(TextError(bad_value).IsCorruption());
  // More elements than the header space allows.
  std::string bad_count = Doc(Arr({Int16(1)}));
  bad_count[1] = 9;
  EXPECT_TRUE(TextError(bad_count).IsCorruption());
  // Non-finite double.
  EXPECT_TRUE(TextError(Doc(Double(std::numeric_limits<double>::infinity()))).IsCorruption());
}

TEST(JsonBinaryTest, DeepNestingIsCorruptionNotACrash) {
  J value = Int16(1);
  for (int i = 0; i < 400; ++i) value = Arr({value}, true);
  EXPECT_TRUE(TextError(Doc(value)).IsCorruption());
}

// ---------------------------------------------------------------------------------------------
// JSON diffs

std::string Diff(uint8_t op, std::string_view path, const std::string& value_doc = "") {
  std::string d(1, static_cast<char>(op));
  d.push_back(static_cast<char>(path.size()));
  d += path;
  if (op != 2) {
    d.push_back(static_cast<char>(value_doc.size()));
    d += value_doc;
  }
  return d;
}

std::string Applied(const std::string& before, const std::string& diff) {
  std::string out;
  Status s = ApplyJsonDiff(before, diff, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

Status ApplyError(const std::string& before, const std::string& diff) {
  std::string out;
  return ApplyJsonDiff(before, diff, &out);
}

const std::string kBefore = Doc(Obj({{"a", Int16(1)}, {"b", Arr({Int16(10), Int16(20)})}}));

TEST(JsonDiffTest, ReplaceInsertRemove) {
  EXPECT_EQ(Applied(kBefore, Diff(0, "$.a", Doc(Str("x")))), R"({"a": "x", "b": [10, 20]})");
  EXPECT_EQ(Applied(kBefore, Diff(0, "$.b[1]", Doc(True()))), R"({"a": 1, "b": [10, true]})");
  EXPECT_EQ(Applied(kBefore, Diff(2, "$.b[0]")), R"({"a": 1, "b": [20]})");
  EXPECT_EQ(Applied(kBefore, Diff(2, "$.a")), R"({"b": [10, 20]})");
  EXPECT_EQ(Applied(kBefore, Diff(1, "$.b[1]", Doc(Int16(15)))), R"({"a": 1, "b": [10, 15, 20]})");
  // Past the end of an array an insert appends.
  EXPECT_EQ(Applied(kBefore, Diff(1, "$.b[9]", Doc(Int16(30)))), R"({"a": 1, "b": [10, 20, 30]})");
  EXPECT_EQ(Applied(kBefore, Diff(0, "$.b[last]", Doc(Int16(0)))), R"({"a": 1, "b": [10, 0]})");
  EXPECT_EQ(Applied(kBefore, Diff(2, "$.b[last-1]")), R"({"a": 1, "b": [20]})");
}

TEST(JsonDiffTest, InsertedMembersTakeMysqlsKeyOrder) {
  // MySQL keeps object keys sorted by length, then bytes.
  EXPECT_EQ(Applied(kBefore, Diff(1, "$.c", Doc(Null()))), R"({"a": 1, "b": [10, 20], "c": null})");
  EXPECT_EQ(Applied(kBefore, Diff(1, "$.B", Doc(Null()))), R"({"B": null, "a": 1, "b": [10, 20]})");
  EXPECT_EQ(Applied(kBefore, Diff(1, R"($."a b")", Doc(Int16(2)))),
            R"({"a": 1, "b": [10, 20], "a b": 2})");
  EXPECT_EQ(Applied(kBefore, Diff(1, R"($."\u00e9\n")", Doc(Int16(2)))),
            "{\"a\": 1, \"b\": [10, 20], \"\xc3\xa9\\n\": 2}");
}

TEST(JsonDiffTest, SeveralDiffsApplyInOrderAndValuesCanBeDocuments) {
  std::string diffs = Diff(0, "$.a", Doc(Obj({{"x", Arr({Int16(1)})}}))) +
                      Diff(1, "$.a.x[1]", Doc(Double(0.5))) + Diff(2, "$.b");
  EXPECT_EQ(Applied(kBefore, diffs), R"({"a": {"x": [1, 0.5]}})");
  EXPECT_EQ(Applied(kBefore, ""), R"({"a": 1, "b": [10, 20]})");
}

TEST(JsonDiffTest, LongValuesUseMultiByteLengths) {
  const std::string long_text(300, 'y');
  std::string diff(1, '\x00');
  diff += "\x03$.a";
  const std::string value = Doc(Str(long_text));
  diff += '\xfc' + Le(value.size(), 2) + value;  // net_field_length: 252 + 2 bytes
  EXPECT_EQ(Applied(kBefore, diff), "{\"a\": \"" + long_text + "\", \"b\": [10, 20]}");
}

TEST(JsonDiffTest, DiffsTheDocumentCannotTakeAreCorruption) {
  EXPECT_TRUE(ApplyError(kBefore, Diff(0, "$.zz", Doc(Null()))).IsCorruption());
  EXPECT_TRUE(ApplyError(kBefore, Diff(0, "$.b[2]", Doc(Null()))).IsCorruption());
  EXPECT_TRUE(ApplyError(kBefore, Diff(1, "$.a", Doc(Null()))).IsCorruption());  // exists
  EXPECT_TRUE(ApplyError(kBefore, Diff(1, "$.q.r", Doc(Null()))).IsCorruption());
  EXPECT_TRUE(ApplyError(kBefore, Diff(2, "$.b[5]")).IsCorruption());
  EXPECT_TRUE(ApplyError(kBefore, Diff(2, "$.a[0]")).IsCorruption());
  EXPECT_TRUE(ApplyError(kBefore, Diff(3, "$.a", Doc(Null()))).IsCorruption());  // bad op
  EXPECT_TRUE(ApplyError(kBefore, Diff(0, "a", Doc(Null()))).IsCorruption());    // bad path
  EXPECT_TRUE(ApplyError(kBefore, Diff(0, "$.b[x]", Doc(Null()))).IsCorruption());
  EXPECT_TRUE(ApplyError(kBefore, Diff(0, "$.a", Doc(Null())).substr(0, 6)).IsCorruption());
  EXPECT_TRUE(ApplyError(kBefore, std::string("\x00\x09$.a", 5)).IsCorruption());
  EXPECT_TRUE(ApplyError(kBefore.substr(0, 4), Diff(2, "$.a")).IsCorruption());
}

}  // namespace
}  // namespace replsync::capture
