// PrimaryNode: the primary as replsyncd runs it. It wires the journal
// (<state_dir>/journal), the capture service (binlog -> journal; the journal's one writer), the
// file capture (when [repository] path is set; its entries go through the capture's writer),
// the shipper and its transport ([transport] listen), and reports their state as the "primary"
// part of the status file (sync/node/node_status.h).
//
// Start order is the order data flows in (capture, files, shipper); Stop goes the other way round
// from the shipper (nothing more is sent), then the file capture, then the capture, which appends
// what is queued and carries out the last retention.
// Thread-safety: as Node (status() from any thread; Start/Stop from the owner).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "capture/bootstrap_server.h"
#include "capture/capture_service.h"
#include "capture/files/file_capture.h"
#include "capture/shipper.h"
#include "sync/clock.h"
#include "sync/config.h"
#include "sync/journal/journal.h"
#include "sync/mysql/read_only_keeper.h"
#include "sync/node/node.h"
#include "sync/node/role_keeper.h"
#include "sync/wire/peer_watch.h"
#include "sync/wire/transport_security.h"

namespace replsync::capture {

struct PrimaryNodeOptions {
  // Wall-clock stamps of the status (started_at, updated_at).
  Clock* clock = &SystemClock();
  // The node's role and epoch (schemas/failover.md): the shipper states them and answers
  // probes, PeerWatch asks the peers, and a node the keeper says is fenced starts fenced (its
  // database kept read-only, no capture, no file watcher, no session served). Unset: no epochs.
  RoleKeeper* role = nullptr;
  // Test hooks of the bootstrap service (BootstrapServerOptions::after_snapshot, before_chunk).
  std::function<void(const BinlogPosition& point)> bootstrap_after_snapshot;
  std::function<void(const std::string& db, const std::string& table)> bootstrap_before_chunk;
};

class PrimaryNode : public Node {
 public:
  // Opens the journal and binds the transport, and builds (without starting) the capture, the
  // shipper and the file capture; the transport serves the [peers] of `security` (from
  // LoadTransportSecurity(config)). Errors: the journal's, the transport's (InvalidArgument for
  // a bad endpoint, Network when it cannot bind).
  static Result<std::unique_ptr<PrimaryNode>> Open(const NodeConfig& config,
                                                   const TransportSecurity& security,
                                                   PrimaryNodeOptions options = {});
  ~PrimaryNode() override;  // stops
  PrimaryNode(const PrimaryNode&) = delete;
  PrimaryNode& operator=(const PrimaryNode&) = delete;

  // Starts the capture, then the file capture, then the shipper. Errors are the part's,
  // prefixed "capture: ", "files: " or "shipper: ".
  Status Start() override;
  void Stop() override;
  // state: "error" when the capture or the file capture failed, "paused" while the journal is
  // full, "waiting" while the capture connects to its server, else "running"; error: the
  // capture's last error, else the shipper's, else the file capture's.
  NodeStatus status() const override;
  Result<std::vector<TailFileChange>> FileChangesAfter(uint64_t seq) const override;
  // A bootstrap client's CHANGED_PATHS (`replsync rejoin` on the old primary asks the node
  // promoted after it): the paths of FileChangesAfter(after_seq), answered on the shipper's
  // thread (it reads the journal after the fork once per rejoin).
  pb::BootstrapReply ChangedPaths(const pb::BootstrapRequest& request) const;

 private:
  PrimaryNode(const NodeConfig& config, PrimaryNodeOptions options,
              std::unique_ptr<Journal> journal);
  void Build(std::unique_ptr<ServerTransport> transport, std::vector<PeerWatch::Peer> peers);
  // A node promoted at `state`'s epoch whose journal is new continues the old primary's journal
  // sequence (schemas/failover.md "Several secondaries"): its first entry is the fork's
  // journal_seq + 1, so a secondary that had what it had follows it from there. Returns true
  // while the journal holds nothing after the fork (the database is still read-only from the
  // promotion: Start makes it writable once the capture runs). Errors: the journal's.
  static Result<bool> ContinueAfterPromotion(const RoleState& state, const std::string& self,
                                             Journal& journal);

  const PrimaryNodeOptions options_;
  const NodeConfig config_;
  Clock& clock_;
  const double started_at_;
  std::unique_ptr<Journal> journal_;
  MariadbSourceFactory factory_;
  std::unique_ptr<FileContentReader> content_reader_;  // when files replicate
  std::unique_ptr<BootstrapServer> bootstrap_;
  std::unique_ptr<Shipper> shipper_;
  std::unique_ptr<CaptureService> capture_;
  std::unique_ptr<FileCapture> files_;     // when files replicate
  std::unique_ptr<PeerWatch> peer_watch_;  // with options_.role
  // Started fenced: keeps the database read-only (set again if someone turns it off) until Stop.
  std::unique_ptr<ReadOnlyKeeper> read_only_;
  // Not fenced: looks at the database's read_only every 2 s (never sets it), for the status.
  std::unique_ptr<ReadOnlyKeeper> db_look_;
  // files_ once it runs: the shipper's callbacks (its thread) reach the file capture through it.
  std::atomic<FileCapture*> running_files_{nullptr};
  bool started_ = false;         // Start succeeded; Stop not called since
  bool promoted_start_ = false;  // ContinueAfterPromotion's answer at Open
};

}  // namespace replsync::capture
