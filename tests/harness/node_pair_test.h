// NodePairTest: a GoogleTest fixture with a primary and a secondary node on this machine — two
// real MariaDB servers (tests/harness/mariadb_server.h), a repository folder and a configuration
// file for each, and replsyncd started as a real process per node — for the end-to-end tests.
// A fixture made with `secondaries = 2` has a second secondary, "secondary2" (its own server,
// key, state, repository and configuration), and the primary's [peers] lists both.
// A failing test keeps its folder (logs, configs, state) and says where; a passing one removes
// it. Header-only: integration tests link GoogleTest, the harness library does not.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/node/node_status.h"
#include "sync/wire/curve_keys.h"
#include "tests/harness/child_process.h"
#include "tests/harness/config_file.h"
#include "tests/harness/mariadb_server.h"
#include "tests/harness/repo_tree.h"

namespace replsync::testing {

class NodePairTest : public ::testing::Test {
 protected:
  // `databases`: [mysql] databases of every configuration; `name`: the temporary folder's
  // prefix (/tmp/replsync-NAME-XXXXXX); `secondaries`: 1 ("secondary") or 2 ("secondary" and
  // "secondary2").
  NodePairTest(std::vector<std::string> databases, std::string name, int secondaries = 1)
      : databases_(std::move(databases)), name_(std::move(name)), secondaries_(secondaries) {}

  // A test of the health endpoints sets this in its constructor: SetUp then gives every node a
  // free loopback port (health_ports_), and WriteConfig writes its [health] section: listen, then
  // HealthSettings(node).
  bool with_health_ = false;
  std::map<std::string, uint16_t> health_ports_;
  virtual std::string HealthSettings(const std::string& node) { return ""; }

  void SetUp() override {
    ASSERT_TRUE(secondaries_ == 1 || secondaries_ == 2) << "secondaries " << secondaries_;
    std::string tmpl = "/tmp/replsync-" + name_ + "-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    uint32_t server_id = 0;
    for (const std::string& node : Nodes()) {
      MariadbServerOptions options;
      options.server_id = ++server_id;
      auto server = MariadbServer::Start(options);
      ASSERT_TRUE(server.ok()) << node << ": " << server.status().ToString();
      ServerSlot(node) = std::move(server).value();
    }
    // Where each node listens as a primary: the primary's [transport] listen, and each
    // secondary's [peers] endpoint on the others.
    for (const std::string& node : Nodes()) {
      auto port = FreeLoopbackPort();
      ASSERT_TRUE(port.ok());
      EndpointSlot(node) = fmt::format("tcp://127.0.0.1:{}", *port);
      if (!with_health_) continue;
      auto health = FreeLoopbackPort();
      ASSERT_TRUE(health.ok());
      health_ports_[node] = *health;
    }
    // Each node's own CURVE key, as `replsync keygen` makes it.
    for (const std::string& node : Nodes()) {
      auto pair = GenerateCurveKeyPair();
      ASSERT_TRUE(pair.ok()) << pair.status().ToString();
      ASSERT_TRUE(WriteCurveSecretKeyFile(KeyPath(node), pair->secret_key).ok());
      keys_[node] = *pair;
    }
    for (const std::string& node : Nodes()) {
      WriteConfig(node, node == "primary" ? "primary" : "secondary", Server(node).port());
    }
  }

  void TearDown() override {
    for (const std::string& node : Nodes()) Daemon(node).reset();
    if (HasFailure()) {
      std::fprintf(stderr, "logs kept in %s\n", dir_.c_str());
    } else {
      std::filesystem::remove_all(dir_);
    }
  }

  // The fixture's secondaries: "secondary", then "secondary2" when there are two.
  std::vector<std::string> Secondaries() const {
    std::vector<std::string> out = {"secondary"};
    if (secondaries_ == 2) out.push_back("secondary2");
    return out;
  }
  // Every node: "primary", then the secondaries.
  std::vector<std::string> Nodes() const {
    std::vector<std::string> out = {"primary"};
    for (std::string& node : Secondaries()) out.push_back(std::move(node));
    return out;
  }

  // The node's MariaDB server and its replsyncd (null while not running).
  MariadbServer& Server(const std::string& node) { return *ServerSlot(node); }
  std::unique_ptr<ChildProcess>& Daemon(const std::string& node) {
    return Pick(node, primary_daemon_, secondary_daemon_, secondary2_daemon_);
  }
  // Where the node listens as a primary ("tcp://127.0.0.1:PORT").
  const std::string& Endpoint(const std::string& node) { return EndpointSlot(node); }

  // The node's repository folder; the primary's exists from the start.
  std::string RepositoryPath(const std::string& node) const {
    return dir_ + "/" + node + "-repository";
  }

  // The node's secret key file ([transport] secret_key_file).
  std::string KeyPath(const std::string& node) const { return dir_ + "/" + node + ".key"; }

  // The [peers] table naming `peer` (its endpoint, its public key).
  std::string PeerTable(const std::string& peer) {
    return fmt::format("[peers.{}]\nendpoint = \"{}\"\npublic_key = \"{}\"\n", peer, Endpoint(peer),
                       keys_.at(peer).public_key);
  }

  // More of `node`'s configuration, appended by WriteConfig: sections a test adds (its
  // [bootstrap], say). Called from SetUp too.
  virtual std::string ExtraConfig(const std::string& node) { return ""; }

  // Writes <dir>/<node>.toml (mode 0600) with `role`, the node's MariaDB at `port`, and
  // `peers` in [peers]: by default every secondary on the primary, the primary on a
  // secondary, then ExtraConfig(node). A running daemon reads it when it is started again.
  void WriteConfig(const std::string& node, const std::string& role, uint16_t port,
                   std::optional<std::vector<std::string>> peers = std::nullopt) {
    if (role == "primary") std::filesystem::create_directories(RepositoryPath(node));
    if (!peers) {
      peers = node == "primary" ? Secondaries() : std::vector<std::string>{"primary"};
    }
    std::string peer_tables;
    for (const std::string& peer : *peers) {
      if (!peer_tables.empty()) peer_tables += "\n";
      peer_tables += PeerTable(peer);
    }
    std::string databases;
    for (const auto& db : databases_) databases += (databases.empty() ? "\"" : ", \"") + db + "\"";
    std::string text = fmt::format(R"([node]
role = "{}"
name = "{}"
state_dir = "{}/{}-state"

[mysql]
host = "127.0.0.1"
port = {}
user = "root"
password = ""
databases = [{}]

[repository]
path = "{}"
# The file tests check that every mode arrives as it was, setuid/setgid included.
keep_setid = true

[transport]
listen = "{}"
primary = "{}"
secret_key_file = "{}"

[log]
level = "debug"

{})",
                                   role, node, dir_, node, port, databases, RepositoryPath(node),
                                   Endpoint(node), transport_, KeyPath(node), peer_tables);
    if (role == "secondary") {
      // For `replsync verify`: the primary's database as the secondary reaches it.
      text += fmt::format(
          "\n[primary_mysql]\nhost = \"127.0.0.1\"\nport = {}\nuser = "
          "\"root\"\npassword = \"\"\n",
          primary_->port());
    }
    text += "\n";
    if (with_health_) {
      text += fmt::format("[health]\nlisten = \"127.0.0.1:{}\"\n{}\n", health_ports_.at(node),
                          HealthSettings(node));
    }
    text += ExtraConfig(node);
    ASSERT_TRUE(testing::WriteConfigFile(dir_ + "/" + node + ".toml", text));
  }

  // Starts replsyncd for `node` and waits until its status file carries its pid (it is up, has
  // blocked SIGTERM, and has its position). nullptr (with a test failure) when it does not.
  std::unique_ptr<ChildProcess> StartDaemon(const std::string& node) {
    auto child = ChildProcess::Start(
        {REPLSYNC_BINARY_DIR "/tools/replsyncd", "--config", dir_ + "/" + node + ".toml"},
        dir_ + "/" + node + ".log");
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    if (!child.ok()) return nullptr;
    const int64_t pid = (*child)->pid();
    WaitForStatus(node, fmt::format("pid {}", pid),
                  [pid](const NodeStatus& status) { return status.pid == pid; });
    return std::move(child).value();
  }

  // A new primary starts capturing at the server's current position: changes made before it
  // runs are the bootstrap's business, so tests make theirs after it reports running.
  void StartPrimaryDaemon() {
    primary_daemon_ = StartDaemon("primary");
    ASSERT_TRUE(primary_daemon_);
    WaitForStatus("primary", "capture_state running", [](const NodeStatus& status) {
      return status.primary && status.primary->capture_state == "running";
    });
  }
  void StartSecondaryDaemon(const std::string& node = "secondary") {
    Daemon(node) = StartDaemon(node);
    ASSERT_TRUE(Daemon(node));
  }
  // Both, the primary first.
  void StartBoth() {
    ASSERT_NO_FATAL_FAILURE(StartPrimaryDaemon());
    ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon());
  }

  // Waits until the secondary `node`'s repository equals the node `from`'s (the harness' own
  // comparison, tests/harness/repo_tree.h); fails with the differences, both statuses and logs.
  void ExpectTreesConverge(std::chrono::seconds timeout, const std::string& node = "secondary",
                           const std::string& from = "primary") {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<std::string> diff;
    while (true) {
      auto a = SnapshotTree(RepositoryPath(from));
      auto b = SnapshotTree(RepositoryPath(node));
      if (a.ok() && b.ok()) {
        diff = CompareTrees(*a, *b);
        if (diff.empty()) return;
      } else {
        diff = {a.ok() ? b.status().ToString() : a.status().ToString()};
      }
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    std::string text;
    for (const auto& d : diff) text += "  " + d + "\n";
    ADD_FAILURE() << node << "'s repository did not converge in " << timeout.count() << " s:\n"
                  << text << from << " status:\n"
                  << StatusText(from) << "\n"
                  << node << " status:\n"
                  << StatusText(node) << "\n"
                  << from << " log:\n"
                  << Tail(from) << node << " log:\n"
                  << Tail(node);
  }

  // Waits until every base table of the fixture's databases (at least one table) has the same
  // CHECKSUM TABLE ... EXTENDED on the server of `from` (the primary) and the secondary `node`'s;
  // fails with the tables that differ and the daemons' log tails after `timeout`. Needs the
  // databases named (not `[]`).
  void ExpectTablesConverge(std::chrono::seconds timeout, const std::string& node = "secondary",
                            const std::string& from = "primary") {
    ASSERT_FALSE(databases_.empty()) << "ExpectTablesConverge needs the databases named";
    std::string in;
    for (const auto& db : databases_) in += (in.empty() ? "'" : ", '") + db + "'";
    auto checksum = [](MariadbServer& server, const std::string& table) {
      auto rows = server.Query("CHECKSUM TABLE " + table + " EXTENDED");
      return rows.ok() && !rows->empty() && (*rows)[0].size() > 1 ? (*rows)[0][1]
                                                                  : std::string("unreadable");
    };
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string diff;
    while (true) {
      auto tables = Server(from).Query(
          "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables WHERE "
          "table_schema IN (" +
          in + ") AND table_type = 'BASE TABLE' ORDER BY 1");
      diff = tables.ok() ? (tables->empty() ? "  no tables on " + from + "\n" : "")
                         : "  " + tables.status().ToString() + "\n";
      if (tables.ok()) {
        for (const auto& row : *tables) {
          const std::string a = checksum(Server(from), row[0]);
          const std::string b = checksum(Server(node), row[0]);
          if (a != b) diff += fmt::format("  {}: {} {} {} {}\n", row[0], from, a, node, b);
        }
      }
      if (diff.empty()) return;
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    ADD_FAILURE() << node << "'s tables did not converge in " << timeout.count() << " s:\n"
                  << diff << node << " status:\n"
                  << StatusText(node) << "\n"
                  << from << " log:\n"
                  << Tail(from) << node << " log:\n"
                  << Tail(node);
  }

  // Stops a daemon with `sig`; SIGTERM must end it cleanly with exit 0.
  void StopDaemon(std::unique_ptr<ChildProcess>& daemon, int sig) {
    ASSERT_TRUE(daemon);
    auto status = daemon->Signal(sig, std::chrono::seconds(30));
    ASSERT_TRUE(status.has_value()) << "replsyncd did not stop on signal " << sig << "\n"
                                    << daemon->LogTail();
    if (sig == SIGTERM) {
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
          << DescribeExitStatus(*status) << "\n"
          << daemon->LogTail();
    }
    daemon.reset();
  }

  std::string StatusText(const std::string& node) const {
    std::ifstream in(dir_ + "/" + node + "-state/status.json");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  // The node's status file read through NodeStatus (the file's one reader); nullopt while there
  // is none or it does not parse.
  std::optional<NodeStatus> ReadStatus(const std::string& node) const {
    Result<NodeStatus> status = NodeStatus::Parse(StatusText(node));
    if (!status.ok()) return std::nullopt;
    return std::move(status).value();
  }

  // Waits until the node's status satisfies `want`; `what` says what was waited for.
  void WaitForStatus(const std::string& node, const std::string& what,
                     const std::function<bool(const NodeStatus&)>& want,
                     std::chrono::seconds timeout = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::optional<NodeStatus> status = ReadStatus(node);
      if (status && want(*status)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << node << " replsyncd did not report " << what << "\n"
                  << StatusText(node) << "\n"
                  << Tail(node);
  }

  // A session of its own as root on the server at `port`, over TCP on loopback: a writer thread's
  // (which holds a MysqlThreadScope).
  static Result<std::unique_ptr<MysqlSession>> OpenRootSession(uint16_t port) {
    MysqlOptions options;
    options.host = "127.0.0.1";
    options.port = port;
    options.user = "root";
    return MysqlSession::Open(options);
  }

  // Runs `SQL` on `server`; a failure fails the test, naming the statement.
  void Sql(MariadbServer& server, const std::string& sql) {
    Status st = server.Execute(sql);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\nin: " << sql.substr(0, 300);
  }

  // Waits (up to 60 s) until `query`'s first value is the same on the primary's server and the
  // secondary `node`'s.
  void WaitSame(const std::string& query, const std::string& node = "secondary") {
    std::string a, b;
    for (int i = 0; i < 600; ++i) {
      auto ra = primary_->Query(query);
      auto rb = Server(node).Query(query);
      a = ra.ok() && !ra->empty() ? (*ra)[0][0] : "?";
      b = rb.ok() && !rb->empty() ? (*rb)[0][0] : "!";
      if (a == b) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << query << ": primary " << a << ", " << node << " " << b;
  }

  // What a `replsync` command run by RunReplsync did.
  struct CommandRun {
    int exit_code = -1;
    std::string out;  // standard output
    std::string err;  // standard error
    double seconds = 0;
  };

  // Runs `ENV replsync COMMAND --config <dir>/NODE.toml FLAGS` as a user would (a shell, the
  // real binary); ENV is "NAME=value ..." or "".
  CommandRun RunReplsync(const std::string& command, const std::string& flags,
                         const std::string& env = "", const std::string& node = "secondary") {
    CommandRun run;
    const std::string err_path = dir_ + "/" + command + ".err";
    const std::string cmd = fmt::format("{} {}/tools/replsync {} --config {}/{}.toml {} 2>{}", env,
                                        REPLSYNC_BINARY_DIR, command, dir_, node, flags, err_path);
    const auto start = std::chrono::steady_clock::now();
    FILE* pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) return run;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) run.out.append(buf, n);
    const int status = pclose(pipe);
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(err_path);
    run.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return run;
  }

  // The last `lines` lines of the node's daemon log.
  std::string Tail(const std::string& node, size_t lines = 25) const {
    std::ifstream in(dir_ + "/" + node + ".log");
    std::vector<std::string> all;
    std::string line;
    while (std::getline(in, line)) all.push_back(line);
    std::string out;
    for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
      out += all[i] + "\n";
    }
    return out;
  }

  std::string dir_;
  std::string transport_;                     // the primary's endpoint
  std::string secondary_endpoint_;            // the secondary's own ([peers.secondary] endpoint)
  std::string secondary2_endpoint_;           // secondary2's own, when there are two secondaries
  std::map<std::string, CurveKeyPair> keys_;  // each node's keys, by node
  std::unique_ptr<MariadbServer> primary_;
  std::unique_ptr<MariadbServer> secondary_;
  std::unique_ptr<MariadbServer> secondary2_;  // null with one secondary
  std::unique_ptr<ChildProcess> primary_daemon_;
  std::unique_ptr<ChildProcess> secondary_daemon_;
  std::unique_ptr<ChildProcess> secondary2_daemon_;

 private:
  // The members above that belong to `node` ("primary", "secondary" or "secondary2").
  template <typename T>
  T& Pick(const std::string& node, T& primary, T& secondary, T& secondary2) {
    if (node == "primary") return primary;
    if (node == "secondary") return secondary;
    EXPECT_EQ(node, "secondary2") << "the fixture has no node of that name";
    return secondary2;
  }
  std::unique_ptr<MariadbServer>& ServerSlot(const std::string& node) {
    return Pick(node, primary_, secondary_, secondary2_);
  }
  std::string& EndpointSlot(const std::string& node) {
    return Pick(node, transport_, secondary_endpoint_, secondary2_endpoint_);
  }

  std::vector<std::string> databases_;
  std::string name_;
  int secondaries_;
};

}  // namespace replsync::testing
