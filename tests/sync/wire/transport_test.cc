// SplitPathsForRequests (sync/wire/transport.h): path lists cut into messages the primary takes.
#include "sync/wire/transport.h"

#include <gtest/gtest.h>

namespace replsync {
namespace {

TEST(SplitPathsForRequestsTest, RunsStayUnderTheBudgetKeepOrderAndALongPathGoesAlone) {
  EXPECT_TRUE(SplitPathsForRequests({}).empty());
  // Each 100-byte path costs 102 encoded bytes (tag, one-byte length, the bytes).
  std::vector<std::string> paths;
  for (int i = 0; i < 10; ++i) paths.push_back(std::string(99, 'a') + std::to_string(i));
  auto runs = SplitPathsForRequests(paths, 310);
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[0].size(), 3u);
  EXPECT_EQ(runs[3].size(), 1u);
  std::vector<std::string> joined;
  for (const auto& run : runs) joined.insert(joined.end(), run.begin(), run.end());
  EXPECT_EQ(joined, paths);
  // A path over the budget by itself is sent alone (the primary then refuses it, not the
  // transport); a 200-byte path has a two-byte length.
  auto alone = SplitPathsForRequests({"x", std::string(400, 'b'), "y"}, 310);
  ASSERT_EQ(alone.size(), 3u);
  EXPECT_EQ(alone[1].size(), 1u);
  EXPECT_EQ(SplitPathsForRequests({std::string(200, 'c')}, 203).size(), 1u);
  EXPECT_EQ(SplitPathsForRequests({std::string(200, 'c'), "d"}, 203).size(), 2u);
}

}  // namespace
}  // namespace replsync
