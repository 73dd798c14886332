// The receiver against an in-process primary. The receiver's time is a ManualClock that only
// the test moves; the transport keeps real time, so the receiver polls it every poll_interval.
// After each thing the test does (a message to the receiver, a step of the clock) it waits until
// the receiver has come round to Receive twice since, so that it has acted on it, and only then
// looks at what the receiver sent (Expect, NoneOf): nothing sleeps, and "nothing was sent" is
// said only once the receiver would have sent it.
#include "apply/receiver.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sync/clock.h"
#include "sync/wire/inproc_transport.h"
#include "sync/zstd.h"
#include "tests/harness/server_receive.h"

namespace replsync::apply {
namespace {

using std::chrono::milliseconds;

// Bounds a wait for the receiver that should end long before (real time: a failing test fails
// instead of hanging).
constexpr milliseconds kWait{10000};

// Counts the receiver's calls of Receive (with `mu` / `cv`).
struct ReceiveCalls {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t calls = 0;  // guarded by mu
};

// The receiver's transport: the in-process client, with its Receive calls counted.
class WatchedClient : public ClientTransport {
 public:
  WatchedClient(std::unique_ptr<InprocClientTransport> inner, ReceiveCalls* calls)
      : inner_(std::move(inner)), calls_(calls) {}
  Result<bool> Receive(pb::Envelope* message, milliseconds timeout) override {
    {
      std::lock_guard<std::mutex> lock(calls_->mu);
      ++calls_->calls;
    }
    calls_->cv.notify_all();
    return inner_->Receive(message, timeout);
  }
  Status Send(const pb::Envelope& message) override { return inner_->Send(message); }
  Status Reconnect() override { return inner_->Reconnect(); }
  uint64_t bad_frames() const override { return inner_->bad_frames(); }

 private:
  std::unique_ptr<InprocClientTransport> inner_;
  ReceiveCalls* const calls_;
};

std::string EntryBytes(uint64_t seq) {
  pb::JournalEntry entry;
  pb::DbTransaction* db = entry.mutable_db();
  db->set_gtid("0-1-" + std::to_string(seq));
  db->set_last_part(true);
  db->set_end_file("binlog.000001");
  db->set_end_offset(1000 + seq);
  db->set_format_description(std::string(100 + seq, 'x'));  // compressible
  return entry.SerializeAsString();
}

std::string Compress(const std::string& bytes, bool with_size) {
  Result<ZstdCCtx> cctx = NewZstdCCtx();
  if (!cctx.ok()) {
    ADD_FAILURE() << cctx.status().ToString();
    return {};
  }
  ZSTD_CCtx_setParameter(cctx->get(), ZSTD_c_contentSizeFlag, with_size ? 1 : 0);
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  ZSTD_outBuffer o{out.data(), out.size(), 0};
  ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
  if (with_size) ZSTD_CCtx_setPledgedSrcSize(cctx->get(), bytes.size());
  size_t rest = ZSTD_compressStream2(cctx->get(), &o, &in, ZSTD_e_end);
  EXPECT_EQ(rest, 0u);
  out.resize(o.pos);
  return out;
}

pb::Envelope MakeEntries(const std::vector<uint64_t>& seqs, uint64_t primary_last = 0,
                         bool compress = false, bool with_size = true) {
  pb::Envelope e;
  pb::Entries* entries = e.mutable_entries();
  for (uint64_t s : seqs) {
    entries->add_seqs(s);
    entries->add_entries(compress ? Compress(EntryBytes(s), with_size) : EntryBytes(s));
    entries->add_compressed(compress);
  }
  entries->set_primary_last_seq(primary_last != 0 ? primary_last
                                                  : (seqs.empty() ? 0 : seqs.back()));
  return e;
}

class ReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "receiver_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << strerror(errno);
    dir_ = tmpl;
    OpenRelay(0);
    server_ = hub_.CreateServer();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    receiver_.reset();
    relay_.reset();
    std::filesystem::remove_all(dir_);
  }

  void OpenRelay(uint64_t max_bytes) {
    relay_.reset();
    Journal::Options o;
    o.path = dir_ + "/relay";
    o.max_bytes = max_bytes;
    auto j = Journal::Open(o);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    relay_ = std::move(*j);
  }

  ReceiverOptions Fast() {
    ReceiverOptions o;
    o.clock = &clock_;
    o.node_name = "secondary-1";
    o.endpoint = "inproc://primary";
    o.credit = 64;
    o.heartbeat_interval = milliseconds(100);
    o.silence_timeout = milliseconds(10000);
    o.retention_interval = milliseconds(50);
    o.resync_interval = milliseconds(200);
    o.poll_interval = milliseconds(1);  // Settle waits for two of them, in real time
    return o;
  }

  // The in-process client end, watched (Settle).
  std::unique_ptr<ClientTransport> Client() {
    auto client = hub_.CreateClient();
    client_ = client.get();
    return std::make_unique<WatchedClient>(std::move(client), &receive_calls_);
  }

  // Starts the receiver and lets it say Hello.
  void StartReceiver(ReceiverOptions o) {
    receiver_ = std::make_unique<Receiver>(
        o, Client(), relay_.get(), [this] { return applied_.load(); }, [this] { ++notified_; });
    ASSERT_TRUE(receiver_->Start().ok());
    Settle();
  }
  void StartReceiver() { StartReceiver(Fast()); }

  // Waits until the receiver has begun two more Receive calls: whatever was sent to it, or the
  // time the clock was moved to, before this was called has been acted on (the first call may be
  // the one that returns it; the loop's timed duties follow each return). Fails the test when
  // the receiver does not come round.
  void Settle() {
    std::unique_lock<std::mutex> lock(receive_calls_.mu);
    const uint64_t target = receive_calls_.calls + 2;
    ASSERT_TRUE(receive_calls_.cv.wait_for(lock, kWait, [&] {
      return receive_calls_.calls >= target;
    })) << "the receiver did not come back to Receive";
  }

  // Moves the receiver's clock by `d` and lets it act.
  void Tick(milliseconds d) {
    clock_.Advance(d);
    Settle();
  }

  // The next message of `kind` the receiver has sent; other kinds before it are skipped. Fails
  // the test when there is none (the receiver has settled: it would have sent it already).
  pb::Envelope Expect(pb::Envelope::BodyCase kind, std::string* peer = nullptr) {
    while (true) {
      std::string from;
      pb::Envelope got;
      auto r = testing::ServerReceive(*server_, &from, &got, milliseconds(0));
      EXPECT_TRUE(r.ok());
      if (!r.ok() || !*r) break;
      last_peer_ = from;
      if (got.body_case() == kind) {
        if (peer != nullptr) *peer = from;
        return got;
      }
    }
    ADD_FAILURE() << "no message of kind " << static_cast<int>(kind) << " was sent";
    return pb::Envelope();
  }

  // True when the receiver has sent no (more) message of `kind`.
  bool NoneOf(pb::Envelope::BodyCase kind) {
    while (true) {
      std::string from;
      pb::Envelope got;
      auto r = testing::ServerReceive(*server_, &from, &got, milliseconds(0));
      if (!r.ok() || !*r) return true;
      if (got.body_case() == kind) return false;
    }
  }

  // Sends `e` to the receiver and lets it act on it.
  void SendToReceiver(const pb::Envelope& e) {
    SendOnly(e);
    Settle();
  }
  void SendOnly(const pb::Envelope& e) { ASSERT_TRUE(server_->Send(last_peer_, e).ok()); }

  // Fills the relay with entries 1..n directly.
  void Prefill(uint64_t n) {
    std::vector<std::pair<uint64_t, std::string>> batch;
    for (uint64_t s = 1; s <= n; ++s) batch.emplace_back(s, EntryBytes(s));
    ASSERT_TRUE(relay_->Put(batch, {}).ok());
  }

  std::string dir_;
  ManualClock clock_;
  ReceiveCalls receive_calls_;
  InprocHub hub_;
  std::unique_ptr<InprocServerTransport> server_;
  InprocClientTransport* client_ = nullptr;
  std::unique_ptr<Journal> relay_;
  std::unique_ptr<Receiver> receiver_;
  std::atomic<uint64_t> applied_{0};
  std::atomic<int> notified_{0};
  std::string last_peer_;
};

TEST_F(ReceiverTest, HelloCarriesRelayPositionAppliedAndCredit) {
  Prefill(3);
  applied_ = 2;
  StartReceiver();
  pb::Envelope hello = Expect(pb::Envelope::kHello);
  EXPECT_EQ(hello.version(), kProtocolVersion);
  EXPECT_EQ(hello.hello().node_name(), "secondary-1");
  EXPECT_EQ(hello.hello().durable_seq(), 3u);
  EXPECT_EQ(hello.hello().applied_seq(), 2u);
  EXPECT_EQ(hello.hello().credit(), 64u);
}

// The primary drops the connection of a peer whose message is over its receive limit (8 MiB):
// a long list of paths to copy whole goes in several FileResync messages, each well under it.
TEST_F(ReceiverTest, ALongFileResyncListGoesInSeveralMessagesThePrimaryAccepts) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  std::vector<std::string> paths;
  for (int i = 0; i < 30000; ++i) {
    paths.push_back("dir" + std::to_string(i % 97) + "/" + std::string(200, 'p') +
                    std::to_string(i));
  }
  receiver_->SetFileResync(paths);
  Tick(milliseconds(1));
  std::vector<std::string> sent;
  int messages = 0;
  while (true) {
    std::string from;
    pb::Envelope got;
    auto r = testing::ServerReceive(*server_, &from, &got, milliseconds(0));
    ASSERT_TRUE(r.ok());
    if (!*r) break;
    if (!got.has_file_resync()) continue;
    ++messages;
    EXPECT_LE(got.ByteSizeLong(), kPathBytesPerRequest + 64);
    for (const std::string& p : got.file_resync().paths()) sent.push_back(p);
  }
  EXPECT_GE(messages, 3);
  EXPECT_EQ(sent, paths) << "every path once, in order";
}

// After a primary restart the session is gone: a Heartbeat sent while the Hello was still due
// got "no session: say Hello", which arrived after the Hello and ended the new session (and so
// on, round after round). Now nothing but the Hello goes out while one is due.
TEST_F(ReceiverTest, NoHeartbeatGoesOutWhileAHelloIsDue) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  pb::Envelope no_session;
  no_session.set_version(kProtocolVersion);
  no_session.mutable_error()->set_message("no session for this connection: say Hello");
  SendToReceiver(no_session);
  // Heartbeats fall due several times before the Hello does (kErrorHelloDelay, 1 s).
  for (int i = 0; i < 5; ++i) Tick(milliseconds(150));
  EXPECT_TRUE(NoneOf(pb::Envelope::kHeartbeat)) << "a Heartbeat without a session";
  Tick(milliseconds(1000));
  Expect(pb::Envelope::kHello);
  Tick(milliseconds(150));
  Expect(pb::Envelope::kHeartbeat);
}

TEST_F(ReceiverTest, NeverWrittenRelayResumesAfterTheAppliedSequence) {
  applied_ = 10;
  StartReceiver();
  EXPECT_EQ(Expect(pb::Envelope::kHello).hello().durable_seq(), 10u);
  SendToReceiver(MakeEntries({11, 12}));
  pb::Envelope ack = Expect(pb::Envelope::kAck);
  EXPECT_EQ(ack.ack().durable_seq(), 12u);
  EXPECT_EQ(relay_->first_seq(), 11u);
  EXPECT_EQ(relay_->last_seq(), 12u);
}

// After a bootstrap the secondary's database is at S0 - 1 while the relay still holds old entries
// (here 1..5): the receiver empties it and asks for S0, and what arrives is stored from there
// (schemas/bootstrap.md "The stream's start").
TEST_F(ReceiverTest, AppliedBeyondTheRelayEmptiesItAndAsksForTheNextSequence) {
  Prefill(5);
  applied_ = 100;
  StartReceiver();
  pb::Envelope hello = Expect(pb::Envelope::kHello);
  EXPECT_EQ(hello.hello().durable_seq(), 100u);
  EXPECT_EQ(hello.hello().applied_seq(), 100u);
  EXPECT_EQ(relay_->first_seq(), 101u);
  EXPECT_EQ(relay_->last_seq(), 100u);
  for (uint64_t seq = 1; seq <= 5; ++seq) EXPECT_FALSE(relay_->Get(seq)->has_value()) << seq;
  SendToReceiver(MakeEntries({101, 102, 103}));
  pb::Envelope ack = Expect(pb::Envelope::kAck);
  EXPECT_EQ(ack.ack().durable_seq(), 103u);
  EXPECT_EQ(relay_->first_seq(), 101u);
  EXPECT_EQ(relay_->last_seq(), 103u);
  for (uint64_t seq = 101; seq <= 103; ++seq) {
    EXPECT_EQ(relay_->Get(seq)->value_or(""), EntryBytes(seq)) << seq;
  }
  EXPECT_EQ(receiver_->status().durable_seq, 103u);
  // A batch from before S0 is a duplicate now, not a gap.
  SendToReceiver(MakeEntries({6, 7}));
  EXPECT_EQ(relay_->last_seq(), 103u);
  EXPECT_FALSE(relay_->Get(6)->has_value());
}

// ... while a relay that holds what the applier is at (the ordinary case) is left alone.
TEST_F(ReceiverTest, AppliedWithinTheRelayKeepsIt) {
  Prefill(5);
  applied_ = 5;
  StartReceiver();
  EXPECT_EQ(Expect(pb::Envelope::kHello).hello().durable_seq(), 5u);
  EXPECT_EQ(relay_->last_seq(), 5u);
  EXPECT_EQ(relay_->Get(5)->value_or(""), EntryBytes(5));
}

// Race 2 of issue 11: the receiver and the applier start at once, and the applier learns its
// position only once it has connected to the secondary's server. On 75a7482 the receiver's
// first Hello used the applier's 0 from before that and, with an empty relay, asked for
// everything from seq 1 (the whole journal again, or "too far behind" once trimmed).
TEST_F(ReceiverTest, FirstHelloWaitsUntilTheApplierKnowsItsPosition) {
  std::atomic<bool> known{false};
  std::mutex mu;
  std::condition_variable cv;
  int asked = 0;  // guarded by mu: calls of applied_seq
  receiver_ = std::make_unique<Receiver>(
      Fast(), Client(), relay_.get(),
      [&]() -> std::optional<uint64_t> {
        {
          std::lock_guard<std::mutex> lock(mu);
          ++asked;
        }
        cv.notify_all();
        if (!known.load()) return std::nullopt;
        return uint64_t{40};
      },
      [] {});
  ASSERT_TRUE(receiver_->Start().ok());
  // It asks for the position, finds none and waits on its clock; again after each step of it.
  for (int looks = 1; looks <= 4; ++looks) {
    {
      std::unique_lock<std::mutex> lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return asked >= looks; }));
    }
    clock_.WaitForWaiters(1);
    if (looks < 4) clock_.Advance(milliseconds(20));
  }
  // Not a word to the primary while the position is unknown.
  EXPECT_TRUE(NoneOf(pb::Envelope::kHello));
  known = true;
  Tick(milliseconds(20));
  pb::Envelope hello = Expect(pb::Envelope::kHello);
  EXPECT_EQ(hello.hello().durable_seq(), 40u);
  EXPECT_EQ(hello.hello().applied_seq(), 40u);
}

TEST_F(ReceiverTest, EntriesAreDurableInTheRelayBeforeTheirAck) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({1, 2, 3, 4, 5}, 9));
  pb::Envelope ack = Expect(pb::Envelope::kAck);
  EXPECT_EQ(ack.ack().durable_seq(), 5u);
  EXPECT_EQ(ack.ack().credit(), 64u);
  // At the time the Ack is seen, every acknowledged entry is already in the relay.
  for (uint64_t s = 1; s <= 5; ++s) {
    auto got = relay_->Get(s);
    ASSERT_TRUE(got.ok());
    ASSERT_TRUE(got->has_value()) << s;
    EXPECT_EQ(**got, EntryBytes(s));
  }
  EXPECT_GE(notified_.load(), 1);
  // And it stays there: a reopened relay holds them.
  receiver_->Stop();
  EXPECT_EQ(receiver_->status().durable_seq, 5u);
  EXPECT_EQ(receiver_->status().primary_last_seq, 9u);
  EXPECT_EQ(receiver_->status().entries_received, 5u);
  receiver_.reset();
  OpenRelay(0);
  EXPECT_EQ(relay_->last_seq(), 5u);
}

TEST_F(ReceiverTest, CompressedEntriesAreStoredDecompressed) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({1, 2}, 0, /*compress=*/true, /*with_size=*/true));
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 2u);
  // A frame without its content size goes through the streaming decoder.
  SendToReceiver(MakeEntries({3}, 0, /*compress=*/true, /*with_size=*/false));
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 3u);
  for (uint64_t s = 1; s <= 3; ++s) {
    auto got = relay_->Get(s);
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ(**got, EntryBytes(s));
  }
}

TEST_F(ReceiverTest, UndecompressableEntryDropsTheBatch) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  pb::Envelope e = MakeEntries({1, 2});
  e.mutable_entries()->set_compressed(1, true);  // not a zstd frame
  SendToReceiver(e);
  pb::Envelope hello = Expect(pb::Envelope::kHello);
  EXPECT_EQ(hello.hello().durable_seq(), 0u);
  EXPECT_EQ(relay_->last_seq(), 0u);
  EXPECT_EQ(receiver_->status().batches_dropped, 1u);
}

// A zstd frame of a few bytes that declares `declared` bytes of content (an 8-byte content
// size field) and holds one empty raw block: RFC 8878, 3.1.1.
std::string FrameDeclaring(uint64_t declared) {
  std::string f = {'\x28', '\xB5', '\x2F', '\xFD'};  // magic number, little-endian
  f += '\xC0';  // frame header descriptor: 8-byte content size, not single-segment, no checksum
  f += '\x00';  // window descriptor: 1 KiB window
  for (int i = 0; i < 8; ++i) f += static_cast<char>((declared >> (8 * i)) & 0xff);
  f += std::string{'\x01', '\x00', '\x00'};  // last block, raw, 0 bytes
  return f;
}

// A frame that really yields `bytes` zero bytes, without a declared content size (made by
// streaming, so the test never holds `bytes` itself).
std::string ZeroBomb(uint64_t bytes) {
  Result<ZstdCCtx> cctx = NewZstdCCtx();
  if (!cctx.ok()) {
    ADD_FAILURE() << cctx.status().ToString();
    return {};
  }
  ZSTD_CCtx_setParameter(cctx->get(), ZSTD_c_contentSizeFlag, 0);
  const std::string zeros(1 << 20, '\0');
  std::string out;
  std::string buf(ZSTD_CStreamOutSize(), '\0');
  for (uint64_t done = 0; done < bytes; done += zeros.size()) {
    const bool last = done + zeros.size() >= bytes;
    ZSTD_inBuffer in{zeros.data(), zeros.size(), 0};
    size_t rest = 1;
    while (in.pos < in.size || (last && rest != 0)) {
      ZSTD_outBuffer o{buf.data(), buf.size(), 0};
      rest = ZSTD_compressStream2(cctx->get(), &o, &in, last ? ZSTD_e_end : ZSTD_e_continue);
      EXPECT_FALSE(ZSTD_isError(rest));
      out.append(buf.data(), o.pos);
      if (!last && in.pos == in.size) break;
    }
  }
  return out;
}

pb::Envelope WithEntry(pb::Envelope e, int index, std::string frame) {
  *e.mutable_entries()->mutable_entries(index) = std::move(frame);
  e.mutable_entries()->set_compressed(index, true);
  return e;
}

TEST_F(ReceiverTest, FrameDeclaringAHugeSizeIsRefusedAndTheReceiverGoesOn) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  const std::string bomb = FrameDeclaring(1ull << 40);
  ASSERT_EQ(ZSTD_getFrameContentSize(bomb.data(), bomb.size()), 1ull << 40);
  // Entry 1 is fine, entry 2 declares 1 TiB: the batch is dropped, a Hello asks again.
  SendToReceiver(WithEntry(MakeEntries({1, 2}), 1, bomb));
  EXPECT_EQ(Expect(pb::Envelope::kHello).hello().durable_seq(), 0u);
  EXPECT_EQ(relay_->last_seq(), 0u);
  ReceiverStatus status = receiver_->status();
  EXPECT_EQ(status.entries_refused, 1u);
  EXPECT_EQ(status.batches_dropped, 1u);
  EXPECT_NE(status.last_error.find("declares 1099511627776 bytes"), std::string::npos)
      << status.last_error;
  EXPECT_NE(status.state, ReceiverState::kError);
  // An honest resend is taken.
  SendToReceiver(MakeEntries({1, 2, 3}));
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 3u);
}

TEST_F(ReceiverTest, FrameDeclaringMoreThanItYieldsIsCorrupt) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  // Declares 1 GiB (within the cap) but yields nothing: dropped as corrupt (the receiver
  // reserves at most 1 MiB on a frame's word; this test does not measure that).
  SendToReceiver(WithEntry(MakeEntries({1}), 0, FrameDeclaring(1ull << 30)));
  Expect(pb::Envelope::kHello);
  EXPECT_EQ(relay_->last_seq(), 0u);
  EXPECT_EQ(receiver_->status().batches_dropped, 1u);
  EXPECT_EQ(receiver_->status().entries_refused, 0u);
}

TEST_F(ReceiverTest, FrameThatReallyExpandsPastTheCapIsRefused) {
  ReceiverOptions o = Fast();
  o.max_entry_bytes = 8 << 20;
  StartReceiver(o);
  Expect(pb::Envelope::kHello);
  const std::string bomb = ZeroBomb(256ull << 20);  // 256 MiB of zeros
  ASSERT_LT(bomb.size(), 64u << 10) << "the bomb should be small";
  ASSERT_EQ(ZSTD_getFrameContentSize(bomb.data(), bomb.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  SendToReceiver(WithEntry(MakeEntries({1}), 0, bomb));
  Expect(pb::Envelope::kHello);
  EXPECT_EQ(relay_->last_seq(), 0u);
  ReceiverStatus status = receiver_->status();
  EXPECT_EQ(status.entries_refused, 1u);
  EXPECT_NE(status.last_error.find("yields more than the 8388608 bytes"), std::string::npos)
      << status.last_error;
  // Below the cap the same kind of frame is an ordinary entry.
  SendToReceiver(MakeEntries({1}, 0, /*compress=*/true, /*with_size=*/false));
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 1u);
}

TEST_F(ReceiverTest, UncompressedEntryOverTheCapIsRefused) {
  ReceiverOptions o = Fast();
  o.max_entry_bytes = 120;  // EntryBytes(s) is about 140 bytes
  StartReceiver(o);
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({1}));
  Expect(pb::Envelope::kHello);
  EXPECT_EQ(relay_->last_seq(), 0u);
  EXPECT_EQ(receiver_->status().entries_refused, 1u);
}

TEST_F(ReceiverTest, BatchOverTheBatchCapIsWrittenInPieces) {
  ReceiverOptions o = Fast();
  o.max_batch_bytes = 300;  // two entries of about 140 bytes
  StartReceiver(o);
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({1, 2, 3, 4, 5}, 0, /*compress=*/true));
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 2u);
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 4u);
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 5u);
  EXPECT_EQ(receiver_->status().entries_received, 5u);
  for (uint64_t s = 1; s <= 5; ++s) {
    auto got = relay_->Get(s);
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ(**got, EntryBytes(s));
  }
}

TEST_F(ReceiverTest, GapDropsTheBatchAndHelloAsksToResume) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({1, 2, 3}));
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 3u);
  SendToReceiver(MakeEntries({6, 7}));
  pb::Envelope hello = Expect(pb::Envelope::kHello);
  EXPECT_EQ(hello.hello().durable_seq(), 3u);
  EXPECT_EQ(relay_->last_seq(), 3u);
  EXPECT_EQ(receiver_->status().batches_dropped, 1u);
  // The resent entries continue the relay.
  SendToReceiver(MakeEntries({4, 5, 6, 7}));
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 7u);
}

TEST_F(ReceiverTest, RepeatedGapsWithinTheResyncIntervalSendOneHello) {
  ReceiverOptions o = Fast();
  o.resync_interval = milliseconds(5000);
  StartReceiver(o);
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({5}));
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({6}));
  SendToReceiver(MakeEntries({7}));
  EXPECT_TRUE(NoneOf(pb::Envelope::kHello));
  EXPECT_EQ(receiver_->status().batches_dropped, 3u);
}

TEST_F(ReceiverTest, DuplicateBatchIsDroppedAndOverlapKeepsOnlyTheNewTail) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({1, 2, 3}));
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 3u);
  SendToReceiver(MakeEntries({2, 3}));
  EXPECT_EQ(Expect(pb::Envelope::kHello).hello().durable_seq(), 3u);
  EXPECT_EQ(receiver_->status().batches_dropped, 1u);
  SendToReceiver(MakeEntries({2, 3, 4, 5}));
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 5u);
  EXPECT_EQ(receiver_->status().entries_received, 5u);
  for (uint64_t s = 1; s <= 5; ++s) {
    auto got = relay_->Get(s);
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ(**got, EntryBytes(s));
  }
}

TEST_F(ReceiverTest, MalformedBatchesAreDropped) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({1, 3}));  // not consecutive
  Expect(pb::Envelope::kHello);
  pb::Envelope e = MakeEntries({1, 2});
  e.mutable_entries()->mutable_entries()->RemoveLast();  // 2 seqs, 1 entry
  SendToReceiver(e);
  EXPECT_EQ(receiver_->status().batches_dropped, 2u);
  EXPECT_EQ(relay_->last_seq(), 0u);
}

TEST_F(ReceiverTest, SilentPrimaryLeadsToReconnectAndHello) {
  ReceiverOptions o = Fast();
  o.silence_timeout = milliseconds(300);
  StartReceiver(o);
  std::string first_peer;
  Expect(pb::Envelope::kHello, &first_peer);
  Tick(milliseconds(300));  // silence_timeout
  std::string second_peer;
  pb::Envelope hello = Expect(pb::Envelope::kHello, &second_peer);
  EXPECT_NE(first_peer, second_peer);  // Reconnect() made a new connection
  EXPECT_GE(receiver_->status().reconnects, 1u);
  // Heard from again: connected.
  SendToReceiver(MakeEntries({1}));
  EXPECT_EQ(Expect(pb::Envelope::kAck).ack().durable_seq(), 1u);
  EXPECT_TRUE(receiver_->status().connected);
}

TEST_F(ReceiverTest, PrimaryHeartbeatsKeepTheSessionAlive) {
  ReceiverOptions o = Fast();
  o.silence_timeout = milliseconds(300);
  StartReceiver(o);
  Expect(pb::Envelope::kHello);
  // 900 ms of heartbeats, one every 50 ms: never 300 ms of silence.
  for (int i = 0; i < 18; ++i) {
    pb::Envelope hb;
    hb.mutable_heartbeat()->set_last_seq(42);
    hb.mutable_heartbeat()->set_time(1700000000);
    SendToReceiver(hb);
    Tick(milliseconds(50));
  }
  EXPECT_EQ(receiver_->status().reconnects, 0u);
  EXPECT_EQ(receiver_->status().primary_last_seq, 42u);
  EXPECT_EQ(receiver_->status().primary_time, 1700000000u);
  EXPECT_EQ(receiver_->status().state, ReceiverState::kConnected);
}

TEST_F(ReceiverTest, HeartbeatsCarryTheAppliedSequence) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  applied_ = 0;
  SendToReceiver(MakeEntries({1, 2}));
  Expect(pb::Envelope::kAck);
  applied_ = 2;
  Tick(milliseconds(100));  // heartbeat_interval
  EXPECT_EQ(Expect(pb::Envelope::kHeartbeat).heartbeat().last_seq(), 2u);
  // The applied change is acknowledged too.
  pb::Envelope ack = Expect(pb::Envelope::kAck);
  EXPECT_EQ(ack.ack().applied_seq(), 2u);
}

TEST_F(ReceiverTest, FatalErrorFromThePrimaryStopsTheReceiver) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  pb::Envelope e;
  e.mutable_error()->set_message("binlog.000003 was purged; rebuild the secondary");
  e.mutable_error()->set_fatal(true);
  SendOnly(e);
  ASSERT_TRUE(receiver_->WaitForEnd(kWait));  // by itself: nobody called Stop
  EXPECT_EQ(receiver_->status().state, ReceiverState::kError);
  EXPECT_NE(receiver_->status().last_error.find("binlog.000003 was purged"), std::string::npos);
  SendOnly(MakeEntries({1}));
  EXPECT_TRUE(NoneOf(pb::Envelope::kAck));
  EXPECT_EQ(relay_->last_seq(), 0u);
}

TEST_F(ReceiverTest, NonFatalErrorLeadsToAnotherHello) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  pb::Envelope e;
  e.mutable_error()->set_message("unknown peer, say Hello");
  SendToReceiver(e);
  Tick(milliseconds(1000));  // Hello again a second after an Error
  EXPECT_EQ(Expect(pb::Envelope::kHello).hello().durable_seq(), 0u);
  EXPECT_NE(receiver_->status().state, ReceiverState::kError);
}

TEST_F(ReceiverTest, AppliedEntriesAreDeletedFromTheRelay) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({1, 2, 3, 4, 5}));
  Expect(pb::Envelope::kAck);
  applied_ = 3;
  Tick(milliseconds(50));  // retention_interval
  EXPECT_EQ(relay_->first_seq(), 4u);
  EXPECT_EQ(relay_->last_seq(), 5u);
  auto hint = relay_->GetMeta("applied_seq");
  ASSERT_TRUE(hint.ok() && hint->has_value());
  EXPECT_EQ(**hint, "3");
  // Nothing beyond what is applied is ever deleted.
  applied_ = 9;
  Tick(milliseconds(50));
  EXPECT_EQ(relay_->first_seq(), 6u);
  EXPECT_EQ(relay_->last_seq(), 5u);
}

TEST_F(ReceiverTest, FullRelayGivesNoCreditUntilAppliedEntriesAreDeleted) {
  OpenRelay(/*max_bytes=*/400);
  StartReceiver();
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({1, 2, 3, 4}));  // about 4 x 140 bytes
  pb::Envelope ack = Expect(pb::Envelope::kAck);
  EXPECT_EQ(ack.ack().durable_seq(), 4u);
  EXPECT_EQ(ack.ack().credit(), 0u);
  EXPECT_TRUE(receiver_->status().relay_full);
  applied_ = 4;
  Tick(milliseconds(50));  // retention_interval: the applied entries go
  Tick(milliseconds(50));  // heartbeat_interval: an Ack with the fresh credit
  pb::Envelope a = Expect(pb::Envelope::kAck);
  EXPECT_EQ(a.ack().credit(), 64u);
  EXPECT_EQ(a.ack().applied_seq(), 4u);
  EXPECT_FALSE(relay_->full());
}

}  // namespace
}  // namespace replsync::apply
