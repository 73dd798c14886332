// PLACEHOLDER: replaced by the real service loop.
#include "tools/cli/service.h"

namespace replsync::cli {
int RunService(const std::string& config_path) { return 2; }
}  // namespace replsync::cli
