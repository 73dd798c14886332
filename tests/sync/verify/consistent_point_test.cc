// HoldApplier and BarrierGuard (sync/verify/consistent_point.h): verify's half of the barrier
// protocol against a hand-played applier (the paused file written by the test), on a
// ManualClock, so that waiting for the applier and giving up on it need no sleep.
#include "sync/verify/consistent_point.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "sync/clock.h"
#include "sync/verify/barrier.h"

namespace replsync::verify {
namespace {

class HoldApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "hold_applier_test_" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The applier says it holds at (token, stop).
  void Pause(const std::string& token, const StopBefore& stop, uint64_t applied_seq) {
    ASSERT_TRUE(WritePausedFile(PausedFilePath(dir_),
                                {token, stop, applied_seq, "binlog.000001:400", "0-1-7"})
                    .ok());
  }

  std::string dir_;
  ManualClock clock_;
};

TEST_F(HoldApplierTest, WritesTheBarrierAndReturnsWhereTheApplierHolds) {
  Pause("t1", StopBefore::All(), 7);
  Result<PausedAt> held =
      HoldApplier(dir_, "t1", StopBefore::All(), {.timeout_s = 5, .clock = &clock_});
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_EQ(held->applied_seq, 7u);
  Result<VerifyBarrier> barrier = ReadBarrierFile(BarrierFilePath(dir_));
  ASSERT_TRUE(barrier.ok()) << barrier.status().ToString();
  EXPECT_EQ(*barrier, (VerifyBarrier{"t1", StopBefore::All(), static_cast<uint64_t>(getpid())}));
}

TEST_F(HoldApplierTest, WaitsUntilTheApplierHoldsAtThisVeryBarrier) {
  // Paused at an earlier barrier of the same verify: not there yet.
  Pause("t1", StopBefore::All(), 7);
  Result<PausedAt> held = Status::Internal("not returned");
  std::thread verify([&] {
    held = HoldApplier(dir_, "t1", StopBefore::Seq(10), {.timeout_s = 5, .clock = &clock_});
  });
  clock_.WaitForWaiters(1);  // it looked, and polls
  Pause("t1", StopBefore::Seq(10), 9);
  clock_.Advance(std::chrono::milliseconds(2));
  verify.join();
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_EQ(held->applied_seq, 9u);
}

TEST_F(HoldApplierTest, GivesUpWhenTheApplierDoesNotGetThereInTime) {
  Pause("another", StopBefore::Now(), 3);
  Result<PausedAt> held = Status::Internal("not returned");
  std::thread verify([&] {
    held = HoldApplier(dir_, "t1", StopBefore::Now(), {.timeout_s = 2, .clock = &clock_});
  });
  clock_.WaitForWaiters(1);
  clock_.Advance(std::chrono::seconds(2));
  verify.join();
  ASSERT_FALSE(held.ok());
  EXPECT_EQ(held.status().code(), Status::Code::kAborted);
  EXPECT_EQ(held.status().message(),
            "the secondary's applier did not reach verify's barrier (before now) within 2 s; is "
            "it applying (replsync status), or far behind the primary?");
}

TEST_F(HoldApplierTest, TheGuardLiftsTheBarrierWhenItGoes) {
  {
    BarrierGuard guard(dir_);
    ASSERT_TRUE(guard.Move("t1", StopBefore::Now()).ok());
    EXPECT_TRUE(std::filesystem::exists(BarrierFilePath(dir_)));
  }
  EXPECT_FALSE(std::filesystem::exists(BarrierFilePath(dir_)));
}

}  // namespace
}  // namespace replsync::verify
