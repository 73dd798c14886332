#include "sync/wire/tree_client.h"

#include <fmt/format.h>

#include <deque>
#include <utility>

#include "sync/path_text.h"
#include "sync/wire/zmq_transport.h"

namespace replsync {
Result<std::unique_ptr<TreeClient>> TreeClient::Connect(const std::string& endpoint,
                                                        const ZmqClientSecurity& security,
                                                        const Options& options) {
  ZmqOptions zopts;
  zopts.send_timeout = std::chrono::milliseconds(5000);
  auto transport = ZmqClientTransport::Connect(endpoint, security, zopts);
  if (!transport.ok()) {
    return transport.status().WithContext("connect to the primary at " + endpoint);
  }
  return std::make_unique<TreeClient>(std::move(transport).value(), endpoint, options);
}

TreeClient::TreeClient(std::unique_ptr<ClientTransport> transport, std::string endpoint,
                       Options options)
    : transport_(std::move(transport)), endpoint_(std::move(endpoint)), options_(options) {}

TreeClient::~TreeClient() {
  if (session_.empty()) return;
  (void)SayHello();
  pb::Envelope close;
  close.mutable_tree_request()->set_request_id(++next_id_);
  close.mutable_tree_request()->set_session(session_);
  close.mutable_tree_request()->set_close(true);
  (void)transport_->Send(close);
}

Result<pb::TreeReply> TreeClient::Open(bool deep, const std::vector<std::string>& resync_paths) {
  std::vector<std::vector<std::string>> runs = SplitPathsForRequests(resync_paths);
  if (runs.empty()) runs.emplace_back();
  for (size_t i = 0;; ++i) {
    const bool last = i + 1 == runs.size();
    pb::TreeRequest request;
    request.set_open(true);
    for (std::string& path : runs[i]) request.add_resync_paths(std::move(path));
    request.set_deep(deep && last);
    RS_ASSIGN_OR_RETURN(pb::TreeReply reply,
                        Ask(std::move(request),
                            deep && last ? options_.deep_open_timeout : options_.reply_timeout));
    // The primary keeps one session per client: this one replaced the previous.
    session_ = reply.session();
    if (last) return reply;
  }
}

Result<std::map<std::string, std::vector<pb::TreeNode>>> TreeClient::List(
    const std::vector<std::string>& dirs) {
  std::map<std::string, std::vector<pb::TreeNode>> out;
  std::deque<std::pair<std::string, std::string>> todo;  // (dir, after)
  for (const std::string& d : dirs) todo.emplace_back(d, "");
  while (!todo.empty()) {
    pb::TreeRequest request;
    request.set_session(session_);
    for (size_t i = 0; i < todo.size() && i < kDirsPerRequest; ++i) {
      request.add_dirs(todo[i].first);
      request.add_after(todo[i].second);
    }
    RS_ASSIGN_OR_RETURN(pb::TreeReply reply, Ask(request, options_.reply_timeout));
    if (reply.listings_size() == 0) {
      return Status::Corruption("the primary answered a listing request with no listing");
    }
    for (const pb::TreeListing& listing : reply.listings()) {
      if (todo.empty() || todo.front().first != listing.dir()) {
        return Status::Corruption(
            fmt::format("the primary listed {} out of order", QuotePath(listing.dir())));
      }
      std::vector<pb::TreeNode>& nodes = out[listing.dir()];
      listed_nodes_ += static_cast<uint64_t>(listing.nodes_size());
      for (const pb::TreeNode& n : listing.nodes()) nodes.push_back(n);
      std::pair<std::string, std::string> front = std::move(todo.front());
      todo.pop_front();
      if (listing.truncated() && !nodes.empty()) {
        todo.emplace_front(front.first, nodes.back().name());
        break;  // the reply's budget ran out here
      }
    }
  }
  return out;
}

Status TreeClient::SayHello() {
  pb::Envelope hello;
  hello.mutable_hello()->set_node_name(options_.node_name);
  hello.mutable_hello()->set_tree_only(true);
  return transport_->Send(hello);
}

Result<pb::TreeReply> TreeClient::Ask(pb::TreeRequest request, std::chrono::seconds timeout) {
  const uint64_t id = ++next_id_;
  request.set_request_id(id);
  pb::Envelope envelope;
  *envelope.mutable_tree_request() = std::move(request);
  ++requests_;
  Status sent = SayHello();
  if (sent.ok()) sent = transport_->Send(envelope);
  if (!sent.ok()) {
    return Status::Network(fmt::format(
        "the primary's replsyncd at {} cannot be reached ({}); is it running, and is [transport] "
        "primary right?",
        endpoint_, sent.message()));
  }
  Clock& clock = *options_.clock;
  const auto deadline = clock.Now() + timeout;
  while (clock.Now() < deadline) {
    pb::Envelope message;
    auto got = transport_->Receive(&message, std::chrono::milliseconds(200));
    if (!got.ok()) {
      return Status::Network(
          fmt::format("receive from the primary at {}: {}", endpoint_, got.status().message()));
    }
    if (*got && message.has_error() && message.error().fatal()) {
      return Status::Aborted(
          fmt::format("the primary at {}: {}", endpoint_, message.error().message()));
    }
    if (!*got || !message.has_tree_reply() || message.tree_reply().request_id() != id) continue;
    pb::TreeReply reply = std::move(*message.mutable_tree_reply());
    if (!reply.error().empty()) {
      return Status::Aborted(fmt::format("the primary at {}: {}", endpoint_, reply.error()));
    }
    return reply;
  }
  return Status::Network(
      fmt::format("the primary's replsyncd at {} did not answer within {} s (an older replsyncd "
                  "that does not know verify's tree requests, or it is busy)",
                  endpoint_, timeout.count()));
}

}  // namespace replsync
