// End to end: two real MariaDB servers, replsyncd on each (real processes, real ZeroMQ sockets,
// real RocksDB journals), a workload on the primary, and the guarantee that the secondary ends
// with exactly the primary's rows (CHECKSUM TABLE of every replicated table), whatever fails in
// between: kill -9 and SIGTERM of either daemon, crash and restart of either database server,
// the secondary away while the primary keeps changing.
//
// REPLSYNC_FAULT_ROUNDS (default 1) sets how many rounds of faults the fault-injection test runs
// and REPLSYNC_LOAD_SECONDS (default 4) how long each round's sysbench runs; tools/fault_test.sh
// runs the long version.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/child_process.h"
#include "tests/harness/mariadb_server.h"
#include "tests/harness/node_pair_test.h"

namespace replsync {

namespace {

using testing::ChildProcess;
using testing::MariadbServer;
using testing::MariadbServerOptions;
using Rows = std::vector<std::vector<std::string>>;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

class ReplicationTest : public testing::NodePairTest {
 protected:
  ReplicationTest() : NodePairTest({"app", "sbtest"}, "e2e") {}

  // Every base table of the replicated databases on the primary.
  std::vector<std::string> Tables() {
    auto rows = primary_->Query(
        "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables "
        "WHERE table_schema IN ('app', 'sbtest') AND table_type = 'BASE TABLE' ORDER BY 1");
    std::vector<std::string> out;
    if (rows.ok()) {
      for (auto& r : *rows) out.push_back(r[0]);
    }
    return out;
  }

  // CHECKSUM TABLE of `tables` on `server`: table -> checksum ("NULL" when missing).
  std::map<std::string, std::string> Checksums(MariadbServer& server,
                                               const std::vector<std::string>& tables) {
    std::map<std::string, std::string> out;
    for (const auto& t : tables) {
      auto rows = server.Query("CHECKSUM TABLE " + t + " EXTENDED");
      out[t] = rows.ok() && !rows->empty() ? (*rows)[0][1] : "unreadable";
    }
    return out;
  }

  // Waits until every replicated table has the same CHECKSUM on both servers. Fails with the
  // differing tables and the daemons' log tails after `timeout`.
  void ExpectConverged(std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string diff;
    while (true) {
      std::vector<std::string> tables = Tables();
      auto a = Checksums(*primary_, tables);
      auto b = Checksums(*secondary_, tables);
      diff.clear();
      for (const auto& [t, sum] : a) {
        if (b[t] != sum) diff += fmt::format("  {}: primary {} secondary {}\n", t, sum, b[t]);
      }
      if (diff.empty() && !tables.empty()) return;
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ADD_FAILURE() << "the secondary did not converge in " << timeout.count() << " s:\n"
                  << diff << "primary log:\n"
                  << Tail("primary") << "secondary log:\n"
                  << Tail("secondary");
  }

  std::vector<std::string> SysbenchArgs(const std::string& command, int seconds) {
    return {"/usr/bin/sysbench",
            "oltp_write_only",
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            fmt::format("--mysql-port={}", primary_->port()),
            "--mysql-user=root",
            "--mysql-db=sbtest",
            "--tables=2",
            "--table-size=2000",
            "--threads=4",
            fmt::format("--time={}", seconds),
            "--mysql-ignore-errors=all",
            command};
  }

  void SysbenchPrepare() {
    Sql(*primary_, "CREATE DATABASE IF NOT EXISTS sbtest");
    auto child = ChildProcess::Start(SysbenchArgs("prepare", 0), dir_ + "/sysbench.log");
    ASSERT_TRUE(child.ok());
    auto status = (*child)->Wait(std::chrono::seconds(120));
    ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << (*child)->LogTail();
  }

  std::unique_ptr<ChildProcess> SysbenchRun(int seconds) {
    auto child = ChildProcess::Start(SysbenchArgs("run", seconds), dir_ + "/sysbench.log");
    EXPECT_TRUE(child.ok());
    return child.ok() ? std::move(child).value() : nullptr;
  }

  // Changes covering what replication must get exactly right.
  void EdgeWorkload() {
    Sql(*primary_, R"sql(
SET NAMES utf8mb4;
CREATE DATABASE IF NOT EXISTS app;
USE app;
CREATE TABLE types (
  id INT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT,
  mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
  d1 DECIMAL(65,30), d2 DECIMAL(5,2), f FLOAT, dbl DOUBLE,
  dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(3) NULL, y YEAR,
  b1 BIT(1), b64 BIT(64), e ENUM('a','b','c'), st SET('x','y','z'),
  c CHAR(10) CHARACTER SET utf8mb4, vc VARCHAR(300) CHARACTER SET utf8mb4,
  l1 VARCHAR(50) CHARACTER SET latin1, txt TEXT, bin BINARY(4), vb VARBINARY(20), bl LONGBLOB,
  js JSON, g GEOMETRY, gen INT AS (i * 2) VIRTUAL, inv INT INVISIBLE DEFAULT 7
);
SET sql_mode = '';
SET time_zone = '+05:30';
INSERT INTO types (id, ti, tu, si, su, mi, mu, i, iu, bi, bu, d1, d2, f, dbl, dt, tm, dtm, ts, y,
  b1, b64, e, st, c, vc, l1, txt, bin, vb, bl, js, g) VALUES
 (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
  -9223372036854775808, 18446744073709551615, '-12345678901234567890123456789.123456789012345678901234567890',
  -999.99, 3.14, 2.718281828459045, '0000-00-00', '-838:59:58.999999', '2024-02-29 12:34:56.123400',
  '2024-03-01 08:00:00.500', 2155, b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
  'c', 'x,z', 'ünïcødé', '😀 漢字 text', 'café', REPEAT('t', 1000), x'AA', x'00010002', REPEAT(x'00FF', 300000),
  '{"a": [1, 2, {"b": null}]}', ST_GeomFromText('POINT(1 2)')),
 (2, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, '0.000000000000000000000000000001',
  0.00, -0.0, -1e300, '1000-01-01', '838:59:59', '0000-00-00 00:00:00', NULL, 0,
  b'0', b'0', '', '', '', '', '', '', x'', x'', '', '[]', NULL),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
UPDATE types SET vc = CONCAT(vc, ' updated'), bu = bu - 1 WHERE id = 1;

CREATE TABLE nopk (a INT, b VARCHAR(20));
INSERT INTO nopk VALUES (1, 'x'), (1, 'x'), (2, 'y'), (NULL, NULL);
DELETE FROM nopk WHERE a = 1 LIMIT 1;
UPDATE nopk SET b = 'z' WHERE a = 2;

CREATE TABLE ckey (a INT, b VARCHAR(10), v INT, PRIMARY KEY (a, b));
INSERT INTO ckey VALUES (1, 'a', 1), (1, 'b', 2), (2, 'a', 3);
UPDATE ckey SET a = a + 10, b = CONCAT(b, b) WHERE v <= 2;

CREATE TABLE audited (id INT PRIMARY KEY AUTO_INCREMENT, v INT);
CREATE TABLE audit_log (id INT PRIMARY KEY AUTO_INCREMENT, audited_id INT, note VARCHAR(20));
CREATE TRIGGER audited_ins AFTER INSERT ON audited FOR EACH ROW
  INSERT INTO audit_log (audited_id, note) VALUES (NEW.id, 'inserted');
INSERT INTO audited (v) VALUES (1), (2), (3);

CREATE TABLE sp (id INT PRIMARY KEY, v INT);
BEGIN;
INSERT INTO sp VALUES (1, 1);
SAVEPOINT s1;
INSERT INTO sp VALUES (2, 2);
ROLLBACK TO SAVEPOINT s1;
INSERT INTO sp VALUES (3, 3);
COMMIT;
BEGIN;
INSERT INTO sp VALUES (4, 4);
ROLLBACK;

CREATE TABLE myisam_t (id INT PRIMARY KEY, v INT) ENGINE=MyISAM;
INSERT INTO myisam_t VALUES (1, 1), (2, 2);
UPDATE myisam_t SET v = v + 1;

CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(100));
BEGIN;
INSERT INTO big SELECT seq, REPEAT('p', 100) FROM seq_1_to_50000;
COMMIT;
ALTER TABLE big ADD COLUMN extra INT NOT NULL DEFAULT 5;
UPDATE big SET extra = id % 7 WHERE id <= 1000;
RENAME TABLE big TO big_renamed;
CREATE TABLE gone (id INT);
DROP TABLE gone;
TRUNCATE TABLE nopk;
INSERT INTO nopk VALUES (9, 'after truncate');
CREATE INDEX ckey_v ON ckey (v);
)sql");
  }
};

TEST_F(ReplicationTest, EveryKindOfChangeReachesTheSecondaryExactly) {
  StartPrimaryDaemon();
  StartSecondaryDaemon();
  EdgeWorkload();
  SysbenchPrepare();
  auto load = SysbenchRun(EnvInt("REPLSYNC_LOAD_SECONDS", 4));
  ASSERT_TRUE(load);
  load->Wait(std::chrono::seconds(120));
  ExpectConverged(std::chrono::seconds(120));
  // The secondary's triggers did not fire a second time for rows the primary's triggers made.
  auto log = secondary_->Query("SELECT COUNT(*) FROM app.audit_log");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)[0][0], "3");
  // Applied changes stay out of the secondary's own binlog.
  auto gtid = secondary_->Query("SELECT @@gtid_binlog_pos");
  ASSERT_TRUE(gtid.ok());
  EXPECT_EQ((*gtid)[0][0], "") << "the secondary binlogged applied changes";
  StopDaemon(primary_daemon_, SIGTERM);
  StopDaemon(secondary_daemon_, SIGTERM);
}

TEST_F(ReplicationTest, SurvivesKillsCrashesAndOutagesWithNothingLostOrDoubled) {
  const int rounds = EnvInt("REPLSYNC_FAULT_ROUNDS", 1);
  const int seconds = EnvInt("REPLSYNC_LOAD_SECONDS", 4);
  StartPrimaryDaemon();
  StartSecondaryDaemon();
  SysbenchPrepare();
  EdgeWorkload();
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(fmt::format("round {}", round + 1));
    auto pause = [&](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
    // kill -9 of each daemon during load, then a clean SIGTERM of each.
    auto load = SysbenchRun(seconds);
    pause(seconds * 200);
    StopDaemon(primary_daemon_, SIGKILL);
    pause(300);
    StartPrimaryDaemon();
    pause(seconds * 200);
    StopDaemon(secondary_daemon_, SIGKILL);
    pause(300);
    StartSecondaryDaemon();
    pause(seconds * 200);
    StopDaemon(primary_daemon_, SIGTERM);
    StartPrimaryDaemon();
    StopDaemon(secondary_daemon_, SIGTERM);
    StartSecondaryDaemon();
    load->Wait(std::chrono::seconds(seconds + 60));

    // The secondary away while the primary keeps changing.
    StopDaemon(secondary_daemon_, SIGTERM);
    load = SysbenchRun(seconds);
    load->Wait(std::chrono::seconds(seconds + 60));
    StartSecondaryDaemon();

    // Crash and restart the primary's database server under load.
    load = SysbenchRun(seconds);
    pause(seconds * 300);
    primary_->Kill();
    load->Wait(std::chrono::seconds(seconds + 60));
    ASSERT_TRUE(primary_->Restart().ok());
    load = SysbenchRun(seconds);
    pause(seconds * 300);
    // Crash and restart the secondary's database server while it applies.
    secondary_->Kill();
    pause(500);
    ASSERT_TRUE(secondary_->Restart().ok());
    load->Wait(std::chrono::seconds(seconds + 60));
    ExpectConverged(std::chrono::seconds(180));
    if (HasFailure()) return;
  }
  // What an operator runs after such outages: verify finds both databases equal.
  CommandRun verify = RunReplsync("verify", "--json --database-only");
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("\"consistent\":true"), std::string::npos) << verify.out;
  // Both daemons are still the ones started last and stop cleanly.
  StopDaemon(primary_daemon_, SIGTERM);
  StopDaemon(secondary_daemon_, SIGTERM);
}

}  // namespace
}  // namespace replsync
