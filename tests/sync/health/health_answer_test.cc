#include "sync/health/health_answer.h"

#include <gtest/gtest.h>

namespace replsync::health {
namespace {

HealthQuery Query(std::multimap<std::string, std::string> params) {
  return {.path = "/health/secondary", .params = std::move(params)};
}

TEST(HealthAnswerTest, ReasonJsonEscapesWhatItCarries) {
  EXPECT_EQ(ReasonJson("no such path: /x\"y\\\n"),
            R"({"healthy":false,"reason":"no such path: /x\"y\\\n"})");
  HealthAnswer a = ReasonAnswer(400, "bad");
  EXPECT_EQ(a.code, 400);
  EXPECT_EQ(a.json, R"({"healthy":false,"reason":"bad"})");
}

TEST(HealthAnswerTest, KnownParametersPassOnce) {
  EXPECT_TRUE(CheckParams(Query({}), {}).ok());
  EXPECT_TRUE(CheckParams(Query({{"max_lag_seconds", "5"}}), {"max_lag_seconds"}).ok());
}

TEST(HealthAnswerTest, UnknownOrRepeatedParametersAreNamed) {
  Status unknown = CheckParams(Query({{"max_lag", "5"}}), {"max_lag_seconds"});
  EXPECT_EQ(unknown.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(unknown.message(), "unknown parameter max_lag (known: max_lag_seconds)");

  Status none = CheckParams(Query({{"x", ""}}), {});
  EXPECT_EQ(none.message(), "unknown parameter x (this path takes none)");

  Status twice =
      CheckParams(Query({{"max_lag_seconds", "5"}, {"max_lag_seconds", "6"}}), {"max_lag_seconds"});
  EXPECT_EQ(twice.message(), "parameter max_lag_seconds is given more than once");
}

TEST(HealthAnswerTest, SecondsParamReadsWholeAndDecimalSeconds) {
  struct Case {
    const char* text;
    double seconds;
  };
  for (const Case& c : {Case{"0", 0}, Case{"10", 10}, Case{"2.5", 2.5}, Case{"0.25", 0.25},
                        Case{"86400", 86400}, Case{"007", 7}}) {
    auto v = SecondsParam(Query({{"max_lag_seconds", c.text}}), "max_lag_seconds");
    ASSERT_TRUE(v.ok()) << c.text << ": " << v.status().ToString();
    ASSERT_TRUE(v->has_value()) << c.text;
    EXPECT_DOUBLE_EQ(**v, c.seconds) << c.text;
  }
}

TEST(HealthAnswerTest, AbsentSecondsParamIsNullopt) {
  auto v = SecondsParam(Query({}), "max_lag_seconds");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->has_value());
}

TEST(HealthAnswerTest, MalformedSecondsParamIsRefusedWithTheValue) {
  for (const char* text : {"", "-1", "+1", "1e3", "inf", "nan", "10s", "1.", ".5", "1.2.3", " 1",
                           "86400.5", "86401", "99999999999999999999999"}) {
    auto v = SecondsParam(Query({{"max_lag_seconds", text}}), "max_lag_seconds");
    ASSERT_FALSE(v.ok()) << "'" << text << "' was accepted";
    EXPECT_EQ(v.status().code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(v.status().message(), "max_lag_seconds=" + std::string(text) +
                                        ": must be a number of seconds 0..86400, e.g. 10 or 2.5");
  }
}

}  // namespace
}  // namespace replsync::health
