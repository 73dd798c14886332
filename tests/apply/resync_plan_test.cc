// The plan of `replsync bootstrap --resync` for the secondary's definitions at round 0
// (apply/bootstrap/resync_plan.h): which tables are kept and compared, created, created again
// or dropped.
#include "apply/bootstrap/resync_plan.h"

#include <gtest/gtest.h>

namespace replsync::apply {
namespace {

using Name = std::pair<std::string, std::string>;

TEST(ResyncPlanTest, TheAutoIncrementCounterIsNoPartOfTheDefinition) {
  EXPECT_EQ(NormalizeCreateTable("CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
                                 "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=5012 "
                                 "DEFAULT CHARSET=latin1"),
            "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
            "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=latin1");
  // Two counters of one definition compare equal; another option does not.
  EXPECT_EQ(NormalizeCreateTable("CREATE TABLE `t` (`id` int) ENGINE=InnoDB AUTO_INCREMENT=3"),
            NormalizeCreateTable("CREATE TABLE `t` (`id` int) ENGINE=InnoDB"));
  EXPECT_NE(NormalizeCreateTable("CREATE TABLE `t` (`id` int) ENGINE=InnoDB AUTO_INCREMENT=3"),
            NormalizeCreateTable("CREATE TABLE `t` (`id` int) ENGINE=Aria AUTO_INCREMENT=3"));
  // Text that is not the counter stays.
  EXPECT_EQ(NormalizeCreateTable("CREATE TABLE `t` (`a` int) COMMENT=' AUTO_INCREMENT=x'"),
            "CREATE TABLE `t` (`a` int) COMMENT=' AUTO_INCREMENT=x'");
  EXPECT_EQ(NormalizeCreateTable(""), "");
}

TEST(ResyncPlanTest, TheDatabaseOfACreateDatabaseText) {
  EXPECT_EQ(DatabaseOfCreate("CREATE DATABASE `app` /*!40100 DEFAULT CHARACTER SET latin1 */"),
            "app");
  EXPECT_EQ(DatabaseOfCreate("CREATE DATABASE `a``b`"), "a`b");
  EXPECT_EQ(DatabaseOfCreate("CREATE DATABASE app"), std::nullopt);
  EXPECT_EQ(DatabaseOfCreate("CREATE DATABASE `unterminated"), std::nullopt);
}

TEST(ResyncPlanTest, KeepsEqualTablesAndCreatesRecreatesOrDropsTheRest) {
  const std::string t = "CREATE TABLE `t` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB";
  TableDefinitions primary = {
      {{"app", "same"}, t + " AUTO_INCREMENT=90"},
      {{"app", "changed"}, "CREATE TABLE `changed` (`id` int NOT NULL, `v` int)"},
      {{"app", "new"}, t},
  };
  TableDefinitions secondary = {
      {{"app", "same"}, t + " AUTO_INCREMENT=12"},
      {{"app", "changed"}, "CREATE TABLE `changed` (`id` int NOT NULL)"},
      {{"app", "gone"}, t},
      {{"old", "x"}, t},
  };
  ResyncPlan plan = PlanResync(primary, {"app"}, secondary, {"app", "old"});
  EXPECT_EQ(plan.keep, (std::vector<Name>{{"app", "same"}}));
  EXPECT_EQ(plan.recreate, (std::vector<Name>{{"app", "changed"}}));
  EXPECT_EQ(plan.create, (std::vector<Name>{{"app", "new"}}));
  EXPECT_EQ(plan.drop, (std::vector<Name>{{"app", "gone"}, {"old", "x"}}));
  EXPECT_EQ(plan.drop_databases, (std::vector<std::string>{"old"}));
}

TEST(ResyncPlanTest, AnEmptySecondaryCreatesEverythingAndDropsNothing) {
  TableDefinitions primary = {{{"app", "a"}, "CREATE TABLE `a` (`x` int)"},
                              {{"app", "b"}, "CREATE TABLE `b` (`x` int)"}};
  ResyncPlan plan = PlanResync(primary, {"app"}, {}, {});
  EXPECT_EQ(plan.create, (std::vector<Name>{{"app", "a"}, {"app", "b"}}));
  EXPECT_TRUE(plan.keep.empty());
  EXPECT_TRUE(plan.recreate.empty());
  EXPECT_TRUE(plan.drop.empty());
  EXPECT_TRUE(plan.drop_databases.empty());
}

}  // namespace
}  // namespace replsync::apply
