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
#include <optional>
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

// A table a DDL statement moves to another name (RENAME TABLE a TO b, ALTER TABLE a ... RENAME
// [TO|AS] b), or creates from another's definition (CREATE TABLE b LIKE a: `like`). Names are
// qualified: an unqualified one is the default database's.
struct TableMove {
  std::string from_db, from_table;
  std::string to_db, to_table;
  bool like = false;
  bool operator==(const TableMove&) const = default;
};

// The moves of `sql` in the order the server makes them (a RENAME TABLE list one by one); empty
// when the statement is none of those forms, when a name could not be read or qualified (no
// default database), or when it holds executable comments (which the server runs or skips by
// its version): then nothing is known of its moves.
std::vector<TableMove> AnalyzeTableMoves(std::string_view sql, std::string_view session_db,
                                         SqlSyntax syntax = {});

// What kind of object a DDL statement creates, changes or drops.
enum class ObjectKind : uint8_t {
  kNone,  // not a CREATE / ALTER / DROP of an object kind below (or a form not understood)
  kDatabase,
  kTable,
  kIndex,
  kSequence,
  kView,
  kProcedure,
  kFunction,          // a stored function (DROP FUNCTION of a loadable one too: it cannot tell)
  kLoadableFunction,  // CREATE FUNCTION ... SONAME (mysql.func)
  kPackage,
  kPackageBody,
  kTrigger,
  kEvent,
  kUser,
  kRole,
  kServer,
};
enum class DdlVerb : uint8_t { kNone, kCreate, kAlter, kDrop };

// "VIEW", "PACKAGE BODY", ... ("" for kNone).
const char* ObjectKindName(ObjectKind kind);

struct DdlObject {
  DdlVerb verb = DdlVerb::kNone;
  ObjectKind kind = ObjectKind::kNone;
  // The object's name as written: `db` is "" when unqualified (the default database's); `name`
  // is "" when there is none (ALTER DATABASE without one) or several (DROP TABLE a, b).
  std::string db;
  std::string name;
  // ALTER EVENT ... RENAME TO: the event's name afterwards ("" when it keeps its name).
  std::string new_db;
  std::string new_name;
  bool operator==(const DdlObject&) const = default;
};

// The verb, object kind and name of a DDL statement: CREATE [OR REPLACE] / ALTER / DROP, with the
// prefixes the server and dumps write (DEFINER=..., ALGORITHM=..., SQL SECURITY ...,
// AGGREGATE, TEMPORARY, IF [NOT] EXISTS, executable comments, SET STATEMENT ... FOR). kNone for
// anything else (DML, RENAME TABLE, GRANT, forms it does not know). Never fails.
DdlObject AnalyzeDdlObject(std::string_view sql, SqlSyntax syntax = {});

// Views, stored procedures and functions, packages and package bodies, triggers and events: the
// schema objects a bootstrap copies at its end, whose replicated DDL the applier skips until
// then (schemas/bootstrap.md "Schema objects").
bool IsStoredObject(ObjectKind kind);

// A CREATE EVENT that would create the event enabled (an ENABLE clause, or no status clause), or
// an ALTER EVENT with an ENABLE clause, rewritten to say DISABLE ON SLAVE instead: the event
// exists on the secondary with status SLAVESIDE_DISABLED from the start, so the secondary's
// event scheduler never runs it (its rows arrive through the stream). nullopt when the
// statement is no such statement: not an event's CREATE / ALTER, a DISABLE [ON SLAVE] clause, an
// ALTER without a status clause, or a CREATE whose body (DO) it cannot find.
std::optional<std::string> WithEventDisabledOnSlave(std::string_view sql, SqlSyntax syntax = {});

}  // namespace replsync
