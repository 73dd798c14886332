// `replsync status --config FILE [--json]`: what the node's replsyncd reports about itself
// (schemas/status.md): role, positions, lag, journal or relay depth, peers.
#pragma once

#include <cstdio>
#include <string>

namespace replsync::cli {

// Prints the status to `out`. Returns the exit code: 0 the daemon is running, 1 it is not (the
// last status it wrote is still shown, marked stale), 2 no status could be read (the reason goes
// to stderr).
int RunStatus(const std::string& config_path, bool json, std::FILE* out);

}  // namespace replsync::cli
