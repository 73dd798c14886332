#include "apply/target_filter.h"

#include <fmt/format.h>

#include "apply/binlog_statement.h"
#include "sync/mysql/statement_targets.h"
#include "sync/path_text.h"

namespace replsync::apply {
namespace {

// The binlog event header (MariaDB KB "2.0 Binlog Event Header"): timestamp 4, type 1,
// server_id 4, event_size 4, log_pos 4, flags 2.
constexpr size_t kEventHeaderSize = 19;
constexpr uint8_t kFormatDescriptionEvent = 15;
// FORMAT_DESCRIPTION body: binlog_version 2, server_version 50, create_timestamp 4,
// header_length 1, then one post-header length per event type (from type 1).
constexpr size_t kFdePostHeaderLengths = kEventHeaderSize + 2 + 50 + 4 + 1;

// The first `max` bytes of `sql` for a message, control bytes escaped ("\n").
std::string Excerpt(std::string_view sql, size_t max = 200) {
  std::string out = EscapePath(sql.substr(0, max));
  if (sql.size() > max) out += "...";
  return out;
}

// What to do when a primary sends what this secondary does not replicate.
constexpr std::string_view kMakeListsAgree =
    "The primary replicates databases this node does not: make both nodes' [mysql] databases "
    "agree (or check what runs at the primary's address)";

}  // namespace

TargetFilter::TargetFilter(std::vector<std::string> databases) : databases_(std::move(databases)) {}

uint8_t TableMapPostHeaderLen(std::string_view fde) {
  const size_t at = kFdePostHeaderLengths + kTableMapEvent - 1;
  if (fde.size() <= at || static_cast<uint8_t>(fde[4]) != kFormatDescriptionEvent) return 8;
  return static_cast<uint8_t>(fde[at]);
}

Result<TableMapName> ParseTableMapName(std::string_view event, uint8_t post_header_len) {
  // Body: db_len 1, db, NUL, table_len 1, table, NUL, ... (MariaDB KB "TABLE_MAP_EVENT").
  size_t at = kEventHeaderSize + post_header_len;
  auto name = [&](std::string* out) -> bool {
    if (event.size() < at + 1) return false;
    const size_t len = static_cast<uint8_t>(event[at]);
    if (event.size() < at + 1 + len + 1) return false;
    out->assign(event.substr(at + 1, len));
    at += 1 + len + 1;
    return true;
  };
  TableMapName result;
  if (!name(&result.db) || !name(&result.table)) {
    return Status::Corruption(
        fmt::format("TABLE_MAP event of {} bytes too short to name its table", event.size()));
  }
  return result;
}

Status TargetFilter::Check(uint64_t seq, const pb::DbTransaction& txn) const {
  const uint8_t post_header_len = TableMapPostHeaderLen(txn.format_description());
  for (const pb::Statement& statement : txn.statements()) {
    if (statement.kind() == pb::Statement::DDL) {
      RS_RETURN_IF_ERROR(CheckDdl(seq, statement));
      continue;
    }
    for (const std::string& event : statement.events()) {
      if (event.size() < kEventHeaderSize) {
        return Status::Corruption(
            fmt::format("relay entry {}: a row event of {} bytes", seq, event.size()));
      }
      const auto type = static_cast<uint8_t>(event[4]);
      if (IsRowsEventType(type)) continue;
      if (type != kTableMapEvent) {
        return Status::Corruption(fmt::format(
            "relay entry {}: event type {} among row events (only TABLE_MAP and ROWS events "
            "are applied); nothing was applied",
            seq, type));
      }
      RS_ASSIGN_OR_RETURN(TableMapName name, ParseTableMapName(event, post_header_len));
      if (!databases_.Replicated(name.db)) {
        return Status::InvalidArgument(fmt::format(
            "relay entry {}: refused row changes of table '{}.{}': database '{}' is not one "
            "this secondary replicates ([mysql] databases: {}). {}",
            seq, name.db, name.table, name.db, databases_.Describe(), kMakeListsAgree));
      }
    }
  }
  return Status::Ok();
}

bool TargetFilter::MovesAcrossTheSet(const pb::Statement& statement) const {
  const SqlSyntax syntax = statement.session().has_sql_mode()
                               ? SqlSyntax::FromSqlMode(statement.session().sql_mode())
                               : SqlSyntax{};
  for (const TableMove& move : AnalyzeTableMoves(statement.sql(), statement.db(), syntax)) {
    if (databases_.Replicated(move.from_db) != databases_.Replicated(move.to_db)) return true;
  }
  return false;
}

bool TargetFilter::Replicated(const std::string& db) const { return databases_.Replicated(db); }

Status TargetFilter::CheckDdl(uint64_t seq, const pb::Statement& statement,
                              DdlCheckOptions options) const {
  // A table entering or leaving the set: the applier never runs such a statement as it is, only
  // what it makes of its moves within the set (Applier::PlanTableMoves).
  if (MovesAcrossTheSet(statement)) return Status::Ok();
  const std::string& db = statement.db();
  if (!db.empty() && !databases_.Replicated(db)) {
    return Status::InvalidArgument(fmt::format(
        "relay entry {}: refused a DDL statement whose default database '{}' is not one this "
        "secondary replicates ([mysql] databases: {}): '{}'. {}",
        seq, db, databases_.Describe(), Excerpt(statement.sql()), kMakeListsAgree));
  }
  const bool in_fallback = db.empty() || options.default_database_missing;
  const SqlSyntax syntax = statement.session().has_sql_mode()
                               ? SqlSyntax::FromSqlMode(statement.session().sql_mode())
                               : SqlSyntax{};
  const StatementTargets targets =
      AnalyzeStatement(statement.sql(), in_fallback ? kDdlFallbackSchema : db, syntax);
  if (targets.kind != StatementKind::kDdl) {
    return Status::InvalidArgument(fmt::format(
        "relay entry {}: refused a statement sent as DDL that is not DDL ('{}'): a replsync "
        "primary ships only DDL as SQL text, and row changes as row events. Check what runs at "
        "the primary's address ([transport] primary)",
        seq, Excerpt(statement.sql())));
  }
  std::string outside;
  bool fallback_outside = false;
  for (const std::string& target : targets.databases) {
    if (databases_.Replicated(target)) continue;
    outside += fmt::format("{}'{}'", outside.empty() ? "" : ", ", target);
    if (in_fallback && target == kDdlFallbackSchema) fallback_outside = true;
  }
  if (outside.empty()) return Status::Ok();
  std::string why;
  if (fallback_outside) {
    why = db.empty() ? fmt::format(
                           " (the statement has no default database, so it would run in "
                           "replsync's own schema '{}' here, where its unqualified names land)",
                           kDdlFallbackSchema)
                     : fmt::format(
                           " (its default database '{}' does not exist on this secondary, so it "
                           "would run in replsync's own schema '{}' here, where its unqualified "
                           "names land: create '{}' here as the primary has it)",
                           db, kDdlFallbackSchema, db);
  }
  return Status::InvalidArgument(fmt::format(
      "relay entry {}: refused a DDL statement that touches {}, outside the databases this "
      "secondary replicates ([mysql] databases: {}){}: '{}'. The primary replicates databases "
      "this node does not, or the statement also names databases outside both nodes' lists (the "
      "primary's log warned when it shipped it): make both nodes' [mysql] databases agree and "
      "hold every database the statement names (or check what runs at the primary's address)",
      seq, outside, databases_.Describe(), why, Excerpt(statement.sql())));
}

}  // namespace replsync::apply
