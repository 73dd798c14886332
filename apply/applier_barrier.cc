// The applier's side of verify's barrier (schemas/verify.md): hold before the first database
// transaction past a given primary binlog position, and say where it holds.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "apply/applier.h"
#include "sync/key_value_file.h"

namespace replsync::apply {

bool Applier::BarrierHolds(const std::optional<BinlogPosition>& begin) {
  if (options_.barrier_path.empty()) return false;
  const auto now = std::chrono::steady_clock::now();
  if (now - barrier_checked_ >= std::chrono::milliseconds(50)) {
    barrier_checked_ = now;
    struct stat st;
    if (stat(options_.barrier_path.c_str(), &st) != 0) {
      if (barrier_) spdlog::info("applier: verify's barrier lifted; applying on");
      barrier_.reset();
      barrier_mtime_ns_ = -1;
    } else {
      const int64_t mtime = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
      if (mtime != barrier_mtime_ns_) {
        if (auto values = ReadKeyValueFile(options_.barrier_path)) {
          const std::string token = (*values)["token"];
          const std::string stop = (*values)["stop_before"];
          barrier_mtime_ns_ = mtime;
          Barrier b;
          b.token = token;
          if (stop == "now") {
            b.now = true;
          } else {
            auto parsed = BinlogPosition::Parse(stop);
            if (!parsed.ok()) {
              spdlog::warn("applier: ignoring verify's barrier {}: bad stop_before '{}'",
                           options_.barrier_path, stop);
              barrier_.reset();
              return false;
            }
            b.stop = *parsed;
          }
          spdlog::info("applier: verify's barrier {}: holding before {}", token,
                       b.now ? std::string("the next transaction") : b.stop.ToString());
          barrier_ = b;
        }
      }
    }
  }
  if (!barrier_) return false;
  if (barrier_->now) return true;
  return begin.has_value() && !(*begin < barrier_->stop);
}

void Applier::WaitAtBarrier() {
  if (!barrier_) return;
  SetState(ApplierState::kWaiting, "verify's barrier");
  const std::string content =
      fmt::format("token {}\nstop_before {}\napplied_seq {}\nsource {}\ngtid {}\n", barrier_->token,
                  barrier_->now ? std::string("now") : barrier_->stop.ToString(), position_.seq,
                  position_.source.ToString(), position_.gtid);
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
  SleepFor(std::chrono::milliseconds(20));
}

}  // namespace replsync::apply
