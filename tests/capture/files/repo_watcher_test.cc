#include "capture/files/repo_watcher.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "sync/clock.h"
#include "sync/unique_fd.h"

namespace replsync::capture {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Kind = RepoEvent::Kind;

RepoEvent Ev(Kind kind, std::string path, bool is_dir = false, std::string from = "") {
  return RepoEvent{kind, std::move(path), std::move(from), is_dir, ""};
}

// Equal but for the reason, which tests check separately.
bool Same(const RepoEvent& a, const RepoEvent& b) {
  return a.kind == b.kind && a.path == b.path && a.from_path == b.from_path && a.is_dir == b.is_dir;
}

bool Contains(const std::vector<RepoEvent>& events, const RepoEvent& want) {
  return std::any_of(events.begin(), events.end(),
                     [&](const RepoEvent& e) { return Same(e, want); });
}

size_t IndexOf(const std::vector<RepoEvent>& events, const RepoEvent& want) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (Same(events[i], want)) return i;
  }
  return events.size();
}

std::string Dump(const std::vector<RepoEvent>& events) {
  std::string s;
  for (const RepoEvent& e : events) s += "\n  " + ToString(e);
  return s.empty() ? " (no events)" : s;
}

void WriteFile(const std::string& path, const std::string& content) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid()) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd.get(), content.data(), content.size()),
            static_cast<ssize_t>(content.size()));
  ASSERT_EQ(::close(fd.release()), 0);
}

// Polls `watcher` until `done(events so far)` holds or `limit` passes; returns all events.
std::vector<RepoEvent> PollUntil(RepoWatcher& watcher,
                                 const std::function<bool(const std::vector<RepoEvent>&)>& done,
                                 std::chrono::milliseconds limit = 5s) {
  std::vector<RepoEvent> events;
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done(events) && std::chrono::steady_clock::now() < deadline) {
    Status st = watcher.Poll(100ms, &events);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) break;
  }
  return events;
}

std::vector<RepoEvent> PollFor(RepoWatcher& watcher, const RepoEvent& want) {
  return PollUntil(watcher, [&](const std::vector<RepoEvent>& ev) { return Contains(ev, want); });
}

// Reads what the watcher reports without waiting, until a Poll brings nothing.
void ReadQueued(RepoWatcher& watcher, std::vector<RepoEvent>* events) {
  for (;;) {
    size_t before = events->size();
    Status st = watcher.Poll(0ms, events);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok() || events->size() == before) return;
  }
}

// Everything the watcher will report for what happened so far; returns those events. The kernel
// queues an inotify event before the system call that caused it returns, so one read without
// waiting finds them all; then the clock passes the move pairing window, so that a move whose
// other half never came is reported (as kRemoved) too.
std::vector<RepoEvent> Drain(RepoWatcher& watcher, ManualClock& clock,
                             const RepoWatcherOptions& options = {}) {
  std::vector<RepoEvent> events;
  ReadQueued(watcher, &events);
  clock.Advance(options.move_pairing_window);
  ReadQueued(watcher, &events);
  return events;
}

class RepoWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/replsync-watcher-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
    base_ = tmpl;
    root_ = base_ + "/repo";
    outside_ = base_ + "/outside";
    fs::create_directories(root_);
    fs::create_directories(outside_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  std::string P(const std::string& rel) const { return root_ + "/" + rel; }

  void OpenWatcher(const RepoWatcherOptions& options = {}) {
    auto opened = RepoWatcher::Open(root_, options, clock_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    watcher_ = std::move(opened).value();
  }

  std::string base_;
  std::string root_;
  std::string outside_;  // same file system, outside the watched tree
  // The watcher's timers (move pairing, rewatch) move only when a test advances this clock.
  ManualClock clock_;
  std::unique_ptr<RepoWatcher> watcher_;
};

TEST_F(RepoWatcherTest, OpenMissingRootIsNotFound) {
  auto opened = RepoWatcher::Open(base_ + "/missing");
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(opened.status().IsNotFound()) << opened.status().ToString();
  EXPECT_NE(opened.status().message().find(base_ + "/missing"), std::string::npos);
}

TEST_F(RepoWatcherTest, OpenRegularFileIsInvalidArgument) {
  WriteFile(P("file"), "x");
  auto opened = RepoWatcher::Open(P("file"));
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Status::Code::kInvalidArgument) << opened.status().ToString();
  EXPECT_NE(opened.status().message().find("not a directory"), std::string::npos);
}

TEST_F(RepoWatcherTest, PollTimesOutWithNothing) {
  OpenWatcher();
  std::vector<RepoEvent> events;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(watcher_->Poll(60ms, &events).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 60ms);
  EXPECT_TRUE(events.empty()) << Dump(events);
  ASSERT_TRUE(watcher_->Poll(0ms, &events).ok());
  EXPECT_TRUE(events.empty()) << Dump(events);
}

TEST_F(RepoWatcherTest, CreateWriteCloseReportsChangedWritingClosedWrite) {
  OpenWatcher();
  WriteFile(P("f"), "hello");
  auto events = PollFor(*watcher_, Ev(Kind::kClosedWrite, "f"));
  ASSERT_EQ(events.size(), 3u) << Dump(events);
  EXPECT_TRUE(Same(events[0], Ev(Kind::kChanged, "f"))) << Dump(events);
  EXPECT_TRUE(Same(events[1], Ev(Kind::kWriting, "f"))) << Dump(events);
  EXPECT_TRUE(Same(events[2], Ev(Kind::kClosedWrite, "f"))) << Dump(events);
}

TEST_F(RepoWatcherTest, InterleavedWritesAreReportedOncePerFilePerPoll) {
  OpenWatcher();
  UniqueFd a(::open(P("a").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  UniqueFd b(::open(P("b").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(a.valid());
  ASSERT_TRUE(b.valid());
  for (int i = 0; i < 50; ++i) {  // alternating, so the kernel cannot merge them
    ASSERT_EQ(::write(a.get(), "x", 1), 1);
    ASSERT_EQ(::write(b.get(), "y", 1), 1);
  }
  std::vector<RepoEvent> events;
  ASSERT_TRUE(watcher_->Poll(1s, &events).ok());
  auto writing = [&](const std::string& path) {
    return std::count_if(events.begin(), events.end(),
                         [&](const RepoEvent& e) { return Same(e, Ev(Kind::kWriting, path)); });
  };
  EXPECT_EQ(writing("a"), 1) << Dump(events);
  EXPECT_EQ(writing("b"), 1) << Dump(events);
  a.Reset();
  b.Reset();
  events = PollFor(*watcher_, Ev(Kind::kClosedWrite, "b"));
  EXPECT_TRUE(Contains(events, Ev(Kind::kClosedWrite, "a"))) << Dump(events);
}

TEST_F(RepoWatcherTest, ExistingTreeIsWatchedAtOpen) {
  fs::create_directories(P("a/b/c"));
  fs::create_directories(P("x"));
  OpenWatcher();
  EXPECT_EQ(watcher_->watch_count(), 5u);
  WriteFile(P("a/b/c/f"), "1");
  auto events = PollFor(*watcher_, Ev(Kind::kClosedWrite, "a/b/c/f"));
  EXPECT_TRUE(Contains(events, Ev(Kind::kChanged, "a/b/c/f"))) << Dump(events);
}

TEST_F(RepoWatcherTest, NestedTreeCreatedQuicklyIsWatchedAndReportedAsSubtree) {
  OpenWatcher();
  fs::create_directories(P("a/b/c"));
  WriteFile(P("a/b/c/f"), "1");
  auto events = PollFor(*watcher_, Ev(Kind::kSubtree, "a", true));
  ASSERT_TRUE(Contains(events, Ev(Kind::kSubtree, "a", true))) << Dump(events);
  // The watches exist by the time kSubtree is reported.
  EXPECT_EQ(watcher_->watch_count(), 4u);
  for (const RepoEvent& e : Drain(*watcher_, clock_)) events.push_back(e);
  for (const RepoEvent& e : events) {
    EXPECT_TRUE(e.path == "a" || e.path.rfind("a/", 0) == 0) << Dump(events);
  }
  WriteFile(P("a/b/c/g"), "2");
  events = PollFor(*watcher_, Ev(Kind::kClosedWrite, "a/b/c/g"));
  EXPECT_TRUE(Contains(events, Ev(Kind::kChanged, "a/b/c/g"))) << Dump(events);
}

TEST_F(RepoWatcherTest, FileRenameReportsMovedWithBothPaths) {
  fs::create_directories(P("d"));
  WriteFile(P("old name"), "x");
  OpenWatcher();
  ASSERT_EQ(::rename(P("old name").c_str(), P("d/new name").c_str()), 0);
  auto events = PollFor(*watcher_, Ev(Kind::kMoved, "d/new name", false, "old name"));
  ASSERT_TRUE(Contains(events, Ev(Kind::kMoved, "d/new name", false, "old name"))) << Dump(events);
  events = Drain(*watcher_, clock_);
  EXPECT_FALSE(Contains(events, Ev(Kind::kRemoved, "old name"))) << Dump(events);
}

TEST_F(RepoWatcherTest, DirectoryRenameMovesThePathsOfEverythingBelowIt) {
  fs::create_directories(P("d/e/f"));
  OpenWatcher();
  ASSERT_EQ(watcher_->watch_count(), 4u);
  ASSERT_EQ(::rename(P("d").c_str(), P("x").c_str()), 0);
  auto events = PollFor(*watcher_, Ev(Kind::kMoved, "x", true, "d"));
  ASSERT_TRUE(Contains(events, Ev(Kind::kMoved, "x", true, "d"))) << Dump(events);
  for (const RepoEvent& e : Drain(*watcher_, clock_)) events.push_back(e);
  EXPECT_FALSE(Contains(events, Ev(Kind::kRemoved, "d", true))) << Dump(events);
  EXPECT_EQ(watcher_->watch_count(), 4u);

  WriteFile(P("x/e/f/new"), "1");
  ASSERT_EQ(::mkdir(P("x/e/sub").c_str(), 0755), 0);
  events = PollFor(*watcher_, Ev(Kind::kSubtree, "x/e/sub", true));
  EXPECT_TRUE(Contains(events, Ev(Kind::kChanged, "x/e/f/new"))) << Dump(events);
  EXPECT_TRUE(Contains(events, Ev(Kind::kClosedWrite, "x/e/f/new"))) << Dump(events);
  EXPECT_TRUE(Contains(events, Ev(Kind::kSubtree, "x/e/sub", true))) << Dump(events);
  for (const RepoEvent& e : events) EXPECT_NE(e.path.rfind("d/", 0), 0u) << Dump(events);
}

TEST_F(RepoWatcherTest, DirectoryRenamedOverEmptyDirectoryReplacesIt) {
  fs::create_directories(P("d/e"));
  fs::create_directories(P("y"));
  OpenWatcher();
  ASSERT_EQ(watcher_->watch_count(), 4u);
  ASSERT_EQ(::rename(P("d").c_str(), P("y").c_str()), 0);
  auto events = PollFor(*watcher_, Ev(Kind::kMoved, "y", true, "d"));
  ASSERT_TRUE(Contains(events, Ev(Kind::kMoved, "y", true, "d"))) << Dump(events);
  Drain(*watcher_, clock_);
  EXPECT_EQ(watcher_->watch_count(), 3u);
  WriteFile(P("y/e/f"), "1");
  events = PollFor(*watcher_, Ev(Kind::kClosedWrite, "y/e/f"));
  EXPECT_TRUE(Contains(events, Ev(Kind::kClosedWrite, "y/e/f"))) << Dump(events);
}

TEST_F(RepoWatcherTest, DirectoryMovedOutIsRemovedAndSilencedAfterwards) {
  fs::create_directories(P("d/e"));
  OpenWatcher();
  ASSERT_EQ(watcher_->watch_count(), 3u);
  ASSERT_EQ(::rename(P("d").c_str(), (outside_ + "/d").c_str()), 0);
  // Unpaired until the window passes on the clock: then a removal.
  auto events = Drain(*watcher_, clock_);
  ASSERT_TRUE(Contains(events, Ev(Kind::kRemoved, "d", true))) << Dump(events);
  EXPECT_EQ(watcher_->watch_count(), 1u);
  WriteFile(outside_ + "/d/e/f", "1");
  ASSERT_EQ(::mkdir((outside_ + "/d/g").c_str(), 0755), 0);
  events = Drain(*watcher_, clock_);
  EXPECT_TRUE(events.empty()) << Dump(events);
}

TEST_F(RepoWatcherTest, DirectoryMovedOutAndRecreatedAtOnceKeepsTheNewWatch) {
  fs::create_directories(P("d/e"));
  OpenWatcher();
  ASSERT_EQ(::rename(P("d").c_str(), (outside_ + "/d").c_str()), 0);
  ASSERT_EQ(::mkdir(P("d").c_str(), 0755), 0);
  auto events = Drain(*watcher_, clock_);
  ASSERT_TRUE(Contains(events, Ev(Kind::kSubtree, "d", true))) << Dump(events);
  ASSERT_TRUE(Contains(events, Ev(Kind::kRemoved, "d", true))) << Dump(events);
  EXPECT_EQ(watcher_->watch_count(), 2u);
  WriteFile(P("d/f"), "1");
  events = PollFor(*watcher_, Ev(Kind::kClosedWrite, "d/f"));
  EXPECT_TRUE(Contains(events, Ev(Kind::kClosedWrite, "d/f"))) << Dump(events);
  WriteFile(outside_ + "/d/e/g", "1");
  events = Drain(*watcher_, clock_);
  EXPECT_TRUE(events.empty()) << Dump(events);
}

TEST_F(RepoWatcherTest, DirectoryMovedInIsSubtreeAndWatched) {
  fs::create_directories(outside_ + "/m/n");
  OpenWatcher();
  ASSERT_EQ(::rename((outside_ + "/m").c_str(), P("m").c_str()), 0);
  auto events = PollFor(*watcher_, Ev(Kind::kSubtree, "m", true));
  ASSERT_TRUE(Contains(events, Ev(Kind::kSubtree, "m", true))) << Dump(events);
  EXPECT_EQ(watcher_->watch_count(), 3u);
  WriteFile(P("m/n/f"), "1");
  events = PollFor(*watcher_, Ev(Kind::kClosedWrite, "m/n/f"));
  EXPECT_TRUE(Contains(events, Ev(Kind::kChanged, "m/n/f"))) << Dump(events);
}

TEST_F(RepoWatcherTest, FileMovedInIsChangedAndMovedOutIsRemoved) {
  WriteFile(outside_ + "/in", "1");
  WriteFile(P("out"), "2");
  OpenWatcher();
  ASSERT_EQ(::rename((outside_ + "/in").c_str(), P("in").c_str()), 0);
  ASSERT_EQ(::rename(P("out").c_str(), (outside_ + "/out").c_str()), 0);
  auto events = Drain(*watcher_, clock_);
  EXPECT_TRUE(Contains(events, Ev(Kind::kChanged, "in"))) << Dump(events);
  EXPECT_TRUE(Contains(events, Ev(Kind::kRemoved, "out"))) << Dump(events);
}

TEST_F(RepoWatcherTest, ChmodReportsChanged) {
  fs::create_directories(P("d"));
  WriteFile(P("d/f"), "1");
  OpenWatcher();
  ASSERT_EQ(::chmod(P("d/f").c_str(), 0600), 0);
  ASSERT_EQ(::chmod(P("d").c_str(), 0700), 0);
  ASSERT_EQ(::chmod(root_.c_str(), 0700), 0);
  auto events = PollUntil(*watcher_, [](const std::vector<RepoEvent>& ev) {
    return Contains(ev, Ev(Kind::kChanged, "d/f")) && Contains(ev, Ev(Kind::kChanged, "d", true)) &&
           Contains(ev, Ev(Kind::kChanged, "", true));
  });
  EXPECT_TRUE(Contains(events, Ev(Kind::kChanged, "d/f"))) << Dump(events);
  EXPECT_TRUE(Contains(events, Ev(Kind::kChanged, "d", true))) << Dump(events);
  EXPECT_TRUE(Contains(events, Ev(Kind::kChanged, "", true))) << Dump(events);
}

TEST_F(RepoWatcherTest, DeleteReportsRemovedAndDropsTheWatch) {
  fs::create_directories(P("d"));
  WriteFile(P("d/f"), "1");
  OpenWatcher();
  ASSERT_EQ(watcher_->watch_count(), 2u);
  ASSERT_EQ(::unlink(P("d/f").c_str()), 0);
  ASSERT_EQ(::rmdir(P("d").c_str()), 0);
  auto events = PollFor(*watcher_, Ev(Kind::kRemoved, "d", true));
  EXPECT_LT(IndexOf(events, Ev(Kind::kRemoved, "d/f")),
            IndexOf(events, Ev(Kind::kRemoved, "d", true)))
      << Dump(events);
  EXPECT_EQ(watcher_->watch_count(), 1u);

  // A new directory of the same name is watched afresh.
  ASSERT_EQ(::mkdir(P("d").c_str(), 0755), 0);
  events = PollFor(*watcher_, Ev(Kind::kSubtree, "d", true));
  ASSERT_TRUE(Contains(events, Ev(Kind::kSubtree, "d", true))) << Dump(events);
  EXPECT_EQ(watcher_->watch_count(), 2u);
  WriteFile(P("d/g"), "1");
  events = PollFor(*watcher_, Ev(Kind::kClosedWrite, "d/g"));
  EXPECT_TRUE(Contains(events, Ev(Kind::kClosedWrite, "d/g"))) << Dump(events);
}

TEST_F(RepoWatcherTest, NamesWithAnyBytesAreReportedExactly) {
  const std::vector<std::string> names = {"with space", "new\nline",    "\u00fcn\u00efc\u00f8de",
                                          "-dash",      "\xff\xfe\x01", "tab\there"};
  OpenWatcher();
  for (const std::string& name : names) {
    ASSERT_EQ(::mkdir(P(name).c_str(), 0755), 0) << name;
    WriteFile(P(name + "/" + name), "1");
  }
  auto events = PollUntil(*watcher_, [&](const std::vector<RepoEvent>& ev) {
    return std::all_of(names.begin(), names.end(), [&](const std::string& n) {
      return Contains(ev, Ev(Kind::kSubtree, n, true));
    });
  });
  for (const std::string& name : names) {
    EXPECT_TRUE(Contains(events, Ev(Kind::kSubtree, name, true))) << Dump(events);
  }
  Drain(*watcher_, clock_);
  EXPECT_EQ(watcher_->watch_count(), names.size() + 1);
  for (const std::string& name : names) WriteFile(P(name + "/" + name + ".2"), "2");
  events = PollUntil(*watcher_, [&](const std::vector<RepoEvent>& ev) {
    return std::all_of(names.begin(), names.end(), [&](const std::string& n) {
      return Contains(ev, Ev(Kind::kClosedWrite, n + "/" + n + ".2"));
    });
  });
  for (const std::string& name : names) {
    EXPECT_TRUE(Contains(events, Ev(Kind::kClosedWrite, name + "/" + name + ".2"))) << Dump(events);
  }
}

TEST_F(RepoWatcherTest, SymbolicLinksAreNotFollowed) {
  fs::create_directories(outside_ + "/target");
  ASSERT_EQ(::symlink((outside_ + "/target").c_str(), P("link").c_str()), 0);
  OpenWatcher();
  EXPECT_EQ(watcher_->watch_count(), 1u);
  ASSERT_EQ(::symlink((outside_ + "/target").c_str(), P("link2").c_str()), 0);
  auto events = PollFor(*watcher_, Ev(Kind::kChanged, "link2"));
  EXPECT_TRUE(Contains(events, Ev(Kind::kChanged, "link2"))) << Dump(events);
  EXPECT_EQ(watcher_->watch_count(), 1u);
  WriteFile(outside_ + "/target/f", "1");
  events = Drain(*watcher_, clock_);
  EXPECT_TRUE(events.empty()) << Dump(events);
}

TEST_F(RepoWatcherTest, QueueOverflowReportsRescanAndRewatches) {
  const char* kQueued = "/proc/sys/fs/inotify/max_queued_events";
  long long queued = -1;
  std::ifstream(kQueued) >> queued;
  ASSERT_GT(queued, 0);
  if (queued > 100000) {
    // Too many events to cause quickly: lower the limit while the instance is created (it is
    // read once, by inotify_init1), and restore it at once. Needs root.
    ASSERT_TRUE(std::ofstream(kQueued) << 1024) << "cannot lower " << kQueued << " (not root?)";
    OpenWatcher();
    std::ofstream(kQueued) << queued;
    queued = 1024;
  } else {
    OpenWatcher();
  }
  fs::create_directories(P("spam"));
  Drain(*watcher_, clock_);
  // Each file gives IN_CREATE, IN_CLOSE_WRITE and IN_DELETE; distinct names are not merged.
  for (long long i = 0; i < queued / 3 + 200; ++i) {
    std::string path = P("spam/" + std::to_string(i));
    ASSERT_TRUE(UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644)).valid());
    ASSERT_EQ(::unlink(path.c_str()), 0);
  }
  // Lost with the overflow: the watcher must find this directory by itself.
  fs::create_directories(P("late/sub"));
  auto events = PollUntil(*watcher_, [](const std::vector<RepoEvent>& ev) {
    return std::any_of(ev.begin(), ev.end(),
                       [](const RepoEvent& e) { return e.kind == Kind::kRescan; });
  });
  auto rescan = std::find_if(events.begin(), events.end(),
                             [](const RepoEvent& e) { return e.kind == Kind::kRescan; });
  ASSERT_NE(rescan, events.end()) << Dump(events);
  EXPECT_NE(rescan->reason.find("overflowed"), std::string::npos) << rescan->reason;
  EXPECT_NE(rescan->reason.find("fs.inotify.max_queued_events"), std::string::npos);
  Drain(*watcher_, clock_);
  EXPECT_EQ(watcher_->watch_count(), 4u);
  WriteFile(P("late/sub/f"), "1");
  events = PollFor(*watcher_, Ev(Kind::kClosedWrite, "late/sub/f"));
  EXPECT_TRUE(Contains(events, Ev(Kind::kClosedWrite, "late/sub/f"))) << Dump(events);
}

// Runs in a child process: in a new user namespace, whose inotify watch limit the child may set
// without touching the machine's, watches a tree larger than the limit. Returns "ok" or what
// went wrong.
std::string WatchLimitScenario(const std::string& root) {
  auto set_limit = [](int n) {
    std::ofstream out("/proc/sys/user/max_inotify_watches");
    out << n;
    out.flush();
    return static_cast<bool>(out);
  };
  if (unshare(CLONE_NEWUSER) != 0)
    return std::string("unshare(CLONE_NEWUSER): ") + std::strerror(errno);
  if (!set_limit(3)) return "cannot set /proc/sys/user/max_inotify_watches";
  RepoWatcherOptions options;
  options.rewatch_interval = 200ms;
  ManualClock clock;
  auto opened = RepoWatcher::Open(root, options, clock);
  if (!opened.ok()) return "Open: " + opened.status().ToString();
  RepoWatcher& watcher = *opened.value();
  if (watcher.watch_count() != 3) return "watch_count " + std::to_string(watcher.watch_count());

  std::vector<RepoEvent> events;
  if (!watcher.Poll(1s, &events).ok() || events.size() != 1 || events[0].kind != Kind::kRescan) {
    return "expected one kRescan:" + Dump(events);
  }
  const std::string& reason = events[0].reason;
  if (reason.find("fs.inotify.max_user_watches") == std::string::npos ||
      reason.find("holds 3 watches") == std::string::npos ||
      reason.find("3 directories") == std::string::npos) {
    return "reason: " + reason;
  }
  // The watched directories keep working.
  WriteFile(root + "/file", "1");
  events = PollFor(watcher, Ev(Kind::kClosedWrite, "file"));
  if (!Contains(events, Ev(Kind::kClosedWrite, "file"))) return "no event for file:" + Dump(events);

  // Once the limit allows, the next retry watches everything and says so.
  if (!set_limit(100)) return "cannot raise the limit";
  clock.Advance(options.rewatch_interval);
  events = PollUntil(watcher, [](const std::vector<RepoEvent>& ev) {
    return !ev.empty() && ev.back().kind == Kind::kRescan &&
           ev.back().reason.find("watched again") != std::string::npos;
  });
  if (events.empty() || events.back().reason.find("watched again") == std::string::npos) {
    return "no recovery:" + Dump(events);
  }
  if (watcher.watch_count() != 6)
    return "watch_count after retry " + std::to_string(watcher.watch_count());
  for (int i = 1; i <= 5; ++i) WriteFile(fmt::format("{}/d{}/f", root, i), "1");
  events = PollUntil(watcher, [](const std::vector<RepoEvent>& ev) {
    for (int i = 1; i <= 5; ++i) {
      if (!Contains(ev, Ev(Kind::kClosedWrite, fmt::format("d{}/f", i)))) return false;
    }
    return true;
  });
  for (int i = 1; i <= 5; ++i) {
    if (!Contains(events, Ev(Kind::kClosedWrite, fmt::format("d{}/f", i)))) {
      return "missing d" + std::to_string(i) + "/f:" + Dump(events);
    }
  }
  return "ok";
}

TEST_F(RepoWatcherTest, WatchLimitReportsRescanKeepsWorkingAndRecovers) {
  for (int i = 1; i <= 5; ++i) fs::create_directories(P(fmt::format("d{}", i)));
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    std::string result = WatchLimitScenario(root_);
    ssize_t n = ::write(pipe_fds[1], result.data(), result.size());
    ::_exit(n == static_cast<ssize_t>(result.size()) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::string result;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0;) result.append(buf, n);
  ::close(pipe_fds[0]);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
  EXPECT_EQ(result, "ok");
}

TEST_F(RepoWatcherTest, InterruptWakesPollAtOnce) {
  OpenWatcher();
  std::vector<RepoEvent> events;
  std::atomic<bool> polling{false};
  std::thread interrupter([&] {
    while (!polling) std::this_thread::yield();
    watcher_->Interrupt();
  });
  auto start = std::chrono::steady_clock::now();
  polling = true;
  Status st = watcher_->Poll(10s, &events);
  auto elapsed = std::chrono::steady_clock::now() - start;
  interrupter.join();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_LT(elapsed, 2s);
  EXPECT_TRUE(events.empty()) << Dump(events);
}

TEST_F(RepoWatcherTest, InterruptBeforePollMakesTheNextPollReturn) {
  OpenWatcher();
  watcher_->Interrupt();
  std::vector<RepoEvent> events;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(watcher_->Poll(10s, &events).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  // Only once: the following Poll waits again.
  start = std::chrono::steady_clock::now();
  ASSERT_TRUE(watcher_->Poll(50ms, &events).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
}

TEST_F(RepoWatcherTest, RootDeletedReportsRescan) {
  OpenWatcher();
  ASSERT_EQ(::rmdir(root_.c_str()), 0);
  auto events = PollUntil(*watcher_, [](const std::vector<RepoEvent>& ev) { return !ev.empty(); });
  ASSERT_EQ(events.size(), 1u) << Dump(events);
  EXPECT_EQ(events[0].kind, Kind::kRescan);
  EXPECT_NE(events[0].reason.find("was deleted"), std::string::npos) << events[0].reason;
  EXPECT_EQ(watcher_->watch_count(), 0u);
  events = Drain(*watcher_, clock_);
  EXPECT_TRUE(events.empty()) << Dump(events);
}

TEST_F(RepoWatcherTest, RootMovedReportsRescanAndStopsWatching) {
  fs::create_directories(P("d"));
  OpenWatcher();
  ASSERT_EQ(::rename(root_.c_str(), (base_ + "/moved").c_str()), 0);
  auto events = PollUntil(*watcher_, [](const std::vector<RepoEvent>& ev) { return !ev.empty(); });
  ASSERT_EQ(events.size(), 1u) << Dump(events);
  EXPECT_EQ(events[0].kind, Kind::kRescan);
  EXPECT_NE(events[0].reason.find("moved"), std::string::npos) << events[0].reason;
  EXPECT_EQ(watcher_->watch_count(), 0u);
  WriteFile(base_ + "/moved/d/f", "1");
  events = Drain(*watcher_, clock_);
  EXPECT_TRUE(events.empty()) << Dump(events);
}

}  // namespace
}  // namespace replsync::capture
