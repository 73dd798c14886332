#include "capture/binlog/writeset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace replsync::capture {
namespace {

// A table (id INT, name VARCHAR with a case-insensitive collation, v INT) whose key is `key`.
TableMap Table(std::vector<uint32_t> key, const std::string& name = "t") {
  TableMap t;
  t.db = "d";
  t.table = name;
  ColumnDef id;
  id.type = ColumnType::kLong;
  ColumnDef text;
  text.type = ColumnType::kVarchar;
  text.collation = 45;  // utf8mb4_general_ci
  ColumnDef v;
  v.type = ColumnType::kLong;
  t.columns = {id, text, v};
  t.primary_key = std::move(key);
  t.primary_key_prefix.assign(t.primary_key.size(), 0);
  return t;
}

RowImage Row(int64_t id, std::string_view name, int64_t v) {
  RowImage r;
  r.values.resize(3);
  r.present.assign(3, true);
  r.values[0].kind = ValueKind::kInt;
  r.values[0].i = id;
  r.values[1].kind = ValueKind::kString;
  r.values[1].bytes = name;
  r.values[2].kind = ValueKind::kInt;
  r.values[2].i = v;
  return r;
}

std::vector<uint64_t> Keys(const WritesetBuilder& b) {
  pb::DbTransaction txn;
  b.Fill(&txn);
  EXPECT_EQ(txn.writeset_version(), 1u);
  return {txn.writeset().begin(), txn.writeset().end()};
}

TEST(WritesetTest, SameKeySameHashOtherColumnsIgnored) {
  TableMap t = Table({0});
  WritesetBuilder a, b, c;
  RowImage r1 = Row(7, "x", 1), r2 = Row(7, "y", 2), r3 = Row(8, "x", 1);
  a.AddRow(t, nullptr, &r1);
  b.AddRow(t, &r2, nullptr);
  c.AddRow(t, nullptr, &r3);
  EXPECT_EQ(Keys(a), Keys(b));
  EXPECT_NE(Keys(a), Keys(c));
  ASSERT_EQ(Keys(a).size(), 1u);
  EXPECT_NE(Keys(a)[0], WritesetBuilder::TableKey("d", "t"));
}

TEST(WritesetTest, UpdateChangingTheKeyHoldsBothKeys) {
  TableMap t = Table({0});
  WritesetBuilder b;
  RowImage before = Row(1, "x", 1), after = Row(2, "x", 1);
  b.AddRow(t, &before, &after);
  EXPECT_EQ(Keys(b).size(), 2u);
  WritesetBuilder same;
  RowImage after_same = Row(1, "z", 5);
  same.AddRow(t, &before, &after_same);
  EXPECT_EQ(Keys(same).size(), 1u);
}

TEST(WritesetTest, TextKeysFollowACaseInsensitiveCollation) {
  TableMap t = Table({1});
  WritesetBuilder a, b, c;
  RowImage r1 = Row(1, "Abc", 0), r2 = Row(2, "abc  ", 0), r3 = Row(3, "abd", 0);
  a.AddRow(t, nullptr, &r1);
  b.AddRow(t, nullptr, &r2);
  c.AddRow(t, nullptr, &r3);
  EXPECT_EQ(Keys(a), Keys(b));  // 'Abc' = 'abc  ' under the collation: one key
  EXPECT_NE(Keys(a), Keys(c));
}

TEST(WritesetTest, TablesWithoutKnownKeyGetTheTableKey) {
  TableMap nokey = Table({});
  WritesetBuilder b;
  RowImage r = Row(1, "x", 1);
  b.AddRow(nokey, nullptr, &r);
  EXPECT_EQ(Keys(b), std::vector<uint64_t>{WritesetBuilder::TableKey("d", "t")});

  TableMap prefix = Table({1});
  prefix.primary_key_prefix = {3};  // PRIMARY KEY (name(3))
  WritesetBuilder p;
  p.AddRow(prefix, nullptr, &r);
  EXPECT_EQ(Keys(p), std::vector<uint64_t>{WritesetBuilder::TableKey("d", "t")});

  TableMap t = Table({0});
  RowImage missing = Row(1, "x", 1);
  missing.present[0] = false;  // a MINIMAL image without the key column
  WritesetBuilder m;
  m.AddRow(t, &missing, nullptr);
  EXPECT_EQ(Keys(m), std::vector<uint64_t>{WritesetBuilder::TableKey("d", "t")});
}

TEST(WritesetTest, TooManyRowsFallBackToTableKeysAndTablesAreListed) {
  TableMap t1 = Table({0}, "t1"), t2 = Table({0}, "t2");
  WritesetBuilder b(/*max_keys=*/10);
  std::vector<RowImage> rows;
  for (int i = 0; i < 20; ++i) rows.push_back(Row(i, "x", i));
  for (int i = 0; i < 20; ++i) b.AddRow(i % 2 ? t1 : t2, nullptr, &rows[i]);
  std::vector<uint64_t> expected = {WritesetBuilder::TableKey("d", "t1"),
                                    WritesetBuilder::TableKey("d", "t2")};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(Keys(b), expected);
  pb::DbTransaction txn;
  b.Fill(&txn);
  ASSERT_EQ(txn.tables_size(), 2);
  EXPECT_EQ(txn.tables(0).table(), "t1");
  EXPECT_EQ(txn.tables(1).table(), "t2");
  b.Reset();
  EXPECT_TRUE(Keys(b).empty());
}

}  // namespace
}  // namespace replsync::capture
