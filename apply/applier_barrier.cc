// The applier's side of verify's barrier (schemas/verify.md): hold before a database transaction
// past a binlog position of the primary, or before a relay sequence, and say where it holds.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

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
  std::string where;
  switch (read->stop.kind) {
    case verify::StopBefore::Kind::kNow:
      b.now = true;
      where = "the next transaction";
      break;
    case verify::StopBefore::Kind::kAll:
      b.stop_seq = 1;  // before every entry from sequence 1 on: right where it is
      where = "the next entry";
      break;
    case verify::StopBefore::Kind::kSeq:
      b.stop_seq = read->stop.seq;
      where = fmt::format("relay entry {}", b.stop_seq);
      break;
    case verify::StopBefore::Kind::kPosition:
      b.stop = read->stop.position;
      where = b.stop.ToString();
      break;
  }
  spdlog::info("applier: verify's barrier {}: holding before {}", b.token, where);
  barrier_ = b;
}

bool Applier::BarrierHolds(const RelayItem& next) {
  if (options_.barrier_path.empty()) return false;
  RefreshBarrier();
  if (!barrier_) return false;
  if (barrier_->stop_seq != 0) return next.seq >= barrier_->stop_seq;
  if (next.is_file()) return false;  // file entries pass the others
  if (barrier_->now) return true;
  if (next.not_yet()) return false;
  return !(BinlogPosition{next.db().begin_file(), next.db().begin_offset()} < barrier_->stop);
}

void Applier::WaitAtBarrier() {
  if (!barrier_) return;
  SetState(ApplierState::kWaiting, "verify's barrier");
  verify::PausedAt paused;
  paused.token = barrier_->token;
  paused.stop = barrier_->at;
  paused.applied_seq = position_.seq;
  paused.source = position_.source.ToString();
  paused.gtid = position_.gtid;
  if (paused != paused_written_ && !options_.paused_path.empty()) {
    Status st = verify::WritePausedFile(options_.paused_path, paused);
    if (!st.ok()) {
      spdlog::warn("applier: {}", st.message());
    } else {
      paused_written_ = paused;
      spdlog::info("applier: holding at verify's barrier {} at seq {} (source {})", barrier_->token,
                   position_.seq, position_.source.ToString());
    }
  }
  SleepFor(std::chrono::milliseconds(5));
}

}  // namespace replsync::apply
