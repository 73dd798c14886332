#include "sync/node/status_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace replsync {
namespace {

class StatusFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "status_file.XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static mode_t ModeOf(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
  }
  std::string dir_;
};

TEST_F(StatusFileTest, NewStateDirIsOwnerOnlyWhateverTheUmask) {
  const std::string state = dir_ + "/state";
  const mode_t old_umask = ::umask(022);
  Result<FileLock> lock = ClaimStateDir(state);
  ::umask(old_umask);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_EQ(ModeOf(state), 0700u);
}

TEST_F(StatusFileTest, ExistingWideStateDirIsTightened) {
  const std::string state = dir_ + "/state";
  ASSERT_EQ(::mkdir(state.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(state.c_str(), 0755), 0);
  Result<FileLock> lock = ClaimStateDir(state);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_EQ(ModeOf(state), 0700u);
}

TEST_F(StatusFileTest, StatusFileIsOwnerOnly) {
  const mode_t old_umask = ::umask(0);
  Status st = WriteStatusFile(dir_, "{}\n");
  ::umask(old_umask);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ModeOf(StatusFilePath(dir_)), 0600u);
}

}  // namespace
}  // namespace replsync
