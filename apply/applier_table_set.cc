// The applier's part in tables entering and leaving the replicated set (schemas/bootstrap.md
// "Tables entering and leaving the set"): a RENAME, ALTER ... RENAME or CREATE ... LIKE with one
// end outside `[mysql] databases` is never run as it is. A table that leaves is dropped here; a
// table that enters is recorded in replsync.entering and its events are left out until the
// bootstrapper has copied it whole at a point the applier holds at.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "apply/applier.h"
#include "sync/mysql/statement_targets.h"
#include "sync/text.h"

namespace replsync::apply {

namespace {

constexpr char kCreateEnteringSql[] =
    "CREATE TABLE IF NOT EXISTS replsync.entering ("
    "channel VARCHAR(64) NOT NULL, "
    "db VARCHAR(64) NOT NULL, "
    "tbl VARCHAR(64) NOT NULL, "
    "since_seq BIGINT UNSIGNED NOT NULL, "
    "PRIMARY KEY (channel, db, tbl)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='replsync: tables entering the set'";

std::string DeleteEnteringSql(const std::string& channel, const std::string& db,
                              const std::string& table) {
  return fmt::format("DELETE FROM replsync.entering WHERE channel = {} AND db = {} AND tbl = {}",
                     QuoteString(channel), QuoteString(db), QuoteString(table));
}

std::string Qualified(const std::string& db, const std::string& table) {
  return QuoteIdentifier(db) + "." + QuoteIdentifier(table);
}

SqlSyntax SyntaxOf(const pb::Statement& statement) {
  return statement.session().has_sql_mode() ? SqlSyntax::FromSqlMode(statement.session().sql_mode())
                                            : SqlSyntax{};
}

}  // namespace

Status Applier::CreateEnteringTable(SqlSession& session) {
  return session.Execute(kCreateEnteringSql, "create replsync.entering");
}

Status Applier::DeleteEntering(SqlSession& session, const std::string& channel,
                               const std::vector<TableId>& tables) {
  for (const auto& [db, table] : tables) {
    RS_RETURN_IF_ERROR(
        session.Execute(DeleteEnteringSql(channel, db, table), "delete from replsync.entering"));
  }
  return Status::Ok();
}

Status Applier::LoadEntering() {
  RS_RETURN_IF_ERROR(CreateEnteringTable(*session_));
  RS_ASSIGN_OR_RETURN(auto rows, session_->Query("SELECT db, tbl FROM replsync.entering WHERE "
                                                 "channel = " +
                                                     QuoteString(options_.channel),
                                                 "read replsync.entering"));
  std::set<TableId> entering;
  for (const auto& row : rows) {
    if (row.size() >= 2) entering.emplace(row[0].value_or(""), row[1].value_or(""));
  }
  if (!entering.empty()) {
    std::vector<std::string> names;
    for (const auto& [db, table] : entering) names.push_back(db + "." + table);
    spdlog::info("applier: tables entering the set, their events left out until copied: {}",
                 fmt::join(names, ", "));
  }
  std::lock_guard<std::mutex> lock(entering_mu_);
  entering_ = std::move(entering);
  any_entering_ = !entering_.empty();
  return Status::Ok();
}

std::vector<Applier::TableId> Applier::Entering() const {
  std::lock_guard<std::mutex> lock(entering_mu_);
  return {entering_.begin(), entering_.end()};
}

void Applier::ForgetEntering(const std::vector<TableId>& tables) {
  std::lock_guard<std::mutex> lock(entering_mu_);
  for (const TableId& t : tables) entering_.erase(t);
  any_entering_ = !entering_.empty();
}

bool Applier::IsEntering(const std::string& db, const std::string& table) const {
  if (!any_entering_) return false;
  std::lock_guard<std::mutex> lock(entering_mu_);
  return entering_.count({db, table}) > 0;
}

bool Applier::LeftOut(std::string_view event) const {
  if (!any_entering_ || event.size() < 5 || static_cast<uint8_t>(event[4]) != kTableMapEvent) {
    return false;
  }
  Result<TableMapName> name = ParseTableMapName(event, TableMapPostHeaderLen(last_fde_));
  return name.ok() && IsEntering(name->db, name->table);
}

Applier::TableSetPlan Applier::PlanTableSet(const pb::Statement& statement, uint64_t seq) {
  TableSetPlan plan;
  const std::vector<TableMove> moves =
      AnalyzeTableMoves(statement.sql(), statement.db(), SyntaxOf(statement));
  auto statement_of = [&](std::string sql) {
    pb::Statement s;
    s.set_kind(pb::Statement::DDL);
    s.set_sql(std::move(sql));
    *s.mutable_session() = statement.session();
    s.mutable_session()->clear_sql_mode();  // names are quoted with backticks
    return s;
  };
  auto enter = [&](const std::string& db, const std::string& table, const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(entering_mu_);
      entering_.emplace(db, table);
      any_entering_ = true;
    }
    plan.entering_sql.push_back(fmt::format(
        "INSERT INTO replsync.entering (channel, db, tbl, since_seq) VALUES ({}, {}, {}, {}) ON "
        "DUPLICATE KEY UPDATE since_seq = VALUES(since_seq)",
        QuoteString(options_.channel), QuoteString(db), QuoteString(table), seq));
    spdlog::info(
        "applier: seq {}: {}.{} enters the replicated set ({}); its changes are left out until "
        "it is copied from the primary",
        seq, db, table, why);
  };
  auto forget = [&](const std::string& db, const std::string& table) {
    {
      std::lock_guard<std::mutex> lock(entering_mu_);
      entering_.erase({db, table});
      any_entering_ = !entering_.empty();
    }
    plan.entering_sql.push_back(DeleteEnteringSql(options_.channel, db, table));
  };

  if (moves.empty()) {
    // Another DDL of a table entering the set: its copy brings the definition.
    if (!any_entering_) return plan;
    const DdlObject object = AnalyzeDdlObject(statement.sql(), SyntaxOf(statement));
    if (object.kind != ObjectKind::kTable || object.name.empty()) return plan;
    const std::string db = object.db.empty() ? statement.db() : object.db;
    if (!IsEntering(db, object.name)) return plan;
    plan.planned = true;
    if (object.verb == DdlVerb::kDrop) {
      forget(db, object.name);
      plan.run.push_back(statement_of("DROP TABLE IF EXISTS " + Qualified(db, object.name)));
    } else {
      spdlog::info(
          "applier: seq {}: skipped a DDL of {}.{}, which is entering the set (its copy "
          "brings its definition)",
          seq, db, object.name);
    }
    return plan;
  }
  bool planned = false;
  for (const TableMove& m : moves) {
    planned = planned || targets_.Replicated(m.from_db) != targets_.Replicated(m.to_db) ||
              IsEntering(m.from_db, m.from_table);
  }
  if (!planned) return plan;
  plan.planned = true;
  for (const TableMove& m : moves) {
    const bool from_in = targets_.Replicated(m.from_db);
    const bool to_in = targets_.Replicated(m.to_db);
    const bool from_entering = from_in && IsEntering(m.from_db, m.from_table);
    const std::string from = Qualified(m.from_db, m.from_table);
    const std::string to = Qualified(m.to_db, m.to_table);
    if (m.like) {
      if (!to_in) continue;
      if (from_in && !from_entering) {
        plan.run.push_back(statement_of("CREATE TABLE IF NOT EXISTS " + to + " LIKE " + from));
      } else {
        enter(m.to_db, m.to_table, "created like " + m.from_db + "." + m.from_table);
      }
      continue;
    }
    if (from_in && to_in) {
      if (from_entering) {
        forget(m.from_db, m.from_table);
        enter(m.to_db, m.to_table, "renamed from " + m.from_db + "." + m.from_table);
      } else {
        plan.run.push_back(statement_of("RENAME TABLE " + from + " TO " + to));
      }
    } else if (from_in) {
      if (from_entering) forget(m.from_db, m.from_table);
      spdlog::info(
          "applier: seq {}: {}.{} leaves the replicated set (renamed to {}.{}); it is "
          "dropped on this secondary",
          seq, m.from_db, m.from_table, m.to_db, m.to_table);
      plan.run.push_back(statement_of("DROP TABLE IF EXISTS " + from));
    } else if (to_in) {
      enter(m.to_db, m.to_table, "renamed from " + m.from_db + "." + m.from_table);
    }
  }
  return plan;
}

}  // namespace replsync::apply
