// DdlTarget: which databases a statement from a QUERY event touches, and whether capture
// replicates it.
//
// Capture replicates DDL by the databases it changes, not by the session's default database: a
// `CREATE TABLE smarten.t` run while `USE other` replicates when smarten does. AnalyzeStatement
// reads just enough SQL to find the objects a statement creates, changes or drops: qualified
// names (db.t, `db`.`t`, "db"."t" under ANSI_QUOTES), comments (/* */, "-- ", #) skipped and
// executable comments (/*!50100 ... */, /*M!100100 ... */) read as statement text. Unqualified
// names belong to the session's default database; GRANT, REVOKE and account statements change
// the "mysql" system database.
// Decision rule (Decide): replicate a statement when a database it touches is replicated; when it
// also touches databases that are not (or the analysis is incomplete) it is still replicated,
// with a warning, because the secondary must stay consistent for the replicated ones.
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sync/database_filter.h"

namespace replsync::capture {

enum class StatementKind : uint8_t {
  kDdl,      // changes schema objects or accounts: replicated by its target databases
  kDml,      // INSERT, UPDATE, DELETE, REPLACE, LOAD DATA, CALL logged as a statement: the
             // session ran with binlog_format STATEMENT or MIXED
  kControl,  // transaction control and session statements (BEGIN, SAVEPOINT, SET, FLUSH ...):
             // nothing to replicate
};

struct StatementTargets {
  StatementKind kind = StatementKind::kDdl;
  // The databases the statement touches, sorted and unique.
  std::vector<std::string> databases;
  // False when the statement may touch databases not in `databases`: a form the analysis does
  // not know, a multi-table DML statement, an unqualified name with no default database.
  bool complete = true;
  bool operator==(const StatementTargets&) const = default;
};

struct SqlSyntax {
  bool ansi_quotes = false;           // "x" is an identifier, not a string
  bool no_backslash_escapes = false;  // '\' is an ordinary character in strings
  // From a QUERY event's sql_mode (MODE_ANSI_QUOTES, MODE_NO_BACKSLASH_ESCAPES).
  static SqlSyntax FromSqlMode(uint64_t sql_mode);
};

// The kind of `sql` and the databases it touches; `session_db` is the default database the
// statement ran with ("" for none). Never fails: what it cannot read is reported as incomplete.
StatementTargets AnalyzeStatement(std::string_view sql, std::string_view session_db,
                                  SqlSyntax syntax = {});

enum class Decision : uint8_t {
  kReplicate,         // every database it touches is replicated
  kReplicatePartial,  // touches replicated and other (or unknown) databases: replicate, warn
  kSkip,              // touches only databases that are not replicated (or none)
  kSkipUncertain,     // touches no replicated database that the analysis found, but the
                      // analysis is incomplete: skip, warn
};

// The decision rule for DDL (and for statement-format DML, where anything but kSkip is an error).
Decision Decide(const StatementTargets& targets, const DatabaseFilter& filter);

}  // namespace replsync::capture
