#include "sync/bootstrap/chunk_summary.h"

#include <fmt/format.h>

#include <charconv>

#include "sync/bootstrap/key_range.h"
#include "sync/mysql/row_encoding.h"

namespace replsync::bootstrap {
namespace {

uint64_t ParseCount(const std::optional<std::string>& text) {
  uint64_t value = 0;
  if (text.has_value()) std::from_chars(text->data(), text->data() + text->size(), value);
  return value;
}

std::string Encoding(const std::vector<Column>& columns) {
  std::vector<EncodedColumn> encoded;
  for (const Column& c : columns) {
    if (!c.generated) encoded.push_back(EncodedColumn{c.name, c.data_type});
  }
  return RowEncodingSql(encoded);
}

}  // namespace

std::string ChunkSummarySql(const std::string& db, const std::string& table,
                            const std::vector<Column>& columns,
                            const std::vector<std::string>& key_columns,
                            const std::string& key_name, const std::vector<std::string>& lower,
                            const std::vector<std::string>& upper) {
  const std::string qualified = QuoteIdentifier(db) + "." + QuoteIdentifier(table);
  const std::string encoding = Encoding(columns);
  if (key_columns.empty()) {
    // The row hashes materialised once (the LIMIT keeps the derived table from being merged),
    // then concatenated sorted.
    return fmt::format(
        "SELECT c, SHA2(g, 256), LENGTH(g), n FROM (SELECT COUNT(*) AS c, COUNT(h) AS n, "
        "GROUP_CONCAT(h ORDER BY h SEPARATOR '') AS g FROM (SELECT SHA2({}, 256) AS h FROM {} "
        "LIMIT 18446744073709551615) AS r) AS x",
        encoding, qualified);
  }
  std::string hint;
  if (!key_name.empty()) {
    hint = " FORCE INDEX (" +
           (key_name == "PRIMARY" ? std::string("PRIMARY") : QuoteIdentifier(key_name)) + ")";
  }
  // ORDER BY inside GROUP_CONCAT: the concatenation follows the key whatever the engine reads.
  return fmt::format(
      "SELECT c, SHA2(g, 256), LENGTH(g), c FROM (SELECT COUNT(*) AS c, GROUP_CONCAT({} ORDER "
      "BY {} SEPARATOR '') AS g FROM {}{}{}) AS x",
      encoding, KeyOrder(key_columns), qualified, hint, KeyRangeWhere(key_columns, lower, upper));
}

Result<ChunkSummary> SummarizeChunk(SqlSession& session, const std::string& db,
                                    const std::string& table, const std::vector<Column>& columns,
                                    const std::vector<std::string>& key_columns,
                                    const std::string& key_name,
                                    const std::vector<std::string>& lower,
                                    const std::vector<std::string>& upper) {
  const std::string what = fmt::format("summarise a chunk of `{}`.`{}`", db, table);
  if (key_columns.empty() && (!lower.empty() || !upper.empty())) {
    return Status::InvalidArgument(what + ": a table without a key has no key range");
  }
  if (Encoding(columns).empty()) {
    return Status::InvalidArgument(what + ": the table has no stored columns");
  }
  // A summary concatenates at most max_allowed_packet bytes; group_concat_max_len must not cut
  // it shorter.
  RS_RETURN_IF_ERROR(session.Execute("SET SESSION group_concat_max_len = 4294967295", what));
  RS_ASSIGN_OR_RETURN(auto rows, session.Query(ChunkSummarySql(db, table, columns, key_columns,
                                                               key_name, lower, upper),
                                               what));
  ChunkSummary summary;
  if (rows.empty() || rows[0].size() < 4) {
    return Status::Internal(what + ": the summary query returned no row");
  }
  summary.rows = ParseCount(rows[0][0]);
  summary.sha256 = rows[0][1].value_or("");
  summary.bytes = ParseCount(rows[0][2]);
  const uint64_t hashed = ParseCount(rows[0][3]);
  RS_ASSIGN_OR_RETURN(auto warnings, session.Query("SHOW WARNINGS", what));
  summary.exact = warnings.empty() && hashed == summary.rows;
  return summary;
}

}  // namespace replsync::bootstrap
