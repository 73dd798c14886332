#include "sync/verify/usable_key.h"

#include <map>

namespace replsync::verify {

std::string UsableKeyStatisticsQuery(const std::string& where) {
  return "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS WHERE " +
         where + " ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX";
}

UsableKey ChooseUsableKey(const std::vector<SqlSession::Row>& statistics,
                          const std::function<std::optional<bool>(const std::string&)>& nullable) {
  // The unique indexes in the order PRIMARY first, then by name.
  std::vector<UsableKey> unique_indexes;
  for (const SqlSession::Row& row : statistics) {
    if (row.size() < 3 || row[1].value_or("1") != "0") continue;
    const std::string index = row[0].value_or("");
    if (unique_indexes.empty() || unique_indexes.back().name != index) {
      unique_indexes.push_back(UsableKey{index, {}});
    }
    unique_indexes.back().columns.push_back(row[2].value_or(""));
  }
  for (UsableKey& key : unique_indexes) {
    bool usable = !key.columns.empty();
    for (const std::string& column : key.columns) {
      std::optional<bool> may_be_null = nullable(column);
      if (!may_be_null.has_value() || *may_be_null) usable = false;
    }
    if (usable) return std::move(key);
  }
  return UsableKey{};
}

Result<UsableKey> ReadUsableKey(SqlSession& session, const std::string& db,
                                const std::string& table) {
  const std::string where =
      "TABLE_SCHEMA = " + QuoteString(db) + " AND TABLE_NAME = " + QuoteString(table);
  const std::string what = "read the key of " + QuoteIdentifier(db) + "." + QuoteIdentifier(table);
  RS_ASSIGN_OR_RETURN(
      auto columns,
      session.Query(
          "SELECT COLUMN_NAME, IS_NULLABLE FROM information_schema.COLUMNS WHERE " + where, what));
  std::map<std::string, bool> nullable;
  for (const auto& row : columns) {
    if (row.size() >= 2) nullable[row[0].value_or("")] = row[1].value_or("") == "YES";
  }
  RS_ASSIGN_OR_RETURN(auto statistics, session.Query(UsableKeyStatisticsQuery(where), what));
  return ChooseUsableKey(statistics, [&](const std::string& column) -> std::optional<bool> {
    auto it = nullable.find(column);
    if (it == nullable.end()) return std::nullopt;
    return it->second;
  });
}

}  // namespace replsync::verify
