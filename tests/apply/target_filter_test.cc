#include "apply/target_filter.h"

#include <gtest/gtest.h>

#include <string>

namespace replsync::apply {
namespace {

// A TABLE_MAP event naming db.table: header (type 19), post-header of `post_header_len` bytes,
// then db_len, db, NUL, table_len, table, NUL and a column count (MariaDB KB TABLE_MAP_EVENT).
std::string TableMap(const std::string& db, const std::string& table, uint8_t post_header_len = 8) {
  std::string e(19, '\0');
  e[4] = 19;
  e += std::string(post_header_len, '\x01');
  e += static_cast<char>(db.size());
  e += db;
  e += '\0';
  e += static_cast<char>(table.size());
  e += table;
  e += '\0';
  e += '\x01';  // column count, types ... (not read)
  e += '\x03';
  return e;
}

std::string RowsEvent() {
  std::string e(19 + 10, '\0');
  e[4] = 30;  // WRITE_ROWS v2
  return e;
}

pb::DbTransaction Rows(const std::string& db, const std::string& table) {
  pb::DbTransaction txn;
  pb::Statement* s = txn.add_statements();
  s->set_kind(pb::Statement::ROWS);
  s->add_events(TableMap("smarten", "ok"));
  s->add_events(TableMap(db, table));
  s->add_events(RowsEvent());
  return txn;
}

pb::DbTransaction Ddl(const std::string& db, const std::string& sql) {
  pb::DbTransaction txn;
  txn.set_is_ddl(true);
  pb::Statement* s = txn.add_statements();
  s->set_kind(pb::Statement::DDL);
  s->set_db(db);
  s->set_sql(sql);
  return txn;
}

TEST(TargetFilterTest, RowsOfListedDatabasesPass) {
  TargetFilter filter({"smarten", "other"});
  EXPECT_TRUE(filter.Check(7, Rows("other", "t")).ok());
}

TEST(TargetFilterTest, RowsOfAnotherDatabaseAreRefusedNamingSeqTargetAndSetting) {
  TargetFilter filter({"smarten"});
  Status st = filter.Check(7, Rows("secret", "users"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(st.retryable());
  EXPECT_NE(st.message().find("relay entry 7"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("'secret.users'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("[mysql] databases: smarten"), std::string::npos) << st.message();
}

TEST(TargetFilterTest, EmptyListRefusesSystemSchemasAndReplsyncButNotVerifysMarker) {
  TargetFilter filter({});
  EXPECT_TRUE(filter.Check(1, Rows("anything", "t")).ok());
  EXPECT_FALSE(filter.Check(1, Rows("mysql", "user")).ok());
  EXPECT_FALSE(filter.Check(1, Rows("replsync", "applied")).ok());
  EXPECT_TRUE(filter.Check(1, Rows("replsync_verify", "marker")).ok());
  TargetFilter listed({"smarten"});
  EXPECT_TRUE(listed.Check(1, Rows("replsync_verify", "marker")).ok());
}

TEST(TargetFilterTest, TableMapPostHeaderLengthComesFromTheFormatDescription) {
  // A FORMAT_DESCRIPTION whose TABLE_MAP post-header length is 6 (old servers).
  std::string fde(19 + 2 + 50 + 4 + 1 + 40, '\x08');
  fde[4] = 15;
  fde[19 + 2 + 50 + 4 + 1 + 18] = 6;
  ASSERT_EQ(TableMapPostHeaderLen(fde), 6);
  pb::DbTransaction txn;
  txn.set_format_description(fde);
  pb::Statement* s = txn.add_statements();
  s->set_kind(pb::Statement::ROWS);
  s->add_events(TableMap("secret", "t", 6));
  Status st = TargetFilter({"smarten"}).Check(3, txn);
  EXPECT_NE(st.message().find("'secret.t'"), std::string::npos) << st.ToString();
  EXPECT_EQ(TableMapPostHeaderLen(""), 8);
}

TEST(TargetFilterTest, OtherEventsAmongRowsAndShortTableMapsAreCorruption) {
  TargetFilter filter({});
  pb::DbTransaction query = Rows("smarten", "t");
  std::string q(40, '\0');
  q[4] = 2;  // QUERY_EVENT
  query.mutable_statements(0)->add_events(q);
  EXPECT_EQ(filter.Check(1, query).code(), Status::Code::kCorruption);
  pb::DbTransaction shortmap = Rows("smarten", "t");
  std::string cut = TableMap("smarten", "t");
  cut.resize(19 + 8 + 3);
  *shortmap.mutable_statements(0)->mutable_events(1) = cut;
  EXPECT_EQ(filter.Check(1, shortmap).code(), Status::Code::kCorruption);
}

TEST(TargetFilterTest, DdlWhoseDefaultDatabaseIsNotReplicatedIsRefused) {
  TargetFilter filter({"smarten"});
  EXPECT_TRUE(filter.Check(4, Ddl("smarten", "CREATE TABLE t (a int)")).ok());
  EXPECT_TRUE(filter.Check(4, Ddl("", "CREATE TABLE smarten.t (a int)")).ok());
  Status st = filter.Check(4, Ddl("secret", "DROP TABLE t"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("relay entry 4"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("'secret'"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace replsync::apply
