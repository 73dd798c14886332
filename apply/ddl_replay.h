// What the row applier needs to re-run a DDL statement on the secondary as the primary ran it:
// the session settings of its QUERY event as one SET statement, the statement that puts the
// applier's own settings back, and which errors of a re-run mean "this DDL was already applied".
// Thread-safety: stateless functions.
#pragma once

#include <string>
#include <string_view>

#include "replsync.pb.h"

namespace replsync::apply {

// QUERY event flags2 bits (MySQL/MariaDB sql_priv.h, OPTIONS_WRITTEN_TO_BIN_LOG).
constexpr uint32_t kOptionAutoIsNull = 1u << 14;
constexpr uint32_t kOptionNoCheckConstraintChecks = 1u << 15;  // MariaDB
constexpr uint32_t kOptionNotAutocommit = 1u << 19;
constexpr uint32_t kOptionNoForeignKeyChecks = 1u << 26;
constexpr uint32_t kOptionRelaxedUniqueChecks = 1u << 27;

// "SET SESSION ..." reproducing the settings the DDL ran under: sql_mode (the number, as the
// event holds it), foreign_key_checks / unique_checks (and check_constraint_checks on MariaDB)
// from flags2, the client character set and the connection and server collations by id (the
// server takes collation ids, as mysqlbinlog prints them), time_zone, lc_time_names,
// auto_increment_increment/offset, explicit_defaults_for_timestamp, and the statement's time
// (timestamp with microseconds, so DEFAULT CURRENT_TIMESTAMP columns an ALTER adds get the
// primary's value). Only the settings the event carries are set. "" when there are none.
std::string DdlSessionSql(const pb::SessionVars& vars, bool mariadb);

// Puts the applier's own settings back after a DDL: every variable DdlSessionSql may set goes back
// to the server default, then sql_mode='', time_zone='+00:00' and utf8mb4.
std::string ResetSessionSql(bool mariadb);

// The applier's session settings (after connecting): sql_mode='', time_zone='+00:00', utf8mb4.
std::string BaseSessionSql();

// True when `error_code`, returned by re-running `sql` after a crash interrupted it, shows that the
// statement had already taken effect: the error is exactly what the statement's own success
// leaves behind (CREATE TABLE -> table exists, DROP TABLE -> unknown table, ADD COLUMN ->
// duplicate column, RENAME -> source missing or target exists, ...). Only used for the one DDL
// that was in flight (replsync.applied.ddl_pending_seq); a first run treats every error as one.
// MariaDB's DDL is atomic (10.6+), so a DDL either took effect whole or not at all.
bool IsAlreadyAppliedError(std::string_view sql, int error_code);

}  // namespace replsync::apply
