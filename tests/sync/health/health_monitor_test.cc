#include "sync/health/health_monitor.h"

#include <gtest/gtest.h>

#include <string>

namespace replsync::health {
namespace {

class HealthMonitorTest : public ::testing::Test {
 protected:
  // A secondary's status stamped with the clock's time now, `lag_seconds` behind.
  NodeStatus SecondaryNow(double lag_seconds) const {
    NodeStatus s;
    s.role = "secondary";
    s.name = "node2";
    s.state = "running";
    s.updated_at = Now();
    NodeStatus::Secondary& sec = s.secondary.emplace();
    sec.applier_state = "applying";
    sec.last_heard = Now();
    sec.lag.seconds = lag_seconds;
    return s;
  }
  double Now() const { return static_cast<double>(clock_.UnixMillis()) / 1000.0; }

  HealthAnswer Ask(const std::string& path, std::multimap<std::string, std::string> params = {}) {
    return monitor_.Answer({.path = path, .params = std::move(params)});
  }

  ManualClock clock_;
  HealthMonitor monitor_{{.max_lag_seconds = 10, .peer_timeout_seconds = 10}, clock_};
};

TEST_F(HealthMonitorTest, EveryPathIsStartingUntilTheFirstStatus) {
  for (const char* path :
       {"/health/primary", "/health/secondary", "/health/ready", "/health/live"}) {
    HealthAnswer a = Ask(path);
    EXPECT_EQ(a.code, 503) << path;
    EXPECT_NE(a.json.find("starting"), std::string::npos) << path << ": " << a.json;
  }
}

TEST_F(HealthMonitorTest, AFenceTakesThePrimaryOutAtOnceBeforeTheNextStatus) {
  NodeStatus s;
  s.role = "primary";
  s.name = "node1";
  s.state = "running";
  s.updated_at = Now();
  s.peers_asked = true;
  s.primary.emplace().capture_state = "running";
  monitor_.Publish(s);
  ASSERT_EQ(Ask("/health/primary").code, 200);
  monitor_.MarkFenced("node node2 knows epoch 2");
  const HealthAnswer a = Ask("/health/primary");
  EXPECT_EQ(a.code, 503);
  EXPECT_NE(a.json.find("fenced old primary: node node2 knows epoch 2"), std::string::npos)
      << a.json;
  EXPECT_EQ(Ask("/health/live").code, 200);
}

TEST_F(HealthMonitorTest, AnswersFromThePublishedStatusAndTheClock) {
  monitor_.Publish(SecondaryNow(0.5));
  EXPECT_EQ(Ask("/health/live").code, 200);
  EXPECT_EQ(Ask("/health/secondary").code, 200);
  EXPECT_EQ(Ask("/health/primary").code, 503);
  EXPECT_EQ(Ask("/health/ready").code, 200);

  // The main loop stops beating: after the loop timeout nothing vouches for the node.
  clock_.Advance(std::chrono::seconds(6));
  EXPECT_EQ(Ask("/health/live").code, 503);
  EXPECT_EQ(Ask("/health/secondary").code, 503);

  monitor_.Publish(SecondaryNow(0.5));  // it beats again
  EXPECT_EQ(Ask("/health/live").code, 200);
  EXPECT_EQ(Ask("/health/secondary").code, 200);
}

TEST_F(HealthMonitorTest, MaxLagSecondsOfTheRequestOverridesTheConfiguredLimit) {
  monitor_.Publish(SecondaryNow(15));
  EXPECT_EQ(Ask("/health/secondary").code, 503);  // configured: 10
  EXPECT_EQ(Ask("/health/secondary", {{"max_lag_seconds", "20"}}).code, 200);
  HealthAnswer strict = Ask("/health/secondary", {{"max_lag_seconds", "14.5"}});
  EXPECT_EQ(strict.code, 503);
  EXPECT_NE(strict.json.find("\"max_lag_seconds\":14.5"), std::string::npos) << strict.json;
}

TEST_F(HealthMonitorTest, MalformedOrUnknownParametersAre400WithTheReason) {
  monitor_.Publish(SecondaryNow(0));
  HealthAnswer bad = Ask("/health/secondary", {{"max_lag_seconds", "ten"}});
  EXPECT_EQ(bad.code, 400);
  EXPECT_EQ(bad.json,
            R"({"healthy":false,"reason":"max_lag_seconds=ten: must be a number of seconds )"
            R"(0..86400, e.g. 10 or 2.5"})");
  HealthAnswer typo = Ask("/health/secondary", {{"max_lag", "5"}});
  EXPECT_EQ(typo.code, 400);
  EXPECT_EQ(typo.json,
            R"j({"healthy":false,"reason":"unknown parameter max_lag (known: max_lag_seconds)"})j");
  EXPECT_EQ(Ask("/health/primary", {{"max_lag_seconds", "5"}}).code, 400);
  EXPECT_EQ(Ask("/health/live", {{"verbose", ""}}).code, 400);
}

TEST_F(HealthMonitorTest, PathsAreTheFourPathsAnsweredByTheMonitor) {
  monitor_.Publish(SecondaryNow(0));
  std::map<std::string, HealthProvider> paths = monitor_.Paths();
  ASSERT_EQ(paths.size(), 4u);
  EXPECT_EQ(paths.at("/health/secondary")({.path = "/health/secondary"}).code, 200);
  EXPECT_EQ(paths.at("/health/primary")({.path = "/health/primary"}).code, 503);
  EXPECT_EQ(paths.at("/health/live")({.path = "/health/live"}).code, 200);
  EXPECT_EQ(paths.at("/health/ready")({.path = "/health/ready"}).code, 200);
}

}  // namespace
}  // namespace replsync::health
