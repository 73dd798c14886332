#include "capture/binlog/dump_writer.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "capture/binlog/charset.h"
#include "capture/binlog/row_decoder.h"
#include "capture/binlog/value.h"
#include "capture/binlog/value_format.h"

namespace replsync::capture {
namespace {

// Output is collected in one reused buffer and written in blocks of about this size.
constexpr size_t kFlushThreshold = 1 << 20;

void AppendPosition(std::string_view file, uint64_t offset, TextBuffer* out) {
  out->Append(file);
  out->Push(':');
  out->AppendInt(offset);
}

}  // namespace

// The TransactionSink behind DumpWriter. Row changes are formatted straight into `buffer_`,
// which is written to the output whenever it passes kFlushThreshold (and after every transaction
// when following a live server, so that output appears as it happens).
class DumpWriter::Sink : public TransactionSink {
 public:
  Sink(std::FILE* out, DumpMode mode, bool flush_each_transaction)
      : out_(out), mode_(mode), flush_each_transaction_(flush_each_transaction) {
    buffer_.Reserve(kFlushThreshold + (64 << 10));
  }

  Status OnBegin(const TransactionInfo& txn) override {
    gtid_.clear();
    if (!txn.gtid.empty()) gtid_ = txn.gtid.ToString();
    began_ = false;
    if (mode_ == DumpMode::kText) {
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
    if (mode_ == DumpMode::kJson) {
      BuildJsonPrefix(event, rows);
    } else if (mode_ == DumpMode::kText) {
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
      if (mode_ == DumpMode::kDecodeOnly) continue;
      size_t line_start = buffer_.size();
      Status st = mode_ == DumpMode::kJson ? WriteRowJson(rows) : WriteRowText(rows);
      if (!st.ok()) {
        buffer_.Truncate(line_start);
        return RowsError(st, event);
      }
      if (buffer_.size() >= kFlushThreshold) RS_RETURN_IF_ERROR(Flush());
    }
    return Status::Ok();
  }

  Status OnDdl(const TransactionInfo& txn, const Event& event,
               const DdlStatement& ddl) override {
    if (mode_ == DumpMode::kDecodeOnly) return Status::Ok();
    uint32_t client = 0;
    if (ddl.query != nullptr && ddl.query->status.charset_client) {
      client = *ddl.query->status.charset_client;
    }
    if (mode_ == DumpMode::kJson) {
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
    if (mode_ == DumpMode::kText) {
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
    if (mode_ == DumpMode::kText) {
      buffer_.Append("ROLLBACK  # next ");
      AppendPosition(txn.end.file, txn.end.offset, &buffer_);
      buffer_.Push('\n');
    }
    return EndTransaction();
  }

  // Notes an input that ended inside a transaction (text form only).
  void NoteUnfinished() {
    if (mode_ == DumpMode::kText) buffer_.Append("# end of input inside a transaction\n");
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
                              EventTypeName(event.header.type));
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
    const TableMap& table = *rows.table;
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
      const RowImage* before = rows.kind == RowsKind::kUpdate ? &before_ : nullptr;
      RS_RETURN_IF_ERROR(formatter_.AppendImageJson(table, after_, before, &buffer_));
    }
    buffer_.Append("}\n");
    return Status::Ok();
  }

  Status WriteRowText(const RowsEvent& rows) {
    const TableMap& table = *rows.table;
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

  void AppendTableName(const TableMap& table) {
    AppendSqlIdentifier(table.db, &buffer_);
    buffer_.Push('.');
    AppendSqlIdentifier(table.table, &buffer_);
  }

  // Statement text in the client character set, as UTF-8.
  std::string_view Utf8(uint32_t collation, std::string_view text) {
    if (collation == 0) return text;
    utf8_.clear();
    AppendAsUtf8(collation, text, &utf8_);
    return utf8_;
  }

  std::FILE* out_;
  DumpMode mode_;
  bool flush_each_transaction_;
  TextBuffer buffer_;
  TextBuffer prefix_;
  std::string gtid_;  // the current transaction's GTID text; empty when it has none
  std::string utf8_;
  bool began_ = false;  // text form: BEGIN written for the current transaction
  RowDecoder rows_decoder_;
  RowImage before_, after_;
  ValueFormatter formatter_;
  uint64_t row_events_ = 0;
  uint64_t rows_ = 0;
};


DumpWriter::DumpWriter(std::FILE* out, DumpMode mode, DumpWriterOptions options)
    : sink_(std::make_unique<Sink>(out, mode, options.flush_each_transaction)) {}

DumpWriter::~DumpWriter() = default;

TransactionSink* DumpWriter::sink() { return sink_.get(); }
void DumpWriter::NoteUnfinished() { sink_->NoteUnfinished(); }
Status DumpWriter::Flush() { return sink_->Flush(); }
uint64_t DumpWriter::row_events() const { return sink_->row_events(); }
uint64_t DumpWriter::rows() const { return sink_->rows(); }

}  // namespace replsync::capture
