#include "sync/position.h"

#include <gtest/gtest.h>

namespace replsync {
namespace {

TEST(BinlogPositionTest, ParseFormatRoundTrip) {
  auto pos = BinlogPosition::Parse("binlog.000042:123456789012");
  ASSERT_TRUE(pos.ok()) << pos.status().ToString();
  EXPECT_EQ(pos->file, "binlog.000042");
  EXPECT_EQ(pos->offset, 123456789012ULL);
  EXPECT_EQ(pos->ToString(), "binlog.000042:123456789012");
}

TEST(BinlogPositionTest, OffsetsBeyondFourGibAreKept) {
  auto pos = BinlogPosition::Parse("b.000001:18446744073709551615");
  ASSERT_TRUE(pos.ok());
  EXPECT_EQ(pos->offset, UINT64_MAX);
}

TEST(BinlogPositionTest, MalformedTextIsInvalidArgument) {
  for (const char* text : {"", "binlog.000001", ":4", "binlog.000001:", "binlog.000001:-1",
                           "binlog.000001:4x", "b:99999999999999999999"}) {
    auto pos = BinlogPosition::Parse(text);
    EXPECT_FALSE(pos.ok()) << text;
    EXPECT_EQ(pos.status().code(), Status::Code::kInvalidArgument) << text;
  }
}

TEST(BinlogPositionTest, FilesOrderByNumericExtensionThenOffset) {
  BinlogPosition a{"binlog.000009", 900}, b{"binlog.000010", 4}, c{"binlog.000010", 5};
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(b, (BinlogPosition{"binlog.000010", 4}));
  BinlogPosition wide{"binlog.1000000", 4};
  EXPECT_LT(c, wide);
}

TEST(GtidTest, MariadbRoundTrip) {
  auto g = Gtid::Parse("0-1-5");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->flavor, Gtid::Flavor::kMariadb);
  EXPECT_EQ(g->domain_id, 0u);
  EXPECT_EQ(g->server_id, 1u);
  EXPECT_EQ(g->sequence, 5u);
  EXPECT_EQ(g->ToString(), "0-1-5");
  auto big = Gtid::Parse("4294967295-4294967295-18446744073709551615");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->ToString(), "4294967295-4294967295-18446744073709551615");
}

TEST(GtidTest, MysqlRoundTripLowercasesUuid) {
  auto g = Gtid::Parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:23");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->flavor, Gtid::Flavor::kMysql);
  EXPECT_EQ(g->sequence, 23u);
  EXPECT_EQ(g->ToString(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:23");
  EXPECT_EQ(Gtid::Parse(g->ToString())->ToString(), g->ToString());
}

TEST(GtidTest, TaggedMysqlGtid) {
  auto g = Gtid::Parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:Tag_1:7");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->tag, "tag_1");
  EXPECT_EQ(g->ToString(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:tag_1:7");
}

TEST(GtidTest, MalformedGtidsAreRejected) {
  for (const char* text : {"", "0-1", "a-b-c", "0-1-5-", "3e11fa47:1",
                           "3e11fa47-71ca-11e1-9e33-"
                           "c80aa9429562:0",
                           "3e11fa47-71ca-11e1-9e33-c80aa9429562:bad-tag:1", "4294967296-1-1"}) {
    EXPECT_FALSE(Gtid::Parse(text).ok()) << text;
  }
}

}  // namespace
}  // namespace replsync
