#include "apply/bootstrap/resync_plan.h"

#include <algorithm>
#include <cctype>

namespace replsync::apply {

std::string NormalizeCreateTable(std::string_view create) {
  static constexpr std::string_view kOption = " AUTO_INCREMENT=";
  std::string out;
  out.reserve(create.size());
  size_t at = 0;
  while (at < create.size()) {
    const size_t found = create.find(kOption, at);
    if (found == std::string_view::npos) break;
    size_t end = found + kOption.size();
    size_t digits = end;
    while (digits < create.size() && std::isdigit(static_cast<unsigned char>(create[digits]))) {
      ++digits;
    }
    out.append(create.substr(at, found - at));
    if (digits == end) out.append(kOption);  // not the counter: kept
    at = digits;
  }
  out.append(create.substr(at));
  return out;
}

std::optional<std::string> DatabaseOfCreate(std::string_view create_database) {
  const size_t open = create_database.find('`');
  if (open == std::string_view::npos) return std::nullopt;
  std::string name;
  for (size_t i = open + 1; i < create_database.size(); ++i) {
    if (create_database[i] != '`') {
      name += create_database[i];
    } else if (i + 1 < create_database.size() && create_database[i + 1] == '`') {
      name += '`';
      ++i;
    } else {
      return name;
    }
  }
  return std::nullopt;
}

ResyncPlan PlanResync(const TableDefinitions& primary,
                      const std::vector<std::string>& primary_databases,
                      const TableDefinitions& secondary,
                      const std::vector<std::string>& secondary_databases) {
  ResyncPlan plan;
  for (const auto& [name, create] : primary) {
    auto there = secondary.find(name);
    if (there == secondary.end()) {
      plan.create.push_back(name);
    } else if (NormalizeCreateTable(there->second) != NormalizeCreateTable(create)) {
      plan.recreate.push_back(name);
    } else {
      plan.keep.push_back(name);
    }
  }
  for (const auto& [name, create] : secondary) {
    if (!primary.count(name)) plan.drop.push_back(name);
  }
  for (const std::string& db : secondary_databases) {
    if (std::find(primary_databases.begin(), primary_databases.end(), db) ==
        primary_databases.end()) {
      plan.drop_databases.push_back(db);
    }
  }
  std::sort(plan.drop_databases.begin(), plan.drop_databases.end());
  return plan;
}

}  // namespace replsync::apply
