// NodeStatus: what a replsyncd says about itself, and the one place that knows the layout of
// <state_dir>/status.json (schemas/status.md, format version 1). The daemon's nodes fill it
// (capture/primary_node.h, apply/secondary_node.h); ToJson gives the bytes replsyncd writes;
// Parse reads them back for `replsync status` and the tests.
//
// The structs mirror the JSON objects: NodeStatus is the top level, Primary the "primary"
// object (the capture's and the shipper's fields side by side, as the schema has them),
// Secondary the "secondary" object (the receiver's and the applier's). Member order is the
// order of the keys in the file.
// Thread-safety: a value type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sync/status.h"

namespace replsync {

struct NodeStatus {
  static constexpr uint32_t kVersion = 1;

  // primary.captured: what the capture journaled since the daemon started.
  struct Captured {
    uint64_t transactions = 0;
    uint64_t skipped_transactions = 0;  // with nothing to replicate
    uint64_t rows = 0;
    uint64_t bytes = 0;
    bool operator==(const Captured&) const = default;
  };
  // primary.journal
  struct JournalStats {
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;
    uint64_t entries = 0;
    uint64_t bytes = 0;
    uint64_t max_bytes = 0;
    bool full = false;
    bool operator==(const JournalStats&) const = default;
  };
  // primary.files: the file capture, when [repository] path is set.
  struct FileCapture {
    std::string root;
    std::string state;  // "scanning", "watching", "failed" ("stopped" once stopped)
    uint64_t files_pending = 0;
    uint64_t bytes_pending = 0;
    int64_t last_rescan = 0;  // seconds since the epoch; 0: none yet
    std::string last_rescan_reason;
    uint64_t rescans = 0;
    uint64_t watches = 0;
    uint64_t changes_journaled = 0;
    uint64_t literal_bytes = 0;
    uint64_t copied_bytes = 0;
    uint64_t abandoned_reads = 0;
    uint64_t resyncs_requested = 0;
    bool operator==(const FileCapture&) const = default;
  };
  // primary.peers[]: a secondary the shipper knows.
  struct Peer {
    std::string name;
    bool connected = false;
    uint64_t durable_seq = 0;
    uint64_t applied_seq = 0;
    uint64_t sent_seq = 0;
    uint64_t lag_entries = 0;
    double last_seen = 0;         // seconds since the epoch; 0: not since the daemon started
    bool ever_connected = false;  // false: configured, never said Hello (it pins the journal)
    std::string last_error;
    bool operator==(const Peer&) const = default;
  };
  // "primary"
  struct Primary {
    // The capture.
    std::string capture_state;  // CaptureStateName
    std::string source;
    std::string binlog_position;  // durable: after the last captured transaction
    std::string read_position;
    std::string gtid;
    int64_t lag_seconds = 0;
    Captured captured;
    JournalStats journal;
    std::optional<FileCapture> files;
    // The shipper.
    std::string endpoint;
    uint64_t entries_sent = 0;
    uint64_t bytes_sent = 0;
    uint64_t bad_frames = 0;
    uint64_t abandoned_file_parts = 0;
    uint64_t refused_requests = 0;    // peer requests refused (bad paths, forged positions, limits)
    uint64_t refused_peers = 0;       // connections refused (key not in [peers], failed handshake)
    std::string last_refused_peer;    // the latest, as logged
    double last_refused_peer_at = 0;  // seconds since the epoch; 0: none
    std::vector<Peer> peers;          // every configured secondary
    // primary.bootstrap[]: what the bootstrap service served each peer since the daemon
    // started (capture/bootstrap_server.h); the key is left out while it served nobody.
    struct BootstrapPeer {
      std::string name;
      uint64_t rounds_open = 0;
      uint64_t rounds_begun = 0;
      uint64_t chunks = 0;  // chunks and pieces served
      uint64_t rows = 0;
      uint64_t bytes = 0;       // row text read
      uint64_t wire_bytes = 0;  // compressed, as sent
      std::string last_error;
      bool operator==(const BootstrapPeer&) const = default;
    };
    std::vector<BootstrapPeer> bootstrap;
    bool operator==(const Primary&) const = default;
  };

  // secondary.files: the file applier.
  struct FileApply {
    std::string root;
    uint64_t changes_applied = 0;
    uint64_t batches = 0;
    uint64_t resync_pending = 0;
    uint64_t changes_refused = 0;  // devices, FIFOs, sockets not created
    bool operator==(const FileApply&) const = default;
  };
  // secondary.lag: how far the applier is behind the primary's journal.
  struct Lag {
    uint64_t transactions = 0;
    uint64_t bytes = 0;
    double seconds = 0;
    bool operator==(const Lag&) const = default;
  };
  // secondary.relay
  struct RelayStats {
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;
    uint64_t entries = 0;
    uint64_t bytes = 0;
    bool operator==(const RelayStats&) const = default;
  };
  // secondary.bootstrap: the latest bootstrap of this secondary (schemas/bootstrap.md).
  struct Bootstrap {
    std::string token;  // the request's (`replsync bootstrap` follows its own)
    // refused | starting | copying | objects | files | done | failed
    std::string phase;
    bool resync = false;
    std::string start_position;  // P_0, the first round's point ("" before it)
    uint64_t tables_total = 0;
    uint64_t tables_done = 0;
    uint64_t rows_done = 0;  // rows loaded (or found equal, with resync)
    uint64_t rows_estimated = 0;
    uint64_t bytes_done = 0;  // row data loaded
    uint64_t bytes_estimated = 0;
    double bytes_per_second = 0;
    int64_t eta_seconds = -1;  // -1: not known yet
    uint64_t round = 0;
    double snapshot_age_seconds = 0;  // how long the current round's snapshots are held
    uint32_t lock_ms = 0;             // the longest commit block a round needed
    uint64_t files_total = 0;         // paths that differed
    uint64_t files_done = 0;
    // Chunks loaded (rows shipped), and with resync the chunks and rows found equal (compared
    // by their summaries, nothing shipped); counted by this daemon since it took the bootstrap.
    uint64_t chunks_loaded = 0;
    uint64_t chunks_equal = 0;
    uint64_t rows_equal = 0;
    // What a refused bootstrap would have replaced ("app: 12 tables, about 50000 rows").
    std::vector<std::string> refused;
    std::string error;
    int exit_code = -1;  // once ended: 0 done, 1 refused, 2 could not; -1 while it runs
    double started_at = 0;
    double finished_at = 0;
    // The object as it stands in status.json (`replsync bootstrap --json` prints it).
    std::string ToJson() const;
    bool operator==(const Bootstrap&) const = default;
  };
  // "secondary"
  struct Secondary {
    std::string primary;         // the primary's endpoint
    std::string receiver_state;  // ReceiverStateName
    std::string applier_state;   // ApplierStateName
    bool connected = false;
    // When the primary was last heard from (any message), seconds since the epoch; 0: not since
    // the daemon started. /health/secondary compares it with [health] peer_timeout_seconds.
    double last_heard = 0;
    uint64_t received_seq = 0;
    uint64_t primary_last_seq = 0;
    uint64_t applied_seq = 0;
    std::string applied_gtid;
    std::string source_position;
    uint64_t transactions_applied = 0;
    uint64_t rows_applied = 0;
    int apply_workers = 0;
    uint64_t parallel_applied = 0;
    uint64_t serial_fallbacks = 0;
    std::string waiting_for;
    FileApply files;
    Lag lag;
    RelayStats relay;
    uint64_t reconnects = 0;
    uint64_t entries_refused =
        0;  // entries over the size caps or zstd bombs (dropped, asked again)
    // Why the primary's end does not let this node in (refused key, not the configured
    // primary); "" once connected.
    std::string primary_refusal;
    // Tables entering the set ("db.table"): their changes are left out until they are copied
    // from the primary (schemas/bootstrap.md "Tables entering and leaving the set").
    std::vector<std::string> entering;
    std::optional<Bootstrap> bootstrap;  // once one was asked for (or is in progress)
    bool operator==(const Secondary&) const = default;
  };

  uint32_t version = kVersion;
  std::string role;  // RoleName: "primary" or "secondary"
  std::string name;
  int64_t pid = 0;
  double started_at = 0;  // seconds since the epoch
  double updated_at = 0;
  std::string state;  // "running", "waiting", "paused", "error"
  std::string error;  // the last error, "" when none
  // "curve" (keys on every ZeroMQ socket) or "insecure" ([transport] insecure = true).
  std::string transport;
  // The group's epoch as this node knows it, and whether it is a fenced old primary (with why):
  // <state_dir>/role.json (schemas/failover.md).
  uint64_t epoch = 0;
  bool fenced = false;
  std::string fenced_by;
  // A primary: PeerWatch asked every peer once since the start (answered or not), so a higher
  // epoch or a second primary reachable then would have fenced it.
  bool peers_asked = false;
  // The node's database is read-only as replsync keeps it (a secondary's, a fenced primary's),
  // and why not when it should be ("" otherwise).
  bool read_only = false;
  std::string read_only_problem;
  std::optional<Primary> primary;      // on a primary
  std::optional<Secondary> secondary;  // on a secondary

  bool operator==(const NodeStatus&) const = default;

  // The status file's bytes: one line of JSON without spaces, keys in member order, optional
  // objects left out when empty.
  std::string ToJson() const;
  // Reads what ToJson wrote. Keys it does not know are ignored and missing keys keep their
  // defaults (keys are only ever added to the format). Corruption when `json` is not a JSON
  // object or a known key has a value of the wrong type (the message names the key).
  static Result<NodeStatus> Parse(std::string_view json);
};

// What `replsync status --json` prints (schemas/status.md): the status file's keys, then
// "last_verify" (the object `last_verify_json` holds, verbatim; left out when that is not a JSON
// object), "running" and "status_age_seconds"; indented by two spaces.
std::string StatusReportJson(const NodeStatus& status, std::string_view last_verify_json,
                             bool running, double status_age_seconds);

}  // namespace replsync
