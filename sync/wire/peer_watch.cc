#include "sync/wire/peer_watch.h"

#include <spdlog/spdlog.h>

#include "replsync.pb.h"
#include "sync/wire/fork_point.h"

namespace replsync {

PeerWatch::PeerWatch(RoleKeeper* role, std::vector<Peer> peers, Options options)
    : role_(role), peers_(std::move(peers)), options_(std::move(options)) {}

PeerWatch::~PeerWatch() { Stop(); }

Result<std::vector<PeerWatch::Peer>> PeerWatch::PeersOf(const TransportSecurity& security) {
  std::vector<Peer> peers;
  for (const NodeConfig::Peer& p : security.peers) {
    if (p.endpoint.empty()) continue;
    Result<ZmqClientSecurity> client = security.ForClient(p.endpoint);
    if (!client.ok()) return client.status();
    peers.push_back({p.name, p.endpoint, *client});
  }
  return peers;
}

void PeerWatch::Start() {
  if (peers_.empty()) {
    first_round_done_ = true;
    return;
  }
  thread_ = std::thread([this] { Run(); });
}

void PeerWatch::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeerWatch::Run() {
  std::vector<std::unique_ptr<ZmqClientTransport>> transports(peers_.size());
  for (;;) {
    for (size_t i = 0; i < peers_.size(); ++i) Ask(peers_[i], transports[i]);
    first_round_done_ = true;
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, options_.interval, [this] { return stop_; })) return;
  }
}

void PeerWatch::Ask(const Peer& peer, std::unique_ptr<ZmqClientTransport>& transport) {
  if (transport == nullptr) {
    ZmqOptions zopts;
    zopts.send_timeout = options_.reply_timeout;
    Result<std::unique_ptr<ZmqClientTransport>> made =
        ZmqClientTransport::Connect(peer.endpoint, peer.security, zopts);
    if (!made.ok()) {
      spdlog::warn("peer watch: cannot ask {} at {}: {}", peer.name, peer.endpoint,
                   made.status().message());
      return;
    }
    transport = std::move(made).value();
  }
  const PeerClaim self = role_->Claim();
  pb::Envelope hello;
  hello.mutable_hello()->set_node_name(options_.node_name);
  hello.mutable_hello()->set_epoch(self.epoch);
  hello.mutable_hello()->set_probe(true);
  if (self.fork.epoch != 0) *hello.mutable_hello()->mutable_fork() = ForkToProto(self.fork);
  if (Status st = transport->Send(hello); !st.ok()) {
    spdlog::debug("peer watch: {} at {} not reached: {}", peer.name, peer.endpoint, st.message());
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.reply_timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pb::Envelope reply;
    Result<bool> got = transport->Receive(&reply, left);
    if (!got.ok() || !*got) break;
    if (!reply.has_heartbeat()) continue;
    const pb::Heartbeat& h = reply.heartbeat();
    role_->Hear({.node = peer.name,
                 .epoch = h.epoch(),
                 .primary_epoch = h.primary_epoch(),
                 .fork = ForkFromProto(h.fork())});
    return;
  }
  // No answer: the peer is down or not primary (secondaries do not listen). A new connection
  // next round drops whatever was left queued.
  (void)transport->Reconnect();
}

}  // namespace replsync
