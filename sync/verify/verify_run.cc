#include "sync/verify/verify_run.h"


#include <chrono>
#include <set>

#include "sync/verify/consistent_point.h"
#include "sync/verify/last_verify.h"
#include "sync/verify/verify_progress.h"

namespace replsync::verify {

namespace {

// Every replicated table, compared between the two snapshots of one consistent point.
Result<std::vector<TableVerifyResult>> VerifyTables(const NodeConfig& config,
                                                    const VerifyRunOptions& options) {
  ConsistentPointOptions popts;
  popts.command = "verify";
  popts.barrier_timeout_s = options.barrier_timeout_s;
  popts.clock = options.clock;
  RS_ASSIGN_OR_RETURN(ConsistentPoint point, EstablishConsistentPoint(config, popts));
  TableRunOptions run;
  run.show_progress = options.show_progress;
  run.throttle = options.throttle;
  run.progress_path = config.node.state_dir + "/verify.progress";
  run.resume = options.resume;
  run.clock = options.clock;
  TableRunOptionsFromEnvironment(&run);
  return VerifyTablesWithProgress(point, run);
}

// The repository's files at their own point (file_verify.h).
void VerifyFilesInto(const NodeConfig& config, const VerifyRunOptions& options,
                     VerifyReport* report) {
  report->files_skipped = FilesSkipped(config, options.database_only, options.files_only);
  if (!report->files_skipped.empty()) return;
  FileVerifyOptions fopts;
  fopts.deep = options.deep;
  fopts.barrier_timeout_s = options.barrier_timeout_s;
  fopts.show_progress = options.show_progress;
  fopts.clock = options.clock;
  Result<FileVerifyResult> files = VerifyFiles(config, fopts);
  report->files_checked = true;
  if (files.ok()) {
    report->files = std::move(files).value();
  } else {
    report->files_error = files.status().message();
  }
}

void Conclude(VerifyReport* report) {
  for (const auto& result : report->tables) {
    if (result.status != "equal") report->consistent = false;
    if (result.status == "unverified") report->unverified = true;
  }
  if (report->files_checked) {
    if (!report->files_verified()) report->unverified = true;
    if (!report->files.differences.empty()) report->consistent = false;
  }
}

}  // namespace

Result<VerifyReport> Verify(const NodeConfig& config, const VerifyRunOptions& options) {
  VerifyReport report;
  if (!options.files_only) {
    RS_ASSIGN_OR_RETURN(report.tables, VerifyTables(config, options));
    report.tables_checked = true;
  }
  VerifyFilesInto(config, options, &report);
  Conclude(&report);
  return report;
}

Status RecordLastVerify(const std::string& state_dir, const VerifyRunOptions& options,
                        const VerifyReport& report, int exit_code, const std::string& error,
                        Clock::TimePoint started) {
  size_t tables_differing = 0;
  for (const auto& t : report.tables) tables_differing += t.status == "equal" ? 0 : 1;
  std::set<std::string> paths;
  for (const FileDifference& d : report.files.differences) paths.insert(d.path);
  std::string why = error;
  for (const auto& t : report.tables) {
    if (why.empty() && t.status == "unverified") why = t.db + "." + t.table + ": " + t.error;
  }
  LastVerify last;
  last.at = static_cast<double>(options.clock->UnixMillis()) / 1e3;
  last.seconds = std::chrono::duration<double>(options.clock->Now() - started).count();
  last.exit_code = exit_code;
  last.what = options.database_only ? "database" : options.files_only ? "files" : "all";
  last.tables = report.tables.size();
  last.tables_differing = tables_differing;
  last.files_verified = report.files_verified();
  last.paths_differing = paths.size();
  last.error = why;
  return WriteLastVerify(state_dir, last);
}

}  // namespace replsync::verify
