// `replsync verify` end to end: two real MariaDB servers, replsyncd on each, the command run as a
// user would (a real process, its exit code and JSON). Differences planted on the secondary
// behind replication's back must be reported exactly; verify under load on the primary must find
// no difference (the barrier makes both snapshots show the same point).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include "tests/harness/node_pair_test.h"

namespace replsync {
namespace {

struct VerifyRun {
  int exit_code = -1;
  std::string out;
};

class VerifyTest : public testing::NodePairTest {
 protected:
  VerifyTest() : NodePairTest({"app", "sbtest"}, "verify") {}

  VerifyRun Verify(const std::string& flags = "--json --database-only") {
    VerifyRun run;
    const std::string cmd =
        fmt::format("{}/tools/replsync verify --config {}/secondary.toml {} 2>&1",
                    REPLSYNC_BINARY_DIR, dir_, flags);
    FILE* pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) return run;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) run.out.append(buf, n);
    int status = pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
  }

  void Sql(testing::MariadbServer& server, const std::string& sql) {
    Status st = server.Execute(sql);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\nin: " << sql.substr(0, 300);
  }

  // Waits until `query` gives the same answer on both servers.
  void WaitSame(const std::string& query) {
    std::string a, b;
    for (int i = 0; i < 600; ++i) {
      auto ra = primary_->Query(query);
      auto rb = secondary_->Query(query);
      a = ra.ok() && !ra->empty() ? (*ra)[0][0] : "?";
      b = rb.ok() && !rb->empty() ? (*rb)[0][0] : "!";
      if (a == b) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << query << ": primary " << a << ", secondary " << b;
  }

  void StartBoth() {
    primary_daemon_ = StartDaemon("primary");
    ASSERT_TRUE(primary_daemon_);
    WaitForStatus("primary", "\"capture_state\":\"running\"");
    secondary_daemon_ = StartDaemon("secondary");
    ASSERT_TRUE(secondary_daemon_);
  }
};

TEST_F(VerifyTest, ReportsExactlyThePlantedDifferences) {
  StartBoth();
  Sql(*primary_, R"sql(
CREATE DATABASE app;
USE app;
CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2), seen DATETIME(6));
INSERT INTO app.items SELECT seq, CONCAT('item ', seq), seq / 4, '2024-01-01 00:00:00.000001' FROM seq_1_to_3000;
CREATE TABLE app.notes (txt VARCHAR(40), n INT);
INSERT INTO app.notes VALUES ('a', 1), ('a', 1), ('b', 2), ('c', NULL);
CREATE TABLE app.same (k1 INT, k2 VARCHAR(10), v BLOB, PRIMARY KEY (k1, k2));
INSERT INTO app.same VALUES (1, 'x', x'00ff'), (1, 'y', NULL), (2, 'x', '');
)sql");
  WaitSame("SELECT COUNT(*) FROM app.same");

  VerifyRun clean = Verify();
  ASSERT_EQ(clean.exit_code, 0) << clean.out << Tail("secondary");
  EXPECT_NE(clean.out.find("\"consistent\":true"), std::string::npos) << clean.out;

  // Behind replication's back, on the secondary only.
  Sql(*secondary_, R"sql(
SET SESSION sql_log_bin = 0;
UPDATE app.items SET price = price + 1 WHERE id = 100;
DELETE FROM app.items WHERE id = 2000;
INSERT INTO app.items VALUES (5000, 'extra', 1, NULL);
DELETE FROM app.notes WHERE txt = 'a' LIMIT 1;
)sql");
  VerifyRun run = Verify();
  ASSERT_EQ(run.exit_code, 1) << run.out;
  rapidjson::Document doc;
  doc.Parse(run.out.c_str());
  ASSERT_FALSE(doc.HasParseError()) << run.out;
  EXPECT_FALSE(doc["consistent"].GetBool());
  std::map<std::string, const rapidjson::Value*> tables;
  for (const auto& t : doc["tables"].GetArray()) tables[t["table"].GetString()] = &t;
  ASSERT_EQ(tables.count("app.items"), 1u) << run.out;
  const auto& items = *tables["app.items"];
  EXPECT_STREQ(items["status"].GetString(), "differs");
  EXPECT_EQ(items["rows"].GetUint64(), 3000u);
  EXPECT_EQ(items["missing_rows"].GetUint64(), 1u);
  EXPECT_EQ(items["extra_rows"].GetUint64(), 1u);
  EXPECT_EQ(items["changed_rows"].GetUint64(), 1u);
  std::string keys;
  for (const auto& k : items["sample_keys"].GetArray()) keys += std::string(k.GetString()) + " ";
  EXPECT_NE(keys.find("id=100"), std::string::npos) << keys;
  EXPECT_NE(keys.find("id=2000"), std::string::npos) << keys;
  EXPECT_NE(keys.find("id=5000"), std::string::npos) << keys;
  const auto& notes = *tables["app.notes"];
  EXPECT_STREQ(notes["status"].GetString(), "differs");
  EXPECT_EQ(notes["missing_rows"].GetUint64(), 1u);
  EXPECT_EQ(notes["extra_rows"].GetUint64(), 0u);
  EXPECT_STREQ((*tables["app.same"])["status"].GetString(), "equal");

  // Without --database-only this version says it cannot compare files.
  VerifyRun files = Verify("--json");
  EXPECT_EQ(files.exit_code, 2) << files.out;
  EXPECT_NE(files.out.find("--database-only"), std::string::npos) << files.out;
}

TEST_F(VerifyTest, FindsNoDifferenceWhileTheLoadGoesOn) {
  StartBoth();
  Sql(*primary_, "CREATE DATABASE sbtest");
  auto sysbench = [&](const std::string& command, int seconds) {
    return testing::ChildProcess::Start(
        {"/usr/bin/sysbench", "oltp_write_only", "--db-driver=mysql", "--mysql-host=127.0.0.1",
         fmt::format("--mysql-port={}", primary_->port()), "--mysql-user=root", "--mysql-db=sbtest",
         "--tables=2", "--table-size=5000", "--threads=2", fmt::format("--time={}", seconds),
         "--rate=200", "--mysql-ignore-errors=all", command},
        dir_ + "/sysbench.log");
  };
  auto prepare = sysbench("prepare", 0);
  ASSERT_TRUE(prepare.ok());
  auto prepared = (*prepare)->Wait(std::chrono::seconds(120));
  ASSERT_TRUE(prepared && WIFEXITED(*prepared) && WEXITSTATUS(*prepared) == 0);
  WaitSame("SELECT COUNT(*) FROM sbtest.sbtest2");
  auto load = sysbench("run", 20);
  ASSERT_TRUE(load.ok());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  for (int i = 0; i < 2; ++i) {
    VerifyRun run = Verify();
    EXPECT_EQ(run.exit_code, 0) << run.out << Tail("secondary");
    EXPECT_NE(run.out.find("\"consistent\":true"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("\"sbtest.sbtest1\""), std::string::npos) << run.out;
  }
  // The load ran through the verifications.
  auto still = (*load)->Wait(std::chrono::seconds(1));
  EXPECT_FALSE(still.has_value()) << "sysbench ended before the verifications did";
  (*load)->Wait(std::chrono::seconds(60));
}

}  // namespace
}  // namespace replsync
