// Logging set-up shared by replsyncd and replsync: spdlog to stderr with timestamps.
#pragma once

#include <string>

#include "sync/status.h"

namespace replsync {

// Sets the default logger's level ("trace", "debug", "info", "warn", "error") and pattern
// ("2026-01-02 10:00:00.123 info  message"). InvalidArgument for an unknown level.
Status SetUpLogging(const std::string& level);

}  // namespace replsync
