#include "capture/binlog/value_format.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "capture/binlog/charset.h"
#include "capture/binlog/json_binary.h"
#include "sync/text.h"

namespace replsync::capture {

using capture::ColumnDef;
using capture::DateTimeValue;
using capture::RowImage;
using capture::TableMap;
using capture::TimeValue;
using capture::Value;
using capture::ValueKind;

void TextBuffer::Grow(size_t n) {
  size_t used = size();
  size_t capacity = static_cast<size_t>(cap_ - data_.get());
  size_t wanted = std::max({capacity * 2, used + n, size_t{4096}});
  std::unique_ptr<char[]> bigger(new char[wanted]);
  if (used != 0) std::memcpy(bigger.get(), data_.get(), used);
  data_ = std::move(bigger);
  end_ = data_.get() + used;
  cap_ = data_.get() + wanted;
}

namespace {

// Byte classes for escaping: 0 = copy as it is, 1 = escape, 2 = first byte of a (possibly
// invalid) multi-byte UTF-8 sequence.
constexpr std::array<uint8_t, 256> MakeClassTable(bool sql) {
  std::array<uint8_t, 256> table{};
  for (int c = 0; c < 256; ++c) {
    if (c >= 0x80) {
      table[c] = 2;
    } else if (sql) {
      table[c] =
          (c == 0 || c == '\'' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == 0x1a)
              ? 1
              : 0;
    } else {
      table[c] = (c < 0x20 || c == '"' || c == '\\') ? 1 : 0;
    }
  }
  return table;
}
constexpr std::array<uint8_t, 256> kJsonClass = MakeClassTable(false);
constexpr std::array<uint8_t, 256> kSqlClass = MakeClassTable(true);

constexpr char kReplacementChar[] = "\xEF\xBF\xBD";  // U+FFFD in UTF-8
constexpr char kHexDigits[] = "0123456789ABCDEF";
constexpr char kHexLower[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence starting at p (whose first byte is >= 0x80), or 0 when it is
// not valid (stray continuation, overlong form, surrogate, beyond U+10FFFF, truncated).
size_t Utf8SequenceLength(const unsigned char* p, const unsigned char* end) {
  unsigned char c = p[0];
  size_t avail = static_cast<size_t>(end - p);
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < avail && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// Writes the JSON escape of a byte of class 1 at w (at most 6 bytes); returns the end.
char* WriteJsonEscape(unsigned char c, char* w) {
  char short_form = 0;
  switch (c) {
    case '"':
      short_form = '"';
      break;
    case '\\':
      short_form = '\\';
      break;
    case '\n':
      short_form = 'n';
      break;
    case '\r':
      short_form = 'r';
      break;
    case '\t':
      short_form = 't';
      break;
    case '\b':
      short_form = 'b';
      break;
    case '\f':
      short_form = 'f';
      break;
    default:
      break;
  }
  w[0] = '\\';
  if (short_form != 0) {
    w[1] = short_form;
    return w + 2;
  }
  w[1] = 'u';
  w[2] = '0';
  w[3] = '0';
  w[4] = kHexLower[c >> 4];
  w[5] = kHexLower[c & 15];
  return w + 6;
}

// Writes MySQL's escape of a byte of class 1 at w (2 bytes); returns the end.
char* WriteSqlEscape(unsigned char c, char* w) {
  char letter;
  switch (c) {
    case 0:
      letter = '0';
      break;
    case '\'':
      letter = '\'';
      break;
    case '\\':
      letter = '\\';
      break;
    case '\n':
      letter = 'n';
      break;
    case '\r':
      letter = 'r';
      break;
    case '\t':
      letter = 't';
      break;
    default:
      letter = 'Z';
      break;  // 0x1a, the only other escaped byte
  }
  w[0] = '\\';
  w[1] = letter;
  return w + 2;
}

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighBits = 0x8080808080808080ULL;

// Word-at-a-time tests on eight bytes (little-endian: the first byte is the lowest). Each returns
// a mask whose LOWEST set bit is exact: it marks the first byte that matches. Bits above it may
// be spurious (borrows), which does not matter since only the first match is used.
constexpr uint64_t ZeroBytes(uint64_t v) { return (v - kOnes) & ~v & kHighBits; }
constexpr uint64_t BytesBelow(uint64_t v, uint8_t n) { return (v - kOnes * n) & ~v & kHighBits; }

// Marks the bytes that need attention: a high bit, a control byte (below 0x20 for JSON, 0x1b for
// SQL; the byte loop sorts out which of those are escaped), the quote and the backslash.
template <bool kSql>
inline uint64_t Attention(uint64_t v) {
  return (v & kHighBits) | BytesBelow(v, kSql ? 0x1b : 0x20) |
         ZeroBytes(v ^ (kOnes * (kSql ? '\'' : '"'))) | ZeroBytes(v ^ (kOnes * '\\'));
}

// Sixteen bytes at a time with GCC/Clang vector extensions (SSE2 on x86-64, scalar elsewhere):
// true when none of them needs attention (same test as Attention, bytes >= 0x80 being negative).
typedef int8_t Bytes16 __attribute__((vector_size(16)));

template <bool kSql>
inline bool Clean16(const unsigned char* p) {
  Bytes16 v;
  std::memcpy(&v, p, 16);
  constexpr int8_t kControlBelow = kSql ? 0x1b : 0x20;
  constexpr int8_t kQuote = kSql ? '\'' : '"';
  constexpr int8_t kBackslash = '\\';
  Bytes16 mask = (v < kControlBelow) | (v == kQuote) | (v == kBackslash);
  uint64_t halves[2];
  std::memcpy(halves, &mask, 16);
  return (halves[0] | halves[1]) == 0;
}

// Appends `text` escaped for JSON or SQL, without the quotes, in one pass: clean runs are copied
// eight bytes at a time. Room is reserved per chunk of input, so a huge value does not need six
// times its size at once.
//
// With kAsciiOnly (text in a character set that is not UTF-8 but shares ASCII with it) it stops at
// the first byte >= 0x80 and returns false, leaving *out partly appended; the caller then
// converts the text. Otherwise it returns true.
template <bool kSql, bool kAsciiOnly = false>
bool AppendEscaped(std::string_view text, TextBuffer* out) {
  constexpr size_t kChunk = 16384;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  const std::array<uint8_t, 256>& classes = kSql ? kSqlClass : kJsonClass;
  while (p < end) {
    const auto* chunk_end = p + std::min(static_cast<size_t>(end - p), kChunk);
    // Worst case 6 output bytes per input byte (\u00XX), plus a UTF-8 sequence that starts in
    // this chunk and ends in the next (at most 3 more bytes).
    char* w = out->Reserve(static_cast<size_t>(chunk_end - p) * 6 + 8);
    while (p < chunk_end) {
      if (chunk_end - p >= 16 && Clean16<kSql>(p)) {
        std::memcpy(w, p, 16);
        w += 16;
        p += 16;
        continue;
      }
      if (chunk_end - p >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        uint64_t mask = Attention<kSql>(v);
        std::memcpy(w, &v, 8);
        if (mask == 0) {
          w += 8;
          p += 8;
          continue;
        }
        size_t clean = static_cast<size_t>(std::countr_zero(mask)) >> 3;
        w += clean;
        p += clean;
      }
      const unsigned char c = *p;
      const uint8_t cls = classes[c];
      if (cls == 0) {
        *w++ = static_cast<char>(c);
        ++p;
      } else if (cls == 1) {
        w = kSql ? WriteSqlEscape(c, w) : WriteJsonEscape(c, w);
        ++p;
      } else {
        if (kAsciiOnly) {
          out->Commit(w);
          return false;
        }
        size_t n = Utf8SequenceLength(p, end);
        if (n != 0) {
          std::memcpy(w, p, n);
          w += n;
          p += n;
        } else {
          std::memcpy(w, kReplacementChar, 3);
          w += 3;
          ++p;
        }
      }
    }
    out->Commit(w);
  }
  return true;
}

// Writes `value` with at least `width` digits (zero padded) at p; returns the end.
char* PutPadded(char* p, uint64_t value, int width) {
  char tmp[24];
  auto [end, ec] = std::to_chars(tmp, tmp + sizeof(tmp), value);
  int len = static_cast<int>(end - tmp);
  for (int i = len; i < width; ++i) *p++ = '0';
  std::memcpy(p, tmp, static_cast<size_t>(len));
  return p + len;
}

char* PutTwo(char* p, unsigned value) {
  p[0] = static_cast<char>('0' + value / 10 % 10);
  p[1] = static_cast<char>('0' + value % 10);
  return p + 2;
}

// "." and the first `decimals` digits of the six-digit microseconds; nothing for decimals == 0.
char* PutFraction(char* p, uint32_t micro, uint8_t decimals) {
  if (decimals == 0) return p;
  if (decimals > 6) decimals = 6;
  uint32_t digits = micro % 1000000;
  char six[6];
  for (int i = 5; i >= 0; --i) {
    six[i] = static_cast<char>('0' + digits % 10);
    digits /= 10;
  }
  *p++ = '.';
  std::memcpy(p, six, decimals);
  return p + decimals;
}

char* PutDate(char* p, uint64_t year, unsigned month, unsigned day) {
  p = PutPadded(p, year, 4);
  *p++ = '-';
  p = PutTwo(p, month);
  *p++ = '-';
  return PutTwo(p, day);
}

char* PutClock(char* p, unsigned hour, unsigned minute, unsigned second) {
  p = PutTwo(p, hour);
  *p++ = ':';
  p = PutTwo(p, minute);
  *p++ = ':';
  return PutTwo(p, second);
}

// Days since 1970-01-01 to a proleptic Gregorian date (the "civil from days" computation over
// 400-year eras of 146097 days, with years starting in March so the leap day comes last).
void CivilFromDays(int64_t days, int64_t* year, unsigned* month, unsigned* day) {
  int64_t z = days + 719468;  // days since 0000-03-01
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;                                       // [0, 146096]
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  int64_t mp = (5 * doy + 2) / 153;                                     // March = 0
  *day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  *month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  *year = yoe + era * 400 + (*month <= 2 ? 1 : 0);
}

// Appends a float or double in its shortest round-trip form. Non-finite values (never stored by
// MySQL) print as the strings "nan", "inf", "-inf" (quoted for both JSON and SQL).
template <typename T>
void AppendFloating(T value, TextBuffer* out) {
  if (!std::isfinite(value)) {
    out->Append(std::isnan(value) ? "\"nan\"" : (value > 0 ? "\"inf\"" : "\"-inf\""));
    return;
  }
  char* w = out->Reserve(40);
  out->Commit(std::to_chars(w, w + 40, value).ptr);
}

float LoadFloatLe(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  uint32_t bits = static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
                  static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
  return std::bit_cast<float>(bits);
}

Status CheckVector(std::string_view bytes) {
  if (bytes.size() % 4 != 0) {
    return Status::Corruption("VECTOR value of " + std::to_string(bytes.size()) +
                              " bytes is not a whole number of float32 values");
  }
  return Status::Ok();
}

void AppendVector(std::string_view bytes, TextBuffer* out) {
  out->Push('[');
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    if (i != 0) out->Push(',');
    AppendFloating(LoadFloatLe(bytes.data() + i), out);
  }
  out->Push(']');
}

// Reads a MySQL packed length (net_field_length: one byte below 251, else 0xfc + 2 bytes,
// 0xfd + 3 bytes, 0xfe + 8 bytes, little-endian). False when it overruns `in`.
bool ReadPackedLength(std::string_view* in, uint64_t* value) {
  if (in->empty()) return false;
  auto first = static_cast<uint8_t>((*in)[0]);
  size_t bytes = first < 251 ? 0 : first == 0xfc ? 2 : first == 0xfd ? 3 : first == 0xfe ? 8 : 99;
  if (bytes == 99 || in->size() < 1 + bytes) return false;
  if (bytes == 0) {
    *value = first;
  } else {
    *value = 0;
    for (size_t i = bytes; i > 0; --i) *value = *value << 8 | static_cast<uint8_t>((*in)[i]);
  }
  in->remove_prefix(1 + bytes);
  return true;
}

// The SET mask is printable as labels when there are labels for every bit that is set.
bool SetFitsLabels(uint64_t mask, size_t labels) {
  if (labels == 0) return false;
  return labels >= 64 || (mask >> labels) == 0;
}

unsigned BitWidth(const ColumnDef& column, uint64_t value) {
  if (column.meta >= 1 && column.meta <= 64) return column.meta;
  unsigned width = static_cast<unsigned>(std::bit_width(value));
  return width == 0 ? 1 : width;
}

const ColumnDef kUnknownColumn;

const ColumnDef& ColumnAt(const TableMap& table, size_t index) {
  return index < table.columns.size() ? table.columns[index] : kUnknownColumn;
}

bool IsPresent(const RowImage& image, size_t index) {
  return index >= image.present.size() || image.present[index];
}

const Value* BeforeValue(const RowImage* before, size_t index) {
  if (before == nullptr || index >= before->values.size() || !IsPresent(*before, index)) {
    return nullptr;
  }
  return &before->values[index];
}

// The context names the column as `db`.`table`.name, or `db`.`table`.@N when the table map has
// no names. Built by appending to one string: GCC 12 reports a false -Wrestrict overlap in
// `"@" + std::to_string(n)` (operator+(const char*, string&&) inlines string::insert; GCC bug
// 105329).
Status ColumnError(const Status& status, const TableMap& table, size_t index) {
  const ColumnDef& column = ColumnAt(table, index);
  std::string context = "column `" + table.db + "`.`" + table.table + "`.";
  if (column.name.empty()) {
    context += '@';
    context += std::to_string(index + 1);
  } else {
    context += column.name;
  }
  return status.WithContext(context);
}

}  // namespace

void AppendJsonString(std::string_view utf8, TextBuffer* out) {
  out->Push('"');
  AppendEscaped<false>(utf8, out);
  out->Push('"');
}

void AppendSqlString(std::string_view utf8, TextBuffer* out) {
  out->Push('\'');
  AppendEscaped<true>(utf8, out);
  out->Push('\'');
}

void AppendSqlIdentifier(std::string_view name, TextBuffer* out) {
  out->Push('`');
  size_t start = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '`') {
      out->Append(name.substr(start, i + 1 - start));
      out->Push('`');
      start = i + 1;
    }
  }
  out->Append(name.substr(start));
  out->Push('`');
}

void AppendBase64(std::string_view bytes, TextBuffer* out) {
  out->Commit(EncodeBase64(bytes, out->Reserve(Base64Size(bytes.size()))));
}

void AppendHex(std::string_view bytes, TextBuffer* out) {
  char* w = out->Reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    *w++ = kHexDigits[c >> 4];
    *w++ = kHexDigits[c & 15];
  }
  out->Commit(w);
}

void AppendDate(const DateTimeValue& value, TextBuffer* out) {
  char* w = out->Reserve(32);
  out->Commit(PutDate(w, value.year, value.month, value.day));
}

void AppendDateTime(const DateTimeValue& value, uint8_t decimals, TextBuffer* out) {
  char* w = out->Reserve(48);
  w = PutDate(w, value.year, value.month, value.day);
  *w++ = ' ';
  w = PutClock(w, value.hour, value.minute, value.second);
  out->Commit(PutFraction(w, value.micro, decimals));
}

void AppendTime(const TimeValue& value, uint8_t decimals, TextBuffer* out) {
  char* w = out->Reserve(48);
  if (value.negative) *w++ = '-';
  w = PutPadded(w, value.hours, 2);
  *w++ = ':';
  w = PutTwo(w, value.minute);
  *w++ = ':';
  w = PutTwo(w, value.second);
  out->Commit(PutFraction(w, value.micro, decimals));
}

void AppendUtcDateTime(int64_t seconds, uint32_t micro, uint8_t decimals, TextBuffer* out) {
  char* w = out->Reserve(64);
  if (seconds == 0 && micro == 0) {
    w = PutDate(w, 0, 0, 0);
    *w++ = ' ';
    w = PutClock(w, 0, 0, 0);
  } else {
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t rest = seconds - days * 86400;  // [0, 86399]
    int64_t year;
    unsigned month, day;
    CivilFromDays(days, &year, &month, &day);
    if (year < 0) {
      *w++ = '-';
      year = -year;
    }
    w = PutDate(w, static_cast<uint64_t>(year), month, day);
    *w++ = ' ';
    w = PutClock(w, static_cast<unsigned>(rest / 3600), static_cast<unsigned>(rest / 60 % 60),
                 static_cast<unsigned>(rest % 60));
  }
  out->Commit(PutFraction(w, micro, decimals));
}

ValueFormatter::CharsetClass ValueFormatter::ClassOf(uint32_t collation) {
  CachedClass& slot = charset_cache_[collation % kCharsetCacheSize];
  if (slot.collation == collation) return slot.cls;
  CharsetClass cls;
  const char* cs = capture::CharsetOfCollation(collation);
  if (cs == nullptr || std::strncmp(cs, "utf8", 4) == 0 || std::strcmp(cs, "ascii") == 0) {
    cls = CharsetClass::kUtf8;  // unknown ids are treated as UTF-8 (charset.h)
  } else if (std::strncmp(cs, "ucs2", 4) == 0 || std::strncmp(cs, "utf16", 5) == 0 ||
             std::strncmp(cs, "utf32", 5) == 0) {
    cls = CharsetClass::kOther;
  } else {
    cls = CharsetClass::kAsciiCompatible;
  }
  slot.collation = collation;
  slot.cls = cls;
  return cls;
}

void ValueFormatter::AppendUtf8(uint32_t collation, std::string_view text, std::string* out) {
  if (ClassOf(collation) == CharsetClass::kUtf8) {
    out->append(text);
  } else {
    capture::AppendAsUtf8(collation, text, out);
  }
}

void ValueFormatter::AppendText(uint32_t collation, std::string_view text, bool sql,
                                TextBuffer* out) {
  const char quote = sql ? '\'' : '"';
  out->Push(quote);
  CharsetClass cls = ClassOf(collation);
  std::string_view utf8 = text;
  if (cls != CharsetClass::kUtf8) {
    // ASCII text reads the same in UTF-8: escape it directly, convert only when it is not.
    size_t start = out->size();
    if (cls == CharsetClass::kAsciiCompatible &&
        (sql ? AppendEscaped<true, true>(text, out) : AppendEscaped<false, true>(text, out))) {
      out->Push(quote);
      return;
    }
    out->Truncate(start);
    scratch_.clear();
    capture::AppendAsUtf8(collation, text, &scratch_);
    utf8 = scratch_;
  }
  if (sql) {
    AppendEscaped<true>(utf8, out);
  } else {
    AppendEscaped<false>(utf8, out);
  }
  out->Push(quote);
}

// A DATE, TIME, DATETIME or TIMESTAMP value in MySQL's text form between `quote` characters
// (JSON strings and SQL literals differ only in the quote).
void AppendQuotedTemporal(const Value& value, char quote, TextBuffer* out) {
  out->Push(quote);
  switch (value.kind) {
    case ValueKind::kDate:
      AppendDate(value.dt, out);
      break;
    case ValueKind::kTime:
      AppendTime(value.tm, value.decimals, out);
      break;
    case ValueKind::kDateTime:
      AppendDateTime(value.dt, value.decimals, out);
      break;
    case ValueKind::kTimestamp:
      AppendUtcDateTime(value.ts.seconds, value.ts.micro, value.decimals, out);
      break;
    default:
      break;
  }
  out->Push(quote);
}

Status ValueFormatter::JsonText(const Value& value, const Value* before) {
  json_.clear();
  if (value.kind == ValueKind::kJson) return capture::JsonBinaryToText(value.bytes, &json_);
  // kJsonDiff: the diff applies to the column's before document (callers check it is there).
  return capture::ApplyJsonDiff(before->bytes, value.bytes, &json_);
}

Status ValueFormatter::AppendJson(const ColumnDef& column, const Value& value, const Value* before,
                                  TextBuffer* out) {
  switch (value.kind) {
    case ValueKind::kNull:
      out->Append("null");
      return Status::Ok();
    case ValueKind::kInt:
    case ValueKind::kYear:
      out->AppendInt(value.i);
      return Status::Ok();
    case ValueKind::kUInt:
    case ValueKind::kBit:
      out->AppendInt(value.u);
      return Status::Ok();
    case ValueKind::kFloat:
      AppendFloating(value.f, out);
      return Status::Ok();
    case ValueKind::kDouble:
      AppendFloating(value.d, out);
      return Status::Ok();
    case ValueKind::kDecimal:
      AppendJsonString(value.bytes, out);
      return Status::Ok();
    case ValueKind::kDate:
    case ValueKind::kTime:
    case ValueKind::kDateTime:
    case ValueKind::kTimestamp:
      AppendQuotedTemporal(value, '"', out);
      return Status::Ok();
    case ValueKind::kEnum: {
      const auto& labels = column.enum_values;
      if (labels.empty() || value.u > labels.size()) {
        out->AppendInt(value.u);
      } else if (value.u == 0) {
        out->Append("\"\"");
      } else {
        AppendText(column.collation, labels[value.u - 1], false, out);
      }
      return Status::Ok();
    }
    case ValueKind::kSet: {
      const auto& labels = column.enum_values;
      if (!SetFitsLabels(value.u, labels.size())) {
        out->AppendInt(value.u);
        return Status::Ok();
      }
      out->Push('[');
      bool first = true;
      for (size_t bit = 0; bit < labels.size() && bit < 64; ++bit) {
        if ((value.u >> bit & 1) == 0) continue;
        if (!first) out->Push(',');
        first = false;
        AppendText(column.collation, labels[bit], false, out);
      }
      out->Push(']');
      return Status::Ok();
    }
    case ValueKind::kString:
      AppendText(column.collation, value.bytes, false, out);
      return Status::Ok();
    case ValueKind::kBinary:
    case ValueKind::kGeometry:
      out->Append("{\"base64\":\"");
      AppendBase64(value.bytes, out);
      out->Append("\"}");
      return Status::Ok();
    case ValueKind::kJson:
    case ValueKind::kJsonDiff:
      if (value.kind == ValueKind::kJsonDiff &&
          (before == nullptr || before->kind != ValueKind::kJson)) {
        // Nothing to apply the diff to (binlog_row_image=MINIMAL): show the operations.
        size_t start = out->size();
        Status st = AppendJsonDiffJson(value.bytes, out);
        if (!st.ok()) out->Truncate(start);
        return st;
      }
      RS_RETURN_IF_ERROR(JsonText(value, before));
      out->Append(json_);
      return Status::Ok();
    case ValueKind::kVector:
      RS_RETURN_IF_ERROR(CheckVector(value.bytes));
      AppendVector(value.bytes, out);
      return Status::Ok();
  }
  return Status::Internal("value of unknown kind " + std::to_string(static_cast<int>(value.kind)));
}

Status ValueFormatter::AppendSql(const ColumnDef& column, const Value& value, const Value* before,
                                 TextBuffer* out) {
  switch (value.kind) {
    case ValueKind::kNull:
      out->Append("NULL");
      return Status::Ok();
    case ValueKind::kInt:
    case ValueKind::kYear:
      out->AppendInt(value.i);
      return Status::Ok();
    case ValueKind::kUInt:
      out->AppendInt(value.u);
      return Status::Ok();
    case ValueKind::kBit: {
      unsigned width = BitWidth(column, value.u);
      char* w = out->Reserve(width + 3);
      *w++ = 'b';
      *w++ = '\'';
      for (unsigned i = width; i-- > 0;) *w++ = i < 64 && (value.u >> i & 1) ? '1' : '0';
      *w++ = '\'';
      out->Commit(w);
      return Status::Ok();
    }
    case ValueKind::kFloat:
      AppendFloating(value.f, out);
      return Status::Ok();
    case ValueKind::kDouble:
      AppendFloating(value.d, out);
      return Status::Ok();
    case ValueKind::kDecimal:
      out->Append(value.bytes);
      return Status::Ok();
    case ValueKind::kDate:
    case ValueKind::kTime:
    case ValueKind::kDateTime:
    case ValueKind::kTimestamp:
      AppendQuotedTemporal(value, '\'', out);
      return Status::Ok();
    case ValueKind::kEnum: {
      const auto& labels = column.enum_values;
      if (labels.empty() || value.u > labels.size()) {
        out->AppendInt(value.u);
      } else if (value.u == 0) {
        out->Append("''");
      } else {
        AppendText(column.collation, labels[value.u - 1], true, out);
      }
      return Status::Ok();
    }
    case ValueKind::kSet: {
      const auto& labels = column.enum_values;
      if (!SetFitsLabels(value.u, labels.size())) {
        out->AppendInt(value.u);
        return Status::Ok();
      }
      json_.clear();
      for (size_t bit = 0; bit < labels.size() && bit < 64; ++bit) {
        if ((value.u >> bit & 1) == 0) continue;
        if (!json_.empty()) json_.push_back(',');
        AppendUtf8(column.collation, labels[bit], &json_);
      }
      AppendSqlString(json_, out);
      return Status::Ok();
    }
    case ValueKind::kString:
      AppendText(column.collation, value.bytes, true, out);
      return Status::Ok();
    case ValueKind::kBinary:
    case ValueKind::kGeometry:
      out->Append("X'");
      AppendHex(value.bytes, out);
      out->Push('\'');
      return Status::Ok();
    case ValueKind::kJson:
    case ValueKind::kJsonDiff:
      if (value.kind == ValueKind::kJsonDiff &&
          (before == nullptr || before->kind != ValueKind::kJson)) {
        out->Append("/* JSON diff */ X'");
        AppendHex(value.bytes, out);
        out->Push('\'');
        return Status::Ok();
      }
      RS_RETURN_IF_ERROR(JsonText(value, before));
      AppendSqlString(json_, out);
      return Status::Ok();
    case ValueKind::kVector: {
      RS_RETURN_IF_ERROR(CheckVector(value.bytes));
      out->Push('\'');
      AppendVector(value.bytes, out);
      out->Push('\'');
      return Status::Ok();
    }
  }
  return Status::Internal("value of unknown kind " + std::to_string(static_cast<int>(value.kind)));
}

Status ValueFormatter::ParseJsonDiff(std::string_view diff) {
  diff_ops_.clear();
  while (!diff.empty()) {
    JsonDiffOp op{static_cast<uint8_t>(diff[0]), {}, {}};
    if (op.op > 2) {
      return Status::Corruption("JSON diff: unknown operation " + std::to_string(op.op));
    }
    diff.remove_prefix(1);
    uint64_t length;
    if (!ReadPackedLength(&diff, &length) || length > diff.size()) {
      return Status::Corruption("JSON diff: path overruns the diff");
    }
    op.path = diff.substr(0, length);
    diff.remove_prefix(length);
    if (op.op != 2) {
      if (!ReadPackedLength(&diff, &length) || length > diff.size() || length == 0) {
        return Status::Corruption("JSON diff: value overruns the diff");
      }
      op.value = diff.substr(0, length);
      diff.remove_prefix(length);
    }
    diff_ops_.push_back(op);
  }
  return Status::Ok();
}

Status ValueFormatter::AppendJsonDiffJson(std::string_view diff, TextBuffer* out) {
  static constexpr const char* kOpNames[] = {"replace", "insert", "remove"};
  RS_RETURN_IF_ERROR(ParseJsonDiff(diff));
  out->Append("{\"json_diff\":[");
  for (size_t i = 0; i < diff_ops_.size(); ++i) {
    const JsonDiffOp& op = diff_ops_[i];
    if (i != 0) out->Push(',');
    out->Append("{\"op\":\"");
    out->Append(kOpNames[op.op]);
    out->Append("\",\"path\":");
    AppendJsonString(op.path, out);
    if (op.op != 2) {
      json_.clear();
      RS_RETURN_IF_ERROR(capture::JsonBinaryToText(op.value, &json_));
      out->Append(",\"value\":");
      out->Append(json_);
    }
    out->Push('}');
  }
  out->Append("]}");
  return Status::Ok();
}

Status ValueFormatter::AppendJsonDiffSql(std::string_view column_ref, std::string_view diff,
                                         TextBuffer* out) {
  static constexpr const char* kFunctions[] = {"JSON_REPLACE(", "JSON_INSERT(", "JSON_REMOVE("};
  RS_RETURN_IF_ERROR(ParseJsonDiff(diff));
  size_t start = out->size();
  // The operations apply in order, so the first is innermost.
  for (size_t i = diff_ops_.size(); i-- > 0;) out->Append(kFunctions[diff_ops_[i].op]);
  out->Append(column_ref);
  for (const JsonDiffOp& op : diff_ops_) {
    out->Append(", ");
    AppendSqlString(op.path, out);
    if (op.op != 2) {
      json_.clear();
      Status st = capture::JsonBinaryToText(op.value, &json_);
      if (!st.ok()) {
        out->Truncate(start);
        return st;
      }
      out->Append(", CAST(");
      AppendSqlString(json_, out);
      out->Append(" AS JSON)");
    }
    out->Push(')');
  }
  return Status::Ok();
}

void ValueFormatter::AppendColumnKey(const TableMap& table, size_t index, bool sql,
                                     TextBuffer* out) {
  const ColumnDef& column = ColumnAt(table, index);
  if (!column.name.empty()) {
    if (sql) {
      AppendSqlIdentifier(column.name, out);
    } else {
      AppendJsonString(column.name, out);
    }
    return;
  }
  if (!sql) out->Push('"');
  out->Push('@');
  out->AppendInt(index + 1);
  if (!sql) out->Push('"');
}

Status ValueFormatter::AppendImageJson(const TableMap& table, const RowImage& image,
                                       const RowImage* before, TextBuffer* out) {
  out->Push('{');
  bool first = true;
  for (size_t i = 0; i < image.values.size(); ++i) {
    if (!IsPresent(image, i)) continue;
    if (!first) out->Push(',');
    first = false;
    AppendColumnKey(table, i, false, out);
    out->Push(':');
    Status st = AppendJson(ColumnAt(table, i), image.values[i], BeforeValue(before, i), out);
    if (!st.ok()) return ColumnError(st, table, i);
  }
  out->Push('}');
  return Status::Ok();
}

Status ValueFormatter::AppendImageSql(const TableMap& table, const RowImage& image,
                                      const RowImage* before, bool where, TextBuffer* out) {
  bool first = true;
  for (size_t i = 0; i < image.values.size(); ++i) {
    if (!IsPresent(image, i)) continue;
    if (!first) out->Append(where ? " AND " : ", ");
    first = false;
    AppendColumnKey(table, i, true, out);
    const Value& value = image.values[i];
    if (where && value.kind == ValueKind::kNull) {
      out->Append(" IS NULL");
      continue;
    }
    out->Push('=');
    const Value* before_value = BeforeValue(before, i);
    Status st;
    if (value.kind == ValueKind::kJsonDiff &&
        (before_value == nullptr || before_value->kind != ValueKind::kJson)) {
      column_ref_.clear();
      AppendColumnKey(table, i, true, &column_ref_);
      st = AppendJsonDiffSql(column_ref_.view(), value.bytes, out);
    } else {
      st = AppendSql(ColumnAt(table, i), value, before_value, out);
    }
    if (!st.ok()) return ColumnError(st, table, i);
  }
  return Status::Ok();
}

}  // namespace replsync::capture
