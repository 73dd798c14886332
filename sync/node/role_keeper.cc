#include "sync/node/role_keeper.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace replsync {

RoleKeeper::RoleKeeper(std::string state_dir, std::string node_name, RoleState state)
    : state_dir_(std::move(state_dir)),
      node_name_(std::move(node_name)),
      state_(std::move(state)) {}

RoleState RoleKeeper::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

PeerClaim RoleKeeper::Claim() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {.node = node_name_,
          .epoch = state_.epoch,
          .primary_epoch = PrimaryEpoch(state_),
          .fork = state_.forks.empty() ? ForkPoint{} : state_.forks.back()};
}

void RoleKeeper::set_on_fence(std::function<void(const std::string& reason)> on_fence) {
  std::lock_guard<std::mutex> lock(mu_);
  on_fence_ = std::move(on_fence);
}

std::string RoleKeeper::Hear(const PeerClaim& peer) {
  std::function<void(const std::string&)> fence;
  std::string reason;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reason = FenceReason(state_, peer);
    const bool new_fork = peer.fork.epoch > state_.epoch &&
                          (state_.forks.empty() || state_.forks.back().epoch < peer.fork.epoch);
    if (new_fork) state_.forks.push_back(peer.fork);
    if (!reason.empty()) {
      state_.fenced = true;
      state_.fenced_by = reason;
      fence = on_fence_;
    } else if (state_.role == NodeRole::kSecondary && peer.epoch > state_.epoch) {
      spdlog::info("epoch {} learnt from node {} (this node knew {})", peer.epoch, peer.node,
                   state_.epoch);
      state_.epoch = peer.epoch;
    } else if (!new_fork) {
      return "";
    }
    if (Status st = SaveRoleState(state_dir_, state_); !st.ok()) {
      spdlog::error("the role state could not be saved ({}); this process goes on with it",
                    st.message());
    }
  }
  if (!reason.empty()) {
    spdlog::error("fencing this node: {}", reason);
    if (fence) fence(reason);
  }
  return reason;
}

Result<RoleState> RoleKeeper::Promote(ForkPoint fork, int64_t now_unix) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.role != NodeRole::kSecondary) {
    return Status::FailedPrecondition("this node is not a secondary (it is " +
                                      std::string(RoleName(state_.role)) + ")");
  }
  return BecomePrimary(std::move(fork), now_unix);
}

Result<RoleState> RoleKeeper::Reclaim(ForkPoint fork, int64_t now_unix) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.role != NodeRole::kPrimary || !state_.fenced || TakeoverFork(state_, node_name_)) {
    return Status::FailedPrecondition(
        "this node is not a primary fenced by another primary of its epoch");
  }
  fork.old_primary.clear();
  return BecomePrimary(std::move(fork), now_unix);
}

Result<RoleState> RoleKeeper::BecomePrimary(ForkPoint fork, int64_t now_unix) {
  RoleState next = state_;
  next.role = NodeRole::kPrimary;
  next.epoch = state_.epoch + 1;
  next.fenced = false;
  next.fenced_by.clear();
  fork.epoch = next.epoch;
  fork.promoted = node_name_;
  fork.at = now_unix;
  next.forks.push_back(std::move(fork));
  RS_RETURN_IF_ERROR(SaveRoleState(state_dir_, next));
  state_ = next;
  handover_.reset();
  return next;
}

Result<RoleState> RoleKeeper::Rejoin(const ForkPoint& fork) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.role != NodeRole::kPrimary || !state_.fenced) {
    return Status::FailedPrecondition("this node is not a fenced old primary");
  }
  RoleState next = state_;
  next.role = NodeRole::kSecondary;
  next.epoch = std::max(state_.epoch, fork.epoch);
  next.fenced = false;
  next.fenced_by.clear();
  RS_RETURN_IF_ERROR(SaveRoleState(state_dir_, next));
  state_ = next;
  return next;
}

void RoleKeeper::SetHandover(std::optional<Handover> handover) {
  std::lock_guard<std::mutex> lock(mu_);
  handover_ = std::move(handover);
}

std::optional<RoleKeeper::Handover> RoleKeeper::handover() const {
  std::lock_guard<std::mutex> lock(mu_);
  return handover_;
}

void RoleKeeper::HearHandover(const std::string& to, uint64_t seq) {
  std::function<void()> heard;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (to.empty() || to != node_name_ || state_.role != NodeRole::kSecondary) {
      handover_.reset();
    } else if (!handover_ || handover_->seq != seq) {
      spdlog::info("switchover: the primary hands over to this node at journal sequence {}", seq);
      handover_ = Handover{.to = to, .seq = seq};
      heard = on_handover_;
    }
  }
  if (heard) heard();
}

void RoleKeeper::set_on_handover(std::function<void()> on_handover) {
  std::lock_guard<std::mutex> lock(mu_);
  on_handover_ = std::move(on_handover);
}

}  // namespace replsync
