#include "sync/database_filter.h"

#include <gtest/gtest.h>

namespace replsync {
namespace {

TEST(DatabaseFilterTest, EmptyListMeansAllButSystemSchemas) {
  DatabaseFilter all;
  EXPECT_TRUE(all.Replicated("shop"));
  EXPECT_FALSE(all.Replicated("mysql"));
  EXPECT_FALSE(all.Replicated("information_schema"));
  EXPECT_FALSE(all.Replicated("performance_schema"));
  EXPECT_FALSE(all.Replicated("sys"));
  EXPECT_FALSE(all.Replicated(""));
  EXPECT_EQ(all.Describe(), "all but the system schemas");
}

TEST(DatabaseFilterTest, VerifyMarkerSchemaIsAlwaysReplicated) {
  EXPECT_TRUE(DatabaseFilter({"shop"}).Replicated("replsync_verify"));
  EXPECT_TRUE(DatabaseFilter().Replicated("replsync_verify"));
  EXPECT_FALSE(DatabaseFilter().Replicated("replsync"));
}

TEST(DatabaseFilterTest, ListedDatabasesOnlyAndCaseSensitive) {
  DatabaseFilter f({"shop", "mysql", "shop"});
  EXPECT_TRUE(f.Replicated("shop"));
  EXPECT_TRUE(f.Replicated("mysql"));
  EXPECT_FALSE(f.Replicated("Shop"));
  EXPECT_FALSE(f.Replicated("other"));
  EXPECT_EQ(f.Describe(), "mysql, shop");
}

}  // namespace
}  // namespace replsync
