// DdlTarget: whether capture replicates a statement from a QUERY event, by the databases it
// touches (sync/mysql/statement_targets.h reads them from the SQL text).
//
// Capture replicates DDL by the databases it changes, not by the session's default database: a
// `CREATE TABLE smarten.t` run while `USE other` replicates when smarten does.
// Decision rule (Decide): replicate a statement when a database it touches is replicated; when it
// also touches databases that are not (or the analysis is incomplete) it is still replicated,
// with a warning, because the secondary must stay consistent for the replicated ones.
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>

#include "sync/database_filter.h"
#include "sync/mysql/statement_targets.h"

namespace replsync::capture {

enum class Decision : uint8_t {
  kReplicate,         // every database it touches is replicated
  kReplicatePartial,  // touches replicated and other (or unknown) databases: replicate, warn
  kSkip,              // touches only databases that are not replicated (or none)
  kSkipUncertain,     // touches no replicated database that the analysis found, but the
                      // analysis is incomplete: skip, warn
};

// The decision rule for DDL (and for statement-format DML, where anything but kSkip is an error).
Decision Decide(const StatementTargets& targets, const DatabaseFilter& filter);

}  // namespace replsync::capture
