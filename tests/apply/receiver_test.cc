#include "apply/receiver.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sync/wire/inproc_transport.h"

namespace replsync::apply {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

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
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, with_size ? 1 : 0);
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  ZSTD_outBuffer o{out.data(), out.size(), 0};
  ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
  if (with_size) ZSTD_CCtx_setPledgedSrcSize(cctx, bytes.size());
  size_t rest = ZSTD_compressStream2(cctx, &o, &in, ZSTD_e_end);
  EXPECT_EQ(rest, 0u);
  ZSTD_freeCCtx(cctx);
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

  static ReceiverOptions Fast() {
    ReceiverOptions o;
    o.node_name = "secondary-1";
    o.endpoint = "inproc://primary";
    o.credit = 64;
    o.heartbeat_interval = milliseconds(100);
    o.silence_timeout = milliseconds(10000);
    o.retention_interval = milliseconds(50);
    o.resync_interval = milliseconds(200);
    o.poll_interval = milliseconds(10);
    return o;
  }

  void StartReceiver(ReceiverOptions o = Fast()) {
    auto client = hub_.CreateClient();
    client_ = client.get();
    receiver_ = std::make_unique<Receiver>(
        o, std::move(client), relay_.get(), [this] { return applied_.load(); },
        [this] { ++notified_; });
    ASSERT_TRUE(receiver_->Start().ok());
  }

  // The next message of `kind` from the receiver within `timeout`; other kinds are skipped.
  // Fails the test when none comes.
  pb::Envelope Expect(pb::Envelope::BodyCase kind, std::string* peer = nullptr,
                      milliseconds timeout = milliseconds(3000)) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      std::string from;
      pb::Envelope got;
      auto r = server_->Receive(&from, &got, milliseconds(20));
      EXPECT_TRUE(r.ok());
      if (r.ok() && *r && got.body_case() == kind) {
        if (peer != nullptr) *peer = from;
        last_peer_ = from;
        return got;
      }
      if (r.ok() && *r) last_peer_ = from;
    }
    ADD_FAILURE() << "no message of kind " << static_cast<int>(kind) << " within "
                  << timeout.count() << " ms";
    return pb::Envelope();
  }

  // True when no message of `kind` arrives within `window`.
  bool NoneOf(pb::Envelope::BodyCase kind, milliseconds window) {
    const auto deadline = Clock::now() + window;
    while (Clock::now() < deadline) {
      std::string from;
      pb::Envelope got;
      auto r = server_->Receive(&from, &got, milliseconds(20));
      if (r.ok() && *r && got.body_case() == kind) return false;
    }
    return true;
  }

  void SendToReceiver(const pb::Envelope& e) { ASSERT_TRUE(server_->Send(last_peer_, e).ok()); }

  // Fills the relay with entries 1..n directly.
  void Prefill(uint64_t n) {
    std::vector<std::pair<uint64_t, std::string>> batch;
    for (uint64_t s = 1; s <= n; ++s) batch.emplace_back(s, EntryBytes(s));
    ASSERT_TRUE(relay_->Put(batch, {}).ok());
  }

  template <typename F>
  bool Eventually(F f, milliseconds timeout = milliseconds(3000)) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (f()) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return f();
  }

  std::string dir_;
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

// Race 2 of issue 11: the receiver and the applier start at once, and the applier learns its
// position only once it has connected to the secondary's server. On 75a7482 the receiver's
// first Hello used the applier's 0 from before that and, with an empty relay, asked for
// everything from seq 1 (the whole journal again, or "too far behind" once trimmed).
TEST_F(ReceiverTest, FirstHelloWaitsUntilTheApplierKnowsItsPosition) {
  std::atomic<bool> known{false};
  auto client = hub_.CreateClient();
  receiver_ = std::make_unique<Receiver>(
      Fast(), std::move(client), relay_.get(),
      [&]() -> std::optional<uint64_t> {
        if (!known.load()) return std::nullopt;
        return uint64_t{40};
      },
      [] {});
  ASSERT_TRUE(receiver_->Start().ok());
  // Not a word to the primary while the position is unknown.
  EXPECT_TRUE(NoneOf(pb::Envelope::kHello, milliseconds(300)));
  known = true;
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
  EXPECT_TRUE(NoneOf(pb::Envelope::kHello, milliseconds(300)));
  EXPECT_TRUE(Eventually([&] { return receiver_->status().batches_dropped == 3; }));
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
  EXPECT_TRUE(Eventually([&] { return receiver_->status().batches_dropped == 2; }));
  EXPECT_EQ(relay_->last_seq(), 0u);
}

TEST_F(ReceiverTest, SilentPrimaryLeadsToReconnectAndHello) {
  ReceiverOptions o = Fast();
  o.silence_timeout = milliseconds(300);
  StartReceiver(o);
  std::string first_peer;
  Expect(pb::Envelope::kHello, &first_peer);
  std::string second_peer;
  pb::Envelope hello = Expect(pb::Envelope::kHello, &second_peer, milliseconds(3000));
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
  const auto until = Clock::now() + milliseconds(900);
  while (Clock::now() < until) {
    pb::Envelope hb;
    hb.mutable_heartbeat()->set_last_seq(42);
    hb.mutable_heartbeat()->set_time(1700000000);
    SendToReceiver(hb);
    std::this_thread::sleep_for(milliseconds(50));
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
  EXPECT_TRUE(Eventually([&] {
    pb::Envelope hb = Expect(pb::Envelope::kHeartbeat);
    return hb.heartbeat().last_seq() == 2;
  }));
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
  SendToReceiver(e);
  EXPECT_TRUE(Eventually([&] { return receiver_->status().state == ReceiverState::kError; }));
  EXPECT_NE(receiver_->status().last_error.find("binlog.000003 was purged"), std::string::npos);
  SendToReceiver(MakeEntries({1}));
  EXPECT_TRUE(NoneOf(pb::Envelope::kAck, milliseconds(200)));
  EXPECT_EQ(relay_->last_seq(), 0u);
}

TEST_F(ReceiverTest, NonFatalErrorLeadsToAnotherHello) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  pb::Envelope e;
  e.mutable_error()->set_message("unknown peer, say Hello");
  SendToReceiver(e);
  EXPECT_EQ(Expect(pb::Envelope::kHello).hello().durable_seq(), 0u);
  EXPECT_NE(receiver_->status().state, ReceiverState::kError);
}

TEST_F(ReceiverTest, AppliedEntriesAreDeletedFromTheRelay) {
  StartReceiver();
  Expect(pb::Envelope::kHello);
  SendToReceiver(MakeEntries({1, 2, 3, 4, 5}));
  Expect(pb::Envelope::kAck);
  applied_ = 3;
  EXPECT_TRUE(Eventually([&] { return relay_->first_seq() == 4; }));
  EXPECT_EQ(relay_->last_seq(), 5u);
  auto hint = relay_->GetMeta("applied_seq");
  ASSERT_TRUE(hint.ok() && hint->has_value());
  EXPECT_EQ(**hint, "3");
  // Nothing beyond what is applied is ever deleted.
  applied_ = 9;
  EXPECT_TRUE(Eventually([&] { return relay_->first_seq() == 6; }));
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
  EXPECT_TRUE(Eventually([&] {
    pb::Envelope a = Expect(pb::Envelope::kAck);
    return a.ack().credit() == 64u && a.ack().applied_seq() == 4u;
  }));
  EXPECT_FALSE(relay_->full());
}

}  // namespace
}  // namespace replsync::apply
