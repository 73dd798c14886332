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
// - DDL: the default database it runs with (Statement.db; "" runs in replsync's own schema).
//   The SQL text's own targets (a qualified `other.t`) are checked by capture on the primary; the
//   secondary's MySQL account's grants are the boundary for those.
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

class TargetFilter {
 public:
  explicit TargetFilter(std::vector<std::string> databases);

  // Ok when every target of `txn` (one entry: a transaction or a part of one) is allowed.
  // InvalidArgument (not retryable: the applier stops for the operator) naming the entry `seq`,
  // the target, and the setting; Corruption for an event that is not a TABLE_MAP or ROWS event
  // or a TABLE_MAP too short to name its table.
  Status Check(uint64_t seq, const pb::DbTransaction& txn) const;

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
