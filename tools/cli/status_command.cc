#include "tools/cli/status_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sync/clock.h"
#include "sync/config.h"
#include "sync/node/node.h"
#include "sync/node/node_status.h"
#include "sync/node/status_file.h"
#include "sync/verify/last_verify.h"
#include "sync/wire/transport_security.h"

namespace replsync::cli {

namespace {

std::string Bytes(uint64_t bytes) {
  double b = static_cast<double>(bytes);
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", b, units[u]);
}

std::string Duration(double seconds) {
  if (seconds < 0) return "-";
  auto s = static_cast<uint64_t>(seconds);
  if (s < 120) return fmt::format("{:.1f} s", seconds);
  if (s < 7200) return fmt::format("{} min {} s", s / 60, s % 60);
  if (s < 172800) return fmt::format("{} h {} min", s / 3600, s / 60 % 60);
  return fmt::format("{} d {} h", s / 86400, s / 3600 % 24);
}

void PrintPrimary(const NodeStatus::Primary& p, double now, std::FILE* out) {
  std::fprintf(out, "  binlog       %s  gtid %s\n", p.binlog_position.c_str(), p.gtid.c_str());
  std::fprintf(out, "  captured     %llu transactions, %llu rows; %s behind the server\n",
               static_cast<unsigned long long>(p.captured.transactions),
               static_cast<unsigned long long>(p.captured.rows),
               Duration(static_cast<double>(p.lag_seconds)).c_str());
  const NodeStatus::JournalStats& j = p.journal;
  std::fprintf(out, "  journal      seq %llu..%llu, %llu entries, %s (cap %s)%s\n",
               static_cast<unsigned long long>(j.first_seq),
               static_cast<unsigned long long>(j.last_seq),
               static_cast<unsigned long long>(j.entries), Bytes(j.bytes).c_str(),
               Bytes(j.max_bytes).c_str(), j.full ? "  FULL: capture paused" : "");
  if (p.files) {
    const NodeStatus::FileCapture& f = *p.files;
    std::fprintf(out,
                 "  files        %s %s: %llu changes journaled (%s as data, %s copied), %llu "
                 "pending (%s)\n",
                 f.state.c_str(), f.root.c_str(),
                 static_cast<unsigned long long>(f.changes_journaled),
                 Bytes(f.literal_bytes).c_str(), Bytes(f.copied_bytes).c_str(),
                 static_cast<unsigned long long>(f.files_pending), Bytes(f.bytes_pending).c_str());
    std::fprintf(
        out, "  rescan       %llu rescans, last %s ago (%s); %llu watches\n",
        static_cast<unsigned long long>(f.rescans),
        Duration(f.last_rescan > 0 ? now - static_cast<double>(f.last_rescan) : -1).c_str(),
        f.last_rescan_reason.c_str(), static_cast<unsigned long long>(f.watches));
  }
  if (p.peers.empty()) std::fprintf(out, "  secondaries  none in [peers]: nobody is served\n");
  for (const NodeStatus::Peer& peer : p.peers) {
    if (!peer.ever_connected) {
      std::fprintf(out,
                   "  secondary    %s: never connected (the journal keeps everything for it; "
                   "remove it from [peers] if it is gone)\n",
                   peer.name.c_str());
      continue;
    }
    std::fprintf(out, "  secondary    %s: %s, received %llu, applied %llu, behind %llu entries\n",
                 peer.name.c_str(), peer.connected ? "connected" : "disconnected",
                 static_cast<unsigned long long>(peer.durable_seq),
                 static_cast<unsigned long long>(peer.applied_seq),
                 static_cast<unsigned long long>(peer.lag_entries));
  }
  if (p.refused_peers > 0) {
    std::fprintf(out, "  refused      %llu connections, the latest %s ago: %s\n",
                 static_cast<unsigned long long>(p.refused_peers),
                 Duration(now - p.last_refused_peer_at).c_str(), p.last_refused_peer.c_str());
  }
}

void PrintSecondary(const NodeStatus::Secondary& s, std::FILE* out) {
  std::fprintf(out, "  primary      %s: %s\n", s.primary.c_str(),
               s.connected ? "connected" : "disconnected");
  if (!s.primary_refusal.empty()) {
    std::fprintf(out, "  REFUSED      %s\n", s.primary_refusal.c_str());
  }
  if (!s.entering.empty()) {
    std::fprintf(out,
                 "  entering     %s: their changes wait until they are copied from the primary\n",
                 fmt::format("{}", fmt::join(s.entering, ", ")).c_str());
  }
  std::fprintf(out, "  received     seq %llu (primary at %llu)\n",
               static_cast<unsigned long long>(s.received_seq),
               static_cast<unsigned long long>(s.primary_last_seq));
  std::fprintf(out, "  applied      seq %llu  gtid %s  source %s\n",
               static_cast<unsigned long long>(s.applied_seq), s.applied_gtid.c_str(),
               s.source_position.c_str());
  std::fprintf(out,
               "  apply        %d workers; %llu transactions (%llu by workers), %llu rows; %llu "
               "serial fallbacks\n",
               s.apply_workers, static_cast<unsigned long long>(s.transactions_applied),
               static_cast<unsigned long long>(s.parallel_applied),
               static_cast<unsigned long long>(s.rows_applied),
               static_cast<unsigned long long>(s.serial_fallbacks));
  std::fprintf(out,
               "  files        %s: %llu changes applied in %llu batches; %llu paths wait for a "
               "whole copy\n",
               s.files.root.c_str(), static_cast<unsigned long long>(s.files.changes_applied),
               static_cast<unsigned long long>(s.files.batches),
               static_cast<unsigned long long>(s.files.resync_pending));
  std::fprintf(out, "  lag          %llu transactions, %s, %s\n",
               static_cast<unsigned long long>(s.lag.transactions), Bytes(s.lag.bytes).c_str(),
               Duration(s.lag.seconds).c_str());
  std::fprintf(out, "  relay        %llu entries, %s\n",
               static_cast<unsigned long long>(s.relay.entries), Bytes(s.relay.bytes).c_str());
  if (s.bootstrap) {
    const NodeStatus::Bootstrap& b = *s.bootstrap;
    std::string line =
        fmt::format("{}{}: tables {}/{}, rows {}, {}", b.resync ? "resync " : "", b.phase,
                    b.tables_done, b.tables_total, b.rows_done, Bytes(b.bytes_done));
    if (b.resync) {
      line += fmt::format("; chunks {} loaded, {} equal ({} rows equal)", b.chunks_loaded,
                          b.chunks_equal, b.rows_equal);
    }
    if (b.phase == "files") line += fmt::format("; files {}/{}", b.files_done, b.files_total);
    if (!b.error.empty()) line += "; " + b.error;
    std::fprintf(out, "  bootstrap    %s\n", line.c_str());
  }
}

// The last verify's line; `last_verify` is verify.last's text ("" when there is none).
void PrintLastVerify(const std::string& last_verify, double now, std::FILE* out) {
  std::optional<verify::LastVerify> v = verify::LastVerify::Parse(last_verify);
  if (!v) return;
  std::string what;
  if (v->exit_code == 0) {
    what = "consistent";
  } else if (v->exit_code == 1) {
    what = fmt::format("differences: {} tables, {} paths", v->tables_differing, v->paths_differing);
  } else {
    what = "could not verify: " + v->error;
  }
  std::fprintf(out, "  last verify  %s ago (%s, took %s): %s\n", Duration(now - v->at).c_str(),
               v->what.c_str(), Duration(v->seconds).c_str(), what.c_str());
}

void PrintHuman(const NodeStatus& status, const std::string& last_verify, bool running, double age,
                double now, std::FILE* out) {
  std::fprintf(out, "replsyncd %s: %s (pid %lld, status written %s ago)\n", status.role.c_str(),
               running ? "running" : "NOT RUNNING (stale status)",
               static_cast<long long>(status.pid), Duration(age).c_str());
  std::fprintf(out, "  state        %s\n", status.state.c_str());
  if (status.epoch != 0)
    std::fprintf(out, "  epoch        %llu\n", static_cast<unsigned long long>(status.epoch));
  if (status.fenced) {
    std::fprintf(out, "  FENCED       %s\n", status.fenced_by.c_str());
  }
  if (status.transport == "insecure") {
    std::fprintf(out, "  WARNING      %s\n", kInsecureTransportWarning);
  }
  if (!status.error.empty()) std::fprintf(out, "  error        %s\n", status.error.c_str());
  if (status.primary) PrintPrimary(*status.primary, now, out);
  if (status.secondary) PrintSecondary(*status.secondary, out);
  PrintLastVerify(last_verify, now, out);
}

}  // namespace

int RunStatus(const std::string& config_path, bool json, std::FILE* out) {
  auto config = NodeConfig::Load(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "replsync status: %s\n", config.status().message().c_str());
    return 2;
  }
  auto text = ReadStatusFile(config->node.state_dir);
  if (!text.ok()) {
    std::fprintf(stderr, "replsync status: %s\n", text.status().message().c_str());
    return 2;
  }
  Result<NodeStatus> status = NodeStatus::Parse(*text);
  if (!status.ok()) {
    std::fprintf(stderr, "replsync status: %s is not valid JSON (is it being written?)\n",
                 StatusFilePath(config->node.state_dir).c_str());
    return 2;
  }
  const double now = UnixSeconds(SystemClock());
  const double age = now - status->updated_at;
  // replsyncd holds its lock for as long as it runs (a pid could have been reused).
  bool running = ReplsyncdRunning(config->node.state_dir) && age >= 0 && age < 10;
  // The last `replsync verify` on this node (state_dir/verify.last), when there was one.
  const std::string last_verify = verify::ReadLastVerifyText(config->node.state_dir);
  if (json) {
    std::fprintf(out, "%s\n", StatusReportJson(*status, last_verify, running, age).c_str());
  } else {
    PrintHuman(*status, last_verify, running, age, now, out);
  }
  return running ? 0 : 1;
}

}  // namespace replsync::cli
