#include "sync/node/bootstrap_request.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace replsync {
namespace {

TEST(BootstrapRequestTest, RoundTripsThroughTheFileWithOwnerOnlyMode) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "bsreq.XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  EXPECT_TRUE(ReadBootstrapRequest(dir).status().IsNotFound());
  const BootstrapRequest request{.token = "a1b2", .force = true, .resync = false};
  ASSERT_TRUE(WriteBootstrapRequest(dir, request).ok());
  struct stat st {};
  ASSERT_EQ(::stat(BootstrapRequestPath(dir).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Result<BootstrapRequest> back = ReadBootstrapRequest(dir);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, request);
  ASSERT_TRUE(RemoveBootstrapRequest(dir).ok());
  EXPECT_TRUE(ReadBootstrapRequest(dir).status().IsNotFound());
  EXPECT_TRUE(RemoveBootstrapRequest(dir).ok());  // already gone
  std::filesystem::remove_all(dir);
}

TEST(BootstrapRequestTest, MalformedRequestsAreRefused) {
  EXPECT_FALSE(BootstrapRequest::Parse("").ok());
  EXPECT_FALSE(BootstrapRequest::Parse("[]").ok());
  EXPECT_FALSE(BootstrapRequest::Parse(R"({"force":true})").ok());
  EXPECT_FALSE(BootstrapRequest::Parse(R"({"token":"","force":true})").ok());
  EXPECT_FALSE(BootstrapRequest::Parse(R"({"token":"x","force":"yes"})").ok());
  Result<BootstrapRequest> minimal = BootstrapRequest::Parse(R"({"token":"x"})");
  ASSERT_TRUE(minimal.ok());
  EXPECT_FALSE(minimal->force);
  EXPECT_FALSE(minimal->resync);
}

}  // namespace
}  // namespace replsync
