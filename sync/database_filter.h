// DatabaseFilter: which databases a node replicates ([mysql] databases; empty = every database
// but the system schemas (mysql, information_schema, performance_schema, sys) and replsync's
// own; verify's marker schema always). Names compare exactly (byte for byte), as the server
// stores them. The primary's capture chooses what to journal with it, the secondary's applier
// what it accepts.
// Thread-safety: immutable after construction.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace replsync {

class DatabaseFilter {
 public:
  DatabaseFilter() = default;
  explicit DatabaseFilter(std::vector<std::string> databases);
  bool Replicated(std::string_view db) const;
  // "all but the system schemas" or "smarten, other", for messages.
  std::string Describe() const;

 private:
  std::vector<std::string> databases_;  // sorted, unique; empty = all but the system schemas
};

}  // namespace replsync
