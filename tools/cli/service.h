// The replsyncd service loop: loads the node configuration and runs the node until SIGTERM or
// SIGINT. Returns the process exit code.
#pragma once

#include <string>

namespace replsync::cli {

int RunService(const std::string& config_path);

}  // namespace replsync::cli
