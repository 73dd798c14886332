// Bootstrap end to end (schemas/bootstrap.md): a primary that already holds data — every column
// type, a table without a key, a 50,000-row table, a self-referencing folder tree, a parent and
// child with a cascading foreign key, views (one on another), a procedure, a function, a trigger,
// an event, a user with grants, a repository of many small files and a 48 MiB one — and an empty
// secondary; `replsync bootstrap` run as a user runs it while a writer keeps changing the
// primary. Afterwards verify exits 0, CHECKSUM TABLE is equal, the objects exist and work on the
// secondary (the event disabled there), and later changes keep replicating. A second bootstrap
// of the now non-empty secondary is refused and changes nothing; a bootstrap whose daemon is
// killed with SIGKILL in the middle of the copy continues when it comes back and loads no chunk
// twice.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "sync/node/node_status.h"
#include "tests/harness/bootstrap_fixture.h"

namespace replsync {
namespace {

using namespace std::chrono_literals;
using testing::MariadbServer;

class BootstrapTest : public testing::BootstrapFixture {
 protected:
  BootstrapTest() : BootstrapFixture("bootstrap") {}
};

TEST_F(BootstrapTest, EmptySecondaryBecomesAnExactFollowingCopyWhileThePrimaryWrites) {
  ASSERT_NO_FATAL_FAILURE(MakePrimaryData(50000));
  ASSERT_NO_FATAL_FAILURE(MakePrimaryFiles(1000));
  ASSERT_NO_FATAL_FAILURE(StartBoth());

  const auto [run, during] =
      RunWhileWriting([this](auto* stop, auto* written) { return StartWriter(stop, written, 100); },
                      "bootstrap", "");
  ASSERT_EQ(run.exit_code, 0) << Explain(run);
  EXPECT_GT(during, 20u) << "the writer barely wrote during the bootstrap: the test proved little";
  EXPECT_NE(run.out.find("done: the secondary holds the primary's data"), std::string::npos)
      << run.out;
  std::printf("replsync bootstrap (%.1f s, %llu writes meanwhile):\n%s", run.seconds,
              static_cast<unsigned long long>(during), run.out.c_str());

  ASSERT_NO_FATAL_FAILURE(ExpectTablesConverge(120s));
  ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(120s));
  const CommandRun verify = RunReplsync("verify", "");
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

  // The schema objects exist and work on the secondary.
  MariadbServer& s = Server("secondary");
  EXPECT_EQ(One(s, "SELECT app.twice(21)"), "42");
  EXPECT_EQ(One(s, "SELECT n FROM app.view_on_view"),
            One(*primary_, "SELECT n FROM app.view_on_view"));
  EXPECT_EQ(One(s, "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'app'"),
            "2");
  EXPECT_EQ(One(s,
                "SELECT ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE "
                "TRIGGER_NAME = 'items_ai'"),
            One(*primary_,
                "SELECT ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE "
                "TRIGGER_NAME = 'items_ai'"));
  EXPECT_EQ(One(s, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_NAME = 'tick'"),
            "SLAVESIDE_DISABLED");
  EXPECT_NE(One(s, "SHOW GRANTS FOR 'report'@'%'").find("GRANT USAGE"), std::string::npos);
  auto grants = s.Query("SHOW GRANTS FOR 'report'@'%'");
  ASSERT_TRUE(grants.ok()) << grants.status().ToString();
  bool select_on_app = false;
  for (const auto& row : *grants) {
    select_on_app = select_on_app || row[0].find("GRANT SELECT ON `app`.*") != std::string::npos;
  }
  EXPECT_TRUE(select_on_app);

  // Later changes keep replicating, the trigger's rows included (once: the secondary's trigger
  // does not fire for replicated rows).
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, "INSERT INTO app.items VALUES (99999, 1, 7)"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT COUNT(*) FROM app.audit WHERE item = 99999"));
  EXPECT_EQ(One(s, "SELECT COUNT(*) FROM app.audit WHERE item = 99999"), "1");

  std::optional<NodeStatus::Bootstrap> b = Bootstrap();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->phase, "done");
  EXPECT_EQ(b->exit_code, 0);
  EXPECT_GE(b->rows_done, 50000u);

  // A second bootstrap of what is now a full secondary is refused, and changes nothing.
  const std::string before = One(s, "CHECKSUM TABLE app.big");
  const CommandRun again = RunReplsync("bootstrap", "");
  EXPECT_EQ(again.exit_code, 1) << again.out << again.err;
  EXPECT_NE(again.out.find("database app:"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("--force"), std::string::npos) << again.out;
  EXPECT_EQ(One(s, "CHECKSUM TABLE app.big"), before);
}

TEST_F(BootstrapTest, KilledSecondaryDaemonContinuesAndLoadsNoChunkTwice) {
  // Many small chunks in short rounds, read at 2 MB/s, so that the kill and the restart land in
  // the middle of the copy.
  ASSERT_NO_FATAL_FAILURE(MakePrimaryData(200000));
  ASSERT_NO_FATAL_FAILURE(
      SetBootstrapSettings("secondary", "chunk_megabytes = 1\nsnapshot_seconds = 1\n"));
  ASSERT_NO_FATAL_FAILURE(SetBootstrapSettings("primary", "max_rate_megabytes = 2\n"));
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  // The command's run is a user's: it is killed with the daemon, then run again.
  std::thread command([this] { (void)RunReplsync("bootstrap", ""); });
  WaitForStatus(
      "secondary", "a bootstrap copying rows",
      [](const NodeStatus& status) {
        return status.secondary && status.secondary->bootstrap &&
               status.secondary->bootstrap->phase == "copying" &&
               status.secondary->bootstrap->rows_done > 20000;
      },
      120s);
  std::optional<NodeStatus::Bootstrap> at_kill = Bootstrap();
  ASSERT_NO_FATAL_FAILURE(StopDaemon(Daemon("secondary"), SIGKILL));
  command.join();
  ASSERT_TRUE(at_kill.has_value());
  EXPECT_LT(at_kill->rows_done, 200000u) << "the copy was over before the kill: nothing tried";

  ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon());
  const CommandRun run = RunReplsync("bootstrap", "");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << "\n" << Tail("secondary", 60);
  EXPECT_NE(run.out.find("following the bootstrap in progress"), std::string::npos) << run.out;
  ASSERT_NO_FATAL_FAILURE(ExpectTablesConverge(120s));
  // Nothing changed on the primary meanwhile, so every row was loaded exactly once: the rows
  // the chunks loaded add up to the table's.
  EXPECT_EQ(
      One(Server("secondary"),
          "SELECT SUM(`rows`) FROM replsync.bootstrap_tables WHERE db = 'app' AND tbl = 'big'"),
      "200000");
}

}  // namespace
}  // namespace replsync
