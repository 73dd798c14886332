// `replsync bootstrap --config FILE [--json] [--force] [--resync]` (schemas/bootstrap.md): asks
// the secondary's replsyncd to make this node an exact, following copy of its primary, and shows
// the daemon's progress until the bootstrap ends. The daemon does the copy: killing the command
// stops nothing, and running it again follows the bootstrap in progress.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace replsync::cli {

struct BootstrapCommandOptions {
  std::string config_path;
  bool json = false;    // one JSON object per progress step, then the final one
  bool force = false;   // replace a secondary that is not empty
  bool resync = false;  // keep what the secondary holds and copy only what differs
  // How long to wait for the daemon to take the request.
  std::chrono::seconds take_timeout{30};
  // How often the daemon's status is read.
  std::chrono::milliseconds poll{500};
};

// Returns the exit code: 0 the secondary holds the primary's data and follows the stream; 1 the
// daemon refused (a secondary that is not empty, without --force or --resync: what it would
// replace is listed); 2 it could not (why, and what to do, on stderr). Progress goes to `out`:
// on a terminal one line rewritten in place, otherwise a line per phase and every 10 s.
int RunBootstrap(const BootstrapCommandOptions& options, std::FILE* out);

struct FollowBootstrapOptions {
  bool json = false;
  std::chrono::seconds take_timeout{30};
  std::chrono::milliseconds poll{500};
  const char* command = "replsync bootstrap";  // names the command in messages
};
// Shows the progress of the bootstrap under `token` in the daemon's status until it ends, as
// RunBootstrap does, and returns its exit code (2 when the daemon does not take it or stops).
int FollowBootstrap(const std::string& state_dir, const std::string& token,
                    const FollowBootstrapOptions& options, std::FILE* out);

}  // namespace replsync::cli
