#include "sync/clock.h"

#include <vector>

namespace replsync {

void Clock::SleepFor(Duration d) {
  std::mutex m;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(m);
  WaitUntil(cv, lock, Now() + d, [] { return false; });
}

namespace {

class RealClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  int64_t UnixMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 TimePoint deadline, const std::function<bool()>& done) override {
    return cv.wait_until(lock, deadline, done);
  }
};

}  // namespace

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

ManualClock::ManualClock(int64_t unix_millis) : unix_millis_(unix_millis) {}

Clock::TimePoint ManualClock::Now() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return TimePoint() + std::chrono::hours(1) + elapsed_;
}

int64_t ManualClock::UnixMillis() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return unix_millis_;
}

bool ManualClock::WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                            TimePoint deadline, const std::function<bool()>& done) {
  std::list<Waiter>::iterator me;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    me = waiting_.insert(waiting_.end(), Waiter{&cv, lock.mutex()});
    ++waits_begun_;
    waiters_changed_.notify_all();
  }
  // Advance() takes the caller's mutex before notifying, so a wake-up cannot fall between the
  // check below and the wait.
  while (!done() && Now() < deadline) cv.wait(lock);
  // Leave only when no Advance() still holds a pointer to cv (it may belong to a caller's
  // stack frame); the caller's mutex is released meanwhile so that Advance can take it.
  lock.unlock();
  {
    std::unique_lock<std::mutex> guard(mutex_);
    waiters_changed_.wait(guard, [&] { return me->pins == 0; });
    waiting_.erase(me);
    waiters_changed_.notify_all();
  }
  lock.lock();
  return done();
}

void ManualClock::Advance(Duration d) {
  std::vector<Waiter*> wake;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    elapsed_ += d;
    unix_millis_ += std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    for (Waiter& w : waiting_) {
      ++w.pins;
      wake.push_back(&w);
    }
  }
  // A waiter re-reads Now() with its own mutex held, so taking that mutex here orders this
  // notification after its check or before its wait.
  for (Waiter* w : wake) {
    {
      std::lock_guard<std::mutex> guard(*w->mutex);
      w->cv->notify_all();
    }
    std::lock_guard<std::mutex> guard(mutex_);
    --w->pins;
    waiters_changed_.notify_all();
  }
}

void ManualClock::WaitForWaiters(int n) {
  std::unique_lock<std::mutex> lock(mutex_);
  waiters_changed_.wait(lock, [&] { return static_cast<int>(waiting_.size()) >= n; });
}

uint64_t ManualClock::waits_begun() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return waits_begun_;
}

void ManualClock::WaitForWaitsBegun(uint64_t n) {
  std::unique_lock<std::mutex> lock(mutex_);
  waiters_changed_.wait(lock, [&] { return waits_begun_ >= n; });
}

int ManualClock::waiters() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return static_cast<int>(waiting_.size());
}

}  // namespace replsync
