#include "capture/binlog/transaction_assembler.h"

#include <fmt/format.h>

namespace replsync::capture {

namespace {

enum class StatementKind {
  kBegin,
  kCommit,
  kRollback,
  kSavepoint,
  kRollbackTo,
  kXaStart,
  kXaEnd,
  kXaPrepare,
  kXaCommit,
  kXaRollback,
  kOther,  // DDL (or a statement-based DML statement)
};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Skips white space and comments (/* ... */, "-- " and "#" to the end of the line).
std::string_view SkipSpaceAndComments(std::string_view s) {
  while (!s.empty()) {
    if (IsSpace(s[0])) {
      s.remove_prefix(1);
    } else if (s.size() >= 2 && s[0] == '/' && s[1] == '*') {
      size_t end = s.find("*/", 2);
      s = end == std::string_view::npos ? std::string_view() : s.substr(end + 2);
    } else if (s[0] == '#' || (s.size() >= 3 && s[0] == '-' && s[1] == '-' && IsSpace(s[2]))) {
      size_t end = s.find('\n');
      s = end == std::string_view::npos ? std::string_view() : s.substr(end + 1);
    } else {
      break;
    }
  }
  return s;
}

// Takes the next word (letters, digits, '_') after space and comments; empty when none.
std::string_view NextWord(std::string_view* s) {
  *s = SkipSpaceAndComments(*s);
  size_t n = 0;
  while (n < s->size() && IsWordChar((*s)[n])) ++n;
  std::string_view word = s->substr(0, n);
  s->remove_prefix(n);
  return word;
}

bool WordIs(std::string_view word, std::string_view upper) {
  if (word.size() != upper.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != upper[i]) return false;
  }
  return true;
}

// True when nothing but space, comments and ';' is left.
bool AtEnd(std::string_view s) {
  while (true) {
    s = SkipSpaceAndComments(s);
    if (s.empty()) return true;
    if (s[0] != ';') return false;
    s.remove_prefix(1);
  }
}

StatementKind Classify(std::string_view sql) {
  std::string_view rest = sql;
  std::string_view first = NextWord(&rest);
  if (WordIs(first, "BEGIN")) {
    // "BEGIN" / "BEGIN WORK"; anything else is a compound statement (BEGIN NOT ATOMIC ...).
    std::string_view after = rest;
    if (WordIs(NextWord(&after), "WORK")) rest = after;
    return AtEnd(rest) ? StatementKind::kBegin : StatementKind::kOther;
  }
  if (WordIs(first, "COMMIT")) return StatementKind::kCommit;
  if (WordIs(first, "ROLLBACK")) {
    std::string_view second = NextWord(&rest);
    if (WordIs(second, "WORK")) second = NextWord(&rest);
    return WordIs(second, "TO") ? StatementKind::kRollbackTo : StatementKind::kRollback;
  }
  if (WordIs(first, "SAVEPOINT")) return StatementKind::kSavepoint;
  if (WordIs(first, "XA")) {
    std::string_view second = NextWord(&rest);
    if (WordIs(second, "START") || WordIs(second, "BEGIN")) return StatementKind::kXaStart;
    if (WordIs(second, "END")) return StatementKind::kXaEnd;
    if (WordIs(second, "PREPARE")) return StatementKind::kXaPrepare;
    if (WordIs(second, "COMMIT")) return StatementKind::kXaCommit;
    if (WordIs(second, "ROLLBACK")) return StatementKind::kXaRollback;
  }
  return StatementKind::kOther;
}

}  // namespace

std::string TransactionAssembler::Where(const Event& event) {
  return fmt::format("{}:{}", event.position.file, event.position.offset);
}

Status TransactionAssembler::Begin(const Event& event, const Gtid& gtid) {
  txn_ = TransactionInfo{};
  txn_.gtid = gtid;
  if (has_prelude_) {
    txn_.begin = prelude_position_;
    txn_.timestamp = prelude_timestamp_;
  } else {
    txn_.begin = event.position;
    txn_.timestamp = event.header.timestamp;
  }
  has_prelude_ = false;
  in_txn_ = true;
  pending_gtid_ = false;
  standalone_ = false;
  mariadb_gtid_ = false;
  explicit_begin_ = false;
  implicit_rows_ = false;
  return sink_->OnBegin(txn_);
}

void TransactionAssembler::Close(const Event& event) {
  txn_.end.file = event.position.file;
  txn_.end.offset = event.next_offset;
  committed_ = txn_.end;
  in_txn_ = false;
  pending_gtid_ = false;
  standalone_ = false;
  mariadb_gtid_ = false;
  explicit_begin_ = false;
  implicit_rows_ = false;
  has_prelude_ = false;
}

Status TransactionAssembler::Commit(const Event& event) {
  Close(event);
  return sink_->OnCommit(txn_);
}

Status TransactionAssembler::Rollback(const Event& event) {
  Close(event);
  return sink_->OnRollback(txn_);
}

Status TransactionAssembler::OnQuery(const Event& event, const QueryEvent& query) {
  switch (Classify(query.query)) {
    case StatementKind::kBegin:
    case StatementKind::kXaStart:
      if (in_txn_) {
        if (!pending_gtid_) {
          return Status::Corruption(fmt::format("{}: '{}' inside the transaction begun at {}",
                                                Where(event), query.query, txn_.begin.ToString()));
        }
        pending_gtid_ = false;
        explicit_begin_ = true;
        return Status::Ok();
      }
      RS_RETURN_IF_ERROR(Begin(event, Gtid{}));
      explicit_begin_ = true;
      return Status::Ok();

    case StatementKind::kCommit:
      if (!in_txn_)
        return Status::Corruption(fmt::format("{}: COMMIT without a BEGIN", Where(event)));
      return Commit(event);

    case StatementKind::kRollback:
      if (!in_txn_) {
        return Status::Corruption(fmt::format("{}: ROLLBACK without a BEGIN", Where(event)));
      }
      return Rollback(event);

    case StatementKind::kSavepoint:
    case StatementKind::kRollbackTo:
    case StatementKind::kXaEnd:
      pending_gtid_ = false;
      return Status::Ok();  // inside the transaction; nothing to report

    case StatementKind::kXaPrepare:
      if (!in_txn_) {
        return Status::Corruption(fmt::format("{}: XA PREPARE without XA START", Where(event)));
      }
      txn_.xa_prepare = true;
      return Commit(event);

    case StatementKind::kXaCommit:
    case StatementKind::kXaRollback: {
      // The second phase of a prepared XA transaction is a group of its own (after a GTID or
      // alone); XA COMMIT ... ONE PHASE closes the transaction it is in.
      if (!in_txn_) RS_RETURN_IF_ERROR(Begin(event, Gtid{}));
      bool commit = Classify(query.query) == StatementKind::kXaCommit;
      return commit ? Commit(event) : Rollback(event);
    }

    case StatementKind::kOther: {
      bool single = false;
      if (!in_txn_) {
        RS_RETURN_IF_ERROR(Begin(event, Gtid{}));
        single = true;
      } else {
        // A GTID followed directly by a statement (no BEGIN) is a one-statement group, except
        // after a MariaDB GTID, whose FL_STANDALONE flag says whether a COMMIT/XID follows.
        single = standalone_ || (pending_gtid_ && !explicit_begin_ && !mariadb_gtid_);
      }
      pending_gtid_ = false;
      txn_.is_ddl = true;
      DdlStatement ddl;
      ddl.db = query.db;
      ddl.sql = query.query;
      ddl.query = &query;
      RS_RETURN_IF_ERROR(sink_->OnDdl(txn_, event, ddl));
      return single ? Commit(event) : Status::Ok();
    }
  }
  return Status::Ok();
}

Status TransactionAssembler::OnRowsEvent(const Event& event, const RowsEvent& rows) {
  if (!in_txn_) {
    if (gtid_mode_) {
      return Status::Corruption(fmt::format("{}: rows event for table id {} outside a transaction",
                                            Where(event), rows.table_id));
    }
    // Old binlogs without GTIDs: a non-transactional change outside BEGIN ... COMMIT is its
    // own transaction, which ends with its statement.
    RS_RETURN_IF_ERROR(Begin(event, Gtid{}));
    implicit_rows_ = true;
  }
  pending_gtid_ = false;
  RS_RETURN_IF_ERROR(sink_->OnRows(txn_, event, rows));
  if ((implicit_rows_ || standalone_) && rows.end_of_statement()) return Commit(event);
  return Status::Ok();
}

Status TransactionAssembler::Feed(const Event& event) {
  const EventBody& body = event.body;
  if (const auto* rows = std::get_if<RowsEvent>(&body)) return OnRowsEvent(event, *rows);
  if (const auto* query = std::get_if<QueryEvent>(&body)) return OnQuery(event, *query);
  if (const auto* xid = std::get_if<XidEvent>(&body)) {
    if (!in_txn_)
      return Status::Corruption(fmt::format("{}: XID without a transaction", Where(event)));
    txn_.xid = xid->xid;
    return Commit(event);
  }
  if (const auto* gtid = std::get_if<GtidEvent>(&body)) {
    if (in_txn_) {
      return Status::Corruption(fmt::format("{}: GTID {} inside the open transaction begun at {}",
                                            Where(event), gtid->gtid.ToString(),
                                            txn_.begin.ToString()));
    }
    gtid_mode_ = true;
    has_prelude_ = false;
    RS_RETURN_IF_ERROR(Begin(event, gtid->gtid));
    pending_gtid_ = true;
    standalone_ = gtid->standalone();
    mariadb_gtid_ = gtid->gtid.flavor == Gtid::Flavor::kMariadb;
    return Status::Ok();
  }
  if (std::holds_alternative<XaPrepareEvent>(body)) {
    if (!in_txn_) {
      return Status::Corruption(fmt::format("{}: XA PREPARE without a transaction", Where(event)));
    }
    txn_.xa_prepare = true;
    return Commit(event);
  }
  if (std::holds_alternative<TableMapEvent>(body) || std::holds_alternative<IntvarEvent>(body) ||
      std::holds_alternative<RandEvent>(body) || std::holds_alternative<UserVarEvent>(body) ||
      std::holds_alternative<RowsQueryEvent>(body)) {
    if (!in_txn_ && !has_prelude_) {
      has_prelude_ = true;
      prelude_position_ = event.position;
      prelude_timestamp_ = event.header.timestamp;
    }
    return Status::Ok();
  }
  return Status::Ok();  // FORMAT_DESCRIPTION, ROTATE, GTID sets, heartbeats, skipped events
}

}  // namespace replsync::capture
