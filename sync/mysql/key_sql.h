// The SQL text of table keys, shared by verify (sync/verify/table_verify.cc) and bootstrap
// (sync/bootstrap/key_range.h): how a key column's value is written as a literal that selects
// exactly that value, and the condition of a key bound in the form MariaDB's range optimizer
// reads as index ranges on a composite key.
//
// Thread-safety: plain functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace replsync {

// How a key column's value is fetched and written back as an SQL literal.
enum class KeyLiteralKind {
  kNumber,   // integers, DECIMAL, YEAR, DOUBLE: the server's text is a literal
  kFloat,    // FLOAT: widened to DOUBLE so that its text round-trips, then a number
  kString,   // character strings: their bytes, written as _charset X'..'
  kBinary,   // binary strings: their bytes, written as X'..'
  kOrdinal,  // ENUM, SET, BIT: compared and ordered by their number (c + 0)
  kText,     // temporal values, UUID, INET6, ...: the server's text, quoted
};

// The kind of a column by its DATA_TYPE (lower case) and CHARACTER_SET_NAME ("" when none).
KeyLiteralKind KeyLiteralKindOf(std::string_view data_type, std::string_view charset);

// The condition (k1, k2, ...) > (l1, l2, ...) (`greater`) or (k1, k2, ...) <= (u1, u2, ...),
// written out column by column with the first column's bound in front:
//   `a` >= 1 AND (`a` > 1 OR (`a` = 1 AND `b` > 'x'))
// The range optimizer reads this form as index ranges on every server version, which is not
// guaranteed for a row-constructor comparison. `quoted_columns` are quoted identifiers and `key`
// the SQL literals, one per column (same size, not empty).
std::string KeyBoundCondition(const std::vector<std::string>& quoted_columns,
                              const std::vector<std::string>& key, bool greater);

}  // namespace replsync
