// HealthServer over real sockets on 127.0.0.1, port 0; requests written byte for byte
// (tests/harness/raw_http.h).
#include "sync/health/health_server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <rapidjson/document.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "tests/harness/raw_http.h"

namespace replsync::health {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ConnectLoopback;
using testing::HttpGet;
using testing::HttpReply;
using testing::ReadHttpReply;
using testing::ReadUntilClose;
using testing::SendAll;
using testing::SendHttp;

constexpr char kOkJson[] = R"({"healthy":true,"reason":""})";

std::map<std::string, HealthProvider> TestPaths() {
  std::map<std::string, HealthProvider> paths;
  paths["/ok"] = [](const HealthQuery&) { return HealthAnswer{.code = 200, .json = kOkJson}; };
  paths["/down"] = [](const HealthQuery&) { return ReasonAnswer(503, "down for the test"); };
  paths["/throws"] = [](const HealthQuery&) -> HealthAnswer { throw std::runtime_error("boom"); };
  paths["/empty"] = nullptr;
  paths["/redirect"] = [](const HealthQuery&) { return HealthAnswer{.code = 302, .json = "{}"}; };
  paths["/bad"] = [](const HealthQuery&) { return ReasonAnswer(400, "bad parameter"); };
  // Echoes the query: {"path":..., "params":[[name, value], ...]}.
  paths["/echo"] = [](const HealthQuery& q) {
    std::string json = R"({"path":")" + q.path + R"(","params":[)";
    bool first = true;
    for (const auto& [name, value] : q.params) {
      json += std::string(first ? "" : ",") + "[\"" + name + "\",\"" + value + "\"]";
      first = false;
    }
    return HealthAnswer{.code = 200, .json = json + "]}"};
  };
  return paths;
}

class HealthServerTest : public ::testing::Test {
 protected:
  // Starts a server with `options` (host 127.0.0.1, port 0) and the test's paths.
  void StartServer(HealthServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<HealthServer>(options, TestPaths());
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  HttpReply Get(const std::string& target) {
    Result<HttpReply> reply = HttpGet(port_, target);
    EXPECT_TRUE(reply.ok()) << target << ": " << reply.status().ToString();
    return reply.ok() ? *reply : HttpReply{};
  }

  // A connection to the server, or a test failure.
  UniqueFd Connect() {
    Result<UniqueFd> fd = ConnectLoopback(port_);
    EXPECT_TRUE(fd.ok()) << fd.status().ToString();
    return fd.ok() ? std::move(fd).value() : UniqueFd();
  }

  std::unique_ptr<HealthServer> server_;
  uint16_t port_ = 0;
};

TEST_F(HealthServerTest, GetAnswersTheProvidersCodeAndJson) {
  StartServer();
  HttpReply ok = Get("/ok");
  EXPECT_EQ(ok.code, 200);
  EXPECT_EQ(ok.body, kOkJson);
  EXPECT_EQ(ok.headers["content-type"], "application/json");
  EXPECT_EQ(ok.headers["cache-control"], "no-store");

  HttpReply down = Get("/down");
  EXPECT_EQ(down.code, 503);
  EXPECT_EQ(down.body, R"({"healthy":false,"reason":"down for the test"})");
  EXPECT_EQ(down.headers["content-type"], "application/json");
  EXPECT_EQ(down.headers["cache-control"], "no-store");

  HttpReply bad = Get("/bad");
  EXPECT_EQ(bad.code, 400);
  EXPECT_EQ(bad.body, R"({"healthy":false,"reason":"bad parameter"})");
}

TEST_F(HealthServerTest, HeadHasTheSameCodeAndHeadersAndNoBody) {
  StartServer();
  for (const char* path : {"/ok", "/down"}) {
    const HttpReply get = Get(path);
    UniqueFd fd = Connect();
    ASSERT_TRUE(SendAll(fd.get(), std::string("HEAD ") + path +
                                      " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .ok());
    // Everything the server sends before it closes: the headers and not one byte more.
    Result<std::string> all = ReadUntilClose(fd.get());
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    EXPECT_EQ(all->find("\r\n\r\n"), all->size() - 4) << *all;
    EXPECT_EQ(all->substr(0, 12), "HTTP/1.1 " + std::to_string(get.code)) << *all;
    EXPECT_NE(all->find("Content-Length: " + std::to_string(get.body.size()) + "\r\n"),
              std::string::npos)
        << *all;
    EXPECT_NE(all->find("Content-Type: application/json\r\n"), std::string::npos) << *all;
    EXPECT_NE(all->find("Cache-Control: no-store\r\n"), std::string::npos) << *all;
  }
}

TEST_F(HealthServerTest, Http10WithoutHostIsAnsweredAndClosed) {
  StartServer();
  UniqueFd fd = Connect();
  ASSERT_TRUE(SendAll(fd.get(), "GET /ok HTTP/1.0\r\n\r\n").ok());
  Result<std::string> all = ReadUntilClose(fd.get());  // HTTP/1.0: the server closes
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->substr(0, 15), "HTTP/1.1 200 OK") << *all;
  EXPECT_EQ(all->substr(all->size() - std::string(kOkJson).size()), kOkJson) << *all;
}

TEST_F(HealthServerTest, UnknownPathIs404WithAJsonReason) {
  StartServer();
  HttpReply r = Get("/health/nothing");
  EXPECT_EQ(r.code, 404);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  ASSERT_TRUE(d.IsObject()) << r.body;
  EXPECT_EQ(std::string(d["reason"].GetString()).rfind("no such path: /health/nothing (paths: ", 0),
            0u)
      << r.body;
  EXPECT_EQ(Get("/").code, 404);
  EXPECT_EQ(Get("/ok/").code, 404);
}

TEST_F(HealthServerTest, OtherMethodsAre405AndTheConnectionIsClosedAfterTheAnswer) {
  StartServer();
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
    UniqueFd fd = Connect();
    // A body the server never reads, and a kept-alive connection asked for: the server must
    // close rather than read the body as the next request.
    ASSERT_TRUE(SendAll(fd.get(), std::string(method) +
                                      " /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n"
                                      "GET /ok HTTP/1.1\r\n\r\n")
                    .ok());
    Result<std::string> all = ReadUntilClose(fd.get());
    ASSERT_TRUE(all.ok()) << method << ": " << all.status().ToString();
    EXPECT_EQ(all->substr(0, 12), "HTTP/1.1 405") << *all;
    EXPECT_NE(all->find("Allow: GET, HEAD\r\n"), std::string::npos) << *all;
    EXPECT_NE(all->find("Connection: close\r\n"), std::string::npos) << *all;
    EXPECT_NE(
        all->find(std::string("\"reason\":\"method ") + method + " is not served: GET or HEAD\""),
        std::string::npos)
        << *all;
    EXPECT_EQ(all->find("HTTP/1.1 200"), std::string::npos) << "the body was read as a request";
  }
}

TEST_F(HealthServerTest, AProviderThatThrowsIsEmptyOrAnswersAnotherCodeGives503) {
  StartServer();
  HttpReply thrown = Get("/throws");
  EXPECT_EQ(thrown.code, 503);
  EXPECT_EQ(thrown.body, R"({"healthy":false,"reason":"the provider of /throws failed: boom"})");
  HttpReply empty = Get("/empty");
  EXPECT_EQ(empty.code, 503);
  EXPECT_EQ(empty.body, R"({"healthy":false,"reason":"/empty has no provider"})");
  HttpReply redirect = Get("/redirect");
  EXPECT_EQ(redirect.code, 503);
  EXPECT_EQ(redirect.body,
            R"({"healthy":false,"reason":"the provider of /redirect answered 302, not 200, 400 )"
            R"(or 503"})");
  EXPECT_FALSE(redirect.has_header("location"));
}

TEST_F(HealthServerTest, TheProviderGetsThePathAndTheDecodedParameters) {
  StartServer();
  HttpReply r = Get("/echo?max_lag_seconds=5&x=a%20b&max_lag_seconds=6");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, R"({"path":"/echo","params":[["max_lag_seconds","5"],["max_lag_seconds","6"],)"
                    R"(["x","a b"]]})");
}

TEST_F(HealthServerTest, RangeRequestsAreAnsweredWhole) {
  StartServer();
  Result<HttpReply> r = SendHttp(
      port_, "GET /ok HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->code, 200);
  EXPECT_EQ(r->body, kOkJson);
  Result<HttpReply> bad = SendHttp(
      port_, "GET /ok HTTP/1.1\r\nHost: x\r\nRange: lines=a-b\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  EXPECT_EQ(bad->code, 400);
  EXPECT_EQ(bad->body, R"({"healthy":false,"reason":"malformed request"})");
}

TEST_F(HealthServerTest, AKeptAliveConnectionServesSeveralRequests) {
  StartServer();
  UniqueFd fd = Connect();
  for (const char* path : {"/ok", "/down", "/ok"}) {
    ASSERT_TRUE(
        SendAll(fd.get(), std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n").ok());
    Result<HttpReply> r = ReadHttpReply(fd.get(), /*head=*/false);
    ASSERT_TRUE(r.ok()) << path << ": " << r.status().ToString();
    EXPECT_EQ(r->code, std::string(path) == "/ok" ? 200 : 503);
  }
}

TEST_F(HealthServerTest, MalformedAndOversizedRequestsAreRefused) {
  StartServer();
  Result<HttpReply> garbage = SendHttp(port_, "HELLO\r\n\r\n");
  ASSERT_TRUE(garbage.ok()) << garbage.status().ToString();
  EXPECT_EQ(garbage->code, 400);
  EXPECT_EQ(garbage->body, R"({"healthy":false,"reason":"malformed request"})");

  Result<HttpReply> long_target = SendHttp(
      port_, "GET /ok?" + std::string(10000, 'a') + " HTTP/1.1\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(long_target.ok()) << long_target.status().ToString();
  EXPECT_EQ(long_target->code, 414);
  EXPECT_EQ(long_target->headers["content-type"], "application/json");

  // Headers past the 16 KiB budget: answered 400 or cut, never served.
  UniqueFd fd = Connect();
  std::string huge = "GET /ok HTTP/1.1\r\n";
  for (int i = 0; i < 400; ++i)
    huge += "X-Filler-" + std::to_string(i) + ": " + std::string(90, 'x') + "\r\n";
  huge += "\r\n";
  (void)SendAll(fd.get(), huge);  // the server may close before it has all of it
  Result<std::string> all = ReadUntilClose(fd.get());
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_TRUE(all->empty() || all->rfind("HTTP/1.1 400", 0) == 0) << all->substr(0, 200);
}

TEST_F(HealthServerTest, AnIdleClientDoesNotHoldTheOtherThread) {
  StartServer({.threads = 2, .idle_timeout = seconds(10)});
  UniqueFd idle = Connect();  // connects, sends nothing: holds one thread for up to 10 s
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Get("/ok").code, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
}

TEST_F(HealthServerTest, IdleClientsAreDisconnectedAtTheIdleTimeoutAndOthersAreServed) {
  StartServer({.threads = 2, .idle_timeout = milliseconds(500)});
  // Both threads taken by clients that send nothing.
  UniqueFd idle1 = Connect();
  UniqueFd idle2 = Connect();
  const auto start = std::chrono::steady_clock::now();
  Result<HttpReply> r = HttpGet(port_, "/ok");  // waits for a thread at most the idle timeout
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->code, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(3));
  for (UniqueFd* fd : {&idle1, &idle2}) {
    Result<std::string> rest = ReadUntilClose(fd->get(), seconds(3));
    ASSERT_TRUE(rest.ok()) << "an idle client was not disconnected: " << rest.status().ToString();
    EXPECT_EQ(*rest, "");
  }
}

TEST_F(HealthServerTest, ASlowClientIsCutAtTheRequestTimeout) {
  StartServer({.request_timeout = milliseconds(500)});
  UniqueFd fd = Connect();
  ASSERT_TRUE(SendAll(fd.get(), "GET /ok HTTP/1.1\r\n").ok());
  // One header byte every 100 ms: each read is quick, the request never ends.
  const auto start = std::chrono::steady_clock::now();
  bool cut = false;
  for (int i = 0; i < 50 && !cut; ++i) {
    cut = !SendAll(fd.get(), "X").ok();
    pollfd p{.fd = fd.get(), .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, 100) > 0) cut = true;  // the server closed (or answered)
  }
  ASSERT_TRUE(cut) << "still connected after 5 s";
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(3));
  Result<std::string> rest = ReadUntilClose(fd.get());
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(rest->find("HTTP/1.1 200"), std::string::npos) << *rest;
}

TEST_F(HealthServerTest, ConnectionsBeyondThePendingBoundAreClosedAtOnce) {
  StartServer({.threads = 1, .max_pending = 1, .idle_timeout = seconds(10)});
  UniqueFd served = Connect();  // taken by the one thread
  std::this_thread::sleep_for(milliseconds(200));
  UniqueFd queued = Connect();  // waits in the queue
  std::this_thread::sleep_for(milliseconds(200));
  UniqueFd refused = Connect();
  Result<std::string> rest = ReadUntilClose(refused.get(), seconds(2));
  ASSERT_TRUE(rest.ok()) << "the connection past the bound was not closed: "
                         << rest.status().ToString();
  EXPECT_EQ(*rest, "");
  // The premise: the queued one is still open (it was queued, not refused).
  pollfd p{.fd = queued.get(), .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the queued connection was closed too";
}

TEST_F(HealthServerTest, StopEndsConnectedClientsPromptly) {
  StartServer({.idle_timeout = seconds(30), .request_timeout = seconds(30)});
  UniqueFd idle = Connect();
  UniqueFd partial = Connect();
  ASSERT_TRUE(SendAll(partial.get(), "GET /ok HTTP/1.1\r\nHost: x\r\n").ok());  // never ends
  UniqueFd queued = Connect();  // both threads are taken: waits in the queue
  std::this_thread::sleep_for(milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(1));
  for (UniqueFd* fd : {&idle, &partial, &queued}) {
    Result<std::string> rest = ReadUntilClose(fd->get(), seconds(1));
    EXPECT_TRUE(rest.ok()) << rest.status().ToString();
  }
  EXPECT_FALSE(ConnectLoopback(port_).ok()) << "still listening after Stop";
  server_->Stop();  // again: nothing to do
}

TEST_F(HealthServerTest, ABoundPortIsRefusedWithTheAddress) {
  StartServer();
  HealthServer second({.host = "127.0.0.1", .port = port_}, TestPaths());
  Status st = second.Start();
  EXPECT_EQ(st.code(), Status::Code::kNetwork);
  EXPECT_EQ(st.message(),
            "bind health endpoint 127.0.0.1:" + std::to_string(port_) + ": Address already in use");
  EXPECT_EQ(Get("/ok").code, 200) << "the first server keeps its port";
}

TEST_F(HealthServerTest, StartsOnceAndStopsWithoutStart) {
  StartServer();
  EXPECT_EQ(server_->Start().code(), Status::Code::kFailedPrecondition);
  HealthServer never({}, TestPaths());
  never.Stop();  // nothing started: nothing to stop; the destructor stops again
  EXPECT_EQ(never.port(), 0);
}

}  // namespace
}  // namespace replsync::health
