// `replsync binlog dump`: decoded binlog events as JSON lines or readable text.
//
// What `mysqlbinlog -v` is for: from binlog files, or from a live server named by a node's
// configuration file. With --json, one object per row change and per DDL statement (format in
// schemas/binlog_dump.md); without it a readable text form.
// Thread-safety: not thread-safe.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "sync/status.h"

namespace replsync::cli {

struct DumpOptions {
  std::vector<std::string> files;  // --file PATH...
  std::string config;              // --config FILE (live server from [mysql])
  std::string from;                // --from FILE:POS
  std::string gtid;                // --gtid GTID (MariaDB)
  bool follow = false;             // --follow: wait for new events
  bool json = false;               // --json
  bool decode_only = false;        // --decode-only: decode every row, print only a summary
};

// Runs the dump, writing to `out`. Returns OK at the end of the input (or when stopped with
// SIGINT/SIGTERM while following); errors name the file or server and the position.
Status RunBinlogDump(const DumpOptions& options, std::FILE* out);

}  // namespace replsync::cli
