// The summary of a bootstrap chunk (sync/bootstrap/chunk_summary.h): its SQL over a key range
// or a table without a key, and how its result and the server's warnings are read.
#include "sync/bootstrap/chunk_summary.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "sync/mysql/row_encoding.h"

namespace replsync::bootstrap {
namespace {

Column Col(std::string name, std::string data_type, bool generated = false) {
  Column c;
  c.name = std::move(name);
  c.data_type = std::move(data_type);
  c.generated = generated;
  return c;
}

// A session that answers the summary and SHOW WARNINGS with canned rows and records the rest.
class FakeSession : public SqlSession {
 public:
  std::deque<std::vector<Row>> answers;  // one per Query, in order
  std::vector<std::string> statements;   // every Execute and Query

  Result<std::vector<Row>> Query(const std::string& sql, std::string_view) override {
    statements.push_back(sql);
    if (answers.empty()) return Status::Internal("no answer for " + sql);
    std::vector<Row> rows = std::move(answers.front());
    answers.pop_front();
    return rows;
  }
  Status Execute(const std::string& sql, std::string_view) override {
    statements.push_back(sql);
    return Status::Ok();
  }
  Result<uint64_t> ExecuteUpdate(const std::string&, std::string_view) override { return 0; }
  Status ExecuteBatch(const std::vector<std::string>&, std::string_view) override {
    return Status::Ok();
  }
  int last_error_code() const override { return 0; }
  bool broken() const override { return false; }
  std::string Describe() const override { return "fake"; }
};

const std::string kDigest(64, 'a');

TEST(ChunkSummaryTest, AKeyedRangeIsSummarisedInKeyOrderThroughItsIndex) {
  const std::vector<Column> columns = {Col("id", "int"), Col("f", "float"),
                                       Col("twice", "int", /*generated=*/true)};
  const std::string sql = ChunkSummarySql("app", "t", columns, {"id"}, "PRIMARY", {"5"}, {"9"});
  const std::string encoding =
      RowEncodingSql({EncodedColumn{"id", "int"}, EncodedColumn{"f", "float"}});
  EXPECT_EQ(sql, "SELECT c, SHA2(g, 256), LENGTH(g), c FROM (SELECT COUNT(*) AS c, GROUP_CONCAT(" +
                     encoding +
                     " ORDER BY `id` SEPARATOR '') AS g FROM `app`.`t` FORCE INDEX (PRIMARY) WHERE "
                     "`id` > 5 AND `id` <= 9) AS x");
  // The generated column is the server's: not encoded. FLOAT is widened.
  EXPECT_EQ(sql.find("twice"), std::string::npos);
  EXPECT_NE(sql.find("(`f` + 0e0)"), std::string::npos);
  // Another index is named; the last chunk has no upper bound, the first no lower one.
  EXPECT_NE(
      ChunkSummarySql("app", "t", columns, {"id"}, "uk", {}, {}).find("FORCE INDEX (`uk`)) AS x"),
      std::string::npos);
  EXPECT_NE(ChunkSummarySql("app", "t", columns, {"id"}, "", {"5"}, {})
                .find("FROM `app`.`t` WHERE `id` > 5) AS x"),
            std::string::npos);
}

TEST(ChunkSummaryTest, ATableWithoutAKeyIsSummarisedAsAMultisetOfRowHashes) {
  const std::string sql =
      ChunkSummarySql("app", "nokey", {Col("a", "int"), Col("b", "varchar")}, {}, "", {}, {});
  EXPECT_NE(sql.find("GROUP_CONCAT(h ORDER BY h SEPARATOR '')"), std::string::npos) << sql;
  EXPECT_NE(sql.find("COUNT(h) AS n"), std::string::npos) << sql;
  EXPECT_NE(sql.find("SELECT SHA2(" +
                     RowEncodingSql({EncodedColumn{"a", "int"}, EncodedColumn{"b", "varchar"}}) +
                     ", 256) AS h FROM `app`.`nokey`"),
            std::string::npos)
      << sql;
}

TEST(ChunkSummaryTest, ReadsTheResultAndRaisesTheConcatenationLimitFirst) {
  FakeSession session;
  session.answers.push_back({{std::string("3"), kDigest, std::string("120"), std::string("3")}});
  session.answers.push_back({});  // no warnings
  Result<ChunkSummary> summary =
      SummarizeChunk(session, "app", "t", {Col("id", "int")}, {"id"}, "PRIMARY", {}, {"3"});
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->rows, 3u);
  EXPECT_EQ(summary->sha256, kDigest);
  EXPECT_EQ(summary->bytes, 120u);
  EXPECT_TRUE(summary->exact);
  ASSERT_EQ(session.statements.size(), 3u);
  EXPECT_EQ(session.statements[0], "SET SESSION group_concat_max_len = 4294967295");
  EXPECT_EQ(session.statements[2], "SHOW WARNINGS");
  EXPECT_TRUE(summary->Matches(*summary));
}

TEST(ChunkSummaryTest, NoRowsHaveNoDigestAndMatchNoRows) {
  FakeSession session;
  session.answers.push_back({{std::string("0"), std::nullopt, std::nullopt, std::string("0")}});
  session.answers.push_back({});
  Result<ChunkSummary> summary =
      SummarizeChunk(session, "app", "t", {Col("id", "int")}, {"id"}, "PRIMARY", {"9"}, {});
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->rows, 0u);
  EXPECT_EQ(summary->sha256, "");
  EXPECT_TRUE(summary->exact);
  ChunkSummary empty;
  EXPECT_TRUE(summary->Matches(empty));
}

TEST(ChunkSummaryTest, AWarningOrAnUnhashedRowMakesASummaryThatMatchesNothing) {
  {
    // GROUP_CONCAT cut short at max_allowed_packet (1260): the digest says nothing.
    FakeSession session;
    session.answers.push_back({{std::string("2"), kDigest, std::string("99"), std::string("2")}});
    session.answers.push_back({{std::string("Warning"), std::string("1260"), std::string("cut")}});
    Result<ChunkSummary> summary =
        SummarizeChunk(session, "app", "t", {Col("id", "int")}, {"id"}, "", {}, {});
    ASSERT_TRUE(summary.ok());
    EXPECT_FALSE(summary->exact);
    EXPECT_FALSE(summary->Matches(*summary));
  }
  {
    // A row whose hash is NULL (its encoding over max_allowed_packet) is in no digest.
    FakeSession session;
    session.answers.push_back({{std::string("2"), kDigest, std::string("64"), std::string("1")}});
    session.answers.push_back({});
    Result<ChunkSummary> summary =
        SummarizeChunk(session, "app", "nokey", {Col("a", "int")}, {}, "", {}, {});
    ASSERT_TRUE(summary.ok());
    EXPECT_FALSE(summary->exact);
  }
  ChunkSummary a{.rows = 2, .sha256 = kDigest};
  ChunkSummary b{.rows = 2, .sha256 = std::string(64, 'b')};
  ChunkSummary c{.rows = 3, .sha256 = kDigest};
  EXPECT_FALSE(a.Matches(b));
  EXPECT_FALSE(a.Matches(c));
}

TEST(ChunkSummaryTest, RefusesBoundsWithoutAKeyAndTablesWithoutStoredColumns) {
  FakeSession session;
  Result<ChunkSummary> bounded =
      SummarizeChunk(session, "app", "nokey", {Col("a", "int")}, {}, "", {"5"}, {});
  EXPECT_EQ(bounded.status().code(), Status::Code::kInvalidArgument);
  Result<ChunkSummary> none =
      SummarizeChunk(session, "app", "t", {Col("g", "int", true)}, {"id"}, "", {}, {});
  EXPECT_EQ(none.status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(session.statements.empty());
}

}  // namespace
}  // namespace replsync::bootstrap
