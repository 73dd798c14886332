// ProgressStore: the secondary's bootstrap progress in its own database (schemas/bootstrap.md,
// "On the secondary's database", format 1): the table `replsync.bootstrap` (one row per channel:
// the bootstrap's token, phase, start point and lenient flag) and `replsync.bootstrap_tables`
// (one row per copied table: the upper key of the last loaded chunk, done, counts).
//
// Writes are committed on their own (the session's autocommit), except AdvanceTable, which runs
// inside the caller's transaction: a chunk's rows and its table's progress row commit together
// (ChunkLoader). The phase moves forward only: starting -> copying -> objects -> files -> done;
// `failed`
// from any phase; Start replaces the row (a new bootstrap).
//
// Precondition: the session runs with sql_log_bin = 0 (Create sets it), so neither the tables nor
// their rows reach the secondary's own binlog.
// Thread-safety: not thread-safe; uses the session it is given, one call at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/status.h"

namespace replsync::apply {

// The row of replsync.bootstrap.
struct BootstrapState {
  std::string token;              // names this bootstrap (the request's)
  std::string phase = "copying";  // starting | copying | objects | files | done | failed
  bool resync = false;
  std::string start_file;  // P_0
  uint64_t start_offset = 0;
  uint64_t start_seq = 0;  // S_0
  bool lenient = false;    // slave_exec_mode was set IDEMPOTENT by the bootstrap
  // As the server prints TIMESTAMP(6) in the session's time zone; "" when NULL. Set by the
  // server (Start, SetPhase, SetLenient), ignored by Start.
  std::string started_at, updated_at;
  std::string error;
  bool operator==(const BootstrapState& other) const = default;
};

// A row of replsync.bootstrap_tables.
struct TableProgress {
  std::string db, table;
  // The upper key of the last loaded chunk (SQL literals; empty: +infinity, the table's last
  // chunk); nullopt: nothing loaded yet.
  std::optional<std::vector<std::string>> after_key;
  bool done = false;
  uint64_t rows = 0, bytes = 0;
  bool operator==(const TableProgress& other) const = default;
};

class ProgressStore {
 public:
  // `channel` names the primary this node follows (replsync.applied's channel).
  ProgressStore(SqlSession& session, std::string channel);

  // The statements that create the database and both tables (IF NOT EXISTS), exactly as the
  // schema page writes them.
  static std::vector<std::string> CreateStatements();
  // Sets sql_log_bin = 0 on the session and runs CreateStatements.
  Status Create();

  // The channel's row; nullopt when there is none (no bootstrap ever began).
  Result<std::optional<BootstrapState>> ReadBootstrap();
  // Begins a bootstrap: replaces the channel's row by `state` (started_at = updated_at = now).
  Status Start(const BootstrapState& state);
  // Moves the phase forward (and sets `error`). FailedPrecondition when `phase` is behind the
  // current one or the current one is `failed` or `done` (unless `phase` equals it); NotFound
  // when there is no row; InvalidArgument for an unknown phase.
  Status SetPhase(std::string_view phase, std::string_view error = {});
  Status SetLenient(bool lenient);

  // The channel's table rows, by db and table.
  Result<std::vector<TableProgress>> ReadTables();
  // Forgets what was loaded of a table (its next chunk starts at its first key again); the
  // counts stay, since those rows were loaded. For a reference cycle left unfinished in a round.
  Status ResetTable(const std::string& db, const std::string& table);
  // Adds a table with nothing loaded (kept as it is when it exists): what is to be copied.
  Status AddTable(const std::string& db, const std::string& table);
  // The statement that records a loaded chunk of `db`.`table` (run inside the chunk's
  // transaction): after_key = `upper` (its literals; empty = +infinity), done = `done`, rows and
  // bytes added; the row is made if missing.
  static std::string AdvanceTableSql(const std::string& channel, const std::string& db,
                                     const std::string& table,
                                     const std::vector<std::string>& upper, bool done,
                                     uint64_t rows, uint64_t bytes);
  Status AdvanceTable(const std::string& db, const std::string& table,
                      const std::vector<std::string>& upper, bool done, uint64_t rows,
                      uint64_t bytes);
  // Deletes the channel's rows of both tables (`replsync bootstrap --force`).
  Status Reset();

 private:
  SqlSession& session_;
  std::string channel_;
};

}  // namespace replsync::apply
