// CaptureService: the primary's capture — binlog to journal.
//
// BinlogSource (source_factory.h) -> EntryBuilder (decoder, assembler; entry_builder.h) -> one
// pb::JournalEntry{DbTransaction} per source transaction that changes a replicated database ->
// JournalWriter, which appends it together with the checkpoint in the SAME Append, so the
// checkpoint can never be ahead of or behind the entries it describes. This file holds what
// joins them: the run loop with its retries, back-pressure, the checkpoint and the status.
//
// What an entry holds, how large transactions are cut into parts and which transactions make
// none: capture/entry_builder.h. A transaction that makes no entry still has its end position
// checkpointed (meta only, batched: at most every `checkpoint_delay`).
// Where the binlog comes from: capture/binlog/source_factory.h.
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
// The journal's one writer (sync/journal/journal_writer.h): from the start of the threads to
// Stop(), the service's JournalWriter is the only one that writes the journal (Append, PutMeta,
// TruncateAfter, DeleteUpTo) or changes last_complete_seq(), with group commit (up to
// `batch_entries` / `batch_bytes` per Append, each Append durable). The capture thread asks it
// through its queue and waits where it must: the first checkpoint is durable before the source
// is read, and the parts of a transaction cut off by a source error are removed after
// everything queued before them (JournalWriter::Request). A checkpoint's
// capture.last_complete_seq is therefore always the writer's own, never a value another thread
// read before the writer appended a group; a stale one would make the next Start remove durable
// entries and reuse their sequence numbers. The Shipper's retention (deleting what every
// secondary holds, with its peer.* values) is handed to it as well (SubmitRetention) and
// carried out without waiting behind the queue. Start() itself writes before the threads
// start. The writer outlives the capture thread: after the capture ends by itself (or fails)
// it still carries out retention, until Stop().
// Backpressure: while journal.full(), capture stops reading the binlog and logs an error every
// `full_report_interval` with the size, the cap and what to do; status() shows it. Nothing is
// dropped. (A single transaction larger than the whole cap is let through, with an error log,
// since waiting could never end.)
// Errors: a purged binlog (NotFound), corruption, a refused login or wrong server settings stop
// the service with the message in status() and the log; network errors are retried forever with
// backoff (the source reconnects by itself; opening is retried here). Every wait for time (the
// retry backoff, the journal-full poll, the writer's batching) is on the injected Clock.
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
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "capture/binlog/binlog_event.h"
#include "capture/binlog/source_factory.h"
#include "capture/entry_builder.h"
#include "capture/recent_begins.h"
#include "sync/clock.h"
#include "sync/config.h"
#include "sync/journal/journal.h"
#include "sync/journal/journal_writer.h"
#include "sync/position.h"
#include "sync/status.h"

namespace replsync::capture {

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
  // `journal` and `factory` must outlive the service; `clock` times the retry backoff, the
  // journal-full poll and the writer's batching.
  CaptureService(Journal* journal, BinlogSourceFactory* factory, CaptureOptions options,
                 Clock& clock = SystemClock());
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
  Result<uint64_t> SubmitExternal(std::string entry, bool completes) {
    return writer_.SubmitExternal(std::move(entry), completes);
  }
  // Waits until the group `ticket` belongs to (and everything before it) is durable in the
  // journal. Errors: Aborted when the service stops or its writer failed first.
  Status WaitDurable(uint64_t ticket) { return writer_.WaitDurable(ticket); }
  // The journal's cap is reached: a producer should wait (nothing is dropped).
  bool journal_full() const { return journal_->full(); }

  // The journal sequence up to which entries are whole transactions (what the Shipper may send).
  uint64_t last_complete_seq() const { return writer_.last_complete_seq(); }

  // ---- bootstrap's start of the stream (schemas/bootstrap.md "The stream's start")
  // Waits until the durable checkpoint is at or past `point` (every transaction that begins
  // before it is journaled, or has nothing to journal), then returns the first journal sequence
  // holding a database transaction (a part of one) that begins at or after `point`, or the next
  // sequence to be written when there is none yet — from what the capture wrote
  // (RecentBegins), not from the journal, whose entries past the point retention may have
  // deleted. Errors: Unavailable (retryable) when the capture is not there within `timeout`
  // (connecting, far behind, stopped or failed), or the point is older than the transactions it
  // remembers. Thread-safety: any thread.
  Result<uint64_t> FirstSeqAtOrAfter(const BinlogPosition& point,
                                     std::chrono::milliseconds timeout);

  // ---- the Shipper's retention: same journal, same writer
  // JournalWriter::SubmitRetention: deletes the entries up to `up_to` (never past
  // last_complete_seq()) with `meta` in the same batch, or writes `meta` alone when nothing is
  // left to delete; returns at once and `done` gets the outcome, exactly once (Aborted when the
  // writer is not running). A failed retention is reported to `done` only: it does not stop the
  // service. Thread-safety: any thread.
  void SubmitRetention(uint64_t up_to, std::vector<std::pair<std::string, std::string>> meta,
                       std::function<void(Status)> done) {
    writer_.SubmitRetention(up_to, std::move(meta), std::move(done));
  }

 private:
  // What the service remembers of each item it queued, until the writer reports it written.
  struct Queued {
    bool transaction = false;  // the last part of a transaction with entries
    bool skipped = false;      // a transaction with nothing to replicate
    uint64_t rows = 0;
    uint64_t event_bytes = 0;
    bool has_checkpoint = false;  // the item carries the checkpoint below
    BinlogPosition position;
    std::string gtid;
    BinlogPosition first_part_begin;  // a transaction's first entry: where it begins
  };

  void CaptureThread();
  // Opens the source at the committed position and reads until the end, Stop, or an error.
  Status RunSource();
  // The entry builder's observer: read position and lag of every event.
  void OnEvent(const Event& event);
  // Queues the entry builder's item for the writer; a checkpoint moves committed_.
  Status Queue(BuiltItem item);
  // Queues `item` for the writer, remembering `queued` until it is written; returns its ticket.
  // Errors: Aborted when stopping or the writer failed.
  Result<uint64_t> Enqueue(JournalWriter::Item item, Queued queued);
  // The writer wrote `written`: the status counters and the durable checkpoint follow.
  void OnWritten(const JournalWriter::Written& written);
  // The writer failed: the service stops with its error.
  void OnWriterFailed(const Status& status);
  // Waits while the journal is full (logging); returns Aborted on Stop.
  Status WaitForJournalSpace(bool in_transaction);
  // Has the writer append what is queued and then remove the parts of an unfinished
  // transaction from the journal; returns once that is done. Errors: Aborted when the service
  // stops or the writer failed (the writer's error is in status()).
  Status DiscardUnfinished();
  // Waits on the clock up to `timeout` or until Stop; returns false on Stop.
  bool Pause(std::chrono::milliseconds timeout);
  // Ends a Pause once stop_ is set.
  void WakePause();
  void Fail(const Status& status);
  // Sets the state unless the service has failed.
  void SetState(CaptureState state);
  BinlogPosition read_position() const;
  void AfterJournalWrite(const char* op) const;

  Journal* journal_;
  BinlogSourceFactory* factory_;
  CaptureOptions options_;
  Clock& clock_;
  JournalWriter writer_;
  EntryBuilder builder_;

  std::thread capture_thread_;
  std::atomic<bool> stop_{false};
  bool started_ = false;
  std::mutex pause_mu_;               // with pause_cv_: the capture thread's timed waits
  std::condition_variable pause_cv_;  // notified by Stop and a failed writer

  // ---- capture thread state
  BinlogPosition committed_;  // after the last complete transaction read
  std::string committed_gtid_;
  Clock::TimePoint last_full_report_{};
  bool oversize_reported_ = false;
  bool state_full_ = false;  // waiting for journal space
  bool progressed_ = false;  // RunSource read at least one event

  // ---- items queued, oldest first (pushed by the capture thread, popped by the writer's)
  std::mutex queued_mu_;  // guards queued_
  std::deque<Queued> queued_;

  // ---- status
  mutable std::mutex status_mu_;        // guards the fields below
  std::condition_variable durable_cv_;  // with status_mu_: durable_ moved
  CaptureState state_ = CaptureState::kStopped;
  Status error_;
  BinlogPosition durable_;      // the durable checkpoint
  RecentBegins recent_begins_;  // guarded by status_mu_: up to durable_
  std::string durable_gtid_;
  BinlogPosition read_position_;
  std::atomic<uint64_t> transactions_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> rows_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<int64_t> last_event_time_{0};
  std::atomic<bool> idle_{false};
};

}  // namespace replsync::capture
