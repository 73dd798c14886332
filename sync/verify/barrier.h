// Verify's barrier files (schemas/verify.md, "Barrier files"): the one owner of their byte layout.
//
// `state_dir/verify.barrier` is written by verify and repair (the holding half, consistent_point
// and file_verify) and read by the secondary's applier (apply/applier_barrier.cc);
// `state_dir/verify.paused` is written by the applier where it holds and read by verify. Both are
// text, one `key value` line per field, written atomically (temporary file + rename). Nothing
// else formats or parses them: the value types below and their Read/Write helpers do.
//
// Thread-safety: the value types are plain values; the file helpers touch only their path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sync/position.h"
#include "sync/status.h"

namespace replsync::verify {

// The files' paths in a node's state folder.
std::string BarrierFilePath(const std::string& state_dir);  // verify.barrier
std::string PausedFilePath(const std::string& state_dir);   // verify.paused
// Held by a running verify or repair (sync/file_lock.h); the applier lifts a barrier only
// when it can take this lock itself.
std::string VerifyLockPath(const std::string& state_dir);  // verify.lock

// Where a barrier holds the applier (`stop_before`):
// - now: before the next database transaction (file entries pass), or when idle;
// - all: before the next entry of either kind, or when idle;
// - a binlog position `file:offset` of the primary: before the first database transaction that
//   begins at or after it;
// - `seq:N` (N > 0): before any relay entry from sequence N on, and when idle once N - 1 is
//   applied.
struct StopBefore {
  enum class Kind { kNow, kAll, kPosition, kSeq };

  Kind kind = Kind::kNow;
  BinlogPosition position;  // kPosition
  uint64_t seq = 0;         // kSeq: N

  static StopBefore Now() { return {}; }
  static StopBefore All() { return {Kind::kAll, {}, 0}; }
  static StopBefore At(BinlogPosition position) {
    return {Kind::kPosition, std::move(position), 0};
  }
  static StopBefore Seq(uint64_t n) { return {Kind::kSeq, {}, n}; }

  // "now", "all", "binlog.000003:1234", "seq:42".
  std::string ToString() const;
  // The inverse of ToString. Errors: InvalidArgument "bad stop_before '<text>'".
  static Result<StopBefore> Parse(std::string_view text);

  bool operator==(const StopBefore& other) const = default;
};

// The content of verify.barrier: which verify holds the applier, and where.
struct VerifyBarrier {
  std::string token;  // random hex naming the verify (NewBarrierToken)
  StopBefore stop;
  // The process that wrote it, for the humans who read the file (liveness is verify.lock's);
  // 0 when the file names none.
  uint64_t pid = 0;

  // "token T\nstop_before S\npid P\n".
  std::string Format() const;
  // The inverse of Format. Lines it does not know, or without a space, are ignored; a missing
  // token or pid is empty or 0. Errors: InvalidArgument "bad stop_before '<text>'" (also when
  // the line is missing: then the text is empty).
  static Result<VerifyBarrier> Parse(std::string_view text);

  bool operator==(const VerifyBarrier& other) const = default;
};

// The content of verify.paused: the applier holds at the barrier (token, stop) and stands here.
struct PausedAt {
  std::string token;         // as in the barrier it holds at
  StopBefore stop;           // as in the barrier it holds at
  uint64_t applied_seq = 0;  // the last sequence applied (replsync.applied.seq)
  // The primary's binlog position after the last applied transaction ("file:offset"; ":0" when
  // none was applied yet) and its GTID ("" when none): for people, verify does not read them.
  std::string source;
  std::string gtid;

  // "token T\nstop_before S\napplied_seq N\nsource F:O\ngtid G\n".
  std::string Format() const;
  // The inverse of Format, as lenient as VerifyBarrier::Parse. Errors: InvalidArgument for a bad
  // stop_before (as above) or an applied_seq that is not a number.
  static Result<PausedAt> Parse(std::string_view text);

  bool operator==(const PausedAt& other) const = default;
};

// Writes the file atomically (sync/atomic_file.h). Errors: IoError "write verify's barrier
// <path>: ..." (or "verify's paused file").
Status WriteBarrierFile(const std::string& path, const VerifyBarrier& barrier);
Status WritePausedFile(const std::string& path, const PausedAt& paused);

// Reads and parses the file. Errors: NotFound when it does not exist (no barrier; the applier
// has not paused), IoError when it cannot be read, and Parse's errors.
Result<VerifyBarrier> ReadBarrierFile(const std::string& path);
Result<PausedAt> ReadPausedFile(const std::string& path);

// Removes verify.barrier: the applier goes on. A file already gone is not an error.
// Errors: IoError naming the path.
Status RemoveBarrierFile(const std::string& path);

}  // namespace replsync::verify
