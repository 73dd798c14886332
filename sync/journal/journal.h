// Journal: an ordered, durable log of entries keyed by a 64-bit sequence number, in RocksDB.
//
// The primary's journal holds what capture produced until every secondary has it; the
// secondary's relay journal holds what it received until it is applied. Layout (written down in
// schemas/journal.md): column family "entries" maps the 8-byte big-endian sequence to the
// entry's bytes; column family "meta" holds named values (source checkpoints, applied
// positions). Append writes entries and meta values in ONE WriteBatch, synced to the WAL, so a
// checkpoint can never get ahead of (or behind) the entries it describes.
// Thread-safety: thread-safe. Readers from any thread. By contract each journal has one writer
// thread (Append, Put, DeleteUpTo, TruncateAfter, Rebase, PutMeta; schemas/journal.md "Writers"):
// on the primary the capture service's JournalWriter (journal_writer.h), which also carries out the
// shipper's retention; on the secondary the receiver's (the applier only reads the relay).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "sync/status.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace replsync {

class Journal {
 public:
  struct Options {
    std::string path;        // a directory; created if missing
    uint64_t max_bytes = 0;  // size cap of the entries (0 = none); see full()
    bool sync = true;        // fsync the WAL on every Append (group commit: batch your appends)
  };

  // Opens (creating if needed). Errors: IoError naming the path (no space, permissions),
  // Corruption when RocksDB finds its files damaged.
  static Result<std::unique_ptr<Journal>> Open(const Options& options);
  ~Journal();

  // Appends `entries` with consecutive sequence numbers after last_seq(), plus `meta` key/values,
  // atomically and durably. *first_seq (optional) receives the first new sequence number.
  // Meta keys starting with "__" are reserved (InvalidArgument, for every method taking meta).
  Status Append(const std::vector<std::string>& entries,
                const std::vector<std::pair<std::string, std::string>>& meta,
                uint64_t* first_seq = nullptr);

  // Writes entries at given sequence numbers (the secondary's relay: sequences come from the
  // primary), plus meta, atomically and durably. Sequences must continue last_seq() exactly
  // (last_seq()+1, +2, ...; no gap, no repeat); a journal never written (last_seq() == 0)
  // starts at the first sequence given. InvalidArgument otherwise, and nothing is written.
  Status Put(const std::vector<std::pair<uint64_t, std::string>>& entries,
             const std::vector<std::pair<std::string, std::string>>& meta);

  // The entry at `seq`, or nullopt if it is not (or no longer) in the journal.
  Result<std::optional<std::string>> Get(uint64_t seq) const;

  // Up to `max_entries` entries (and at most about `max_bytes` bytes, at least one entry) with
  // sequence >= from_seq, in order.
  Result<std::vector<std::pair<uint64_t, std::string>>> Read(uint64_t from_seq, size_t max_entries,
                                                             size_t max_bytes) const;

  // Removes entries with sequence <= seq (they are safe elsewhere) and `meta` updates in the
  // same batch.
  Status DeleteUpTo(uint64_t seq,
                    const std::vector<std::pair<std::string, std::string>>& meta = {});

  // Removes entries with sequence > seq (an unfinished large transaction's parts after a crash).
  Status TruncateAfter(uint64_t seq);

  // Empties the journal and makes it continue at `next_seq`: every entry is deleted, and
  // first_seq() becomes next_seq, last_seq() next_seq - 1 and bytes() 0, in one WriteBatch (a
  // crash leaves the journal as before or rebased, never in between). The next Put must start at
  // next_seq (with next_seq 1 the journal is as new: Put starts anywhere). Meta values other than
  // the counters are kept. The secondary's relay after a bootstrap (schemas/bootstrap.md "The
  // stream's start"): the secondary's database is at next_seq - 1 and nothing the relay held is
  // wanted. Only the journal's writer calls it. Errors: InvalidArgument for next_seq 0 or the
  // largest sequence; IoError / Corruption from RocksDB (then nothing changed).
  Status Rebase(uint64_t next_seq);

  Result<std::optional<std::string>> GetMeta(const std::string& key) const;
  Status PutMeta(const std::vector<std::pair<std::string, std::string>>& meta);

  // Sequence numbers: first_seq() is the oldest entry kept (last_seq()+1 when empty);
  // last_seq() the newest ever written (0 for a new journal; kept across DeleteUpTo).
  uint64_t first_seq() const { return first_seq_.load(); }
  uint64_t last_seq() const { return last_seq_.load(); }
  // Bytes of the entries kept (keys + values), maintained exactly across restarts.
  uint64_t bytes() const { return bytes_.load(); }
  uint64_t entry_count() const { return last_seq() + 1 - first_seq(); }
  // Test hook: called by Get after it read `seq` (`found`: the entry was there), before Get
  // returns; tests use it to write an entry between two reads of a reader. Set it before any
  // reader runs.
  void SetAfterGetForTest(std::function<void(uint64_t seq, bool found)> hook) {
    after_get_ = std::move(hook);
  }
  // True when bytes() >= max_bytes: the writer must stop and say so (never drop entries).
  bool full() const;
  const std::string& path() const { return options_.path; }

 private:
  explicit Journal(Options options);

  // Reads and checks the format version and counters in meta (or initializes a new journal).
  Status LoadCounters();
  // Sums the stored sizes (key + value) of the entries in [from, to]; `op` names the caller.
  Result<uint64_t> SizeOfRange(uint64_t from, uint64_t to, const char* op) const;
  // Adds the deletion of the entries in [from, to] to `batch`.
  void AddRangeDelete(rocksdb::WriteBatch* batch, uint64_t from, uint64_t to) const;
  // Adds the user meta and the counters to `batch`, writes it, and on success publishes the
  // counters. `op` names the operation for the error message.
  Status Commit(rocksdb::WriteBatch* batch,
                const std::vector<std::pair<std::string, std::string>>& meta, uint64_t first_seq,
                uint64_t last_seq, uint64_t bytes, const char* op);

  Options options_;
  std::function<void(uint64_t seq, bool found)> after_get_;
  rocksdb::DB* db_ = nullptr;
  rocksdb::ColumnFamilyHandle* entries_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
  std::atomic<uint64_t> first_seq_{1};
  std::atomic<uint64_t> last_seq_{0};
  std::atomic<uint64_t> bytes_{0};
  // Serializes writes (the applier's PutMeta with the receiver's on the secondary; a second
  // writer elsewhere would be safe here, not right: see the contract above).
  std::mutex write_mu_;
  // Bytes deleted since the last compaction request (guarded by write_mu_).
  uint64_t deleted_since_hint_ = 0;

  // Compacts deleted ranges in the background so their disk space comes back (started by the
  // first request; stopped and joined by the destructor).
  void RequestCompaction(uint64_t below_seq);
  void CompactorLoop();
  std::thread compactor_;
  std::mutex compact_mu_;
  std::condition_variable compact_cv_;
  uint64_t compact_requested_ = 0;  // compact the keys below this sequence; guarded by compact_mu_
  uint64_t compact_done_ = 0;       // guarded by compact_mu_
  bool compact_stop_ = false;       // guarded by compact_mu_
};

// 8-byte big-endian encoding of a sequence number (sorts like the number).
std::string EncodeSeq(uint64_t seq);
uint64_t DecodeSeq(std::string_view key);

}  // namespace replsync
