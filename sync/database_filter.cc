#include "sync/database_filter.h"

#include <algorithm>

#include "sync/config.h"

namespace replsync {

DatabaseFilter::DatabaseFilter(std::vector<std::string> databases)
    : databases_(std::move(databases)) {
  std::sort(databases_.begin(), databases_.end());
  databases_.erase(std::unique(databases_.begin(), databases_.end()), databases_.end());
}

bool DatabaseFilter::Replicated(std::string_view db) const {
  if (db.empty()) return false;
  // Verify's marker (schemas/verify.md) travels with every configuration.
  if (db == kVerifySchema) return true;
  if (databases_.empty()) return !IsSystemSchema(db);
  return std::binary_search(databases_.begin(), databases_.end(), db);
}

std::string DatabaseFilter::Describe() const {
  if (databases_.empty()) return "all but the system schemas";
  std::string out;
  for (const std::string& db : databases_) {
    if (!out.empty()) out += ", ";
    out += db;
  }
  return out;
}

}  // namespace replsync
