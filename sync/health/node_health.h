// The decisions of a node's health paths (README "Health endpoint", schemas/health.md): one pure
// function per path, from what the node reports (HealthInput: the latest NodeStatus that
// replsyncd's main loop took, about one a second) and the [health] limits to the answer: 200
// when the node is fit for what the path asks, else 503, with a JSON body that says why
// ("reason": every failed condition, joined by "; ") and the figures it was judged on.
//
// Each function checks its conditions in the order written in its comment; a condition that
// needs more of the node's state (epoch, fencing, read_only, issue 15) is added to HealthInput
// and checked in the function of its path.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string_view>

#include "sync/health/health_answer.h"
#include "sync/node/node_status.h"

namespace replsync::health {

inline constexpr std::string_view kPrimaryPath = "/health/primary";
inline constexpr std::string_view kSecondaryPath = "/health/secondary";
inline constexpr std::string_view kReadyPath = "/health/ready";
inline constexpr std::string_view kLivePath = "/health/live";

struct HealthLimits {
  double max_lag_seconds = 10;       // [health] max_lag_seconds, or the request's
  double peer_timeout_seconds = 10;  // [health] peer_timeout_seconds
  // The main loop takes a status about every second: a status older than this means the loop
  // does not run, and no path vouches for the node on it.
  double loop_timeout_seconds = 5;
};

// What the decisions read.
struct HealthInput {
  std::optional<NodeStatus> status = std::nullopt;  // the main loop's latest; none before its first
  double now = 0;  // wall-clock seconds since the epoch (status times' clock)
  // A primary handing over to another node (`replsync switchover`): why it is not primary now.
  std::string handing_over = "";
};

// Every path first: a status exists ("starting" before the first) and is at most
// loop_timeout_seconds old. Its body then has node, role, state, error, epoch, fenced,
// status_age_seconds.

// /health/primary: 200 when the node runs as primary, is not fenced (schemas/failover.md), has
// asked every other node once whether one of them is primary (peers_asked), its capture runs
// (it reads its server's binlog: the server is reachable) and its journal is not full. Body:
// capture_state,
// binlog_position, gtid, lag_seconds, journal {entries, bytes, max_bytes, full}, peers
// [{name, connected, lag_entries, last_seen}].
HealthAnswer PrimaryHealth(const HealthInput& in, const HealthLimits& limits);

// /health/secondary: 200 when the node runs as secondary, no bootstrap is under way, the
// applier runs ("applying" or "waiting"), no table is still entering the set, the lag is at
// most max_lag_seconds and the primary was heard from within peer_timeout_seconds. Body:
// primary, receiver_state, applier_state, connected, primary_heard_seconds_ago (-1: never),
// received_seq, primary_last_seq, applied_seq, applied_gtid, source_position, lag
// {transactions, bytes, seconds}, max_lag_seconds, peer_timeout_seconds.
HealthAnswer SecondaryHealth(const HealthInput& in, const HealthLimits& limits);

// /health/ready: 200 when this node could be promoted now without losing anything it has
// received (`replsync promote` would succeed without --force): it runs as secondary, no
// bootstrap is under way, the applier runs (what was received can all be applied), no table is
// still entering the set, and the primary's journal, when last heard of, held nothing this node
// did not receive. Body: applier_state, received_seq, primary_last_seq, applied_seq.
HealthAnswer ReadyHealth(const HealthInput& in, const HealthLimits& limits);

// /health/live: 200 while the main loop runs (the status check above, nothing else: a node
// whose applier stopped on an error is still live). Body adds pid.
HealthAnswer LiveHealth(const HealthInput& in, const HealthLimits& limits);

}  // namespace replsync::health
