// PlanFollow: what a secondary does with its relay when the node it follows changed by a
// promotion, for each place its relay and applied position can be relative to the fork.
#include "apply/follow_promotion.h"

#include <gtest/gtest.h>

namespace replsync::apply {
namespace {

ForkPoint Fork(uint64_t seq, std::string lost = "") {
  return {.epoch = 2,
          .promoted = "node3",
          .old_primary = "node1",
          .journal_seq = seq,
          .gtid = "0-1-9",
          .binlog_file = "bin.000001",
          .binlog_offset = 900,
          .manifest = "",
          .at = 1765000000,
          .lost = std::move(lost)};
}

TEST(PlanFollowTest, ARelayThatEndsAtTheForkContinues) {
  const FollowPlan plan = PlanFollow(Fork(100), 100, 100);
  EXPECT_EQ(plan.action, FollowPlan::Action::kContinue);
  EXPECT_EQ(plan.dropped, 0u);
  // Entries up to the fork received but not applied yet: the same as the promoted node applied.
  EXPECT_EQ(PlanFollow(Fork(100), 40, 100).action, FollowPlan::Action::kContinue);
}

TEST(PlanFollowTest, UnappliedEntriesAfterTheForkAreDropped) {
  const FollowPlan plan = PlanFollow(Fork(100, "101-103"), 98, 103);
  EXPECT_EQ(plan.action, FollowPlan::Action::kDropAfterFork);
  EXPECT_EQ(plan.dropped, 3u);
  EXPECT_NE(plan.why.find("101..103"), std::string::npos) << plan.why;
  EXPECT_NE(plan.why.find("recorded 101-103 as lost"), std::string::npos) << plan.why;
  // Applied exactly up to the fork, more received.
  EXPECT_EQ(PlanFollow(Fork(100), 100, 101).action, FollowPlan::Action::kDropAfterFork);
}

TEST(PlanFollowTest, AppliedPastTheForkNeedsAResync) {
  const FollowPlan plan = PlanFollow(Fork(100, "101-105"), 101, 105);
  EXPECT_EQ(plan.action, FollowPlan::Action::kResync);
  EXPECT_NE(plan.why.find("applied sequences 101..101 of node1"), std::string::npos) << plan.why;
}

TEST(PlanFollowTest, MissingEntriesBeforeTheForkNeedAResync) {
  const FollowPlan plan = PlanFollow(Fork(100), 97, 97);
  EXPECT_EQ(plan.action, FollowPlan::Action::kResync);
  EXPECT_NE(plan.why.find("sequences 98..100 cannot come from it"), std::string::npos) << plan.why;
  // A relay rebased by a bootstrap past its last entry: the applied position counts.
  EXPECT_EQ(PlanFollow(Fork(100), 100, 0).action, FollowPlan::Action::kContinue);
}

}  // namespace
}  // namespace replsync::apply
