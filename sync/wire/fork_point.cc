#include "sync/wire/fork_point.h"

namespace replsync {

pb::ForkPoint ForkToProto(const ForkPoint& fork) {
  pb::ForkPoint out;
  out.set_epoch(fork.epoch);
  out.set_promoted(fork.promoted);
  out.set_old_primary(fork.old_primary);
  out.set_journal_seq(fork.journal_seq);
  out.set_gtid(fork.gtid);
  out.set_binlog_file(fork.binlog_file);
  out.set_binlog_offset(fork.binlog_offset);
  out.set_manifest(fork.manifest);
  out.set_at(fork.at);
  out.set_lost(fork.lost);
  return out;
}

ForkPoint ForkFromProto(const pb::ForkPoint& fork) {
  return {.epoch = fork.epoch(),
          .promoted = fork.promoted(),
          .old_primary = fork.old_primary(),
          .journal_seq = fork.journal_seq(),
          .gtid = fork.gtid(),
          .binlog_file = fork.binlog_file(),
          .binlog_offset = fork.binlog_offset(),
          .manifest = fork.manifest(),
          .at = fork.at(),
          .lost = fork.lost()};
}

}  // namespace replsync
