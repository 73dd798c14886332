// FileApplier: the secondary's end of file replication (schemas/files.md). It brings one path of
// the repository folder to the state a FileChange journal entry describes. Entries are states,
// not edits: applying one twice, or to a copy that already has that state, gives the same result.
//
// Safety: every path is checked (not empty, not absolute, no empty, "." or ".." component, no
// NUL) and its parent directory is resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS) from the repository root; the last component is only ever touched with
// *at calls that do not follow it. So no entry can read or write outside the repository.
//
// Atomicity: a regular file or symbolic link is written under a temporary name in its directory
// (".replsync-tmp." + 16 hex digits), given its owner, mode and times, and renamed over the path.
// A FILE's content is checked against content_hash before the rename.
//
// Trust: only an entry's permission bits are applied, never setuid/setgid unless keep_setid;
// nothing but regular files, directories and symbolic links is ever created (kRefused).
//
// Durability: nothing is fsynced per file; Sync() calls syncfs(2) once per batch, before the
// caller records the batch's last sequence as applied.
//
// Thread-safety: not thread-safe; one thread applies everything.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "replsync.pb.h"
#include "sync/status.h"
#include "sync/unique_fd.h"

namespace replsync::apply {

struct FileApplierOptions {
  std::string root;  // the repository folder ([repository] path); created when missing
  // [repository] keep_setid: apply the set-user-ID and set-group-ID bits of an entry's mode.
  // Off: they are cleared (a primary could otherwise plant setuid-root programs here).
  bool keep_setid = false;
};

enum class FileApplyOutcome {
  // The path now has the entry's state (also for an abandoned file, which changes nothing, and
  // for a part of a multi-part file that is not the last one).
  kApplied,
  // The entry's content was already there (its copy ops did not fit the path's current version,
  // or a RENAME's source was gone, but the path already held the result); only its metadata was
  // (re)applied.
  kAlreadyApplied,
  // The path's copy is not the base the entry's copy ops expect (or a RENAME's source is
  // missing), and the path does not hold the result either. The path is left as it was; the
  // caller asks the primary for it (pb::FileResync) until a later entry for it is kApplied.
  kNeedsResync,
  // The entry describes a device, FIFO or socket (a file type in its meta's mode): nothing is
  // created or changed, a warning is logged (the first, then every 1000th) and refused() counts
  // it. The other parts of such a FILE are refused with it. The caller goes on: a file the
  // secondary will not create is no reason to stop replicating.
  kRefused,
};
const char* FileApplyOutcomeName(FileApplyOutcome outcome);

// "FIFO", "character device", "block device" or "socket" when the file type bits of `change`'s
// meta.mode name one (entries carry permission bits only: a replsync primary sends none of
// these); nullptr otherwise.
const char* SpecialFileType(const pb::FileChange& change);

class FileApplier {
 public:
  // Creates the root (and its parents) when missing, opens it, and removes every leftover
  // temporary file (".replsync-tmp.*", from a crash) anywhere below it, logging how many.
  // IoError when the root cannot be created, opened or walked.
  static Result<std::unique_ptr<FileApplier>> Open(FileApplierOptions options);
  ~FileApplier();
  FileApplier(const FileApplier&) = delete;
  FileApplier& operator=(const FileApplier&) = delete;

  // Applies one FileChange entry (one part of a FILE).
  //
  // FILE: part 0 creates the temporary file and opens the base (the regular file at `path`, if
  // any, whatever the ops); each part appends its ops (a copy outside the base, or without one,
  // marks the base as missing and the rest of the ops are skipped); the last part (last_part)
  // checks the SHA-256 against content_hash, sets owner, mode and mtime (ns exact; atime =
  // mtime) and renames the file over `path`, replacing whatever was there (a directory with its
  // contents). When the check fails or the base is missing: kAlreadyApplied after applying only
  // the metadata if `path` already has content_hash, else kNeedsResync with `path` untouched.
  // An `abandoned` part discards what the earlier parts wrote: kApplied, nothing changed.
  // content_unchanged: owner, mode and mtime of the existing regular file (kNeedsResync when
  // there is none). The meta is the last part's, or part 0's when the last part has none.
  // Between parts the file in progress stays open (file_in_progress()); an entry that does not
  // continue it (another path, another kind, a part number out of order) is Corruption and
  // discards the file in progress. A part > 0 with no file in progress belongs to a file whose
  // first parts this node never had (a stream joined inside it, as after a bootstrap):
  // kNeedsResync, the path untouched.
  //
  // DIRECTORY: mkdir when missing (replacing a non-directory), then owner, mode, mtime.
  //
  // SYMLINK: a link to link_target (as written, never followed) with owner and mtime.
  //
  // DELETE: removes the path, a directory with everything in it; a missing path is fine.
  //
  // RENAME: moves from_path to path (replacing what was there), then applies `meta` (owner and
  // mtime only for a symbolic link; nothing without meta). When from_path is gone but path
  // exists (the rename was applied before), kAlreadyApplied after applying `meta`, unless path
  // is a regular file whose size is not meta.size; otherwise kNeedsResync.
  //
  // Missing parent directories of the path are created (mode 0755; the primary's own DIRECTORY
  // entries set their metadata). After every change that is applied, the parent directory's
  // mtime is set to parent_mtime_ns (and from_path's parent to from_parent_mtime_ns) when >= 0,
  // keeping its atime; not after kNeedsResync or an abandoned file.
  //
  // Errors: InvalidArgument for a refused path or a path whose parent chain holds a symbolic
  // link (nothing written); Corruption for a malformed entry; IoError naming the operation, the
  // path and the system's reason. After an error the file in progress is discarded, so a
  // multi-part file must be applied again from part 0.
  Result<FileApplyOutcome> Apply(const pb::FileChange& change);

  // True between the parts of a multi-part FILE. The caller should not record a sequence inside
  // such a file as applied: after a restart the file must be applied again from part 0.
  bool file_in_progress() const { return in_progress_ != nullptr; }

  // Entries refused as devices, FIFOs or sockets (kRefused), counted once per entry part.
  uint64_t refused() const { return refused_; }

  // Makes everything applied so far durable: syncfs(2) on the repository's file system.
  // IoError when the kernel reports a write-back error.
  Status Sync();

  const std::string& root() const { return options_.root; }

 private:
  struct InProgress;

  FileApplier(FileApplierOptions options, UniqueFd root_fd);

  Result<FileApplyOutcome> ApplyChecked(const pb::FileChange& change);
  Result<FileApplyOutcome> ApplyFile(const pb::FileChange& change);
  Result<FileApplyOutcome> ApplyFileMetaOnly(const pb::FileChange& change);
  Result<FileApplyOutcome> FinishFile(const pb::FileChange& change);
  Result<FileApplyOutcome> ApplyDirectory(const pb::FileChange& change);
  Result<FileApplyOutcome> ApplySymlink(const pb::FileChange& change);
  Result<FileApplyOutcome> ApplyDelete(const pb::FileChange& change);
  Result<FileApplyOutcome> ApplyRename(const pb::FileChange& change);
  // Discards the file in progress, if any: closes it and removes its temporary file.
  void DiscardInProgress();
  // ".replsync-tmp." followed by 16 random hex digits.
  std::string TempName();

  FileApplierOptions options_;
  UniqueFd root_fd_;  // the root, O_RDONLY | O_DIRECTORY
  std::mt19937_64 random_;
  std::unique_ptr<InProgress> in_progress_;
  std::optional<std::string> refusing_;  // the FILE whose further parts are refused
  uint64_t refused_ = 0;
  uint64_t orphan_parts_ = 0;  // parts of files whose first parts never came (logged)
};

}  // namespace replsync::apply
