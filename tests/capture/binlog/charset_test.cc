#include "capture/binlog/charset.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace replsync::capture {
namespace {

std::string Utf8(uint32_t collation, std::string_view text) {
  std::string out;
  AppendAsUtf8(collation, text, &out);
  return out;
}

const std::string kReplacement = "\xef\xbf\xbd";

TEST(CharsetTest, ClassicIdsShared) {
  EXPECT_STREQ(CharsetOfCollation(1), "big5");
  EXPECT_STREQ(CharsetOfCollation(8), "latin1");
  EXPECT_STREQ(CharsetOfCollation(33), "utf8mb3");
  EXPECT_STREQ(CharsetOfCollation(45), "utf8mb4");
  EXPECT_STREQ(CharsetOfCollation(46), "utf8mb4");
  EXPECT_STREQ(CharsetOfCollation(63), "binary");
  EXPECT_STREQ(CharsetOfCollation(83), "utf8mb3");
  EXPECT_STREQ(CharsetOfCollation(192), "utf8mb3");
  EXPECT_STREQ(CharsetOfCollation(224), "utf8mb4");
  EXPECT_STREQ(CharsetOfCollation(247), "utf8mb4");
}

TEST(CharsetTest, MysqlOnlyIds) {
  EXPECT_STREQ(CharsetOfCollation(76), "utf8mb3");  // utf8mb3_tolower_ci
  EXPECT_STREQ(CharsetOfCollation(248), "gb18030");
  EXPECT_STREQ(CharsetOfCollation(255), "utf8mb4");  // utf8mb4_0900_ai_ci
  EXPECT_STREQ(CharsetOfCollation(309), "utf8mb4");  // utf8mb4_0900_bin
  EXPECT_STREQ(CharsetOfCollation(323), "utf8mb4");
}

TEST(CharsetTest, MariadbOnlyIds) {
  EXPECT_STREQ(CharsetOfCollation(576), "utf8mb3");   // utf8mb3_croatian_mysql561_ci
  EXPECT_STREQ(CharsetOfCollation(608), "utf8mb4");   // utf8mb4_croatian_mysql561_ci
  EXPECT_STREQ(CharsetOfCollation(1033), "latin2");   // latin2_general_nopad_ci
  EXPECT_STREQ(CharsetOfCollation(1069), "utf8mb4");  // utf8mb4_general_nopad_ci
  EXPECT_STREQ(CharsetOfCollation(2048), "utf8mb3");  // utf8mb3_uca1400_ai_ci
  EXPECT_STREQ(CharsetOfCollation(2304), "utf8mb4");  // utf8mb4_uca1400_ai_ci
  EXPECT_STREQ(CharsetOfCollation(2560), "ucs2");
  EXPECT_STREQ(CharsetOfCollation(2816), "utf16");
  EXPECT_STREQ(CharsetOfCollation(3072), "utf32");
}

TEST(CharsetTest, UnknownIdsAreNull) {
  EXPECT_EQ(CharsetOfCollation(0), nullptr);
  EXPECT_EQ(CharsetOfCollation(17), nullptr);
  EXPECT_EQ(CharsetOfCollation(100), nullptr);
  EXPECT_EQ(CharsetOfCollation(324), nullptr);
  EXPECT_EQ(CharsetOfCollation(1026), nullptr);
  EXPECT_EQ(CharsetOfCollation(3328), nullptr);
  EXPECT_EQ(CharsetOfCollation(65535), nullptr);
}

TEST(CharsetTest, Latin1IsCp1252WithC1Holes) {
  EXPECT_EQ(Utf8(8, "caf\xe9"), "caf\xc3\xa9");
  EXPECT_EQ(Utf8(8, "\x80"), "\xe2\x82\xac");  // euro sign
  EXPECT_EQ(Utf8(8, "\x81\x9d"), "\xc2\x81\xc2\x9d");
  EXPECT_EQ(Utf8(8, "\xff"), "\xc3\xbf");
}

TEST(CharsetTest, SingleByteSets) {
  EXPECT_EQ(Utf8(51, "\xcf\xf0\xe8\xe2\xe5\xf2"),
            "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
  EXPECT_EQ(Utf8(7, "\xf0"), "\xd0\x9f");            // koi8r П
  EXPECT_EQ(Utf8(9, "\xb9"), "\xc5\xa1");            // latin2 š
  EXPECT_EQ(Utf8(25, "\xe1"), "\xce\xb1");           // greek α
  EXPECT_EQ(Utf8(10, "}"), "\xc3\xa5");              // swe7 å
  EXPECT_EQ(Utf8(37, "\x80"), "\xc4\x8c");           // keybcs2 Č
  EXPECT_EQ(Utf8(11, "a\x80"), "a" + kReplacement);  // ascii
  EXPECT_EQ(Utf8(57, "\x8a"), kReplacement);         // cp1256: undefined in MySQL
}

TEST(CharsetTest, MultiByteSets) {
  EXPECT_EQ(Utf8(13, "\x93\xfa\x96\x7b"), "\xe6\x97\xa5\xe6\x9c\xac");  // sjis 日本
  EXPECT_EQ(Utf8(95, "\x87\x40"), "\xe2\x91\xa0");                      // cp932 ①
  EXPECT_EQ(Utf8(12, "\xc6\xfc"), "\xe6\x97\xa5");                      // ujis 日
  EXPECT_EQ(Utf8(28, "\xc4\xe3\xba\xc3"), "\xe4\xbd\xa0\xe5\xa5\xbd");  // gbk 你好
  EXPECT_EQ(Utf8(24, "\xc4\xe3"), "\xe4\xbd\xa0");                      // gb2312 你
  EXPECT_EQ(Utf8(1, "\xa4\xa4"), "\xe4\xb8\xad");                       // big5 中
  EXPECT_EQ(Utf8(19, "\xc7\xd1"), "\xed\x95\x9c");                      // euckr 한
  EXPECT_EQ(Utf8(248, "\x94\x39\xfc\x36"), "\xf0\x9f\x98\x80");         // gb18030 😀
}

TEST(CharsetTest, UnicodeEncodings) {
  EXPECT_EQ(Utf8(54, std::string("\x00\x41\xd8\x3d\xde\x00", 6)), "A\xf0\x9f\x98\x80");  // utf16
  EXPECT_EQ(Utf8(56, std::string("\x41\x00\x3d\xd8\x00\xde", 6)), "A\xf0\x9f\x98\x80");  // utf16le
  EXPECT_EQ(Utf8(60, std::string("\x00\x01\xf6\x00\x00\x00\x00\x42", 8)),
            "\xf0\x9f\x98\x80"
            "B");                                                     // utf32
  EXPECT_EQ(Utf8(35, std::string("\x00\xe9", 2)), "\xc3\xa9");        // ucs2
  EXPECT_EQ(Utf8(2816, std::string("\x20\xac", 2)), "\xe2\x82\xac");  // utf16 uca1400
}

TEST(CharsetTest, InvalidMultiByteInputBecomesReplacement) {
  // A lone high surrogate, then 'A'.
  EXPECT_EQ(Utf8(54, std::string("\xd8\x00\x00\x41", 4)), kReplacement + "A");
  // An odd trailing byte.
  EXPECT_EQ(Utf8(54, std::string("\x00\x41\x00", 3)), "A" + kReplacement);
  // sjis lead byte followed by an impossible trail byte.
  EXPECT_EQ(Utf8(13, "\x81\x20x").substr(0, 3), kReplacement);
}

TEST(CharsetTest, Utf8IsCheckedAndCopied) {
  const std::string text = "plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  EXPECT_EQ(Utf8(45, text), text);
  EXPECT_EQ(Utf8(33, text), text);
  EXPECT_EQ(Utf8(0, text), text);  // unknown collation: taken as UTF-8
  EXPECT_EQ(Utf8(45,
                 "a\xff"
                 "b"),
            "a" + kReplacement + "b");
  EXPECT_EQ(Utf8(45, "\xe6\x97"), kReplacement);                 // truncated sequence
  EXPECT_EQ(Utf8(45, "\xc0\x80"), kReplacement + kReplacement);  // overlong
  EXPECT_EQ(Utf8(45, "\xed\xa0\x80"), kReplacement + kReplacement + kReplacement);  // surrogate
  EXPECT_EQ(Utf8(45, "\xf4\x90\x80\x80"),
            kReplacement + kReplacement + kReplacement + kReplacement);  // above U+10FFFF
}

TEST(CharsetTest, BinaryIsCopiedAsItIs) {
  const std::string bytes("\x00\xff\x80z", 4);
  EXPECT_EQ(Utf8(63, bytes), bytes);
}

TEST(CharsetTest, ConversionAppends) {
  std::string out = "x=";
  AppendAsUtf8(8, "\xe9", &out);
  AppendAsUtf8(45, "!", &out);
  EXPECT_EQ(out, "x=\xc3\xa9!");
}

// Every byte of every single-byte character set against the server's own mapping tables
// (MariaDB installs them as charsets/<name>.xml), where they are installed.
TEST(CharsetTest, SingleByteSetsMatchTheServersTables) {
  const std::filesystem::path dir = "/usr/share/mysql/charsets";
  ASSERT_TRUE(std::filesystem::exists(dir / "latin1.xml"))
      << "no " << dir << ": the mariadb-server package (tools/setup.sh installs it) provides it";
  const std::pair<const char*, uint32_t> sets[] = {
      {"armscii8", 32}, {"ascii", 11}, {"cp1250", 26},   {"cp1251", 51}, {"cp1256", 57},
      {"cp1257", 59},   {"cp850", 4},  {"cp852", 40},    {"cp866", 36},  {"dec8", 3},
      {"geostd8", 92},  {"greek", 25}, {"hebrew", 16},   {"hp8", 6},     {"keybcs2", 37},
      {"koi8r", 7},     {"koi8u", 22}, {"latin1", 8},    {"latin2", 9},  {"latin5", 30},
      {"latin7", 41},   {"macce", 38}, {"macroman", 39}, {"swe7", 10}};
  const std::regex map_re("<unicode>\\s*<map>([^<]*)</map>");
  for (const auto& [name, collation] : sets) {
    std::ifstream in(dir / (std::string(name) + ".xml"));
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string xml = ss.str();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(xml, m, map_re)) << name;
    std::istringstream codes(m[1].str());
    std::vector<uint32_t> table;
    std::string hex;
    while (codes >> hex) table.push_back(static_cast<uint32_t>(std::stoul(hex, nullptr, 16)));
    ASSERT_EQ(table.size(), 256u) << name;
    for (int b = 1; b < 256; ++b) {
      std::string expected;
      if (table[b] == 0) {
        expected = kReplacement;
      } else {
        // Encode the code point as UTF-8.
        const uint32_t cp = table[b];
        if (cp < 0x80) {
          expected.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
          expected.push_back(static_cast<char>(0xc0 | cp >> 6));
          expected.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else {
          expected.push_back(static_cast<char>(0xe0 | cp >> 12));
          expected.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
          expected.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        }
      }
      EXPECT_EQ(Utf8(collation, std::string(1, static_cast<char>(b))), expected)
          << name << " byte " << b;
    }
  }
}

}  // namespace
}  // namespace replsync::capture
