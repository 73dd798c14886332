#include "capture/files/settler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>

#include "sync/clock.h"

namespace replsync::capture {
namespace {

using namespace std::chrono_literals;

class SettlerTest : public ::testing::Test {
 protected:
  Settler Make() {
    return Settler(clock_, SettleTimes{50ms, 1000ms},
                   [this](const std::string& path) { return sizes_[path]; });
  }
  ManualClock clock_;
  std::map<std::string, uint64_t> sizes_;
};

TEST_F(SettlerTest, PathIsDueAfterQuiet) {
  Settler s = Make();
  s.Mark("a");
  EXPECT_FALSE(s.TakeDue("", clock_.Now(), /*all=*/false));
  EXPECT_EQ(s.TimeToNextDue(clock_.Now(), 100ms), 50ms);
  clock_.Advance(50ms);
  auto taken = s.TakeDue("", clock_.Now(), false);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->path, "a");
  EXPECT_TRUE(s.empty());
}

TEST_F(SettlerTest, WritingWaitsOpenWriteQuietUntilClosed) {
  Settler s = Make();
  s.Mark("f", {.write = WriteEvent::kWriting});
  clock_.Advance(500ms);
  s.Mark("f");  // another event: still being written
  clock_.Advance(500ms);
  EXPECT_FALSE(s.TakeDue("", clock_.Now(), false));
  s.Mark("f", {.write = WriteEvent::kClosed});
  clock_.Advance(50ms);
  auto taken = s.TakeDue("", clock_.Now(), false);
  ASSERT_TRUE(taken);
  EXPECT_FALSE(taken->waiting.writing);
}

TEST_F(SettlerTest, ForcedPathIsDueAtOnceAndFlagsAccumulate) {
  Settler s = Make();
  s.Mark("d", {.deep = true});
  s.Mark("d", {.force = true});
  auto taken = s.TakeDue("", clock_.Now(), false);
  ASSERT_TRUE(taken);
  EXPECT_TRUE(taken->waiting.deep);
  EXPECT_TRUE(taken->waiting.force);
}

TEST_F(SettlerTest, PassGoesInPathOrderAndDropsWhatADeepLookCovered) {
  Settler s = Make();
  s.Mark("d", {.deep = true});
  s.Mark("d/x");
  s.Mark("d/y", {.write = WriteEvent::kWriting});
  s.Mark("d/z");
  s.Mark("e");
  clock_.Advance(50ms);
  const auto now = clock_.Now();
  auto taken = s.TakeDue("", now, false);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->path, "d");
  ASSERT_TRUE(taken->next);
  EXPECT_EQ(*taken->next, "d/x");
  // d/x is covered; d/y is being written, which stops the drop (d/z waits for its own look).
  auto from = s.DropSettledBelow("d", *taken->next, now);
  ASSERT_TRUE(from);
  EXPECT_EQ(*from, "d/y");
  EXPECT_EQ(s.Find("d/x"), nullptr);
  taken = s.TakeDue(*from, now, false);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->path, "d/z");  // d/y is not due
  taken = s.TakeDue(*taken->next, now, false);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->path, "e");
  EXPECT_FALSE(taken->next);
  EXPECT_EQ(s.size(), 1u);
}

TEST_F(SettlerTest, MovePrefixMovesThePathsBelowButNotSiblings) {
  Settler s = Make();
  s.Mark("a/b");
  s.Mark("a/b/c");
  s.Mark("a/b.txt");
  s.MovePrefix("a/b", "x");
  EXPECT_NE(s.Find("x"), nullptr);
  EXPECT_NE(s.Find("x/c"), nullptr);
  EXPECT_NE(s.Find("a/b.txt"), nullptr);
  EXPECT_EQ(s.Find("a/b"), nullptr);
  EXPECT_EQ(s.size(), 3u);
}

TEST_F(SettlerTest, BytesCountTheSizesAsOfTheLastMark) {
  Settler s = Make();
  sizes_["a"] = 10;
  sizes_["b"] = 5;
  s.Mark("a");
  s.Mark("b");
  EXPECT_EQ(s.bytes(), 15u);
  sizes_["a"] = 1;
  s.Mark("a");
  EXPECT_EQ(s.bytes(), 6u);
}

}  // namespace
}  // namespace replsync::capture
