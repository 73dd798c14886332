#include "apply/bootstrap/progress_store.h"

#include <fmt/format.h>

#include <array>
#include <utility>

#include "sync/bootstrap/key_range.h"
#include "sync/text.h"

namespace replsync::apply {
namespace {

// The phases in their order; `failed` ends any of them.
constexpr std::array<std::string_view, 6> kPhases = {"starting", "copying", "objects",
                                                     "files",    "done",    "failed"};

int PhaseIndex(std::string_view phase) {
  for (size_t i = 0; i < kPhases.size(); ++i) {
    if (kPhases[i] == phase) return static_cast<int>(i);
  }
  return -1;
}

uint64_t ToU64(const std::optional<std::string>& text) {
  uint64_t value = 0;
  if (text.has_value()) ParseU64(*text, &value);
  return value;
}

bool ToBool(const std::optional<std::string>& text) { return text.value_or("0") != "0"; }

}  // namespace

ProgressStore::ProgressStore(SqlSession& session, std::string channel)
    : session_(session), channel_(std::move(channel)) {}

// As schemas/bootstrap.md writes them, with one change: ROWS is a reserved word of MariaDB
// (10.11 refuses it as a bare column name), so the column `rows` is quoted everywhere.
std::vector<std::string> ProgressStore::CreateStatements() {
  return {
      "CREATE DATABASE IF NOT EXISTS replsync",
      "CREATE TABLE IF NOT EXISTS replsync.bootstrap (\n"
      "  channel     VARCHAR(64) NOT NULL PRIMARY KEY,\n"
      "  token       VARCHAR(64) NOT NULL,\n"
      "  phase       VARCHAR(16) NOT NULL,\n"
      "  resync      BOOLEAN NOT NULL DEFAULT FALSE,\n"
      "  start_file  VARCHAR(512) NOT NULL, start_offset BIGINT UNSIGNED NOT NULL,\n"
      "  start_seq   BIGINT UNSIGNED NOT NULL,\n"
      "  lenient     BOOLEAN NOT NULL DEFAULT FALSE,\n"
      "  started_at  TIMESTAMP(6) NULL, updated_at TIMESTAMP(6) NULL,\n"
      "  error       TEXT NOT NULL DEFAULT ''\n"
      ") ENGINE=InnoDB COMMENT='replsync bootstrap, format 1'",
      "CREATE TABLE IF NOT EXISTS replsync.bootstrap_tables (\n"
      "  channel   VARCHAR(64) NOT NULL,\n"
      "  db        VARCHAR(64) NOT NULL, tbl VARCHAR(64) NOT NULL,\n"
      "  after_key MEDIUMTEXT NULL,\n"
      "  done      BOOLEAN NOT NULL DEFAULT FALSE,\n"
      "  `rows`    BIGINT UNSIGNED NOT NULL DEFAULT 0, bytes BIGINT UNSIGNED NOT NULL DEFAULT 0,\n"
      "  PRIMARY KEY (channel, db, tbl)\n"
      ") ENGINE=InnoDB COMMENT='replsync bootstrap progress, format 1'",
  };
}

Status ProgressStore::Create() {
  RS_RETURN_IF_ERROR(session_.Execute("SET SESSION sql_log_bin = 0", "create bootstrap tables"));
  for (const std::string& sql : CreateStatements()) {
    RS_RETURN_IF_ERROR(session_.Execute(sql, "create bootstrap tables"));
  }
  return Status::Ok();
}

Result<std::optional<BootstrapState>> ProgressStore::ReadBootstrap() {
  RS_ASSIGN_OR_RETURN(
      auto rows,
      session_.Query("SELECT token, phase, resync, start_file, start_offset, start_seq, lenient, "
                     "started_at, updated_at, error FROM replsync.bootstrap WHERE channel = " +
                         QuoteString(channel_),
                     "read replsync.bootstrap"));
  if (rows.empty()) return std::optional<BootstrapState>();
  const auto& r = rows[0];
  BootstrapState state;
  state.token = r[0].value_or("");
  state.phase = r[1].value_or("");
  state.resync = ToBool(r[2]);
  state.start_file = r[3].value_or("");
  state.start_offset = ToU64(r[4]);
  state.start_seq = ToU64(r[5]);
  state.lenient = ToBool(r[6]);
  state.started_at = r[7].value_or("");
  state.updated_at = r[8].value_or("");
  state.error = r[9].value_or("");
  return std::optional<BootstrapState>(std::move(state));
}

Status ProgressStore::Start(const BootstrapState& state) {
  if (PhaseIndex(state.phase) < 0) {
    return Status::InvalidArgument("unknown bootstrap phase '" + state.phase + "'");
  }
  return session_.Execute(
      fmt::format("REPLACE INTO replsync.bootstrap (channel, token, phase, resync, start_file, "
                  "start_offset, start_seq, lenient, started_at, updated_at, error) VALUES ({}, "
                  "{}, {}, {}, {}, {}, {}, {}, NOW(6), NOW(6), {})",
                  QuoteString(channel_), QuoteString(state.token), QuoteString(state.phase),
                  state.resync ? 1 : 0, QuoteString(state.start_file), state.start_offset,
                  state.start_seq, state.lenient ? 1 : 0, QuoteString(state.error)),
      "start the bootstrap in replsync.bootstrap");
}

Status ProgressStore::SetPhase(std::string_view phase, std::string_view error) {
  const int next = PhaseIndex(phase);
  if (next < 0)
    return Status::InvalidArgument("unknown bootstrap phase '" + std::string(phase) + "'");
  RS_ASSIGN_OR_RETURN(std::optional<BootstrapState> current, ReadBootstrap());
  if (!current) {
    return Status::NotFound("no bootstrap of channel '" + channel_ +
                            "' in replsync.bootstrap to move to phase " + std::string(phase));
  }
  const int now = PhaseIndex(current->phase);
  const bool ended = current->phase == "done" || current->phase == "failed";
  if (current->phase != phase && (next < now || ended)) {
    return Status::FailedPrecondition("the bootstrap of channel '" + channel_ + "' is at phase " +
                                      current->phase + "; it cannot move to " + std::string(phase));
  }
  return session_.Execute("UPDATE replsync.bootstrap SET phase = " + QuoteString(phase) +
                              ", error = " + QuoteString(error) +
                              ", updated_at = NOW(6) WHERE channel = " + QuoteString(channel_),
                          "set the bootstrap's phase in replsync.bootstrap");
}

Status ProgressStore::SetLenient(bool lenient) {
  return session_.Execute(std::string("UPDATE replsync.bootstrap SET lenient = ") +
                              (lenient ? "1" : "0") +
                              ", updated_at = NOW(6) WHERE channel = " + QuoteString(channel_),
                          "set the lenient flag in replsync.bootstrap");
}

Result<std::vector<TableProgress>> ProgressStore::ReadTables() {
  RS_ASSIGN_OR_RETURN(auto rows,
                      session_.Query("SELECT db, tbl, after_key, done, `rows`, bytes FROM "
                                     "replsync.bootstrap_tables WHERE channel = " +
                                         QuoteString(channel_) + " ORDER BY db, tbl",
                                     "read replsync.bootstrap_tables"));
  std::vector<TableProgress> tables;
  tables.reserve(rows.size());
  for (const auto& r : rows) {
    TableProgress t;
    t.db = r[0].value_or("");
    t.table = r[1].value_or("");
    if (r[2].has_value()) {
      auto bound = bootstrap::BoundFromJson(*r[2]);
      if (!bound.ok()) {
        return bound.status().WithContext("replsync.bootstrap_tables row of " +
                                          QuoteIdentifier(t.db) + "." + QuoteIdentifier(t.table));
      }
      t.after_key = std::move(*bound);
    }
    t.done = ToBool(r[3]);
    t.rows = ToU64(r[4]);
    t.bytes = ToU64(r[5]);
    tables.push_back(std::move(t));
  }
  return tables;
}

Status ProgressStore::ResetTable(const std::string& db, const std::string& table) {
  return session_.Execute(
      "UPDATE replsync.bootstrap_tables SET after_key = NULL, done = FALSE WHERE channel = " +
          QuoteString(channel_) + " AND db = " + QuoteString(db) +
          " AND tbl = " + QuoteString(table),
      "bootstrap: reset the progress of " + db + "." + table);
}

Status ProgressStore::AddTable(const std::string& db, const std::string& table) {
  return session_.Execute(
      "INSERT IGNORE INTO replsync.bootstrap_tables (channel, db, tbl) VALUES (" +
          QuoteString(channel_) + ", " + QuoteString(db) + ", " + QuoteString(table) + ")",
      "add a table to replsync.bootstrap_tables");
}

std::string ProgressStore::AdvanceTableSql(const std::string& channel, const std::string& db,
                                           const std::string& table,
                                           const std::vector<std::string>& upper, bool done,
                                           uint64_t rows, uint64_t bytes) {
  return fmt::format(
      "INSERT INTO replsync.bootstrap_tables (channel, db, tbl, after_key, done, `rows`, bytes) "
      "VALUES ({}, {}, {}, {}, {}, {}, {}) ON DUPLICATE KEY UPDATE after_key = VALUES(after_key), "
      "done = VALUES(done), `rows` = `rows` + VALUES(`rows`), bytes = bytes + VALUES(bytes)",
      QuoteString(channel), QuoteString(db), QuoteString(table),
      QuoteString(bootstrap::BoundToJson(upper)), done ? 1 : 0, rows, bytes);
}

Status ProgressStore::AdvanceTable(const std::string& db, const std::string& table,
                                   const std::vector<std::string>& upper, bool done, uint64_t rows,
                                   uint64_t bytes) {
  return session_.Execute(AdvanceTableSql(channel_, db, table, upper, done, rows, bytes),
                          "record a loaded chunk in replsync.bootstrap_tables");
}

Status ProgressStore::Reset() {
  const std::string where = " WHERE channel = " + QuoteString(channel_);
  RS_RETURN_IF_ERROR(session_.Execute("DELETE FROM replsync.bootstrap_tables" + where,
                                      "reset replsync.bootstrap_tables"));
  return session_.Execute("DELETE FROM replsync.bootstrap" + where, "reset replsync.bootstrap");
}

}  // namespace replsync::apply
