// StatementTargets: which databases a statement's SQL text touches, read by both sides.
//
// The primary's capture replicates DDL by the databases it changes, not by the session's default
// database (capture/binlog/ddl_target.h decides with it); the secondary refuses DDL whose targets
// are outside its own databases (apply/target_filter.h). AnalyzeStatement reads just enough SQL
// to find the objects a statement creates, changes or drops: qualified names (db.t, `db`.`t`,
// "db"."t" under ANSI_QUOTES), comments (/* */, "-- ", #) skipped and executable comments
// (/*!50100 ... */, /*M!100100 ... */) read as statement text (so a comment the server would
// skip for its version still counts: the analysis errs towards more targets). Unqualified names
// belong to the session's default database; GRANT, REVOKE and account statements change the
// "mysql" system database. It is a reader of MySQL/MariaDB syntax, not the server's parser: a
// form it does not know is reported as incomplete, never guessed.
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace replsync {

enum class StatementKind : uint8_t {
  kDdl,      // changes schema objects or accounts (of the databases it targets)
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

}  // namespace replsync
