#include "sync/files/open_beneath.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace replsync {
namespace {

namespace fs = std::filesystem;

// A repository folder `repo` with a/b/c.txt, and beside it (outside the repository) a folder
// `outside` holding secret.txt.
class OpenBeneathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "replsync-open-beneath-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    base_ = tmpl;
    root_ = base_ + "/repo";
    outside_ = base_ + "/outside";
    fs::create_directories(root_ + "/a/b");
    fs::create_directories(outside_);
    std::ofstream(root_ + "/a/b/c.txt") << "inside";
    std::ofstream(outside_ + "/secret.txt") << "outside";
    root_fd_ = UniqueFd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_fd_.valid()) << std::strerror(errno);
  }
  void TearDown() override {
    root_fd_.Reset();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  Result<UniqueFd> Open(const std::string& path, int flags = O_RDONLY) {
    return OpenBeneath(root_fd_.get(), root_, path, flags);
  }

  static std::string ReadAll(int fd) {
    std::string out;
    char buf[256];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

  std::string base_;
  std::string root_;
  std::string outside_;
  UniqueFd root_fd_;
};

TEST_F(OpenBeneathTest, NestedPathOpensTheFileBelowTheFolder) {
  Result<UniqueFd> fd = Open("a/b/c.txt");
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  EXPECT_EQ(ReadAll(fd->get()), "inside");
  // The descriptor is close-on-exec whatever the flags said.
  EXPECT_NE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST_F(OpenBeneathTest, EmptyPathOpensTheFolderItself) {
  Result<UniqueFd> fd = Open("", O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  struct stat opened {};
  struct stat root {};
  ASSERT_EQ(::fstat(fd->get(), &opened), 0);
  ASSERT_EQ(::fstat(root_fd_.get(), &root), 0);
  EXPECT_EQ(opened.st_ino, root.st_ino);
}

TEST_F(OpenBeneathTest, DotDotThatLeavesTheFolderIsRefused) {
  for (const std::string path : {"../outside/secret.txt", "a/../../outside/secret.txt", ".."}) {
    SCOPED_TRACE(path);
    Result<UniqueFd> fd = Open(path);
    ASSERT_FALSE(fd.ok());
    EXPECT_EQ(fd.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(fd.status().message().find("leaves the folder"), std::string::npos)
        << fd.status().message();
    EXPECT_NE(fd.status().message().find(root_), std::string::npos) << fd.status().message();
  }
}

TEST_F(OpenBeneathTest, DotDotThatStaysBelowTheFolderIsAllowed) {
  Result<UniqueFd> fd = Open("a/b/../b/c.txt");
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  EXPECT_EQ(ReadAll(fd->get()), "inside");
}

TEST_F(OpenBeneathTest, AbsolutePathIsRefused) {
  Result<UniqueFd> fd = Open(outside_ + "/secret.txt");
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(fd.status().message().find("leaves the folder"), std::string::npos)
      << fd.status().message();
}

TEST_F(OpenBeneathTest, SymlinkedParentFolderIsRefusedNotFollowed) {
  ASSERT_EQ(::symlink(outside_.c_str(), (root_ + "/escape").c_str()), 0);
  ASSERT_EQ(::symlink("../../outside", (root_ + "/a/relative").c_str()), 0);
  // The premise: openat with O_NOFOLLOW follows a symlinked folder on the way.
  {
    UniqueFd followed(
        ::openat(root_fd_.get(), "escape/secret.txt", O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    ASSERT_TRUE(followed.valid()) << std::strerror(errno);
    ASSERT_EQ(ReadAll(followed.get()), "outside");
  }
  for (const std::string path : {"escape/secret.txt", "a/relative/secret.txt", "escape"}) {
    SCOPED_TRACE(path);
    Result<UniqueFd> fd = Open(path, O_RDONLY | O_NOFOLLOW);
    ASSERT_FALSE(fd.ok());
    EXPECT_EQ(fd.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(fd.status().message().find("symbolic link"), std::string::npos)
        << fd.status().message();
    EXPECT_NE(fd.status().message().find("\"" + path + "\""), std::string::npos)
        << fd.status().message();
  }
}

TEST_F(OpenBeneathTest, SymlinkInsideTheFolderIsRefusedToo) {
  ASSERT_EQ(::symlink("a", (root_ + "/alias").c_str()), 0);
  Result<UniqueFd> fd = Open("alias/b/c.txt");
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(OpenBeneathTest, SymlinkAsLastComponentIsRefusedUnlessOpenedAsTheLinkItself) {
  ASSERT_EQ(::symlink("b/c.txt", (root_ + "/a/link").c_str()), 0);
  for (int flags : {O_RDONLY, O_RDONLY | O_NOFOLLOW}) {
    Result<UniqueFd> fd = Open("a/link", flags);
    ASSERT_FALSE(fd.ok()) << flags;
    EXPECT_EQ(fd.status().code(), Status::Code::kInvalidArgument);
  }
  Result<UniqueFd> link = Open("a/link", O_PATH | O_NOFOLLOW);
  ASSERT_TRUE(link.ok()) << link.status().ToString();
  struct stat st {};
  ASSERT_EQ(::fstat(link->get(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  char target[64] = {};
  ASSERT_EQ(::readlinkat(link->get(), "", target, sizeof(target) - 1), 7) << std::strerror(errno);
  EXPECT_STREQ(target, "b/c.txt");
}

TEST_F(OpenBeneathTest, MissingComponentOrFileOnTheWayIsNotFound) {
  for (const std::string path : {"a/none", "none/c.txt", "a/b/c.txt/d"}) {
    SCOPED_TRACE(path);
    Result<UniqueFd> fd = Open(path);
    ASSERT_FALSE(fd.ok());
    EXPECT_TRUE(fd.status().IsNotFound()) << fd.status().ToString();
  }
}

TEST_F(OpenBeneathTest, NulByteOrCreationIsRefused) {
  Result<UniqueFd> nul = Open(std::string("a/b\0/c.txt", 10));
  ASSERT_FALSE(nul.ok());
  EXPECT_EQ(nul.status().code(), Status::Code::kInvalidArgument);
  Result<UniqueFd> create = Open("a/new.txt", O_WRONLY | O_CREAT);
  ASSERT_FALSE(create.ok());
  EXPECT_EQ(create.status().code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(root_ + "/a/new.txt"));
  Result<UniqueFd> temp = Open("a", O_RDWR | O_TMPFILE);
  ASSERT_FALSE(temp.ok());
  EXPECT_EQ(temp.status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace replsync
