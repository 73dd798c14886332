#include "capture/binlog/binlog_tail.h"

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

}  // namespace

Result<BinlogTail> ReadBinlogTail(std::unique_ptr<BinlogSource> source,
                                  const DatabaseFilter& filter) {
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
  return tail;
}

}  // namespace replsync::capture
