#include "tools/cli/service.h"

#include <fmt/ranges.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "apply/secondary_node.h"
#include "capture/primary_node.h"
#include "sync/config.h"
#include "sync/database_filter.h"
#include "sync/health/health_monitor.h"
#include "sync/health/health_server.h"
#include "sync/logging.h"
#include "sync/mysql/mysql_session.h"
#include "sync/node/bootstrap_request.h"
#include "sync/node/node.h"
#include "sync/node/role_keeper.h"
#include "sync/node/role_request.h"
#include "sync/node/status_file.h"
#include "tools/cli/promote_command.h"
#include "tools/cli/rejoin_command.h"

namespace replsync::cli {

namespace {

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Waits for SIGINT/SIGTERM on its own thread (the signals are blocked in every other thread,
// which must be created after this object) and calls `on_signal`.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void()> on_signal) {
    sigset_t set = StopSignals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([this, set, on_signal = std::move(on_signal)] {
      int sig = 0;
      sigwait(&set, &sig);
      if (!done_) spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      signalled_ = true;
      on_signal();
    });
  }
  ~SignalWatcher() {
    done_ = true;
    // Wake the watcher only when it still waits: a signal sent to a thread that has already
    // finished could end the whole process instead.
    if (!signalled_) pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::atomic<bool> signalled_{false};
  std::thread thread_;
};

// The node `config` names (its role: the role state's), opened (not started). On error, logs
// why and sets *exit_code.
std::unique_ptr<Node> OpenNode(const NodeConfig& config, RoleKeeper* role, int* exit_code) {
  // Keys first: a node without them (and not insecure) does not start.
  Result<TransportSecurity> security = LoadTransportSecurity(config);
  if (!security.ok()) {
    spdlog::error("{}", security.status().message());
    *exit_code = 2;
    return nullptr;
  }
  if (security->insecure) spdlog::warn("{}", kInsecureTransportWarning);
  if (config.peers.empty()) {
    spdlog::warn("{}: no [peers.<name>] table: {}", config.source_path,
                 config.node.role == NodeRole::kPrimary ? "no secondary can connect to this primary"
                                                        : "the primary cannot be found");
  }
  if (config.node.role == NodeRole::kPrimary) {
    capture::PrimaryNodeOptions options;
    options.role = role;
    auto node = capture::PrimaryNode::Open(config, *security, options);
    if (node.ok()) return std::move(node).value();
    spdlog::error("{}", node.status().message());
    *exit_code = 1;
    return nullptr;
  }
  if (Status st = apply::SecondaryNode::CheckConfig(config); !st.ok()) {
    spdlog::error("{}", st.message());
    *exit_code = 2;
    return nullptr;
  }
  apply::SecondaryNodeOptions options;
  options.role = role;
  auto node = apply::SecondaryNode::Open(config, *security, options);
  if (node.ok()) return std::move(node).value();
  spdlog::error("{}", node.status().message());
  *exit_code = 1;
  return nullptr;
}

// Sets the node's own server read_only on or off.
Status SetReadOnly(const NodeConfig& config, bool on) {
  MysqlThreadScope scope;
  RS_ASSIGN_OR_RETURN(std::unique_ptr<MysqlSession> session,
                      MysqlSession::Open(MysqlOptionsOf(config.mysql)));
  return session->Execute(std::string("SET GLOBAL read_only = ") + (on ? "ON" : "OFF"),
                          "set read_only");
}

// The node's own server's binlog end (SHOW MASTER STATUS).
Result<BinlogPosition> BinlogEnd(const NodeConfig& config) {
  MysqlThreadScope scope;
  RS_ASSIGN_OR_RETURN(std::unique_ptr<MysqlSession> session,
                      MysqlSession::Open(MysqlOptionsOf(config.mysql)));
  return MasterPosition(*session);
}

// Rejoin: the applied position (and tables entering the set) a node recorded when it followed an
// older stream, removed (not logged: the node's own binlog is not the group's).
Status ForgetAppliedPosition(const NodeConfig& config) {
  MysqlThreadScope scope;
  RS_ASSIGN_OR_RETURN(std::unique_ptr<MysqlSession> session,
                      MysqlSession::Open(MysqlOptionsOf(config.mysql)));
  return session->ExecuteBatch(
      {"SET SESSION sql_log_bin = 0", "DROP TABLE IF EXISTS replsync.applied, replsync.entering"},
      "forget the applied position of the older stream");
}

// The events a secondary held SLAVESIDE_DISABLED (the ones its primary ran: schemas/failover.md
// "Events") in the replicated databases, enabled on the promoted node (not logged: each node's
// own copy decides what it runs). Returns their names.
Result<std::vector<std::string>> EnableEvents(const NodeConfig& config) {
  MysqlThreadScope scope;
  RS_ASSIGN_OR_RETURN(std::unique_ptr<MysqlSession> session,
                      MysqlSession::Open(MysqlOptionsOf(config.mysql)));
  RS_RETURN_IF_ERROR(session->Execute("SET SESSION sql_log_bin = 0"));
  RS_ASSIGN_OR_RETURN(auto rows, session->Query("SELECT EVENT_SCHEMA, EVENT_NAME FROM "
                                                "information_schema.EVENTS WHERE STATUS = "
                                                "'SLAVESIDE_DISABLED'",
                                                "list the events held disabled"));
  const DatabaseFilter filter(config.mysql.databases);
  std::vector<std::string> enabled;
  for (const SqlSession::Row& row : rows) {
    const std::string db = row[0].value_or(""), name = row[1].value_or("");
    if (!filter.Replicated(db)) continue;
    RS_RETURN_IF_ERROR(session->Execute(
        "ALTER EVENT " + QuoteIdentifier(db) + "." + QuoteIdentifier(name) + " ENABLE",
        "enable event " + db + "." + name));
    enabled.push_back(db + "." + name);
  }
  if (!enabled.empty()) spdlog::info("promote: events enabled: {}", fmt::join(enabled, ", "));
  return enabled;
}

// `replsync promote --force` on a primary fenced by another primary of its epoch (schemas/
// failover.md "Two primaries"): this node's data is kept; it becomes the primary at the next
// epoch, its fork its own journal's and binlog's end. The caller runs the node again as primary.
RoleReply Reclaim(const Node& node, RoleKeeper& keeper, const NodeConfig& config,
                  const RoleRequest& request, bool* prepared) {
  RoleReply reply;
  reply.token = request.token;
  reply.epoch = keeper.state().epoch;
  *prepared = false;
  const NodeStatus status = node.status();
  Result<BinlogPosition> end = BinlogEnd(config);
  if (!end.ok() || !status.primary) {
    reply.exit_code = 2;
    reply.message = "this node's binlog end cannot be read: " +
                    (end.ok() ? std::string("no journal status") : end.status().message());
    return reply;
  }
  ForkPoint fork;
  fork.journal_seq = status.primary->journal.last_seq;
  fork.binlog_file = end->file;
  fork.binlog_offset = end->offset;
  Result<RoleState> state = keeper.Reclaim(fork, static_cast<int64_t>(std::time(nullptr)));
  if (!state.ok()) {
    reply.exit_code = state.status().code() == Status::Code::kFailedPrecondition ? 1 : 2;
    reply.message = state.status().message();
    return reply;
  }
  *prepared = true;
  reply.exit_code = 0;
  reply.epoch = state->epoch;
  reply.message = fmt::format(
      "this node is the primary at epoch {}, its data kept (journal sequence {}, binlog {}); "
      "the other primary of epoch {} stays fenced: `replsync rejoin` there quarantines what it "
      "holds and makes it follow this node",
      state->epoch, fork.journal_seq, end->ToString(), state->epoch - 1);
  spdlog::warn("promote --force: {}", reply.message);
  return reply;
}

// `replsync promote` on a secondary (schemas/failover.md "replsync promote"): everything received
// applied, then the role state says primary at the next epoch with the fork point. The caller
// runs the node again as the state then says; the node makes its database writable once its
// capture runs (PrimaryNode::Start).
RoleReply Promote(Node& node, RoleKeeper& keeper, const NodeConfig& config,
                  const RoleRequest& request, bool* prepared) {
  RoleReply reply;
  reply.token = request.token;
  reply.epoch = keeper.state().epoch;
  *prepared = false;
  if (config.transport.listen.empty()) {
    reply.exit_code = 1;
    reply.message = "[transport] listen is not set in " + config.source_path +
                    ": a promoted node serves its secondaries there; set it and restart "
                    "replsyncd first";
    return reply;
  }
  if (struct stat st{};
      !config.repository.path.empty() &&
      (::stat(config.repository.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
    reply.exit_code = 1;
    reply.message = "[repository] path " + config.repository.path +
                    " is not a folder: a primary watches its repository there; create it (or "
                    "correct the path and restart replsyncd) first";
    return reply;
  }
  spdlog::info("promote{}: applying everything received, then this node becomes the primary",
               request.force ? " --force" : "");
  Result<ForkPoint> fork = node.PrepareForPromotion(request.force, std::chrono::minutes(10));
  if (!fork.ok()) {
    reply.exit_code = fork.status().code() == Status::Code::kFailedPrecondition ? 1 : 2;
    reply.message = fork.status().message();
    spdlog::error("promote refused: {}", reply.message);
    return reply;
  }
  *prepared = true;
  // The node starts as primary read-only and is made writable once its capture runs
  // (PrimaryNode::Start): checked here that it can be, by setting what is set.
  if (Status st = SetReadOnly(config, true); !st.ok()) {
    reply.message = "the database's read_only cannot be changed (" + st.message() +
                    "); the node stays a secondary (the account needs SUPER or READ_ONLY ADMIN)";
    return reply;
  }
  Result<RoleState> state = keeper.Promote(*fork, static_cast<int64_t>(std::time(nullptr)));
  if (!state.ok()) {
    reply.message = "the role state could not be saved (" + state.status().message() +
                    "); the node stays a secondary";
    return reply;
  }
  reply.exit_code = 0;
  reply.epoch = state->epoch;
  Result<std::vector<std::string>> events = EnableEvents(config);
  reply.message = fmt::format(
      "promoted to primary at epoch {}; fork point: journal sequence {}, gtid '{}', the old "
      "primary's binlog {}:{}{}{}",
      state->epoch, fork->journal_seq, fork->gtid, fork->binlog_file, fork->binlog_offset,
      fork->lost.empty() ? "" : "; known lost (--force): sequences " + fork->lost,
      !events.ok() ? "; the events could not be enabled (" + events.status().message() +
                         "): enable them by hand (README \"Runbook\")"
      : events->empty() ? ""
                        : fmt::format("; events enabled: {}", fmt::join(*events, ", ")));
  spdlog::info("{}", reply.message);
  return reply;
}

// `replsync rejoin` on a fenced old primary (schemas/failover.md "replsync rejoin"): the tail
// found (and, unless a dry run, quarantined), then a bootstrap --resync asked for and the role
// state made a secondary of the promoted node. The caller runs the node again as the state then
// says.
RoleReply Rejoin(const Node& node, RoleKeeper& keeper, const NodeConfig& config,
                 const RoleRequest& request, bool* switched) {
  RoleReply reply;
  reply.token = request.token;
  const RoleState state = keeper.state();
  reply.epoch = state.epoch;
  *switched = false;
  if (state.role != NodeRole::kPrimary || !state.fenced) {
    reply.exit_code = 1;
    reply.message = fmt::format(
        "this node is not a fenced old primary ({} at epoch {}): there is nothing to rejoin",
        RoleName(state.role), state.epoch);
    return reply;
  }
  const std::optional<ForkPoint> fork = TakeoverFork(state, config.node.name);
  if (!fork) {
    reply.message =
        "this node does not know where the promoted node's data left its own (it learns the "
        "fork point from the promoted node's answers): check that it reaches the new primary "
        "(`replsync status`) and try again";
    return reply;
  }
  // The node it will follow is what ApplyRoleState makes of the state about to be saved: the
  // node of the latest promotion (one later than the takeover, when there was one).
  RoleState as_secondary = state;
  as_secondary.role = NodeRole::kSecondary;
  const std::string followed = FollowedNode(as_secondary, config.node.name);
  if (!request.dry_run) {
    NodeConfig following = config;
    if (Status st = ApplyRoleState(as_secondary, &following); !st.ok()) {
      reply.message = st.message() + ", and restart replsyncd first";
      return reply;
    }
  }
  spdlog::info("rejoin{}: reading the unshipped tail after the fork at epoch {}",
               request.dry_run ? " --dry-run" : "", fork->epoch);
  Result<cli::RejoinTail> tail = FindRejoinTail(config, *fork, node, !request.dry_run);
  if (!tail.ok()) {
    reply.message = tail.status().message();
    spdlog::error("rejoin: {}", reply.message);
    return reply;
  }
  reply.report = tail->ToJson(config.node.name);
  reply.message = tail->ToText(config.node.name);
  if (request.dry_run) {
    reply.exit_code = tail->empty() ? 0 : 1;
    return reply;
  }
  const std::string& state_dir = config.node.state_dir;
  // A relay left from when this node was a secondary before holds an older stream's sequences,
  // and so does its database's applied position: the bootstrap sets a new one.
  Status st = QuarantineState(state_dir, tail->quarantine, {"relay"});
  if (st.ok()) st = ForgetAppliedPosition(config);
  if (!st.ok()) {
    reply.message += st.message();
    return reply;
  }
  // The bootstrap first: the node, a secondary once the state says so, waits for it instead of
  // applying the new primary's stream onto its own rows; a crash before the state is saved leaves
  // a fenced primary, which has no use for the request.
  if (st = WriteBootstrapRequest(state_dir,
                                 {.token = request.token, .force = false, .resync = true});
      !st.ok()) {
    reply.message += st.message();
    return reply;
  }
  Result<RoleState> next = keeper.Rejoin(*fork);
  if (!next.ok()) {
    (void)RemoveBootstrapRequest(state_dir);
    reply.message += "the role state could not be saved (" + next.status().message() +
                     "); the node stays a fenced primary";
    return reply;
  }
  *switched = true;
  reply.exit_code = 0;
  reply.epoch = next->epoch;
  reply.message += fmt::format(
      "this node is now a secondary of {} at epoch {}: a bootstrap --resync makes its rows and "
      "files the new primary's (the tail stays only in the quarantine)",
      followed, next->epoch);
  spdlog::info("rejoin: {}", reply.message);
  return reply;
}

// `replsync switchover` on the primary (schemas/failover.md "replsync switchover"): writes
// refused (read_only, /health/primary 503), the capture drained to the binlog's end, the
// secondary asked (Heartbeat) to promote itself once it applied the journal's last entry; done
// when the promoted node's epoch fenced this node. On a timeout the node serves again.
RoleReply Switchover(const Node& node, RoleKeeper& keeper, health::HealthMonitor& monitor,
                     const NodeConfig& config, const RoleRequest& request,
                     const std::atomic<bool>& stopping) {
  using Clock = std::chrono::steady_clock;
  RoleReply reply;
  reply.token = request.token;
  const RoleState state = keeper.state();
  reply.epoch = state.epoch;
  if (state.role != NodeRole::kPrimary || state.fenced) {
    reply.exit_code = 1;
    reply.message = fmt::format("this node is not the serving primary ({}{} at epoch {})",
                                RoleName(state.role), state.fenced ? ", fenced" : "", state.epoch);
    return reply;
  }
  std::string target = request.target;
  if (target.empty() && config.peers.size() == 1) target = config.peers[0].name;
  const NodeStatus before = node.status();
  const NodeStatus::Peer* peer = nullptr;
  if (before.primary) {
    for (const NodeStatus::Peer& p : before.primary->peers) {
      if (p.name == target) peer = &p;
    }
  }
  if (target.empty() || peer == nullptr || !peer->connected) {
    reply.exit_code = 1;
    reply.message =
        target.empty() ? "this node has several peers: name the secondary to promote with --to NAME"
                       : fmt::format(
                             "{} is not a connected secondary of this primary: it must follow this "
                             "node to take over without losing anything (`replsync status`)",
                             target);
    return reply;
  }
  const auto began = Clock::now();
  const auto deadline = began + std::chrono::seconds(60);
  monitor.SetHandingOver("switchover to " + target + " under way: writes are refused");
  auto give_back = [&](const std::string& why) {
    keeper.SetHandover(std::nullopt);
    const Status st = SetReadOnly(config, false);
    monitor.SetHandingOver("");
    reply.message =
        why + (st.ok() ? "; this node is the primary again and accepts writes"
                       : "; this node is the primary again, but its database stays read-only (" +
                             st.message() + ")");
    spdlog::error("switchover: {}", reply.message);
    return reply;
  };
  spdlog::info("switchover to {}: refusing writes (read_only=ON)", target);
  if (Status st = SetReadOnly(config, true); !st.ok()) {
    return give_back("the database could not be made read-only (" + st.message() + ")");
  }
  Result<BinlogPosition> end = BinlogEnd(config);
  if (!end.ok()) return give_back(end.status().message());
  // Drained: everything committed before read_only journaled (and no file change pending).
  uint64_t last_seq = 0;
  for (;;) {
    const NodeStatus s = node.status();
    Result<BinlogPosition> captured = BinlogPosition::Parse(s.primary->binlog_position);
    if (captured.ok() && *captured >= *end &&
        (!s.primary->files || s.primary->files->files_pending == 0)) {
      last_seq = s.primary->journal.last_seq;
      break;
    }
    if (stopping) return give_back("replsyncd is stopping");
    if (Clock::now() > deadline) {
      return give_back(fmt::format("the capture did not reach the binlog's end {} within 60 s",
                                   end->ToString()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  spdlog::info(
      "switchover to {}: drained at binlog {}, journal sequence {}; asking {} to take over", target,
      end->ToString(), last_seq, target);
  keeper.SetHandover(RoleKeeper::Handover{.to = target, .seq = last_seq});
  while (!keeper.state().fenced) {
    if (stopping) return give_back("replsyncd is stopping");
    if (Clock::now() > deadline) {
      uint64_t applied = 0;
      if (const NodeStatus s = node.status(); s.primary) {
        for (const NodeStatus::Peer& p : s.primary->peers) {
          if (p.name == target) applied = p.applied_seq;
        }
      }
      return give_back(
          fmt::format("{} did not take over within 60 s (it applied journal sequence {} of {})",
                      target, applied, last_seq));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const RoleState after = keeper.state();
  const double refused = std::chrono::duration<double>(Clock::now() - began).count();
  monitor.SetHandingOver("");
  reply.exit_code = 0;
  reply.epoch = after.epoch;
  reply.message = fmt::format(
      "switched over: {} is the primary at epoch {}, with everything this node had (journal "
      "sequence {}); writes were refused for {:.1f} s (from read_only on this node until {} "
      "was primary and told this node)",
      target, after.forks.empty() ? after.epoch : after.forks.back().epoch, last_seq, refused,
      target);
  spdlog::info("{}", reply.message);
  return reply;
}

}  // namespace

int RunService(const std::string& config_path) {
  // Everything replsyncd creates (state folder, journal, relay, status, verify records, the
  // secondary's temporary files before their final mode is set) is its own: group and others
  // get nothing unless a file's own code grants it.
  ::umask(077);
  // Block SIGINT/SIGTERM before anything else: one that arrives while the node is still starting
  // stays pending and stops it cleanly once the watcher runs, instead of killing it.
  sigset_t stop_signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto config = NodeConfig::Load(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "replsyncd: %s\n", config.status().message().c_str());
    return 2;
  }
  if (Status st = SetUpLogging(config->log.level); !st.ok()) {
    std::fprintf(stderr, "replsyncd: %s\n", st.message().c_str());
    return 2;
  }
  // One replsyncd per state folder, for as long as it runs: `replsync status`, verify and repair
  // ask this lock whether it does.
  Result<FileLock> lock = ClaimStateDir(config->node.state_dir);
  if (!lock.ok()) {
    spdlog::error("{}", lock.status().message());
    return 1;
  }
  // The role and epoch live in the node's state; the TOML role counts at its first start only.
  Result<RoleState> role_state = LoadRoleState(*config);
  if (!role_state.ok()) {
    spdlog::error(
        "{}: restore the file from a backup, or remove it knowing that [node] role in "
        "{} then decides the role again (schemas/failover.md)",
        role_state.status().message(), config_path);
    return 2;
  }
  if (role_state->role != config->node.role) {
    spdlog::info(
        "the node's state says {} (epoch {}): [node] role = \"{}\" counted at its first "
        "start only",
        RoleName(role_state->role), role_state->epoch, RoleName(config->node.role));
  }
  RoleKeeper keeper(config->node.state_dir, config->node.name, *role_state);
  spdlog::info("replsyncd {} starting as {} '{}' at epoch {}{} (config {}, state {})",
               REPLSYNC_VERSION, RoleName(role_state->role), config->node.name, role_state->epoch,
               role_state->fenced ? ", fenced" : "", config_path, config->node.state_dir);
  // A signal stops the node that runs and ends the loop below; a fence stops it and the loop
  // opens it again, fenced.
  std::mutex run_mu;
  std::shared_ptr<StopRequest> run_stop;  // guarded by run_mu: the running node's
  // Set under run_mu (with run_stop's request); a switchover reads it without the lock.
  std::atomic<bool> signalled{false};
  auto stop_run = [&](bool signal) {
    std::lock_guard<std::mutex> lock(run_mu);
    if (signal) signalled = true;
    if (run_stop) run_stop->Request();
  };
  SignalWatcher signals([&] { stop_run(true); });  // before any thread starts: they all inherit
                                                   // the blocked signals
  // [health] listen: the endpoint answers from the statuses the main loop takes (its heartbeat).
  health::HealthMonitor monitor(
      {.max_lag_seconds = static_cast<double>(config->health.max_lag_seconds),
       .peer_timeout_seconds = static_cast<double>(config->health.peer_timeout_seconds)});
  std::unique_ptr<health::HealthServer> health_server;
  if (!config->health.listen.empty()) {
    health_server = std::make_unique<health::HealthServer>(
        health::HealthServerOptions{.host = config->health.host, .port = config->health.port},
        monitor.Paths());
    if (Status st = health_server->Start(); !st.ok()) {
      spdlog::error("{} ([health] listen in {})", st.message(), config_path);
      return 1;
    }
    spdlog::info("health: serving http://{}/health/{{primary,secondary,ready,live}}",
                 config->health.listen);
  }
  // `replsync promote` and `replsync rejoin`: a request the main loop finds, served on a thread
  // of its own.
  std::atomic<Node*> running_node{nullptr};
  std::atomic<bool> serving{false};
  std::thread server;
  // Serves `request` on its own thread; done, the node stops and runs again as its role state
  // now says (a switchover's fence stops it by itself).
  auto serve = [&](Node* node, RoleRequest request) {
    if (server.joinable()) server.join();
    serving = true;
    server = std::thread([&, node, request = std::move(request)] {
      bool changed = false;
      const RoleReply reply = request.action == RoleRequest::Action::kPromote
                                  ? (keeper.state().role == NodeRole::kPrimary
                                         ? Reclaim(*node, keeper, *config, request, &changed)
                                         : Promote(*node, keeper, *config, request, &changed))
                              : request.action == RoleRequest::Action::kRejoin
                                  ? Rejoin(*node, keeper, *config, request, &changed)
                                  : Switchover(*node, keeper, monitor, *config, request, signalled);
      if (Status st = WriteRoleReply(config->node.state_dir, reply); !st.ok()) {
        spdlog::error("role request: {}", st.message());
      }
      if (changed) stop_run(false);
      serving = false;
    });
  };
  auto serve_request = [&](const NodeStatus& status) {
    Node* node = running_node.load();
    if (node == nullptr || serving) return;
    // A switchover's handover: this secondary promotes itself once it applied everything the
    // primary had when it stopped taking writes.
    if (const auto handover = keeper.handover();
        handover && status.secondary && status.secondary->applied_seq >= handover->seq) {
      keeper.SetHandover(std::nullopt);  // heard again with the next Heartbeat if this fails
      spdlog::info("switchover: applied journal sequence {}: promoting this node", handover->seq);
      serve(node, {.token = "switchover",
                   .action = RoleRequest::Action::kPromote,
                   .force = false,
                   .dry_run = false,
                   .target = ""});
      return;
    }
    Result<RoleRequest> request = ReadRoleRequest(config->node.state_dir);
    if (!request.ok()) {
      if (!request.status().IsNotFound()) {
        spdlog::warn("role request: {}; removed", request.status().message());
        (void)RemoveRoleRequest(config->node.state_dir);
      }
      return;
    }
    (void)RemoveRoleRequest(config->node.state_dir);
    if (const RoleState state = keeper.state();
        request->action == RoleRequest::Action::kPromote && state.role != NodeRole::kSecondary) {
      const std::string refusal = PromoteRefusal(state, config->node.name, request->force);
      if (!refusal.empty()) {
        RoleReply refused;
        refused.token = request->token;
        refused.exit_code = 1;
        refused.epoch = state.epoch;
        refused.message = refusal;
        (void)WriteRoleReply(config->node.state_dir, refused);
        return;
      }
    }
    serve(node, *std::move(request));
  };
  // The node a secondary's run follows by the role state it started with (FollowedNode): when
  // another node's promotion is learnt (a Heartbeat or a PeerWatch answer), the run stops and
  // the next follows the promoted node.
  std::string run_followed;  // guarded by run_mu
  auto follow_changed = [&] {
    const RoleState state = keeper.state();
    if (state.role != NodeRole::kSecondary) return;
    const std::string followed = FollowedNode(state, config->node.name);
    {
      std::lock_guard<std::mutex> lock(run_mu);
      if (followed == run_followed) return;
      run_followed = followed;  // said once; the next run starts with it
    }
    spdlog::info("node {} was promoted at epoch {}: this node follows it from now on", followed,
                 state.forks.back().epoch);
    stop_run(false);
  };
  NodeRunOptions run{.state_dir = config->node.state_dir};
  run.hurry = [&keeper] { return keeper.handover().has_value(); };
  run.on_status = [&](const NodeStatus& status) {
    monitor.Publish(status);
    serve_request(status);
    follow_changed();
  };
  keeper.set_on_fence([&](const std::string& reason) {
    monitor.MarkFenced(reason);
    stop_run(false);
  });
  keeper.set_on_handover([&] {
    std::lock_guard<std::mutex> lock(run_mu);
    if (run_stop) run_stop->Poke();
  });
  int exit_code = 0;
  for (;;) {
    auto stop = std::make_shared<StopRequest>();
    {
      std::lock_guard<std::mutex> lock(run_mu);
      if (signalled) break;
      run_stop = stop;
    }
    NodeConfig node_config = *config;
    const RoleState state = keeper.state();
    {
      std::lock_guard<std::mutex> lock(run_mu);
      run_followed = FollowedNode(state, config->node.name);
    }
    Status st = ApplyRoleState(state, &node_config);
    // A secondary keeps no journal or manifest: one there is an old primary's, left from before
    // it rejoined.
    if (st.ok() && state.role == NodeRole::kSecondary) {
      st = QuarantineState(config->node.state_dir,
                           QuarantineDir(config->node.state_dir, state.epoch),
                           {"journal", "manifest.db"});
    }
    if (!st.ok()) {
      spdlog::error("{}", st.message());
      exit_code = 2;
      break;
    }
    std::unique_ptr<Node> node = OpenNode(node_config, &keeper, &exit_code);
    if (node == nullptr) break;
    running_node = node.get();
    st = RunNode(*node, *stop, run);
    running_node = nullptr;
    if (server.joinable()) server.join();
    if (!st.ok()) {
      spdlog::error("{}", st.message());
      exit_code = 1;
      break;
    }
    node.reset();
    std::lock_guard<std::mutex> lock(run_mu);
    if (signalled) break;
    spdlog::info("the node starts again as its role state now says ({}{})",
                 RoleName(keeper.state().role), keeper.state().fenced ? ", fenced" : "");
  }
  keeper.set_on_fence(nullptr);
  keeper.set_on_handover(nullptr);
  if (health_server) health_server->Stop();
  return exit_code;
}

}  // namespace replsync::cli
