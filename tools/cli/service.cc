#include "tools/cli/service.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "capture/binlog_decoder.h"
#include "capture/mariadb_binlog_source.h"
#include "capture/mysql_connection.h"
#include "capture/transaction_assembler.h"
#include "sync/config.h"
#include "sync/logging.h"

namespace replsync::cli {

namespace {

// Counts what the capture stage sees and logs progress at most every 10 seconds.
class CaptureLog : public capture::TransactionSink {
 public:
  Status OnBegin(const capture::TransactionInfo&) override { return Status::Ok(); }
  Status OnRows(const capture::TransactionInfo&, const capture::Event&,
                const capture::RowsEvent&) override {
    ++rows_events_;
    return Status::Ok();
  }
  Status OnDdl(const capture::TransactionInfo& txn, const capture::Event& event,
               const capture::DdlStatement& ddl) override {
    spdlog::info("DDL at {} (db '{}'): {}", event.position.ToString(), ddl.db,
                 ddl.sql.substr(0, 200));
    return Status::Ok();
  }
  Status OnCommit(const capture::TransactionInfo& txn) override {
    ++transactions_;
    spdlog::debug("transaction {} committed, {} -> {}", txn.gtid.ToString(),
                  txn.begin.ToString(), txn.end.ToString());
    MaybeReport(txn.end);
    return Status::Ok();
  }
  Status OnRollback(const capture::TransactionInfo& txn) override { return OnCommit(txn); }

  void MaybeReport(const BinlogPosition& pos) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_report_ < std::chrono::seconds(10)) return;
    last_report_ = now;
    spdlog::info("capture at {}: {} transactions, {} row events so far", pos.ToString(),
                 transactions_, rows_events_);
  }

 private:
  uint64_t transactions_ = 0;
  uint64_t rows_events_ = 0;
  std::chrono::steady_clock::time_point last_report_ = std::chrono::steady_clock::now();
};

// Waits for SIGINT/SIGTERM on its own thread (the signals are blocked everywhere else) and
// calls `on_signal` once.
class SignalWatcher {
 public:
  template <typename F>
  explicit SignalWatcher(F on_signal) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([set, on_signal, this] {
      int sig = 0;
      sigwait(&set, &sig);
      if (done_) return;
      spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
      on_signal();
    });
  }
  ~SignalWatcher() {
    done_ = true;
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

int RunPrimary(const NodeConfig& config) {
  capture::ConnectOptions connect{config.mysql.host, config.mysql.port, config.mysql.user,
                                  config.mysql.password,
                                  std::chrono::seconds(config.mysql.connect_timeout_s)};
  auto conn = capture::MysqlConnection::Open(connect);
  if (!conn.ok()) {
    spdlog::error("{}", conn.status().message());
    return 1;
  }
  if (Status st = capture::CheckBinlogSettings(**conn); !st.ok()) {
    spdlog::error("{}", st.message());
    return 2;
  }
  capture::MariadbSourceOptions options;
  options.host = config.mysql.host;
  options.port = config.mysql.port;
  options.user = config.mysql.user;
  options.password = config.mysql.password;
  options.replica_server_id = config.mysql.replica_server_id;
  options.heartbeat = std::chrono::milliseconds(config.mysql.heartbeat_ms);
  options.connect_timeout = std::chrono::seconds(config.mysql.connect_timeout_s);
  options.follow = true;
  auto source = capture::MariadbBinlogSource::Open(options);
  if (!source.ok()) {
    spdlog::error("{}", source.status().message());
    return 1;
  }
  capture::MariadbBinlogSource* raw_source = source->get();
  spdlog::info("primary: following the binlog of {} from {}", raw_source->Describe(),
               raw_source->position().ToString());
  SignalWatcher signals([raw_source] { raw_source->Stop(); });
  capture::BinlogReader reader(std::move(source).value());
  CaptureLog log;
  capture::TransactionAssembler assembler(&log);
  for (;;) {
    auto event = reader.Next();
    if (!event.ok()) {
      if (event.status().code() == Status::Code::kAborted) break;
      spdlog::error("capture stopped: {}", event.status().message());
      return 1;
    }
    if (*event == nullptr) break;
    if (Status st = assembler.Feed(**event); !st.ok()) {
      spdlog::error("capture stopped: {}", st.message());
      return 1;
    }
  }
  spdlog::info("primary: stopped cleanly at {}", assembler.committed_position().ToString());
  return 0;
}

}  // namespace

int RunService(const std::string& config_path) {
  auto config = NodeConfig::Load(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "replsyncd: %s\n", config.status().message().c_str());
    return 2;
  }
  if (Status st = SetUpLogging(config->log.level); !st.ok()) {
    std::fprintf(stderr, "replsyncd: %s\n", st.message().c_str());
    return 2;
  }
  spdlog::info("replsyncd {} starting as {} (config {})", REPLSYNC_VERSION,
               RoleName(config->node.role), config_path);
  if (config->node.role == NodeRole::kPrimary) return RunPrimary(*config);
  spdlog::error(
      "role \"secondary\" is not available in this version of replsyncd: the journal, the "
      "transport and the applier come with the replication pipeline");
  return 2;
}

}  // namespace replsync::cli
