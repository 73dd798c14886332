#include "capture/binlog/row_decoder.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "capture/binlog/json_binary.h"

namespace replsync::capture {
namespace {

// Little byte builder for hand-made row images.
class Bytes {
 public:
  Bytes& U8(unsigned v) {
    s_.push_back(static_cast<char>(v));
    return *this;
  }
  Bytes& Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  Bytes& Be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) s_.push_back(static_cast<char>(v >> (8 * i)));
    return *this;
  }
  Bytes& Raw(std::string_view b) {
    s_.append(b);
    return *this;
  }
  Bytes& Hex(std::string_view hex) {
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      if (hex[i] == ' ') {
        --i;
        continue;
      }
      s_.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    return *this;
  }
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

ColumnDef Col(ColumnType type, uint16_t meta = 0, bool is_unsigned = false, uint32_t collation = 0,
              std::string name = "") {
  ColumnDef c;
  c.type = type;
  c.meta = meta;
  c.is_unsigned = is_unsigned;
  c.collation = collation;
  c.name = std::move(name);
  return c;
}

std::string AllPresent(size_t n) {
  std::string bitmap((n + 7) / 8, '\0');
  for (size_t i = 0; i < n; ++i) bitmap[i / 8] = static_cast<char>(bitmap[i / 8] | 1 << (i % 8));
  return bitmap;
}

class RowDecoderTest : public ::testing::Test {
 protected:
  void SetTable(std::vector<ColumnDef> columns) {
    table_.db = "d";
    table_.table = "t";
    table_.columns = std::move(columns);
  }

  // Prepares a WRITE event whose rows are `rows` (null bitmaps included), all columns present.
  void SetWrite(std::string rows) { SetEvent(RowsKind::kWrite, AllPresent(Count()), "", rows); }

  void SetEvent(RowsKind kind, std::string before_bitmap, std::string after_bitmap,
                std::string rows, bool partial_json = false) {
    before_bitmap_ = std::move(before_bitmap);
    after_bitmap_ = std::move(after_bitmap);
    rows_ = std::move(rows);
    event_ = RowsEvent{};
    event_.kind = kind;
    event_.partial_json = partial_json;
    event_.column_count = Count();
    event_.columns_before = before_bitmap_;
    event_.columns_after = after_bitmap_;
    event_.rows = rows_;
    event_.table = &table_;
    decoder_.Reset(event_);
  }

  // Decodes a single-row WRITE event made of a zero NULL bitmap and `values`.
  RowImage DecodeSingle(const std::string& values) {
    SetWrite(std::string((Count() + 7) / 8, '\0') + values);
    RowImage after;
    auto r = decoder_.Next(nullptr, &after);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r.ok() && *r);
    return after;
  }

  // Decodes a single row and returns the failure.
  Status DecodeFailure(const std::string& values) {
    SetWrite(std::string((Count() + 7) / 8, '\0') + values);
    RowImage after;
    auto r = decoder_.Next(nullptr, &after);
    EXPECT_FALSE(r.ok());
    return r.status();
  }

  size_t Count() const { return table_.columns.size(); }

  TableMap table_;
  std::string before_bitmap_, after_bitmap_, rows_;
  RowsEvent event_;
  RowDecoder decoder_;
};

TEST_F(RowDecoderTest, SignedIntegerLimitsOfEveryWidth) {
  SetTable({Col(ColumnType::kTiny), Col(ColumnType::kTiny), Col(ColumnType::kShort),
            Col(ColumnType::kShort), Col(ColumnType::kInt24), Col(ColumnType::kInt24),
            Col(ColumnType::kLong), Col(ColumnType::kLong), Col(ColumnType::kLongLong),
            Col(ColumnType::kLongLong)});
  RowImage row = DecodeSingle(Bytes()
                                  .Hex("80 7f")
                                  .Hex("0080 ff7f")
                                  .Hex("000080 ffff7f")
                                  .Hex("00000080 ffffff7f")
                                  .Hex("0000000000000080 ffffffffffffff7f")
                                  .str());
  const int64_t expected[] = {-128,
                              127,
                              -32768,
                              32767,
                              -8388608,
                              8388607,
                              std::numeric_limits<int32_t>::min(),
                              std::numeric_limits<int32_t>::max(),
                              std::numeric_limits<int64_t>::min(),
                              std::numeric_limits<int64_t>::max()};
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(row.values[i].kind, ValueKind::kInt) << i;
    EXPECT_EQ(row.values[i].i, expected[i]) << i;
  }
}

TEST_F(RowDecoderTest, UnsignedIntegerLimitsOfEveryWidth) {
  SetTable({Col(ColumnType::kTiny, 0, true), Col(ColumnType::kShort, 0, true),
            Col(ColumnType::kInt24, 0, true), Col(ColumnType::kLong, 0, true),
            Col(ColumnType::kLongLong, 0, true), Col(ColumnType::kTiny, 0, true)});
  RowImage row = DecodeSingle(Bytes().Hex("ff ffff ffffff ffffffff ffffffffffffffff 00").str());
  const uint64_t expected[] = {
      255, 65535, 16777215, 4294967295u, std::numeric_limits<uint64_t>::max(), 0};
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(row.values[i].kind, ValueKind::kUInt) << i;
    EXPECT_EQ(row.values[i].u, expected[i]) << i;
  }
}

TEST_F(RowDecoderTest, FloatAndDouble) {
  SetTable({Col(ColumnType::kFloat, 4), Col(ColumnType::kDouble, 8)});
  uint32_t f;
  const float fv = -1.5f;
  std::memcpy(&f, &fv, 4);
  uint64_t d;
  const double dv = 2.0e300;
  std::memcpy(&d, &dv, 8);
  RowImage row = DecodeSingle(Bytes().Le(f, 4).Le(d, 8).str());
  EXPECT_EQ(row.values[0].kind, ValueKind::kFloat);
  EXPECT_EQ(row.values[0].f, -1.5f);
  EXPECT_EQ(row.values[1].kind, ValueKind::kDouble);
  EXPECT_EQ(row.values[1].d, 2.0e300);
}

uint16_t DecimalMeta(int precision, int scale) {
  return static_cast<uint16_t>(precision << 8 | scale);
}

TEST_F(RowDecoderTest, DecimalFromMysqlDocumentationExample) {
  // decimal2bin's own example: DECIMAL(14,4) 1234567890.1234 and its negation.
  SetTable({Col(ColumnType::kNewDecimal, DecimalMeta(14, 4)),
            Col(ColumnType::kNewDecimal, DecimalMeta(14, 4))});
  RowImage row = DecodeSingle(Bytes().Hex("810DFB38D204D2 7EF204C72DFB2D").str());
  EXPECT_EQ(row.values[0].kind, ValueKind::kDecimal);
  EXPECT_EQ(row.values[0].bytes, "1234567890.1234");
  EXPECT_EQ(row.values[1].bytes, "-1234567890.1234");
}

TEST_F(RowDecoderTest, DecimalSmallNegativeZeroScaleAndZero) {
  SetTable({Col(ColumnType::kNewDecimal, DecimalMeta(4, 2)),
            Col(ColumnType::kNewDecimal, DecimalMeta(4, 2)),
            Col(ColumnType::kNewDecimal, DecimalMeta(5, 0)),
            Col(ColumnType::kNewDecimal, DecimalMeta(5, 0)),
            Col(ColumnType::kNewDecimal, DecimalMeta(4, 2)),
            Col(ColumnType::kNewDecimal, DecimalMeta(4, 2)),
            Col(ColumnType::kNewDecimal, DecimalMeta(3, 3))});
  RowImage row = DecodeSingle(Bytes()
                                  .Hex("8032")    // 0.50
                                  .Hex("7ffe")    // -0.01
                                  .Hex("803039")  // 12345
                                  .Hex("7fcfc6")  // -12345
                                  .Hex("8000")    // 0.00
                                  .Hex("7fff")    // -0.00 (all bits inverted): no sign
                                  .Hex("83e7")    // 0.999: no integer digits
                                  .str());
  EXPECT_EQ(row.values[0].bytes, "0.50");
  EXPECT_EQ(row.values[1].bytes, "-0.01");
  EXPECT_EQ(row.values[2].bytes, "12345");
  EXPECT_EQ(row.values[3].bytes, "-12345");
  EXPECT_EQ(row.values[4].bytes, "0.00");
  EXPECT_EQ(row.values[5].bytes, "0.00");
  EXPECT_EQ(row.values[6].bytes, "0.999");
}

TEST_F(RowDecoderTest, DecimalOfMaximumPrecisionKeepsEveryDigit) {
  // DECIMAL(65,30): 35 integer digits (8 leading + 3 groups of 9) and 30 fraction digits.
  SetTable({Col(ColumnType::kNewDecimal, DecimalMeta(65, 30))});
  Bytes b;
  b.Be(0x80000000u | 12345678u, 4);  // 8 leading digits in 4 bytes, sign bit set
  b.Be(901234567, 4).Be(890123456, 4).Be(789012345, 4);
  b.Be(678901234, 4).Be(567890123, 4).Be(456789012, 4);  // 27 fraction digits
  b.Be(345, 2);                                          // last 3 fraction digits
  RowImage row = DecodeSingle(b.str());
  EXPECT_EQ(row.values[0].bytes,
            "12345678901234567890123456789012345.678901234567890123456789012345");
}

TEST_F(RowDecoderTest, DecimalTextStaysValidForTheWholeRow) {
  // Every decimal of a row gets its own stable text even when many are decoded.
  std::vector<ColumnDef> cols(40, Col(ColumnType::kNewDecimal, DecimalMeta(20, 2)));
  SetTable(cols);
  Bytes b;
  for (int i = 0; i < 40; ++i) {
    // 18 integer digits: 2 full groups; 2 fraction digits: 1 byte.
    b.Be(0x80000000u, 4).Be(static_cast<uint64_t>(i), 4).U8(static_cast<unsigned>(i));
  }
  RowImage row = DecodeSingle(b.str());
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(row.values[i].bytes,
              std::to_string(i) + "." + (i < 10 ? "0" : "") + std::to_string(i));
  }
}

TEST_F(RowDecoderTest, DecimalWithImpossibleDigitGroupIsCorruption) {
  SetTable({Col(ColumnType::kNewDecimal, DecimalMeta(2, 0), false, 0, "price")});
  Status s = DecodeFailure(Bytes().Hex("e4").str());  // 0x64 = 100 in a 2-digit group
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("`price`"), std::string::npos) << s.message();
}

TEST_F(RowDecoderTest, YearAndDates) {
  SetTable({Col(ColumnType::kYear), Col(ColumnType::kYear), Col(ColumnType::kYear),
            Col(ColumnType::kDate), Col(ColumnType::kDate), Col(ColumnType::kNewDate)});
  const uint64_t leap_day = 2024u << 9 | 2u << 5 | 29u;
  const uint64_t max_date = 9999u << 9 | 12u << 5 | 31u;
  RowImage row =
      DecodeSingle(Bytes().U8(0).U8(1).U8(255).Le(0, 3).Le(leap_day, 3).Le(max_date, 3).str());
  EXPECT_EQ(row.values[0].kind, ValueKind::kYear);
  EXPECT_EQ(row.values[0].i, 0);
  EXPECT_EQ(row.values[1].i, 1901);
  EXPECT_EQ(row.values[2].i, 2155);
  EXPECT_EQ(row.values[3].kind, ValueKind::kDate);
  EXPECT_EQ(row.values[3].dt.year, 0);  // zero date survives
  EXPECT_EQ(row.values[3].dt.month, 0);
  EXPECT_EQ(row.values[3].dt.day, 0);
  EXPECT_EQ(row.values[4].dt.year, 2024);
  EXPECT_EQ(row.values[4].dt.month, 2);
  EXPECT_EQ(row.values[4].dt.day, 29);
  EXPECT_EQ(row.values[5].dt.year, 9999);
  EXPECT_EQ(row.values[5].dt.month, 12);
  EXPECT_EQ(row.values[5].dt.day, 31);
}

void ExpectTime(const Value& v, bool negative, uint32_t hours, int minute, int second,
                uint32_t micro, int decimals) {
  EXPECT_EQ(v.kind, ValueKind::kTime);
  EXPECT_EQ(v.tm.negative, negative);
  EXPECT_EQ(v.tm.hours, hours);
  EXPECT_EQ(v.tm.minute, minute);
  EXPECT_EQ(v.tm.second, second);
  EXPECT_EQ(v.tm.micro, micro);
  EXPECT_EQ(v.decimals, decimals);
}

TEST_F(RowDecoderTest, OldTimeIncludingNegativeAndLargeHours) {
  SetTable({Col(ColumnType::kTime), Col(ColumnType::kTime), Col(ColumnType::kTime)});
  RowImage row = DecodeSingle(Bytes()
                                  .Le(static_cast<uint32_t>(-8385959), 3)  // -838:59:59
                                  .Le(8385959, 3)
                                  .Le(123456, 3)
                                  .str());
  ExpectTime(row.values[0], true, 838, 59, 59, 0, 0);
  ExpectTime(row.values[1], false, 838, 59, 59, 0, 0);
  ExpectTime(row.values[2], false, 12, 34, 56, 0, 0);
}

TEST_F(RowDecoderTest, Time2NegativeFractionsFollowMysqlsStorageTable) {
  // The examples of MySQL's my_time_packed_from_binary comment (fsp 2).
  SetTable({Col(ColumnType::kTime2, 2), Col(ColumnType::kTime2, 2), Col(ColumnType::kTime2, 2),
            Col(ColumnType::kTime2, 2), Col(ColumnType::kTime2, 2), Col(ColumnType::kTime2, 2)});
  RowImage row = DecodeSingle(Bytes()
                                  .Hex("80000000")
                                  .Hex("7fffffff")
                                  .Hex("7fffff9d")
                                  .Hex("7fffff00")
                                  .Hex("7ffffeff")
                                  .Hex("7ffffef6")
                                  .str());
  ExpectTime(row.values[0], false, 0, 0, 0, 0, 2);
  ExpectTime(row.values[1], true, 0, 0, 0, 10000, 2);   // -00:00:00.01
  ExpectTime(row.values[2], true, 0, 0, 0, 990000, 2);  // -00:00:00.99
  ExpectTime(row.values[3], true, 0, 0, 1, 0, 2);       // -00:00:01.00
  ExpectTime(row.values[4], true, 0, 0, 1, 10000, 2);   // -00:00:01.01
  ExpectTime(row.values[5], true, 0, 0, 1, 100000, 2);  // -00:00:01.10
}

TEST_F(RowDecoderTest, Time2LimitsAndEveryFractionWidth) {
  SetTable({Col(ColumnType::kTime2, 0), Col(ColumnType::kTime2, 6), Col(ColumnType::kTime2, 6),
            Col(ColumnType::kTime2, 3), Col(ColumnType::kTime2, 3), Col(ColumnType::kTime2, 1),
            Col(ColumnType::kTime2, 5)});
  // 838:59:59 is hms 0x346EFB; negative values are offset from 0x800000(000000).
  RowImage row = DecodeSingle(Bytes()
                                  .Hex("4b9105")        // -838:59:59
                                  .Hex("4b9105000000")  // -838:59:59.000000
                                  .Be(0x800000000000ull + (0x346EFBull << 24) + 999999, 6)
                                  .Hex("80c8b81ed2")  // 12:34:56.789
                                  .Hex("7ffffeec78")  // -00:00:01.500
                                  .Hex("80000132")    // 00:00:01.5 (fsp 1: hundredths)
                                  .Be(0x800000000000ull - ((1ull << 24) + 5), 6)  // -1.000005
                                  .str());
  ExpectTime(row.values[0], true, 838, 59, 59, 0, 0);
  ExpectTime(row.values[1], true, 838, 59, 59, 0, 6);
  ExpectTime(row.values[2], false, 838, 59, 59, 999999, 6);
  ExpectTime(row.values[3], false, 12, 34, 56, 789000, 3);
  ExpectTime(row.values[4], true, 0, 0, 1, 500000, 3);
  ExpectTime(row.values[5], false, 0, 0, 1, 500000, 1);
  ExpectTime(row.values[6], true, 0, 0, 1, 5, 5);
}

void ExpectDateTime(const Value& v, ValueKind kind, int year, int month, int day, int hour,
                    int minute, int second, uint32_t micro) {
  EXPECT_EQ(v.kind, kind);
  EXPECT_EQ(v.dt.year, year);
  EXPECT_EQ(v.dt.month, month);
  EXPECT_EQ(v.dt.day, day);
  EXPECT_EQ(v.dt.hour, hour);
  EXPECT_EQ(v.dt.minute, minute);
  EXPECT_EQ(v.dt.second, second);
  EXPECT_EQ(v.dt.micro, micro);
}

uint64_t DateTime2Int(int year, int month, int day, int hour, int minute, int second) {
  const uint64_t ymd = (static_cast<uint64_t>(year) * 13 + month) << 5 | day;
  const uint64_t hms = static_cast<uint64_t>(hour) << 12 | minute << 6 | second;
  return 0x8000000000ull + (ymd << 17 | hms);
}

TEST_F(RowDecoderTest, OldAndNewDatetime) {
  SetTable({Col(ColumnType::kDateTime), Col(ColumnType::kDateTime), Col(ColumnType::kDateTime2, 0),
            Col(ColumnType::kDateTime2, 0), Col(ColumnType::kDateTime2, 6),
            Col(ColumnType::kDateTime2, 2), Col(ColumnType::kDateTime2, 4)});
  RowImage row = DecodeSingle(Bytes()
                                  .Le(20240229123456ull, 8)
                                  .Le(0, 8)
                                  .Hex("8000000000")  // 0000-00-00 00:00:00
                                  .Be(DateTime2Int(2012, 3, 18, 11, 30, 45), 5)
                                  .Be(DateTime2Int(9999, 12, 31, 23, 59, 59), 5)
                                  .Be(999999, 3)
                                  .Be(DateTime2Int(1000, 1, 1, 0, 0, 0), 5)
                                  .U8(7)  // .07
                                  .Be(DateTime2Int(2001, 2, 3, 4, 5, 6), 5)
                                  .Be(1234, 2)  // .1234
                                  .str());
  ExpectDateTime(row.values[0], ValueKind::kDateTime, 2024, 2, 29, 12, 34, 56, 0);
  ExpectDateTime(row.values[1], ValueKind::kDateTime, 0, 0, 0, 0, 0, 0, 0);
  ExpectDateTime(row.values[2], ValueKind::kDateTime, 0, 0, 0, 0, 0, 0, 0);
  ExpectDateTime(row.values[3], ValueKind::kDateTime, 2012, 3, 18, 11, 30, 45, 0);
  ExpectDateTime(row.values[4], ValueKind::kDateTime, 9999, 12, 31, 23, 59, 59, 999999);
  EXPECT_EQ(row.values[4].decimals, 6);
  ExpectDateTime(row.values[5], ValueKind::kDateTime, 1000, 1, 1, 0, 0, 0, 70000);
  ExpectDateTime(row.values[6], ValueKind::kDateTime, 2001, 2, 3, 4, 5, 6, 123400);
}

TEST_F(RowDecoderTest, TimestampsWithFractions) {
  SetTable({Col(ColumnType::kTimestamp), Col(ColumnType::kTimestamp2, 0),
            Col(ColumnType::kTimestamp2, 1), Col(ColumnType::kTimestamp2, 3),
            Col(ColumnType::kTimestamp2, 6), Col(ColumnType::kTimestamp2, 6)});
  RowImage row = DecodeSingle(Bytes()
                                  .Le(1700000000, 4)
                                  .Be(0, 4)  // the zero timestamp
                                  .Be(1700000000, 4)
                                  .U8(50)
                                  .Be(2147483647, 4)
                                  .Be(9990, 2)
                                  .Be(1, 4)
                                  .Be(999999, 3)
                                  .Be(1700000000, 4)
                                  .Be(1, 3)
                                  .str());
  EXPECT_EQ(row.values[0].kind, ValueKind::kTimestamp);
  EXPECT_EQ(row.values[0].ts.seconds, 1700000000);
  EXPECT_EQ(row.values[0].ts.micro, 0u);
  EXPECT_EQ(row.values[1].ts.seconds, 0);
  EXPECT_EQ(row.values[2].ts.seconds, 1700000000);
  EXPECT_EQ(row.values[2].ts.micro, 500000u);
  EXPECT_EQ(row.values[2].decimals, 1);
  EXPECT_EQ(row.values[3].ts.seconds, 2147483647);
  EXPECT_EQ(row.values[3].ts.micro, 999000u);
  EXPECT_EQ(row.values[4].ts.micro, 999999u);
  EXPECT_EQ(row.values[5].ts.micro, 1u);
}

TEST_F(RowDecoderTest, BitEnumAndSet) {
  SetTable({Col(ColumnType::kBit, 64), Col(ColumnType::kBit, 3), Col(ColumnType::kBit, 10),
            Col(ColumnType::kEnum, 1), Col(ColumnType::kEnum, 2), Col(ColumnType::kSet, 1),
            Col(ColumnType::kSet, 8)});
  RowImage row = DecodeSingle(Bytes()
                                  .Hex("ffffffffffffffff")
                                  .U8(0b101)
                                  .Be(0x2ab, 2)
                                  .U8(3)
                                  .Le(300, 2)
                                  .U8(0b1010)
                                  .Le(0x8000000000000001ull, 8)
                                  .str());
  EXPECT_EQ(row.values[0].kind, ValueKind::kBit);
  EXPECT_EQ(row.values[0].u, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(row.values[1].u, 5u);
  EXPECT_EQ(row.values[2].u, 0x2abu);
  EXPECT_EQ(row.values[3].kind, ValueKind::kEnum);
  EXPECT_EQ(row.values[3].u, 3u);
  EXPECT_EQ(row.values[4].u, 300u);
  EXPECT_EQ(row.values[5].kind, ValueKind::kSet);
  EXPECT_EQ(row.values[5].u, 0b1010u);
  EXPECT_EQ(row.values[6].u, 0x8000000000000001ull);
}

TEST_F(RowDecoderTest, StringsTextOrBinaryByCollation) {
  const std::string long_char(300, 'x');  // CHAR(100) in utf8mb4: up to 400 bytes
  SetTable({Col(ColumnType::kString, 400, false, 45), Col(ColumnType::kVarchar, 40, false, 0),
            Col(ColumnType::kVarchar, 1020, false, 63), Col(ColumnType::kString, 16, false, 63),
            Col(ColumnType::kBlob, 2, false, 0), Col(ColumnType::kBlob, 2, false, 45),
            Col(ColumnType::kBlob, 4, false, 63), Col(ColumnType::kVarString, 30, false, 8),
            Col(ColumnType::kString, 0, false, 8)});
  RowImage row = DecodeSingle(Bytes()
                                  .Le(300, 2)
                                  .Raw(long_char)
                                  .U8(5)
                                  .Raw("hello")
                                  .Le(3, 2)
                                  .Raw(std::string("\x00\x01\x02", 3))
                                  .U8(2)
                                  .Raw("\xff\xfe")
                                  .Le(4, 2)
                                  .Raw("blob")
                                  .Le(4, 2)
                                  .Raw("text")
                                  .Le(3, 4)
                                  .Raw("bin")
                                  .U8(4)
                                  .Raw("caf\xe9")
                                  .U8(0)  // CHAR(0)
                                  .str());
  EXPECT_EQ(row.values[0].kind, ValueKind::kString);
  EXPECT_EQ(row.values[0].bytes, long_char);
  EXPECT_EQ(row.values[1].kind, ValueKind::kString);  // VARCHAR without charset metadata
  EXPECT_EQ(row.values[1].bytes, "hello");
  EXPECT_EQ(row.values[2].kind, ValueKind::kBinary);  // VARBINARY, 2-byte length
  EXPECT_EQ(row.values[2].bytes, std::string_view("\x00\x01\x02", 3));
  EXPECT_EQ(row.values[3].kind, ValueKind::kBinary);  // BINARY(16): zero padding restored
  EXPECT_EQ(row.values[3].bytes, std::string("\xff\xfe") + std::string(14, '\0'));
  EXPECT_EQ(row.values[4].kind, ValueKind::kBinary);  // BLOB or TEXT unknown: binary
  EXPECT_EQ(row.values[4].bytes, "blob");
  EXPECT_EQ(row.values[5].kind, ValueKind::kString);  // TEXT
  EXPECT_EQ(row.values[5].bytes, "text");
  EXPECT_EQ(row.values[6].kind, ValueKind::kBinary);  // LONGBLOB
  EXPECT_EQ(row.values[6].bytes, "bin");
  EXPECT_EQ(row.values[7].kind, ValueKind::kString);
  EXPECT_EQ(row.values[7].bytes, "caf\xe9");
  EXPECT_EQ(row.values[8].kind, ValueKind::kString);
  EXPECT_EQ(row.values[8].bytes, "");
}

TEST_F(RowDecoderTest, JsonGeometryAndVector) {
  SetTable({Col(ColumnType::kJson, 4), Col(ColumnType::kGeometry, 4), Col(ColumnType::kVector, 4)});
  const std::string json("\x04\x01", 2);  // true
  const std::string geometry("\x00\x00\x00\x00\x01\x01\x00\x00\x00", 9);
  const std::string vector("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);  // [1.0, 2.0]
  RowImage row = DecodeSingle(Bytes()
                                  .Le(json.size(), 4)
                                  .Raw(json)
                                  .Le(geometry.size(), 4)
                                  .Raw(geometry)
                                  .Le(vector.size(), 4)
                                  .Raw(vector)
                                  .str());
  EXPECT_EQ(row.values[0].kind, ValueKind::kJson);
  EXPECT_EQ(row.values[0].bytes, json);
  EXPECT_EQ(row.values[1].kind, ValueKind::kGeometry);
  EXPECT_EQ(row.values[1].bytes, geometry);
  EXPECT_EQ(row.values[2].kind, ValueKind::kVector);
  EXPECT_EQ(row.values[2].bytes, vector);
}

TEST_F(RowDecoderTest, NullBitmapSkipsNullValues) {
  SetTable({Col(ColumnType::kLong), Col(ColumnType::kVarchar, 10), Col(ColumnType::kLong)});
  SetWrite(Bytes().U8(0b010).Le(7, 4).Le(9, 4).str());
  RowImage after;
  auto r = decoder_.Next(nullptr, &after);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(*r);
  EXPECT_EQ(after.values[0].i, 7);
  EXPECT_TRUE(after.present[1]);
  EXPECT_EQ(after.values[1].kind, ValueKind::kNull);
  EXPECT_EQ(after.values[2].i, 9);
  auto end = decoder_.Next(nullptr, &after);
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(*end);
}

TEST_F(RowDecoderTest, MinimalImageNullBitsCountPresentColumnsOnly) {
  // Columns 0, 2 and 3 of 4 are in the image; the third present column (3) is NULL, so its
  // NULL bit is bit 2, not bit 3.
  SetTable({Col(ColumnType::kLong), Col(ColumnType::kLong), Col(ColumnType::kLong),
            Col(ColumnType::kLong)});
  SetEvent(RowsKind::kWrite, "\x0d", "", Bytes().U8(0b100).Le(1, 4).Le(3, 4).str());
  RowImage after;
  auto r = decoder_.Next(nullptr, &after);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(after.present[0]);
  EXPECT_FALSE(after.present[1]);
  EXPECT_TRUE(after.present[2]);
  EXPECT_TRUE(after.present[3]);
  EXPECT_EQ(after.values[0].i, 1);
  EXPECT_EQ(after.values[1].kind, ValueKind::kNull);
  EXPECT_EQ(after.values[2].i, 3);
  EXPECT_EQ(after.values[3].kind, ValueKind::kNull);
}

TEST_F(RowDecoderTest, UpdateUsesEachImagesBitmapAndReusesVectors) {
  SetTable({Col(ColumnType::kLong, 0, false, 0, "id"), Col(ColumnType::kVarchar, 20),
            Col(ColumnType::kLong)});
  // Before images: all columns. After images (MINIMAL): column 1 only.
  Bytes rows;
  rows.U8(0).Le(1, 4).U8(1).Raw("a").Le(10, 4);   // before row 1
  rows.U8(0).U8(1).Raw("b");                      // after row 1
  rows.U8(0).Le(2, 4).U8(2).Raw("cc").Le(20, 4);  // before row 2
  rows.U8(1);                                     // after row 2: column 1 set to NULL
  SetEvent(RowsKind::kUpdate, "\x07", "\x02", rows.str());
  RowImage before, after;
  auto r = decoder_.Next(&before, &after);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(*r);
  EXPECT_EQ(before.values[0].i, 1);
  EXPECT_EQ(before.values[1].bytes, "a");
  EXPECT_EQ(before.values[2].i, 10);
  EXPECT_FALSE(after.present[0]);
  EXPECT_EQ(after.values[1].bytes, "b");
  EXPECT_FALSE(after.present[2]);
  const Value* before_storage = before.values.data();
  const Value* after_storage = after.values.data();

  r = decoder_.Next(&before, &after);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(*r);
  EXPECT_EQ(before.values[0].i, 2);
  EXPECT_EQ(before.values[1].bytes, "cc");
  EXPECT_TRUE(after.present[1]);
  EXPECT_EQ(after.values[1].kind, ValueKind::kNull);
  EXPECT_EQ(before.values.data(), before_storage);  // no reallocation between rows
  EXPECT_EQ(after.values.data(), after_storage);

  r = decoder_.Next(&before, &after);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

TEST_F(RowDecoderTest, DeleteFillsTheBeforeImage) {
  SetTable({Col(ColumnType::kLongLong, 0, true)});
  SetEvent(RowsKind::kDelete, "\x01", "", Bytes().U8(0).Le(42, 8).str());
  RowImage before, after;
  auto r = decoder_.Next(&before, &after);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(*r);
  EXPECT_EQ(before.values[0].kind, ValueKind::kUInt);
  EXPECT_EQ(before.values[0].u, 42u);
  EXPECT_TRUE(after.values.empty());
}

// A small object {"a": <int16 v>} in binary JSON.
std::string JsonObjectA(int16_t v) {
  return Bytes()
      .U8(0x00)   // small object
      .Le(1, 2)   // one member
      .Le(12, 2)  // size: header 4 + key entry 4 + value entry 3 + key 1
      .Le(11, 2)  // key offset
      .Le(1, 2)   // key length
      .U8(0x05)   // int16, inlined
      .Le(static_cast<uint16_t>(v), 2)
      .Raw("a")
      .str();
}

TEST_F(RowDecoderTest, PartialUpdateAfterImageHoldsJsonDiffs) {
  SetTable({Col(ColumnType::kLong, 0, false, 0, "id"), Col(ColumnType::kJson, 4, false, 0, "j"),
            Col(ColumnType::kJson, 4, false, 0, "k")});
  const std::string before_j = JsonObjectA(1);
  const std::string before_k("\x04\x00", 2);  // null
  const std::string after_k("\x04\x02", 2);   // false
  // One diff: REPLACE $.a with int16 5.
  const std::string value("\x05\x05\x00", 3);
  const std::string diff = Bytes().U8(0).U8(3).Raw("$.a").U8(3).Raw(value).str();
  Bytes rows;
  rows.U8(0).Le(1, 4).Le(before_j.size(), 4).Raw(before_j).Le(2, 4).Raw(before_k);
  rows.U8(1);                         // value_options: PARTIAL_JSON_UPDATES
  rows.U8(0b01);                      // partial bits: j partial, k not
  rows.U8(0);                         // NULL bits
  rows.Le(1, 4);                      // id
  rows.Le(diff.size(), 4).Raw(diff);  // j as a diff
  rows.Le(2, 4).Raw(after_k);         // k in full
  // Second row: value_options 0, no partial bits, everything in full.
  rows.U8(0).Le(2, 4).Le(2, 4).Raw(before_k).Le(2, 4).Raw(before_k);
  rows.U8(0).U8(0).Le(2, 4).Le(2, 4).Raw(after_k).Le(2, 4).Raw(after_k);
  SetEvent(RowsKind::kUpdate, "\x07", "\x07", rows.str(), /*partial_json=*/true);

  RowImage before, after;
  auto r = decoder_.Next(&before, &after);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(*r);
  EXPECT_EQ(before.values[1].kind, ValueKind::kJson);
  EXPECT_EQ(after.values[0].i, 1);
  ASSERT_EQ(after.values[1].kind, ValueKind::kJsonDiff);
  EXPECT_EQ(after.values[1].bytes, diff);
  EXPECT_EQ(after.values[2].kind, ValueKind::kJson);
  EXPECT_EQ(after.values[2].bytes, after_k);
  std::string text;
  ASSERT_TRUE(ApplyJsonDiff(before.values[1].bytes, after.values[1].bytes, &text).ok());
  EXPECT_EQ(text, "{\"a\": 5}");

  r = decoder_.Next(&before, &after);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(*r);
  EXPECT_EQ(after.values[0].i, 2);
  EXPECT_EQ(after.values[1].kind, ValueKind::kJson);
  EXPECT_EQ(after.values[1].bytes, after_k);
  r = decoder_.Next(&before, &after);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

TEST_F(RowDecoderTest, TruncatedValueIsCorruptionNamingTableRowAndColumn) {
  SetTable(
      {Col(ColumnType::kLong, 0, false, 0, "id"), Col(ColumnType::kVarchar, 40, false, 0, "name")});
  Status s = DecodeFailure(Bytes().Le(1, 4).U8(10).Raw("abc").str());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("`d`.`t`"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("row 0"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("column 1 `name`"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("length 10 exceeds the 3 bytes left"), std::string::npos)
      << s.message();
}

TEST_F(RowDecoderTest, TruncatedFixedWidthValueIsCorruption) {
  SetTable({Col(ColumnType::kLongLong)});
  Status s = DecodeFailure(Bytes().Le(1, 5).str());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("needs 8 bytes, 5 left"), std::string::npos) << s.message();
}

TEST_F(RowDecoderTest, TruncatedNullBitmapIsCorruption) {
  SetTable(std::vector<ColumnDef>(9, Col(ColumnType::kTiny)));
  SetWrite(std::string(1, '\0'));  // 9 columns need a 2-byte NULL bitmap
  RowImage after;
  auto r = decoder_.Next(nullptr, &after);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption());
  // Nothing more is read after a bad image.
  auto again = decoder_.Next(nullptr, &after);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(RowDecoderTest, RowWithoutColumnsIsCorruptionNotAnEndlessLoop) {
  SetTable({Col(ColumnType::kLong), Col(ColumnType::kLong)});
  SetEvent(RowsKind::kWrite, std::string(1, '\0'), "", Bytes().Le(5, 4).str());
  RowImage after;
  auto r = decoder_.Next(nullptr, &after);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption());
}

TEST_F(RowDecoderTest, ColumnCountDifferentFromTableMapIsCorruption) {
  SetTable({Col(ColumnType::kTiny), Col(ColumnType::kTiny)});
  SetWrite(Bytes().U8(0).U8(1).U8(2).str());
  event_.column_count = 3;
  decoder_.Reset(event_);
  RowImage after;
  auto r = decoder_.Next(nullptr, &after);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption());
}

TEST_F(RowDecoderTest, ImpossibleTemporalValuesAreCorruption) {
  SetTable({Col(ColumnType::kDate)});
  EXPECT_TRUE(DecodeFailure(Bytes().Le(2024u << 9 | 13u << 5 | 1u, 3).str()).IsCorruption());
  SetTable({Col(ColumnType::kTime2, 7)});
  EXPECT_TRUE(DecodeFailure(Bytes().Hex("80000000000000").str()).IsCorruption());
  SetTable({Col(ColumnType::kDateTime2, 0)});
  EXPECT_TRUE(
      DecodeFailure(Bytes().Be(DateTime2Int(2020, 1, 1, 24, 0, 0), 5).str()).IsCorruption());
}

TEST_F(RowDecoderTest, UnknownColumnTypeIsUnsupported) {
  SetTable({Col(ColumnType::kTypedArray)});
  Status s = DecodeFailure(Bytes().U8(0).str());
  EXPECT_EQ(s.code(), Status::Code::kUnsupported);
}

std::string MariadbCompress(std::string_view plain) {
  uLongf size = compressBound(plain.size());
  std::string z(size, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(z.data()), &size,
                      reinterpret_cast<const Bytef*>(plain.data()), plain.size(), 6),
            Z_OK);
  z.resize(size);
  // Header: zlib method (8), one byte of original length.
  return Bytes().U8(0x80 | 1).U8(static_cast<unsigned>(plain.size())).Raw(z).str();
}

TEST_F(RowDecoderTest, MariadbCompressedColumnsAreInflated) {
  const std::string text(200, 'z');
  const std::string zipped = MariadbCompress(text);
  SetTable({Col(static_cast<ColumnType>(140), 1000, false, 45),
            Col(static_cast<ColumnType>(141), 2, false, 63),
            Col(static_cast<ColumnType>(141), 2, false, 63)});
  RowImage row = DecodeSingle(Bytes()
                                  .Le(zipped.size(), 2)
                                  .Raw(zipped)
                                  .Le(4, 2)
                                  .Raw(std::string("\x00raw", 4))  // stored uncompressed
                                  .Le(0, 2)                        // empty
                                  .str());
  EXPECT_EQ(row.values[0].kind, ValueKind::kString);
  EXPECT_EQ(row.values[0].bytes, text);
  EXPECT_EQ(row.values[1].kind, ValueKind::kBinary);
  EXPECT_EQ(row.values[1].bytes, "raw");
  EXPECT_EQ(row.values[2].bytes, "");
}

}  // namespace
}  // namespace replsync::capture
