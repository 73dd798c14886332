#include "sync/verify/consistent_point.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <set>

#include "sync/node/status_file.h"

namespace replsync::verify {

namespace {

std::string RandomToken() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

// Every failure to establish the point is Aborted with the reason (for "could not verify").
Result<std::unique_ptr<MysqlSession>> Open(const MysqlOptions& o, const char* which) {
  auto s = MysqlSession::Open(o);
  if (!s.ok()) {
    return Status::Aborted(
        fmt::format("cannot connect to the {} database: {}", which, s.status().message()));
  }
  return s;
}

Status Must(const Status& st, const char* what) {
  if (!st.ok()) return Status::Aborted(fmt::format("{}: {}", what, st.message()));
  return Status::Ok();
}

Result<std::vector<MysqlSession::Row>> MustQuery(MysqlSession& s, const std::string& sql,
                                                 const char* what) {
  auto rows = s.Query(sql, what);
  if (!rows.ok()) return Status::Aborted(fmt::format("{}: {}", what, rows.status().message()));
  return rows;
}

// Writes this process' barrier: its pid is for the humans who read the file (the applier lifts
// the barrier of a verify that died, kill -9, when none holds verify.lock).
Status WriteOurBarrier(const std::string& path, const std::string& token, const StopBefore& stop) {
  return WriteBarrierFile(path, VerifyBarrier{token, stop, static_cast<uint64_t>(getpid())});
}

// Waits until the applier's paused file names `token` and `stop`; returns what it says.
Result<PausedAt> WaitPaused(const std::string& path, const std::string& token,
                            const StopBefore& stop, int timeout_s, Clock& clock) {
  const auto deadline = clock.Now() + std::chrono::seconds(timeout_s);
  while (clock.Now() < deadline) {
    // Not there yet, or another barrier's: the applier has not got there.
    Result<PausedAt> paused = ReadPausedFile(path);
    if (paused.ok() && paused->token == token && paused->stop == stop) return paused;
    clock.SleepFor(std::chrono::milliseconds(2));
  }
  return Status::Aborted(fmt::format(
      "the secondary's applier did not reach verify's barrier (before {}) within {} s; is it "
      "applying (replsync status), or far behind the primary?",
      stop.ToString(), timeout_s));
}

// Checks that `config` is a running secondary's that names its primary's database.
Status CheckConfig(const NodeConfig& config, const std::string& command) {
  if (config.node.role != NodeRole::kSecondary) {
    return Status::Aborted(
        fmt::format("{} is a primary's configuration; run {} with the "
                    "secondary's (it compares the secondary with its primary)",
                    config.source_path, command));
  }
  if (!config.primary_mysql.set) {
    return Status::Aborted(fmt::format(
        "{} has no [primary_mysql] section: {} needs the primary's database (host, port, "
        "user, password or socket, as [mysql])",
        config.source_path, command));
  }
  if (!ReplsyncdRunning(config.node.state_dir)) {
    return Status::Aborted(
        fmt::format("replsyncd is not running with {}: {} compares at a point the running applier "
                    "reaches; start it first",
                    config.source_path, command));
  }
  return Status::Ok();
}

// Every replicated base table on either server, (schema, table), sorted.
Result<std::vector<std::pair<std::string, std::string>>> ListTables(
    const NodeConfig& config, const std::vector<MysqlSession*>& sessions) {
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
  for (MysqlSession* s : sessions) {
    RS_ASSIGN_OR_RETURN(auto rows,
                        MustQuery(*s,
                                  "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
                                  "WHERE TABLE_TYPE = 'BASE TABLE' AND " +
                                      filter,
                                  "list the replicated tables"));
    for (const auto& r : rows) tables.emplace(r[0].value_or(""), r[1].value_or(""));
  }
  return std::vector<std::pair<std::string, std::string>>(tables.begin(), tables.end());
}

}  // namespace

Result<FileLock> LockVerify(const std::string& state_dir) {
  Result<FileLock> lock = FileLock::Acquire(VerifyLockPath(state_dir), FileLock::kDefaultWait,
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
          FileLock::HolderText(VerifyLockPath(state_dir))));
    default:
      return lock.status();
  }
}

std::string NewBarrierToken() { return RandomToken(); }

BarrierGuard::BarrierGuard(const std::string& state_dir) : path_(BarrierFilePath(state_dir)) {}

Status BarrierGuard::Move(const std::string& token, const StopBefore& stop) {
  return WriteOurBarrier(path_, token, stop);
}

void BarrierGuard::Lift() { (void)RemoveBarrierFile(path_); }

Result<PausedAt> HoldApplier(const std::string& state_dir, const std::string& token,
                             const StopBefore& stop, const HoldOptions& options) {
  RS_RETURN_IF_ERROR(WriteOurBarrier(BarrierFilePath(state_dir), token, stop));
  return WaitPaused(PausedFilePath(state_dir), token, stop, options.timeout_s, *options.clock);
}

Result<ConsistentPoint> EstablishConsistentPoint(const NodeConfig& config,
                                                 const ConsistentPointOptions& options) {
  const std::string& command = options.command;
  RS_RETURN_IF_ERROR(CheckConfig(config, command));
  const std::string& state = config.node.state_dir;
  ConsistentPoint point;
  point.secondary_options = MysqlOptionsOf(config.mysql);
  const MysqlOptions primary_options = MysqlOptionsOf(config.primary_mysql);
  RS_ASSIGN_OR_RETURN(point.primary, Open(primary_options, "primary"));
  RS_ASSIGN_OR_RETURN(std::unique_ptr<MysqlSession> marker, Open(primary_options, "primary"));
  RS_ASSIGN_OR_RETURN(point.secondary, Open(point.secondary_options, "secondary"));
  MysqlSession* primary = point.primary.get();
  MysqlSession* secondary = point.secondary.get();
  RS_RETURN_IF_ERROR(Must(marker->Execute(fmt::format("CREATE DATABASE IF NOT EXISTS {}",
                                                      QuoteIdentifier(kVerifySchema))),
                          "create the verify marker schema on the primary"));
  RS_RETURN_IF_ERROR(
      Must(marker->Execute(fmt::format(
               "CREATE TABLE IF NOT EXISTS {}.marker (id INT PRIMARY KEY, token VARCHAR(64), "
               "at DATETIME(6)) ENGINE=InnoDB",
               QuoteIdentifier(kVerifySchema))),
           "create the verify marker table on the primary"));

  // 1. Hold the secondary's applier where it is. The guard removes the barrier on every error.
  const std::string paused = PausedFilePath(state);
  const std::string token = RandomToken();
  auto guard = std::make_unique<BarrierGuard>(state);
  RS_RETURN_IF_ERROR(Must(guard->Move(token, StopBefore::Now()), "write verify's barrier"));
  RS_RETURN_IF_ERROR(
      WaitPaused(paused, token, StopBefore::Now(), options.barrier_timeout_s, *options.clock)
          .status());

  // 2. The primary's snapshot and its binlog position P.
  for (auto* s : {primary, secondary}) {
    RS_RETURN_IF_ERROR(
        Must(s->Execute("SET SESSION time_zone='+00:00'"), "set up the verify session"));
    RS_RETURN_IF_ERROR(Must(s->Execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
                            "set up the verify session"));
  }
  RS_RETURN_IF_ERROR(Must(primary->Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"),
                          "start the primary's snapshot"));
  RS_ASSIGN_OR_RETURN(auto status, MustQuery(*primary, "SHOW STATUS LIKE 'binlog_snapshot_%'",
                                             "read the primary snapshot's binlog position"));
  std::string file, offset;
  for (const auto& row : status) {
    if (row.size() < 2 || !row[0] || !row[1]) continue;
    if (*row[0] == "Binlog_snapshot_file") file = *row[1];
    if (*row[0] == "Binlog_snapshot_position") offset = *row[1];
  }
  Result<BinlogPosition> at = BinlogPosition::Parse(file + ":" + offset);
  if (file.empty() || offset.empty() || !at.ok()) {
    return Status::Aborted(
        "the primary reports no binlog snapshot position (is it MariaDB with log_bin?)");
  }
  point.position = file + ":" + offset;
  const StopBefore stop = StopBefore::At(*at);
  // 3. A transaction past P, so that the applier surely meets one and holds right there.
  RS_RETURN_IF_ERROR(
      Must(marker->Execute(fmt::format("REPLACE INTO {}.marker VALUES (1, {}, NOW(6))",
                                       QuoteIdentifier(kVerifySchema), QuoteString(token))),
           "write verify's marker on the primary"));
  // 4. The applier applies what comes before P and holds; the secondary's snapshot there.
  RS_RETURN_IF_ERROR(Must(guard->Move(token, stop), "move verify's barrier"));
  RS_RETURN_IF_ERROR(
      WaitPaused(paused, token, stop, options.barrier_timeout_s, *options.clock).status());
  RS_RETURN_IF_ERROR(Must(secondary->Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"),
                          "start the secondary's snapshot"));
  if (options.hold_barrier) {
    point.barrier = std::move(guard);
  } else {
    guard->Lift();
  }

  // 5. Every replicated table.
  RS_ASSIGN_OR_RETURN(point.tables, ListTables(config, {primary, secondary}));
  return point;
}

}  // namespace replsync::verify
