#include "tools/cli/verify_command.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "apply/mysql_session.h"
#include "sync/config.h"
#include "sync/position.h"
#include "sync/status_file.h"
#include "tools/cli/table_verify.h"

namespace replsync::cli {

namespace {

using Clock = std::chrono::steady_clock;

// An error that makes the verify impossible: exit 2 with the reason.
struct CouldNot {
  std::string reason;
};

std::string RandomToken() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

// Writes `content` to `path` atomically (temporary file + rename).
Status WriteAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    if (!out.good()) return Status::IoError("write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IoError(fmt::format("rename {} to {}: {}", tmp, path, ec.message()));
  return Status::Ok();
}

std::map<std::string, std::string> ReadKeyValues(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    if (space != std::string::npos) out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

// Removes the barrier file whatever happens, so the applier never stays held.
class BarrierGuard {
 public:
  explicit BarrierGuard(std::string path) : path_(std::move(path)) {}
  ~BarrierGuard() { Lift(); }
  void Lift() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }

 private:
  std::string path_;
};

apply::MysqlOptions Options(const std::string& host, uint16_t port, const std::string& user,
                            const std::string& password, const std::string& socket) {
  apply::MysqlOptions o;
  o.host = host;
  o.port = port;
  o.user = user;
  o.password = password;
  o.socket = socket;
  o.connect_timeout = std::chrono::seconds(10);
  return o;
}

std::unique_ptr<apply::MysqlSession> Open(const apply::MysqlOptions& o, const char* which) {
  auto s = apply::MysqlSession::Open(o);
  if (!s.ok()) {
    throw CouldNot{
        fmt::format("cannot connect to the {} database: {}", which, s.status().message())};
  }
  return std::move(s).value();
}

void Must(const Status& st, const char* what) {
  if (!st.ok()) throw CouldNot{fmt::format("{}: {}", what, st.message())};
}

std::vector<apply::MysqlSession::Row> MustQuery(apply::MysqlSession& s, const std::string& sql,
                                                const char* what) {
  auto rows = s.Query(sql, what);
  if (!rows.ok()) throw CouldNot{fmt::format("{}: {}", what, rows.status().message())};
  return std::move(rows).value();
}

// Waits until the applier's paused file names `token` and `stop`; returns its values.
std::map<std::string, std::string> WaitPaused(const std::string& path, const std::string& token,
                                              const std::string& stop, int timeout_s) {
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  while (Clock::now() < deadline) {
    auto kv = ReadKeyValues(path);
    if (kv["token"] == token && kv["stop_before"] == stop) return kv;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  throw CouldNot{fmt::format(
      "the secondary's applier did not reach verify's barrier (before {}) within {} s; is it "
      "applying (replsync status), or far behind the primary?",
      stop, timeout_s)};
}

bool DaemonRunning(const std::string& state_dir) {
  auto text = ReadStatusFile(state_dir);
  if (!text.ok()) return false;
  rapidjson::Document doc;
  doc.Parse(text->c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("pid") || !doc["pid"].IsInt()) {
    return false;
  }
  return kill(doc["pid"].GetInt(), 0) == 0;
}

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
  if (config.node.role != NodeRole::kSecondary) {
    throw CouldNot{
        fmt::format("{} is a primary's configuration; run verify with the "
                    "secondary's (it compares the secondary with its primary)",
                    config.source_path)};
  }
  if (!config.primary_mysql.set) {
    throw CouldNot{fmt::format(
        "{} has no [primary_mysql] section: verify needs the primary's database (host, port, "
        "user, password or socket, as [mysql])",
        config.source_path)};
  }
  const std::string state = config.node.state_dir;
  if (!DaemonRunning(state)) {
    throw CouldNot{fmt::format(
        "replsyncd is not running with {}: verify compares at a point the running applier "
        "reaches; start it first",
        config.source_path)};
  }
  const auto& pm = config.primary_mysql;
  auto primary = Open(Options(pm.host, pm.port, pm.user, pm.password, pm.socket), "primary");
  auto marker = Open(Options(pm.host, pm.port, pm.user, pm.password, pm.socket), "primary");
  auto secondary = Open(Options(config.mysql.host, config.mysql.port, config.mysql.user,
                                config.mysql.password, config.mysql.socket),
                        "secondary");
  Must(marker->Execute(
           fmt::format("CREATE DATABASE IF NOT EXISTS {}", apply::QuoteIdentifier(kVerifySchema))),
       "create the verify marker schema on the primary");
  Must(marker->Execute(fmt::format(
           "CREATE TABLE IF NOT EXISTS {}.marker (id INT PRIMARY KEY, token VARCHAR(64), "
           "at DATETIME(6)) ENGINE=InnoDB",
           apply::QuoteIdentifier(kVerifySchema))),
       "create the verify marker table on the primary");

  // 1. Hold the secondary's applier where it is.
  const std::string barrier = state + "/verify.barrier";
  const std::string paused = state + "/verify.paused";
  const std::string token = RandomToken();
  BarrierGuard guard(barrier);
  Must(WriteAtomically(barrier, fmt::format("token {}\nstop_before now\n", token)),
       "write verify's barrier");
  WaitPaused(paused, token, "now", options.barrier_timeout_s);

  // 2. The primary's snapshot and its binlog position P.
  for (auto* s : {primary.get(), secondary.get()}) {
    Must(s->Execute("SET SESSION time_zone='+00:00'"), "set up the verify session");
    Must(s->Execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
         "set up the verify session");
  }
  Must(primary->Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"),
       "start the primary's snapshot");
  auto status = MustQuery(*primary, "SHOW STATUS LIKE 'binlog_snapshot_%'",
                          "read the primary snapshot's binlog position");
  std::string file, offset;
  for (const auto& row : status) {
    if (row.size() < 2 || !row[0] || !row[1]) continue;
    if (*row[0] == "Binlog_snapshot_file") file = *row[1];
    if (*row[0] == "Binlog_snapshot_position") offset = *row[1];
  }
  if (file.empty() || offset.empty()) {
    throw CouldNot{"the primary reports no binlog snapshot position (is it MariaDB with log_bin?)"};
  }
  const std::string stop = file + ":" + offset;
  // 3. A transaction past P, so that the applier surely meets one and holds right there.
  Must(marker->Execute(fmt::format("REPLACE INTO {}.marker VALUES (1, {}, NOW(6))",
                                   apply::QuoteIdentifier(kVerifySchema),
                                   apply::QuoteString(token))),
       "write verify's marker on the primary");
  // 4. The applier applies what comes before P and holds; the secondary's snapshot there.
  Must(WriteAtomically(barrier, fmt::format("token {}\nstop_before {}\n", token, stop)),
       "move verify's barrier");
  auto at = WaitPaused(paused, token, stop, options.barrier_timeout_s);
  Must(secondary->Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"),
       "start the secondary's snapshot");
  guard.Lift();

  // 5. Every replicated table, compared between the two snapshots.
  std::string filter;
  if (!config.mysql.databases.empty()) {
    for (const auto& db : config.mysql.databases) {
      filter += (filter.empty() ? "" : ", ") + apply::QuoteString(db);
    }
    filter = "TABLE_SCHEMA IN (" + filter + ")";
  } else {
    filter =
        "TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', "
        "'replsync', 'replsync_verify')";
  }
  std::set<std::pair<std::string, std::string>> tables;
  for (auto* s : {primary.get(), secondary.get()}) {
    auto rows = MustQuery(*s,
                          "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE "
                          "TABLE_TYPE = 'BASE TABLE' AND " +
                              filter,
                          "list the replicated tables");
    for (const auto& r : rows) tables.emplace(r[0].value_or(""), r[1].value_or(""));
  }
  Report report;
  const bool tty = isatty(fileno(stderr)) != 0 && !options.json;
  size_t done = 0;
  for (const auto& [db, table] : tables) {
    ++done;
    if (tty) {
      std::fprintf(stderr, "\r[%zu/%zu] %s.%s ...\033[K", done, tables.size(), db.c_str(),
                   table.c_str());
    }
    TableVerifyOptions topts;
    Result<TableVerifyResult> r = VerifyTable(primary.get(), secondary.get(), db, table, topts);
    TableVerifyResult result;
    if (r.ok()) {
      result = std::move(r).value();
    } else {
      result.db = db;
      result.table = table;
      result.status = "unverified";
      result.error = r.status().message();
    }
    if (result.status != "equal") report.consistent = false;
    if (result.status == "unverified") report.unverified = true;
    report.tables.push_back(std::move(result));
  }
  if (tty) std::fprintf(stderr, "\r\033[K");
  (void)at;
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
