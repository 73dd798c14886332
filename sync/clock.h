// Clock: the time source of every component that waits, retries or timestamps, injected through
// constructors (STYLE.md 6) so that unit tests drive time by hand instead of sleeping.
//
// Two implementations:
// - SystemClock(): the real clocks (steady for deadlines, system for wall-clock stamps).
// - ManualClock: time moves only when a test calls Advance(); a thread waiting on the clock
//   wakes when its deadline is reached, when its condition variable is notified, or when its
//   predicate becomes true. WaitForWaiters(n) lets a test know that n threads are blocked in
//   WaitUntil before it advances time, so an interleaving is injected, not hoped for.
//
// Thread-safety: both implementations are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>

namespace replsync {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;

  virtual ~Clock() = default;

  // Monotonic time, for deadlines and intervals.
  virtual TimePoint Now() const = 0;
  // Wall-clock time in milliseconds since the Unix epoch, for stamps written to files and peers.
  virtual int64_t UnixMillis() const = 0;

  // Waits on `cv` (with `lock` held, as std::condition_variable::wait) until `done()` is true or
  // Now() reaches `deadline`. Returns done() as last evaluated. Spurious wake-ups are absorbed.
  virtual bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         TimePoint deadline, const std::function<bool()>& done) = 0;

  bool WaitFor(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, Duration timeout,
               const std::function<bool()>& done) {
    return WaitUntil(cv, lock, Now() + timeout, done);
  }

  // Blocks the calling thread for `d` of this clock's time (no condition to wake it early).
  void SleepFor(Duration d);
};

// The process-wide real clock.
Clock& SystemClock();

class ManualClock : public Clock {
 public:
  // Starts at an arbitrary steady time point and at `unix_millis` on the wall clock.
  explicit ManualClock(int64_t unix_millis = 1'700'000'000'000);

  TimePoint Now() const override;
  int64_t UnixMillis() const override;
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 TimePoint deadline, const std::function<bool()>& done) override;

  // Moves both clocks forward by `d` and wakes every waiter so it re-checks its deadline.
  void Advance(Duration d);
  // Blocks until at least `n` threads are waiting in WaitUntil (or SleepFor).
  void WaitForWaiters(int n);
  int waiters() const;
  // How many waits have begun since construction, and a wait until that count reaches `n`.
  // Stepping a thread exactly: n = waits_begun(); Advance(d); WaitForWaitsBegun(n + 1) returns
  // once the woken thread has done its work and waits again (a waiter that has not yet left
  // its old wait still counts in waiters(), so WaitForWaiters cannot tell the two apart).
  uint64_t waits_begun() const;
  void WaitForWaitsBegun(uint64_t n);

 private:
  struct Waiter {
    std::condition_variable* cv;
    std::mutex* mutex;
    int pins = 0;  // Advance() calls in progress that will still notify cv
  };

  mutable std::mutex mutex_;
  std::condition_variable waiters_changed_;  // guarded by mutex_
  Duration elapsed_{0};                      // guarded by mutex_
  int64_t unix_millis_;                      // guarded by mutex_
  std::list<Waiter> waiting_;                // guarded by mutex_
  uint64_t waits_begun_ = 0;                 // guarded by mutex_
};

}  // namespace replsync
