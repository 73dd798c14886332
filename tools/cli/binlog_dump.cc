#include "tools/cli/binlog_dump.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "capture/binlog/binlog_decoder.h"
#include "capture/binlog/dump_writer.h"
#include "capture/binlog/file_binlog_source.h"
#include "capture/binlog/mariadb_binlog_source.h"
#include "capture/binlog/source_factory.h"
#include "capture/binlog/transaction_assembler.h"
#include "sync/config.h"

namespace replsync::cli {

namespace {

using capture::Event;
using capture::RowsEvent;
using capture::RowsKind;
using capture::TransactionInfo;

// While alive, takes SIGINT and SIGTERM away from their default action: the calling thread (and
// threads it starts later) block them and a watcher thread waits for them; on one it sets
// signalled() and stops the source, so a blocked read returns and the dump ends cleanly.
class SignalWatcher {
 public:
  explicit SignalWatcher(capture::MariadbBinlogSource* source) {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, &previous_);
    thread_ = std::thread([this, source] {
      const timespec tick{0, 100 * 1000 * 1000};
      while (!done_.load()) {
        int sig = sigtimedwait(&signals_, nullptr, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
          signalled_.store(true);
          source->Stop();
          return;
        }
      }
    });
  }
  ~SignalWatcher() {
    done_.store(true);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  bool signalled() const { return signalled_.load(); }

 private:
  sigset_t signals_;
  sigset_t previous_;
  std::atomic<bool> done_{false};
  std::atomic<bool> signalled_{false};
  std::thread thread_;
};

Result<std::unique_ptr<capture::MariadbBinlogSource>> OpenServer(const DumpOptions& options) {
  RS_ASSIGN_OR_RETURN(NodeConfig config, NodeConfig::Load(options.config));
  capture::MariadbSourceOptions source = capture::SourceOptionsOf(config.mysql, {}, options.follow);
  // Not the daemon's own id: the server would drop the running capture's connection in favour
  // of the dump's (a replica id identifies one connection).
  source.replica_server_id = config.mysql.replica_server_id + 1;
  if (!options.from.empty()) {
    RS_ASSIGN_OR_RETURN(source.start, BinlogPosition::Parse(options.from));
  }
  if (!options.gtid.empty()) {
    RS_ASSIGN_OR_RETURN(Gtid gtid, Gtid::Parse(options.gtid));
    if (gtid.flavor != Gtid::Flavor::kMariadb) {
      return Status::InvalidArgument("--gtid " + options.gtid +
                                     ": only MariaDB GTIDs (domain-server-sequence) can start a "
                                     "dump");
    }
    source.start_gtid = options.gtid;
  }
  return capture::MariadbBinlogSource::Open(std::move(source));
}

}  // namespace

Status RunBinlogDump(const DumpOptions& options, std::FILE* out) {
  if (options.files.empty() == options.config.empty()) {
    return Status::InvalidArgument("binlog dump: give either --file PATH... or --config FILE");
  }
  if (!options.from.empty() && !options.gtid.empty()) {
    return Status::InvalidArgument("binlog dump: --from and --gtid exclude each other");
  }
  std::unique_ptr<capture::BinlogSource> source;
  capture::MariadbBinlogSource* server = nullptr;
  if (!options.files.empty()) {
    RS_ASSIGN_OR_RETURN(source, capture::FileBinlogSource::Open(options.files));
  } else {
    RS_ASSIGN_OR_RETURN(std::unique_ptr<capture::MariadbBinlogSource> live, OpenServer(options));
    server = live.get();
    source = std::move(live);
  }

  using capture::DumpMode;
  DumpMode mode = options.decode_only ? DumpMode::kDecodeOnly
                  : options.json      ? DumpMode::kJson
                                      : DumpMode::kText;
  capture::DumpWriter sink(out, mode,
                           {.flush_each_transaction = server != nullptr && options.follow});
  capture::TransactionAssembler assembler(sink.sink());
  capture::BinlogReader reader(std::move(source));
  std::unique_ptr<SignalWatcher> watcher;
  if (server != nullptr) watcher = std::make_unique<SignalWatcher>(server);

  auto start = std::chrono::steady_clock::now();
  uint64_t events = 0;
  Status status;
  while (true) {
    if (watcher && watcher->signalled()) break;
    Result<const Event*> next = reader.Next();
    if (!next.ok()) {
      if (watcher && watcher->signalled() && next.status().code() == Status::Code::kAborted) {
        break;
      }
      status = next.status();
      break;
    }
    const Event* event = *next;
    if (event == nullptr) break;
    ++events;
    // Errors name the position (the assembler's own, and the sink's through RowsError).
    status = assembler.Feed(*event);
    if (!status.ok()) break;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  watcher.reset();

  if (status.ok() && assembler.in_transaction()) sink.NoteUnfinished();
  Status flushed = sink.Flush();
  if (!status.ok()) return status;
  RS_RETURN_IF_ERROR(flushed);
  if (mode == DumpMode::kDecodeOnly) {
    double rate = seconds > 0 ? static_cast<double>(sink.rows()) / seconds : 0.0;
    std::fprintf(out,
                 "events=%" PRIu64 " row_events=%" PRIu64 " rows=%" PRIu64
                 " seconds=%.3f rows_per_sec=%.0f\n",
                 events, sink.row_events(), sink.rows(), seconds, rate);
    if (std::fflush(out) != 0) {
      return Status::IoError(std::string("write dump output: ") + std::strerror(errno));
    }
  }
  return Status::Ok();
}

}  // namespace replsync::cli
