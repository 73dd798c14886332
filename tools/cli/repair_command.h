// `replsync repair --config secondary.toml [--database-only | --files-only] [--deep] [--dry-run]
// [--json]`: makes the secondary's database and files equal to the primary's at one consistent
// point (schemas/verify.md, "Repair").
//
// It establishes verify's point (sync/verify/consistent_point.h) but keeps the secondary's applier
// held there, compares every replicated table collecting every differing row
// (sync/verify/table_verify.h), writes the fixes on a new secondary session (sql_log_bin=0, one
// transaction per table; sync/verify/table_repair.h), and only then lets the applier go on. Rows
// repaired to the point are later changed by replication as usual.
//
// Files (unless --database-only; sync/verify/file_verify.h): verify's file comparison, then the
// primary journals every differing path whole again (or a DELETE for a path it does not have),
// the secondary applies that through its normal stream, and the files are compared again.
//
// --dry-run prints the statements instead (one per line, a runnable script) and the files it
// would replace or delete (as SQL comments), and changes nothing.
// The work is done by sync/verify/repair_run.h; this command maps its flags to options, prints the
// report (text or JSON) and maps it to an exit code.
// Exit codes: 0 repaired or nothing to repair, 1 differences found by a dry run, 2 could not
// repair (a table or the whole run; the reason is printed).
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace replsync::cli {

struct RepairCommandOptions {
  std::string config_path;
  bool json = false;
  bool database_only = false;
  bool files_only = false;
  bool deep = false;  // find differing files by rereading every file on both nodes
  bool dry_run = false;
  int barrier_timeout_s = 120;  // the longest wait for the secondary's applier to reach the point
  size_t max_rows = 1000000;    // differing rows listed per table; a table with more is refused
  // The throttle while comparing (sync/verify/verify_throttle.h), as for verify.
  uint64_t max_running = 25;
  int max_wait_s = 60;
};

int RunRepair(const RepairCommandOptions& options, std::FILE* out);

}  // namespace replsync::cli
