// Internal helpers for MySQL's packed number and temporal formats, shared by the row decoder and
// the binary JSON printer. Not part of the capture interface.
//
// DECIMAL: MySQL strings/decimal.cc (decimal2bin / bin2decimal): 9 digits per 4 bytes,
// big-endian, a shorter group for leftover digits, sign bit inverted, negative values stored with
// every bit inverted. Temporal values: MySQL mysys/my_time.cc "packed" int64 form
// (TIME_to_longlong_*_packed): the integer part shifted left by 24 bits plus microseconds.
// Thread-safety: stateless functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "capture/binlog/value.h"
#include "sync/status.h"

namespace replsync::capture::internal {

// Bytes a DECIMAL(precision, scale) value takes in its binary form. 0 when precision/scale are
// impossible (precision 1..65, scale <= 38 and <= precision).
size_t DecimalBinarySize(int precision, int scale);

// Appends the exact text of the binary decimal at the start of `bin`: an optional '-', the integer
// digits without leading zeros ("0" when there are none) and, when scale > 0, '.' and exactly
// `scale` fraction digits. Zero never gets a sign. Corruption when `bin` is shorter than
// DecimalBinarySize or a digit group holds an impossible value.
Status AppendDecimalText(std::string_view bin, int precision, int scale, std::string* out);

// Splits MySQL's packed TIME representation (negative for negative times). Fields are returned
// as stored, without range checks: hours are 10 bits wide, minutes and seconds 6 bits.
TimeValue TimeFromPacked(int64_t packed);

// Splits MySQL's packed DATETIME/DATE representation ((year * 13 + month) << 5 | day in the high
// part). *negative is set when the packed value is negative (never for valid data).
DateTimeValue DateTimeFromPacked(int64_t packed, bool* negative);

}  // namespace replsync::capture::internal
