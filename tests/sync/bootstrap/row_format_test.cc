// The chunk row format's text (AppendRow), SELECT list and LOAD DATA statement, without a server
// (the round trip through real servers is tests/integration/bootstrap_format_test.cc).
#include "sync/bootstrap/row_format.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace replsync::bootstrap {
namespace {

Column Col(std::string name, std::string data_type, bool generated = false) {
  Column c;
  c.name = std::move(name);
  c.data_type = std::move(data_type);
  c.column_type = c.data_type;
  c.generated = generated;
  return c;
}

TEST(RowFormatTest, AppendRowEscapesBackslashTabAndNewlineAndWritesNullAsBackslashN) {
  const std::string binary("a\\b\tc\nd\0e\r\xff", 11);
  const char* values[] = {"1", nullptr, "", binary.data(), "\\N", "N"};
  const unsigned long lengths[] = {1, 0, 0, binary.size(), 2, 1};
  std::string out;
  AppendRow(values, lengths, 6, &out);
  EXPECT_EQ(out, std::string("1\t\\N\t\ta\\\\b\\tc\\nd\0e\r\xff\t\\\\N\tN\n", 27));
  // Rows append.
  AppendRow(values, lengths, 1, &out);
  EXPECT_EQ(out.substr(out.size() - 2), "1\n");
}

TEST(RowFormatTest, SelectListWidensFloatAndSelectsNumbersOfBitEnumSetAndSkipsGenerated) {
  std::vector<Column> columns = {
      Col("id", "int"),      Col("f", "float"),        Col("d", "double"),
      Col("b", "bit"),       Col("e", "enum"),         Col("s", "set"),
      Col("g", "int", true), Col("we`ird", "varchar"), Col("p", "point")};
  EXPECT_EQ(SelectList(columns),
            "`id`, CAST(`f` AS DOUBLE), `d`, `b` + 0, `e` + 0, `s` + 0, `we``ird`, `p`");
  EXPECT_EQ(StoredColumns(columns).size(), 8u);
  EXPECT_TRUE(LoadedAsNumber(columns[3]));
  EXPECT_FALSE(LoadedAsNumber(columns[1]));
}

TEST(RowFormatTest, LoadDataStatementNamesEveryStoredColumnAndLoadsNumbersThroughVariables) {
  std::vector<Column> columns = {Col("id", "int"), Col("b", "bit"), Col("g", "int", true),
                                 Col("v", "varchar"), Col("e", "enum")};
  EXPECT_EQ(LoadDataStatement("app", "t`1", columns, "chunk"),
            "LOAD DATA LOCAL INFILE 'chunk' INTO TABLE `app`.`t``1` CHARACTER SET binary FIELDS "
            "TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (`id`, @v1, `v`, @v2) "
            "SET `b` = CAST(@v1 AS UNSIGNED), `e` = CAST(@v2 AS UNSIGNED)");
  EXPECT_EQ(LoadDataStatement("a", "t", {Col("id", "int")}, "x"),
            "LOAD DATA LOCAL INFILE 'x' INTO TABLE `a`.`t` CHARACTER SET binary FIELDS "
            "TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (`id`)");
}

}  // namespace
}  // namespace replsync::bootstrap
