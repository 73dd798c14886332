// Formatting of decoded column values and row images for `replsync binlog dump`: as JSON (the
// --json lines) and as SQL-like text (the readable form). The formats are written down in
// schemas/binlog_dump.md; this file is the one place that produces them.
//
// Everything appends to a caller-owned TextBuffer so that a dump reuses one buffer for all its
// output: no allocation per value once the buffer and the formatter's scratch space have grown.
// Thread-safety: the free functions are thread-safe; TextBuffer and ValueFormatter are not.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "capture/binlog/table_map.h"
#include "capture/binlog/value.h"
#include "sync/status.h"

namespace replsync::capture {

// A growable byte buffer whose appends are inline (std::string's are mostly out of line in
// libstdc++), with room reserved up front so hot loops write through a raw pointer:
//   char* w = buf.Reserve(n); ...write at most n bytes...; buf.Commit(w);
// Thread-safety: not thread-safe.
class TextBuffer {
 public:
  TextBuffer() = default;
  TextBuffer(const TextBuffer&) = delete;
  TextBuffer& operator=(const TextBuffer&) = delete;

  // Makes room for `n` more bytes and returns where they go; Commit with the end written.
  char* Reserve(size_t n) {
    if (static_cast<size_t>(cap_ - end_) < n) Grow(n);
    return end_;
  }
  void Commit(char* end) { end_ = end; }

  void Append(std::string_view s) {
    char* w = Reserve(s.size());
    if (!s.empty()) std::memcpy(w, s.data(), s.size());
    end_ = w + s.size();
  }
  void Append(const TextBuffer& other) { Append(other.view()); }
  void Push(char c) {
    char* w = Reserve(1);
    *w = c;
    end_ = w + 1;
  }
  // Appends the decimal text of an integer (std::to_chars).
  template <typename T>
  void AppendInt(T value) {
    char* w = Reserve(24);
    end_ = std::to_chars(w, w + 24, value).ptr;
  }

  size_t size() const { return static_cast<size_t>(end_ - data_.get()); }
  bool empty() const { return end_ == data_.get(); }
  const char* data() const { return data_.get(); }
  std::string_view view() const { return {data_.get(), size()}; }
  std::string str() const { return std::string(view()); }
  void clear() { end_ = data_.get(); }
  // Drops everything after the first `size` bytes (size <= this->size()).
  void Truncate(size_t size) { end_ = data_.get() + size; }

 private:
  void Grow(size_t n);

  std::unique_ptr<char[]> data_;
  char* end_ = nullptr;
  char* cap_ = nullptr;
};

// Appends `utf8` as a quoted JSON string: '"', '\\' and control characters escaped, bytes that
// are not valid UTF-8 replaced by U+FFFD, so the result is always valid JSON.
void AppendJsonString(std::string_view utf8, TextBuffer* out);

// Appends `utf8` as a single-quoted SQL string literal with MySQL's backslash escapes (\\ \' \0
// \n \r \t \Z; other bytes as they are); bytes that are not valid UTF-8 become U+FFFD.
void AppendSqlString(std::string_view utf8, TextBuffer* out);

// Appends `name` as a back-quoted SQL identifier (a back quote inside is doubled).
void AppendSqlIdentifier(std::string_view name, TextBuffer* out);

// Appends standard base64 (RFC 4648, with '=' padding) of `bytes`.
void AppendBase64(std::string_view bytes, TextBuffer* out);

// Appends upper-case hexadecimal of `bytes`, two digits per byte.
void AppendHex(std::string_view bytes, TextBuffer* out);

// "YYYY-MM-DD" (MySQL's text form; zero dates print as 0000-00-00).
void AppendDate(const capture::DateTimeValue& value, TextBuffer* out);
// "YYYY-MM-DD HH:MM:SS" plus "." and `decimals` fractional digits when decimals > 0 (max 6).
void AppendDateTime(const capture::DateTimeValue& value, uint8_t decimals, TextBuffer* out);
// "[-]HH:MM:SS[.ffffff]": hours at least two digits (up to 838 and beyond for old TIME).
void AppendTime(const capture::TimeValue& value, uint8_t decimals, TextBuffer* out);
// Seconds since the epoch as a UTC "YYYY-MM-DD HH:MM:SS[.ffffff]"; the zero TIMESTAMP (0 seconds,
// 0 microseconds) prints as "0000-00-00 00:00:00[.000000]", as MySQL shows it.
void AppendUtcDateTime(int64_t seconds, uint32_t micro, uint8_t decimals, TextBuffer* out);

// Formats values and row images. Keeps scratch buffers for charset conversion and JSON text, so
// a dump should reuse one instance.
class ValueFormatter {
 public:
  // Appends the JSON form of `value`, a value of `column` (see schemas/binlog_dump.md, "Values").
  // `before` is the same column's value in the before image when there is one (it is needed for
  // kJsonDiff, a partial JSON update applied to the before document), else nullptr.
  // Errors: Corruption when binary JSON, a JSON diff or a VECTOR value cannot be decoded; *out is
  // then left as it was.
  Status AppendJson(const capture::ColumnDef& column, const capture::Value& value,
                    const capture::Value* before, TextBuffer* out);

  // Appends the SQL literal form of `value` for the text dump: numbers bare, text and temporal
  // values quoted, binary data as X'..', BIT as b'..', NULL as NULL. Errors as AppendJson. A JSON
  // diff without a before value prints as X'..' here (AppendImageSql prints it as JSON_REPLACE
  // etc. calls on the column).
  Status AppendSql(const capture::ColumnDef& column, const capture::Value& value,
                   const capture::Value* before, TextBuffer* out);

  // Appends a row image as a JSON object keyed by column name ("@1", "@2", ... when the table map
  // has no names), skipping columns absent from a partial image. `before` is the update's before
  // image (for JSON diffs) or nullptr. Errors name the column; *out then holds a partial object.
  Status AppendImageJson(const capture::TableMap& table, const capture::RowImage& image,
                         const capture::RowImage* before, TextBuffer* out);

  // Appends a row image as SQL: "`a`=1, `b`='x'" (assignments), or with `where` set
  // "`a`=1 AND `b` IS NULL" (conditions). Columns without names print as @1, @2, ...
  Status AppendImageSql(const capture::TableMap& table, const capture::RowImage& image,
                        const capture::RowImage* before, bool where, TextBuffer* out);

 private:
  // One operation of a PARTIAL_UPDATE_ROWS JSON diff: REPLACE (0), INSERT (1) or REMOVE (2) at a
  // path, with a binary JSON value (empty for REMOVE).
  struct JsonDiffOp {
    uint8_t op;
    std::string_view path;
    std::string_view value;
  };
  // Splits a JSON diff list into diff_ops_. Corruption when it is malformed.
  Status ParseJsonDiff(std::string_view diff);
  // A JSON diff that has no before document to apply to, as {"json_diff":[...]}.
  Status AppendJsonDiffJson(std::string_view diff, TextBuffer* out);
  // The same as SQL: JSON_REPLACE(JSON_REMOVE(<column>, '$.a'), '$.b', CAST('1' AS JSON)).
  Status AppendJsonDiffSql(std::string_view column_ref, std::string_view diff, TextBuffer* out);
  // How text of a collation is printed: kUtf8 as it is (validated), kAsciiCompatible directly
  // when it is pure ASCII and converted otherwise, kOther (UCS-2, UTF-16, UTF-32) converted.
  enum class CharsetClass : uint8_t { kUtf8, kAsciiCompatible, kOther };
  struct CachedClass {
    uint32_t collation = UINT32_MAX;
    CharsetClass cls = CharsetClass::kUtf8;
  };
  static constexpr size_t kCharsetCacheSize = 64;
  CharsetClass ClassOf(uint32_t collation);
  // Appends text of `collation` to *out as raw UTF-8 (no quoting).
  void AppendUtf8(uint32_t collation, std::string_view text, std::string* out);
  // Appends text stored in the character set of `collation` as a JSON or SQL string.
  void AppendText(uint32_t collation, std::string_view text, bool sql, TextBuffer* out);
  // The complete JSON document text of a kJson or kJsonDiff value, into json_.
  Status JsonText(const capture::Value& value, const capture::Value* before);
  void AppendColumnKey(const capture::TableMap& table, size_t index, bool sql, TextBuffer* out);

  std::string scratch_;  // text converted to UTF-8
  std::string json_;     // JSON text from capture/binlog/json_binary.h
  TextBuffer column_ref_;
  std::vector<JsonDiffOp> diff_ops_;
  CachedClass charset_cache_[kCharsetCacheSize];  // direct-mapped by collation id
};

}  // namespace replsync::capture
