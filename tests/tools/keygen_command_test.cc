#include "tools/cli/keygen_command.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sync/wire/curve_keys.h"

namespace replsync::cli {
namespace {

// What a FILE* received.
std::string Contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string text;
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  return text;
}

std::string LastLine(const std::string& text) {
  std::string t = text;
  if (!t.empty() && t.back() == '\n') t.pop_back();
  const size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

class KeygenCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "keygen.XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    out_ = std::tmpfile();
    err_ = std::tmpfile();
  }
  void TearDown() override {
    std::fclose(out_);
    std::fclose(err_);
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  std::FILE* out_ = nullptr;
  std::FILE* err_ = nullptr;
};

TEST_F(KeygenCommandTest, WritesSecretKeyAndPrintsItsPublicKeyLast) {
  const std::string path = dir_ + "/node1.key";
  ASSERT_EQ(RunKeygen(path, out_, err_), 0) << Contents(err_);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto loaded = LoadCurveSecretKeyFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(LastLine(Contents(out_)), loaded->public_key);
}

TEST_F(KeygenCommandTest, RefusesToOverwriteAndExits2) {
  const std::string path = dir_ + "/node1.key";
  ASSERT_EQ(RunKeygen(path, out_, err_), 0);
  std::ifstream first(path);
  std::stringstream before;
  before << first.rdbuf();
  std::FILE* out2 = std::tmpfile();
  EXPECT_EQ(RunKeygen(path, out2, err_), 2);
  EXPECT_EQ(Contents(out2), "");
  std::fclose(out2);
  EXPECT_NE(Contents(err_).find("already exists"), std::string::npos) << Contents(err_);
  std::ifstream second(path);
  std::stringstream after;
  after << second.rdbuf();
  EXPECT_EQ(before.str(), after.str());
}

TEST_F(KeygenCommandTest, MissingFolderIsReportedAndExits2) {
  EXPECT_EQ(RunKeygen(dir_ + "/no/such/node1.key", out_, err_), 2);
  EXPECT_NE(Contents(err_).find(dir_ + "/no/such/node1.key"), std::string::npos);
}

TEST_F(KeygenCommandTest, PublicPrintsTheKeyOfAnExistingFileAgain) {
  const std::string path = dir_ + "/node1.key";
  ASSERT_EQ(RunKeygen(path, out_, err_), 0);
  const std::string printed = LastLine(Contents(out_));
  std::FILE* out2 = std::tmpfile();
  ASSERT_EQ(RunShowPublicKey(path, out2, err_), 0) << Contents(err_);
  EXPECT_EQ(Contents(out2), printed + "\n");
  std::fclose(out2);
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  std::FILE* out3 = std::tmpfile();
  EXPECT_EQ(RunShowPublicKey(path, out3, err_), 2);
  EXPECT_EQ(Contents(out3), "");
  std::fclose(out3);
  EXPECT_NE(Contents(err_).find("chmod 600"), std::string::npos) << Contents(err_);
}

}  // namespace
}  // namespace replsync::cli
