#include "tools/cli/verify_command.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <set>
#include <string>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/config.h"
#include "sync/key_value_file.h"
#include "sync/path_text.h"
#include "sync/verify/consistent_point.h"
#include "sync/verify/file_verify.h"
#include "sync/verify/table_verify.h"
#include "sync/verify/verify_progress.h"

namespace replsync::cli {

using verify::ConsistentPoint;
using verify::ConsistentPointOptions;
using verify::EstablishConsistentPoint;
using verify::FileDifference;
using verify::FileVerifyOptions;
using verify::FileVerifyResult;
using verify::FilesSkipped;
using verify::LockVerify;
using verify::TableVerifyResult;
using verify::VerifyFiles;
using verify::VerifyRunOptions;
using verify::VerifyRunOptionsFromEnvironment;
using verify::VerifyTablesWithProgress;

namespace {

// An error that makes the verify impossible: exit 2 with the reason.
struct CouldNot {
  std::string reason;
};

struct Report {
  std::vector<TableVerifyResult> tables;
  bool tables_checked = false;
  FileVerifyResult files;
  bool files_checked = false;
  std::string files_skipped;  // why files were not compared ("" when they were)
  bool consistent = true;
  bool unverified = false;
};

void PrintJson(const Report& r, std::FILE* out) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("consistent");
  w.Bool(r.consistent);
  w.Key("tables");
  w.StartArray();
  for (const auto& t : r.tables) {
    w.StartObject();
    w.Key("table");
    const std::string name = t.db + "." + t.table;
    w.String(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
    w.Key("status");
    w.String(t.status.c_str());
    w.Key("rows");
    w.Uint64(t.rows);
    w.Key("missing_rows");
    w.Uint64(t.missing_rows);
    w.Key("extra_rows");
    w.Uint64(t.extra_rows);
    w.Key("changed_rows");
    w.Uint64(t.changed_rows);
    w.Key("sample_keys");
    w.StartArray();
    for (const auto& k : t.sample_keys) {
      w.String(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    }
    w.EndArray();
    if (!t.error.empty()) {
      w.Key("error");
      w.String(t.error.c_str());
    }
    if (!t.resumed.empty()) {
      w.Key("resumed");  // "finished": the interrupted run's result; "continued"
      w.String(t.resumed.c_str());
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("files_verified");
  w.Bool(r.files_checked && r.files.verified);
  if (r.files_checked && !r.files.verified) {
    w.Key("files_error");
    w.String(r.files.error.c_str());
  }
  if (r.files_checked && r.files.verified) {
    w.Key("files_summary");
    w.StartObject();
    w.Key("journal_seq");
    w.Uint64(r.files.journal_seq);
    w.Key("primary_paths");
    w.Uint64(r.files.primary_paths);
    w.Key("secondary_paths");
    w.Uint64(r.files.secondary_paths);
    w.Key("listed_nodes");
    w.Uint64(r.files.listed_nodes);
    w.Key("requests");
    w.Uint64(r.files.requests);
    w.Key("hashed_bytes");
    w.Uint64(r.files.hashed_bytes);
    w.EndObject();
  }
  w.Key("files");
  w.StartArray();
  for (const FileDifference& d : r.files.differences) {
    w.StartObject();
    w.Key("path");
    w.String(d.path.c_str(), static_cast<rapidjson::SizeType>(d.path.size()));
    w.Key("problem");
    w.String(d.problem.c_str());
    w.Key("detail");
    w.String(d.detail.c_str(), static_cast<rapidjson::SizeType>(d.detail.size()));
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::fprintf(out, "%s\n", buf.GetString());
}

void PrintText(const Report& r, std::FILE* out) {
  uint64_t rows = 0, differing = 0;
  for (const auto& t : r.tables) {
    rows += t.rows;
    if (t.status == "equal") continue;
    ++differing;
    std::string keys;
    for (const auto& k : t.sample_keys) keys += (keys.empty() ? "" : ", ") + k;
    if (t.status == "unverified") {
      std::fprintf(out, "UNVERIFIED %s.%s: %s\n", t.db.c_str(), t.table.c_str(), t.error.c_str());
    } else {
      std::fprintf(
          out, "DIFFERS    %s.%s: %llu missing, %llu extra, %llu changed on the secondary%s%s\n",
          t.db.c_str(), t.table.c_str(), static_cast<unsigned long long>(t.missing_rows),
          static_cast<unsigned long long>(t.extra_rows),
          static_cast<unsigned long long>(t.changed_rows),
          keys.empty() ? "" : "; keys: ", keys.c_str());
      if (!t.error.empty()) std::fprintf(out, "           %s\n", t.error.c_str());
    }
  }
  for (const FileDifference& d : r.files.differences) {
    std::fprintf(out, "FILE %-7s %s: %s\n", d.problem.c_str(), QuotePath(d.path).c_str(),
                 d.detail.c_str());
  }
  if (r.tables_checked) {
    bool tables_unverified = false;
    size_t resumed = 0;
    for (const auto& t : r.tables) {
      tables_unverified |= t.status == "unverified";
      resumed += t.resumed == "finished" ? 1 : 0;
    }
    if (resumed > 0) {
      std::fprintf(out, "%zu tables' results are the interrupted run's (--resume)\n", resumed);
    }
    std::fprintf(out, "%zu tables, %llu rows compared: %s\n", r.tables.size(),
                 static_cast<unsigned long long>(rows),
                 tables_unverified ? "could not verify every table"
                 : differing == 0  ? "the secondary holds the primary's rows"
                                   : fmt::format("{} tables differ", differing).c_str());
  } else {
    std::fprintf(out, "tables: not compared (--files-only)\n");
  }
  if (!r.files_checked) {
    std::fprintf(out, "files: not compared (%s)\n", r.files_skipped.c_str());
  } else if (!r.files.verified) {
    std::fprintf(out, "files: could not compare: %s\n", r.files.error.c_str());
  } else {
    std::set<std::string> paths;
    for (const FileDifference& d : r.files.differences) paths.insert(d.path);
    std::fprintf(out,
                 "files: %llu paths on the primary, %llu on the secondary, compared at "
                 "journal sequence %llu: %s\n",
                 static_cast<unsigned long long>(r.files.primary_paths),
                 static_cast<unsigned long long>(r.files.secondary_paths),
                 static_cast<unsigned long long>(r.files.journal_seq),
                 paths.empty() ? "the secondary holds the primary's files"
                               : fmt::format("{} paths differ", paths.size()).c_str());
  }
}

Report Verify(const NodeConfig& config, const VerifyCommandOptions& options) {
  ConsistentPointOptions popts;
  popts.command = "verify";
  popts.barrier_timeout_s = options.barrier_timeout_s;
  Result<ConsistentPoint> point = EstablishConsistentPoint(config, popts);
  if (!point.ok()) throw CouldNot{point.status().message()};

  // Every replicated table, compared between the two snapshots.
  Report report;
  report.tables_checked = true;
  const bool tty = isatty(fileno(stderr)) != 0 && !options.json;
  VerifyRunOptions run;
  run.show_progress = tty;
  run.throttle.max_running = options.max_running;
  run.throttle.max_wait = std::chrono::seconds(options.max_wait_s);
  run.progress_path = config.node.state_dir + "/verify.progress";
  run.resume = options.resume;
  VerifyRunOptionsFromEnvironment(&run);
  report.tables = VerifyTablesWithProgress(*point, run);
  return report;
}

// The repository's files at their own point (tools/cli/file_verify.h).
void VerifyFilesInto(const NodeConfig& config, const VerifyCommandOptions& options,
                     Report* report) {
  report->files_skipped = FilesSkipped(config, options.database_only, options.files_only);
  if (!report->files_skipped.empty()) return;
  FileVerifyOptions fopts;
  fopts.deep = options.deep;
  fopts.barrier_timeout_s = options.barrier_timeout_s;
  fopts.show_progress = isatty(fileno(stderr)) != 0 && !options.json;
  report->files = VerifyFiles(config, fopts);
  report->files_checked = true;
}

void Conclude(Report* report) {
  for (const auto& result : report->tables) {
    if (result.status != "equal") report->consistent = false;
    if (result.status == "unverified") report->unverified = true;
  }
  if (report->files_checked) {
    if (!report->files.verified) report->unverified = true;
    if (!report->files.differences.empty()) report->consistent = false;
  }
}

// state_dir/verify.last (schemas/verify.md "The last verify"): what `replsync status` shows.
void RecordLastVerify(const NodeConfig& config, const VerifyCommandOptions& options,
                      const Report& report, int exit_code, const std::string& error,
                      std::chrono::steady_clock::time_point started) {
  size_t tables_differing = 0;
  for (const auto& t : report.tables) tables_differing += t.status == "equal" ? 0 : 1;
  std::set<std::string> paths;
  for (const FileDifference& d : report.files.differences) paths.insert(d.path);
  std::string why = error;
  for (const auto& t : report.tables) {
    if (why.empty() && t.status == "unverified") why = t.db + "." + t.table + ": " + t.error;
  }
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("at");
  w.Double(static_cast<double>(now.tv_sec) + now.tv_nsec / 1e9);
  w.Key("seconds");
  w.Double(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  w.Key("exit_code");
  w.Int(exit_code);
  w.Key("what");
  w.String(options.database_only ? "database" : options.files_only ? "files" : "all");
  w.Key("tables");
  w.Uint64(report.tables.size());
  w.Key("tables_differing");
  w.Uint64(tables_differing);
  w.Key("files_verified");
  w.Bool(report.files_checked && report.files.verified);
  w.Key("paths_differing");
  w.Uint64(paths.size());
  w.Key("error");
  w.String(why.c_str(), static_cast<rapidjson::SizeType>(why.size()));
  w.EndObject();
  Status st = WriteFileAtomically(config.node.state_dir + "/verify.last",
                                  std::string(buf.GetString()) + "\n", "verify's last result");
  if (!st.ok()) std::fprintf(stderr, "replsync verify: %s\n", st.message().c_str());
}

}  // namespace

int RunVerify(const VerifyCommandOptions& options, std::FILE* out) {
  auto config = NodeConfig::Load(options.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "replsync verify: %s\n", config.status().message().c_str());
    return 2;
  }
  if (options.database_only && options.files_only) {
    std::fprintf(stderr,
                 "replsync verify: --database-only and --files-only exclude each other; give at "
                 "most one\n");
    return 2;
  }
  MysqlThreadScope thread_scope;
  // One verify or repair at a time per node (they move the same applier's barrier).
  Result<FileLock> lock = LockVerify(config->node.state_dir);
  if (!lock.ok()) {
    std::fprintf(stderr, "replsync verify: could not verify: %s\n",
                 lock.status().message().c_str());
    return 2;
  }
  const auto started = std::chrono::steady_clock::now();
  Report report;
  try {
    if (!options.files_only) report = Verify(*config, options);
  } catch (const CouldNot& e) {
    std::fprintf(stderr, "replsync verify: could not verify: %s\n", e.reason.c_str());
    RecordLastVerify(*config, options, report, 2, e.reason, started);
    return 2;
  }
  VerifyFilesInto(*config, options, &report);
  Conclude(&report);
  if (report.files_checked && !report.files.verified) {
    std::fprintf(stderr, "replsync verify: could not compare the files: %s\n",
                 report.files.error.c_str());
  }
  if (options.json) {
    PrintJson(report, out);
  } else {
    PrintText(report, out);
  }
  const int exit_code = report.unverified ? 2 : report.consistent ? 0 : 1;
  RecordLastVerify(*config, options, report, exit_code, report.files.error, started);
  return exit_code;
}

}  // namespace replsync::cli
