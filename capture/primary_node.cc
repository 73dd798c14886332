#include "capture/primary_node.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>

#include "sync/mysql/mysql_session.h"
#include "sync/text.h"
#include "sync/wire/zmq_transport.h"

namespace replsync::capture {

Result<std::unique_ptr<PrimaryNode>> PrimaryNode::Open(const NodeConfig& config,
                                                       const TransportSecurity& security,
                                                       PrimaryNodeOptions options) {
  Journal::Options jopts;
  jopts.path = config.node.state_dir + "/journal";
  jopts.max_bytes = config.journal.max_megabytes << 20;
  RS_ASSIGN_OR_RETURN(std::unique_ptr<Journal> journal, Journal::Open(jopts));
  RS_ASSIGN_OR_RETURN(std::unique_ptr<ZmqServerTransport> transport,
                      ZmqServerTransport::Bind(config.transport.listen, security.ForServer()));
  spdlog::info("primary: journal {} holds seq {}..{} ({} bytes); serving secondaries at {}",
               jopts.path, journal->first_seq(), journal->last_seq(), journal->bytes(),
               transport->bound_endpoint());
  std::vector<PeerWatch::Peer> peers;
  bool promoted_start = false;
  if (options.role != nullptr) {
    RS_ASSIGN_OR_RETURN(peers, PeerWatch::PeersOf(security));
    RS_ASSIGN_OR_RETURN(promoted_start,
                        ContinueAfterPromotion(options.role->state(), config.node.name, *journal));
  }
  std::unique_ptr<PrimaryNode> node(new PrimaryNode(config, options, std::move(journal)));
  node->promoted_start_ = promoted_start;
  node->Build(std::move(transport), std::move(peers));
  return node;
}

Result<bool> PrimaryNode::ContinueAfterPromotion(const RoleState& state, const std::string& self,
                                                 Journal& journal) {
  if (state.role != NodeRole::kPrimary || state.fenced || state.forks.empty()) return false;
  const ForkPoint& fork = state.forks.back();
  if (fork.promoted != self || fork.epoch != state.epoch) return false;
  if (journal.last_seq() == 0 && journal.first_seq() == 1 && fork.journal_seq > 0) {
    RS_RETURN_IF_ERROR(journal.Rebase(fork.journal_seq + 1));
    spdlog::info(
        "primary: promoted at epoch {}: the journal continues the old primary's at sequence {}, "
        "so the other secondaries follow from where they were",
        fork.epoch, fork.journal_seq + 1);
  }
  return journal.last_seq() == fork.journal_seq;
}

PrimaryNode::PrimaryNode(const NodeConfig& config, PrimaryNodeOptions options,
                         std::unique_ptr<Journal> journal)
    : options_(options),
      config_(config),
      clock_(*options.clock),
      started_at_(UnixSeconds(clock_)),
      journal_(std::move(journal)),
      factory_(config_) {}

PrimaryNode::~PrimaryNode() { Stop(); }

void PrimaryNode::Build(std::unique_ptr<ServerTransport> transport,
                        std::vector<PeerWatch::Peer> peers) {
  const bool with_files = !config_.repository.path.empty();
  if (options_.role != nullptr) {
    peer_watch_ = std::make_unique<PeerWatch>(options_.role, std::move(peers),
                                              PeerWatch::Options{.node_name = config_.node.name});
  }
  ShipperOptions sopts;
  sopts.endpoint = config_.transport.listen;
  sopts.node_name = config_.node.name;
  sopts.role = options_.role;
  for (const NodeConfig::Peer& peer : config_.peers) sopts.peers.push_back(peer.name);
  sopts.shippable_seq = [this] { return capture_->last_complete_seq(); };
  // The capture's writer thread is the journal's one writer: retention goes through it.
  sopts.submit_retention = [this](uint64_t up_to,
                                  std::vector<std::pair<std::string, std::string>> meta,
                                  std::function<void(Status)> done) {
    capture_->SubmitRetention(up_to, std::move(meta), std::move(done));
  };
  sopts.on_file_resync = [this](const std::vector<std::string>& paths) {
    if (FileCapture* files = running_files_.load()) files->RequestResync(paths);
  };
  // Test hook: tiny verify replies, so that tests page through listings with a few files.
  if (const char* nodes = std::getenv("REPLSYNC_TEST_TREE_REPLY_NODES")) {
    uint64_t n = 0;
    sopts.tree_reply_nodes = ParseU64(nodes, &n) ? std::max<uint64_t>(1, n) : 1;
  }
  // Test hook: entries held back while the file exists, from the peers it names (a line each),
  // or from every peer when it names none (promote's refusal is tested with it).
  if (const char* hold = std::getenv("REPLSYNC_TEST_SHIP_HOLD_FILE")) {
    sopts.hold_entries = [path = std::string(hold)](const std::string& peer) {
      std::ifstream in(path);
      if (!in) return false;
      bool named = false;
      for (std::string line; std::getline(in, line);) {
        if (line == peer) return true;
        named = named || !line.empty();
      }
      return !named;
    };
  }
  if (with_files) {
    sopts.on_tree_snapshot = [this](bool deep, std::vector<std::string> paths,
                                    std::function<void(Result<FileTreeSnapshot>)> done) {
      FileCapture* files = running_files_.load();
      if (files == nullptr) {
        done(Status::Aborted("the primary's file capture is starting; try again"));
        return;
      }
      FileCapture::TreeSnapshotRequest request;
      request.deep = deep;
      request.resync_paths = std::move(paths);
      request.done = std::move(done);
      files->RequestTreeSnapshot(std::move(request));
    };
    content_reader_ = std::make_unique<FileContentReader>(config_.repository.path);
    sopts.fill_file = [reader = content_reader_.get()](pb::FileChange* change) {
      return reader->Fill(change);
    };
  }
  // Bootstrap (schemas/bootstrap.md): its requests come through the shipper, its readers read
  // this node's server, its stream starts where the capture journaled the point.
  BootstrapServerOptions bopts;
  bopts.mysql = MysqlOptionsOf(config_.mysql);
  bopts.databases = config_.mysql.databases;
  bopts.snapshot_seconds = std::chrono::seconds(config_.bootstrap.snapshot_seconds);
  bopts.max_running = config_.bootstrap.max_running;
  bopts.max_rate = uint64_t{config_.bootstrap.max_rate_megabytes} << 20;
  bopts.own_users = {config_.mysql.user};
  bopts.repository = config_.repository.path;
  bopts.clock = &clock_;
  bopts.journal_seq_at = [this](const BinlogPosition& point) {
    return capture_->FirstSeqAtOrAfter(point, std::chrono::seconds(60));
  };
  bopts.pin = [this](const std::string& peer, uint64_t seq) { return shipper_->Pin(peer, seq); };
  bopts.after_snapshot = options_.bootstrap_after_snapshot;
  bopts.before_chunk = options_.bootstrap_before_chunk;
  bootstrap_ = std::make_unique<BootstrapServer>(std::move(bopts));
  sopts.on_bootstrap_request = [this](const std::string& name, pb::BootstrapRequest request,
                                      std::function<void(pb::BootstrapReply)> done) {
    if (request.op() == pb::BootstrapRequest::CHANGED_PATHS) {
      done(ChangedPaths(request));
      return;
    }
    bootstrap_->Submit(name, std::move(request), std::move(done));
  };
  sopts.on_tree_peer_gone = [this](const std::string& name) { bootstrap_->ClosePeer(name); };
  shipper_ = std::make_unique<Shipper>(journal_.get(), std::move(transport), sopts);

  CaptureOptions copts;
  copts.databases = config_.mysql.databases;
  copts.journal_max_bytes = config_.journal.max_megabytes << 20;
  copts.on_append = [this] { shipper_->Notify(); };
  capture_ = std::make_unique<CaptureService>(journal_.get(), &factory_, copts);

  if (!with_files) return;
  // The file repository: its changes join the same journal through the capture's writer.
  FileCaptureOptions fopts;
  fopts.root = config_.repository.path;
  fopts.manifest_path = config_.node.state_dir + "/manifest.db";
  fopts.quiet = std::chrono::milliseconds(config_.repository.quiet_ms);
  fopts.open_write_quiet = std::chrono::milliseconds(config_.repository.open_write_quiet_ms);
  // Just promoted: the repository holds what the followers hold; the first scan adopts what
  // did not change since (a second of margin: the kernel's ctime is coarse).
  if (promoted_start_) {
    fopts.adopt_changed_before_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::system_clock::now().time_since_epoch() - std::chrono::seconds(1))
            .count();
  }
  FileEntrySink sink;
  CaptureService* capture = capture_.get();
  sink.submit = [capture](std::string entry, bool completes) {
    return capture->SubmitExternal(std::move(entry), completes);
  };
  sink.wait_durable = [capture](uint64_t ticket) { return capture->WaitDurable(ticket); };
  sink.journal_full = [capture] { return capture->journal_full(); };
  sink.journal_last_seq = [capture] { return capture->last_complete_seq(); };
  files_ = std::make_unique<FileCapture>(fopts, std::move(sink));
}

Status PrimaryNode::Start() {
  if (options_.role != nullptr && options_.role->state().fenced) {
    // A fenced old primary: its database read-only, nothing captured or served; the shipper
    // answers the peers' probes (it says it is fenced) and refuses sessions.
    read_only_ = std::make_unique<ReadOnlyKeeper>(
        ReadOnlyKeeper::Options{.mysql = MysqlOptionsOf(config_.mysql), .who = "primary: fenced"});
    spdlog::error(
        "primary: this node is fenced ({}): its database is kept read-only and it "
        "serves no secondary; `replsync rejoin --dry-run` reports its unshipped tail, and "
        "`replsync rejoin` quarantines it and makes this node follow the new primary",
        options_.role->state().fenced_by);
    read_only_->Start();
    if (Status st = shipper_->Start(); !st.ok()) return st.WithContext("shipper");
    started_ = true;
    return Status::Ok();
  }
  // Promoted, nothing captured yet: the database is still read-only; the capture's first
  // checkpoint is taken at the binlog's end as it is now, and only then the database is made
  // writable, so nothing written on the new primary escapes its journal.
  std::optional<MysqlThreadScope> scope;  // outlives `session`
  std::unique_ptr<MysqlSession> session;
  BinlogPosition before_writes;
  if (promoted_start_) {
    scope.emplace();
    Result<std::unique_ptr<MysqlSession>> opened =
        MysqlSession::Open(MysqlOptionsOf(config_.mysql));
    if (!opened.ok()) return opened.status().WithContext("promoted: the binlog's end");
    session = std::move(opened).value();
    RS_ASSIGN_OR_RETURN(before_writes, MasterPosition(*session));
  }
  if (Status st = capture_->Start(); !st.ok()) return st.WithContext("capture");
  if (session) {
    Result<uint64_t> from = capture_->FirstSeqAtOrAfter(before_writes, std::chrono::seconds(60));
    if (!from.ok()) return from.status().WithContext("promoted: the capture's first checkpoint");
    if (Status st = session->Execute("SET GLOBAL read_only = OFF",
                                     "make the promoted node's database writable");
        !st.ok()) {
      return st.WithContext(
          "promoted: the database stays read-only (the account needs SUPER or READ_ONLY "
          "ADMIN)");
    }
    spdlog::info("primary: promoted: capture runs from {}; the database is writable",
                 before_writes.ToString());
  }
  if (files_) {
    if (Status st = files_->Start(); !st.ok()) return st.WithContext("files");
    running_files_ = files_.get();
  } else {
    spdlog::warn("primary: [repository] path is not set: only the database replicates");
  }
  if (Status st = bootstrap_->Start(); !st.ok()) return st.WithContext("bootstrap");
  if (Status st = shipper_->Start(); !st.ok()) return st.WithContext("shipper");
  if (peer_watch_) peer_watch_->Start();
  // Whether the database takes writes, for the status and /health/primary.
  db_look_ = std::make_unique<ReadOnlyKeeper>(
      ReadOnlyKeeper::Options{.mysql = MysqlOptionsOf(config_.mysql),
                              .who = "primary",
                              .need_bypass = false,
                              .interval = std::chrono::milliseconds(2000),
                              .observe_only = true});
  db_look_->Start();
  started_ = true;
  return Status::Ok();
}

void PrimaryNode::Stop() {
  if (peer_watch_) peer_watch_->Stop();
  if (db_look_) db_look_->Stop();
  if (read_only_) read_only_->Stop();
  bootstrap_->Stop();  // its rounds' readers end before the shipper that sends their replies
  shipper_->Stop();
  running_files_ = nullptr;
  if (files_) files_->Stop();
  capture_->Stop();
  if (!started_) return;
  started_ = false;
  CaptureStatus c = capture_->status();
  spdlog::info("primary: stopped cleanly; binlog checkpoint {} gtid '{}', journal seq {}",
               c.checkpoint.ToString(), c.checkpoint_gtid, journal_->last_seq());
}

Result<std::vector<TailFileChange>> PrimaryNode::FileChangesAfter(uint64_t seq) const {
  std::vector<TailFileChange> changes;
  for (uint64_t next = seq + 1;;) {
    RS_ASSIGN_OR_RETURN(auto batch, journal_->Read(next, 1000, 16 << 20));
    if (batch.empty()) return changes;
    for (const auto& [entry_seq, bytes] : batch) {
      next = entry_seq + 1;
      pb::JournalEntry entry;
      if (!entry.ParseFromString(bytes)) {
        return Status::Corruption(fmt::format("journal entry {} cannot be parsed", entry_seq));
      }
      if (!entry.has_file() || entry.file().part() != 0 || entry.file().abandoned()) continue;
      const pb::FileChange& file = entry.file();
      static constexpr const char* kNames[] = {"unknown", "file",   "directory",
                                               "symlink", "delete", "rename"};
      const auto kind = static_cast<size_t>(file.kind());
      changes.push_back({.seq = entry_seq,
                         .change = kind < std::size(kNames) ? kNames[kind] : "unknown",
                         .path = file.path(),
                         .from_path = file.from_path(),
                         .conflict = false});
    }
  }
}

pb::BootstrapReply PrimaryNode::ChangedPaths(const pb::BootstrapRequest& request) const {
  pb::BootstrapReply reply;
  reply.set_request_id(request.request_id());
  const uint64_t after = request.after_seq();
  // Read first: retention deleting entries meanwhile makes the answer incomplete, never wrong.
  Result<std::vector<TailFileChange>> changes = FileChangesAfter(after);
  if (!changes.ok()) {
    reply.set_error("the journal's file changes: " + changes.status().message());
    return reply;
  }
  reply.set_changed_complete(journal_->first_seq() <= after + 1);
  std::set<std::string> paths;
  for (const TailFileChange& c : *changes) {
    paths.insert(c.path);
    if (!c.from_path.empty()) paths.insert(c.from_path);
  }
  for (const std::string& path : paths) reply.add_changed_paths(path);
  return reply;
}

NodeStatus PrimaryNode::status() const {
  CaptureStatus c = capture_->status();
  ShipperStatus s = shipper_->status();
  FileCaptureStatus f;
  if (files_) f = files_->status();

  NodeStatus status = NodeStatusHeader(config_, started_at_, clock_);
  status.error = c.last_error.empty() ? s.last_error : c.last_error;
  if (status.error.empty()) status.error = f.last_error;
  status.state = "running";
  if (options_.role != nullptr) {
    const RoleState role = options_.role->state();
    status.epoch = role.epoch;
    status.fenced = role.fenced;
    status.fenced_by = role.fenced_by;
    status.peers_asked = peer_watch_ && peer_watch_->first_round_done();
  }
  if (status.fenced && read_only_ == nullptr) {
    // Fenced while it ran: the daemon starts it again fenced.
    status.state = "fencing";
  } else if (status.fenced) {
    status.state = "fenced";
    status.read_only = read_only_->read_only();
    if (!status.read_only) status.error = "fenced, but not read-only: " + read_only_->problem();
  } else {
    if (db_look_) {
      status.read_only = db_look_->read_only();
      status.read_only_problem = db_look_->problem();
    }
    if (c.state == CaptureState::kFailed || f.state == "failed") {
      status.state = "error";
    } else if (c.state == CaptureState::kJournalFull) {
      status.state = "paused";
    } else if (c.state == CaptureState::kConnecting) {
      status.state = "waiting";
    }
  }

  NodeStatus::Primary& p = status.primary.emplace();
  p.capture_state = CaptureStateName(c.state);
  p.source = c.source;
  p.binlog_position = c.checkpoint.ToString();
  p.read_position = c.read_position.ToString();
  p.gtid = c.checkpoint_gtid;
  p.lag_seconds = c.lag_seconds;
  p.captured = {.transactions = c.transactions,
                .skipped_transactions = c.skipped_transactions,
                .rows = c.rows,
                .bytes = c.bytes};
  p.journal = {.first_seq = s.journal_first_seq,
               .last_seq = s.journal_last_seq,
               .entries = s.journal_last_seq + 1 - s.journal_first_seq,
               .bytes = c.journal_bytes,
               .max_bytes = c.journal_max_bytes,
               .full = c.journal_full};
  if (files_) {
    p.files = NodeStatus::FileCapture{.root = f.root,
                                      .state = f.state,
                                      .files_pending = f.files_pending,
                                      .bytes_pending = f.bytes_pending,
                                      .last_rescan = f.last_rescan_unix,
                                      .last_rescan_reason = f.last_rescan_reason,
                                      .rescans = f.rescans,
                                      .watches = f.watches,
                                      .changes_journaled = f.changes_journaled,
                                      .literal_bytes = f.literal_bytes,
                                      .copied_bytes = f.copied_bytes,
                                      .abandoned_reads = f.abandoned,
                                      .resyncs_requested = f.resyncs_requested};
  }
  p.endpoint = s.endpoint;
  p.entries_sent = s.entries_sent;
  p.bytes_sent = s.bytes_sent;
  p.bad_frames = s.bad_frames;
  p.abandoned_file_parts = s.abandoned_file_parts;
  p.refused_requests = s.refused_requests;
  p.refused_peers = s.refused_peers.count;
  p.last_refused_peer = s.refused_peers.last;
  p.last_refused_peer_at = static_cast<double>(s.refused_peers.last_unix_ms) / 1000.0;
  for (const PeerStatus& peer : s.peers) {
    p.peers.push_back({.name = peer.name,
                       .connected = peer.connected,
                       .durable_seq = peer.durable_seq,
                       .applied_seq = peer.applied_seq,
                       .sent_seq = peer.sent_seq,
                       .lag_entries = peer.lag_entries,
                       .last_seen = static_cast<double>(peer.last_seen_unix_ms) / 1000.0,
                       .ever_connected = peer.ever_connected,
                       .last_error = peer.last_error});
  }
  for (const BootstrapPeerStatus& b : bootstrap_->status().peers) {
    p.bootstrap.push_back({.name = b.name,
                           .rounds_open = b.rounds_open,
                           .rounds_begun = b.rounds_begun,
                           .chunks = b.chunks,
                           .rows = b.rows,
                           .bytes = b.bytes,
                           .wire_bytes = b.wire_bytes,
                           .last_error = b.last_error});
  }
  return status;
}

}  // namespace replsync::capture
