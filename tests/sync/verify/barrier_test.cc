// Verify's barrier files (sync/verify/barrier.h): the bytes of schemas/verify.md "Barrier
// files", round trips, and what a reader makes of a file it does not fully understand.
#include "sync/verify/barrier.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace replsync::verify {
namespace {

TEST(StopBeforeTest, EveryKindRoundTrips) {
  for (const StopBefore& stop :
       {StopBefore::Now(), StopBefore::All(), StopBefore::Seq(42),
        StopBefore::At(BinlogPosition{"binlog.000003", 1234}),
        StopBefore::At(BinlogPosition{"host:with:colons-bin.000001", 4})}) {
    Result<StopBefore> parsed = StopBefore::Parse(stop.ToString());
    ASSERT_TRUE(parsed.ok()) << stop.ToString() << ": " << parsed.status().ToString();
    EXPECT_EQ(*parsed, stop) << stop.ToString();
  }
}

TEST(StopBeforeTest, TextIsAsDocumented) {
  EXPECT_EQ(StopBefore::Now().ToString(), "now");
  EXPECT_EQ(StopBefore::All().ToString(), "all");
  EXPECT_EQ(StopBefore::Seq(7).ToString(), "seq:7");
  EXPECT_EQ(StopBefore::At(BinlogPosition{"binlog.000001", 4}).ToString(), "binlog.000001:4");
}

TEST(StopBeforeTest, MalformedValuesAreRefusedNamingTheText) {
  for (const char* bad : {"", "later", "seq:0", "seq:", "seq:x", "binlog.000001:x", ":4"}) {
    Result<StopBefore> parsed = StopBefore::Parse(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(), std::string("bad stop_before '") + bad + "'");
  }
}

TEST(VerifyBarrierTest, FormatIsTheDocumentedLines) {
  VerifyBarrier barrier{"ab12", StopBefore::At(BinlogPosition{"binlog.000001", 4}), 321};
  EXPECT_EQ(barrier.Format(), "token ab12\nstop_before binlog.000001:4\npid 321\n");
  Result<VerifyBarrier> parsed = VerifyBarrier::Parse(barrier.Format());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, barrier);
}

TEST(VerifyBarrierTest, UnknownLinesAndAMissingPidAreIgnored) {
  Result<VerifyBarrier> parsed =
      VerifyBarrier::Parse("noise\ntoken live01\nlater addition\nstop_before now\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, (VerifyBarrier{"live01", StopBefore::Now(), 0}));
}

TEST(VerifyBarrierTest, AMissingOrBadStopIsRefused) {
  Result<VerifyBarrier> missing = VerifyBarrier::Parse("token t1\npid 5\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "bad stop_before ''");
  Result<VerifyBarrier> bad = VerifyBarrier::Parse("token t1\nstop_before seq:0\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "bad stop_before 'seq:0'");
}

TEST(PausedAtTest, FormatIsTheDocumentedLines) {
  PausedAt paused{"ab12", StopBefore::Seq(43), 42, "binlog.000002:777", "0-1-99"};
  EXPECT_EQ(paused.Format(),
            "token ab12\nstop_before seq:43\napplied_seq 42\nsource binlog.000002:777\n"
            "gtid 0-1-99\n");
  Result<PausedAt> parsed = PausedAt::Parse(paused.Format());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, paused);
}

// An applier that has applied nothing yet writes an empty position and GTID.
TEST(PausedAtTest, EmptySourceAndGtidRoundTrip) {
  PausedAt paused{"t", StopBefore::Now(), 0, ":0", ""};
  EXPECT_EQ(paused.Format(), "token t\nstop_before now\napplied_seq 0\nsource :0\ngtid \n");
  Result<PausedAt> parsed = PausedAt::Parse(paused.Format());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, paused);
}

TEST(PausedAtTest, ABadAppliedSeqIsRefused) {
  Result<PausedAt> parsed = PausedAt::Parse("token t\nstop_before now\napplied_seq x\n");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().message(), "bad applied_seq 'x'");
}

class BarrierFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "barrier_file_test_" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
};

TEST_F(BarrierFileTest, FilesAreNamedInTheStateFolder) {
  EXPECT_EQ(BarrierFilePath("/var/lib/replsync"), "/var/lib/replsync/verify.barrier");
  EXPECT_EQ(PausedFilePath("/var/lib/replsync"), "/var/lib/replsync/verify.paused");
}

TEST_F(BarrierFileTest, WrittenFilesReadBackAndLeaveNoTemporary) {
  const VerifyBarrier barrier{"ab12", StopBefore::All(), 99};
  const PausedAt paused{"ab12", StopBefore::All(), 5, "binlog.000001:400", "0-1-5"};
  ASSERT_TRUE(WriteBarrierFile(BarrierFilePath(dir_), barrier).ok());
  ASSERT_TRUE(WritePausedFile(PausedFilePath(dir_), paused).ok());
  Result<VerifyBarrier> read_barrier = ReadBarrierFile(BarrierFilePath(dir_));
  ASSERT_TRUE(read_barrier.ok()) << read_barrier.status().ToString();
  EXPECT_EQ(*read_barrier, barrier);
  Result<PausedAt> read_paused = ReadPausedFile(PausedFilePath(dir_));
  ASSERT_TRUE(read_paused.ok()) << read_paused.status().ToString();
  EXPECT_EQ(*read_paused, paused);
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 2u);
}

TEST_F(BarrierFileTest, AMissingFileIsNotFoundAndRemovingItTwiceIsFine) {
  Result<VerifyBarrier> none = ReadBarrierFile(BarrierFilePath(dir_));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(ReadPausedFile(PausedFilePath(dir_)).status().code(), Status::Code::kNotFound);

  ASSERT_TRUE(WriteBarrierFile(BarrierFilePath(dir_), {"t", StopBefore::Now(), 1}).ok());
  EXPECT_TRUE(RemoveBarrierFile(BarrierFilePath(dir_)).ok());
  EXPECT_FALSE(std::filesystem::exists(BarrierFilePath(dir_)));
  EXPECT_TRUE(RemoveBarrierFile(BarrierFilePath(dir_)).ok());
}

}  // namespace
}  // namespace replsync::verify
