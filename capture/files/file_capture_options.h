// FileCaptureOptions: the settings of the file capture (FileCapture and its parts).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace replsync::capture {

struct FileCaptureOptions {
  std::string root;           // [repository] path
  std::string manifest_path;  // state_dir/manifest.db
  std::chrono::milliseconds quiet{200};
  std::chrono::milliseconds open_write_quiet{10000};
  std::chrono::milliseconds commit_interval{500};
  size_t part_bytes = 4 << 20;
  size_t read_block = 1 << 20;
  // Literal content of at least this many bytes in one op is journaled as a reference to the
  // file (FileContentReader fills it in when the entry is sent); smaller pieces are inline.
  size_t inline_bytes = 64 << 10;
};

}  // namespace replsync::capture
