#include "apply/secondary_node.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <thread>

#include "apply/bootstrap/file_copier.h"
#include "apply/follow_promotion.h"
#include "sync/mysql/mysql_session.h"
#include "sync/node/bootstrap_request.h"
#include "sync/text.h"
#include "sync/verify/barrier.h"
#include "sync/verify/consistent_point.h"
#include "sync/verify/file_verify.h"
#include "sync/wire/zmq_transport.h"

namespace replsync::apply {

Status SecondaryNode::CheckConfig(const NodeConfig& config) {
  if (!config.transport.primary.empty()) return Status::Ok();
  return Status::InvalidArgument(config.source_path +
                                 ": [transport] primary is not set: the secondary needs the "
                                 "primary's address, e.g. primary = \"tcp://10.0.0.1:7700\"");
}

Result<std::unique_ptr<SecondaryNode>> SecondaryNode::Open(const NodeConfig& config,
                                                           const TransportSecurity& security,
                                                           SecondaryNodeOptions options) {
  RS_RETURN_IF_ERROR(CheckConfig(config));
  auto client = security.ForClient(config.transport.primary);
  if (!client.ok()) return client.status().WithContext(config.source_path);
  Journal::Options jopts;
  jopts.path = config.node.state_dir + "/relay";
  RS_ASSIGN_OR_RETURN(std::unique_ptr<Journal> relay, Journal::Open(jopts));
  RS_ASSIGN_OR_RETURN(std::unique_ptr<ZmqClientTransport> transport,
                      ZmqClientTransport::Connect(config.transport.primary, *client));
  std::unique_ptr<SecondaryNode> node(new SecondaryNode(config, options, std::move(relay)));
  node->Build(std::move(transport));
  // Asking the other nodes who they are: a node promoted after the one this node follows
  // answers with its epoch and fork point, and the daemon then follows it.
  if (options.role != nullptr) {
    RS_ASSIGN_OR_RETURN(std::vector<PeerWatch::Peer> peers, PeerWatch::PeersOf(security));
    node->peer_watch_ = std::make_unique<PeerWatch>(
        options.role, std::move(peers), PeerWatch::Options{.node_name = config.node.name});
  }
  spdlog::info("secondary '{}': relay {} holds seq {}..{}; following the primary at {}",
               config.node.name, jopts.path, node->relay_->first_seq(), node->relay_->last_seq(),
               config.transport.primary);
  return node;
}

SecondaryNode::SecondaryNode(const NodeConfig& config, SecondaryNodeOptions options,
                             std::unique_ptr<Journal> relay)
    : config_(config),
      options_(options),
      clock_(*options.clock),
      started_at_(UnixSeconds(clock_)),
      relay_(std::move(relay)),
      read_only_({.mysql = MysqlOptionsOf(config.mysql), .who = "secondary", .need_bypass = true}) {
}

SecondaryNode::~SecondaryNode() { Stop(); }

void SecondaryNode::Build(std::unique_ptr<ClientTransport> transport) {
  const std::string& state_dir = config_.node.state_dir;
  ApplierOptions aopts;
  aopts.mysql = MysqlOptionsOf(config_.mysql);
  aopts.workers = static_cast<int>(config_.apply.workers);
  aopts.repository = config_.repository.path;
  aopts.keep_setid = config_.repository.keep_setid;
  aopts.databases = config_.mysql.databases;
  aopts.barrier_path = verify::BarrierFilePath(state_dir);
  aopts.paused_path = verify::PausedFilePath(state_dir);
  aopts.verify_lock_path = verify::VerifyLockPath(state_dir);
  aopts.file_resync_path = state_dir + "/file_resync";
  aopts.on_file_resync = [this](std::vector<std::string> paths) { OnFileResync(std::move(paths)); };
  applier_ = std::make_unique<Applier>(aopts, relay_.get());

  ReceiverOptions ropts;
  ropts.node_name = config_.node.name;
  ropts.role = options_.role;
  ropts.endpoint = config_.transport.primary;
  Applier* applier = applier_.get();
  receiver_ = std::make_unique<Receiver>(
      ropts, std::move(transport), relay_.get(), [applier] { return applier->known_applied_seq(); },
      [applier] { applier->Notify(); });

  BootstrapperOptions bopts;
  bopts.config = config_;
  bopts.clock = &clock_;
  bopts.connect = [config = config_] {
    return BootstrapClient::Connect(config, config.transport.primary, {});
  };
  bopts.stream.stop = [this] { StopStream(); };
  bopts.stream.start = [this] { return StartStream(); };
  bopts.stream.set_hold = [applier](std::optional<verify::StopBefore> stop) {
    applier->SetHold(std::move(stop));
  };
  bopts.stream.wait_held = [applier](std::chrono::milliseconds timeout) {
    return applier->WaitHeld(timeout);
  };
  bopts.stream.set_lenient = [applier](bool lenient) { applier->SetLenient(lenient); };
  bopts.stream.entering = [applier] { return applier->Entering(); };
  bopts.stream.forget_entering = [applier](const std::vector<Applier::TableId>& tables) {
    applier->ForgetEntering(tables);
  };
  bopts.stream.received_anything = [this, applier] {
    return relay_->last_seq() > 0 || applier->applied_seq() > 0;
  };
  if (!config_.repository.path.empty()) {
    bopts.copy_files = [config = config_, connect = bopts.connect](
                           const std::function<void(uint64_t, uint64_t)>& progress) -> Status {
      // verify.lock, as verify and repair hold it: the applier then keeps the barrier the file
      // comparison sets.
      RS_ASSIGN_OR_RETURN(FileLock lock, verify::LockVerify(config.node.state_dir));
      RS_ASSIGN_OR_RETURN(verify::FileVerifyResult compared, verify::VerifyFiles(config, {}));
      const uint64_t total = compared.differences.size();
      // The bulk pass: what differs is copied straight from the primary's folder, many files per
      // round trip, instead of each path going through the primary's journal, the relay and
      // the applier. It is only a first pass: the exact pass below compares again and repairs
      // whatever it left or whatever changed meanwhile, so a failed bulk pass costs time only.
      if (total != 0) {
        std::vector<std::string> paths;
        for (const verify::FileDifference& d : compared.differences) {
          if (d.problem != "extra") paths.push_back(d.path);
        }
        FileCopierOptions copts;
        copts.root = config.repository.path;
        copts.keep_setid = config.repository.keep_setid;
        copts.connect = connect;
        copts.progress = [&progress](uint64_t done, uint64_t total) { progress(done, total); };
        const auto began = std::chrono::steady_clock::now();
        Result<FileCopyResult> copied = CopyRepositoryFiles(copts, std::move(paths));
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
        if (copied.ok()) {
          spdlog::info(
              "bootstrap files: bulk pass copied {} files ({} bytes), {} directories, {} links "
              "in {:.1f} s, {} requests; {} gone, {} refused, {} left to the exact pass",
              copied->files, copied->bytes, copied->directories, copied->symlinks, seconds,
              copied->requests, copied->gone, copied->refused, copied->skipped);
        } else {
          spdlog::warn(
              "bootstrap files: the bulk pass stopped after {:.1f} s ({}); the exact "
              "pass copies what it did not",
              seconds, copied.status().ToString());
        }
        RS_ASSIGN_OR_RETURN(compared, verify::VerifyFiles(config, {}));
        spdlog::info(
            "bootstrap files: the exact pass found {} of the {} paths differing after "
            "the bulk pass; it repairs them through the stream",
            compared.differences.size(), total);
      }
      RS_RETURN_IF_ERROR(verify::RepairFiles(config, compared.differences, {}).status());
      progress(total, total);
      return Status::Ok();
    };
  }
  // Test hook: the bootstrap pauses at the start of the phase this file names.
  if (const char* pause = std::getenv("REPLSYNC_TEST_BOOTSTRAP_PAUSE_FILE")) {
    bopts.pause_file = pause;
  }
  bootstrapper_ = std::make_unique<Bootstrapper>(std::move(bopts));
}

void SecondaryNode::StopStream() {
  std::lock_guard<std::mutex> lock(stream_mu_);
  {
    std::lock_guard<std::mutex> resync(resync_mu_);
    running_receiver_ = nullptr;
  }
  receiver_->Stop();
  applier_->Stop();
}

Status SecondaryNode::StartStream() {
  std::lock_guard<std::mutex> lock(stream_mu_);
  {
    std::lock_guard<std::mutex> resync(resync_mu_);
    receiver_->SetFileResync(early_resync_);
    running_receiver_ = receiver_.get();
  }
  if (Status st = applier_->Start(); !st.ok()) return st.WithContext("applier");
  if (Status st = receiver_->Start(); !st.ok()) return st.WithContext("receiver");
  return Status::Ok();
}

void SecondaryNode::OnFileResync(std::vector<std::string> paths) {
  std::lock_guard<std::mutex> lock(resync_mu_);
  if (running_receiver_ != nullptr) {
    running_receiver_->SetFileResync(std::move(paths));
  } else {
    early_resync_ = std::move(paths);
  }
}

Status SecondaryNode::FollowPromotion() {
  if (options_.role == nullptr) return Status::Ok();
  const RoleState state = options_.role->state();
  RS_ASSIGN_OR_RETURN(std::optional<std::string> meta, relay_->GetMeta(kStreamEpochKey));
  uint64_t stream_epoch = 0;
  if (meta && !ParseU64(*meta, &stream_epoch)) {
    return Status::Corruption(fmt::format("relay {}: meta {} is '{}', not a number", relay_->path(),
                                          kStreamEpochKey, *meta));
  }
  auto save = [&](uint64_t epoch) {
    return relay_->PutMeta({{kStreamEpochKey, std::to_string(epoch)}});
  };
  // A relay without the value (new, or from a replsync before it) counts as the state's epoch.
  if (!meta) return save(state.epoch);
  if (state.forks.empty() || state.forks.back().epoch <= stream_epoch) return Status::Ok();
  const ForkPoint& fork = state.forks.back();
  if (fork.promoted == config_.node.name) return save(fork.epoch);  // a rejoin resyncs
  uint64_t applied = 0;
  {
    MysqlThreadScope scope;
    RS_ASSIGN_OR_RETURN(std::unique_ptr<MysqlSession> session,
                        MysqlSession::Open(MysqlOptionsOf(config_.mysql)));
    RS_ASSIGN_OR_RETURN(applied, Applier::ReadAppliedSeq(*session, ApplierOptions{}.channel));
  }
  const FollowPlan plan = PlanFollow(fork, applied, relay_->last_seq());
  switch (plan.action) {
    case FollowPlan::Action::kContinue:
      spdlog::info("secondary: following {}, promoted at epoch {}: {}; it continues there",
                   fork.promoted, fork.epoch, plan.why);
      break;
    case FollowPlan::Action::kDropAfterFork:
      RS_RETURN_IF_ERROR(relay_->TruncateAfter(fork.journal_seq));
      spdlog::warn("secondary: following {}, promoted at epoch {}: {}", fork.promoted, fork.epoch,
                   plan.why);
      break;
    case FollowPlan::Action::kResync:
      RS_RETURN_IF_ERROR(WriteBootstrapRequest(
          config_.node.state_dir,
          {.token = fmt::format("follow-epoch-{}", fork.epoch), .force = false, .resync = true}));
      spdlog::warn(
          "secondary: following {}, promoted at epoch {}: {}; a bootstrap --resync from {} "
          "makes this node equal to it first (`replsync status` shows its progress)",
          fork.promoted, fork.epoch, plan.why, fork.promoted);
      break;
  }
  return save(fork.epoch);
}

Status SecondaryNode::Start() {
  if (Status st = FollowPromotion(); !st.ok()) {
    return st.WithContext("following the node promoted last");
  }
  // A bootstrap in progress decides how the applier may run before it runs at all.
  bootstrapper_->Prepare();
  RS_RETURN_IF_ERROR(StartStream());
  if (Status st = bootstrapper_->Start(); !st.ok()) return st.WithContext("bootstrapper");
  if (peer_watch_) peer_watch_->Start();
  read_only_.Start();
  started_ = true;
  return Status::Ok();
}

void SecondaryNode::Stop() {
  stopping_ = true;
  if (peer_watch_) peer_watch_->Stop();
  read_only_.Stop();
  bootstrapper_->Stop();
  StopStream();
  if (!started_) return;
  started_ = false;
  ApplierStatus a = applier_->status();
  spdlog::info("secondary: stopped cleanly; applied seq {} gtid '{}' (source {}), relay seq {}",
               a.applied_seq, a.gtid, a.source_position.ToString(), relay_->last_seq());
}

Result<ForkPoint> SecondaryNode::PrepareForPromotion(bool force, std::chrono::seconds timeout) {
  if (std::optional<NodeStatus::Bootstrap> b = bootstrapper_->status();
      b && b->phase != "done" && b->phase != "failed") {
    return Status::FailedPrecondition(fmt::format(
        "a bootstrap is under way ({}): this node does not hold the primary's data yet", b->phase));
  }
  const ApplierStatus before = applier_->status();
  if (before.state == ApplierState::kError) {
    return Status::FailedPrecondition("the applier stopped on an error (" + before.last_error +
                                      "): this node does not hold what it received; fix that "
                                      "first (README, \"When the applier stops\")");
  }
  // Nothing more comes in; what came is compared with what the primary said it had. The
  // database stops being kept read-only (a promoted node's is made writable).
  read_only_.Stop();
  {
    std::lock_guard<std::mutex> lock(stream_mu_);
    {
      std::lock_guard<std::mutex> resync(resync_mu_);
      running_receiver_ = nullptr;
    }
    receiver_->Stop();
  }
  auto resume = [this](Status why) -> Result<ForkPoint> {
    if (stopping_) return why;  // the daemon stops the node: nothing to resume
    read_only_.Start();
    std::lock_guard<std::mutex> lock(stream_mu_);
    {
      std::lock_guard<std::mutex> resync(resync_mu_);
      receiver_->SetFileResync(early_resync_);
      running_receiver_ = receiver_.get();
    }
    if (Status st = applier_->Start(); !st.ok() && st.code() != Status::Code::kInvalidArgument) {
      spdlog::error("secondary: after a promotion that did not happen, the applier: {}",
                    st.message());
    }
    if (Status st = receiver_->Start(); !st.ok()) {
      spdlog::error("secondary: after a promotion that did not happen, the receiver: {}",
                    st.message());
    }
    return why;
  };
  const ReceiverStatus r = receiver_->status();
  const uint64_t received = relay_->last_seq();
  std::string lost;
  if (r.primary_last_seq > received) {
    std::string what = fmt::format(
        "the primary's journal held entries up to {} when it was last heard from, and this node "
        "received up to {}: {} entries (transactions and file changes) would be lost",
        r.primary_last_seq, received, r.primary_last_seq - received);
    // Several secondaries: the one that received the most loses the least.
    std::string instead;
    uint64_t most = received;
    for (const auto& [name, durable] : r.other_secondaries) {
      if (durable > most) {
        most = durable;
        instead = name;
      }
    }
    if (!instead.empty()) {
      what +=
          fmt::format("; secondary {} had received up to {}: promote it instead", instead, most);
    }
    if (!force) {
      return resume(Status::FailedPrecondition(
          what + "; wait until it receives them, or promote with --force to accept the loss"));
    }
    lost = fmt::format("{}-{}", received + 1, r.primary_last_seq);
    spdlog::warn("promote --force: {}; recorded as lost ({})", what, lost);
  }
  // Everything received is applied before the node may serve.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const ApplierStatus a = applier_->status();
    if (a.applied_seq >= received) break;
    if (stopping_) return resume(Status::Aborted("replsyncd is stopping; promote again later"));
    if (a.state == ApplierState::kError) {
      return resume(
          Status::Internal(fmt::format("the applier stopped at sequence {} of {} received: {}",
                                       a.applied_seq, received, a.last_error)));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return resume(Status::Unavailable(fmt::format(
          "the applier applied up to sequence {} of {} received in {} s; promote again later",
          a.applied_seq, received, timeout.count())));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  {
    std::lock_guard<std::mutex> lock(stream_mu_);
    applier_->Stop();
  }
  const ApplierStatus a = applier_->status();
  ForkPoint fork;
  for (const NodeConfig::Peer& peer : config_.peers) {
    if (peer.endpoint == config_.transport.primary) fork.old_primary = peer.name;
  }
  // Never "": that names a promotion over two primaries (ForkPoint::old_primary).
  if (fork.old_primary.empty()) fork.old_primary = config_.transport.primary;
  fork.journal_seq = a.applied_seq;
  fork.gtid = a.gtid;
  fork.binlog_file = a.source_position.file;
  fork.binlog_offset = a.source_position.offset;
  fork.lost = lost;
  spdlog::info(
      "secondary: ready for promotion: applied everything received (sequence {}, gtid "
      "'{}', the primary's {})",
      a.applied_seq, a.gtid, a.source_position.ToString());
  return fork;
}

NodeStatus SecondaryNode::status() const {
  ApplierStatus a = applier_->status();
  ReceiverStatus r = receiver_->status();
  const uint64_t behind =
      r.primary_last_seq > a.applied_seq ? r.primary_last_seq - a.applied_seq : 0;
  double lag_seconds = 0;
  if (behind > 0 && a.last_source_timestamp > 0) {
    lag_seconds = std::max(0.0, UnixSeconds(clock_) - a.last_source_timestamp);
  }

  NodeStatus status = NodeStatusHeader(config_, started_at_, clock_);
  if (options_.role != nullptr) status.epoch = options_.role->state().epoch;
  status.read_only = read_only_.read_only();
  status.read_only_problem = read_only_.problem();
  status.error = !a.last_error.empty() ? a.last_error : r.last_error;
  const bool applier_failed = a.state == ApplierState::kError;
  status.state = applier_failed ? "error" : (r.connected ? "running" : "waiting");

  NodeStatus::Secondary& s = status.secondary.emplace();
  s.primary = config_.transport.primary;
  s.receiver_state = ReceiverStateName(r.state);
  s.applier_state = ApplierStateName(a.state);
  s.connected = r.connected;
  s.last_heard = static_cast<double>(r.last_heard_unix_ms) / 1000.0;
  s.received_seq = r.durable_seq;
  s.primary_last_seq = r.primary_last_seq;
  s.applied_seq = a.applied_seq;
  s.applied_gtid = a.gtid;
  s.source_position = a.source_position.ToString();
  s.transactions_applied = a.transactions_applied;
  s.rows_applied = a.rows_applied;
  s.apply_workers = a.workers;
  s.parallel_applied = a.parallel_applied;
  s.serial_fallbacks = a.serial_fallbacks;
  s.waiting_for = a.waiting_for;
  s.files = {.root = config_.repository.path,
             .changes_applied = a.file_changes_applied,
             .batches = a.file_batches,
             .resync_pending = a.file_resync_pending,
             .changes_refused = a.file_changes_refused};
  s.lag = {
      .transactions = behind, .bytes = behind > 0 ? relay_->bytes() : 0, .seconds = lag_seconds};
  s.relay = {.first_seq = relay_->first_seq(),
             .last_seq = relay_->last_seq(),
             .entries = relay_->entry_count(),
             .bytes = relay_->bytes()};
  s.reconnects = r.reconnects;
  s.entries_refused = r.entries_refused;
  s.primary_refusal = r.primary_refusal;
  for (const auto& [db, table] : applier_->Entering()) s.entering.push_back(db + "." + table);
  s.bootstrap = bootstrapper_->status();
  if (s.bootstrap && s.bootstrap->exit_code < 0 && s.bootstrap->phase != "done") {
    status.state = "bootstrapping";
  }
  return status;
}

}  // namespace replsync::apply
