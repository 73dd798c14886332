// Two secondaries follow one primary, end to end: three real MariaDB servers, replsyncd on each
// node as a real process, real repository folders. Each secondary goes at its own pace: while one
// is stopped the primary's journal keeps what that one still needs (and only that: the running
// one is served and caught up), the stopped one catches up when it comes back and retention then
// moves on. What a stopped secondary pins fills the journal up to its cap ([journal]
// max_megabytes), where capture pauses, loudly (log and status), for every secondary; once it
// is removed from the primary's [peers] what it pinned is released and capture resumes.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sync/node/node_status.h"
#include "tests/harness/node_pair_test.h"
#include "tests/harness/repo_tree.h"

namespace replsync {
namespace {

using namespace std::chrono_literals;

class TwoSecondariesTest : public testing::NodePairTest {
 protected:
  TwoSecondariesTest() : NodePairTest({"app"}, "twosec", /*secondaries=*/2) {}

  // Round `round` of changes on the primary: `rows` inserts (a transaction each) and `files` new
  // files in the repository folder round-<round>.
  void Write(int round, int rows, int files) {
    for (int i = 0; i < rows; ++i) {
      ASSERT_NO_FATAL_FAILURE(Sql(
          *primary_, fmt::format("INSERT INTO app.t (round, note) VALUES ({}, 'round {} row {}')",
                                 round, round, i)));
    }
    const std::string folder = fmt::format("{}/round-{}", RepositoryPath("primary"), round);
    std::filesystem::create_directories(folder);
    for (int i = 0; i < files; ++i) {
      std::ofstream out(fmt::format("{}/f{}.dat", folder, i), std::ios::binary);
      out << testing::PseudoRandomBytes(round * 100 + i, 1000 + 3000 * i);
      ASSERT_TRUE(out.good()) << folder;
    }
  }

  // Waits until the secondary `node`'s tables and repository equal the primary's.
  void ExpectConverged(const std::string& node) {
    ASSERT_NO_FATAL_FAILURE(ExpectTablesConverge(60s, node));
    ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(60s, node));
  }

  // The peer `name` in the primary's status; nullptr when it is not listed.
  static const NodeStatus::Peer* FindPeer(const NodeStatus& status, const std::string& name) {
    if (!status.primary) return nullptr;
    for (const NodeStatus::Peer& peer : status.primary->peers) {
      if (peer.name == name) return &peer;
    }
    return nullptr;
  }

  // Waits for a status of the primary written from now on in which every secondary of `names`
  // is connected and holds (durable) and applied the whole journal; returns that status (read
  // once). Call it once the changes are journaled (after the secondaries converged): a status
  // written later saw them.
  NodeStatus WaitCaughtUp(const std::vector<std::string>& names) {
    const double after =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    NodeStatus got;
    WaitForStatus("primary", fmt::format("{} caught up", fmt::join(names, ", ")),
                  [&](const NodeStatus& status) {
                    if (status.updated_at <= after || !status.primary) return false;
                    const uint64_t last = status.primary->journal.last_seq;
                    for (const std::string& name : names) {
                      const NodeStatus::Peer* peer = FindPeer(status, name);
                      if (peer == nullptr || !peer->connected || peer->durable_seq != last ||
                          peer->applied_seq != last) {
                        return false;
                      }
                    }
                    got = status;
                    return true;
                  });
    return got;
  }

  // Rewrites the primary's configuration with `peers` in [peers] and its journal capped at
  // `journal_megabytes`; the primary reads it when it is started again.
  void WritePrimaryConfig(const std::vector<std::string>& peers, int journal_megabytes) {
    WriteConfig("primary", "primary", primary_->port(), peers);
    const std::string path = dir_ + "/primary.toml";
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text += fmt::format("\n[journal]\nmax_megabytes = {}\n", journal_megabytes);
    ASSERT_TRUE(testing::WriteConfigFile(path, text)) << path;
  }

  // The node's whole daemon log (every run of it).
  std::string Log(const std::string& node) const {
    std::ifstream in(dir_ + "/" + node + ".log");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  // Each secondary's [peers] names the other too, so that either can be promoted and followed.
  void KnowEachOther() {
    WriteConfig("secondary", "secondary", Server("secondary").port(),
                std::vector<std::string>{"primary", "secondary2"});
    WriteConfig("secondary2", "secondary", Server("secondary2").port(),
                std::vector<std::string>{"primary", "secondary"});
  }

  // Rows of app.big on the secondary `node` (-1 when it cannot be read).
  int64_t BigRows(const std::string& node) {
    auto rows = Server(node).Query("SELECT COUNT(*) FROM app.big");
    return rows.ok() && !rows->empty() ? std::stoll((*rows)[0][0]) : -1;
  }

  // Waits until the primary's journal starts after `seq` (retention deleted it and all before).
  void WaitJournalStartsAfter(uint64_t seq, const std::string& why) {
    WaitForStatus("primary", fmt::format("journal first_seq > {} ({})", seq, why),
                  [seq](const NodeStatus& status) {
                    return status.primary && status.primary->journal.first_seq > seq;
                  });
  }
};

TEST_F(TwoSecondariesTest, StoppedSecondaryPinsTheJournalUntilItCatchesUpOrIsRemoved) {
  ASSERT_NO_FATAL_FAILURE(StartPrimaryDaemon());
  ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon("secondary"));
  ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon("secondary2"));
  Sql(*primary_, "CREATE DATABASE app");
  Sql(*primary_,
      "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, round INT, note VARCHAR(100))");
  ASSERT_NO_FATAL_FAILURE(Write(1, 30, 4));
  for (const std::string& node : Secondaries()) ASSERT_NO_FATAL_FAILURE(ExpectConverged(node));
  const NodeStatus start = WaitCaughtUp({"secondary", "secondary2"});
  ASSERT_FALSE(HasFailure());
  ASSERT_GT(start.primary->journal.last_seq, 0u);
  // Both hold everything: retention deletes it all (the premise of what follows).
  WaitJournalStartsAfter(start.primary->journal.last_seq, "both secondaries hold everything");
  ASSERT_FALSE(HasFailure());

  // secondary2 dies (kill -9) while changes flow, and stays away while the primary changes on.
  ASSERT_NO_FATAL_FAILURE(Write(2, 20, 2));
  StopDaemon(secondary2_daemon_, SIGKILL);
  ASSERT_FALSE(HasFailure());
  // Its session is dropped after the shipper's silence timeout (10 s).
  WaitForStatus("primary", "secondary2 disconnected", [](const NodeStatus& status) {
    const NodeStatus::Peer* peer = FindPeer(status, "secondary2");
    return peer != nullptr && !peer->connected;
  });
  ASSERT_FALSE(HasFailure());
  std::optional<uint64_t> pin;  // secondary2's durable position, as the primary knows it
  for (int round = 3; round <= 6; ++round) {
    SCOPED_TRACE(fmt::format("round {}, secondary2 stopped", round));
    ASSERT_NO_FATAL_FAILURE(Write(round, 25, 3));
    ASSERT_NO_FATAL_FAILURE(ExpectConverged("secondary"));
    const NodeStatus status = WaitCaughtUp({"secondary"});
    ASSERT_FALSE(HasFailure());
    const NodeStatus::JournalStats& journal = status.primary->journal;
    const NodeStatus::Peer* running = FindPeer(status, "secondary");
    const NodeStatus::Peer* stopped = FindPeer(status, "secondary2");
    ASSERT_NE(stopped, nullptr) << StatusText("primary");
    ASSERT_EQ(status.primary->peers.size(), 2u) << StatusText("primary");
    EXPECT_FALSE(stopped->connected);
    EXPECT_TRUE(stopped->ever_connected);
    if (!pin) pin = stopped->durable_seq;
    // Nothing moves it while it is away.
    EXPECT_EQ(stopped->durable_seq, *pin) << StatusText("primary");
    EXPECT_LE(stopped->applied_seq, stopped->durable_seq) << StatusText("primary");
    // The premise: the running secondary holds entries secondary2 does not, so retention by the
    // running one alone would have deleted past the pin.
    ASSERT_GT(running->durable_seq, *pin) << StatusText("primary");
    EXPECT_EQ(running->applied_seq, journal.last_seq);
    // The journal keeps every entry secondary2 needs to resume.
    EXPECT_LE(journal.first_seq, *pin + 1) << StatusText("primary");
    EXPECT_FALSE(journal.full);
  }
  // `replsync status` on the primary lists each secondary with its own positions.
  {
    CommandRun run = RunReplsync("status", "", "", "primary");
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_NE(run.out.find("secondary    secondary: connected"), std::string::npos) << run.out;
    EXPECT_NE(
        run.out.find(fmt::format("secondary    secondary2: disconnected, received {},", *pin)),
        std::string::npos)
        << run.out;
  }

  // secondary2 comes back: it catches up, both converge, and retention moves past the old pin.
  ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon("secondary2"));
  ASSERT_NO_FATAL_FAILURE(Write(7, 10, 1));
  for (const std::string& node : Secondaries()) ASSERT_NO_FATAL_FAILURE(ExpectConverged(node));
  const NodeStatus back = WaitCaughtUp({"secondary", "secondary2"});
  ASSERT_FALSE(HasFailure());
  ASSERT_GT(back.primary->journal.last_seq, *pin + 1);
  WaitJournalStartsAfter(back.primary->journal.last_seq, "secondary2 caught up");
  ASSERT_FALSE(HasFailure());

  // secondary2 stops cleanly and pins the journal again...
  StopDaemon(secondary2_daemon_, SIGTERM);
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(Write(8, 20, 2));
  ASSERT_NO_FATAL_FAILURE(ExpectConverged("secondary"));
  uint64_t stopped_at = 0;  // secondary2's last durable position
  {
    const NodeStatus status = WaitCaughtUp({"secondary"});
    ASSERT_FALSE(HasFailure());
    const NodeStatus::Peer* stopped = FindPeer(status, "secondary2");
    ASSERT_NE(stopped, nullptr) << StatusText("primary");
    stopped_at = stopped->durable_seq;
    // It held everything up to its stop.
    EXPECT_GE(stopped_at, back.primary->journal.last_seq);
    ASSERT_GT(status.primary->journal.last_seq, stopped_at + 1);
    EXPECT_LE(status.primary->journal.first_seq, stopped_at + 1) << StatusText("primary");
  }
  // ...up to the journal's cap: capture pauses, for the running secondary too, and says so in
  // its log and its status.
  StopDaemon(primary_daemon_, SIGTERM);
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(WritePrimaryConfig(Secondaries(), /*journal_megabytes=*/1));
  ASSERT_NO_FATAL_FAILURE(StartPrimaryDaemon());
  Sql(*primary_, "CREATE TABLE app.big (id INT PRIMARY KEY, data LONGTEXT)");
  // 2 MiB of rows (128 KiB each, a transaction each) for a 1 MiB journal.
  constexpr int kBigRows = 16;
  for (int i = 0; i < kBigRows; ++i) {
    std::string hex;
    for (unsigned char c : testing::PseudoRandomBytes(1000 + i, 64 << 10)) {
      hex += fmt::format("{:02x}", c);
    }
    ASSERT_NO_FATAL_FAILURE(
        Sql(*primary_, fmt::format("INSERT INTO app.big VALUES ({}, '{}')", i, hex)));
  }
  std::optional<NodeStatus> full;
  WaitForStatus("primary", "capture paused on a full journal", [&](const NodeStatus& status) {
    if (!status.primary || !status.primary->journal.full) return false;
    full = status;
    return true;
  });
  ASSERT_TRUE(full) << StatusText("primary");
  EXPECT_EQ(full->state, "paused");
  EXPECT_EQ(full->primary->capture_state, "journal full");
  EXPECT_GE(full->primary->journal.bytes, full->primary->journal.max_bytes);
  EXPECT_EQ(full->primary->journal.max_bytes, 1u << 20);
  EXPECT_LE(full->primary->journal.first_seq, stopped_at + 1) << StatusText("primary");
  {
    const NodeStatus::Peer* stopped = FindPeer(*full, "secondary2");
    ASSERT_NE(stopped, nullptr) << StatusText("primary");
    EXPECT_FALSE(stopped->connected);
    EXPECT_EQ(stopped->durable_seq, stopped_at);
  }
  EXPECT_NE(Log("primary").find("capture paused: journal "), std::string::npos) << Tail("primary");
  {
    CommandRun run = RunReplsync("status", "", "", "primary");
    EXPECT_NE(run.out.find("FULL: capture paused"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("secondary    secondary2: disconnected"), std::string::npos) << run.out;
  }
  // Capture waits for room that only secondary2 can make: the running secondary lacks rows.
  EXPECT_LT(BigRows("secondary"), kBigRows);

  // Removed from the primary's [peers], secondary2 pins nothing any more: the restarted primary
  // releases what it pinned, capture resumes, and status no longer lists it.
  StopDaemon(primary_daemon_, SIGTERM);
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(
      WritePrimaryConfig(std::vector<std::string>{"secondary"}, /*journal_megabytes=*/1));
  ASSERT_NO_FATAL_FAILURE(StartPrimaryDaemon());
  ASSERT_NO_FATAL_FAILURE(Write(9, 20, 2));
  ASSERT_NO_FATAL_FAILURE(ExpectConverged("secondary"));
  EXPECT_EQ(BigRows("secondary"), kBigRows);
  const NodeStatus removed = WaitCaughtUp({"secondary"});
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(FindPeer(removed, "secondary2"), nullptr) << StatusText("primary");
  EXPECT_EQ(removed.primary->peers.size(), 1u) << StatusText("primary");
  EXPECT_EQ(removed.state, "running");
  EXPECT_FALSE(removed.primary->journal.full);
  WaitJournalStartsAfter(removed.primary->journal.last_seq, "secondary2 removed from [peers]");
  EXPECT_GT(removed.primary->journal.last_seq, stopped_at + 1);
  const std::string log = Log("primary");
  EXPECT_NE(log.find("shipper: secondary secondary2 is no longer in [peers]: the journal "
                     "entries it pinned are released"),
            std::string::npos)
      << Tail("primary");
  {
    CommandRun run = RunReplsync("status", "", "", "primary");
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(run.out.find("secondary2"), std::string::npos) << run.out;
  }
}

// Several secondaries (schemas/failover.md "replsync promote"): the primary's heartbeats say what
// each secondary holds. One held back (the shipper's test hook) while the other received
// everything; the primary dies. `replsync promote` on the one behind refuses and names the other;
// the other is promoted.
TEST_F(TwoSecondariesTest, TheOtherSecondaryFollowsThePromotedNodeFromWhereItWas) {
  ASSERT_NO_FATAL_FAILURE(KnowEachOther());
  ASSERT_NO_FATAL_FAILURE(StartPrimaryDaemon());
  for (const std::string& node : Secondaries()) {
    std::filesystem::create_directories(RepositoryPath(node));  // a promoted node watches it
    ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon(node));
  }
  Sql(*primary_, "CREATE DATABASE app");
  Sql(*primary_,
      "CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, round INT, note VARCHAR(100))");
  ASSERT_NO_FATAL_FAILURE(Write(1, 30, 3));
  for (const std::string& node : Secondaries()) ASSERT_NO_FATAL_FAILURE(ExpectConverged(node));
  const NodeStatus before = WaitCaughtUp({"secondary", "secondary2"});
  ASSERT_FALSE(HasFailure());
  const uint64_t fork_seq = before.primary->journal.last_seq;

  // The primary's node dies; secondary2 is promoted. secondary finds it by asking its peers.
  StopDaemon(primary_daemon_, SIGKILL);
  const CommandRun promote = RunReplsync("promote", "", "", "secondary2");
  ASSERT_EQ(promote.exit_code, 0) << promote.out << promote.err << Tail("secondary2", 30);
  EXPECT_NE(promote.out.find("serving as the primary"), std::string::npos) << promote.out;
  WaitForStatus(
      "secondary", "following secondary2",
      [&](const NodeStatus& s) {
        return s.secondary && s.secondary->primary == Endpoint("secondary2") &&
               s.secondary->connected && s.epoch == 2;
      },
      60s);
  ASSERT_FALSE(HasFailure());

  // Written on the new primary: rows and files reach secondary, through the stream alone.
  for (int i = 0; i < 20; ++i) {
    Sql(Server("secondary2"),
        fmt::format("INSERT INTO app.t (round, note) VALUES (2, 'on secondary2 {}')", i));
  }
  std::filesystem::create_directories(RepositoryPath("secondary2") + "/after");
  for (int i = 0; i < 3; ++i) {
    std::ofstream(fmt::format("{}/after/g{}.dat", RepositoryPath("secondary2"), i),
                  std::ios::binary)
        << testing::PseudoRandomBytes(700 + i, 5000);
  }
  ASSERT_NO_FATAL_FAILURE(ExpectTablesConverge(60s, "secondary", "secondary2"));
  ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(60s, "secondary", "secondary2"));
  // From exactly where it was: no copy, the new primary's journal continued the old one's.
  WaitForStatus("secondary", "the 20 transactions applied after the fork, and no bootstrap",
                [&](const NodeStatus& s) {
                  return s.secondary && !s.secondary->bootstrap &&
                         s.secondary->applied_seq > fork_seq + 20;
                });
  const std::string log = Log("secondary");
  EXPECT_NE(log.find(fmt::format("holds everything up to sequence {}, where secondary2 took over",
                                 fork_seq)),
            std::string::npos)
      << Tail("secondary", 40);
  EXPECT_EQ(log.find("bootstrap --resync from"), std::string::npos) << Tail("secondary", 40);
  EXPECT_NE(Log("secondary2")
                .find(fmt::format("the journal continues the old primary's at sequence {}",
                                  fork_seq + 1)),
            std::string::npos)
      << Tail("secondary2", 40);
  // Its repository (round-1 and its 3 files) was adopted, not journaled again.
  EXPECT_NE(Log("secondary2").find("files: 4 paths adopted into the manifest"), std::string::npos)
      << Tail("secondary2", 40);
}

TEST_F(TwoSecondariesTest, PromoteRefusesTheSecondaryBehindAndNamesTheOneToPromote) {
  ASSERT_NO_FATAL_FAILURE(KnowEachOther());
  const std::string hold = dir_ + "/hold-entries";
  ASSERT_EQ(setenv("REPLSYNC_TEST_SHIP_HOLD_FILE", hold.c_str(), 1), 0);
  ASSERT_NO_FATAL_FAILURE(StartPrimaryDaemon());
  unsetenv("REPLSYNC_TEST_SHIP_HOLD_FILE");
  for (const std::string node : {"secondary", "secondary2"}) {
    std::filesystem::create_directories(RepositoryPath(node));  // a promoted node watches it
    ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon(node));
  }
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                              "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY);"
                              "INSERT INTO app.t VALUES (1)"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT COUNT(*) FROM app.t", "secondary"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT COUNT(*) FROM app.t", "secondary2"));
  std::ofstream(hold) << "secondary\n";
  ASSERT_NO_FATAL_FAILURE(
      Sql(*primary_, "INSERT INTO app.t VALUES (2); INSERT INTO app.t VALUES (3)"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT COUNT(*) FROM app.t", "secondary2"));
  WaitForStatus("secondary", "heartbeats saying the primary holds more than was received",
                [](const NodeStatus& s) {
                  return s.secondary &&
                         s.secondary->primary_last_seq >= s.secondary->received_seq + 2;
                });
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // a heartbeat with secondary2's
  primary_daemon_->Signal(SIGKILL, std::chrono::seconds(10));
  primary_daemon_.reset();

  const CommandRun behind = RunReplsync("promote", "", "", "secondary");
  EXPECT_EQ(behind.exit_code, 1) << behind.out << behind.err;
  EXPECT_NE(behind.err.find("secondary secondary2 had received up to"), std::string::npos)
      << behind.err;
  EXPECT_NE(behind.err.find("promote it instead"), std::string::npos) << behind.err;
  const CommandRun ahead = RunReplsync("promote", "", "", "secondary2");
  ASSERT_EQ(ahead.exit_code, 0) << ahead.out << ahead.err << Tail("secondary2", 30);

  // The one behind follows the promoted node by itself. The two entries it lacks are in
  // secondary2's database but not in its journal (which continues after them): a bootstrap
  // --resync brings secondary to secondary2's state, then the stream goes on.
  ASSERT_NO_FATAL_FAILURE(Sql(Server("secondary2"), "INSERT INTO app.t VALUES (4)"));
  ASSERT_NO_FATAL_FAILURE(ExpectTablesConverge(120s, "secondary", "secondary2"));
  WaitForStatus(
      "secondary", "following secondary2 after the resync",
      [&](const NodeStatus& s) {
        return s.secondary && s.secondary->primary == Endpoint("secondary2") &&
               s.secondary->bootstrap && s.secondary->bootstrap->phase == "done" &&
               s.secondary->bootstrap->resync && s.state == "running";
      },
      60s);
  EXPECT_NE(Log("secondary").find("this node received up to sequence"), std::string::npos)
      << Tail("secondary", 40);
  ASSERT_NO_FATAL_FAILURE(Sql(Server("secondary2"), "INSERT INTO app.t VALUES (5)"));
  ASSERT_NO_FATAL_FAILURE(ExpectTablesConverge(60s, "secondary", "secondary2"));
}

}  // namespace
}  // namespace replsync
