// The row encoding of verify's and resync's chunk summaries (sync/mysql/row_encoding.h).
#include "sync/mysql/row_encoding.h"

#include <gtest/gtest.h>

namespace replsync {
namespace {

TEST(RowEncodingTest, AColumnIsNullOrItsLengthAndBytes) {
  EXPECT_EQ(ColumnEncodingSql("name", "varchar"),
            "IF(`name` IS NULL, '~', CONCAT(LENGTH(CAST(`name` AS BINARY)), ':', CAST(`name` AS "
            "BINARY)))");
  // FLOAT widened to DOUBLE: the server prints a FLOAT with 6 digits.
  EXPECT_EQ(ColumnEncodingSql("f", "float"),
            "IF((`f` + 0e0) IS NULL, '~', CONCAT(LENGTH(CAST((`f` + 0e0) AS BINARY)), ':', "
            "CAST((`f` + 0e0) AS BINARY)))");
  // Identifiers are quoted.
  EXPECT_NE(ColumnEncodingSql("a`b", "int").find("`a``b`"), std::string::npos);
}

TEST(RowEncodingTest, LargeValuesAreTheirLengthAndHash) {
  for (const char* type : {"mediumblob", "longblob", "mediumtext", "longtext", "json"}) {
    EXPECT_EQ(ColumnEncodingSql("v", type),
              "IF(`v` IS NULL, '~', CONCAT(LENGTH(CAST(`v` AS BINARY)), '#', SHA2(CAST(`v` AS "
              "BINARY), 256)))")
        << type;
  }
  EXPECT_NE(ColumnEncodingSql("v", "blob").find("':'"), std::string::npos);
}

TEST(RowEncodingTest, ARowConcatenatesItsColumnsInOrder) {
  EXPECT_EQ(RowEncodingSql({}), "");
  EXPECT_EQ(
      RowEncodingSql({EncodedColumn{"a", "int"}, EncodedColumn{"b", "text"}}),
      "CONCAT(" + ColumnEncodingSql("a", "int") + ", " + ColumnEncodingSql("b", "text") + ")");
}

}  // namespace
}  // namespace replsync
