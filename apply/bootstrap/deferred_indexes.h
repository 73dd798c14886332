// DeferredIndexes: the plain secondary indexes a bootstrap builds after a table's rows are in
// (schemas/bootstrap.md, "Secondary indexes after the rows"). Loading rows into a table that has
// them inserts every row into each index's B-tree as well; adding the index afterwards sorts the
// column once. When round 0 creates a table, the indexes it may defer are recorded in
// `replsync.bootstrap_indexes` (one row per table: their definition lines as SHOW CREATE TABLE
// prints them) and then dropped; Build adds them again and forgets the row.
//
// Exactness: a table's definition on the secondary is round 0's plus the DDL the applier replays
// after it, so the recorded lines are right for it until a DDL changes it. The applier therefore
// builds a database's deferred indexes before it runs any DDL touching that database (the DDL
// then finds the table as the primary had it), the bootstrapper builds a table's as soon as its
// last chunk is loaded, and every one left when the schema objects are copied (point F). Deferred
// are only the indexes of tables outside every foreign key (neither holding one nor referenced
// by one: a foreign key needs its index, and a cascade on the secondary would need it too) and
// without FULLTEXT or SPATIAL indexes (added back, a plain index would be listed after them, and
// SHOW CREATE TABLE would differ from the primary's).
//
// Crash safety: the row is written before the indexes are dropped and deleted after they are
// built; Build adds only the recorded indexes the table does not have by name, so a restart
// after a crash at any point ends with the table as the primary defines it.
// Thread-safety: Build serializes itself (the applier and the bootstrapper's readers call it
// from their own threads, each with its own session).
#pragma once

#include <string>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/status.h"

namespace replsync::apply {

// A table of round 0, as the primary defines it.
struct TableDefinition {
  std::string db, table;
  std::string create_sql;  // SHOW CREATE TABLE's text
};

// The index lines of `table` (as its create_sql prints them, "KEY `k` (`c`)" without the
// trailing comma) that a bootstrap may build after its rows; empty when it may defer none.
// `all` are every table of the round (a table referenced by another's foreign key keeps its
// indexes).
std::vector<std::string> DeferrableIndexes(const TableDefinition& table,
                                           const std::vector<TableDefinition>& all);

class DeferredIndexes {
 public:
  // The statement that creates replsync.bootstrap_indexes (IF NOT EXISTS), as the schema page
  // writes it.
  static std::string CreateStatement();

  // Records `lines` for the table and drops those indexes. The session runs with sql_log_bin = 0.
  static Status Defer(SqlSession& session, const std::string& channel, const std::string& db,
                      const std::string& table, const std::vector<std::string>& lines);

  // Forgets every record of the channel (a new bootstrap).
  static Status Forget(SqlSession& session, const std::string& channel);

  // Builds the recorded indexes of the channel's tables in `databases` (every database when
  // empty), of one table when `table` is set too, and forgets their records; a recorded table
  // that is gone is forgotten. Nothing to do when the record table does not exist (no bootstrap
  // ever deferred one). The session runs with sql_log_bin = 0.
  static Status Build(SqlSession& session, const std::string& channel,
                      const std::vector<std::string>& databases, const std::string& table = {});
};

}  // namespace replsync::apply
