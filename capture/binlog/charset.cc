// Collation ids to character sets, and text to UTF-8.
//
// The table below covers every collation id of MariaDB 10.3-11.x below 2048 (generated from
// INFORMATION_SCHEMA.COLLATION_CHARACTER_SET_APPLICABILITY of MariaDB 10.11, whose ids are a
// superset of the older releases'), plus the MySQL-only ids: 76 (utf8mb3_tolower_ci), 248-250
// (gb18030) and 255-323 (the utf8mb4_*_0900_* family). MariaDB's UCA 14.0.0 collations
// (10.10+) use computed ids from 2048: 256 ids per character set, in the order utf8mb3,
// utf8mb4, ucs2, utf16, utf32.
//
// Conversion: UTF-8 is checked and copied; single-byte character sets go through a 256-entry
// table built once from glibc iconv and corrected where MySQL's mapping (its charsets/*.xml
// <unicode> maps) differs from glibc's; multi-byte and UTF-16/32 sets go through iconv with one
// cached converter per character set and thread. Bytes the source set does not define become
// U+FFFD.
#include "capture/binlog/charset.h"

#include <iconv.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace replsync::capture {
namespace {

// clang-format off
enum Cs : uint8_t {
  kArmscii8, kAscii, kBig5, kBinary, kCp1250, kCp1251, kCp1256, kCp1257, kCp850, kCp852, kCp866,
  kCp932, kDec8, kEucjpms, kEuckr, kGb18030, kGb2312, kGbk, kGeostd8, kGreek, kHebrew, kHp8,
  kKeybcs2, kKoi8r, kKoi8u, kLatin1, kLatin2, kLatin5, kLatin7, kMacce, kMacroman, kSjis, kSwe7,
  kTis620, kUcs2, kUjis, kUtf16, kUtf16le, kUtf32, kUtf8mb3, kUtf8mb4, kCsCount
};
// clang-format on

enum class Conv : uint8_t { kUtf8, kBinary, kSingleByte, kIconv };

// A corrected byte of a single-byte character set: MySQL's code point (0 = undefined).
struct Override {
  uint8_t byte;
  uint16_t code_point;
};

struct CharsetInfo {
  const char* name;
  Conv conv;
  const char* iconv_name;  // glibc name (the base table for kSingleByte)
  uint8_t unit;            // kIconv: bytes to skip over an invalid sequence
  const Override* overrides = nullptr;
  size_t override_count = 0;
};

// Where MySQL's tables differ from glibc's (compared byte by byte).
constexpr Override kArmscii8Fix[] = {
    {0xA1, 0x2741}, {0xA2, 0x00A7}, {0xAD, 0x055F}, {0xFE, 0x2019}, {0xFF, 0x0027}};
constexpr Override kCp1256Fix[] = {{0x8A, 0}, {0x8F, 0}, {0x98, 0}, {0x9A, 0},
                                   {0x9F, 0}, {0xAA, 0}, {0xC0, 0}, {0xFF, 0}};
constexpr Override kCp866Fix[] = {{0xFC, 0x207F}, {0xFD, 0x00B2}};
constexpr Override kDec8Fix[] = {{0xA0, 0x00A0}};
constexpr Override kGeostd8Fix[] = {
    {0x80, 0x20AC}, {0x81, 0}, {0x83, 0}, {0x88, 0}, {0x8A, 0}, {0x8C, 0}, {0x8D, 0}, {0x8E, 0},
    {0x8F, 0},      {0x90, 0}, {0x98, 0}, {0x99, 0}, {0x9A, 0}, {0x9C, 0}, {0x9D, 0}, {0x9E, 0},
    {0x9F, 0},      {0xE6, 0}, {0xE7, 0}, {0xE8, 0}, {0xE9, 0}, {0xEA, 0}, {0xEB, 0}, {0xEC, 0},
    {0xED, 0},      {0xEE, 0}, {0xEF, 0}, {0xF0, 0}, {0xF1, 0}, {0xF2, 0}, {0xF3, 0}, {0xF4, 0},
    {0xF5, 0},      {0xF6, 0}, {0xF7, 0}, {0xF8, 0}, {0xF9, 0}, {0xFA, 0}, {0xFB, 0}, {0xFC, 0},
    {0xFD, 0x2116}, {0xFE, 0}, {0xFF, 0}};
constexpr Override kGreekFix[] = {{0xA1, 0x02BD}, {0xA2, 0x02BC}, {0xA4, 0}, {0xA5, 0}, {0xAA, 0}};
constexpr Override kHebrewFix[] = {{0xAF, 0x203E}};
// keybcs2 (Kamenicky) is CP437 with Czech and Slovak letters in place of some symbols.
constexpr Override kKeybcs2Fix[] = {
    {0x80, 0x010C}, {0x83, 0x010F}, {0x85, 0x010E}, {0x86, 0x0164}, {0x87, 0x010D}, {0x88, 0x011B},
    {0x89, 0x011A}, {0x8A, 0x0139}, {0x8B, 0x00CD}, {0x8C, 0x013E}, {0x8D, 0x013A}, {0x8F, 0x00C1},
    {0x91, 0x017E}, {0x92, 0x017D}, {0x95, 0x00D3}, {0x96, 0x016F}, {0x97, 0x00DA}, {0x98, 0x00FD},
    {0x9B, 0x0160}, {0x9C, 0x013D}, {0x9D, 0x00DD}, {0x9E, 0x0158}, {0x9F, 0x0165}, {0xA4, 0x0148},
    {0xA5, 0x0147}, {0xA6, 0x016E}, {0xA7, 0x00D4}, {0xA8, 0x0161}, {0xA9, 0x0159}, {0xAA, 0x0155},
    {0xAB, 0x0154}};
constexpr Override kKoi8uFix[] = {{0x95, 0x2022}};
// MySQL's latin1 is cp1252 whose five undefined bytes map to the C1 controls.
constexpr Override kLatin1Fix[] = {
    {0x81, 0x0081}, {0x8D, 0x008D}, {0x8F, 0x008F}, {0x90, 0x0090}, {0x9D, 0x009D}};
constexpr Override kMacromanFix[] = {{0xC6, 0x2206}, {0xF0, 0xF8FF}};
// swe7 is 7-bit ASCII with Swedish letters in place of some punctuation.
constexpr Override kSwe7Fix[] = {{0x40, 0x00C9}, {0x5B, 0x00C4}, {0x5C, 0x00D6}, {0x5D, 0x00C5},
                                 {0x5E, 0x00DC}, {0x60, 0x00E9}, {0x7B, 0x00E4}, {0x7C, 0x00F6},
                                 {0x7D, 0x00E5}, {0x7E, 0x00FC}, {0x7F, 0}};

#define RS_FIX(table) table, sizeof(table) / sizeof(table[0])

const CharsetInfo kCharsets[kCsCount] = {
    {"armscii8", Conv::kSingleByte, "ARMSCII-8", 1, RS_FIX(kArmscii8Fix)},
    {"ascii", Conv::kSingleByte, "ASCII", 1},
    {"big5", Conv::kIconv, "BIG5", 1},
    {"binary", Conv::kBinary, nullptr, 1},
    {"cp1250", Conv::kSingleByte, "CP1250", 1},
    {"cp1251", Conv::kSingleByte, "CP1251", 1},
    {"cp1256", Conv::kSingleByte, "CP1256", 1, RS_FIX(kCp1256Fix)},
    {"cp1257", Conv::kSingleByte, "CP1257", 1},
    {"cp850", Conv::kSingleByte, "CP850", 1},
    {"cp852", Conv::kSingleByte, "CP852", 1},
    {"cp866", Conv::kSingleByte, "CP866", 1, RS_FIX(kCp866Fix)},
    {"cp932", Conv::kIconv, "CP932", 1},
    {"dec8", Conv::kSingleByte, "DEC-MCS", 1, RS_FIX(kDec8Fix)},
    {"eucjpms", Conv::kIconv, "EUC-JP-MS", 1},
    {"euckr", Conv::kIconv, "EUC-KR", 1},
    {"gb18030", Conv::kIconv, "GB18030", 1},
    {"gb2312", Conv::kIconv, "EUC-CN", 1},
    {"gbk", Conv::kIconv, "GBK", 1},
    {"geostd8", Conv::kSingleByte, "GEORGIAN-PS", 1, RS_FIX(kGeostd8Fix)},
    {"greek", Conv::kSingleByte, "ISO-8859-7", 1, RS_FIX(kGreekFix)},
    {"hebrew", Conv::kSingleByte, "ISO-8859-8", 1, RS_FIX(kHebrewFix)},
    {"hp8", Conv::kSingleByte, "HP-ROMAN8", 1},
    {"keybcs2", Conv::kSingleByte, "CP437", 1, RS_FIX(kKeybcs2Fix)},
    {"koi8r", Conv::kSingleByte, "KOI8-R", 1},
    {"koi8u", Conv::kSingleByte, "KOI8-U", 1, RS_FIX(kKoi8uFix)},
    {"latin1", Conv::kSingleByte, "CP1252", 1, RS_FIX(kLatin1Fix)},
    {"latin2", Conv::kSingleByte, "ISO-8859-2", 1},
    {"latin5", Conv::kSingleByte, "ISO-8859-9", 1},
    {"latin7", Conv::kSingleByte, "ISO-8859-13", 1},
    {"macce", Conv::kSingleByte, "MAC-CENTRALEUROPE", 1},
    {"macroman", Conv::kSingleByte, "MACINTOSH", 1, RS_FIX(kMacromanFix)},
    {"sjis", Conv::kIconv, "SJIS", 1},
    {"swe7", Conv::kSingleByte, "ASCII", 1, RS_FIX(kSwe7Fix)},
    {"tis620", Conv::kSingleByte, "TIS-620", 1},
    {"ucs2", Conv::kIconv, "UCS-2BE", 2},
    {"ujis", Conv::kIconv, "EUC-JP", 1},
    {"utf16", Conv::kIconv, "UTF-16BE", 2},
    {"utf16le", Conv::kIconv, "UTF-16LE", 2},
    {"utf32", Conv::kIconv, "UTF-32BE", 4},
    {"utf8mb3", Conv::kUtf8, nullptr, 1},
    {"utf8mb4", Conv::kUtf8, nullptr, 1},
};

#undef RS_FIX

struct CollationRange {
  uint16_t first, last;
  Cs charset;
};

// Sorted, non-overlapping.
// clang-format off
constexpr CollationRange kCollations[] = {
    {1, 1, kBig5}, {2, 2, kLatin2}, {3, 3, kDec8}, {4, 4, kCp850}, {5, 5, kLatin1}, {6, 6, kHp8},
    {7, 7, kKoi8r}, {8, 8, kLatin1}, {9, 9, kLatin2}, {10, 10, kSwe7}, {11, 11, kAscii},
    {12, 12, kUjis}, {13, 13, kSjis}, {14, 14, kCp1251}, {15, 15, kLatin1}, {16, 16, kHebrew},
    {18, 18, kTis620}, {19, 19, kEuckr}, {20, 20, kLatin7}, {21, 21, kLatin2}, {22, 22, kKoi8u},
    {23, 23, kCp1251}, {24, 24, kGb2312}, {25, 25, kGreek}, {26, 26, kCp1250}, {27, 27, kLatin2},
    {28, 28, kGbk}, {29, 29, kCp1257}, {30, 30, kLatin5}, {31, 31, kLatin1}, {32, 32, kArmscii8},
    {33, 33, kUtf8mb3}, {34, 34, kCp1250}, {35, 35, kUcs2}, {36, 36, kCp866}, {37, 37, kKeybcs2},
    {38, 38, kMacce}, {39, 39, kMacroman}, {40, 40, kCp852}, {41, 42, kLatin7}, {43, 43, kMacce},
    {44, 44, kCp1250}, {45, 46, kUtf8mb4}, {47, 49, kLatin1}, {50, 52, kCp1251},
    {53, 53, kMacroman}, {54, 55, kUtf16}, {56, 56, kUtf16le}, {57, 57, kCp1256},
    {58, 59, kCp1257}, {60, 61, kUtf32}, {62, 62, kUtf16le}, {63, 63, kBinary},
    {64, 64, kArmscii8}, {65, 65, kAscii}, {66, 66, kCp1250}, {67, 67, kCp1256}, {68, 68, kCp866},
    {69, 69, kDec8}, {70, 70, kGreek}, {71, 71, kHebrew}, {72, 72, kHp8}, {73, 73, kKeybcs2},
    {74, 74, kKoi8r}, {75, 75, kKoi8u}, {76, 76, kUtf8mb3}, {77, 77, kLatin2}, {78, 78, kLatin5},
    {79, 79, kLatin7}, {80, 80, kCp850}, {81, 81, kCp852}, {82, 82, kSwe7}, {83, 83, kUtf8mb3},
    {84, 84, kBig5}, {85, 85, kEuckr}, {86, 86, kGb2312}, {87, 87, kGbk}, {88, 88, kSjis},
    {89, 89, kTis620}, {90, 90, kUcs2}, {91, 91, kUjis}, {92, 93, kGeostd8}, {94, 94, kLatin1},
    {95, 96, kCp932}, {97, 98, kEucjpms}, {99, 99, kCp1250}, {101, 124, kUtf16}, {128, 151, kUcs2},
    {159, 159, kUcs2}, {160, 183, kUtf32}, {192, 215, kUtf8mb3}, {223, 223, kUtf8mb3},
    {224, 247, kUtf8mb4}, {248, 250, kGb18030}, {255, 323, kUtf8mb4}, {576, 578, kUtf8mb3},
    {608, 610, kUtf8mb4}, {640, 642, kUcs2}, {672, 674, kUtf16}, {736, 738, kUtf32},
    {1025, 1025, kBig5}, {1027, 1027, kDec8}, {1028, 1028, kCp850}, {1030, 1030, kHp8},
    {1031, 1031, kKoi8r}, {1032, 1032, kLatin1}, {1033, 1033, kLatin2}, {1034, 1034, kSwe7},
    {1035, 1035, kAscii}, {1036, 1036, kUjis}, {1037, 1037, kSjis}, {1040, 1040, kHebrew},
    {1042, 1042, kTis620}, {1043, 1043, kEuckr}, {1046, 1046, kKoi8u}, {1048, 1048, kGb2312},
    {1049, 1049, kGreek}, {1050, 1050, kCp1250}, {1052, 1052, kGbk}, {1054, 1054, kLatin5},
    {1056, 1056, kArmscii8}, {1057, 1057, kUtf8mb3}, {1059, 1059, kUcs2}, {1060, 1060, kCp866},
    {1061, 1061, kKeybcs2}, {1062, 1062, kMacce}, {1063, 1063, kMacroman}, {1064, 1064, kCp852},
    {1065, 1065, kLatin7}, {1067, 1067, kMacce}, {1069, 1070, kUtf8mb4}, {1071, 1071, kLatin1},
    {1074, 1075, kCp1251}, {1077, 1077, kMacroman}, {1078, 1079, kUtf16}, {1080, 1080, kUtf16le},
    {1081, 1081, kCp1256}, {1082, 1083, kCp1257}, {1084, 1085, kUtf32}, {1086, 1086, kUtf16le},
    {1088, 1088, kArmscii8}, {1089, 1089, kAscii}, {1090, 1090, kCp1250}, {1091, 1091, kCp1256},
    {1092, 1092, kCp866}, {1093, 1093, kDec8}, {1094, 1094, kGreek}, {1095, 1095, kHebrew},
    {1096, 1096, kHp8}, {1097, 1097, kKeybcs2}, {1098, 1098, kKoi8r}, {1099, 1099, kKoi8u},
    {1101, 1101, kLatin2}, {1102, 1102, kLatin5}, {1103, 1103, kLatin7}, {1104, 1104, kCp850},
    {1105, 1105, kCp852}, {1106, 1106, kSwe7}, {1107, 1107, kUtf8mb3}, {1108, 1108, kBig5},
    {1109, 1109, kEuckr}, {1110, 1110, kGb2312}, {1111, 1111, kGbk}, {1112, 1112, kSjis},
    {1113, 1113, kTis620}, {1114, 1114, kUcs2}, {1115, 1115, kUjis}, {1116, 1117, kGeostd8},
    {1119, 1120, kCp932}, {1121, 1122, kEucjpms}, {1125, 1125, kUtf16}, {1147, 1147, kUtf16},
    {1152, 1152, kUcs2}, {1174, 1174, kUcs2}, {1184, 1184, kUtf32}, {1206, 1206, kUtf32},
    {1216, 1216, kUtf8mb3}, {1238, 1238, kUtf8mb3}, {1248, 1248, kUtf8mb4}, {1270, 1270, kUtf8mb4},
};
// clang-format on

constexpr uint32_t kUcaFirst = 2048;
constexpr uint32_t kUcaEnd = 2048 + 5 * 256;
constexpr Cs kUcaBlocks[5] = {kUtf8mb3, kUtf8mb4, kUcs2, kUtf16, kUtf32};

const CharsetInfo* Lookup(uint32_t collation) {
  if (collation >= kUcaFirst && collation < kUcaEnd) {
    return &kCharsets[kUcaBlocks[(collation - kUcaFirst) >> 8]];
  }
  size_t lo = 0, hi = sizeof(kCollations) / sizeof(kCollations[0]);
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (kCollations[mid].last < collation) {
      lo = mid + 1;
    } else if (kCollations[mid].first > collation) {
      hi = mid;
    } else {
      return &kCharsets[kCollations[mid].charset];
    }
  }
  return nullptr;
}

constexpr uint32_t kReplacement = 0xFFFD;

void AppendCodePoint(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | cp >> 6));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | cp >> 12));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | cp >> 18));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Length of the valid UTF-8 sequence at s[i] (a non-ASCII lead byte), or 0 with *skip set to
// the length of its maximal invalid prefix (at least 1), as Unicode's U+FFFD substitution
// practice counts it.
size_t Utf8SequenceLength(std::string_view s, size_t i, size_t* skip) {
  const auto lead = static_cast<uint8_t>(s[i]);
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    *skip = 1;
    return 0;
  }
  size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= s.size()) break;
    const auto b = static_cast<uint8_t>(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
  }
  if (k > need) return need + 1;
  *skip = k;
  return 0;
}

void AppendCheckedUtf8(std::string_view s, std::string* out) {
  size_t run = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t skip = 0;
    const size_t len = Utf8SequenceLength(s, i, &skip);
    if (len > 0) {
      i += len;
      continue;
    }
    out->append(s.data() + run, i - run);
    AppendCodePoint(kReplacement, out);
    i += skip;
    run = i;
  }
  out->append(s.data() + run, s.size() - run);
}

// ---------------------------------------------------------------------------------------------
// Single-byte character sets: one table of code points per set, built on first use.

using ByteTable = std::array<uint32_t, 256>;

void BuildByteTable(const CharsetInfo& info, ByteTable* table) {
  table->fill(kReplacement);
  for (int b = 0; b < 0x80; ++b) (*table)[b] = static_cast<uint32_t>(b);
  iconv_t cd = iconv_open("UTF-32LE", info.iconv_name);
  if (cd != reinterpret_cast<iconv_t>(-1)) {
    for (int b = 0; b < 256; ++b) {
      char in = static_cast<char>(b);
      char* in_ptr = &in;
      size_t in_left = 1;
      unsigned char outbuf[8];
      char* out_ptr = reinterpret_cast<char*>(outbuf);
      size_t out_left = sizeof(outbuf);
      iconv(cd, nullptr, nullptr, nullptr, nullptr);
      const size_t rc = iconv(cd, &in_ptr, &in_left, &out_ptr, &out_left);
      if (rc != static_cast<size_t>(-1) && in_left == 0 && sizeof(outbuf) - out_left == 4) {
        (*table)[b] = static_cast<uint32_t>(outbuf[0]) | static_cast<uint32_t>(outbuf[1]) << 8 |
                      static_cast<uint32_t>(outbuf[2]) << 16 |
                      static_cast<uint32_t>(outbuf[3]) << 24;
      } else {
        (*table)[b] = kReplacement;
      }
    }
    iconv_close(cd);
  }
  for (size_t i = 0; i < info.override_count; ++i) {
    const Override& o = info.overrides[i];
    (*table)[o.byte] = o.code_point != 0 ? o.code_point : kReplacement;
  }
}

const ByteTable& TableFor(Cs cs) {
  static ByteTable tables[kCsCount];
  static std::once_flag once[kCsCount];
  std::call_once(once[cs], [cs] { BuildByteTable(kCharsets[cs], &tables[cs]); });
  return tables[cs];
}

void AppendSingleByte(Cs cs, std::string_view s, std::string* out) {
  const ByteTable& table = TableFor(cs);
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x80 && table[b] == b) continue;
    out->append(s.data() + run, i - run);
    AppendCodePoint(table[b], out);
    run = i + 1;
  }
  out->append(s.data() + run, s.size() - run);
}

// ---------------------------------------------------------------------------------------------
// iconv for multi-byte sets: one converter per set and thread.

class IconvCache {
 public:
  ~IconvCache() {
    for (iconv_t cd : handles_) {
      if (cd != kInvalid && cd != nullptr) iconv_close(cd);
    }
  }
  // nullptr when glibc lacks the set.
  iconv_t Get(Cs cs) {
    if (handles_[cs] == nullptr) {
      handles_[cs] = iconv_open("UTF-8", kCharsets[cs].iconv_name);
    }
    return handles_[cs] == kInvalid ? nullptr : handles_[cs];
  }

 private:
  static inline const iconv_t kInvalid = reinterpret_cast<iconv_t>(-1);
  std::array<iconv_t, kCsCount> handles_{};
};

void AppendIconv(Cs cs, std::string_view s, std::string* out) {
  thread_local IconvCache cache;
  iconv_t cd = cache.Get(cs);
  if (cd == nullptr) {
    // No converter: keep ASCII, mark everything else as unknown.
    for (char c : s) {
      if (static_cast<uint8_t>(c) < 0x80) {
        out->push_back(c);
      } else {
        AppendCodePoint(kReplacement, out);
      }
    }
    return;
  }
  iconv(cd, nullptr, nullptr, nullptr, nullptr);
  const size_t unit = kCharsets[cs].unit;
  char* in = const_cast<char*>(s.data());
  size_t in_left = s.size();
  while (in_left > 0) {
    const size_t start = out->size();
    const size_t room = in_left * 4 + 16;
    out->resize(start + room);
    char* out_ptr = out->data() + start;
    size_t out_left = room;
    const size_t rc = iconv(cd, &in, &in_left, &out_ptr, &out_left);
    out->resize(start + (room - out_left));
    if (rc != static_cast<size_t>(-1)) break;
    if (errno == E2BIG) continue;
    // EILSEQ (invalid) or EINVAL (incomplete at the end): replace one unit and go on.
    AppendCodePoint(kReplacement, out);
    const size_t skip = std::min(unit, in_left);
    in += skip;
    in_left -= skip;
    iconv(cd, nullptr, nullptr, nullptr, nullptr);
  }
}

}  // namespace

const char* CharsetOfCollation(uint32_t collation) {
  const CharsetInfo* info = Lookup(collation);
  return info != nullptr ? info->name : nullptr;
}

void AppendAsUtf8(uint32_t collation, std::string_view text, std::string* out) {
  const CharsetInfo* info = Lookup(collation);
  if (info == nullptr || info->conv == Conv::kUtf8) {
    AppendCheckedUtf8(text, out);
    return;
  }
  const auto cs = static_cast<Cs>(info - kCharsets);
  switch (info->conv) {
    case Conv::kBinary:
      out->append(text);
      return;
    case Conv::kSingleByte:
      AppendSingleByte(cs, text, out);
      return;
    case Conv::kIconv:
      AppendIconv(cs, text, out);
      return;
    case Conv::kUtf8:
      return;
  }
}

}  // namespace replsync::capture
