#include "tools/cli/value_format.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>

#include "capture/charset.h"
#include "capture/json_binary.h"

namespace replsync::cli {

using capture::ColumnDef;
using capture::DateTimeValue;
using capture::RowImage;
using capture::TableMap;
using capture::TimeValue;
using capture::Value;
using capture::ValueKind;

namespace {

// Byte classes for escaping: 0 = copy as it is, 1 = escape, 2 = first byte of a (possibly
// invalid) multi-byte UTF-8 sequence.
constexpr std::array<uint8_t, 256> MakeClassTable(bool sql) {
  std::array<uint8_t, 256> table{};
  for (int c = 0; c < 256; ++c) {
    if (c >= 0x80) {
      table[c] = 2;
    } else if (sql) {
      table[c] = (c == 0 || c == '\'' || c == '\\' || c == '\n' || c == '\r' || c == '\t' ||
                  c == 0x1a)
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

void AppendJsonEscape(unsigned char c, std::string* out) {
  switch (c) {
    case '"': out->append("\\\""); return;
    case '\\': out->append("\\\\"); return;
    case '\n': out->append("\\n"); return;
    case '\r': out->append("\\r"); return;
    case '\t': out->append("\\t"); return;
    case '\b': out->append("\\b"); return;
    case '\f': out->append("\\f"); return;
    default: {
      char buf[6] = {'\\', 'u', '0', '0', kHexLower[c >> 4], kHexLower[c & 15]};
      out->append(buf, 6);
    }
  }
}

void AppendSqlEscape(unsigned char c, std::string* out) {
  switch (c) {
    case 0: out->append("\\0"); return;
    case '\'': out->append("\\'"); return;
    case '\\': out->append("\\\\"); return;
    case '\n': out->append("\\n"); return;
    case '\r': out->append("\\r"); return;
    case '\t': out->append("\\t"); return;
    default: out->append("\\Z"); return;  // 0x1a, the only other escaped byte
  }
}

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighBits = 0x8080808080808080ULL;

// Nonzero when some byte of v is zero (the classic word-at-a-time test; exact for "any").
constexpr uint64_t HasZeroByte(uint64_t v) { return (v - kOnes) & ~v & kHighBits; }

// False only when none of the eight bytes at p needs attention: every byte is ASCII, at least
// 0x20 (JSON) or 0x1b (SQL), and not a quote or backslash. May say true for a plain chunk too
// (the byte loop then handles it).
template <bool kSql>
inline bool MayNeedEscape(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  uint64_t control = (v - kOnes * (kSql ? 0x1b : 0x20)) & ~v & kHighBits;
  uint64_t quote = HasZeroByte(v ^ (kOnes * (kSql ? '\'' : '"')));
  uint64_t backslash = HasZeroByte(v ^ (kOnes * '\\'));
  return ((v & kHighBits) | control | quote | backslash) != 0;
}

// Appends `text` escaped for JSON or SQL, without the quotes. Runs of bytes that need nothing are
// appended whole.
//
// With kAsciiOnly (text in a character set that is not UTF-8 but shares ASCII with it) it stops at
// the first byte >= 0x80 and returns false, leaving *out partly appended; the caller then
// converts the text. Otherwise it returns true.
template <bool kSql, bool kAsciiOnly = false>
bool AppendEscaped(std::string_view text, std::string* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  const auto* run = p;
  const std::array<uint8_t, 256>& classes = kSql ? kSqlClass : kJsonClass;
  while (p < end) {
    // Skip eight plain ASCII bytes at a time (no control byte, quote, backslash or high bit).
    if (end - p >= 8 && !MayNeedEscape<kSql>(p)) {
      p += 8;
      continue;
    }
    uint8_t cls = classes[*p];
    if (cls == 0) {
      ++p;
      continue;
    }
    if (cls == 2) {
      if (kAsciiOnly) return false;
      size_t n = Utf8SequenceLength(p, end);
      if (n != 0) {
        p += n;
        continue;
      }
    }
    out->append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
    if (cls == 2) {
      out->append(kReplacementChar, 3);
    } else if (kSql) {
      AppendSqlEscape(*p, out);
    } else {
      AppendJsonEscape(*p, out);
    }
    ++p;
    run = p;
  }
  out->append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
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
  int64_t doe = z - era * 146097;                                        // [0, 146096]
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                 // [0, 365]
  int64_t mp = (5 * doy + 2) / 153;                                      // March = 0
  *day = static_cast<unsigned>(doy - (153 * mp + 2) / 5 + 1);
  *month = static_cast<unsigned>(mp < 10 ? mp + 3 : mp - 9);
  *year = yoe + era * 400 + (*month <= 2 ? 1 : 0);
}

// Appends a float or double in its shortest round-trip form. Non-finite values (never stored by
// MySQL) print as the strings "nan", "inf", "-inf" (quoted for both JSON and SQL).
template <typename T>
void AppendFloating(T value, std::string* out) {
  if (!std::isfinite(value)) {
    out->append(std::isnan(value) ? "\"nan\"" : (value > 0 ? "\"inf\"" : "\"-inf\""));
    return;
  }
  char buf[40];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, end);
}

const ColumnDef kUnknownColumn;

}  // namespace

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

namespace {

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

void AppendVector(std::string_view bytes, std::string* out) {
  out->push_back('[');
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    if (i != 0) out->push_back(',');
    AppendFloating(LoadFloatLe(bytes.data() + i), out);
  }
  out->push_back(']');
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

Status ColumnError(const Status& status, const TableMap& table, size_t index) {
  const ColumnDef& column = ColumnAt(table, index);
  std::string name = column.name.empty() ? "@" + std::to_string(index + 1) : column.name;
  return status.WithContext("column `" + table.db + "`.`" + table.table + "`." + name);
}

}  // namespace

void AppendJsonString(std::string_view utf8, std::string* out) {
  out->push_back('"');
  AppendEscaped<false>(utf8, out);
  out->push_back('"');
}

void AppendSqlString(std::string_view utf8, std::string* out) {
  out->push_back('\'');
  AppendEscaped<true>(utf8, out);
  out->push_back('\'');
}

void AppendSqlIdentifier(std::string_view name, std::string* out) {
  out->push_back('`');
  size_t start = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '`') {
      out->append(name.substr(start, i + 1 - start));
      out->push_back('`');
      start = i + 1;
    }
  }
  out->append(name.substr(start));
  out->push_back('`');
}

void AppendBase64(std::string_view bytes, std::string* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  size_t old = out->size();
  out->resize(old + (n + 2) / 3 * 4);
  char* w = out->data() + old;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = static_cast<uint32_t>(p[i]) << 16 | static_cast<uint32_t>(p[i + 1]) << 8 | p[i + 2];
    *w++ = kAlphabet[v >> 18];
    *w++ = kAlphabet[(v >> 12) & 63];
    *w++ = kAlphabet[(v >> 6) & 63];
    *w++ = kAlphabet[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = static_cast<uint32_t>(p[i]) << 16;
    *w++ = kAlphabet[v >> 18];
    *w++ = kAlphabet[(v >> 12) & 63];
    *w++ = '=';
    *w++ = '=';
  } else if (n - i == 2) {
    uint32_t v = static_cast<uint32_t>(p[i]) << 16 | static_cast<uint32_t>(p[i + 1]) << 8;
    *w++ = kAlphabet[v >> 18];
    *w++ = kAlphabet[(v >> 12) & 63];
    *w++ = kAlphabet[(v >> 6) & 63];
    *w++ = '=';
  }
}

void AppendHex(std::string_view bytes, std::string* out) {
  size_t old = out->size();
  out->resize(old + bytes.size() * 2);
  char* w = out->data() + old;
  for (unsigned char c : bytes) {
    *w++ = kHexDigits[c >> 4];
    *w++ = kHexDigits[c & 15];
  }
}

void AppendDate(const DateTimeValue& value, std::string* out) {
  char buf[32];
  char* p = PutDate(buf, value.year, value.month, value.day);
  out->append(buf, p);
}

void AppendDateTime(const DateTimeValue& value, uint8_t decimals, std::string* out) {
  char buf[48];
  char* p = PutDate(buf, value.year, value.month, value.day);
  *p++ = ' ';
  p = PutClock(p, value.hour, value.minute, value.second);
  p = PutFraction(p, value.micro, decimals);
  out->append(buf, p);
}

void AppendTime(const TimeValue& value, uint8_t decimals, std::string* out) {
  char buf[48];
  char* p = buf;
  if (value.negative) *p++ = '-';
  p = PutPadded(p, value.hours, 2);
  *p++ = ':';
  p = PutTwo(p, value.minute);
  *p++ = ':';
  p = PutTwo(p, value.second);
  p = PutFraction(p, value.micro, decimals);
  out->append(buf, p);
}

void AppendUtcDateTime(int64_t seconds, uint32_t micro, uint8_t decimals, std::string* out) {
  char buf[64];
  char* p = buf;
  if (seconds == 0 && micro == 0) {
    p = PutDate(p, 0, 0, 0);
    *p++ = ' ';
    p = PutClock(p, 0, 0, 0);
  } else {
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t rest = seconds - days * 86400;  // [0, 86399]
    int64_t year;
    unsigned month, day;
    CivilFromDays(days, &year, &month, &day);
    if (year < 0) {
      *p++ = '-';
      year = -year;
    }
    p = PutDate(p, static_cast<uint64_t>(year), month, day);
    *p++ = ' ';
    p = PutClock(p, static_cast<unsigned>(rest / 3600), static_cast<unsigned>(rest / 60 % 60),
                 static_cast<unsigned>(rest % 60));
  }
  p = PutFraction(p, micro, decimals);
  out->append(buf, p);
}

void ValueFormatter::AppendText(uint32_t collation, std::string_view text, bool sql,
                                std::string* out) {
  const char quote = sql ? '\'' : '"';
  out->push_back(quote);
  CharsetClass cls = ClassOf(collation);
  std::string_view utf8 = text;
  if (cls != CharsetClass::kUtf8) {
    // ASCII text reads the same in UTF-8: escape it directly, convert only when it is not.
    size_t start = out->size();
    if (cls == CharsetClass::kAsciiCompatible &&
        (sql ? AppendEscaped<true, true>(text, out) : AppendEscaped<false, true>(text, out))) {
      out->push_back(quote);
      return;
    }
    out->resize(start);
    scratch_.clear();
    capture::AppendAsUtf8(collation, text, &scratch_);
    utf8 = scratch_;
  }
  if (sql) {
    AppendEscaped<true>(utf8, out);
  } else {
    AppendEscaped<false>(utf8, out);
  }
  out->push_back(quote);
}

Status ValueFormatter::JsonText(const Value& value, const Value* before, std::string* json) {
  if (value.kind == ValueKind::kJson) return capture::JsonBinaryToText(value.bytes, json);
  // kJsonDiff: the diff needs the column's before document.
  if (before == nullptr || before->kind != ValueKind::kJson) {
    return Status::Corruption(
        "partial JSON update without the column's JSON value in the before image");
  }
  return capture::ApplyJsonDiff(before->bytes, value.bytes, json);
}

Status ValueFormatter::AppendJson(const ColumnDef& column, const Value& value,
                                  const Value* before, std::string* out) {
  switch (value.kind) {
    case ValueKind::kNull:
      out->append("null");
      return Status::Ok();
    case ValueKind::kInt:
    case ValueKind::kYear:
      AppendInt(value.i, out);
      return Status::Ok();
    case ValueKind::kUInt:
    case ValueKind::kBit:
      AppendInt(value.u, out);
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
      out->push_back('"');
      AppendDate(value.dt, out);
      out->push_back('"');
      return Status::Ok();
    case ValueKind::kTime:
      out->push_back('"');
      AppendTime(value.tm, value.decimals, out);
      out->push_back('"');
      return Status::Ok();
    case ValueKind::kDateTime:
      out->push_back('"');
      AppendDateTime(value.dt, value.decimals, out);
      out->push_back('"');
      return Status::Ok();
    case ValueKind::kTimestamp:
      out->push_back('"');
      AppendUtcDateTime(value.ts.seconds, value.ts.micro, value.decimals, out);
      out->push_back('"');
      return Status::Ok();
    case ValueKind::kEnum: {
      const auto& labels = column.enum_values;
      if (labels.empty() || value.u > labels.size()) {
        AppendInt(value.u, out);
      } else if (value.u == 0) {
        out->append("\"\"");
      } else {
        AppendText(column.collation, labels[value.u - 1], false, out);
      }
      return Status::Ok();
    }
    case ValueKind::kSet: {
      const auto& labels = column.enum_values;
      if (!SetFitsLabels(value.u, labels.size())) {
        AppendInt(value.u, out);
        return Status::Ok();
      }
      out->push_back('[');
      bool first = true;
      for (size_t bit = 0; bit < labels.size() && bit < 64; ++bit) {
        if ((value.u >> bit & 1) == 0) continue;
        if (!first) out->push_back(',');
        first = false;
        AppendText(column.collation, labels[bit], false, out);
      }
      out->push_back(']');
      return Status::Ok();
    }
    case ValueKind::kString:
      AppendText(column.collation, value.bytes, false, out);
      return Status::Ok();
    case ValueKind::kBinary:
    case ValueKind::kGeometry:
      out->append("{\"base64\":\"");
      AppendBase64(value.bytes, out);
      out->append("\"}");
      return Status::Ok();
    case ValueKind::kJson: {
      size_t old = out->size();
      Status st = capture::JsonBinaryToText(value.bytes, out);
      if (!st.ok()) out->resize(old);
      return st;
    }
    case ValueKind::kJsonDiff: {
      if (before == nullptr || before->kind != ValueKind::kJson) {
        // Nothing to apply the diff to (binlog_row_image=MINIMAL): show the operations.
        size_t old = out->size();
        Status st = AppendJsonDiffJson(value.bytes, out);
        if (!st.ok()) out->resize(old);
        return st;
      }
      size_t old = out->size();
      Status st = capture::ApplyJsonDiff(before->bytes, value.bytes, out);
      if (!st.ok()) out->resize(old);
      return st;
    }
    case ValueKind::kVector:
      RS_RETURN_IF_ERROR(CheckVector(value.bytes));
      AppendVector(value.bytes, out);
      return Status::Ok();
  }
  return Status::Internal("value of unknown kind " +
                          std::to_string(static_cast<int>(value.kind)));
}

Status ValueFormatter::AppendSql(const ColumnDef& column, const Value& value, const Value* before,
                                 std::string* out) {
  switch (value.kind) {
    case ValueKind::kNull:
      out->append("NULL");
      return Status::Ok();
    case ValueKind::kInt:
    case ValueKind::kYear:
      AppendInt(value.i, out);
      return Status::Ok();
    case ValueKind::kUInt:
      AppendInt(value.u, out);
      return Status::Ok();
    case ValueKind::kBit: {
      unsigned width = BitWidth(column, value.u);
      out->append("b'");
      for (unsigned i = width; i-- > 0;) {
        out->push_back(i < 64 && (value.u >> i & 1) ? '1' : '0');
      }
      out->push_back('\'');
      return Status::Ok();
    }
    case ValueKind::kFloat:
      AppendFloating(value.f, out);
      return Status::Ok();
    case ValueKind::kDouble:
      AppendFloating(value.d, out);
      return Status::Ok();
    case ValueKind::kDecimal:
      out->append(value.bytes);
      return Status::Ok();
    case ValueKind::kDate:
      out->push_back('\'');
      AppendDate(value.dt, out);
      out->push_back('\'');
      return Status::Ok();
    case ValueKind::kTime:
      out->push_back('\'');
      AppendTime(value.tm, value.decimals, out);
      out->push_back('\'');
      return Status::Ok();
    case ValueKind::kDateTime:
      out->push_back('\'');
      AppendDateTime(value.dt, value.decimals, out);
      out->push_back('\'');
      return Status::Ok();
    case ValueKind::kTimestamp:
      out->push_back('\'');
      AppendUtcDateTime(value.ts.seconds, value.ts.micro, value.decimals, out);
      out->push_back('\'');
      return Status::Ok();
    case ValueKind::kEnum: {
      const auto& labels = column.enum_values;
      if (labels.empty() || value.u > labels.size()) {
        AppendInt(value.u, out);
      } else if (value.u == 0) {
        out->append("''");
      } else {
        AppendText(column.collation, labels[value.u - 1], true, out);
      }
      return Status::Ok();
    }
    case ValueKind::kSet: {
      const auto& labels = column.enum_values;
      if (!SetFitsLabels(value.u, labels.size())) {
        AppendInt(value.u, out);
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
      out->append("X'");
      AppendHex(value.bytes, out);
      out->push_back('\'');
      return Status::Ok();
    case ValueKind::kJson:
    case ValueKind::kJsonDiff:
      if (value.kind == ValueKind::kJsonDiff &&
          (before == nullptr || before->kind != ValueKind::kJson)) {
        out->append("/* JSON diff */ X'");
        AppendHex(value.bytes, out);
        out->push_back('\'');
        return Status::Ok();
      }
      json_.clear();
      RS_RETURN_IF_ERROR(JsonText(value, before, &json_));
      AppendSqlString(json_, out);
      return Status::Ok();
    case ValueKind::kVector:
      RS_RETURN_IF_ERROR(CheckVector(value.bytes));
      json_.clear();
      AppendVector(value.bytes, &json_);
      AppendSqlString(json_, out);
      return Status::Ok();
  }
  return Status::Internal("value of unknown kind " +
                          std::to_string(static_cast<int>(value.kind)));
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

Status ValueFormatter::AppendJsonDiffJson(std::string_view diff, std::string* out) {
  static constexpr const char* kOpNames[] = {"replace", "insert", "remove"};
  RS_RETURN_IF_ERROR(ParseJsonDiff(diff));
  out->append("{\"json_diff\":[");
  for (size_t i = 0; i < diff_ops_.size(); ++i) {
    const JsonDiffOp& op = diff_ops_[i];
    if (i != 0) out->push_back(',');
    out->append("{\"op\":\"");
    out->append(kOpNames[op.op]);
    out->append("\",\"path\":");
    AppendJsonString(op.path, out);
    if (op.op != 2) {
      out->append(",\"value\":");
      RS_RETURN_IF_ERROR(capture::JsonBinaryToText(op.value, out));
    }
    out->push_back('}');
  }
  out->append("]}");
  return Status::Ok();
}

Status ValueFormatter::AppendJsonDiffSql(std::string_view column_ref, std::string_view diff,
                                         std::string* out) {
  static constexpr const char* kFunctions[] = {"JSON_REPLACE(", "JSON_INSERT(", "JSON_REMOVE("};
  RS_RETURN_IF_ERROR(ParseJsonDiff(diff));
  size_t old = out->size();
  // The operations apply in order, so the first is innermost.
  for (size_t i = diff_ops_.size(); i-- > 0;) out->append(kFunctions[diff_ops_[i].op]);
  out->append(column_ref);
  for (const JsonDiffOp& op : diff_ops_) {
    out->append(", ");
    AppendSqlString(op.path, out);
    if (op.op != 2) {
      json_.clear();
      Status st = capture::JsonBinaryToText(op.value, &json_);
      if (!st.ok()) {
        out->resize(old);
        return st;
      }
      out->append(", CAST(");
      AppendSqlString(json_, out);
      out->append(" AS JSON)");
    }
    out->push_back(')');
  }
  return Status::Ok();
}

void ValueFormatter::AppendColumnKey(const TableMap& table, size_t index, bool sql,
                                     std::string* out) {
  const ColumnDef& column = ColumnAt(table, index);
  if (!column.name.empty()) {
    if (sql) {
      AppendSqlIdentifier(column.name, out);
    } else {
      AppendJsonString(column.name, out);
    }
    return;
  }
  if (!sql) out->push_back('"');
  out->push_back('@');
  AppendInt(index + 1, out);
  if (!sql) out->push_back('"');
}

Status ValueFormatter::AppendImageJson(const TableMap& table, const RowImage& image,
                                       const RowImage* before, std::string* out) {
  out->push_back('{');
  bool first = true;
  for (size_t i = 0; i < image.values.size(); ++i) {
    if (!IsPresent(image, i)) continue;
    if (!first) out->push_back(',');
    first = false;
    AppendColumnKey(table, i, false, out);
    out->push_back(':');
    Status st = AppendJson(ColumnAt(table, i), image.values[i], BeforeValue(before, i), out);
    if (!st.ok()) return ColumnError(st, table, i);
  }
  out->push_back('}');
  return Status::Ok();
}

Status ValueFormatter::AppendImageSql(const TableMap& table, const RowImage& image,
                                      const RowImage* before, bool where, std::string* out) {
  bool first = true;
  for (size_t i = 0; i < image.values.size(); ++i) {
    if (!IsPresent(image, i)) continue;
    if (!first) out->append(where ? " AND " : ", ");
    first = false;
    AppendColumnKey(table, i, true, out);
    const Value& value = image.values[i];
    if (where && value.kind == ValueKind::kNull) {
      out->append(" IS NULL");
      continue;
    }
    out->push_back('=');
    const Value* before_value = BeforeValue(before, i);
    Status st;
    if (value.kind == ValueKind::kJsonDiff &&
        (before_value == nullptr || before_value->kind != ValueKind::kJson)) {
      column_ref_.clear();
      AppendColumnKey(table, i, true, &column_ref_);
      st = AppendJsonDiffSql(column_ref_, value.bytes, out);
    } else {
      st = AppendSql(ColumnAt(table, i), value, before_value, out);
    }
    if (!st.ok()) return ColumnError(st, table, i);
  }
  return Status::Ok();
}

}  // namespace replsync::cli
