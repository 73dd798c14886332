// ReadOnlyKeeper: keeps a node's own database server `read_only=ON` (schemas/failover.md): a
// fenced old primary's, so that the application's writes are refused there, and a secondary's,
// so that only replsync's applier writes it. On a thread of its own it connects (again, after
// the server was away), sets the variable when it is off, and looks again every `interval`: an
// operator or a restarted server that turned it off is corrected and logged.
//
// `need_bypass` (a secondary): replsync's own account writes the database while it is read-only
// only with the READ_ONLY ADMIN (or SUPER) privilege; without it the keeper leaves the variable
// alone (setting it would stop the applier) and reports what to grant instead.
//
// Thread-safety: Start/Stop from the owner's thread; problem() and read_only() from any.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "sync/mysql/mysql_session.h"

namespace replsync {

class ReadOnlyKeeper {
 public:
  struct Options {
    MysqlOptions mysql;
    std::string who;  // names the node's part in log lines ("primary: fenced", "secondary")
    bool need_bypass = false;
    std::chrono::milliseconds interval{2000};
    // A serving primary's: only looks (read_only() says what it saw), never sets anything.
    bool observe_only = false;
  };
  explicit ReadOnlyKeeper(Options options);
  ~ReadOnlyKeeper();  // stops
  void Start();
  void Stop();
  // Whether the server was read-only when last looked at.
  bool read_only() const;
  // Why it is not (kept) read-only, with what to do; "" when it is.
  std::string problem() const;

 private:
  void Run();
  // One look: connects when needed, checks the privilege (need_bypass), sets read_only (unless
  // observe_only). Returns whether the server is read-only now.
  Result<bool> Look(std::unique_ptr<MysqlSession>& session);

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                          // guarded by mu_
  bool read_only_ = false;                     // guarded by mu_
  std::string problem_ = "not looked at yet";  // guarded by mu_
  std::thread thread_;
};

}  // namespace replsync
