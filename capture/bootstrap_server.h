// BootstrapServer: the primary's side of bootstrap (schemas/bootstrap.md): it reads the
// replicated databases in rounds of consistent snapshots and answers the secondary's
// BootstrapRequests (BEGIN_ROUND, READ_CHUNK, END_ROUND, READ_OBJECTS, POSITION) with
// BootstrapReplies. The shipper hands it the requests of connections that said Hello{tree_only}
// with the peer's authenticated [peers] name and sends the replies (capture/shipper.h).
//
// Rounds (schemas/bootstrap.md "Exactness"): BEGIN_ROUND opens `readers` sessions on the
// primary's server ([mysql], SET NAMES binary, time_zone '+00:00', REPEATABLE READ, long net
// timeouts, no statement time limit) and starts a consistent snapshot in each; sessions whose
// binlog_snapshot position is behind the others open again, up to 20 tries; then every snapshot
// opens again under BACKUP STAGE START / BLOCK_COMMIT (needs RELOAD; `lock_ms` says how long
// commits waited). With `definitions` (round 0) it then reads the databases' and tables'
// definitions (views are not tables here), the primary's position Q, and lists the binlog from
// the point P to Q: any statement event but BEGIN / COMMIT there (a DDL came after the snapshot)
// fails the round with `retry`. Then journal_seq = options.journal_seq_at(P), and the journal
// keeps every entry from it for the peer (options.pin).
// A round belongs to the peer that began it (its [peers] name; several clients of one node
// share its rounds). It closes on END_ROUND, after snapshot_seconds x 6 without a request, on
// ClosePeer, and when its peer begins one more than max_rounds_per_peer (the oldest goes).
//
// Chunks: each reader is one session with its own thread; a READ_CHUNK for a reader that is busy
// waits for it. A table with a usable key (verify's choice, sync/verify/usable_key.h) is read as
// `SELECT <row_format SelectList> ... WHERE key > after ORDER BY key LIMIT n`, streamed, n adapted
// so that the text is about max_bytes (from the table's average row length, then from the last
// chunk's bytes); table_done when fewer than n rows came. A table without one is one unbuffered
// SELECT kept open across requests (continue_piece), cut into pieces of about max_bytes. The text
// is sync/bootstrap/row_format.h's, compressed with zstd (level 1). Before each chunk the reader
// obeys verify's throttle (Threads_running over max_running) and after it max_rate.
// Resync (READ_CHUNK summary_only): the range a chunk would be is found the same way (the keys
// after `after`, LIMIT n, n sized from the previous summary's bytes per row) and answered with
// its summary instead of its rows (sync/bootstrap/chunk_summary.h: rows, summary_sha256,
// summary_exact, last_key, table_done; a table without a key whole). READ_CHUNK bounded reads
// exactly the rows in (after, upper] (upper empty: to the table's end), without LIMIT: the range
// a summary named, when the secondary's differs.
// A chunk whose table changed under the snapshot (InnoDB's "Table definition has changed",
// 1412) or is gone (1146) is an error with `retry`: the table is read in a later round.
//
// READ_OBJECTS reads, at the primary's current state, views (in an order that creates views on
// views after the views they use), procedures, functions, packages, triggers (in ACTION_ORDER)
// and events, and with `users` the accounts holding privileges on the replicated databases, then
// checks the binlog between the request's point F and its end as above. Each object's `sql` runs
// in its database (USE db; users: none), on a utf8mb4 session; routines, triggers and events
// start with a SET of their sql_mode (events also their time_zone).
//
// READ_FILES (the files phase's bulk pass) reads paths of the repository (options.repository)
// as they are now, with the shipper's rules for a peer's paths: every path must pass
// CheckRepositoryPath or the whole request is refused; each is looked at and opened with
// OpenBeneath (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so no symbolic link is ever followed, on
// the way or at the end (a link is answered as a link, with its target); a path that is missing
// or goes through a link is GONE, a device, FIFO or socket REFUSED (never opened for reading).
// Regular files are read whole, in order, until about max_bytes of content (a file that does not
// fit is cut and asked for again from its offset); each file's content is zstd level 1 when that
// is smaller. A directory is answered with its children's names.
//
// Errors are replies (`error`, `retry` when a new round or a new read may succeed): a request
// never fails the service. Messages name the operation and the object.
// Thread-safety: thread-safe. Submit, ClosePeer and status from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "replsync.pb.h"
#include "sync/clock.h"
#include "sync/database_filter.h"
#include "sync/mysql/mysql_session.h"
#include "sync/position.h"
#include "sync/status.h"

namespace replsync::capture {

struct BootstrapServerOptions {
  MysqlOptions mysql;                  // the primary's server ([mysql])
  std::vector<std::string> databases;  // [mysql] databases; empty = all but the system schemas
  // A round's snapshots are meant to last about this long; a round without a request for 6x
  // this is closed.
  std::chrono::seconds snapshot_seconds{10};
  size_t max_rounds_per_peer = 2;
  uint32_t max_readers = 8;
  // Verify's throttle (sync/verify/verify_throttle.h): wait while the server runs more other
  // queries than this; 0 = no throttle.
  uint64_t max_running = 25;
  uint64_t max_rate = 0;  // bytes of row text read per second, over all readers; 0 = no limit
  // Threads serving BEGIN_ROUND, END_ROUND, READ_OBJECTS and POSITION.
  size_t workers = 2;
  // Accounts READ_OBJECTS never copies besides root, mariadb.sys and the request's exclusions:
  // the primary's own [mysql] user.
  std::vector<std::string> own_users;
  Clock* clock = &SystemClock();
  // Required for BEGIN_ROUND with definitions. Waits until the capture journaled past `point`,
  // then the first journal sequence holding a database transaction that begins at or after it
  // (CaptureService::FirstSeqAtOrAfter). A retryable error makes a retry reply.
  std::function<Result<uint64_t>(const BinlogPosition& point)> journal_seq_at;
  // Required for BEGIN_ROUND with definitions: the journal keeps every entry from `seq` for
  // `peer` (Shipper::Pin). A retryable error makes a retry reply.
  std::function<Status(const std::string& peer, uint64_t seq)> pin;
  // [repository] path: READ_FILES reads below it; empty: READ_FILES is refused.
  std::string repository;
  // Test hook: BEGIN_ROUND with definitions, on the worker's thread, after the snapshots opened
  // at `point` and before the definitions are read.
  std::function<void(const BinlogPosition& point)> after_snapshot;
  // Test hook: READ_CHUNK, on the reader's thread, after its throttle and before the SELECT.
  std::function<void(const std::string& db, const std::string& table)> before_chunk;
};

struct BootstrapPeerStatus {
  std::string name;
  uint64_t rounds_open = 0;
  uint64_t rounds_begun = 0;  // since the service started
  uint64_t chunks = 0;        // chunks and pieces served
  uint64_t rows = 0;
  uint64_t bytes = 0;       // row text read (before compression)
  uint64_t wire_bytes = 0;  // after compression
  std::string last_error;   // the last error replied ("" when none)
  bool operator==(const BootstrapPeerStatus&) const = default;
};

struct BootstrapServerStatus {
  uint64_t rounds_open = 0;
  std::vector<BootstrapPeerStatus> peers;  // every peer that asked since the service started
};

class BootstrapServer {
 public:
  using Done = std::function<void(pb::BootstrapReply)>;

  explicit BootstrapServer(BootstrapServerOptions options);
  ~BootstrapServer();  // stops
  BootstrapServer(const BootstrapServer&) = delete;
  BootstrapServer& operator=(const BootstrapServer&) = delete;

  // Starts the worker threads. Errors: Internal when already running.
  Status Start();
  // Closes every round (each reader finishes the chunk it reads) and joins; requests still
  // queued get an error reply. Idempotent.
  void Stop();

  // Serves `request` of `peer` (its authenticated [peers] name) off the caller's thread: `done`
  // gets the reply exactly once, from a worker's or a reader's thread (or at once, for a request
  // refused before any work).
  void Submit(const std::string& peer, pb::BootstrapRequest request, Done done);
  // Closes every round of `peer` (its connections went away).
  void ClosePeer(const std::string& peer);

  BootstrapServerStatus status() const;

 private:
  struct Round;
  struct Reader;
  struct Job {
    std::string peer;
    pb::BootstrapRequest request;
    Done done;
  };

  void WorkerLoop();
  // Serves a job of the workers' queue (a job without `done` closes its peer's rounds).
  void Serve(Job& job);
  pb::BootstrapReply BeginRound(const std::string& peer, const pb::BootstrapRequest& request);
  // The tables of the set (keys, references, estimates) as `session` reads them now; with
  // `create` (round 0) also the databases' and tables' CREATE statements.
  Status ReadDefinitions(SqlSession& session, bool create, pb::BootstrapReply* reply);
  pb::BootstrapReply EndRound(const std::string& peer, const pb::BootstrapRequest& request);
  pb::BootstrapReply ReadObjects(const std::string& peer, const pb::BootstrapRequest& request);
  // Routines, views, triggers and events, in creation order.
  Status ReadSchemaObjects(SqlSession& session, std::vector<pb::BootstrapObject>* objects);
  // The accounts with privileges on the replicated databases, but `excluded` user names.
  Status ReadUsers(SqlSession& session, const std::set<std::string>& excluded,
                   std::vector<pb::BootstrapObject>* objects);
  pb::BootstrapReply Position();
  // READ_FILES: the paths' kinds, metadata and content (see the file comment).
  pb::BootstrapReply ReadFiles(const pb::BootstrapRequest& request);
  // One path of READ_FILES into `file`, at most `budget` bytes of content from `offset`; the
  // content's raw length is added to *used.
  Status ReadRepositoryFile(int root_fd, const std::string& path, uint64_t offset, uint64_t budget,
                            pb::BootstrapFile* file, uint64_t* used);
  // Hands a READ_CHUNK to its round's reader (or answers it with an error).
  void QueueChunk(Job job);
  // A reader's thread: serves its chunk requests in order until its round closes.
  void ReaderLoop(Round* round, Reader* reader);
  // Waits for the reader's next request; false once the round closes.
  bool TakeJob(Reader& reader, Job* job);
  // Reads one chunk (or the pieces of a table without a key: a request that is not the next
  // piece ends them and is left in `next`).
  void ServeChunk(Round& round, Reader& reader, Job& job, std::optional<Job>* next);
  // The reply to a chunk read that failed with `status`.
  pb::BootstrapReply ChunkError(Round& round, Reader& reader, const Status& status,
                                const std::string& table);
  // Sends a chunk request's reply (counted, the round marked used).
  void Answer(Round& round, Job& job, pb::BootstrapReply reply);
  // Closes and joins `round` (taken out of rounds_ first).
  void CloseRound(const std::shared_ptr<Round>& round, const std::string& why);
  // Closes the rounds idle for 6 x snapshot_seconds.
  void CloseIdleRounds();
  // Accounts a served chunk / an error reply to `peer`'s status.
  void CountChunk(const std::string& peer, uint64_t rows, uint64_t bytes, uint64_t wire_bytes);
  void CountError(const std::string& peer, const std::string& error);
  // Waits as max_rate says after `bytes` of row text were read.
  void Pace(uint64_t bytes);

  BootstrapServerOptions options_;
  DatabaseFilter filter_;
  Clock& clock_;

  std::atomic<bool> running_{false};
  std::vector<std::thread> workers_;

  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  bool stopping_ = false;
  std::deque<Job> jobs_;
  std::map<uint64_t, std::shared_ptr<Round>> rounds_;  // by round number
  uint64_t next_round_ = 1;
  std::map<std::string, BootstrapPeerStatus> peers_;  // by name

  std::mutex pace_mu_;  // guards pace_next_
  Clock::TimePoint pace_next_{};
};

}  // namespace replsync::capture
