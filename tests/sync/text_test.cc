#include "sync/text.h"

#include <gtest/gtest.h>

namespace replsync {
namespace {

TEST(TextTest, ParseU64AcceptsOnlyWholeDecimals) {
  uint64_t v = 0;
  EXPECT_TRUE(ParseU64("0", &v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(ParseU64("18446744073709551615", &v));
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_FALSE(ParseU64("18446744073709551616", &v));
  EXPECT_FALSE(ParseU64("", &v));
  EXPECT_FALSE(ParseU64("12a", &v));
  EXPECT_FALSE(ParseU64("-1", &v));
  EXPECT_FALSE(ParseU64(" 1", &v));
}

TEST(TextTest, HexIsLowerCaseTwoDigitsPerByte) {
  EXPECT_EQ(HexOf(std::string_view("\x00\x0f\xa0\xff", 4)), "000fa0ff");
  EXPECT_EQ(HexOf(""), "");
}

// RFC 4648 section 10 test vectors.
TEST(TextTest, Base64MatchesRfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [in, want] : vectors) {
    std::string out = "x";
    AppendBase64(in, &out);
    EXPECT_EQ(out, std::string("x") + want) << in;
    EXPECT_EQ(Base64Size(std::string_view(in).size()), std::string_view(want).size());
  }
  std::string out;
  AppendBase64(std::string("\xff\xfe\x00\x01", 4), &out);
  EXPECT_EQ(out, "//4AAQ==");
}

}  // namespace
}  // namespace replsync
