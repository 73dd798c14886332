// JournalWriter: the single writer of a journal (schemas/journal.md "Writers").
//
// From Start() to Stop(), the writer's thread is the only one that writes the journal (Append,
// PutMeta, TruncateAfter, DeleteUpTo) or changes last_complete_seq(). Everyone else asks it
// through its queues:
// - the primary producer (the capture thread) queues Items in order with Submit: entries, the
//   meta that goes with the end of a group (a source checkpoint), and Requests it waits for
//   with WaitWritten;
// - one other producer (the file capture) queues entries with SubmitExternal and waits for
//   WaitDurable;
// - the retention (the Shipper's: delete what every reader holds, with its own meta values) is
//   handed over with SubmitRetention.
// Groups: entries up to one that `completes` form a group; the two producers' groups are
// appended whole, never interleaved, in the order they arrived. last_complete_seq() is the
// sequence of the last entry of the last whole group: what readers may ship. It is written as
// meta (`last_complete_key`) in the same Append as the entries that move it, so the journal
// always says which entries after it are parts of an unfinished group (and may be removed).
// Group commit: the writer appends whatever is queued (up to `batch_entries` / `batch_bytes`
// per Append, each Append durable), so a burst shares one fsync and a lone entry waits for
// none; an item with meta only waits up to `meta_delay` for company.
// The writer knows entries and meta only, never what they mean.
// Thread-safety: Start/Stop/Abort/WaitDrained from one controlling thread;
// Submit/WaitWritten/EndOfInput from the primary producer; SubmitExternal/WaitDurable from the
// one other producer; SubmitRetention and last_complete_seq() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sync/clock.h"
#include "sync/journal/journal.h"
#include "sync/status.h"

namespace replsync {

class JournalWriter {
 public:
  using Meta = std::vector<std::pair<std::string, std::string>>;

  // What the primary producer asks besides appending at the writer's pace. A request ends the
  // writer's batch; the producer waits for it with WaitWritten.
  enum class Request : uint8_t {
    kNone,
    // This item (meta only) is written at once, not after meta_delay.
    kNow,
    // After what was queued before it is appended, remove the entries after
    // last_complete_seq() (the parts of a group the producer gave up on) with TruncateAfter.
    kDiscard,
  };

  // One unit of the primary producer.
  struct Item {
    std::string entry;  // the serialized entry, with has_entry
    bool has_entry = false;
    // Ends a group (the last part), or stands for a whole group without an entry.
    bool completes = false;
    // With completes: written in the Append that carries this item (the latest in a batch
    // wins), together with last_complete_key.
    Meta meta;
    Request request = Request::kNone;
  };

  // What one Append (and the request ending its batch) did, for the producer's bookkeeping.
  struct Written {
    size_t items = 0;              // the primary producer's items done, the oldest queued first
    bool completed_group = false;  // a group of either producer was completed
    // Per item done (`items` of them, in order): the sequence its entry got, 0 when it had none.
    std::vector<uint64_t> item_seqs;
    uint64_t last_seq = 0;  // the journal's last sequence after this write
  };

  struct Options {
    size_t batch_entries = 256;    // at most this many entries per Append
    size_t batch_bytes = 8 << 20;  // ... and about this many bytes
    // Extra wait for more entries before an Append (0: append what is queued at once; while
    // one Append is being synced the next batch collects anyway).
    std::chrono::milliseconds batch_delay{0};
    // Items with meta only (no entry, no request) wait up to this long.
    std::chrono::milliseconds meta_delay{1000};
    // Each producer waits while it has this much queued.
    size_t queue_bytes = 16 << 20;
    // The meta key of last_complete_seq() ("capture.last_complete_seq").
    std::string last_complete_key;
    // Called from the writer's thread after each Append is durable (and its request carried
    // out), before the producers' waits for it return.
    std::function<void(const Written&)> on_written;
    // Called once from the writer's thread when a write failed: the writer has cleared its
    // queues, answered the pending retention and is ending.
    std::function<void(const Status&)> on_failure;
    // Test hook: called after each write of the journal, from the thread that wrote, with the
    // operation: "Append", "TruncateAfter", "DeleteUpTo" or "PutMeta".
    std::function<void(const char* op)> after_journal_write;
  };

  // `journal` must outlive the writer; `clock` times meta_delay and batch_delay.
  JournalWriter(Journal* journal, Options options, Clock& clock = SystemClock());
  ~JournalWriter();  // stops
  JournalWriter(const JournalWriter&) = delete;
  JournalWriter& operator=(const JournalWriter&) = delete;

  // Starts the thread with empty queues and `last_complete_seq` (no entry after it may be in
  // the journal: the caller removed them). Internal when running.
  Status Start(uint64_t last_complete_seq);
  // The controlling thread is stopping: the producers' waits and new submissions return
  // Aborted ("capture stopped"); what is queued is still written, retention still served.
  void Abort();
  // The primary producer queues nothing more: WaitDrained returns once what it queued is
  // written; SubmitExternal and WaitDurable return Aborted from now on.
  void EndOfInput();
  // Blocks until, after EndOfInput, the writer wrote everything it could take, or it ended.
  void WaitDrained();
  // Ends the thread once it wrote what it may take and carried out a pending retention; joins.
  // Idempotent.
  void Stop();

  // ---- the primary producer
  // Queues `item`, blocking while this producer's queue holds queue_bytes; returns its ticket
  // for WaitWritten. Errors: Aborted when the writer failed ("journal writer failed"), or after
  // Abort while the queue is full ("capture stopped").
  Result<uint64_t> Submit(Item item);
  // Waits until the writer wrote (durably) or carried out the item `ticket` and every item of
  // this producer before it. Errors: Aborted after Abort or when the writer failed first.
  Status WaitWritten(uint64_t ticket);

  // ---- the other producer
  // Queues `entry` to be appended between the primary producer's groups; entries up to one
  // with `completes` form a group. Returns a ticket for WaitDurable. Blocks while this
  // producer's queue is full. Errors: Aborted after Abort or EndOfInput, or when the writer
  // failed.
  Result<uint64_t> SubmitExternal(std::string entry, bool completes);
  // Waits until the group `ticket` belongs to (and everything before it) is durable.
  // Errors: Aborted after Abort or EndOfInput, or when the writer failed first.
  Status WaitDurable(uint64_t ticket);

  // ---- retention
  // Has the writer delete the entries up to `up_to` with `meta` in the same batch
  // (Journal::DeleteUpTo), never past last_complete_seq() (parts after it may still be
  // removed); when nothing is left to delete, only `meta` is written (PutMeta), and with no
  // meta either, nothing. Returns at once; `done` gets the outcome.
  // The writer takes it before anything else it waits for (the rest of a half-appended group,
  // a producer paused for the space retention frees), together with the batch it is about to
  // append: whatever it may take at that moment is appended first. At most one is pending: one
  // submitted while another waits is merged into it (the latest `up_to`; `meta` by key, the
  // latest value winning) and every `done` gets the merged outcome.
  // `done` is called exactly once: from the writer's thread, or, with Aborted, from this call
  // when the writer is not running (before Start, after Stop, after a journal error) or from
  // the writer when a journal error ends it first. It must not wait for the writer.
  void SubmitRetention(uint64_t up_to, Meta meta, std::function<void(Status)> done);

  // The journal sequence up to which entries are whole groups.
  uint64_t last_complete_seq() const { return last_complete_seq_.load(); }

 private:
  struct Queued {
    Item item;
    bool external = false;
    uint64_t ticket = 0;  // arrival order (both queues)
  };
  // A retention waiting for the writer (SubmitRetention's requests, merged).
  struct Retention {
    uint64_t up_to = 0;
    Meta meta;
    std::vector<std::function<void(Status)>> done;
  };

  void Run();
  // Carries out `retention` (writer thread).
  Status RunRetention(const Retention& retention);
  // Appends `batch` (and carries out the request that ends it).
  Status AppendBatch(std::vector<Queued>* batch);
  // Whether the writer has something it may take now, and taking it (mu_ held): the groups
  // of the two queues are appended whole, in arrival order.
  bool WorkReadyLocked() const;
  bool TakeNextLocked(std::vector<Queued>* batch, size_t* entries, size_t* bytes);
  // Empties both queues and their counters (mu_ held).
  void ClearQueueLocked();
  // Wakes the writer's thread (mu_ held): something it waits for may have changed.
  void WakeWriterLocked();
  void AfterJournalWrite(const char* op) const;

  Journal* journal_;
  Options options_;
  Clock& clock_;
  std::thread thread_;
  std::atomic<uint64_t> last_complete_seq_{0};  // set by Start, then by the writer thread only

  mutable std::mutex mu_;             // guards the fields below
  std::condition_variable work_cv_;   // the writer waits for work
  std::condition_variable space_cv_;  // queue space, WaitWritten, WaitDurable, WaitDrained
  uint64_t wakeups_ = 0;              // WakeWriterLocked calls: the writer's wait ends
  std::deque<Queued> queue_;          // the primary producer's items
  std::deque<Queued> external_;       // SubmitExternal's entries
  size_t queued_bytes_ = 0;           // both queues
  size_t external_bytes_ = 0;         // external_'s share (each queue has queue_bytes of room)
  size_t queued_entries_ = 0;
  size_t queued_requests_ = 0;  // items in queue_ with a Request: the writer goes now
  bool has_meta_queued_ = false;
  Clock::TimePoint first_meta_queued_{};
  uint64_t next_ticket_ = 0;
  bool aborted_ = false;         // Abort: the producers' waits end
  bool input_ended_ = false;     // EndOfInput: nothing more is queued by the primary producer
  bool drained_ = false;         // ... and the writer wrote everything it could take
  bool exit_ = false;            // Stop: the writer ends once drained
  bool running_ = false;         // from Start until the writer thread ends
  bool failed_ = false;          // a write failed; the writer ended
  bool txn_open_ = false;        // the writer appended parts of a primary group, not its last
  bool external_open_ = false;   // ... of an external group, not its last entry
  uint64_t durable_ticket_ = 0;  // the last external group durable
  uint64_t written_ticket_ = 0;  // the last primary item written or carried out
  std::optional<Retention> retention_;
};

}  // namespace replsync
