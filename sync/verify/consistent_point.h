// EstablishConsistentPoint: the consistent point shared by `replsync verify` and `replsync
// repair` (schemas/verify.md, "The point"): the secondary's applier held at verify's barrier,
// a snapshot on the primary at its binlog position P, the applier applying exactly what comes
// before P, and a snapshot on the secondary there.
//
// Thread-safety: the functions here are not thread-safe with respect to the sessions they return;
// one thread uses a ConsistentPoint.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sync/clock.h"
#include "sync/config.h"
#include "sync/file_lock.h"
#include "sync/mysql/mysql_session.h"
#include "sync/status.h"
#include "sync/verify/barrier.h"
#include "sync/verify/table_verify.h"

namespace replsync::verify {

// Owns verify's barrier file (barrier.h) for one verify or repair: Move() writes it, Lift() and
// the destructor remove it, so that the applier never stays held by a run that has ended.
// Thread-safety: not thread-safe; one thread moves and lifts a barrier.
class BarrierGuard {
 public:
  explicit BarrierGuard(const std::string& state_dir);
  ~BarrierGuard() { Lift(); }
  BarrierGuard(const BarrierGuard&) = delete;
  BarrierGuard& operator=(const BarrierGuard&) = delete;

  // Writes the barrier (token, `stop`, this process' pid). Errors: WriteBarrierFile's.
  Status Move(const std::string& token, const StopBefore& stop);
  // Removes the file (a file already gone is fine); the applier goes on.
  void Lift();

 private:
  std::string path_;
};

// Takes state_dir/verify.lock (flock, released when the process ends however it ends), so that one
// verify or repair at a time holds this node's applier. Aborted naming the process that holds it
// ("another replsync verify or repair (pid N) is running on this node"), or IoError.
Result<FileLock> LockVerify(const std::string& state_dir);

// A fresh token for verify's barrier file.
std::string NewBarrierToken();

struct HoldOptions {
  // The longest wait for the applier to say it holds.
  int timeout_s = 120;
  // Deadlines and the polling of the paused file (every 2 ms) go by this clock.
  Clock* clock = &SystemClock();
};

// Writes verify's barrier in `state_dir` (token, `stop`, schemas/verify.md "Barrier files") and
// waits until the secondary's applier says, in its paused file, that it holds there; returns
// what the paused file says. Errors: the barrier's write error; Aborted with the reason when the
// applier does not get there within options.timeout_s.
Result<PausedAt> HoldApplier(const std::string& state_dir, const std::string& token,
                             const StopBefore& stop, const HoldOptions& options = {});

struct ConsistentPointOptions {
  // The command's name, for messages ("verify", "repair").
  std::string command = "verify";
  // The longest wait for the secondary's applier to reach the point.
  int barrier_timeout_s = 120;
  // The clock of that wait.
  Clock* clock = &SystemClock();
  // False: the barrier is lifted as soon as the secondary's snapshot is open (verify). True: the
  // applier stays held at the point until ConsistentPoint::barrier is lifted or destroyed (repair,
  // which writes on the secondary at exactly the point).
  bool hold_barrier = false;
};

struct ConsistentPoint {
  // Both sessions are inside `START TRANSACTION WITH CONSISTENT SNAPSHOT` at the same logical
  // point, with time_zone '+00:00' and REPEATABLE READ.
  std::unique_ptr<MysqlSession> primary;
  std::unique_ptr<MysqlSession> secondary;
  // How the secondary's database is reached (for further sessions).
  MysqlOptions secondary_options;
  // The primary's binlog position P, "file:offset".
  std::string position;
  // Every replicated base table on either server, (schema, table), sorted.
  std::vector<std::pair<std::string, std::string>> tables;
  // With hold_barrier: the barrier, still holding the applier at P. Null otherwise.
  std::unique_ptr<BarrierGuard> barrier;
};

// Establishes the point (schemas/verify.md) with the secondary's configuration `config`.
// Errors (the message says why, for "could not verify"): not a secondary's configuration, no
// [primary_mysql], replsyncd not running, a connection or a statement failing, the applier not
// reaching the barrier in time. The barrier is removed on every error.
Result<ConsistentPoint> EstablishConsistentPoint(const NodeConfig& config,
                                                 const ConsistentPointOptions& options);

}  // namespace replsync::verify
