// The applier's side of verify's barrier (schemas/verify.md): hold before a database transaction
// past a binlog position of the primary, or before a relay sequence, and say where it holds.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <functional>
#include <map>
#include <optional>

#include "apply/applier.h"
#include "sync/key_value_file.h"
#include "sync/file_lock.h"

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
  const auto now = std::chrono::steady_clock::now();
  // Every 50 ms while there is no barrier; every 5 ms while one is held, so that verify's moves
  // of it are seen at once.
  if (now - barrier_checked_ < std::chrono::milliseconds(barrier_ ? 5 : 50)) return;
  barrier_checked_ = now;
  std::optional<std::map<std::string, std::string>> values;
  struct stat st;
  if (stat(options_.barrier_path.c_str(), &st) == 0) values = ReadKeyValueFile(options_.barrier_path);
  if (!values) {
    if (barrier_) spdlog::info("applier: verify's barrier lifted; applying on");
    barrier_.reset();
    barrier_seen_.clear();
    return;
  }
  // Compared by content: verify may rewrite the file twice within the file system's timestamp
  // granularity, so an unchanged mtime proves nothing.
  const std::string token = (*values)["token"];
  const std::string stop = (*values)["stop_before"];
  if (!options_.verify_lock_path.empty() && now - verify_probed_ >= kVerifyProbeInterval) {
    verify_probed_ = now;
    // The verify that wrote it died without removing it (kill -9): lift it, or the applier
    // would hold for good.
    const bool alive = VerifyAlive(options_.verify_lock_path, [&] {
      spdlog::warn(
          "applier: verify's barrier {} has no running verify (none holds {}); removing {} and "
          "applying on",
          token, options_.verify_lock_path, options_.barrier_path);
      ::unlink(options_.barrier_path.c_str());
    });
    if (!alive) {
      barrier_.reset();
      barrier_seen_.clear();
      return;
    }
  }
  const std::string seen = token + "\n" + stop;
  if (seen == barrier_seen_) return;
  barrier_seen_ = seen;
  Barrier b;
  b.token = token;
  b.stop_text = stop;
  if (stop == "now") {
    b.now = true;
  } else if (stop == "all") {
    b.stop_seq = 1;  // before every entry from sequence 1 on: right where it is
  } else if (stop.rfind("seq:", 0) == 0) {
    uint64_t n = 0;
    const char* first = stop.data() + 4;
    const char* last = stop.data() + stop.size();
    auto [end, ec] = std::from_chars(first, last, n);
    if (ec != std::errc() || end != last || n == 0) {
      spdlog::warn("applier: ignoring verify's barrier {}: bad stop_before '{}'",
                   options_.barrier_path, stop);
      barrier_.reset();
      return;
    }
    b.stop_seq = n;
  } else {
    auto parsed = BinlogPosition::Parse(stop);
    if (!parsed.ok()) {
      spdlog::warn("applier: ignoring verify's barrier {}: bad stop_before '{}'",
                   options_.barrier_path, stop);
      barrier_.reset();
      return;
    }
    b.stop = *parsed;
  }
  spdlog::info("applier: verify's barrier {}: holding before {}", token,
               b.now             ? std::string("the next transaction")
               : stop == "all"   ? std::string("the next entry")
               : b.stop_seq != 0 ? fmt::format("relay entry {}", b.stop_seq)
                                 : b.stop.ToString());
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
  const std::string content =
      fmt::format("token {}\nstop_before {}\napplied_seq {}\nsource {}\ngtid {}\n", barrier_->token,
                  barrier_->stop_text, position_.seq, position_.source.ToString(), position_.gtid);
  if (content != paused_written_ && !options_.paused_path.empty()) {
    Status st = WriteFileAtomically(options_.paused_path, content, "verify's paused file");
    if (!st.ok()) {
      spdlog::warn("applier: {}", st.message());
    } else {
      paused_written_ = content;
      spdlog::info("applier: holding at verify's barrier {} at seq {} (source {})", barrier_->token,
                   position_.seq, position_.source.ToString());
    }
  }
  SleepFor(std::chrono::milliseconds(5));
}

}  // namespace replsync::apply
