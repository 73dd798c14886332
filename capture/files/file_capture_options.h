// FileCaptureOptions: the settings of the file capture (FileCapture and its parts).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
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
  // A node just promoted (its repository holds what its followers hold: it applied the same
  // entries): when the manifest is empty at Start, the first scan records every path whose
  // ctime is before this time (ns since the epoch) in the manifest without journaling it; a path
  // changed since is journaled as usual, and one changed after the scan read it has its event.
  // 0: nothing is adopted.
  int64_t adopt_changed_before_ns = 0;
};

}  // namespace replsync::capture
