#include "sync/verify/last_verify.h"

#include <gtest/gtest.h>

namespace replsync::verify {
namespace {

TEST(LastVerifyTest, JsonHasTheDocumentedKeysInOrderAndRoundTrips) {
  LastVerify v{.at = 1795320000.25, .seconds = 1.5, .exit_code = 1, .what = "all",
               .tables = 5, .tables_differing = 2, .files_verified = true,
               .paths_differing = 4, .error = ""};
  EXPECT_EQ(v.ToJson(),
            "{\"at\":1795320000.25,\"seconds\":1.5,\"exit_code\":1,\"what\":\"all\",\"tables\":5,"
            "\"tables_differing\":2,\"files_verified\":true,\"paths_differing\":4,\"error\":\"\"}");
  EXPECT_EQ(LastVerify::Parse(v.ToJson()), v);
}

TEST(LastVerifyTest, ParseKeepsDefaultsForMissingOrMistypedMembers) {
  std::optional<LastVerify> v = LastVerify::Parse(R"({"exit_code":"x","what":"files"})");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->exit_code, 2);
  EXPECT_EQ(v->what, "files");
  EXPECT_EQ(v->tables, 0u);
}

TEST(LastVerifyTest, ParseRefusesWhatIsNotAnObject) {
  EXPECT_FALSE(LastVerify::Parse("").has_value());
  EXPECT_FALSE(LastVerify::Parse("[1]").has_value());
  EXPECT_FALSE(LastVerify::Parse("{\"at\":").has_value());
}

}  // namespace
}  // namespace replsync::verify
