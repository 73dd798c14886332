// The row encoding of verify's chunk summaries, shared by verify (sync/verify/table_verify.cc)
// and bootstrap's resync (sync/bootstrap/chunk_summary.h): the SQL expression that encodes a
// row, column by column, as '~' for NULL or "<byte length>:<bytes>" of CAST(c AS BINARY), so
// that NULL, '' and 'NULL' differ, lengths make a concatenation of encodings unambiguous (it
// parses back into the rows), and collations or PAD SPACE cannot hide a trailing space. FLOAT is
// widened to DOUBLE first (the server prints a FLOAT with 6 significant digits only); DOUBLE
// prints as the shortest text that round-trips; temporal values carry their fractional digits
// (in the session's time zone: both sides run '+00:00'); BIT and spatial values are their bytes;
// MEDIUM/LONG BLOB and TEXT and JSON values are "<byte length>#<SHA-256 hex>" (hashed on their
// own, so that a row of several large values does not exceed max_allowed_packet inside CONCAT,
// which would make it NULL). Which columns are hashed depends only on the type, identical on
// both servers, so the encoding stays unambiguous.
//
// Thread-safety: plain functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace replsync {

// A column as the encoding needs it.
struct EncodedColumn {
  std::string name;
  std::string data_type;  // information_schema.COLUMNS DATA_TYPE, lower case
};

// The encoding of one column's value: IF(`c` IS NULL, '~', CONCAT(LENGTH(..), ':', ..)).
std::string ColumnEncodingSql(std::string_view name, std::string_view data_type);

// A row's encoding: CONCAT of the columns' encodings, in the given order (the caller leaves out
// the columns the server computes). "" when `columns` is empty.
std::string RowEncodingSql(const std::vector<EncodedColumn>& columns);

}  // namespace replsync
