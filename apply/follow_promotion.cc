#include "apply/follow_promotion.h"

#include <fmt/format.h>

#include <algorithm>

namespace replsync::apply {

FollowPlan PlanFollow(const ForkPoint& fork, uint64_t applied, uint64_t relay_last) {
  const uint64_t at = fork.journal_seq;
  const uint64_t received = std::max(applied, relay_last);
  FollowPlan plan;
  if (applied > at) {
    plan.action = FollowPlan::Action::kResync;
    plan.why = fmt::format(
        "this node applied sequences {}..{} of {}, which {} never received when it was promoted "
        "at epoch {} (at sequence {}{})",
        at + 1, applied, fork.old_primary, fork.promoted, fork.epoch, at,
        fork.lost.empty() ? "" : "; it recorded " + fork.lost + " as lost");
  } else if (received < at) {
    plan.action = FollowPlan::Action::kResync;
    plan.why = fmt::format(
        "this node received up to sequence {} of {}, and {} was promoted at epoch {} having "
        "applied up to {}: its journal continues at {}, so sequences {}..{} cannot come from it",
        received, fork.old_primary, fork.promoted, fork.epoch, at, at + 1, received + 1, at);
  } else if (relay_last > at) {
    plan.action = FollowPlan::Action::kDropAfterFork;
    plan.dropped = relay_last - at;
    plan.why = fmt::format(
        "this node received sequences {}..{} of {} (not applied), which {} never received when "
        "it was promoted at epoch {}: they are dropped{}",
        at + 1, relay_last, fork.old_primary, fork.promoted, fork.epoch,
        fork.lost.empty() ? "" : " (" + fork.promoted + " recorded " + fork.lost + " as lost)");
  } else {
    plan.why = fmt::format("this node holds everything up to sequence {}, where {} took over", at,
                           fork.promoted);
  }
  return plan;
}

}  // namespace replsync::apply
