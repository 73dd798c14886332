// Verify's progress file and the table loop that keeps it (schemas/verify.md, "Resume").
//
// `replsync verify` records in state_dir/verify.progress (JSON, written atomically: temporary
// file + rename) which tables it finished, with their results, and for the table in progress the
// bound of its last finished chunk and the counts so far. `replsync verify --resume` reports the
// finished tables as recorded (from the interrupted run) and continues the half-done one after
// the recorded bound, at its own new consistent point; a table whose definitions changed since
// (another fingerprint) is compared from the start. A verify that completes removes the file;
// one without --resume starts over and overwrites it.
//
// Thread-safety: not thread-safe; one thread runs VerifyTablesWithProgress.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sync/clock.h"
#include "sync/status.h"
#include "sync/verify/consistent_point.h"
#include "sync/verify/table_verify.h"
#include "sync/verify/verify_throttle.h"

namespace replsync::verify {

// The content of verify.progress (version 1). Tables are named by (schema, table).
struct VerifyProgress {
  using TableName = std::pair<std::string, std::string>;
  // Finished tables: their results (status equal or differs; fingerprint set).
  std::map<TableName, TableVerifyResult> finished;
  // The table in progress, if any: the bound after which it continues, its result so far.
  std::optional<TableName> current;
  std::vector<std::string> current_after;
  TableVerifyResult current_so_far;

  // The JSON text (schemas/verify.md, "Resume").
  std::string Serialize() const;
  // Errors: Corruption when `text` is not a version 1 progress file.
  static Result<VerifyProgress> Parse(const std::string& text);
};

struct TableRunOptions {
  TableVerifyOptions table;
  bool show_progress = false;  // a progress line on stderr
  ThrottleOptions throttle;
  // The progress file ("" = none is kept), and whether to continue from it.
  std::string progress_path;
  bool resume = false;
  // Test hook: stop the process with exit code 3 after this many chunks (0 = never), with the
  // progress of those chunks recorded, as a kill would stop it. Set from the environment
  // variable REPLSYNC_VERIFY_STOP_AFTER_CHUNKS by TableRunOptionsFromEnvironment; for tests.
  uint64_t stop_after_chunks = 0;
  // The throttle's waits and the progress file's pace (at most one write a second mid-table).
  Clock* clock = &SystemClock();
};

// Reads REPLSYNC_VERIFY_STOP_AFTER_CHUNKS (a test hook, see above) into `options`.
void TableRunOptionsFromEnvironment(TableRunOptions* options);

// Like VerifyTables (consistent_point.h), with the throttle before each chunk and, when
// options.progress_path is set, the progress file kept (and used, with options.resume). Tables
// taken from an interrupted run have TableVerifyResult::resumed "finished"; one continued
// "continued"; both are also named on stderr (text mode: "from the interrupted run").
std::vector<TableVerifyResult> VerifyTablesWithProgress(ConsistentPoint& point,
                                                        const TableRunOptions& options);

}  // namespace replsync::verify
