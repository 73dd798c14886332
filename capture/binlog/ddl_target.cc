#include "capture/binlog/ddl_target.h"

#include <string>

namespace replsync::capture {

Decision Decide(const StatementTargets& targets, const DatabaseFilter& filter) {
  bool any_replicated = false;
  bool any_other = false;
  for (const std::string& db : targets.databases) {
    if (filter.Replicated(db)) {
      any_replicated = true;
    } else {
      any_other = true;
    }
  }
  if (any_replicated) {
    return any_other || !targets.complete ? Decision::kReplicatePartial : Decision::kReplicate;
  }
  return targets.complete ? Decision::kSkip : Decision::kSkipUncertain;
}

}  // namespace replsync::capture
