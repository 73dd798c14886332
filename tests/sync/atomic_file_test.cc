#include "sync/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

namespace replsync {
namespace {

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/atomic_file_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The names in the test's folder.
  std::set<std::string> Names() const {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      names.insert(e.path().filename().string());
    }
    return names;
  }

  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  std::string dir_;
};

TEST_F(AtomicFileTest, WrittenContentReadsBackAndNoTemporaryStays) {
  const std::string path = dir_ + "/verify.barrier";
  ASSERT_TRUE(WriteFileAtomically(path, "token ab12\nstop_before binlog.000001:4\nnoise\n",
                                  "verify's barrier")
                  .ok());
  EXPECT_EQ(Names(), std::set<std::string>{"verify.barrier"});
  EXPECT_EQ(ReadAll(path), "token ab12\nstop_before binlog.000001:4\nnoise\n");
  // A rewrite replaces the whole content.
  ASSERT_TRUE(WriteFileAtomically(path, "token cd34\n", "verify's barrier").ok());
  EXPECT_EQ(ReadAll(path), "token cd34\n");
  EXPECT_EQ(Names(), std::set<std::string>{"verify.barrier"});
}

TEST_F(AtomicFileTest, FileIsOwnerOnlyWhateverTheUmaskAndReplacesAWiderOne) {
  const std::string path = dir_ + "/status.json";
  std::ofstream(path) << "old";
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  const mode_t old_umask = ::umask(0);
  Status st = WriteFileAtomically(path, "{}", "status file");
  ::umask(old_umask);
  ASSERT_TRUE(st.ok()) << st.ToString();
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
}

TEST_F(AtomicFileTest, TemporaryHasTheModeBeforeAnyReaderCanSeeIt) {
  const std::string path = dir_ + "/shared.txt";
  mode_t temp_mode = 0;
  Status st = WriteFileAtomically(path, "x", "shared file",
                                  {.mode = 0640, .before_rename = [&](const std::string& temp) {
                                     struct stat info {};
                                     if (::stat(temp.c_str(), &info) == 0) {
                                       temp_mode = info.st_mode & 07777;
                                     }
                                   }});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(temp_mode, 0640u);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0640u);
}

TEST_F(AtomicFileTest, UnwritableFolderIsNamedIoError) {
  Status st = WriteFileAtomically(dir_ + "/no/such/folder/f", "x", "status file");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kIoError);
  const std::string file = dir_ + "/no/such/folder/f";
  EXPECT_NE(st.message().find("write status file " + file + ": create the temporary file " + file +
                              ".tmp."),
            std::string::npos)
      << st.message();
}

// The window between a writer's finished temporary and its rename: a second writer of the same
// path runs there. With one fixed temporary name (path.tmp) the second writer truncated and
// renamed away the first one's temporary, and the first one's rename then failed.
TEST_F(AtomicFileTest, SecondWriterOfTheSamePathLeavesTheFirstOnesTemporaryAlone) {
  const std::string path = dir_ + "/status.json";
  const std::string first = "first writer's content\n";
  const std::string second = "second writer's, longer content\n";
  bool ran = false;
  std::string first_temp;
  Status st = WriteFileAtomically(
      path, first, "status file", {.before_rename = [&](const std::string& temp) {
        ran = true;
        first_temp = temp;
        EXPECT_EQ(temp.rfind(dir_ + "/", 0), 0u) << temp;  // in the same folder
        EXPECT_TRUE(WriteFileAtomically(path, second, "status file").ok());
        EXPECT_EQ(ReadAll(path), second);
        EXPECT_EQ(ReadAll(temp), first);  // untouched by the second writer
      }});
  ASSERT_TRUE(ran);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(ReadAll(path), first);  // the last rename wins, whole
  EXPECT_FALSE(std::filesystem::exists(first_temp));
  EXPECT_EQ(Names(), std::set<std::string>{"status.json"});
}

// A write that fails half way (the file size limit, EFBIG) leaves no temporary, and the old
// content in place.
TEST_F(AtomicFileTest, FailedWriteLeavesNoTemporaryAndTheOldContent) {
  const std::string path = dir_ + "/status.json";
  ASSERT_TRUE(WriteFileAtomically(path, "old\n", "status file").ok());
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct sigaction ignore {};
  struct sigaction saved_action {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &saved_action), 0);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  // Nothing else writes a file until the limit is back (no assertion in between).
  Status st = WriteFileAtomically(path, std::string(64 << 10, 'x'), "status file");
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_EQ(sigaction(SIGXFSZ, &saved_action, nullptr), 0);

  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kIoError);
  EXPECT_NE(st.message().find("write status file " + path + ": write the temporary file"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(Names(), std::set<std::string>{"status.json"});
  EXPECT_EQ(ReadAll(path), "old\n");
}

// A rename that fails (the path is a folder) leaves no temporary behind either.
TEST_F(AtomicFileTest, FailedRenameLeavesNoTemporary) {
  const std::string path = dir_ + "/taken";
  std::filesystem::create_directories(path + "/inside");
  Status st = WriteFileAtomically(path, "x", "status file");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kIoError);
  EXPECT_NE(st.message().find("write status file " + path + ": rename "), std::string::npos)
      << st.message();
  EXPECT_EQ(Names(), std::set<std::string>{"taken"});
}

}  // namespace
}  // namespace replsync
