#include "tools/cli/rejoin_command.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>

#include "capture/binlog/binlog_tail.h"
#include "capture/binlog/source_factory.h"
#include "sync/config.h"
#include "sync/database_filter.h"
#include "sync/node/role_state.h"

namespace replsync::cli {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void PutString(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

std::string Json(const std::string& node, const ForkPoint& fork, const capture::BinlogTail& tail) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  PutString(w, "node", node);
  w.Key("fork");
  w.StartObject();
  w.Key("epoch");
  w.Uint64(fork.epoch);
  PutString(w, "promoted", fork.promoted);
  PutString(w, "gtid", fork.gtid);
  PutString(w, "binlog_position", BinlogPosition{fork.binlog_file, fork.binlog_offset}.ToString());
  w.Key("journal_seq");
  w.Uint64(fork.journal_seq);
  w.EndObject();
  w.Key("transactions");
  w.StartArray();
  for (const capture::TailTransaction& t : tail.transactions) {
    w.StartObject();
    PutString(w, "gtid", t.gtid);
    PutString(w, "begin", t.begin.ToString());
    PutString(w, "end", t.end.ToString());
    w.Key("timestamp");
    w.Uint(t.timestamp);
    w.Key("tables");
    w.StartObject();
    for (const auto& [table, rows] : t.rows) {
      w.Key(table.data(), static_cast<rapidjson::SizeType>(table.size()));
      w.Uint64(rows);
    }
    w.EndObject();
    w.Key("ddl");
    w.StartArray();
    for (const std::string& sql : t.ddl)
      w.String(sql.data(), static_cast<rapidjson::SizeType>(sql.size()));
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("skipped_transactions");
  w.Uint64(tail.skipped);
  PutString(w, "binlog_end", tail.end.ToString());
  PutString(w, "files", "not compared yet");
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void PrintText(const std::string& node, const ForkPoint& fork, const capture::BinlogTail& tail,
               std::FILE* out) {
  fmt::print(out,
             "fork: node {} was promoted at epoch {} after applying this node's binlog up to {} "
             "(gtid '{}')\n",
             fork.promoted, fork.epoch,
             BinlogPosition{fork.binlog_file, fork.binlog_offset}.ToString(), fork.gtid);
  if (tail.transactions.empty()) {
    fmt::print(out,
               "no unshipped tail: {} holds nothing after the fork for the replicated "
               "databases ({} other transactions, binlog end {})\n",
               node, tail.skipped, tail.end.ToString());
    return;
  }
  fmt::print(out, "unshipped tail of {}: {} transactions the new primary does not have:\n", node,
             tail.transactions.size());
  for (const capture::TailTransaction& t : tail.transactions) {
    std::string tables;
    for (const auto& [table, rows] : t.rows) {
      tables += fmt::format("{}{} ({} rows)", tables.empty() ? "" : ", ", table, rows);
    }
    fmt::print(out, "  {} at {}: {}{}\n", t.gtid.empty() ? "(no gtid)" : t.gtid, t.begin.ToString(),
               tables, t.ddl.empty() ? "" : fmt::format("; {} DDL", t.ddl.size()));
    for (const std::string& sql : t.ddl) fmt::print(out, "      {}\n", sql);
  }
  fmt::print(out,
             "({} transactions on other databases left out; binlog end {}; files not compared "
             "yet)\n",
             tail.skipped, tail.end.ToString());
}

}  // namespace

int RunRejoin(const RejoinCommandOptions& options, std::FILE* out) {
  Result<NodeConfig> config = NodeConfig::Load(options.config_path);
  if (!config.ok()) {
    fmt::print(stderr, "replsync rejoin: {}\n", config.status().message());
    return 2;
  }
  Result<RoleState> role = ReadRoleState(config->node.state_dir);
  if (role.status().IsNotFound()) {
    fmt::print(stderr,
               "replsync rejoin: {}: replsyncd never ran with this state_dir, so this node was "
               "never primary: there is nothing to rejoin\n",
               role.status().message());
    return 1;
  }
  if (!role.ok()) {
    fmt::print(stderr, "replsync rejoin: {}\n", role.status().message());
    return 2;
  }
  if (role->role != NodeRole::kPrimary || !role->fenced) {
    fmt::print(stderr,
               "replsync rejoin: this node is not a fenced old primary ({} at epoch {}): there is "
               "nothing to rejoin\n",
               RoleName(role->role), role->epoch);
    return 1;
  }
  // The fork where another node took over from this one.
  std::optional<ForkPoint> fork;
  for (const ForkPoint& f : role->forks) {
    if (f.old_primary == config->node.name && f.promoted != config->node.name) fork = f;
  }
  if (!fork) {
    fmt::print(stderr,
               "replsync rejoin: this node does not know where the promoted node's data left its "
               "own (it learns the fork point from the promoted node's answers): start its "
               "replsyncd and check that it reaches the new primary (`replsync status`)\n");
    return 2;
  }
  if (!options.dry_run) {
    fmt::print(stderr,
               "replsync rejoin: quarantining the tail and following the new primary are not "
               "built yet; `--dry-run` reports the tail, and README \"Failover\" says how to "
               "bring the node back by hand\n");
    return 2;
  }
  capture::MariadbSourceOptions source = capture::SourceOptionsOf(
      config->mysql, BinlogPosition{fork->binlog_file, fork->binlog_offset}, /*follow=*/false);
  // Not the daemon's own id (a replica id identifies one connection).
  source.replica_server_id = config->mysql.replica_server_id + 2;
  Result<std::unique_ptr<capture::MariadbBinlogSource>> opened =
      capture::MariadbBinlogSource::Open(std::move(source));
  if (!opened.ok()) {
    fmt::print(stderr, "replsync rejoin: read this node's binlog from {}:{}: {}\n",
               fork->binlog_file, fork->binlog_offset, opened.status().message());
    return 2;
  }
  Result<capture::BinlogTail> tail =
      capture::ReadBinlogTail(std::move(opened).value(), DatabaseFilter(config->mysql.databases));
  if (!tail.ok()) {
    fmt::print(stderr, "replsync rejoin: {}\n", tail.status().message());
    return 2;
  }
  if (options.json) {
    fmt::print(out, "{}\n", Json(config->node.name, *fork, *tail));
  } else {
    PrintText(config->node.name, *fork, *tail, out);
  }
  return tail->transactions.empty() ? 0 : 1;
}

}  // namespace replsync::cli
