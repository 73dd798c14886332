// Repair: the whole of `replsync repair` but its flags, printing and exit codes (those are
// tools/cli/repair_command's; schemas/verify.md, "Repair").
//
// Tables: verify's consistent point with the secondary's applier kept held there
// (consistent_point.h), every replicated table compared collecting every differing row
// (verify_progress.h), the fixes written on a new secondary session (sql_log_bin=0, one
// transaction per table; table_repair.h), and only then the applier let go. With dry_run the
// statements are collected instead and nothing changes.
// Files: verify's comparison (file_verify.h), the primary journals every differing path whole
// again, the secondary applies that through its normal stream, and the files are compared again.
//
// Thread-safety: one repair at a time per node (the caller holds LockVerify's lock); a call uses
// its own sessions and the calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sync/clock.h"
#include "sync/config.h"
#include "sync/status.h"
#include "sync/verify/file_verify.h"
#include "sync/verify/table_repair.h"
#include "sync/verify/verify_throttle.h"

namespace replsync::verify {

struct RepairRunOptions {
  bool database_only = false;   // leave the files out
  bool files_only = false;      // leave the tables out
  bool deep = false;            // find differing files by rereading every file on both nodes
  bool dry_run = false;         // collect the statements, change nothing
  int barrier_timeout_s = 120;  // the longest wait for the secondary's applier to reach a point
  size_t max_rows = 1000000;    // differing rows listed per table; a table with more is refused
  ThrottleOptions throttle;     // giving way to busy servers while comparing tables
  bool show_progress = false;   // progress lines on stderr
  Clock* clock = &SystemClock();
};

struct TableRepairOutcome {
  std::string name;  // "db.table"
  TableRepairCounts counts;
  bool differs = false;
  std::string error;      // why it was not repaired ("" when it was, or needed nothing)
  uint64_t triggers = 0;  // triggers on the secondary's table (they fire for repaired rows)
};

struct RepairReport {
  bool tables_checked = false;
  std::vector<TableRepairOutcome> tables;
  std::string position;  // the point P the tables were repaired to
  // dry_run: the statements that would run (the session set-up, then per differing table
  // START TRANSACTION, its statements, COMMIT).
  std::vector<std::string> statements;
  bool failed = false;   // a table could not be repaired
  bool differs = false;  // a table differed
  // Files: what differed, what the repair did, what differs after it.
  bool files_checked = false;
  std::string files_skipped;  // why files were not looked at ("" when they were)
  std::string files_error;    // could not compare or repair them
  std::vector<FileDifference> file_differences;
  std::vector<FileDifference> files_left;  // still differing after the repair
  uint64_t files_repaired = 0;
};

// Repairs the secondary of `config` to its primary (see above). A table that cannot be repaired
// carries its error in the report, and so do files that cannot. Errors (the message says why):
// nothing could be done at all — the consistent point could not be established
// (EstablishConsistentPoint's errors) or the repair session could not be opened.
Result<RepairReport> Repair(const NodeConfig& config, const RepairRunOptions& options);

}  // namespace replsync::verify
