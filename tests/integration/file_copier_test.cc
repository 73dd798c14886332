// The files phase's bulk pass alone (apply/bootstrap/file_copier.h) against the primary's
// BootstrapServer (capture/bootstrap_server.h) over the in-process transport: the copy must be
// exact by itself (no exact pass runs here), so what these tests check is the bulk pass's work.
// No MariaDB server is needed (READ_FILES never opens a session).
//
// FILE_COPIER_BENCH_FILES=N (and FILE_COPIER_BENCH_LARGE_MIB=M) makes the timing test copy N
// files of 1-64 KiB and one file of M MiB of incompressible bytes, and print the seconds.
#include "apply/bootstrap/file_copier.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "capture/bootstrap_server.h"
#include "sync/wire/inproc_transport.h"
#include "tests/harness/repo_tree.h"

namespace replsync {
namespace {

namespace fs = std::filesystem;

class FileCopierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/file-copier-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    primary_ = base_ + "/primary";
    secondary_ = base_ + "/secondary";
    fs::create_directories(primary_);
    fs::create_directories(secondary_);
    capture::BootstrapServerOptions options;
    options.repository = primary_;
    server_ = std::make_unique<capture::BootstrapServer>(options);
    ASSERT_TRUE(server_->Start().ok());
    server_end_ = hub_.CreateServer();
    // The shipper's part: bootstrap requests to the server, replies back to their peer.
    serving_ = std::thread([this] {
      while (!stop_) {
        std::string peer, name;
        pb::Envelope message;
        auto got = server_end_->Receive(&peer, &name, &message, std::chrono::milliseconds(50));
        if (!got.ok() || !*got || !message.has_bootstrap_request()) continue;
        server_->Submit("secondary", message.bootstrap_request(),
                        [this, peer](pb::BootstrapReply reply) {
                          pb::Envelope out;
                          *out.mutable_bootstrap_reply() = std::move(reply);
                          (void)server_end_->Send(peer, out);
                        });
      }
    });
  }
  void TearDown() override {
    stop_ = true;
    serving_.join();
    server_.reset();
    fs::remove_all(base_);
  }

  apply::FileCopierOptions Options() {
    apply::FileCopierOptions o;
    o.root = secondary_;
    o.connect = [this]() -> Result<std::unique_ptr<BootstrapClient>> {
      return std::make_unique<BootstrapClient>(hub_.CreateClient("secondary"), "inproc",
                                               BootstrapClient::Options{});
    };
    return o;
  }

  void Write(const std::string& path, const std::string& content, mode_t mode = 0644) {
    const std::string full = primary_ + "/" + path;
    fs::create_directories(fs::path(full).parent_path());
    std::ofstream(full, std::ios::binary) << content;
    ASSERT_EQ(::chmod(full.c_str(), mode), 0);
  }

  // The primary's and the secondary's trees compared ("" when equal).
  std::string Differences() {
    auto p = testing::SnapshotTree(primary_);
    auto s = testing::SnapshotTree(secondary_);
    if (!p.ok() || !s.ok()) return "snapshot failed";
    std::string out;
    for (const std::string& line : testing::CompareTrees(*p, *s)) out += line + "\n";
    return out;
  }

  std::string base_, primary_, secondary_;
  InprocHub hub_;
  std::unique_ptr<capture::BootstrapServer> server_;
  std::unique_ptr<InprocServerTransport> server_end_;
  std::atomic<bool> stop_{false};
  std::thread serving_;
};

TEST_F(FileCopierTest, AnEmptySecondaryBecomesAnExactCopyFromTheTopLevelPaths) {
  std::mt19937_64 random(1);
  for (int d = 0; d < 5; ++d) {
    for (int f = 0; f < 40; ++f) {
      Write(fmt::format("d{}/sub/f{}", d, f),
            testing::PseudoRandomBytes(random(), random() % 70000), f % 3 == 0 ? 0600 : 0644);
    }
  }
  Write("large", testing::PseudoRandomBytes(9, 20 << 20));  // cut over several replies
  Write("empty", "");
  ASSERT_EQ(::symlink("d0/sub/f1", (primary_ + "/link").c_str()), 0);
  ASSERT_EQ(::symlink("/nowhere", (primary_ + "/d1/dangling").c_str()), 0);
  ASSERT_EQ(::chmod((primary_ + "/d2").c_str(), 0750), 0);
  // What the tree comparison reports on an empty secondary: the root's children, missing.
  std::vector<std::string> missing;
  for (const auto& e : fs::directory_iterator(primary_)) {
    missing.push_back(e.path().filename().string());
  }
  apply::FileCopierOptions options = Options();
  options.request_bytes = 1 << 20;
  Result<apply::FileCopyResult> copied = apply::CopyRepositoryFiles(options, missing);
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(copied->files, 5u * 40 + 2);
  EXPECT_EQ(copied->symlinks, 2u);
  EXPECT_EQ(copied->skipped, 0u);
  EXPECT_EQ(Differences(), "");
}

TEST_F(FileCopierTest, ADifferingFileIsReplacedAndSetidBitsAreClearedUnlessKept) {
  Write("dir/changed", "new content", 04755);
  fs::create_directories(secondary_ + "/dir");
  std::ofstream(secondary_ + "/dir/changed") << "old";
  std::ofstream(secondary_ + "/dir/extra") << "left to the exact pass";
  Result<apply::FileCopyResult> copied = apply::CopyRepositoryFiles(Options(), {"dir/changed"});
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat((secondary_ + "/dir/changed").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_size, 11);
  EXPECT_TRUE(fs::exists(secondary_ + "/dir/extra"));
  apply::FileCopierOptions keep = Options();
  keep.keep_setid = true;
  ASSERT_TRUE(apply::CopyRepositoryFiles(keep, {"dir/changed"}).ok());
  ASSERT_EQ(::stat((secondary_ + "/dir/changed").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  // No temporary file is left behind.
  for (const auto& e : fs::directory_iterator(secondary_ + "/dir")) {
    EXPECT_EQ(e.path().filename().string().rfind(".replsync-tmp.", 0), std::string::npos);
  }
}

TEST_F(FileCopierTest, PathsGoneOnThePrimaryAndFifosAreLeftAlone) {
  Write("here", "x");
  ASSERT_EQ(::mkfifo((primary_ + "/fifo").c_str(), 0644), 0);
  Result<apply::FileCopyResult> copied =
      apply::CopyRepositoryFiles(Options(), {"fifo", "gone", "here"});
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(copied->gone, 1u);
  EXPECT_EQ(copied->refused, 1u);
  EXPECT_EQ(copied->files, 1u);
  EXPECT_FALSE(fs::exists(secondary_ + "/fifo"));
  EXPECT_FALSE(fs::exists(secondary_ + "/gone"));
}

// A timing run when asked for (see the file comment); otherwise a small copy.
TEST_F(FileCopierTest, ManySmallFilesAndALargeOneAreCopiedExactly) {
  const char* n = std::getenv("FILE_COPIER_BENCH_FILES");
  const char* mib = std::getenv("FILE_COPIER_BENCH_LARGE_MIB");
  const int files = n != nullptr ? std::atoi(n) : 300;
  const int large = mib != nullptr ? std::atoi(mib) : 4;
  std::mt19937_64 random(2);
  for (int i = 0; i < files; ++i) {
    Write(fmt::format("f{:03}/{}", i / 100, i),
          testing::PseudoRandomBytes(random(), 1024 + random() % (63 << 10)));
  }
  Write("large", testing::PseudoRandomBytes(3, static_cast<size_t>(large) << 20));
  ::sync();
  std::vector<std::string> missing;
  for (const auto& e : fs::directory_iterator(primary_)) {
    missing.push_back(e.path().filename().string());
  }
  const auto began = std::chrono::steady_clock::now();
  Result<apply::FileCopyResult> copied = apply::CopyRepositoryFiles(Options(), missing);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  std::printf("bulk pass: %d files + %d MiB: %.2f s, %llu bytes, %llu requests\n", files, large,
              seconds, static_cast<unsigned long long>(copied->bytes),
              static_cast<unsigned long long>(copied->requests));
  EXPECT_EQ(Differences(), "");
}

}  // namespace
}  // namespace replsync
