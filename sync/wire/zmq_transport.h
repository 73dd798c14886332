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
// No exception leaves these classes: zmq errors become Status.
// Thread-safety: not thread-safe (ZeroMQ sockets belong to one thread); bad_frames() may be read
// from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "sync/status.h"
#include "sync/wire/transport.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace replsync {

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
};

// Peer ids are the ROUTER's routing id of the connection in lower-case hex (e.g. "0080000001").
// A reconnecting secondary gets a new id.
class ZmqServerTransport : public ServerTransport {
 public:
  // Binds a ROUTER socket to `endpoint` ("tcp://0.0.0.0:7700"; "tcp://127.0.0.1:*" picks a free
  // port, see bound_endpoint()). Errors: InvalidArgument for a malformed endpoint (naming it and
  // showing a valid one), Network for an address in use or not available here.
  static Result<std::unique_ptr<ZmqServerTransport>> Bind(const std::string& endpoint,
                                                          const ZmqOptions& options = {});
  ~ZmqServerTransport() override;

  // Waits up to `timeout` for a valid envelope; bad frames are dropped and the wait goes on.
  // Returns false on timeout or when a signal interrupted the wait.
  Result<bool> Receive(std::string* peer, pb::Envelope* message,
                       std::chrono::milliseconds timeout) override;
  // Sends without blocking. A peer that has gone (or an unknown id) is not an error: the
  // message is dropped. A peer whose send queue is full (send_hwm) gives a retryable Network
  // error: the message was not sent. The envelope's version is set to kProtocolVersion when
  // the caller left it 0. InvalidArgument when the message exceeds max_message_bytes.
  Status Send(const std::string& peer, const pb::Envelope& message) override;
  uint64_t bad_frames() const override { return bad_frames_.load(); }

  // The endpoint actually bound, with the port chosen when "*" was asked for
  // (ZMQ_LAST_ENDPOINT), e.g. "tcp://127.0.0.1:40123".
  const std::string& bound_endpoint() const { return bound_endpoint_; }

 private:
  ZmqServerTransport() = default;

  ZmqOptions options_;
  std::string endpoint_;
  std::string bound_endpoint_;
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::atomic<uint64_t> bad_frames_{0};
  std::chrono::steady_clock::time_point last_warning_{};
  uint64_t bad_frames_warned_ = 0;  // bad_frames_ at the last warning
};

class ZmqClientTransport : public ClientTransport {
 public:
  // Creates a DEALER socket connecting to `endpoint` ("tcp://10.0.0.1:7700"). Connecting is
  // asynchronous: this succeeds while the primary is down and ZeroMQ keeps trying with backoff.
  // Errors: InvalidArgument for a malformed endpoint.
  static Result<std::unique_ptr<ZmqClientTransport>> Connect(const std::string& endpoint,
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

  const std::string& endpoint() const { return endpoint_; }

 private:
  ZmqClientTransport() = default;
  Status OpenSocket();

  ZmqOptions options_;
  std::string endpoint_;
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::atomic<uint64_t> bad_frames_{0};
  std::chrono::steady_clock::time_point last_warning_{};
  uint64_t bad_frames_warned_ = 0;
};

}  // namespace replsync
