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
#include "capture/binlog/charset.h"
#include "capture/binlog/file_binlog_source.h"
#include "capture/binlog/mariadb_binlog_source.h"
#include "capture/binlog/row_decoder.h"
#include "capture/binlog/transaction_assembler.h"
#include "capture/binlog/value.h"
#include "sync/config.h"
#include "capture/binlog/value_format.h"

namespace replsync::cli {

using capture::AppendJsonString;
using capture::AppendSqlIdentifier;
using capture::AppendUtcDateTime;
using capture::TextBuffer;
using capture::ValueFormatter;

namespace {

using capture::Event;
using capture::RowsEvent;
using capture::RowsKind;
using capture::TransactionInfo;

// Output is collected in one reused buffer and written in blocks of about this size.
constexpr size_t kFlushThreshold = 1 << 20;

enum class Mode { kText, kJson, kDecodeOnly };

void AppendPosition(std::string_view file, uint64_t offset, TextBuffer* out) {
  out->Append(file);
  out->Push(':');
  out->AppendInt(offset);
}

// The TransactionSink that writes the dump. Row changes are formatted straight into `buffer_`,
// which is written to the output whenever it passes kFlushThreshold (and after every transaction
// when following a live server, so that output appears as it happens).
class DumpSink : public capture::TransactionSink {
 public:
  DumpSink(std::FILE* out, Mode mode, bool flush_each_transaction)
      : out_(out), mode_(mode), flush_each_transaction_(flush_each_transaction) {
    buffer_.Reserve(kFlushThreshold + (64 << 10));
  }

  Status OnBegin(const TransactionInfo& txn) override {
    gtid_.clear();
    if (!txn.gtid.empty()) gtid_ = txn.gtid.ToString();
    began_ = false;
    if (mode_ == Mode::kText) {
      buffer_.Append("# ");
      AppendPosition(txn.begin.file, txn.begin.offset, &buffer_);
      buffer_.Push(' ');
      AppendUtcDateTime(txn.timestamp, 0, 0, &buffer_);
      buffer_.Append(" UTC");
      if (!gtid_.empty()) {
        buffer_.Append(" gtid ");
        buffer_.Append(gtid_);
      }
      buffer_.Push('\n');
    }
    return Status::Ok();
  }

  Status OnRows(const TransactionInfo& txn, const Event& event, const RowsEvent& rows) override {
    ++row_events_;
    rows_decoder_.Reset(rows);
    if (mode_ == Mode::kJson) {
      BuildJsonPrefix(event, rows);
    } else if (mode_ == Mode::kText) {
      if (!began_) {
        buffer_.Append("BEGIN\n");
        began_ = true;
      }
      buffer_.Append("# at ");
      AppendPosition(event.position.file, event.position.offset, &buffer_);
      buffer_.Push('\n');
    }
    while (true) {
      Result<bool> more = rows_decoder_.Next(&before_, &after_);
      if (!more.ok()) return RowsError(more.status(), event);
      if (!*more) break;
      ++rows_;
      if (mode_ == Mode::kDecodeOnly) continue;
      size_t line_start = buffer_.size();
      Status st = mode_ == Mode::kJson ? WriteRowJson(rows) : WriteRowText(rows);
      if (!st.ok()) {
        buffer_.Truncate(line_start);
        return RowsError(st, event);
      }
      if (buffer_.size() >= kFlushThreshold) RS_RETURN_IF_ERROR(Flush());
    }
    return Status::Ok();
  }

  Status OnDdl(const TransactionInfo& txn, const Event& event,
               const capture::DdlStatement& ddl) override {
    if (mode_ == Mode::kDecodeOnly) return Status::Ok();
    uint32_t client = 0;
    if (ddl.query != nullptr && ddl.query->status.charset_client) {
      client = *ddl.query->status.charset_client;
    }
    if (mode_ == Mode::kJson) {
      buffer_.Append("{\"pos\":\"");
      AppendPosition(event.position.file, event.position.offset, &buffer_);
      buffer_.Append("\",\"gtid\":");
      AppendGtid();
      buffer_.Append(",\"ts\":");
      buffer_.AppendInt(event.header.timestamp);
      buffer_.Append(",\"db\":");
      AppendJsonString(ddl.db, &buffer_);
      buffer_.Append(",\"type\":\"ddl\",\"sql\":");
      AppendJsonString(Utf8(client, ddl.sql), &buffer_);
      buffer_.Append("}\n");
    } else {
      if (!ddl.db.empty()) {
        buffer_.Append("USE ");
        AppendSqlIdentifier(ddl.db, &buffer_);
        buffer_.Append("; ");
      }
      buffer_.Append(Utf8(client, ddl.sql));
      buffer_.Push('\n');
    }
    if (buffer_.size() >= kFlushThreshold) return Flush();
    return Status::Ok();
  }

  Status OnCommit(const TransactionInfo& txn) override {
    if (mode_ == Mode::kText) {
      if (txn.xa_prepare) {
        buffer_.Append("XA PREPARE  # ");
      } else if (began_) {
        buffer_.Append("COMMIT  # ");
      } else {
        buffer_.Append("# ");
      }
      if (txn.xid != 0) {
        buffer_.Append("xid ");
        buffer_.AppendInt(txn.xid);
        buffer_.Append(", ");
      }
      buffer_.Append("next ");
      AppendPosition(txn.end.file, txn.end.offset, &buffer_);
      buffer_.Push('\n');
    }
    return EndTransaction();
  }

  Status OnRollback(const TransactionInfo& txn) override {
    if (mode_ == Mode::kText) {
      buffer_.Append("ROLLBACK  # next ");
      AppendPosition(txn.end.file, txn.end.offset, &buffer_);
      buffer_.Push('\n');
    }
    return EndTransaction();
  }

  // Notes an input that ended inside a transaction (text form only).
  void NoteUnfinished() {
    if (mode_ == Mode::kText) buffer_.Append("# end of input inside a transaction\n");
  }

  // Writes what the buffer holds. IoError when the output refuses it.
  Status Flush() {
    if (buffer_.empty()) return Status::Ok();
    size_t written = std::fwrite(buffer_.data(), 1, buffer_.size(), out_);
    bool failed = written != buffer_.size();
    buffer_.clear();
    if (failed || std::fflush(out_) != 0) {
      return Status::IoError(std::string("write dump output: ") + std::strerror(errno));
    }
    return Status::Ok();
  }

  uint64_t row_events() const { return row_events_; }
  uint64_t rows() const { return rows_; }

 private:
  static Status RowsError(const Status& status, const Event& event) {
    return status.WithContext(event.position.ToString() + " " +
                              capture::EventTypeName(event.header.type));
  }

  Status EndTransaction() {
    began_ = false;
    if (flush_each_transaction_ || buffer_.size() >= kFlushThreshold) return Flush();
    return Status::Ok();
  }

  void AppendGtid() {
    if (gtid_.empty()) {
      buffer_.Append("null");
    } else {
      buffer_.Push('"');
      buffer_.Append(gtid_);
      buffer_.Push('"');
    }
  }

  // The part of each JSON line every row of one ROWS event shares, up to "before":.
  void BuildJsonPrefix(const Event& event, const RowsEvent& rows) {
    prefix_.clear();
    prefix_.Append("{\"pos\":\"");
    AppendPosition(event.position.file, event.position.offset, &prefix_);
    prefix_.Append("\",\"gtid\":");
    if (gtid_.empty()) {
      prefix_.Append("null");
    } else {
      prefix_.Push('"');
      prefix_.Append(gtid_);
      prefix_.Push('"');
    }
    prefix_.Append(",\"ts\":");
    prefix_.AppendInt(event.header.timestamp);
    prefix_.Append(",\"db\":");
    AppendJsonString(rows.table->db, &prefix_);
    prefix_.Append(",\"table\":");
    AppendJsonString(rows.table->table, &prefix_);
    switch (rows.kind) {
      case RowsKind::kWrite:
        prefix_.Append(",\"type\":\"insert\",\"before\":");
        break;
      case RowsKind::kUpdate:
        prefix_.Append(",\"type\":\"update\",\"before\":");
        break;
      case RowsKind::kDelete:
        prefix_.Append(",\"type\":\"delete\",\"before\":");
        break;
    }
  }

  Status WriteRowJson(const RowsEvent& rows) {
    const capture::TableMap& table = *rows.table;
    buffer_.Append(prefix_);
    if (rows.kind == RowsKind::kWrite) {
      buffer_.Append("null");
    } else {
      RS_RETURN_IF_ERROR(formatter_.AppendImageJson(table, before_, nullptr, &buffer_));
    }
    buffer_.Append(",\"after\":");
    if (rows.kind == RowsKind::kDelete) {
      buffer_.Append("null");
    } else {
      const capture::RowImage* before = rows.kind == RowsKind::kUpdate ? &before_ : nullptr;
      RS_RETURN_IF_ERROR(formatter_.AppendImageJson(table, after_, before, &buffer_));
    }
    buffer_.Append("}\n");
    return Status::Ok();
  }

  Status WriteRowText(const RowsEvent& rows) {
    const capture::TableMap& table = *rows.table;
    switch (rows.kind) {
      case RowsKind::kWrite:
        buffer_.Append("INSERT INTO ");
        AppendTableName(table);
        buffer_.Append(" SET ");
        RS_RETURN_IF_ERROR(formatter_.AppendImageSql(table, after_, nullptr, false, &buffer_));
        break;
      case RowsKind::kUpdate:
        buffer_.Append("UPDATE ");
        AppendTableName(table);
        buffer_.Append(" SET ");
        RS_RETURN_IF_ERROR(formatter_.AppendImageSql(table, after_, &before_, false, &buffer_));
        buffer_.Append(" WHERE ");
        RS_RETURN_IF_ERROR(formatter_.AppendImageSql(table, before_, nullptr, true, &buffer_));
        break;
      case RowsKind::kDelete:
        buffer_.Append("DELETE FROM ");
        AppendTableName(table);
        buffer_.Append(" WHERE ");
        RS_RETURN_IF_ERROR(formatter_.AppendImageSql(table, before_, nullptr, true, &buffer_));
        break;
    }
    buffer_.Push('\n');
    return Status::Ok();
  }

  void AppendTableName(const capture::TableMap& table) {
    AppendSqlIdentifier(table.db, &buffer_);
    buffer_.Push('.');
    AppendSqlIdentifier(table.table, &buffer_);
  }

  // Statement text in the client character set, as UTF-8.
  std::string_view Utf8(uint32_t collation, std::string_view text) {
    if (collation == 0) return text;
    utf8_.clear();
    capture::AppendAsUtf8(collation, text, &utf8_);
    return utf8_;
  }

  std::FILE* out_;
  Mode mode_;
  bool flush_each_transaction_;
  TextBuffer buffer_;
  TextBuffer prefix_;
  std::string gtid_;  // the current transaction's GTID text; empty when it has none
  std::string utf8_;
  bool began_ = false;  // text form: BEGIN written for the current transaction
  capture::RowDecoder rows_decoder_;
  capture::RowImage before_, after_;
  ValueFormatter formatter_;
  uint64_t row_events_ = 0;
  uint64_t rows_ = 0;
};

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
  capture::MariadbSourceOptions source;
  source.host = config.mysql.host;
  source.port = config.mysql.port;
  source.socket = config.mysql.socket;
  source.user = config.mysql.user;
  source.password = config.mysql.password;
  // Not the daemon's own id: the server would drop the running capture's connection in favour
  // of the dump's (a replica id identifies one connection).
  source.replica_server_id = config.mysql.replica_server_id + 1;
  source.heartbeat = std::chrono::milliseconds(config.mysql.heartbeat_ms);
  source.connect_timeout = std::chrono::seconds(config.mysql.connect_timeout_s);
  source.follow = options.follow;
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

  Mode mode = options.decode_only ? Mode::kDecodeOnly : options.json ? Mode::kJson : Mode::kText;
  DumpSink sink(out, mode, server != nullptr && options.follow);
  capture::TransactionAssembler assembler(&sink);
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
  if (mode == Mode::kDecodeOnly) {
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
