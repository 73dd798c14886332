// BinlogTail: what a server's binlog holds after a position for the replicated databases - an old
// primary's unshipped tail after the fork point (schemas/failover.md, `replsync rejoin`): each
// transaction that changed a replicated table or ran DDL on a replicated database, with its GTID,
// positions, commit time, the rows it changed per table and its DDL statements, in binlog order.
// Transactions that touch no replicated database are left out (counted). Rows are counted by
// decoding the row images, as the capture does; DDL is judged as the capture judges it
// (capture/binlog/ddl_target.h).
// Thread-safety: not thread-safe; one call reads one source to its end.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "capture/binlog/binlog_source.h"
#include "sync/database_filter.h"
#include "sync/position.h"
#include "sync/status.h"

namespace replsync::capture {

struct TailTransaction {
  std::string gtid;                      // "" when the binlog has none
  BinlogPosition begin, end;             // its first event; just after its last
  uint32_t timestamp = 0;                // commit time, seconds since the epoch
  std::map<std::string, uint64_t> rows;  // "db.table" -> rows written, updated or deleted
  std::vector<std::string> ddl;          // DDL statements on replicated databases
};

struct BinlogTail {
  std::vector<TailTransaction> transactions;
  uint64_t skipped = 0;  // transactions touching no replicated database
  BinlogPosition end;    // where the reading stopped (the binlog's end)
};

// Reads `source` (which starts at the position after the fork and stops at the binlog's end)
// through to its end. With `copy_path`, every event read (all databases; not the ROTATEs and
// heartbeats a server makes up for its reader) is also written there after the binlog magic, a
// binlog file `mariadb-binlog` reads, made durable before this returns: the quarantined segment.
// Errors: the source's and the decoder's, naming the position; IoError naming `copy_path`.
Result<BinlogTail> ReadBinlogTail(std::unique_ptr<BinlogSource> source,
                                  const DatabaseFilter& filter, const std::string& copy_path = "");

}  // namespace replsync::capture
