// MySQL binary JSON to text, and PARTIAL_UPDATE_ROWS JSON diffs.
//
// Binary layout (MySQL sql-common/json_binary.h): a type byte, then the value. Objects and arrays
// (small: 2-byte counts/offsets, large: 4-byte) hold an element count, their byte size, key
// entries (offset, 2-byte length; objects only), value entries (type byte + offset, or the value
// itself for inlined literals/int16/uint16 and, in the large format, int32/uint32), then keys and
// values at the offsets the entries give. Offsets are relative to the start of the container
// (after its type byte); nothing here assumes the parts are contiguous or in order, and every
// offset and length is checked against the container's size.
//
// Text form: what MySQL's Json_wrapper::to_string prints (SELECT of a JSON column,
// JSON_EXTRACT): `{"a": 1, "b": [1, 2]}` with ", " and ": " separators, keys in stored order,
// strings escaped like MySQL's double_quote(), doubles like my_gcvt() with ".0" added to integral
// values, opaque DATE/TIME/DATETIME/TIMESTAMP as quoted strings with 6 fraction digits, opaque
// DECIMAL as a bare number, opaque VAR_STRING as a string, other opaque values as
// "base64:typeNN:<base64>".
#include "capture/binlog/json_binary.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "capture/binlog/mysql_packed.h"
#include "sync/text.h"

namespace replsync::capture {
namespace {

constexpr uint8_t kSmallObject = 0x00;
constexpr uint8_t kLargeObject = 0x01;
constexpr uint8_t kSmallArray = 0x02;
constexpr uint8_t kLargeArray = 0x03;
constexpr uint8_t kLiteral = 0x04;
constexpr uint8_t kInt16 = 0x05;
constexpr uint8_t kUint16 = 0x06;
constexpr uint8_t kInt32 = 0x07;
constexpr uint8_t kUint32 = 0x08;
constexpr uint8_t kInt64 = 0x09;
constexpr uint8_t kUint64 = 0x0a;
constexpr uint8_t kDouble = 0x0b;
constexpr uint8_t kString = 0x0c;
constexpr uint8_t kOpaque = 0x0f;

constexpr uint8_t kLiteralNull = 0x00;
constexpr uint8_t kLiteralTrue = 0x01;
constexpr uint8_t kLiteralFalse = 0x02;

// MySQL field types that opaque values carry and that print specially.
constexpr uint8_t kFieldTimestamp = 7;
constexpr uint8_t kFieldDate = 10;
constexpr uint8_t kFieldTime = 11;
constexpr uint8_t kFieldDateTime = 12;
constexpr uint8_t kFieldVarString = 253;
constexpr uint8_t kFieldNewDecimal = 246;

// MySQL refuses documents nested deeper than 100; a little slack, and no stack exhaustion.
constexpr int kMaxDepth = 150;

// MySQL's my_gcvt() field width for doubles (MY_GCVT_MAX_FIELD_WIDTH) and the largest decimal
// exponent it prints in fixed notation (MAX_DECPT_FOR_F_FORMAT = DBL_DIG).
constexpr int kGcvtWidth = 34;
constexpr int kMaxDecptForF = 15;

Status Corrupt(const std::string& what) { return Status::Corruption("binary JSON: " + what); }

uint64_t ReadLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Text helpers

// MySQL double_quote(): '"' and '\\' and control characters escaped, everything else as is.
void AppendQuoted(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c > 0x1f && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    out->push_back('\\');
    switch (c) {
      case '\b':
        out->push_back('b');
        break;
      case '\t':
        out->push_back('t');
        break;
      case '\n':
        out->push_back('n');
        break;
      case '\f':
        out->push_back('f');
        break;
      case '\r':
        out->push_back('r');
        break;
      case '"':
        out->push_back('"');
        break;
      case '\\':
        out->push_back('\\');
        break;
      default:
        out->append("u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0x0f]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

template <typename T>
void AppendInt(T v, std::string* out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, res.ptr);
}

// Appends `v` with at least `width` digits (zero-padded), like printf("%0*u").
void AppendPadded(uint64_t v, int width, std::string* out) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  const int len = static_cast<int>(res.ptr - buf);
  if (len < width) out->append(static_cast<size_t>(width - len), '0');
  out->append(buf, res.ptr);
}

// A double as MySQL prints it in JSON: my_gcvt(d, MY_GCVT_ARG_DOUBLE, 34) (the shortest digits
// that round-trip, fixed notation unless the exponent is out of [-15, 15]; exponent without
// '+' or zero padding), then ".0" when the result has neither '.' nor 'e'.
// Non-finite values cannot be stored in MySQL JSON; the caller rejects them.
void AppendDouble(double d, std::string* out) {
  char sci[40];
  auto res = std::to_chars(sci, sci + sizeof(sci), std::fabs(d), std::chars_format::scientific);
  const char* end = res.ptr;
  // sci is "D[.DDDD]e(+|-)XX": collect the significant digits and the exponent.
  char digits[24];
  int len = 0;
  const char* p = sci;
  for (; p < end && *p != 'e'; ++p) {
    if (*p != '.') digits[len++] = *p;
  }
  int exponent = 0;
  if (p < end) std::from_chars(p + 1 + (p[1] == '+' ? 1 : 0), end, exponent);
  while (len > 1 && digits[len - 1] == '0') --len;  // to_chars never pads, but be safe
  int decpt = exponent + 1;  // position of the decimal point relative to the digits

  int width = kGcvtWidth;
  if (d < 0.) --width;
  const bool negative = std::signbit(d);
  const int exp_len = 1 + (decpt >= 101 || decpt <= -99) + (decpt >= 11 || decpt <= -9);
  const int f_len = decpt <= 0 ? len - decpt + 2 : (decpt < len ? len + 1 : decpt);
  const bool have_space = f_len <= width;
  const bool force_e = decpt <= 0 && width <= 2 - decpt && width >= 3 + exp_len;
  const bool use_f =
      (have_space ||
       ((decpt <= width && (decpt >= -1 || (decpt == -2 && (len > 1 || !force_e)))) && !force_e)) &&
      (!have_space || (decpt >= -kMaxDecptForF + 1 && (decpt <= kMaxDecptForF || len > decpt)));
  const size_t start = out->size();
  if (negative) out->push_back('-');
  if (use_f) {
    // With a 34-character field and at most 17 significant digits nothing is ever cut here.
    if (decpt <= 0) {
      out->append("0.");
      out->append(static_cast<size_t>(-decpt), '0');
      out->append(digits, static_cast<size_t>(len));
    } else if (decpt < len) {
      out->append(digits, static_cast<size_t>(decpt));
      out->push_back('.');
      out->append(digits + decpt, static_cast<size_t>(len - decpt));
    } else {
      out->append(digits, static_cast<size_t>(len));
      out->append(static_cast<size_t>(decpt - len), '0');
    }
  } else {
    out->push_back(digits[0]);
    if (len > 1) {
      out->push_back('.');
      out->append(digits + 1, static_cast<size_t>(len - 1));
    }
    out->push_back('e');
    int e = decpt - 1;
    if (e < 0) {
      out->push_back('-');
      e = -e;
    }
    AppendInt(e, out);
  }
  if (out->find_first_of(".e", start) == std::string::npos) out->append(".0");
}

// MySQL's base64_encode(): standard alphabet with '=' padding and a '\n' after every 76
// characters.
void AppendMysqlBase64(std::string_view data, std::string* out) {
  constexpr size_t kBytesPerLine = 57;  // 76 characters
  for (size_t i = 0; i < data.size(); i += kBytesPerLine) {
    if (i > 0) out->push_back('\n');
    AppendBase64(data.substr(i, kBytesPerLine), out);
  }
}

// Reads the variable-length length of strings and opaque values: 7 bits per byte, low bits
// first, high bit set on all but the last byte, at most 5 bytes, at most 2^32-1.
Status ReadVarLength(std::string_view data, uint32_t* length, size_t* used) {
  uint64_t len = 0;
  const size_t max_bytes = std::min<size_t>(data.size(), 5);
  for (size_t i = 0; i < max_bytes; ++i) {
    const auto b = static_cast<uint8_t>(data[i]);
    len |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (len > UINT32_MAX) return Corrupt("length exceeds 32 bits");
      *length = static_cast<uint32_t>(len);
      *used = i + 1;
      return Status::Ok();
    }
  }
  return Corrupt("truncated variable-length length");
}

// An opaque value: a MySQL field type, a variable length and the data.
Status AppendOpaque(std::string_view data, std::string* out) {
  if (data.empty()) return Corrupt("truncated opaque value");
  const auto field_type = static_cast<uint8_t>(data[0]);
  uint32_t length;
  size_t used;
  RS_RETURN_IF_ERROR(ReadVarLength(data.substr(1), &length, &used));
  if (length > data.size() - 1 - used) return Corrupt("opaque value overruns its container");
  const std::string_view payload = data.substr(1 + used, length);
  switch (field_type) {
    case kFieldNewDecimal: {
      // Precision and scale bytes, then the binary decimal.
      if (payload.size() < 2) return Corrupt("truncated opaque DECIMAL");
      const int precision = static_cast<uint8_t>(payload[0]);
      const int scale = static_cast<uint8_t>(payload[1]);
      return internal::AppendDecimalText(payload.substr(2), precision, scale, out);
    }
    case kFieldDate:
    case kFieldDateTime:
    case kFieldTimestamp:
    case kFieldTime: {
      // The packed int64 of my_time.h, little-endian (Json_datetime::to_packed).
      if (payload.size() < 8) return Corrupt("truncated opaque temporal value");
      const auto packed = static_cast<int64_t>(ReadLe(payload.data(), 8));
      out->push_back('"');
      if (field_type == kFieldTime) {
        const TimeValue t = internal::TimeFromPacked(packed);
        if (t.negative) out->push_back('-');
        AppendPadded(t.hours, 2, out);
        out->push_back(':');
        AppendPadded(t.minute, 2, out);
        out->push_back(':');
        AppendPadded(t.second, 2, out);
        out->push_back('.');
        AppendPadded(t.micro, 6, out);
      } else {
        bool negative;
        const DateTimeValue dt = internal::DateTimeFromPacked(packed, &negative);
        AppendPadded(dt.year, 4, out);
        out->push_back('-');
        AppendPadded(dt.month, 2, out);
        out->push_back('-');
        AppendPadded(dt.day, 2, out);
        if (field_type != kFieldDate) {
          out->push_back(' ');
          AppendPadded(dt.hour, 2, out);
          out->push_back(':');
          AppendPadded(dt.minute, 2, out);
          out->push_back(':');
          AppendPadded(dt.second, 2, out);
          out->push_back('.');
          AppendPadded(dt.micro, 6, out);
        }
      }
      out->push_back('"');
      return Status::Ok();
    }
    case kFieldVarString:
      // MySQL prints strings kept in opaque values as plain JSON strings.
      AppendQuoted(payload, out);
      return Status::Ok();
    default: {
      std::string text = "base64:type";
      AppendInt(static_cast<unsigned>(field_type), &text);
      text.push_back(':');
      AppendMysqlBase64(payload, &text);
      AppendQuoted(text, out);
      return Status::Ok();
    }
  }
}

// Appends a scalar of `type` whose bytes start at data[0] (data runs to the end of the
// enclosing container, or holds the inlined entry field).
Status AppendScalar(uint8_t type, std::string_view data, std::string* out) {
  auto need = [&](size_t n) -> Status {
    if (data.size() < n) return Corrupt("truncated scalar of type " + std::to_string(type));
    return Status::Ok();
  };
  switch (type) {
    case kLiteral:
      RS_RETURN_IF_ERROR(need(1));
      switch (static_cast<uint8_t>(data[0])) {
        case kLiteralNull:
          out->append("null");
          return Status::Ok();
        case kLiteralTrue:
          out->append("true");
          return Status::Ok();
        case kLiteralFalse:
          out->append("false");
          return Status::Ok();
        default:
          return Corrupt("unknown literal " + std::to_string(static_cast<uint8_t>(data[0])));
      }
    case kInt16:
      RS_RETURN_IF_ERROR(need(2));
      AppendInt(static_cast<int16_t>(ReadLe(data.data(), 2)), out);
      return Status::Ok();
    case kUint16:
      RS_RETURN_IF_ERROR(need(2));
      AppendInt(static_cast<uint16_t>(ReadLe(data.data(), 2)), out);
      return Status::Ok();
    case kInt32:
      RS_RETURN_IF_ERROR(need(4));
      AppendInt(static_cast<int32_t>(ReadLe(data.data(), 4)), out);
      return Status::Ok();
    case kUint32:
      RS_RETURN_IF_ERROR(need(4));
      AppendInt(static_cast<uint32_t>(ReadLe(data.data(), 4)), out);
      return Status::Ok();
    case kInt64:
      RS_RETURN_IF_ERROR(need(8));
      AppendInt(static_cast<int64_t>(ReadLe(data.data(), 8)), out);
      return Status::Ok();
    case kUint64:
      RS_RETURN_IF_ERROR(need(8));
      AppendInt(ReadLe(data.data(), 8), out);
      return Status::Ok();
    case kDouble: {
      RS_RETURN_IF_ERROR(need(8));
      double d;
      const uint64_t bits = ReadLe(data.data(), 8);
      std::memcpy(&d, &bits, sizeof(d));
      if (!std::isfinite(d)) return Corrupt("non-finite double");
      AppendDouble(d, out);
      return Status::Ok();
    }
    case kString: {
      uint32_t length;
      size_t used;
      RS_RETURN_IF_ERROR(ReadVarLength(data, &length, &used));
      if (length > data.size() - used) return Corrupt("string overruns its container");
      AppendQuoted(data.substr(used, length), out);
      return Status::Ok();
    }
    case kOpaque:
      return AppendOpaque(data, out);
    default:
      return Corrupt("unknown value type " + std::to_string(type));
  }
}

// ---------------------------------------------------------------------------------------------
// Containers

bool IsContainer(uint8_t type) { return type <= kLargeArray; }

bool IsInlined(uint8_t type, bool large) {
  switch (type) {
    case kLiteral:
    case kInt16:
    case kUint16:
      return true;
    case kInt32:
    case kUint32:
      return large;
    default:
      return false;
  }
}

class Container {
 public:
  // `data` starts after the container's type byte and runs to the end of what encloses it.
  Status Open(uint8_t type, std::string_view data) {
    object_ = type == kSmallObject || type == kLargeObject;
    large_ = type == kLargeObject || type == kLargeArray;
    offset_size_ = large_ ? 4 : 2;
    if (data.size() < 2 * offset_size_) return Corrupt("truncated container header");
    count_ = static_cast<uint32_t>(ReadLe(data.data(), offset_size_));
    const uint64_t size = ReadLe(data.data() + offset_size_, offset_size_);
    if (size > data.size()) {
      return Corrupt("container of " + std::to_string(size) + " bytes overruns the " +
                     std::to_string(data.size()) + " available");
    }
    data_ = data.substr(0, static_cast<size_t>(size));
    key_entry_size_ = object_ ? offset_size_ + 2 : 0;
    value_entry_size_ = 1 + offset_size_;
    const uint64_t header =
        2ull * offset_size_ + static_cast<uint64_t>(count_) * (key_entry_size_ + value_entry_size_);
    if (header > data_.size()) return Corrupt("container entries overrun its size");
    return Status::Ok();
  }

  bool object() const { return object_; }
  uint32_t count() const { return count_; }

  Status Key(uint32_t i, std::string_view* key) const {
    const char* entry = data_.data() + 2 * offset_size_ + static_cast<size_t>(i) * key_entry_size_;
    const uint64_t offset = ReadLe(entry, offset_size_);
    const uint64_t length = ReadLe(entry + offset_size_, 2);
    if (offset > data_.size() || length > data_.size() - offset) {
      return Corrupt("object key overruns its container");
    }
    *key = data_.substr(static_cast<size_t>(offset), static_cast<size_t>(length));
    return Status::Ok();
  }

  // The value's type and bytes: for inlined values the entry's value field, otherwise the bytes
  // from the value's offset to the end of the container.
  Status Value(uint32_t i, uint8_t* type, std::string_view* value) const {
    const size_t entry_pos = 2 * offset_size_ + static_cast<size_t>(count_) * key_entry_size_ +
                             static_cast<size_t>(i) * value_entry_size_;
    *type = static_cast<uint8_t>(data_[entry_pos]);
    if (IsInlined(*type, large_)) {
      *value = data_.substr(entry_pos + 1, offset_size_);
      return Status::Ok();
    }
    const uint64_t offset = ReadLe(data_.data() + entry_pos + 1, offset_size_);
    if (offset >= data_.size()) return Corrupt("value offset outside its container");
    *value = data_.substr(static_cast<size_t>(offset));
    return Status::Ok();
  }

 private:
  std::string_view data_;
  bool object_ = false;
  bool large_ = false;
  size_t offset_size_ = 2;
  size_t key_entry_size_ = 0;
  size_t value_entry_size_ = 3;
  uint32_t count_ = 0;
};

Status PrintValue(uint8_t type, std::string_view data, int depth, std::string* out) {
  if (!IsContainer(type)) return AppendScalar(type, data, out);
  if (depth > kMaxDepth) return Corrupt("nesting deeper than " + std::to_string(kMaxDepth));
  Container c;
  RS_RETURN_IF_ERROR(c.Open(type, data));
  out->push_back(c.object() ? '{' : '[');
  for (uint32_t i = 0; i < c.count(); ++i) {
    if (i > 0) out->append(", ");
    if (c.object()) {
      std::string_view key;
      RS_RETURN_IF_ERROR(c.Key(i, &key));
      AppendQuoted(key, out);
      out->append(": ");
    }
    uint8_t value_type;
    std::string_view value;
    RS_RETURN_IF_ERROR(c.Value(i, &value_type, &value));
    RS_RETURN_IF_ERROR(PrintValue(value_type, value, depth + 1, out));
  }
  out->push_back(c.object() ? '}' : ']');
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// A small DOM for applying diffs. Scalars keep their printed text, so printing the DOM gives
// exactly what PrintValue gives for the same document.

struct Node {
  enum class Kind : uint8_t { kScalar, kObject, kArray };
  Kind kind = Kind::kScalar;
  std::string text;               // kScalar: JSON text of the value
  std::vector<std::string> keys;  // kObject: raw (unescaped) keys, parallel to children
  std::vector<Node> children;     // kObject values / kArray elements
};

Status BuildNode(uint8_t type, std::string_view data, int depth, Node* node) {
  if (!IsContainer(type)) {
    node->kind = Node::Kind::kScalar;
    return AppendScalar(type, data, &node->text);
  }
  if (depth > kMaxDepth) return Corrupt("nesting deeper than " + std::to_string(kMaxDepth));
  Container c;
  RS_RETURN_IF_ERROR(c.Open(type, data));
  node->kind = c.object() ? Node::Kind::kObject : Node::Kind::kArray;
  node->children.resize(c.count());
  if (c.object()) node->keys.resize(c.count());
  for (uint32_t i = 0; i < c.count(); ++i) {
    if (c.object()) {
      std::string_view key;
      RS_RETURN_IF_ERROR(c.Key(i, &key));
      node->keys[i].assign(key);
    }
    uint8_t value_type;
    std::string_view value;
    RS_RETURN_IF_ERROR(c.Value(i, &value_type, &value));
    RS_RETURN_IF_ERROR(BuildNode(value_type, value, depth + 1, &node->children[i]));
  }
  return Status::Ok();
}

// A whole binary document (type byte first); empty input is JSON null.
Status BuildDocument(std::string_view binary, Node* node) {
  if (binary.empty()) {
    node->kind = Node::Kind::kScalar;
    node->text = "null";
    return Status::Ok();
  }
  return BuildNode(static_cast<uint8_t>(binary[0]), binary.substr(1), 0, node);
}

void PrintNode(const Node& node, std::string* out) {
  switch (node.kind) {
    case Node::Kind::kScalar:
      out->append(node.text);
      return;
    case Node::Kind::kObject:
      out->push_back('{');
      for (size_t i = 0; i < node.children.size(); ++i) {
        if (i > 0) out->append(", ");
        AppendQuoted(node.keys[i], out);
        out->append(": ");
        PrintNode(node.children[i], out);
      }
      out->push_back('}');
      return;
    case Node::Kind::kArray:
      out->push_back('[');
      for (size_t i = 0; i < node.children.size(); ++i) {
        if (i > 0) out->append(", ");
        PrintNode(node.children[i], out);
      }
      out->push_back(']');
      return;
  }
}

// MySQL's object key order (Json_key_comparator): shorter keys first, then bytewise.
bool KeyLess(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return a.size() < b.size();
  return a.compare(b) < 0;
}

// ---------------------------------------------------------------------------------------------
// Diff paths: "$" followed by legs ".key", ."quoted key"", "[N]", "[last]", "[last-N]", as
// MySQL's Json_path::to_string writes them.

struct Leg {
  bool member = false;
  std::string key;        // member legs
  bool from_end = false;  // "last" / "last-N"
  uint64_t index = 0;     // cell legs: N, or the N of last-N
};

class PathParser {
 public:
  explicit PathParser(std::string_view text) : text_(text) {}

  Status Parse(std::vector<Leg>* legs) {
    SkipSpace();
    if (!Consume('$')) return Error("does not start with '$'");
    while (true) {
      SkipSpace();
      if (pos_ == text_.size()) return Status::Ok();
      Leg leg;
      if (Consume('.')) {
        SkipSpace();
        leg.member = true;
        if (Peek() == '"') {
          RS_RETURN_IF_ERROR(QuotedKey(&leg.key));
        } else {
          const size_t start = pos_;
          while (pos_ < text_.size() && text_[pos_] != '.' && text_[pos_] != '[' &&
                 !IsSpace(text_[pos_])) {
            ++pos_;
          }
          if (pos_ == start) return Error("empty member name");
          leg.key.assign(text_.substr(start, pos_ - start));
        }
      } else if (Consume('[')) {
        SkipSpace();
        if (text_.substr(pos_, 4) == "last") {
          pos_ += 4;
          leg.from_end = true;
          SkipSpace();
          if (Consume('-')) {
            SkipSpace();
            RS_RETURN_IF_ERROR(Number(&leg.index));
          }
        } else {
          RS_RETURN_IF_ERROR(Number(&leg.index));
        }
        SkipSpace();
        if (!Consume(']')) return Error("array index not closed");
      } else {
        return Error("unexpected character");
      }
      legs->push_back(std::move(leg));
    }
  }

 private:
  static bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  void SkipSpace() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
  }
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool Consume(char c) {
    if (Peek() != c || pos_ == text_.size()) return false;
    ++pos_;
    return true;
  }
  Status Error(const char* what) const {
    return Corrupt("JSON diff path '" + std::string(text_) + "': " + what);
  }
  Status Number(uint64_t* v) {
    const size_t start = pos_;
    auto res = std::from_chars(text_.data() + pos_, text_.data() + text_.size(), *v);
    if (res.ec != std::errc()) return Error("bad array index");
    pos_ = static_cast<size_t>(res.ptr - text_.data());
    return pos_ > start ? Status::Ok() : Error("bad array index");
  }
  static int HexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  Status Hex4(uint32_t* cp) {
    if (text_.size() - pos_ < 4) return Error("truncated \\u escape");
    *cp = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = HexValue(text_[pos_++]);
      if (h < 0) return Error("bad \\u escape");
      *cp = *cp << 4 | static_cast<uint32_t>(h);
    }
    return Status::Ok();
  }
  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | cp >> 6));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | cp >> 12));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | cp >> 18));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }
  // A JSON string literal (the member name of a quoted leg).
  Status QuotedKey(std::string* key) {
    ++pos_;  // opening quote
    while (true) {
      if (pos_ >= text_.size()) return Error("unterminated quoted member");
      const char c = text_[pos_++];
      if (c == '"') return Status::Ok();
      if (c != '\\') {
        key->push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) return Error("unterminated escape");
      const char e = text_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          key->push_back(e);
          break;
        case 'b':
          key->push_back('\b');
          break;
        case 'f':
          key->push_back('\f');
          break;
        case 'n':
          key->push_back('\n');
          break;
        case 'r':
          key->push_back('\r');
          break;
        case 't':
          key->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          RS_RETURN_IF_ERROR(Hex4(&cp));
          if (cp >= 0xd800 && cp < 0xdc00) {
            uint32_t low = 0;
            if (text_.substr(pos_, 2) != "\\u") return Error("lone surrogate");
            pos_ += 2;
            RS_RETURN_IF_ERROR(Hex4(&low));
            if (low < 0xdc00 || low >= 0xe000) return Error("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            return Error("lone surrogate");
          }
          AppendUtf8(cp, key);
          break;
        }
        default:
          return Error("bad escape");
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// The position an array cell leg designates in an array of `size` elements (may be >= size).
uint64_t CellPosition(const Leg& leg, size_t size) {
  if (!leg.from_end) return leg.index;
  // last-N; before the first element it clamps to 0 like MySQL's Json_array_index.
  return leg.index < size ? size - 1 - leg.index : 0;
}

// Follows `legs` from `node`; nullptr when a leg names something the document lacks.
Node* Seek(Node* node, const Leg* begin, const Leg* end) {
  for (const Leg* leg = begin; leg != end; ++leg) {
    if (node->kind == Node::Kind::kArray) {
      if (leg->member) return nullptr;
      if (leg->from_end && leg->index >= node->children.size()) return nullptr;
      const uint64_t pos = CellPosition(*leg, node->children.size());
      if (pos >= node->children.size()) return nullptr;
      node = &node->children[pos];
    } else if (node->kind == Node::Kind::kObject) {
      if (!leg->member) return nullptr;
      auto it = std::find(node->keys.begin(), node->keys.end(), leg->key);
      if (it == node->keys.end()) return nullptr;
      node = &node->children[static_cast<size_t>(it - node->keys.begin())];
    } else {
      return nullptr;
    }
  }
  return node;
}

// net_field_length: < 251 one byte; 252 + 2 bytes; 253 + 3 bytes; 254 + 8 bytes.
Status ReadPackedLength(std::string_view* data, uint64_t* value) {
  if (data->empty()) return Corrupt("truncated JSON diff length");
  const auto first = static_cast<uint8_t>((*data)[0]);
  size_t bytes = 0;
  if (first < 251) {
    *value = first;
    data->remove_prefix(1);
    return Status::Ok();
  }
  if (first == 252)
    bytes = 2;
  else if (first == 253)
    bytes = 3;
  else if (first == 254)
    bytes = 8;
  else
    return Corrupt("bad JSON diff length prefix " + std::to_string(first));
  if (data->size() < 1 + bytes) return Corrupt("truncated JSON diff length");
  *value = ReadLe(data->data() + 1, static_cast<int>(bytes));
  data->remove_prefix(1 + bytes);
  return Status::Ok();
}

enum class DiffOp : uint8_t { kReplace = 0, kInsert = 1, kRemove = 2 };

Status ApplyOne(DiffOp op, std::string_view path_text, const std::vector<Leg>& legs, Node&& value,
                Node* root) {
  auto rejected = [&](const char* why) {
    return Corrupt("JSON diff " +
                   std::string(op == DiffOp::kReplace  ? "REPLACE"
                               : op == DiffOp::kInsert ? "INSERT"
                                                       : "REMOVE") +
                   " at '" + std::string(path_text) + "': " + why);
  };
  if (legs.empty()) {
    if (op != DiffOp::kReplace) return rejected("needs a path below the document root");
    *root = std::move(value);
    return Status::Ok();
  }
  const Leg* first = legs.data();
  const Leg* last = legs.data() + legs.size() - 1;
  if (op == DiffOp::kReplace) {
    Node* target = Seek(root, first, last + 1);
    if (target == nullptr) return rejected("the document has no such value");
    *target = std::move(value);
    return Status::Ok();
  }
  Node* parent = Seek(root, first, last);
  if (parent == nullptr) return rejected("the document has no such parent");
  if (op == DiffOp::kInsert) {
    if (parent->kind == Node::Kind::kObject && last->member) {
      if (std::find(parent->keys.begin(), parent->keys.end(), last->key) != parent->keys.end()) {
        return rejected("the member exists already");
      }
      // Keep MySQL's key order, which is also how the server prints the document.
      size_t pos = 0;
      while (pos < parent->keys.size() && !KeyLess(last->key, parent->keys[pos])) ++pos;
      parent->keys.insert(parent->keys.begin() + static_cast<std::ptrdiff_t>(pos), last->key);
      parent->children.insert(parent->children.begin() + static_cast<std::ptrdiff_t>(pos),
                              std::move(value));
      return Status::Ok();
    }
    if (parent->kind == Node::Kind::kArray && !last->member) {
      const uint64_t pos =
          std::min<uint64_t>(CellPosition(*last, parent->children.size()), parent->children.size());
      parent->children.insert(parent->children.begin() + static_cast<std::ptrdiff_t>(pos),
                              std::move(value));
      return Status::Ok();
    }
    return rejected("the parent is not a container of the right kind");
  }
  // REMOVE
  if (parent->kind == Node::Kind::kObject) {
    if (!last->member) return rejected("array index on an object");
    auto it = std::find(parent->keys.begin(), parent->keys.end(), last->key);
    if (it == parent->keys.end()) return rejected("the member does not exist");
    const auto pos = it - parent->keys.begin();
    parent->keys.erase(it);
    parent->children.erase(parent->children.begin() + pos);
    return Status::Ok();
  }
  if (parent->kind == Node::Kind::kArray) {
    if (last->member) return rejected("member name on an array");
    if (last->from_end && last->index >= parent->children.size()) {
      return rejected("index out of range");
    }
    const uint64_t pos = CellPosition(*last, parent->children.size());
    if (pos >= parent->children.size()) return rejected("index out of range");
    parent->children.erase(parent->children.begin() + static_cast<std::ptrdiff_t>(pos));
    return Status::Ok();
  }
  return rejected("the parent is a scalar");
}

}  // namespace

Status JsonBinaryToText(std::string_view binary, std::string* out) {
  if (binary.empty()) {
    out->append("null");
    return Status::Ok();
  }
  return PrintValue(static_cast<uint8_t>(binary[0]), binary.substr(1), 0, out);
}

Status ApplyJsonDiff(std::string_view before_binary, std::string_view diff, std::string* out) {
  Node root;
  RS_RETURN_IF_ERROR(BuildDocument(before_binary, &root));
  std::vector<Leg> legs;
  while (!diff.empty()) {
    const auto op_byte = static_cast<uint8_t>(diff[0]);
    if (op_byte > 2) return Corrupt("unknown JSON diff operation " + std::to_string(op_byte));
    const auto op = static_cast<DiffOp>(op_byte);
    diff.remove_prefix(1);
    uint64_t path_length;
    RS_RETURN_IF_ERROR(ReadPackedLength(&diff, &path_length));
    if (path_length > diff.size()) return Corrupt("JSON diff path overruns the diff");
    const std::string_view path_text = diff.substr(0, static_cast<size_t>(path_length));
    diff.remove_prefix(static_cast<size_t>(path_length));
    legs.clear();
    RS_RETURN_IF_ERROR(PathParser(path_text).Parse(&legs));
    Node value;
    if (op != DiffOp::kRemove) {
      uint64_t value_length;
      RS_RETURN_IF_ERROR(ReadPackedLength(&diff, &value_length));
      if (value_length > diff.size()) return Corrupt("JSON diff value overruns the diff");
      const std::string_view value_binary = diff.substr(0, static_cast<size_t>(value_length));
      diff.remove_prefix(static_cast<size_t>(value_length));
      if (value_binary.empty()) return Corrupt("JSON diff with an empty value");
      RS_RETURN_IF_ERROR(BuildDocument(value_binary, &value));
    }
    RS_RETURN_IF_ERROR(ApplyOne(op, path_text, legs, std::move(value), &root));
  }
  PrintNode(root, out);
  return Status::Ok();
}

}  // namespace replsync::capture
