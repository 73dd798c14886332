// Journal on RocksDB. The on-disk layout (column families, keys, reserved meta keys) is written
// down in schemas/journal.md; this file is the only code that knows it.
#include "sync/journal/journal.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <system_error>

namespace replsync {

namespace {

// Column families (schemas/journal.md).
constexpr char kEntriesCf[] = "entries";
constexpr char kMetaCf[] = "meta";

// Reserved meta keys: user meta keys may not start with this prefix.
constexpr std::string_view kReservedPrefix = "__";
constexpr char kVersionKey[] = "__version";
constexpr char kFirstSeqKey[] = "__first_seq";
constexpr char kLastSeqKey[] = "__last_seq";
constexpr char kBytesKey[] = "__bytes";
constexpr char kFormatVersion[] = "1";

// Stored size of one entry, as counted in bytes(): its 8-byte key plus its value.
constexpr uint64_t kKeyBytes = 8;

// Ranges of at most this many entries are deleted with point deletes: many small range
// tombstones in one memtable make every read re-fragment them, while point tombstones below
// first_seq are never visited (reads seek to first_seq or later).
constexpr uint64_t kPointDeleteMax = 64;

// After this many deleted bytes, DeleteUpTo has the deleted key range compacted (in the
// background) so the disk space comes back without waiting for ordinary compactions.
constexpr uint64_t kCompactionHintBytes = 64ull << 20;

// Turns a RocksDB status into ours: "<context>: <what RocksDB said>".
Status FromRocks(const rocksdb::Status& s, const std::string& context) {
  const char* state = s.getState();
  std::string msg = context + ": " + (state != nullptr ? std::string(state) : s.ToString());
  if (s.IsCorruption()) return Status::Corruption(std::move(msg));
  if (s.IsNotSupported()) return Status::Unsupported(std::move(msg));
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(msg));
  if (s.IsNotFound() && !s.IsPathNotFound()) return Status::NotFound(std::move(msg));
  return Status::IoError(std::move(msg));
}

bool IsReserved(const std::string& key) { return key.starts_with(kReservedPrefix); }

Status CheckUserMeta(const std::vector<std::pair<std::string, std::string>>& meta,
                     const std::string& context) {
  for (const auto& [key, value] : meta) {
    if (IsReserved(key)) {
      return Status::InvalidArgument(context + ": meta key \"" + key +
                                     "\" is reserved (keys starting with \"__\" belong to the "
                                     "journal)");
    }
  }
  return Status::Ok();
}

rocksdb::ColumnFamilyOptions EntriesOptions(const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions cf;
  // A replication log: appended in key order, read soon after, deleted from the front.
  cf.write_buffer_size = 32ull << 20;
  cf.max_write_buffer_number = 3;
  cf.target_file_size_base = 64ull << 20;
  cf.max_bytes_for_level_base = 256ull << 20;
  cf.level_compaction_dynamic_level_bytes = true;
  // Entries are protobuf with raw row images (compress well with LZ4) or already
  // zstd-compressed payloads (LZ4 gives up on them quickly). No compression if the library
  // was built without LZ4.
  const auto supported = rocksdb::GetSupportedCompressions();
  const bool lz4 =
      std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end();
  cf.compression = lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  cf.bottommost_compression = cf.compression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.block_size = 32 << 10;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

rocksdb::ColumnFamilyOptions SmallOptions(const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = 4ull << 20;
  cf.max_write_buffer_number = 2;
  cf.compression = rocksdb::kNoCompression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

rocksdb::DBOptions MakeDbOptions() {
  rocksdb::DBOptions db;
  db.create_if_missing = true;
  db.create_missing_column_families = true;
  db.max_open_files = 256;
  db.max_background_jobs = 2;
  // The meta family is written with every batch, so the WAL cannot be recycled until every
  // family has flushed; this bound forces the flush of a family that lags.
  db.max_total_wal_size = 64ull << 20;
  db.bytes_per_sync = 1ull << 20;
  db.keep_log_file_num = 4;
  db.max_log_file_size = 8ull << 20;
  // Synced writes survive; a torn WAL tail after a power loss is cut at the last whole batch.
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  return db;
}

std::optional<uint64_t> DecodeCounter(const std::string& value) {
  if (value.size() != 8) return std::nullopt;
  return DecodeSeq(value);
}

}  // namespace

std::string EncodeSeq(uint64_t seq) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i) {
    key[i] = static_cast<char>(seq & 0xff);
    seq >>= 8;
  }
  return key;
}

uint64_t DecodeSeq(std::string_view key) {
  uint64_t seq = 0;
  for (size_t i = 0; i < 8 && i < key.size(); ++i) {
    seq = (seq << 8) | static_cast<uint8_t>(key[i]);
  }
  return seq;
}

Journal::Journal(Options options) : options_(std::move(options)) {}

Journal::~Journal() {
  if (db_ == nullptr) return;
  if (compactor_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(compact_mu_);
      compact_stop_ = true;
    }
    compact_cv_.notify_one();
    db_->DisableManualCompaction();  // a running CompactRange returns early
    compactor_.join();
  }
  for (rocksdb::ColumnFamilyHandle* cf : {entries_cf_, meta_cf_, default_cf_}) {
    if (cf != nullptr) db_->DestroyColumnFamilyHandle(cf).PermitUncheckedError();
  }
  rocksdb::Status s = db_->Close();
  if (!s.ok()) spdlog::warn("close journal {}: {}", options_.path, s.ToString());
  delete db_;
}

Result<std::unique_ptr<Journal>> Journal::Open(const Options& options) {
  const std::string context = "open journal " + options.path;
  if (options.path.empty()) return Status::InvalidArgument("open journal: empty path");
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return Status::IoError(context + ": create directory: " + ec.message());

  std::unique_ptr<Journal> journal(new Journal(options));
  auto cache = rocksdb::NewLRUCache(16ull << 20);
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, SmallOptions(cache)},
      {kEntriesCf, EntriesOptions(cache)},
      {kMetaCf, SmallOptions(cache)},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s =
      rocksdb::DB::Open(MakeDbOptions(), options.path, families, &handles, &journal->db_);
  if (!s.ok()) {
    Status status = FromRocks(s, context);
    if (status.message().find("/LOCK") == std::string::npos) return status;
    return Status::IoError(status.message() +
                           " (another process has this journal open: is a second replsyncd "
                           "using the same state_dir?)");
  }
  journal->default_cf_ = handles[0];
  journal->entries_cf_ = handles[1];
  journal->meta_cf_ = handles[2];
  RS_RETURN_IF_ERROR(journal->LoadCounters());
  return journal;
}

Status Journal::LoadCounters() {
  const std::string context = "open journal " + options_.path;
  rocksdb::ReadOptions ro;
  std::string version;
  rocksdb::Status s = db_->Get(ro, meta_cf_, kVersionKey, &version);
  if (s.IsNotFound()) {
    // A new journal: it must not hold entries yet.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, entries_cf_));
    it->SeekToFirst();
    if (it->Valid()) {
      return Status::Corruption(context + ": entries present but no format version in meta");
    }
    if (!it->status().ok()) return FromRocks(it->status(), context);
    rocksdb::WriteBatch batch;
    batch.Put(meta_cf_, kVersionKey, kFormatVersion).PermitUncheckedError();
    return Commit(&batch, {}, 1, 0, 0, "create journal");
  }
  if (!s.ok()) return FromRocks(s, context);
  if (version != kFormatVersion) {
    return Status::Unsupported(context + ": format version \"" + version +
                               "\"; this replsync reads version " + kFormatVersion);
  }

  uint64_t counters[3] = {0, 0, 0};
  const char* keys[3] = {kFirstSeqKey, kLastSeqKey, kBytesKey};
  for (int i = 0; i < 3; ++i) {
    std::string value;
    s = db_->Get(ro, meta_cf_, keys[i], &value);
    if (s.IsNotFound()) return Status::Corruption(context + ": meta " + keys[i] + " missing");
    if (!s.ok()) return FromRocks(s, context);
    std::optional<uint64_t> counter = DecodeCounter(value);
    if (!counter) {
      return Status::Corruption(context + ": meta " + keys[i] + " is " +
                                std::to_string(value.size()) + " bytes, not 8");
    }
    counters[i] = *counter;
  }
  const uint64_t first = counters[0], last = counters[1], bytes = counters[2];
  if (first == 0 || first > last + 1 || last == std::numeric_limits<uint64_t>::max()) {
    return Status::Corruption(context + ": counters first_seq " + std::to_string(first) +
                              " last_seq " + std::to_string(last) + " are impossible");
  }

  // Cheap consistency checks (no scan): the first and last entries exist, none lies beyond.
  auto exists = [&](uint64_t seq) -> Result<bool> {
    std::string value;
    rocksdb::Status gs = db_->Get(ro, entries_cf_, EncodeSeq(seq), &value);
    if (gs.IsNotFound()) return false;
    if (!gs.ok()) return FromRocks(gs, context);
    return true;
  };
  if (first <= last) {
    for (uint64_t seq : {first, last}) {
      RS_ASSIGN_OR_RETURN(bool found, exists(seq));
      if (!found) {
        return Status::Corruption(context + ": entry " + std::to_string(seq) +
                                  " is missing (journal holds " + std::to_string(first) + ".." +
                                  std::to_string(last) + ")");
      }
    }
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, entries_cf_));
    it->Seek(EncodeSeq(last + 1));
    if (it->Valid()) {
      const uint64_t beyond = DecodeSeq(it->key().ToStringView());
      return Status::Corruption(context + ": entry " + std::to_string(beyond) +
                                " lies beyond last_seq " + std::to_string(last));
    }
    if (!it->status().ok()) return FromRocks(it->status(), context);
  }
  first_seq_ = first;
  last_seq_ = last;
  bytes_ = bytes;
  return Status::Ok();
}

Status Journal::Commit(rocksdb::WriteBatch* batch,
                       const std::vector<std::pair<std::string, std::string>>& meta,
                       uint64_t first_seq, uint64_t last_seq, uint64_t bytes, const char* op) {
  const std::string context = std::string(op) + " " + options_.path;
  for (const auto& [key, value] : meta) {
    rocksdb::Status s = batch->Put(meta_cf_, key, value);
    if (!s.ok()) return FromRocks(s, context);
  }
  rocksdb::Status s = batch->Put(meta_cf_, kFirstSeqKey, EncodeSeq(first_seq));
  if (s.ok()) s = batch->Put(meta_cf_, kLastSeqKey, EncodeSeq(last_seq));
  if (s.ok()) s = batch->Put(meta_cf_, kBytesKey, EncodeSeq(bytes));
  if (!s.ok()) return FromRocks(s, context);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  s = db_->Write(wo, batch);
  if (!s.ok()) return FromRocks(s, context);
  first_seq_ = first_seq;
  last_seq_ = last_seq;
  bytes_ = bytes;
  return Status::Ok();
}

Status Journal::Append(const std::vector<std::string>& entries,
                       const std::vector<std::pair<std::string, std::string>>& meta,
                       uint64_t* first_seq) {
  std::lock_guard<std::mutex> lock(write_mu_);
  const std::string context = "append to journal " + options_.path;
  RS_RETURN_IF_ERROR(CheckUserMeta(meta, context));
  const uint64_t last = last_seq_.load();
  if (first_seq != nullptr) *first_seq = last + 1;
  if (entries.empty() && meta.empty()) return Status::Ok();
  if (entries.size() >= std::numeric_limits<uint64_t>::max() - last) {
    return Status::InvalidArgument(context + ": sequence numbers exhausted");
  }
  rocksdb::WriteBatch batch;
  uint64_t bytes = bytes_.load();
  uint64_t seq = last;
  for (const std::string& entry : entries) {
    ++seq;
    rocksdb::Status s = batch.Put(entries_cf_, EncodeSeq(seq), entry);
    if (!s.ok()) return FromRocks(s, context);
    bytes += kKeyBytes + entry.size();
  }
  return Commit(&batch, meta, first_seq_.load(), seq, bytes, "append to journal");
}

Status Journal::Put(const std::vector<std::pair<uint64_t, std::string>>& entries,
                    const std::vector<std::pair<std::string, std::string>>& meta) {
  std::lock_guard<std::mutex> lock(write_mu_);
  const std::string context = "put into journal " + options_.path;
  RS_RETURN_IF_ERROR(CheckUserMeta(meta, context));
  if (entries.empty() && meta.empty()) return Status::Ok();
  const uint64_t last = last_seq_.load();
  uint64_t first = first_seq_.load();
  uint64_t expected = last + 1;
  if (!entries.empty() && last == 0 && entries.front().first != 0) {
    // A journal never written starts wherever the stream starts.
    expected = entries.front().first;
    first = expected;
  }
  rocksdb::WriteBatch batch;
  uint64_t bytes = bytes_.load();
  for (const auto& [seq, entry] : entries) {
    if (seq != expected || seq == std::numeric_limits<uint64_t>::max()) {
      return Status::InvalidArgument(context + ": sequence " + std::to_string(seq) + " where " +
                                     std::to_string(expected) +
                                     " was expected (sequences must follow last_seq " +
                                     std::to_string(last) + " without gaps)");
    }
    rocksdb::Status s = batch.Put(entries_cf_, EncodeSeq(seq), entry);
    if (!s.ok()) return FromRocks(s, context);
    bytes += kKeyBytes + entry.size();
    ++expected;
  }
  return Commit(&batch, meta, first, expected - 1, bytes, "put into journal");
}

Result<std::optional<std::string>> Journal::Get(uint64_t seq) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), entries_cf_, EncodeSeq(seq), &value);
  if (!s.ok() && !s.IsNotFound()) {
    return FromRocks(s, "read entry " + std::to_string(seq) + " of journal " + options_.path);
  }
  if (after_get_) after_get_(seq, s.ok());
  if (s.IsNotFound()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(value));
}

Result<std::vector<std::pair<uint64_t, std::string>>> Journal::Read(uint64_t from_seq,
                                                                    size_t max_entries,
                                                                    size_t max_bytes) const {
  std::vector<std::pair<uint64_t, std::string>> out;
  const uint64_t last = last_seq_.load();
  const uint64_t from = std::max(from_seq, first_seq_.load());
  if (max_entries == 0 || from > last) return out;
  const std::string lower = EncodeSeq(from);
  const std::string upper = EncodeSeq(last + 1);
  rocksdb::Slice lower_slice(lower), upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, entries_cf_));
  size_t total = 0;
  for (it->Seek(lower_slice); it->Valid() && out.size() < max_entries; it->Next()) {
    const rocksdb::Slice value = it->value();
    if (!out.empty() && total + value.size() > max_bytes) break;
    total += value.size();
    out.emplace_back(DecodeSeq(it->key().ToStringView()), value.ToString());
  }
  if (!it->status().ok()) {
    return FromRocks(it->status(),
                     "read journal " + options_.path + " from " + std::to_string(from_seq));
  }
  return out;
}

Result<uint64_t> Journal::SizeOfRange(uint64_t from, uint64_t to, const char* op) const {
  const std::string lower = EncodeSeq(from);
  const std::string upper = EncodeSeq(to + 1);
  rocksdb::Slice lower_slice(lower), upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_slice;
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = false;
  ro.readahead_size = 2 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, entries_cf_));
  uint64_t size = 0;
  for (it->Seek(lower_slice); it->Valid(); it->Next()) {
    size += it->key().size() + it->value().size();
  }
  if (!it->status().ok()) {
    return FromRocks(it->status(), std::string(op) + " " + options_.path);
  }
  return size;
}

void Journal::AddRangeDelete(rocksdb::WriteBatch* batch, uint64_t from, uint64_t to) const {
  if (to - from + 1 <= kPointDeleteMax) {
    for (uint64_t seq = from; seq <= to; ++seq) {
      batch->Delete(entries_cf_, EncodeSeq(seq)).PermitUncheckedError();
    }
  } else {
    batch->DeleteRange(entries_cf_, EncodeSeq(from), EncodeSeq(to + 1)).PermitUncheckedError();
  }
}

Status Journal::DeleteUpTo(uint64_t seq,
                           const std::vector<std::pair<std::string, std::string>>& meta) {
  std::lock_guard<std::mutex> lock(write_mu_);
  const char* op = "delete from journal";
  RS_RETURN_IF_ERROR(CheckUserMeta(meta, std::string(op) + " " + options_.path));
  const uint64_t first = first_seq_.load();
  const uint64_t last = last_seq_.load();
  const uint64_t to = std::min(seq, last);
  rocksdb::WriteBatch batch;
  if (to < first) {
    if (meta.empty()) return Status::Ok();
    return Commit(&batch, meta, first, last, bytes_.load(), op);
  }
  RS_ASSIGN_OR_RETURN(uint64_t removed, SizeOfRange(first, to, op));
  AddRangeDelete(&batch, first, to);
  const uint64_t bytes = bytes_.load();
  if (removed > bytes) {
    return Status::Corruption(std::string(op) + " " + options_.path + ": entries " +
                              std::to_string(first) + ".." + std::to_string(to) + " hold " +
                              std::to_string(removed) + " bytes but the journal counts only " +
                              std::to_string(bytes));
  }
  RS_RETURN_IF_ERROR(Commit(&batch, meta, to + 1, last, bytes - removed, op));

  deleted_since_hint_ += removed;
  if (deleted_since_hint_ >= kCompactionHintBytes) {
    deleted_since_hint_ = 0;
    RequestCompaction(to + 1);
  }
  return Status::Ok();
}

void Journal::RequestCompaction(uint64_t below_seq) {
  {
    std::lock_guard<std::mutex> lock(compact_mu_);
    compact_requested_ = std::max(compact_requested_, below_seq);
  }
  compact_cv_.notify_one();
  if (!compactor_.joinable()) compactor_ = std::thread([this] { CompactorLoop(); });
}

void Journal::CompactorLoop() {
  std::unique_lock<std::mutex> lock(compact_mu_);
  for (;;) {
    compact_cv_.wait(lock, [&] { return compact_stop_ || compact_requested_ > compact_done_; });
    if (compact_stop_) return;
    const uint64_t below = compact_requested_;
    lock.unlock();
    // CompactRange flushes the memtable holding the tombstones, then compacts the deleted
    // range down, dropping the entries' data. Flushing meta too lets RocksDB recycle the WAL
    // files that held the deleted entries. Writers go on meanwhile.
    const std::string end = EncodeSeq(below);
    rocksdb::Slice end_slice(end);
    rocksdb::CompactRangeOptions compact;
    compact.exclusive_manual_compaction = false;
    compact.allow_write_stall = true;
    rocksdb::Status s = db_->CompactRange(compact, entries_cf_, nullptr, &end_slice);
    if (s.ok()) {
      rocksdb::FlushOptions flush;
      flush.allow_write_stall = true;
      s = db_->Flush(flush, meta_cf_);
    }
    if (!s.ok() && !s.IsIncomplete()) {
      spdlog::warn("journal {}: compacting deleted entries: {} (disk space comes back later)",
                   options_.path, s.ToString());
    }
    lock.lock();
    compact_done_ = below;
  }
}

Status Journal::TruncateAfter(uint64_t seq) {
  std::lock_guard<std::mutex> lock(write_mu_);
  const char* op = "truncate journal";
  const uint64_t first = first_seq_.load();
  const uint64_t last = last_seq_.load();
  if (seq >= last) return Status::Ok();
  if (seq + 1 < first) {
    return Status::InvalidArgument(std::string(op) + " " + options_.path + " after " +
                                   std::to_string(seq) + ": entries up to " +
                                   std::to_string(first - 1) + " are already deleted");
  }
  const uint64_t from = seq + 1;
  RS_ASSIGN_OR_RETURN(uint64_t removed, SizeOfRange(from, last, op));
  const uint64_t bytes = bytes_.load();
  if (removed > bytes) {
    return Status::Corruption(std::string(op) + " " + options_.path + ": entries " +
                              std::to_string(from) + ".." + std::to_string(last) + " hold " +
                              std::to_string(removed) + " bytes but the journal counts only " +
                              std::to_string(bytes));
  }
  rocksdb::WriteBatch batch;
  AddRangeDelete(&batch, from, last);
  return Commit(&batch, {}, first, seq, bytes - removed, op);
}

Status Journal::Rebase(uint64_t next_seq) {
  std::lock_guard<std::mutex> lock(write_mu_);
  const char* op = "rebase journal";
  if (next_seq == 0 || next_seq == std::numeric_limits<uint64_t>::max()) {
    return Status::InvalidArgument(std::string(op) + " " + options_.path + " at " +
                                   std::to_string(next_seq) +
                                   ": not a sequence a journal can "
                                   "continue at");
  }
  const uint64_t first = first_seq_.load();
  const uint64_t last = last_seq_.load();
  rocksdb::WriteBatch batch;
  if (first <= last) AddRangeDelete(&batch, first, last);
  RS_RETURN_IF_ERROR(Commit(&batch, {}, next_seq, next_seq - 1, 0, op));
  spdlog::info(
      "journal {}: emptied (it held {}), continues at seq {}", options_.path,
      first <= last ? std::to_string(first) + ".." + std::to_string(last) : std::string("nothing"),
      next_seq);
  if (first <= last) RequestCompaction(last + 1);
  return Status::Ok();
}

Result<std::optional<std::string>> Journal::GetMeta(const std::string& key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "read meta " + key + " of journal " + options_.path);
  return std::optional<std::string>(std::move(value));
}

Status Journal::PutMeta(const std::vector<std::pair<std::string, std::string>>& meta) {
  std::lock_guard<std::mutex> lock(write_mu_);
  const char* op = "write meta to journal";
  RS_RETURN_IF_ERROR(CheckUserMeta(meta, std::string(op) + " " + options_.path));
  if (meta.empty()) return Status::Ok();
  rocksdb::WriteBatch batch;
  return Commit(&batch, meta, first_seq_.load(), last_seq_.load(), bytes_.load(), op);
}

bool Journal::full() const { return options_.max_bytes != 0 && bytes() >= options_.max_bytes; }

}  // namespace replsync
