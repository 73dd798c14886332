// RunningThrottle (sync/verify/verify_throttle.h): its pacing, driven by a ManualClock against
// fake sessions, so that no test sleeps.
#include "sync/verify/verify_throttle.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sync/clock.h"

namespace replsync::verify {
namespace {

using std::chrono::milliseconds;

// A server that answers Threads_running from a script (the last value repeats) and a count of
// binlog dump threads; it counts the looks and lets a test wait for them.
class FakeServer : public SqlSession {
 public:
  FakeServer(std::deque<uint64_t> running, uint64_t dumps = 0)
      : running_(std::move(running)), dumps_(dumps) {}

  Result<std::vector<Row>> Query(const std::string& sql, std::string_view) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (sql.find("Threads_running") != std::string::npos) {
      const uint64_t n = running_.front();
      if (running_.size() > 1) running_.pop_front();
      ++looks_;
      changed_.notify_all();
      return std::vector<Row>{{std::string("Threads_running"), std::to_string(n)}};
    }
    return std::vector<Row>{{std::to_string(dumps_)}};
  }
  Status Execute(const std::string&, std::string_view) override { return Status::Ok(); }
  Result<uint64_t> ExecuteUpdate(const std::string&, std::string_view) override { return 0; }
  Status ExecuteBatch(const std::vector<std::string>&, std::string_view) override {
    return Status::Ok();
  }
  int last_error_code() const override { return 0; }
  bool broken() const override { return false; }
  std::string Describe() const override { return "fake"; }

  int looks() const {
    std::lock_guard<std::mutex> lock(mu_);
    return looks_;
  }
  // Blocks until the throttle looked more than `n` times.
  void WaitForLooksAbove(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return looks_ > n; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<uint64_t> running_;
  uint64_t dumps_;
  int looks_ = 0;
};

ThrottleOptions Limit(uint64_t max_running, milliseconds max_wait = milliseconds(60000)) {
  ThrottleOptions o;
  o.max_running = max_running;
  o.max_wait = max_wait;
  o.step = milliseconds(100);
  o.recheck = milliseconds(200);
  return o;
}

// Lets the throttle's thread take `steps` sleeps of `step`, one at a time: each advance comes
// once it sleeps, and the next only after it looked again (so none falls into a finished sleep).
void DriveSteps(ManualClock& clock, FakeServer& server, int steps, milliseconds step) {
  for (int i = 0; i < steps; ++i) {
    clock.WaitForWaiters(1);
    const int looks = server.looks();
    clock.Advance(step);
    server.WaitForLooksAbove(looks);
  }
}

TEST(RunningThrottleTest, ABusyServerIsWaitedForInStepsUntilItIsQuiet) {
  ManualClock clock;
  // Threads_running counts the asking session: 31 is 30 others, 1 is none.
  FakeServer primary({31, 31, 31, 1});
  RunningThrottle throttle(Limit(25), {{"primary", &primary}}, clock);
  std::vector<std::string> whys;
  Status waited;
  std::thread table([&] {
    waited = throttle.Wait("app.t", [&](const std::string& why) { whys.push_back(why); });
  });
  DriveSteps(clock, primary, 3, milliseconds(100));
  table.join();
  EXPECT_TRUE(waited.ok()) << waited.ToString();
  EXPECT_EQ(primary.looks(), 4);
  EXPECT_EQ(throttle.waited(), milliseconds(300));
  ASSERT_EQ(whys.size(), 3u);
  EXPECT_EQ(whys[0], "primary: 30 other queries running > 25");
}

TEST(RunningThrottleTest, AWaitEndsAfterMaxWaitEvenWhileTheServerStaysBusy) {
  ManualClock clock;
  FakeServer primary({100});
  RunningThrottle throttle(Limit(25, milliseconds(300)), {{"primary", &primary}}, clock);
  Status waited;
  std::thread table([&] { waited = throttle.Wait("app.t"); });
  DriveSteps(clock, primary, 3, milliseconds(100));
  table.join();
  EXPECT_TRUE(waited.ok()) << waited.ToString();
  EXPECT_EQ(primary.looks(), 4);  // the fourth look finds 300 ms waited: it goes on
  EXPECT_EQ(throttle.waited(), milliseconds(300));
}

TEST(RunningThrottleTest, QuietServersAreNotAskedAgainBeforeRecheck) {
  ManualClock clock;
  FakeServer primary({1});
  FakeServer secondary({1});
  RunningThrottle throttle(Limit(25), {{"primary", &primary}, {"secondary", &secondary}}, clock);
  ASSERT_TRUE(throttle.Wait("app.t").ok());
  EXPECT_EQ(primary.looks(), 1);
  EXPECT_EQ(secondary.looks(), 1);
  clock.Advance(milliseconds(199));
  ASSERT_TRUE(throttle.Wait("app.t").ok());
  EXPECT_EQ(primary.looks(), 1);
  clock.Advance(milliseconds(1));
  ASSERT_TRUE(throttle.Wait("app.t").ok());
  EXPECT_EQ(primary.looks(), 2);
  EXPECT_EQ(secondary.looks(), 2);
  EXPECT_EQ(throttle.waited(), milliseconds(0));
}

TEST(RunningThrottleTest, BinlogDumpThreadsAreNotLoad) {
  ManualClock clock;
  FakeServer primary({28}, /*dumps=*/3);  // 27 others, 3 of them dump threads: 24
  RunningThrottle throttle(Limit(25), {{"primary", &primary}}, clock);
  ASSERT_TRUE(throttle.Wait("app.t").ok());
  EXPECT_EQ(primary.looks(), 1);
  EXPECT_EQ(throttle.waited(), milliseconds(0));
}

TEST(RunningThrottleTest, ALimitOfZeroNeverAsks) {
  ManualClock clock;
  FakeServer primary({100});
  RunningThrottle throttle(Limit(0), {{"primary", &primary}}, clock);
  ASSERT_TRUE(throttle.Wait("app.t").ok());
  EXPECT_EQ(primary.looks(), 0);
}

}  // namespace
}  // namespace replsync::verify
