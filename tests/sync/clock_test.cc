#include "sync/clock.h"

#include <gtest/gtest.h>

#include <thread>

namespace replsync {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ManualClockTest, TimeMovesOnlyWhenAdvanced) {
  ManualClock clock(1000);
  Clock::TimePoint start = clock.Now();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(milliseconds(250));
  EXPECT_EQ(clock.Now() - start, milliseconds(250));
  EXPECT_EQ(clock.UnixMillis(), 1250);
}

TEST(ManualClockTest, WaiterWakesWhenItsDeadlineIsReachedAndNotBefore) {
  ManualClock clock;
  std::mutex m;
  std::condition_variable cv;
  bool woke = false;
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(m);
    bool done = clock.WaitFor(cv, lock, seconds(10), [] { return false; });
    EXPECT_FALSE(done);
    woke = true;
  });
  clock.WaitForWaiters(1);
  clock.Advance(seconds(9));
  // Still waiting: the waiter re-checked its deadline under its mutex and blocked again.
  {
    std::unique_lock<std::mutex> lock(m);
    EXPECT_FALSE(woke);
  }
  EXPECT_EQ(clock.waiters(), 1);
  clock.Advance(seconds(1));
  waiter.join();
  EXPECT_TRUE(woke);
  EXPECT_EQ(clock.waiters(), 0);
}

TEST(ManualClockTest, WaiterWakesOnItsConditionWithoutTimeMoving) {
  ManualClock clock;
  std::mutex m;
  std::condition_variable cv;
  bool ready = false;
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(m);
    EXPECT_TRUE(clock.WaitFor(cv, lock, seconds(10), [&] { return ready; }));
  });
  clock.WaitForWaiters(1);
  {
    std::lock_guard<std::mutex> guard(m);
    ready = true;
  }
  cv.notify_all();
  waiter.join();
  EXPECT_EQ(clock.waiters(), 0);
}

TEST(ManualClockTest, SleepForReturnsAfterTheClockPassesIt) {
  ManualClock clock;
  std::thread sleeper([&] { clock.SleepFor(milliseconds(200)); });
  clock.WaitForWaiters(1);
  clock.Advance(milliseconds(200));
  sleeper.join();
  EXPECT_EQ(clock.waiters(), 0);
}

TEST(ManualClockTest, WaitsBegunStepsALoopExactlyOneRoundPerAdvance) {
  ManualClock clock;
  std::mutex m;
  std::condition_variable cv;
  int rounds = 0;  // guarded by m
  bool stop = false;
  std::thread loop([&] {
    std::unique_lock<std::mutex> lock(m);
    while (!stop) {
      ++rounds;
      clock.WaitFor(cv, lock, milliseconds(5), [&] { return stop; });
    }
  });
  clock.WaitForWaitsBegun(1);
  for (int i = 0; i < 10; ++i) {
    const uint64_t n = clock.waits_begun();
    clock.Advance(milliseconds(5));
    clock.WaitForWaitsBegun(n + 1);
  }
  {
    std::lock_guard<std::mutex> guard(m);
    EXPECT_EQ(rounds, 11);
    stop = true;
  }
  cv.notify_all();
  loop.join();
}

TEST(SystemClockTest, WaitForTimesOutWithoutTheCondition) {
  std::mutex m;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(m);
  Clock::TimePoint start = SystemClock().Now();
  EXPECT_FALSE(SystemClock().WaitFor(cv, lock, milliseconds(5), [] { return false; }));
  EXPECT_GE(SystemClock().Now() - start, milliseconds(5));
}

}  // namespace
}  // namespace replsync
