// RowDecoder: decodes the row images of a ROWS event into Values, column by column.
//
// Handles every column type (see ValueKind), NULL bitmaps, partial images read through the
// event's column bitmaps (binlog_row_image=MINIMAL/NOBLOB), v1/v2 rows, and the JSON diffs of
// PARTIAL_UPDATE_ROWS_EVENT. Reference: MySQL libbinlogevents rows_event.h and
// sql/log_event.cc (log_event_print_value), MariaDB KB "Rows Event".
// Thread-safety: not thread-safe; one per stream.
#pragma once

#include <deque>
#include <string>
#include <string_view>

#include "capture/binlog/binlog_event.h"
#include "capture/binlog/value.h"

namespace replsync::capture {

class RowDecoder {
 public:
  RowDecoder();

  // Starts on the rows of `event`; the event's views must stay valid while rows are read.
  void Reset(const RowsEvent& event);

  // Decodes the next row: WRITE fills *after, DELETE fills *before, UPDATE fills both (the other
  // image is left untouched). Returns false when the event has no more rows. Values are valid
  // until the next call. Corruption when an image overruns the event or a value is impossible
  // for its column (names the column). In a PARTIAL_UPDATE_ROWS after image a JSON column
  // logged as a diff is a kJsonDiff value; ApplyJsonDiff turns it and the column's previous
  // document into the new one. Unsupported for a column type that cannot be decoded.
  // A null `before` or `after` skips that image.
  Result<bool> Next(RowImage* before, RowImage* after);

 private:
  Status DecodeImage(std::string_view bitmap, bool after_image, RowImage* image);
  // Pre-GA (v0) images: the table record's NULL bytes, then every present column, NULL or not.
  Status DecodePreGaImage(std::string_view bitmap, RowImage* image);
  // Decodes one non-NULL value of `column` from the front of rest_. `partial_json`: the value
  // is a PARTIAL_UPDATE_ROWS JSON diff. On failure the Status says what is wrong with the value;
  // DecodeImage adds the table, row and column.
  Status DecodeValue(const ColumnDef& column, bool partial_json, Value* value);
  // Takes `n` bytes from the front of rest_; false (and nothing taken) when fewer remain.
  bool Take(size_t n, std::string_view* out);
  Status TakeLength(size_t prefix_bytes, std::string_view* out);
  Status Inflate(std::string_view stored, uint64_t max_length, std::string_view* out);
  Status ImageError(size_t column, const Status& cause) const;
  // Stable storage for decoded text (DECIMAL digits, inflated MariaDB compressed columns): the
  // next reusable scratch string, cleared. It stays put until the next call of Next, so values
  // may view it; strings are reused row after row, so steady state allocates nothing.
  std::string* NextScratch();

  const RowsEvent* event_ = nullptr;
  std::string_view rest_;    // rows not yet decoded
  uint64_t row_index_ = 0;   // 0-based index of the row being decoded, for errors
  size_t json_columns_ = 0;  // JSON columns of the table (PARTIAL_UPDATE_ROWS partial bits)
  std::deque<std::string> scratch_;
  size_t scratch_used_ = 0;
  RowImage discard_;  // target for an image the caller did not ask for
};

}  // namespace replsync::capture
