// EntryBuilder: turns the binlog events a capture reads into journal entries, one
// pb::JournalEntry{DbTransaction} per source transaction that changes a replicated database
// (cut into parts when large), each handed on in binlog order with the checkpoint after it.
//
// What an entry holds (schemas/replsync.proto, DbTransaction):
// - ROWS statements: the raw TABLE_MAP and ROWS events of tables in replicated databases, bytes
//   as read. Each binlog statement's table maps precede its first included ROWS event. Events
//   from a MySQL TRANSACTION_PAYLOAD have no checksum of their own; when the binlog has CRC32
//   checksums they get one (event_size grows by 4), so that every event agrees with the
//   FORMAT_DESCRIPTION stored with it. When the ROWS event that ended a binlog statement
//   (STMT_END_F) belonged to a table that is not replicated, the last included ROWS event of the
//   statement gets the flag instead (and a fresh checksum), so the included events still form
//   whole statements. Across a transaction's parts, the concatenation of the ROWS statements'
//   events is exactly that filtered event sequence: a binlog statement cut by a part boundary
//   continues in the next part WITHOUT its table maps repeated (the applier keeps them).
// - DDL statements (sql, default db, session variables and timestamp of the QUERY event) whose
//   target databases are replicated (capture/binlog/ddl_target.h, Decide).
// - the raw FORMAT_DESCRIPTION event in force, in every part.
// - the writeset (capture/binlog/writeset.h) of the part's rows.
// A transaction that touches no replicated table makes no entry: only its checkpoint is handed
// on (BuiltItem::kSkipped). A ROTATE between transactions hands on the next file's start.
// Large transactions are cut into parts of at most about `part_bytes` of event bytes (part 0,
// 1, ...; `last_part` and the end position on the final one); memory stays bounded by the part
// size.
// Statement-format DML (binlog_format STATEMENT/MIXED) on a replicated database is an error
// (Unsupported): such a transaction has no row events to replicate.
// Thread-safety: not thread-safe (the capture thread's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "capture/binlog/binlog_decoder.h"
#include "capture/binlog/binlog_source.h"
#include "capture/binlog/ddl_target.h"
#include "capture/binlog/row_decoder.h"
#include "capture/binlog/transaction_assembler.h"
#include "capture/binlog/writeset.h"
#include "sync/position.h"
#include "sync/status.h"

namespace replsync::pb {
class JournalEntry;
class Statement;
}  // namespace replsync::pb

namespace replsync::capture {

// One unit for the journal, in binlog order.
struct BuiltItem {
  enum class Kind : uint8_t {
    kPart,         // a part of a transaction that is not its last: entry only
    kTransaction,  // the last (or only) part of a transaction: entry and checkpoint
    kSkipped,      // a transaction with nothing to replicate: checkpoint only
    kRotation,     // the binlog moved on to the next file between transactions: checkpoint only
  };
  Kind kind = Kind::kPart;
  std::string entry;          // serialized pb::JournalEntry (kPart, kTransaction)
  BinlogPosition checkpoint;  // where reading resumes after this item (all kinds but kPart)
  // The transaction's GTID ("" when none). kRotation: empty; the checkpoint's GTID stays the
  // last transaction's.
  std::string gtid;
  uint64_t rows = 0;         // rows in the entry
  uint64_t event_bytes = 0;  // event bytes in the entry
  // The transaction's first part (kPart, kTransaction): where the transaction begins in the
  // binlog. Empty for later parts and for the other kinds.
  BinlogPosition first_part_begin;

  bool has_entry() const { return kind == Kind::kPart || kind == Kind::kTransaction; }
  bool completes() const { return kind != Kind::kPart; }
};

class EntryBuilder {
 public:
  // Receives each item in binlog order; an error stops Feed, which returns it.
  using Emit = std::function<Status(BuiltItem item)>;
  // Sees every decoded event before it is handled (the caller's read position and lag).
  using Observe = std::function<void(const Event& event)>;

  // `databases`: the replicated ones ([mysql] databases; empty = all but the system schemas).
  EntryBuilder(const std::vector<std::string>& databases, size_t part_bytes, Emit emit,
               Observe observe);
  ~EntryBuilder();
  EntryBuilder(const EntryBuilder&) = delete;
  EntryBuilder& operator=(const EntryBuilder&) = delete;

  // Prepares for a new source that starts at a transaction boundary: a fresh decoder (the
  // source hands out its FORMAT_DESCRIPTION first), no statement, no transaction.
  void Reset();
  // Decodes `raw` and handles the events it completes (several for a TRANSACTION_PAYLOAD).
  // Errors: the decoder's (Corruption, Unsupported), the assembler's, Unsupported for
  // statement-format DML on a replicated database, and whatever Emit returned.
  Status Feed(const RawEvent& raw);
  // Drops the transaction being built (a source error cut it off; it is read again).
  void DropUnfinished();
  // A transaction is open: the parts handed on so far are not yet a whole transaction.
  bool in_transaction() const;

 private:
  class Sink;

  Status OnEvent(const Event& event, std::string_view raw);
  Status BeginTxn(const TransactionInfo& txn);
  Status AddRows(const RowsEvent& rows);
  Status AddDdl(const TransactionInfo& txn, const Event& event, const DdlStatement& ddl);
  Status EndTxn(const TransactionInfo& txn, bool rollback);
  // Hands on the part being built; `final` with the end position.
  Status FlushPart(bool final, const TransactionInfo* txn, bool rollback);
  void EndBinlogStatement();
  // Sets STMT_END_F in a ROWS event (and recomputes its checksum).
  Status SetStatementEnd(std::string* event) const;
  // The event bytes as they go into an entry (a checksum added to payload events).
  std::string EventBytes(std::string_view raw, bool in_payload) const;

  DatabaseFilter filter_;
  size_t part_bytes_limit_;
  Emit emit_;
  Observe observe_;

  std::unique_ptr<BinlogDecoder> decoder_;
  std::unique_ptr<Sink> sink_;
  std::unique_ptr<TransactionAssembler> assembler_;
  RowDecoder row_decoder_;
  RowImage before_image_, after_image_;  // scratch for the writeset
  WritesetBuilder writeset_;             // keys of the part being built
  Event event_;
  std::string format_description_;  // raw FORMAT_DESCRIPTION in force
  std::string_view current_raw_;    // raw bytes of the event being handled
  bool current_in_payload_ = false;
  // The transaction being built.
  std::unique_ptr<pb::JournalEntry> part_;
  pb::Statement* rows_statement_ = nullptr;  // the ROWS statement events go to (nullptr: new)
  size_t part_bytes_ = 0;
  uint32_t part_number_ = 0;
  uint64_t part_rows_ = 0;
  uint64_t part_event_bytes_ = 0;
  bool txn_is_ddl_ = false;
  // The binlog statement being read: table maps of replicated tables not yet emitted, whether
  // its first included ROWS event was emitted, and where the last one is in rows_statement_.
  std::vector<std::string> pending_maps_;
  bool statement_emitted_ = false;
  int last_rows_index_ = -1;
  uint64_t dml_warnings_ = 0;
};

}  // namespace replsync::capture
