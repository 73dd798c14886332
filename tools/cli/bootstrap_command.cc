#include "tools/cli/bootstrap_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include "sync/config.h"
#include "sync/node/bootstrap_request.h"
#include "sync/node/node_status.h"
#include "sync/node/role_state.h"
#include "sync/node/status_file.h"
#include "sync/verify/consistent_point.h"

namespace replsync::cli {
namespace {

bool Running(const std::string& phase) {
  return phase == "starting" || phase == "copying" || phase == "objects" || phase == "files";
}

// The daemon's bootstrap as its status file shows it (nullopt when there is none yet).
std::optional<NodeStatus::Bootstrap> ReadBootstrap(const std::string& state_dir) {
  Result<std::string> text = ReadStatusFile(state_dir);
  if (!text.ok()) return std::nullopt;
  Result<NodeStatus> status = NodeStatus::Parse(*text);
  if (!status.ok() || !status->secondary || !status->secondary->bootstrap) return std::nullopt;
  return status->secondary->bootstrap;
}

std::string Megabytes(uint64_t bytes) { return fmt::format("{:.1f} MB", bytes / 1e6); }

std::string Duration(int64_t seconds) {
  if (seconds < 0) return "?";
  if (seconds < 60) return fmt::format("{} s", seconds);
  if (seconds < 3600) return fmt::format("{} min {} s", seconds / 60, seconds % 60);
  return fmt::format("{} h {} min", seconds / 3600, seconds % 3600 / 60);
}

// "chunks: 4 loaded, 120 equal (1200000 rows equal)": what a resync compared.
std::string ResyncCounts(const NodeStatus::Bootstrap& b) {
  return fmt::format("chunks: {} loaded, {} equal ({} rows equal)", b.chunks_loaded, b.chunks_equal,
                     b.rows_equal);
}

// "copying: tables 3/12, rows 120000/1000000, 24.0 MB/200.0 MB, 30.5 MB/s, ETA 6 s"
std::string ProgressLine(const NodeStatus::Bootstrap& b) {
  std::string line = b.phase;
  if (b.phase == "starting") {
    line += ": the primary's first consistent point and its definitions";
  } else if (b.phase == "objects") {
    line += ": views, routines, triggers, events and users";
  } else if (b.phase == "copying") {
    line += fmt::format(": tables {}/{}, rows {}/~{}, {}/~{}, {:.1f} MB/s, ETA {}", b.tables_done,
                        b.tables_total, b.rows_done, b.rows_estimated, Megabytes(b.bytes_done),
                        Megabytes(b.bytes_estimated), b.bytes_per_second / 1e6,
                        Duration(b.eta_seconds));
    if (b.round > 0) {
      line += fmt::format(", round {} (snapshot held {:.0f} s)", b.round, b.snapshot_age_seconds);
    }
    if (b.resync) line += ", " + ResyncCounts(b);
  } else if (b.phase == "files") {
    line += fmt::format(": {}/{} paths", b.files_done, b.files_total);
  }
  return line;
}

}  // namespace

int RunBootstrap(const BootstrapCommandOptions& options, std::FILE* out) {
  Result<NodeConfig> config = LoadNodeConfig(options.config_path);
  if (!config.ok()) {
    fmt::print(stderr, "replsync bootstrap: {}\n", config.status().message());
    return 2;
  }
  const std::string& state_dir = config->node.state_dir;
  if (config->node.role != NodeRole::kSecondary) {
    fmt::print(stderr,
               "replsync bootstrap: this node is a primary ({}, or its role state); run "
               "bootstrap on the secondary, with its configuration\n",
               options.config_path);
    return 2;
  }
  if (options.force && options.resync) {
    fmt::print(stderr,
               "replsync bootstrap: --force (replace everything) and --resync (keep what is "
               "there, copy what differs) exclude each other\n");
    return 2;
  }
  if (!ReplsyncdRunning(state_dir)) {
    fmt::print(stderr,
               "replsync bootstrap: replsyncd is not running with state_dir {}: the daemon does "
               "the copy; start it first (systemctl start replsyncd, or replsyncd --config {})\n",
               state_dir, options.config_path);
    return 2;
  }

  std::string token;
  std::optional<NodeStatus::Bootstrap> current = ReadBootstrap(state_dir);
  if (current && Running(current->phase)) {
    token = current->token;
    if (!options.json) {
      fmt::print(out, "following the bootstrap in progress ({})\n", current->phase);
    }
  } else {
    token = verify::NewBarrierToken();
    Status st = WriteBootstrapRequest(
        state_dir,
        BootstrapRequest{.token = token, .force = options.force, .resync = options.resync});
    if (!st.ok()) {
      fmt::print(stderr, "replsync bootstrap: {}\n", st.message());
      return 2;
    }
  }

  return FollowBootstrap(state_dir, token,
                         {.json = options.json,
                          .take_timeout = options.take_timeout,
                          .poll = options.poll,
                          .command = "replsync bootstrap"},
                         out);
}

int FollowBootstrap(const std::string& state_dir, const std::string& token,
                    const FollowBootstrapOptions& options, std::FILE* out) {
  const bool tty = !options.json && isatty(fileno(out)) != 0;
  const auto asked = std::chrono::steady_clock::now();
  auto last_line = asked - std::chrono::hours(1);
  std::string last_phase;
  std::string last_json;
  for (;;) {
    std::optional<NodeStatus::Bootstrap> b = ReadBootstrap(state_dir);
    const auto now = std::chrono::steady_clock::now();
    if (!b || b->token != token) {
      if (now - asked > options.take_timeout) {
        fmt::print(stderr,
                   "{}: replsyncd did not take the request within {} s (is it "
                   "an older version? see its log)\n",
                   options.command, options.take_timeout.count());
        return 2;
      }
    } else {
      if (options.json) {
        std::string json = b->ToJson();
        if (json != last_json) fmt::print(out, "{}\n", json);
        last_json = std::move(json);
      } else if (tty) {
        fmt::print(out, "\r\033[K{}", ProgressLine(*b));
      } else if (b->exit_code < 0 &&
                 (b->phase != last_phase || now - last_line >= std::chrono::seconds(10))) {
        fmt::print(out, "{}\n", ProgressLine(*b));
        last_line = now;
      }
      std::fflush(out);
      last_phase = b->phase;
      if (b->exit_code >= 0) {
        if (tty) fmt::print(out, "\n");
        if (!options.json) {
          if (b->exit_code == 0) {
            fmt::print(out,
                       "done: the secondary holds the primary's data as of {} and follows the "
                       "stream ({} rows, {} in {})\n",
                       b->start_position, b->rows_done, Megabytes(b->bytes_done),
                       b->finished_at - b->started_at < 60
                           ? fmt::format("{:.1f} s", b->finished_at - b->started_at)
                           : Duration(static_cast<int64_t>(b->finished_at - b->started_at)));
            if (b->resync) fmt::print(out, "resync: {}\n", ResyncCounts(*b));
          } else if (b->exit_code == 1) {
            fmt::print(out, "refused: this secondary is not empty; it holds:\n");
            for (const std::string& item : b->refused) fmt::print(out, "  {}\n", item);
            fmt::print(out,
                       "run again with --force to replace it with the primary's data, or with "
                       "--resync to keep it and copy only what differs\n");
          } else {
            fmt::print(stderr, "{}: {}\n", options.command, b->error);
          }
        }
        return b->exit_code;
      }
    }
    if (!ReplsyncdRunning(state_dir)) {
      if (tty) fmt::print(out, "\n");
      fmt::print(stderr,
                 "{}: replsyncd stopped; the bootstrap goes on where it stood when the daemon "
                 "starts again (run replsync bootstrap to follow it)\n",
                 options.command);
      return 2;
    }
    std::this_thread::sleep_for(options.poll);
  }
}

}  // namespace replsync::cli
