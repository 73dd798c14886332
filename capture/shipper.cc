#include "capture/shipper.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zstd.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <utility>

#include "sync/files/repository_path.h"
#include "sync/path_text.h"
#include "sync/text.h"
#include "sync/wire/fork_point.h"

namespace replsync::capture {

namespace {
// The first byte of a serialized JournalEntry whose body is `file` (field 2, length-delimited).
constexpr uint8_t kFileEntryTag = (2 << 3) | 2;
}  // namespace

namespace {

constexpr char kPeersKey[] = "shipper.peers";

std::string DurableKey(const std::string& name) { return "peer." + name + ".durable"; }
std::string AppliedKey(const std::string& name) { return "peer." + name + ".applied"; }

// Seconds since the epoch, as Entries and Heartbeat carry them.
uint32_t UnixSeconds(const Clock& clock) {
  return static_cast<uint32_t>(clock.UnixMillis() / 1000);
}

// a + b, or the largest value when that overflows (a credit window past the last sequence).
uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

// The first bad path of `paths` with what is wrong with it ("" and Ok when all are good);
// `allow_root`: "" (the repository's root) is good too (a listing of the root folder).
Status CheckPeerPaths(const google::protobuf::RepeatedPtrField<std::string>& paths,
                      bool allow_root) {
  for (const std::string& path : paths) {
    if (allow_root && path.empty()) continue;
    Status checked = CheckRepositoryPath(path);
    if (!checked.ok()) return checked;
  }
  return Status::Ok();
}

}  // namespace

Shipper::Shipper(Journal* journal, std::unique_ptr<ServerTransport> transport,
                 ShipperOptions options, Clock& clock)
    : journal_(journal),
      transport_(std::move(transport)),
      options_(std::move(options)),
      configured_(options_.peers.begin(), options_.peers.end()),
      clock_(clock),
      cctx_(ZSTD_createCCtx()) {}

Shipper::~Shipper() { Stop(); }

uint64_t Shipper::Shippable() const {
  uint64_t last = journal_->last_seq();
  if (!options_.shippable_seq) return last;
  return std::min(last, options_.shippable_seq());
}

Status Shipper::LoadKnown() {
  RS_ASSIGN_OR_RETURN(std::optional<std::string> list, journal_->GetMeta(kPeersKey));
  std::map<std::string, Known> known;
  if (list.has_value()) {
    size_t start = 0;
    while (start < list->size()) {
      size_t end = list->find('\n', start);
      if (end == std::string::npos) end = list->size();
      std::string name = list->substr(start, end - start);
      start = end + 1;
      if (name.empty()) continue;
      if (!configured_.count(name)) {
        // Removed from [peers]: what it pinned is released (the list is written without it).
        spdlog::info(
            "shipper: secondary {} is no longer in [peers]: the journal entries it "
            "pinned are released",
            name);
        list_dirty_ = true;
        continue;
      }
      Known k;
      k.seen = true;
      RS_ASSIGN_OR_RETURN(std::optional<std::string> durable, journal_->GetMeta(DurableKey(name)));
      RS_ASSIGN_OR_RETURN(std::optional<std::string> applied, journal_->GetMeta(AppliedKey(name)));
      if (durable.has_value() && !ParseU64(*durable, &k.durable_seq)) {
        return Status::Corruption(
            fmt::format("journal {}: bad {} '{}'", journal_->path(), DurableKey(name), *durable));
      }
      if (applied.has_value() && !ParseU64(*applied, &k.applied_seq)) {
        return Status::Corruption(
            fmt::format("journal {}: bad {} '{}'", journal_->path(), AppliedKey(name), *applied));
      }
      known[name] = k;
    }
  }
  // A configured secondary that never said Hello pins everything until it does.
  for (const std::string& name : configured_) known.try_emplace(name);
  std::lock_guard<std::mutex> lock(mu_);
  known_ = std::move(known);
  return Status::Ok();
}

Status Shipper::Start() {
  if (running_) return Status::Internal("shipper already running");
  if (!options_.submit_retention) {
    return Status::InvalidArgument(
        "shipper: no journal writer to hand retention to (ShipperOptions::submit_retention)");
  }
  list_dirty_ = false;
  RS_RETURN_IF_ERROR(LoadKnown());
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string names;
    for (const auto& [name, k] : known_) {
      names += fmt::format("{}{} (durable {}, applied {})", names.empty() ? "" : ", ", name,
                           k.durable_seq, k.applied_seq);
      if (!k.seen) {
        spdlog::warn(
            "shipper: secondary {} in [peers] has never connected: the journal keeps "
            "every entry for it until it does (remove it from [peers] if it is not "
            "coming)",
            name);
      }
    }
    spdlog::info("shipper: serving journal {} (entries {}..{}) at {}; secondaries ([peers]): {}",
                 journal_->path(), journal_->first_seq(), journal_->last_seq(), options_.endpoint,
                 names.empty() ? "none configured" : names);
  }
  sessions_.clear();
  {
    std::lock_guard<std::mutex> lock(retention_mu_);
    retention_failed_.reset();
  }
  stop_ = false;
  running_ = true;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void Shipper::Stop() {
  if (!running_) return;
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  running_ = false;
}

ShipperStatus Shipper::status() const {
  ShipperStatus s;
  s.running = running_;
  s.endpoint = options_.endpoint;
  s.journal_first_seq = journal_->first_seq();
  s.journal_last_seq = journal_->last_seq();
  s.shippable_seq = Shippable();
  s.retained_from = s.journal_first_seq;
  std::lock_guard<std::mutex> lock(mu_);
  s.entries_sent = entries_sent_;
  s.bytes_sent = bytes_sent_;
  s.abandoned_file_parts = abandoned_file_parts_;
  s.refused_requests = refused_requests_;
  s.last_error = last_error_;
  s.refused_peers = transport_->refusals();
  s.bad_frames = transport_->bad_frames();  // the transport counts them for any thread
  for (const auto& [name, k] : known_) {
    PeerStatus p;
    p.name = name;
    p.peer_id = k.peer_id;
    p.connected = !k.peer_id.empty();
    p.durable_seq = k.durable_seq;
    p.applied_seq = k.applied_seq;
    p.sent_seq = k.sent_seq;
    p.lag_entries = s.shippable_seq > k.applied_seq ? s.shippable_seq - k.applied_seq : 0;
    p.last_seen_unix_ms = k.last_seen_unix_ms;
    p.ever_connected = k.seen;
    p.last_error = k.last_error;
    s.peers.push_back(std::move(p));
  }
  return s;
}

void Shipper::Run() {
  while (!stop_) {
    const uint64_t shippable = Shippable();
    bool sent = false;
    for (auto& [peer, session] : sessions_) {
      if (!options_.hold_entries || !options_.hold_entries(session.name)) {
        sent |= Pump(peer, session, shippable);
      }
    }
    // Wait for a message unless there may be more to send right away.
    bool more = sent || notified_.exchange(false);
    std::string peer;
    std::string peer_name;
    pb::Envelope message;
    auto received = transport_->Receive(
        &peer, &peer_name, &message, more ? std::chrono::milliseconds(0) : options_.poll_interval);
    TimePoint now = clock_.Now();
    if (!received.ok()) {
      spdlog::error("shipper: receive at {}: {}", options_.endpoint, received.status().ToString());
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = received.status().ToString();
    } else if (*received) {
      Handle(peer, peer_name, message, now);
      // Take what else is waiting before sending more.
      for (int i = 0; i < 64 && !stop_; ++i) {
        auto again = transport_->Receive(&peer, &peer_name, &message, std::chrono::milliseconds(0));
        if (!again.ok() || !*again) break;
        Handle(peer, peer_name, message, clock_.Now());
      }
    }
    now = clock_.Now();
    // A switchover's handover (or its withdrawal) goes out at once, not at the next interval.
    std::optional<RoleKeeper::Handover> handover;
    if (options_.role != nullptr) handover = options_.role->handover();
    if (now - last_heartbeat_ >= options_.heartbeat_interval || handover != last_handover_) {
      last_heartbeat_ = now;
      last_handover_ = std::move(handover);
      SendHeartbeats(Shippable());
    }
    DropSilent(now);
    ApplyPins();
    ServeTreeSnapshots(now);
    ServeBootstrapReplies();
    if (now - last_retention_ >= options_.retention_interval) {
      last_retention_ = now;
      Retain();
    }
    if (options_.after_round) options_.after_round();
  }
  // The last positions: after the outstanding retention, one more, and wait for it (its `done`
  // refers to this shipper).
  WaitForRetention();
  Retain();
  WaitForRetention();
  {
    // Pins not taken: their callers are told the shipper stopped.
    std::lock_guard<std::mutex> lock(pin_mu_);
    for (const std::shared_ptr<PinRequest>& pin : pins_) pin->done = true;
    pins_.clear();
  }
  pin_cv_.notify_all();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, k] : known_) k.peer_id.clear();
  sessions_.clear();
}

void Shipper::Handle(const std::string& peer, const std::string& peer_name, pb::Envelope& message,
                     TimePoint now) {
  if (message.has_hello()) return OnHello(peer, peer_name, message.hello(), now);
  if (message.has_tree_request()) return OnTreeRequest(peer, message.tree_request(), now);
  if (message.has_bootstrap_request()) {
    return OnBootstrapRequest(peer, message.bootstrap_request(), now);
  }
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) {
    // A peer id without a session (it went silent, or never said Hello): ask for a Hello by
    // telling it so; its next Hello starts a session.
    if (message.has_ack() || message.has_heartbeat() || message.has_file_resync()) {
      if (message.has_file_resync()) {
        WarnRefused("no-session",
                    fmt::format("a FileResync from peer {} without a session is "
                                "refused (it must say Hello first)",
                                peer),
                    now);
      }
      SendError(peer, "", "no session for this connection: say Hello", false);
    }
    return;
  }
  Session& session = it->second;
  session.last_heard = now;
  if (message.has_file_resync()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      known_[session.name].last_seen_unix_ms = clock_.UnixMillis();
    }
    return OnFileResync(peer, session.name, message.file_resync(), now);
  }
  std::lock_guard<std::mutex> lock(mu_);
  Known& known = known_[session.name];
  known.last_seen_unix_ms = clock_.UnixMillis();
  if (message.has_ack()) {
    const pb::Ack& ack = message.ack();
    // Never beyond what this session was sent (a forged or confused Ack must not let retention
    // delete what the secondary does not hold); no sum here can overflow.
    uint64_t durable = ack.durable_seq();
    if (durable > session.confirmable) {
      WarnRefused(
          "ack",
          fmt::format("secondary {} (peer {}) acknowledges sequence {} but was only "
                      "sent up to {}: counted as {}",
                      session.name, peer, durable, session.confirmable, session.confirmable),
          now);
      durable = session.confirmable;
    }
    if (durable > known.durable_seq) {
      known.durable_seq = durable;
      known.dirty = true;
    }
    const uint64_t applied = std::min<uint64_t>(ack.applied_seq(), session.confirmable);
    if (applied != known.applied_seq) {
      known.applied_seq = applied;
      known.dirty = true;
    }
    session.window_end = SaturatingAdd(durable, ack.credit());
  } else if (message.has_heartbeat()) {
    const uint64_t applied =
        std::min<uint64_t>(message.heartbeat().last_seq(), session.confirmable);
    if (applied != known.applied_seq) {
      known.applied_seq = applied;
      known.dirty = true;
    }
  } else if (message.has_error()) {
    const pb::Error& error = message.error();
    known.last_error = error.message();
    if (error.fatal()) {
      spdlog::error("shipper: secondary {} reports a fatal error and ends its session: {}",
                    session.name, error.message());
      known.peer_id.clear();
      sessions_.erase(it);
    } else {
      spdlog::warn("shipper: secondary {} reports: {}", session.name, error.message());
    }
  }
}

void Shipper::WarnRefused(const std::string& kind, const std::string& text, TimePoint now) {
  ++refused_requests_;
  Warned& w = warned_[kind];
  if (w.ever && now - w.last < options_.refused_warning_interval) {
    ++w.suppressed;
    return;
  }
  if (w.suppressed > 0) {
    spdlog::warn("shipper: refused: {} ({} more like it since the last warning)", text,
                 w.suppressed);
  } else {
    spdlog::warn("shipper: refused: {}", text);
  }
  w.ever = true;
  w.last = now;
  w.suppressed = 0;
}

void Shipper::OnFileResync(const std::string& peer, const std::string& name,
                           const pb::FileResync& resync, TimePoint now) {
  Status checked = CheckPeerPaths(resync.paths(), /*allow_root=*/false);
  if (!checked.ok()) {
    const std::string text = fmt::format(
        "FileResync refused: {}; nothing was journaled (a path must be relative to "
        "the repository, without empty, '.' or '..' components)",
        checked.message());
    WarnRefused("path", fmt::format("secondary {} (peer {}): {}", name, peer, text), now);
    SendError(peer, name, text, false);
    return;
  }
  std::vector<std::string> paths(resync.paths().begin(), resync.paths().end());
  spdlog::info("shipper: secondary {} asks for {} path(s) of the repository whole", name,
               paths.size());
  if (options_.on_file_resync) options_.on_file_resync(paths);
}

void Shipper::RefuseTree(const std::string& peer, uint64_t request_id, const std::string& kind,
                         const std::string& error, TimePoint now) {
  WarnRefused(kind, fmt::format("verify's request from peer {}: {}", peer, error), now);
  pb::Envelope reply;
  pb::TreeReply* r = reply.mutable_tree_reply();
  r->set_request_id(request_id);
  r->set_error(error);
  (void)transport_->Send(peer, reply);
}

bool Shipper::TakeDeepToken(const std::string& name, TimePoint now) {
  const size_t burst = std::max<size_t>(options_.deep_open_burst, 1);
  auto [it, inserted] = deep_buckets_.try_emplace(name);
  DeepBucket& bucket = it->second;
  if (inserted) {
    bucket.tokens = burst;
    bucket.refilled = now;
  }
  const auto interval = std::max(options_.deep_open_interval, std::chrono::milliseconds(1));
  if (now > bucket.refilled) {
    const auto earned = static_cast<uint64_t>((now - bucket.refilled) / interval);
    if (earned > 0) {
      bucket.tokens = static_cast<size_t>(
          std::min<uint64_t>(burst, bucket.tokens + std::min<uint64_t>(earned, burst)));
      bucket.refilled += interval * earned;
    }
  }
  if (bucket.tokens == 0) return false;
  --bucket.tokens;
  return true;
}

void Shipper::OnTreeRequest(const std::string& peer, const pb::TreeRequest& request,
                            TimePoint now) {
  auto peer_it = tree_peers_.find(peer);
  if (peer_it == tree_peers_.end()) {
    return RefuseTree(peer, request.request_id(), "tree-hello",
                      "a tree request needs a Hello{tree_only} on this connection first (verify "
                      "and repair of this version say it; update the replsync tool)",
                      now);
  }
  peer_it->second.last_heard = now;
  const std::string name = peer_it->second.name;
  // Paths are checked before anything is read.
  Status checked = CheckPeerPaths(request.resync_paths(), /*allow_root=*/false);
  if (checked.ok()) checked = CheckPeerPaths(request.dirs(), /*allow_root=*/true);
  if (!checked.ok()) {
    return RefuseTree(peer, request.request_id(), "path",
                      fmt::format("refused: {}; a path must be relative to the repository, "
                                  "without empty, '.' or '..' components",
                                  checked.message()),
                      now);
  }
  pb::Envelope reply;
  pb::TreeReply* r = reply.mutable_tree_reply();
  r->set_request_id(request.request_id());
  if (request.open()) {
    if (tree_pending_.count(name) > 0) {
      return RefuseTree(peer, request.request_id(), "tree-busy",
                        fmt::format("a snapshot for {} is still being taken: one at a time per "
                                    "peer; wait for it",
                                    name),
                        now);
    }
    if (request.deep() && !TakeDeepToken(name, now)) {
      return RefuseTree(
          peer, request.request_id(), "deep",
          fmt::format("too many deep snapshots for {}: at most {} at once, then one every {} s; "
                      "try again later, or verify without --deep",
                      name, options_.deep_open_burst, options_.deep_open_interval.count() / 1000),
          now);
    }
    if (!options_.on_tree_snapshot) {
      r->set_error(
          "this primary replicates no repository ([repository] path is not set in its "
          "configuration): there are no files to compare");
      (void)transport_->Send(peer, reply);
      return;
    }
    spdlog::info("shipper: verify asks for a snapshot of the repository{}{}",
                 request.deep() ? " (deep: every file is read again)" : "",
                 request.resync_paths_size() > 0 ? fmt::format(" after journaling {} path(s) whole",
                                                               request.resync_paths_size())
                                                 : std::string());
    std::vector<std::string> paths(request.resync_paths().begin(), request.resync_paths().end());
    const uint64_t id = request.request_id();
    tree_pending_.insert(name);
    options_.on_tree_snapshot(
        request.deep(), std::move(paths),
        [this, peer, name, id](Result<FileTreeSnapshot> snapshot) {
          {
            std::lock_guard<std::mutex> lock(tree_mu_);
            tree_done_.push_back(TreeDone{peer, name, id, std::move(snapshot)});
          }
          Notify();
        });
    return;
  }
  auto it = tree_sessions_.find(request.session());
  // Another peer's session is not this peer's to list or close.
  if (it != tree_sessions_.end() && it->second.owner != name) it = tree_sessions_.end();
  if (request.close()) {
    if (it != tree_sessions_.end()) tree_sessions_.erase(it);
    (void)transport_->Send(peer, reply);
    return;
  }
  if (it == tree_sessions_.end()) {
    r->set_error(fmt::format(
        "no verify session '{}' on the primary (sessions end after {} s without a request, or "
        "when the primary's daemon restarts): run verify again",
        request.session(), options_.tree_session_idle.count() / 1000));
    (void)transport_->Send(peer, reply);
    return;
  }
  it->second.last_used = now;
  const FileTreeSnapshot& snapshot = it->second.snapshot;
  r->set_session(it->first);
  r->set_journal_seq(snapshot.journal_seq);
  r->set_root_hash(snapshot.tree->root_hash());
  r->set_paths(snapshot.tree->size());
  size_t budget = options_.tree_reply_nodes;
  for (int i = 0; i < request.dirs_size() && budget > 0; ++i) {
    pb::TreeListing* listing = r->add_listings();
    snapshot.tree->Listing(request.dirs(i), i < request.after_size() ? request.after(i) : "",
                           budget, listing);
    budget -= std::min(budget, static_cast<size_t>(listing->nodes_size()));
  }
  Status sent = transport_->Send(peer, reply);
  if (!sent.ok()) spdlog::warn("shipper: verify's tree reply not sent: {}", sent.message());
}

void Shipper::ServeTreeSnapshots(TimePoint now) {
  std::vector<TreeDone> done;
  {
    std::lock_guard<std::mutex> lock(tree_mu_);
    done.swap(tree_done_);
  }
  for (TreeDone& d : done) {
    tree_pending_.erase(d.name);
    pb::Envelope reply;
    pb::TreeReply* r = reply.mutable_tree_reply();
    r->set_request_id(d.request_id);
    if (!d.snapshot.ok()) {
      r->set_error(d.snapshot.status().message());
    } else {
      // One open session per peer name: the new one replaces the older.
      for (auto old = tree_sessions_.begin(); old != tree_sessions_.end();) {
        old = old->second.owner == d.name ? tree_sessions_.erase(old) : std::next(old);
      }
      while (tree_sessions_.size() >= std::max<size_t>(options_.max_tree_sessions, 1)) {
        auto oldest = std::min_element(
            tree_sessions_.begin(), tree_sessions_.end(),
            [](const auto& a, const auto& b) { return a.second.last_used < b.second.last_used; });
        tree_sessions_.erase(oldest);
      }
      const std::string id = fmt::format("{:x}-{}", static_cast<uint64_t>(clock_.UnixMillis()),
                                         ++tree_session_counter_);
      TreeSession& session = tree_sessions_[id];
      session.snapshot = std::move(d.snapshot).value();
      session.last_used = now;
      session.owner = d.name;
      r->set_session(id);
      r->set_journal_seq(session.snapshot.journal_seq);
      r->set_root_hash(session.snapshot.tree->root_hash());
      r->set_paths(session.snapshot.tree->size());
    }
    Status sent = transport_->Send(d.peer, reply);
    if (!sent.ok()) spdlog::warn("shipper: verify's snapshot reply not sent: {}", sent.message());
  }
  for (auto it = tree_sessions_.begin(); it != tree_sessions_.end();) {
    it = now - it->second.last_used > options_.tree_session_idle ? tree_sessions_.erase(it)
                                                                 : std::next(it);
  }
  for (auto it = tree_peers_.begin(); it != tree_peers_.end();) {
    const std::string name = it->second.name;
    auto pending = bootstrap_pending_.find(name);
    const bool idle = now - it->second.last_heard > options_.tree_session_idle &&
                      tree_pending_.count(name) == 0 &&
                      (pending == bootstrap_pending_.end() || pending->second == 0);
    if (!idle) {
      ++it;
      continue;
    }
    it = tree_peers_.erase(it);
    TreePeerGone(name);
  }
}

void Shipper::TreePeerGone(const std::string& name) {
  for (const auto& [peer, tree_peer] : tree_peers_) {
    if (tree_peer.name == name) return;
  }
  if (options_.on_tree_peer_gone) options_.on_tree_peer_gone(name);
}

void Shipper::OnBootstrapRequest(const std::string& peer, const pb::BootstrapRequest& request,
                                 TimePoint now) {
  pb::Envelope reply;
  reply.set_version(kProtocolVersion);
  pb::BootstrapReply* r = reply.mutable_bootstrap_reply();
  r->set_request_id(request.request_id());
  auto peer_it = tree_peers_.find(peer);
  if (peer_it == tree_peers_.end()) {
    r->set_error(
        "a bootstrap request needs a Hello{tree_only} on this connection first (the bootstrap of "
        "this version says it; update replsync on the secondary)");
    WarnRefused("bootstrap-hello",
                fmt::format("bootstrap request from peer {}: {}", peer, r->error()), now);
    (void)transport_->Send(peer, reply);
    return;
  }
  peer_it->second.last_heard = now;
  const std::string name = peer_it->second.name;
  if (!options_.on_bootstrap_request) {
    r->set_error("this primary's replsyncd serves no bootstrap");
    (void)transport_->Send(peer, reply);
    return;
  }
  size_t& pending = bootstrap_pending_[name];
  if (pending >= std::max<size_t>(options_.max_bootstrap_pending, 1)) {
    r->set_error(
        fmt::format("{} bootstrap requests of {} are being served already; wait for "
                    "their replies",
                    pending, name));
    WarnRefused("bootstrap-busy", fmt::format("peer {}: {}", peer, r->error()), now);
    (void)transport_->Send(peer, reply);
    return;
  }
  ++pending;
  options_.on_bootstrap_request(name, request, [this, peer, name](pb::BootstrapReply done) {
    {
      std::lock_guard<std::mutex> lock(bootstrap_mu_);
      bootstrap_done_.push_back(BootstrapDone{peer, name, std::move(done)});
    }
    Notify();
  });
}

void Shipper::ServeBootstrapReplies() {
  std::vector<BootstrapDone> done;
  {
    std::lock_guard<std::mutex> lock(bootstrap_mu_);
    done.swap(bootstrap_done_);
  }
  for (BootstrapDone& d : done) {
    auto pending = bootstrap_pending_.find(d.name);
    if (pending != bootstrap_pending_.end() && pending->second > 0) --pending->second;
    pb::Envelope reply;
    reply.set_version(kProtocolVersion);
    *reply.mutable_bootstrap_reply() = std::move(d.reply);
    Status sent = transport_->Send(d.peer, reply);
    if (!sent.ok()) {
      spdlog::warn("shipper: bootstrap reply to {} not sent: {}", d.name, sent.message());
    }
  }
}

Status Shipper::Pin(const std::string& name, uint64_t seq, std::chrono::milliseconds timeout) {
  if (!configured_.count(name)) {
    return Status::NotFound(fmt::format("{} is not a secondary in this primary's [peers]", name));
  }
  if (!running_) {
    return Status::Unavailable(fmt::format(
        "the shipper is not running: entries from {} cannot be kept for {}", seq, name));
  }
  auto pin = std::make_shared<PinRequest>();
  pin->name = name;
  pin->seq = seq;
  {
    std::lock_guard<std::mutex> lock(pin_mu_);
    pins_.push_back(pin);
  }
  Notify();
  {
    std::unique_lock<std::mutex> lock(pin_mu_);
    const bool taken = clock_.WaitFor(pin_cv_, lock, timeout, [&] { return pin->done; });
    if (!taken || !pin->taken) {
      pins_.erase(std::remove(pins_.begin(), pins_.end(), pin), pins_.end());
      return Status::Unavailable(fmt::format(
          "the shipper did not take the pin of entries from {} for {} (stopping or busy); try "
          "again",
          seq, name));
    }
  }
  // A retention computed before the pin may still delete what the pin keeps: wait for it, then
  // look.
  {
    std::unique_lock<std::mutex> lock(retention_mu_);
    if (!clock_.WaitFor(retention_cv_, lock, timeout, [this] { return !retention_outstanding_; })) {
      return Status::Unavailable(
          fmt::format("the journal's writer did not finish a retention within {} ms while "
                      "keeping entries from {} for {}; try again",
                      timeout.count(), seq, name));
    }
  }
  const uint64_t first = journal_->first_seq();
  if (first > seq) {
    return Status::Unavailable(
        fmt::format("the journal ({}) starts at {}: entries from {} that {} needs were deleted "
                    "already; a new start point is needed",
                    journal_->path(), first, seq, name));
  }
  return Status::Ok();
}

void Shipper::ApplyPins() {
  std::vector<std::shared_ptr<PinRequest>> pins;
  {
    std::lock_guard<std::mutex> lock(pin_mu_);
    pins.swap(pins_);
  }
  if (pins.empty()) return;
  for (const std::shared_ptr<PinRequest>& pin : pins) {
    const uint64_t position = pin->seq > 0 ? pin->seq - 1 : 0;
    bool is_new = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Known& known = known_[pin->name];
      is_new = !known.seen;
      known.durable_seq = position;
      known.applied_seq = position;
      known.max_sent = position;
      known.sent_seq = position;
      known.seen = true;
      known.dirty = true;
      known.peer_id.clear();
    }
    if (is_new) list_dirty_ = true;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second.name != pin->name) {
        ++it;
        continue;
      }
      spdlog::info(
          "shipper: secondary {} (peer {}) starts over at {} (bootstrap): its session "
          "is dropped until it says Hello again",
          pin->name, it->first, pin->seq);
      it = sessions_.erase(it);
    }
    spdlog::info("shipper: the journal keeps every entry from {} for secondary {} (bootstrap)",
                 pin->seq, pin->name);
  }
  {
    std::lock_guard<std::mutex> lock(pin_mu_);
    for (const std::shared_ptr<PinRequest>& pin : pins) pin->taken = pin->done = true;
  }
  pin_cv_.notify_all();
}

void Shipper::OnHello(const std::string& peer, const std::string& peer_name, const pb::Hello& hello,
                      TimePoint now) {
  // The session's name is the one the peer's key proved; only an insecure transport (no
  // names) leaves it to the Hello, and then it must still be a configured peer.
  const std::string& name = peer_name.empty() ? hello.node_name() : peer_name;
  if (!configured_.count(name)) {
    const std::string text = fmt::format(
        "node name \"{}\" is not in this primary's [peers]: add a [peers.<name>] table for the "
        "secondary on the primary (its name must be the secondary's [node] name)",
        name.size() > 64 ? name.substr(0, 64) + "..." : name);
    WarnRefused("peer-name", fmt::format("peer {}: {}", peer, text), now);
    SendError(peer, "", text, true);
    sessions_.erase(peer);
    if (auto it = tree_peers_.find(peer); it != tree_peers_.end()) {
      const std::string gone = it->second.name;
      tree_peers_.erase(it);
      TreePeerGone(gone);
    }
    return;
  }
  if (options_.role != nullptr) {
    // Its epoch first: a higher one fences this node (schemas/failover.md).
    if (hello.epoch() != 0) {
      options_.role->Hear(
          {.node = name, .epoch = hello.epoch(), .fork = ForkFromProto(hello.fork())});
    }
    if (hello.probe()) {
      // "Who are you?": this node's claim, and no session.
      if (Status st = transport_->Send(peer, Heartbeat(Shippable())); !st.ok()) {
        spdlog::debug("shipper: answer to {}'s probe: {}", name, st.message());
      }
      return;
    }
    if (const RoleState state = options_.role->state(); state.fenced) {
      SendError(peer, name,
                fmt::format("this node is a fenced old primary ({}); it serves no secondary: "
                            "follow the current primary",
                            state.fenced_by),
                true);
      sessions_.erase(peer);
      return;
    }
  } else if (hello.probe()) {
    return;
  }
  if (!peer_name.empty() && hello.node_name() != peer_name) {
    spdlog::debug(
        "shipper: peer {} says its name is \"{}\" but its key is [peers.{}]'s: it is {} "
        "here",
        peer, hello.node_name().substr(0, 64), peer_name, peer_name);
  }
  if (hello.tree_only()) {
    // Verify's client: tree requests only; the replication sessions are not touched.
    TreePeer& tree_peer = tree_peers_[peer];
    tree_peer.name = name;
    tree_peer.last_heard = now;
    return;
  }
  const uint64_t durable = hello.durable_seq();
  const uint64_t first = journal_->first_seq();
  const uint64_t last = journal_->last_seq();
  // Drop an older session of the same secondary (it reconnected under a new peer id).
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.name == name && it->first != peer) {
      spdlog::info("shipper: secondary {} reconnected (peer {} replaces {})", name, peer,
                   it->first);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
  bool is_new = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    is_new = !known_[name].seen;
  }
  if (durable > last) {
    SendError(peer, name,
              fmt::format("secondary {} holds entries up to sequence {} but this primary's "
                          "journal ends at {}: it followed another primary, or this primary's "
                          "journal ({}) was recreated; bootstrap the secondary from this primary",
                          name, durable, last, journal_->path()),
              true);
    sessions_.erase(peer);
    return;
  }
  // A retention already handed to the writer may still delete entries this secondary needs
  // (it was computed without this Hello); Pump then finds them gone and says so, never a gap.
  if (durable + 1 < first) {
    SendError(peer, name,
              fmt::format("secondary {} is too far behind: it needs sequence {}, but the "
                          "journal ({}) starts at {}; those entries were deleted. Bootstrap the "
                          "secondary from this primary",
                          name, durable + 1, journal_->path(), first),
              true);
    sessions_.erase(peer);
    return;
  }
  // A known secondary's position may go down (a relay restored from a backup: those entries
  // are still here, so retention must keep them) but up only as far as this process sent to
  // it, or its persisted position: a Hello claiming more (forged, or a confused secondary)
  // must not let retention delete what it does not hold. A new name is taken at its word.
  uint64_t counted = durable;
  if (!is_new) {
    std::lock_guard<std::mutex> lock(mu_);
    const Known& known = known_[name];
    const uint64_t limit = std::max(known.durable_seq, known.max_sent);
    if (counted > limit) counted = limit;
  }
  if (counted != durable) {
    WarnRefused("hello",
                fmt::format("secondary {} (peer {}) says Hello holding up to {}, but was "
                            "only sent up to {}: its position is counted as {}",
                            name, peer, durable, counted, counted),
                now);
  }
  const uint64_t applied = std::min(hello.applied_seq(), counted);
  Session& session = sessions_[peer];
  session.name = name;
  session.next_seq = durable + 1;
  session.window_end = SaturatingAdd(durable, hello.credit());
  session.confirmable = counted;
  session.last_heard = now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Known& known = known_[name];
    if (known.durable_seq != counted || known.applied_seq != applied) {
      known.dirty = true;
    }
    known.durable_seq = counted;
    known.applied_seq = applied;
    known.seen = true;
    known.peer_id = peer;
    known.sent_seq = durable;
    known.last_seen_unix_ms = clock_.UnixMillis();
    known.last_error.clear();
  }
  if (is_new) list_dirty_ = true;
  spdlog::info(
      "shipper: secondary {} connected (peer {}): holds up to {}, applied {}, credit {}; "
      "sending from {} (journal ends at {})",
      name, peer, durable, hello.applied_seq(), hello.credit(), durable + 1, last);
  // Persist the new name before anything is deleted on its behalf (with a retention
  // outstanding, the next one carries it: every submission does while list_dirty_).
  if (is_new) Retain();
}

bool Shipper::Pump(const std::string& peer, Session& session, uint64_t shippable) {
  uint64_t limit = std::min(shippable, session.window_end);
  if (session.next_seq > limit) return false;
  size_t count =
      static_cast<size_t>(std::min<uint64_t>(limit - session.next_seq + 1, options_.batch_entries));
  auto read = journal_->Read(session.next_seq, count, options_.batch_bytes);
  if (!read.ok()) {
    spdlog::error("shipper: read journal {} at {} for {}: {}", journal_->path(), session.next_seq,
                  session.name, read.status().ToString());
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = read.status().ToString();
    return false;
  }
  if (read->empty() || read->front().first != session.next_seq) {
    // Deleted under the session (cannot happen while it is known) or a hole: never skip.
    SendError(peer, session.name,
              fmt::format("entry {} is no longer in the primary's journal (it starts at {}); "
                          "bootstrap the secondary",
                          session.next_seq, journal_->first_seq()),
              true);
    sessions_.erase(peer);
    return false;
  }
  pb::Envelope envelope;
  envelope.set_version(kProtocolVersion);
  pb::Entries* entries = envelope.mutable_entries();
  uint64_t bytes = 0;
  for (auto& [seq, entry] : *read) {
    if (seq > limit) break;
    // File entries hold their larger content as references into the files: read it now, and
    // keep a message to about batch_bytes once filled in.
    if (options_.fill_file && !entry.empty() && static_cast<uint8_t>(entry[0]) == kFileEntryTag) {
      if (bytes >= options_.batch_bytes) break;
      FillFileEntry(session, &entry);
    }
    entries->add_seqs(seq);
    bool compressed = false;
    if (entry.size() >= options_.compress_min_bytes && cctx_ != nullptr) {
      compressed_.resize(ZSTD_compressBound(entry.size()));
      size_t n = ZSTD_compressCCtx(cctx_.get(), compressed_.data(), compressed_.size(),
                                   entry.data(), entry.size(), options_.zstd_level);
      if (!ZSTD_isError(n) && n < entry.size()) {
        compressed_.resize(n);
        entries->add_entries(compressed_);
        compressed = true;
      }
    }
    if (!compressed) entries->add_entries(std::move(entry));
    entries->add_compressed(compressed);
    bytes += entries->entries(entries->entries_size() - 1).size();
  }
  entries->set_primary_last_seq(shippable);
  entries->set_primary_time(UnixSeconds(clock_));
  const uint64_t n = static_cast<uint64_t>(entries->seqs_size());
  Status s = transport_->Send(peer, envelope);
  if (!s.ok()) {
    spdlog::warn("shipper: send entries {}..{} to secondary {}: {}", session.next_seq,
                 session.next_seq + n - 1, session.name, s.ToString());
    return false;
  }
  session.next_seq += n;
  session.confirmable = std::max(session.confirmable, session.next_seq - 1);
  std::lock_guard<std::mutex> lock(mu_);
  entries_sent_ += n;
  bytes_sent_ += bytes;
  Known& known = known_[session.name];
  known.sent_seq = session.next_seq - 1;
  known.max_sent = std::max(known.max_sent, known.sent_seq);
  return true;
}

void Shipper::FillFileEntry(Session& session, std::string* entry) {
  pb::JournalEntry parsed;
  if (!parsed.ParseFromString(*entry) || !parsed.has_file()) return;
  pb::FileChange* change = parsed.mutable_file();
  if (change->kind() != pb::FileChange::FILE) return;
  bool filled;
  if (!session.abandoned_file.empty() && change->path() == session.abandoned_file &&
      change->part() > 0) {
    filled = false;
  } else {
    session.abandoned_file.clear();
    Result<bool> result = options_.fill_file(change);
    if (!result.ok()) {
      spdlog::warn("shipper: {}; the change is sent as abandoned and the file journaled again",
                   result.status().message());
      if (options_.on_file_resync) options_.on_file_resync({change->path()});
    }
    filled = result.ok() && *result;
  }
  if (!filled) {
    // The file changed since the capture read it: a later entry carries its newer state.
    spdlog::debug("shipper: '{}' part {} changed since it was journaled; sent as abandoned",
                  change->path(), change->part());
    change->clear_ops();
    change->set_abandoned(true);
    session.abandoned_file = change->last_part() ? std::string() : change->path();
    std::lock_guard<std::mutex> lock(mu_);
    ++abandoned_file_parts_;
  } else if (change->last_part()) {
    session.abandoned_file.clear();
  }
  parsed.SerializeToString(entry);
}

void Shipper::SendError(const std::string& peer, const std::string& name, const std::string& text,
                        bool fatal) {
  if (fatal) {
    spdlog::error("shipper: secondary {} (peer {}): {}", name.empty() ? "?" : name, peer, text);
  }
  pb::Envelope envelope;
  envelope.set_version(kProtocolVersion);
  envelope.mutable_error()->set_message(text);
  envelope.mutable_error()->set_fatal(fatal);
  Status s = transport_->Send(peer, envelope);
  if (!s.ok()) spdlog::warn("shipper: send error to peer {}: {}", peer, s.ToString());
  if (!name.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = known_.find(name);
    if (it != known_.end()) {
      it->second.last_error = text;
      if (fatal && it->second.peer_id == peer) it->second.peer_id.clear();
    }
  }
}

pb::Envelope Shipper::Heartbeat(uint64_t shippable) const {
  pb::Envelope envelope;
  envelope.set_version(kProtocolVersion);
  pb::Heartbeat& h = *envelope.mutable_heartbeat();
  h.set_last_seq(shippable);
  h.set_time(UnixSeconds(clock_));
  if (options_.role != nullptr) {
    const RoleState state = options_.role->state();
    h.set_epoch(state.epoch);
    h.set_node(options_.node_name);
    h.set_primary_epoch(PrimaryEpoch(state));
    h.set_fenced(state.fenced);
    if (!state.forks.empty()) *h.mutable_fork() = ForkToProto(state.forks.back());
    if (const auto handover = options_.role->handover(); handover && !state.fenced) {
      h.set_handover_to(handover->to);
      h.set_handover_seq(handover->seq);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, known] : known_) {
    if (known.peer_id.empty()) continue;  // no session now
    pb::SecondaryProgress& p = *h.add_secondaries();
    p.set_node(name);
    p.set_durable_seq(known.durable_seq);
  }
  return envelope;
}

void Shipper::SendHeartbeats(uint64_t shippable) {
  const pb::Envelope envelope = Heartbeat(shippable);
  for (const auto& [peer, session] : sessions_) {
    Status s = transport_->Send(peer, envelope);
    if (!s.ok()) spdlog::warn("shipper: heartbeat to {}: {}", session.name, s.ToString());
  }
}

void Shipper::DropSilent(TimePoint now) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second.last_heard < options_.silence_timeout) {
      ++it;
      continue;
    }
    uint64_t durable = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Known& known = known_[it->second.name];
      durable = known.durable_seq;
      if (known.peer_id == it->first) known.peer_id.clear();
    }
    spdlog::warn(
        "shipper: secondary {} (peer {}) silent for {} ms: session dropped; it holds "
        "entries up to {} and resumes after it when it says Hello again",
        it->second.name, it->first, options_.silence_timeout.count(), durable);
    it = sessions_.erase(it);
  }
}

std::vector<std::pair<std::string, std::string>> Shipper::TakePeerMeta(bool include_list) {
  std::vector<std::pair<std::string, std::string>> meta;
  std::lock_guard<std::mutex> lock(mu_);
  std::string list;
  for (auto& [name, k] : known_) {
    if (!k.seen) continue;
    list += name + "\n";
    if (k.dirty) {
      meta.emplace_back(DurableKey(name), std::to_string(k.durable_seq));
      meta.emplace_back(AppliedKey(name), std::to_string(k.applied_seq));
      k.dirty = false;
    }
  }
  if (include_list) meta.emplace_back(kPeersKey, list);
  return meta;
}

void Shipper::Retain() {
  std::optional<Status> failed;
  {
    std::lock_guard<std::mutex> lock(retention_mu_);
    if (retention_outstanding_) return;  // the next round submits what is current then
    failed.swap(retention_failed_);
  }
  if (failed.has_value()) {
    // What it carried is not known to be written: write every value again.
    const std::string text = failed->ToString();
    std::lock_guard<std::mutex> lock(mu_);
    if (last_error_ != text) {
      spdlog::error("shipper: retention in journal {}: {}", journal_->path(), text);
    }
    last_error_ = text;
    for (auto& [name, k] : known_) k.dirty = true;
    list_dirty_ = true;
  }
  uint64_t min_durable = std::numeric_limits<uint64_t>::max();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (known_.empty()) return;  // nobody to wait for: keep everything (the cap protects)
    for (const auto& [name, k] : known_) min_durable = std::min(min_durable, k.durable_seq);
  }
  const uint64_t delete_to = std::min(min_durable, Shippable());
  std::vector<std::pair<std::string, std::string>> meta = TakePeerMeta(list_dirty_);
  if (meta.empty() && delete_to < journal_->first_seq()) return;
  list_dirty_ = false;
  {
    std::lock_guard<std::mutex> lock(retention_mu_);
    retention_outstanding_ = true;
  }
  // The writer checks delete_to against the journal's first entry and last_complete_seq again:
  // those it reads itself.
  options_.submit_retention(delete_to, std::move(meta), [this](Status status) {
    {
      std::lock_guard<std::mutex> lock(retention_mu_);
      if (!status.ok()) retention_failed_ = std::move(status);
      retention_outstanding_ = false;
    }
    retention_cv_.notify_all();
  });
}

void Shipper::WaitForRetention() {
  std::unique_lock<std::mutex> lock(retention_mu_);
  retention_cv_.wait(lock, [this] { return !retention_outstanding_; });
}

}  // namespace replsync::capture
