// Transport: message exchange between the primary and its secondaries.
//
// The primary binds one ServerTransport and talks to many peers, each named by an opaque peer id
// the transport assigns; a secondary's ClientTransport talks to its one primary and reconnects
// by itself (ZeroMQ does). Messages are pb::Envelope (schemas/replsync.proto); frames that do not
// parse or carry another protocol version are dropped and counted, never crash the receiver.
// Implementations: ZmqServerTransport/ZmqClientTransport (ROUTER/DEALER over TCP) and an
// in-process pair for unit tests.
// Thread-safety: each object is used by one thread (ZeroMQ sockets are not thread-safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "replsync.pb.h"
#include "sync/status.h"

namespace replsync {

constexpr uint32_t kProtocolVersion = 1;

// Path bytes per message a peer sends the primary (FileResync paths, TreeRequest resync_paths),
// as encoded (each path's bytes and its field header): a quarter of the primary's receive limit
// (kServerMaxReceiveBytes), which drops the connection of a peer that sends more.
inline constexpr size_t kPathBytesPerRequest = size_t{2} << 20;

// `paths` in consecutive runs of at most `max_bytes` encoded bytes (a longer path goes alone);
// none for no paths.
inline std::vector<std::vector<std::string>> SplitPathsForRequests(
    const std::vector<std::string>& paths, size_t max_bytes = kPathBytesPerRequest) {
  std::vector<std::vector<std::string>> runs;
  size_t bytes = 0;
  for (const std::string& path : paths) {
    size_t varint = 1;  // the length's varint after a one-byte field tag
    for (size_t n = path.size(); n >= 0x80; n >>= 7) ++varint;
    const size_t cost = 1 + varint + path.size();
    if (runs.empty() || (!runs.back().empty() && bytes + cost > max_bytes)) {
      runs.emplace_back();
      bytes = 0;
    }
    runs.back().push_back(path);
    bytes += cost;
  }
  return runs;
}

// Connections a server end refused (unknown key, failed handshake), for logs and status.
struct PeerRefusals {
  uint64_t count = 0;        // since the transport started
  std::string last;          // the latest, as logged ("" when none)
  int64_t last_unix_ms = 0;  // when
};

class ServerTransport {
 public:
  virtual ~ServerTransport() = default;
  // Waits up to `timeout` for a message from any peer. Returns false on timeout.
  // `peer_name`: the name of the configured peer whose key proved the connection (CURVE); ""
  // when the transport authenticates nobody (insecure), and then only the Hello names it.
  virtual Result<bool> Receive(std::string* peer, std::string* peer_name, pb::Envelope* message,
                               std::chrono::milliseconds timeout) = 0;
  // Sends to one peer. A peer that has gone away is not an error (the message is dropped).
  virtual Status Send(const std::string& peer, const pb::Envelope& message) = 0;
  // Frames dropped because they did not parse or had another version. Any thread.
  virtual uint64_t bad_frames() const = 0;
  // Connections refused (unknown key, failed handshake). Any thread.
  virtual PeerRefusals refusals() const { return {}; }
};

class ClientTransport {
 public:
  virtual ~ClientTransport() = default;
  virtual Result<bool> Receive(pb::Envelope* message, std::chrono::milliseconds timeout) = 0;
  virtual Status Send(const pb::Envelope& message) = 0;
  // Drops the connection and connects again (after the peer went silent).
  virtual Status Reconnect() = 0;
  virtual uint64_t bad_frames() const = 0;
  // Why the server end does not let this end in (it refused this node's key, or it is not the
  // configured primary), as logged; "" once a handshake succeeded. Any thread.
  virtual std::string refusal() const { return ""; }
  // Established connections that ended so far (the peer went away or restarted): a request
  // sent before the count moved will get no reply. 0 for a transport that cannot tell.
  virtual uint64_t connections_lost() const { return 0; }
};

}  // namespace replsync
