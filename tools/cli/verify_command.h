// `replsync verify --config secondary.toml [--json] [--database-only | --files-only] [--deep]`:
// proves that the secondary holds the primary's rows and files at one consistent point, while
// changes keep flowing, or lists what differs (schemas/verify.md).
//
// The point: the secondary's applier holds (verify's barrier, a file in its state_dir), the
// primary opens a consistent snapshot and reads its binlog position P, a marker transaction in
// `replsync_verify` is committed on the primary after P (so that a transaction past P surely
// reaches the secondary), the applier applies exactly the transactions before P and holds
// again, the secondary opens its snapshot there, and the applier goes on. Every replicated table
// is then compared between the two snapshots (sync/verify/table_verify.h).
//
// The repository's files are compared at their own point of the same stream (after the tables;
// sync/verify/file_verify.h): --database-only or --files-only restrict it to one part; a
// secondary without [repository] path compares the database only.
// The work is done by sync/verify/verify_run.h; this command maps its flags to options, prints the
// report (text or JSON) and maps it to an exit code.
// Exit codes: 0 consistent, 1 differences found, 2 could not verify (the reason is printed).
#pragma once

#include <cstdio>
#include <string>

namespace replsync::cli {

struct VerifyCommandOptions {
  std::string config_path;
  bool json = false;
  bool database_only = false;
  bool files_only = false;
  bool deep = false;            // reread every file on both sides
  int barrier_timeout_s = 120;  // the longest wait for the secondary's applier to reach the point
  // The throttle (sync/verify/verify_throttle.h): wait before a chunk while a server runs more
  // than max_running other queries (0: never), at most max_wait_s per wait.
  uint64_t max_running = 25;
  int max_wait_s = 60;
  bool resume = false;  // go on from an interrupted verify (sync/verify/verify_progress.h)
};

int RunVerify(const VerifyCommandOptions& options, std::FILE* out);

}  // namespace replsync::cli
