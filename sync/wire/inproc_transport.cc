#include "sync/wire/inproc_transport.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <utility>

namespace replsync {

namespace {

// Serializes like the ZeroMQ transport: a version left 0 is sent as kProtocolVersion.
std::string Encode(const pb::Envelope& message) {
  std::string frame = message.SerializeAsString();
  if (message.version() == 0) {
    pb::Envelope version_only;
    version_only.set_version(kProtocolVersion);
    version_only.AppendToString(&frame);
  }
  return frame;
}

// True when `frame` is an envelope the receiver accepts (same rules as the ZeroMQ transport).
bool Decode(const std::string& frame, pb::Envelope* message) {
  return message->ParseFromString(frame) && message->version() == kProtocolVersion &&
         message->body_case() != pb::Envelope::BODY_NOT_SET;
}

}  // namespace

struct InprocHub::State {
  struct Client {
    std::string name;  // the authenticated peer name its messages carry ("" for none)
    std::string peer;  // "" while it has no connection
    bool reachable = true;
    std::deque<std::string> inbox;
    std::condition_variable cv;
    uint64_t bad_frames = 0;
  };

  std::mutex mu;
  std::condition_variable server_cv;
  bool server_alive = false;                                  // guarded by mu
  std::deque<std::pair<std::string, std::string>> to_server;  // (peer id, frame); guarded by mu
  uint64_t server_bad_frames = 0;                             // guarded by mu
  uint64_t next_peer = 1;                                     // guarded by mu
  uint64_t next_key = 1;                                      // guarded by mu
  std::map<uint64_t, std::unique_ptr<Client>> clients;        // guarded by mu
  std::map<std::string, uint64_t> peers;  // connected peer id -> client key; guarded by mu

  Client* Find(uint64_t key) {
    auto it = clients.find(key);
    return it == clients.end() ? nullptr : it->second.get();
  }

  // Ends the client's connection: whatever was queued either way is lost. Requires mu.
  void DropConnection(uint64_t key) {
    Client* c = Find(key);
    if (c == nullptr) return;
    c->inbox.clear();
    if (c->peer.empty()) return;
    std::erase_if(to_server, [&](const auto& item) { return item.first == c->peer; });
    peers.erase(c->peer);
    c->peer.clear();
  }

  // Gives the client a new connection when it can have one. Requires mu.
  void Connect(uint64_t key) {
    Client* c = Find(key);
    if (c == nullptr || !c->peer.empty() || !c->reachable || !server_alive) return;
    c->peer = "inproc-" + std::to_string(next_peer++);
    peers[c->peer] = key;
  }
};

InprocHub::InprocHub() : state_(std::make_shared<State>()) {}
InprocHub::~InprocHub() = default;

std::unique_ptr<InprocServerTransport> InprocHub::CreateServer() {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->server_alive) return nullptr;
  state_->server_alive = true;
  for (auto& [key, client] : state_->clients) state_->Connect(key);
  return std::unique_ptr<InprocServerTransport>(new InprocServerTransport(state_));
}

std::unique_ptr<InprocClientTransport> InprocHub::CreateClient(std::string name) {
  std::lock_guard<std::mutex> lock(state_->mu);
  const uint64_t key = state_->next_key++;
  state_->clients[key] = std::make_unique<State::Client>();
  state_->clients[key]->name = std::move(name);
  state_->Connect(key);
  return std::unique_ptr<InprocClientTransport>(new InprocClientTransport(state_, key));
}

void InprocHub::Disconnect(const InprocClientTransport& client) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->DropConnection(client.key_);
  state_->Connect(client.key_);
}

void InprocHub::SetReachable(const InprocClientTransport& client, bool reachable) {
  std::lock_guard<std::mutex> lock(state_->mu);
  State::Client* c = state_->Find(client.key_);
  if (c == nullptr) return;
  c->reachable = reachable;
  if (reachable) {
    state_->Connect(client.key_);
  } else {
    state_->DropConnection(client.key_);
  }
}

std::string InprocHub::PeerId(const InprocClientTransport& client) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  State::Client* c = state_->Find(client.key_);
  return c == nullptr ? "" : c->peer;
}

void InprocHub::InjectFrameToServer(const InprocClientTransport& client, std::string frame) {
  std::lock_guard<std::mutex> lock(state_->mu);
  State::Client* c = state_->Find(client.key_);
  if (c == nullptr || c->peer.empty()) return;
  state_->to_server.emplace_back(c->peer, std::move(frame));
  state_->server_cv.notify_all();
}

void InprocHub::InjectFrameToClient(const InprocClientTransport& client, std::string frame) {
  std::lock_guard<std::mutex> lock(state_->mu);
  State::Client* c = state_->Find(client.key_);
  if (c == nullptr || c->peer.empty()) return;
  c->inbox.push_back(std::move(frame));
  c->cv.notify_all();
}

// ---- server end ----

InprocServerTransport::InprocServerTransport(std::shared_ptr<InprocHub::State> state)
    : state_(std::move(state)) {}

InprocServerTransport::~InprocServerTransport() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->server_alive = false;
  for (auto& [key, client] : state_->clients) state_->DropConnection(key);
  state_->to_server.clear();
}

Result<bool> InprocServerTransport::Receive(std::string* peer, std::string* peer_name,
                                            pb::Envelope* message,
                                            std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(state_->mu);
  for (;;) {
    if (!state_->server_cv.wait_until(lock, deadline, [&] { return !state_->to_server.empty(); })) {
      return false;
    }
    auto [from, frame] = std::move(state_->to_server.front());
    state_->to_server.pop_front();
    if (Decode(frame, message)) {
      auto it = state_->peers.find(from);
      const InprocHub::State::Client* c = it == state_->peers.end() ? nullptr : state_->Find(it->second);
      *peer_name = c != nullptr ? c->name : "";
      *peer = std::move(from);
      return true;
    }
    ++state_->server_bad_frames;
  }
}

Status InprocServerTransport::Send(const std::string& peer, const pb::Envelope& message) {
  std::string frame = Encode(message);
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->peers.find(peer);
  if (it == state_->peers.end()) return Status::Ok();  // gone: dropped
  InprocHub::State::Client* c = state_->Find(it->second);
  c->inbox.push_back(std::move(frame));
  c->cv.notify_all();
  return Status::Ok();
}

uint64_t InprocServerTransport::bad_frames() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->server_bad_frames;
}

// ---- client end ----

InprocClientTransport::InprocClientTransport(std::shared_ptr<InprocHub::State> state, uint64_t key)
    : state_(std::move(state)), key_(key) {}

InprocClientTransport::~InprocClientTransport() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->DropConnection(key_);
  state_->clients.erase(key_);
}

Result<bool> InprocClientTransport::Receive(pb::Envelope* message,
                                            std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(state_->mu);
  InprocHub::State::Client* c = state_->Find(key_);
  for (;;) {
    if (!c->cv.wait_until(lock, deadline, [&] { return !c->inbox.empty(); })) return false;
    std::string frame = std::move(c->inbox.front());
    c->inbox.pop_front();
    if (Decode(frame, message)) return true;
    ++c->bad_frames;
  }
}

Status InprocClientTransport::Send(const pb::Envelope& message) {
  std::string frame = Encode(message);
  std::lock_guard<std::mutex> lock(state_->mu);
  InprocHub::State::Client* c = state_->Find(key_);
  if (c->peer.empty()) return Status::Network("send to inproc server: not connected");
  state_->to_server.emplace_back(c->peer, std::move(frame));
  state_->server_cv.notify_all();
  return Status::Ok();
}

Status InprocClientTransport::Reconnect() {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->DropConnection(key_);
  state_->Connect(key_);
  return Status::Ok();
}

uint64_t InprocClientTransport::bad_frames() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->Find(key_)->bad_frames;
}

}  // namespace replsync
