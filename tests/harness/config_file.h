// Writes a node configuration the way an operator must install one: mode 0600 (replsyncd and
// the replsync commands refuse a configuration that group or others may read).
#pragma once

#include <sys/stat.h>

#include <fstream>
#include <string>

namespace replsync::testing {

// Replaces `path` with `text`, mode 0600. Returns false when it could not be written.
inline bool WriteConfigFile(const std::string& path, const std::string& text) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.good()) return false;
  }
  return ::chmod(path.c_str(), 0600) == 0;
}

}  // namespace replsync::testing
