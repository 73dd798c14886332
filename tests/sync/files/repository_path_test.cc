// CheckRepositoryPath (sync/files/repository_path.h): a table of good and bad paths.
#include "sync/files/repository_path.h"

#include <gtest/gtest.h>

#include <string>

namespace replsync {
namespace {

TEST(CheckRepositoryPathTest, RelativePathsWithOrdinaryComponentsAreAccepted) {
  for (const std::string good :
       {"a", "a/b/c", "secret.txt", "...", "..a", "a..", ".hidden", "a/.b/..c/d...", "a b/\xff\n",
        "x/y.z"}) {
    EXPECT_TRUE(CheckRepositoryPath(good).ok()) << good << ": " << CheckRepositoryPath(good).message();
  }
}

TEST(CheckRepositoryPathTest, EachKindOfBadPathIsRefusedSayingWhy) {
  struct Case {
    std::string path;
    std::string why;
  };
  const Case cases[] = {
      {"", "is empty"},
      {"/etc/passwd", "is absolute"},
      {"/", "is absolute"},
      {"a/", "ends with '/'"},
      {"a//b", "has an empty component"},
      {".", "has a '.' component"},
      {"./a", "has a '.' component"},
      {"a/./b", "has a '.' component"},
      {"a/.", "has a '.' component"},
      {"..", "has a '..' component"},
      {"../secret.txt", "has a '..' component"},
      {"a/../../secret.txt", "has a '..' component"},
      {"a/..", "has a '..' component"},
      {std::string("a\0b", 3), "contains a NUL byte"},
  };
  for (const Case& c : cases) {
    Status s = CheckRepositoryPath(c.path);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.path;
    EXPECT_NE(s.message().find(c.why), std::string::npos) << c.path << ": " << s.message();
  }
}

TEST(CheckRepositoryPathTest, TheMessageQuotesThePath) {
  Status s = CheckRepositoryPath("../secret.txt");
  EXPECT_NE(s.message().find("\"../secret.txt\""), std::string::npos) << s.message();
}

}  // namespace
}  // namespace replsync
