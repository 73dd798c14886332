// Manifest: the primary's record of what it journaled for each path of the repository folder,
// an SQLite database (normally state_dir/manifest.db). Layout: schemas/files.md, "Manifest"
// (format version 1), and schemas/manifest.md for the details this class relies on.
//
// The manifest is a cache: a rescan of the repository can always rebuild it. It therefore runs
// with journal_mode=WAL and synchronous=NORMAL: a commit is atomic and survives a crash of the
// process, but the last commits before a power loss or kernel crash may be lost (never
// half-applied); the next rescan journals what they described again.
//
// Paths are relative repository paths as in FileChange ("a/b/c"): not empty, no NUL byte, no
// leading or trailing '/', no empty, "." or ".." component (CheckRepositoryPath,
// sync/files/repository_path.h); otherwise any bytes (not necessarily UTF-8).
// They are stored unchanged and ordered by their bytes (memcmp, unsigned), which is also the
// order of std::string's operator<. A directory's subtree is the key range
// [dir + "/", dir + "0"), since '0' is the byte after '/'.
//
// Errors: every SQLite failure becomes IoError, or Corruption for a damaged database file; the
// message names the operation, the manifest file and SQLite's message. Corruption messages say
// what to do: remove the file (with its -wal and -shm files); the next start rescans.
// Thread-safety: not thread-safe; use one Manifest from one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sync/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace replsync {

// One row of the manifest: what the primary last journaled for `path`.
struct ManifestEntry {
  enum class Type : uint8_t { kFile = 1, kDirectory = 2, kSymlink = 3 };

  std::string path;
  Type type = Type::kFile;
  uint32_t mode = 0;  // st_mode permission and type bits as given by the caller
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t inode = 0;
  std::string link_target;   // symlinks: the target as read, bytes
  std::string content_hash;  // files: SHA-256 of the content, 32 raw bytes
  std::string chunks;        // files: the encoded chunk list (schemas/files.md), opaque here

  bool operator==(const ManifestEntry&) const = default;
};

class Manifest {
 public:
  static constexpr int kFormatVersion = 1;

  // Opens the manifest at `path`, creating the file and its schema (format_version 1) when the
  // file is missing or empty. Errors: IoError naming the file (directory missing, permissions,
  // no space, database locked for more than a few seconds, WAL not possible on this file
  // system); Corruption when the file is not an SQLite database, is an SQLite database that is
  // not a replsync manifest, or has another format_version. A file that is not a manifest is
  // never modified.
  static Result<std::unique_ptr<Manifest>> Open(const std::string& path);
  ~Manifest();  // rolls back a transaction left open
  Manifest(const Manifest&) = delete;
  Manifest& operator=(const Manifest&) = delete;

  // The file given to Open.
  const std::string& path() const { return path_; }

  // The entry at `path`, or nullopt when there is none. InvalidArgument for an invalid path;
  // Corruption when the stored row has an unknown type.
  Result<std::optional<ManifestEntry>> Get(std::string_view path) const;

  // Inserts `entry`, or replaces the entry at entry.path (entries below it are untouched).
  // InvalidArgument for an invalid path or type, and nothing is written.
  Status Put(const ManifestEntry& entry);

  // Removes the entry at `path` and every entry below it ("a/b" removes "a/b/c", never "a/bc"
  // or "a/b.txt"). OK when there is nothing to remove. All or nothing.
  Status Delete(std::string_view path);

  // Moves the entry at `from` and every entry below it to the same relative place under `to`
  // ("from/x/y" becomes "to/x/y"), after removing what was at and below `to`; every other field
  // is kept. All or nothing. from == to: nothing changes. NotFound (nothing changed) when there
  // is no entry at or below `from`; InvalidArgument when either path is invalid or one is
  // inside the other's subtree (as rename(2) refuses).
  Status Rename(std::string_view from, std::string_view to);

  // The entries directly inside `dir` ("" is the repository root), in path order; entries
  // deeper down are skipped with one seek per child subtree. Empty when there are none;
  // InvalidArgument for an invalid `dir`.
  Result<std::vector<ManifestEntry>> Children(std::string_view dir) const;

  // Calls `fn` with every entry in path order, reading a bounded batch at a time (memory does
  // not grow with the manifest). Stops at and returns the first non-OK status of `fn`. `fn` may
  // call this manifest, including to modify it; entries it adds after the current path may or
  // may not be visited.
  Status ForEach(const std::function<Status(const ManifestEntry&)>& fn) const;

  // The number of entries.
  Result<uint64_t> Count() const;

  // Group changes into one SQLite transaction (BEGIN IMMEDIATE ... COMMIT): much faster than
  // one transaction per change, and atomic. Begin while a transaction is open, or Commit
  // without one, is Internal. When Commit fails the transaction may still be open: call
  // Rollback. Rollback undoes every change since Begin; it is OK and does nothing when no
  // transaction is open, so error paths may call it unconditionally.
  Status Begin();
  Status Commit();
  Status Rollback();
  bool in_transaction() const;

  // Named text values (e.g. "last_rescan"). GetMeta: nullopt when the key was never put.
  // PutMeta inserts or replaces; the key "format_version" is reserved (InvalidArgument).
  Result<std::optional<std::string>> GetMeta(std::string_view key) const;
  Status PutMeta(std::string_view key, std::string_view value);

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

  // The cached prepared statements, prepared once by Open.
  enum Stmt : size_t {
    kGet,
    kPut,
    kDeleteOne,
    kDeleteRange,
    kRenameOne,
    kRenameRange,
    kScanRange,
    kScanFrom,
    kScanBatch,
    kCount,
    kGetMeta,
    kPutMeta,
    kBegin,
    kCommit,
    kRollback,
    kSavepoint,
    kRelease,
    kRollbackTo,
    kNumStmts,
  };

  Manifest(std::string path, DbPtr db);
  Status InitSchema();
  Status InitSchemaLocked();
  Status SetPragmas();
  Status PrepareStatements();

  // Runs a statement that returns no rows. `what` names the operation for errors.
  Status Exec(Stmt stmt, const std::string& what);
  // Runs `fn` inside a savepoint: all of its changes or none.
  Status Atomically(const std::string& what, const std::function<Status()>& fn);
  // The Status for SQLite result code `rc` of operation `what` (IoError or Corruption).
  Status SqlError(int rc, const std::string& what) const;
  Result<ManifestEntry> ReadEntry(sqlite3_stmt* stmt, int first_column,
                                  std::string_view path) const;

  std::string path_;
  DbPtr db_;
  // Declared after db_ so that they are finalized before the connection closes.
  std::array<StmtPtr, kNumStmts> stmts_;
};

}  // namespace replsync
