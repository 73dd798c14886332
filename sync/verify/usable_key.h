// UsableKey: the key by which verify, repair and bootstrap walk a table in ranges
// (schemas/verify.md, schemas/bootstrap.md "Chunks"): the PRIMARY KEY, else the first UNIQUE
// index, by name, whose columns are all NOT NULL; none when there is no such index (the table is
// then compared as a multiset, or copied as one chunk).
//
// Thread-safety: plain functions; ReadUsableKey uses the session it is given.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/status.h"

namespace replsync::verify {

struct UsableKey {
  std::string name;                  // "PRIMARY", an index name; "" when there is no usable key
  std::vector<std::string> columns;  // in index order
  bool operator==(const UsableKey&) const = default;
};

// The query of a table's unique-index columns ChooseUsableKey takes, for `where` (a condition on
// information_schema.STATISTICS naming one table): rows (INDEX_NAME, NON_UNIQUE, COLUMN_NAME),
// PRIMARY first, then by index name and SEQ_IN_INDEX.
std::string UsableKeyStatisticsQuery(const std::string& where);

// The usable key among `statistics` (rows of UsableKeyStatisticsQuery). `nullable` says whether
// a column may be NULL (nullopt: no such column, which makes its index unusable).
UsableKey ChooseUsableKey(const std::vector<SqlSession::Row>& statistics,
                          const std::function<std::optional<bool>(const std::string&)>& nullable);

// The usable key of `db`.`table` as the session sees it now (information_schema.COLUMNS and
// STATISTICS). Errors: the session's.
Result<UsableKey> ReadUsableKey(SqlSession& session, const std::string& db,
                                const std::string& table);

}  // namespace replsync::verify
