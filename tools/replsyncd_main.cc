// replsyncd: the replication service. Thin: loads the configuration and runs the node.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "tools/cli/service.h"

int main(int argc, char** argv) {
  CLI::App app{
      "replsyncd: the replsync service. Runs one node (primary or secondary, from [node] role)\n"
      "in the foreground; SIGTERM or SIGINT stops it cleanly."};
  app.set_version_flag("--version", std::string("replsyncd ") + REPLSYNC_VERSION);
  std::string config;
  app.add_option("--config", config, "Node configuration file (TOML)")->required();
  CLI11_PARSE(app, argc, argv);
  return replsync::cli::RunService(config);
}
