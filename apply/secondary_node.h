// SecondaryNode: the secondary as replsyncd runs it. It wires the relay journal
// (<state_dir>/relay), the receiver (the relay's one writer, following the primary at
// [transport] primary) and the applier (relay -> this node's database and repository), and
// reports their state as the "secondary" part of the status file (sync/node/node_status.h).
//
// The applier starts first (the receiver waits for its applied position); Stop goes the other
// way round. The bootstrapper (apply/bootstrapper.h) runs beside them: it may hold the applier,
// and stops and starts both while it moves the stream's start to its copy's point. The paths the
// applier wants whole from the primary reach the receiver through ApplierOptions::on_file_resync,
// kept aside while the receiver does not run. Thread-safety: as Node (status() from any thread;
// Start/Stop from the owner).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "apply/applier.h"
#include "apply/bootstrapper.h"
#include "apply/receiver.h"
#include "sync/clock.h"
#include "sync/config.h"
#include "sync/journal/journal.h"
#include "sync/mysql/read_only_keeper.h"
#include "sync/node/node.h"
#include "sync/node/role_keeper.h"
#include "sync/wire/peer_watch.h"
#include "sync/wire/transport_security.h"

namespace replsync::apply {

struct SecondaryNodeOptions {
  // Wall-clock stamps of the status and the lag in seconds.
  Clock* clock = &SystemClock();
  // The node's role and epoch (schemas/failover.md): stated in the receiver's Hello, raised by
  // the primary's Heartbeats. Unset: no epochs.
  RoleKeeper* role = nullptr;
};

class SecondaryNode : public Node {
 public:
  // InvalidArgument, saying what to write, when `config` has no [transport] primary.
  static Status CheckConfig(const NodeConfig& config);
  // Opens the relay, connects the transport to the primary, and builds (without starting) the
  // applier and the receiver; the transport proves this node with `security`'s key and accepts
  // only the key of the [peers] entry whose endpoint is [transport] primary. Errors:
  // CheckConfig's, NotFound when no [peers] entry has the primary's endpoint, the relay's, the
  // transport's.
  static Result<std::unique_ptr<SecondaryNode>> Open(const NodeConfig& config,
                                                     const TransportSecurity& security,
                                                     SecondaryNodeOptions options = {});
  ~SecondaryNode() override;  // stops
  SecondaryNode(const SecondaryNode&) = delete;
  SecondaryNode& operator=(const SecondaryNode&) = delete;

  // Starts the applier, then the receiver. Errors are the part's, prefixed "applier: " or
  // "receiver: ".
  Status Start() override;
  void Stop() override;
  // state: "error" when the applier stopped on an error, "running" while the receiver hears
  // from the primary, else "waiting"; error: the applier's last error, else the receiver's.
  NodeStatus status() const override;
  Result<ForkPoint> PrepareForPromotion(bool force, std::chrono::seconds timeout) override;

 private:
  SecondaryNode(const NodeConfig& config, SecondaryNodeOptions options,
                std::unique_ptr<Journal> relay);
  void Build(std::unique_ptr<ClientTransport> transport);
  // Before the stream starts: when the role state knows of a promotion after the relay's
  // entries came (relay meta kStreamEpochKey), PlanFollow's plan is carried out (unapplied
  // entries after the fork dropped, or a bootstrap --resync requested) and the relay marked as
  // following that epoch. Errors: the relay's, the database's (the applied position is read).
  Status FollowPromotion();
  static constexpr const char* kStreamEpochKey = "stream_epoch";
  // ApplierOptions::on_file_resync: to the receiver when it runs, else kept for its start.
  void OnFileResync(std::vector<std::string> paths);
  // The bootstrapper's hold on the stream (BootstrapperOptions::Stream).
  void StopStream();
  Status StartStream();

  const NodeConfig config_;
  const SecondaryNodeOptions options_;
  Clock& clock_;
  const double started_at_;
  std::unique_ptr<Journal> relay_;
  std::unique_ptr<Applier> applier_;
  std::unique_ptr<Receiver> receiver_;
  std::unique_ptr<Bootstrapper> bootstrapper_;
  // Keeps the database read-only (only the applier, with READ_ONLY ADMIN, writes it).
  ReadOnlyKeeper read_only_;
  std::mutex stream_mu_;  // Start/Stop of the applier and the receiver: the owner's and the
                          // bootstrapper's
  std::mutex resync_mu_;
  std::vector<std::string> early_resync_;  // guarded by resync_mu_: reported before Start
  Receiver* running_receiver_ = nullptr;  // guarded by resync_mu_: receiver_ between Start and Stop
  std::unique_ptr<PeerWatch> peer_watch_;  // with options_.role
  bool started_ = false;                   // Start succeeded; Stop not called since
  std::atomic<bool> stopping_{false};      // Stop began: a promotion under way gives up
};

}  // namespace replsync::apply
