// RoleState: a node's role and the group's epoch as this node knows them, and the one place that
// knows the layout of <state_dir>/role.json (schemas/failover.md, format 1).
//
// The TOML `[node] role` is the role at a node's first start only: LoadRoleState writes it there
// with epoch 1 when the file does not exist, and from then on the file decides. Every promotion
// raises the epoch by one and appends the fork point (where the promoted node's data left the
// old primary's); a node that learns of a higher epoch than its own while it is primary is
// fenced (its database read-only, its health not-primary, it ships nothing) until an operator
// rejoins it as a secondary.
// Thread-safety: a value type and stateless functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sync/config.h"
#include "sync/status.h"

namespace replsync {

// Where a promoted node's data left its old primary's: what it had applied when it was promoted.
struct ForkPoint {
  uint64_t epoch = 0;    // the epoch the promotion began
  std::string promoted;  // the node promoted ([node] name)
  // The node it followed; "" when it was a fenced primary itself, promoted over another primary
  // of the same epoch (the positions below are then its own journal's and binlog's end).
  std::string old_primary;
  uint64_t journal_seq = 0;  // the last journal sequence it applied
  std::string gtid;          // the old primary's GTID of that transaction ("" when none)
  std::string binlog_file;   // the old primary's binlog position after it
  uint64_t binlog_offset = 0;
  std::string manifest;  // the file manifest's root hash (hex) at the fork; "" when none
  int64_t at = 0;        // seconds since the epoch
  // A promotion with --force while the old primary was known to hold more: the journal
  // sequences it had that this node never received ("" when nothing was known lost).
  std::string lost;
  bool operator==(const ForkPoint&) const = default;
};

struct RoleState {
  static constexpr uint32_t kVersion = 1;
  NodeRole role = NodeRole::kSecondary;
  uint64_t epoch = 1;
  // Fenced: this node was primary and learnt of a higher epoch (fenced_by names where from).
  bool fenced = false;
  std::string fenced_by;
  std::vector<ForkPoint> forks;  // oldest first

  std::string ToJson() const;
  // The inverse of ToJson. InvalidArgument naming what is wrong (unknown version or role, a
  // missing or mistyped field).
  static Result<RoleState> Parse(std::string_view json);
  bool operator==(const RoleState&) const = default;
};

// What a peer says of itself (a Heartbeat's epoch, node, primary_epoch).
struct PeerClaim {
  std::string node;
  uint64_t epoch = 0;
  uint64_t primary_epoch = 0;  // the epoch at which it was last primary; 0: never
  ForkPoint fork;              // its latest fork point (epoch 0: none)
};

// The epoch at which `state` says this node is primary (fenced or not); 0 for a secondary.
uint64_t PrimaryEpoch(const RoleState& state);

// Why an unfenced primary `self` must fence itself on hearing `peer`, or "" when it need not:
// the peer knows a higher epoch (another node was promoted after this one), or the peer was
// primary at this node's epoch too (two nodes believed themselves primary: both fence, and an
// operator promotes one, which raises the epoch).
std::string FenceReason(const RoleState& self, const PeerClaim& peer);

// The fork at which another node took over from `self` (the latest after this node's own last
// promotion; nullopt when none is known): where a fenced old primary's unshipped tail begins. A
// fork without `old_primary` (a node promoted over two primaries of one epoch, ForkPoint) takes
// over from every node: its journal and binlog positions are the promoted node's own.
std::optional<ForkPoint> TakeoverFork(const RoleState& state, const std::string& self);

// The node a secondary follows by its state: the node of the latest promotion when that was not
// `self`; "" when no promotion is known (the secondary follows its [transport] primary).
std::string FollowedNode(const RoleState& state, const std::string& self);

// `config` as `state` makes it: [node] role the state's, and for a secondary that knows of a
// promotion, [transport] primary the promoted node's [peers] endpoint. FailedPrecondition when
// that node has no [peers] table (saying what to add).
Status ApplyRoleState(const RoleState& state, NodeConfig* config);

// The configuration at `path` as the commands that act on a node's role use it: with the node's
// role state applied (ReadRoleState, ApplyRoleState) once its daemon has run. NodeConfig::Load's
// errors, the state's.
Result<NodeConfig> LoadNodeConfig(const std::string& path);

std::string RoleStatePath(const std::string& state_dir);  // role.json

// The state the node's replsyncd keeps, read only: NotFound when there is none (the daemon never
// ran with this state_dir), IoError naming the path, Parse's errors (with the path).
Result<RoleState> ReadRoleState(const std::string& state_dir);
// The node's state for its daemon; at its first start (no file) the TOML role with epoch 1,
// written first.
// IoError names the path; Parse's errors (a damaged file is never replaced silently).
Result<RoleState> LoadRoleState(const NodeConfig& config);
// Replaces the file atomically (mode 0600). IoError names the path.
Status SaveRoleState(const std::string& state_dir, const RoleState& state);

}  // namespace replsync
