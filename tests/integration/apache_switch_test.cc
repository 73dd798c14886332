// End to end: Apache with conf/apache-replsync.conf (addresses replaced by loopback ones) as the
// failover switch in front of real replsyncd daemons and MariaDB servers: mod_proxy_hcheck asks
// each node's replsyncd through the node's front, users reach the primary's node only, then after
// `replsync promote` the promoted node, never both and never the fenced old primary again, also
// after Apache starts over.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/child_process.h"
#include "tests/harness/mariadb_server.h"
#include "tests/harness/node_pair_test.h"
#include "tests/harness/raw_http.h"

namespace replsync {
namespace {

using namespace std::chrono_literals;

constexpr char kModules[] = "/usr/lib/apache2/modules";

class ApacheSwitchTest : public testing::NodePairTest {
 protected:
  ApacheSwitchTest() : NodePairTest({"app"}, "apache") { with_health_ = true; }

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(NodePairTest::SetUp());
    // The secondary's repository folder, as an installed application has it (a promoted node
    // watches it).
    std::filesystem::create_directories(RepositoryPath("secondary"));
    for (const char* what :
         {"switch", "front-primary", "front-secondary", "app-primary", "app-secondary"}) {
      Result<uint16_t> p = testing::FreeLoopbackPort();
      ASSERT_TRUE(p.ok());
      port_[what] = *p;
    }
    ASSERT_NO_FATAL_FAILURE(WriteApacheConfig());
  }

  void TearDown() override {
    if (apache_) apache_->Signal(SIGTERM, 10s);
    apache_.reset();
    NodePairTest::TearDown();
  }

  // <dir>/apache: conf/apache-replsync.conf with loopback addresses, and the configuration Apache
  // runs: its own server root, the modules conf/apache-replsync.conf names (and the MPM, and
  // authz_core which Debian enables by default), the switch's port, and the BI server of each
  // node (a virtual host answering the node's name at /node).
  void WriteApacheConfig() {
    const std::string root = dir_ + "/apache";
    std::ifstream in(std::string(REPLSYNC_SOURCE_DIR) + "/conf/apache-replsync.conf");
    std::string conf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto replace = [&conf](const std::string& from, const std::string& to) {
      size_t at = conf.find(from);
      ASSERT_NE(at, std::string::npos) << from << " is not in conf/apache-replsync.conf";
      for (; at != std::string::npos; at = conf.find(from, at + to.size())) {
        conf.replace(at, from.size(), to);
      }
    };
    auto loopback = [](uint16_t port) { return fmt::format("127.0.0.1:{}", port); };
    replace("<VirtualHost *:80>", fmt::format("<VirtualHost {}>", loopback(port_["switch"])));
    replace("127.0.0.1:7801", loopback(port_["front-primary"]));
    replace("127.0.0.1:7802", loopback(port_["front-secondary"]));
    replace("10.0.0.1:7701", loopback(health_ports_["primary"]));
    replace("10.0.0.2:7701", loopback(health_ports_["secondary"]));
    replace("10.0.0.1:8080", loopback(port_["app-primary"]));
    replace("10.0.0.2:8080", loopback(port_["app-secondary"]));
    std::filesystem::create_directories(root);
    std::ofstream(root + "/apache-replsync.conf") << conf;

    // The log keeps the checks' ENABLING and DISABLING lines, without the balancer's "All
    // workers are in error state" for each request while no member is in.
    std::string main = fmt::format(
        "ServerRoot \"{0}\"\nPidFile \"{0}/apache2.pid\"\nDefaultRuntimeDir \"{0}\"\n"
        "ServerName localhost\nErrorLog /proc/self/fd/2\n"
        "LogLevel warn proxy_hcheck:info proxy_balancer:crit\n",
        root);
    for (const char* module : {"mpm_event", "authz_core", "proxy", "proxy_http", "proxy_balancer",
                               "proxy_hcheck", "lbmethod_byrequests", "slotmem_shm"}) {
      main += fmt::format("LoadModule {}_module {}/mod_{}.so\n", module, kModules, module);
    }
    // As root (CI), Apache serves as another user: the BI servers' documents are readable by
    // others, under the test's folder which others may pass through.
    main += "User nobody\nGroup nogroup\n";
    const auto readable = static_cast<std::filesystem::perms>(0755);
    std::filesystem::permissions(dir_, std::filesystem::perms::others_exec,
                                 std::filesystem::perm_options::add);
    std::filesystem::permissions(root, readable);
    main += fmt::format("Listen {}\n", loopback(port_["switch"]));
    for (const char* node : {"primary", "secondary"}) {
      const std::string docs = root + "/" + node;
      std::filesystem::create_directories(docs);
      std::filesystem::permissions(docs, readable);
      std::ofstream(docs + "/node") << node;
      std::filesystem::permissions(docs + "/node", static_cast<std::filesystem::perms>(0644));
      main += fmt::format(
          "Listen {0}\n<VirtualHost {0}>\n    DocumentRoot \"{1}\"\n"
          "    <Directory \"{1}\">\n        Require all granted\n    </Directory>\n"
          "</VirtualHost>\n",
          loopback(port_[std::string("app-") + node]), docs);
    }
    main += fmt::format("Include \"{}/apache-replsync.conf\"\n", root);
    std::ofstream(root + "/apache2.conf") << main;
  }

  void StartApache() {
    const std::string root = dir_ + "/apache";
    Result<std::unique_ptr<testing::ChildProcess>> apache = testing::ChildProcess::Start(
        {"/usr/sbin/apache2", "-X", "-f", root + "/apache2.conf"}, root + "/apache2.log");
    ASSERT_TRUE(apache.ok()) << apache.status().ToString();
    apache_ = std::move(apache).value();
  }

  void StopApache() {
    ASSERT_TRUE(apache_);
    ASSERT_TRUE(apache_->Signal(SIGTERM, 10s).has_value()) << apache_->LogTail();
    apache_.reset();
  }

  // Which node a user reaches now ("" while Apache has no member in, 503, or is not up). Called
  // by the sampler thread too (port_ is only read meanwhile).
  std::string Reached() {
    Result<testing::HttpReply> reply = testing::HttpGet(port_.at("switch"), "/node");
    return reply.ok() && reply->code == 200 ? reply->body : "";
  }

  // Samples Reached() every 50 ms while `during` runs and then until `node` is reached (30 s at
  // most) and `settle` more passed; returns the samples.
  std::vector<std::string> Sample(const std::function<void()>& during, const std::string& node,
                                  std::chrono::seconds settle) {
    std::vector<std::string> seen;
    std::atomic<bool> sampling{true};
    std::thread sampler([&] {
      while (sampling) {
        seen.push_back(Reached());
        std::this_thread::sleep_for(50ms);
      }
    });
    during();
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (Reached() != node && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
    }
    std::this_thread::sleep_for(settle);
    sampling = false;
    sampler.join();
    return seen;
  }

  std::string Logs() {
    return "apache:\n" + (apache_ ? apache_->LogTail() : std::string()) + "primary:\n" +
           Tail("primary") + "secondary:\n" + Tail("secondary");
  }

  void WaitFenced(const std::string& node) {
    WaitForStatus(node, "fenced", [](const NodeStatus& s) {
      return s.fenced && s.state == "fenced" && s.error.empty();
    });
  }

  std::map<std::string, uint16_t> port_;
  std::unique_ptr<testing::ChildProcess> apache_;
};

// The samples as runs, for messages: "primary x23, - x21, secondary x66" ("-": nobody served).
std::string Runs(const std::vector<std::string>& samples) {
  std::string out;
  for (size_t i = 0; i < samples.size();) {
    size_t j = i;
    while (j < samples.size() && samples[j] == samples[i]) ++j;
    out += fmt::format("{}{} x{}", out.empty() ? "" : ", ", samples[i].empty() ? "-" : samples[i],
                       j - i);
    i = j;
  }
  return out;
}

TEST_F(ApacheSwitchTest, SendsUsersToThePrimaryOnlyAndFollowsThePromotion) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  ASSERT_NO_FATAL_FAILURE(StartApache());
  // Nobody is served until the primary passed its checks, and then the primary only.
  const std::vector<std::string> start = Sample([] {}, "primary", 0s);
  ASSERT_EQ(Reached(), "primary") << Runs(start) << "\n" << Logs();
  for (const std::string& s : start) ASSERT_TRUE(s == "" || s == "primary") << Runs(start);
  // The check's path is not the users'.
  Result<testing::HttpReply> check =
      testing::HttpGet(port_.at("switch"), "/replsync/health/primary");
  ASSERT_TRUE(check.ok()) << check.status().ToString();
  EXPECT_EQ(check->code, 403);

  // Sampled while the promotion happens: users reach the old primary, then nobody (its two
  // failed checks), then the new one, and never the old one again once the new one answered.
  CommandRun promote;
  const std::vector<std::string> seen = Sample(
      [&] {
        promote = RunReplsync("promote", "");
        WaitFenced("primary");
      },
      "secondary", 3s);  // the old primary's checks go on failing meanwhile
  ASSERT_EQ(promote.exit_code, 0) << promote.out << promote.err;
  std::printf("through the promotion, every 50 ms: %s\n", Runs(seen).c_str());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen[0], "primary") << "the sampling began after the switch: " << Runs(seen);
  const auto first_new = std::find(seen.begin(), seen.end(), "secondary");
  ASSERT_NE(first_new, seen.end())
      << "users never reached the promoted node: " << Runs(seen) << "\n"
      << Logs();
  for (auto it = seen.begin(); it != seen.end(); ++it) {
    ASSERT_TRUE(*it == "" || *it == "primary" || *it == "secondary") << *it;
    ASSERT_FALSE(it > first_new && *it == "primary")
        << "users reached the fenced old primary after the promoted node: " << Runs(seen);
  }
  EXPECT_EQ(Reached(), "secondary");

  // Apache starts over (as at a restart or a reload): node1, the first member, is the fenced old
  // primary now, and no user reaches it before the promoted node is served.
  ASSERT_NO_FATAL_FAILURE(StopApache());
  ASSERT_NO_FATAL_FAILURE(StartApache());
  const std::vector<std::string> restart = Sample([] {}, "secondary", 1s);
  std::printf("after Apache started over, every 50 ms: %s\n", Runs(restart).c_str());
  EXPECT_EQ(Reached(), "secondary") << Runs(restart) << "\n" << Logs();
  for (const std::string& s : restart) {
    ASSERT_TRUE(s == "" || s == "secondary")
        << "users reached the fenced old primary after Apache started over: " << Runs(restart);
  }
}

}  // namespace
}  // namespace replsync
