#include "tools/cli/repair_command.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/config.h"
#include "sync/path_text.h"
#include "sync/verify/consistent_point.h"
#include "sync/verify/file_verify.h"
#include "sync/verify/table_repair.h"
#include "sync/verify/table_verify.h"
#include "sync/verify/verify_progress.h"

namespace replsync::cli {

using verify::ConsistentPoint;
using verify::ConsistentPointOptions;
using verify::EstablishConsistentPoint;
using verify::FileDifference;
using verify::FileRepairResult;
using verify::FileVerifyOptions;
using verify::FileVerifyResult;
using verify::FilesSkipped;
using verify::LockVerify;
using verify::RepairFiles;
using verify::RepairTable;
using verify::TableRepairCounts;
using verify::TableRepairOptions;
using verify::TableVerifyOptions;
using verify::TableVerifyResult;
using verify::VerifyFiles;
using verify::VerifyRunOptions;
using verify::VerifyTablesWithProgress;
using verify::WhyNotRepairable;

namespace {

// The repair session's settings: its changes stay out of the secondary's binlog (like the
// applier's); values are written as they are (no zero-date or auto-increment rewriting, strict
// so that nothing is silently truncated); TIMESTAMP literals are UTC like the snapshots' reads.
const char* const kSessionSetup[] = {
    "SET SESSION sql_log_bin=0",
    "SET SESSION foreign_key_checks=0, unique_checks=0, time_zone='+00:00', "
    "sql_mode='STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
};

struct TableOutcome {
  std::string name;  // "db.table"
  TableRepairCounts counts;
  bool differs = false;
  std::string error;  // why it was not repaired
  uint64_t triggers = 0;  // triggers on the secondary's table (they fire for repaired rows)
};

struct Report {
  bool tables_checked = false;
  std::vector<TableOutcome> tables;
  // Files: what differed, what the repair did, what differs after it.
  bool files_checked = false;
  std::string files_skipped;  // why files were not looked at ("" when they were)
  std::string files_error;    // could not compare or repair them
  std::vector<FileDifference> file_differences;
  std::vector<FileDifference> files_left;  // still differing after the repair
  uint64_t files_repaired = 0;
  std::vector<std::string> statements;  // --dry-run: what would run
  std::string position;
  bool failed = false;   // a table could not be repaired
  bool differs = false;  // a table differed
};

void PrintJson(const Report& r, bool dry_run, std::FILE* out) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&w](const std::string& s) {
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  w.Key("repaired");
  w.Bool(!r.failed && r.files_error.empty() && r.files_left.empty() &&
         !(dry_run && (r.differs || !r.file_differences.empty())));
  w.Key("dry_run");
  w.Bool(dry_run);
  w.Key("position");
  str(r.position);
  w.Key("tables");
  w.StartArray();
  for (const auto& t : r.tables) {
    w.StartObject();
    w.Key("table");
    str(t.name);
    w.Key("inserted");
    w.Uint64(t.counts.inserted);
    w.Key("updated");
    w.Uint64(t.counts.updated);
    w.Key("deleted");
    w.Uint64(t.counts.deleted);
    if (t.triggers > 0) {
      w.Key("secondary_triggers");  // they fired for the repaired rows
      w.Uint64(t.triggers);
    }
    if (!t.error.empty()) {
      w.Key("error");
      str(t.error);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("files_checked");
  w.Bool(r.files_checked);
  if (!r.files_error.empty()) {
    w.Key("files_error");
    str(r.files_error);
  }
  w.Key("files");
  w.StartArray();
  for (const FileDifference& d : r.file_differences) {
    w.StartObject();
    w.Key("path");
    str(d.path);
    w.Key("problem");
    str(d.problem);
    w.Key("action");
    w.String(d.problem == "extra" ? "delete" : "replace");
    w.EndObject();
  }
  w.EndArray();
  w.Key("files_repaired");
  w.Uint64(r.files_repaired);
  w.Key("files_left");
  w.StartArray();
  for (const FileDifference& d : r.files_left) {
    w.StartObject();
    w.Key("path");
    str(d.path);
    w.Key("problem");
    str(d.problem);
    w.EndObject();
  }
  w.EndArray();
  if (dry_run) {
    w.Key("statements");
    w.StartArray();
    for (const auto& s : r.statements) str(s);
    w.EndArray();
  }
  w.EndObject();
  std::fprintf(out, "%s\n", buf.GetString());
}

void PrintText(const Report& r, bool dry_run, std::FILE* out) {
  if (dry_run) {
    for (const auto& s : r.statements) std::fprintf(out, "%s;\n", s.c_str());
  }
  // In a dry run the summary lines are SQL comments, so that the output stays a script.
  const char* prefix = dry_run ? "-- " : "";
  size_t differing = 0, failed = 0;
  for (const auto& t : r.tables) {
    if (!t.error.empty()) {
      ++failed;
      std::fprintf(out, "%sNOT REPAIRED %s: %s\n", prefix, t.name.c_str(), t.error.c_str());
    } else if (t.differs) {
      ++differing;
      std::fprintf(out, "%s%s %s: %llu inserted, %llu updated, %llu deleted\n", prefix,
                   dry_run ? "WOULD REPAIR" : "REPAIRED    ", t.name.c_str(),
                   static_cast<unsigned long long>(t.counts.inserted),
                   static_cast<unsigned long long>(t.counts.updated),
                   static_cast<unsigned long long>(t.counts.deleted));
      if (t.triggers > 0) {
        std::fprintf(out,
                     "%s             note: %s has %llu trigger(s) on the secondary, which %s for "
                     "the repaired rows (replication's row events do not fire them); run verify "
                     "again to see what they changed\n",
                     prefix, t.name.c_str(), static_cast<unsigned long long>(t.triggers),
                     dry_run ? "would fire" : "fired");
      }
    }
  }
  std::string verdict;
  if (failed > 0) {
    verdict = fmt::format("{} tables could not be repaired", failed);
  } else if (differing == 0) {
    verdict = "nothing to repair, the secondary holds the primary's rows";
  } else if (dry_run) {
    verdict = fmt::format("{} tables differ; nothing was changed (--dry-run)", differing);
  } else {
    verdict = fmt::format("{} tables repaired to the primary's rows at {}", differing, r.position);
  }
  if (r.tables_checked) {
    std::fprintf(out, "%s%zu tables: %s\n", prefix, r.tables.size(), verdict.c_str());
  } else {
    std::fprintf(out, "%stables: not compared (--files-only)\n", prefix);
  }
  std::set<std::string> paths;
  for (const FileDifference& d : r.file_differences) {
    paths.insert(d.path);
    std::fprintf(out, "%s%s %s %s (%s)\n", prefix, dry_run ? "WOULD" : "FILE",
                 d.problem == "extra" ? "delete " : "replace", QuotePath(d.path).c_str(),
                 d.problem.c_str());
  }
  for (const FileDifference& d : r.files_left) {
    std::fprintf(out, "%sFILE STILL DIFFERS %s: %s (%s)\n", prefix, QuotePath(d.path).c_str(),
                 d.problem.c_str(), d.detail.c_str());
  }
  if (!r.files_checked) {
    std::fprintf(out, "%sfiles: not compared (%s)\n", prefix, r.files_skipped.c_str());
  } else if (!r.files_error.empty()) {
    std::fprintf(out, "%sfiles: could not repair: %s\n", prefix, r.files_error.c_str());
  } else if (paths.empty()) {
    std::fprintf(out, "%sfiles: nothing to repair, the secondary holds the primary's files\n",
                 prefix);
  } else if (dry_run) {
    std::fprintf(out, "%sfiles: %zu paths differ; nothing was changed (--dry-run)\n", prefix,
                 paths.size());
  } else {
    std::fprintf(out, "%sfiles: %zu paths journaled again by the primary and applied%s\n", prefix,
                 paths.size(),
                 r.files_left.empty() ? "; the secondary holds the primary's files"
                                      : "; some still differ (see above)");
  }
}

// The files' part: compare, repair through the primary, compare again.
void RepairFilesInto(const NodeConfig& config, const RepairCommandOptions& options,
                     Report* report) {
  report->files_skipped = FilesSkipped(config, options.database_only, options.files_only);
  if (!report->files_skipped.empty()) return;
  report->files_checked = true;
  FileVerifyOptions fopts;
  fopts.deep = options.deep;
  fopts.barrier_timeout_s = options.barrier_timeout_s;
  fopts.show_progress = isatty(fileno(stderr)) != 0 && !options.json;
  FileVerifyResult found = VerifyFiles(config, fopts);
  if (!found.verified) {
    report->files_error = found.error;
    return;
  }
  report->file_differences = found.differences;
  if (options.dry_run || found.differences.empty()) return;
  FileRepairResult repaired = RepairFiles(config, found.differences, fopts);
  if (!repaired.done) {
    report->files_error = repaired.error;
    return;
  }
  report->files_repaired = repaired.paths;
  FileVerifyResult after = VerifyFiles(config, fopts);
  if (!after.verified) {
    report->files_error = "compare again after the repair: " + after.error;
    return;
  }
  report->files_left = after.differences;
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
Result<Report> Repair(const NodeConfig& config, const RepairCommandOptions& options) {
  ConsistentPointOptions popts;
  popts.command = "repair";
  popts.barrier_timeout_s = options.barrier_timeout_s;
  // Held until every table is repaired: the secondary then stays exactly at the point, so the
  // primary's rows of the point are the right ones, and the applier cannot meanwhile apply a
  // change that the repair would undo.
  popts.hold_barrier = !options.dry_run;
  RS_ASSIGN_OR_RETURN(ConsistentPoint point, EstablishConsistentPoint(config, popts));

  TableVerifyOptions topts;
  topts.collect_keys = true;
  topts.max_collected_keys = options.max_rows;
  const bool tty = isatty(fileno(stderr)) != 0 && !options.json;
  VerifyRunOptions run;
  run.table = topts;
  run.show_progress = tty;
  run.throttle.max_running = options.max_running;
  run.throttle.max_wait = std::chrono::seconds(options.max_wait_s);
  std::vector<TableVerifyResult> results = VerifyTablesWithProgress(point, run);

  Report report;
  report.tables_checked = true;
  report.position = point.position;
  std::unique_ptr<MysqlSession> session;
  for (const TableVerifyResult& verified : results) {
    TableOutcome outcome;
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
      if (triggers.ok() && !triggers->empty() && (*triggers)[0][0]) {
        outcome.triggers = std::strtoull((*triggers)[0][0]->c_str(), nullptr, 10);
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

int RunRepair(const RepairCommandOptions& options, std::FILE* out) {
  auto config = NodeConfig::Load(options.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "replsync repair: %s\n", config.status().message().c_str());
    return 2;
  }
  if (options.database_only && options.files_only) {
    std::fprintf(stderr,
                 "replsync repair: --database-only and --files-only exclude each other; give at "
                 "most one\n");
    return 2;
  }
  MysqlThreadScope thread_scope;
  // One verify or repair at a time per node (they move the same applier's barrier).
  Result<FileLock> lock = LockVerify(config->node.state_dir);
  if (!lock.ok()) {
    std::fprintf(stderr, "replsync repair: could not repair: %s\n",
                 lock.status().message().c_str());
    return 2;
  }
  Result<Report> report = options.files_only ? Result<Report>(Report{}) : Repair(*config, options);
  if (report.ok()) RepairFilesInto(*config, options, &*report);
  if (!report.ok()) {
    std::fprintf(stderr, "replsync repair: could not repair: %s\n",
                 report.status().message().c_str());
    return 2;
  }
  if (options.json) {
    PrintJson(*report, options.dry_run, out);
  } else {
    PrintText(*report, options.dry_run, out);
  }
  for (const auto& t : report->tables) {
    if (!t.error.empty()) {
      std::fprintf(stderr, "replsync repair: could not repair %s: %s\n", t.name.c_str(),
                   t.error.c_str());
    }
  }
  if (!report->files_error.empty()) {
    std::fprintf(stderr, "replsync repair: could not repair the files: %s\n",
                 report->files_error.c_str());
    return 2;
  }
  if (!report->files_left.empty()) {
    std::fprintf(stderr,
                 "replsync repair: %zu file difference(s) remain after the repair (changed again "
                 "meanwhile, or the secondary cannot write them: see its log)\n",
                 report->files_left.size());
    return 2;
  }
  if (report->failed) return 2;
  const bool differs = report->differs || !report->file_differences.empty();
  return options.dry_run && differs ? 1 : 0;
}

}  // namespace replsync::cli
