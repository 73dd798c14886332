#include "sync/node/node_status.h"

#include <gtest/gtest.h>

#include <string>

namespace replsync {
namespace {

NodeStatus SamplePrimary() {
  NodeStatus s;
  s.role = "primary";
  s.name = "node1";
  s.pid = 4242;
  s.started_at = 1795301485.125;
  s.updated_at = 1795301490.5;
  s.state = "running";
  NodeStatus::Primary& p = s.primary.emplace();
  p.capture_state = "running";
  p.source = "server 127.0.0.1:3306";
  p.binlog_position = "binlog.000003:4711";
  p.read_position = "binlog.000003:4800";
  p.gtid = "0-1-500";
  p.lag_seconds = 2;
  p.captured = {.transactions = 500, .skipped_transactions = 3, .rows = 12000, .bytes = 3456789};
  p.journal = {.first_seq = 1,
               .last_seq = 500,
               .entries = 500,
               .bytes = 123456,
               .max_bytes = 10737418240,
               .full = false};
  p.files = NodeStatus::FileCapture{.root = "/srv/repo",
                                    .state = "watching",
                                    .files_pending = 3,
                                    .bytes_pending = 40960,
                                    .last_rescan = 1795301485,
                                    .last_rescan_reason = "start",
                                    .rescans = 1,
                                    .watches = 120,
                                    .changes_journaled = 5106,
                                    .literal_bytes = 227540992,
                                    .copied_bytes = 50331548,
                                    .abandoned_reads = 0,
                                    .resyncs_requested = 1};
  p.endpoint = "tcp://0.0.0.0:7700";
  p.entries_sent = 498;
  p.bytes_sent = 100000;
  p.bad_frames = 0;
  p.abandoned_file_parts = 0;
  p.refused_requests = 2;
  p.refused_peers = 1;
  p.last_refused_peer = "refused 10.0.0.9: its key K is not in [peers]";
  p.last_refused_peer_at = 1795301489.5;
  p.peers.push_back({.name = "node2",
                     .connected = true,
                     .durable_seq = 500,
                     .applied_seq = 498,
                     .sent_seq = 500,
                     .lag_entries = 2,
                     .last_seen = 1795301490.25,
                     .ever_connected = true,
                     .last_error = ""});
  s.transport = "curve";
  return s;
}

NodeStatus SampleSecondary() {
  NodeStatus s;
  s.role = "secondary";
  s.name = "node2";
  s.pid = 77;
  s.started_at = 1795301485.0;
  s.updated_at = 1795301490.75;
  s.state = "error";
  s.error = "apply seq 499: Duplicate entry '1' for key 'PRIMARY'";
  NodeStatus::Secondary& sec = s.secondary.emplace();
  sec.primary = "tcp://10.0.0.1:7700";
  sec.receiver_state = "connected";
  sec.applier_state = "error";
  sec.connected = true;
  sec.last_heard = 1795301490.5;
  sec.received_seq = 500;
  sec.primary_last_seq = 500;
  sec.applied_seq = 498;
  sec.applied_gtid = "0-1-498";
  sec.source_position = "binlog.000003:4500";
  sec.transactions_applied = 498;
  sec.rows_applied = 11950;
  sec.apply_workers = 4;
  sec.parallel_applied = 470;
  sec.serial_fallbacks = 1;
  sec.waiting_for = "";
  sec.files = {.root = "/srv/repo",
               .changes_applied = 5106,
               .batches = 12,
               .resync_pending = 0,
               .changes_refused = 1};
  sec.lag = {.transactions = 2, .bytes = 2048, .seconds = 0.5};
  sec.relay = {.first_seq = 499, .last_seq = 500, .entries = 2, .bytes = 2048};
  sec.reconnects = 3;
  sec.entries_refused = 4;
  sec.primary_refusal =
      "the peer at tcp://10.0.0.1:7700 is not the configured primary: key mismatch";
  sec.entering = {"app.y", "app.x"};
  s.transport = "insecure";
  return s;
}

// The bytes replsyncd wrote before NodeStatus owned them: key order, no spaces, integers as
// integers, times and lag as doubles. Readers (tests, scripts) match on this text.
TEST(NodeStatusTest, PrimaryJsonKeepsTheDaemonsBytes) {
  EXPECT_EQ(
      SamplePrimary().ToJson(),
      R"({"version":1,"role":"primary","name":"node1","pid":4242,"started_at":1795301485.125,)"
      R"("updated_at":1795301490.5,"state":"running","error":"","transport":"curve",)"
      R"("epoch":0,"fenced":false,"fenced_by":"","peers_asked":false,"read_only":false,)"
      R"("read_only_problem":"","primary":{)"
      R"("capture_state":"running","source":"server 127.0.0.1:3306",)"
      R"("binlog_position":"binlog.000003:4711","read_position":"binlog.000003:4800",)"
      R"("gtid":"0-1-500","lag_seconds":2,"captured":{"transactions":500,)"
      R"("skipped_transactions":3,"rows":12000,"bytes":3456789},"journal":{"first_seq":1,)"
      R"("last_seq":500,"entries":500,"bytes":123456,"max_bytes":10737418240,"full":false},)"
      R"("files":{"root":"/srv/repo","state":"watching","files_pending":3,"bytes_pending":40960,)"
      R"("last_rescan":1795301485,"last_rescan_reason":"start","rescans":1,"watches":120,)"
      R"("changes_journaled":5106,"literal_bytes":227540992,"copied_bytes":50331548,)"
      R"("abandoned_reads":0,"resyncs_requested":1},"endpoint":"tcp://0.0.0.0:7700",)"
      R"("entries_sent":498,"bytes_sent":100000,"bad_frames":0,"abandoned_file_parts":0,"refused_requests":2,)"
      R"("refused_peers":1,"last_refused_peer":"refused 10.0.0.9: its key K is not in [peers]",)"
      R"("last_refused_peer_at":1795301489.5,)"
      R"("peers":[{"name":"node2","connected":true,"durable_seq":500,"applied_seq":498,)"
      R"("sent_seq":500,"lag_entries":2,"last_seen":1795301490.25,"ever_connected":true,)"
      R"("last_error":""}]}})");
}

TEST(NodeStatusTest, TheRoleStateRoundTrips) {
  NodeStatus s = SamplePrimary();
  s.epoch = 3;
  s.fenced = true;
  s.fenced_by = "node node2 knows epoch 4, and this node is primary at epoch 3";
  s.peers_asked = true;
  s.read_only = true;
  s.read_only_problem = "the account lacks READ_ONLY ADMIN";
  Result<NodeStatus> back = NodeStatus::Parse(s.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
  EXPECT_NE(s.ToJson().find(R"("epoch":3,"fenced":true,)"), std::string::npos);
}

TEST(NodeStatusTest, SecondaryJsonKeepsTheDaemonsBytes) {
  EXPECT_EQ(
      SampleSecondary().ToJson(),
      R"({"version":1,"role":"secondary","name":"node2","pid":77,"started_at":1795301485.0,)"
      R"("updated_at":1795301490.75,"state":"error",)"
      R"("error":"apply seq 499: Duplicate entry '1' for key 'PRIMARY'","transport":"insecure",)"
      R"("epoch":0,"fenced":false,"fenced_by":"","peers_asked":false,"read_only":false,)"
      R"("read_only_problem":"","secondary":{)"
      R"("primary":"tcp://10.0.0.1:7700","receiver_state":"connected","applier_state":"error",)"
      R"("connected":true,"last_heard":1795301490.5,"received_seq":500,"primary_last_seq":500,)"
      R"("applied_seq":498,)"
      R"("applied_gtid":"0-1-498","source_position":"binlog.000003:4500",)"
      R"("transactions_applied":498,"rows_applied":11950,"apply_workers":4,)"
      R"("parallel_applied":470,"serial_fallbacks":1,"waiting_for":"","files":{)"
      R"("root":"/srv/repo","changes_applied":5106,"batches":12,"resync_pending":0,"changes_refused":1},)"
      R"("lag":{"transactions":2,"bytes":2048,"seconds":0.5},"relay":{"first_seq":499,)"
      R"("last_seq":500,"entries":2,"bytes":2048},"reconnects":3,"entries_refused":4,)"
      R"("primary_refusal":"the peer at tcp://10.0.0.1:7700 is not the configured primary: key mismatch",)"
      R"("entering":["app.y","app.x"]}})");
}

TEST(NodeStatusTest, PrimaryRoundTrips) {
  const NodeStatus s = SamplePrimary();
  Result<NodeStatus> back = NodeStatus::Parse(s.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
  EXPECT_EQ(back->ToJson(), s.ToJson());
}

TEST(NodeStatusTest, APrimaryThatServedABootstrapRoundTripsAndShowsIt) {
  NodeStatus s = SamplePrimary();
  s.primary->bootstrap.push_back({.name = "node2",
                                  .rounds_open = 1,
                                  .rounds_begun = 3,
                                  .chunks = 40,
                                  .rows = 50000,
                                  .bytes = 3000000,
                                  .wire_bytes = 700000,
                                  .last_error = "a DDL came"});
  const std::string json = s.ToJson();
  EXPECT_NE(json.find(R"("bootstrap":[{"name":"node2","rounds_open":1,"rounds_begun":3,)"
                      R"("chunks":40,"rows":50000,"bytes":3000000,"wire_bytes":700000,)"
                      R"("last_error":"a DDL came"}])"),
            std::string::npos)
      << json;
  Result<NodeStatus> back = NodeStatus::Parse(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
}

TEST(NodeStatusTest, SecondaryRoundTrips) {
  const NodeStatus s = SampleSecondary();
  Result<NodeStatus> back = NodeStatus::Parse(s.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
  EXPECT_EQ(back->ToJson(), s.ToJson());
}

TEST(NodeStatusTest, SecondaryWithABootstrapRoundTrips) {
  NodeStatus s = SampleSecondary();
  NodeStatus::Bootstrap& b = s.secondary->bootstrap.emplace();
  b.token = "9f2c";
  b.phase = "copying";
  b.resync = true;
  b.start_position = "binlog.000003:4500";
  b.tables_total = 12;
  b.tables_done = 5;
  b.rows_done = 400000;
  b.rows_estimated = 1000000;
  b.bytes_done = 80 << 20;
  b.bytes_estimated = 200 << 20;
  b.bytes_per_second = 31.5e6;
  b.eta_seconds = 4;
  b.round = 3;
  b.snapshot_age_seconds = 2.5;
  b.lock_ms = 7;
  b.files_total = 10;
  b.files_done = 2;
  b.chunks_loaded = 9;
  b.chunks_equal = 31;
  b.rows_equal = 310000;
  b.refused = {"app: 12 tables, about 50000 rows", "repository: 200 files"};
  b.error = "";
  b.exit_code = -1;
  b.started_at = 1795301485.5;
  Result<NodeStatus> back = NodeStatus::Parse(s.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
  ASSERT_TRUE(back->secondary->bootstrap.has_value());
  EXPECT_EQ(back->secondary->bootstrap->refused.size(), 2u);
  EXPECT_NE(s.ToJson().find(R"("bootstrap":{"token":"9f2c","phase":"copying")"), std::string::npos);
  EXPECT_NE(s.ToJson().find(R"("chunks_loaded":9,"chunks_equal":31,"rows_equal":310000)"),
            std::string::npos)
      << s.ToJson();
  EXPECT_EQ(back->secondary->bootstrap->rows_equal, 310000u);
}

TEST(NodeStatusTest, PrimaryWithoutRepositoryHasNoFilesObject) {
  NodeStatus s = SamplePrimary();
  s.primary->files.reset();
  s.primary->peers.clear();
  const std::string json = s.ToJson();
  EXPECT_EQ(json.find("\"files\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"peers\":[]"), std::string::npos) << json;
  Result<NodeStatus> back = NodeStatus::Parse(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
}

TEST(NodeStatusTest, UnknownKeysAreIgnoredAndMissingKeysKeepDefaults) {
  Result<NodeStatus> s =
      NodeStatus::Parse(R"({"version":1,"role":"secondary","future":{"x":[1,2]},"running":true,)"
                        R"("secondary":{"applied_seq":7,"lag":{"seconds":1}}})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->role, "secondary");
  EXPECT_FALSE(s->primary.has_value());
  ASSERT_TRUE(s->secondary.has_value());
  EXPECT_EQ(s->secondary->applied_seq, 7u);
  EXPECT_EQ(s->secondary->lag.seconds, 1.0);  // an integer where a double is expected is read
  EXPECT_EQ(s->secondary->received_seq, 0u);
  EXPECT_EQ(s->state, "");
}

TEST(NodeStatusTest, NotAnObjectIsCorruption) {
  for (const char* text : {"", "{", "[1]", "\"running\"", "{\"state\":\"running\""}) {
    Result<NodeStatus> s = NodeStatus::Parse(text);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_TRUE(s.status().IsCorruption()) << text;
  }
}

TEST(NodeStatusTest, WrongTypeIsCorruptionNamingTheKey) {
  Result<NodeStatus> s = NodeStatus::Parse(R"({"primary":{"journal":{"last_seq":"500"}}})");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().IsCorruption());
  EXPECT_NE(s.status().message().find("primary.journal.last_seq"), std::string::npos)
      << s.status().message();

  s = NodeStatus::Parse(R"({"primary":{"peers":[{"name":"a"},7]}})");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("primary.peers[]"), std::string::npos)
      << s.status().message();

  s = NodeStatus::Parse(R"({"secondary":{"apply_workers":-1.5}})");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("secondary.apply_workers"), std::string::npos)
      << s.status().message();
}

// `replsync status --json`: the file's keys, then last_verify, running and status_age_seconds,
// indented by two spaces (tests look for "\"exit_code\": 1").
TEST(NodeStatusTest, ReportAddsLastVerifyRunningAndAge) {
  NodeStatus s = SampleSecondary();
  const std::string report =
      StatusReportJson(s, R"({"at":1795301400.5,"exit_code":1,"what":"all"})", true, 0.25);
  EXPECT_EQ(report.rfind("{\n  \"version\": 1,\n  \"role\": \"secondary\",", 0), 0u) << report;
  const size_t verify = report.find(
      "\"last_verify\": {\n    \"at\": 1795301400.5,\n"
      "    \"exit_code\": 1,");
  const size_t running = report.find("\"running\": true,");
  const size_t age = report.find("\"status_age_seconds\": 0.25\n}");
  ASSERT_NE(verify, std::string::npos) << report;
  ASSERT_NE(running, std::string::npos) << report;
  ASSERT_NE(age, std::string::npos) << report;
  EXPECT_LT(report.find("\"reconnects\": 3"), verify);
  EXPECT_LT(verify, running);
  EXPECT_LT(running, age);
  // The report parses as a status (its extra keys are ignored).
  Result<NodeStatus> back = NodeStatus::Parse(report);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
}

TEST(NodeStatusTest, ReportLeavesOutALastVerifyThatIsNotAnObject) {
  for (const char* last : {"", "not json", "[1]"}) {
    const std::string report = StatusReportJson(SamplePrimary(), last, false, 12.5);
    EXPECT_EQ(report.find("last_verify"), std::string::npos) << last;
    EXPECT_NE(report.find("\"running\": false,\n  \"status_age_seconds\": 12.5\n}"),
              std::string::npos)
        << report;
  }
}

}  // namespace
}  // namespace replsync
