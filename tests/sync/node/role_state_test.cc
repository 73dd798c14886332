#include "sync/node/role_state.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "sync/node/role_keeper.h"

namespace replsync {
namespace {

std::string MakeDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "rolestate.XXXXXX").string();
  return ::mkdtemp(tmpl.data());
}

TEST(RoleStateTest, TheConfiguredRoleCountsOnlyAtTheFirstStart) {
  NodeConfig config;
  config.node.state_dir = MakeDir();
  config.node.role = NodeRole::kPrimary;
  // Reading alone writes nothing (the commands read; only the daemon's start writes).
  EXPECT_TRUE(ReadRoleState(config.node.state_dir).status().IsNotFound());
  EXPECT_FALSE(std::filesystem::exists(RoleStatePath(config.node.state_dir)));
  Result<RoleState> first = LoadRoleState(config);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->role, NodeRole::kPrimary);
  EXPECT_EQ(first->epoch, 1u);
  struct stat st {};
  ASSERT_EQ(::stat(RoleStatePath(config.node.state_dir).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Demoted and at a later epoch: the TOML's "primary" no longer decides.
  RoleState later = *first;
  later.role = NodeRole::kSecondary;
  later.epoch = 3;
  later.forks.push_back(ForkPoint{.epoch = 3,
                                  .promoted = "node2",
                                  .old_primary = "node1",
                                  .journal_seq = 4711,
                                  .gtid = "0-1-99",
                                  .binlog_file = "bin.000002",
                                  .binlog_offset = 1234,
                                  .manifest = "ab01",
                                  .at = 1765000000,
                                  .lost = "4712-4720"});
  ASSERT_TRUE(SaveRoleState(config.node.state_dir, later).ok());
  Result<RoleState> again = LoadRoleState(config);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, later);
  std::filesystem::remove_all(config.node.state_dir);
}

TEST(RoleStateTest, ADamagedFileIsAnErrorNeverReplaced) {
  NodeConfig config;
  config.node.state_dir = MakeDir();
  std::ofstream(RoleStatePath(config.node.state_dir)) << "{\"version\":1,\"role\":\"primary\"";
  Result<RoleState> state = LoadRoleState(config);
  ASSERT_FALSE(state.ok());
  EXPECT_NE(state.status().message().find("role.json"), std::string::npos)
      << state.status().ToString();
  std::ifstream in(RoleStatePath(config.node.state_dir));
  std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(kept, "{\"version\":1,\"role\":\"primary\"");
  std::filesystem::remove_all(config.node.state_dir);
}

TEST(RoleStateTest, MalformedStatesAreRefusedNamingTheProblem) {
  const std::string good = RoleState{}.ToJson();
  EXPECT_TRUE(RoleState::Parse(good).ok()) << good;
  auto message = [](std::string_view json) {
    Result<RoleState> state = RoleState::Parse(json);
    return state.ok() ? std::string("accepted") : state.status().message();
  };
  EXPECT_NE(message("[]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(message(R"({"version":2,"role":"primary","epoch":1,"fenced":false,"fenced_by":"",
                        "forks":[]})")
                .find("format version 2"),
            std::string::npos);
  EXPECT_NE(message(R"({"version":1,"role":"leader","epoch":1,"fenced":false,"fenced_by":"",
                        "forks":[]})")
                .find("unknown role"),
            std::string::npos);
  EXPECT_NE(message(R"({"version":1,"role":"primary","epoch":0,"fenced":false,"fenced_by":"",
                        "forks":[]})")
                .find("epoch 0"),
            std::string::npos);
  EXPECT_NE(message(R"({"version":1,"role":"primary","epoch":"2","fenced":false,
                        "fenced_by":"","forks":[]})")
                .find("\"epoch\" is missing or not a whole number"),
            std::string::npos);
  EXPECT_NE(message(R"({"version":1,"role":"primary","epoch":2,"fenced":false,"fenced_by":"",
                        "forks":[{"epoch":2}]})")
                .find("fork 1: \"promoted\""),
            std::string::npos);
}

// What node "b" says of itself: its epoch, and the epoch at which it is or was primary.
PeerClaim Claim(uint64_t epoch, uint64_t primary_epoch) {
  PeerClaim claim;
  claim.node = "b";
  claim.epoch = epoch;
  claim.primary_epoch = primary_epoch;
  return claim;
}

TEST(RoleStateTest, APrimaryFencesItselfOnAHigherEpochOrASecondPrimaryAtItsOwn) {
  RoleState primary;
  primary.role = NodeRole::kPrimary;
  primary.epoch = 2;
  // A secondary at the same epoch, or one that knows less: nothing to fear.
  EXPECT_EQ(FenceReason(primary, Claim(2, 0)), "");
  EXPECT_EQ(FenceReason(primary, Claim(1, 1)), "");
  // Another node was promoted after this one.
  EXPECT_NE(FenceReason(primary, Claim(3, 3)).find("epoch 3"), std::string::npos);
  EXPECT_NE(FenceReason(primary, Claim(3, 0)), "");
  // Both primary at epoch 2 (both started as primary, say): each fences itself, whatever the
  // order they hear of each other in (a fenced one still says at which epoch it was primary).
  EXPECT_NE(FenceReason(primary, Claim(2, 2)).find("two primaries"), std::string::npos);
  // A secondary or an already fenced node has nothing to fence.
  RoleState secondary;
  EXPECT_EQ(FenceReason(secondary, Claim(9, 9)), "");
  RoleState fenced = primary;
  fenced.fenced = true;
  EXPECT_EQ(FenceReason(fenced, Claim(9, 9)), "");
  EXPECT_EQ(PrimaryEpoch(primary), 2u);
  EXPECT_EQ(PrimaryEpoch(secondary), 0u);
}

TEST(RoleKeeperTest, AnOldPrimaryFencedByTheNewOneRecordsTheForkPointItWasTold) {
  NodeConfig config;
  config.node.state_dir = MakeDir();
  config.node.role = NodeRole::kPrimary;
  Result<RoleState> first = LoadRoleState(config);
  ASSERT_TRUE(first.ok());
  RoleKeeper keeper(config.node.state_dir, "a", *first);
  std::string fenced_with;
  keeper.set_on_fence([&](const std::string& reason) { fenced_with = reason; });
  PeerClaim promoted = Claim(2, 2);
  promoted.fork = {.epoch = 2,
                   .promoted = "b",
                   .old_primary = "a",
                   .journal_seq = 7,
                   .gtid = "0-1-7",
                   .binlog_file = "bin.000001",
                   .binlog_offset = 900,
                   .manifest = "",
                   .at = 1765000000,
                   .lost = ""};
  EXPECT_NE(keeper.Hear(promoted), "");
  EXPECT_EQ(fenced_with, keeper.state().fenced_by);
  // Saved: a restart knows it is fenced and where its tail begins.
  Result<RoleState> saved = ReadRoleState(config.node.state_dir);
  ASSERT_TRUE(saved.ok());
  EXPECT_TRUE(saved->fenced);
  ASSERT_EQ(saved->forks.size(), 1u);
  EXPECT_EQ(saved->forks[0], promoted.fork);
  // Told again, nothing changes.
  fenced_with.clear();
  EXPECT_EQ(keeper.Hear(promoted), "");
  EXPECT_EQ(fenced_with, "");
  EXPECT_EQ(keeper.state().forks.size(), 1u);
  std::filesystem::remove_all(config.node.state_dir);
}

// `replsync rejoin`: the fenced old primary becomes a secondary of the node promoted after it,
// at that epoch, saved; a command's configuration then follows that node's [peers] endpoint.
TEST(RoleKeeperTest, AFencedOldPrimaryRejoinsAsASecondaryOfThePromotedNode) {
  NodeConfig config;
  config.source_path = "a.toml";
  config.node.name = "a";
  config.node.state_dir = MakeDir();
  config.node.role = NodeRole::kPrimary;
  config.transport.primary = "tcp://old:1";
  Result<RoleState> first = LoadRoleState(config);
  ASSERT_TRUE(first.ok());
  RoleKeeper keeper(config.node.state_dir, "a", *first);
  EXPECT_FALSE(keeper.Rejoin(ForkPoint{}).ok()) << "an unfenced primary has nothing to rejoin";
  PeerClaim promoted = Claim(2, 2);
  promoted.fork.epoch = 2;
  promoted.fork.promoted = "b";
  promoted.fork.old_primary = "a";
  ASSERT_NE(keeper.Hear(promoted), "");
  const std::optional<ForkPoint> fork = TakeoverFork(keeper.state(), "a");
  ASSERT_TRUE(fork.has_value());
  EXPECT_EQ(fork->promoted, "b");
  EXPECT_FALSE(TakeoverFork(keeper.state(), "b").has_value());

  Result<RoleState> rejoined = keeper.Rejoin(*fork);
  ASSERT_TRUE(rejoined.ok()) << rejoined.status().ToString();
  EXPECT_EQ(rejoined->role, NodeRole::kSecondary);
  EXPECT_EQ(rejoined->epoch, 2u);
  EXPECT_FALSE(rejoined->fenced);
  Result<RoleState> saved = ReadRoleState(config.node.state_dir);
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(*saved, *rejoined);
  EXPECT_EQ(FollowedNode(*saved, "a"), "b");
  EXPECT_EQ(FollowedNode(*saved, "b"), "") << "the promoted node follows no one";

  // Without [peers.b] the node cannot know where to follow: said, not guessed.
  NodeConfig applied = config;
  Status st = ApplyRoleState(*saved, &applied);
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(st.message().find("[peers.b]"), std::string::npos) << st.message();
  applied.peers.push_back({.name = "b", .endpoint = "tcp://b:7700", .public_key = ""});
  ASSERT_TRUE(ApplyRoleState(*saved, &applied).ok());
  EXPECT_EQ(applied.node.role, NodeRole::kSecondary);
  EXPECT_EQ(applied.transport.primary, "tcp://b:7700");
  std::filesystem::remove_all(config.node.state_dir);
}

RoleState Primary(uint64_t epoch, std::vector<ForkPoint> forks) {
  RoleState state;
  state.role = NodeRole::kPrimary;
  state.epoch = epoch;
  state.forks = std::move(forks);
  return state;
}

ForkPoint Fork(uint64_t epoch, std::string promoted, std::string old_primary) {
  ForkPoint fork;
  fork.epoch = epoch;
  fork.promoted = std::move(promoted);
  fork.old_primary = std::move(old_primary);
  return fork;
}

// The takeover is the latest fork after this node's own last promotion: a fork from before it
// (this node was taken over from, rejoined, and was promoted again since) is not where its tail
// begins.
TEST(TakeoverForkTest, OnlyForksAfterTheNodesOwnLastPromotionCount) {
  const RoleState state = Primary(3, {Fork(2, "b", "a"), Fork(3, "a", "b")});
  EXPECT_FALSE(TakeoverFork(state, "a").has_value());
  RoleState later = state;
  later.forks.push_back(Fork(4, "c", "a"));
  ASSERT_TRUE(TakeoverFork(later, "a").has_value());
  EXPECT_EQ(TakeoverFork(later, "a")->promoted, "c");
}

// A fork without old_primary (a primary promoted over another of its epoch) takes over from
// every other node.
TEST(TakeoverForkTest, APromotionOverTwoPrimariesTakesOverFromTheOther) {
  const RoleState state = Primary(1, {Fork(2, "b", "")});
  ASSERT_TRUE(TakeoverFork(state, "a").has_value());
  EXPECT_EQ(TakeoverFork(state, "a")->promoted, "b");
  EXPECT_FALSE(TakeoverFork(state, "b").has_value());
}

TEST(RoleKeeperTest, OnlyAPrimaryFencedByAnotherOfItsEpochReclaims) {
  const std::string dir = MakeDir();
  RoleKeeper serving(dir, "a", Primary(1, {}));
  EXPECT_FALSE(serving.Reclaim(ForkPoint{}, 100).ok()) << "an unfenced primary";
  RoleState fenced = Primary(1, {});
  fenced.fenced = true;
  fenced.fenced_by = "node b is primary at epoch 1 too";
  RoleState taken_over = fenced;
  taken_over.forks.push_back(Fork(2, "b", "a"));
  RoleKeeper old(dir, "a", taken_over);
  EXPECT_FALSE(old.Reclaim(ForkPoint{}, 100).ok()) << "b took over: a rejoins, never reclaims";

  RoleKeeper keeper(dir, "a", fenced);
  ForkPoint own;
  own.journal_seq = 40;
  own.binlog_file = "bin.000001";
  own.binlog_offset = 777;
  own.old_primary = "ignored";
  Result<RoleState> reclaimed = keeper.Reclaim(own, 100);
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status().ToString();
  EXPECT_EQ(reclaimed->epoch, 2u);
  EXPECT_FALSE(reclaimed->fenced);
  ASSERT_EQ(reclaimed->forks.size(), 1u);
  EXPECT_EQ(reclaimed->forks[0].promoted, "a");
  EXPECT_EQ(reclaimed->forks[0].old_primary, "");
  EXPECT_EQ(reclaimed->forks[0].journal_seq, 40u);
  Result<RoleState> saved = ReadRoleState(dir);
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(*saved, *reclaimed);
}

// The daemon is told once per new handover to this node, and not for others' or repeats.
TEST(RoleKeeperTest, ANewHandoverToThisNodeIsAnnouncedOnce) {
  RoleState secondary;
  RoleKeeper keeper(MakeDir(), "b", secondary);
  int heard = 0;
  keeper.set_on_handover([&] { ++heard; });
  keeper.HearHandover("c", 10);
  EXPECT_EQ(heard, 0);
  keeper.HearHandover("b", 10);
  keeper.HearHandover("b", 10);
  EXPECT_EQ(heard, 1);
  ASSERT_TRUE(keeper.handover().has_value());
  EXPECT_EQ(keeper.handover()->seq, 10u);
  keeper.HearHandover("b", 12);
  EXPECT_EQ(heard, 2);
  keeper.HearHandover("", 0);
  EXPECT_FALSE(keeper.handover().has_value());
}

}  // namespace
}  // namespace replsync
