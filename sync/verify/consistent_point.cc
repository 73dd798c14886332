#include "sync/verify/consistent_point.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "sync/key_value_file.h"
#include "sync/node/status_file.h"

namespace replsync::verify {

namespace {

using Clock = std::chrono::steady_clock;

// An error that makes the point impossible; caught in EstablishConsistentPoint and returned as a
// Status (it never leaves this file).
struct CouldNot {
  std::string reason;
};

std::string RandomToken() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

MysqlOptions Options(const std::string& host, uint16_t port, const std::string& user,
                            const std::string& password, const std::string& socket) {
  MysqlOptions o;
  o.host = host;
  o.port = port;
  o.user = user;
  o.password = password;
  o.socket = socket;
  o.connect_timeout = std::chrono::seconds(10);
  return o;
}

std::unique_ptr<MysqlSession> Open(const MysqlOptions& o, const char* which) {
  auto s = MysqlSession::Open(o);
  if (!s.ok()) {
    throw CouldNot{
        fmt::format("cannot connect to the {} database: {}", which, s.status().message())};
  }
  return std::move(s).value();
}

void Must(const Status& st, const char* what) {
  if (!st.ok()) throw CouldNot{fmt::format("{}: {}", what, st.message())};
}

std::vector<MysqlSession::Row> MustQuery(MysqlSession& s, const std::string& sql,
                                                const char* what) {
  auto rows = s.Query(sql, what);
  if (!rows.ok()) throw CouldNot{fmt::format("{}: {}", what, rows.status().message())};
  return std::move(rows).value();
}

// Writes verify's barrier file: this process' token and stop, and its pid for the humans who read
// it (the applier lifts the barrier of a verify that died, kill -9, when none holds verify.lock).
Status WriteBarrier(const std::string& path, const std::string& token, const std::string& stop) {
  return WriteFileAtomically(
      path, fmt::format("token {}\nstop_before {}\npid {}\n", token, stop, getpid()),
      "verify's barrier");
}

// Waits until the applier's paused file names `token` and `stop`; returns its values.
std::map<std::string, std::string> WaitPaused(const std::string& path, const std::string& token,
                                              const std::string& stop, int timeout_s) {
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  while (Clock::now() < deadline) {
    auto kv = ReadKeyValueFile(path).value_or(std::map<std::string, std::string>());
    if (kv["token"] == token && kv["stop_before"] == stop) return kv;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  throw CouldNot{fmt::format(
      "the secondary's applier did not reach verify's barrier (before {}) within {} s; is it "
      "applying (replsync status), or far behind the primary?",
      stop, timeout_s)};
}

}  // namespace

namespace {

ConsistentPoint Establish(const NodeConfig& config, const ConsistentPointOptions& options) {
  const std::string& command = options.command;
  if (config.node.role != NodeRole::kSecondary) {
    throw CouldNot{
        fmt::format("{} is a primary's configuration; run {} with the "
                    "secondary's (it compares the secondary with its primary)",
                    config.source_path, command)};
  }
  if (!config.primary_mysql.set) {
    throw CouldNot{fmt::format(
        "{} has no [primary_mysql] section: {} needs the primary's database (host, port, "
        "user, password or socket, as [mysql])",
        config.source_path, command)};
  }
  const std::string state = config.node.state_dir;
  if (!ReplsyncdRunning(state)) {
    throw CouldNot{
        fmt::format("replsyncd is not running with {}: {} compares at a point the running applier "
                    "reaches; start it first",
                    config.source_path, command)};
  }
  ConsistentPoint point;
  const auto& pm = config.primary_mysql;
  point.secondary_options = Options(config.mysql.host, config.mysql.port, config.mysql.user,
                                    config.mysql.password, config.mysql.socket);
  point.primary = Open(Options(pm.host, pm.port, pm.user, pm.password, pm.socket), "primary");
  auto marker = Open(Options(pm.host, pm.port, pm.user, pm.password, pm.socket), "primary");
  point.secondary = Open(point.secondary_options, "secondary");
  MysqlSession* primary = point.primary.get();
  MysqlSession* secondary = point.secondary.get();
  Must(marker->Execute(
           fmt::format("CREATE DATABASE IF NOT EXISTS {}", QuoteIdentifier(kVerifySchema))),
       "create the verify marker schema on the primary");
  Must(marker->Execute(fmt::format(
           "CREATE TABLE IF NOT EXISTS {}.marker (id INT PRIMARY KEY, token VARCHAR(64), "
           "at DATETIME(6)) ENGINE=InnoDB",
           QuoteIdentifier(kVerifySchema))),
       "create the verify marker table on the primary");

  // 1. Hold the secondary's applier where it is.
  const std::string barrier = state + "/verify.barrier";
  const std::string paused = state + "/verify.paused";
  const std::string token = RandomToken();
  auto guard = std::make_unique<VerifyBarrier>(barrier);
  Must(WriteBarrier(barrier, token, "now"), "write verify's barrier");
  WaitPaused(paused, token, "now", options.barrier_timeout_s);

  // 2. The primary's snapshot and its binlog position P.
  for (auto* s : {primary, secondary}) {
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
  point.position = file + ":" + offset;
  const std::string& stop = point.position;
  // 3. A transaction past P, so that the applier surely meets one and holds right there.
  Must(marker->Execute(fmt::format("REPLACE INTO {}.marker VALUES (1, {}, NOW(6))",
                                   QuoteIdentifier(kVerifySchema),
                                   QuoteString(token))),
       "write verify's marker on the primary");
  // 4. The applier applies what comes before P and holds; the secondary's snapshot there.
  Must(WriteBarrier(barrier, token, stop), "move verify's barrier");
  WaitPaused(paused, token, stop, options.barrier_timeout_s);
  Must(secondary->Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"),
       "start the secondary's snapshot");
  if (options.hold_barrier) {
    point.barrier = std::move(guard);
  } else {
    guard->Lift();
  }

  // 5. Every replicated table.
  std::string filter;
  if (!config.mysql.databases.empty()) {
    for (const auto& db : config.mysql.databases) {
      filter += (filter.empty() ? "" : ", ") + QuoteString(db);
    }
    filter = "TABLE_SCHEMA IN (" + filter + ")";
  } else {
    filter =
        "TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys', "
        "'replsync', 'replsync_verify')";
  }
  std::set<std::pair<std::string, std::string>> tables;
  for (auto* s : {primary, secondary}) {
    auto rows = MustQuery(*s,
                          "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE "
                          "TABLE_TYPE = 'BASE TABLE' AND " +
                              filter,
                          "list the replicated tables");
    for (const auto& r : rows) tables.emplace(r[0].value_or(""), r[1].value_or(""));
  }
  point.tables.assign(tables.begin(), tables.end());
  return point;
}

}  // namespace

Result<FileLock> LockVerify(const std::string& state_dir) {
  Result<FileLock> lock = FileLock::Acquire(state_dir + "/verify.lock", FileLock::kDefaultWait,
                                            fmt::format("{}\n", getpid()));
  if (lock.ok()) return lock;
  switch (lock.status().code()) {
    case Status::Code::kNotFound:
      return Status::Aborted(fmt::format(
          "the state folder {} does not exist: replsyncd has not run with this configuration; "
          "start it first",
          state_dir));
    case Status::Code::kAborted:
      return Status::Aborted(fmt::format(
          "another replsync verify or repair (pid {}) is running on this node; wait for it to end",
          FileLock::HolderText(state_dir + "/verify.lock")));
    default:
      return lock.status();
  }
}

std::string NewBarrierToken() { return RandomToken(); }

Result<std::map<std::string, std::string>> HoldApplier(const std::string& state_dir,
                                                       const std::string& token,
                                                       const std::string& stop, int timeout_s) {
  const std::string barrier = state_dir + "/verify.barrier";
  RS_RETURN_IF_ERROR(WriteBarrier(barrier, token, stop));
  try {
    return WaitPaused(state_dir + "/verify.paused", token, stop, timeout_s);
  } catch (const CouldNot& e) {
    return Status::Aborted(e.reason);
  }
}

void VerifyBarrier::Lift() {
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

Result<ConsistentPoint> EstablishConsistentPoint(const NodeConfig& config,
                                                 const ConsistentPointOptions& options) {
  try {
    return Establish(config, options);
  } catch (const CouldNot& e) {
    return Status::Aborted(e.reason);
  }
}

}  // namespace replsync::verify
