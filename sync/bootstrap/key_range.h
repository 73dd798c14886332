// The SQL of a bootstrap chunk's key range (schemas/bootstrap.md, "Chunks"): a chunk holds the
// rows whose key is in (lower, upper], where lower is the previous chunk's last key (none: from
// -infinity) and upper this chunk's last key (none: to +infinity), so the chunks of a table cover
// every key, including keys that exist only on the secondary.
//
// A bound is the key's SQL literals, one per key column, in key order: what
// BootstrapReply.last_key carries and BootstrapRequest.after sends back, and what the secondary's
// progress table keeps as a JSON array (replsync.bootstrap_tables.after_key). Literals are
// written as verify writes key literals (sync/mysql/key_sql.h): numbers (BIT, ENUM, SET by their
// number) as text, character strings as _charset X'..' in the column's character set, binary
// strings as X'..', temporal and other values as quoted text with an introducer (_utf8mb4 '..':
// the sessions run SET NAMES binary, under which INET6 and UUID read a plain '..' as their binary
// form); read from a row streamed with
// SelectList under SET NAMES binary and time_zone '+00:00' (sync/bootstrap/row_format.h).
//
// Thread-safety: plain functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "sync/bootstrap/row_format.h"
#include "sync/status.h"

namespace replsync::bootstrap {

// The predicate selecting the keys in (lower, upper] over `key_columns` (names, unquoted), in the
// form MariaDB's range optimizer reads as ranges of the key's index:
//   `a` >= 1 AND (`a` > 1 OR (`a` = 1 AND `b` > _utf8mb4 X'78')) AND `a` <= 9 AND (...)
// `lower` / `upper` empty: unbounded on that side; "" when both are (every row).
// Precondition: a non-empty bound has one literal per key column.
std::string KeyRangePredicate(const std::vector<std::string>& key_columns,
                              const std::vector<std::string>& lower,
                              const std::vector<std::string>& upper);

// " WHERE <KeyRangePredicate>", or "" for the whole table.
std::string KeyRangeWhere(const std::vector<std::string>& key_columns,
                          const std::vector<std::string>& lower,
                          const std::vector<std::string>& upper);

// The key order, ascending: "`a`, `b`" (for ORDER BY).
std::string KeyOrder(const std::vector<std::string>& key_columns);

// The SQL literal of one key value of `column` as a row streamed with SelectList holds it
// (`value`, `length` bytes, never NULL: key columns are NOT NULL).
std::string KeyLiteral(const Column& column, const char* value, size_t length);

// The positions of `key_columns` in `columns` (the chunk's columns, StoredColumns order).
// InvalidArgument naming the first key column that is not among them.
Result<std::vector<size_t>> KeyPositions(const std::vector<Column>& columns,
                                         const std::vector<std::string>& key_columns);

// A bound as the progress table stores it: a JSON array of its literals ("[]" for an unbounded
// one), and back. ParseBound: Corruption when `json` is not an array of strings.
std::string BoundToJson(const std::vector<std::string>& literals);
Result<std::vector<std::string>> BoundFromJson(std::string_view json);

// A bound for a message: "(-infinity)", "(5)", "(1, _utf8mb4 X'78')"; `upper` says which
// infinity an empty bound is.
std::string DescribeBound(const std::vector<std::string>& literals, bool upper);

}  // namespace replsync::bootstrap
