// The applier's holds: verify's barrier (schemas/verify.md) and the owner's hold (SetHold, the
// bootstrap's): hold before a database transaction past a binlog position of the primary, or
// before a relay sequence, and say where it holds.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <optional>
#include <string>

#include "apply/applier.h"
#include "sync/file_lock.h"
#include "sync/verify/barrier.h"

namespace replsync::apply {

namespace {

// How often a held barrier's verify is looked for (verify.lock).
constexpr std::chrono::milliseconds kVerifyProbeInterval{200};

// True when a verify holds `lock_path` (it does for its whole run, and the lock dies with it).
// When none does, calls `lift` while holding the lock itself, so that no new verify can write
// its barrier in between (verify writes its barrier only once it holds the lock, and waits a
// moment for a lock held this briefly).
bool VerifyAlive(const std::string& lock_path, const std::function<void()>& lift) {
  Result<FileLock> lock = FileLock::Acquire(lock_path, std::chrono::milliseconds(0));
  if (!lock.ok()) {
    if (lock.status().code() != Status::Code::kAborted) {
      spdlog::warn("applier: {}; verify's barrier stays", lock.status().message());
    }
    return true;
  }
  lift();
  return false;  // the lock goes with `lock`
}

}  // namespace

void Applier::RefreshBarrier() {
  const Clock::TimePoint now = options_.clock->Now();
  // Every 50 ms while there is no barrier; every 5 ms while one is held, so that verify's moves
  // of it are seen at once.
  if (now - barrier_checked_ < std::chrono::milliseconds(barrier_ ? 5 : 50)) return;
  barrier_checked_ = now;
  Result<verify::VerifyBarrier> read = verify::ReadBarrierFile(options_.barrier_path);
  if (!read.ok() && read.status().code() != Status::Code::kInvalidArgument) {
    // Gone (or unreadable): no barrier.
    if (barrier_) spdlog::info("applier: verify's barrier lifted; applying on");
    barrier_.reset();
    barrier_seen_.clear();
    return;
  }
  if (!options_.verify_lock_path.empty() && now - verify_probed_ >= kVerifyProbeInterval) {
    verify_probed_ = now;
    // The verify that wrote it died without removing it (kill -9): lift it, or the applier
    // would hold for good.
    const bool alive = VerifyAlive(options_.verify_lock_path, [&] {
      spdlog::warn(
          "applier: verify's barrier {} has no running verify (none holds {}); removing {} and "
          "applying on",
          read.ok() ? read->token : std::string(), options_.verify_lock_path,
          options_.barrier_path);
      ::unlink(options_.barrier_path.c_str());
    });
    if (!alive) {
      barrier_.reset();
      barrier_seen_.clear();
      return;
    }
  }
  // Compared by content: verify may rewrite the file twice within the file system's timestamp
  // granularity, so an unchanged mtime proves nothing. A malformed barrier is warned about once.
  const std::string seen =
      read.ok() ? read->token + "\n" + read->stop.ToString() : read.status().message();
  if (seen == barrier_seen_) return;
  barrier_seen_ = seen;
  if (!read.ok()) {
    spdlog::warn("applier: ignoring verify's barrier {}: {}", options_.barrier_path,
                 read.status().message());
    barrier_.reset();
    return;
  }
  Barrier b;
  b.token = read->token;
  b.at = read->stop;
  b.point = StopPoint::Of(read->stop);
  spdlog::info("applier: verify's barrier {}: holding before {}", b.token, Where(read->stop));
  barrier_ = b;
}

Applier::StopPoint Applier::StopPoint::Of(const verify::StopBefore& at) {
  StopPoint p;
  switch (at.kind) {
    case verify::StopBefore::Kind::kNow:
      p.now = true;
      break;
    case verify::StopBefore::Kind::kAll:
      p.stop_seq = 1;  // before every entry from sequence 1 on: right where it is
      break;
    case verify::StopBefore::Kind::kSeq:
      p.stop_seq = std::max<uint64_t>(at.seq, 1);
      break;
    case verify::StopBefore::Kind::kPosition:
      p.stop = at.position;
      break;
  }
  return p;
}

bool Applier::StopPoint::Holds(const RelayItem& next) const {
  if (stop_seq != 0) return next.seq >= stop_seq;
  if (next.is_file()) return false;  // file entries pass the others
  if (now) return true;
  if (next.not_yet()) return false;
  return !(BinlogPosition{next.db().begin_file(), next.db().begin_offset()} < stop);
}

bool Applier::BarrierHolds(const RelayItem& next) {
  if (options_.barrier_path.empty()) return false;
  RefreshBarrier();
  if (!barrier_) return false;
  return barrier_->point.Holds(next);
}

bool Applier::OwnHoldHolds(const RelayItem& next) {
  const uint64_t version = hold_version_.load();
  if (version != own_hold_version_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      own_hold_ = hold_;
      own_hold_version_ = hold_version_.load();
    }
    own_hold_point_.reset();
    if (own_hold_) {
      own_hold_point_ = StopPoint::Of(*own_hold_);
      spdlog::info("applier: holding before {} (the owner's hold)", Where(*own_hold_));
    } else {
      spdlog::info("applier: the owner's hold is lifted; applying on");
    }
  }
  if (!own_hold_point_) return false;
  if (own_hold_point_->Holds(next)) return true;
  // Idle past P: every transaction from now on begins at or after the last one's end.
  const StopPoint& p = *own_hold_point_;
  return next.not_yet() && p.stop_seq == 0 && !p.now && !position_.source.empty() &&
         !(position_.source < p.stop);
}

std::string Applier::Where(const verify::StopBefore& at) {
  switch (at.kind) {
    case verify::StopBefore::Kind::kNow:
      return "the next transaction";
    case verify::StopBefore::Kind::kAll:
      return "the next entry";
    case verify::StopBefore::Kind::kSeq:
      return fmt::format("relay entry {}", at.seq);
    case verify::StopBefore::Kind::kPosition:
      return "the first transaction at or after " + at.position.ToString();
  }
  return at.ToString();
}

void Applier::WaitHolding() {
  SetState(ApplierState::kWaiting, barrier_holding_ ? "verify's barrier" : "the owner's hold");
  verify::PausedAt paused;
  paused.applied_seq = position_.seq;
  paused.source = position_.source.ToString();
  paused.gtid = position_.gtid;
  if (barrier_holding_ && barrier_) {
    paused.token = barrier_->token;
    paused.stop = barrier_->at;
    if (paused != paused_written_ && !options_.paused_path.empty()) {
      Status st = verify::WritePausedFile(options_.paused_path, paused);
      if (!st.ok()) {
        spdlog::warn("applier: {}", st.message());
      } else {
        paused_written_ = paused;
        spdlog::info("applier: holding at verify's barrier {} at seq {} (source {})",
                     barrier_->token, position_.seq, position_.source.ToString());
      }
    }
  }
  const uint64_t version = own_hold_version_;
  if (own_hold_holding_ && own_hold_) {
    paused.token.clear();
    paused.stop = *own_hold_;
    bool changed = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (hold_version_.load() == version && (held_version_ != version || held_ != paused)) {
        held_ = paused;
        held_version_ = version;
        changed = true;
      }
    }
    held_published_ = true;
    if (changed) {
      progress_cv_.notify_all();
      spdlog::info("applier: holding at the owner's hold ({}) at seq {} (source {})",
                   own_hold_->ToString(), position_.seq, position_.source.ToString());
    }
  }
  // A barrier file is read again every 5 ms while it holds; the owner's hold wakes the applier
  // when it changes.
  const std::chrono::milliseconds wait =
      barrier_ ? std::chrono::milliseconds(5) : options_.idle_wait;
  std::unique_lock<std::mutex> lock(mu_);
  options_.clock->WaitFor(wake_cv_, lock, wait,
                          [&] { return stop_.load() || hold_version_.load() != version; });
}

void Applier::ClearHeld() {
  if (!held_published_) return;
  held_published_ = false;
  std::lock_guard<std::mutex> lock(mu_);
  held_.reset();
}

void Applier::SetHold(std::optional<verify::StopBefore> stop) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = std::move(stop);
    held_.reset();
    hold_version_.fetch_add(1);
    notified_ = true;  // ends a wait for the relay, so the next step sees the hold
  }
  wake_cv_.notify_all();
  progress_cv_.notify_all();
}

Result<verify::PausedAt> Applier::WaitHeld(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  if (!hold_) return Status::InvalidArgument("wait for the applier's hold: no hold is set");
  const uint64_t version = hold_version_.load();
  const std::string hold = hold_->ToString();
  auto held = [&] { return held_.has_value() && held_version_ == version; };
  progress_cv_.wait_for(lock, timeout, [&] {
    return held() || hold_version_.load() != version || status_.state == ApplierState::kError ||
           status_.state == ApplierState::kStopped;
  });
  if (held()) return *held_;
  if (hold_version_.load() != version) {
    return Status::Unavailable(
        fmt::format("wait for the applier's hold ({}): the hold was moved or lifted", hold));
  }
  if (status_.state == ApplierState::kError) {
    return Status::Aborted(
        fmt::format("wait for the applier's hold ({}): {}", hold,
                    stop_error_.ok() ? status_.last_error : stop_error_.message()));
  }
  if (status_.state == ApplierState::kStopped) {
    return Status::Aborted(
        fmt::format("wait for the applier's hold ({}): the applier is not running", hold));
  }
  return Status::Unavailable(fmt::format(
      "the applier did not reach its hold ({}) within {} ms: it is {} at seq {}{}", hold,
      timeout.count(), ApplierStateName(status_.state), status_.applied_seq,
      status_.waiting_for.empty() ? std::string() : ", waiting for " + status_.waiting_for));
}

}  // namespace replsync::apply
