// The summary of a bootstrap chunk (schemas/bootstrap.md, "Resync"): verify's chunk summary —
// the row count and one SHA-256 over the rows' encodings (sync/mysql/row_encoding.h) in key
// order — over a chunk's key range (lower, upper] (sync/bootstrap/key_range.h). `replsync
// bootstrap --resync` compares a chunk by it instead of copying it: the primary computes it in
// its round's snapshot (READ_CHUNK with summary_only), the secondary the same SQL over the same
// range on its own server while its applier holds at the round's point; a chunk whose summaries
// match holds the primary's rows at that point and is recorded as loaded without shipping rows.
//
// A table without a usable key is one chunk: its summary is the row count and one SHA-256 over
// the rows' hashes (SHA-256 of each encoding) sorted, the multiset's canonical form (no order to
// follow; equal multisets only give the same text).
//
// Both sides' sessions run SET NAMES binary and time_zone '+00:00' (the bootstrap's reader and
// loader sessions do). The server cuts a concatenation at max_allowed_packet with only a warning,
// and a row's encoding over it is NULL (skipped by GROUP_CONCAT, with a warning): a summary whose
// statement warned is not `exact` and matches nothing, so its chunk is loaded.
//
// Thread-safety: plain functions; a call uses the session it is given.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sync/bootstrap/row_format.h"
#include "sync/mysql/mysql_session.h"
#include "sync/status.h"

namespace replsync::bootstrap {

struct ChunkSummary {
  uint64_t rows = 0;
  std::string sha256;  // 64 hex digits; "" for no rows
  uint64_t bytes = 0;  // the concatenation's length (what sizes the next chunk)
  // False when the server warned while summarising (a concatenation cut short, a row's
  // encoding NULL): the digest says nothing.
  bool exact = true;

  // Equal rows: both exact, the same count and digest.
  bool Matches(const ChunkSummary& other) const {
    return exact && other.exact && rows == other.rows && sha256 == other.sha256;
  }
};

// The statement that summarises `db`.`table`'s rows in (lower, upper] over `columns` (the
// stored columns, StoredColumns order; generated ones are skipped) in the order of
// `key_columns` (names), through the index `key_name` when not "" (FORCE INDEX); with no
// `key_columns`, every row (the bounds must be empty) as a multiset. Its one result row: the
// count, the SHA-256 (NULL for no rows), the concatenation's length, and the rows whose hash
// could be computed (the count unless a row's encoding exceeded max_allowed_packet).
std::string ChunkSummarySql(const std::string& db, const std::string& table,
                            const std::vector<Column>& columns,
                            const std::vector<std::string>& key_columns,
                            const std::string& key_name, const std::vector<std::string>& lower,
                            const std::vector<std::string>& upper);

// Runs ChunkSummarySql on `session` (raising its group_concat_max_len first) and reads its
// warnings. Errors: the session's; InvalidArgument for bounds on a table without a key or a
// table without stored columns.
Result<ChunkSummary> SummarizeChunk(SqlSession& session, const std::string& db,
                                    const std::string& table, const std::vector<Column>& columns,
                                    const std::vector<std::string>& key_columns,
                                    const std::string& key_name,
                                    const std::vector<std::string>& lower,
                                    const std::vector<std::string>& upper);

}  // namespace replsync::bootstrap
