#include "apply/receiver.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zstd.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sync/text.h"
#include "sync/wire/fork_point.h"

namespace replsync::apply {
namespace {

constexpr std::chrono::seconds kWaitLogInterval{60};
constexpr std::chrono::seconds kErrorHelloDelay{1};
constexpr std::chrono::seconds kRefusalLogInterval{60};
// The first output buffer of a frame that declares its size: no more than this is reserved on
// the word of the frame; the rest grows with what it really yields.
constexpr size_t kInitialReserve = 1 << 20;

}  // namespace

const char* ReceiverStateName(ReceiverState state) {
  switch (state) {
    case ReceiverState::kStopped:
      return "stopped";
    case ReceiverState::kConnecting:
      return "connecting";
    case ReceiverState::kConnected:
      return "connected";
    case ReceiverState::kError:
      return "error";
  }
  return "unknown";
}

Receiver::Receiver(ReceiverOptions options, std::unique_ptr<ClientTransport> transport,
                   Journal* relay, std::function<std::optional<uint64_t>()> applied_seq,
                   std::function<void()> on_entries)
    : options_(std::move(options)),
      transport_(std::move(transport)),
      relay_(relay),
      applied_seq_(std::move(applied_seq)),
      on_entries_(std::move(on_entries)) {
  status_.endpoint = options_.endpoint;
}

Receiver::~Receiver() { Stop(); }

void Receiver::LoadPrimaryHeard() {
  Result<std::optional<std::string>> heard = relay_->GetMeta(kPrimaryHeardKey);
  if (!heard.ok() || !*heard) return;
  std::vector<std::pair<std::string, uint64_t>> others;
  uint64_t last = 0;
  bool first = true;
  std::istringstream in(**heard);
  for (std::string word; in >> word;) {
    uint64_t seq = 0;
    if (first) {
      if (!ParseU64(word, &last)) return;
      first = false;
      continue;
    }
    const size_t eq = word.rfind('=');
    if (eq == std::string::npos || !ParseU64(std::string_view(word).substr(eq + 1), &seq)) return;
    others.emplace_back(word.substr(0, eq), seq);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (status_.primary_last_seq != 0) return;  // heard since
  status_.primary_last_seq = last;
  status_.other_secondaries = std::move(others);
}

Status Receiver::Start() {
  if (thread_.joinable()) return Status::InvalidArgument("receiver already started");
  if (relay_ == nullptr || transport_ == nullptr) {
    return Status::InvalidArgument("receiver needs a transport and a relay journal");
  }
  if (dctx_ == nullptr) {
    Result<ZstdDCtx> dctx = NewZstdDCtx();
    if (!dctx.ok()) return dctx.status().WithContext("receiver");
    dctx_ = std::move(dctx).value();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
    ended_ = false;
    status_.state = ReceiverState::kConnecting;
    status_.connected = false;
    status_.durable_seq = relay_->last_seq();
    // An error of an earlier run (the bootstrap restarts the stream after rebasing the relay:
    // the Hello before it may have been refused) is not this run's.
    status_.last_error.clear();
  }
  LoadPrimaryHeard();
  spdlog::info("receiver: following the primary at {} as '{}'; the relay journal {} {}",
               options_.endpoint, options_.node_name, relay_->path(),
               relay_->entry_count() == 0
                   ? fmt::format("is empty (last seq {})", relay_->last_seq())
                   : fmt::format("holds seq {}..{}", relay_->first_seq(), relay_->last_seq()));
  thread_ = std::thread([this] {
    Run();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ended_ = true;
    }
    cv_.notify_all();
  });
  return Status::Ok();
}

void Receiver::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (status_.state != ReceiverState::kError) status_.state = ReceiverState::kStopped;
  status_.connected = false;
}

bool Receiver::WaitForEnd(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return ended_; });
}

ReceiverStatus Receiver::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

uint64_t Receiver::NextExpected() {
  // A relay never written starts after what is applied: nothing before it is needed.
  if (relay_->last_seq() == 0) return Applied() + 1;
  return relay_->last_seq() + 1;
}

uint32_t Receiver::Credit() const { return relay_->full() ? 0 : options_.credit; }

void Receiver::Fail(const std::string& error) {
  spdlog::error("receiver: {}", error);
  std::lock_guard<std::mutex> lock(mu_);
  status_.state = ReceiverState::kError;
  status_.connected = false;
  status_.last_error = error;
  stop_ = true;
}

void Receiver::Send(pb::Envelope envelope, const char* what) {
  envelope.set_version(kProtocolVersion);
  Status st = transport_->Send(envelope);
  if (!st.ok()) {
    spdlog::debug("receiver: send {} to {}: {}", what, options_.endpoint, st.message());
    if (envelope.has_hello()) hello_needed_ = true;
  }
}

uint64_t Receiver::Applied() {
  if (applied_seq_) {
    if (std::optional<uint64_t> applied = applied_seq_()) last_applied_ = *applied;
  }
  return last_applied_;
}

bool Receiver::RebaseIfBehind(TimePoint now) {
  const uint64_t applied = Applied();
  const uint64_t last = relay_->last_seq();
  if (applied <= last) return true;
  const bool held = relay_->entry_count() != 0;
  const uint64_t first = relay_->first_seq();
  Status st = relay_->Rebase(applied + 1);
  if (!st.ok()) {
    const std::string error = fmt::format(
        "the secondary's database is at seq {}, beyond the relay journal's last seq {}, and the "
        "relay could not be emptied to continue at seq {}: {}; trying again",
        applied, last, applied + 1, st.message());
    if (now - last_wait_log_ >= kWaitLogInterval) {
      spdlog::error("receiver: {}", error);
      last_wait_log_ = now;
    }
    std::lock_guard<std::mutex> lock(mu_);
    status_.last_error = error;
    return false;
  }
  spdlog::info(
      "receiver: the secondary's database is at seq {}, beyond the relay journal's last seq {} "
      "(a bootstrap set it); the relay {} and continues at seq {}",
      applied, last,
      held ? fmt::format("held seq {}..{}, none of them needed: emptied", first, last)
           : std::string("was empty"),
      applied + 1);
  deleted_up_to_ = 0;
  std::lock_guard<std::mutex> lock(mu_);
  status_.durable_seq = relay_->last_seq();
  status_.relay_full = relay_->full();
  return true;
}

void Receiver::SendHello() {
  if (!RebaseIfBehind(options_.clock->Now())) {
    // No Hello that would ask for entries the relay cannot take: a second later, again.
    hello_needed_ = true;
    hello_after_ = options_.clock->Now() + kErrorHelloDelay;
    return;
  }
  pb::Envelope envelope;
  pb::Hello* hello = envelope.mutable_hello();
  hello->set_node_name(options_.node_name);
  hello->set_durable_seq(NextExpected() - 1);
  if (options_.role != nullptr) hello->set_epoch(options_.role->Claim().epoch);
  hello->set_applied_seq(Applied());
  hello->set_credit(Credit());
  hello_needed_ = false;
  acked_applied_ = hello->applied_seq();
  acked_credit_ = hello->credit();
  spdlog::debug("receiver: Hello to {} (durable {}, applied {}, credit {})", options_.endpoint,
                hello->durable_seq(), hello->applied_seq(), hello->credit());
  Send(std::move(envelope), "Hello");
  std::lock_guard<std::mutex> lock(mu_);
  if (!file_resync_.empty()) file_resync_due_ = true;
}

void Receiver::SetFileResync(std::vector<std::string> paths) {
  std::lock_guard<std::mutex> lock(mu_);
  file_resync_ = std::move(paths);
  file_resync_due_ = !file_resync_.empty();
}

void Receiver::SendFileResync() {
  std::vector<std::vector<std::string>> runs;
  size_t paths = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!file_resync_due_) return;
    file_resync_due_ = false;
    runs = SplitPathsForRequests(file_resync_);
    paths = file_resync_.size();
  }
  spdlog::info("receiver: asking the primary at {} for {} path(s) whole", options_.endpoint, paths);
  // In messages the primary accepts (a longer one would cost the connection).
  for (std::vector<std::string>& run : runs) {
    pb::Envelope envelope;
    for (std::string& path : run) envelope.mutable_file_resync()->add_paths(std::move(path));
    Send(std::move(envelope), "FileResync");
  }
}

void Receiver::SendAck() {
  pb::Envelope envelope;
  pb::Ack* ack = envelope.mutable_ack();
  ack->set_durable_seq(NextExpected() - 1);
  ack->set_applied_seq(Applied());
  ack->set_credit(Credit());
  acked_applied_ = ack->applied_seq();
  acked_credit_ = ack->credit();
  Send(std::move(envelope), "Ack");
}

void Receiver::DropBatch(const std::string& why, TimePoint now) {
  bool resync = last_resync_ == TimePoint{} || now - last_resync_ >= options_.resync_interval;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++status_.batches_dropped;
  }
  spdlog::debug("receiver: dropped a batch from {}: {}{}", options_.endpoint, why,
                resync ? "; asking to resume after the relay's last entry" : "");
  if (resync) {
    last_resync_ = now;
    hello_needed_ = true;
  }
}

Status Receiver::Decompress(const std::string& frame, std::string* out) {
  const uint64_t cap = options_.max_entry_bytes;
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return Status::Corruption("not a zstd frame");
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared > cap) {
    return Status::InvalidArgument(fmt::format(
        "its zstd frame declares {} bytes, more than the {} an entry may have", declared, cap));
  }
  // Streaming in every case: the output grows with the bytes the frame really yields, so a
  // small frame declaring a large size costs nothing until it delivers them.
  ZSTD_DCtx_reset(dctx_.get(), ZSTD_reset_session_only);
  out->clear();
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN) {
    out->reserve(static_cast<size_t>(std::min<uint64_t>(declared, kInitialReserve)));
  }
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  size_t ret = 1;
  while (ret != 0) {
    const size_t old = out->size();
    const size_t room = std::min<uint64_t>(ZSTD_DStreamOutSize(), cap - old + 1);
    if (room == 0) break;
    out->resize(old + room);
    ZSTD_outBuffer o{out->data() + old, room, 0};
    ret = ZSTD_decompressStream(dctx_.get(), &o, &in);
    out->resize(old + o.pos);
    if (ZSTD_isError(ret)) return Status::Corruption(ZSTD_getErrorName(ret));
    if (out->size() > cap) {
      out->clear();
      out->shrink_to_fit();
      return Status::InvalidArgument(
          fmt::format("its zstd frame yields more than the {} bytes an entry may have", cap));
    }
    if (ret != 0 && in.pos == in.size && o.pos < room) {
      return Status::Corruption("truncated zstd frame");
    }
  }
  if (in.pos != in.size) return Status::Corruption("bytes after the zstd frame");
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && out->size() != declared) {
    return Status::Corruption(
        fmt::format("zstd frame yields {} bytes but declares {}", out->size(), declared));
  }
  return Status::Ok();
}

void Receiver::HandleEntries(pb::Entries* message, TimePoint now) {
  const pb::Entries& entries = *message;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.primary_last_seq = entries.primary_last_seq();
    if (entries.primary_time() != 0) status_.primary_time = entries.primary_time();
  }
  const int n = entries.seqs_size();
  if (n != entries.entries_size() ||
      (entries.compressed_size() != 0 && entries.compressed_size() != n)) {
    return DropBatch(fmt::format("malformed batch ({} seqs, {} entries, {} compressed flags)", n,
                                 entries.entries_size(), entries.compressed_size()),
                     now);
  }
  if (n == 0) return;
  for (int i = 1; i < n; ++i) {
    if (entries.seqs(i) != entries.seqs(i - 1) + 1) {
      return DropBatch(fmt::format("sequences not consecutive ({} after {})", entries.seqs(i),
                                   entries.seqs(i - 1)),
                       now);
    }
  }
  const uint64_t expected = NextExpected();
  const uint64_t first = entries.seqs(0);
  const uint64_t last = entries.seqs(n - 1);
  if (last < expected) {
    return DropBatch(fmt::format("duplicate: seq {}..{} already held", first, last), now);
  }
  if (first > expected) {
    return DropBatch(fmt::format("gap: seq {}..{} while {} is next", first, last, expected), now);
  }
  std::vector<std::pair<uint64_t, std::string>> batch;
  uint64_t bytes = 0;
  for (int i = static_cast<int>(expected - first); i < n; ++i) {
    std::string entry;
    if (entries.compressed_size() != 0 && entries.compressed(i)) {
      Status st = Decompress(entries.entries(i), &entry);
      if (!st.ok()) {
        const std::string why =
            fmt::format("entry {} does not decompress: {}", entries.seqs(i), st.message());
        if (st.code() == Status::Code::kInvalidArgument) RefuseEntry(why, now);
        return DropBatch(why, now);
      }
    } else {
      entry = std::move(*message->mutable_entries(i));
      if (entry.size() > options_.max_entry_bytes) {
        const std::string why =
            fmt::format("entry {} has {} bytes, more than the {} an entry may have",
                        entries.seqs(i), entry.size(), options_.max_entry_bytes);
        RefuseEntry(why, now);
        return DropBatch(why, now);
      }
    }
    if (!batch.empty() && bytes + entry.size() > options_.max_batch_bytes) {
      // Write what is held before holding more (memory stays within a batch and one entry).
      if (!PutBatch(&batch, bytes, now)) return;
      bytes = 0;
    }
    bytes += entry.size();
    batch.emplace_back(entries.seqs(i), std::move(entry));
  }
  PutBatch(&batch, bytes, now);
}

void Receiver::RefuseEntry(const std::string& why, TimePoint now) {
  const std::string error = fmt::format(
      "refused an entry from the primary at {}: {}; a replsync primary writes none "
      "this large: check what runs at that address (the receiver asks for it again "
      "and refuses it until it changes)",
      options_.endpoint, why);
  if (last_refusal_log_ == TimePoint{} || now - last_refusal_log_ >= kRefusalLogInterval) {
    spdlog::error("receiver: {}", error);
    last_refusal_log_ = now;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++status_.entries_refused;
  status_.last_error = error;
}

bool Receiver::PutBatch(std::vector<std::pair<uint64_t, std::string>>* batch, uint64_t bytes,
                        TimePoint now) {
  if (batch->empty()) return true;
  Status st = relay_->Put(*batch, {});
  if (!st.ok()) {
    // Nothing is acknowledged; the primary keeps the entries. Ask again a little later.
    const std::string error =
        fmt::format("write the relay journal {}: {}", relay_->path(), st.message());
    if (now - last_wait_log_ >= kWaitLogInterval) {
      spdlog::error("receiver: {}; not acknowledging, asking the primary again", error);
      last_wait_log_ = now;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      status_.last_error = error;
      ++status_.batches_dropped;
    }
    hello_needed_ = true;
    hello_after_ = now + kErrorHelloDelay;
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.durable_seq = relay_->last_seq();
    status_.entries_received += batch->size();
    status_.bytes_received += bytes;
    status_.relay_full = relay_->full();
  }
  batch->clear();
  if (on_entries_) on_entries_();  // wake the applier first: the Ack can wait a moment
  SendAck();
  return true;
}

void Receiver::Retain() {
  const uint64_t applied = Applied();
  const uint64_t upto = std::min(applied, relay_->last_seq());
  if (upto > deleted_up_to_ && upto >= relay_->first_seq()) {
    Status st = relay_->DeleteUpTo(upto, {{"applied_seq", std::to_string(applied)}});
    if (!st.ok()) {
      spdlog::warn("receiver: delete applied entries from the relay journal {}: {}", relay_->path(),
                   st.message());
    } else {
      deleted_up_to_ = upto;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  status_.relay_full = relay_->full();
}

void Receiver::Run() {
  Clock& clock = *options_.clock;
  TimePoint now = clock.Now();
  last_heard_ = now;
  last_heartbeat_ = now;
  last_retention_ = now;
  last_wait_log_ = TimePoint{};
  hello_needed_ = true;
  hello_after_ = now;
  bool waiting_logged = false;
  // The applier reads its position when it has connected to the secondary's server; until then
  // nothing is said to the primary (schemas/wire.md: a Hello carries the applied sequence).
  bool position_logged = false;
  while (!stop_ && !PositionKnown()) {
    if (!position_logged && clock.Now() - now >= std::chrono::seconds(2)) {
      spdlog::info(
          "receiver: waiting for the applier to read the applied position from the secondary's "
          "database before saying Hello to {}",
          options_.endpoint);
      position_logged = true;
    }
    std::unique_lock<std::mutex> lock(mu_);
    clock.WaitFor(cv_, lock, std::min(options_.poll_interval, std::chrono::milliseconds(20)),
                  [&] { return stop_.load(); });
  }
  now = clock.Now();
  last_heard_ = now;
  last_heartbeat_ = now;
  last_retention_ = now;
  hello_after_ = now;
  while (!stop_) {
    now = clock.Now();
    if (hello_needed_ && now >= hello_after_) SendHello();
    if (!hello_needed_) SendFileResync();
    pb::Envelope message;
    Result<bool> got = transport_->Receive(&message, options_.poll_interval);
    now = clock.Now();
    {
      std::string refusal = transport_->refusal();
      std::lock_guard<std::mutex> lock(mu_);
      status_.primary_refusal = std::move(refusal);
    }
    if (!got.ok()) {
      spdlog::debug("receiver: receive from {}: {}", options_.endpoint, got.status().message());
    } else if (*got) {
      last_heard_ = now;
      if (waiting_logged) {
        spdlog::info("receiver: the primary at {} answers again", options_.endpoint);
        waiting_logged = false;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        status_.connected = true;
        status_.state = ReceiverState::kConnected;
        status_.last_heard_unix_ms = clock.UnixMillis();
      }
      switch (message.body_case()) {
        case pb::Envelope::kEntries:
          HandleEntries(message.mutable_entries(), now);
          break;
        case pb::Envelope::kHeartbeat: {
          const pb::Heartbeat& h = message.heartbeat();
          if (options_.role != nullptr && h.epoch() != 0) {
            options_.role->Hear({.node = h.node(),
                                 .epoch = h.epoch(),
                                 .primary_epoch = h.primary_epoch(),
                                 .fork = ForkFromProto(h.fork())});
            options_.role->HearHandover(h.handover_to(), h.handover_seq());
          }
          std::vector<std::pair<std::string, uint64_t>> others;
          for (const pb::SecondaryProgress& p : h.secondaries()) {
            if (p.node() != options_.node_name) others.emplace_back(p.node(), p.durable_seq());
          }
          bool changed = false;
          {
            std::lock_guard<std::mutex> lock(mu_);
            changed =
                status_.primary_last_seq != h.last_seq() || status_.other_secondaries != others;
            status_.primary_last_seq = h.last_seq();
            status_.primary_time = h.time();
            status_.other_secondaries = others;
          }
          // Kept in the relay, so that a promote after this node restarted still knows what the
          // primary last said it held (and what the other secondaries held).
          if (changed) {
            std::string heard = std::to_string(h.last_seq());
            for (const auto& [name, seq] : others) heard += fmt::format(" {}={}", name, seq);
            if (Status st = relay_->PutMeta({{kPrimaryHeardKey, heard}}); !st.ok()) {
              spdlog::warn("receiver: what the primary said could not be kept: {}", st.message());
            }
          }
          break;
        }
        case pb::Envelope::kError:
          if (message.error().fatal()) {
            Fail(fmt::format("the primary at {} ended the session: {}", options_.endpoint,
                             message.error().message()));
          } else {
            spdlog::warn("receiver: the primary at {} says: {}; saying Hello again",
                         options_.endpoint, message.error().message());
            {
              std::lock_guard<std::mutex> lock(mu_);
              status_.last_error = message.error().message();
            }
            hello_needed_ = true;
            hello_after_ = now + kErrorHelloDelay;
          }
          break;
        default:
          break;  // Hello/Ack are not for a secondary; ignore
      }
    }
    if (stop_) break;
    // No Heartbeat while a Hello is due: without a session the primary answers it with "no
    // session: say Hello", and that answer, arriving after the Hello, would end the new session.
    if (!hello_needed_ && now - last_heartbeat_ >= options_.heartbeat_interval) {
      last_heartbeat_ = now;
      pb::Envelope envelope;
      envelope.mutable_heartbeat()->set_last_seq(Applied());
      envelope.mutable_heartbeat()->set_time(static_cast<uint32_t>(clock.UnixMillis() / 1000));
      Send(std::move(envelope), "Heartbeat");
      if (Applied() != acked_applied_ || Credit() != acked_credit_) SendAck();
    }
    if (now - last_retention_ >= options_.retention_interval) {
      last_retention_ = now;
      Retain();
    }
    if (now - last_heard_ >= options_.silence_timeout) {
      if (!waiting_logged || now - last_wait_log_ >= kWaitLogInterval) {
        spdlog::warn(
            "receiver: nothing from the primary for {} ms; reconnecting, waiting for the "
            "primary at {}",
            options_.silence_timeout.count(), options_.endpoint);
        waiting_logged = true;
        last_wait_log_ = now;
      }
      Status st = transport_->Reconnect();
      if (!st.ok()) {
        spdlog::warn("receiver: reconnect to {}: {}", options_.endpoint, st.message());
      }
      last_heard_ = now;
      hello_needed_ = true;
      hello_after_ = now;
      std::lock_guard<std::mutex> lock(mu_);
      ++status_.reconnects;
      status_.connected = false;
      status_.state = ReceiverState::kConnecting;
    }
  }
}

}  // namespace replsync::apply
