// RecentBegins: where the capture's recent transactions begin in the binlog, by the journal
// sequence of their first entry — so that a bootstrap round's point P can be placed in the
// journal exactly (the first sequence whose transaction begins at or after P) even after the
// primary's retention deleted the entries a secondary already holds (it deletes what a
// secondary has durably received, which may be past P; schemas/bootstrap.md "The stream's
// start").
//
// Fed in journal order from the capture's write callback; bounded (the oldest forgotten first).
// Thread-safety: none (the capture service guards it with its status mutex).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

#include "sync/position.h"

namespace replsync::capture {

class RecentBegins {
 public:
  explicit RecentBegins(size_t capacity = 1 << 16) : capacity_(capacity) {}

  // The transaction whose first entry is `seq` begins at `begin` (seqs increase).
  void Add(uint64_t seq, const BinlogPosition& begin) {
    begins_.emplace_back(seq, begin);
    if (begins_.size() > capacity_) {
      begins_.pop_front();
      forgot_ = true;
    }
  }
  // The journal's last sequence after a write: entries after it were removed (an unfinished
  // transaction the capture gave up on; those sequences are used again).
  void Written(uint64_t last_seq) {
    while (!begins_.empty() && begins_.back().first > last_seq) begins_.pop_back();
    last_seq_ = last_seq;
  }

  // The first journal sequence at or after which every transaction begins at or after `point`
  // and before which every one begins before it, for a `point` the capture has journaled up to
  // (every transaction beginning before it was added): the first entry of the first
  // transaction beginning at or after it, or the sequence after the last written when none has
  // yet. nullopt when the transactions remembered all begin at or after `point` and older ones
  // were forgotten (the answer is among them).
  std::optional<uint64_t> FirstAtOrAfter(const BinlogPosition& point) const {
    std::optional<uint64_t> found;
    for (auto it = begins_.rbegin(); it != begins_.rend(); ++it) {
      if (it->second < point) return found.value_or(last_seq_ + 1);
      found = it->first;
    }
    if (forgot_) return std::nullopt;
    return found.value_or(last_seq_ + 1);
  }

 private:
  size_t capacity_;
  std::deque<std::pair<uint64_t, BinlogPosition>> begins_;
  uint64_t last_seq_ = 0;
  bool forgot_ = false;
};

}  // namespace replsync::capture
