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

#include "capture/binlog_event.h"
#include "capture/value.h"

namespace replsync::capture {

class RowDecoder {
 public:
  RowDecoder();

  // Starts on the rows of `event`; the event's views must stay valid while rows are read.
  void Reset(const RowsEvent& event);

  // Decodes the next row: WRITE fills *after, DELETE fills *before, UPDATE fills both (the other
  // image is left untouched). Returns false when the event has no more rows. Values are valid
  // until the next call. Corruption when an image overruns the event or a value is impossible
  // for its column (names the column).
  Result<bool> Next(RowImage* before, RowImage* after);

 private:
  Status DecodeImage(std::string_view bitmap, bool after_image, RowImage* image);
  Status DecodeValue(const ColumnDef& column, Value* value);
  // Stable storage for decoded text (decimal digits); reset at every Next.
  std::string_view Keep(std::string_view bytes);

  const RowsEvent* event_ = nullptr;
  std::string_view rest_;  // rows not yet decoded
  std::deque<std::string> scratch_;
  size_t scratch_used_ = 0;
};

}  // namespace replsync::capture
