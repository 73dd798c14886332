// Following a node promoted after this secondary's relay was filled (schemas/failover.md "Several
// secondaries"): the promoted node's journal continues the old primary's sequence after the fork
// (the last sequence it applied), so a secondary that holds exactly the entries up to the fork
// goes on from there. One that holds more has the old primary's entries the promoted node never
// received: those it has not applied are dropped; applied ones, or entries missing before the
// fork, leave its database where the promoted node's stream cannot continue it, and a bootstrap
// --resync brings it to the promoted node's state.
// Thread-safety: a stateless function.
#pragma once

#include <cstdint>
#include <string>

#include "sync/node/role_state.h"

namespace replsync::apply {

struct FollowPlan {
  enum class Action {
    kContinue,       // the relay ends at the fork: receive from the fork's next sequence
    kDropAfterFork,  // the relay holds unapplied entries after the fork: drop them, then continue
    kResync,         // the database is not at the fork: bootstrap --resync from the promoted node
  };
  Action action = Action::kContinue;
  uint64_t dropped = 0;  // kDropAfterFork: how many entries
  std::string why;       // what was found, for the log
};

// The plan for a secondary that applied up to `applied` and whose relay ends at `relay_last`,
// following the node promoted at `fork`.
FollowPlan PlanFollow(const ForkPoint& fork, uint64_t applied, uint64_t relay_last);

}  // namespace replsync::apply
