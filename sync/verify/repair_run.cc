#include "sync/verify/repair_run.h"

#include <fmt/format.h>

#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/text.h"
#include "sync/verify/consistent_point.h"
#include "sync/verify/table_verify.h"
#include "sync/verify/verify_progress.h"

namespace replsync::verify {

namespace {

using Report = RepairReport;

// The repair session's settings: its changes stay out of the secondary's binlog (like the
// applier's); values are written as they are (no zero-date or auto-increment rewriting, strict
// so that nothing is silently truncated); TIMESTAMP literals are UTC like the snapshots' reads.
const char* const kSessionSetup[] = {
    "SET SESSION sql_log_bin=0",
    "SET SESSION foreign_key_checks=0, unique_checks=0, time_zone='+00:00', "
    "sql_mode='STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
};

// The files' part: compare, repair through the primary, compare again.
void RepairFilesInto(const NodeConfig& config, const RepairRunOptions& options, Report* report) {
  report->files_skipped = FilesSkipped(config, options.database_only, options.files_only);
  if (!report->files_skipped.empty()) return;
  report->files_checked = true;
  FileVerifyOptions fopts;
  fopts.deep = options.deep;
  fopts.barrier_timeout_s = options.barrier_timeout_s;
  fopts.show_progress = options.show_progress;
  fopts.clock = options.clock;
  Result<FileVerifyResult> found = VerifyFiles(config, fopts);
  if (!found.ok()) {
    report->files_error = found.status().message();
    return;
  }
  report->file_differences = found->differences;
  if (options.dry_run || found->differences.empty()) return;
  Result<FileRepairResult> repaired = RepairFiles(config, found->differences, fopts);
  if (!repaired.ok()) {
    report->files_error = repaired.status().message();
    return;
  }
  report->files_repaired = repaired->paths;
  Result<FileVerifyResult> after = VerifyFiles(config, fopts);
  if (!after.ok()) {
    report->files_error = "compare again after the repair: " + after.status().message();
    return;
  }
  report->files_left = after->differences;
}

Result<std::unique_ptr<MysqlSession>> OpenRepairSession(const MysqlOptions& o) {
  RS_ASSIGN_OR_RETURN(auto session, MysqlSession::Open(o));
  for (const char* sql : kSessionSetup) {
    RS_RETURN_IF_ERROR(session->Execute(sql, "set up the repair session on the secondary"));
  }
  RS_ASSIGN_OR_RETURN(auto rows, session->Query("SELECT @@SESSION.sql_log_bin",
                                                "set up the repair session on the secondary"));
  if (rows.empty() || rows[0].empty() || rows[0][0].value_or("1") != "0") {
    return Status::Internal("set up the repair session on the secondary: sql_log_bin is still on");
  }
  return session;
}

// Runs the repair of one table on `session` in one transaction; rolls it back on an error.
Result<TableRepairCounts> RepairOnSession(ConsistentPoint& point, MysqlSession& session,
                                          const TableVerifyResult& verified) {
  const std::string what = "repair " + verified.db + "." + verified.table;
  RS_RETURN_IF_ERROR(session.Execute("START TRANSACTION", what));
  Result<TableRepairCounts> counts =
      RepairTable(point.primary.get(), point.secondary.get(), verified, TableRepairOptions{},
                  [&](const std::string& sql) { return session.Execute(sql, what); });
  if (!counts.ok()) {
    (void)session.Execute("ROLLBACK", what);
    return counts.status();
  }
  RS_RETURN_IF_ERROR(session.Execute("COMMIT", what));
  return counts;
}

// Returns the report, or a Status when nothing could be done at all.
Result<Report> RepairTables(const NodeConfig& config, const RepairRunOptions& options) {
  ConsistentPointOptions popts;
  popts.command = "repair";
  popts.barrier_timeout_s = options.barrier_timeout_s;
  // Held until every table is repaired: the secondary then stays exactly at the point, so the
  // primary's rows of the point are the right ones, and the applier cannot meanwhile apply a
  // change that the repair would undo.
  popts.hold_barrier = !options.dry_run;
  popts.clock = options.clock;
  RS_ASSIGN_OR_RETURN(ConsistentPoint point, EstablishConsistentPoint(config, popts));

  TableVerifyOptions topts;
  topts.collect_keys = true;
  topts.max_collected_keys = options.max_rows;
  TableRunOptions run;
  run.table = topts;
  run.show_progress = options.show_progress;
  run.throttle = options.throttle;
  run.clock = options.clock;
  std::vector<TableVerifyResult> results = VerifyTablesWithProgress(point, run);

  Report report;
  report.tables_checked = true;
  report.position = point.position;
  std::unique_ptr<MysqlSession> session;
  for (const TableVerifyResult& verified : results) {
    TableRepairOutcome outcome;
    outcome.name = verified.db + "." + verified.table;
    outcome.differs = verified.status != "equal";
    report.differs = report.differs || outcome.differs;
    outcome.error = WhyNotRepairable(verified);
    if (outcome.differs && outcome.error.empty()) {
      // The repair writes SQL, so the secondary's triggers on the table fire (the applier's row
      // events do not fire them): say so, the tables they write may then need a look.
      auto triggers = point.secondary->Query(
          fmt::format("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE "
                      "EVENT_OBJECT_SCHEMA = {} AND EVENT_OBJECT_TABLE = {}",
                      QuoteString(verified.db), QuoteString(verified.table)),
          "list the secondary's triggers");
      if (triggers.ok() && !triggers->empty() && (*triggers)[0][0] &&
          !ParseU64(*(*triggers)[0][0], &outcome.triggers)) {
        outcome.triggers = 0;
      }
      Result<TableRepairCounts> counts = TableRepairCounts{};
      if (options.dry_run) {
        if (report.statements.empty()) {
          report.statements.assign(std::begin(kSessionSetup), std::end(kSessionSetup));
        }
        report.statements.push_back("START TRANSACTION");
        counts = RepairTable(point.primary.get(), point.secondary.get(), verified,
                             TableRepairOptions{}, [&](const std::string& sql) {
                               report.statements.push_back(sql);
                               return Status::Ok();
                             });
        report.statements.push_back("COMMIT");
      } else {
        if (!session) {
          auto opened = OpenRepairSession(point.secondary_options);
          if (!opened.ok()) return opened.status();
          session = std::move(opened).value();
        }
        counts = RepairOnSession(point, *session, verified);
        if (!counts.ok() && session->broken()) session.reset();
      }
      if (counts.ok()) {
        outcome.counts = *counts;
      } else {
        outcome.error = counts.status().message();
      }
    }
    if (!outcome.error.empty()) report.failed = true;
    report.tables.push_back(std::move(outcome));
  }
  // The applier goes on (also done by the destructor on every early return).
  if (point.barrier) point.barrier->Lift();
  return report;
}

}  // namespace

Result<RepairReport> Repair(const NodeConfig& config, const RepairRunOptions& options) {
  Result<Report> report =
      options.files_only ? Result<Report>(Report{}) : RepairTables(config, options);
  if (report.ok()) RepairFilesInto(config, options, &*report);
  return report;
}

}  // namespace replsync::verify
