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

#include "sync/mysql/mysql_session.h"
#include "sync/config.h"
#include "sync/status.h"
#include "sync/file_lock.h"
#include "sync/verify/table_verify.h"

namespace replsync::verify {

// Removes the barrier file on Lift() and on destruction, so the applier never stays held.
class VerifyBarrier {
 public:
  explicit VerifyBarrier(std::string path) : path_(std::move(path)) {}
  ~VerifyBarrier() { Lift(); }
  VerifyBarrier(const VerifyBarrier&) = delete;
  VerifyBarrier& operator=(const VerifyBarrier&) = delete;
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
// Writes verify's barrier in `state_dir` (token, stop_before `stop`: "now", "file:offset" or
// "seq:N", schemas/verify.md "Barrier") and waits up to `timeout_s` until the secondary's applier
// says it holds there; returns the values of its paused file (applied_seq, source, gtid).
// Aborted with the reason when the barrier cannot be written or the applier does not get there.
Result<std::map<std::string, std::string>> HoldApplier(const std::string& state_dir,
                                                       const std::string& token,
                                                       const std::string& stop, int timeout_s);

struct ConsistentPointOptions {
  // The command's name, for messages ("verify", "repair").
  std::string command = "verify";
  // The longest wait for the secondary's applier to reach the point.
  int barrier_timeout_s = 120;
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
  std::unique_ptr<VerifyBarrier> barrier;
};

// Establishes the point (schemas/verify.md) with the secondary's configuration `config`.
// Errors (the message says why, for "could not verify"): not a secondary's configuration, no
// [primary_mysql], replsyncd not running, a connection or a statement failing, the applier not
// reaching the barrier in time. The barrier is removed on every error.
Result<ConsistentPoint> EstablishConsistentPoint(const NodeConfig& config,
                                                 const ConsistentPointOptions& options);

}  // namespace replsync::verify
