// Verify: the whole of `replsync verify` but its flags, printing and exit codes (those are
// tools/cli/verify_command's): the tables compared at one consistent point
// (consistent_point.h, verify_progress.h), then the repository's files at their own point
// (file_verify.h), and the record of the last verify that `replsync status` shows
// (schemas/verify.md, "The last verify").
//
// Thread-safety: one verify at a time per node (the caller holds LockVerify's lock); a call uses
// its own sessions and the calling thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sync/clock.h"
#include "sync/config.h"
#include "sync/status.h"
#include "sync/verify/file_verify.h"
#include "sync/verify/table_verify.h"
#include "sync/verify/verify_throttle.h"

namespace replsync::verify {

struct VerifyRunOptions {
  bool database_only = false;   // leave the files out
  bool files_only = false;      // leave the tables out
  bool deep = false;            // reread every file on both sides
  int barrier_timeout_s = 120;  // the longest wait for the secondary's applier to reach a point
  ThrottleOptions throttle;     // giving way to busy servers while comparing tables
  bool resume = false;          // go on from an interrupted verify (verify_progress.h)
  bool show_progress = false;   // progress lines on stderr
  Clock* clock = &SystemClock();
};

struct VerifyReport {
  bool tables_checked = false;
  std::vector<TableVerifyResult> tables;
  bool files_checked = false;
  std::string files_skipped;  // why files were not compared ("" when they were)
  std::string files_error;    // why they could not be compared ("" when they were)
  FileVerifyResult files;     // with files_checked and no files_error
  // Every table equal and every file the same.
  bool consistent = true;
  // A table or the files could not be compared.
  bool unverified = false;

  bool files_verified() const { return files_checked && files_error.empty(); }
};

// Compares the secondary of `config` with its primary as `replsync verify` does (see above). A
// table that cannot be compared is in the report ("unverified"), and so are files that cannot.
// Errors (Aborted with the reason): the tables' consistent point could not be established
// (EstablishConsistentPoint's errors); nothing was compared then.
Result<VerifyReport> Verify(const NodeConfig& config, const VerifyRunOptions& options);

// Writes state_dir/verify.last (schemas/verify.md, "The last verify") for a verify that began at
// `started` (options.clock) and ends with `exit_code`; `error` is why it could not verify ("":
// the first unverified table's reason, if any). Errors: IoError from the atomic write.
Status RecordLastVerify(const std::string& state_dir, const VerifyRunOptions& options,
                        const VerifyReport& report, int exit_code, const std::string& error,
                        Clock::TimePoint started);

}  // namespace replsync::verify
