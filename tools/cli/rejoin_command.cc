#include "tools/cli/rejoin_command.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>
#include <set>

#include "capture/binlog/binlog_tail.h"
#include "capture/binlog/source_factory.h"
#include "sync/atomic_file.h"
#include "sync/bootstrap/bootstrap_client.h"
#include "sync/config.h"
#include "sync/database_filter.h"
#include "sync/node/role_request.h"
#include "sync/node/role_state.h"
#include "sync/node/status_file.h"
#include "sync/verify/consistent_point.h"
#include "tools/cli/bootstrap_command.h"

namespace replsync::cli {
namespace {

namespace fs = std::filesystem;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void PutString(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

// Copies what `path` (relative to the repository) is now into `to`: a file's bytes, a link, a
// folder (not its contents: each changed path is listed on its own). Gone: nothing.
Status CopyTailPath(const std::string& repository, const std::string& path, const fs::path& to) {
  const fs::path from = fs::path(repository) / path;
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(from, ec);
  if (ec || !fs::exists(st)) return Status::Ok();
  const fs::path target = to / path;
  fs::create_directories(target.parent_path(), ec);
  if (fs::is_directory(st)) {
    fs::create_directories(target, ec);
  } else if (fs::is_symlink(st) || fs::is_regular_file(st)) {
    fs::remove(target, ec);
    fs::copy(from, target, fs::copy_options::copy_symlinks, ec);
  }
  if (ec) return Status::IoError("quarantine " + from.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

std::string RejoinTail::ToJson(const std::string& node) const {
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
  for (const capture::TailTransaction& t : rows.transactions) {
    w.StartObject();
    PutString(w, "gtid", t.gtid);
    PutString(w, "begin", t.begin.ToString());
    PutString(w, "end", t.end.ToString());
    w.Key("timestamp");
    w.Uint(t.timestamp);
    w.Key("tables");
    w.StartObject();
    for (const auto& [table, count] : t.rows) {
      w.Key(table.data(), static_cast<rapidjson::SizeType>(table.size()));
      w.Uint64(count);
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
  w.Uint64(rows.skipped);
  PutString(w, "binlog_end", rows.end.ToString());
  w.Key("files");
  w.StartArray();
  for (const TailFileChange& f : files) {
    w.StartObject();
    w.Key("seq");
    w.Uint64(f.seq);
    PutString(w, "change", f.change);
    PutString(w, "path", f.path);
    if (!f.from_path.empty()) PutString(w, "from_path", f.from_path);
    w.Key("conflict");
    w.Bool(f.conflict);
    w.EndObject();
  }
  w.EndArray();
  PutString(w, "conflicts", conflicts_unknown.empty() ? "checked" : conflicts_unknown);
  if (!fork_unknown.empty()) PutString(w, "fork_unknown", fork_unknown);
  PutString(w, "quarantine", quarantine);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string RejoinTail::ToText(const std::string& node) const {
  std::string text = fmt::format(
      "fork: node {} was promoted at epoch {} after applying this node's binlog up to {} (gtid "
      "'{}') and its journal up to sequence {}\n",
      fork.promoted, fork.epoch, BinlogPosition{fork.binlog_file, fork.binlog_offset}.ToString(),
      fork.gtid, fork.journal_seq);
  if (!fork_unknown.empty()) text += fork_unknown + "\n";
  if (empty()) {
    return text + fmt::format(
                      "no unshipped tail: {} holds nothing after the fork for the replicated "
                      "databases or the repository ({} other transactions, binlog end {})\n",
                      node, rows.skipped, rows.end.ToString());
  }
  text += fmt::format(
      "unshipped tail of {}: {} transactions and {} file changes the new primary "
      "does not have:\n",
      node, rows.transactions.size(), files.size());
  for (const capture::TailTransaction& t : rows.transactions) {
    std::string tables;
    for (const auto& [table, count] : t.rows) {
      tables += fmt::format("{}{} ({} rows)", tables.empty() ? "" : ", ", table, count);
    }
    text +=
        fmt::format("  {} at {}: {}{}\n", t.gtid.empty() ? "(no gtid)" : t.gtid, t.begin.ToString(),
                    tables, t.ddl.empty() ? "" : fmt::format("; {} DDL", t.ddl.size()));
    for (const std::string& sql : t.ddl) text += fmt::format("      {}\n", sql);
  }
  for (const TailFileChange& f : files) {
    text += fmt::format(
        "  file change {}: {} {}{}{}\n", f.seq, f.change, f.path,
        f.from_path.empty() ? "" : " (from " + f.from_path + ")",
        f.conflict ? fmt::format(" -- conflict: {} changed it too", fork.promoted) : "");
  }
  if (!files.empty() && !conflicts_unknown.empty()) {
    text += "  conflicts with the new primary's changes not known: " + conflicts_unknown + "\n";
  }
  text += fmt::format("({} transactions on other databases left out; binlog end {})\n",
                      rows.skipped, rows.end.ToString());
  if (!quarantine.empty()) text += "quarantined in " + quarantine + "\n";
  return text;
}

std::string QuarantineDir(const std::string& state_dir, uint64_t epoch) {
  return state_dir + "/quarantine/" + std::to_string(epoch);
}

void MarkConflicts(const std::vector<std::string>& changed, std::vector<TailFileChange>* files) {
  const std::set<std::string> set(changed.begin(), changed.end());
  auto touches = [&set](const std::string& path) {
    if (path.empty()) return false;
    // The path itself or a folder above it.
    for (size_t end = path.size(); end != std::string::npos; end = path.rfind('/', end - 1)) {
      if (set.count(path.substr(0, end)) != 0) return true;
      if (end == 0) break;
    }
    // A path below it.
    auto below = set.lower_bound(path + "/");
    return below != set.end() && below->compare(0, path.size() + 1, path + "/") == 0;
  };
  for (TailFileChange& f : *files) f.conflict = touches(f.path) || touches(f.from_path);
}

namespace {
// Asks the promoted node which paths its journal changed after the fork, and marks the tail's
// paths it also changed; says why when it cannot.
void FindConflicts(const NodeConfig& config, RejoinTail* tail) {
  if (tail->files.empty()) return;
  const std::string& promoted = tail->fork.promoted;
  const NodeConfig::Peer* peer = config.FindPeer(promoted);
  if (peer == nullptr || peer->endpoint.empty()) {
    tail->conflicts_unknown = config.source_path + " has no [peers." + promoted + "] endpoint";
    return;
  }
  Result<BootstrapClient::ChangedPaths> changed = [&]() -> Result<BootstrapClient::ChangedPaths> {
    BootstrapClient::Options options;
    options.reply_timeout = std::chrono::seconds(20);
    RS_ASSIGN_OR_RETURN(std::unique_ptr<BootstrapClient> connected,
                        BootstrapClient::Connect(config, peer->endpoint, options));
    return connected->ChangedPathsAfter(tail->fork.journal_seq);
  }();
  if (!changed.ok()) {
    tail->conflicts_unknown = promoted + " could not be asked: " + changed.status().message();
  } else if (!changed->complete) {
    tail->conflicts_unknown = promoted + "'s journal no longer holds every entry after the fork";
  }
  if (!tail->conflicts_unknown.empty()) {
    spdlog::warn("rejoin: which tail paths {} also changed is not known: {}", promoted,
                 tail->conflicts_unknown);
    return;
  }
  MarkConflicts(changed->paths, &tail->files);
}
}  // namespace

Result<RejoinTail> FindRejoinTail(const NodeConfig& config, const ForkPoint& fork, const Node& node,
                                  bool quarantine) {
  RejoinTail tail;
  tail.fork = fork;
  std::string binlog_copy;
  if (quarantine) {
    tail.quarantine = QuarantineDir(config.node.state_dir, fork.epoch);
    std::error_code ec;
    fs::create_directories(tail.quarantine + "/files", ec);
    if (ec) return Status::IoError("create " + tail.quarantine + ": " + ec.message());
    binlog_copy = tail.quarantine + "/tail.binlog";
  }
  uint64_t files_after = fork.journal_seq;
  if (fork.old_primary.empty()) {
    tail.fork_unknown = fmt::format(
        "node {} was promoted at epoch {} over this node while both were primary at epoch {}: "
        "where their data parted is not known; what this node captured is in its journal (moved "
        "to the quarantine when it starts as a secondary) and is replaced by {}'s",
        fork.promoted, fork.epoch, fork.epoch - 1, fork.promoted);
    tail.conflicts_unknown = "the fork is not known";
    files_after = 0;
  } else {
    capture::MariadbSourceOptions source = capture::SourceOptionsOf(
        config.mysql, BinlogPosition{fork.binlog_file, fork.binlog_offset}, /*follow=*/false);
    // Not the capture's own id (a replica id names one connection).
    source.replica_server_id = config.mysql.replica_server_id + 2;
    Result<std::unique_ptr<capture::MariadbBinlogSource>> opened =
        capture::MariadbBinlogSource::Open(std::move(source));
    if (!opened.ok()) {
      return opened.status().WithContext("read this node's binlog from " + fork.binlog_file + ":" +
                                         std::to_string(fork.binlog_offset));
    }
    RS_ASSIGN_OR_RETURN(
        tail.rows, capture::ReadBinlogTail(std::move(opened).value(),
                                           DatabaseFilter(config.mysql.databases), binlog_copy));
  }
  Result<std::vector<TailFileChange>> files = node.FileChangesAfter(files_after);
  if (!files.ok()) return files.status().WithContext("read the file changes in the journal");
  tail.files = std::move(files).value();
  if (tail.fork_unknown.empty()) FindConflicts(config, &tail);
  if (quarantine) {
    for (const TailFileChange& f : tail.files) {
      RS_RETURN_IF_ERROR(
          CopyTailPath(config.repository.path, f.path, fs::path(tail.quarantine) / "files"));
    }
    RS_RETURN_IF_ERROR(WriteFileAtomically(tail.quarantine + "/report.json",
                                           tail.ToJson(config.node.name) + "\n", "rejoin report"));
  }
  return tail;
}

Status QuarantineState(const std::string& state_dir, const std::string& dir,
                       const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    const fs::path from = fs::path(state_dir) / name;
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(from, ec))) continue;
    fs::create_directories(dir, ec);
    fs::path to = fs::path(dir) / name;
    for (int i = 1; fs::exists(fs::symlink_status(to, ec)); ++i) {
      to = fs::path(dir) / (name + "." + std::to_string(i));
    }
    fs::rename(from, to, ec);
    if (ec)
      return Status::IoError("move " + from.string() + " to " + to.string() + ": " + ec.message());
    spdlog::info("moved {} to {}", from.string(), to.string());
  }
  return Status::Ok();
}

int RunRejoin(const RejoinCommandOptions& options, std::FILE* out) {
  Result<NodeConfig> config = NodeConfig::Load(options.config_path);
  if (!config.ok()) {
    fmt::print(stderr, "replsync rejoin: {}\n", config.status().message());
    return 2;
  }
  const std::string& state_dir = config->node.state_dir;
  Result<RoleState> role = ReadRoleState(state_dir);
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
  if (!ReplsyncdRunning(state_dir)) {
    fmt::print(stderr,
               "replsync rejoin: replsyncd is not running with state_dir {}: the daemon reads "
               "the tail from its journal and makes the node follow; start it first "
               "(systemctl start replsyncd, or replsyncd --config {}); it comes up fenced\n",
               state_dir, options.config_path);
    return 2;
  }
  Result<RoleReply> reply = AskReplsyncd(state_dir,
                                         {.token = verify::NewBarrierToken(),
                                          .action = RoleRequest::Action::kRejoin,
                                          .force = false,
                                          .dry_run = options.dry_run,
                                          .target = ""},
                                         options.timeout, options.poll);
  if (!reply.ok()) {
    fmt::print(stderr, "replsync rejoin: {}\n", reply.status().message());
    return 2;
  }
  if (options.json) {
    fmt::print(out, "{}\n", reply->report.empty() ? reply->ToJson() : reply->report);
  } else {
    fmt::print(
        reply->exit_code == 2 || (reply->exit_code == 1 && reply->report.empty()) ? stderr : out,
        "{}\n", reply->message);
  }
  if (options.dry_run || reply->exit_code != 0) return reply->exit_code;
  // The daemon asked for the bootstrap that makes the node the new primary's copy (its token is
  // the request's).
  return FollowBootstrap(state_dir, reply->token,
                         {.json = options.json,
                          .take_timeout = std::chrono::seconds(60),
                          .poll = std::chrono::milliseconds(500),
                          .command = "replsync rejoin"},
                         out);
}

}  // namespace replsync::cli
