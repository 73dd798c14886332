#include "apply/bootstrap/deferred_indexes.h"

#include <gtest/gtest.h>

namespace replsync::apply {
namespace {

TableDefinition Table(const std::string& db, const std::string& name, const std::string& body) {
  return {db, name, "CREATE TABLE `" + name + "` (\n" + body + "\n) ENGINE=InnoDB"};
}

TEST(DeferrableIndexesTest, PlainIndexesOfATableOutsideEveryForeignKey) {
  const TableDefinition t = Table("app", "big",
                                  "  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
                                  "  `k` int(11) NOT NULL,\n"
                                  "  `c` char(120) NOT NULL,\n"
                                  "  PRIMARY KEY (`id`),\n"
                                  "  UNIQUE KEY `uc` (`c`),\n"
                                  "  KEY `k` (`k`),\n"
                                  "  KEY `odd``name` (`k`,`c`) COMMENT 'x'");
  EXPECT_EQ(DeferrableIndexes(t, {t}),
            (std::vector<std::string>{"KEY `k` (`k`)", "KEY `odd``name` (`k`,`c`) COMMENT 'x'"}));
}

TEST(DeferrableIndexesTest, NoneForATableWithAForeignKey) {
  const TableDefinition child = Table("app", "items",
                                      "  `id` int(11) NOT NULL,\n"
                                      "  `owner` int(11) NOT NULL,\n"
                                      "  PRIMARY KEY (`id`),\n"
                                      "  KEY `owner` (`owner`),\n"
                                      "  CONSTRAINT `items_ibfk_1` FOREIGN KEY (`owner`) "
                                      "REFERENCES `owners` (`id`) ON DELETE CASCADE");
  EXPECT_TRUE(DeferrableIndexes(child, {child}).empty());
}

TEST(DeferrableIndexesTest, NoneForATableAnotherReferences) {
  const TableDefinition parent = Table("app", "owners",
                                       "  `id` int(11) NOT NULL,\n"
                                       "  `code` int(11) NOT NULL,\n"
                                       "  PRIMARY KEY (`id`),\n"
                                       "  KEY `code` (`code`)");
  const TableDefinition same_db = Table("app", "items",
                                        "  `id` int(11) NOT NULL,\n"
                                        "  CONSTRAINT `f` FOREIGN KEY (`id`) REFERENCES `owners` "
                                        "(`code`)");
  const TableDefinition other_db = Table("other", "items",
                                         "  `id` int(11) NOT NULL,\n"
                                         "  CONSTRAINT `f` FOREIGN KEY (`id`) REFERENCES "
                                         "`app`.`owners` (`code`)");
  const TableDefinition unrelated = Table("other", "owners_log",
                                          "  `id` int(11) NOT NULL,\n"
                                          "  CONSTRAINT `f` FOREIGN KEY (`id`) REFERENCES "
                                          "`owners` (`id`)");
  EXPECT_TRUE(DeferrableIndexes(parent, {parent, same_db}).empty());
  EXPECT_TRUE(DeferrableIndexes(parent, {parent, other_db}).empty());
  // A table of another database referencing its own `owners`: not this one.
  EXPECT_EQ(DeferrableIndexes(parent, {parent, unrelated}),
            (std::vector<std::string>{"KEY `code` (`code`)"}));
}

TEST(DeferrableIndexesTest, NoneBesideAFulltextOrSpatialIndex) {
  const TableDefinition text = Table("app", "docs",
                                     "  `id` int(11) NOT NULL,\n"
                                     "  `body` text,\n"
                                     "  PRIMARY KEY (`id`),\n"
                                     "  KEY `id2` (`id`),\n"
                                     "  FULLTEXT KEY `body` (`body`)");
  EXPECT_TRUE(DeferrableIndexes(text, {text}).empty());
  const TableDefinition keyless = Table("app", "nokey", "  `a` int(11) DEFAULT NULL");
  EXPECT_TRUE(DeferrableIndexes(keyless, {keyless}).empty());
}

}  // namespace
}  // namespace replsync::apply
