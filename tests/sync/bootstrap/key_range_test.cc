// Key ranges of bootstrap chunks: the predicate of (lower, upper], key literals of streamed
// values, the JSON form of a bound.
#include "sync/bootstrap/key_range.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace replsync::bootstrap {
namespace {

Column Col(std::string name, std::string data_type, std::string charset = "") {
  Column c;
  c.name = std::move(name);
  c.data_type = std::move(data_type);
  c.charset = std::move(charset);
  return c;
}

std::string Literal(const Column& c, const std::string& value) {
  return KeyLiteral(c, value.data(), value.size());
}

TEST(KeyRangeTest, PredicateOfASingleColumnKey) {
  EXPECT_EQ(KeyRangePredicate({"id"}, {}, {}), "");
  EXPECT_EQ(KeyRangeWhere({"id"}, {}, {}), "");
  EXPECT_EQ(KeyRangePredicate({"id"}, {"5"}, {}), "`id` > 5");
  EXPECT_EQ(KeyRangePredicate({"id"}, {}, {"9"}), "`id` <= 9");
  EXPECT_EQ(KeyRangeWhere({"id"}, {"5"}, {"9"}), " WHERE `id` > 5 AND `id` <= 9");
}

TEST(KeyRangeTest, PredicateOfACompositeKeyHasTheFirstColumnsBoundInFront) {
  EXPECT_EQ(KeyRangePredicate({"a", "b"}, {"1", "'x'"}, {}),
            "`a` >= 1 AND (`a` > 1 OR (`a` = 1 AND `b` > 'x'))");
  EXPECT_EQ(KeyRangePredicate({"a", "b", "c"}, {}, {"1", "2", "3"}),
            "`a` <= 1 AND (`a` < 1 OR (`a` = 1 AND (`b` < 2 OR (`b` = 2 AND `c` <= 3))))");
  EXPECT_EQ(KeyOrder({"a", "b`c"}), "`a`, `b``c`");
}

TEST(KeyRangeTest, KeyLiteralsOfEveryKind) {
  EXPECT_EQ(Literal(Col("i", "bigint"), "-9223372036854775808"), "-9223372036854775808");
  EXPECT_EQ(Literal(Col("f", "float"), "0.10000000149011612"), "0.10000000149011612");
  EXPECT_EQ(Literal(Col("b", "bit"), "31"), "31");
  EXPECT_EQ(Literal(Col("e", "enum"), "2"), "2");
  EXPECT_EQ(Literal(Col("s", "varchar", "utf8mb4"), "a'\xf0\x9f\x98\x80"),
            "_utf8mb4 X'6127f09f9880'");
  EXPECT_EQ(Literal(Col("l", "char", "latin1"), "\xe9"), "_latin1 X'e9'");
  EXPECT_EQ(Literal(Col("v", "varbinary"), std::string("\0\xff", 2)), "X'00ff'");
  EXPECT_EQ(Literal(Col("v", "varbinary"), ""), "X''");
  EXPECT_EQ(Literal(Col("d", "datetime"), "2024-02-29 12:00:00.500000"),
            "_utf8mb4 '2024-02-29 12:00:00.500000'");
  EXPECT_EQ(Literal(Col("u", "uuid"), "123e4567-e89b-12d3-a456-426655440000"),
            "_utf8mb4 '123e4567-e89b-12d3-a456-426655440000'");
}

TEST(KeyRangeTest, KeyPositionsFindTheKeyAmongTheChunksColumns) {
  std::vector<Column> columns = {Col("a", "int"), Col("b", "int"), Col("c", "int")};
  auto positions = KeyPositions(columns, {"c", "a"});
  ASSERT_TRUE(positions.ok());
  EXPECT_EQ(*positions, (std::vector<size_t>{2, 0}));
  auto missing = KeyPositions(columns, {"z"});
  EXPECT_EQ(missing.status().code(), Status::Code::kInvalidArgument);
}

TEST(KeyRangeTest, BoundsRoundTripThroughJson) {
  const std::vector<std::string> bound = {"5", "_utf8mb4 X'41'", "'it''s \\\\ \"q\"'"};
  const std::string json = BoundToJson(bound);
  EXPECT_EQ(json, "[\"5\",\"_utf8mb4 X'41'\",\"'it''s \\\\\\\\ \\\"q\\\"'\"]");
  auto back = BoundFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, bound);
  EXPECT_EQ(BoundToJson({}), "[]");
  EXPECT_TRUE(BoundFromJson("[]")->empty());
  EXPECT_EQ(BoundFromJson("{\"a\":1}").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(BoundFromJson("[1]").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(BoundFromJson("[\"5\"").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(DescribeBound({}, false), "(-infinity)");
  EXPECT_EQ(DescribeBound({}, true), "(+infinity)");
  EXPECT_EQ(DescribeBound({"1", "'x'"}, true), "(1, 'x')");
}

}  // namespace
}  // namespace replsync::bootstrap
