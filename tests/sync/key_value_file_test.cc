#include "sync/key_value_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace replsync {
namespace {

class KeyValueFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/key_value_file_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(KeyValueFileTest, WrittenLinesReadBackAndNoTemporaryStays) {
  const std::string path = dir_ + "/verify.barrier";
  ASSERT_TRUE(WriteFileAtomically(path, "token ab12\nstop_before binlog.000001:4\nnoise\n",
                                  "verify's barrier")
                  .ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto values = ReadKeyValueFile(path);
  ASSERT_TRUE(values.has_value());
  EXPECT_EQ(values->size(), 2u);
  EXPECT_EQ((*values)["token"], "ab12");
  EXPECT_EQ((*values)["stop_before"], "binlog.000001:4");
  // A rewrite replaces the whole content.
  ASSERT_TRUE(WriteFileAtomically(path, "token cd34\n", "verify's barrier").ok());
  values = ReadKeyValueFile(path);
  ASSERT_TRUE(values.has_value());
  EXPECT_EQ(values->size(), 1u);
  EXPECT_EQ((*values)["token"], "cd34");
}

TEST_F(KeyValueFileTest, MissingFileIsNulloptAndUnwritableFolderIsNamedIoError) {
  EXPECT_FALSE(ReadKeyValueFile(dir_ + "/none").has_value());
  Status st = WriteFileAtomically(dir_ + "/no/such/folder/f", "x", "status file");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kIoError);
  EXPECT_NE(st.message().find("write status file " + dir_ + "/no/such/folder/f.tmp"),
            std::string::npos)
      << st.message();
}

}  // namespace
}  // namespace replsync
