// End to end: roles, epochs and fencing (schemas/failover.md) on real replsyncd daemons and real
// MariaDB servers: `replsync promote` on a following secondary while the old primary still runs
// (the old one fences itself: read-only, 503 on /health/primary, no session served), an old
// primary that comes back after its secondary was promoted (it starts and stays fenced), and two
// nodes that both start as primary (both fence themselves); HAProxy with conf/haproxy.cfg in
// front of the pair; the unshipped tail an old primary reports (`replsync rejoin --dry-run`).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/node/role_state.h"
#include "tests/harness/child_process.h"
#include "tests/harness/mariadb_server.h"
#include "tests/harness/node_pair_test.h"
#include "tests/harness/raw_http.h"

namespace replsync {
namespace {

using namespace std::chrono_literals;

class FailoverTest : public testing::NodePairTest {
 protected:
  FailoverTest() : NodePairTest({"app"}, "failover") { with_health_ = true; }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(NodePairTest::SetUp());
    // The secondary's repository folder, as an installed application has it (a promoted node
    // watches it).
    std::filesystem::create_directories(RepositoryPath("secondary"));
  }

  // The HTTP code of `node`'s /health/primary (0 when it does not answer).
  int PrimaryHealth(const std::string& node) {
    Result<testing::HttpReply> reply = testing::HttpGet(health_ports_.at(node), "/health/primary");
    return reply.ok() ? reply->code : 0;
  }

  std::string ReadOnly(const std::string& node) {
    auto rows = Server(node).Query("SELECT @@GLOBAL.read_only");
    return rows.ok() && !rows->empty() ? (*rows)[0][0] : "error";
  }

  void WaitFenced(const std::string& node, std::chrono::seconds timeout = 30s) {
    WaitForStatus(
        node, "fenced",
        [](const NodeStatus& s) { return s.fenced && s.state == "fenced" && s.error.empty(); },
        timeout);
  }

  // "name STATUS, ..." of app's events on `node`'s server.
  std::string Events(const std::string& node) {
    auto rows = Server(node).Query(
        "SELECT GROUP_CONCAT(EVENT_NAME, ' ', STATUS ORDER BY EVENT_NAME SEPARATOR ', ') FROM "
        "information_schema.EVENTS WHERE EVENT_SCHEMA = 'app'");
    return rows.ok() && !rows->empty() ? (*rows)[0][0] : "error";
  }

  RoleState Role(const std::string& node) {
    Result<RoleState> state = ReadRoleState(dir_ + "/" + node + "-state");
    EXPECT_TRUE(state.ok()) << state.status().ToString();
    return state.ok() ? *state : RoleState{};
  }

  // The application's account on both servers (no SUPER: read_only stops it) and app.w.
  void MakeApp() {
    for (const std::string node : {"primary", "secondary"}) {
      ASSERT_NO_FATAL_FAILURE(Sql(
          Server(node), "CREATE USER app@'%' IDENTIFIED BY 'pw'; GRANT ALL ON app.* TO app@'%'"));
    }
    ASSERT_NO_FATAL_FAILURE(
        Sql(*primary_,
            "CREATE DATABASE app; CREATE TABLE app.w (id INT PRIMARY KEY, node VARCHAR(20))"));
    ASSERT_NO_FATAL_FAILURE(
        WaitSame("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app'"));
  }

  // Inserts into app.w as the application would behind the switch: through its account, at the
  // node that answered 200 on /health/primary when the last write failed, until Stop. Keeps the
  // ids acknowledged; Pause() waits until no write is under way and none starts (read acked()
  // only while paused or stopped).
  class Writer {
   public:
    explicit Writer(FailoverTest& test) : test_(test), thread_([this] { Run(); }) {}
    ~Writer() { Stop(); }
    void Pause() {
      paused_ = true;
      std::lock_guard<std::mutex> lock(mu_);  // the write under way, if any, is over
    }
    // Writing again, at the node that answers 200 now (as the switch would send it).
    void Resume() {
      repick_ = true;
      paused_ = false;
    }
    void Stop() {
      stop_ = true;
      if (thread_.joinable()) thread_.join();
    }
    const std::vector<int>& acked() const { return acked_; }
    int refused() const { return refused_; }
    // The number and sum of the acknowledged ids, as "COUNT(*)\tSUM(id)" would show them.
    std::pair<std::string, std::string> CountAndSum() const {
      uint64_t sum = 0;
      for (int id : acked_) sum += static_cast<uint64_t>(id);
      return {std::to_string(acked_.size()), std::to_string(sum)};
    }

   private:
    void Run() {
      MysqlThreadScope scope;
      std::string at = "primary";
      std::unique_ptr<MysqlSession> session;
      for (int id = 1; !stop_;) {
        std::unique_lock<std::mutex> lock(mu_);
        if (paused_) {
          lock.unlock();
          std::this_thread::sleep_for(10ms);
          continue;
        }
        if (repick_.exchange(false)) session.reset();
        if (session == nullptr) {
          for (const std::string node : {"primary", "secondary"}) {
            if (test_.PrimaryHealth(node) == 200) at = node;
          }
          MysqlOptions options;
          options.host = "127.0.0.1";
          options.port = test_.Server(at).port();
          options.user = "app";
          options.password = "pw";
          Result<std::unique_ptr<MysqlSession>> opened = MysqlSession::Open(options);
          if (opened.ok()) session = std::move(opened).value();
        }
        if (session != nullptr &&
            session->Execute(fmt::format("INSERT INTO app.w VALUES ({}, '{}')", id, at)).ok()) {
          acked_.push_back(id);
        } else {
          ++refused_;
          session.reset();
          lock.unlock();
          std::this_thread::sleep_for(20ms);
        }
        ++id;
        if (lock.owns_lock()) lock.unlock();
        std::this_thread::sleep_for(2ms);
      }
    }
    FailoverTest& test_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> paused_{false};
    std::atomic<bool> repick_{false};
    std::mutex mu_;
    std::vector<int> acked_;
    int refused_ = 0;
    std::thread thread_;
  };

  // Every id `writer` had acknowledged is on both nodes, and nothing else (ids > 0).
  void ExpectAcknowledgedOnBoth(const Writer& writer) {
    ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT COUNT(*), SUM(id) FROM app.w"));
    const auto [count, sum] = writer.CountAndSum();
    for (const std::string node : {"primary", "secondary"}) {
      auto rows = Server(node).Query("SELECT COUNT(*), SUM(id) FROM app.w WHERE id > 0");
      ASSERT_TRUE(rows.ok() && rows->size() == 1) << rows.status().ToString();
      EXPECT_EQ((*rows)[0][0], count) << node;
      EXPECT_EQ((*rows)[0][1], sum) << node;
    }
  }

  // `replsync verify` on `node`, then a secondary, against the other node's database.
  void ExpectVerifyOn(const std::string& node) {
    const std::string other = node == "primary" ? "secondary" : "primary";
    if (node == "primary" && !primary_mysql_added_) {
      std::ofstream(dir_ + "/primary.toml", std::ios::app) << fmt::format(
          "\n[primary_mysql]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"root\"\n"
          "password = \"\"\n",
          Server(other).port());
      primary_mysql_added_ = true;
    }
    const CommandRun verify = RunReplsync("verify", "", "", node);
    EXPECT_EQ(verify.exit_code, 0) << node << ": " << verify.out << verify.err;
  }
  bool primary_mysql_added_ = false;
};

TEST_F(FailoverTest, PromoteWhileTheOldPrimaryRunsFencesIt) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                              "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v "
                              "VARCHAR(20)); INSERT INTO app.t VALUES (1, 'before')"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT GROUP_CONCAT(v) FROM app.t"));
  WaitForStatus("primary", "asked its peers", [](const NodeStatus& s) { return s.peers_asked; });
  // A secondary's database is kept read-only: only the applier (READ_ONLY ADMIN) writes it.
  WaitForStatus("secondary", "its database read-only",
                [](const NodeStatus& s) { return s.read_only && s.read_only_problem.empty(); });
  EXPECT_EQ(ReadOnly("secondary"), "1");
  EXPECT_EQ(PrimaryHealth("primary"), 200);
  EXPECT_EQ(PrimaryHealth("secondary"), 503);

  const CommandRun promote = RunReplsync("promote", "");
  ASSERT_EQ(promote.exit_code, 0) << promote.out << promote.err << Tail("secondary", 40);
  EXPECT_NE(promote.out.find("promoted to primary at epoch 2"), std::string::npos) << promote.out;

  // The new primary: epoch 2, its fork point recorded, its database writable, serving.
  const RoleState promoted = Role("secondary");
  EXPECT_EQ(promoted.role, NodeRole::kPrimary);
  EXPECT_EQ(promoted.epoch, 2u);
  ASSERT_EQ(promoted.forks.size(), 1u);
  EXPECT_EQ(promoted.forks[0].old_primary, "primary");
  EXPECT_GT(promoted.forks[0].journal_seq, 0u);
  EXPECT_EQ(promoted.forks[0].lost, "");
  EXPECT_EQ(ReadOnly("secondary"), "0");
  // The old primary hears of epoch 2 (the new primary asks it who it is) and fences itself.
  ASSERT_NO_FATAL_FAILURE(WaitFenced("primary"));
  EXPECT_EQ(ReadOnly("primary"), "1");
  EXPECT_TRUE(Role("primary").fenced);
  EXPECT_NE(Role("primary").fenced_by.find("epoch 2"), std::string::npos);
  WaitForStatus("secondary", "serving as primary", [](const NodeStatus& s) {
    return s.role == "primary" && !s.fenced && s.peers_asked && s.primary &&
           s.primary->capture_state == "running";
  });
  // At most one node answers 200 on /health/primary: the promoted one.
  EXPECT_EQ(PrimaryHealth("primary"), 503);
  EXPECT_EQ(PrimaryHealth("secondary"), 200);
  // Writes go on on the new primary; the old one refuses the application's (read_only stops
  // every account without SUPER or READ_ONLY ADMIN).
  ASSERT_NO_FATAL_FAILURE(Sql(Server("secondary"), "INSERT INTO app.t VALUES (2, 'after')"));
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                              "SET SESSION sql_log_bin = 0; CREATE USER bi@'%' IDENTIFIED BY "
                              "'bi'; GRANT INSERT, SELECT ON app.* TO bi@'%'"));
  MysqlOptions app;
  app.host = "127.0.0.1";
  app.port = primary_->port();
  app.user = "bi";
  app.password = "bi";
  Result<std::unique_ptr<MysqlSession>> session = MysqlSession::Open(app);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_FALSE((*session)->Execute("INSERT INTO app.t VALUES (3, 'lost')").ok());
  EXPECT_EQ((*session)->last_error_code(), 1290);  // ER_OPTION_PREVENTS_STATEMENT
  EXPECT_NE(Tail("primary", 200).find("fencing this node"), std::string::npos);
}

TEST_F(FailoverTest, AnOldPrimaryThatComesBackAfterAPromotionStaysFenced) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                              "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY);"
                              "INSERT INTO app.t VALUES (1)"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT COUNT(*) FROM app.t"));
  // The primary's node dies (its daemon; its server stays, as after a daemon crash).
  Daemon("primary")->Signal(SIGKILL, 10s);
  Daemon("primary").reset();
  const CommandRun promote = RunReplsync("promote", "");
  ASSERT_EQ(promote.exit_code, 0) << promote.out << promote.err << Tail("secondary", 40);
  WaitForStatus("secondary", "serving as primary",
                [](const NodeStatus& s) { return s.role == "primary" && s.peers_asked; });
  // The old primary's daemon starts again believing it is primary at epoch 1: its first
  // question to its peer answers epoch 2, and it fences itself.
  Daemon("primary") = StartDaemon("primary");
  ASSERT_NE(Daemon("primary"), nullptr);
  ASSERT_NO_FATAL_FAILURE(WaitFenced("primary"));
  EXPECT_EQ(ReadOnly("primary"), "1");
  EXPECT_EQ(PrimaryHealth("primary"), 503);
  // Fenced, it stays fenced across its own restart.
  StopDaemon(Daemon("primary"), SIGTERM);
  Daemon("primary") = StartDaemon("primary");
  ASSERT_NE(Daemon("primary"), nullptr);
  ASSERT_NO_FATAL_FAILURE(WaitFenced("primary", 10s));
  EXPECT_EQ(PrimaryHealth("secondary"), 200);
}

// HAProxy (conf/haproxy.cfg, addresses replaced by loopback ones) in front of two small HTTP
// servers, one per node (HAProxy frontends answering the node's name), checked on replsync's
// health ports: users reach the primary, then after `replsync promote` the promoted node, and at
// no moment both (nor the fenced old primary again).
TEST_F(FailoverTest, HaproxySendsUsersToThePrimaryOnlyAndFollowsThePromotion) {
  std::map<std::string, uint16_t> port;
  for (const char* what : {"switch", "app-primary", "app-secondary"}) {
    Result<uint16_t> p = testing::FreeLoopbackPort();
    ASSERT_TRUE(p.ok());
    port[what] = *p;
  }
  std::ifstream in(std::string(REPLSYNC_SOURCE_DIR) + "/conf/haproxy.cfg");
  std::string cfg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto replace = [&cfg](const std::string& from, const std::string& to) {
    const size_t at = cfg.find(from);
    ASSERT_NE(at, std::string::npos) << from << " is not in conf/haproxy.cfg";
    cfg.replace(at, from.size(), to);
  };
  replace("bind *:80", fmt::format("bind 127.0.0.1:{}", port["switch"]));
  replace("log stdout format raw local0 info", "");
  replace("server node1 10.0.0.1:8080 check port 7701",
          fmt::format("server node1 127.0.0.1:{} check port {}", port["app-primary"],
                      health_ports_["primary"]));
  replace("server node2 10.0.0.2:8080 check port 7701",
          fmt::format("server node2 127.0.0.1:{} check port {}", port["app-secondary"],
                      health_ports_["secondary"]));
  for (const char* node : {"primary", "secondary"}) {
    cfg += fmt::format(
        "\nfrontend app_{0}\n    bind 127.0.0.1:{1}\n"
        "    http-request return status 200 content-type text/plain string {0}\n",
        node, port[std::string("app-") + node]);
  }
  const std::string cfg_path = dir_ + "/haproxy.cfg";
  std::ofstream(cfg_path) << cfg;
  Result<std::unique_ptr<testing::ChildProcess>> haproxy = testing::ChildProcess::Start(
      {"/usr/sbin/haproxy", "-db", "-f", cfg_path}, dir_ + "/haproxy.log");
  ASSERT_TRUE(haproxy.ok()) << haproxy.status().ToString();

  // Which node a user reaches now ("" while HAProxy has no server up: 503).
  auto reached = [&]() -> std::string {
    Result<testing::HttpReply> reply = testing::HttpGet(port["switch"], "/");
    return reply.ok() && reply->code == 200 ? reply->body : "";
  };
  auto wait_reached = [&](const std::string& node) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (reached() != node && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(reached(), node) << Tail("primary") << Tail("secondary");
  };

  ASSERT_NO_FATAL_FAILURE(StartBoth());
  ASSERT_NO_FATAL_FAILURE(wait_reached("primary"));
  // Sampled while the promotion happens: users reach the old primary, then nobody (the check's
  // two failures), then the new one, and never the old one again once the new one answered.
  std::vector<std::string> seen;
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      seen.push_back(reached());
      std::this_thread::sleep_for(50ms);
    }
  });
  const CommandRun promote = RunReplsync("promote", "");
  ASSERT_NO_FATAL_FAILURE(WaitFenced("primary"));
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (reached() != "secondary" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  std::this_thread::sleep_for(3s);  // the old primary's checks go on failing meanwhile
  sampling = false;
  sampler.join();
  ASSERT_EQ(promote.exit_code, 0) << promote.out << promote.err;
  size_t first_new = seen.size();
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_TRUE(seen[i] == "" || seen[i] == "primary" || seen[i] == "secondary") << seen[i];
    if (seen[i] == "secondary" && first_new == seen.size()) first_new = i;
  }
  ASSERT_LT(first_new, seen.size()) << "users never reached the promoted node";
  for (size_t i = first_new; i < seen.size(); ++i) {
    EXPECT_NE(seen[i], "primary") << "sample " << i << " of " << seen.size()
                                  << " reached the fenced old primary after the new one";
  }
  EXPECT_EQ(reached(), "secondary");
}

// Failover with a tail, and the rejoin. The secondary is cut off; the primary commits more and
// changes files (the tail), then the primary's node dies (daemon kill -9); the secondary is
// promoted and written to. The old primary comes back fenced, learns the fork point from the new
// primary, and `replsync rejoin --dry-run` lists exactly the tail: the transactions on the
// replicated database after the fork (with their tables and row counts, not the ones on another
// database) and the file changes. `replsync rejoin` quarantines it (a binlog segment
// mariadb-binlog reads, copies of the files, the report) and makes the old primary an equal,
// following secondary of the new one: `replsync verify` exits 0 there.
TEST_F(FailoverTest, AnOldPrimaryWithATailRejoinsAsAnEqualSecondary) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  const std::string repo = RepositoryPath("primary");
  ASSERT_TRUE(testing::WriteConfigFile(repo + "/shipped.txt", "shipped"));
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                              "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v "
                              "VARCHAR(20)); INSERT INTO app.t VALUES (1, 'shipped')"));
  // An event the primary runs and one it keeps disabled: the secondary runs neither, the
  // promoted node runs the first.
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                              "CREATE EVENT app.tick ON SCHEDULE EVERY 1 HOUR DO SELECT 1;"
                              "CREATE EVENT app.off ON SCHEDULE EVERY 1 HOUR DISABLE DO SELECT 1"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT GROUP_CONCAT(v) FROM app.t"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT COUNT(*) FROM information_schema.EVENTS"));
  ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(30s));
  EXPECT_EQ(Events("secondary"), "off DISABLED, tick SLAVESIDE_DISABLED");
  StopDaemon(Daemon("secondary"), SIGTERM);
  // The tail: four transactions on app, three on a database that does not replicate, a file
  // changed and one added.
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                              "INSERT INTO app.t VALUES (2, 'a'), (3, 'b');"
                              "UPDATE app.t SET v = 'changed' WHERE id = 1;"
                              "CREATE DATABASE other; CREATE TABLE other.x (a INT);"
                              "INSERT INTO other.x VALUES (1);"
                              "DELETE FROM app.t WHERE id = 2;"
                              "ALTER TABLE app.t ADD COLUMN c INT"));
  const std::optional<NodeStatus> before = ReadStatus("primary");
  ASSERT_TRUE(before && before->primary && before->primary->files);
  const uint64_t journaled = before->primary->files->changes_journaled;
  ASSERT_TRUE(testing::WriteConfigFile(repo + "/shipped.txt", "changed on the old primary"));
  ASSERT_TRUE(testing::WriteConfigFile(repo + "/tail.txt", "only on the old primary"));
  WaitForStatus("primary", "the two file changes journaled", [journaled](const NodeStatus& s) {
    return s.primary && s.primary->files && s.primary->files->changes_journaled >= journaled + 2;
  });
  Daemon("primary")->Signal(SIGKILL, 10s);
  Daemon("primary").reset();
  Daemon("secondary") = StartDaemon("secondary");
  ASSERT_NE(Daemon("secondary"), nullptr);
  const CommandRun promote = RunReplsync("promote", "");
  ASSERT_EQ(promote.exit_code, 0) << promote.out << promote.err << Tail("secondary", 40);
  WaitForStatus("secondary", "serving as primary",
                [](const NodeStatus& s) { return s.role == "primary" && s.peers_asked; });
  EXPECT_NE(promote.out.find("events enabled: app.tick"), std::string::npos) << promote.out;
  EXPECT_EQ(Events("secondary"), "off DISABLED, tick ENABLED");
  ASSERT_NO_FATAL_FAILURE(Sql(Server("secondary"), "INSERT INTO app.t VALUES (10, 'new primary')"));
  // The new primary changes one of the tail's paths too: a conflict in the report.
  WaitForStatus("secondary", "its repository scanned", [](const NodeStatus& s) {
    return s.primary && s.primary->files && s.primary->files->state == "watching";
  });
  const std::optional<NodeStatus> promoted = ReadStatus("secondary");
  ASSERT_TRUE(promoted && promoted->primary && promoted->primary->files);
  const uint64_t journaled_there = promoted->primary->files->changes_journaled;
  ASSERT_TRUE(testing::WriteConfigFile(RepositoryPath("secondary") + "/shipped.txt",
                                       "changed on the new primary"));
  WaitForStatus("secondary", "its change journaled", [journaled_there](const NodeStatus& s) {
    return s.primary && s.primary->files && s.primary->files->changes_journaled > journaled_there;
  });

  Daemon("primary") = StartDaemon("primary");
  ASSERT_NE(Daemon("primary"), nullptr);
  ASSERT_NO_FATAL_FAILURE(WaitFenced("primary"));
  ASSERT_EQ(Role("primary").forks.size(), 1u) << "the fork point was not learnt";
  EXPECT_EQ(Role("primary").forks[0].promoted, "secondary");

  const CommandRun report = RunReplsync("rejoin", "--dry-run --json", "", "primary");
  ASSERT_EQ(report.exit_code, 1) << report.out << report.err;
  rapidjson::Document doc;
  doc.Parse(report.out.data(), report.out.size());
  ASSERT_TRUE(doc.IsObject()) << report.out;
  EXPECT_EQ(doc["fork"]["epoch"].GetUint64(), 2u);
  const auto& txns = doc["transactions"];
  ASSERT_EQ(txns.Size(), 4u) << report.out;
  EXPECT_EQ(txns[0]["tables"]["app.t"].GetUint64(), 2u);  // the INSERT of two rows
  EXPECT_EQ(txns[1]["tables"]["app.t"].GetUint64(), 1u);  // the UPDATE
  EXPECT_EQ(txns[2]["tables"]["app.t"].GetUint64(), 1u);  // the DELETE
  ASSERT_EQ(txns[3]["ddl"].Size(), 1u);
  EXPECT_NE(std::string(txns[3]["ddl"][0].GetString()).find("ADD COLUMN c"), std::string::npos);
  std::vector<std::string> gtids;
  for (rapidjson::SizeType i = 0; i < txns.Size(); ++i) {
    gtids.emplace_back(txns[i]["gtid"].GetString());
    EXPECT_NE(gtids.back(), "") << i;
  }
  EXPECT_GE(doc["skipped_transactions"].GetUint64(), 3u);
  // The tail begins right where the promoted node stopped applying.
  const ForkPoint& fork = Role("primary").forks[0];
  EXPECT_EQ(std::string(txns[0]["begin"].GetString()),
            fork.binlog_file + ":" + std::to_string(fork.binlog_offset));
  std::vector<std::string> paths;
  for (const auto& f : doc["files"].GetArray()) {
    EXPECT_EQ(std::string(f["change"].GetString()), "file");
    paths.emplace_back(f["path"].GetString());
    // shipped.txt: changed by the new primary after the fork too; tail.txt: only here.
    EXPECT_EQ(f["conflict"].GetBool(), paths.back() == "shipped.txt") << report.out;
  }
  std::sort(paths.begin(), paths.end());
  EXPECT_EQ(paths, (std::vector<std::string>{"shipped.txt", "tail.txt"})) << report.out;
  EXPECT_EQ(std::string(doc["conflicts"].GetString()), "checked") << report.out;
  EXPECT_EQ(std::string(doc["quarantine"].GetString()), "");

  const CommandRun text = RunReplsync("rejoin", "--dry-run", "", "primary");
  EXPECT_EQ(text.exit_code, 1) << text.err;
  EXPECT_NE(text.out.find("unshipped tail of primary: 4 transactions and 2 file changes"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("shipped.txt -- conflict: secondary changed it too"), std::string::npos)
      << text.out;
  // The new primary has nothing to rejoin.
  EXPECT_EQ(RunReplsync("rejoin", "--dry-run").exit_code, 1);

  const CommandRun rejoin = RunReplsync("rejoin", "", "", "primary");
  ASSERT_EQ(rejoin.exit_code, 0) << rejoin.out << rejoin.err << Tail("primary", 60);
  EXPECT_NE(rejoin.out.find("quarantined in"), std::string::npos) << rejoin.out;
  EXPECT_NE(rejoin.out.find("done:"), std::string::npos) << rejoin.out;
  EXPECT_EQ(Role("primary").role, NodeRole::kSecondary);
  EXPECT_EQ(Role("primary").epoch, 2u);
  EXPECT_FALSE(Role("primary").fenced);

  // The quarantine: the report, the files as the old primary had them, its journal, and the
  // binlog segment, which mariadb-binlog reads, holding the tail's transactions.
  const std::string quarantine = dir_ + "/primary-state/quarantine/2";
  EXPECT_TRUE(std::filesystem::exists(quarantine + "/report.json"));
  EXPECT_TRUE(std::filesystem::is_directory(quarantine + "/journal"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/primary-state/journal"));
  std::ifstream quarantined(quarantine + "/files/tail.txt");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(quarantined), {}),
            "only on the old primary");
  std::string decoded;
  FILE* pipe = popen(("/usr/bin/mariadb-binlog " + quarantine + "/tail.binlog 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), pipe)) > 0;) decoded.append(buf, n);
  EXPECT_EQ(pclose(pipe), 0) << decoded;
  for (const std::string& gtid : gtids) {
    EXPECT_NE(decoded.find("GTID " + gtid), std::string::npos) << gtid << "\n" << decoded;
  }

  // Equal to the new primary, and following it.
  ASSERT_NO_FATAL_FAILURE(Sql(Server("secondary"), "INSERT INTO app.t VALUES (11, 'after')"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT GROUP_CONCAT(id, v ORDER BY id) FROM app.t"));
  auto rows = Server("primary").Query("SELECT GROUP_CONCAT(id, v ORDER BY id) FROM app.t");
  ASSERT_TRUE(rows.ok() && rows->size() == 1) << rows.status().ToString();
  EXPECT_EQ((*rows)[0][0], "1shipped,10new primary,11after");
  // The tail's ADD COLUMN is undone too.
  rows = Server("primary").Query(
      "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND "
      "TABLE_NAME = 't'");
  ASSERT_TRUE(rows.ok() && rows->size() == 1) << rows.status().ToString();
  EXPECT_EQ((*rows)[0][0], "2");
  ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(30s));
  EXPECT_FALSE(std::filesystem::exists(repo + "/tail.txt"));
  std::ofstream(dir_ + "/primary.toml", std::ios::app) << fmt::format(
      "\n[primary_mysql]\nhost = \"127.0.0.1\"\nport = {}\nuser = \"root\"\n"
      "password = \"\"\n",
      Server("secondary").port());
  const CommandRun verify = RunReplsync("verify", "", "", "primary");
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(ReadOnly("primary"), "1");
  // The rejoined node's copy of the events: the one the new primary runs held disabled here.
  EXPECT_EQ(Events("primary"), "off DISABLED, tick SLAVESIDE_DISABLED");
  WaitForStatus("primary", "following the new primary", [](const NodeStatus& s) {
    return s.role == "secondary" && s.secondary && s.error.empty();
  });
  Result<testing::HttpReply> health =
      testing::HttpGet(health_ports_.at("primary"), "/health/secondary");
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(health->code, 200) << health->body;
}

// `replsync switchover` under a writer that goes wherever /health/primary answers 200 (as users
// behind the switch do) through an account without SUPER (which read_only stops): the old
// primary refuses writes, the secondary takes over with everything, the old primary follows it.
// Every insert acknowledged on either node is on both, none twice; the files written before and
// after are on both; verify exits 0 on the old primary, now the secondary.
TEST_F(FailoverTest, SwitchoverUnderWritesLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  ASSERT_NO_FATAL_FAILURE(MakeApp());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(testing::WriteConfigFile(RepositoryPath("primary") + fmt::format("/before{}", i),
                                         fmt::format("file {}", i)));
  }

  Writer writer(*this);
  std::this_thread::sleep_for(2s);
  const CommandRun run = RunReplsync("switchover", "", "", "primary");
  std::this_thread::sleep_for(2s);
  writer.Stop();
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << Tail("primary", 60) << Tail("secondary", 40);
  EXPECT_NE(run.out.find("writes were refused for"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("done:"), std::string::npos) << run.out;
  std::printf("%s", run.out.substr(0, run.out.find('\n') + 1).c_str());
  EXPECT_GT(writer.refused(), 0) << "the writer never met the refusal: the test proved little";
  ASSERT_GT(writer.acked().size(), 100u);

  // Roles swapped, the epoch raised, the old primary following.
  EXPECT_EQ(Role("secondary").role, NodeRole::kPrimary);
  EXPECT_EQ(Role("secondary").epoch, 2u);
  EXPECT_EQ(Role("primary").role, NodeRole::kSecondary);
  EXPECT_FALSE(Role("primary").fenced);
  EXPECT_EQ(ReadOnly("primary"), "1");
  EXPECT_EQ(ReadOnly("secondary"), "0");
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(testing::WriteConfigFile(RepositoryPath("secondary") + fmt::format("/after{}", i),
                                         fmt::format("file {}", i)));
  }
  ASSERT_NO_FATAL_FAILURE(Sql(Server("secondary"), "INSERT INTO app.w VALUES (0, 'last')"));
  // Every acknowledged insert, on both (a primary key: none twice), and nothing else.
  ASSERT_NO_FATAL_FAILURE(ExpectAcknowledgedOnBoth(writer));
  ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(30s));
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyOn("primary"));

  // And back: the node promoted first, a secondary before, rejoins with its older relay and
  // applied position put aside.
  const CommandRun back = RunReplsync("switchover", "", "", "secondary");
  ASSERT_EQ(back.exit_code, 0) << back.out << back.err << Tail("secondary", 60);
  EXPECT_EQ(Role("primary").role, NodeRole::kPrimary);
  EXPECT_EQ(Role("primary").epoch, 3u);
  EXPECT_EQ(Role("secondary").role, NodeRole::kSecondary);
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, "INSERT INTO app.w VALUES (-1, 'back')"));
  ASSERT_NO_FATAL_FAILURE(ExpectAcknowledgedOnBoth(writer));
  ASSERT_NO_FATAL_FAILURE(ExpectVerifyOn("secondary"));
}

// The failover soak (tools/failover_soak.sh runs REPLSYNC_FAILOVER_ROUNDS rounds; the suite one):
// in every round, under a writer that follows /health/primary and file changes, a switchover to
// the other node, then an unplanned failover back (the writer paused, the primary's replsyncd
// killed with SIGKILL, the other node promoted, the old one rejoined: its tail is empty), each
// ending with every acknowledged write on both nodes, equal trees and verify exit 0. It prints
// what each step took.
// "writes were refused for N s" out of switchover's output ("" when it is not there).
std::string RefusedFor(const std::string& out) {
  const size_t at = out.find("writes were refused for ");
  const size_t end = at == std::string::npos ? at : out.find(" s", at + 24);
  return end == std::string::npos ? "" : out.substr(at, end + 2 - at);
}

TEST_F(FailoverTest, FailoverRoundsUnderWritesLoseNothing) {
  int rounds = 1;
  if (const char* env = std::getenv("REPLSYNC_FAILOVER_ROUNDS"))
    rounds = std::max(1, std::atoi(env));
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  ASSERT_NO_FATAL_FAILURE(MakeApp());
  Writer writer(*this);
  std::string primary = "primary", secondary = "secondary";
  auto seconds = [](auto since) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
  };
  // After each step: every acknowledged insert on both nodes, equal trees, verify exit 0.
  auto expect_equal = [&] {
    writer.Pause();
    ASSERT_NO_FATAL_FAILURE(ExpectAcknowledgedOnBoth(writer));
    writer.Resume();
    ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(30s, "secondary"));
    ASSERT_NO_FATAL_FAILURE(ExpectVerifyOn(secondary));
  };
  for (int round = 1; round <= rounds; ++round) {
    ASSERT_TRUE(testing::WriteConfigFile(
        RepositoryPath(primary) + fmt::format("/round{}-{}.txt", round, primary), "before"));
    std::this_thread::sleep_for(1s);
    auto began = std::chrono::steady_clock::now();
    const CommandRun run = RunReplsync("switchover", "", "", primary);
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err << Tail(primary, 60) << Tail(secondary, 40);
    std::printf("round %d: switchover %s -> %s in %.1f s (%s)\n", round, primary.c_str(),
                secondary.c_str(), seconds(began), RefusedFor(run.out).c_str());
    std::swap(primary, secondary);
    ASSERT_NO_FATAL_FAILURE(expect_equal());

    // Unplanned: the primary's replsyncd dies (the writer paused first: what it wrote after the
    // last shipment would be a tail); the other node is promoted.
    ASSERT_TRUE(testing::WriteConfigFile(
        RepositoryPath(primary) + fmt::format("/round{}-{}.txt", round, primary), "failover"));
    ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(30s, "secondary"));
    writer.Pause();
    ASSERT_NO_FATAL_FAILURE(ExpectAcknowledgedOnBoth(writer));
    Daemon(primary)->Signal(SIGKILL, 10s);
    Daemon(primary).reset();
    began = std::chrono::steady_clock::now();
    const CommandRun promote = RunReplsync("promote", "", "", secondary);
    ASSERT_EQ(promote.exit_code, 0) << promote.out << promote.err << Tail(secondary, 40);
    WaitForStatus(secondary, "serving as primary",
                  [](const NodeStatus& s) { return s.role == "primary" && s.peers_asked; });
    const double promoted = seconds(began);
    writer.Resume();
    Daemon(primary) = StartDaemon(primary);
    ASSERT_NE(Daemon(primary), nullptr);
    ASSERT_NO_FATAL_FAILURE(WaitFenced(primary));
    began = std::chrono::steady_clock::now();
    const CommandRun rejoin = RunReplsync("rejoin", "", "", primary);
    ASSERT_EQ(rejoin.exit_code, 0) << rejoin.out << rejoin.err << Tail(primary, 60);
    EXPECT_NE(rejoin.out.find("no unshipped tail"), std::string::npos) << rejoin.out;
    std::printf("round %d: failover to %s: promoted and serving in %.1f s; %s rejoined in %.1f s\n",
                round, secondary.c_str(), promoted, primary.c_str(), seconds(began));
    std::swap(primary, secondary);
    ASSERT_NO_FATAL_FAILURE(expect_equal());
  }
  writer.Stop();
  EXPECT_GT(writer.refused(), 0);
  ASSERT_NO_FATAL_FAILURE(ExpectAcknowledgedOnBoth(writer));
}

// A stale secondary: the primary journaled transactions it never shipped (held back by a test
// hook while its heartbeats say what it holds), then died. `replsync promote` refuses, saying
// how much would be lost, and changes nothing; `--force` promotes and records the range lost.
TEST_F(FailoverTest, PromoteRefusesAStaleSecondaryAndForceRecordsTheLoss) {
  const std::string hold = dir_ + "/hold-entries";
  ASSERT_EQ(setenv("REPLSYNC_TEST_SHIP_HOLD_FILE", hold.c_str(), 1), 0);
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  unsetenv("REPLSYNC_TEST_SHIP_HOLD_FILE");
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                              "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY);"
                              "INSERT INTO app.t VALUES (1)"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT COUNT(*) FROM app.t"));
  std::ofstream(hold).flush();  // naming no peer: entries held from all
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                              "INSERT INTO app.t VALUES (2); INSERT INTO app.t VALUES (3);"
                              "INSERT INTO app.t VALUES (4)"));
  WaitForStatus("secondary", "heartbeats saying the primary holds more than was received",
                [](const NodeStatus& s) {
                  return s.secondary &&
                         s.secondary->primary_last_seq >= s.secondary->received_seq + 3;
                });
  Daemon("primary")->Signal(SIGKILL, 10s);
  Daemon("primary").reset();
  // The secondary's replsyncd restarts after the primary died: what the primary last said is
  // kept in its relay, so the refusal does not depend on this process having heard it.
  ASSERT_NO_FATAL_FAILURE(StopDaemon(Daemon("secondary"), SIGTERM));
  ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon());

  const CommandRun refused = RunReplsync("promote", "");
  EXPECT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("3 entries (transactions and file changes) would be lost"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(Role("secondary").role, NodeRole::kSecondary);
  EXPECT_EQ(Role("secondary").epoch, 1u);
  EXPECT_EQ(ReadOnly("secondary"), "1");
  EXPECT_NE(Tail("secondary", 40).find("promote refused"), std::string::npos);

  const CommandRun forced = RunReplsync("promote", "--force");
  ASSERT_EQ(forced.exit_code, 0) << forced.out << forced.err << Tail("secondary", 40);
  EXPECT_NE(forced.out.find("known lost (--force)"), std::string::npos) << forced.out;
  const RoleState promoted = Role("secondary");
  EXPECT_EQ(promoted.role, NodeRole::kPrimary);
  ASSERT_EQ(promoted.forks.size(), 1u);
  EXPECT_NE(promoted.forks[0].lost, "");
  WaitForStatus("secondary", "serving as primary",
                [](const NodeStatus& s) { return s.role == "primary" && s.peers_asked; });
  EXPECT_EQ(PrimaryHealth("secondary"), 200);
  auto rows = Server("secondary").Query("SELECT COUNT(*) FROM app.t");
  ASSERT_TRUE(rows.ok() && rows->size() == 1) << rows.status().ToString();
  EXPECT_EQ((*rows)[0][0], "1") << "what was never received cannot be there";
}

TEST_F(FailoverTest, TwoNodesStartedAsPrimaryBothFenceThemselvesUntilOneIsPromoted) {
  // A configuration mistake: both say role = "primary" at their first start (each names the
  // other in [peers]).
  ASSERT_NO_FATAL_FAILURE(WriteConfig("secondary", "primary", Server("secondary").port()));
  Daemon("primary") = StartDaemon("primary");
  Daemon("secondary") = StartDaemon("secondary");
  ASSERT_NE(Daemon("primary"), nullptr);
  ASSERT_NE(Daemon("secondary"), nullptr);
  ASSERT_NO_FATAL_FAILURE(WaitFenced("primary"));
  ASSERT_NO_FATAL_FAILURE(WaitFenced("secondary"));
  EXPECT_NE(Role("primary").fenced_by.find("two primaries"), std::string::npos)
      << Role("primary").fenced_by;
  EXPECT_NE(Role("secondary").fenced_by.find("two primaries"), std::string::npos)
      << Role("secondary").fenced_by;
  EXPECT_EQ(PrimaryHealth("primary"), 503);
  EXPECT_EQ(PrimaryHealth("secondary"), 503);

  // The way out: promote --force on the node whose data is kept (without --force: refused,
  // saying so); the other learns the higher epoch and rejoins it.
  const CommandRun asked = RunReplsync("promote", "", "", "primary");
  EXPECT_EQ(asked.exit_code, 1) << asked.out << asked.err;
  EXPECT_NE(asked.err.find("`replsync promote --force` here makes it the primary at epoch 2"),
            std::string::npos)
      << asked.err;
  ASSERT_NO_FATAL_FAILURE(Sql(Server("secondary"),
                              "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY);"
                              "INSERT INTO app.t VALUES (99)"));  // only on the one not kept
  const CommandRun kept = RunReplsync("promote", "--force", "", "primary");
  ASSERT_EQ(kept.exit_code, 0) << kept.out << kept.err << Tail("primary", 40);
  EXPECT_EQ(Role("primary").role, NodeRole::kPrimary);
  EXPECT_EQ(Role("primary").epoch, 2u);
  EXPECT_FALSE(Role("primary").fenced);
  WaitForStatus("primary", "serving as primary", [](const NodeStatus& s) {
    return s.role == "primary" && !s.fenced && s.peers_asked && s.state == "running";
  });
  EXPECT_EQ(PrimaryHealth("primary"), 200);
  EXPECT_EQ(ReadOnly("primary"), "0");
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                              "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY);"
                              "INSERT INTO app.t VALUES (1)"));
  WaitForStatus("secondary", "the promotion learnt",
                [](const NodeStatus& s) { return s.fenced && s.epoch >= 1; });
  for (int i = 0; i < 100 && Role("secondary").forks.empty(); ++i) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(Role("secondary").forks.size(), 1u) << "the other did not learn the promotion";
  EXPECT_EQ(PrimaryHealth("secondary"), 503);

  const CommandRun report = RunReplsync("rejoin", "--dry-run", "", "secondary");
  EXPECT_EQ(report.exit_code, 1) << report.out << report.err;
  EXPECT_NE(report.out.find("where their data parted is not known"), std::string::npos)
      << report.out;
  const CommandRun rejoin = RunReplsync("rejoin", "", "", "secondary");
  ASSERT_EQ(rejoin.exit_code, 0) << rejoin.out << rejoin.err << Tail("secondary", 60);
  EXPECT_EQ(Role("secondary").role, NodeRole::kSecondary);
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, "INSERT INTO app.t VALUES (2)"));
  ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t"));
  auto rows = Server("secondary").Query("SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t");
  ASSERT_TRUE(rows.ok() && rows->size() == 1) << rows.status().ToString();
  EXPECT_EQ((*rows)[0][0], "1,2") << "the kept node's rows, and only those";
}

}  // namespace
}  // namespace replsync
