#include "tools/cli/service.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "apply/applier.h"
#include "apply/receiver.h"
#include "capture/capture_service.h"
#include "capture/files/file_capture.h"
#include "capture/shipper.h"
#include "sync/config.h"
#include "sync/file_lock.h"
#include "sync/journal/journal.h"
#include "sync/logging.h"
#include "sync/node/status_file.h"
#include "sync/wire/zmq_transport.h"

namespace replsync::cli {

namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

double UnixNow() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<double>(now.tv_sec) + now.tv_nsec / 1e9;
}

// Waits for SIGINT/SIGTERM on its own thread (the signals are blocked in every other thread,
// which must be created after this object) and sets `stop`.
class SignalWatcher {
 public:
  SignalWatcher() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([this, set] {
      int sig = 0;
      sigwait(&set, &sig);
      if (!done_) spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
      }
      cv_.notify_all();
    });
  }
  ~SignalWatcher() {
    done_ = true;
    bool signalled;
    {
      std::lock_guard<std::mutex> lock(mu_);
      signalled = stop_;
    }
    // Wake the watcher only when it still waits: a signal sent to a thread that has already
    // finished could end the whole process instead.
    if (!signalled) pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  // Waits up to `timeout` for a stop signal; returns true once one came.
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return stop_; });
  }

 private:
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Status::IoError("create state directory " + path + ": " + ec.message());
  return Status::Ok();
}

void WriteCommon(JsonWriter& w, const NodeConfig& config, double started, const char* state,
                 const std::string& error) {
  w.Key("version");
  w.Uint(1);
  w.Key("role");
  w.String(RoleName(config.node.role));
  w.Key("name");
  w.String(config.node.name.c_str());
  w.Key("pid");
  w.Int(getpid());
  w.Key("started_at");
  w.Double(started);
  w.Key("updated_at");
  w.Double(UnixNow());
  w.Key("state");
  w.String(state);
  w.Key("error");
  w.String(error.c_str());
}

void Publish(const NodeConfig& config, const rapidjson::StringBuffer& buf) {
  Status st = WriteStatusFile(config.node.state_dir, buf.GetString());
  if (!st.ok()) spdlog::warn("{}", st.message());
}

int RunPrimary(const NodeConfig& config, SignalWatcher& signals) {
  const double started = UnixNow();
  Journal::Options jopts;
  jopts.path = config.node.state_dir + "/journal";
  jopts.max_bytes = config.journal.max_megabytes << 20;
  auto journal = Journal::Open(jopts);
  if (!journal.ok()) {
    spdlog::error("{}", journal.status().message());
    return 1;
  }
  auto transport = ZmqServerTransport::Bind(config.transport.listen);
  if (!transport.ok()) {
    spdlog::error("{}", transport.status().message());
    return 1;
  }
  spdlog::info("primary: journal {} holds seq {}..{} ({} bytes); serving secondaries at {}",
               jopts.path, (*journal)->first_seq(), (*journal)->last_seq(), (*journal)->bytes(),
               (*transport)->bound_endpoint());

  capture::CaptureService* capture_ptr = nullptr;
  capture::Shipper* shipper_ptr = nullptr;
  std::atomic<capture::FileCapture*> files_ptr{nullptr};
  capture::ShipperOptions sopts;
  sopts.endpoint = config.transport.listen;
  sopts.shippable_seq = [&capture_ptr] { return capture_ptr->last_complete_seq(); };
  // The capture's writer thread is the journal's one writer: retention goes through it.
  sopts.submit_retention = [&capture_ptr](uint64_t up_to,
                                          std::vector<std::pair<std::string, std::string>> meta,
                                          std::function<void(Status)> done) {
    capture_ptr->SubmitRetention(up_to, std::move(meta), std::move(done));
  };
  sopts.on_file_resync = [&files_ptr](const std::vector<std::string>& paths) {
    if (capture::FileCapture* files = files_ptr.load()) files->RequestResync(paths);
  };
  // Test hook: tiny verify replies, so that tests page through listings with a few files.
  if (const char* nodes = std::getenv("REPLSYNC_TEST_TREE_REPLY_NODES")) {
    sopts.tree_reply_nodes = std::max<size_t>(1, std::strtoull(nodes, nullptr, 10));
  }
  if (!config.repository.path.empty()) {
    sopts.on_tree_snapshot = [&files_ptr](bool deep, std::vector<std::string> paths,
                                          std::function<void(Result<FileTreeSnapshot>)> done) {
      capture::FileCapture* files = files_ptr.load();
      if (files == nullptr) {
        done(Status::Aborted("the primary's file capture is starting; try again"));
        return;
      }
      capture::FileCapture::TreeSnapshotRequest request;
      request.deep = deep;
      request.resync_paths = std::move(paths);
      request.done = std::move(done);
      files->RequestTreeSnapshot(std::move(request));
    };
  }
  std::unique_ptr<capture::FileContentReader> content_reader;
  if (!config.repository.path.empty()) {
    content_reader = std::make_unique<capture::FileContentReader>(config.repository.path);
    sopts.fill_file = [reader = content_reader.get()](pb::FileChange* change) {
      return reader->Fill(change);
    };
  }
  capture::Shipper shipper(journal->get(), std::move(transport).value(), sopts);
  shipper_ptr = &shipper;

  capture::MariadbSourceFactory factory(config);
  capture::CaptureOptions copts;
  copts.databases = config.mysql.databases;
  copts.journal_max_bytes = jopts.max_bytes;
  copts.on_append = [&shipper_ptr] { shipper_ptr->Notify(); };
  capture::CaptureService capture(journal->get(), &factory, copts);
  capture_ptr = &capture;

  if (Status st = capture.Start(); !st.ok()) {
    spdlog::error("capture: {}", st.message());
    return 1;
  }
  // The file repository: its changes join the same journal through the capture's writer.
  std::unique_ptr<capture::FileCapture> files;
  if (!config.repository.path.empty()) {
    capture::FileCaptureOptions fopts;
    fopts.root = config.repository.path;
    fopts.manifest_path = config.node.state_dir + "/manifest.db";
    fopts.quiet = std::chrono::milliseconds(config.repository.quiet_ms);
    fopts.open_write_quiet = std::chrono::milliseconds(config.repository.open_write_quiet_ms);
    capture::FileEntrySink sink;
    sink.submit = [&capture](std::string entry, bool completes) {
      return capture.SubmitExternal(std::move(entry), completes);
    };
    sink.wait_durable = [&capture](uint64_t ticket) { return capture.WaitDurable(ticket); };
    sink.journal_full = [&capture] { return capture.journal_full(); };
    sink.journal_last_seq = [&capture] { return capture.last_complete_seq(); };
    files = std::make_unique<capture::FileCapture>(fopts, std::move(sink));
    if (Status st = files->Start(); !st.ok()) {
      spdlog::error("files: {}", st.message());
      capture.Stop();
      return 1;
    }
    files_ptr = files.get();
  } else {
    spdlog::warn("primary: [repository] path is not set: only the database replicates");
  }
  if (Status st = shipper.Start(); !st.ok()) {
    spdlog::error("shipper: {}", st.message());
    if (files) files->Stop();
    capture.Stop();
    return 1;
  }

  auto write_status = [&] {
    capture::CaptureStatus c = capture.status();
    capture::ShipperStatus s = shipper.status();
    capture::FileCaptureStatus f;
    if (files) f = files->status();
    std::string error = c.last_error.empty() ? s.last_error : c.last_error;
    if (error.empty()) error = f.last_error;
    const char* state = "running";
    if (c.state == capture::CaptureState::kFailed || f.state == "failed") {
      state = "error";
    } else if (c.state == capture::CaptureState::kJournalFull) {
      state = "paused";
    } else if (c.state == capture::CaptureState::kConnecting) {
      state = "waiting";
    }
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartObject();
    WriteCommon(w, config, started, state, error);
    w.Key("primary");
    w.StartObject();
    w.Key("capture_state");
    w.String(capture::CaptureStateName(c.state));
    w.Key("source");
    w.String(c.source.c_str());
    w.Key("binlog_position");
    w.String(c.checkpoint.ToString().c_str());
    w.Key("read_position");
    w.String(c.read_position.ToString().c_str());
    w.Key("gtid");
    w.String(c.checkpoint_gtid.c_str());
    w.Key("lag_seconds");
    w.Int64(c.lag_seconds);
    w.Key("captured");
    w.StartObject();
    w.Key("transactions");
    w.Uint64(c.transactions);
    w.Key("skipped_transactions");
    w.Uint64(c.skipped_transactions);
    w.Key("rows");
    w.Uint64(c.rows);
    w.Key("bytes");
    w.Uint64(c.bytes);
    w.EndObject();
    w.Key("journal");
    w.StartObject();
    w.Key("first_seq");
    w.Uint64(s.journal_first_seq);
    w.Key("last_seq");
    w.Uint64(s.journal_last_seq);
    w.Key("entries");
    w.Uint64(s.journal_last_seq + 1 - s.journal_first_seq);
    w.Key("bytes");
    w.Uint64(c.journal_bytes);
    w.Key("max_bytes");
    w.Uint64(c.journal_max_bytes);
    w.Key("full");
    w.Bool(c.journal_full);
    w.EndObject();
    if (files) {
      w.Key("files");
      w.StartObject();
      w.Key("root");
      w.String(f.root.c_str());
      w.Key("state");
      w.String(f.state.c_str());
      w.Key("files_pending");
      w.Uint64(f.files_pending);
      w.Key("bytes_pending");
      w.Uint64(f.bytes_pending);
      w.Key("last_rescan");
      w.Int64(f.last_rescan_unix);
      w.Key("last_rescan_reason");
      w.String(f.last_rescan_reason.c_str());
      w.Key("rescans");
      w.Uint64(f.rescans);
      w.Key("watches");
      w.Uint64(f.watches);
      w.Key("changes_journaled");
      w.Uint64(f.changes_journaled);
      w.Key("literal_bytes");
      w.Uint64(f.literal_bytes);
      w.Key("copied_bytes");
      w.Uint64(f.copied_bytes);
      w.Key("abandoned_reads");
      w.Uint64(f.abandoned);
      w.Key("resyncs_requested");
      w.Uint64(f.resyncs_requested);
      w.EndObject();
    }
    w.Key("endpoint");
    w.String(s.endpoint.c_str());
    w.Key("entries_sent");
    w.Uint64(s.entries_sent);
    w.Key("bytes_sent");
    w.Uint64(s.bytes_sent);
    w.Key("bad_frames");
    w.Uint64(s.bad_frames);
    w.Key("abandoned_file_parts");
    w.Uint64(s.abandoned_file_parts);
    w.Key("peers");
    w.StartArray();
    for (const auto& p : s.peers) {
      w.StartObject();
      w.Key("name");
      w.String(p.name.c_str());
      w.Key("connected");
      w.Bool(p.connected);
      w.Key("durable_seq");
      w.Uint64(p.durable_seq);
      w.Key("applied_seq");
      w.Uint64(p.applied_seq);
      w.Key("sent_seq");
      w.Uint64(p.sent_seq);
      w.Key("lag_entries");
      w.Uint64(p.lag_entries);
      w.Key("last_seen");
      w.Double(static_cast<double>(p.last_seen_unix_ms) / 1000.0);
      w.Key("last_error");
      w.String(p.last_error.c_str());
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    w.EndObject();
    Publish(config, buf);
  };

  while (!signals.WaitFor(std::chrono::seconds(1))) write_status();
  shipper.Stop();
  files_ptr = nullptr;
  if (files) files->Stop();
  capture.Stop();
  write_status();
  capture::CaptureStatus c = capture.status();
  spdlog::info("primary: stopped cleanly; binlog checkpoint {} gtid '{}', journal seq {}",
               c.checkpoint.ToString(), c.checkpoint_gtid, (*journal)->last_seq());
  return 0;
}

int RunSecondary(const NodeConfig& config, SignalWatcher& signals) {
  const double started = UnixNow();
  Journal::Options jopts;
  jopts.path = config.node.state_dir + "/relay";
  auto relay = Journal::Open(jopts);
  if (!relay.ok()) {
    spdlog::error("{}", relay.status().message());
    return 1;
  }
  if (config.transport.primary.empty()) {
    spdlog::error(
        "{}: [transport] primary is not set: the secondary needs the primary's "
        "address, e.g. primary = \"tcp://10.0.0.1:7700\"",
        config.source_path);
    return 2;
  }
  auto transport = ZmqClientTransport::Connect(config.transport.primary);
  if (!transport.ok()) {
    spdlog::error("{}", transport.status().message());
    return 1;
  }
  apply::ApplierOptions aopts;
  aopts.mysql.host = config.mysql.host;
  aopts.mysql.port = config.mysql.port;
  aopts.mysql.user = config.mysql.user;
  aopts.mysql.password = config.mysql.password;
  aopts.mysql.connect_timeout = std::chrono::seconds(config.mysql.connect_timeout_s);
  aopts.mysql.socket = config.mysql.socket;
  aopts.workers = static_cast<int>(config.apply.workers);
  aopts.repository = config.repository.path;
  aopts.barrier_path = config.node.state_dir + "/verify.barrier";
  aopts.paused_path = config.node.state_dir + "/verify.paused";
  aopts.verify_lock_path = config.node.state_dir + "/verify.lock";
  aopts.file_resync_path = config.node.state_dir + "/file_resync";
  std::atomic<apply::Receiver*> receiver_ptr{nullptr};
  std::vector<std::string> early_resync;  // reported before the receiver exists
  std::mutex early_mu;
  aopts.on_file_resync = [&](std::vector<std::string> paths) {
    if (apply::Receiver* r = receiver_ptr.load()) {
      r->SetFileResync(std::move(paths));
    } else {
      std::lock_guard<std::mutex> lock(early_mu);
      early_resync = std::move(paths);
    }
  };
  apply::Applier applier(aopts, relay->get());

  apply::ReceiverOptions ropts;
  ropts.node_name = config.node.name;
  ropts.endpoint = config.transport.primary;
  apply::Receiver receiver(
      ropts, std::move(transport).value(), relay->get(),
      [&applier] { return applier.known_applied_seq(); }, [&applier] { applier.Notify(); });

  spdlog::info("secondary '{}': relay {} holds seq {}..{}; following the primary at {}",
               config.node.name, jopts.path, (*relay)->first_seq(), (*relay)->last_seq(),
               config.transport.primary);
  {
    std::lock_guard<std::mutex> lock(early_mu);
    receiver.SetFileResync(early_resync);
    receiver_ptr = &receiver;
  }
  if (Status st = applier.Start(); !st.ok()) {
    spdlog::error("applier: {}", st.message());
    return 1;
  }
  if (Status st = receiver.Start(); !st.ok()) {
    spdlog::error("receiver: {}", st.message());
    applier.Stop();
    return 1;
  }

  auto write_status = [&] {
    apply::ApplierStatus a = applier.status();
    apply::ReceiverStatus r = receiver.status();
    std::string error = !a.last_error.empty() ? a.last_error : r.last_error;
    const bool applier_failed = a.state == apply::ApplierState::kError;
    const char* state = applier_failed ? "error" : (r.connected ? "running" : "waiting");
    uint64_t behind = r.primary_last_seq > a.applied_seq ? r.primary_last_seq - a.applied_seq : 0;
    double lag_seconds = 0;
    if (behind > 0 && a.last_source_timestamp > 0) {
      lag_seconds = std::max(0.0, UnixNow() - a.last_source_timestamp);
    }
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartObject();
    WriteCommon(w, config, started, state, error);
    w.Key("secondary");
    w.StartObject();
    w.Key("primary");
    w.String(config.transport.primary.c_str());
    w.Key("receiver_state");
    w.String(apply::ReceiverStateName(r.state));
    w.Key("applier_state");
    w.String(apply::ApplierStateName(a.state));
    w.Key("connected");
    w.Bool(r.connected);
    w.Key("received_seq");
    w.Uint64(r.durable_seq);
    w.Key("primary_last_seq");
    w.Uint64(r.primary_last_seq);
    w.Key("applied_seq");
    w.Uint64(a.applied_seq);
    w.Key("applied_gtid");
    w.String(a.gtid.c_str());
    w.Key("source_position");
    w.String(a.source_position.ToString().c_str());
    w.Key("transactions_applied");
    w.Uint64(a.transactions_applied);
    w.Key("rows_applied");
    w.Uint64(a.rows_applied);
    w.Key("apply_workers");
    w.Int(a.workers);
    w.Key("parallel_applied");
    w.Uint64(a.parallel_applied);
    w.Key("serial_fallbacks");
    w.Uint64(a.serial_fallbacks);
    w.Key("waiting_for");
    w.String(a.waiting_for.c_str());
    w.Key("files");
    w.StartObject();
    w.Key("root");
    w.String(config.repository.path.c_str());
    w.Key("changes_applied");
    w.Uint64(a.file_changes_applied);
    w.Key("batches");
    w.Uint64(a.file_batches);
    w.Key("resync_pending");
    w.Uint64(a.file_resync_pending);
    w.EndObject();
    w.Key("lag");
    w.StartObject();
    w.Key("transactions");
    w.Uint64(behind);
    w.Key("bytes");
    w.Uint64(behind > 0 ? (*relay)->bytes() : 0);
    w.Key("seconds");
    w.Double(lag_seconds);
    w.EndObject();
    w.Key("relay");
    w.StartObject();
    w.Key("first_seq");
    w.Uint64((*relay)->first_seq());
    w.Key("last_seq");
    w.Uint64((*relay)->last_seq());
    w.Key("entries");
    w.Uint64((*relay)->entry_count());
    w.Key("bytes");
    w.Uint64((*relay)->bytes());
    w.EndObject();
    w.Key("reconnects");
    w.Uint64(r.reconnects);
    w.EndObject();
    w.EndObject();
    Publish(config, buf);
  };

  while (!signals.WaitFor(std::chrono::seconds(1))) write_status();
  receiver_ptr = nullptr;
  receiver.Stop();
  applier.Stop();
  write_status();
  apply::ApplierStatus a = applier.status();
  spdlog::info("secondary: stopped cleanly; applied seq {} gtid '{}' (source {}), relay seq {}",
               a.applied_seq, a.gtid, a.source_position.ToString(), (*relay)->last_seq());
  return 0;
}

}  // namespace

int RunService(const std::string& config_path) {
  // Block SIGINT/SIGTERM before anything else: one that arrives while the node is still starting
  // stays pending and stops it cleanly once the watcher runs, instead of killing it.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
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
  if (Status st = MakeDirs(config->node.state_dir); !st.ok()) {
    spdlog::error("{}", st.message());
    return 1;
  }
  // One replsyncd per state folder, for as long as it runs: `replsync status`, verify and repair
  // ask this lock whether it does.
  Result<FileLock> lock = FileLock::Acquire(DaemonLockPath(config->node.state_dir),
                                            FileLock::kDefaultWait, fmt::format("{}\n", getpid()));
  if (!lock.ok()) {
    if (lock.status().code() == Status::Code::kAborted) {
      spdlog::error(
          "another replsyncd (pid {}) runs with the state folder {}; stop it first, or give this "
          "node its own [node] state_dir",
          FileLock::HolderText(DaemonLockPath(config->node.state_dir)), config->node.state_dir);
    } else {
      spdlog::error("{}", lock.status().message());
    }
    return 1;
  }
  spdlog::info("replsyncd {} starting as {} '{}' (config {}, state {})", REPLSYNC_VERSION,
               RoleName(config->node.role), config->node.name, config_path, config->node.state_dir);
  SignalWatcher signals;  // before any thread starts, so they all inherit the blocked signals
  if (config->node.role == NodeRole::kPrimary) return RunPrimary(*config, signals);
  return RunSecondary(*config, signals);
}

}  // namespace replsync::cli
