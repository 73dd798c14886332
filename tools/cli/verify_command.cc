#include "tools/cli/verify_command.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>

#include "sync/clock.h"
#include "sync/config.h"
#include "sync/mysql/mysql_session.h"
#include "sync/node/role_state.h"
#include "sync/path_text.h"
#include "sync/verify/consistent_point.h"
#include "sync/verify/verify_run.h"

namespace replsync::cli {

using verify::FileDifference;
using verify::LockVerify;
using verify::VerifyReport;
using verify::VerifyRunOptions;

namespace {

using Report = VerifyReport;

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
  w.Bool(r.files_verified());
  if (r.files_checked && !r.files_verified()) {
    w.Key("files_error");
    w.String(r.files_error.c_str());
  }
  if (r.files_verified()) {
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
  } else if (!r.files_verified()) {
    std::fprintf(out, "files: could not compare: %s\n", r.files_error.c_str());
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

}  // namespace

int RunVerify(const VerifyCommandOptions& options, std::FILE* out) {
  auto config = LoadNodeConfig(options.config_path);
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
  VerifyRunOptions run;
  run.database_only = options.database_only;
  run.files_only = options.files_only;
  run.deep = options.deep;
  run.barrier_timeout_s = options.barrier_timeout_s;
  run.throttle.max_running = options.max_running;
  run.throttle.max_wait = std::chrono::seconds(options.max_wait_s);
  run.resume = options.resume;
  run.show_progress = isatty(fileno(stderr)) != 0 && !options.json;
  const Clock::TimePoint started = run.clock->Now();
  auto record = [&](const Report& report, int exit_code, const std::string& error) {
    Status st =
        verify::RecordLastVerify(config->node.state_dir, run, report, exit_code, error, started);
    if (!st.ok()) std::fprintf(stderr, "replsync verify: %s\n", st.message().c_str());
  };
  Result<Report> report = verify::Verify(*config, run);
  if (!report.ok()) {
    const std::string& reason = report.status().message();
    std::fprintf(stderr, "replsync verify: could not verify: %s\n", reason.c_str());
    record(Report{}, 2, reason);
    return 2;
  }
  if (report->files_checked && !report->files_verified()) {
    std::fprintf(stderr, "replsync verify: could not compare the files: %s\n",
                 report->files_error.c_str());
  }
  if (options.json) {
    PrintJson(*report, out);
  } else {
    PrintText(*report, out);
  }
  const int exit_code = report->unverified ? 2 : report->consistent ? 0 : 1;
  record(*report, exit_code, report->files_error);
  return exit_code;
}

}  // namespace replsync::cli
