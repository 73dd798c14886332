// Integration tests of the MariaDB test harness itself: it must start real servers quickly, run
// SQL, survive kill -9 and restarts, and never leave a server behind.
#include "tests/harness/mariadb_server.h"

#include <gtest/gtest.h>
#include <mariadb/mysql.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

namespace replsync::testing {
namespace {

using Rows = std::vector<std::vector<std::string>>;

MariadbServerOptions WithServerId(uint32_t id) {
  MariadbServerOptions o;
  o.server_id = id;
  return o;
}

MariadbServerOptions WithArgs(std::vector<std::string> args) {
  MariadbServerOptions o;
  o.extra_args = std::move(args);
  return o;
}

bool ProcessAlive(pid_t pid) { return kill(pid, 0) == 0; }

// True when `pid` is gone within `timeout` (it may be a grandchild we cannot reap).
bool WaitGone(pid_t pid, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!ProcessAlive(pid)) return true;
    // A zombie still answers kill(0); check its state.
    std::string stat_path = "/proc/" + std::to_string(pid) + "/stat";
    FILE* f = fopen(stat_path.c_str(), "r");
    if (f == nullptr) return true;
    char state = 0;
    int ignored_pid = 0;
    char comm[256];
    int n = fscanf(f, "%d %255s %c", &ignored_pid, comm, &state);
    fclose(f);
    if (n == 3 && state == 'Z') return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(MariadbServerTest, StartsAndAnswersQueries) {
  auto server = MariadbServer::Start(WithServerId(7));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto& s = **server;
  EXPECT_GT(s.port(), 0);
  EXPECT_EQ(s.host(), "127.0.0.1");
  EXPECT_EQ(s.user(), "root");
  EXPECT_TRUE(ProcessAlive(s.pid()));
  EXPECT_TRUE(std::filesystem::is_directory(s.data_dir()));

  auto rows = s.Query(
      "SELECT 1, NULL, 'x', @@server_id, @@binlog_format, @@binlog_row_image, "
      "@@binlog_row_metadata, @@log_bin");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, (Rows{{"1", "\\N", "x", "7", "ROW", "FULL", "FULL", "1"}}));

  // Several statements in one call; every result set's rows are returned in order.
  ASSERT_TRUE(s.Execute("CREATE DATABASE t; CREATE TABLE t.a (id INT PRIMARY KEY, v VARCHAR(10)); "
                        "INSERT INTO t.a VALUES (1, 'one'), (2, NULL)")
                  .ok());
  rows = s.Query("SELECT id, v FROM t.a ORDER BY id; SELECT COUNT(*) FROM t.a");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, (Rows{{"1", "one"}, {"2", "\\N"}, {"2"}}));
}

TEST(MariadbServerTest, RootConnectsOverTcpWithoutPassword) {
  auto server = MariadbServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto& s = **server;
  MYSQL* mysql = mysql_init(nullptr);
  ASSERT_NE(mysql_real_connect(mysql, s.host().c_str(), s.user().c_str(), s.password().c_str(),
                               nullptr, s.port(), nullptr, 0),
            nullptr)
      << mysql_error(mysql);
  ASSERT_EQ(mysql_query(mysql, "SELECT CURRENT_USER()"), 0) << mysql_error(mysql);
  MYSQL_RES* res = mysql_store_result(mysql);
  ASSERT_NE(res, nullptr);
  MYSQL_ROW row = mysql_fetch_row(res);
  ASSERT_NE(row, nullptr);
  EXPECT_STREQ(row[0], "root@127.0.0.1");
  mysql_free_result(res);
  mysql_close(mysql);
  // The grant that made this possible is not in the binlog: tests see only their own changes.
  auto events = s.Query("SHOW BINLOG EVENTS");
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  for (const auto& e : *events) {
    EXPECT_EQ(e[5].find("GRANT"), std::string::npos) << e[5];
  }
}

TEST(MariadbServerTest, ExecuteReportsSqlErrors) {
  auto server = MariadbServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Status st = (*server)->Execute("SELEC 1");
  EXPECT_EQ(st.code(), Status::Code::kServer);
  EXPECT_NE(st.message().find("1064"), std::string::npos) << st.ToString();
  // A failing statement in the middle of several stops there and reports it.
  st = (*server)->Execute("CREATE DATABASE d1; SELECT * FROM no_such_db.t; CREATE DATABASE d2");
  EXPECT_EQ(st.code(), Status::Code::kServer);
  EXPECT_NE(st.message().find("1146"), std::string::npos) << st.ToString();
  // The session is still usable.
  auto rows = (*server)->Query("SELECT 2");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, (Rows{{"2"}}));
}

TEST(MariadbServerTest, KilledServerRestartsOnSamePortWithCommittedData) {
  auto server = MariadbServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto& s = **server;
  uint16_t port = s.port();
  ASSERT_TRUE(s.Execute("CREATE DATABASE k; CREATE TABLE k.t (id INT PRIMARY KEY) ENGINE=InnoDB; "
                        "INSERT INTO k.t VALUES (1), (2), (3)")
                  .ok());
  pid_t old_pid = s.pid();
  s.Kill();
  EXPECT_FALSE(ProcessAlive(old_pid));
  EXPECT_FALSE(s.Query("SELECT 1").ok());

  Status st = s.Restart();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(s.port(), port);
  EXPECT_NE(s.pid(), old_pid);
  auto rows = s.Query("SELECT COUNT(*), SUM(id) FROM k.t");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, (Rows{{"3", "6"}}));
  // The crash left binlog.000001 unclosed; the restart opened binlog.000002.
  auto files = s.BinlogFiles();
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ(std::filesystem::path((*files)[1]).filename(), "binlog.000002");

  // A clean restart works as well.
  st = s.Restart();
  ASSERT_TRUE(st.ok()) << st.ToString();
  rows = s.Query("SELECT COUNT(*) FROM k.t");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*rows, (Rows{{"3"}}));
}

TEST(MariadbServerTest, TwoServersStartInAFewSeconds) {
  auto start = std::chrono::steady_clock::now();
  auto a = MariadbServer::Start(WithServerId(1));
  auto b = MariadbServer::Start(WithServerId(2));
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  double seconds = std::chrono::duration<double>(elapsed).count();
  RecordProperty("two_servers_start_seconds", std::to_string(seconds));
  std::printf("two servers started in %.2f s\n", seconds);
  EXPECT_LT(seconds, 20.0);
  EXPECT_NE((*a)->port(), (*b)->port());
  EXPECT_NE((*a)->data_dir(), (*b)->data_dir());
  auto ra = (*a)->Query("SELECT @@server_id");
  auto rb = (*b)->Query("SELECT @@server_id");
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(*ra, (Rows{{"1"}}));
  EXPECT_EQ(*rb, (Rows{{"2"}}));
}

TEST(MariadbServerTest, StopEndsTheServerAndRemovesItsFolder) {
  std::string root;
  pid_t pid = -1;
  {
    auto server = MariadbServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    pid = (*server)->pid();
    root = std::filesystem::path((*server)->data_dir()).parent_path();
    (*server)->Stop();
    EXPECT_FALSE(ProcessAlive(pid));
    (*server)->Stop();  // idempotent
    EXPECT_TRUE(std::filesystem::exists(root));
  }
  EXPECT_FALSE(std::filesystem::exists(root));
}

TEST(MariadbServerTest, KeepFilesKeepsTheFolder) {
  std::string root;
  {
    MariadbServerOptions options;
    options.keep_files = true;
    auto server = MariadbServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    root = std::filesystem::path((*server)->data_dir()).parent_path();
  }
  EXPECT_TRUE(std::filesystem::exists(root + "/error.log"));
  std::filesystem::remove_all(root);
}

TEST(MariadbServerTest, ExtraArgsReachTheServer) {
  auto server = MariadbServer::Start(WithArgs({"--binlog-row-image=MINIMAL"}));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto rows = (*server)->Query("SELECT @@binlog_row_image");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*rows, (Rows{{"MINIMAL"}}));
}

TEST(MariadbServerTest, FailedStartShowsTheErrorLog) {
  auto server = MariadbServer::Start(WithArgs({"--no-such-option-for-replsync"}));
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("no-such-option-for-replsync"), std::string::npos)
      << server.status().ToString();
}

TEST(MariadbServerTest, BinlogFilesAreTheServersFiles) {
  auto server = MariadbServer::Start();
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ASSERT_TRUE((*server)->Execute("CREATE DATABASE b; FLUSH BINARY LOGS; CREATE DATABASE c").ok());
  auto files = (*server)->BinlogFiles();
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(files->size(), 2u);
  for (const auto& f : *files) {
    EXPECT_TRUE(std::filesystem::is_regular_file(f)) << f;
  }
  EXPECT_EQ(std::filesystem::path((*files)[0]).filename(), "binlog.000001");
}

// A test process that dies without running destructors must not leave its server running.
TEST(MariadbServerTest, ServerDiesWithTheTestProcess) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    auto server = MariadbServer::Start();
    std::string msg = "0 -";
    if (server.ok()) {
      msg = std::to_string((*server)->pid()) + " " +
            std::filesystem::path((*server)->data_dir()).parent_path().string();
    }
    if (write(fds[1], msg.data(), msg.size()) < 0) _exit(2);
    _exit(0);  // no destructors: as if the test crashed
  }
  close(fds[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) msg.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  pid_t server_pid = std::stoi(msg.substr(0, msg.find(' ')));
  std::string root = msg.substr(msg.find(' ') + 1);
  ASSERT_GT(server_pid, 0) << "the child could not start a server";
  EXPECT_TRUE(WaitGone(server_pid, std::chrono::seconds(10)));
  if (root != "-") std::filesystem::remove_all(root);
}

TEST(MariadbServerTest, FreeLoopbackPortIsBindable) {
  auto port = FreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  EXPECT_GT(*port, 1024);
}

}  // namespace
}  // namespace replsync::testing
