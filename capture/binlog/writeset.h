// WritesetBuilder: the keys a source transaction changed, so that the secondary can apply
// transactions with disjoint keys in parallel (apply/parallel_applier.h) while still committing
// them in source order. Format written down in schemas/journal.md ("Writesets").
//
// A key is a 64-bit XXH3 hash of
//   row key:   "R" db NUL table NUL, then per primary-key column (in key order) one encoded value
//              (a kind byte, then the value; text in a case-insensitive collation is ASCII
//              lower-cased with trailing spaces removed, so that values the server treats as
//              equal get the same key) — for each image (before and after) that holds every
//              primary-key column, NULL-free;
//   table key: "T" db NUL table — when the table map carries no primary key (no
//              binlog_row_metadata=FULL, or a table without one), when the key has a column
//              prefix, or when no image holds the whole key.
// Over `max_keys` row keys, the builder keeps table keys of every table touched instead.
// Unique secondary keys and foreign keys are not in the set: a conflict they cause shows up on
// the secondary as a lock wait or an error, upon which the applier rolls back and goes serial.
// Thread-safety: not thread-safe.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "capture/binlog/table_map.h"
#include "capture/binlog/value.h"
#include "replsync.pb.h"

namespace replsync::capture {

class WritesetBuilder {
 public:
  explicit WritesetBuilder(size_t max_keys = 4096) : max_keys_(max_keys) {}

  // Forgets everything (a new transaction part).
  void Reset();
  // Adds the keys of one row change; `before` / `after` may be null (WRITE / DELETE).
  void AddRow(const TableMap& table, const RowImage* before, const RowImage* after);
  // Writes the keys and the tables touched into `db` (writeset_version 1).
  void Fill(pb::DbTransaction* db) const;

  static uint64_t TableKey(const std::string& db, const std::string& table);

 private:
  // The row key of `image`, or false when the image lacks a key column or one is NULL.
  static bool RowKey(const TableMap& table, const RowImage& image, uint64_t* key);
  void AddTable(const TableMap& table);

  size_t max_keys_;
  bool overflow_ = false;
  std::vector<uint64_t> row_keys_;
  std::set<uint64_t> table_keys_;
  std::set<std::pair<std::string, std::string>> tables_;
};

}  // namespace replsync::capture
