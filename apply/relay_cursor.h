// RelayCursor: reads the relay journal's entries for the applier, each one once, and says what it
// found: nothing yet, a database transaction (or one of its parts), or a file change. The caller
// decides on that one reading and acts on the value it holds; it never looks at the same
// sequence again to decide differently (a receiver may store the entry between two reads).
//
// Errors: Corruption for bytes that do not parse as a journal entry; Unsupported for an entry of
// a kind this replsync cannot apply; NotFound for an entry already deleted from the relay (the
// secondary's database says it was never applied: it was restored to an older state); IoError
// from the relay itself.
// Thread-safety: not thread-safe; the applier's thread owns it. The relay may be written by the
// receiver at the same time.
#pragma once

#include <cstdint>
#include <variant>

#include "replsync.pb.h"
#include "sync/journal/journal.h"
#include "sync/status.h"

namespace replsync::apply {

// The entry is not in the relay yet.
struct NotYet {};

// What one read of the relay found at a sequence.
struct RelayItem {
  uint64_t seq = 0;
  std::variant<NotYet, pb::DbTransaction, pb::FileChange> entry;

  bool not_yet() const { return std::holds_alternative<NotYet>(entry); }
  bool is_db() const { return std::holds_alternative<pb::DbTransaction>(entry); }
  bool is_file() const { return std::holds_alternative<pb::FileChange>(entry); }
  pb::DbTransaction& db() { return std::get<pb::DbTransaction>(entry); }
  const pb::DbTransaction& db() const { return std::get<pb::DbTransaction>(entry); }
  pb::FileChange& file() { return std::get<pb::FileChange>(entry); }
};

class RelayCursor {
 public:
  // `relay` is not owned and must outlive the cursor.
  explicit RelayCursor(const Journal* relay) : relay_(relay) {}

  // Reads the entry at `seq` once (see the file comment for errors).
  Result<RelayItem> Read(uint64_t seq) const;
  // True when the relay holds an entry after `seq` (a hint: entries only ever get added).
  bool HasAfter(uint64_t seq) const { return relay_->last_seq() > seq; }

 private:
  const Journal* const relay_;
};

}  // namespace replsync::apply
