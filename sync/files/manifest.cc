#include "sync/files/manifest.h"

#include <sqlite3.h>

#include <utility>

#include "sync/files/repository_path.h"
#include "sync/path_text.h"

namespace replsync {

namespace {

constexpr const char* kCorruptionAdvice =
    "; remove it together with its -wal and -shm files: the next start rescans the repository "
    "and rebuilds it";

// ForEach reads this many entries per query.
constexpr int kBatchSize = 1024;

// The columns of an entry after its path, in the order ReadEntry expects.
#define RS_ENTRY_COLUMNS \
  "type, mode, uid, gid, size, mtime_ns, ctime_ns, inode, link_target, content_hash, chunks"

constexpr const char* kCreateSchema =
    "CREATE TABLE files ("
    " path TEXT PRIMARY KEY,"
    " type INTEGER NOT NULL,"
    " mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,"
    " inode INTEGER NOT NULL,"
    " link_target BLOB,"
    " content_hash BLOB,"
    " chunks BLOB"
    ") WITHOUT ROWID;"
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;"
    "INSERT INTO meta (key, value) VALUES ('format_version', '1');";

// SQL of each Manifest::Stmt, in enum order.
constexpr const char* kStmtSql[] = {
    // kGet
    "SELECT " RS_ENTRY_COLUMNS " FROM files WHERE path = ?1",
    // kPut
    "INSERT OR REPLACE INTO files (path, " RS_ENTRY_COLUMNS
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    // kDeleteOne
    "DELETE FROM files WHERE path = ?1",
    // kDeleteRange
    "DELETE FROM files WHERE path >= ?1 AND path < ?2",
    // kRenameOne
    "UPDATE files SET path = ?1 WHERE path = ?2",
    // kRenameRange: the new path is `to` followed by the bytes of the old path after `from`.
    // substr() on a BLOB counts bytes (on TEXT it would count UTF-8 characters, which invalid
    // UTF-8 makes meaningless), and || and CAST keep the bytes of a UTF-8 database as they are.
    "UPDATE files SET path = CAST(CAST(?1 AS BLOB) || substr(CAST(path AS BLOB), ?2) AS TEXT)"
    " WHERE path >= ?3 AND path < ?4",
    // kScanRange
    "SELECT path, " RS_ENTRY_COLUMNS " FROM files WHERE path >= ?1 AND path < ?2 ORDER BY path",
    // kScanFrom
    "SELECT path, " RS_ENTRY_COLUMNS " FROM files WHERE path >= ?1 ORDER BY path",
    // kScanBatch
    "SELECT path, " RS_ENTRY_COLUMNS " FROM files WHERE path > ?1 ORDER BY path LIMIT ?2",
    // kCount
    "SELECT count(*) FROM files",
    // kGetMeta
    "SELECT value FROM meta WHERE key = ?1",
    // kPutMeta
    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
    // kBegin
    "BEGIN IMMEDIATE",
    // kCommit
    "COMMIT",
    // kRollback
    "ROLLBACK",
    // kSavepoint
    "SAVEPOINT replsync_manifest_op",
    // kRelease
    "RELEASE replsync_manifest_op",
    // kRollbackTo
    "ROLLBACK TO replsync_manifest_op",
};
#undef RS_ENTRY_COLUMNS

// Resets a statement and clears its bindings (which may point to the caller's memory) when the
// scope ends, so that no statement keeps a read transaction open.
class ScopedReset {
 public:
  explicit ScopedReset(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ScopedReset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

bool IsCorruptionCode(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

// OK when `path` can be a manifest key (CheckRepositoryPath); see manifest.h.
Status CheckPath(std::string_view path, std::string_view what) {
  Status checked = CheckRepositoryPath(path);
  if (checked.ok()) return checked;
  return Status::InvalidArgument(std::string(what) + ": " + checked.message());
}

void BindText(sqlite3_stmt* stmt, int index, std::string_view text) {
  // An empty string_view may have a null data(), which would bind NULL; an empty meta value or
  // range bound must bind as empty TEXT.
  sqlite3_bind_text(stmt, index, text.empty() ? "" : text.data(), static_cast<int>(text.size()),
                    SQLITE_STATIC);
}

// An empty string binds as NULL (a directory has no link target, hash or chunks).
void BindBlobOrNull(sqlite3_stmt* stmt, int index, const std::string& bytes) {
  if (bytes.empty()) {
    sqlite3_bind_null(stmt, index);
  } else {
    sqlite3_bind_blob(stmt, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
  }
}

std::string ColumnBytes(sqlite3_stmt* stmt, int column) {
  const void* data = sqlite3_column_blob(stmt, column);
  const int size = sqlite3_column_bytes(stmt, column);
  if (data == nullptr || size <= 0) return std::string();
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

// The smallest key after every key of `dir`'s subtree ("a/b" -> "a/b0"); `dir` + "/" is the
// first key of that subtree.
std::string SubtreeEnd(std::string_view dir) { return std::string(dir) + '0'; }
std::string SubtreeBegin(std::string_view dir) { return std::string(dir) + '/'; }

bool IsInSubtree(std::string_view path, std::string_view dir) {
  return path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/';
}

}  // namespace

void Manifest::DbCloser::operator()(sqlite3* db) const { sqlite3_close(db); }
void Manifest::StmtFinalizer::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

Manifest::Manifest(std::string path, DbPtr db) : path_(std::move(path)), db_(std::move(db)) {}

Manifest::~Manifest() = default;

Result<std::unique_ptr<Manifest>> Manifest::Open(const std::string& path) {
  static_assert(sizeof(kStmtSql) / sizeof(kStmtSql[0]) == kNumStmts);
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    const char* msg = db != nullptr ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc);
    return Status::IoError("open manifest " + path + ": " + msg);
  }
  sqlite3_extended_result_codes(db.get(), 1);
  // Waits for another connection's write lock (e.g. a `replsync` tool reading) instead of
  // failing at once.
  sqlite3_busy_timeout(db.get(), 5000);
  std::unique_ptr<Manifest> manifest(new Manifest(path, std::move(db)));
  RS_RETURN_IF_ERROR(manifest->InitSchema());
  RS_RETURN_IF_ERROR(manifest->SetPragmas());
  RS_RETURN_IF_ERROR(manifest->PrepareStatements());
  return manifest;
}

Status Manifest::SqlError(int rc, const std::string& what) const {
  std::string msg = what + " manifest " + path_ + ": " +
                    (db_ != nullptr ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc));
  if (IsCorruptionCode(rc)) return Status::Corruption(msg + kCorruptionAdvice);
  return Status::IoError(msg);
}

Status Manifest::InitSchema() {
  // Checks (and creates) the schema under a write lock, so that two processes opening a new
  // manifest at once cannot both create it. The lock also reads the file's header: a file that
  // is not an SQLite database fails here with SQLITE_NOTADB.
  int rc = sqlite3_exec(db_.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    if (IsCorruptionCode(rc)) {
      return Status::Corruption("open manifest " + path_ + ": " + sqlite3_errmsg(db_.get()) +
                                ": this is not a replsync manifest" + kCorruptionAdvice);
    }
    return SqlError(rc, "open");
  }
  Status status = InitSchemaLocked();
  if (!status.ok()) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  }
  rc = sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    Status error = SqlError(rc, "create schema of");
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    return error;
  }
  return Status::Ok();
}

Status Manifest::InitSchemaLocked() {
  // Runs `sql` (one statement) and calls `row` for each result row.
  auto query = [this](const char* sql, const std::function<void(sqlite3_stmt*)>& row) -> Status {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), sql, -1, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return SqlError(rc, "read schema of");
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) row(stmt.get());
    if (rc != SQLITE_DONE) return SqlError(rc, "read schema of");
    return Status::Ok();
  };
  bool has_tables = false;
  bool has_files = false;
  bool has_meta = false;
  RS_RETURN_IF_ERROR(query("SELECT name FROM sqlite_master WHERE type = 'table'", [&](auto* s) {
    has_tables = true;
    const std::string name = ColumnBytes(s, 0);
    has_files = has_files || name == "files";
    has_meta = has_meta || name == "meta";
  }));
  if (!has_tables) {
    // A new (missing or empty) file.
    const int rc = sqlite3_exec(db_.get(), kCreateSchema, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return SqlError(rc, "create schema of");
    return Status::Ok();
  }
  if (!has_files || !has_meta) {
    return Status::Corruption("open manifest " + path_ +
                              ": an SQLite database without the tables of a replsync manifest "
                              "(files, meta)" +
                              kCorruptionAdvice);
  }
  std::optional<std::string> version;
  RS_RETURN_IF_ERROR(query("SELECT value FROM meta WHERE key = 'format_version'",
                           [&](auto* s) { version = ColumnBytes(s, 0); }));
  if (!version.has_value()) {
    return Status::Corruption("open manifest " + path_ +
                              ": no format_version in table meta, not a replsync manifest" +
                              kCorruptionAdvice);
  }
  if (*version != std::to_string(kFormatVersion)) {
    return Status::Corruption("open manifest " + path_ + ": format version " + QuotePath(*version) +
                              ", this replsync reads version " + std::to_string(kFormatVersion) +
                              kCorruptionAdvice);
  }
  return Status::Ok();
}

Status Manifest::SetPragmas() {
  // journal_mode answers with the mode in effect, which stays the old one when WAL is not
  // possible (e.g. on a file system without shared memory mappings).
  std::string mode;
  {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_.get(), "PRAGMA journal_mode = WAL", -1, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return SqlError(rc, "set WAL journal mode of");
    rc = sqlite3_step(stmt.get());
    if (rc != SQLITE_ROW) return SqlError(rc, "set WAL journal mode of");
    mode = ColumnBytes(stmt.get(), 0);
  }
  if (mode != "wal") {
    return Status::IoError("open manifest " + path_ + ": cannot use WAL journal mode (still " +
                           QuotePath(mode) + "); put state_dir on a local file system");
  }
  const int rc = sqlite3_exec(db_.get(), "PRAGMA synchronous = NORMAL", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqlError(rc, "set synchronous mode of");
  return Status::Ok();
}

Status Manifest::PrepareStatements() {
  for (size_t i = 0; i < kNumStmts; ++i) {
    sqlite3_stmt* raw = nullptr;
    const int rc =
        sqlite3_prepare_v3(db_.get(), kStmtSql[i], -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    stmts_[i].reset(raw);
    if (rc != SQLITE_OK) {
      // format_version 1 promises the schema these statements use.
      if ((rc & 0xff) == SQLITE_ERROR) {
        return Status::Corruption("open manifest " + path_ + ": its tables do not match format " +
                                  "version 1 (" + sqlite3_errmsg(db_.get()) + ")" +
                                  kCorruptionAdvice);
      }
      return SqlError(rc, "prepare statements of");
    }
  }
  return Status::Ok();
}

Status Manifest::Exec(Stmt which, const std::string& what) {
  sqlite3_stmt* stmt = stmts_[which].get();
  ScopedReset reset(stmt);
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return SqlError(rc, what);
  return Status::Ok();
}

Status Manifest::Atomically(const std::string& what, const std::function<Status()>& fn) {
  RS_RETURN_IF_ERROR(Exec(kSavepoint, what));
  Status status = fn();
  if (!status.ok()) {
    // ROLLBACK TO undoes the changes and keeps the savepoint; RELEASE then ends it. Errors here
    // are secondary to `status`.
    (void)Exec(kRollbackTo, what);
    (void)Exec(kRelease, what);
    return status;
  }
  return Exec(kRelease, what);
}

Result<ManifestEntry> Manifest::ReadEntry(sqlite3_stmt* stmt, int c, std::string_view path) const {
  ManifestEntry e;
  e.path = std::string(path);
  const int64_t type = sqlite3_column_int64(stmt, c);
  if (type < 1 || type > 3) {
    return Status::Corruption("read manifest " + path_ + ": entry " + QuotePath(path) +
                              " has unknown type " + std::to_string(type) + kCorruptionAdvice);
  }
  e.type = static_cast<ManifestEntry::Type>(type);
  e.mode = static_cast<uint32_t>(sqlite3_column_int64(stmt, c + 1));
  e.uid = static_cast<uint32_t>(sqlite3_column_int64(stmt, c + 2));
  e.gid = static_cast<uint32_t>(sqlite3_column_int64(stmt, c + 3));
  // 64-bit unsigned values are stored as their two's complement int64.
  e.size = static_cast<uint64_t>(sqlite3_column_int64(stmt, c + 4));
  e.mtime_ns = sqlite3_column_int64(stmt, c + 5);
  e.ctime_ns = sqlite3_column_int64(stmt, c + 6);
  e.inode = static_cast<uint64_t>(sqlite3_column_int64(stmt, c + 7));
  e.link_target = ColumnBytes(stmt, c + 8);
  e.content_hash = ColumnBytes(stmt, c + 9);
  e.chunks = ColumnBytes(stmt, c + 10);
  return e;
}

Result<std::optional<ManifestEntry>> Manifest::Get(std::string_view path) const {
  RS_RETURN_IF_ERROR(CheckPath(path, "get from manifest " + path_));
  sqlite3_stmt* stmt = stmts_[kGet].get();
  ScopedReset reset(stmt);
  BindText(stmt, 1, path);
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return std::optional<ManifestEntry>();
  if (rc != SQLITE_ROW) return SqlError(rc, "get " + QuotePath(path) + " from");
  RS_ASSIGN_OR_RETURN(ManifestEntry entry, ReadEntry(stmt, 0, path));
  return std::optional<ManifestEntry>(std::move(entry));
}

Status Manifest::Put(const ManifestEntry& e) {
  RS_RETURN_IF_ERROR(CheckPath(e.path, "put into manifest " + path_));
  const auto type = static_cast<int>(e.type);
  if (type < 1 || type > 3) {
    return Status::InvalidArgument("put " + QuotePath(e.path) + " into manifest " + path_ +
                                   ": unknown type " + std::to_string(type));
  }
  sqlite3_stmt* stmt = stmts_[kPut].get();
  ScopedReset reset(stmt);
  BindText(stmt, 1, e.path);
  sqlite3_bind_int(stmt, 2, type);
  sqlite3_bind_int64(stmt, 3, e.mode);
  sqlite3_bind_int64(stmt, 4, e.uid);
  sqlite3_bind_int64(stmt, 5, e.gid);
  sqlite3_bind_int64(stmt, 6, static_cast<int64_t>(e.size));
  sqlite3_bind_int64(stmt, 7, e.mtime_ns);
  sqlite3_bind_int64(stmt, 8, e.ctime_ns);
  sqlite3_bind_int64(stmt, 9, static_cast<int64_t>(e.inode));
  BindBlobOrNull(stmt, 10, e.link_target);
  BindBlobOrNull(stmt, 11, e.content_hash);
  BindBlobOrNull(stmt, 12, e.chunks);
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return SqlError(rc, "put " + QuotePath(e.path) + " into");
  return Status::Ok();
}

Status Manifest::Delete(std::string_view path) {
  RS_RETURN_IF_ERROR(CheckPath(path, "delete from manifest " + path_));
  const std::string what = "delete " + QuotePath(path) + " from";
  const std::string begin = SubtreeBegin(path);
  const std::string end = SubtreeEnd(path);
  return Atomically(what, [&]() -> Status {
    {
      sqlite3_stmt* stmt = stmts_[kDeleteOne].get();
      ScopedReset reset(stmt);
      BindText(stmt, 1, path);
      const int rc = sqlite3_step(stmt);
      if (rc != SQLITE_DONE) return SqlError(rc, what);
    }
    sqlite3_stmt* stmt = stmts_[kDeleteRange].get();
    ScopedReset reset(stmt);
    BindText(stmt, 1, begin);
    BindText(stmt, 2, end);
    const int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) return SqlError(rc, what);
    return Status::Ok();
  });
}

Status Manifest::Rename(std::string_view from, std::string_view to) {
  RS_RETURN_IF_ERROR(CheckPath(from, "rename in manifest " + path_));
  RS_RETURN_IF_ERROR(CheckPath(to, "rename in manifest " + path_));
  const std::string what = "rename " + QuotePath(from) + " to " + QuotePath(to) + " in";
  if (IsInSubtree(to, from) || IsInSubtree(from, to)) {
    return Status::InvalidArgument(what + " manifest " + path_ + ": one path is inside the other");
  }
  const std::string begin = SubtreeBegin(from);
  const std::string end = SubtreeEnd(from);
  return Atomically(what, [&]() -> Status {
    int64_t moved = 0;
    if (from != to) RS_RETURN_IF_ERROR(Delete(to));
    {
      sqlite3_stmt* stmt = stmts_[kRenameOne].get();
      ScopedReset reset(stmt);
      BindText(stmt, 1, to);
      BindText(stmt, 2, from);
      const int rc = sqlite3_step(stmt);
      if (rc != SQLITE_DONE) return SqlError(rc, what);
      moved += sqlite3_changes64(db_.get());
    }
    {
      sqlite3_stmt* stmt = stmts_[kRenameRange].get();
      ScopedReset reset(stmt);
      BindText(stmt, 1, to);
      sqlite3_bind_int64(stmt, 2, static_cast<int64_t>(from.size()) + 1);  // 1-based
      BindText(stmt, 3, begin);
      BindText(stmt, 4, end);
      const int rc = sqlite3_step(stmt);
      if (rc != SQLITE_DONE) return SqlError(rc, what);
      moved += sqlite3_changes64(db_.get());
    }
    if (moved == 0) {
      return Status::NotFound(what + " manifest " + path_ + ": no entry at or below " +
                              QuotePath(from));
    }
    return Status::Ok();
  });
}

Result<std::vector<ManifestEntry>> Manifest::Children(std::string_view dir) const {
  if (!dir.empty()) RS_RETURN_IF_ERROR(CheckPath(dir, "list manifest " + path_));
  const std::string what =
      "list " + (dir.empty() ? std::string("the root") : QuotePath(dir)) + " in";
  const std::string prefix = dir.empty() ? std::string() : SubtreeBegin(dir);
  const std::string end = SubtreeEnd(dir);
  sqlite3_stmt* stmt = stmts_[dir.empty() ? kScanFrom : kScanRange].get();
  ScopedReset reset(stmt);
  std::string lower = prefix;
  BindText(stmt, 1, lower);
  if (!dir.empty()) BindText(stmt, 2, end);
  std::vector<ManifestEntry> children;
  while (true) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return SqlError(rc, what);
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    const std::string_view path(text == nullptr ? "" : text,
                                static_cast<size_t>(sqlite3_column_bytes(stmt, 0)));
    const size_t slash = path.find('/', prefix.size());
    if (slash != std::string_view::npos) {
      // Something deeper than a child: continue after that child's whole subtree.
      lower = SubtreeEnd(path.substr(0, slash));
      sqlite3_reset(stmt);
      BindText(stmt, 1, lower);
      continue;
    }
    RS_ASSIGN_OR_RETURN(ManifestEntry entry, ReadEntry(stmt, 1, path));
    children.push_back(std::move(entry));
  }
  return children;
}

Status Manifest::ForEach(const std::function<Status(const ManifestEntry&)>& fn) const {
  // Each batch is read with the statement reset before `fn` runs, so that `fn` can use this
  // manifest (its statements and transactions) freely.
  std::string after;
  std::vector<ManifestEntry> batch;
  while (true) {
    batch.clear();
    {
      sqlite3_stmt* stmt = stmts_[kScanBatch].get();
      ScopedReset reset(stmt);
      BindText(stmt, 1, after);
      sqlite3_bind_int(stmt, 2, kBatchSize);
      int rc;
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
        const std::string_view path(text == nullptr ? "" : text,
                                    static_cast<size_t>(sqlite3_column_bytes(stmt, 0)));
        RS_ASSIGN_OR_RETURN(ManifestEntry entry, ReadEntry(stmt, 1, path));
        batch.push_back(std::move(entry));
      }
      if (rc != SQLITE_DONE) return SqlError(rc, "read");
    }
    for (const ManifestEntry& entry : batch) RS_RETURN_IF_ERROR(fn(entry));
    if (batch.size() < static_cast<size_t>(kBatchSize)) return Status::Ok();
    after = batch.back().path;
  }
}

Result<uint64_t> Manifest::Count() const {
  sqlite3_stmt* stmt = stmts_[kCount].get();
  ScopedReset reset(stmt);
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) return SqlError(rc, "count entries of");
  return static_cast<uint64_t>(sqlite3_column_int64(stmt, 0));
}

bool Manifest::in_transaction() const { return sqlite3_get_autocommit(db_.get()) == 0; }

Status Manifest::Begin() {
  if (in_transaction()) {
    return Status::Internal("begin transaction in manifest " + path_ +
                            ": a transaction is already open");
  }
  return Exec(kBegin, "begin transaction in");
}

Status Manifest::Commit() {
  if (!in_transaction()) {
    return Status::Internal("commit manifest " + path_ + ": no transaction is open");
  }
  return Exec(kCommit, "commit");
}

Status Manifest::Rollback() {
  if (!in_transaction()) return Status::Ok();
  return Exec(kRollback, "roll back");
}

Result<std::optional<std::string>> Manifest::GetMeta(std::string_view key) const {
  sqlite3_stmt* stmt = stmts_[kGetMeta].get();
  ScopedReset reset(stmt);
  BindText(stmt, 1, key);
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return SqlError(rc, "get meta " + QuotePath(key) + " from");
  return std::optional<std::string>(ColumnBytes(stmt, 0));
}

Status Manifest::PutMeta(std::string_view key, std::string_view value) {
  if (key == "format_version") {
    return Status::InvalidArgument("put meta into manifest " + path_ +
                                   ": format_version is reserved");
  }
  sqlite3_stmt* stmt = stmts_[kPutMeta].get();
  ScopedReset reset(stmt);
  BindText(stmt, 1, key);
  BindText(stmt, 2, value);
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return SqlError(rc, "put meta " + QuotePath(key) + " into");
  return Status::Ok();
}

}  // namespace replsync
