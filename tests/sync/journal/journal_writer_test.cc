#include "sync/journal/journal_writer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "sync/clock.h"

namespace replsync {
namespace {

namespace fs = std::filesystem;

constexpr char kComplete[] = "test.last_complete_seq";

JournalWriter::Item Entry(std::string bytes, bool completes, JournalWriter::Meta meta = {}) {
  JournalWriter::Item item;
  item.entry = std::move(bytes);
  item.has_entry = true;
  item.completes = completes;
  item.meta = std::move(meta);
  return item;
}

JournalWriter::Item MetaOnly(JournalWriter::Meta meta,
                             JournalWriter::Request request = JournalWriter::Request::kNone) {
  JournalWriter::Item item;
  item.completes = true;
  item.meta = std::move(meta);
  item.request = request;
  return item;
}

class JournalWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "journal_writer_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << strerror(errno);
    dir_ = tmpl;
    auto journal = Journal::Open({.path = dir_ + "/journal", .max_bytes = 0, .sync = false});
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    journal_ = std::move(journal).value();
  }
  void TearDown() override {
    writer_.reset();
    journal_.reset();
    fs::remove_all(dir_);
  }

  JournalWriter& StartWriter(JournalWriter::Options options = {}) {
    options.last_complete_key = kComplete;
    options.on_written = [this](const JournalWriter::Written& w) {
      std::lock_guard<std::mutex> lock(mu_);
      written_.push_back(w);
    };
    options.on_failure = [this](const Status& s) {
      std::lock_guard<std::mutex> lock(mu_);
      failure_ = s;
    };
    writer_ = std::make_unique<JournalWriter>(journal_.get(), options, clock_);
    EXPECT_TRUE(writer_->Start(journal_->last_seq()).ok());
    return *writer_;
  }

  // Submits a retention and waits for its outcome (10 s: a deadlock fails the test).
  Status Retain(uint64_t up_to, JournalWriter::Meta meta = {}) {
    auto promise = std::make_shared<std::promise<Status>>();
    std::future<Status> outcome = promise->get_future();
    writer_->SubmitRetention(up_to, std::move(meta),
                             [promise](Status s) { promise->set_value(std::move(s)); });
    if (outcome.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      return Status::Internal("the retention was not carried out within 10 s");
    }
    return outcome.get();
  }

  std::vector<std::string> Entries() {
    std::vector<std::string> out;
    auto read = journal_->Read(journal_->first_seq(), 1000, size_t{1} << 30);
    EXPECT_TRUE(read.ok());
    if (read.ok()) {
      for (auto& [seq, bytes] : *read) out.push_back(bytes);
    }
    return out;
  }

  std::string Meta(const std::string& key) {
    auto value = journal_->GetMeta(key);
    EXPECT_TRUE(value.ok());
    return value.ok() && value->has_value() ? **value : std::string("<none>");
  }

  std::string dir_;
  std::unique_ptr<Journal> journal_;
  ManualClock clock_;
  std::mutex mu_;
  std::vector<JournalWriter::Written> written_;  // guarded by mu_
  Status failure_;                               // guarded by mu_
  std::unique_ptr<JournalWriter> writer_;
};

TEST_F(JournalWriterTest, GroupIsAppendedWithItsMetaAndLastCompleteSeq) {
  JournalWriter& writer = StartWriter();
  ASSERT_TRUE(writer.Submit(Entry("a0", false)).ok());
  Result<uint64_t> last = writer.Submit(Entry("a1", true, {{"src.position", "7"}}));
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(writer.WaitWritten(*last).ok());
  EXPECT_EQ(Entries(), (std::vector<std::string>{"a0", "a1"}));
  EXPECT_EQ(Meta("src.position"), "7");
  EXPECT_EQ(Meta(kComplete), "2");
  EXPECT_EQ(writer.last_complete_seq(), 2u);
  std::lock_guard<std::mutex> lock(mu_);
  size_t items = 0;
  for (const JournalWriter::Written& w : written_) items += w.items;
  EXPECT_EQ(items, 2u) << "every item reported once";
  ASSERT_FALSE(written_.empty());
  EXPECT_TRUE(written_.back().completed_group);
}

TEST_F(JournalWriterTest, ExternalGroupWaitsForTheOpenGroupToComplete) {
  JournalWriter& writer = StartWriter();
  ASSERT_TRUE(writer.Submit(Entry("p0", false)).ok());
  Result<uint64_t> external = writer.SubmitExternal("x0", true);
  ASSERT_TRUE(external.ok());
  ASSERT_TRUE(writer.Submit(Entry("p1", true)).ok());
  ASSERT_TRUE(writer.WaitDurable(*external).ok());
  EXPECT_EQ(Entries(), (std::vector<std::string>{"p0", "p1", "x0"}))
      << "the external group arrived first but does not go between a group's parts";
  EXPECT_EQ(Meta(kComplete), "3");
}

TEST_F(JournalWriterTest, MetaOnlyItemWaitsForMetaDelayOnTheClock) {
  JournalWriter::Options options;
  options.meta_delay = std::chrono::seconds(5);
  JournalWriter& writer = StartWriter(options);
  Result<uint64_t> ticket = writer.Submit(MetaOnly({{"src.position", "9"}}));
  ASSERT_TRUE(ticket.ok());
  // A retention is taken with whatever the writer may take at that moment: the meta is not.
  ASSERT_TRUE(Retain(0).ok());
  EXPECT_EQ(Meta("src.position"), "<none>") << "written before meta_delay";
  clock_.Advance(options.meta_delay);
  ASSERT_TRUE(writer.WaitWritten(*ticket).ok());
  EXPECT_EQ(Meta("src.position"), "9");
  EXPECT_EQ(Meta(kComplete), "0");
}

TEST_F(JournalWriterTest, RequestNowIsWrittenAtOnce) {
  JournalWriter::Options options;
  options.meta_delay = std::chrono::hours(1);
  JournalWriter& writer = StartWriter(options);
  Result<uint64_t> ticket =
      writer.Submit(MetaOnly({{"src.position", "4"}}, JournalWriter::Request::kNow));
  ASSERT_TRUE(ticket.ok());
  ASSERT_TRUE(writer.WaitWritten(*ticket).ok());
  EXPECT_EQ(Meta("src.position"), "4");
}

TEST_F(JournalWriterTest, DiscardRemovesOnlyTheUnfinishedGroupsParts) {
  JournalWriter& writer = StartWriter();
  Result<uint64_t> done = writer.Submit(Entry("t1", true));
  ASSERT_TRUE(done.ok());
  ASSERT_TRUE(writer.WaitWritten(*done).ok());
  Result<uint64_t> part = writer.Submit(Entry("t2 part 0", false));
  ASSERT_TRUE(part.ok());
  ASSERT_TRUE(writer.WaitWritten(*part).ok());
  ASSERT_EQ(journal_->last_seq(), 2u) << "premise: the part is in the journal";
  Result<uint64_t> external = writer.SubmitExternal("x0", true);
  ASSERT_TRUE(external.ok());
  JournalWriter::Item discard;
  discard.request = JournalWriter::Request::kDiscard;
  Result<uint64_t> discarded = writer.Submit(std::move(discard));
  ASSERT_TRUE(discarded.ok());
  ASSERT_TRUE(writer.WaitWritten(*discarded).ok());
  ASSERT_TRUE(writer.WaitDurable(*external).ok());
  auto read = journal_->Read(1, 10, 1 << 20);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0], (std::pair<uint64_t, std::string>{1, "t1"}));
  EXPECT_EQ((*read)[1], (std::pair<uint64_t, std::string>{2, "x0"}))
      << "the part was removed before the external group was appended";
  EXPECT_EQ(writer.last_complete_seq(), 2u);
}

TEST_F(JournalWriterTest, RetentionNeverDeletesPastLastCompleteSeq) {
  JournalWriter& writer = StartWriter();
  ASSERT_TRUE(writer.Submit(Entry("t1", true)).ok());
  ASSERT_TRUE(writer.Submit(Entry("t2", true)).ok());
  Result<uint64_t> part = writer.Submit(Entry("t3 part 0", false));
  ASSERT_TRUE(part.ok());
  ASSERT_TRUE(writer.WaitWritten(*part).ok());
  ASSERT_TRUE(Retain(99, {{"peer.a.durable", "3"}}).ok());
  EXPECT_EQ(journal_->first_seq(), 3u) << "the part of the open group is kept";
  EXPECT_EQ(Meta("peer.a.durable"), "3");
  ASSERT_TRUE(Retain(99, {{"peer.a.applied", "3"}}).ok());  // nothing to delete: the values
  EXPECT_EQ(journal_->first_seq(), 3u);
  EXPECT_EQ(Meta("peer.a.applied"), "3");
}

TEST_F(JournalWriterTest, RetentionIsAbortedWhenTheWriterIsNotRunning) {
  writer_ = std::make_unique<JournalWriter>(journal_.get(), JournalWriter::Options{}, clock_);
  Status s = Retain(0, {{"peer.a.durable", "1"}});
  EXPECT_EQ(s.code(), Status::Code::kAborted) << s.ToString();
  StartWriter();
  writer_->Stop();
  s = Retain(0, {{"peer.a.durable", "1"}});
  EXPECT_EQ(s.code(), Status::Code::kAborted) << s.ToString();
  EXPECT_EQ(Meta("peer.a.durable"), "<none>");
}

TEST_F(JournalWriterTest, EndOfInputDrainsAndRefusesExternalEntries) {
  JournalWriter& writer = StartWriter();
  ASSERT_TRUE(writer.Submit(Entry("t1", true)).ok());
  writer.EndOfInput();
  writer.WaitDrained();
  EXPECT_EQ(journal_->last_seq(), 1u);
  Result<uint64_t> external = writer.SubmitExternal("x0", true);
  EXPECT_EQ(external.status().code(), Status::Code::kAborted);
  ASSERT_TRUE(Retain(1).ok()) << "retention is served until Stop";
  EXPECT_EQ(journal_->first_seq(), 2u);
}

TEST_F(JournalWriterTest, FailedWriteEndsTheWriterAndAbortsEveryWait) {
  JournalWriter& writer = StartWriter();
  // Meta keys starting with "__" are the journal's own: the Append fails.
  Result<uint64_t> ticket = writer.Submit(Entry("t1", true, {{"__reserved", "x"}}));
  ASSERT_TRUE(ticket.ok());
  Status waited = writer.WaitWritten(*ticket);
  EXPECT_EQ(waited.code(), Status::Code::kAborted) << waited.ToString();
  EXPECT_NE(waited.message().find("journal writer failed"), std::string::npos);
  writer.WaitDrained();  // returns: the writer ended
  writer.Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_FALSE(failure_.ok()) << "on_failure was called with the journal's error";
  }
  EXPECT_EQ(writer.Submit(Entry("t2", true)).status().code(), Status::Code::kAborted);
  EXPECT_EQ(Retain(0).code(), Status::Code::kAborted);
  EXPECT_EQ(journal_->last_seq(), 0u);
}

}  // namespace
}  // namespace replsync
