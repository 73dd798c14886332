#include "capture/binlog/binlog_tail.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "capture/binlog/binlog_decoder.h"
#include "capture/binlog/ddl_target.h"
#include "capture/binlog/row_decoder.h"
#include "capture/binlog/transaction_assembler.h"
#include "sync/mysql/statement_targets.h"

namespace replsync::capture {
namespace {

class TailSink : public TransactionSink {
 public:
  TailSink(const DatabaseFilter& filter, BinlogTail* tail) : filter_(filter), tail_(tail) {}

  Status OnBegin(const TransactionInfo& txn) override {
    current_ = TailTransaction{};
    current_.gtid = txn.gtid.ToString();
    current_.begin = txn.begin;
    return Status::Ok();
  }
  Status OnRows(const TransactionInfo&, const Event&, const RowsEvent& rows) override {
    if (!filter_.Replicated(rows.table->db)) return Status::Ok();
    uint64_t count = 0;
    decoder_.Reset(rows);
    const bool before = rows.kind != RowsKind::kWrite;
    const bool after = rows.kind != RowsKind::kDelete;
    while (true) {
      RS_ASSIGN_OR_RETURN(bool more,
                          decoder_.Next(before ? &before_ : nullptr, after ? &after_ : nullptr));
      if (!more) break;
      ++count;
    }
    current_.rows[rows.table->db + "." + rows.table->table] += count;
    return Status::Ok();
  }
  Status OnDdl(const TransactionInfo&, const Event&, const DdlStatement& ddl) override {
    const Decision decision = Decide(AnalyzeStatement(ddl.sql, ddl.db), filter_);
    if (decision == Decision::kReplicate || decision == Decision::kReplicatePartial) {
      current_.ddl.push_back(ddl.sql);
    }
    return Status::Ok();
  }
  Status OnCommit(const TransactionInfo& txn) override { return Close(txn); }
  Status OnRollback(const TransactionInfo& txn) override { return Close(txn); }

 private:
  Status Close(const TransactionInfo& txn) {
    current_.end = txn.end;
    current_.timestamp = txn.timestamp;
    if (current_.rows.empty() && current_.ddl.empty()) {
      ++tail_->skipped;
    } else {
      tail_->transactions.push_back(std::move(current_));
    }
    current_ = TailTransaction{};
    return Status::Ok();
  }

  const DatabaseFilter& filter_;
  BinlogTail* tail_;
  TailTransaction current_;
  RowDecoder decoder_;
  RowImage before_, after_;
};

// Hands out `source`'s events and writes each real one to a file (ReadBinlogTail's copy).
class CopyingSource : public BinlogSource {
 public:
  CopyingSource(std::unique_ptr<BinlogSource> source, std::string path)
      : source_(std::move(source)), path_(std::move(path)) {}
  ~CopyingSource() override {
    if (file_ != nullptr) std::fclose(file_);
  }

  Status Open() {
    file_ = std::fopen(path_.c_str(), "wbe");
    if (file_ == nullptr) return Error("open");
    return Write(
        "\xfe"
        "bin");
  }
  Result<bool> Next(RawEvent* event) override {
    RS_ASSIGN_OR_RETURN(bool more, source_->Next(event));
    if (!more || event->data.size() < kHeaderSize) return more;
    const auto type = static_cast<uint8_t>(event->data[4]);
    const uint16_t flags = static_cast<uint8_t>(event->data[17]) |
                           static_cast<uint16_t>(static_cast<uint8_t>(event->data[18]) << 8);
    if (type == kHeartbeat || (type == kRotate && (flags & kArtificial) != 0)) return more;
    RS_RETURN_IF_ERROR(Write(event->data));
    return more;
  }
  std::string Describe() const override { return source_->Describe(); }
  Status Finish() {
    if (std::fflush(file_) != 0) return Error("write");
    if (::fsync(fileno(file_)) != 0) return Error("fsync");
    std::FILE* file = std::exchange(file_, nullptr);
    if (std::fclose(file) != 0) return Error("close");
    return Status::Ok();
  }

 private:
  static constexpr size_t kHeaderSize = 19;
  static constexpr uint8_t kRotate = 4, kHeartbeat = 27;
  static constexpr uint16_t kArtificial = 0x20;  // LOG_EVENT_ARTIFICIAL_F
  Status Error(const char* step) const {
    return Status::IoError("copy of the binlog tail " + path_ + ": " + step + ": " +
                           std::strerror(errno));
  }
  Status Write(std::string_view bytes) {
    if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) return Error("write");
    return Status::Ok();
  }
  std::unique_ptr<BinlogSource> source_;
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace

Result<BinlogTail> ReadBinlogTail(std::unique_ptr<BinlogSource> source,
                                  const DatabaseFilter& filter, const std::string& copy_path) {
  CopyingSource* copy = nullptr;
  if (!copy_path.empty()) {
    auto copying = std::make_unique<CopyingSource>(std::move(source), copy_path);
    RS_RETURN_IF_ERROR(copying->Open());
    copy = copying.get();
    source = std::move(copying);
  }
  BinlogTail tail;
  TailSink sink(filter, &tail);
  TransactionAssembler assembler(&sink);
  BinlogReader reader(std::move(source));
  while (true) {
    RS_ASSIGN_OR_RETURN(const Event* event, reader.Next());
    if (event == nullptr) break;
    RS_RETURN_IF_ERROR(assembler.Feed(*event));
  }
  tail.end = assembler.committed_position();
  if (copy != nullptr) RS_RETURN_IF_ERROR(copy->Finish());
  return tail;
}

}  // namespace replsync::capture
