#include "tools/cli/verify_command.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "apply/mysql_session.h"
#include "sync/config.h"
#include "tools/cli/consistent_point.h"
#include "tools/cli/table_verify.h"

namespace replsync::cli {

namespace {

// An error that makes the verify impossible: exit 2 with the reason.
struct CouldNot {
  std::string reason;
};

struct Report {
  std::vector<TableVerifyResult> tables;
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
    w.EndObject();
  }
  w.EndArray();
  w.Key("files_verified");
  w.Bool(false);
  w.Key("files");
  w.StartArray();
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
  std::fprintf(out, "%zu tables, %llu rows compared: %s\n", r.tables.size(),
               static_cast<unsigned long long>(rows),
               r.unverified ? "could not verify every table"
                            : (r.consistent ? "the secondary holds the primary's rows"
                                            : fmt::format("{} tables differ", differing).c_str()));
  std::fprintf(out, "files: not compared (--database-only)\n");
}

Report Verify(const NodeConfig& config, const VerifyCommandOptions& options) {
  ConsistentPointOptions popts;
  popts.command = "verify";
  popts.barrier_timeout_s = options.barrier_timeout_s;
  Result<ConsistentPoint> point = EstablishConsistentPoint(config, popts);
  if (!point.ok()) throw CouldNot{point.status().message()};

  // Every replicated table, compared between the two snapshots.
  Report report;
  const bool tty = isatty(fileno(stderr)) != 0 && !options.json;
  report.tables = VerifyTables(*point, TableVerifyOptions{}, tty);
  for (const auto& result : report.tables) {
    if (result.status != "equal") report.consistent = false;
    if (result.status == "unverified") report.unverified = true;
  }
  return report;
}

}  // namespace

int RunVerify(const VerifyCommandOptions& options, std::FILE* out) {
  auto config = NodeConfig::Load(options.config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "replsync verify: %s\n", config.status().message().c_str());
    return 2;
  }
  if (!options.database_only) {
    std::fprintf(stderr,
                 "replsync verify: comparing the repository's files is not available in this "
                 "version; run with --database-only to verify the database alone\n");
    return 2;
  }
  apply::MysqlThreadScope thread_scope;
  Report report;
  try {
    report = Verify(*config, options);
  } catch (const CouldNot& e) {
    std::fprintf(stderr, "replsync verify: could not verify: %s\n", e.reason.c_str());
    return 2;
  }
  if (options.json) {
    PrintJson(report, out);
  } else {
    PrintText(report, out);
  }
  if (report.unverified) return 2;
  return report.consistent ? 0 : 1;
}

}  // namespace replsync::cli
