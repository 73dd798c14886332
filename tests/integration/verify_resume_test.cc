// `replsync verify` resumed after an interruption, and its throttle, end to end: two real MariaDB
// servers, replsyncd on each, the command run as a user would. The interruption is verify's test
// hook REPLSYNC_VERIFY_STOP_AFTER_CHUNKS (exit 3 after N chunks, progress recorded), standing in
// for a kill.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "tests/harness/node_pair_test.h"

namespace replsync {
namespace {

// Per table: status, rows, missing, extra, changed.
using Totals = std::map<std::string, std::string>;

class VerifyResumeTest : public testing::NodePairTest {
 protected:
  VerifyResumeTest() : NodePairTest({"app"}, "verify_resume") {}

  CommandRun Verify(const std::string& flags, const std::string& env = "") {
    return RunReplsync("verify", flags, env);
  }

  static Totals TotalsOf(const CommandRun& run) {
    Totals totals;
    rapidjson::Document doc;
    doc.Parse(run.out.c_str());
    EXPECT_FALSE(doc.HasParseError()) << run.out << run.err;
    if (doc.HasParseError() || !doc.HasMember("tables")) return totals;
    for (const auto& t : doc["tables"].GetArray()) {
      totals[t["table"].GetString()] =
          fmt::format("{} rows={} missing={} extra={} changed={}", t["status"].GetString(),
                      t["rows"].GetUint64(), t["missing_rows"].GetUint64(),
                      t["extra_rows"].GetUint64(), t["changed_rows"].GetUint64());
    }
    return totals;
  }


  std::string ProgressPath() const { return dir_ + "/secondary-state/verify.progress"; }
};

TEST_F(VerifyResumeTest, ResumedVerifySkipsWhatWasFinishedAndReportsTheSameTotals) {
  StartBoth();
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, R"sql(
CREATE DATABASE app;
USE app;
CREATE TABLE app.a (id INT PRIMARY KEY, v VARCHAR(40));
INSERT INTO app.a SELECT seq, MD5(seq) FROM seq_1_to_20000;
CREATE TABLE app.b (id INT PRIMARY KEY, v VARCHAR(40), d DOUBLE);
INSERT INTO app.b SELECT seq, MD5(seq), seq / 7e0 FROM seq_1_to_60000;
CREATE TABLE app.c (txt VARCHAR(40), n INT);
INSERT INTO app.c SELECT 'x', seq % 10 FROM seq_1_to_100;
)sql"));
  WaitSame("SELECT COUNT(*) FROM app.c");
  WaitSame("SELECT COUNT(*) FROM app.b");
  // Behind replication's back: a difference in every table, one in b before and one after the
  // point where the first run stops.
  ASSERT_NO_FATAL_FAILURE(Sql(*secondary_, R"sql(
SET SESSION sql_log_bin = 0;
UPDATE app.a SET v = 'changed' WHERE id = 15000;
UPDATE app.b SET v = 'changed' WHERE id = 100;
DELETE FROM app.b WHERE id = 59000;
DELETE FROM app.c WHERE n = 3 LIMIT 1;
)sql"));

  CommandRun full = Verify("--database-only --json");
  ASSERT_EQ(full.exit_code, 1) << full.out << full.err;
  const Totals expected = TotalsOf(full);
  ASSERT_EQ(expected.size(), 3u) << full.out;
  EXPECT_EQ(expected.at("app.b"), "differs rows=60000 missing=1 extra=0 changed=1");
  EXPECT_FALSE(std::filesystem::exists(ProgressPath())) << "a completed verify removes it";

  // Interrupted after three chunks: app.a's two (10,000 rows, then the rest) and app.b's first.
  CommandRun stopped = Verify("--database-only --json", "REPLSYNC_VERIFY_STOP_AFTER_CHUNKS=3");
  ASSERT_EQ(stopped.exit_code, 3) << stopped.out << stopped.err;
  ASSERT_TRUE(std::filesystem::exists(ProgressPath()));

  CommandRun resumed = Verify("--database-only --json --resume");
  EXPECT_EQ(resumed.exit_code, 1) << resumed.out << resumed.err;
  EXPECT_EQ(TotalsOf(resumed), expected) << resumed.out;
  EXPECT_NE(resumed.err.find("app.a: differs, 20000 rows (from the interrupted run)"),
            std::string::npos)
      << resumed.err;
  EXPECT_NE(resumed.err.find("app.b: continued after the interrupted run's 10000 rows"),
            std::string::npos)
      << resumed.err;
  EXPECT_EQ(resumed.err.find("app.c"), std::string::npos) << resumed.err;
  // The report says which results are the interrupted run's.
  EXPECT_NE(resumed.out.find("\"table\":\"app.a\""), std::string::npos) << resumed.out;
  EXPECT_NE(resumed.out.find("\"resumed\":\"finished\""), std::string::npos) << resumed.out;
  EXPECT_NE(resumed.out.find("\"resumed\":\"continued\""), std::string::npos) << resumed.out;
  EXPECT_FALSE(std::filesystem::exists(ProgressPath()));

  // A verify without --resume starts over, whatever was recorded.
  stopped = Verify("--database-only --json", "REPLSYNC_VERIFY_STOP_AFTER_CHUNKS=3");
  ASSERT_EQ(stopped.exit_code, 3) << stopped.out << stopped.err;
  CommandRun again = Verify("--database-only");
  EXPECT_EQ(again.exit_code, 1) << again.out << again.err;
  EXPECT_EQ(again.err.find("interrupted run"), std::string::npos) << again.err;
  EXPECT_NE(again.out.find("3 tables, 80100 rows compared"), std::string::npos) << again.out;

  // A table whose definition changed since the interruption is compared from the start.
  stopped = Verify("--database-only --json", "REPLSYNC_VERIFY_STOP_AFTER_CHUNKS=3");
  ASSERT_EQ(stopped.exit_code, 3) << stopped.out << stopped.err;
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, "ALTER TABLE app.a ADD COLUMN extra INT DEFAULT 7"));
  WaitSame(
      "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND "
      "TABLE_NAME = 'a'");
  resumed = Verify("--database-only --json --resume");
  EXPECT_EQ(resumed.exit_code, 1) << resumed.out << resumed.err;
  EXPECT_EQ(TotalsOf(resumed), expected) << resumed.out;
  EXPECT_EQ(resumed.err.find("app.a: differs, 20000 rows (from the interrupted run)"),
            std::string::npos)
      << resumed.err;
  EXPECT_NE(resumed.err.find("app.b: continued"), std::string::npos) << resumed.err;
}

TEST_F(VerifyResumeTest, VerifyWaitsWhileThePrimaryIsBusy) {
  StartBoth();
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, R"sql(
CREATE DATABASE app;
USE app;
CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(40));
INSERT INTO app.t SELECT seq, MD5(seq) FROM seq_1_to_5000;
)sql"));
  WaitSame("SELECT COUNT(*) FROM app.t");

  // Idle servers: a limit of 1 (verify's own session) lets it through at once.
  CommandRun idle = Verify("--database-only --json --max-running 1 --max-wait 30");
  ASSERT_EQ(idle.exit_code, 0) << idle.out << idle.err;
  EXPECT_LT(idle.seconds, 10.0) << idle.err;
  EXPECT_EQ(idle.err.find("waiting"), std::string::npos) << idle.err;

  // `count` queries sleeping `seconds` on the primary, each on its own session.
  auto sleep_on_primary = [this](int count, int seconds) {
    std::vector<std::thread> sleepers;
    for (int i = 0; i < count; ++i) {
      sleepers.emplace_back([this, seconds] {
        MysqlThreadScope scope;
        MysqlOptions o;
        o.port = primary_->port();
        o.user = "root";
        auto session = MysqlSession::Open(o);
        ASSERT_TRUE(session.ok()) << session.status().ToString();
        auto slept = (*session)->Query(fmt::format("SELECT SLEEP({})", seconds));
        EXPECT_TRUE(slept.ok()) << slept.status().ToString();
      });
    }
    return sleepers;
  };

  // Three sleeping queries held open on the primary for 3 s.
  std::vector<std::thread> sleepers = sleep_on_primary(3, 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CommandRun busy = Verify("--database-only --json --max-running 1 --max-wait 30");
  for (auto& t : sleepers) t.join();
  EXPECT_EQ(busy.exit_code, 0) << busy.out << busy.err;
  EXPECT_NE(busy.out.find("\"consistent\":true"), std::string::npos) << busy.out;
  EXPECT_GE(busy.seconds, 2.0) << busy.err;
  EXPECT_NE(busy.err.find(
                "app.t: waiting while the servers are busy (primary: 3 other queries running > 1)"),
            std::string::npos)
      << busy.err;
  EXPECT_EQ(busy.err.find("going on anyway"), std::string::npos) << busy.err;

  // The wait is bounded: past --max-wait verify goes on with a warning.
  sleepers = sleep_on_primary(2, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CommandRun bounded = Verify("--database-only --json --max-running 1 --max-wait 1");
  for (auto& t : sleepers) t.join();
  EXPECT_EQ(bounded.exit_code, 0) << bounded.out << bounded.err;
  EXPECT_LT(bounded.seconds, 3.5) << bounded.err;
  EXPECT_NE(bounded.err.find("going on anyway"), std::string::npos) << bounded.err;
}

}  // namespace
}  // namespace replsync
