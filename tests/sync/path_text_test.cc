#include "sync/path_text.h"

#include <gtest/gtest.h>

#include <string>

namespace replsync {
namespace {

using namespace std::string_literals;

TEST(PathTextTest, PlainAndUtf8PathsStayAsTheyAre) {
  EXPECT_EQ(EscapePath("dir/file.txt"), "dir/file.txt");
  EXPECT_EQ(EscapePath("caf\xc3\xa9/\xe2\x82\xac"), "caf\xc3\xa9/\xe2\x82\xac");
  EXPECT_EQ(EscapePath(""), "");
}

TEST(PathTextTest, BackslashAndControlBytesAreEscaped) {
  EXPECT_EQ(EscapePath("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapePath("line\nbreak\ttab"), "line\\nbreak\\ttab");
  EXPECT_EQ(EscapePath("nul\0x\x01\x1f\x7f"s), "nul\\x00x\\x01\\x1f\\x7f");
  EXPECT_EQ(EscapePath("say \"hi\""), "say \"hi\"");
}

TEST(PathTextTest, QuotePathAlsoEscapesDoubleQuotes) {
  EXPECT_EQ(QuotePath("a \"b\"\n"), "\"a \\\"b\\\"\\n\"");
  EXPECT_EQ(QuotePath(""), "\"\"");
}

}  // namespace
}  // namespace replsync

namespace replsync {
namespace {

TEST(PathTextTest, JoinAndParentTreatTheEmptyPathAsTheRoot) {
  EXPECT_EQ(JoinPath("", "a b"), "a b");
  EXPECT_EQ(JoinPath("a/b", "-c"), "a/b/-c");
  EXPECT_EQ(ParentPath("a/b/c"), "a/b");
  EXPECT_EQ(ParentPath("top"), "");
  EXPECT_EQ(ParentPath(JoinPath("x/y", "z")), "x/y");
}

}  // namespace
}  // namespace replsync
