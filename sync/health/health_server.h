// HealthServer: the HTTP/1.1 endpoint a failover switch (HAProxy, Apache mod_proxy_hcheck, a
// balancer) and monitoring ask whether this node is fit to serve. It answers a fixed set of
// paths, each from a provider; what the answers mean is the providers' business
// (sync/health/health_monitor.h for replsyncd; schemas/health.md).
//
// cpp-httplib reads requests and writes responses (HTTP/1.0 and 1.1, keep-alive, HEAD, no Host
// needed); this class bounds what a client can hold:
// - `threads` threads answer; at most `max_pending` accepted connections wait for one, and a
//   connection accepted beyond that is closed at once.
// - A connection's first request, and each next one on a kept-alive connection, must begin
//   within `idle_timeout`, and each request must arrive whole and be answered within
//   `request_timeout` from its first byte, in at most `max_request_bytes` (request line and
//   headers); a connection serves at most `max_requests_per_connection` requests. A client that
//   breaks a limit is disconnected (or answered 400/414 first, when the request was cut).
// - GET and HEAD only: any other method gets 405 (`Allow: GET, HEAD`) and the connection is
//   closed after the answer, whatever body the request carried unread. Range requests are
//   answered whole (Range ignored).
//
// Every answer has Content-Type application/json and Cache-Control: no-store. A registered
// path answers with its provider's HealthAnswer: 200, 400 or 503 (any other code the provider
// returns becomes 503, so the switch never sees a 3xx), and 503 {"healthy":false,"reason":...}
// when the provider throws or is empty. An unregistered path answers 404, with a JSON reason.
//
// Stop() ends every connection at once (their sockets are shut down), closes the listening
// socket and joins every thread: it waits for no client, only for a provider call under way.
//
// Thread-safety: Start, Stop and the destructor from one owning thread; port() from any.
// Providers are called from the server's threads, up to `threads` at once: they must be
// thread-safe, and must not block (a slow provider holds one of the few threads).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "sync/health/health_answer.h"
#include "sync/status.h"

namespace replsync::health {

using HealthProvider = std::function<HealthAnswer(const HealthQuery&)>;

struct HealthServerOptions {
  std::string host = "127.0.0.1";  // an address or a name; "0.0.0.0" / "::" for every one
  uint16_t port = 0;               // 0: a free port, which port() tells after Start
  size_t threads = 2;
  size_t max_pending = 32;
  std::chrono::milliseconds idle_timeout{2000};
  std::chrono::milliseconds request_timeout{3000};
  size_t max_request_bytes = 16 * 1024;
  size_t max_requests_per_connection = 32;
};

class HealthServer {
 public:
  // `paths`: exact paths ("/health/live") and their providers, fixed for the server's life.
  HealthServer(HealthServerOptions options, std::map<std::string, HealthProvider> paths);
  ~HealthServer();  // Stop()
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  // Binds host:port and serves on the server's own threads; returns once it accepts
  // connections. Errors: Network "bind health endpoint HOST:PORT: REASON" (address in use, not
  // an address of this host, a name that does not resolve); FailedPrecondition when started
  // before (a server starts once).
  Status Start();
  // The port bound by Start (the chosen one when options.port is 0); 0 before Start.
  uint16_t port() const { return port_; }
  // Ends every connection, stops accepting and joins the threads. Idempotent; a server never
  // started has nothing to stop.
  void Stop();

 private:
  class Impl;

  const HealthServerOptions options_;
  std::unique_ptr<Impl> impl_;  // the httplib server: built by the constructor
  std::thread listener_;        // accepts connections (httplib's listen loop) from Start to Stop
  bool started_ = false;
  std::atomic<uint16_t> port_{0};
};

}  // namespace replsync::health
