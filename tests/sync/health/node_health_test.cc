#include "sync/health/node_health.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

namespace replsync::health {
namespace {

constexpr double kNow = 1'795'301'490.0;

// A primary as a healthy daemon reports it, its status taken 0.5 s ago.
NodeStatus RunningPrimary() {
  NodeStatus s;
  s.role = "primary";
  s.name = "node1";
  s.pid = 4242;
  s.state = "running";
  s.updated_at = kNow - 0.5;
  s.epoch = 2;
  s.peers_asked = true;
  NodeStatus::Primary& p = s.primary.emplace();
  p.capture_state = "running";
  p.binlog_position = "binlog.000003:4711";
  p.gtid = "0-1-500";
  p.lag_seconds = 1;
  p.journal = {.first_seq = 1,
               .last_seq = 500,
               .entries = 500,
               .bytes = 123456,
               .max_bytes = 10737418240,
               .full = false};
  NodeStatus::Peer& peer = p.peers.emplace_back();
  peer.name = "node2";
  peer.connected = true;
  peer.lag_entries = 2;
  peer.last_seen = kNow - 1;
  return s;
}

// A secondary following its primary: applying, 0.3 s behind, the primary heard 0.2 s ago.
NodeStatus FollowingSecondary() {
  NodeStatus s;
  s.role = "secondary";
  s.name = "node2";
  s.pid = 77;
  s.state = "running";
  s.updated_at = kNow - 0.5;
  NodeStatus::Secondary& sec = s.secondary.emplace();
  sec.primary = "tcp://10.0.0.1:7700";
  sec.receiver_state = "connected";
  sec.applier_state = "applying";
  sec.connected = true;
  sec.last_heard = kNow - 0.2;
  sec.received_seq = 500;
  sec.primary_last_seq = 500;
  sec.applied_seq = 498;
  sec.applied_gtid = "0-1-498";
  sec.source_position = "binlog.000003:4500";
  sec.lag = {.transactions = 2, .bytes = 2048, .seconds = 0.3};
  return s;
}

HealthInput At(NodeStatus status, double now = kNow) { return {.status = status, .now = now}; }

// The answer's body, parsed; a test failure when it is not a JSON object.
rapidjson::Document Body(const HealthAnswer& a) {
  rapidjson::Document d;
  d.Parse(a.json.data(), a.json.size());
  EXPECT_FALSE(d.HasParseError()) << a.json;
  EXPECT_TRUE(d.IsObject()) << a.json;
  return d;
}

std::string Reason(const HealthAnswer& a) {
  rapidjson::Document d = Body(a);
  if (!d.IsObject() || !d.HasMember("reason") || !d["reason"].IsString()) return "<no reason>";
  return d["reason"].GetString();
}

TEST(PrimaryHealthTest, ARunningPrimaryIsFitAndShowsItsPositions) {
  HealthAnswer a = PrimaryHealth(At(RunningPrimary()), {});
  EXPECT_EQ(a.code, 200) << a.json;
  rapidjson::Document d = Body(a);
  EXPECT_TRUE(d["healthy"].GetBool());
  EXPECT_STREQ(d["reason"].GetString(), "");
  EXPECT_STREQ(d["node"].GetString(), "node1");
  EXPECT_STREQ(d["role"].GetString(), "primary");
  EXPECT_STREQ(d["state"].GetString(), "running");
  EXPECT_DOUBLE_EQ(d["status_age_seconds"].GetDouble(), 0.5);
  EXPECT_STREQ(d["capture_state"].GetString(), "running");
  EXPECT_STREQ(d["binlog_position"].GetString(), "binlog.000003:4711");
  EXPECT_STREQ(d["gtid"].GetString(), "0-1-500");
  EXPECT_EQ(d["journal"]["bytes"].GetUint64(), 123456u);
  EXPECT_FALSE(d["journal"]["full"].GetBool());
  ASSERT_EQ(d["peers"].Size(), 1u);
  EXPECT_STREQ(d["peers"][0]["name"].GetString(), "node2");
  EXPECT_EQ(d["peers"][0]["lag_entries"].GetUint64(), 2u);
}

TEST(PrimaryHealthTest, ASecondaryIsNotThePrimary) {
  HealthAnswer a = PrimaryHealth(At(FollowingSecondary()), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a), "this node is not the primary (role secondary)");
  EXPECT_FALSE(Body(a).HasMember("capture_state"));
}

TEST(PrimaryHealthTest, AFencedOldPrimaryIsNotFit) {
  NodeStatus s = RunningPrimary();
  s.state = "fenced";
  s.fenced = true;
  s.fenced_by = "node node2 knows epoch 3, and this node is primary at epoch 2";
  HealthAnswer a = PrimaryHealth(At(s), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a), "this node is a fenced old primary: " + s.fenced_by);
  EXPECT_TRUE(Body(a)["fenced"].GetBool());
  EXPECT_EQ(Body(a)["epoch"].GetUint64(), 2u);
}

TEST(PrimaryHealthTest, NotFitUntilEveryPeerWasAskedWhetherItIsPrimary) {
  NodeStatus s = RunningPrimary();
  s.peers_asked = false;
  HealthAnswer a = PrimaryHealth(At(s), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a), "the other nodes were not all asked yet whether one of them is primary");
}

TEST(PrimaryHealthTest, AFullJournalIsNotFit) {
  NodeStatus s = RunningPrimary();
  s.state = "paused";
  s.primary->capture_state = "journal full";
  s.primary->journal.full = true;
  s.primary->journal.bytes = 10737418240;
  HealthAnswer a = PrimaryHealth(At(s), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a),
            "the journal is full (10737418240 of 10737418240 bytes): capture pauses until the "
            "secondaries catch up");
  EXPECT_TRUE(Body(a)["journal"]["full"].GetBool());
}

TEST(PrimaryHealthTest, ACaptureThatDoesNotRunIsNotFitAndSaysWhy) {
  for (const char* state : {"connecting", "failed", "stopped", "finished"}) {
    NodeStatus s = RunningPrimary();
    s.primary->capture_state = state;
    s.error = "connect 127.0.0.1:3306: Connection refused";
    HealthAnswer a = PrimaryHealth(At(s), {});
    EXPECT_EQ(a.code, 503) << state;
    EXPECT_EQ(Reason(a), std::string("capture is ") + state +
                             ", not running: connect 127.0.0.1:3306: Connection refused");
  }
}

TEST(PrimaryHealthTest, AFailedFileCaptureLeavesThePrimaryFit) {
  // The node still holds the newest data: moving users away would make it worse.
  NodeStatus s = RunningPrimary();
  s.state = "error";
  s.error = "files: inotify_init1: Too many open files";
  HealthAnswer a = PrimaryHealth(At(s), {});
  EXPECT_EQ(a.code, 200) << a.json;
  EXPECT_STREQ(Body(a)["error"].GetString(), "files: inotify_init1: Too many open files");
}

TEST(PrimaryHealthTest, AStaleStatusIsNotFit) {
  NodeStatus s = RunningPrimary();
  HealthAnswer fresh = PrimaryHealth(At(s, s.updated_at + 5), {});
  EXPECT_EQ(fresh.code, 200) << "5 s is the limit, not past it";
  HealthAnswer stale = PrimaryHealth(At(s, s.updated_at + 7.25), {});
  EXPECT_EQ(stale.code, 503);
  EXPECT_EQ(Reason(stale),
            "the daemon's main loop last reported 7.2 s ago (limit 5 s): it does not run");
}

TEST(PrimaryHealthTest, NoStatusYetIsStarting) {
  HealthAnswer a = PrimaryHealth({.now = kNow}, {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(
      a.json,
      R"({"healthy":false,"reason":"starting: the daemon's main loop has not reported yet"})");
}

TEST(PrimaryHealthTest, EveryFailedConditionIsListed) {
  NodeStatus s = RunningPrimary();
  s.primary->capture_state = "failed";
  HealthAnswer a = PrimaryHealth(At(s, s.updated_at + 60), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a),
            "the daemon's main loop last reported 60.0 s ago (limit 5 s): it does not run; "
            "capture is failed, not running");
}

// A primary whose database does not take writes is no primary for the switch.
TEST(PrimaryHealthTest, AReadOnlyOrUnknownDatabaseIsNotFit) {
  NodeStatus s = RunningPrimary();
  s.read_only = true;
  HealthAnswer a = PrimaryHealth(At(s), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_NE(Reason(a).find("the database is read-only (read_only=ON)"), std::string::npos)
      << Reason(a);
  s.read_only = false;
  s.read_only_problem = "Can't connect to server on '127.0.0.1'";
  a = PrimaryHealth(At(s), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a),
            "the database's read_only is not known: Can't connect to server on '127.0.0.1'");
}

TEST(SecondaryHealthTest, AFollowingSecondaryIsFitAndShowsItsLag) {
  HealthAnswer a = SecondaryHealth(At(FollowingSecondary()), {});
  EXPECT_EQ(a.code, 200) << a.json;
  rapidjson::Document d = Body(a);
  EXPECT_TRUE(d["healthy"].GetBool());
  EXPECT_STREQ(d["node"].GetString(), "node2");
  EXPECT_STREQ(d["role"].GetString(), "secondary");
  EXPECT_STREQ(d["applier_state"].GetString(), "applying");
  EXPECT_STREQ(d["receiver_state"].GetString(), "connected");
  EXPECT_DOUBLE_EQ(d["primary_heard_seconds_ago"].GetDouble(), 0.2);
  EXPECT_EQ(d["applied_seq"].GetUint64(), 498u);
  EXPECT_EQ(d["primary_last_seq"].GetUint64(), 500u);
  EXPECT_STREQ(d["applied_gtid"].GetString(), "0-1-498");
  EXPECT_EQ(d["lag"]["transactions"].GetUint64(), 2u);
  EXPECT_DOUBLE_EQ(d["lag"]["seconds"].GetDouble(), 0.3);
  EXPECT_DOUBLE_EQ(d["max_lag_seconds"].GetDouble(), 10);
  EXPECT_DOUBLE_EQ(d["peer_timeout_seconds"].GetDouble(), 10);
}

TEST(SecondaryHealthTest, ACaughtUpWaitingApplierIsFit) {
  NodeStatus s = FollowingSecondary();
  s.secondary->applier_state = "waiting";
  s.secondary->lag = {};
  EXPECT_EQ(SecondaryHealth(At(s), {}).code, 200);
}

TEST(SecondaryHealthTest, ThePrimaryIsNotASecondary) {
  HealthAnswer a = SecondaryHealth(At(RunningPrimary()), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a), "this node is not a secondary (role primary)");
}

TEST(SecondaryHealthTest, LagOverTheLimitIsNotFit) {
  NodeStatus s = FollowingSecondary();
  s.secondary->lag.seconds = 12.5;
  HealthAnswer a = SecondaryHealth(At(s), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a), "the lag is 12.5 s, over 10 s");
  // The limit is the caller's (a request's max_lag_seconds).
  EXPECT_EQ(SecondaryHealth(At(s), {.max_lag_seconds = 12.5}).code, 200);
  EXPECT_EQ(SecondaryHealth(At(s), {.max_lag_seconds = 30}).code, 200);
  EXPECT_EQ(SecondaryHealth(At(FollowingSecondary()), {.max_lag_seconds = 0.25}).code, 503);
}

TEST(SecondaryHealthTest, APrimaryNotHeardFromRecentlyIsNotFit) {
  NodeStatus s = FollowingSecondary();
  s.secondary->last_heard = kNow - 10;
  EXPECT_EQ(SecondaryHealth(At(s), {}).code, 200) << "10 s is the limit, not past it";
  s.secondary->last_heard = kNow - 11;
  HealthAnswer a = SecondaryHealth(At(s), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a), "the primary was last heard from 11.0 s ago (limit 10 s)");
  EXPECT_EQ(SecondaryHealth(At(s), {.peer_timeout_seconds = 20}).code, 200);

  s.secondary->last_heard = 0;
  a = SecondaryHealth(At(s), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a), "the primary has not been heard from since the daemon started");
  EXPECT_DOUBLE_EQ(Body(a)["primary_heard_seconds_ago"].GetDouble(), -1);
}

TEST(SecondaryHealthTest, AnApplierThatDoesNotRunIsNotFitAndSaysWhy) {
  for (const char* state : {"stopped", "connecting", "retrying", "error"}) {
    NodeStatus s = FollowingSecondary();
    s.secondary->applier_state = state;
    s.error = "apply seq 499: Table 'app.t' doesn't exist";
    HealthAnswer a = SecondaryHealth(At(s), {});
    EXPECT_EQ(a.code, 503) << state;
    EXPECT_EQ(Reason(a), std::string("the applier is ") + state +
                             ", not running: apply seq 499: Table 'app.t' doesn't exist");
  }
}

TEST(SecondaryHealthTest, ABootstrappingSecondaryIsNotFit) {
  NodeStatus s = FollowingSecondary();
  s.state = "bootstrapping";
  HealthAnswer a = SecondaryHealth(At(s), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a), "a bootstrap is under way: this node's copy is not complete");
}

TEST(SecondaryHealthTest, TablesStillEnteringTheSetAreNotFit) {
  NodeStatus s = FollowingSecondary();
  s.secondary->entering = {"app.y", "app.x"};
  HealthAnswer a = SecondaryHealth(At(s), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_EQ(Reason(a), "tables entering the set are not copied yet: app.y, app.x");
}

TEST(SecondaryHealthTest, AStaleStatusIsNotFit) {
  NodeStatus s = FollowingSecondary();
  HealthAnswer a = SecondaryHealth(At(s, s.updated_at + 30), {});
  EXPECT_EQ(a.code, 503);
  EXPECT_NE(Reason(a).find("the daemon's main loop last reported 30.0 s ago"), std::string::npos)
      << Reason(a);
}

TEST(ReadyHealthTest, AFollowingSecondaryThatReceivedAllThePrimaryHadIsReady) {
  HealthAnswer a = ReadyHealth(At(FollowingSecondary()), {});
  EXPECT_EQ(a.code, 200) << a.json;
  EXPECT_EQ(Reason(a), "");
  EXPECT_EQ(Body(a)["received_seq"].GetUint64(), 500u);
  EXPECT_EQ(Body(a)["applied_seq"].GetUint64(), 498u);  // applied before it serves: no loss
  EXPECT_EQ(ReadyHealth({.now = kNow}, {}).code, 503);
}

TEST(ReadyHealthTest, NotReadyWhenPromotingWouldLoseOrRefuse) {
  NodeStatus ahead = FollowingSecondary();
  ahead.secondary->primary_last_seq = 520;
  EXPECT_EQ(Reason(ReadyHealth(At(ahead), {})),
            "the primary's journal held 20 entries more than this node received when it was last "
            "heard from: promote would refuse (or lose them with --force)");
  NodeStatus failed = FollowingSecondary();
  failed.state = "error";
  failed.error = "apply seq 499: Duplicate entry";
  failed.secondary->applier_state = "error";
  EXPECT_EQ(Reason(ReadyHealth(At(failed), {})),
            "the applier is error: what was received cannot all be applied: apply seq 499: "
            "Duplicate entry");
  NodeStatus copying = FollowingSecondary();
  copying.state = "bootstrapping";
  EXPECT_EQ(ReadyHealth(At(copying), {}).code, 503);
  NodeStatus entering = FollowingSecondary();
  entering.secondary->entering = {"app.new"};
  EXPECT_EQ(ReadyHealth(At(entering), {}).code, 503);
  EXPECT_EQ(Reason(ReadyHealth(At(RunningPrimary()), {})),
            "this node is not a secondary (role primary)");
}

TEST(LiveHealthTest, AFreshStatusIsLiveWhateverTheNodesState) {
  NodeStatus s = FollowingSecondary();
  s.state = "error";
  s.secondary->applier_state = "error";
  HealthAnswer a = LiveHealth(At(s), {});
  EXPECT_EQ(a.code, 200) << a.json;
  EXPECT_EQ(Body(a)["pid"].GetInt64(), 77);
}

TEST(LiveHealthTest, NoStatusOrAStaleOneIsNotLive) {
  HealthAnswer none = LiveHealth({.now = kNow}, {});
  EXPECT_EQ(none.code, 503);
  EXPECT_EQ(Reason(none), "starting: the daemon's main loop has not reported yet");

  NodeStatus s = RunningPrimary();
  EXPECT_EQ(LiveHealth(At(s, s.updated_at + 4.9), {}).code, 200);
  HealthAnswer stale = LiveHealth(At(s, s.updated_at + 5.5), {});
  EXPECT_EQ(stale.code, 503);
  EXPECT_EQ(Reason(stale),
            "the daemon's main loop last reported 5.5 s ago (limit 5 s): it does not run");
  EXPECT_EQ(LiveHealth(At(s, s.updated_at + 5.5), {.loop_timeout_seconds = 6}).code, 200);
}

}  // namespace
}  // namespace replsync::health
