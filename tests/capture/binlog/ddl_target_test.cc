// Decide (capture/binlog/ddl_target.h): capture's rule for replicating a statement by the
// databases it touches.
#include "capture/binlog/ddl_target.h"

#include <gtest/gtest.h>

#include <string_view>

namespace replsync::capture {
namespace {

StatementTargets Analyze(std::string_view sql, std::string_view session_db) {
  return AnalyzeStatement(sql, session_db);
}

TEST(DdlTargetDecideTest, ReplicatesWhenAnyTouchedDatabaseIsReplicated) {
  DatabaseFilter f({"shop"});
  EXPECT_EQ(Decide(Analyze("CREATE TABLE shop.t (a INT)", "other"), f), Decision::kReplicate);
  EXPECT_EQ(Decide(Analyze("CREATE TABLE t (a INT)", "other"), f), Decision::kSkip);
  EXPECT_EQ(Decide(Analyze("RENAME TABLE shop.t TO other.t", ""), f), Decision::kReplicatePartial);
  EXPECT_EQ(Decide(Analyze("CREATE TABLE t2 AS SELECT 1", "shop"), f), Decision::kReplicatePartial);
  EXPECT_EQ(Decide(Analyze("CREATE TABLE t (a INT)", ""), f), Decision::kSkipUncertain);
  // The parent of an unqualified foreign key is in the child table's database.
  EXPECT_EQ(Decide(Analyze("CREATE TABLE other.c (p INT REFERENCES parent (id))", "shop"), f),
            Decision::kSkip);
  EXPECT_EQ(Decide(Analyze("CREATE TABLE shop.c (p INT REFERENCES parent (id))", ""), f),
            Decision::kReplicate);
  EXPECT_EQ(Decide(Analyze("GRANT ALL ON shop.* TO app", "shop"), f), Decision::kSkip);
  EXPECT_EQ(Decide(Analyze("GRANT ALL ON shop.* TO app", "shop"), DatabaseFilter({"mysql"})),
            Decision::kReplicate);
  // Empty list: the system schemas stay out.
  EXPECT_EQ(Decide(Analyze("CREATE USER x", ""), DatabaseFilter()), Decision::kSkip);
  EXPECT_EQ(Decide(Analyze("DROP TABLE a.t, b.t", ""), DatabaseFilter()), Decision::kReplicate);
}

}  // namespace
}  // namespace replsync::capture
