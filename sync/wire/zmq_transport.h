// ZeroMQ transport: ROUTER on the primary (ZmqServerTransport), DEALER on each secondary
// (ZmqClientTransport), over TCP. The wire format and the protocol are in schemas/wire.md.
//
// One ZeroMQ message per pb::Envelope (its protobuf serialization). A received frame that does
// not parse, carries another protocol version, has no body we know, or comes in several parts
// is dropped and counted (bad_frames()) with a rate-limited warning; it never ends a session.
// A message longer than this end's receive limit (ZmqOptions::max_receive_bytes: a few MiB on the
// primary, whose peers send only small messages; max_message_bytes on a secondary, which
// receives big batches) makes ZeroMQ drop that connection (a hostile peer cannot make us
// allocate without bound); Send refuses to produce a message over max_message_bytes.
// Security (sync/wire/transport_security.h, schemas/wire.md "Security"): with keys, every socket
// speaks CURVE. The server runs replsync's ZAP handler in its context (sync/wire/zap_handler.h)
// and fails closed: a message that carries no User-Id (no ZAP handler vouched for its
// connection) is dropped as a bad frame; each message it returns names the peer whose key
// proved it. A client sets the configured primary's key as the server key, so it talks only to
// that primary. Both ends watch their handshakes (a ZeroMQ socket monitor) and log refusals,
// rate-limited: the server "refused a connection ... its CURVE handshake failed", the client
// "the primary at E refused this node's key K: add it to the primary's [peers]" or "the peer at
// E is not the configured primary (key mismatch)"; refusals() / refusal() report them.
// No exception leaves these classes: zmq errors become Status.
// Thread-safety: not thread-safe (ZeroMQ sockets belong to one thread); bad_frames() may be read
// from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "sync/status.h"
#include "sync/wire/transport.h"
#include "sync/wire/transport_security.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace replsync {

class ZapHandler;
class HandshakeMonitor;
class RefusalLog;

// The server's default receive limit: what a secondary or verify sends is small (a
// FileResync or a TreeRequest with tens of thousands of paths still fits).
inline constexpr int64_t kServerMaxReceiveBytes = 8ll << 20;

struct ZmqOptions {
  // Largest message sent, and received by a client (a secondary's batches).
  int64_t max_message_bytes = 256ll << 20;
  // Largest message received (ZMQ_MAXMSGSIZE); 0: the role's default, which is
  // kServerMaxReceiveBytes for the server (the primary hears only Hello, Ack, Heartbeat, Error,
  // FileResync and TreeRequest) and max_message_bytes for a client.
  int64_t max_receive_bytes = 0;
  // Messages queued per peer in each direction (ZMQ_SNDHWM / ZMQ_RCVHWM).
  int send_hwm = 1000;
  int receive_hwm = 1000;
  // ZMTP heartbeats: a PING every interval; no traffic for `heartbeat_timeout` closes the
  // connection (the DEALER then reconnects; the ROUTER forgets the peer id).
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds heartbeat_timeout{10000};
  // Client: reconnect backoff (ZMQ_RECONNECT_IVL doubling up to ZMQ_RECONNECT_IVL_MAX).
  std::chrono::milliseconds reconnect_interval{100};
  std::chrono::milliseconds reconnect_interval_max{5000};
  // Client: how long Send waits for a connection (or queue room) before it returns a
  // retryable Network error.
  std::chrono::milliseconds send_timeout{1000};
  // Client: after the server refused the handshake (this node's key, or not the configured
  // primary), the socket is closed and a new one tried after this long, doubling up to
  // refused_retry_interval_max (libzmq alone would retry at once, endlessly, or never).
  std::chrono::milliseconds refused_retry_interval{1000};
  std::chrono::milliseconds refused_retry_interval_max{10000};
};

// Peer ids are the ROUTER's routing id of the connection in lower-case hex (e.g. "0080000001").
// A reconnecting secondary gets a new id.
class ZmqServerTransport : public ServerTransport {
 public:
  // Binds a ROUTER socket to `endpoint` ("tcp://0.0.0.0:7700"; "tcp://127.0.0.1:*" picks a free
  // port, see bound_endpoint()), as a CURVE server with its ZAP handler when `security` has a
  // secret key. Errors: InvalidArgument for a malformed endpoint (naming it and showing a valid
  // one) or key, Network for an address in use or not available here.
  static Result<std::unique_ptr<ZmqServerTransport>> Bind(const std::string& endpoint,
                                                          const ZmqServerSecurity& security,
                                                          const ZmqOptions& options = {});
  ~ZmqServerTransport() override;

  // Waits up to `timeout` for a valid envelope; bad frames (and, with CURVE, messages without an
  // authenticated peer name) are dropped and the wait goes on. Returns false on timeout or when
  // a signal interrupted the wait.
  Result<bool> Receive(std::string* peer, std::string* peer_name, pb::Envelope* message,
                       std::chrono::milliseconds timeout) override;
  // Sends without blocking. A peer that has gone (or an unknown id) is not an error: the
  // message is dropped. A peer whose send queue is full (send_hwm) gives a retryable Network
  // error: the message was not sent. The envelope's version is set to kProtocolVersion when
  // the caller left it 0. InvalidArgument when the message exceeds max_message_bytes.
  Status Send(const std::string& peer, const pb::Envelope& message) override;
  uint64_t bad_frames() const override { return bad_frames_.load(); }
  // Refused by the ZAP handler (unknown keys) or in the CURVE handshake.
  PeerRefusals refusals() const override;

  // The endpoint actually bound, with the port chosen when "*" was asked for
  // (ZMQ_LAST_ENDPOINT), e.g. "tcp://127.0.0.1:40123".
  const std::string& bound_endpoint() const { return bound_endpoint_; }

 private:
  ZmqServerTransport() = default;
  // Waits until the socket has a message or the deadline passes (handling handshake events
  // meanwhile); false on timeout.
  bool Wait(std::chrono::steady_clock::time_point deadline);
  // Counts and logs a failed handshake; false (the server goes on waiting).
  bool OnHandshakeEvent(uint16_t event, uint32_t value);

  ZmqOptions options_;
  std::string endpoint_;
  std::string bound_endpoint_;
  bool secure_ = false;
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<ZapHandler> zap_;  // before socket_: it must outlive it
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<HandshakeMonitor> monitor_;
  std::atomic<uint64_t> bad_frames_{0};
  std::unique_ptr<RefusalLog> refusals_;  // the ZAP handler's and the failed handshakes
  std::chrono::steady_clock::time_point last_warning_{};
  uint64_t bad_frames_warned_ = 0;  // bad_frames_ at the last warning
};

class ZmqClientTransport : public ClientTransport {
 public:
  // Creates a DEALER socket connecting to `endpoint` ("tcp://10.0.0.1:7700"), as a CURVE client
  // of `security.server_key` when `security` has a secret key. Connecting is asynchronous: this
  // succeeds while the primary is down and ZeroMQ keeps trying with backoff.
  // Errors: InvalidArgument for a malformed endpoint or key.
  static Result<std::unique_ptr<ZmqClientTransport>> Connect(const std::string& endpoint,
                                                             const ZmqClientSecurity& security,
                                                             const ZmqOptions& options = {});
  ~ZmqClientTransport() override;

  // Waits up to `timeout` for a valid envelope (bad frames are dropped and counted). Returns
  // false on timeout or when a signal interrupted the wait.
  Result<bool> Receive(pb::Envelope* message, std::chrono::milliseconds timeout) override;
  // Waits up to `timeout` until a message has arrived, without taking it (the next Receive
  // does): true when one has, false on timeout or when a signal interrupted the wait.
  Result<bool> WaitForMessage(std::chrono::milliseconds timeout);
  // Sends, waiting up to send_timeout for a connection (ZMQ_IMMEDIATE: nothing is queued for a
  // connection that does not exist yet). Retryable Network error when it could not be sent.
  // The envelope's version is set to kProtocolVersion when the caller left it 0.
  Status Send(const pb::Envelope& message) override;
  // Closes the socket (discarding whatever was queued either way) and connects a new one; the
  // primary sees a new peer id.
  Status Reconnect() override;
  uint64_t bad_frames() const override { return bad_frames_.load(); }
  std::string refusal() const override;
  // Counted when the socket's monitor reports the end of a connection whose handshake had
  // succeeded; the events are taken while Receive, WaitForMessage or a failed Send wait.
  uint64_t connections_lost() const override { return connections_lost_.load(); }

  const std::string& endpoint() const { return endpoint_; }

 private:
  ZmqClientTransport() = default;
  Status OpenSocket();
  // Waits until the socket has a message or the deadline passes, handling handshake events and,
  // after a refusal, closing the socket and opening a new one when the backoff is over.
  bool Wait(std::chrono::steady_clock::time_point deadline);
  // Notes a handshake event; true when it is a refusal (the socket is to be backed off).
  bool OnHandshakeEvent(uint16_t event, uint32_t value);
  // Closes the socket after a refusal; a new one opens at reopen_at_.
  void BackOff();

  ZmqOptions options_;
  ZmqClientSecurity security_;
  std::string endpoint_;
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<HandshakeMonitor> monitor_;
  bool handshake_pending_ = false;  // connected, no handshake result yet
  bool established_ = false;        // the handshake succeeded and no disconnect came since
  std::atomic<uint64_t> connections_lost_{0};
  std::chrono::steady_clock::time_point reopen_at_{};  // while socket_ is closed after a refusal
  std::chrono::milliseconds backoff_{0};               // the next refusal's wait
  mutable std::mutex refusal_mu_;
  std::string refusal_;  // guarded by refusal_mu_
  std::string refusal_warned_;
  std::chrono::steady_clock::time_point last_refusal_warning_{};
  std::atomic<uint64_t> bad_frames_{0};
  std::chrono::steady_clock::time_point last_warning_{};
  uint64_t bad_frames_warned_ = 0;
};

}  // namespace replsync
