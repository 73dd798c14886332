// VerifyTable: compares one table between the primary's and the secondary's database, the engine
// of `replsync verify` (DESIGN.md, "Verify").
//
// Both sessions must already be inside snapshots of the same logical point (`SET SESSION
// time_zone='+00:00'` and `START TRANSACTION WITH CONSISTENT SNAPSHOT` on each, the secondary
// having applied exactly up to the primary's snapshot position). Everything here is read-only.
//
// Method:
//   - Columns (information_schema.COLUMNS by ORDINAL_POSITION, virtual generated columns left out
//     because the server computes them) and the key (PRIMARY, else the first UNIQUE index, by
//     name, whose columns are all NOT NULL) are read on both servers. If names, order, types,
//     character sets, collations or the chosen key differ, the result is "differs" with `error`
//     naming the first mismatch and no rows are compared: a definition mismatch is a real
//     inconsistency between the two databases (exit 1 of `replsync verify`), not a failure to
//     look ("unverified" is kept for what could not be examined at all).
//   - Every row is encoded on the server, column by column, as '~' for NULL or
//     "<byte length>:<bytes>" of CAST(c AS BINARY), so NULL, '' and 'NULL' differ, lengths make the
//     concatenation unambiguous, and collations or PAD SPACE cannot hide a trailing space. FLOAT
//     columns are widened to DOUBLE first (the server prints a FLOAT with 6 significant digits
//     only); DOUBLE prints as the shortest text that round-trips; temporal values carry their
//     fractional digits (UTC); BIT and spatial values are their bytes. The row hash is
//     SHA2(encoding, 256).
//   - A set of rows is summarised by COUNT(*) and the exact (DECIMAL) sums of the first and second
//     60-bit slices of the row hashes. XOR is not used: it cancels (the same change made to two
//     rows, or a row duplicated twice, leaves the XOR unchanged), while sums of 120 hash bits
//     together with the count only collide by chance.
//   - Keyed tables are walked in key order in chunks of `chunk_rows` primary rows, each chunk the
//     range (previous bound, this bound]; the first chunk starts at -infinity and the last one
//     ends at +infinity, so rows that exist only on the secondary below the first or above the
//     last primary key are included. A chunk whose summaries differ is split at the middle key of
//     whichever side holds more rows in it, until both sides hold at most `bisect_rows`; then
//     (key, row hash) pairs are fetched from both and matched: a key only on the primary is
//     missing, only on the secondary extra, on both with another hash changed.
//   - Tables without a usable key are compared as multisets of row hashes: counts per 3-hex-digit
//     hash prefix first, then the hash counts inside the prefixes that differ. A surplus on the
//     primary is missing, on the secondary extra; changed_rows stays 0 (without a key a changed
//     row is one missing plus one extra).
//
// Thread-safety: VerifyTable uses the two sessions it is given; one call at a time per session.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "apply/mysql_session.h"
#include "sync/status.h"

namespace replsync::cli {

struct TableVerifyOptions {
  // Primary rows per checksum chunk: the first guess, then adapted so that one chunk takes about
  // `chunk_target` on the two servers (doubled under half of it, halved over twice it), within
  // [min_chunk_rows, max_chunk_rows]. A chunk_target of 0 keeps chunk_rows fixed.
  uint64_t chunk_rows = 10000;
  std::chrono::milliseconds chunk_target{250};
  uint64_t min_chunk_rows = 1000;
  uint64_t max_chunk_rows = 1000000;
  // At most this many keys of differing rows are listed in TableVerifyResult::sample_keys.
  size_t max_sample_keys = 10;
  // A differing key range holding at most this many rows on each side is compared row by row.
  size_t bisect_rows = 64;
  // Called after each chunk with the number of primary rows compared so far (optional).
  std::function<void(uint64_t rows_done)> progress;
  // When set, every differing row is listed in TableVerifyResult::differences (for `replsync
  // repair`), up to `max_collected_keys` rows per table; past it the lists stop growing and
  // `complete` is false (the counts stay exact).
  bool collect_keys = false;
  size_t max_collected_keys = 1000000;
};

// A column as `replsync repair` reads and writes it.
struct TableColumn {
  std::string name;
  std::string data_type;  // lower case: "varchar", "int", "bit", "point"
  std::string charset;    // "" for non-character types
  // A generated column (VIRTUAL or STORED): the server computes it, it is never written.
  bool generated = false;
};

// Every differing row of one table, as the repair needs them (TableVerifyOptions::collect_keys).
struct TableDifferences {
  std::string table_type;            // "BASE TABLE", "SYSTEM VERSIONED"
  std::vector<TableColumn> columns;  // every column, in ORDINAL_POSITION order
  // The usable key's columns (names); empty for a table compared as a multiset.
  std::vector<std::string> key_columns;
  // The SQL expression of a row's hash (64 hex digits), over the stored columns; it is the same
  // on both servers when the sessions have the same time_zone.
  std::string row_hash;
  // Keyed tables: one SQL predicate per row selecting it by key, "`id` = 5" or
  // "(`a` = 1 AND `b` = _utf8mb4 X'78')", in the order found. Tables without a key: the row hash,
  // once per surplus row (a row missing twice is listed twice); `changed` stays empty.
  std::vector<std::string> missing, extra, changed;
  // False when there were more than max_collected_keys differing rows: the lists hold a part.
  bool complete = true;
};

struct TableVerifyResult {
  std::string db, table;
  // "equal", "differs" or "unverified".
  std::string status;
  // Rows compared: the primary's row count (0 when the definitions differ).
  uint64_t rows = 0;
  // Rows missing on the secondary, extra on it, and with the same key but other values.
  uint64_t missing_rows = 0, extra_rows = 0, changed_rows = 0;
  // Keys of differing rows, "id=5" or "a=1,b='x'" (strings quoted, binary strings as X'..');
  // for tables without a key the first 12 hex digits of the row hash. Missing, extra and changed
  // rows in the order found.
  std::vector<std::string> sample_keys;
  // For "unverified": why. For "differs": a difference that is not about rows (the definitions
  // differ, the table is missing on one side); empty when only rows differ.
  std::string error;
  // With TableVerifyOptions::collect_keys and status "differs" for rows (error empty): every
  // differing row. Otherwise empty.
  TableDifferences differences;
};

// Compares `db`.`table` between the two sessions (see the file comment).
// Result: "equal"; "differs" with the counts and sample keys, or with `error` when the table's
// definitions differ or it exists on one side only (missing_rows / extra_rows then count the
// whole table); "unverified" when the table exists on neither or is not a base table.
// Errors: the Status of the first statement that fails on either session (Network when a session
// broke; the snapshot is then lost and the whole verification has to start again).
Result<TableVerifyResult> VerifyTable(apply::MysqlSession* primary, apply::MysqlSession* secondary,
                                      const std::string& db, const std::string& table,
                                      const TableVerifyOptions& options);

}  // namespace replsync::cli
