// CaptureService: the primary's capture — binlog to journal.
//
// BinlogSource -> BinlogDecoder -> TransactionAssembler -> one pb::JournalEntry{DbTransaction}
// per source transaction that changes a replicated database, appended to the Journal together
// with the checkpoint in the SAME Append, so the checkpoint can never be ahead of or behind the
// entries it describes.
//
// What an entry holds (schemas/replsync.proto, DbTransaction):
// - ROWS statements: the raw TABLE_MAP and ROWS events of tables in replicated databases, bytes
//   as read. Each binlog statement's table maps precede its first included ROWS event. Events
//   from a MySQL TRANSACTION_PAYLOAD have no checksum of their own; when the binlog has CRC32
//   checksums they get one (event_size grows by 4), so that every event agrees with the
//   FORMAT_DESCRIPTION stored with it. When the ROWS event that ended a binlog statement
//   (STMT_END_F) belonged to a table that is not replicated, the last included ROWS event of the
//   statement gets the flag instead (and a fresh checksum), so the included events still form
//   whole statements. Across a transaction's parts, the concatenation of the ROWS statements'
//   events is exactly that filtered event sequence: a binlog statement cut by a part boundary
//   continues in the next part WITHOUT its table maps repeated (the applier keeps them).
// - DDL statements (sql, default db, session variables and timestamp of the QUERY event) whose
//   target databases are replicated (capture/ddl_target.h, Decide).
// - the raw FORMAT_DESCRIPTION event in force, in every part.
// A transaction that touches no replicated table makes no entry; its end position is still
// checkpointed (meta only, batched: at most every `checkpoint_delay`).
// Large transactions are cut into parts of at most about `part_bytes` of event bytes (part 0,
// 1, ...; `last_part` and the end position on the final one); memory stays bounded by the part
// size plus the writer queue.
// Statement-format DML (binlog_format STATEMENT/MIXED) on a replicated database is a fatal
// error: such a transaction has no row events to replicate.
//
// Journal meta written by capture (all text):
//   capture.file, capture.offset  position after the last complete transaction journaled
//   capture.gtid                  that transaction's GTID ("" when none)
//   capture.last_complete_seq     journal sequence of that transaction's last entry (or of the
//                                 last transaction with entries before it); entries after it
//                                 are parts of an unfinished transaction
// Start() removes unfinished parts left by a crash (TruncateAfter(last_complete_seq)) and
// resumes at capture.file:capture.offset; with no checkpoint it starts at the server's current
// position (SHOW MASTER STATUS), writes that as the first checkpoint and logs it.
//
// Group commit: a writer thread appends whatever the capture thread queued (up to
// `batch_entries` / `batch_bytes` per Append, each Append durable), so a burst shares one fsync
// and a lone transaction waits for none.
// One writer: from the start of the threads to Stop(), the writer thread is the only one that
// writes the journal (Append, PutMeta, TruncateAfter, DeleteUpTo) or changes
// last_complete_seq(). The capture thread asks it through the queue and waits where it must: the
// first checkpoint is durable before the source is read, and the parts of a transaction cut off
// by a source error are removed after everything queued before them (WriteItem::Request). A
// checkpoint's capture.last_complete_seq is therefore always the writer's own, never a value
// another thread read before the writer appended a group; a stale one would make the next Start
// remove durable entries and reuse their sequence numbers. The Shipper's retention (deleting
// what every secondary holds, with its peer.* values) is handed to it as well (SubmitRetention)
// and carried out without waiting behind the queue. Start() itself writes before the threads
// start. The writer thread outlives the capture thread: after the capture ends by itself (or
// fails) it still carries out retention, until Stop().
// Backpressure: while journal.full(), capture stops reading the binlog and logs an error every
// `full_report_interval` with the size, the cap and what to do; status() shows it. Nothing is
// dropped. (A single transaction larger than the whole cap is let through, with an error log,
// since waiting could never end.)
// Errors: a purged binlog (NotFound), corruption, a refused login or wrong server settings stop
// the service with the message in status() and the log; network errors are retried forever with
// backoff (the source reconnects by itself; opening is retried here).
// Thread-safety: Start/Stop/Wait from one controlling thread; status(), last_complete_seq() and
// SubmitRetention from any thread; SubmitExternal/WaitDurable from the one other producer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "capture/binlog/binlog_decoder.h"
#include "capture/binlog/binlog_source.h"
#include "capture/binlog/ddl_target.h"
#include "capture/binlog/row_decoder.h"
#include "capture/binlog/transaction_assembler.h"
#include "capture/binlog/writeset.h"
#include "sync/config.h"
#include "sync/journal/journal.h"
#include "sync/position.h"
#include "sync/status.h"

namespace replsync::pb {
class JournalEntry;
class Statement;
}  // namespace replsync::pb

namespace replsync::capture {

class MariadbBinlogSource;

// Opens binlog sources for capture at a position.
// Thread-safety: Open/CurrentPosition from the capture thread; Interrupt from any thread.
class BinlogSourceFactory {
 public:
  virtual ~BinlogSourceFactory() = default;
  // Where a capture with no checkpoint starts: the server's current binlog position.
  // Errors: Network (retryable), Server, InvalidArgument (binlog off or not ROW/FULL).
  virtual Result<BinlogPosition> CurrentPosition() = 0;
  // A source whose events start at `start` (the start of an event, a transaction boundary), with
  // the FORMAT_DESCRIPTION in force there handed out first. Errors as BinlogSource::Next plus
  // NotFound for a purged binlog.
  virtual Result<std::unique_ptr<BinlogSource>> Open(const BinlogPosition& start) = 0;
  // Makes a Next (or Open) blocked in the source opened last return soon; until Resume(), new
  // sources fail with Aborted.
  virtual void Interrupt() = 0;
  virtual void Resume() = 0;
  virtual std::string Describe() const = 0;
};

// A live server from NodeConfig [mysql] (MariadbBinlogSource, following the binlog). Each Open
// checks the server's binlog settings (CheckBinlogSettings) first.
class MariadbSourceFactory : public BinlogSourceFactory {
 public:
  explicit MariadbSourceFactory(const NodeConfig& config);
  ~MariadbSourceFactory() override;
  Result<BinlogPosition> CurrentPosition() override;
  Result<std::unique_ptr<BinlogSource>> Open(const BinlogPosition& start) override;
  void Interrupt() override;
  void Resume() override;
  std::string Describe() const override;

 private:
  class Source;
  NodeConfig::Mysql config_;
  std::mutex mu_;  // guards current_, interrupted_
  MariadbBinlogSource* current_ = nullptr;
  bool interrupted_ = false;
};

// Binlog files read in order (tests, replay). CurrentPosition is the first file's first event;
// Open(file:offset) starts at the named file (by base name) and skips the events before
// `offset` except FORMAT_DESCRIPTION, as a server's dump does. The source ends at the end of
// the last file, which ends the capture (Wait returns).
class FileSourceFactory : public BinlogSourceFactory {
 public:
  explicit FileSourceFactory(std::vector<std::string> paths);
  Result<BinlogPosition> CurrentPosition() override;
  Result<std::unique_ptr<BinlogSource>> Open(const BinlogPosition& start) override;
  void Interrupt() override {}
  void Resume() override {}
  std::string Describe() const override;

 private:
  class Source;
  std::vector<std::string> paths_;
};

struct CaptureOptions {
  std::vector<std::string> databases;  // [mysql] databases; empty = all but system schemas
  size_t part_bytes = 4 << 20;         // cut transactions into parts of about this many bytes
  size_t batch_entries = 256;          // at most this many entries per Append
  size_t batch_bytes = 8 << 20;        // ... and about this many bytes
  // Extra wait for more entries before an Append (0: append what is queued at once; while one
  // Append is being synced the next batch collects anyway).
  std::chrono::milliseconds batch_delay{0};
  // Checkpoint-only writes (transactions with nothing to replicate) wait up to this long.
  std::chrono::milliseconds checkpoint_delay{1000};
  size_t queue_bytes = 16 << 20;   // capture waits while the writer has this much queued
  uint64_t journal_max_bytes = 0;  // the journal's cap, for messages
  std::chrono::milliseconds full_poll{100};
  std::chrono::seconds full_report_interval{30};
  std::chrono::milliseconds retry_min{500};  // reopening the source after network errors
  std::chrono::milliseconds retry_max{30000};
  // Called (from the writer thread) after every Append that completed a transaction; the
  // Shipper's Notify.
  std::function<void()> on_append;
  // Test hook: called after each write of the journal by the service, from the thread that
  // wrote, with the operation: "Append", "TruncateAfter", "DeleteUpTo" or "PutMeta".
  std::function<void(const char* op)> after_journal_write;
  // Test hook: called from the capture thread when it has chosen its first checkpoint (the
  // journal had none), before the checkpoint is queued for the writer. Tests let another
  // producer's group be appended at exactly this point.
  std::function<void()> before_first_checkpoint;
};

enum class CaptureState : uint8_t {
  kStopped,      // not started, or stopped
  kConnecting,   // opening the source (retrying)
  kRunning,      // reading
  kJournalFull,  // waiting for the shipper to free journal space
  kFinished,     // a finite source (files) was read to its end
  kFailed,       // stopped by an error: see last_error
};
const char* CaptureStateName(CaptureState state);

// A consistent copy of the service's state for `replsync status`.
struct CaptureStatus {
  CaptureState state = CaptureState::kStopped;
  std::string source;         // "server 127.0.0.1:3306"
  BinlogPosition checkpoint;  // durable: after the last complete transaction
  std::string checkpoint_gtid;
  BinlogPosition read_position;       // after the last event read
  uint64_t last_complete_seq = 0;     // journal sequence of the last complete transaction
  uint64_t transactions = 0;          // transactions journaled since Start
  uint64_t skipped_transactions = 0;  // transactions with nothing to replicate since Start
  uint64_t rows = 0;                  // rows journaled since Start
  uint64_t bytes = 0;                 // event bytes journaled since Start
  uint64_t journal_bytes = 0;
  uint64_t journal_max_bytes = 0;
  bool journal_full = false;
  int64_t lag_seconds = 0;  // now - timestamp of the last event read; 0 when idle
  std::string last_error;   // "" when none
};

class CaptureService {
 public:
  // `journal` and `factory` must outlive the service.
  CaptureService(Journal* journal, BinlogSourceFactory* factory, CaptureOptions options);
  ~CaptureService();  // stops
  CaptureService(const CaptureService&) = delete;
  CaptureService& operator=(const CaptureService&) = delete;

  // Reads the checkpoint, removes unfinished parts and starts the capture and writer threads.
  // Errors: the journal's (IoError, Corruption), Internal when already started.
  Status Start();
  // Stops reading, drops the unfinished transaction (re-read after restart), appends what is
  // queued, carries out a pending retention, joins. Idempotent.
  void Stop();
  // Blocks until the capture ends by itself (end of a finite source, or an error) and the
  // writer has appended everything; returns OK or the error. The writer thread keeps serving
  // SubmitRetention until Stop; call Stop before a following Start.
  Status Wait();

  CaptureStatus status() const;

  // ---- other producers' entries (the file capture): same journal, same sequence
  // Queues `entry` (a serialized JournalEntry) to be appended between database transactions.
  // Entries up to one with `completes` form a group: no other entry is appended between them
  // (the entries of a file cut into parts). Returns a ticket for WaitDurable. Blocks while the
  // writer's queue is full. Errors: Aborted once the service is stopping or its writer failed.
  // Thread-safety: from one producer thread (groups must not interleave).
  Result<uint64_t> SubmitExternal(std::string entry, bool completes);
  // Waits until the group `ticket` belongs to (and everything before it) is durable in the
  // journal. Errors: Aborted when the service stops or its writer failed first.
  Status WaitDurable(uint64_t ticket);
  // The journal's cap is reached: a producer should wait (nothing is dropped).
  bool journal_full() const { return journal_->full(); }

  // The journal sequence up to which entries are whole transactions (what the Shipper may send).
  uint64_t last_complete_seq() const { return last_complete_seq_.load(); }

  // ---- the Shipper's retention: same journal, same writer
  // Has the writer thread delete the entries up to `up_to` with `meta` in the same batch
  // (Journal::DeleteUpTo), never past last_complete_seq() (parts after it may still be removed);
  // when nothing is left to delete, only `meta` is written (PutMeta), and with no meta either,
  // nothing. Returns at once; `done` gets the outcome. A failed retention is reported to `done`
  // only: it does not stop the service.
  // The writer takes it before anything else it waits for: while a group is half appended and
  // while capture pauses for a full journal, which retention is what frees. At most one is
  // pending: one submitted while another waits is merged into it (the latest `up_to`; `meta` by
  // key, the latest value winning) and every `done` gets the merged outcome.
  // `done` is called exactly once: from the writer thread, or, with Aborted, from this call
  // when the writer is not running (before Start, after Stop, after a journal error) or from
  // the writer when a journal error ends it first. It must not wait for the writer.
  // Thread-safety: any thread.
  void SubmitRetention(uint64_t up_to, std::vector<std::pair<std::string, std::string>> meta,
                       std::function<void(Status)> done);

 private:
  struct Checkpoint {
    BinlogPosition position;
    std::string gtid;
  };
  // What the capture thread asks of the writer besides appending at its own pace. A request
  // ends the writer's batch; the capture thread waits for it with WaitWritten.
  enum class Request : uint8_t {
    kNone,
    // The checkpoint alone, written now (not after checkpoint_delay): the first checkpoint.
    kCheckpoint,
    // After what was queued before it is appended, remove the entries after last_complete_seq
    // (the parts of a transaction a source error cut off) with TruncateAfter.
    kDiscard,
  };
  // One unit for the writer: an entry and/or (when it completes a transaction) a checkpoint.
  struct WriteItem {
    std::string entry;  // serialized JournalEntry; empty with has_entry false
    bool has_entry = false;
    bool completes = false;  // last part of a transaction, or a transaction without entry
    bool rotation = false;   // with completes: the checkpoint moves to the next binlog file
    Checkpoint checkpoint;   // when completes
    uint64_t rows = 0;
    uint64_t event_bytes = 0;
    bool external = false;  // from SubmitExternal
    uint64_t ticket = 0;    // arrival order (both queues); SubmitExternal's ticket
    Request request = Request::kNone;
  };
  class Sink;

  void CaptureThread();
  // Opens the source at the committed position and reads until the end, Stop, or an error.
  Status RunSource();
  Status OnEvent(const Event& event, std::string_view raw);
  // Waits while the journal is full (logging); returns Aborted on Stop.
  Status WaitForJournalSpace(bool in_transaction);
  // Has the writer append what is queued and then remove the parts of an unfinished
  // transaction from the journal; returns once that is done. Errors: Aborted when the service
  // stops or the writer failed (the writer's error is in status()).
  Status DiscardUnfinished();
  void Fail(const Status& status);
  // Sets the state unless the service has failed.
  void SetState(CaptureState state);
  BinlogPosition read_position() const;

  // Transaction building (capture thread).
  Status BeginTxn(const TransactionInfo& txn);
  Status AddRows(const Event& event, const RowsEvent& rows);
  Status AddDdl(const TransactionInfo& txn, const Event& event, const DdlStatement& ddl);
  Status EndTxn(const TransactionInfo& txn, bool rollback);
  // Queues the part being built; `final` with the end position.
  Status FlushPart(bool final, const TransactionInfo* txn, bool rollback);
  void EndBinlogStatement();
  // Sets STMT_END_F in a ROWS event (and recomputes its checksum).
  Status SetStatementEnd(std::string* event) const;
  // The event bytes as they go into an entry (a checksum added to payload events).
  std::string EventBytes(std::string_view raw, bool in_payload) const;
  // Queues `item` for the writer (blocking while the queue is full); *ticket (optional) gets
  // its ticket for WaitWritten. Errors: Aborted when stopping or the writer failed.
  Status Enqueue(WriteItem item, uint64_t* ticket = nullptr);
  // Waits until the writer has written (durably) or carried out the capture item `ticket` and
  // every capture item before it. Errors: Aborted when the service stops or the writer failed.
  Status WaitWritten(uint64_t ticket);

  // A retention waiting for the writer (SubmitRetention's requests, merged).
  struct Retention {
    uint64_t up_to = 0;
    std::vector<std::pair<std::string, std::string>> meta;
    std::vector<std::function<void(Status)>> done;
  };

  void WriterThread();
  // Carries out `retention` (writer thread).
  Status RunRetention(const Retention& retention);
  // Empties both queues and their counters. Under queue_mu_.
  void ClearQueueLocked();
  // Calls the test hook after_journal_write, if set.
  void AfterJournalWrite(const char* op) const;
  // Whether the writer has something it may take now, and taking it (queue_mu_ held): the
  // groups of the two queues are appended whole, in arrival order.
  bool WorkReadyLocked() const;
  bool TakeNextLocked(std::vector<WriteItem>* batch, size_t* entries, size_t* bytes);
  Status AppendBatch(std::vector<WriteItem>* batch);

  Journal* journal_;
  BinlogSourceFactory* factory_;
  CaptureOptions options_;
  DatabaseFilter filter_;

  std::thread capture_thread_;
  std::thread writer_thread_;
  std::atomic<bool> stop_{false};
  bool started_ = false;

  // ---- capture thread state
  BinlogPosition committed_;  // after the last complete transaction read
  std::string committed_gtid_;
  std::unique_ptr<BinlogDecoder> decoder_;
  std::unique_ptr<Sink> sink_;
  std::unique_ptr<TransactionAssembler> assembler_;
  RowDecoder row_decoder_;
  RowImage before_image_, after_image_;  // scratch for the writeset
  WritesetBuilder writeset_;             // keys of the part being built
  Event event_;
  std::string format_description_;  // raw FORMAT_DESCRIPTION in force
  std::string_view current_raw_;    // raw bytes of the event being handled
  bool current_in_payload_ = false;
  // The transaction being built.
  std::unique_ptr<pb::JournalEntry> part_;
  pb::Statement* rows_statement_ = nullptr;  // the ROWS statement events go to (nullptr: new)
  size_t part_bytes_ = 0;
  uint32_t part_number_ = 0;
  uint64_t part_rows_ = 0;
  uint64_t part_event_bytes_ = 0;
  bool txn_is_ddl_ = false;
  // The binlog statement being read: table maps of replicated tables not yet emitted, whether
  // its first included ROWS event was emitted, and where the last one is in rows_statement_.
  std::vector<std::string> pending_maps_;
  bool statement_emitted_ = false;
  int last_rows_index_ = -1;
  std::chrono::steady_clock::time_point last_full_report_{};
  bool oversize_reported_ = false;
  bool state_full_ = false;  // waiting for journal space
  bool progressed_ = false;  // RunSource read at least one event
  uint64_t dml_warnings_ = 0;

  // ---- writer queue (guarded by queue_mu_)
  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;  // writer waits for items
  std::condition_variable space_cv_;  // queue space, WaitWritten, WaitDurable
  std::deque<WriteItem> queue_;
  size_t queued_bytes_ = 0;      // both queues
  size_t external_bytes_ = 0;    // external_'s share (each queue has queue_bytes of room)
  bool writer_stop_ = false;     // the capture ended: nothing more is queued
  bool writer_drained_ = false;  // ... and the writer wrote everything it could take
  bool writer_exit_ = false;     // Stop: the writer ends once drained
  bool writer_running_ = false;  // from Start until the writer thread ends
  std::optional<Retention> retention_;
  size_t queued_entries_ = 0;
  bool writer_failed_ = false;  // an Append failed; the service is stopping
  size_t queued_requests_ = 0;  // items in queue_ with a Request: the writer goes now
  bool has_checkpoint_queued_ = false;
  std::chrono::steady_clock::time_point first_checkpoint_queued_{};
  std::deque<WriteItem> external_;  // SubmitExternal's entries
  uint64_t next_ticket_ = 0;
  bool txn_open_ = false;        // the writer appended parts of a transaction, not its last one
  bool external_open_ = false;   // ... of an external group, not its last entry
  uint64_t durable_ticket_ = 0;  // the last external group durable
  uint64_t written_ticket_ = 0;  // the last capture item (queue_) written or carried out

  // ---- status
  mutable std::mutex status_mu_;  // guards the fields below
  CaptureState state_ = CaptureState::kStopped;
  Status error_;
  Checkpoint durable_;
  BinlogPosition read_position_;
  std::atomic<uint64_t> last_complete_seq_{0};  // set by Start, then by the writer thread only
  std::atomic<uint64_t> transactions_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> rows_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<int64_t> last_event_time_{0};
  std::atomic<bool> idle_{false};
};

}  // namespace replsync::capture
