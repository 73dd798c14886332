// RoleKeeper: the running daemon's RoleState (sync/node/role_state.h), shared by the parts that
// learn of other nodes' epochs: the shipper (Hellos and probes from peers), PeerWatch (the
// answers to this primary's probes) and the receiver (the followed primary's Heartbeats).
//
// Hear() applies schemas/failover.md's rules: a secondary adopts a higher epoch; an unfenced
// primary that must fence itself (FenceReason) records it in role.json first and then calls the
// fence callback once (the daemon sets the database read-only and stops shipping). A state that
// cannot be saved is logged and kept in memory: the node still fences itself now.
// Thread-safety: thread-safe; the callback runs on the thread that called Hear, without the lock.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "sync/node/role_state.h"

namespace replsync {

class RoleKeeper {
 public:
  RoleKeeper(std::string state_dir, std::string node_name, RoleState state);

  RoleState state() const;
  // What this node says of itself in a Heartbeat.
  PeerClaim Claim() const;
  // Called once, when this node fences itself, with the reason.
  void set_on_fence(std::function<void(const std::string& reason)> on_fence);

  // What a peer said of itself. Returns the fence reason when this call fenced the node, "" when
  // nothing changed that way (a secondary may still have adopted a higher epoch). A fork point
  // the peer states at an epoch above this node's is recorded (an old primary learns there where
  // its unshipped tail begins).
  std::string Hear(const PeerClaim& peer);

  // Makes this secondary the primary at the next epoch, with `fork` (its epoch, promoted and at
  // set here) appended: saved before it counts. Returns the new state; FailedPrecondition for a
  // node that is not a secondary, the save's error (nothing changed) otherwise.
  Result<RoleState> Promote(ForkPoint fork, int64_t now_unix);
  // Two primaries at one epoch fenced each other: this one (fenced, with no node known to have
  // taken over from it) becomes the primary at the next epoch, unfenced, with `fork` (its own
  // journal and binlog end; old_primary "") appended: saved before it counts. The other then
  // learns the higher epoch and rejoins. FailedPrecondition for a node that is not such a
  // fenced primary, the save's error (nothing changed) otherwise.
  Result<RoleState> Reclaim(ForkPoint fork, int64_t now_unix);
  // Makes this fenced old primary a secondary of the node promoted after it, at that promotion's
  // epoch (or its own when higher), unfenced: saved before it counts. FailedPrecondition for a
  // node that is not a fenced primary, the save's error (nothing changed) otherwise.
  Result<RoleState> Rejoin(const ForkPoint& fork);

  // `replsync switchover` (schemas/failover.md): the primary asks secondary `to` to promote
  // itself once it has applied journal sequence `seq` (every Heartbeat says so while it is set).
  struct Handover {
    std::string to;
    uint64_t seq = 0;
    bool operator==(const Handover&) const = default;
  };
  void SetHandover(std::optional<Handover> handover);
  std::optional<Handover> handover() const;
  // A secondary hears its primary's Heartbeat: a handover to this node is kept, anything else
  // clears it.
  void HearHandover(const std::string& to, uint64_t seq);
  // Called (without the lock, on the hearing thread) when a handover to this node is first
  // heard: the daemon looks at once whether it can promote itself.
  void set_on_handover(std::function<void()> on_handover);

 private:
  // Promote and Reclaim, under mu_: primary at the next epoch, unfenced, `fork` appended (its
  // epoch, promoted and at set here), saved before it counts.
  Result<RoleState> BecomePrimary(ForkPoint fork, int64_t now_unix);

  const std::string state_dir_;
  const std::string node_name_;
  mutable std::mutex mu_;
  RoleState state_;                                   // guarded by mu_
  std::function<void(const std::string&)> on_fence_;  // guarded by mu_
  std::optional<Handover> handover_;                  // guarded by mu_
  std::function<void()> on_handover_;                 // guarded by mu_
};

}  // namespace replsync
