// End to end: the health endpoint ([health] listen) of real replsyncd daemons on a real primary
// and a real following secondary (MariaDB servers started by the harness), asked the way a
// failover switch asks it, with requests written byte for byte (tests/harness/raw_http.h).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "tests/harness/mariadb_server.h"
#include "tests/harness/node_pair_test.h"
#include "tests/harness/raw_http.h"

namespace replsync {
namespace {

using testing::HttpReply;

class HealthEndpointTest : public testing::NodePairTest {
 protected:
  HealthEndpointTest() : NodePairTest({"app"}, "health") { with_health_ = true; }

  std::string HealthSettings(const std::string&) override {
    // A short peer timeout: the test waits for it once the primary is gone (the primary
    // heartbeats every second).
    return "max_lag_seconds = 30\npeer_timeout_seconds = 5\n";
  }

  // GET `target` from `node`'s endpoint; a failed request fails the test (code 0).
  HttpReply Get(const std::string& node, const std::string& target) {
    Result<HttpReply> reply = testing::HttpGet(health_ports_.at(node), target);
    EXPECT_TRUE(reply.ok()) << node << " " << target << ": " << reply.status().ToString();
    return reply.ok() ? *reply : HttpReply{};
  }

  // Asks until `node`'s answer to `target` has `code` and satisfies `want` (the answers follow
  // the statuses the daemon takes about once a second); the last answer, and a test failure
  // with it after `timeout`.
  HttpReply WaitForCode(const std::string& node, const std::string& target, int code,
                        std::chrono::seconds timeout = std::chrono::seconds(30),
                        const std::function<bool(const rapidjson::Document&)>& want = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Result<HttpReply> reply = Status::Internal("not asked");
    while (std::chrono::steady_clock::now() < deadline) {
      reply = testing::HttpGet(health_ports_.at(node), target);
      if (reply.ok() && reply->code == code) {
        rapidjson::Document d;
        d.Parse(reply->body.c_str());
        if (!want || (d.IsObject() && want(d))) return *reply;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << node << " " << target << " did not answer " << code << " as wanted in "
                  << timeout.count() << " s; last: "
                  << (reply.ok() ? fmt::format("{} {}", reply->code, reply->body)
                                 : reply.status().ToString())
                  << "\n"
                  << Tail(node);
    return reply.ok() ? *reply : HttpReply{};
  }

  static rapidjson::Document Json(const HttpReply& reply) {
    rapidjson::Document d;
    d.Parse(reply.body.c_str());
    EXPECT_TRUE(d.IsObject()) << reply.body;
    return d;
  }
};

TEST_F(HealthEndpointTest, APrimaryAndItsFollowingSecondaryAnswerWhatTheSwitchAsks) {
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Sql(*primary_, "CREATE DATABASE app");
  Sql(*primary_, "CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))");
  Sql(*primary_, "INSERT INTO app.t VALUES (1, 'one'), (2, 'two')");
  WaitSame("SELECT COUNT(*) FROM app.t");

  // Both daemons' loops run.
  for (const char* node : {"primary", "secondary"}) {
    HttpReply live = WaitForCode(node, "/health/live", 200);
    EXPECT_EQ(live.headers["content-type"], "application/json");
    EXPECT_EQ(live.headers["cache-control"], "no-store");
    EXPECT_EQ(Json(live)["node"].GetString(), std::string(node));
  }

  // The primary: fit as primary, not as secondary.
  HttpReply primary = WaitForCode("primary", "/health/primary", 200);
  rapidjson::Document p = Json(primary);
  EXPECT_TRUE(p["healthy"].GetBool());
  EXPECT_STREQ(p["role"].GetString(), "primary");
  EXPECT_STREQ(p["capture_state"].GetString(), "running");
  EXPECT_FALSE(p["journal"]["full"].GetBool());
  ASSERT_TRUE(p["peers"].IsArray());
  ASSERT_EQ(p["peers"].Size(), 1u);
  EXPECT_STREQ(p["peers"][0]["name"].GetString(), "secondary");
  HttpReply not_secondary = Get("primary", "/health/secondary");
  EXPECT_EQ(not_secondary.code, 503);
  EXPECT_STREQ(Json(not_secondary)["reason"].GetString(),
               "this node is not a secondary (role primary)");

  // The secondary: fit as secondary, never as primary; its answer shows what it applied (the
  // three transactions above, once a status taken after them is there).
  HttpReply secondary =
      WaitForCode("secondary", "/health/secondary", 200, std::chrono::seconds(30),
                  [](const rapidjson::Document& d) { return d["applied_seq"].GetUint64() >= 3; });
  rapidjson::Document s = Json(secondary);
  EXPECT_STREQ(s["role"].GetString(), "secondary");
  EXPECT_TRUE(std::string(s["applier_state"].GetString()) == "waiting" ||
              std::string(s["applier_state"].GetString()) == "applying")
      << secondary.body;
  EXPECT_GE(s["primary_heard_seconds_ago"].GetDouble(), 0);
  EXPECT_LE(s["primary_heard_seconds_ago"].GetDouble(), 5);
  EXPECT_EQ(s["applied_seq"].GetUint64(), s["primary_last_seq"].GetUint64());
  EXPECT_DOUBLE_EQ(s["max_lag_seconds"].GetDouble(), 30);
  HttpReply not_primary = Get("secondary", "/health/primary");
  EXPECT_EQ(not_primary.code, 503);
  EXPECT_STREQ(Json(not_primary)["reason"].GetString(),
               "this node is not the primary (role secondary)");
  // The status file carries what /health/secondary judged the primary's silence on.
  std::optional<NodeStatus> status = ReadStatus("secondary");
  ASSERT_TRUE(status && status->secondary) << StatusText("secondary");
  EXPECT_GT(status->secondary->last_heard, 0);

  // As switches ask: HEAD (no body), HTTP/1.0 without Host, a lag limit of the request's own.
  Result<HttpReply> head = testing::SendHttp(
      health_ports_.at("primary"), "HEAD /health/primary HTTP/1.0\r\n\r\n", /*head=*/true);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->code, 200);
  EXPECT_EQ(head->body, "");
  Result<HttpReply> http10 = testing::SendHttp(
      health_ports_.at("secondary"), "GET /health/secondary?max_lag_seconds=60 HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(http10.ok()) << http10.status().ToString();
  EXPECT_EQ(http10->code, 200) << http10->body;
  EXPECT_EQ(Get("secondary", "/health/secondary?max_lag_seconds=soon").code, 400);
  // Promotable without losing what it received; the primary is not a candidate.
  EXPECT_EQ(Get("secondary", "/health/ready").code, 200) << Get("secondary", "/health/ready").body;
  EXPECT_EQ(Get("primary", "/health/ready").code, 503);
  EXPECT_EQ(Get("secondary", "/metrics").code, 404);

  // A primary whose database someone made read-only takes no writes: not fit until it is
  // writable again (looked at every 2 s).
  Sql(*primary_, "SET GLOBAL read_only = ON");
  HttpReply read_only = WaitForCode("primary", "/health/primary", 503);
  EXPECT_NE(std::string(Json(read_only)["reason"].GetString())
                .find("the database is read-only (read_only=ON)"),
            std::string::npos)
      << read_only.body;
  Sql(*primary_, "SET GLOBAL read_only = OFF");
  WaitForCode("primary", "/health/primary", 200);

  // The primary's daemon goes away: once it has been silent past peer_timeout_seconds, the
  // secondary is no longer fit as a following secondary, and is still live.
  ASSERT_NO_FATAL_FAILURE(StopDaemon(primary_daemon_, SIGTERM));
  EXPECT_FALSE(testing::ConnectLoopback(health_ports_.at("primary")).ok())
      << "the stopped daemon's endpoint still accepts connections";
  HttpReply silent = WaitForCode("secondary", "/health/secondary", 503, std::chrono::seconds(20));
  EXPECT_NE(std::string(Json(silent)["reason"].GetString()).find("the primary was last heard from"),
            std::string::npos)
      << silent.body;
  EXPECT_EQ(Get("secondary", "/health/live").code, 200);
}

}  // namespace
}  // namespace replsync
