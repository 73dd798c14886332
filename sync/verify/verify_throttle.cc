#include "sync/verify/verify_throttle.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>

namespace replsync::verify {
namespace {

uint64_t Number(const std::optional<std::string>& text) {
  uint64_t value = 0;
  if (text) std::from_chars(text->data(), text->data() + text->size(), value);
  return value;
}

}  // namespace

RunningThrottle::RunningThrottle(ThrottleOptions options, std::vector<ThrottledServer> servers,
                                 Clock& clock)
    : options_(options), servers_(std::move(servers)), clock_(clock) {}

Result<std::pair<std::string, uint64_t>> RunningThrottle::Busiest() {
  for (const ThrottledServer& server : servers_) {
    // Threads_running counts this session and replication's binlog dump threads (running while
    // they wait for the binlog to grow); neither is load to give way to. The dump threads are
    // counted only when the total is over the limit.
    RS_ASSIGN_OR_RETURN(auto rows,
                        server.session->Query("SHOW GLOBAL STATUS LIKE 'Threads_running'",
                                              "read Threads_running on the " + server.name));
    uint64_t running = rows.empty() || rows[0].size() < 2 ? 0 : Number(rows[0][1]);
    running = running > 0 ? running - 1 : 0;
    if (running > options_.max_running) {
      RS_ASSIGN_OR_RETURN(
          auto dumps, server.session->Query("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                                            "WHERE COMMAND LIKE 'Binlog Dump%'",
                                            "count the binlog dump threads on the " + server.name));
      uint64_t n = dumps.empty() || dumps[0].empty() ? 0 : Number(dumps[0][0]);
      running = running > n ? running - n : 0;
    }
    if (running > options_.max_running) return std::make_pair(server.name, running);
  }
  return std::make_pair(std::string(), uint64_t{0});
}

Status RunningThrottle::Wait(const std::string& table,
                             const std::function<void(const std::string& why)>& on_wait) {
  if (options_.max_running == 0) return Status::Ok();
  const auto start = clock_.Now();
  // The servers were not busy a moment ago: do not ask again before every small chunk.
  if (last_quiet_ && start - *last_quiet_ < options_.recheck) return Status::Ok();
  while (true) {
    RS_ASSIGN_OR_RETURN(auto busiest, Busiest());
    if (busiest.first.empty()) {
      last_quiet_ = clock_.Now();
      return Status::Ok();
    }
    last_quiet_.reset();
    const std::string why = fmt::format("{}: {} other queries running > {}", busiest.first,
                                        busiest.second, options_.max_running);
    auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - start);
    if (waited >= options_.max_wait) {
      std::fprintf(stderr,
                   "replsync: warning: %s: the servers stayed busy for %.1f s (%s); going on "
                   "anyway\n",
                   table.c_str(), waited.count() / 1000.0, why.c_str());
      return Status::Ok();
    }
    if (logged_table_ != table) {
      logged_table_ = table;
      std::fprintf(stderr, "replsync: %s: waiting while the servers are busy (%s)\n", table.c_str(),
                   why.c_str());
    }
    if (on_wait) on_wait(why);
    auto step = std::min(options_.step, options_.max_wait - waited);
    clock_.SleepFor(step);
    waited_ += step;
  }
}

}  // namespace replsync::verify
