// Shipper: the primary's end of the wire protocol (schemas/wire.md). It serves the journal to
// any number of secondaries over a ServerTransport and deletes what every secondary holds.
//
// Protocol, as the shipper plays it:
// - Peers: only the configured secondaries (`peers`, the [peers] names) are served. A session's
//   name is the one the transport authenticated (the [peers] entry whose CURVE key proved the
//   connection), never what a Hello says; an insecure transport names nobody, and then the
//   Hello's node_name must be a configured name. Any other gets a fatal Error.
// - Hello{node_name, durable_seq, applied_seq, credit} starts a session for that peer id and
//   name (an older session of the same name is dropped): streaming resumes at
//   durable_seq + 1. If that entry was already deleted ("secondary is too far behind"), or
//   durable_seq is past the journal's last sequence (the secondary followed another primary or
//   this journal was recreated), it answers with a fatal Error that says which sequences are
//   missing and what to do; it never skips.
// - Entries: consecutive entries up to min(shippable_seq, durable_seq + credit) of the latest
//   Hello/Ack (credit-based flow control), up to `batch_entries` / about `batch_bytes` per
//   message; entries of `compress_min_bytes` or more are zstd-compressed (one frame with its
//   content size) when that makes them smaller, flagged per entry.
//   shippable_seq is where whole transactions end (CaptureService::last_complete_seq): parts of
//   a transaction still being captured are never sent, so a capture restart that rewrites them
//   cannot contradict what a secondary holds.
// - Ack{durable_seq, applied_seq, credit} moves the peer's positions and its credit window.
// - Refused input (schemas/wire.md "Refused input"): a Hello of a KNOWN name can raise its
//   durable position only up to what this process sent to that name (or what was persisted);
//   an Ack only up to what was sent in that session (its Hello's position, then each entry
//   sent); larger values are clamped with a rate-limited warning, and no sum overflows (the
//   credit window saturates). A path a peer names (FileResync, TreeRequest resync_paths and
//   dirs) must pass CheckRepositoryPath (sync/files/repository_path.h) or the whole request is
//   refused with an error naming it, before anything is read.
// - Verify's tree requests need a Hello first (Hello{tree_only}: no entries, no positions, the
//   name pins nothing). Per name, at most one snapshot is being taken and one tree session is
//   open (a new one replaces the older); deep opens take a token of a bucket of
//   `deep_open_burst` refilled one per `deep_open_interval` (an excess gets an error reply).
// - Heartbeat{last_seq = shippable_seq, time} to every session each `heartbeat_interval`;
//   every message from a peer counts as a sign of life; a session silent for
//   `silence_timeout` is dropped and its secondary shown as disconnected.
// - Retention: entries up to the lowest durable_seq over every CONFIGURED secondary (connected
//   or not; one that never said Hello holds nothing yet, so nothing is deleted until it has)
//   are deleted; with none configured nothing is deleted (the journal's cap protects the disk,
//   loudly). The secondaries that said Hello and their durable/applied sequences are journal
//   meta, so retention survives restarts:
//     shipper.peers            node names, one per line
//     peer.<name>.durable      last durable sequence acknowledged (text)
//     peer.<name>.applied      last applied sequence acknowledged (text)
//   A name no longer in `peers` is dropped at Start (what it pinned is released, and logged);
//   its peer.<name>.* values stay, unread.
//   The shipper never writes the journal: it hands each retention (what to delete, and the
//   values above) to the journal's one writer (`submit_retention`, the capture service's writer
//   thread; schemas/journal.md "Writers") and carries on. At most one is outstanding; the next
//   round after it is done submits the state of that moment. Values it sent are written again
//   after a failed retention. Stop() waits for the last one.
// Time: heartbeats, silence, retention rounds, verify sessions and the stamps it sends and shows
// come from the injected Clock; waiting for messages is the transport's (poll_interval).
// Thread-safety: Start/Stop from one owning thread; Notify() and status() from any thread. The
// transport belongs to the shipper's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "replsync.pb.h"
#include "sync/clock.h"
#include "sync/files/file_tree.h"
#include "sync/journal/journal.h"
#include "sync/node/role_keeper.h"
#include "sync/status.h"
#include "sync/wire/transport.h"
#include "sync/zstd.h"

namespace replsync::capture {

struct ShipperOptions {
  std::string endpoint;   // where the transport listens ([transport] listen), for logs
  std::string node_name;  // this node's [node] name (in its Heartbeats)
  // The node's role and epoch (schemas/failover.md): stated in every Heartbeat and in the answer
  // to a peer's probe; a peer's Hello with a higher epoch fences this node, and a fenced node
  // starts no session. Unset (tests of the stream alone): no epochs, probes go unanswered.
  RoleKeeper* role = nullptr;
  // The secondaries it serves and keeps entries for: the [peers] names.
  std::vector<std::string> peers;
  uint32_t batch_entries = 256;
  size_t batch_bytes = 4 << 20;
  size_t compress_min_bytes = 1024;
  int zstd_level = 1;
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds silence_timeout{10000};
  // Longest wait for a message while there is nothing to send (how soon new entries go out).
  std::chrono::milliseconds poll_interval{2};
  // How often acknowledged entries are deleted and peer positions persisted.
  std::chrono::milliseconds retention_interval{200};
  // Required. Hands a retention to the journal's writer (CaptureService::SubmitRetention) and
  // returns without waiting for it: delete the entries up to `up_to` (when it is not below the
  // journal's first entry) and write `meta` in the same batch. `done` must be called exactly
  // once with the outcome, from any thread (even from within this call).
  std::function<void(uint64_t up_to, std::vector<std::pair<std::string, std::string>> meta,
                     std::function<void(Status)> done)>
      submit_retention;
  // The last sequence that may be sent; default: the journal's last_seq().
  std::function<uint64_t()> shippable_seq;
  // A secondary's FileResync (called from the shipper's thread, under its lock: keep it short).
  std::function<void(const std::vector<std::string>& paths)> on_file_resync;
  // Fills in the content references of a file entry before it is sent
  // (FileContentReader::Fill): false when the file no longer has those bytes, and the entry
  // then goes out `abandoned` (with the rest of that file's parts), a later entry carrying the
  // newer state. Unset: entries are sent as stored.
  std::function<Result<bool>(pb::FileChange* change)> fill_file;
  // Verify's TreeRequest{open} (FileCapture::RequestTreeSnapshot): takes a snapshot of the
  // repository and calls `done` once, from any thread. Unset: the primary has no repository and
  // says so.
  std::function<void(bool deep, std::vector<std::string> resync_paths,
                     std::function<void(Result<FileTreeSnapshot>)> done)>
      on_tree_snapshot;
  // Verify sessions are dropped after this long without a request; at most max_tree_sessions are
  // kept (the oldest goes first), and a reply carries at most tree_reply_nodes nodes.
  std::chrono::milliseconds tree_session_idle{600000};
  size_t max_tree_sessions = 4;
  size_t tree_reply_nodes = 50000;
  // Test hook (replsyncd: REPLSYNC_TEST_SHIP_HOLD_FILE): while it returns true for a peer's name
  // no entry is sent to it; heartbeats still say what the journal holds (a secondary that
  // received less than its primary had, for promote's refusal). Unset: never.
  std::function<bool(const std::string& peer_name)> hold_entries;
  // Deep opens (every file reread and hashed) per peer name: `deep_open_burst` at once, then
  // one more per `deep_open_interval`.
  size_t deep_open_burst = 8;
  std::chrono::milliseconds deep_open_interval{60000};
  // Warnings about refused input: at most one per kind per interval (the rest are counted).
  std::chrono::milliseconds refused_warning_interval{10000};
  // Bootstrap's requests (schemas/bootstrap.md "Messages"), from a connection that said
  // Hello{tree_only}: handed to the bootstrap service (BootstrapServer::Submit) with the
  // connection's authenticated [peers] name, never served on the shipper's thread. `done` is
  // called exactly once with the reply, from any thread; the shipper's thread sends it. Unset:
  // the request gets an error reply (this primary serves no bootstrap).
  std::function<void(const std::string& name, pb::BootstrapRequest request,
                     std::function<void(pb::BootstrapReply)> done)>
      on_bootstrap_request;
  // At most this many bootstrap requests of one name are being served at once; more get an
  // error reply.
  size_t max_bootstrap_pending = 64;
  // The last connection of `name` that said Hello{tree_only} was dropped (idle for
  // tree_session_idle, or refused): its bootstrap rounds may go (BootstrapServer::ClosePeer).
  // Called from the shipper's thread.
  std::function<void(const std::string& name)> on_tree_peer_gone;
  // Test hook: called from the shipper's thread at the end of every round of its loop (send,
  // receive and handle, heartbeats, silence, verify snapshots, retention). A message a peer
  // sent before round n began is handled in round n and answered by round n + 1 at the latest.
  std::function<void()> after_round;
};

struct PeerStatus {
  std::string name;
  std::string peer_id;  // the transport's id of the current session ("" when none)
  bool connected = false;
  uint64_t durable_seq = 0;       // acknowledged as durable in its relay
  uint64_t applied_seq = 0;       // acknowledged as applied to its database
  uint64_t sent_seq = 0;          // last sequence sent in the current session
  uint64_t lag_entries = 0;       // shippable_seq - applied_seq
  int64_t last_seen_unix_ms = 0;  // last message from it (0: not since this process started)
  bool ever_connected = false;    // said Hello to this journal (now or in an earlier run)
  std::string last_error;         // last Error sent to or received from it
};

struct ShipperStatus {
  bool running = false;
  std::string endpoint;
  uint64_t journal_first_seq = 0;
  uint64_t journal_last_seq = 0;
  uint64_t shippable_seq = 0;
  uint64_t retained_from = 0;  // entries before this were deleted (journal first_seq)
  uint64_t entries_sent = 0;   // since Start
  uint64_t bytes_sent = 0;     // after compression, since Start
  uint64_t bad_frames = 0;
  uint64_t refused_requests = 0;  // requests refused (bad paths, clamped positions, tree limits)
  PeerRefusals refused_peers;     // connections refused (keys not in [peers], failed handshakes)
  uint64_t abandoned_file_parts = 0;  // file entries sent abandoned (changed since journaled)
  std::string last_error;             // journal errors ("" when none)
  std::vector<PeerStatus> peers;      // every configured secondary, by name
};

class Shipper {
 public:
  // `journal` must outlive the shipper; `clock` times heartbeats, silence, retention rounds and
  // verify sessions, and stamps what the shipper sends.
  Shipper(Journal* journal, std::unique_ptr<ServerTransport> transport, ShipperOptions options,
          Clock& clock = SystemClock());
  ~Shipper();  // stops
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  // Loads the known secondaries from the journal's meta and starts the thread.
  // Errors: the journal's; Internal when already running; InvalidArgument without
  // options.submit_retention.
  Status Start();
  // Stops and joins, after the journal's writer carried out a last retention (persisting peer
  // positions): the writer must still run. Idempotent.
  void Stop();
  // New entries may be shippable (the capture appended): send them without waiting.
  void Notify() { notified_ = true; }
  ShipperStatus status() const;

  // Bootstrap's start of the stream (schemas/bootstrap.md "The stream's start"): keeps every
  // journal entry from `seq` on for the configured secondary `name`, whose retention position
  // becomes seq - 1 (durable and applied, persisted with the next retention; a name that never
  // said Hello counts as seen from now on). A replication session of that name is dropped (its
  // next Hello resumes from what it holds, counted up to seq - 1). Carried out by the shipper's
  // thread; returns once it took the pin and no retention computed before it is outstanding.
  // Errors: NotFound when `name` is not in [peers]; Unavailable (retryable) when the shipper is
  // not running or did not take the pin within `timeout`, or when entries from `seq` were already
  // deleted (the journal starts after it: a new start point is needed).
  // Thread-safety: any thread but the shipper's.
  Status Pin(const std::string& name, uint64_t seq,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  using TimePoint = Clock::TimePoint;
  struct Session {
    std::string name;
    uint64_t next_seq = 1;    // next entry to send
    uint64_t window_end = 0;  // durable_seq + credit of the latest Hello/Ack
    TimePoint last_heard{};
    // The highest sequence this session may acknowledge: its Hello's (clamped) position, then
    // each entry sent to it.
    uint64_t confirmable = 0;
    // A file whose content could not be filled in: its remaining parts go out abandoned.
    std::string abandoned_file;
  };
  // Fills in a file entry's content references (options_.fill_file); rewrites `entry`.
  void FillFileEntry(Session& session, std::string* entry);
  struct Known {
    uint64_t durable_seq = 0;
    uint64_t applied_seq = 0;
    std::string peer_id;  // current session ("" when none)
    int64_t last_seen_unix_ms = 0;
    uint64_t sent_seq = 0;
    uint64_t max_sent = 0;  // highest sequence sent to this name since Start
    std::string last_error;
    bool dirty = false;  // positions not yet persisted
    bool seen = false;   // said Hello (now or in an earlier run: listed in shipper.peers)
  };

  void Run();
  // `peer_name`: the transport's authenticated name ("" when insecure).
  void Handle(const std::string& peer, const std::string& peer_name, pb::Envelope& message,
              TimePoint now);
  void OnHello(const std::string& peer, const std::string& peer_name, const pb::Hello& hello,
               TimePoint now);
  // Verify's requests (schemas/wire.md "Verify's tree requests"); no Hello needed.
  void OnTreeRequest(const std::string& peer, const pb::TreeRequest& request, TimePoint now);
  // A FileResync from `peer`'s session: refused whole when a path is bad.
  void OnFileResync(const std::string& peer, const std::string& name, const pb::FileResync& resync,
                    TimePoint now);
  // Answers verify's request with `error` (and warns, rate-limited, under `kind`).
  void RefuseTree(const std::string& peer, uint64_t request_id, const std::string& kind,
                  const std::string& error, TimePoint now);
  // A refused request or clamped value: counted, and logged at most once per
  // refused_warning_interval per `kind`.
  void WarnRefused(const std::string& kind, const std::string& text, TimePoint now);
  // Takes a deep-open token of `name`'s bucket; false when there is none.
  bool TakeDeepToken(const std::string& name, TimePoint now);
  // Answers the opening requests whose snapshots are ready; drops idle sessions.
  void ServeTreeSnapshots(TimePoint now);
  // Bootstrap's requests (need a Hello{tree_only}): handed to options_.on_bootstrap_request.
  void OnBootstrapRequest(const std::string& peer, const pb::BootstrapRequest& request,
                          TimePoint now);
  // Sends the bootstrap replies that are ready.
  void ServeBootstrapReplies();
  // Carries out the pins asked for (Pin).
  void ApplyPins();
  // A tree peer of `name` was forgotten: tells options_.on_tree_peer_gone when it was that
  // name's last.
  void TreePeerGone(const std::string& name);
  // Sends what `peer`'s window allows; returns true when something was sent.
  bool Pump(const std::string& peer, Session& session, uint64_t shippable);
  void SendError(const std::string& peer, const std::string& name, const std::string& text,
                 bool fatal);
  // A Heartbeat with the journal's last shippable sequence and this node's claim.
  pb::Envelope Heartbeat(uint64_t shippable) const;
  void SendHeartbeats(uint64_t shippable);
  void DropSilent(TimePoint now);
  // Submits the deletion of the entries every known secondary holds, with the changed
  // positions, unless a retention is still outstanding (then the next round does).
  void Retain();
  // Blocks until no retention is outstanding.
  void WaitForRetention();
  uint64_t Shippable() const;
  // The changed positions (and shipper.peers with `include_list`), marked as written.
  std::vector<std::pair<std::string, std::string>> TakePeerMeta(bool include_list);
  Status LoadKnown();

  Journal* journal_;
  std::unique_ptr<ServerTransport> transport_;
  ShipperOptions options_;
  const std::set<std::string> configured_;  // options_.peers
  Clock& clock_;
  ZstdCCtx cctx_;  // nullptr when zstd could not allocate

  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> notified_{false};
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> refused_requests_{0};

  // Shipper thread only.
  std::map<std::string, Session> sessions_;  // by peer id
  bool list_dirty_ = false;                  // shipper.peers needs writing
  TimePoint last_heartbeat_{};
  std::optional<RoleKeeper::Handover> last_handover_;  // what the last heartbeats said
  TimePoint last_retention_{};
  std::string compressed_;  // scratch
  struct TreeSession {
    FileTreeSnapshot snapshot;
    TimePoint last_used{};
    std::string owner;  // the name of the peer that opened it
  };
  // Peers that said Hello{tree_only}, by peer id: their name and when they were last heard.
  struct TreePeer {
    std::string name;
    TimePoint last_heard{};
  };
  std::map<std::string, TreePeer> tree_peers_;
  std::set<std::string> tree_pending_;  // names with a snapshot being taken
  struct DeepBucket {
    size_t tokens = 0;
    TimePoint refilled{};
  };
  std::map<std::string, DeepBucket> deep_buckets_;  // by name
  struct Warned {
    TimePoint last{};
    uint64_t suppressed = 0;
    bool ever = false;
  };
  std::map<std::string, Warned> warned_;              // by kind
  std::map<std::string, TreeSession> tree_sessions_;  // by session id
  uint64_t tree_session_counter_ = 0;

  // Snapshots taken for verify, waiting to be answered (filled by the file capture's thread).
  struct TreeDone {
    std::string peer;
    std::string name;
    uint64_t request_id = 0;
    Result<FileTreeSnapshot> snapshot = Status::Internal("not taken");
  };
  std::mutex tree_mu_;
  std::vector<TreeDone> tree_done_;

  // Bootstrap replies waiting to be sent (filled by the bootstrap service's threads).
  struct BootstrapDone {
    std::string peer;
    std::string name;
    pb::BootstrapReply reply;
  };
  std::mutex bootstrap_mu_;  // guards bootstrap_done_
  std::vector<BootstrapDone> bootstrap_done_;
  std::map<std::string, size_t> bootstrap_pending_;  // by name; shipper thread only

  // Pins asked for by Pin (any thread), carried out by the shipper's thread.
  struct PinRequest {
    std::string name;
    uint64_t seq = 0;
    bool done = false;   // taken, or the shipper stopped first
    bool taken = false;  // carried out
  };
  std::mutex pin_mu_;  // guards pins_
  std::condition_variable pin_cv_;
  std::vector<std::shared_ptr<PinRequest>> pins_;

  // The retention handed to the journal's writer. Its `done` (the writer's thread) takes only
  // this mutex, so it never waits for the shipper's thread.
  std::mutex retention_mu_;  // guards the fields below
  std::condition_variable retention_cv_;
  bool retention_outstanding_ = false;
  std::optional<Status> retention_failed_;  // a failure the shipper's thread has not seen yet

  mutable std::mutex mu_;               // guards the fields below
  std::map<std::string, Known> known_;  // every configured secondary, by name
  uint64_t entries_sent_ = 0;
  uint64_t bytes_sent_ = 0;
  uint64_t abandoned_file_parts_ = 0;
  std::string last_error_;
};

}  // namespace replsync::capture
