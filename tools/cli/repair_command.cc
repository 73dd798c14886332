#include "tools/cli/repair_command.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>

#include "sync/config.h"
#include "sync/mysql/mysql_session.h"
#include "sync/node/role_state.h"
#include "sync/path_text.h"
#include "sync/verify/consistent_point.h"
#include "sync/verify/repair_run.h"

namespace replsync::cli {

using verify::FileDifference;
using verify::LockVerify;
using verify::RepairReport;
using verify::RepairRunOptions;

namespace {

using Report = RepairReport;

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

}  // namespace

int RunRepair(const RepairCommandOptions& options, std::FILE* out) {
  auto config = LoadNodeConfig(options.config_path);
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
  RepairRunOptions run;
  run.database_only = options.database_only;
  run.files_only = options.files_only;
  run.deep = options.deep;
  run.dry_run = options.dry_run;
  run.barrier_timeout_s = options.barrier_timeout_s;
  run.max_rows = options.max_rows;
  run.throttle.max_running = options.max_running;
  run.throttle.max_wait = std::chrono::seconds(options.max_wait_s);
  run.show_progress = isatty(fileno(stderr)) != 0 && !options.json;
  Result<Report> report = verify::Repair(*config, run);
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
