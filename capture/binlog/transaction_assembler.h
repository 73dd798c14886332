// TransactionAssembler: groups decoded events into source transactions.
//
// A transaction begins at a GTID event (MySQL, MariaDB) or a BEGIN query, and ends at XID, a
// COMMIT query, XA PREPARE / XA COMMIT / XA ROLLBACK, or right after the one statement of a
// standalone (DDL) group. DDL is recognised as such: a QUERY that is not BEGIN/COMMIT/ROLLBACK,
// SAVEPOINT or an XA control statement. Row events are passed through as they come, so a
// transaction of any size streams with bounded memory.
// Thread-safety: not thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "capture/binlog/binlog_event.h"

namespace replsync::capture {

struct TransactionInfo {
  Gtid gtid;                 // empty when the binlog has no GTIDs (or ANONYMOUS_GTID)
  BinlogPosition begin;      // position of the transaction's first event (GTID or BEGIN)
  BinlogPosition end;        // position just after its last event; set for OnCommit
  uint32_t timestamp = 0;    // event timestamp of the first event (seconds since the epoch)
  uint64_t xid = 0;          // from XID, when there is one
  bool is_ddl = false;       // the transaction holds a DDL statement
  bool xa_prepare = false;   // ends with XA PREPARE (the second phase comes later)
};

struct DdlStatement {
  std::string db;    // the session's default database when the statement ran
  std::string sql;
  const QueryEvent* query = nullptr;  // the event, for its status variables
};

// What the assembler reports, in binlog order. A non-OK Status from a handler stops Feed and
// is returned by it.
class TransactionSink {
 public:
  virtual ~TransactionSink() = default;
  virtual Status OnBegin(const TransactionInfo& txn) = 0;
  virtual Status OnRows(const TransactionInfo& txn, const Event& event, const RowsEvent& rows) = 0;
  virtual Status OnDdl(const TransactionInfo& txn, const Event& event, const DdlStatement& ddl) = 0;
  // The transaction committed; txn.end is the position to resume after it.
  virtual Status OnCommit(const TransactionInfo& txn) = 0;
  // A ROLLBACK query closed the group (binlogged when non-transactional tables were changed);
  // rows already reported are kept by the server, so sinks usually treat this as a commit.
  virtual Status OnRollback(const TransactionInfo& txn) = 0;
};

class TransactionAssembler {
 public:
  explicit TransactionAssembler(TransactionSink* sink) : sink_(sink) {}

  // Takes the next event in binlog order. Errors: Corruption when the events contradict the
  // transaction structure (rows outside a transaction with GTIDs on, a COMMIT without a
  // BEGIN), or what the sink returned.
  Status Feed(const Event& event);

  bool in_transaction() const { return in_txn_; }
  // Position after the last committed transaction: where a restart must resume.
  const BinlogPosition& committed_position() const { return committed_; }

 private:
  // Opens a transaction at `event` (or at the prelude events before it) and reports OnBegin.
  Status Begin(const Event& event, const Gtid& gtid);
  // Closes the open transaction after `event` and reports OnCommit / OnRollback.
  Status Commit(const Event& event);
  Status Rollback(const Event& event);
  Status OnQuery(const Event& event, const QueryEvent& query);
  Status OnRowsEvent(const Event& event, const RowsEvent& rows);
  void Close(const Event& event);
  // "file:offset" of `event`, for error messages.
  static std::string Where(const Event& event);

  TransactionSink* sink_;
  TransactionInfo txn_;
  bool in_txn_ = false;
  bool pending_gtid_ = false;    // GTID seen, BEGIN / first statement not yet
  bool standalone_ = false;      // MariaDB FL_STANDALONE: ends after one statement
  // Opened by a MariaDB GTID: without FL_STANDALONE it ends at XID/COMMIT even when no BEGIN
  // follows (MariaDB writes none), e.g. CREATE TABLE ... SELECT: QUERY, rows, XID.
  bool mariadb_gtid_ = false;
  bool explicit_begin_ = false;  // BEGIN / XA START seen: ends at COMMIT, XID, ROLLBACK, XA ...
  bool implicit_rows_ = false;   // opened by a ROWS event (no GTIDs): ends at STMT_END_F
  bool gtid_mode_ = false;       // the stream has GTID events: rows must be inside transactions
  // Context events (TABLE_MAP, INTVAR, RAND, USER_VAR, ROWS_QUERY) seen outside a transaction:
  // a transaction that opens without GTID or BEGIN starts at the first of them.
  bool has_prelude_ = false;
  BinlogPosition prelude_position_;
  uint32_t prelude_timestamp_ = 0;
  BinlogPosition committed_;
};

}  // namespace replsync::capture
