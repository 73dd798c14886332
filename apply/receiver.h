// Receiver: the secondary's end of the wire protocol (schemas/wire.md). It follows one primary
// through a ClientTransport and keeps the relay journal: everything it acknowledges is durable
// there first.
//
// Protocol, as the receiver plays it:
// - Nothing before the applier knows its applied sequence (read from the secondary's database):
//   an unknown one would be taken for 0 and ask for the whole journal again.
// - Hello{node_name, durable_seq, applied_seq, credit} at start, after every Reconnect, and to
//   resynchronise. durable_seq is the relay's last sequence (for a relay never written: the
//   applied sequence, as nothing before it is needed). When the applied sequence A is beyond the
//   relay's last sequence (a bootstrap wrote replsync.applied while both were stopped:
//   schemas/bootstrap.md "The stream's start"), the relay is emptied and continues at A + 1
//   (Journal::Rebase) before the Hello, which then says durable_seq A; a rebase that fails is
//   logged and tried again, with the Hello, a second later.
// - Entries: zstd-decompressed where flagged; the sequences must continue the relay exactly
//   (last_seq + 1, consecutive). A batch that overlaps what the relay holds keeps only its new
//   tail; a batch entirely held already is dropped; a batch with a gap or out-of-order
//   sequences is dropped and a Hello sent to resume after the relay's last sequence (at most one
//   such Hello per `resync_interval`, since batches already in flight are expected to miss too).
//   Accepted entries are Put into the relay (one synced write per batch); then `on_entries`
//   wakes the applier and they are acknowledged: Ack{durable_seq, applied_seq, credit}. Nothing
//   is acknowledged before it is durable.
// - Credit: the primary may send up to durable_seq + credit. Credit is 0 while the relay is full
//   (Journal::full()); an Ack with fresh credit follows as soon as it is not.
// - Heartbeat{applied_seq, time} every `heartbeat_interval`, and an Ack when the applied
//   sequence or the credit changed since the last one. Every message from the primary counts as
//   a sign of life; after `silence_timeout` without one the receiver calls Reconnect() and says
//   Hello again, logging that it is waiting for the primary at the endpoint.
// - Limits: a compressed entry is decompressed by streaming, so memory grows with the bytes it
//   really yields, never with the size its frame declares; a frame that declares, or yields,
//   more than max_entry_bytes is refused: the batch is dropped (counted in batches_dropped and
//   entries_refused; entries of it already written because of max_batch_bytes stay), the error goes
//   to the log (at most once a minute) and to the status's last_error, and a Hello asks to resume
//   after the relay's last entry. The receiver does not stop: a primary that keeps sending the
//   entry is refused again and the secondary waits, in plain sight, for an operator (nothing after
//   the entry can be applied before it anyway). Decompressed entries are written to the relay (and
//   acknowledged) whenever the ones held would pass max_batch_bytes, so a batch never holds more
//   than that plus one entry.
// - Error from the primary: fatal -> the receiver stops (state kError, reason in the status and
//   the log); otherwise it is logged and the receiver says Hello again after a second.
// - Retention: every `retention_interval` the relay entries up to the applied sequence are
//   deleted, with the meta value "applied_seq" (a hint; the truth is replsync.applied).
//
// Thread-safety: Start/Stop from one owning thread; status() from any thread. The transport and
// the relay's writes belong to the receiver's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "replsync.pb.h"
#include "sync/clock.h"
#include "sync/journal/journal.h"
#include "sync/node/role_keeper.h"
#include "sync/status.h"
#include "sync/wire/transport.h"
#include "sync/zstd.h"

namespace replsync::apply {

// The largest journal entry a primary writes, decompressed: a part of a transaction holds about
// part_bytes (4 MiB) of events plus at most one event that alone is larger, and no binlog event
// passes the server's max_allowed_packet (1 GiB at most); a file part is 4 MiB. Anything
// larger did not come from a replsync primary.
inline constexpr uint64_t kMaxEntryBytes = (1ull << 30) + (64ull << 20);
// The decompressed bytes of one batch the receiver holds in memory before writing them to the
// relay (a larger batch is written in several pieces).
inline constexpr uint64_t kMaxBatchBytes = 64ull << 20;

struct ReceiverOptions {
  std::string node_name;  // this secondary, for the primary's status and logs
  // The node's role and epoch (schemas/failover.md): its epoch goes in every Hello (a primary
  // that knows less fences itself and refuses the session), and a higher one in the primary's
  // Heartbeats is adopted. Unset (tests of the stream alone): no epochs.
  RoleKeeper* role = nullptr;
  std::string endpoint;   // the primary's address, for logs ([transport] primary)
  uint32_t credit = 256;  // entries the primary may send beyond the last acknowledged one
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds silence_timeout{10000};
  std::chrono::milliseconds retention_interval{1000};
  std::chrono::milliseconds resync_interval{2000};
  std::chrono::milliseconds poll_interval{100};  // longest wait in Receive
  // Memory bounds of one Entries message (see "Limits" above): an entry whose decompressed
  // size would pass max_entry_bytes is refused before anything is allocated for it; a batch is
  // written to the relay in pieces of at most max_batch_bytes (decompressed).
  uint64_t max_entry_bytes = kMaxEntryBytes;
  uint64_t max_batch_bytes = kMaxBatchBytes;
  // The time of heartbeats, silence, retention, resync and the other intervals above, and of
  // the wait for the applier's position (not owned; outlives the receiver). The transport's
  // waits are the transport's own. Unit tests give a ManualClock.
  Clock* clock = &SystemClock();
};

enum class ReceiverState {
  kStopped,
  kConnecting,  // Hello sent, nothing heard yet
  kConnected,   // the primary answers
  kError,       // stopped: a fatal error from the primary, or the relay cannot be written
};
const char* ReceiverStateName(ReceiverState state);

struct ReceiverStatus {
  ReceiverState state = ReceiverState::kStopped;
  bool connected = false;  // heard from the primary since the last (re)connect
  std::string endpoint;
  uint64_t durable_seq = 0;        // the relay's last sequence
  uint64_t primary_last_seq = 0;   // the primary's journal, as last told (lag in entries)
  uint32_t primary_time = 0;       // the primary's clock in its last message
  int64_t last_heard_unix_ms = 0;  // when the primary was last heard from; 0 = never
  uint64_t entries_received = 0;   // since Start
  uint64_t bytes_received = 0;     // serialized entries after decompression, since Start
  uint64_t batches_dropped = 0;    // gaps, duplicates, malformed batches
  uint64_t entries_refused = 0;    // entries over max_entry_bytes, or zstd bombs (see Limits)
  uint64_t reconnects = 0;
  bool relay_full = false;
  std::string last_error;  // "" when none
  // Why the primary's end does not let this node in (ClientTransport::refusal); "" when it does.
  std::string primary_refusal;
  // What the primary's last Heartbeat said each other secondary holds durably (name, sequence).
  std::vector<std::pair<std::string, uint64_t>> other_secondaries;
};

class Receiver {
 public:
  // Relay meta: what the primary's last Heartbeat said ("LAST NAME=SEQ ..."), read at Start.
  static constexpr const char* kPrimaryHeardKey = "primary_heard";

  // `relay` must outlive the receiver; only the receiver writes it while running.
  // `applied_seq` returns the applier's last applied sequence, or nullopt while the applier has
  // not read it yet (the receiver then waits); `on_entries` is called after new entries are
  // durable (both from the receiver's thread; either may be empty: an empty `applied_seq`
  // counts as 0, known).
  Receiver(ReceiverOptions options, std::unique_ptr<ClientTransport> transport, Journal* relay,
           std::function<std::optional<uint64_t>()> applied_seq, std::function<void()> on_entries);
  ~Receiver();
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  // Starts the thread. InvalidArgument when already running.
  Status Start();
  // Stops and joins the thread. Idempotent.
  void Stop();
  // Waits until the thread has ended, by itself (a fatal error: state kError) or through Stop,
  // or until `timeout` has passed (real time, whatever the options' clock: it bounds the
  // caller's wait). True when it has ended; true at once when it was never started.
  bool WaitForEnd(std::chrono::milliseconds timeout) const;
  ReceiverStatus status() const;
  // The paths the applier could not bring to the state an entry described (schemas/files.md):
  // sent to the primary as FileResync now and after every Hello, until replaced (an empty list
  // ends it). Thread-safe.
  void SetFileResync(std::vector<std::string> paths);

 private:
  using TimePoint = Clock::TimePoint;

  void Run();
  void SendHello();
  void SendAck();
  void SendFileResync();  // when due
  void HandleEntries(pb::Entries* entries, TimePoint now);
  // The primary's last Heartbeat as kept in the relay (kPrimaryHeardKey), into status_ when
  // nothing was heard yet.
  void LoadPrimaryHeard();
  // Drops a batch; asks for a resend (Hello) unless one was sent within resync_interval.
  void DropBatch(const std::string& why, TimePoint now);
  void Retain();
  // Decompresses a zstd frame into *out. Corruption when it does not decompress;
  // InvalidArgument when it declares or yields more than max_entry_bytes (checked before
  // anything is allocated: output grows with what the frame really yields).
  Status Decompress(const std::string& frame, std::string* out);
  // Puts `batch` into the relay and acknowledges it; false (after saying why) when it could not.
  // Counts and reports (log, rate-limited; status) an entry refused by the limits.
  void RefuseEntry(const std::string& why, TimePoint now);
  bool PutBatch(std::vector<std::pair<uint64_t, std::string>>* batch, uint64_t bytes,
                TimePoint now);
  // The applier's applied sequence: the last one it said (0 before it said one). While the
  // applier does not know it (it restarts and reads it again) the last known one is used.
  uint64_t Applied();
  // Empties the relay to continue at Applied() + 1 when the applier is beyond the relay's end;
  // false (after saying why) when the relay could not be rebased.
  bool RebaseIfBehind(TimePoint now);
  bool PositionKnown() const { return !applied_seq_ || applied_seq_().has_value(); }
  uint64_t NextExpected();
  uint32_t Credit() const;
  void Fail(const std::string& error);
  void Send(pb::Envelope envelope, const char* what);

  const ReceiverOptions options_;
  std::unique_ptr<ClientTransport> transport_;
  Journal* const relay_;
  std::function<std::optional<uint64_t>()> applied_seq_;
  std::function<void()> on_entries_;

  // Receiver thread only.
  ZstdDCtx dctx_;  // made by the first Start
  bool hello_needed_ = true;
  TimePoint last_heard_{};
  TimePoint last_heartbeat_{};
  TimePoint last_retention_{};
  TimePoint last_resync_{};
  TimePoint last_wait_log_{};
  TimePoint last_refusal_log_{};
  TimePoint hello_after_{};  // no Hello before this (after a non-fatal Error)
  uint64_t acked_applied_ = 0;
  uint32_t acked_credit_ = 0;
  uint64_t deleted_up_to_ = 0;
  uint64_t last_applied_ = 0;  // Applied()'s last known value

  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  // With mu_: notified when stop_ is set (ends the wait for the applier's position) and when the
  // thread ends.
  mutable std::condition_variable cv_;
  bool ended_ = true;                     // guarded by mu_: the thread has ended (or never started)
  ReceiverStatus status_;                 // guarded by mu_
  std::vector<std::string> file_resync_;  // guarded by mu_
  bool file_resync_due_ = false;          // guarded by mu_: send file_resync_ soon
};

}  // namespace replsync::apply
