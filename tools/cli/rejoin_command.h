// `replsync rejoin --config FILE [--dry-run] [--json]` on a fenced old primary, and the daemon's
// part of it (schemas/failover.md "replsync rejoin").
//
// The command asks the node's replsyncd (a role request, sync/node/role_request.h). The daemon
// finds the unshipped tail: the transactions in the node's own binlog after the fork point
// (where the promoted node's data left this node's) that changed the replicated databases, and
// the file changes its journal holds after the fork's journal sequence. --dry-run reports it
// (exit 1 when there is a tail, 0 when none). Without it the daemon quarantines the tail in
// <state_dir>/quarantine/<epoch>/ (tail.binlog, the binlog segment from the fork to the end as a
// binlog file mariadb-binlog reads; files/, copies of the tail's paths as they are now;
// report.json), never merging it; asks for a bootstrap --resync (the node's rows and files made
// the new primary's: what the tail changed is overwritten, what it added removed) and becomes a
// secondary of the promoted node. The command then follows that bootstrap: exit 0 when the node
// is an equal, following secondary; 1 refused (not a fenced old primary); 2 could not.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "capture/binlog/binlog_tail.h"
#include "sync/config.h"
#include "sync/node/node.h"
#include "sync/node/role_state.h"

namespace replsync::cli {

struct RejoinCommandOptions {
  std::string config_path;
  bool dry_run = false;
  bool json = false;
  std::chrono::seconds timeout{600};  // for the daemon's reply (it reads the binlog tail)
  std::chrono::milliseconds poll{200};
};

int RunRejoin(const RejoinCommandOptions& options, std::FILE* out);

// An old primary's unshipped tail (the daemon's part).
struct RejoinTail {
  ForkPoint fork;
  capture::BinlogTail rows;
  std::vector<TailFileChange> files;
  std::string quarantine;  // the folder it was quarantined in; "" for a dry run
  // Why the tail paths could not be checked against the promoted node's changes (files[].conflict
  // then says nothing); "" when they were (or there is no file in the tail).
  std::string conflicts_unknown;
  // A fork without old_primary (the promoted node was a primary of the same epoch as this one):
  // where their data parted is not known, and this says so; the rows are not listed (its
  // journal, quarantined, holds every transaction it captured) and the files are every change
  // its journal holds.
  std::string fork_unknown;

  bool empty() const { return rows.transactions.empty() && files.empty() && fork_unknown.empty(); }
  // The report: {"node","fork":{..},"transactions":[..],"skipped_transactions","binlog_end",
  // "files":[{"seq","change","path","from_path","conflict"}],"conflicts","quarantine"}
  // ("conflicts": "checked", or why they could not be).
  std::string ToJson(const std::string& node) const;
  std::string ToText(const std::string& node) const;
};

// Marks each of `files` whose path or rename source is, is below, or is above a path of
// `changed` (what the promoted node changed after the fork) as a conflict.
void MarkConflicts(const std::vector<std::string>& changed, std::vector<TailFileChange>* files);

// <state_dir>/quarantine/<epoch>
std::string QuarantineDir(const std::string& state_dir, uint64_t epoch);

// Reads the tail of `node` (the running fenced old primary of `config`) after `fork`. With
// `quarantine`, copies it into QuarantineDir(fork.epoch) as described above, report included.
// Errors name what failed (the binlog read, the journal, a copy).
Result<RejoinTail> FindRejoinTail(const NodeConfig& config, const ForkPoint& fork, const Node& node,
                                  bool quarantine);

// Moves the files or folders `names` of `state_dir` into `dir` (a name taken there gets a
// suffix); one that is not there is skipped. What an old primary keeps that a secondary must not:
// its journal (whose binlog checkpoint a later promotion would capture from again) and its file
// manifest, moved where a node starts as a secondary; and its relay, left from an older stream
// (its sequences are not the new primary's), moved by rejoin.
Status QuarantineState(const std::string& state_dir, const std::string& dir,
                       const std::vector<std::string>& names);

}  // namespace replsync::cli
