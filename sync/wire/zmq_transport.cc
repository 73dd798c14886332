// ZeroMQ transport. Wire format: schemas/wire.md (one ZeroMQ message per pb::Envelope).
#include "sync/wire/zmq_transport.h"

#include <spdlog/spdlog.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>
#include <zmq.hpp>

#include "sync/text.h"
#include "sync/wire/zap_handler.h"

namespace replsync {

// Reads a socket's handshake events (zmq_socket_monitor over an inproc PAIR).
class HandshakeMonitor {
 public:
  static constexpr int kEvents =
      ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
      ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
      ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

  // Starts monitoring `socket` (call before it binds or connects). Throws zmq::error_t.
  HandshakeMonitor(zmq::context_t& context, zmq::socket_t& socket) {
    static std::atomic<uint64_t> counter{0};
    const std::string endpoint = "inproc://replsync-monitor-" + std::to_string(++counter);
    if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), kEvents) != 0) {
      throw zmq::error_t();
    }
    pair_ = zmq::socket_t(context, zmq::socket_type::pair);
    pair_.set(zmq::sockopt::linger, 0);
    pair_.connect(endpoint);
  }

  zmq::socket_t& socket() { return pair_; }

  // Calls on_event(event, value) for every event waiting; true when one of them returned true.
  template <typename F>
  bool Drain(F&& on_event) {
    bool any = false;
    for (;;) {
      zmq::message_t head;
      if (!pair_.recv(head, zmq::recv_flags::dontwait)) return any;
      uint16_t event = 0;
      uint32_t value = 0;
      if (head.size() >= 6) {
        std::memcpy(&event, head.data(), sizeof(event));
        std::memcpy(&value, static_cast<const char*>(head.data()) + 2, sizeof(value));
      }
      bool more = head.more();
      while (more) {  // the endpoint's address
        zmq::message_t part;
        if (!pair_.recv(part, zmq::recv_flags::dontwait)) break;
        more = part.more();
      }
      any |= on_event(event, value);
    }
  }

 private:
  zmq::socket_t pair_;
};

namespace {

using std::chrono::steady_clock;

// At most one bad-frame warning per this interval; the count covers the frames in between.
constexpr std::chrono::seconds kBadFrameWarningInterval{10};

// TCP keepalive (seconds): the operating system's check for a peer that vanished without
// closing, complementing ZMTP heartbeats.
constexpr int kKeepaliveIdle = 30;
constexpr int kKeepaliveInterval = 10;
constexpr int kKeepaliveCount = 3;

enum class Role { kServer, kClient };

// Checks the form of an endpoint before ZeroMQ sees it, so the error can say what is wrong.
Status CheckEndpoint(const std::string& endpoint, Role role) {
  const char* example = role == Role::kServer ? "tcp://0.0.0.0:7700" : "tcp://10.0.0.1:7700";
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("endpoint \"" + endpoint + "\": " + why +
                                   "; a valid one looks like " + example);
  };
  for (std::string_view scheme : {"ipc://", "inproc://"}) {
    if (endpoint.starts_with(scheme)) {
      if (endpoint.size() == scheme.size()) return bad("no address after " + std::string(scheme));
      return Status::Ok();
    }
  }
  if (!endpoint.starts_with("tcp://")) return bad("not a tcp:// address");
  const std::string rest = endpoint.substr(6);
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return bad("no port");
  const std::string host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  if (host.empty()) {
    return bad(role == Role::kServer ? "no host (0.0.0.0 listens on every interface)" : "no host");
  }
  if (host.front() == '[' && host.back() != ']') return bad("unterminated IPv6 address");
  if (port == "*" && role == Role::kServer) return Status::Ok();
  uint64_t port_number = 0;
  if (port.size() > 5 || !ParseU64(port, &port_number) || port_number == 0 || port_number > 65535) {
    return bad("port \"" + port + "\" is not a number from 1 to 65535" +
               (role == Role::kServer ? " (or * for any free port)" : ""));
  }
  return Status::Ok();
}

bool IsIpv6(const std::string& endpoint) { return endpoint.find("://[") != std::string::npos; }

// The largest message this end accepts (ZMQ_MAXMSGSIZE); see ZmqOptions::max_receive_bytes.
int64_t MaxReceiveBytes(const ZmqOptions& options, Role role) {
  if (options.max_receive_bytes > 0) return options.max_receive_bytes;
  return role == Role::kServer ? std::min(kServerMaxReceiveBytes, options.max_message_bytes)
                               : options.max_message_bytes;
}

// Every socket option but the keys is set here, before bind/connect.
void ConfigureSocket(zmq::socket_t& socket, const ZmqOptions& options, Role role, bool ipv6) {
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::sndhwm, options.send_hwm);
  socket.set(zmq::sockopt::rcvhwm, options.receive_hwm);
  socket.set(zmq::sockopt::maxmsgsize, MaxReceiveBytes(options, role));
  socket.set(zmq::sockopt::tcp_keepalive, 1);
  socket.set(zmq::sockopt::tcp_keepalive_idle, kKeepaliveIdle);
  socket.set(zmq::sockopt::tcp_keepalive_intvl, kKeepaliveInterval);
  socket.set(zmq::sockopt::tcp_keepalive_cnt, kKeepaliveCount);
  socket.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(options.heartbeat_interval.count()));
  socket.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(options.heartbeat_timeout.count()));
  socket.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(options.heartbeat_timeout.count()));
  if (ipv6) socket.set(zmq::sockopt::ipv6, 1);
  if (role == Role::kServer) {
    // Mandatory routing: a send to a peer that is gone fails with EHOSTUNREACH (we drop the
    // message, as the contract says) and a full queue says EAGAIN instead of dropping silently.
    socket.set(zmq::sockopt::router_mandatory, 1);
  } else {
    socket.set(zmq::sockopt::immediate, 1);
    socket.set(zmq::sockopt::reconnect_ivl, static_cast<int>(options.reconnect_interval.count()));
    socket.set(zmq::sockopt::reconnect_ivl_max,
               static_cast<int>(options.reconnect_interval_max.count()));
    socket.set(zmq::sockopt::sndtimeo, static_cast<int>(options.send_timeout.count()));
  }
}

// Serializes `message` into one ZeroMQ message; a version left 0 becomes kProtocolVersion (a
// serialized Envelope holding only the version is appended: in protobuf the last value of a
// field wins, so the concatenation parses as the message with that version).
Result<zmq::message_t> Encode(const pb::Envelope& message, int64_t max_bytes,
                              const std::string& where) {
  std::string stamp;
  if (message.version() == 0) {
    pb::Envelope version_only;
    version_only.set_version(kProtocolVersion);
    stamp = version_only.SerializeAsString();
  }
  const size_t size = message.ByteSizeLong();
  if (static_cast<int64_t>(size + stamp.size()) > max_bytes) {
    return Status::InvalidArgument(where + ": message of " + std::to_string(size) +
                                   " bytes exceeds the maximum message size of " +
                                   std::to_string(max_bytes) + " bytes (send fewer entries)");
  }
  zmq::message_t out(size + stamp.size());
  auto* data = static_cast<uint8_t*>(out.data());
  message.SerializeWithCachedSizesToArray(data);
  if (!stamp.empty()) std::memcpy(data + size, stamp.data(), stamp.size());
  return out;
}

// Parses one frame; returns "" or why it is a bad frame.
std::string Decode(const zmq::message_t& frame, pb::Envelope* message) {
  if (frame.size() > static_cast<size_t>(INT_MAX) ||
      !message->ParseFromArray(frame.data(), static_cast<int>(frame.size()))) {
    return "a frame of " + std::to_string(frame.size()) + " bytes that is not an envelope";
  }
  if (message->version() != kProtocolVersion) {
    return "an envelope of protocol version " + std::to_string(message->version()) +
           " (this replsync speaks version " + std::to_string(kProtocolVersion) + ")";
  }
  if (message->body_case() == pb::Envelope::BODY_NOT_SET) {
    return "an envelope without a body this replsync knows";
  }
  return "";
}

// Counts a bad frame and warns at most once per kBadFrameWarningInterval.
void NoteBadFrame(std::atomic<uint64_t>& count, steady_clock::time_point& last_warning,
                  uint64_t& warned, const std::string& where, const std::string& reason) {
  const uint64_t total = ++count;
  const auto now = steady_clock::now();
  if (warned == 0 || now - last_warning >= kBadFrameWarningInterval) {
    spdlog::warn("{}: dropped {} bad frame(s) since the last warning ({} in all), the latest {}",
                 where, total - warned, total, reason);
    last_warning = now;
    warned = total;
  }
}

// Discards the remaining parts of a multi-part message.
void DrainParts(zmq::socket_t& socket, const zmq::message_t& last_received) {
  bool more = last_received.more();
  while (more) {
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::dontwait)) return;
    more = part.more();
  }
}

// Waits until `socket` has a message or the deadline passes, handing `monitor`'s events to
// `on_event` meanwhile; false on timeout, or at once when `on_event` returns true.
template <typename F>
bool WaitReadable(zmq::socket_t& socket, HandshakeMonitor* monitor,
                  steady_clock::time_point deadline, F&& on_event) {
  for (;;) {
    const auto left = deadline - steady_clock::now();
    if (left <= steady_clock::duration::zero()) return false;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(left);
    zmq::pollitem_t items[2] = {{socket.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, 0, ZMQ_POLLIN, 0}};
    if (monitor != nullptr) items[1].socket = monitor->socket().handle();
    if (zmq::poll(items, monitor != nullptr ? 2 : 1, ms) <= 0) return false;
    if (monitor != nullptr && (items[1].revents & ZMQ_POLLIN) && monitor->Drain(on_event)) {
      return false;
    }
    if (items[0].revents & ZMQ_POLLIN) return true;
  }
}

// Checks a Z85 key of the configuration before ZeroMQ sees it.
Status CheckKey(const std::string& key, const char* what) {
  if (key.size() == kCurveKeyTextSize && CurvePublicKeyOf(key).ok()) return Status::Ok();
  return Status::InvalidArgument(std::string(what) + " is not a Z85 CURVE key (" +
                                 std::to_string(kCurveKeyTextSize) + " characters)");
}

// A client repeats the same refusal warning at most once per this interval.
constexpr std::chrono::seconds kClientRefusalWarningInterval{60};

bool Unhex(const std::string& text, std::string* out) {
  if (text.empty() || text.size() % 2 != 0) return false;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out->clear();
  for (size_t i = 0; i < text.size(); i += 2) {
    const int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

Status ZmqError(const std::string& what, const zmq::error_t& e) {
  return Status::Network(what + ": " + e.what());
}

}  // namespace

// ---- server ----

Result<std::unique_ptr<ZmqServerTransport>> ZmqServerTransport::Bind(
    const std::string& endpoint, const ZmqServerSecurity& security, const ZmqOptions& options) {
  RS_RETURN_IF_ERROR(CheckEndpoint(endpoint, Role::kServer));
  std::unique_ptr<ZmqServerTransport> t(new ZmqServerTransport());
  t->options_ = options;
  t->endpoint_ = endpoint;
  t->secure_ = !security.secret_key.empty();
  t->refusals_ = std::make_unique<RefusalLog>(endpoint);
  if (t->secure_) {
    RS_RETURN_IF_ERROR(CheckKey(security.secret_key, "the server's secret key"));
    for (const auto& [key, name] : security.peers) {
      RS_RETURN_IF_ERROR(CheckKey(key, ("the public key of peer " + name).c_str()));
    }
  }
  try {
    t->context_ = std::make_unique<zmq::context_t>(1);
    if (t->secure_ && security.zap_handler) {
      RS_ASSIGN_OR_RETURN(t->zap_,
                          ZapHandler::Start(*t->context_, security.peers, t->refusals_.get()));
    }
    t->socket_ = std::make_unique<zmq::socket_t>(*t->context_, zmq::socket_type::router);
    ConfigureSocket(*t->socket_, options, Role::kServer, IsIpv6(endpoint));
    if (t->secure_) {
      t->socket_->set(zmq::sockopt::curve_server, 1);
      t->socket_->set(zmq::sockopt::curve_secretkey, security.secret_key);
      t->socket_->set(zmq::sockopt::zap_domain, "replsync");
    }
    t->monitor_ = std::make_unique<HandshakeMonitor>(*t->context_, *t->socket_);
    t->socket_->bind(endpoint);
    t->bound_endpoint_ = t->socket_->get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    const std::string msg = "bind " + endpoint + ": " + e.what();
    switch (e.num()) {
      case EINVAL:
      case EPROTONOSUPPORT:
      case ENODEV:
      case ENOCOMPATPROTO:
        return Status::InvalidArgument(msg +
                                       " (use an IP address of this host or 0.0.0.0, e.g. "
                                       "tcp://0.0.0.0:7700)");
      default:
        return Status::Network(msg, /*retryable=*/false);
    }
  }
  spdlog::debug("transport listening on {} ({})", t->bound_endpoint_,
                t->secure_ ? "CURVE" : "insecure");
  return t;
}

ZmqServerTransport::~ZmqServerTransport() {
  socket_.reset();  // linger 0: queued messages are discarded
  monitor_.reset();
  zap_.reset();
  context_.reset();
}

PeerRefusals ZmqServerTransport::refusals() const { return refusals_->Get(); }

bool ZmqServerTransport::OnHandshakeEvent(uint16_t event, uint32_t value) {
  // ZAP refusals are the ZAP handler's to count and log.
  if (event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
      event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
    return false;
  }
  std::string why;
  if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
    why = secure_ ? "it does not speak CURVE (no keys, or [transport] insecure = true on its side)"
                  : "it speaks CURVE and this node has [transport] insecure = true";
  } else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
    why =
        "its CURVE handshake failed (a secret key that does not match the public key it "
        "claims, or it expects another server key)";
  } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
    // The value is an errno: the peer went away or sent what is not a handshake.
    why = std::string("its handshake did not complete (") + std::strerror(static_cast<int>(value)) +
          (secure_ ? "): a peer without CURVE keys, or one that expects another server key" : ")");
  } else {
    why = "its handshake failed (ZMTP protocol error " + std::to_string(value) + ")";
  }
  refusals_->Note(RefusalLog::Kind::kHandshake, "refused a connection: " + why);
  return false;  // the server goes on waiting
}

bool ZmqServerTransport::Wait(steady_clock::time_point deadline) {
  return WaitReadable(*socket_, monitor_.get(), deadline, [this](uint16_t event, uint32_t value) {
    return OnHandshakeEvent(event, value);
  });
}

Result<bool> ZmqServerTransport::Receive(std::string* peer, std::string* peer_name,
                                         pb::Envelope* message, std::chrono::milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  try {
    for (;;) {
      zmq::message_t id;
      if (!socket_->recv(id, zmq::recv_flags::dontwait)) {
        if (!Wait(deadline)) return false;
        continue;
      }
      std::string reason;
      zmq::message_t body;
      if (!id.more()) {
        reason = "a message without payload";
      } else if (!socket_->recv(body, zmq::recv_flags::dontwait)) {
        reason = "a truncated message";  // parts arrive together; cannot happen
      } else if (body.more()) {
        DrainParts(*socket_, body);
        reason = "a message of more than one part";
      } else {
        reason = Decode(body, message);
      }
      // Fail closed: with CURVE, only a connection the ZAP handler vouched for has a User-Id.
      const char* user_id = nullptr;
      if (reason.empty() && secure_) {
        user_id = zmq_msg_gets(body.handle(), "User-Id");
        if (user_id == nullptr || *user_id == '\0') {
          reason = "a message from a connection no ZAP handler authenticated (no peer name)";
        }
      }
      if (reason.empty()) {
        *peer = HexOf(id.to_string_view());
        *peer_name = user_id != nullptr ? user_id : "";
        return true;
      }
      NoteBadFrame(bad_frames_, last_warning_, bad_frames_warned_,
                   "transport " + bound_endpoint_ + " peer " + HexOf(id.to_string_view()), reason);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return false;
    return ZmqError("receive on " + bound_endpoint_, e);
  }
}

Status ZmqServerTransport::Send(const std::string& peer, const pb::Envelope& message) {
  const std::string where = "send to peer " + peer + " on " + bound_endpoint_;
  std::string id;
  if (!Unhex(peer, &id)) {
    return Status::InvalidArgument(where + ": not a peer id (lower-case hex, from Receive)");
  }
  RS_ASSIGN_OR_RETURN(zmq::message_t body, Encode(message, options_.max_message_bytes, where));
  try {
    zmq::message_t id_frame(id.data(), id.size());
    if (!socket_->send(id_frame, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return Status::Network(where + ": send queue full (" + std::to_string(options_.send_hwm) +
                             " messages); the peer is not reading");
    }
    if (!socket_->send(body, zmq::send_flags::dontwait)) {
      return Status::Network(where + ": send queue full");
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) {
      spdlog::debug("{}: peer is gone, message dropped", where);
      return Status::Ok();
    }
    return ZmqError(where, e);
  }
  return Status::Ok();
}

// ---- client ----

Result<std::unique_ptr<ZmqClientTransport>> ZmqClientTransport::Connect(
    const std::string& endpoint, const ZmqClientSecurity& security, const ZmqOptions& options) {
  RS_RETURN_IF_ERROR(CheckEndpoint(endpoint, Role::kClient));
  if (!security.secret_key.empty()) {
    RS_RETURN_IF_ERROR(CheckKey(security.secret_key, "this node's secret key"));
    RS_RETURN_IF_ERROR(CheckKey(security.public_key, "this node's public key"));
    RS_RETURN_IF_ERROR(CheckKey(security.server_key, "the primary's public key"));
  }
  std::unique_ptr<ZmqClientTransport> t(new ZmqClientTransport());
  t->options_ = options;
  t->security_ = security;
  t->endpoint_ = endpoint;
  try {
    t->context_ = std::make_unique<zmq::context_t>(1);
  } catch (const zmq::error_t& e) {
    return ZmqError("connect to " + endpoint, e);
  }
  RS_RETURN_IF_ERROR(t->OpenSocket());
  return t;
}

ZmqClientTransport::~ZmqClientTransport() {
  socket_.reset();
  monitor_.reset();
  context_.reset();
}

Status ZmqClientTransport::OpenSocket() {
  if (established_) {
    // Closing the socket ends its connection: what was asked on it gets no reply.
    established_ = false;
    ++connections_lost_;
  }
  try {
    socket_.reset();
    monitor_.reset();
    handshake_pending_ = false;
    auto socket = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::dealer);
    ConfigureSocket(*socket, options_, Role::kClient, IsIpv6(endpoint_));
    if (!security_.secret_key.empty()) {
      socket->set(zmq::sockopt::curve_serverkey, security_.server_key);
      socket->set(zmq::sockopt::curve_publickey, security_.public_key);
      socket->set(zmq::sockopt::curve_secretkey, security_.secret_key);
    }
    monitor_ = std::make_unique<HandshakeMonitor>(*context_, *socket);
    socket->connect(endpoint_);
    socket_ = std::move(socket);
  } catch (const zmq::error_t& e) {
    const std::string msg = "connect to " + endpoint_ + ": " + e.what();
    if (e.num() == EINVAL || e.num() == EPROTONOSUPPORT || e.num() == ENOCOMPATPROTO) {
      return Status::InvalidArgument(msg + " (a valid endpoint looks like tcp://10.0.0.1:7700)");
    }
    return Status::Network(msg);
  }
  return Status::Ok();
}

std::string ZmqClientTransport::refusal() const {
  std::lock_guard<std::mutex> lock(refusal_mu_);
  return refusal_;
}

bool ZmqClientTransport::OnHandshakeEvent(uint16_t event, uint32_t value) {
  std::string text;
  switch (event) {
    case ZMQ_EVENT_CONNECTED:
      handshake_pending_ = true;
      return false;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: {
      handshake_pending_ = false;
      established_ = true;
      backoff_ = options_.refused_retry_interval;
      std::lock_guard<std::mutex> lock(refusal_mu_);
      if (!refusal_.empty())
        spdlog::info("transport {}: the primary accepts this node now", endpoint_);
      refusal_.clear();
      refusal_warned_.clear();
      return false;
    }
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      text = "the primary at " + endpoint_ + " refused this node's key " + security_.public_key +
             ": add it to the primary's [peers] (as [peers.<this node's name>] public_key)";
      break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        text = "the peer at " + endpoint_ +
               (security_.secret_key.empty()
                    ? " speaks CURVE and this node has [transport] insecure = true"
                    : " does not speak CURVE (it has [transport] insecure = true)");
      } else {
        text = "the peer at " + endpoint_ + " is not the configured primary (key mismatch)";
      }
      break;
    case ZMQ_EVENT_DISCONNECTED:
      if (established_) {
        established_ = false;
        ++connections_lost_;
        return false;
      }
      // A server that cannot read this end's handshake (another key than the configured one)
      // closes the connection without a word.
      if (!handshake_pending_ || security_.secret_key.empty()) return false;
      handshake_pending_ = false;
      text = "the peer at " + endpoint_ +
             " closed the connection during the CURVE handshake: it is not the configured "
             "primary (key mismatch: check [peers] public_key of the peer with that endpoint), or "
             "it does not speak CURVE ([transport] insecure = true on its side)";
      break;
    default:
      return false;
  }
  handshake_pending_ = false;
  std::lock_guard<std::mutex> lock(refusal_mu_);
  refusal_ = text;
  const auto now = steady_clock::now();
  if (text != refusal_warned_ || now - last_refusal_warning_ >= kClientRefusalWarningInterval) {
    spdlog::warn("transport: {}", text);
    refusal_warned_ = text;
    last_refusal_warning_ = now;
  }
  return true;
}

void ZmqClientTransport::BackOff() {
  socket_.reset();
  monitor_.reset();
  handshake_pending_ = false;
  if (backoff_ <= std::chrono::milliseconds::zero()) backoff_ = options_.refused_retry_interval;
  reopen_at_ = steady_clock::now() + backoff_;
  spdlog::debug("transport {}: refused; trying again in {} ms", endpoint_, backoff_.count());
  backoff_ = std::min(backoff_ * 2, options_.refused_retry_interval_max);
}

bool ZmqClientTransport::Wait(steady_clock::time_point deadline) {
  for (;;) {
    if (socket_ == nullptr) {
      std::this_thread::sleep_until(std::min(deadline, reopen_at_));
      if (steady_clock::now() < reopen_at_) return false;
      if (!OpenSocket().ok()) return false;
    }
    bool refused = false;
    const bool readable =
        WaitReadable(*socket_, monitor_.get(), deadline, [&](uint16_t event, uint32_t value) {
          const bool r = OnHandshakeEvent(event, value);
          refused |= r;
          return r;
        });
    if (!refused) return readable;
    BackOff();
  }
}

Status ZmqClientTransport::Reconnect() {
  spdlog::debug("transport: reconnecting to {}", endpoint_);
  return OpenSocket();
}

Result<bool> ZmqClientTransport::Receive(pb::Envelope* message, std::chrono::milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  try {
    for (;;) {
      zmq::message_t frame;
      // No socket: backing off after a refusal (Wait opens a new one when it is time).
      if (socket_ == nullptr || !socket_->recv(frame, zmq::recv_flags::dontwait)) {
        if (!Wait(deadline)) return false;
        continue;
      }
      std::string reason;
      if (frame.more()) {
        DrainParts(*socket_, frame);
        reason = "a message of more than one part";
      } else {
        reason = Decode(frame, message);
      }
      if (reason.empty()) return true;
      NoteBadFrame(bad_frames_, last_warning_, bad_frames_warned_, "transport " + endpoint_,
                   reason);
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return false;
    return ZmqError("receive from " + endpoint_, e);
  }
}

Result<bool> ZmqClientTransport::WaitForMessage(std::chrono::milliseconds timeout) {
  const std::string where = "wait for a message from " + endpoint_;
  try {
    return Wait(steady_clock::now() + timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return false;
    return ZmqError(where, e);
  }
}

Status ZmqClientTransport::Send(const pb::Envelope& message) {
  const std::string where = "send to " + endpoint_;
  RS_ASSIGN_OR_RETURN(zmq::message_t body, Encode(message, options_.max_message_bytes, where));
  if (socket_ == nullptr && steady_clock::now() >= reopen_at_) RS_RETURN_IF_ERROR(OpenSocket());
  if (socket_ == nullptr) {
    return Status::Network(
        where + ": " + refusal() + " (trying again in " +
        std::to_string(
            std::chrono::ceil<std::chrono::seconds>(reopen_at_ - steady_clock::now()).count()) +
        " s)");
  }
  try {
    if (!socket_->send(body, zmq::send_flags::none)) {
      // A refused handshake is the likeliest reason: say so.
      if (monitor_->Drain(
              [this](uint16_t event, uint32_t value) { return OnHandshakeEvent(event, value); })) {
        BackOff();
      }
      const std::string why = refusal();
      return Status::Network(where + ": not connected (or the queue is full) after " +
                             std::to_string(options_.send_timeout.count()) + " ms" +
                             (why.empty() ? "" : ": " + why));
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return Status::Network(where + ": interrupted");
    return ZmqError(where, e);
  }
  return Status::Ok();
}

}  // namespace replsync
