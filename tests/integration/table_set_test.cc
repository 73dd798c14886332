// Tables entering and leaving the replicated set while a pair runs (schemas/bootstrap.md "Tables
// entering and leaving the set"), with [mysql] databases = ["app"] and a database `other` on the
// primary only: `RENAME TABLE other.y TO app.y` (rows before and after), `CREATE TABLE app.x LIKE
// other.z`, `ALTER TABLE app.x0 RENAME other.x0moved`, and a table moved out and back in, while a
// writer keeps changing app. The secondary never stops, ends with the primary's rows (CHECKSUM
// TABLE of every app table, and verify exits 0), and the table that left is gone there.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "sync/mysql/mysql_session.h"
#include "tests/harness/node_pair_test.h"

namespace replsync {
namespace {

using namespace std::chrono_literals;

class TableSetTest : public testing::NodePairTest {
 protected:
  TableSetTest() : NodePairTest({"app"}, "tableset") {}

  std::string One(testing::MariadbServer& server, const std::string& sql) {
    auto rows = server.Query(sql);
    if (!rows.ok() || rows->empty() || rows->front().empty()) return "?";
    return rows->front()[0];
  }

  void ExpectFollowing() {
    std::optional<NodeStatus> status = ReadStatus("secondary");
    ASSERT_TRUE(status && status->secondary) << StatusText("secondary");
    EXPECT_NE(status->secondary->applier_state, "error") << StatusText("secondary") << "\n"
                                                         << Tail("secondary", 40);
  }
};

TEST_F(TableSetTest, TablesEnterAndLeaveTheSetWhileThePairRuns) {
  testing::MariadbServer& p = *primary_;
  testing::MariadbServer& s = *secondary_;
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  ASSERT_NO_FATAL_FAILURE(
      Sql(p,
          "CREATE DATABASE app; CREATE TABLE app.w (id INT AUTO_INCREMENT PRIMARY KEY, v INT);"
          "CREATE TABLE app.x0 (id INT PRIMARY KEY, v VARCHAR(20));"
          "INSERT INTO app.x0 SELECT seq, CONCAT('x0 ', seq) FROM seq.seq_1_to_100"));
  ASSERT_NO_FATAL_FAILURE(
      Sql(p,
          "CREATE DATABASE other;"
          "CREATE TABLE other.y (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40), KEY (v));"
          "INSERT INTO other.y (v) SELECT CONCAT('before ', seq) FROM seq.seq_1_to_20000;"
          "CREATE TABLE other.z (id INT PRIMARY KEY, note TEXT) ENGINE=InnoDB;"
          "INSERT INTO other.z VALUES (1, 'never copied: LIKE copies the definition')"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT COUNT(*) FROM app.x0"));

  // A writer on a table that stays in the set, and on app.y whenever it exists.
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    MysqlThreadScope scope;
    auto session = OpenRootSession(p.port());
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    for (int i = 0; !stop; ++i) {
      (void)(*session)->Execute(fmt::format("INSERT INTO app.w (v) VALUES ({})", i));
      (void)(*session)->Execute(
          fmt::format("UPDATE app.y SET v = 'writer {}' WHERE id = {}", i, 1 + i % 20000));
      ++written;
      std::this_thread::sleep_for(5ms);
    }
  });

  // In: a table renamed from outside, with rows before and after.
  ASSERT_NO_FATAL_FAILURE(Sql(p, "RENAME TABLE other.y TO app.y"));
  ASSERT_NO_FATAL_FAILURE(
      Sql(p,
          "INSERT INTO app.y (v) SELECT CONCAT('after ', seq) FROM seq.seq_1_to_500;"
          "DELETE FROM app.y WHERE id % 97 = 0"));
  // In: a table created like one outside.
  ASSERT_NO_FATAL_FAILURE(Sql(p, "CREATE TABLE app.x LIKE other.z"));
  ASSERT_NO_FATAL_FAILURE(Sql(p, "INSERT INTO app.x VALUES (1, 'one'), (2, 'two')"));
  // Out: a table renamed away.
  ASSERT_NO_FATAL_FAILURE(Sql(p, "ALTER TABLE app.x0 RENAME other.x0moved"));
  ASSERT_NO_FATAL_FAILURE(Sql(p, "INSERT INTO other.x0moved VALUES (1000, 'outside now')"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT COUNT(*) FROM app.x"));
  ASSERT_NO_FATAL_FAILURE(
      WaitSame("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND "
               "TABLE_NAME = 'x0'"));
  EXPECT_EQ(One(s,
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' "
                "AND TABLE_NAME = 'x0'"),
            "0");
  // Out and back in, changed while outside.
  ASSERT_NO_FATAL_FAILURE(Sql(p, "ALTER TABLE app.y RENAME other.y2"));
  ASSERT_NO_FATAL_FAILURE(Sql(p, "UPDATE other.y2 SET v = 'changed outside' WHERE id <= 300"));
  ASSERT_NO_FATAL_FAILURE(Sql(p, "RENAME TABLE other.y2 TO app.y"));
  ASSERT_NO_FATAL_FAILURE(Sql(p, "INSERT INTO app.y (v) VALUES ('back in')"));
  std::this_thread::sleep_for(1s);
  stop = true;
  writer.join();
  EXPECT_GT(written.load(), 20) << "the writer barely wrote: the test proved little";

  ASSERT_NO_FATAL_FAILURE(ExpectTablesConverge(120s));
  ASSERT_NO_FATAL_FAILURE(ExpectFollowing());
  // What changed while the table was outside came in with it (the writer changed some since).
  const std::string outside = "SELECT COUNT(*) FROM app.y WHERE v = 'changed outside'";
  EXPECT_EQ(One(s, outside), One(p, outside));
  EXPECT_GT(std::stoi(One(p, outside)), 0);
  EXPECT_EQ(One(s, "SELECT COUNT(*) FROM app.x"), "2");
  EXPECT_EQ(One(s, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'other'"),
            "0")
      << "the secondary holds nothing outside its set";
  const CommandRun verify = RunReplsync("verify", "");
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(Tail("secondary", 400).find("enters the replicated set"), std::string::npos);
  EXPECT_NE(Tail("secondary", 400).find("leaves the replicated set"), std::string::npos);
  // Every table that entered was copied: the status (written every second) says none enters.
  WaitForStatus("secondary", "no table entering the set", [](const NodeStatus& status) {
    return status.secondary && status.secondary->entering.empty();
  });

  // Later changes to the tables that came in keep replicating.
  ASSERT_NO_FATAL_FAILURE(Sql(p,
                              "UPDATE app.y SET v = 'later' WHERE id = 1; "
                              "INSERT INTO app.x VALUES (3, 'three')"));
  ASSERT_NO_FATAL_FAILURE(
      WaitSame("SELECT CONCAT(v, (SELECT COUNT(*) FROM app.x)) FROM app.y "
               "WHERE id = 1"));
}

}  // namespace
}  // namespace replsync
