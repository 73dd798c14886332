#include "apply/bootstrap/deferred_indexes.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <mutex>

namespace replsync::apply {
namespace {

constexpr int kNoSuchTable = 1146;     // ER_NO_SUCH_TABLE
constexpr int kNoSuchDatabase = 1049;  // ER_BAD_DB_ERROR

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return lines;
}

// The lines of a CREATE TABLE text, leading blanks and a trailing comma removed.
std::vector<std::string> DefinitionLines(const std::string& create_sql) {
  std::vector<std::string> lines;
  for (std::string line : SplitLines(create_sql)) {
    const size_t first = line.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    line.erase(0, first);
    if (line.back() == ',') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

bool StartsWith(const std::string& text, std::string_view prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// The index name of a "KEY `name` (...)" line, unquoted.
std::string IndexName(const std::string& line) {
  std::string name;
  for (size_t i = 5; i < line.size(); ++i) {
    if (line[i] == '`') {
      if (i + 1 < line.size() && line[i + 1] == '`') {
        name.push_back('`');
        ++i;
        continue;
      }
      break;
    }
    name.push_back(line[i]);
  }
  return name;
}

std::string Qualified(const std::string& db, const std::string& table) {
  return QuoteIdentifier(db) + "." + QuoteIdentifier(table);
}

std::mutex& BuildMutex() {
  static std::mutex mu;
  return mu;
}

}  // namespace

std::vector<std::string> DeferrableIndexes(const TableDefinition& table,
                                           const std::vector<TableDefinition>& all) {
  std::vector<std::string> keys;
  for (const std::string& line : DefinitionLines(table.create_sql)) {
    if (StartsWith(line, "FULLTEXT ") || StartsWith(line, "SPATIAL ")) return {};
    if (StartsWith(line, "CONSTRAINT ") && line.find(" FOREIGN KEY ") != std::string::npos) {
      return {};
    }
    if (StartsWith(line, "KEY `")) keys.push_back(line);
  }
  if (keys.empty()) return {};
  // SHOW CREATE TABLE names a parent in the same database unqualified.
  const std::string same_db = "REFERENCES " + QuoteIdentifier(table.table) + " (";
  const std::string other_db = "REFERENCES " + Qualified(table.db, table.table) + " (";
  for (const TableDefinition& other : all) {
    if (other.create_sql.find(other_db) != std::string::npos) return {};
    if (other.db == table.db && other.create_sql.find(same_db) != std::string::npos) return {};
  }
  return keys;
}

std::string DeferredIndexes::CreateStatement() {
  return "CREATE TABLE IF NOT EXISTS replsync.bootstrap_indexes (\n"
         "  channel     VARCHAR(64) NOT NULL,\n"
         "  db          VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL,\n"
         "  definitions MEDIUMTEXT NOT NULL,\n"
         "  PRIMARY KEY (channel, db, tbl)\n"
         ") ENGINE=InnoDB COMMENT='replsync bootstrap deferred indexes, format 1'";
}

Status DeferredIndexes::Defer(SqlSession& session, const std::string& channel,
                              const std::string& db, const std::string& table,
                              const std::vector<std::string>& lines) {
  if (lines.empty()) return Status::Ok();
  RS_RETURN_IF_ERROR(session.Execute(CreateStatement(), "bootstrap: deferred indexes table"));
  RS_RETURN_IF_ERROR(session.Execute(
      fmt::format("REPLACE INTO replsync.bootstrap_indexes (channel, db, tbl, definitions) "
                  "VALUES ({}, {}, {}, {})",
                  QuoteString(channel), QuoteString(db), QuoteString(table),
                  QuoteString(fmt::format("{}", fmt::join(lines, "\n")))),
      "bootstrap: record the deferred indexes of " + db + "." + table));
  std::vector<std::string> drops;
  for (const std::string& line : lines)
    drops.push_back("DROP INDEX " + QuoteIdentifier(IndexName(line)));
  return session.Execute(
      fmt::format("ALTER TABLE {} {}", Qualified(db, table), fmt::join(drops, ", ")),
      "bootstrap: defer the indexes of " + db + "." + table);
}

Status DeferredIndexes::Forget(SqlSession& session, const std::string& channel) {
  RS_RETURN_IF_ERROR(session.Execute(CreateStatement(), "bootstrap: deferred indexes table"));
  return session.Execute(
      "DELETE FROM replsync.bootstrap_indexes WHERE channel = " + QuoteString(channel),
      "bootstrap: forget the deferred indexes");
}

Status DeferredIndexes::Build(SqlSession& session, const std::string& channel,
                              const std::vector<std::string>& databases, const std::string& table) {
  std::lock_guard<std::mutex> lock(BuildMutex());
  std::string where = "channel = " + QuoteString(channel);
  if (!databases.empty()) {
    std::vector<std::string> quoted;
    for (const std::string& db : databases) quoted.push_back(QuoteString(db));
    where += fmt::format(" AND db IN ({})", fmt::join(quoted, ", "));
  }
  if (!table.empty()) where += " AND tbl = " + QuoteString(table);
  Result<std::vector<SqlSession::Row>> records =
      session.Query("SELECT db, tbl, definitions FROM replsync.bootstrap_indexes WHERE " + where +
                        " ORDER BY db, tbl",
                    "read the deferred indexes");
  if (!records.ok()) {
    const int code = session.last_error_code();
    return code == kNoSuchTable || code == kNoSuchDatabase ? Status::Ok() : records.status();
  }
  for (const SqlSession::Row& record : *records) {
    const std::string db = record[0].value_or("");
    const std::string tbl = record[1].value_or("");
    const std::string name = db + "." + tbl;
    RS_ASSIGN_OR_RETURN(
        auto present,
        session.Query(fmt::format("SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                                  "TABLE_SCHEMA = {0} AND TABLE_NAME = {1}), INDEX_NAME FROM "
                                  "(SELECT 1) one LEFT JOIN information_schema.STATISTICS ON "
                                  "TABLE_SCHEMA = {0} AND TABLE_NAME = {1}",
                                  QuoteString(db), QuoteString(tbl)),
                      "read the indexes of " + name));
    const bool exists = !present.empty() && present[0][0].value_or("0") != "0";
    std::vector<std::string> add;
    if (exists) {
      for (const std::string& line : SplitLines(record[2].value_or(""))) {
        bool have = false;
        for (const SqlSession::Row& row : present) have = have || row[1] == IndexName(line);
        if (!have) add.push_back("ADD " + line);
      }
    }
    if (!add.empty()) {
      const auto began = std::chrono::steady_clock::now();
      RS_RETURN_IF_ERROR(session.Execute(
          fmt::format("ALTER TABLE {} {}", Qualified(db, tbl), fmt::join(add, ", ")),
          "build the deferred indexes of " + name));
      spdlog::info("bootstrap: {} index{} of {} built after its rows in {:.1f} s", add.size(),
                   add.size() == 1 ? "" : "es", name,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
    }
    RS_RETURN_IF_ERROR(session.Execute(
        fmt::format("DELETE FROM replsync.bootstrap_indexes WHERE channel = {} AND db = {} AND "
                    "tbl = {}",
                    QuoteString(channel), QuoteString(db), QuoteString(tbl)),
        "forget the deferred indexes of " + name));
  }
  return Status::Ok();
}

}  // namespace replsync::apply
