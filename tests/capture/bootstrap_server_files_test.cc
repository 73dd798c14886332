// BootstrapServer's READ_FILES (capture/bootstrap_server.h): the files phase's bulk reads of the
// primary's repository, without a MariaDB server (READ_FILES never opens a session). Each test
// submits a request straight to the server and checks what a peer may and may not read.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "capture/bootstrap_server.h"

namespace replsync::capture {
namespace {

namespace fs = std::filesystem;

class BootstrapServerFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/bs-files-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    repo_ = base_ + "/repo";
    fs::create_directories(repo_);
    BootstrapServerOptions options;
    options.repository = repo_;
    server_ = std::make_unique<BootstrapServer>(options);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(base_);
  }

  void Write(const std::string& path, const std::string& content) {
    fs::create_directories(fs::path(repo_ + "/" + path).parent_path());
    std::ofstream(repo_ + "/" + path, std::ios::binary) << content;
  }

  pb::BootstrapReply Ask(const std::vector<std::string>& paths, uint64_t offset = 0,
                         uint64_t max_bytes = 0) {
    pb::BootstrapRequest request;
    request.set_op(pb::BootstrapRequest::READ_FILES);
    request.set_request_id(7);
    for (const std::string& p : paths) request.add_paths(p);
    request.set_offset(offset);
    request.set_max_bytes(max_bytes);
    std::promise<pb::BootstrapReply> promise;
    server_->Submit("peer", request,
                    [&promise](pb::BootstrapReply reply) { promise.set_value(std::move(reply)); });
    return promise.get_future().get();
  }

  static std::string Content(const pb::BootstrapFile& file) {
    if (!file.compressed()) return file.data();
    std::string out(file.raw_bytes(), '\0');
    const size_t n =
        ZSTD_decompress(out.data(), out.size(), file.data().data(), file.data().size());
    EXPECT_FALSE(ZSTD_isError(n));
    return out;
  }

  std::string base_;
  std::string repo_;
  std::unique_ptr<BootstrapServer> server_;
};

TEST_F(BootstrapServerFilesTest, FilesComeWholeInOrderWithTheirKindAndMetadata) {
  Write("a/one", "first");
  Write("a/two", std::string(100000, 'x'));  // compressible: travels compressed
  ASSERT_EQ(::chmod((repo_ + "/a/one").c_str(), 0640), 0);
  ASSERT_EQ(::symlink("one", (repo_ + "/a/link").c_str()), 0);
  const pb::BootstrapReply reply = Ask({"a/one", "a/two", "a/link", "a"});
  ASSERT_EQ(reply.error(), "");
  EXPECT_EQ(reply.request_id(), 7u);
  ASSERT_EQ(reply.files_size(), 4);
  EXPECT_EQ(reply.files(0).kind(), pb::BootstrapFile::FILE);
  EXPECT_EQ(Content(reply.files(0)), "first");
  EXPECT_EQ(reply.files(0).meta().mode(), 0640u);
  EXPECT_EQ(reply.files(0).meta().size(), 5u);
  EXPECT_TRUE(reply.files(0).eof());
  EXPECT_TRUE(reply.files(1).compressed());
  EXPECT_EQ(Content(reply.files(1)), std::string(100000, 'x'));
  EXPECT_EQ(reply.files(2).kind(), pb::BootstrapFile::SYMLINK);
  EXPECT_EQ(reply.files(2).link_target(), "one");
  EXPECT_EQ(reply.files(3).kind(), pb::BootstrapFile::DIRECTORY);
  EXPECT_EQ(
      std::vector<std::string>(reply.files(3).children().begin(), reply.files(3).children().end()),
      (std::vector<std::string>{"link", "one", "two"}));
}

TEST_F(BootstrapServerFilesTest, AFileLargerThanTheReplyIsCutAndGoesOnFromItsOffset) {
  std::string big(300000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  Write("big", big);
  Write("after", "later");
  const uint64_t limit = 64 << 10;  // the server's smallest reply
  std::string got;
  uint64_t offset = 0;
  for (int i = 0; i < 10; ++i) {
    const pb::BootstrapReply reply = Ask({"big", "after"}, offset, limit);
    ASSERT_EQ(reply.error(), "");
    ASSERT_GE(reply.files_size(), 1);
    const pb::BootstrapFile& file = reply.files(0);
    ASSERT_EQ(file.offset(), offset);
    got += Content(file);
    offset += file.raw_bytes();
    if (file.eof()) break;
    // A cut file is the reply's last path: the next paths wait for the next request.
    EXPECT_EQ(reply.files_size(), 1);
    EXPECT_LE(file.raw_bytes(), limit);
  }
  EXPECT_EQ(got, big);
}

TEST_F(BootstrapServerFilesTest, PathsLeavingTheRepositoryRefuseTheWholeRequest) {
  Write("ok", "fine");
  Write("../outside", "secret");
  for (const char* bad : {"../outside", "/etc/passwd", "a/../../outside", "", "a//b"}) {
    const pb::BootstrapReply reply = Ask({"ok", bad});
    EXPECT_NE(reply.error(), "") << bad;
    EXPECT_FALSE(reply.retry()) << bad;
    EXPECT_EQ(reply.files_size(), 0) << bad;
  }
}

TEST_F(BootstrapServerFilesTest, LinksAreNeverFollowedAndSpecialFilesAreRefused) {
  Write("../outside/secret", "secret");
  ASSERT_EQ(::symlink((base_ + "/outside/secret").c_str(), (repo_ + "/to-file").c_str()), 0);
  ASSERT_EQ(::symlink((base_ + "/outside").c_str(), (repo_ + "/to-dir").c_str()), 0);
  ASSERT_EQ(::mkfifo((repo_ + "/fifo").c_str(), 0644), 0);
  const pb::BootstrapReply reply = Ask({"to-file", "to-dir/secret", "fifo"});
  ASSERT_EQ(reply.error(), "");
  ASSERT_EQ(reply.files_size(), 3);
  // The link itself, never what it points at.
  EXPECT_EQ(reply.files(0).kind(), pb::BootstrapFile::SYMLINK);
  EXPECT_EQ(reply.files(0).link_target(), base_ + "/outside/secret");
  EXPECT_EQ(reply.files(0).data(), "");
  // Through a linked folder: not a path of the repository.
  EXPECT_EQ(reply.files(1).kind(), pb::BootstrapFile::GONE);
  EXPECT_EQ(reply.files(1).data(), "");
  // A FIFO is neither opened (that would block) nor copied.
  EXPECT_EQ(reply.files(2).kind(), pb::BootstrapFile::REFUSED);
}

TEST_F(BootstrapServerFilesTest, AVanishedPathIsGoneNotAnError) {
  Write("here", "x");
  const pb::BootstrapReply reply = Ask({"vanished", "gone/below", "here"});
  ASSERT_EQ(reply.error(), "");
  ASSERT_EQ(reply.files_size(), 3);
  EXPECT_EQ(reply.files(0).kind(), pb::BootstrapFile::GONE);
  EXPECT_EQ(reply.files(1).kind(), pb::BootstrapFile::GONE);
  EXPECT_EQ(reply.files(2).kind(), pb::BootstrapFile::FILE);
}

TEST_F(BootstrapServerFilesTest, WithoutARepositoryReadFilesIsRefused) {
  server_.reset();
  server_ = std::make_unique<BootstrapServer>(BootstrapServerOptions{});
  ASSERT_TRUE(server_->Start().ok());
  const pb::BootstrapReply reply = Ask({"x"});
  EXPECT_NE(reply.error().find("[repository]"), std::string::npos) << reply.error();
}

}  // namespace
}  // namespace replsync::capture
