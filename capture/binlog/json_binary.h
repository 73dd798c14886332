// MySQL's binary JSON format (the storage format of JSON columns in row events) and the JSON
// diffs of PARTIAL_UPDATE_ROWS_EVENT.
//
// Reference: MySQL sql-common/json_binary.h (format description at the top of the file) and
// sql/json_diff.h / rows_event.h for the diff layout. Opaque values (DATE, TIME, DATETIME,
// DECIMAL, BLOB and other types) print as MySQL prints them: dates and times as quoted strings,
// decimals as numbers, other opaque data as "base64:typeNN:...".
// Thread-safety: stateless functions.
#pragma once

#include <string>
#include <string_view>

#include "sync/status.h"

namespace replsync::capture {

// Appends the JSON text of one binary JSON value to *out in MySQL's own text form (what SELECT
// and JSON_EXTRACT show): `{"a": 1, "b": [1, 2.5]}`, keys in stored order, doubles as my_gcvt
// prints them. An empty input is the JSON null MySQL writes for a NULL-equivalent empty value.
// Corruption when an offset or length points outside the value, or a type byte is unknown.
Status JsonBinaryToText(std::string_view binary, std::string* out);

// Applies a PARTIAL_UPDATE_ROWS JSON diff list to the column's before value (binary JSON) and
// appends the resulting document as JSON text to *out (same form as JsonBinaryToText; inserted
// members take MySQL's key order). `diff` is the kJsonDiff value: the operations without their
// 4-byte length. Operations: REPLACE, INSERT, REMOVE at a path ("$.a[2].b"). Corruption when the
// diff is malformed or names a path the document lacks.
Status ApplyJsonDiff(std::string_view before_binary, std::string_view diff, std::string* out);

}  // namespace replsync::capture
