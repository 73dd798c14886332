// NodePairTest: a GoogleTest fixture with a primary and a secondary node on this machine — two
// real MariaDB servers (tests/harness/mariadb_server.h), a repository folder and a configuration
// file for each, and replsyncd started as a real process per node — for the end-to-end tests.
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
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/harness/child_process.h"
#include "tests/harness/mariadb_server.h"

namespace replsync::testing {

class NodePairTest : public ::testing::Test {
 protected:
  // `databases`: [mysql] databases of both configurations; `name`: the temporary folder's
  // prefix (/tmp/replsync-NAME-XXXXXX).
  NodePairTest(std::vector<std::string> databases, std::string name)
      : databases_(std::move(databases)), name_(std::move(name)) {}

  void SetUp() override {
    std::string tmpl = "/tmp/replsync-" + name_ + "-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    MariadbServerOptions p;
    p.server_id = 1;
    auto primary = MariadbServer::Start(p);
    ASSERT_TRUE(primary.ok()) << primary.status().ToString();
    primary_ = std::move(primary).value();
    MariadbServerOptions s;
    s.server_id = 2;
    auto secondary = MariadbServer::Start(s);
    ASSERT_TRUE(secondary.ok()) << secondary.status().ToString();
    secondary_ = std::move(secondary).value();
    auto port = FreeLoopbackPort();
    ASSERT_TRUE(port.ok());
    transport_ = fmt::format("tcp://127.0.0.1:{}", *port);
    WriteConfig("primary", "primary", primary_->port());
    WriteConfig("secondary", "secondary", secondary_->port());
  }

  void TearDown() override {
    primary_daemon_.reset();
    secondary_daemon_.reset();
    if (HasFailure()) {
      std::fprintf(stderr, "logs kept in %s\n", dir_.c_str());
    } else {
      std::filesystem::remove_all(dir_);
    }
  }

  // The node's repository folder; the primary's exists from the start.
  std::string RepositoryPath(const std::string& node) const {
    return dir_ + "/" + node + "-repository";
  }

  void WriteConfig(const std::string& node, const std::string& role, uint16_t port) {
    if (role == "primary") std::filesystem::create_directories(RepositoryPath(node));
    std::string databases;
    for (const auto& db : databases_) databases += (databases.empty() ? "\"" : ", \"") + db + "\"";
    std::ofstream out(dir_ + "/" + node + ".toml");
    out << fmt::format(R"([node]
role = "{}"
state_dir = "{}/{}-state"

[mysql]
host = "127.0.0.1"
port = {}
user = "root"
password = ""
databases = [{}]

[repository]
path = "{}"

[transport]
listen = "{}"
primary = "{}"

[log]
level = "debug"
)",
                       role, dir_, node, port, databases, RepositoryPath(node), transport_,
                       transport_);
    if (role == "secondary") {
      // For `replsync verify`: the primary's database as the secondary reaches it.
      out << fmt::format(
          "\n[primary_mysql]\nhost = \"127.0.0.1\"\nport = {}\nuser = "
          "\"root\"\npassword = \"\"\n",
          primary_->port());
    }
  }

  // Starts replsyncd for `node` and waits until its status file carries its pid (it is up, has
  // blocked SIGTERM, and has its position). nullptr (with a test failure) when it does not.
  std::unique_ptr<ChildProcess> StartDaemon(const std::string& node) {
    auto child = ChildProcess::Start(
        {REPLSYNC_BINARY_DIR "/tools/replsyncd", "--config", dir_ + "/" + node + ".toml"},
        dir_ + "/" + node + ".log");
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    if (!child.ok()) return nullptr;
    WaitForStatus(node, fmt::format("\"pid\":{},", (*child)->pid()));
    return std::move(child).value();
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

  // Waits until the node's status file contains `needle`.
  void WaitForStatus(const std::string& node, const std::string& needle,
                     std::chrono::seconds timeout = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (StatusText(node).find(needle) != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << node << " replsyncd did not report " << needle << "\n" << Tail(node);
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
  std::string transport_;
  std::unique_ptr<MariadbServer> primary_;
  std::unique_ptr<MariadbServer> secondary_;
  std::unique_ptr<ChildProcess> primary_daemon_;
  std::unique_ptr<ChildProcess> secondary_daemon_;

 private:
  std::vector<std::string> databases_;
  std::string name_;
};

}  // namespace replsync::testing
