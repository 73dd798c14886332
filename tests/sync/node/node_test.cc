#include "sync/node/node.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sync/node/status_file.h"

namespace replsync {
namespace {

// A node whose status counts the snapshots taken; the test waits on that count instead of
// sleeping.
class FakeNode : public Node {
 public:
  explicit FakeNode(Status start = Status::Ok()) : start_(std::move(start)) {}

  Status Start() override {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
    return start_;
  }
  void Stop() override {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  NodeStatus status() const override {
    std::lock_guard<std::mutex> lock(mu_);
    NodeStatus s;
    s.role = "primary";
    s.state = stopped_ ? "stopped" : "running";
    s.pid = ++snapshots_;
    cv_.notify_all();
    return s;
  }
  // Blocks until status() was called `n` times.
  void WaitForSnapshots(int n) const {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return snapshots_ >= n; });
  }
  int snapshots() const {
    std::lock_guard<std::mutex> lock(mu_);
    return snapshots_;
  }
  bool started() const {
    std::lock_guard<std::mutex> lock(mu_);
    return started_;
  }

 private:
  const Status start_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable int snapshots_ = 0;  // guarded by mu_
  bool started_ = false;       // guarded by mu_
  bool stopped_ = false;       // guarded by mu_
};

class RunNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/node_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  NodeStatus FileStatus() const {
    Result<std::string> text = ReadStatusFile(dir_);
    EXPECT_TRUE(text.ok()) << text.status().ToString();
    if (!text.ok()) return {};
    Result<NodeStatus> status = NodeStatus::Parse(*text);
    EXPECT_TRUE(status.ok()) << status.status().ToString();
    return status.ok() ? *status : NodeStatus{};
  }

  std::string dir_;
  ManualClock clock_;
  StopRequest stop_;
};

TEST_F(RunNodeTest, WritesTheStatusEveryIntervalAndOnceMoreAfterStop) {
  FakeNode node;
  Status result = Status::Internal("not run");
  std::thread runner([&] { result = RunNode(node, stop_, {.state_dir = dir_, .clock = &clock_}); });
  // Nothing is written before the first interval has passed.
  clock_.WaitForWaiters(1);
  EXPECT_TRUE(node.started());
  EXPECT_EQ(node.snapshots(), 0);
  EXPECT_TRUE(ReadStatusFile(dir_).status().IsNotFound());

  clock_.Advance(std::chrono::milliseconds(999));
  clock_.WaitForWaiters(1);
  EXPECT_EQ(node.snapshots(), 0);
  clock_.Advance(std::chrono::milliseconds(1));
  node.WaitForSnapshots(1);
  clock_.WaitForWaiters(1);  // written, waiting again
  EXPECT_EQ(FileStatus().pid, 1);
  EXPECT_EQ(FileStatus().state, "running");

  clock_.Advance(std::chrono::seconds(1));
  node.WaitForSnapshots(2);
  clock_.WaitForWaiters(1);
  EXPECT_EQ(FileStatus().pid, 2);

  stop_.Request();
  runner.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
  EXPECT_EQ(node.snapshots(), 3);
  EXPECT_EQ(FileStatus().state, "stopped");  // taken after Stop
}

// While `hurry` says so (a pending handover), a status is taken every 50 ms.
TEST_F(RunNodeTest, StatusesComeEvery50MsWhileHurried) {
  FakeNode node;
  std::atomic<bool> hurry{false};
  NodeRunOptions options{.state_dir = dir_, .clock = &clock_};
  options.hurry = [&hurry] { return hurry.load(); };
  std::thread runner([&] { (void)RunNode(node, stop_, options); });
  clock_.WaitForWaiters(1);
  clock_.Advance(std::chrono::milliseconds(50));
  clock_.WaitForWaiters(1);
  EXPECT_EQ(node.snapshots(), 0) << "not hurried: the full interval";
  hurry = true;
  clock_.Advance(std::chrono::milliseconds(950));  // the interval taken before ends
  node.WaitForSnapshots(1);
  clock_.WaitForWaiters(1);
  clock_.Advance(std::chrono::milliseconds(50));
  node.WaitForSnapshots(2);
  clock_.WaitForWaiters(1);
  stop_.Request();
  runner.join();
}

TEST_F(RunNodeTest, StartErrorIsReturnedAndNoStatusIsWritten) {
  FakeNode node(Status::Network("capture: connect 127.0.0.1:3306: refused"));
  Status result = RunNode(node, stop_, {.state_dir = dir_, .clock = &clock_});
  EXPECT_EQ(result.code(), Status::Code::kNetwork);
  EXPECT_EQ(result.message(), "capture: connect 127.0.0.1:3306: refused");
  EXPECT_EQ(node.snapshots(), 0);
  EXPECT_TRUE(ReadStatusFile(dir_).status().IsNotFound());
}

TEST_F(RunNodeTest, AStopRequestedBeforeTheLoopEndsItAtOnce) {
  FakeNode node;
  stop_.Request();
  EXPECT_TRUE(RunNode(node, stop_, {.state_dir = dir_, .clock = &clock_}).ok());
  EXPECT_EQ(node.snapshots(), 1);
  EXPECT_EQ(FileStatus().state, "stopped");
}

TEST_F(RunNodeTest, OnStatusGetsAStatusRightAfterStartAndEveryWrittenOne) {
  FakeNode node;
  std::mutex mu;
  std::vector<int64_t> seen;  // guarded by mu: the pids (snapshot numbers) handed to on_status
  auto seen_copy = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return seen;
  };
  NodeRunOptions options{.state_dir = dir_, .clock = &clock_};
  options.on_status = [&](const NodeStatus& status) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(status.pid);
  };
  Status result = Status::Internal("not run");
  std::thread runner([&] { result = RunNode(node, stop_, options); });
  // The first one comes at once (the health endpoint's first heartbeat), before any file.
  clock_.WaitForWaiters(1);
  EXPECT_EQ(seen_copy(), std::vector<int64_t>{1});
  EXPECT_TRUE(ReadStatusFile(dir_).status().IsNotFound());

  clock_.Advance(std::chrono::seconds(1));
  node.WaitForSnapshots(2);
  clock_.WaitForWaiters(1);
  EXPECT_EQ(seen_copy(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(FileStatus().pid, 2);  // the one handed over is the one written

  stop_.Request();
  runner.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
  EXPECT_EQ(seen_copy(), (std::vector<int64_t>{1, 2, 3}));  // and the last, after Stop
}

TEST(StopRequestTest, WaitForTimesOutOnTheClockAndSeesTheRequest) {
  ManualClock clock;
  StopRequest stop;
  bool first = true;
  std::thread waiter([&] { first = stop.WaitFor(clock, std::chrono::seconds(5)); });
  clock.WaitForWaiters(1);
  clock.Advance(std::chrono::seconds(5));
  waiter.join();
  EXPECT_FALSE(first);
  EXPECT_FALSE(stop.requested());

  std::thread requested([&] { first = stop.WaitFor(clock, std::chrono::hours(1)); });
  clock.WaitForWaiters(1);
  stop.Request();
  requested.join();
  EXPECT_TRUE(first);
  EXPECT_TRUE(stop.requested());
}

// A Poke ends the wait early without a stop (the clock never moves here); one given before the
// wait ends the next wait.
TEST(StopRequestTest, APokeEndsTheWaitWithoutAStop) {
  ManualClock clock;
  StopRequest stop;
  bool stopped = true;
  std::thread waiter([&] { stopped = stop.WaitFor(clock, std::chrono::hours(1)); });
  clock.WaitForWaiters(1);
  stop.Poke();
  waiter.join();
  EXPECT_FALSE(stopped);
  EXPECT_FALSE(stop.requested());
  stop.Poke();
  EXPECT_FALSE(stop.WaitFor(clock, std::chrono::hours(1)));
}

TEST(NodeStatusHeaderTest, StampsRolePidAndTheClocksTime) {
  ManualClock clock(1'795'301'490'500);
  NodeConfig config;
  config.node.role = NodeRole::kSecondary;
  config.node.name = "node2";
  NodeStatus s = NodeStatusHeader(config, 1795301485.25, clock);
  EXPECT_EQ(s.version, 1u);
  EXPECT_EQ(s.role, "secondary");
  EXPECT_EQ(s.name, "node2");
  EXPECT_EQ(s.pid, getpid());
  EXPECT_EQ(s.started_at, 1795301485.25);
  EXPECT_EQ(s.updated_at, 1795301490.5);
}

}  // namespace
}  // namespace replsync
