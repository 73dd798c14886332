// The file repository end to end: two real MariaDB servers (the secondary's applied position
// lives in its database), replsyncd on each as a real process, real folders. The secondary's
// repository must end equal to the primary's (content, type, mode, owner, mtime in ns, link
// targets, directories too) whatever happens in between, and a sampler reading the secondary's
// folder throughout must never see a file half written.
//
// REPLSYNC_CHURN_ROUNDS (default 1) sets how many rounds of churn with kills the churn test runs;
// tools/fault_test.sh runs the long version.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/child_process.h"
#include "tests/harness/mariadb_server.h"
#include "tests/harness/node_pair_test.h"
#include "tests/harness/repo_tree.h"

namespace replsync {
namespace {

using testing::ChildProcess;
using testing::ChurnWorkload;
using testing::MariadbServer;
using testing::MariadbServerOptions;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

class FileReplicationTest : public testing::NodePairTest {
 protected:
  FileReplicationTest() : NodePairTest({"app"}, "files") {}

  void SetUp() override {
    NodePairTest::SetUp();
    primary_repo_ = RepositoryPath("primary");
    secondary_repo_ = RepositoryPath("secondary");
  }

  // primary.files.<field> from the primary's status file (-1 when absent).
  using PrimaryFiles = NodeStatus::FileCapture;
  int64_t PrimaryFilesStat(uint64_t PrimaryFiles::*field) {
    std::optional<NodeStatus> status = ReadStatus("primary");
    if (!status || !status->primary || !status->primary->files) return -1;
    return static_cast<int64_t>((*status->primary->files).*field);
  }

  std::string primary_repo_;
  std::string secondary_repo_;
};

// What the repository holds before replsync first starts is shipped by the first scan; a
// 100-byte insertion in the middle of a 48 MiB file then ships about one chunk; a copy changed
// behind replsync's back on the secondary is fetched whole when the primary changes it again.
TEST_F(FileReplicationTest, ExistingTreeShipsAtStartAndSmallChangeShipsAboutOneChunk) {
  std::filesystem::create_directories(primary_repo_ + "/reports/2024");
  for (int i = 0; i < 200; ++i) {
    WriteFile(fmt::format("{}/reports/2024/r{}.xml", primary_repo_, i),
              testing::PseudoRandomBytes(i, 100 + i * 37));
  }
  // In a folder: its mtime, set by the file's last part on the secondary, is compared too.
  std::filesystem::create_directories(primary_repo_ + "/cubes");
  const std::string big = testing::PseudoRandomBytes(4242, 48 << 20);
  WriteFile(primary_repo_ + "/cubes/cube.dat", big);
  ASSERT_EQ(symlink("reports/2024/r1.xml", (primary_repo_ + "/latest").c_str()), 0);
  // Old enough not to wait for a quiet period.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  primary_daemon_ = StartDaemon("primary");
  secondary_daemon_ = StartDaemon("secondary");
  ExpectTreesConverge(std::chrono::seconds(90));
  if (HasFailure()) return;
  // A restart rescans against the manifest and finds nothing to ship: no file is read again.
  StopDaemon(primary_daemon_, SIGTERM);
  primary_daemon_ = StartDaemon("primary");
  WaitForStatus("primary", "files.rescans 1", [](const NodeStatus& status) {
    return status.primary && status.primary->files && status.primary->files->rescans == 1;
  });
  WaitForStatus("primary", "files.state watching", [](const NodeStatus& status) {
    return status.primary && status.primary->files && status.primary->files->state == "watching";
  });
  EXPECT_EQ(PrimaryFilesStat(&PrimaryFiles::changes_journaled), 0) << StatusText("primary");
  EXPECT_EQ(PrimaryFilesStat(&PrimaryFiles::literal_bytes), 0);
  // A change while the primary's daemon is down is found by that scan.
  StopDaemon(primary_daemon_, SIGTERM);
  WriteFile(primary_repo_ + "/reports/2024/r3.xml", "changed while replsyncd was down");
  ASSERT_EQ(unlink((primary_repo_ + "/reports/2024/r4.xml").c_str()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  primary_daemon_ = StartDaemon("primary");
  ExpectTreesConverge(std::chrono::seconds(60));
  if (HasFailure()) return;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // r3's new content, r4's deletion, and its folder's new mtime (the deletion changed it).
  EXPECT_EQ(PrimaryFilesStat(&PrimaryFiles::changes_journaled), 3) << StatusText("primary");
  const int64_t literal_before = PrimaryFilesStat(&PrimaryFiles::literal_bytes);

  // 100 bytes inserted in the middle, written as an application would: temp file + rename.
  std::string changed =
      big.substr(0, big.size() / 2) + std::string(100, 'x') + big.substr(big.size() / 2);
  WriteFile(primary_repo_ + "/cubes/.cube.tmp", changed);
  ASSERT_EQ(rename((primary_repo_ + "/cubes/.cube.tmp").c_str(),
                   (primary_repo_ + "/cubes/cube.dat").c_str()),
            0);
  ExpectTreesConverge(std::chrono::seconds(60));
  // The status file is rewritten every second.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const int64_t shipped = PrimaryFilesStat(&PrimaryFiles::literal_bytes) - literal_before;
  std::printf("a 100-byte insertion in a 48 MiB file shipped %lld content bytes\n",
              static_cast<long long>(shipped));
  EXPECT_GT(shipped, 0);
  EXPECT_LT(shipped, 3 * 64 * 1024);

  // Behind replsync's back: the secondary's copy is not the base the next delta copies from,
  // so the secondary asks for the file whole.
  {
    int fd = open((secondary_repo_ + "/cubes/cube.dat").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "changed on the secondary", 24, 1 << 20), 24);
    close(fd);
  }
  WriteFile(primary_repo_ + "/cubes/.cube.tmp", changed + "appended on the primary");
  ASSERT_EQ(rename((primary_repo_ + "/cubes/.cube.tmp").c_str(),
                   (primary_repo_ + "/cubes/cube.dat").c_str()),
            0);
  ExpectTreesConverge(std::chrono::seconds(60));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_GE(PrimaryFilesStat(&PrimaryFiles::resyncs_requested), 1);
}

// Churn on the primary's folder with kill -9 of each daemon and an outage of the secondary; the
// trees must end equal and no half-written file may ever be visible on the secondary.
TEST_F(FileReplicationTest, ChurnWithKillsAndOutageConvergesWithoutPartialFiles) {
  primary_daemon_ = StartDaemon("primary");
  secondary_daemon_ = StartDaemon("secondary");
  std::filesystem::create_directories(secondary_repo_);
  testing::PartialFileSampler sampler(secondary_repo_);
  sampler.Start();
  testing::ChurnOptions options;
  options.seed = 7;
  options.min_large_bytes = 2 << 20;
  options.max_large_bytes = 12 << 20;
  options.max_large_files = 3;
  auto workload = ChurnWorkload::Open(primary_repo_, options);
  ASSERT_TRUE(workload.ok()) << workload.status().ToString();
  ChurnWorkload& churn = **workload;
  // Rows change in the same stream as the files.
  ASSERT_TRUE(primary_->Execute("CREATE DATABASE app").ok());
  ASSERT_TRUE(primary_->Execute("CREATE TABLE app.t (id INT PRIMARY KEY, note VARCHAR(40))").ok());
  int row = 0;
  auto steps = [&](int n) {
    Status st = churn.RunRandomSteps(n);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_TRUE(primary_
                    ->Execute(fmt::format("INSERT INTO app.t VALUES ({}, 'after {} steps')", ++row,
                                          churn.steps_run()))
                    .ok());
  };
  const int rounds = EnvInt("REPLSYNC_CHURN_ROUNDS", 1);
  for (int round = 0; round < rounds; ++round) {
    steps(30);
    StopDaemon(primary_daemon_, SIGKILL);
    steps(15);
    primary_daemon_ = StartDaemon("primary");
    steps(30);
    StopDaemon(secondary_daemon_, SIGKILL);
    steps(15);
    secondary_daemon_ = StartDaemon("secondary");
    steps(20);
    // An outage: the secondary is away while the primary keeps changing.
    StopDaemon(secondary_daemon_, SIGTERM);
    steps(40);
    secondary_daemon_ = StartDaemon("secondary");
    steps(20);
  }
  Status st = churn.WaitForSlowWriters();
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectTreesConverge(std::chrono::seconds(120));
  sampler.Stop();
  auto tree = testing::SnapshotTree(primary_repo_);
  std::printf(
      "churn: %llu steps, %zu paths on the primary at the end, the sampler read %llu "
      "files in %llu rounds on the secondary\n",
      static_cast<unsigned long long>(churn.steps_run()), tree.ok() ? tree->size() : 0,
      static_cast<unsigned long long>(sampler.files_checked()),
      static_cast<unsigned long long>(sampler.rounds()));
  EXPECT_GT(sampler.rounds(), 0u);
  EXPECT_GT(sampler.files_checked(), 0u);
  for (const auto& f : sampler.findings()) {
    ADD_FAILURE() << "the secondary showed a partial file: " << testing::EscapePath(f.path) << " ("
                  << f.size << " bytes)";
  }
  std::string count;
  for (int i = 0; i < 600 && count != std::to_string(row); ++i) {
    auto rows = secondary_->Query("SELECT COUNT(*) FROM app.t");
    count = rows.ok() && !rows->empty() ? (*rows)[0][0] : rows.status().ToString();
    if (count != std::to_string(row)) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(count, std::to_string(row)) << "rows written between the file changes";
  // What an operator runs after such outages: verify finds the rows and the trees equal.
  CommandRun verify = RunReplsync("verify", "--json");
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("\"files\":[]"), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find("\"files_verified\":true"), std::string::npos) << verify.out;
  if (HasFailure()) {
    std::string history;
    for (const auto& line : churn.history()) history += "  " + line + "\n";
    std::fprintf(stderr, "churn steps:\n%s", history.c_str());
  }
}

}  // namespace
}  // namespace replsync
