#include "apply/relay_cursor.h"

#include <fmt/format.h>

#include <optional>
#include <string>
#include <utility>

namespace replsync::apply {

Result<RelayItem> RelayCursor::Read(uint64_t seq) const {
  RelayItem item;
  item.seq = seq;
  RS_ASSIGN_OR_RETURN(std::optional<std::string> bytes, relay_->Get(seq));
  if (!bytes) {
    if (relay_->first_seq() > seq && relay_->last_seq() >= seq) {
      return Status::NotFound(fmt::format(
          "entry {} is no longer in the relay journal {} (it holds {}..{}), but the secondary's "
          "replsync.applied says seq {} was the last applied: the database was restored to an "
          "older state or replsync.applied was changed; resynchronise the secondary",
          seq, relay_->path(), relay_->first_seq(), relay_->last_seq(), seq - 1));
    }
    return item;
  }
  pb::JournalEntry entry;
  if (!entry.ParseFromString(*bytes)) {
    return Status::Corruption(
        fmt::format("relay entry {} in {} ({} bytes) does not parse as a journal entry", seq,
                    relay_->path(), bytes->size()));
  }
  if (entry.has_db()) {
    item.entry = std::move(*entry.mutable_db());
  } else if (entry.has_file()) {
    item.entry = std::move(*entry.mutable_file());
  } else {
    return Status::Unsupported(fmt::format(
        "relay entry {} is of a kind this replsync cannot apply; upgrade replsync on the secondary",
        seq));
  }
  return item;
}

}  // namespace replsync::apply
