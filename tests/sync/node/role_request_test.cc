#include "sync/node/role_request.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace replsync {
namespace {

TEST(RoleRequestTest, RequestAndReplyRoundTripThroughTheFiles) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "rolereq.XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  EXPECT_TRUE(ReadRoleRequest(dir).status().IsNotFound());
  const RoleRequest request{.token = "c3",
                            .action = RoleRequest::Action::kSwitchover,
                            .force = false,
                            .dry_run = true,
                            .target = "b"};
  ASSERT_TRUE(WriteRoleRequest(dir, request).ok());
  struct stat st {};
  ASSERT_EQ(::stat(RoleRequestPath(dir).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Result<RoleRequest> back = ReadRoleRequest(dir);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, request);

  // A reply carries the rejoin report as a JSON object, given back byte for byte.
  const RoleReply reply{.token = "c3",
                        .exit_code = 1,
                        .message = "a tail",
                        .epoch = 2,
                        .report = R"({"node":"a","transactions":[{"gtid":"0-1-9"}]})"};
  ASSERT_TRUE(WriteRoleReply(dir, reply).ok());
  Result<RoleReply> reply_back = ReadRoleReply(dir);
  ASSERT_TRUE(reply_back.ok()) << reply_back.status().ToString();
  EXPECT_EQ(*reply_back, reply);
  // Without a report the field is left out.
  const RoleReply bare{.token = "t", .exit_code = 0, .message = "", .epoch = 3, .report = ""};
  EXPECT_EQ(bare.ToJson().find("report"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(RoleRequestTest, MalformedRequestsAndRepliesAreRefused) {
  EXPECT_FALSE(RoleRequest::Parse(R"({"force":true})").ok());
  EXPECT_FALSE(RoleRequest::Parse(R"({"token":"x","action":"demote"})").ok());
  EXPECT_FALSE(RoleRequest::Parse(R"({"token":"x","dry_run":1})").ok());
  EXPECT_FALSE(RoleReply::Parse(R"({"token":"x","exit_code":0,"message":"","epoch":1,)"
                                R"("report":"text"})")
                   .ok());
  // An older command's promote request (no action) is a promote.
  Result<RoleRequest> old = RoleRequest::Parse(R"({"token":"x","force":true})");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->action, RoleRequest::Action::kPromote);
  EXPECT_TRUE(old->force);
  EXPECT_FALSE(old->dry_run);
}

}  // namespace
}  // namespace replsync
