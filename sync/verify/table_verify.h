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
//     fractional digits (UTC); BIT and spatial values are their bytes; MEDIUM/LONG BLOB and TEXT
//     and JSON values are "<byte length>#<SHA-256 hex>". A row's encoding parses back into its
//     values, so a concatenation of row encodings parses back into the rows. The row hash is
//     SHA2(encoding, 256). (The encoding is sync/mysql/row_encoding.h's, which bootstrap's
//     resync shares.)
//   - Keyed tables are walked in key order in chunks of `chunk_rows` primary rows, each chunk the
//     range (previous bound, this bound]; the first chunk starts at -infinity and the last one
//     ends at +infinity, so rows that exist only on the secondary below the first or above the
//     last primary key are included. A chunk is summarised on each server by COUNT(*) and one
//     SHA-256 over the concatenation of its rows' encodings in key order (SHA2(GROUP_CONCAT(..)),
//     group_concat_max_len raised for the session): one hash per chunk instead of one per row,
//     and, being order-sensitive over an unambiguous stream, equal edits made to several rows
//     cannot cancel out (unlike an XOR of row hashes). The rows reach GROUP_CONCAT in key order
//     because an InnoDB primary-key range is read in key order (FORCE INDEX (PRIMARY)); other
//     keys, engines and partitioned tables add ORDER BY inside GROUP_CONCAT. The server cuts a
//     concatenation at max_allowed_packet with only a warning, so chunks are kept below
//     `max_chunk_bytes` (estimated from the first rows), each summary's warnings are read, and a
//     summary that was cut equals nothing (its chunk is bisected and later chunks are halved).
//   - A chunk whose summaries differ is split at the middle key of whichever side holds more rows
//     in it, until both sides hold at most `bisect_rows`; then (key, row hash) pairs are fetched
//     from both and matched: a key only on the primary is missing, only on the secondary extra,
//     on both with another hash changed. Per-row hashes are computed only there.
//   - Tables without a usable key are compared as multisets of row hashes (no order to follow):
//     the row hashes are materialised once, then per 3-hex-digit hash prefix COUNT(*) and one
//     SHA-256 over the prefix's row hashes sorted (the multiset's canonical form; XOR would
//     cancel a row duplicated twice), on both servers at once; then the hash counts inside the
//     prefixes that differ (or whose concatenation the server cut short). A surplus on the
//     primary is missing, on the secondary extra; changed_rows stays 0 (without a key a changed
//     row is one missing plus one extra).
//   - Resume (TableVerifyOptions::resume): a table finished by an interrupted run is returned as
//     recorded, a half-done one continues after its last finished chunk, both only while the
//     definitions have the recorded fingerprint.
//
// Thread-safety: VerifyTable uses the two sessions it is given; one call at a time per session.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sync/clock.h"
#include "sync/mysql/mysql_session.h"
#include "sync/status.h"

namespace replsync::verify {

struct TableVerifyResult;

// Where a verification interrupted earlier stands for one table (`replsync verify --resume`,
// sync/verify/verify_progress.h). It applies only while the table's definitions still have
// `fingerprint` (TableVerifyResult::fingerprint); otherwise the table is compared from the start.
struct TableResumePoint {
  std::string fingerprint;
  // True: the table was finished; `so_far` is its result, returned as it is.
  bool finished = false;
  // Keyed tables: compare only keys after this bound (the key's SQL literals, as passed to
  // TableVerifyOptions::chunk_done), adding to the counts and sample keys of `so_far`.
  std::vector<std::string> after;
  // status, rows, missing_rows, extra_rows, changed_rows, sample_keys, error.
  std::shared_ptr<const TableVerifyResult> so_far;
};

struct TableVerifyOptions {
  // Primary rows per checksum chunk: the first guess, then adapted so that one chunk takes about
  // `chunk_target` on the two servers (doubled under half of it, halved over twice it), within
  // [min_chunk_rows, max_chunk_rows]. A chunk_target of 0 keeps chunk_rows fixed.
  uint64_t chunk_rows = 10000;
  std::chrono::milliseconds chunk_target{250};
  // Times the chunks (for chunk_target).
  Clock* clock = &SystemClock();
  uint64_t min_chunk_rows = 1000;
  uint64_t max_chunk_rows = 1000000;
  // A chunk is also kept below about this many bytes of row encodings (estimated from the table's
  // average row length), well under max_allowed_packet, which caps what the server concatenates;
  // a chunk the server still cuts short is bisected and the chunk size halved.
  uint64_t max_chunk_bytes = 4 << 20;
  // At most this many keys of differing rows are listed in TableVerifyResult::sample_keys.
  size_t max_sample_keys = 10;
  // A differing key range holding at most this many rows on each side is compared row by row.
  size_t bisect_rows = 64;
  // Called after each chunk with the number of primary rows compared so far (optional).
  std::function<void(uint64_t rows_done)> progress;
  // Called before each chunk of a keyed table and before a table without a key (optional); an
  // error ends the table's verification with that error (the throttle, verify_throttle.h).
  std::function<Status()> before_chunk;
  // Called after each chunk of a keyed table with the chunk's upper bound (the key's SQL literals;
  // empty after the last chunk) and the result so far (optional; verify's progress file).
  std::function<void(const std::vector<std::string>& bound, const TableVerifyResult& so_far)>
      chunk_done;
  // Continue where an interrupted verification stopped (optional).
  const TableResumePoint* resume = nullptr;
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

// Whether `data_type` (a column's DATA_TYPE, lower case) is one of `types`; how verify and repair
// sort columns by how their values are keyed and written.
bool DataTypeIn(std::string_view data_type, std::initializer_list<std::string_view> types);

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
  // Keyed tables: chunks compared, and how many of them had to be bisected (their summaries
  // differed, or the server cut one short). Equal tables need no bisection.
  uint64_t chunks = 0, bisected_chunks = 0;
  // For "unverified": why. For "differs": a difference that is not about rows (the definitions
  // differ, the table is missing on one side); empty when only rows differ.
  std::string error;
  // The definitions the comparison saw on both servers, as a short hex digest ("" when the table
  // exists on neither side): a resumed verification trusts earlier progress only while it matches.
  std::string fingerprint;
  // Resume: "" for a table compared now; "finished" when the result is the interrupted run's;
  // "continued" when the comparison went on after the interrupted run's last chunk.
  std::string resumed;
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
Result<TableVerifyResult> VerifyTable(MysqlSession* primary, MysqlSession* secondary,
                                      const std::string& db, const std::string& table,
                                      const TableVerifyOptions& options);

}  // namespace replsync::verify
