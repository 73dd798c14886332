#include "sync/file_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "sync/clock.h"

namespace replsync {
namespace {

using std::chrono::milliseconds;

class FileLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "file_lock_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << strerror(errno);
    dir_ = tmpl;
    path_ = dir_ + "/x.lock";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Forks a child that takes the lock, says so through a pipe, and sleeps until killed.
  pid_t ChildHolding() {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      Result<FileLock> lock = FileLock::Acquire(path_, FileLock::kDefaultWait, "child\n");
      char c = lock.ok() ? 'y' : 'n';
      if (write(fds[1], &c, 1) != 1) _exit(2);
      while (true) pause();
    }
    close(fds[1]);
    char c = 0;
    EXPECT_EQ(read(fds[0], &c, 1), 1);
    close(fds[0]);
    EXPECT_EQ(c, 'y');
    return pid;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(FileLockTest, SecondHolderIsRefusedNamingTheFirst) {
  Result<FileLock> first = FileLock::Acquire(path_, FileLock::kDefaultWait, "1234\n");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Result<FileLock> second = FileLock::Acquire(path_, milliseconds(50));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kAborted);
  EXPECT_NE(second.status().message().find("1234"), std::string::npos);
}

TEST_F(FileLockTest, ReleasedWhenTheOwnerGoes) {
  {
    Result<FileLock> first = FileLock::Acquire(path_);
    ASSERT_TRUE(first.ok());
    EXPECT_TRUE(*FileLock::Held(path_));
  }
  EXPECT_FALSE(*FileLock::Held(path_));
  EXPECT_TRUE(FileLock::Acquire(path_, milliseconds(0)).ok());
}

TEST_F(FileLockTest, AcquireWaitsForAHolderThatLetsGoSoon) {
  Result<FileLock> brief = FileLock::Acquire(path_);
  ASSERT_TRUE(brief.ok());
  ManualClock clock;
  Result<FileLock> waiting = Status::Aborted("not tried");
  std::thread acquire(
      [&] { waiting = FileLock::Acquire(path_, milliseconds(2000), /*holder=*/"", clock); });
  clock.WaitForWaiters(1);              // it found the lock held and waits to try again
  brief = Status::Aborted("released");  // drops the lock
  clock.Advance(milliseconds(100));
  acquire.join();
  EXPECT_TRUE(waiting.ok()) << waiting.status().ToString();
}

// Probing never takes the lock: a holder-to-be is never refused because someone asked.
TEST_F(FileLockTest, HeldProbesWithoutTakingTheLock) {
  EXPECT_FALSE(*FileLock::Held(path_));  // no file: nobody
  Result<FileLock> holder = FileLock::Acquire(path_);
  ASSERT_TRUE(holder.ok());
  EXPECT_TRUE(*FileLock::Held(path_));
  holder = Status::Aborted("released");
  EXPECT_FALSE(*FileLock::Held(path_));
  Result<FileLock> again = FileLock::Acquire(path_, milliseconds(0));
  EXPECT_TRUE(again.ok());
}

// A pid can be reused; a lock dies with its holder, kill -9 included.
TEST_F(FileLockTest, LockOfAKilledProcessIsFree) {
  const pid_t child = ChildHolding();
  EXPECT_TRUE(*FileLock::Held(path_));
  EXPECT_EQ(FileLock::HolderText(path_), "child");
  EXPECT_FALSE(FileLock::Acquire(path_, milliseconds(0)).ok());
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_FALSE(*FileLock::Held(path_));
  EXPECT_TRUE(FileLock::Acquire(path_, milliseconds(0)).ok());
}

}  // namespace
}  // namespace replsync
