// PeerWatch: a node's question to every other node of its group, "who are you?"
// (schemas/failover.md "Who knows which epoch"). At its start and every `interval` it sends each
// `[peers.<name>]` endpoint a Hello{probe} with this node's epoch over the CURVE transport, and
// hands each answer (a Heartbeat: epoch, name, the epoch at which it is or was primary, its
// latest fork point) to the RoleKeeper: a primary fences itself when the answer says it must; a
// secondary adopts a higher epoch and the fork point with it, which tells it to follow the node
// promoted there. A peer that does not answer (down, or a secondary, which does not listen) is
// skipped until the next round.
//
// first_round_done() tells the health endpoint when every peer was asked once (answered or timed
// out): until then a primary does not claim to be the primary.
// Thread-safety: Start/Stop from the owner's thread; first_round_done from any.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sync/node/role_keeper.h"
#include "sync/status.h"
#include "sync/wire/transport_security.h"
#include "sync/wire/zmq_transport.h"

namespace replsync {

class PeerWatch {
 public:
  struct Options {
    std::string node_name;
    std::chrono::milliseconds interval{5000};
    std::chrono::milliseconds reply_timeout{2000};
  };
  struct Peer {
    std::string name, endpoint;
    ZmqClientSecurity security;
  };

  PeerWatch(RoleKeeper* role, std::vector<Peer> peers, Options options);
  ~PeerWatch();
  // The peers of `security` (every configured one with an endpoint), with their keys.
  static Result<std::vector<Peer>> PeersOf(const TransportSecurity& security);

  void Start();
  void Stop();
  bool first_round_done() const { return first_round_done_.load(); }

 private:
  void Run();
  // Asks one peer over `transport` (connected on first use) and hands its answer to the keeper.
  void Ask(const Peer& peer, std::unique_ptr<ZmqClientTransport>& transport);

  RoleKeeper* const role_;
  const std::vector<Peer> peers_;
  const Options options_;
  std::atomic<bool> first_round_done_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace replsync
