#include "capture/entry_builder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <utility>
#include <variant>

#include "replsync.pb.h"
#include "sync/crc32.h"

namespace replsync::capture {

namespace {

constexpr uint8_t kStmtEndFlag = 0x01;

void StoreLe32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::string Shorten(std::string_view sql, size_t max = 200) {
  std::string out(sql.substr(0, max));
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (sql.size() > max) out += "...";
  return out;
}

void FillSession(const QueryEvent& query, uint32_t timestamp, pb::SessionVars* session) {
  const QueryStatusVars& v = query.status;
  if (v.sql_mode) session->set_sql_mode(*v.sql_mode);
  if (v.flags2) session->set_flags2(*v.flags2);
  if (v.charset_client) session->set_charset_client(*v.charset_client);
  if (v.collation_connection) session->set_collation_connection(*v.collation_connection);
  if (v.collation_server) session->set_collation_server(*v.collation_server);
  if (v.collation_database) session->set_collation_database(*v.collation_database);
  if (v.time_zone) session->set_time_zone(*v.time_zone);
  if (v.lc_time_names) session->set_lc_time_names(*v.lc_time_names);
  if (v.auto_increment_increment) {
    session->set_auto_increment_increment(*v.auto_increment_increment);
  }
  if (v.auto_increment_offset) session->set_auto_increment_offset(*v.auto_increment_offset);
  if (v.default_collation_for_utf8mb4) {
    session->set_default_collation_for_utf8mb4(*v.default_collation_for_utf8mb4);
  }
  if (v.explicit_defaults_for_timestamp) {
    session->set_explicit_defaults_for_timestamp(*v.explicit_defaults_for_timestamp);
  }
  session->set_timestamp(timestamp);
  if (v.microseconds) session->set_microseconds(*v.microseconds);
}

}  // namespace

class EntryBuilder::Sink : public TransactionSink {
 public:
  explicit Sink(EntryBuilder* builder) : builder_(builder) {}
  Status OnBegin(const TransactionInfo& txn) override { return builder_->BeginTxn(txn); }
  Status OnRows(const TransactionInfo&, const Event&, const RowsEvent& rows) override {
    return builder_->AddRows(rows);
  }
  Status OnDdl(const TransactionInfo& txn, const Event& event, const DdlStatement& ddl) override {
    return builder_->AddDdl(txn, event, ddl);
  }
  Status OnCommit(const TransactionInfo& txn) override { return builder_->EndTxn(txn, false); }
  Status OnRollback(const TransactionInfo& txn) override { return builder_->EndTxn(txn, true); }

 private:
  EntryBuilder* builder_;
};

EntryBuilder::EntryBuilder(const std::vector<std::string>& databases, size_t part_bytes, Emit emit,
                           Observe observe)
    : filter_(databases),
      part_bytes_limit_(part_bytes),
      emit_(std::move(emit)),
      observe_(std::move(observe)) {
  Reset();
}

EntryBuilder::~EntryBuilder() = default;

void EntryBuilder::Reset() {
  decoder_ = std::make_unique<BinlogDecoder>();
  sink_ = std::make_unique<Sink>(this);
  assembler_ = std::make_unique<TransactionAssembler>(sink_.get());
  DropUnfinished();
  format_description_.clear();
}

void EntryBuilder::DropUnfinished() {
  part_.reset();
  rows_statement_ = nullptr;
  pending_maps_.clear();
  EndBinlogStatement();
}

bool EntryBuilder::in_transaction() const { return assembler_->in_transaction(); }

Status EntryBuilder::Feed(const RawEvent& raw) {
  RS_RETURN_IF_ERROR(decoder_->Feed(raw));
  while (true) {
    RS_ASSIGN_OR_RETURN(bool got, decoder_->Next(&event_));
    if (!got) return Status::Ok();
    RS_RETURN_IF_ERROR(OnEvent(event_, decoder_->raw_event()));
  }
}

Status EntryBuilder::OnEvent(const Event& event, std::string_view raw) {
  observe_(event);
  if (std::holds_alternative<FormatDescriptionEvent>(event.body)) {
    format_description_.assign(raw);
  } else if (const auto* rotate = std::get_if<RotateEvent>(&event.body)) {
    // The end of a binlog file between transactions: checkpoint the start of the next one, so
    // that a restart never needs a file the server may purge once it is read.
    if ((event.header.flags & kFlagArtificial) == 0 && !event.in_payload &&
        !assembler_->in_transaction() && !rotate->next_file.empty()) {
      BuiltItem item;
      item.kind = BuiltItem::Kind::kRotation;
      item.checkpoint = BinlogPosition{rotate->next_file, rotate->position};
      RS_RETURN_IF_ERROR(emit_(std::move(item)));
    }
  } else if (const auto* map = std::get_if<TableMapEvent>(&event.body)) {
    // Table maps precede the rows of their binlog statement: rows already emitted mean a new
    // statement began (one without STMT_END_F before it).
    if (statement_emitted_) EndBinlogStatement();
    if (map->table != nullptr && filter_.Replicated(map->table->db)) {
      pending_maps_.push_back(EventBytes(raw, event.in_payload));
    }
  }
  current_raw_ = raw;
  current_in_payload_ = event.in_payload;
  return assembler_->Feed(event);
}

Status EntryBuilder::BeginTxn(const TransactionInfo& txn) {
  part_ = std::make_unique<pb::JournalEntry>();
  pb::DbTransaction* db = part_->mutable_db();
  db->set_gtid(txn.gtid.ToString());
  db->set_begin_file(txn.begin.file);
  db->set_begin_offset(txn.begin.offset);
  db->set_timestamp(txn.timestamp);
  rows_statement_ = nullptr;
  part_bytes_ = 0;
  part_number_ = 0;
  part_rows_ = 0;
  part_event_bytes_ = 0;
  txn_is_ddl_ = false;
  writeset_.Reset();
  return Status::Ok();
}

std::string EntryBuilder::EventBytes(std::string_view raw, bool in_payload) const {
  std::string bytes(raw);
  if (in_payload && decoder_->format().checksum == ChecksumAlg::kCrc32 &&
      bytes.size() >= kEventHeaderSize) {
    // Inner events of a TRANSACTION_PAYLOAD carry no checksum; give them one so that the event
    // agrees with the FORMAT_DESCRIPTION it is replayed under.
    StoreLe32(bytes.data() + 9, static_cast<uint32_t>(bytes.size() + kChecksumSize));
    uint32_t crc = Crc32(0, bytes.data(), bytes.size());
    char tail[4];
    StoreLe32(tail, crc);
    bytes.append(tail, 4);
  }
  return bytes;
}

void EntryBuilder::EndBinlogStatement() {
  pending_maps_.clear();
  statement_emitted_ = false;
  last_rows_index_ = -1;
}

Status EntryBuilder::AddRows(const RowsEvent& rows) {
  if (part_ == nullptr) return Status::Internal("rows outside a transaction");
  const bool ends = rows.end_of_statement();
  if (!filter_.Replicated(rows.table->db)) {
    if (ends) {
      if (statement_emitted_ && last_rows_index_ >= 0 && rows_statement_ != nullptr) {
        // The statement's last event is not replicated: end it at the last one that is.
        std::string* last = rows_statement_->mutable_events(last_rows_index_);
        RS_RETURN_IF_ERROR(SetStatementEnd(last));
      }
      EndBinlogStatement();
    }
    return Status::Ok();
  }
  uint64_t count = 0;
  row_decoder_.Reset(rows);
  const bool has_before = rows.kind != RowsKind::kWrite;
  const bool has_after = rows.kind != RowsKind::kDelete;
  while (true) {
    RS_ASSIGN_OR_RETURN(bool more, row_decoder_.Next(has_before ? &before_image_ : nullptr,
                                                     has_after ? &after_image_ : nullptr));
    if (!more) break;
    writeset_.AddRow(*rows.table, has_before ? &before_image_ : nullptr,
                     has_after ? &after_image_ : nullptr);
    ++count;
  }
  std::string bytes = EventBytes(current_raw_, current_in_payload_);
  size_t add = bytes.size();
  if (!statement_emitted_) {
    for (const std::string& map : pending_maps_) add += map.size();
  }
  if (part_bytes_ > 0 && part_bytes_ + add > part_bytes_limit_) {
    RS_RETURN_IF_ERROR(FlushPart(false, nullptr, false));
  }
  if (rows_statement_ == nullptr) {
    rows_statement_ = part_->mutable_db()->add_statements();
    rows_statement_->set_kind(pb::Statement::ROWS);
  }
  if (!statement_emitted_) {
    for (std::string& map : pending_maps_) rows_statement_->add_events(std::move(map));
    pending_maps_.clear();
    statement_emitted_ = true;
  }
  rows_statement_->add_events(std::move(bytes));
  last_rows_index_ = rows_statement_->events_size() - 1;
  part_bytes_ += add;
  part_event_bytes_ += add;
  part_rows_ += count;
  if (ends) EndBinlogStatement();
  return Status::Ok();
}

Status EntryBuilder::SetStatementEnd(std::string* event) const {
  if (event->size() < kEventHeaderSize) return Status::Internal("short rows event");
  auto type = static_cast<uint8_t>((*event)[4]);
  const std::vector<uint8_t>& lengths = decoder_->format().post_header_lengths;
  uint8_t post_header = type >= 1 && type <= lengths.size() ? lengths[type - 1] : 8;
  size_t flags_at = kEventHeaderSize + (post_header == 6 ? 4 : 6);
  if (event->size() < flags_at + 2) return Status::Internal("short rows event");
  (*event)[flags_at] = static_cast<char>(static_cast<uint8_t>((*event)[flags_at]) | kStmtEndFlag);
  if (decoder_->format().checksum == ChecksumAlg::kCrc32) {
    size_t n = event->size() - kChecksumSize;
    StoreLe32(event->data() + n, Crc32(0, event->data(), n));
  }
  return Status::Ok();
}

Status EntryBuilder::AddDdl(const TransactionInfo& txn, const Event& event,
                            const DdlStatement& ddl) {
  if (part_ == nullptr) return Status::Internal("DDL outside a transaction");
  uint64_t sql_mode = 0;
  if (ddl.query != nullptr && ddl.query->status.sql_mode) sql_mode = *ddl.query->status.sql_mode;
  StatementTargets targets = AnalyzeStatement(ddl.sql, ddl.db, SqlSyntax::FromSqlMode(sql_mode));
  if (targets.kind == StatementKind::kControl) return Status::Ok();
  Decision decision = Decide(targets, filter_);
  const std::string where = event.position.ToString();
  if (targets.kind == StatementKind::kDml) {
    if (decision == Decision::kSkip) {
      if (dml_warnings_++ % 1000 == 0) {
        spdlog::warn(
            "capture: {}: statement-format DML on databases that are not replicated ignored "
            "('{}'); the server does not log in ROW format for every session ({} such so far)",
            where, Shorten(ddl.sql), dml_warnings_);
      }
      return Status::Ok();
    }
    return Status::Unsupported(fmt::format(
        "{}: transaction {} changes rows with a statement logged as SQL text ('{}', default "
        "database '{}'): the server wrote it with binlog_format STATEMENT or MIXED, so it has no "
        "row events to replicate. Set binlog_format=ROW in the server's configuration and "
        "globally (SET GLOBAL binlog_format=ROW), make sure no client sets it per session, then "
        "re-bootstrap the secondary from a fresh copy of the primary: this transaction cannot be "
        "replicated",
        where, txn.gtid.empty() ? txn.begin.ToString() : txn.gtid.ToString(), Shorten(ddl.sql),
        ddl.db));
  }
  std::string dbs;
  for (const std::string& db : targets.databases) dbs += (dbs.empty() ? "" : ", ") + db;
  switch (decision) {
    case Decision::kSkip:
      spdlog::debug("capture: {}: DDL on {} not replicated: '{}'", where, dbs, Shorten(ddl.sql));
      return Status::Ok();
    case Decision::kSkipUncertain:
      spdlog::warn(
          "capture: {}: statement not replicated: it touches no replicated database that "
          "replsync can tell ({}; default database '{}'): '{}'",
          where, dbs.empty() ? "none found" : dbs, ddl.db, Shorten(ddl.sql));
      return Status::Ok();
    case Decision::kReplicatePartial:
      spdlog::warn(
          "capture: {}: statement replicated although it also touches databases that are not "
          "replicated, or ones replsync cannot tell ({}; replicated: {}): '{}'",
          where, dbs, filter_.Describe(), Shorten(ddl.sql));
      break;
    case Decision::kReplicate:
      break;
  }
  size_t add = ddl.sql.size() + ddl.db.size();
  if (part_bytes_ > 0 && part_bytes_ + add > part_bytes_limit_) {
    RS_RETURN_IF_ERROR(FlushPart(false, nullptr, false));
  }
  pb::Statement* statement = part_->mutable_db()->add_statements();
  statement->set_kind(pb::Statement::DDL);
  // The default database only when it replicates: the secondary may not have another one, and
  // a statement that needs it touches it (and was warned about above).
  if (filter_.Replicated(ddl.db)) statement->set_db(ddl.db);
  statement->set_sql(ddl.sql);
  if (ddl.query != nullptr) {
    FillSession(*ddl.query, event.header.timestamp, statement->mutable_session());
  } else {
    statement->mutable_session()->set_timestamp(event.header.timestamp);
  }
  rows_statement_ = nullptr;
  txn_is_ddl_ = true;
  part_bytes_ += add;
  return Status::Ok();
}

Status EntryBuilder::EndTxn(const TransactionInfo& txn, bool rollback) {
  EndBinlogStatement();
  if (part_ != nullptr && (part_number_ > 0 || part_->db().statements_size() > 0)) {
    RS_RETURN_IF_ERROR(FlushPart(true, &txn, rollback));
  } else {
    BuiltItem item;
    item.kind = BuiltItem::Kind::kSkipped;
    item.checkpoint = txn.end;
    item.gtid = txn.gtid.ToString();
    RS_RETURN_IF_ERROR(emit_(std::move(item)));
  }
  part_.reset();
  rows_statement_ = nullptr;
  return Status::Ok();
}

Status EntryBuilder::FlushPart(bool final, const TransactionInfo* txn, bool rollback) {
  pb::DbTransaction* db = part_->mutable_db();
  db->set_part(part_number_);
  db->set_last_part(final);
  db->set_format_description(format_description_);
  db->set_row_count(part_rows_);
  db->set_is_ddl(txn_is_ddl_);
  writeset_.Fill(db);
  writeset_.Reset();
  if (final) {
    db->set_end_file(txn->end.file);
    db->set_end_offset(txn->end.offset);
    db->set_rollback(rollback);
  }
  BuiltItem item;
  item.kind = final ? BuiltItem::Kind::kTransaction : BuiltItem::Kind::kPart;
  item.entry = part_->SerializeAsString();
  if (part_number_ == 0)
    item.first_part_begin = BinlogPosition{db->begin_file(), db->begin_offset()};
  item.rows = part_rows_;
  item.event_bytes = part_event_bytes_;
  if (final) {
    item.checkpoint = txn->end;
    item.gtid = txn->gtid.ToString();
  }
  ++part_number_;
  db->clear_statements();
  rows_statement_ = nullptr;
  last_rows_index_ = -1;
  part_bytes_ = 0;
  part_rows_ = 0;
  part_event_bytes_ = 0;
  return emit_(std::move(item));
}

}  // namespace replsync::capture
