// TargetFilter: the secondary's own check that a relay entry changes only databases it
// replicates ([mysql] databases; empty = every database but the system schemas, as capture
// filters on the primary; verify's marker schema always). A primary is trusted to send what the
// secondary asked for, but not blindly: rows and DDL aimed elsewhere are refused, never applied
// (schemas/journal.md "What a secondary refuses").
//
// What the secondary can verify itself:
// - rows: the database named in every TABLE_MAP event of a ROWS statement, read from the raw
//   event (the server applies a ROWS event only to a table mapped in the same BINLOG statement,
//   so the table maps are the whole truth); and only TABLE_MAP and ROWS events may be there;
// - DDL: the default database it runs with (Statement.db), and every database its SQL text
//   touches, read by the analyzer capture uses (sync/mysql/statement_targets.h) with the
//   statement's own sql_mode (ANSI_QUOTES, NO_BACKSLASH_ESCAPES) and the default database it
//   runs with here: Statement.db, or replsync's own schema when it has none (or this secondary
//   lacks it: apply/applier.cc ApplyDdl), so that its unqualified names count as that schema's
//   and are refused. The statement must be DDL as the analyzer reads it: capture never ships
//   anything else as SQL text (a `BINLOG '...'`, `SET GLOBAL ...` or `SELECT ... INTO OUTFILE`
//   from a primary is refused). When the analysis is incomplete (a form it does not know), the
//   databases it did find are still checked, and the default database must be allowed. A
//   statement that touches a listed database and another (`RENAME TABLE smarten.t TO other.t`,
//   which capture ships with a warning) is refused too: nothing outside the list is changed here.
//   The analyzer reads MySQL syntax but is not the server's parser (it reads the text as an
//   ASCII-compatible charset: under a client charset such as sjis or gbk, where a '\' byte may
//   end a multi-byte character, it can misplace a string's end): the secondary's MySQL account's
//   grants (the replicated databases and `replsync` only) stay the last boundary.
// Thread-safety: immutable after construction.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "replsync.pb.h"
#include "sync/database_filter.h"
#include "sync/status.h"

namespace replsync::apply {

// The schema a DDL statement without a default database runs in on the secondary: replsync's
// own (the applier's position table lives there), never replicated.
inline constexpr std::string_view kDdlFallbackSchema = "replsync";

struct DdlCheckOptions {
  // The statement's default database does not exist on this secondary, so the applier runs it
  // in kDdlFallbackSchema instead, where its unqualified names land.
  bool default_database_missing = false;
};

class TargetFilter {
 public:
  explicit TargetFilter(std::vector<std::string> databases);

  // Ok when every target of `txn` (one entry: a transaction or a part of one) is allowed.
  // InvalidArgument (not retryable: the applier stops for the operator) naming the entry `seq`,
  // the target, and the setting; Corruption for an event that is not a TABLE_MAP or ROWS event
  // or a TABLE_MAP too short to name its table. DDL statements are checked by CheckDdl.
  Status Check(uint64_t seq, const pb::DbTransaction& txn) const;

  // Ok when the DDL `statement` of entry `seq` is DDL and touches only allowed databases (see
  // the file comment). InvalidArgument (not retryable) naming `seq`, what is outside (the
  // default database, or the databases the SQL text touches), the statement (its first 200
  // bytes) and the setting, with what to do.
  // A statement that moves a table into or out of the set (a RENAME, an ALTER ... RENAME or a
  // CREATE ... LIKE with one end outside) is let through: the applier runs only its moves
  // within the set, drops what leaves and copies what enters (schemas/bootstrap.md "Tables
  // entering and leaving the set").
  Status CheckDdl(uint64_t seq, const pb::Statement& statement, DdlCheckOptions options = {}) const;

  // True when one of the statement's table moves has one end inside the set and one outside.
  bool MovesAcrossTheSet(const pb::Statement& statement) const;
  bool Replicated(const std::string& db) const;

 private:
  DatabaseFilter databases_;  // the same rule capture applies on the primary
};

// The database and table a TABLE_MAP event names (the raw event, header to checksum;
// `post_header_len`: the FORMAT_DESCRIPTION's for TABLE_MAP, 8 or 6). Corruption when short.
struct TableMapName {
  std::string db;
  std::string table;
};
Result<TableMapName> ParseTableMapName(std::string_view event, uint8_t post_header_len);

// The TABLE_MAP post-header length a FORMAT_DESCRIPTION event gives (8 when it has none).
uint8_t TableMapPostHeaderLen(std::string_view format_description);

}  // namespace replsync::apply
