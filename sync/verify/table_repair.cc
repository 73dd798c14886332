#include "sync/verify/table_repair.h"

#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace replsync::verify {
namespace {


// How a column's value is read (an SQL expression) and written (a literal around what was read).
enum class Literal {
  kQuoted,   // the server's text, quoted: numbers, temporal values, UUID, INET6, ...
  kNumber,   // a number, as is: ENUM, SET and BIT as c+0
  kCharset,  // HEX of the bytes, written as _charset X'..'
  kBinary,   // HEX of the bytes, written as X'..'
  kJson,     // MySQL's JSON (no character set): HEX of its text, CONVERT(X'..' USING utf8mb4)
  kRaw,      // read as the finished literal (spatial values)
};

Literal LiteralOf(const TableColumn& c) {
  const std::string& t = c.data_type;
  if (DataTypeIn(t, {"enum", "set", "bit"})) return Literal::kNumber;
  if (DataTypeIn(t, {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})) {
    return Literal::kBinary;
  }
  if (DataTypeIn(t, {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
               "multipolygon", "geometrycollection", "geomcollection"})) {
    return Literal::kRaw;
  }
  if (t == "json" && c.charset.empty()) return Literal::kJson;
  if (!c.charset.empty() && c.charset != "binary") return Literal::kCharset;
  if (c.charset == "binary") return Literal::kBinary;
  return Literal::kQuoted;
}

// The SELECT expression reading column `c` for its literal; NULL stays NULL.
std::string ReadExpression(const TableColumn& c) {
  const std::string id = QuoteIdentifier(c.name);
  switch (LiteralOf(c)) {
    case Literal::kNumber:
      return "(" + id + " + 0)";
    case Literal::kCharset:
    case Literal::kBinary:
    case Literal::kJson:
      return "HEX(" + id + ")";
    case Literal::kRaw:
      return "CONCAT('ST_GeomFromWKB(X''', HEX(ST_AsWKB(" + id + ")), ''', ', ST_SRID(" + id +
             "), ')')";
    case Literal::kQuoted:
      // FLOAT widened to DOUBLE: the server prints a FLOAT with 6 significant digits only, a
      // DOUBLE as the shortest text that round-trips (and the FLOAT's value is that DOUBLE's).
      return c.data_type == "float" ? "(" + id + " + 0e0)" : id;
  }
  return id;
}

std::string WriteLiteral(const TableColumn& c, const std::optional<std::string>& value) {
  if (!value) return "NULL";
  switch (LiteralOf(c)) {
    case Literal::kNumber:
    case Literal::kRaw:
      return *value;
    case Literal::kCharset:
      return "_" + c.charset + " X'" + *value + "'";
    case Literal::kBinary:
      return "X'" + *value + "'";
    case Literal::kJson:
      return "CONVERT(X'" + *value + "' USING utf8mb4)";
    case Literal::kQuoted:
      return QuoteString(*value);
  }
  return "NULL";
}

class Repairer {
 public:
  Repairer(MysqlSession* primary, MysqlSession* secondary, const TableVerifyResult& verified,
           const TableRepairOptions& options, const std::function<Status(const std::string&)>& emit)
      : primary_(primary),
        secondary_(secondary),
        d_(verified.differences),
        options_(options),
        emit_(emit),
        qualified_(QuoteIdentifier(verified.db) + "." + QuoteIdentifier(verified.table)) {
    for (const TableColumn& c : d_.columns) {
      if (c.generated) continue;
      written_.push_back(&c);
      column_list_ += (column_list_.empty() ? "" : ", ") + QuoteIdentifier(c.name);
      read_list_ += ", " + ReadExpression(c);
    }
    keys_per_read_ = std::max<size_t>(options.keys_per_read, 1);
  }

  Result<TableRepairCounts> Run() {
    if (d_.key_columns.empty()) {
      RS_RETURN_IF_ERROR(DeleteSurplus());
      RS_RETURN_IF_ERROR(InsertMissing());
    } else {
      RS_RETURN_IF_ERROR(DeleteByKey());
      RS_RETURN_IF_ERROR(ReplaceByKey(d_.missing));
      RS_RETURN_IF_ERROR(ReplaceByKey(d_.changed));
      counts_.inserted = d_.missing.size();
      counts_.updated = d_.changed.size();
    }
    return counts_;
  }

 private:
  std::string What(MysqlSession* side) const {
    return "repair " + qualified_ +
           (side == primary_ ? ": read the primary's rows" : ": read the secondary's rows");
  }

  // "(v1, v2, ...)" from a row read with read_list_, whose first column is skipped.
  std::string Tuple(const MysqlSession::Row& row) const {
    std::string tuple = "(";
    for (size_t i = 0; i < written_.size(); ++i) {
      tuple += (i == 0 ? "" : ", ") + WriteLiteral(*written_[i], row[i + 1]);
    }
    return tuple + ")";
  }

  // Emits `head` followed by the tuples, as few statements as max_statement_bytes allows.
  Status EmitValues(const std::string& head, const std::vector<std::string>& tuples) {
    std::string statement;
    for (const std::string& tuple : tuples) {
      if (!statement.empty() && statement.size() + tuple.size() > options_.max_statement_bytes) {
        RS_RETURN_IF_ERROR(emit_(statement));
        statement.clear();
      }
      statement += (statement.empty() ? head : ", ") + tuple;
    }
    if (!statement.empty()) RS_RETURN_IF_ERROR(emit_(statement));
    return Status::Ok();
  }

  Status DeleteByKey() {
    std::string statement;
    const std::string head = "DELETE FROM " + qualified_ + " WHERE ";
    for (const std::string& predicate : d_.extra) {
      if (!statement.empty() &&
          statement.size() + predicate.size() > options_.max_statement_bytes) {
        RS_RETURN_IF_ERROR(emit_(statement));
        statement.clear();
      }
      statement += (statement.empty() ? head : " OR ") + predicate;
    }
    if (!statement.empty()) RS_RETURN_IF_ERROR(emit_(statement));
    counts_.deleted = d_.extra.size();
    return Status::Ok();
  }

  // Reads the primary's rows of `predicates` (its snapshot) and writes them with REPLACE.
  Status ReplaceByKey(const std::vector<std::string>& predicates) {
    const std::string head = "REPLACE INTO " + qualified_ + " (" + column_list_ + ") VALUES ";
    for (size_t begin = 0; begin < predicates.size(); begin += keys_per_read_) {
      const size_t end = std::min(predicates.size(), begin + keys_per_read_);
      std::string where;
      for (size_t i = begin; i < end; ++i) where += (i == begin ? "" : " OR ") + predicates[i];
      RS_ASSIGN_OR_RETURN(auto rows, primary_->Query("SELECT 0" + read_list_ + " FROM " +
                                                         qualified_ + " WHERE " + where,
                                                     What(primary_)));
      if (rows.size() != end - begin) {
        return Status::Internal("repair " + qualified_ + ": the primary's snapshot holds " +
                                std::to_string(rows.size()) + " rows for " +
                                std::to_string(end - begin) +
                                " keys the comparison found there (is the snapshot open?)");
      }
      std::vector<std::string> tuples;
      for (const auto& row : rows) tuples.push_back(Tuple(row));
      RS_RETURN_IF_ERROR(EmitValues(head, tuples));
    }
    return Status::Ok();
  }

  // Row hash -> how many times it is listed.
  static std::map<std::string, uint64_t> CountHashes(const std::vector<std::string>& hashes) {
    std::map<std::string, uint64_t> counts;
    for (const std::string& h : hashes) ++counts[h];
    return counts;
  }

  // Reads one row per hash of `hashes` from `side`: hash -> the row (read with read_list_, the
  // hash first).
  Result<std::map<std::string, MysqlSession::Row>> RowsByHash(
      MysqlSession* side, const std::map<std::string, uint64_t>& hashes) {
    std::map<std::string, MysqlSession::Row> rows;
    auto it = hashes.begin();
    while (it != hashes.end()) {
      std::string in;
      for (size_t n = 0; n < keys_per_read_ && it != hashes.end(); ++n, ++it) {
        in += (in.empty() ? "" : ", ") + QuoteString(it->first);
      }
      RS_ASSIGN_OR_RETURN(auto found,
                          side->Query("SELECT " + d_.row_hash + read_list_ + " FROM " + qualified_ +
                                          " WHERE " + d_.row_hash + " IN (" + in + ")",
                                      What(side)));
      for (auto& row : found) rows.emplace(row[0].value_or(""), std::move(row));
    }
    for (const auto& [hash, count] : hashes) {
      if (rows.count(hash) == 0) {
        return Status::Internal("repair " + qualified_ + ": no row with the hash " + hash + " on " +
                                (side == primary_ ? "the primary" : "the secondary") +
                                " (is the snapshot open?)");
      }
    }
    return rows;
  }

  Status DeleteSurplus() {
    const auto counts = CountHashes(d_.extra);
    if (counts.empty()) return Status::Ok();
    RS_ASSIGN_OR_RETURN(auto rows, RowsByHash(secondary_, counts));
    for (const auto& [hash, count] : counts) {
      const MysqlSession::Row& row = rows.at(hash);
      std::string where;
      for (size_t i = 0; i < written_.size(); ++i) {
        const TableColumn& c = *written_[i];
        // MySQL compares a JSON column with a string as a JSON string scalar: the hash decides.
        if (LiteralOf(c) == Literal::kJson) continue;
        where += QuoteIdentifier(c.name) + " <=> " + WriteLiteral(c, row[i + 1]) + " AND ";
      }
      RS_RETURN_IF_ERROR(emit_("DELETE FROM " + qualified_ + " WHERE " + where + d_.row_hash +
                               " = " + QuoteString(hash) + " LIMIT " + std::to_string(count)));
      counts_.deleted += count;
    }
    return Status::Ok();
  }

  Status InsertMissing() {
    const auto counts = CountHashes(d_.missing);
    if (counts.empty()) return Status::Ok();
    RS_ASSIGN_OR_RETURN(auto rows, RowsByHash(primary_, counts));
    std::vector<std::string> tuples;
    for (const auto& [hash, count] : counts) {
      const std::string tuple = Tuple(rows.at(hash));
      for (uint64_t i = 0; i < count; ++i) tuples.push_back(tuple);
      counts_.inserted += count;
    }
    return EmitValues("INSERT INTO " + qualified_ + " (" + column_list_ + ") VALUES ", tuples);
  }

  MysqlSession* primary_;
  MysqlSession* secondary_;
  const TableDifferences& d_;
  const TableRepairOptions& options_;
  const std::function<Status(const std::string&)>& emit_;
  std::string qualified_;                    // `db`.`table`
  std::vector<const TableColumn*> written_;  // the columns written, in order
  std::string column_list_;                  // "`a`, `b`"
  std::string read_list_;                    // ", <read a>, <read b>"
  size_t keys_per_read_ = 1;
  TableRepairCounts counts_;
};

}  // namespace

std::string WhyNotRepairable(const TableVerifyResult& verified) {
  if (verified.status == "equal") return "";
  if (verified.status == "unverified") return "the table could not be compared: " + verified.error;
  if (!verified.error.empty()) return verified.error + " (repair writes rows only)";
  if (!verified.differences.complete) {
    return "more rows differ than repair lists (" +
           std::to_string(verified.differences.missing.size() + verified.differences.extra.size() +
                          verified.differences.changed.size()) +
           "); raise --max-rows, or resynchronise the table";
  }
  if (verified.differences.table_type == "SYSTEM VERSIONED") {
    return "a system-versioned table is not repaired (its history would change)";
  }
  if (verified.differences.row_hash.empty()) {
    return "the differing rows were not collected";
  }
  return "";
}

Result<TableRepairCounts> RepairTable(MysqlSession* primary, MysqlSession* secondary,
                                      const TableVerifyResult& verified,
                                      const TableRepairOptions& options,
                                      const std::function<Status(const std::string&)>& emit) {
  if (verified.status == "equal") return TableRepairCounts{};
  Repairer repairer(primary, secondary, verified, options, emit);
  return repairer.Run();
}

}  // namespace replsync::verify
