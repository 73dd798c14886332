// In-process transport: a hub joining one server end and any number of client ends through
// queues in memory, for unit tests of the protocol logic (Shipper, Receiver) without sockets.
//
// Same semantics as the ZeroMQ pair (sync/wire/zmq_transport.h):
// - messages are serialized on Send and parsed on Receive, so what arrives is exactly what the
//   wire would carry; frames that do not parse, carry another version or have no body are
//   dropped and counted in bad_frames() (InjectFrame puts such frames in);
// - a version left 0 is sent as kProtocolVersion;
// - each connection of a client has its own peer id ("inproc-1", "inproc-2", ...); a client that
//   reconnects (Reconnect, or after Disconnect / a server restart) gets a new one;
// - the server sending to a peer id that is gone is not an error (the message is dropped);
// - a client sending while it has no connection (no server, or SetReachable(false)) gets a
//   retryable Network error, as ZeroMQ's DEALER with ZMQ_IMMEDIATE does after its send timeout
//   (here at once).
// Failure simulation: Disconnect(client) drops the connection (queued messages both ways are
// lost, the client reconnects at once with a new peer id); SetReachable(client, false) keeps it
// away until SetReachable(client, true); destroying the server end drops every connection and
// CreateServer() again is a server restart.
// Thread-safety: thread-safe; each end may be used from its own thread, the hub from any.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "sync/status.h"
#include "sync/wire/transport.h"

namespace replsync {

class InprocClientTransport;
class InprocServerTransport;

class InprocHub {
 public:
  InprocHub();
  ~InprocHub();
  InprocHub(const InprocHub&) = delete;
  InprocHub& operator=(const InprocHub&) = delete;

  // The server end; at most one exists at a time (nullptr while another is alive). Ends may
  // outlive the hub.
  std::unique_ptr<InprocServerTransport> CreateServer();
  // A new client end, connected when a server exists. `name`: the authenticated peer name the
  // server end reports with its messages, as the ZeroMQ server does for a CURVE key in [peers]
  // ("": none, as an insecure ZeroMQ server).
  std::unique_ptr<InprocClientTransport> CreateClient(std::string name = "");

  // Drops `client`'s connection: messages queued to and from it are lost; it reconnects at
  // once (when reachable and a server exists) under a new peer id.
  void Disconnect(const InprocClientTransport& client);
  // While unreachable, `client` has no connection: its sends fail, the server's sends to its
  // old peer id are dropped. Becoming unreachable drops what was queued, as Disconnect does.
  void SetReachable(const InprocClientTransport& client, bool reachable);
  // The current peer id of `client` ("" while it has no connection).
  std::string PeerId(const InprocClientTransport& client) const;

  // Puts raw bytes on the wire as if sent by `client` to the server (or by the server to
  // `client`), for tests of bad-frame handling. Dropped when there is no connection.
  void InjectFrameToServer(const InprocClientTransport& client, std::string frame);
  void InjectFrameToClient(const InprocClientTransport& client, std::string frame);

  struct State;  // shared by the hub and its ends

 private:
  std::shared_ptr<State> state_;
};

class InprocServerTransport : public ServerTransport {
 public:
  ~InprocServerTransport() override;
  Result<bool> Receive(std::string* peer, std::string* peer_name, pb::Envelope* message,
                       std::chrono::milliseconds timeout) override;
  Status Send(const std::string& peer, const pb::Envelope& message) override;
  uint64_t bad_frames() const override;

 private:
  friend class InprocHub;
  explicit InprocServerTransport(std::shared_ptr<InprocHub::State> state);
  std::shared_ptr<InprocHub::State> state_;
};

class InprocClientTransport : public ClientTransport {
 public:
  ~InprocClientTransport() override;
  Result<bool> Receive(pb::Envelope* message, std::chrono::milliseconds timeout) override;
  Status Send(const pb::Envelope& message) override;
  // Drops the connection (and whatever was queued either way) and connects again.
  Status Reconnect() override;
  uint64_t bad_frames() const override;

 private:
  friend class InprocHub;
  InprocClientTransport(std::shared_ptr<InprocHub::State> state, uint64_t key);
  std::shared_ptr<InprocHub::State> state_;
  uint64_t key_;
};

}  // namespace replsync
