// Bootstrapper: the secondary's side of a bootstrap (schemas/bootstrap.md), run inside its
// replsyncd. It takes the requests of `replsync bootstrap` (state_dir/bootstrap.request), or
// starts by itself for a fresh secondary with `[node] bootstrap = "auto"`, and carries a
// bootstrap through its phases, each recorded in the secondary's own database
// (replsync.bootstrap, replsync.bootstrap_tables) so that a restart of either daemon or either
// server continues where it stood:
//
//   starting  round 0 on the primary (its point P_0, the definitions, the stream's start S_0);
//             the node's applier and receiver stopped while the databases and tables are
//             created and replsync.applied is set to S_0 - 1 at P_0
//   copying   rounds: the applier held at each round's point P_r while `readers` threads read
//             chunks (BootstrapClient) and load them (ChunkLoader), a table only once the tables
//             it references are complete, a reference cycle within one round; between rounds
//             the applier applies the stream in the lenient window (IDEMPOTENT, object DDL
//             skipped)
//   objects   views, routines, triggers, events and users at a point F the applier holds at;
//             then strict applying from F
//   files     the repository made equal (verify's and repair's file part)
//   done
//
// Its progress is the "bootstrap" object of the secondary's status (status()).
// Thread-safety: Start/Stop from the owner; status() from any thread. Its own thread (and the
// reader threads of a round) do the work.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "apply/bootstrap/chunk_loader.h"
#include "sync/bootstrap/bootstrap_client.h"
#include "sync/clock.h"
#include "sync/config.h"
#include "sync/mysql/mysql_session.h"
#include "sync/node/node_status.h"
#include "sync/status.h"
#include "sync/verify/barrier.h"

namespace replsync::apply {

struct BootstrapperOptions {
  NodeConfig config;  // the secondary's ([mysql], [bootstrap], [node], [repository])
  std::string channel = "default";
  // A client of the primary's bootstrap service (one per thread that talks to it).
  std::function<Result<std::unique_ptr<BootstrapClient>>()> connect;
  // The node's stream: what the bootstrapper needs of its receiver and applier.
  struct Stream {
    std::function<void()> stop;     // the receiver, then the applier
    std::function<Status()> start;  // the applier, then the receiver
    std::function<void(std::optional<verify::StopBefore>)> set_hold;
    std::function<Result<verify::PausedAt>(std::chrono::milliseconds)> wait_held;
    // The lenient window: slave_exec_mode IDEMPOTENT and object DDL skipped (true), or strict.
    std::function<void(bool)> set_lenient;
    // True once the node holds (or held) entries from its primary: its relay was written or it
    // applied something. Files in the repository then may be the stream's, not an operator's.
    std::function<bool()> received_anything;
    // Tables entering the set (Applier::Entering), and the ones copied (ForgetEntering).
    std::function<std::vector<std::pair<std::string, std::string>>()> entering;
    std::function<void(const std::vector<std::pair<std::string, std::string>>&)> forget_entering;
  } stream;
  // The repository made equal to the primary's; reports (done, total) paths. Unset: no
  // [repository] path, the files phase is skipped.
  std::function<Status(const std::function<void(uint64_t, uint64_t)>& progress)> copy_files;
  Clock* clock = &SystemClock();
  // How often the request file is looked for while idle.
  std::chrono::milliseconds poll{200};
  // Test hook (replsyncd: REPLSYNC_TEST_BOOTSTRAP_PAUSE_FILE): at the start of the objects and
  // the files phase (each recorded already), and before each round of the copying phase after
  // the first, the bootstrapper waits while this file holds the phase's name, and its status'
  // error says so. "": never.
  std::string pause_file;
  // Backoff after a retryable failure (the primary or a server away).
  std::chrono::milliseconds retry_min{500};
  std::chrono::milliseconds retry_max{10000};
};

class Bootstrapper {
 public:
  explicit Bootstrapper(BootstrapperOptions options);
  ~Bootstrapper();  // stops
  Bootstrapper(const Bootstrapper&) = delete;
  Bootstrapper& operator=(const Bootstrapper&) = delete;

  // Before the node starts its applier: a bootstrap in progress (or, with "auto", a fresh
  // secondary) must not let the applier run strictly or freely. Reads the bootstrap row once
  // and sets the stream's lenient mode and hold accordingly. A database that cannot be reached
  // is not an error here (the thread decides once it can).
  void Prepare();
  // Starts the thread. InvalidArgument when already started.
  Status Start();
  void Stop();

  // The latest bootstrap (nullopt when none was asked for since the daemon started and none is
  // recorded).
  std::optional<NodeStatus::Bootstrap> status() const;

 private:
  struct TableWork;  // bootstrapper.cc
  // Resync: a table as the secondary holds it at a round's point (its stored columns and
  // usable key), what its chunks' summaries are computed over.
  struct ResyncSide {
    std::vector<bootstrap::Column> columns;
    std::vector<std::string> key_columns;
    std::string key_name;
    bool empty = false;  // no row (or no table): nothing to compare, its chunks are copied
  };
  void Run();
  // One pass of the idle loop: continue a recorded bootstrap, take a request, or start by
  // itself. Errors end the bootstrap (exit code 2) unless retryable.
  Status Step();
  Status Begin(const std::string& token, bool force, bool resync);
  Status Continue(const std::string& token);
  // The rows, round after round, until every table is complete.
  Status CopyRows();
  // Builds the deferred indexes no table's copy built (DeferredIndexes).
  Status BuildDeferredIndexes();
  // Holds the applier right before journal sequence `journal_seq` (a round's point) and waits
  // until it holds there; an applier found past it is an error (Internal).
  Status HoldAt(uint64_t journal_seq);
  // Tables entering the set while the node follows the stream: copied whole in one round with
  // the applier held at its point (schemas/bootstrap.md "Tables entering and leaving the set").
  Status CopyEntering(const std::vector<std::pair<std::string, std::string>>& tables);
  // One round: `readers` threads take eligible tables and copy chunks until the round's time is
  // up (a reference cycle goes whole). Returns the first error that is not a table changed under
  // the snapshot.
  Status CopyRound(const BootstrapClient::Round& round, std::vector<TableWork>* work,
                   uint64_t chunk_bytes, std::chrono::steady_clock::time_point began);
  Status CopyTable(BootstrapClient& client, ChunkLoader& loader,
                   const BootstrapClient::Round& round, uint32_t reader, TableWork* work,
                   uint64_t chunk_bytes, std::chrono::steady_clock::time_point deadline);
  // Resync, round 0: the secondary's tables held against the primary's definitions
  // (apply/bootstrap/resync_plan.h): those the primary lacks dropped, those that differ dropped
  // (and then created and copied whole like the missing ones), every drop logged.
  Status ResyncDefinitions(SqlSession& db, const BootstrapClient::Round& r0);
  static Result<ResyncSide> ReadResyncSide(SqlSession& session, const std::string& db,
                                           const std::string& table);
  // Resync: compares the next chunk of `work` (after its `after`; a table without a key whole)
  // by its summaries on the primary (`summary`, when not null, gets the primary's) and on the
  // secondary (`loader`'s connection). Equal: the chunk is recorded as loaded (progress row,
  // counts) and true returned; false: it differs (or cannot be compared) and is to be loaded.
  Result<bool> CompareChunk(BootstrapClient& client, ChunkLoader& loader,
                            const BootstrapClient::Round& round, uint32_t reader,
                            const TableWork& work, const ResyncSide& side, uint64_t chunk_bytes,
                            BootstrapClient::Summary* summary);
  Status CopyObjects();
  Status CreateObjects(SqlSession& db, const std::vector<pb::BootstrapObject>& objects);
  Status CopyFiles();
  // The test hook's pause at the start of `phase` (options_.pause_file). False when stopping.
  bool PauseForTest(const std::string& phase);
  void Fail(const Status& st);
  bool Streamed() const;
  void Update(const std::function<void(NodeStatus::Bootstrap&)>& change);
  bool Sleep(std::chrono::milliseconds how_long);  // false when stopping

  BootstrapperOptions options_;
  Clock& clock_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<NodeStatus::Bootstrap> status_;  // guarded by mu_
  bool auto_tried_ = false;                      // thread only
  bool recorded_checked_ = false;                // thread only: the recorded bootstrap was read
  bool resync_ = false;  // the bootstrap in progress compares chunks (thread only; readers read)
  // Round 0 and its client, from Begin to the first round of CopyRows. Thread only.
  std::optional<BootstrapClient::Round> first_round_;
  std::unique_ptr<BootstrapClient> first_client_;
  // When CopyRows began in this daemon, and the bytes loaded before (for the rate and ETA).
  // Written by the thread before the readers start; read by the readers.
  std::chrono::steady_clock::time_point copy_started_;
  uint64_t copy_bytes_at_start_ = 0;
};

}  // namespace replsync::apply
