// Bootstrap under faults and DDL (schemas/bootstrap.md), against real servers and real daemons:
// the primary's replsyncd killed with SIGKILL in the middle of the copy, the secondary's MariaDB
// server killed in the middle of the copy, the secondary's replsyncd killed in the lenient window
// after the copy (held, and catching up) and in the files phase, DDL on the primary during the
// copy (an instant and a copying ALTER of the table being copied, CREATE, DROP, RENAME), and a
// self-referencing table with a cascading foreign key and a parent/child pair changed during the
// copy, the secondary's daemon killed inside the self-referencing table's round. Each ends with
// the secondary's tables equal to the primary's, `replsync verify` exit 0, and later changes
// replicating.
//
// The copy is slowed so that faults land in its middle: small chunks and short rounds on the
// secondary, `[bootstrap] max_rate_megabytes` on the primary; each test checks that premise.
// The phases after the copy are reached through the daemon's test hook
// REPLSYNC_TEST_BOOTSTRAP_PAUSE_FILE (apply/bootstrapper.h: the bootstrap waits at the start of
// the phase that file names, or between two rounds of the copy); the DDL test lands its
// statements between rounds that way.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/node/node_status.h"
#include "tests/harness/bootstrap_fixture.h"

namespace replsync {
namespace {

using namespace std::chrono_literals;
using testing::MariadbServer;

constexpr int kBigRows = 60000;  // app.big: about 8 MB of row text, 4 s at 2 MB/s

class BootstrapFaultTest : public testing::BootstrapFixture {
 protected:
  BootstrapFaultTest() : BootstrapFixture("bootstrap-fault") {}

  // The daemons go first: a command still following a bootstrap ends when its daemon does, and
  // the threads are joined before the servers go (a failed ASSERT leaves them running).
  void TearDown() override {
    unsetenv("REPLSYNC_TEST_BOOTSTRAP_PAUSE_FILE");
    for (const std::string& node : Nodes()) Daemon(node).reset();
    for (auto& command : commands_) {
      if (command->thread.joinable()) command->thread.join();
    }
    for (auto& writer : writers_) writer->Stop();
    BootstrapFixture::TearDown();
  }

  // Small chunks in rounds of a second on the secondary, rows read at `megabytes_per_second`
  // on the primary: the copy lasts long enough for a fault to land in it.
  void SlowCopy(int megabytes_per_second) {
    ASSERT_NO_FATAL_FAILURE(
        SetBootstrapSettings("secondary", "chunk_megabytes = 1\nsnapshot_seconds = 1\n"));
    ASSERT_NO_FATAL_FAILURE(SetBootstrapSettings(
        "primary", fmt::format("max_rate_megabytes = {}\n", megabytes_per_second)));
  }

  // Waits until the bootstrap copies rows and has loaded more than `rows`.
  void WaitCopying(uint64_t rows) {
    WaitForStatus(
        "secondary", fmt::format("a bootstrap that copied more than {} rows", rows),
        [rows](const NodeStatus& status) {
          return status.secondary && status.secondary->bootstrap &&
                 status.secondary->bootstrap->phase == "copying" &&
                 status.secondary->bootstrap->rows_done > rows;
        },
        120s);
  }

  // Waits until the bootstrap stands paused by the test hook at the start of `phase`.
  void WaitPaused(const std::string& phase) {
    WaitForStatus(
        "secondary", "the bootstrap paused by the test hook in phase " + phase,
        [phase](const NodeStatus& status) {
          return status.secondary && status.secondary->bootstrap &&
                 status.secondary->bootstrap->phase == phase &&
                 status.secondary->bootstrap->error.find("paused by the test hook") !=
                     std::string::npos;
        },
        120s);
  }

  // The secondary's recorded progress of app.`table`: "after_key_is_null done rows".
  std::string Progress(const std::string& table) {
    return One(Server("secondary"),
               "SELECT CONCAT(after_key IS NULL, ' ', done, ' ', `rows`) FROM "
               "replsync.bootstrap_tables WHERE db = 'app' AND tbl = '" +
                   table + "'");
  }

  // `replsync bootstrap` run in a thread of its own, as a user would while the faults happen.
  struct Command {
    std::thread thread;
    CommandRun run;
    // Waits for its end.
    const CommandRun& Wait() {
      if (thread.joinable()) thread.join();
      return run;
    }
  };
  Command& StartCommand() {
    Command& command = *commands_.emplace_back(std::make_unique<Command>());
    command.thread = std::thread([this, &command] { command.run = RunReplsync("bootstrap", ""); });
    return command;
  }

  // A thread writing on the primary until Stop (the fixture's StartWriter, or another body).
  struct Writer {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> written{0};
    std::thread thread;
    // Stops it; the transactions it wrote.
    uint64_t Stop() {
      stop = true;
      if (thread.joinable()) thread.join();
      return written.load();
    }
  };
  Writer& StartWriting(int per_second) {
    Writer& writer = *writers_.emplace_back(std::make_unique<Writer>());
    writer.thread = StartWriter(&writer.stop, &writer.written, per_second);
    return writer;
  }

  std::vector<std::unique_ptr<Command>> commands_;
  std::vector<std::unique_ptr<Writer>> writers_;
};

// The primary's replsyncd killed in the middle of the copy: while it is away the secondary's
// requests fail retryably and its bootstrap waits; once it is back the copy goes on by itself,
// both the command that ran throughout and one started while the primary was away end 0, and
// with nothing written meanwhile every row of the large table was loaded exactly once.
TEST_F(BootstrapFaultTest, KilledPrimaryDaemonMidCopyContinuesAndLoadsNothingTwice) {
  ASSERT_NO_FATAL_FAILURE(MakePrimaryData(kBigRows));
  ASSERT_NO_FATAL_FAILURE(SlowCopy(2));
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Command& first = StartCommand();
  ASSERT_NO_FATAL_FAILURE(WaitCopying(10000));
  std::optional<NodeStatus::Bootstrap> at_kill = Bootstrap();
  ASSERT_NO_FATAL_FAILURE(StopDaemon(Daemon("primary"), SIGKILL));
  ASSERT_TRUE(at_kill.has_value());
  EXPECT_LT(at_kill->rows_done, uint64_t{kBigRows}) << "the copy was over before the kill";

  // Its requests fail (the one in flight at once, not after the 300 s reply timeout), and it
  // says why while it tries again.
  WaitForStatus(
      "secondary", "the bootstrap waiting for the primary",
      [](const NodeStatus& status) {
        return status.secondary && status.secondary->bootstrap &&
               status.secondary->bootstrap->phase == "copying" &&
               status.secondary->bootstrap->exit_code < 0 &&
               status.secondary->bootstrap->error.find("primary") != std::string::npos;
      },
      30s);
  // A user runs the command again meanwhile: it follows the bootstrap in progress.
  Command& second = StartCommand();
  std::this_thread::sleep_for(1s);
  ASSERT_NO_FATAL_FAILURE(StartPrimaryDaemon());
  EXPECT_EQ(first.Wait().exit_code, 0) << first.run.out << first.run.err;
  ASSERT_EQ(second.Wait().exit_code, 0) << second.run.out << second.run.err << "\n"
                                        << Tail("secondary", 60);
  EXPECT_NE(second.run.out.find("following the bootstrap in progress"), std::string::npos)
      << second.run.out;

  ASSERT_NO_FATAL_FAILURE(ExpectFollowingCopy());
  EXPECT_EQ(
      One(Server("secondary"),
          "SELECT SUM(`rows`) FROM replsync.bootstrap_tables WHERE db = 'app' AND tbl = 'big'"),
      std::to_string(kBigRows));
}

// The secondary's MariaDB server killed in the middle of the copy while the primary writes: the
// chunks in flight are rolled back by the server's recovery, the applier connects again and
// opens the lenient window again (the server starts with slave_exec_mode STRICT, and an update
// of a row not copied yet would stop a strict applier), and the copy goes on.
TEST_F(BootstrapFaultTest, KilledSecondaryServerMidCopyContinues) {
  ASSERT_NO_FATAL_FAILURE(MakePrimaryData(kBigRows));
  ASSERT_NO_FATAL_FAILURE(SlowCopy(2));
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Writer& writer = StartWriting(100);
  Command& command = StartCommand();
  ASSERT_NO_FATAL_FAILURE(WaitCopying(10000));
  std::optional<NodeStatus::Bootstrap> at_kill = Bootstrap();
  MariadbServer& s = Server("secondary");
  s.Kill();
  std::this_thread::sleep_for(1s);
  Status restarted = s.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  ASSERT_TRUE(at_kill.has_value());
  EXPECT_LT(at_kill->rows_done, uint64_t{kBigRows}) << "the copy was over before the kill";

  // The window is open again while the copy goes on.
  std::string mode, phase;
  for (auto deadline = std::chrono::steady_clock::now() + 60s;
       std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(50ms)) {
    mode = One(s, "SELECT @@GLOBAL.slave_exec_mode");
    phase = One(s, "SELECT phase FROM replsync.bootstrap");
    if (mode == "IDEMPOTENT") break;
  }
  EXPECT_EQ(mode, "IDEMPOTENT");
  EXPECT_EQ(phase, "copying") << "the copy ended before the applier came back: nothing tried";

  const CommandRun& run = command.Wait();
  const uint64_t during = writer.Stop();
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << "\n" << Tail("secondary", 60);
  EXPECT_GT(during, 20u) << "the writer barely wrote during the bootstrap: the test proved little";
  EXPECT_EQ(One(s, "SELECT @@GLOBAL.slave_exec_mode"), "STRICT");
  ASSERT_NO_FATAL_FAILURE(ExpectFollowingCopy());
}

// The secondary's replsyncd killed after the copy while the primary writes: in the lenient
// window before the objects (its applier held at the last round's point, then catching up a
// backlog), and in the files phase; the files phase it continues copies what the secondary
// lacks (a 48 MiB file and a folder removed while it was down).
TEST_F(BootstrapFaultTest, KilledSecondaryDaemonInTheCatchUpAndTheFilesPhaseContinues) {
  ASSERT_NO_FATAL_FAILURE(MakePrimaryData(20000));
  ASSERT_NO_FATAL_FAILURE(MakePrimaryFiles(2000));
  const std::string pause = dir_ + "/pause";
  auto pause_at = [&](const std::string& phase) { std::ofstream(pause) << phase << "\n"; };
  auto recorded_phase = [&] {
    return One(Server("secondary"), "SELECT phase FROM replsync.bootstrap");
  };
  auto applied_seq = [&] {
    return One(Server("secondary"), "SELECT seq FROM replsync.applied WHERE channel = 'default'");
  };
  pause_at("objects");
  setenv("REPLSYNC_TEST_BOOTSTRAP_PAUSE_FILE", pause.c_str(), 1);
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Writer& writer = StartWriting(100);
  (void)StartCommand();

  // 1: after the copy, before the objects; the writer's changes wait in the stream.
  ASSERT_NO_FATAL_FAILURE(WaitPaused("objects"));
  std::this_thread::sleep_for(1s);
  ASSERT_NO_FATAL_FAILURE(StopDaemon(Daemon("secondary"), SIGKILL));
  EXPECT_EQ(One(Server("secondary"), "SELECT @@GLOBAL.slave_exec_mode"), "IDEMPOTENT");

  // 2: catching up a backlog of 200,000 row changes in the lenient window.
  for (int i = 0; i < 10; ++i) {
    ASSERT_NO_FATAL_FAILURE(Sql(*primary_, "UPDATE app.big SET k = k + 1"));
  }
  const std::string applied_before = applied_seq();
  ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon());
  std::string applied = applied_before;
  for (auto deadline = std::chrono::steady_clock::now() + 60s;
       std::chrono::steady_clock::now() < deadline && applied == applied_before;
       std::this_thread::sleep_for(20ms)) {
    applied = applied_seq();
  }
  std::optional<NodeStatus> primary_at_kill = ReadStatus("primary");
  ASSERT_NO_FATAL_FAILURE(StopDaemon(Daemon("secondary"), SIGKILL));
  ASSERT_TRUE(primary_at_kill && primary_at_kill->primary);
  EXPECT_NE(applied, applied_before) << "the applier did not start catching up";
  EXPECT_LT(std::strtoull(applied.c_str(), nullptr, 10), primary_at_kill->primary->journal.last_seq)
      << "the applier had caught up before the kill: the test proved little";
  EXPECT_EQ(recorded_phase(), "objects");

  // 3: in the files phase (the objects made, the window closed), before it compared the trees.
  pause_at("files");
  ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon());
  ASSERT_NO_FATAL_FAILURE(WaitPaused("files"));
  EXPECT_EQ(One(Server("secondary"), "SELECT @@GLOBAL.slave_exec_mode"), "STRICT");
  ASSERT_NO_FATAL_FAILURE(StopDaemon(Daemon("secondary"), SIGKILL));
  EXPECT_EQ(recorded_phase(), "files");
  // The stream brought the primary's files as they were scanned; files it did not bring (gone
  // here meanwhile) are the files phase's to copy once it continues.
  const std::string secondary_root = RepositoryPath("secondary");
  ASSERT_TRUE(std::filesystem::exists(secondary_root + "/large.bin"));
  std::filesystem::remove(secondary_root + "/large.bin");
  std::filesystem::remove_all(secondary_root + "/d7");

  // Back once more, paused at the files' start so that the command finds it in progress.
  pause_at("files");
  ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon());
  ASSERT_NO_FATAL_FAILURE(WaitPaused("files"));
  Command& command = StartCommand();
  std::this_thread::sleep_for(1s);
  pause_at("none");
  const CommandRun& run = command.Wait();
  const uint64_t during = writer.Stop();
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << "\n" << Tail("secondary", 60);
  EXPECT_NE(run.out.find("following the bootstrap in progress"), std::string::npos) << run.out;
  EXPECT_GT(during, 20u) << "the writer barely wrote during the bootstrap: the test proved little";
  ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(120s));
  // What the secondary lacked came by the files phase's bulk pass (the repository did not change
  // meanwhile): the exact pass after it had nothing left to repair.
  EXPECT_NE(Tail("secondary", 400).find("the exact pass found 0 of the "), std::string::npos)
      << Tail("secondary", 60);
  ASSERT_NO_FATAL_FAILURE(ExpectFollowingCopy());
}

// DDL on the primary while the large table is copied and a writer runs: an instant ADD COLUMN and
// a copying ALTER of the table being copied, a table created with rows, a table dropped and one
// renamed within the set (both waiting for the large table, which they reference), and an ALTER
// dropping an index whose build the bootstrap deferred.
TEST_F(BootstrapFaultTest, DdlOnThePrimaryDuringTheCopy) {
  ASSERT_NO_FATAL_FAILURE(MakePrimaryData(kBigRows));
  for (const char* table : {"doomed", "old_name"}) {
    ASSERT_NO_FATAL_FAILURE(
        Sql(*primary_,
            fmt::format("CREATE TABLE app.{0} (id INT PRIMARY KEY, big_id INT, note VARCHAR(20), "
                        "FOREIGN KEY (big_id) REFERENCES app.big (id) ON DELETE CASCADE);"
                        "INSERT INTO app.{0} SELECT seq, seq, 'n' FROM seq.seq_1_to_1000",
                        table)));
  }
  // A table whose plain indexes the bootstrap builds after its rows (several chunks long), changed
  // by a DDL naming one of them before its rows are all in: the applier builds them first, so the
  // DDL finds the table as the primary had it.
  ASSERT_NO_FATAL_FAILURE(
      Sql(*primary_,
          "CREATE TABLE app.indexed (id INT PRIMARY KEY, a INT, b INT, KEY ka (a), KEY kb (b));"
          "INSERT INTO app.indexed SELECT seq, seq % 7, seq % 11 FROM seq.seq_1_to_200000"));
  ASSERT_NO_FATAL_FAILURE(SlowCopy(2));
  // The DDL lands between two rounds (the test hook holds the copy there, with no snapshot open
  // on the primary): after some of app.big's chunks, before the rest.
  const std::string pause = dir_ + "/pause";
  auto pause_at = [&](const std::string& phase) { std::ofstream(pause) << phase << "\n"; };
  pause_at("copying");
  setenv("REPLSYNC_TEST_BOOTSTRAP_PAUSE_FILE", pause.c_str(), 1);
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Writer& writer = StartWriting(100);
  Command& command = StartCommand();

  ASSERT_NO_FATAL_FAILURE(WaitPaused("copying"));
  const std::string indexed_at_ddl = Progress("indexed");
  ASSERT_NO_FATAL_FAILURE(
      Sql(*primary_, "ALTER TABLE app.indexed DROP INDEX ka, ADD COLUMN c INT, ADD KEY kc (c, a)"));
  const std::string big_at_instant = Progress("big");
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                              "ALTER TABLE app.big ADD COLUMN extra INT NOT NULL DEFAULT 5, "
                              "ALGORITHM=INSTANT"));
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, "DROP TABLE app.doomed"));
  const std::string old_name_at_rename = Progress("old_name");
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, "RENAME TABLE app.old_name TO app.new_name"));
  ASSERT_NO_FATAL_FAILURE(
      Sql(*primary_, "INSERT INTO app.new_name VALUES (5000, NULL, 'after the rename')"));
  // One more round of chunks, then the copying ALTER between that round and the next.
  const uint64_t round = Bootstrap()->round;
  pause_at("none");
  WaitForStatus(
      "secondary", "the next round of the copy",
      [round](const NodeStatus& s) {
        return s.secondary && s.secondary->bootstrap && s.secondary->bootstrap->round > round;
      },
      60s);
  pause_at("copying");
  ASSERT_NO_FATAL_FAILURE(WaitPaused("copying"));
  const std::string big_at_copy = Progress("big");
  ASSERT_NO_FATAL_FAILURE(
      Sql(*primary_, "ALTER TABLE app.big MODIFY pad VARCHAR(80) NOT NULL, ALGORITHM=COPY"));
  ASSERT_NO_FATAL_FAILURE(
      Sql(*primary_,
          "CREATE TABLE app.fresh (id INT PRIMARY KEY, v VARCHAR(20));"
          "INSERT INTO app.fresh SELECT seq, CONCAT('v', seq) FROM seq.seq_1_to_500"));
  std::optional<NodeStatus::Bootstrap> after_ddl = Bootstrap();
  pause_at("none");

  const CommandRun& run = command.Wait();
  const uint64_t during = writer.Stop();
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << "\n" << Tail("secondary", 60);
  // The premises: each ALTER came while the large table was being copied (a chunk loaded, not
  // done), and the rename before the renamed table was copied.
  EXPECT_EQ(big_at_instant.substr(0, 4), "0 0 ") << big_at_instant;
  EXPECT_EQ(big_at_copy.substr(0, 4), "0 0 ") << big_at_copy;
  EXPECT_EQ(old_name_at_rename.substr(0, 4), "1 0 ") << old_name_at_rename;
  EXPECT_EQ(indexed_at_ddl.substr(2, 2), "0 ") << "app.indexed was copied before the DDL came";
  EXPECT_NE(Tail("secondary", 2000).find("of app.indexed built after its rows"), std::string::npos);
  ASSERT_TRUE(after_ddl.has_value());
  EXPECT_EQ(after_ddl->phase, "copying");
  EXPECT_GT(during, 20u) << "the writer barely wrote during the bootstrap: the test proved little";

  ASSERT_NO_FATAL_FAILURE(ExpectFollowingCopy());
  MariadbServer& s = Server("secondary");
  EXPECT_EQ(One(s,
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND "
                "TABLE_NAME IN ('doomed', 'old_name')"),
            "0");
  EXPECT_EQ(One(s, "SELECT note FROM app.new_name WHERE id = 5000"), "after the rename");
  EXPECT_EQ(One(s, "SELECT COUNT(*) FROM app.fresh"), "500");
  EXPECT_EQ(One(s, "SELECT COUNT(*) FROM app.big WHERE extra = 5"),
            One(*primary_, "SELECT COUNT(*) FROM app.big WHERE extra = 5"));
}

// A self-referencing table with ON DELETE CASCADE, several chunks long, whose parents have larger
// keys than their children (a parent's delete cascades down a chain through the chunks), and a
// parent/child pair, changed during the copy: children inserted under existing parents, parents
// deleted. The secondary's replsyncd is killed while the self-referencing table's round loads
// it, and the top of a chain is deleted while it is down: the cascade is not in the binlog, so
// the chain's rows in the chunks already loaded go only if the table starts over in one round
// (schemas/bootstrap.md "Foreign keys").
TEST_F(BootstrapFaultTest, ReferenceCycleAndParentChildChangedDuringTheCopy) {
  MariadbServer& p = *primary_;
  ASSERT_NO_FATAL_FAILURE(Sql(p, "CREATE DATABASE app"));
  // Chains of 12 (InnoDB cascades 15 deep at most): 60000, 55000, ..., 5000.
  ASSERT_NO_FATAL_FAILURE(
      Sql(p,
          "CREATE TABLE app.tree (id INT PRIMARY KEY, parent INT NULL, name CHAR(100) NOT NULL, "
          "FOREIGN KEY (parent) REFERENCES app.tree (id) ON DELETE CASCADE);"
          "SET foreign_key_checks = 0;"
          "INSERT INTO app.tree SELECT seq, IF(seq + 5000 <= 60000, seq + 5000, NULL), "
          "CONCAT('node ', seq, ' ', REPEAT('t', 80)) FROM seq.seq_1_to_60000;"
          "SET foreign_key_checks = 1"));
  ASSERT_NO_FATAL_FAILURE(
      Sql(p,
          "CREATE TABLE app.parents (id INT PRIMARY KEY, name CHAR(100) NOT NULL);"
          "CREATE TABLE app.children (id INT PRIMARY KEY, parent INT NOT NULL, v CHAR(100), "
          "FOREIGN KEY (parent) REFERENCES app.parents (id) ON DELETE CASCADE);"
          "INSERT INTO app.parents SELECT seq, CONCAT('parent ', seq, REPEAT('p', 80)) FROM "
          "seq.seq_1_to_20000;"
          "INSERT INTO app.children SELECT seq, 1 + seq % 20000, CONCAT('child ', seq, "
          "REPEAT('c', 80)) FROM seq.seq_1_to_40000"));
  ASSERT_NO_FATAL_FAILURE(SlowCopy(2));
  ASSERT_NO_FATAL_FAILURE(StartBoth());

  Writer& writer = *writers_.emplace_back(std::make_unique<Writer>());
  writer.thread = std::thread([&writer, port = p.port()] {
    MysqlThreadScope scope;
    auto session = OpenRootSession(port);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    std::mt19937 random(11);
    for (uint64_t i = 0; !writer.stop; ++i) {
      std::string sql;
      switch (i % 6) {
        case 0:  // a child under an existing node
          sql = fmt::format("INSERT INTO app.tree VALUES ({}, {}, 'new child')", 100000 + i,
                            1 + random() % 60000);
          break;
        case 1:  // a node and its chain below
          sql = fmt::format("DELETE FROM app.tree WHERE id = {}", 1 + random() % 60000);
          break;
        case 2:
          sql = fmt::format("INSERT INTO app.children VALUES ({}, {}, 'new')", 100000 + i,
                            1 + random() % 20000);
          break;
        case 3:
          sql = fmt::format("DELETE FROM app.parents WHERE id = {}", 1 + random() % 20000);
          break;
        case 4:
          sql = fmt::format("UPDATE app.children SET parent = {} WHERE id = {}",
                            1 + random() % 20000, 1 + random() % 40000);
          break;
        default:
          sql = fmt::format("UPDATE app.tree SET name = 'renamed {}' WHERE id = {}", i,
                            1 + random() % 60000);
          break;
      }
      // A row whose parent is gone fails: the rows are whatever the primary ends with.
      (void)(*session)->Execute(sql);
      ++writer.written;
      std::this_thread::sleep_for(10ms);
    }
  });
  (void)StartCommand();

  // Killed while the tree's round has loaded some of its chunks.
  std::string at_kill;
  for (auto deadline = std::chrono::steady_clock::now() + 120s;
       std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(20ms)) {
    at_kill = Progress("tree");
    if (at_kill.rfind("0 0 ", 0) == 0) break;
  }
  ASSERT_NO_FATAL_FAILURE(StopDaemon(Daemon("secondary"), SIGKILL));
  ASSERT_EQ(at_kill.substr(0, 4), "0 0 ")
      << "the tree was not in the middle of its copy: " << at_kill;
  // The top of the chain 60000, 55000, ..., 5000: its delete cascades into the loaded chunks.
  ASSERT_NO_FATAL_FAILURE(Sql(p, "DELETE FROM app.tree WHERE id = 60000"));

  ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon());
  const CommandRun run = RunReplsync("bootstrap", "");
  const uint64_t during = writer.Stop();
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << "\n" << Tail("secondary", 60);
  EXPECT_NE(run.out.find("following the bootstrap in progress"), std::string::npos) << run.out;
  EXPECT_GT(during, 20u) << "the writer barely wrote during the bootstrap: the test proved little";
  ASSERT_NO_FATAL_FAILURE(ExpectFollowingCopy());
  EXPECT_EQ(One(Server("secondary"), "SELECT COUNT(*) FROM app.tree WHERE id = 5000"), "0");
}

}  // namespace
}  // namespace replsync
