#include "apply/binlog_statement.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sync/text.h"

namespace replsync::apply {
namespace {

// A fake event: 19-byte header with `type` at offset 4, then (for ROWS) a 6-byte table id and
// 2 bytes of flags, padded with `fill` to `size` bytes.
std::string MakeEvent(uint8_t type, size_t size, char fill, bool stmt_end = false) {
  std::string e(size, fill);
  e[4] = static_cast<char>(type);
  if (IsRowsEventType(type) && size >= 27) {
    e[25] = stmt_end ? 1 : 0;
    e[26] = 0;
  }
  return e;
}

std::string B64(const std::string& bytes) {
  std::string out;
  AppendBase64(bytes, &out);
  return out;
}

// The base64 blocks of one emitted statement, in order.
std::vector<std::string> Blocks(const std::string& sql) {
  EXPECT_EQ(sql.rfind("BINLOG '", 0), 0u) << sql.substr(0, 20);
  EXPECT_EQ(sql.back(), '\'');
  std::vector<std::string> blocks;
  std::string body = sql.substr(8, sql.size() - 9);
  size_t start = 0;
  while (start < body.size()) {
    size_t end = body.find('\n', start);
    if (end == std::string::npos) end = body.size();
    blocks.push_back(body.substr(start, end - start));
    start = end + 1;
  }
  return blocks;
}

TEST(BinlogStatementWriterTest, ForEventWrapsOneEvent) {
  const std::string fde = MakeEvent(15, 40, 'f');
  EXPECT_EQ(BinlogStatementWriter::ForEvent(fde), "BINLOG '" + B64(fde) + "'");
}

TEST(BinlogStatementWriterTest, SmallStatementIsOneBinlogWithEveryEvent) {
  std::vector<std::string> out;
  BinlogStatementWriter w(1 << 20, [&](const std::string& sql) {
    out.push_back(sql);
    return Status::Ok();
  });
  const std::string tm1 = MakeEvent(kTableMapEvent, 50, 'a');
  const std::string tm2 = MakeEvent(kTableMapEvent, 51, 'b');
  const std::string r1 = MakeEvent(30, 60, 'c');
  const std::string r2 = MakeEvent(30, 61, 'd', /*stmt_end=*/true);
  for (const auto* e : {&tm1, &tm2, &r1, &r2}) ASSERT_TRUE(w.Add(*e).ok());
  EXPECT_TRUE(out.empty());  // nothing before Flush
  ASSERT_TRUE(w.Flush().ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Blocks(out[0]), (std::vector<std::string>{B64(tm1), B64(tm2), B64(r1), B64(r2)}));
  EXPECT_EQ(w.statements_emitted(), 1u);
  ASSERT_TRUE(w.Flush().ok());
  EXPECT_EQ(out.size(), 1u);  // nothing pending: nothing emitted
}

TEST(BinlogStatementWriterTest, CutStatementsRepeatTheTableMaps) {
  std::vector<std::string> out;
  // Room for the two maps and about two rows events per statement.
  BinlogStatementWriter w(700, [&](const std::string& sql) {
    out.push_back(sql);
    return Status::Ok();
  });
  const std::string tm1 = MakeEvent(kTableMapEvent, 60, 'a');
  const std::string tm2 = MakeEvent(kTableMapEvent, 60, 'b');
  std::vector<std::string> rows;
  for (int i = 0; i < 7; ++i)
    rows.push_back(MakeEvent(23, 150, static_cast<char>('k' + i), i == 6));
  ASSERT_TRUE(w.Add(tm1).ok());
  ASSERT_TRUE(w.Add(tm2).ok());
  for (const auto& r : rows) ASSERT_TRUE(w.Add(r).ok());
  ASSERT_TRUE(w.Flush().ok());
  ASSERT_GE(out.size(), 3u);
  std::vector<std::string> all_rows;
  for (const std::string& sql : out) {
    EXPECT_LE(sql.size(), 700u);
    std::vector<std::string> blocks = Blocks(sql);
    ASSERT_GE(blocks.size(), 3u);
    EXPECT_EQ(blocks[0], B64(tm1));
    EXPECT_EQ(blocks[1], B64(tm2));
    all_rows.insert(all_rows.end(), blocks.begin() + 2, blocks.end());
  }
  std::vector<std::string> expected;
  for (const auto& r : rows) expected.push_back(B64(r));
  EXPECT_EQ(all_rows, expected);  // every rows event once, in order
}

TEST(BinlogStatementWriterTest, NewBinlogStatementReplacesTheTableMaps) {
  std::vector<std::string> out;
  BinlogStatementWriter w(400, [&](const std::string& sql) {
    out.push_back(sql);
    return Status::Ok();
  });
  const std::string tm1 = MakeEvent(kTableMapEvent, 40, 'a');
  const std::string r1 = MakeEvent(30, 100, 'b', /*stmt_end=*/true);
  const std::string tm2 = MakeEvent(kTableMapEvent, 40, 'c');
  const std::string r2 = MakeEvent(30, 100, 'd');
  const std::string r3 = MakeEvent(30, 100, 'e', /*stmt_end=*/true);
  for (const auto* e : {&tm1, &r1, &tm2, &r2, &r3}) ASSERT_TRUE(w.Add(*e).ok());
  ASSERT_TRUE(w.Flush().ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(Blocks(out[0]), (std::vector<std::string>{B64(tm1), B64(r1), B64(tm2), B64(r2)}));
  // Only the second statement's map is repeated (the first one's ended with STMT_END_F).
  EXPECT_EQ(Blocks(out[1]), (std::vector<std::string>{B64(tm2), B64(r3)}));
}

TEST(BinlogStatementWriterTest, OversizedEventGetsAStatementOfItsOwn) {
  std::vector<std::string> out;
  BinlogStatementWriter w(300, [&](const std::string& sql) {
    out.push_back(sql);
    return Status::Ok();
  });
  const std::string tm = MakeEvent(kTableMapEvent, 30, 'a');
  const std::string small = MakeEvent(30, 40, 'b');
  const std::string big = MakeEvent(30, 1000, 'c');
  const std::string last = MakeEvent(30, 40, 'd', /*stmt_end=*/true);
  for (const auto* e : {&tm, &small, &big, &last}) ASSERT_TRUE(w.Add(*e).ok());
  ASSERT_TRUE(w.Flush().ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(Blocks(out[0]), (std::vector<std::string>{B64(tm), B64(small)}));
  EXPECT_EQ(Blocks(out[1]), (std::vector<std::string>{B64(tm), B64(big)}));
  EXPECT_EQ(Blocks(out[2]), (std::vector<std::string>{B64(tm), B64(last)}));
}

TEST(BinlogStatementWriterTest, TableMapsKeptAcrossFlushUntilReset) {
  // A large transaction's part may end inside a binlog statement: the next part's rows still
  // need the maps.
  std::vector<std::string> out;
  BinlogStatementWriter w(1 << 20, [&](const std::string& sql) {
    out.push_back(sql);
    return Status::Ok();
  });
  const std::string tm = MakeEvent(kTableMapEvent, 30, 'a');
  const std::string r1 = MakeEvent(30, 40, 'b');
  const std::string r2 = MakeEvent(30, 40, 'c', /*stmt_end=*/true);
  ASSERT_TRUE(w.Add(tm).ok());
  ASSERT_TRUE(w.Add(r1).ok());
  ASSERT_TRUE(w.Flush().ok());
  ASSERT_TRUE(w.Add(r2).ok());
  ASSERT_TRUE(w.Flush().ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(Blocks(out[1]), (std::vector<std::string>{B64(tm), B64(r2)}));
  w.Reset();
  ASSERT_TRUE(w.Add(r1).ok());
  ASSERT_TRUE(w.Flush().ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(Blocks(out[2]), (std::vector<std::string>{B64(r1)}));
}

TEST(BinlogStatementWriterTest, OnlyTableMapsEmitNothing) {
  int emitted = 0;
  BinlogStatementWriter w(1 << 20, [&](const std::string&) {
    ++emitted;
    return Status::Ok();
  });
  ASSERT_TRUE(w.Add(MakeEvent(kTableMapEvent, 30, 'a')).ok());
  ASSERT_TRUE(w.Flush().ok());
  EXPECT_EQ(emitted, 0);
}

TEST(BinlogStatementWriterTest, EmitErrorIsReturned) {
  BinlogStatementWriter w(1 << 20, [&](const std::string&) {
    return Status::Server("ERROR 1146 (42S02): Table 'd.t' doesn't exist");
  });
  ASSERT_TRUE(w.Add(MakeEvent(kTableMapEvent, 30, 'a')).ok());
  ASSERT_TRUE(w.Add(MakeEvent(30, 30, 'b', true)).ok());
  Status st = w.Flush();
  EXPECT_EQ(st.code(), Status::Code::kServer);
  EXPECT_NE(st.message().find("1146"), std::string::npos);
}

TEST(BinlogStatementWriterTest, ShortEventIsInvalidArgument) {
  BinlogStatementWriter w(1 << 20, [](const std::string&) { return Status::Ok(); });
  EXPECT_EQ(w.Add("short").code(), Status::Code::kInvalidArgument);
}

TEST(BinlogStatementWriterTest, RowsEventTypes) {
  for (int t : {20, 21, 22, 23, 24, 25, 30, 31, 32, 39, 166, 167, 168, 169, 170, 171}) {
    EXPECT_TRUE(IsRowsEventType(static_cast<uint8_t>(t))) << t;
  }
  for (int t : {2, 15, 16, 19, 26, 29, 33, 160, 162, 165, 172}) {
    EXPECT_FALSE(IsRowsEventType(static_cast<uint8_t>(t))) << t;
  }
}

}  // namespace
}  // namespace replsync::apply
