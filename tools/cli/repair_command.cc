#include "tools/cli/repair_command.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "apply/mysql_session.h"
#include "sync/config.h"
#include "tools/cli/consistent_point.h"
#include "tools/cli/table_repair.h"
#include "tools/cli/table_verify.h"

namespace replsync::cli {

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
};

struct Report {
  std::vector<TableOutcome> tables;
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
  w.Bool(!r.failed && !(dry_run && r.differs));
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
    if (!t.error.empty()) {
      w.Key("error");
      str(t.error);
    }
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
  std::fprintf(out, "%s%zu tables: %s\n", prefix, r.tables.size(), verdict.c_str());
  std::fprintf(out, "%sfiles: not compared (--database-only)\n", prefix);
}

Result<std::unique_ptr<apply::MysqlSession>> OpenRepairSession(const apply::MysqlOptions& o) {
  RS_ASSIGN_OR_RETURN(auto session, apply::MysqlSession::Open(o));
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
Result<TableRepairCounts> RepairOnSession(ConsistentPoint& point, apply::MysqlSession& session,
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
  std::vector<TableVerifyResult> results = VerifyTables(point, topts, tty);

  Report report;
  report.position = point.position;
  std::unique_ptr<apply::MysqlSession> session;
  for (const TableVerifyResult& verified : results) {
    TableOutcome outcome;
    outcome.name = verified.db + "." + verified.table;
    outcome.differs = verified.status != "equal";
    report.differs = report.differs || outcome.differs;
    outcome.error = WhyNotRepairable(verified);
    if (outcome.differs && outcome.error.empty()) {
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
  if (!options.database_only) {
    std::fprintf(stderr,
                 "replsync repair: repairing the repository's files is not available in this "
                 "version; run with --database-only to repair the database alone\n");
    return 2;
  }
  apply::MysqlThreadScope thread_scope;
  Result<Report> report = Repair(*config, options);
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
  if (report->failed) return 2;
  return options.dry_run && report->differs ? 1 : 0;
}

}  // namespace replsync::cli
