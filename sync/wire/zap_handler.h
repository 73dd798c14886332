// ZapHandler: replsync's ZAP handler (ZeroMQ RFC 27), which decides which CURVE clients a
// primary's server socket lets in.
//
// libzmq (4.3) accepts every CURVE client whose handshake is sound — any key at all — unless a
// ZAP handler is bound at "inproc://zeromq.zap.01" in the socket's context. This one allows the
// public keys of [peers] and answers 200 with User-Id = the peer's name, so that every message
// of that connection carries the authenticated name (zmq_msg_gets "User-Id"); every other key,
// and any mechanism but CURVE, gets 400. The transport fails closed on top: a message without a
// User-Id (no handler was consulted) is dropped (sync/wire/zmq_transport.h).
// Refusals go to the server end's RefusalLog:
//   transport tcp://0.0.0.0:7700: refused 10.0.0.9: its key <Z85> is not in [peers] ...
// Thread-safety: DecideZap is a pure function; a ZapHandler runs one thread of its own;
// RefusalLog is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sync/status.h"
#include "sync/wire/transport.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace replsync {

// The ZAP endpoint libzmq asks (RFC 27).
inline constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

// The connections one server end refused: counted, the latest kept, and logged at most once per
// kWarningInterval per kind ("transport WHERE: TEXT (N like it since the last warning)").
class RefusalLog {
 public:
  static constexpr std::chrono::seconds kWarningInterval{10};
  enum class Kind { kKey, kHandshake };  // a key not in [peers]; a handshake that failed

  explicit RefusalLog(std::string where) : where_(std::move(where)) {}
  // One refusal, `text` as "refused 10.0.0.9: its key K is not in [peers]".
  void Note(Kind kind, const std::string& text);
  PeerRefusals Get() const;

 private:
  struct Warned {
    std::chrono::steady_clock::time_point last{};
    uint64_t count = 0;  // refusals of this kind
    uint64_t warned = 0;  // `count` at the last warning
  };
  const std::string where_;
  mutable std::mutex mu_;  // guards the fields below
  PeerRefusals refusals_;
  Warned warned_[2];  // by Kind
};

// One ZAP request's frames, as RFC 27 numbers them.
struct ZapRequest {
  std::string version;     // "1.0"
  std::string request_id;
  std::string domain;
  std::string address;     // the peer's IP address
  std::string routing_id;
  std::string mechanism;   // "CURVE"
  std::vector<std::string> credentials;  // CURVE: the client's 32-byte public key
};

struct ZapReply {
  std::string status_code;  // "200" allowed, "400" refused, "500" malformed request
  std::string status_text;
  std::string user_id;      // the peer's name when allowed
};

// The answer to `request` given the allowed keys (Z85 public key -> peer name).
ZapReply DecideZap(const ZapRequest& request, const std::map<std::string, std::string>& peers);

class ZapHandler {
 public:
  // Binds the handler's socket in `context` (before the server socket it guards is bound) and
  // starts its thread; refusals go to `refusals` (which must outlive the handler). Errors:
  // Network when the ZAP endpoint is taken (another handler in this context).
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context,
                                                   std::map<std::string, std::string> peers,
                                                   RefusalLog* refusals);
  // Stops and joins the thread (within ~100 ms); the context must still exist.
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  uint64_t requests() const { return requests_.load(); }  // answered, allowed or not

 private:
  ZapHandler() = default;
  void Run();

  std::map<std::string, std::string> peers_;
  RefusalLog* refusals_ = nullptr;
  std::unique_ptr<zmq::socket_t> socket_;  // the handler thread's once started
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> requests_{0};
};

}  // namespace replsync
