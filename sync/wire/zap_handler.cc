#include "sync/wire/zap_handler.h"

#include <spdlog/spdlog.h>
#include <zmq.h>

#include <zmq.hpp>

#include "sync/text.h"

namespace replsync {

namespace {

// The Z85 text of a 32-byte key; "" when it is not 32 bytes.
std::string Z85Key(const std::string& binary) {
  if (binary.size() != 32) return "";
  char text[41] = {};
  if (zmq_z85_encode(text, reinterpret_cast<const uint8_t*>(binary.data()), 32) == nullptr) {
    return "";
  }
  return text;
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ZapReply DecideZap(const ZapRequest& request, const std::map<std::string, std::string>& peers) {
  if (request.version != "1.0") {
    return {"500", "unsupported ZAP version " + request.version, ""};
  }
  if (request.mechanism != "CURVE") {
    return {"400", "mechanism " + request.mechanism + " is not allowed (CURVE only)", ""};
  }
  if (request.credentials.size() != 1) {
    return {"400", "CURVE credentials must be one public key", ""};
  }
  const std::string key = Z85Key(request.credentials[0]);
  if (key.empty()) return {"400", "a CURVE public key is 32 bytes", ""};
  auto it = peers.find(key);
  if (it == peers.end()) return {"400", "its key " + key + " is not in [peers]", ""};
  return {"200", "OK", it->second};
}

void RefusalLog::Note(Kind kind, const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  ++refusals_.count;
  refusals_.last = text;
  refusals_.last_unix_ms = NowUnixMs();
  Warned& w = warned_[static_cast<int>(kind)];
  ++w.count;
  const auto now = std::chrono::steady_clock::now();
  if (w.warned == 0 || now - w.last >= kWarningInterval) {
    const uint64_t since = w.count - w.warned;
    spdlog::warn("transport {}: {}{}", where_, text,
                 since > 1 ? fmt::format(" ({} like it since the last warning)", since) : "");
    w.last = now;
    w.warned = w.count;
  }
}

PeerRefusals RefusalLog::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refusals_;
}

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& context,
                                                      std::map<std::string, std::string> peers,
                                                      RefusalLog* refusals) {
  std::unique_ptr<ZapHandler> handler(new ZapHandler());
  handler->peers_ = std::move(peers);
  handler->refusals_ = refusals;
  try {
    handler->socket_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::rep);
    handler->socket_->set(zmq::sockopt::linger, 0);
    handler->socket_->bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    return Status::Network(std::string("start the ZAP handler (") + kZapEndpoint + "): " + e.what(),
                           /*retryable=*/false);
  }
  // The socket moves to the handler's thread (thread creation is a full memory barrier).
  handler->thread_ = std::thread([h = handler.get()] { h->Run(); });
  return handler;
}

ZapHandler::~ZapHandler() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  socket_.reset();
}

void ZapHandler::Run() {
  while (!stop_) {
    try {
      zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0) continue;
      std::vector<std::string> frames;
      bool more = true;
      while (more) {
        zmq::message_t part;
        if (!socket_->recv(part, zmq::recv_flags::dontwait)) break;
        more = part.more();
        if (frames.size() < 16) frames.push_back(part.to_string());
      }
      ZapRequest request;
      if (frames.size() >= 6) {
        request.version = frames[0];
        request.request_id = frames[1];
        request.domain = frames[2];
        request.address = frames[3];
        request.routing_id = frames[4];
        request.mechanism = frames[5];
        request.credentials.assign(frames.begin() + 6, frames.end());
      }
      ZapReply reply = frames.size() >= 6 ? DecideZap(request, peers_)
                                          : ZapReply{"500", "malformed ZAP request", ""};
      ++requests_;
      if (reply.status_code != "200") {
        refusals_->Note(RefusalLog::Kind::kKey, "refused " + (request.address.empty() ? "a peer" : request.address) +
                        ": " + reply.status_text);
      }
      const std::string version = "1.0";
      for (const std::string* part : std::initializer_list<const std::string*>{
               &version, &request.request_id, &reply.status_code, &reply.status_text,
               &reply.user_id}) {
        socket_->send(zmq::buffer(*part), zmq::send_flags::sndmore);
      }
      socket_->send(zmq::message_t(), zmq::send_flags::none);  // no metadata
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      if (e.num() == EINTR) continue;
      spdlog::error("transport: the ZAP handler failed: {}; no new peer can connect", e.what());
      return;
    }
  }
}

}  // namespace replsync
