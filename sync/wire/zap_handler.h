// ZapHandler: replsync's ZAP handler (ZeroMQ RFC 27), which decides which CURVE clients a
// primary's server socket lets in.
//
// libzmq (4.3) accepts every CURVE client whose handshake is sound — any key at all — unless a
// ZAP handler is bound at "inproc://zeromq.zap.01" in the socket's context. This one allows the
// public keys of [peers] and answers 200 with User-Id = the peer's name, so that every message
// of that connection carries the authenticated name (zmq_msg_gets "User-Id"); every other key,
// and any mechanism but CURVE, gets 400. The transport fails closed on top: a message without a
// User-Id (no handler was consulted) is dropped (sync/wire/zmq_transport.h).
// Refusals are counted and logged at most once per kRefusalWarningInterval:
//   transport tcp://0.0.0.0:7700: refused 10.0.0.9: its key <Z85> is not in [peers] ...
// Thread-safety: Decide is a pure function; a ZapHandler runs one thread of its own, and
// refusals() may be called from any thread.
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
  static constexpr std::chrono::seconds kRefusalWarningInterval{10};

  // Binds the handler's socket in `context` (before the server socket it guards is bound) and
  // starts its thread. `where` names the guarded endpoint in logs. Errors: Network when the ZAP
  // endpoint is taken (another handler in this context).
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context,
                                                   std::map<std::string, std::string> peers,
                                                   std::string where);
  // Stops and joins the thread (within ~100 ms); the context must still exist.
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  PeerRefusals refusals() const;
  uint64_t requests() const { return requests_.load(); }  // answered, allowed or not

 private:
  ZapHandler() = default;
  void Run();
  void NoteRefusal(const ZapRequest& request, const ZapReply& reply);

  std::map<std::string, std::string> peers_;
  std::string where_;
  std::unique_ptr<zmq::socket_t> socket_;  // the handler thread's once started
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> requests_{0};

  mutable std::mutex mu_;  // guards the fields below
  PeerRefusals refusals_;
  std::chrono::steady_clock::time_point last_warning_{};
  uint64_t warned_count_ = 0;  // refusals_.count at the last warning
};

}  // namespace replsync
