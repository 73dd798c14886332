// RepairTable: writes the statements that make one table of the secondary equal to the primary's
// at the consistent point, from the differences VerifyTable collected (the engine of `replsync
// repair`, schemas/verify.md "Repair").
//
// Preconditions: the two sessions are the snapshot sessions VerifyTable compared with
// (ConsistentPoint); the secondary's applier is still held at the point when the statements run,
// so the secondary's rows are exactly those of its snapshot.
//
// Statements, in this order:
//   - keyed tables: rows extra on the secondary are deleted by key (`DELETE FROM t WHERE k = 1 OR
//     k = 2`); rows missing or changed are read from the primary's snapshot and written with
//     `REPLACE INTO t (columns) VALUES (...)`;
//   - tables without a key: each surplus row of the secondary is deleted by its values and its
//     row hash (`DELETE FROM t WHERE c1 <=> .. AND .. AND <row hash> = '..' LIMIT n`: the hash
//     keeps a collation from matching another row), each row missing is read from the primary by
//     its hash and inserted as many times as it is missing.
// Values are written as literals that round-trip exactly: integers, DECIMAL, DOUBLE, FLOAT (as a
// DOUBLE's shortest text), temporal values (UTC) and types like UUID as quoted text; ENUM, SET
// and BIT as their number; character strings as `_charset X'..'` (their bytes in their character
// set); binary strings as X'..'; spatial values as ST_GeomFromWKB(X'..', srid); NULL as NULL.
// Generated columns (VIRTUAL or STORED) are not written: the server computes them.
//
// Thread-safety: uses the sessions it is given; one call at a time per session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "sync/mysql/mysql_session.h"
#include "sync/status.h"
#include "sync/verify/table_verify.h"

namespace replsync::verify {

struct TableRepairOptions {
  // A statement grows to about this many bytes (a single row may exceed it).
  size_t max_statement_bytes = 1 << 20;
  // Keys (or row hashes) per SELECT that reads rows.
  size_t keys_per_read = 500;
};

struct TableRepairCounts {
  uint64_t inserted = 0;  // rows missing on the secondary
  uint64_t updated = 0;   // rows with the same key and other values
  uint64_t deleted = 0;   // rows extra on the secondary
};

// "" when `verified` can be repaired by RepairTable, else why not (the table could not be
// compared, its definitions differ or it exists on one side only, too many differing rows were
// found to list them all, or it is system-versioned).
std::string WhyNotRepairable(const TableVerifyResult& verified);

// Calls `emit` with each statement (no trailing ';') that repairs `verified` (collected with
// TableVerifyOptions::collect_keys), reading rows from `primary` and `secondary`; stops at the
// first error `emit` returns and returns it. Other errors: the Status of a read that failed;
// Internal when the primary's snapshot lacks a row the comparison found there.
// Precondition: WhyNotRepairable(verified) is "".
Result<TableRepairCounts> RepairTable(MysqlSession* primary, MysqlSession* secondary,
                                      const TableVerifyResult& verified,
                                      const TableRepairOptions& options,
                                      const std::function<Status(const std::string&)>& emit);

}  // namespace replsync::verify
