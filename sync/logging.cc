#include "sync/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace replsync {

Status SetUpLogging(const std::string& level) {
  spdlog::level::level_enum lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return Status::InvalidArgument("log level '" + level +
                                   "': must be trace, debug, info, warn or error");
  }
  auto logger = spdlog::stderr_logger_mt("replsync");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %-5l %v");
  spdlog::set_level(lvl);
  spdlog::flush_on(spdlog::level::info);
  return Status::Ok();
}

}  // namespace replsync
