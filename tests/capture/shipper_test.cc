#include "capture/shipper.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <zstd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sync/clock.h"
#include "sync/wire/inproc_transport.h"

namespace replsync::capture {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Entry `seq` of the tests: small ones, and every fourth one is 3 KiB of compressible text.
std::string Payload(uint64_t seq) {
  std::string s = "entry " + std::to_string(seq);
  if (seq % 4 == 0) {
    for (int i = 0; s.size() < 3000; ++i) s += " row " + std::to_string(i % 10);
  }
  return s;
}

std::string Decompress(const std::string& frame) {
  unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  EXPECT_NE(size, ZSTD_CONTENTSIZE_UNKNOWN);
  EXPECT_NE(size, ZSTD_CONTENTSIZE_ERROR);
  std::string out(size, '\0');
  size_t n = ZSTD_decompress(out.data(), out.size(), frame.data(), frame.size());
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// A hand-driven secondary: says Hello/Ack and collects what the shipper sends.
class FakeSecondary {
 public:
  // `authenticated`: the transport names the client `name` (as a CURVE key in [peers] does);
  // false: it names nobody (an insecure transport) and only the Hello says who it is.
  FakeSecondary(InprocHub* hub, std::string name, bool authenticated = true)
      : hub_(hub), name_(std::move(name)) {
    client_ = hub->CreateClient(authenticated ? name_ : "");
  }

  void Hello(uint64_t durable, uint32_t credit, uint64_t applied = 0) {
    pb::Envelope e;
    e.set_version(kProtocolVersion);
    e.mutable_hello()->set_node_name(name_);
    e.mutable_hello()->set_durable_seq(durable);
    e.mutable_hello()->set_applied_seq(applied);
    e.mutable_hello()->set_credit(credit);
    ASSERT_TRUE(client_->Send(e).ok());
  }
  void Ack(uint64_t durable, uint32_t credit, uint64_t applied = 0) {
    pb::Envelope e;
    e.set_version(kProtocolVersion);
    e.mutable_ack()->set_durable_seq(durable);
    e.mutable_ack()->set_applied_seq(applied);
    e.mutable_ack()->set_credit(credit);
    ASSERT_TRUE(client_->Send(e).ok());
  }

  // Receives until `seq` arrived (or `timeout`); entries go to `received`, in order.
  bool ReceiveUpTo(uint64_t seq, milliseconds timeout = milliseconds(3000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (last_seq() < seq && std::chrono::steady_clock::now() < deadline) Poll(milliseconds(5));
    return last_seq() >= seq;
  }
  // Takes whatever has arrived, without waiting (the in-process transport delivers on Send).
  void Drain() {
    while (true) {
      auto got = client_->Receive(&probe_, milliseconds(0));
      ASSERT_TRUE(got.ok());
      if (!*got) return;
      Handle(probe_);
    }
  }
  void Poll(milliseconds timeout) {
    pb::Envelope e;
    auto got = client_->Receive(&e, timeout);
    ASSERT_TRUE(got.ok());
    if (*got) Handle(e);
  }
  void Handle(const pb::Envelope& e) {
    if (e.has_entries()) {
      const pb::Entries& entries = e.entries();
      ASSERT_EQ(entries.seqs_size(), entries.entries_size());
      ASSERT_EQ(entries.seqs_size(), entries.compressed_size());
      ++batches;
      for (int i = 0; i < entries.seqs_size(); ++i) {
        std::string bytes =
            entries.compressed(i) ? Decompress(entries.entries(i)) : entries.entries(i);
        if (entries.compressed(i)) ++compressed;
        received.emplace_back(entries.seqs(i), bytes);
      }
      primary_last_seq = entries.primary_last_seq();
    } else if (e.has_heartbeat()) {
      ++heartbeats;
      primary_last_seq = e.heartbeat().last_seq();
    } else if (e.has_error()) {
      errors.push_back(e.error());
    } else if (e.has_tree_reply()) {
      tree_replies.push_back(e.tree_reply());
    } else if (e.has_bootstrap_reply()) {
      bootstrap_replies.push_back(e.bootstrap_reply());
    }
  }
  void Send(const pb::Envelope& e) { ASSERT_TRUE(client_->Send(e).ok()); }
  void TreeHello() {
    pb::Envelope e;
    e.mutable_hello()->set_node_name(name_);
    e.mutable_hello()->set_tree_only(true);
    Send(e);
  }
  void Tree(pb::TreeRequest request) {
    pb::Envelope e;
    *e.mutable_tree_request() = std::move(request);
    Send(e);
  }
  void Bootstrap(uint64_t id, pb::BootstrapRequest::Op op) {
    pb::Envelope e;
    e.mutable_bootstrap_request()->set_request_id(id);
    e.mutable_bootstrap_request()->set_op(op);
    Send(e);
  }
  void Resync(const std::vector<std::string>& paths) {
    pb::Envelope e;
    for (const std::string& p : paths) e.mutable_file_resync()->add_paths(p);
    Send(e);
  }
  uint64_t last_seq() const { return received.empty() ? 0 : received.back().first; }
  InprocClientTransport& client() { return *client_; }

  std::vector<std::pair<uint64_t, std::string>> received;
  std::vector<pb::Error> errors;
  std::vector<pb::TreeReply> tree_replies;
  std::vector<pb::BootstrapReply> bootstrap_replies;
  int batches = 0;
  int compressed = 0;
  int heartbeats = 0;
  uint64_t primary_last_seq = 0;

 private:
  InprocHub* hub_;
  std::string name_;
  std::unique_ptr<InprocClientTransport> client_;
  pb::Envelope probe_;
};

// Counts the shipper's rounds (ShipperOptions::after_round), so that a test knows the shipper
// acted on what it was sent, and on the time it was given, before asserting what it did.
class Rounds {
 public:
  std::function<void()> Hook() {
    return [this] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++done_;
      }
      cv_.notify_all();
    };
  }
  // Waits until `n` more rounds have ended.
  void Wait(uint64_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t target = done_ + n;
    cv_.wait(lock, [&] { return done_ >= target; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t done_ = 0;  // guarded by mu_
};

using Meta = std::vector<std::pair<std::string, std::string>>;

// The journal's one writer as the shipper sees it (CaptureService::SubmitRetention): retentions
// are carried out on its own thread, one after the other. While held, they wait (a writer busy
// with a long batch); FailNext makes the next one fail without writing anything.
class FakeJournalWriter {
 public:
  struct Submitted {
    uint64_t up_to = 0;
    Meta meta;
  };

  explicit FakeJournalWriter(Journal* journal) : journal_(journal) {
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeJournalWriter() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      hold_ = false;
    }
    cv_.notify_all();
    thread_.join();
  }

  void Submit(uint64_t up_to, Meta meta, std::function<void(Status)> done) {
    std::lock_guard<std::mutex> lock(mu_);
    submitted_.push_back(Submitted{up_to, meta});
    pending_.push_back(Pending{up_to, std::move(meta), std::move(done)});
    cv_.notify_all();
  }
  // Waits until every retention submitted so far was carried out and its `done` called.
  void WaitIdle() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return pending_.empty() && !busy_; });
  }
  // Waits until `n` retentions were submitted in all.
  void WaitSubmitted(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return submitted_.size() >= n; });
  }
  void Hold(bool hold) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = hold;
    }
    cv_.notify_all();
  }
  void FailNext(Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_next_ = std::move(status);
  }
  std::vector<Submitted> submitted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return submitted_;
  }
  Journal* journal() const { return journal_; }

 private:
  struct Pending {
    uint64_t up_to = 0;
    Meta meta;
    std::function<void(Status)> done;
  };

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || (!hold_ && !pending_.empty()); });
      if (pending_.empty()) return;  // stopping
      Pending p = std::move(pending_.front());
      pending_.pop_front();
      busy_ = true;
      Status failure = std::move(fail_next_);
      fail_next_ = Status::Ok();
      lock.unlock();
      Status s = failure;
      if (s.ok()) {
        if (p.up_to >= journal_->first_seq()) {
          s = journal_->DeleteUpTo(p.up_to, p.meta);
        } else if (!p.meta.empty()) {
          s = journal_->PutMeta(p.meta);
        }
      }
      p.done(s);
      lock.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }

  Journal* journal_;
  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  std::vector<Submitted> submitted_;
  Status fail_next_;
  bool hold_ = false;
  bool busy_ = false;  // carrying out a retention outside mu_
  bool stop_ = false;
  std::thread thread_;
};

std::string MetaValue(const Meta& meta, const std::string& key) {
  for (const auto& [k, v] : meta) {
    if (k == key) return v;
  }
  return "<none>";
}

class ShipperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "shipper_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << strerror(errno);
    dir_ = tmpl;
    OpenJournal();
  }
  void TearDown() override {
    if (writer_) writer_->Hold(false);  // the shipper's Stop waits for its last retention
    shipper_.reset();
    writer_.reset();
    journal_.reset();
    fs::remove_all(dir_);
  }
  void OpenJournal() {
    journal_.reset();
    auto journal = Journal::Open({.path = dir_ + "/journal", .max_bytes = 0, .sync = false});
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    journal_ = std::move(journal).value();
  }
  void AppendEntries(uint64_t count) {
    std::vector<std::string> entries;
    for (uint64_t i = 0; i < count; ++i) entries.push_back(Payload(journal_->last_seq() + 1 + i));
    ASSERT_TRUE(journal_->Append(entries, {}).ok());
  }
  // The configured secondaries ([peers]) StartShipper gives the shipper.
  std::vector<std::string> peers_ = {"s1"};
  // The journal's writer for the shipper (a new one for a reopened journal).
  FakeJournalWriter& Writer() {
    if (!writer_ || writer_->journal() != journal_.get()) {
      writer_ = std::make_unique<FakeJournalWriter>(journal_.get());
    }
    return *writer_;
  }
  // The secondaries it serves: `peers_` unless `options` names them.
  void StartShipper(ShipperOptions options = {}) {
    options.endpoint = "inproc";
    if (options.peers.empty()) options.peers = peers_;
    FakeJournalWriter* writer = &Writer();
    options.submit_retention = [writer](uint64_t up_to, Meta meta,
                                        std::function<void(Status)> done) {
      writer->Submit(up_to, std::move(meta), std::move(done));
    };
    options.after_round = rounds_.Hook();
    retention_interval_ = options.retention_interval;
    shipper_ = std::make_unique<Shipper>(journal_.get(), hub_.CreateServer(), options, clock_);
    ASSERT_TRUE(shipper_->Start().ok());
  }
  // Returns once the shipper handled what was sent to it before this call and sent what it
  // had to send in answer: the round running now may have received before the message came,
  // the next one receives and handles it, the one after sends.
  void Settle() { rounds_.Wait(3); }
  // One retention round: time for it passes, the shipper submits (or has nothing to submit),
  // and the writer carries out what was submitted.
  void RetentionRound() {
    clock_.Advance(retention_interval_);
    Settle();
    Writer().WaitIdle();
  }
  static void ExpectConsecutive(const std::vector<std::pair<uint64_t, std::string>>& got,
                                uint64_t first, uint64_t last) {
    ASSERT_EQ(got.size(), last - first + 1);
    for (uint64_t seq = first; seq <= last; ++seq) {
      EXPECT_EQ(got[seq - first].first, seq);
      EXPECT_EQ(got[seq - first].second, Payload(seq)) << seq;
    }
  }
  PeerStatus Peer(const std::string& name) {
    for (const PeerStatus& p : shipper_->status().peers) {
      if (p.name == name) return p;
    }
    return PeerStatus{};
  }

  std::string MetaOf(const std::string& key) {
    auto value = journal_->GetMeta(key);
    EXPECT_TRUE(value.ok());
    return value.ok() && value->has_value() ? **value : std::string("<none>");
  }

  std::string dir_;
  std::unique_ptr<Journal> journal_;
  InprocHub hub_;
  // Time moves only when a test says so: heartbeats, silence and retention rounds happen when
  // it advances the clock (and once at the shipper's first round).
  ManualClock clock_;
  milliseconds retention_interval_{0};
  Rounds rounds_;
  std::unique_ptr<FakeJournalWriter> writer_;
  std::unique_ptr<Shipper> shipper_;
};

TEST_F(ShipperTest, StreamsFromTheEntryAfterDurableSeq) {
  AppendEntries(10);
  StartShipper();
  FakeSecondary s(&hub_, "s1");
  s.Hello(3, 100);
  ASSERT_TRUE(s.ReceiveUpTo(10));
  ExpectConsecutive(s.received, 4, 10);
  EXPECT_EQ(s.primary_last_seq, 10u);
  // New entries follow without another request.
  AppendEntries(5);
  shipper_->Notify();
  ASSERT_TRUE(s.ReceiveUpTo(15));
  ExpectConsecutive(s.received, 4, 15);
}

TEST_F(ShipperTest, CreditBoundsWhatIsSentBeyondTheLastAck) {
  AppendEntries(20);
  StartShipper();
  FakeSecondary s(&hub_, "s1");
  s.Hello(0, 3);
  ASSERT_TRUE(s.ReceiveUpTo(3));
  Settle();
  s.Drain();
  ExpectConsecutive(s.received, 1, 3);
  s.Ack(3, 2);
  ASSERT_TRUE(s.ReceiveUpTo(5));
  Settle();
  s.Drain();
  ExpectConsecutive(s.received, 1, 5);
  // Credit counts from the acknowledged durable sequence, not from what was sent.
  s.Ack(4, 0);
  Settle();
  s.Drain();
  EXPECT_EQ(s.last_seq(), 5u);
  s.Ack(5, 100);
  ASSERT_TRUE(s.ReceiveUpTo(20));
  ExpectConsecutive(s.received, 1, 20);
}

TEST_F(ShipperTest, BatchesAreBoundedAndLargeEntriesCompressed) {
  AppendEntries(40);
  ShipperOptions options;
  options.batch_entries = 8;
  StartShipper(options);
  FakeSecondary s(&hub_, "s1");
  s.Hello(0, 1000);
  ASSERT_TRUE(s.ReceiveUpTo(40));
  ExpectConsecutive(s.received, 1, 40);
  EXPECT_GE(s.batches, 5);
  EXPECT_EQ(s.compressed, 10);  // the 3 KiB ones; the small ones go as they are
  EXPECT_LT(shipper_->status().bytes_sent, 40u * 800);
}

TEST_F(ShipperTest, OnlyShippableEntriesAreSent) {
  AppendEntries(8);
  std::atomic<uint64_t> shippable{5};
  ShipperOptions options;
  options.shippable_seq = [&] { return shippable.load(); };
  StartShipper(options);
  FakeSecondary s(&hub_, "s1");
  s.Hello(0, 100);
  ASSERT_TRUE(s.ReceiveUpTo(5));
  Settle();
  s.Drain();
  ExpectConsecutive(s.received, 1, 5);
  EXPECT_EQ(s.primary_last_seq, 5u);
  shippable = 8;
  ASSERT_TRUE(s.ReceiveUpTo(8));
  ExpectConsecutive(s.received, 1, 8);
}

TEST_F(ShipperTest, RetentionDeletesWhatEveryKnownSecondaryHolds) {
  AppendEntries(10);
  peers_ = {"a", "b"};
  ShipperOptions options;
  options.retention_interval = milliseconds(10);
  StartShipper(options);
  FakeSecondary a(&hub_, "a"), b(&hub_, "b");
  a.Hello(0, 100);
  b.Hello(0, 100);
  ASSERT_TRUE(a.ReceiveUpTo(10));
  ASSERT_TRUE(b.ReceiveUpTo(10));
  a.Ack(10, 100);
  b.Ack(5, 100);
  Settle();
  RetentionRound();
  ASSERT_EQ(journal_->first_seq(), 6u);
  for (int i = 0; i < 5; ++i) RetentionRound();
  EXPECT_EQ(journal_->first_seq(), 6u) << "b does not hold 6..10 yet";
  b.Ack(10, 100);
  Settle();
  RetentionRound();
  ASSERT_EQ(journal_->first_seq(), 11u);
  EXPECT_EQ(journal_->last_seq(), 10u);
  auto durable = journal_->GetMeta("peer.b.durable");
  ASSERT_TRUE(durable.ok());
  ASSERT_TRUE(durable->has_value());
  EXPECT_EQ(**durable, "10");
}

TEST_F(ShipperTest, KnownSecondariesHoldEntriesAcrossRestart) {
  AppendEntries(10);
  peers_ = {"a", "b"};
  ShipperOptions options;
  options.retention_interval = milliseconds(10);
  StartShipper(options);
  {
    FakeSecondary a(&hub_, "a"), b(&hub_, "b");
    a.Hello(0, 100);
    b.Hello(0, 100);
    ASSERT_TRUE(a.ReceiveUpTo(10));
    ASSERT_TRUE(b.ReceiveUpTo(4));
    a.Ack(10, 100);
    b.Ack(4, 100);
    Settle();
    RetentionRound();
    ASSERT_EQ(journal_->first_seq(), 5u);
  }
  shipper_.reset();
  OpenJournal();
  StartShipper(options);
  // Only a comes back: b's position still holds entries 5..10.
  FakeSecondary a(&hub_, "a");
  a.Hello(10, 100);
  AppendEntries(5);
  ASSERT_TRUE(a.ReceiveUpTo(15));
  ExpectConsecutive(a.received, 11, 15);
  a.Ack(15, 100);
  Settle();
  ASSERT_EQ(Peer("a").durable_seq, 15u);
  for (int i = 0; i < 5; ++i) RetentionRound();
  EXPECT_EQ(journal_->first_seq(), 5u);
  PeerStatus b = Peer("b");
  EXPECT_EQ(b.name, "b");
  EXPECT_FALSE(b.connected);
  EXPECT_EQ(b.durable_seq, 4u);
  // b returns and resumes exactly after what it holds.
  FakeSecondary b2(&hub_, "b");
  b2.Hello(4, 100);
  ASSERT_TRUE(b2.ReceiveUpTo(15));
  ExpectConsecutive(b2.received, 5, 15);
}

// Issue 11: the journal has one writer. The shipper hands its retention to it and goes on: while
// the writer holds the first retention, entries are still sent, nothing else is submitted, and
// the journal is untouched (the old shipper deleted and wrote its values itself).
TEST_F(ShipperTest, RetentionIsHandedToTheJournalWriterWithoutWaitingForIt) {
  AppendEntries(10);
  peers_ = {"a"};
  Writer().Hold(true);
  ShipperOptions options;
  options.retention_interval = milliseconds(5);
  StartShipper(options);
  FakeSecondary a(&hub_, "a");
  a.Hello(0, 100);
  ASSERT_TRUE(a.ReceiveUpTo(10));
  a.Ack(10, 100);
  Settle();
  ASSERT_EQ(Peer("a").durable_seq, 10u);
  AppendEntries(5);
  shipper_->Notify();
  ASSERT_TRUE(a.ReceiveUpTo(15)) << "the send loop does not wait for the writer";
  for (int i = 0; i < 10; ++i) {  // many retention rounds
    clock_.Advance(options.retention_interval);
    Settle();
  }
  std::vector<FakeJournalWriter::Submitted> submitted = Writer().submitted();
  ASSERT_EQ(submitted.size(), 1u) << "one retention outstanding at a time";
  EXPECT_EQ(submitted[0].up_to, 0u) << "the Hello's: a held nothing yet";
  EXPECT_EQ(MetaValue(submitted[0].meta, "shipper.peers"), "a\n");
  EXPECT_EQ(journal_->first_seq(), 1u) << "the shipper deletes nothing itself";
  EXPECT_EQ(MetaOf("shipper.peers"), "<none>") << "nor writes its values";

  Writer().Hold(false);
  Writer().WaitIdle();  // the first retention is carried out
  RetentionRound();     // the next one is submitted and carried out
  ASSERT_EQ(journal_->first_seq(), 11u);
  submitted = Writer().submitted();
  ASSERT_GE(submitted.size(), 2u);
  EXPECT_EQ(submitted[1].up_to, 10u) << "the state after the first was done";
  EXPECT_EQ(MetaValue(submitted[1].meta, "peer.a.durable"), "10");
  EXPECT_EQ(MetaValue(submitted[1].meta, "shipper.peers"), "<none>") << "written already";
  EXPECT_EQ(MetaOf("shipper.peers"), "a\n");
  EXPECT_EQ(MetaOf("peer.a.durable"), "10");
  EXPECT_EQ(journal_->last_seq(), 15u);
}

TEST_F(ShipperTest, FailedRetentionIsReportedAndItsValuesAreSentAgain) {
  AppendEntries(10);
  peers_ = {"a"};
  Writer().FailNext(Status::IoError("write journal: No space left on device (test)"));
  ShipperOptions options;
  options.retention_interval = milliseconds(5);
  StartShipper(options);
  FakeSecondary a(&hub_, "a");
  a.Hello(0, 100);
  ASSERT_TRUE(a.ReceiveUpTo(10));
  Writer().WaitIdle();  // the Hello's retention failed
  RetentionRound();     // the next round reports it and submits the values again
  ASSERT_NE(shipper_->status().last_error.find("No space left on device (test)"),
            std::string::npos);
  ASSERT_EQ(MetaOf("shipper.peers"), "a\n")
      << "the list the failed retention carried is written by a later one";
  EXPECT_EQ(MetaOf("peer.a.durable"), "0");
  std::vector<FakeJournalWriter::Submitted> submitted = Writer().submitted();
  ASSERT_GE(submitted.size(), 2u);
  EXPECT_EQ(MetaValue(submitted[0].meta, "shipper.peers"), "a\n");
  EXPECT_EQ(MetaValue(submitted[1].meta, "shipper.peers"), "a\n");
  EXPECT_EQ(MetaValue(submitted[1].meta, "peer.a.durable"), "0");
}

TEST_F(ShipperTest, StopWaitsForTheWriterToPersistTheLastPositions) {
  AppendEntries(10);
  peers_ = {"a"};
  ShipperOptions options;
  options.retention_interval = std::chrono::hours(1);  // only the Hello's and Stop's
  StartShipper(options);
  FakeSecondary a(&hub_, "a");
  a.Hello(0, 100);
  ASSERT_TRUE(a.ReceiveUpTo(10));
  Writer().WaitIdle();  // the Hello's retention
  ASSERT_EQ(MetaOf("shipper.peers"), "a\n");
  Writer().Hold(true);
  a.Ack(7, 100);
  Settle();
  ASSERT_EQ(Peer("a").durable_seq, 7u);
  const size_t submitted = Writer().submitted().size();
  std::atomic<bool> released{false};
  std::thread release([&] {
    // Stop's last retention is handed to the writer, which holds it: Stop must still be
    // waiting for it.
    Writer().WaitSubmitted(submitted + 1);
    released = true;
    Writer().Hold(false);
  });
  shipper_->Stop();
  EXPECT_TRUE(released.load()) << "Stop returned before the writer carried out the retention";
  EXPECT_EQ(MetaOf("peer.a.durable"), "7");
  EXPECT_EQ(journal_->first_seq(), 8u);
  release.join();
}

TEST_F(ShipperTest, StartRefusesWithoutAJournalWriter) {
  Shipper shipper(journal_.get(), hub_.CreateServer(), ShipperOptions{});
  Status s = shipper.Start();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
}

TEST_F(ShipperTest, SecondaryTooFarBehindGetsFatalErrorNeverAGap) {
  AppendEntries(10);
  ASSERT_TRUE(journal_->DeleteUpTo(5).ok());
  peers_ = {"late"};
  StartShipper();
  FakeSecondary s(&hub_, "late");
  s.Hello(2, 100);
  Settle();
  s.Drain();
  EXPECT_TRUE(s.received.empty());
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_TRUE(s.errors[0].fatal());
  EXPECT_NE(s.errors[0].message().find("too far behind"), std::string::npos);
  EXPECT_NE(s.errors[0].message().find("needs sequence 3"), std::string::npos);
  EXPECT_NE(s.errors[0].message().find("starts at 6"), std::string::npos);
  EXPECT_NE(s.errors[0].message().find("ootstrap"), std::string::npos);
  EXPECT_EQ(journal_->first_seq(), 6u);
}

TEST_F(ShipperTest, SecondaryAheadOfTheJournalGetsFatalError) {
  AppendEntries(3);
  peers_ = {"other"};
  StartShipper();
  FakeSecondary s(&hub_, "other");
  s.Hello(50, 100);
  Settle();
  s.Drain();
  EXPECT_TRUE(s.received.empty());
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_TRUE(s.errors[0].fatal());
  EXPECT_NE(s.errors[0].message().find("ends at 3"), std::string::npos);
}

TEST_F(ShipperTest, ReconnectResumesAfterWhatTheSecondaryHolds) {
  AppendEntries(30);
  StartShipper();
  FakeSecondary s(&hub_, "s1");
  s.Hello(0, 10);
  ASSERT_TRUE(s.ReceiveUpTo(10));
  std::string first_peer = hub_.PeerId(s.client());
  // The connection drops; the secondary had made 1..7 durable only.
  hub_.Disconnect(s.client());
  EXPECT_NE(hub_.PeerId(s.client()), first_peer);
  s.received.resize(7);
  s.Hello(7, 100);
  ASSERT_TRUE(s.ReceiveUpTo(30));
  ExpectConsecutive(s.received, 1, 30);
  ASSERT_EQ(Peer("s1").peer_id, hub_.PeerId(s.client()));
}

TEST_F(ShipperTest, HeartbeatsFlowAndASilentSecondaryIsDisconnected) {
  AppendEntries(2);
  ShipperOptions options;
  options.heartbeat_interval = milliseconds(20);
  options.silence_timeout = milliseconds(600);
  StartShipper(options);
  FakeSecondary s(&hub_, "s1");
  s.Hello(2, 100, 2);
  Settle();
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(options.heartbeat_interval);
    Settle();
  }
  s.Drain();
  EXPECT_GE(s.heartbeats, 2);
  EXPECT_EQ(s.primary_last_seq, 2u);
  PeerStatus p = Peer("s1");
  EXPECT_TRUE(p.connected);
  EXPECT_EQ(p.applied_seq, 2u);
  EXPECT_GT(p.last_seen_unix_ms, 0);
  // Silence: the session goes away, the secondary is still known.
  clock_.Advance(options.silence_timeout);
  Settle();
  ASSERT_FALSE(Peer("s1").connected);
  p = Peer("s1");
  EXPECT_EQ(p.name, "s1");
  EXPECT_EQ(p.durable_seq, 2u);
  s.Drain();  // what was sent before the drop
  int before = s.heartbeats;
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(options.heartbeat_interval);
    Settle();
  }
  s.Drain();
  EXPECT_EQ(s.heartbeats, before) << "no heartbeats to a dropped session";
}

TEST_F(ShipperTest, NoConfiguredSecondaryKeepsEverything) {
  AppendEntries(10);
  peers_ = {};
  ShipperOptions options;
  options.retention_interval = milliseconds(5);
  StartShipper(options);
  for (int i = 0; i < 10; ++i) RetentionRound();
  EXPECT_EQ(journal_->first_seq(), 1u);
  EXPECT_TRUE(shipper_->status().peers.empty());
}

TEST_F(ShipperTest, HelloWithoutNameIsRefused) {
  AppendEntries(2);
  StartShipper();
  FakeSecondary s(&hub_, "", /*authenticated=*/false);
  s.Hello(0, 100);
  Settle();
  s.Drain();
  EXPECT_TRUE(s.received.empty());
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_TRUE(s.errors[0].fatal());
}

// Issue 13: any name in a Hello was served and remembered forever (pinning retention). Without
// an authenticated name (an insecure transport), the Hello's name must be a configured peer.
TEST_F(ShipperTest, AnUnconfiguredNameIsRefusedServedNothingAndPinsNothing) {
  AppendEntries(10);
  ShipperOptions options;
  options.retention_interval = milliseconds(5);
  StartShipper(options);
  FakeSecondary intruder(&hub_, "intruder", /*authenticated=*/false);
  intruder.Hello(0, 100);
  Settle();
  intruder.Drain();
  EXPECT_TRUE(intruder.received.empty());
  ASSERT_EQ(intruder.errors.size(), 1u);
  EXPECT_TRUE(intruder.errors[0].fatal());
  EXPECT_NE(intruder.errors[0].message().find("not in this primary's [peers]"), std::string::npos)
      << intruder.errors[0].message();
  // Its Acks find no session; the configured secondary still decides retention alone.
  intruder.Ack(10, 100);
  FakeSecondary s(&hub_, "s1", /*authenticated=*/false);
  s.Hello(0, 100);
  ASSERT_TRUE(s.ReceiveUpTo(10));
  s.Ack(4, 100);
  Settle();
  RetentionRound();
  EXPECT_EQ(journal_->first_seq(), 5u);
  std::vector<PeerStatus> peers = shipper_->status().peers;
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].name, "s1");
  EXPECT_EQ(MetaOf("shipper.peers"), "s1\n");
  EXPECT_GE(shipper_->status().refused_requests, 1u);
}

// A session's name is the one the transport authenticated (the key's [peers] entry), never the
// Hello's: a peer proved as s1 that says it is someone else is still s1, and a peer proved
// under a name that is not configured is refused even when its Hello names a configured one.
TEST_F(ShipperTest, TheSessionIsNamedByTheTransportNotByTheHello) {
  AppendEntries(4);
  StartShipper();
  FakeSecondary s(&hub_, "s1");
  pb::Envelope hello;
  hello.set_version(kProtocolVersion);
  hello.mutable_hello()->set_node_name("someone-else");
  hello.mutable_hello()->set_credit(100);
  ASSERT_TRUE(s.client().Send(hello).ok());
  ASSERT_TRUE(s.ReceiveUpTo(4));
  EXPECT_TRUE(Peer("s1").connected);
  EXPECT_EQ(Peer("s1").peer_id, hub_.PeerId(s.client()));

  FakeSecondary mallory(&hub_, "mallory");
  pb::Envelope forged;
  forged.set_version(kProtocolVersion);
  forged.mutable_hello()->set_node_name("s1");
  forged.mutable_hello()->set_durable_seq(4);
  forged.mutable_hello()->set_credit(100);
  ASSERT_TRUE(mallory.client().Send(forged).ok());
  Settle();
  mallory.Drain();
  EXPECT_TRUE(mallory.received.empty());
  ASSERT_EQ(mallory.errors.size(), 1u);
  EXPECT_TRUE(mallory.errors[0].fatal());
  EXPECT_EQ(Peer("s1").peer_id, hub_.PeerId(s.client())) << "the real session is untouched";
}

// Several secondaries: one that is configured but never said Hello holds everything, and status
// shows it as never connected.
TEST_F(ShipperTest, AConfiguredSecondaryThatNeverConnectedKeepsEverything) {
  AppendEntries(10);
  peers_ = {"a", "b"};
  ShipperOptions options;
  options.retention_interval = milliseconds(5);
  StartShipper(options);
  FakeSecondary a(&hub_, "a");
  a.Hello(0, 100);
  ASSERT_TRUE(a.ReceiveUpTo(10));
  a.Ack(10, 100);
  Settle();
  for (int i = 0; i < 5; ++i) RetentionRound();
  EXPECT_EQ(journal_->first_seq(), 1u);
  EXPECT_TRUE(Peer("a").ever_connected);
  EXPECT_FALSE(Peer("b").ever_connected);
  EXPECT_FALSE(Peer("b").connected);
  EXPECT_EQ(MetaOf("shipper.peers"), "a\n") << "only a secondary that said Hello is listed";
}

// Removing a secondary from [peers] releases what it pinned (at the next start).
TEST_F(ShipperTest, RemovingAPeerReleasesWhatItPinned) {
  AppendEntries(10);
  peers_ = {"a", "b"};
  ShipperOptions options;
  options.retention_interval = milliseconds(5);
  StartShipper(options);
  {
    FakeSecondary a(&hub_, "a"), b(&hub_, "b");
    a.Hello(0, 100);
    b.Hello(0, 100);
    ASSERT_TRUE(a.ReceiveUpTo(10));
    ASSERT_TRUE(b.ReceiveUpTo(3));
    a.Ack(10, 100);
    b.Ack(3, 100);
    Settle();
    RetentionRound();
    ASSERT_EQ(journal_->first_seq(), 4u);
  }
  shipper_.reset();
  OpenJournal();
  peers_ = {"a"};
  StartShipper(options);
  RetentionRound();
  RetentionRound();
  EXPECT_EQ(journal_->first_seq(), 11u) << "a holds everything; b no longer counts";
  EXPECT_EQ(MetaOf("shipper.peers"), "a\n");
  std::vector<PeerStatus> peers = shipper_->status().peers;
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].name, "a");
}

// Issue 13: Ack{durable_seq: 2^64-1} wrapped the bound check (durable + 1 > next_seq) and moved
// the position to 2^64-1, so retention deleted what the secondary never received. Now an Ack is
// clamped to what its session was sent.
TEST_F(ShipperTest, AnAckBeyondWhatWasSentIsClampedEvenAtTheLargestValue) {
  AppendEntries(10);
  ShipperOptions options;
  options.retention_interval = milliseconds(10);
  StartShipper(options);
  FakeSecondary s(&hub_, "s1");
  s.Hello(0, 4);
  ASSERT_TRUE(s.ReceiveUpTo(4));
  Settle();
  s.Ack(std::numeric_limits<uint64_t>::max(), 0, std::numeric_limits<uint64_t>::max());
  Settle();
  RetentionRound();
  PeerStatus p = Peer("s1");
  EXPECT_EQ(p.durable_seq, 4u);
  EXPECT_EQ(p.applied_seq, 4u);
  EXPECT_EQ(journal_->first_seq(), 5u) << "entries 5..10 were never sent: they stay";
  EXPECT_GE(shipper_->status().refused_requests, 1u);
  // A huge credit does not overflow the window either: the rest is sent.
  s.Ack(4, std::numeric_limits<uint32_t>::max());
  ASSERT_TRUE(s.ReceiveUpTo(10));
  ExpectConsecutive(s.received, 1, 10);
}

// A Hello under a known secondary's name claiming the journal's end (the eviction
// attack) moves its position only as far as what was sent to that name.
TEST_F(ShipperTest, AHelloCannotRaiseAKnownPositionBeyondWhatWasSent) {
  AppendEntries(10);
  ShipperOptions options;
  options.retention_interval = milliseconds(10);
  StartShipper(options);
  FakeSecondary real(&hub_, "s1");
  real.Hello(0, 3);
  ASSERT_TRUE(real.ReceiveUpTo(3));
  real.Ack(2, 0);
  Settle();
  RetentionRound();
  ASSERT_EQ(journal_->first_seq(), 3u);
  FakeSecondary forged(&hub_, "s1");
  forged.Hello(10, 0, 10);
  Settle();
  RetentionRound();
  PeerStatus p = Peer("s1");
  EXPECT_EQ(p.durable_seq, 3u) << "only 1..3 were ever sent to s1";
  EXPECT_LE(p.applied_seq, 3u);
  EXPECT_EQ(journal_->first_seq(), 4u);
  // Its Ack of what it claims is clamped too: nothing was sent in its session.
  forged.Ack(10, 0);
  Settle();
  RetentionRound();
  EXPECT_EQ(Peer("s1").durable_seq, 3u);
  EXPECT_EQ(journal_->first_seq(), 4u);
}

TEST_F(ShipperTest, AFileResyncWithABadPathIsRefusedWholeWithAnErrorNamingIt) {
  AppendEntries(2);
  std::vector<std::vector<std::string>> asked;
  ShipperOptions options;
  options.on_file_resync = [&asked](const std::vector<std::string>& paths) {
    asked.push_back(paths);
  };
  StartShipper(options);
  FakeSecondary s(&hub_, "s1");
  s.Hello(2, 100);
  Settle();
  for (const std::string bad : {"../secret.txt", "/etc/passwd", "", "a/./b", "a/"}) {
    s.Resync({"good.txt", bad});
  }
  s.Resync({"good.txt", "dir/x"});
  Settle();
  s.Drain();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], (std::vector<std::string>{"good.txt", "dir/x"}));
  ASSERT_EQ(s.errors.size(), 5u);
  for (const pb::Error& e : s.errors) EXPECT_FALSE(e.fatal()) << e.message();
  EXPECT_NE(s.errors[0].message().find("\"../secret.txt\""), std::string::npos)
      << s.errors[0].message();
  EXPECT_NE(s.errors[1].message().find("is absolute"), std::string::npos);
  EXPECT_NE(s.errors[2].message().find("is empty"), std::string::npos);
  EXPECT_TRUE(Peer("s1").connected);
  // Without a session a FileResync is refused too.
  FakeSecondary stranger(&hub_, "x");
  stranger.Resync({"good.txt"});
  Settle();
  stranger.Drain();
  EXPECT_EQ(asked.size(), 1u);
  ASSERT_EQ(stranger.errors.size(), 1u);
}

TEST_F(ShipperTest, BadFramesAreDroppedAndShownInTheStatus) {
  AppendEntries(2);
  StartShipper();
  FakeSecondary s(&hub_, "s1");
  s.Hello(0, 100);
  ASSERT_TRUE(s.ReceiveUpTo(2));
  hub_.InjectFrameToServer(s.client(), "not an envelope");
  pb::Envelope future;
  future.set_version(kProtocolVersion + 1);
  future.mutable_ack()->set_durable_seq(2);
  hub_.InjectFrameToServer(s.client(), future.SerializeAsString());
  Settle();
  EXPECT_EQ(shipper_->status().bad_frames, 2u);
  // The session goes on.
  EXPECT_TRUE(Peer("s1").connected);
  AppendEntries(1);
  shipper_->Notify();
  EXPECT_TRUE(s.ReceiveUpTo(3));
}

class ShipperTreeTest : public ShipperTest {
 protected:
  void StartWithTrees(ShipperOptions options = {}) {
    AppendEntries(2);
    peers_ = {"verify", "verify2", "other"};
    options.on_tree_snapshot = [this](bool deep, std::vector<std::string> paths,
                                      std::function<void(Result<FileTreeSnapshot>)> done) {
      snapshots_.push_back({deep, paths});
      if (hold_) {
        held_.push_back(std::move(done));
        return;
      }
      FileTreeSnapshot snapshot;
      FileTree tree;
      tree.Finish(false);
      snapshot.tree = std::make_shared<const FileTree>(std::move(tree));
      done(std::move(snapshot));
    };
    StartShipper(options);
  }
  static pb::TreeRequest Open(uint64_t id, bool deep, std::vector<std::string> paths = {}) {
    pb::TreeRequest r;
    r.set_request_id(id);
    r.set_open(true);
    r.set_deep(deep);
    for (const std::string& p : paths) r.add_resync_paths(p);
    return r;
  }
  static pb::TreeRequest List(uint64_t id, const std::string& session, std::string dir) {
    pb::TreeRequest r;
    r.set_request_id(id);
    r.set_session(session);
    r.add_dirs(std::move(dir));
    return r;
  }
  // The shipper serves snapshots in a later round: give it those.
  void SettleTwice() {
    Settle();
    Settle();
  }

  std::vector<std::pair<bool, std::vector<std::string>>> snapshots_;
  bool hold_ = false;
  std::vector<std::function<void(Result<FileTreeSnapshot>)>> held_;
};

TEST_F(ShipperTreeTest, ATreeRequestWithoutHelloIsRefusedAndTakesNoSnapshot) {
  StartWithTrees();
  FakeSecondary v(&hub_, "verify");
  v.Tree(Open(1, false));
  SettleTwice();
  v.Drain();
  EXPECT_TRUE(snapshots_.empty());
  ASSERT_EQ(v.tree_replies.size(), 1u);
  EXPECT_EQ(v.tree_replies[0].request_id(), 1u);
  EXPECT_NE(v.tree_replies[0].error().find("Hello"), std::string::npos);
  // After Hello{tree_only}: served, and the name is no known secondary.
  v.TreeHello();
  v.Tree(Open(2, false));
  SettleTwice();
  v.Drain();
  ASSERT_EQ(v.tree_replies.size(), 2u);
  EXPECT_EQ(v.tree_replies[1].error(), "");
  EXPECT_FALSE(v.tree_replies[1].session().empty());
  for (const PeerStatus& peer : shipper_->status().peers) {
    EXPECT_FALSE(peer.ever_connected) << peer.name << ": a tree-only Hello starts no session";
  }
  EXPECT_TRUE(v.received.empty());
}

TEST_F(ShipperTreeTest, BadPathsInATreeRequestAreRefusedBeforeAnythingIsRead) {
  StartWithTrees();
  FakeSecondary v(&hub_, "verify");
  v.TreeHello();
  uint64_t id = 0;
  for (const std::string bad : {"../secret.txt", "/etc/passwd", "", ".", "a//b", "a/"}) {
    v.Tree(Open(++id, false, {"ok.txt", bad}));
  }
  v.Tree(List(++id, "any", "../.."));
  SettleTwice();
  v.Drain();
  EXPECT_TRUE(snapshots_.empty()) << "nothing may be read for a bad request";
  ASSERT_EQ(v.tree_replies.size(), id);
  for (const pb::TreeReply& r : v.tree_replies) {
    EXPECT_NE(r.error().find("refused: path"), std::string::npos) << r.error();
  }
  EXPECT_NE(v.tree_replies[0].error().find("'..' component"), std::string::npos);
  // The root listing ("") is a good dir.
  v.Tree(Open(++id, false, {"ok.txt"}));
  SettleTwice();
  v.Drain();
  ASSERT_EQ(snapshots_.size(), 1u);
  const std::string session = v.tree_replies.back().session();
  ASSERT_FALSE(session.empty());
  v.Tree(List(++id, session, ""));
  SettleTwice();
  v.Drain();
  EXPECT_EQ(v.tree_replies.back().error(), "");
}

TEST_F(ShipperTreeTest, ASecondOpenReplacesThePeersFirstSessionAndOnePendsAtATime) {
  StartWithTrees();
  FakeSecondary v(&hub_, "verify");
  v.TreeHello();
  v.Tree(Open(1, false));
  SettleTwice();
  v.Drain();
  const std::string first = v.tree_replies.at(0).session();
  hold_ = true;
  v.Tree(Open(2, false));
  v.Tree(Open(3, false));  // while 2 is being taken
  SettleTwice();
  v.Drain();
  ASSERT_EQ(v.tree_replies.size(), 2u);
  EXPECT_EQ(v.tree_replies[1].request_id(), 3u);
  EXPECT_NE(v.tree_replies[1].error().find("still being taken"), std::string::npos);
  ASSERT_EQ(held_.size(), 1u);
  FileTreeSnapshot snapshot;
  FileTree tree;
  tree.Finish(false);
  snapshot.tree = std::make_shared<const FileTree>(std::move(tree));
  held_[0](std::move(snapshot));
  SettleTwice();
  v.Drain();
  ASSERT_EQ(v.tree_replies.size(), 3u);
  const std::string second = v.tree_replies[2].session();
  ASSERT_FALSE(second.empty());
  EXPECT_NE(second, first);
  v.Tree(List(4, first, ""));
  v.Tree(List(5, second, ""));
  SettleTwice();
  v.Drain();
  ASSERT_EQ(v.tree_replies.size(), 5u);
  EXPECT_NE(v.tree_replies[3].error().find("no verify session"), std::string::npos);
  EXPECT_EQ(v.tree_replies[4].error(), "");
  // Another peer cannot list this peer's session.
  FakeSecondary other(&hub_, "other");
  other.TreeHello();
  other.Tree(List(1, second, ""));
  SettleTwice();
  other.Drain();
  ASSERT_EQ(other.tree_replies.size(), 1u);
  EXPECT_NE(other.tree_replies[0].error().find("no verify session"), std::string::npos);
}

TEST_F(ShipperTreeTest, DeepOpensAreRateLimitedPerPeerOnTheClock) {
  ShipperOptions options;
  options.deep_open_burst = 2;
  options.deep_open_interval = milliseconds(60000);
  StartWithTrees(options);
  FakeSecondary v(&hub_, "verify");
  v.TreeHello();
  for (uint64_t id = 1; id <= 3; ++id) {
    v.Tree(Open(id, true));
    SettleTwice();
  }
  v.Drain();
  ASSERT_EQ(v.tree_replies.size(), 3u);
  EXPECT_EQ(v.tree_replies[0].error(), "");
  EXPECT_EQ(v.tree_replies[1].error(), "");
  EXPECT_NE(v.tree_replies[2].error().find("too many deep snapshots"), std::string::npos);
  EXPECT_EQ(snapshots_.size(), 2u);
  // A shallow open is not limited; another peer has its own bucket.
  v.Tree(Open(4, false));
  FakeSecondary w(&hub_, "verify2");
  w.TreeHello();
  w.Tree(Open(1, true));
  SettleTwice();
  v.Drain();
  w.Drain();
  EXPECT_EQ(v.tree_replies.back().error(), "");
  EXPECT_EQ(w.tree_replies.at(0).error(), "");
  // One interval later, one more deep open.
  clock_.Advance(options.deep_open_interval);
  v.TreeHello();
  v.Tree(Open(5, true));
  SettleTwice();
  v.Tree(Open(6, true));
  SettleTwice();
  v.Drain();
  ASSERT_EQ(v.tree_replies.size(), 6u);
  EXPECT_EQ(v.tree_replies[4].error(), "");
  EXPECT_NE(v.tree_replies[5].error().find("too many deep snapshots"), std::string::npos);
}

// ---- bootstrap: requests handed to the bootstrap service, replies sent; pins

class ShipperBootstrapTest : public ShipperTest {
 protected:
  struct Handed {
    std::string name;
    pb::BootstrapRequest request;
    std::function<void(pb::BootstrapReply)> done;
  };
  void StartWithBootstrap(ShipperOptions options = {}) {
    AppendEntries(2);
    peers_ = {"s1", "s2"};
    options.on_bootstrap_request = [this](const std::string& name, pb::BootstrapRequest request,
                                          std::function<void(pb::BootstrapReply)> done) {
      std::lock_guard<std::mutex> lock(mu_);
      handed_.push_back(Handed{name, std::move(request), std::move(done)});
    };
    options.on_tree_peer_gone = [this](const std::string& name) {
      std::lock_guard<std::mutex> lock(mu_);
      gone_.push_back(name);
    };
    StartShipper(options);
  }
  std::vector<Handed> TakeHanded() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(handed_);
  }
  std::vector<std::string> Gone() {
    std::lock_guard<std::mutex> lock(mu_);
    return gone_;
  }

  std::mutex mu_;
  std::vector<Handed> handed_;    // guarded by mu_
  std::vector<std::string> gone_;  // guarded by mu_
};

TEST_F(ShipperBootstrapTest, ARequestWithoutHelloIsRefusedAndNotHandedOver) {
  StartWithBootstrap();
  FakeSecondary s(&hub_, "s1");
  s.Bootstrap(1, pb::BootstrapRequest::POSITION);
  Settle();
  s.Drain();
  EXPECT_TRUE(TakeHanded().empty());
  ASSERT_EQ(s.bootstrap_replies.size(), 1u);
  EXPECT_EQ(s.bootstrap_replies[0].request_id(), 1u);
  EXPECT_NE(s.bootstrap_replies[0].error().find("Hello{tree_only}"), std::string::npos);
}

TEST_F(ShipperBootstrapTest, ARequestIsHandedOverWithTheKeysNameAndAnsweredFromAnotherThread) {
  StartWithBootstrap();
  // The transport authenticated the key of [peers] s2; the Hello claims s1.
  FakeSecondary s(&hub_, "s2");
  pb::Envelope hello;
  hello.mutable_hello()->set_node_name("s1");
  hello.mutable_hello()->set_tree_only(true);
  s.Send(hello);
  s.Bootstrap(7, pb::BootstrapRequest::BEGIN_ROUND);
  Settle();
  std::vector<Handed> handed = TakeHanded();
  ASSERT_EQ(handed.size(), 1u);
  EXPECT_EQ(handed[0].name, "s2");
  EXPECT_EQ(handed[0].request.request_id(), 7u);
  EXPECT_EQ(handed[0].request.op(), pb::BootstrapRequest::BEGIN_ROUND);
  s.Drain();
  EXPECT_TRUE(s.bootstrap_replies.empty()) << "no reply before the service gives one";
  // The service answers from its own thread; the shipper's thread sends it.
  std::thread service([&] {
    pb::BootstrapReply reply;
    reply.set_request_id(7);
    reply.set_round(3);
    handed[0].done(std::move(reply));
  });
  service.join();
  Settle();
  s.Drain();
  ASSERT_EQ(s.bootstrap_replies.size(), 1u);
  EXPECT_EQ(s.bootstrap_replies[0].request_id(), 7u);
  EXPECT_EQ(s.bootstrap_replies[0].round(), 3u);
  EXPECT_FALSE(Peer("s2").ever_connected) << "a tree-only Hello starts no replication session";
}

TEST_F(ShipperBootstrapTest, TooManyRequestsAtOnceAreRefused) {
  ShipperOptions options;
  options.max_bootstrap_pending = 2;
  StartWithBootstrap(options);
  FakeSecondary s(&hub_, "s1");
  s.TreeHello();
  for (uint64_t id = 1; id <= 3; ++id) s.Bootstrap(id, pb::BootstrapRequest::POSITION);
  Settle();
  s.Drain();
  std::vector<Handed> handed = TakeHanded();
  ASSERT_EQ(handed.size(), 2u);
  ASSERT_EQ(s.bootstrap_replies.size(), 1u);
  EXPECT_EQ(s.bootstrap_replies[0].request_id(), 3u);
  EXPECT_NE(s.bootstrap_replies[0].error().find("being served already"), std::string::npos);
  // Once one is answered, the next is taken.
  handed[0].done(pb::BootstrapReply());
  Settle();
  s.Bootstrap(4, pb::BootstrapRequest::POSITION);
  Settle();
  EXPECT_EQ(TakeHanded().size(), 1u);
}

TEST_F(ShipperBootstrapTest, AnIdleTreePeerIsGoneOnlyWhenItsRequestsWereAnswered) {
  ShipperOptions options;
  options.tree_session_idle = milliseconds(1000);
  StartWithBootstrap(options);
  FakeSecondary s(&hub_, "s1");
  s.TreeHello();
  s.Bootstrap(1, pb::BootstrapRequest::POSITION);
  Settle();
  std::vector<Handed> handed = TakeHanded();
  ASSERT_EQ(handed.size(), 1u);
  clock_.Advance(milliseconds(2000));
  Settle();
  EXPECT_TRUE(Gone().empty()) << "a request of s1 is still being served";
  handed[0].done(pb::BootstrapReply());
  Settle();
  clock_.Advance(milliseconds(2000));
  Settle();
  EXPECT_EQ(Gone(), std::vector<std::string>{"s1"});
}

TEST_F(ShipperTest, APinKeepsEntriesFromItsSequenceAndIsPersisted) {
  AppendEntries(10);
  peers_ = {"a", "b"};
  ShipperOptions options;
  options.retention_interval = milliseconds(10);
  StartShipper(options);
  FakeSecondary a(&hub_, "a"), b(&hub_, "b");
  a.Hello(0, 100);
  b.Hello(0, 100);
  ASSERT_TRUE(a.ReceiveUpTo(10));
  ASSERT_TRUE(b.ReceiveUpTo(10));
  a.Ack(10, 100);
  b.Ack(4, 100);
  Settle();
  RetentionRound();
  ASSERT_EQ(journal_->first_seq(), 5u);
  // b starts over: the stream it needs begins at 8.
  ASSERT_TRUE(shipper_->Pin("b", 8).ok());
  EXPECT_EQ(Peer("b").durable_seq, 7u);
  EXPECT_FALSE(Peer("b").connected) << "b's replication session is dropped";
  RetentionRound();
  EXPECT_EQ(journal_->first_seq(), 8u);
  EXPECT_EQ(MetaOf("peer.b.durable"), "7");
  AppendEntries(10);
  a.Ack(10, 100);
  for (int i = 0; i < 3; ++i) RetentionRound();
  EXPECT_EQ(journal_->first_seq(), 8u) << "entries from 8 are b's";
  // A pin of entries already deleted cannot be kept: a new start point is needed.
  Status gone = shipper_->Pin("b", 5);
  EXPECT_EQ(gone.code(), Status::Code::kUnavailable) << gone.ToString();
  EXPECT_TRUE(gone.retryable());
  EXPECT_EQ(shipper_->Pin("nobody", 9).code(), Status::Code::kNotFound);
}

TEST_F(ShipperTest, APinOfANameThatNeverConnectedMakesItKnown) {
  AppendEntries(5);
  peers_ = {"a"};
  ShipperOptions options;
  options.retention_interval = milliseconds(10);
  StartShipper(options);
  ASSERT_TRUE(shipper_->Pin("a", 3).ok());
  RetentionRound();
  EXPECT_TRUE(Peer("a").ever_connected);
  EXPECT_EQ(journal_->first_seq(), 3u);
  EXPECT_EQ(MetaOf("shipper.peers"), "a\n");
  // Its Hello at the pinned position is taken (not clamped) and streaming resumes from 3.
  FakeSecondary a(&hub_, "a");
  a.Hello(2, 100);
  ASSERT_TRUE(a.ReceiveUpTo(5));
  ExpectConsecutive(a.received, 3, 5);
}

TEST_F(ShipperTest, APinWhileTheShipperIsStoppedIsUnavailable) {
  AppendEntries(2);
  ShipperOptions options;
  options.peers = {"s1"};
  Status st = Shipper(journal_.get(), hub_.CreateServer(), options, clock_).Pin("s1", 1);
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
}

}  // namespace
}  // namespace replsync::capture
