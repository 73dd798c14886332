#include "sync/journal/journal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace replsync {
namespace {

// The deterministic payload of entry `seq` in the tests: sizes vary from 1 to ~3 KiB.
std::string Payload(uint64_t seq) {
  std::string s = "entry-" + std::to_string(seq) + ":";
  s.append((seq * 37) % 3000, static_cast<char>('a' + seq % 26));
  return s;
}

// Crash test child: when the environment asks for it, this process (re-executed by the crash
// tests) appends entries 1, 2, ... with sync=true, writing each completed count to a pipe, and
// ends with _exit (never closing the journal) after `limit` appends, or is killed by the parent.
int RunCrashChildIfAsked() {
  const char* dir = getenv("REPLSYNC_JOURNAL_CRASH_DIR");
  const char* fd_text = getenv("REPLSYNC_JOURNAL_CRASH_FD");
  const char* limit_text = getenv("REPLSYNC_JOURNAL_CRASH_LIMIT");
  if (dir == nullptr || fd_text == nullptr || limit_text == nullptr) return 0;
  const int fd = atoi(fd_text);
  const uint64_t limit = strtoull(limit_text, nullptr, 10);
  auto journal = Journal::Open({.path = dir, .max_bytes = 0, .sync = true});
  if (!journal.ok()) _exit(2);
  for (uint64_t seq = 1; limit == 0 || seq <= limit; ++seq) {
    if (!(*journal)->Append({Payload(seq)}, {{"checkpoint", std::to_string(seq)}}).ok()) {
      _exit(3);
    }
    if (write(fd, &seq, sizeof(seq)) != sizeof(seq)) _exit(4);
  }
  _exit(0);
}
[[maybe_unused]] const int kCrashChild = RunCrashChildIfAsked();

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "journal_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << strerror(errno);
    dir_ = tmpl;
    path_ = dir_ + "/journal";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Journal> OpenJournal(uint64_t max_bytes = 0) {
    auto journal = Journal::Open({.path = path_, .max_bytes = max_bytes, .sync = false});
    EXPECT_TRUE(journal.ok()) << journal.status().ToString();
    return journal.ok() ? std::move(journal).value() : nullptr;
  }

  // Appends entries first..last (Payload) one batch each, checking their sequence numbers.
  static void AppendRange(Journal& journal, uint64_t first, uint64_t last) {
    for (uint64_t seq = first; seq <= last; ++seq) {
      uint64_t got = 0;
      ASSERT_TRUE(journal.Append({Payload(seq)}, {}, &got).ok());
      ASSERT_EQ(got, seq);
    }
  }

  // Bytes (keys + values) of entries first..last as the journal counts them.
  static uint64_t BytesOf(uint64_t first, uint64_t last) {
    uint64_t bytes = 0;
    for (uint64_t seq = first; seq <= last; ++seq) bytes += 8 + Payload(seq).size();
    return bytes;
  }

  std::string dir_;
  std::string path_;
};

TEST(EncodeSeqTest, BigEndianRoundTripSortsLikeNumbers) {
  EXPECT_EQ(EncodeSeq(0x0102030405060708ull), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  const uint64_t values[] = {0, 1, 255, 256, 65535, 1ull << 32, (1ull << 63) + 5, ~0ull};
  for (size_t i = 0; i < std::size(values); ++i) {
    EXPECT_EQ(DecodeSeq(EncodeSeq(values[i])), values[i]);
    if (i > 0) {
      EXPECT_LT(EncodeSeq(values[i - 1]), EncodeSeq(values[i]));
    }
  }
}

TEST_F(JournalTest, NewJournalIsEmpty) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->first_seq(), 1u);
  EXPECT_EQ(journal->last_seq(), 0u);
  EXPECT_EQ(journal->bytes(), 0u);
  EXPECT_EQ(journal->entry_count(), 0u);
  EXPECT_FALSE(journal->full());
  auto read = journal->Read(1, 10, 1 << 20);
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read->empty());
  auto got = journal->Get(1);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(JournalTest, AppendThenGetAndReadRoundTrip) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  uint64_t first = 0;
  ASSERT_TRUE(journal->Append({Payload(1), Payload(2), Payload(3)}, {}, &first).ok());
  EXPECT_EQ(first, 1u);
  ASSERT_TRUE(journal->Append({std::string("\0binary\xff", 8)}, {}, &first).ok());
  EXPECT_EQ(first, 4u);
  EXPECT_EQ(journal->first_seq(), 1u);
  EXPECT_EQ(journal->last_seq(), 4u);
  EXPECT_EQ(journal->entry_count(), 4u);
  EXPECT_EQ(journal->bytes(), BytesOf(1, 3) + 8 + 8);

  for (uint64_t seq = 1; seq <= 3; ++seq) {
    auto got = journal->Get(seq);
    ASSERT_TRUE(got.ok());
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ(**got, Payload(seq));
  }
  auto read = journal->Read(2, 100, 1 << 20);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ((*read)[0], std::make_pair(uint64_t{2}, Payload(2)));
  EXPECT_EQ((*read)[1], std::make_pair(uint64_t{3}, Payload(3)));
  EXPECT_EQ((*read)[2], std::make_pair(uint64_t{4}, std::string("\0binary\xff", 8)));
}

TEST_F(JournalTest, ReopenKeepsCountersExact) {
  {
    auto journal = OpenJournal();
    ASSERT_NE(journal, nullptr);
    AppendRange(*journal, 1, 120);
    ASSERT_TRUE(journal->DeleteUpTo(30).ok());
    ASSERT_TRUE(journal->TruncateAfter(110).ok());
  }
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->first_seq(), 31u);
  EXPECT_EQ(journal->last_seq(), 110u);
  EXPECT_EQ(journal->bytes(), BytesOf(31, 110));
  uint64_t first = 0;
  ASSERT_TRUE(journal->Append({Payload(111)}, {}, &first).ok());
  EXPECT_EQ(first, 111u);
  EXPECT_EQ(journal->bytes(), BytesOf(31, 111));
}

TEST_F(JournalTest, MetaIsWrittenWithEntriesAndSurvivesReopen) {
  {
    auto journal = OpenJournal();
    ASSERT_NE(journal, nullptr);
    ASSERT_TRUE(journal
                    ->Append({Payload(1), Payload(2)},
                             {{"checkpoint", "binlog.000001:4"}, {"gtid", "0-1-2"}})
                    .ok());
  }
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->last_seq(), 2u);
  auto checkpoint = journal->GetMeta("checkpoint");
  ASSERT_TRUE(checkpoint.ok());
  ASSERT_TRUE(checkpoint->has_value());
  EXPECT_EQ(**checkpoint, "binlog.000001:4");
  auto gtid = journal->GetMeta("gtid");
  ASSERT_TRUE(gtid.ok());
  EXPECT_EQ(gtid->value_or(""), "0-1-2");
  auto missing = journal->GetMeta("nothing");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
}

TEST_F(JournalTest, RejectedBatchWritesNothing) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  AppendRange(*journal, 1, 2);
  // A reserved meta key fails the whole batch: neither the entry nor the other meta is written.
  Status s = journal->Append({Payload(3)}, {{"checkpoint", "x"}, {"__last_seq", "y"}});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("__last_seq"), std::string::npos) << s.ToString();
  EXPECT_EQ(journal->last_seq(), 2u);
  EXPECT_EQ(journal->bytes(), BytesOf(1, 2));
  auto got = journal->Get(3);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  auto checkpoint = journal->GetMeta("checkpoint");
  ASSERT_TRUE(checkpoint.ok());
  EXPECT_FALSE(checkpoint->has_value());
  EXPECT_EQ(journal->PutMeta({{"__bytes", "0"}}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(journal->DeleteUpTo(1, {{"__first_seq", "0"}}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(journal->first_seq(), 1u);
}

TEST_F(JournalTest, DeleteUpToRemovesOldEntriesAndKeepsLastSeq) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  AppendRange(*journal, 1, 300);
  // A few entries (point deletes), then many (a range delete), then past the end.
  ASSERT_TRUE(journal->DeleteUpTo(5).ok());
  EXPECT_EQ(journal->first_seq(), 6u);
  EXPECT_EQ(journal->bytes(), BytesOf(6, 300));
  ASSERT_TRUE(journal->DeleteUpTo(3).ok());  // already gone: nothing changes
  EXPECT_EQ(journal->first_seq(), 6u);
  ASSERT_TRUE(journal->DeleteUpTo(250, {{"acked", "250"}}).ok());
  EXPECT_EQ(journal->first_seq(), 251u);
  EXPECT_EQ(journal->last_seq(), 300u);
  EXPECT_EQ(journal->bytes(), BytesOf(251, 300));
  EXPECT_EQ(journal->GetMeta("acked")->value_or(""), "250");
  for (uint64_t seq : {1, 5, 6, 100, 250}) {
    auto got = journal->Get(seq);
    ASSERT_TRUE(got.ok());
    EXPECT_FALSE(got->has_value()) << seq;
  }
  auto read = journal->Read(1, 1000, 1 << 30);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 50u);
  EXPECT_EQ(read->front().first, 251u);
  EXPECT_EQ(read->back().first, 300u);

  ASSERT_TRUE(journal->DeleteUpTo(1000).ok());
  EXPECT_EQ(journal->first_seq(), 301u);
  EXPECT_EQ(journal->last_seq(), 300u);
  EXPECT_EQ(journal->entry_count(), 0u);
  EXPECT_EQ(journal->bytes(), 0u);
  uint64_t first = 0;
  ASSERT_TRUE(journal->Append({Payload(301)}, {}, &first).ok());
  EXPECT_EQ(first, 301u);
  EXPECT_EQ(journal->first_seq(), 301u);
  EXPECT_EQ(journal->bytes(), BytesOf(301, 301));

  journal.reset();
  journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->first_seq(), 301u);
  EXPECT_EQ(journal->last_seq(), 301u);
  EXPECT_EQ(journal->bytes(), BytesOf(301, 301));
}

TEST_F(JournalTest, TruncateAfterRemovesTheTail) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  AppendRange(*journal, 1, 200);
  ASSERT_TRUE(journal->TruncateAfter(195).ok());  // point deletes
  EXPECT_EQ(journal->last_seq(), 195u);
  ASSERT_TRUE(journal->TruncateAfter(20).ok());  // a range delete
  EXPECT_EQ(journal->first_seq(), 1u);
  EXPECT_EQ(journal->last_seq(), 20u);
  EXPECT_EQ(journal->bytes(), BytesOf(1, 20));
  ASSERT_TRUE(journal->TruncateAfter(500).ok());  // beyond the end: nothing to do
  EXPECT_EQ(journal->last_seq(), 20u);
  auto gone = journal->Get(21);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  // The next append reuses the truncated sequence numbers with new contents.
  uint64_t first = 0;
  ASSERT_TRUE(journal->Append({"replacement"}, {}, &first).ok());
  EXPECT_EQ(first, 21u);
  EXPECT_EQ(journal->Get(21)->value_or(""), "replacement");
  auto read = journal->Read(19, 10, 1 << 20);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ((*read)[2].second, "replacement");

  ASSERT_TRUE(journal->DeleteUpTo(10).ok());
  Status s = journal->TruncateAfter(5);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(journal->last_seq(), 21u);
  ASSERT_TRUE(journal->TruncateAfter(10).ok());  // removes everything kept
  EXPECT_EQ(journal->entry_count(), 0u);
  EXPECT_EQ(journal->bytes(), 0u);
  EXPECT_EQ(journal->first_seq(), 11u);
}

TEST_F(JournalTest, PutAcceptsTheStreamAndRejectsGaps) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  // A relay never written starts wherever the primary's stream starts.
  ASSERT_TRUE(journal->Put({{501, Payload(501)}, {502, Payload(502)}}, {{"received", "502"}}).ok());
  EXPECT_EQ(journal->first_seq(), 501u);
  EXPECT_EQ(journal->last_seq(), 502u);
  EXPECT_EQ(journal->bytes(), BytesOf(501, 502));

  // A gap after last_seq, a gap inside the batch, a repeat, a descending pair: all rejected,
  // and a rejected batch writes nothing (not even its valid first entry or its meta).
  const std::vector<std::vector<std::pair<uint64_t, std::string>>> bad = {{{504, "x"}},
                                                                          {{503, "x"}, {505, "y"}},
                                                                          {{502, "x"}},
                                                                          {{503, "x"}, {503, "y"}},
                                                                          {{503, "x"}, {502, "y"}}};
  for (const auto& entries : bad) {
    Status s = journal->Put(entries, {{"received", "bad"}});
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << entries.front().first;
    EXPECT_EQ(journal->last_seq(), 502u);
    EXPECT_FALSE(journal->Get(503)->has_value());
    EXPECT_EQ(journal->GetMeta("received")->value_or(""), "502");
  }
  EXPECT_EQ(journal->bytes(), BytesOf(501, 502));
  ASSERT_TRUE(journal->Put({{503, Payload(503)}}, {{"received", "503"}}).ok());
  EXPECT_EQ(journal->last_seq(), 503u);

  // After everything was applied and deleted the stream still has to continue exactly.
  ASSERT_TRUE(journal->DeleteUpTo(503).ok());
  EXPECT_EQ(journal->Put({{505, "x"}}, {}).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE(journal->Put({{504, Payload(504)}}, {}).ok());
  EXPECT_EQ(journal->first_seq(), 504u);
  EXPECT_EQ(journal->bytes(), BytesOf(504, 504));

  auto fresh_dir = dir_ + "/fresh";
  auto fresh = Journal::Open({.path = fresh_dir, .max_bytes = 0, .sync = false});
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*fresh)->Put({{0, "x"}}, {}).code(), Status::Code::kInvalidArgument);
}

// After a bootstrap the relay continues at the secondary's applied position + 1, whatever it held
// (schemas/bootstrap.md "The stream's start"): every entry goes, the counters move, and the
// stream must then continue exactly there, also after a reopen.
TEST_F(JournalTest, RebaseEmptiesTheJournalAndContinuesAtTheGivenSequence) {
  {
    auto journal = OpenJournal();
    ASSERT_NE(journal, nullptr);
    ASSERT_TRUE(journal->Put({{3, Payload(3)}, {4, Payload(4)}, {5, Payload(5)}}, {}).ok());
    ASSERT_TRUE(journal->PutMeta({{"applied_seq", "4"}}).ok());
    ASSERT_TRUE(journal->Rebase(101).ok());
    EXPECT_EQ(journal->first_seq(), 101u);
    EXPECT_EQ(journal->last_seq(), 100u);
    EXPECT_EQ(journal->bytes(), 0u);
    EXPECT_EQ(journal->entry_count(), 0u);
    for (uint64_t seq : {3, 4, 5}) EXPECT_FALSE(journal->Get(seq)->has_value()) << seq;
    EXPECT_TRUE(journal->Read(1, 10, 1 << 20)->empty());
    // Meta other than the counters stays.
    EXPECT_EQ(journal->GetMeta("applied_seq")->value_or(""), "4");
    // Anywhere but 101 is refused, and writes nothing.
    for (uint64_t seq : {6, 100, 102}) {
      EXPECT_EQ(journal->Put({{seq, "x"}}, {}).code(), Status::Code::kInvalidArgument) << seq;
      EXPECT_EQ(journal->last_seq(), 100u);
    }
  }
  {
    // Reopened: the counters are the rebased ones (and pass the open's consistency checks).
    auto journal = OpenJournal();
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->first_seq(), 101u);
    EXPECT_EQ(journal->last_seq(), 100u);
    EXPECT_EQ(journal->bytes(), 0u);
    EXPECT_EQ(journal->Put({{6, "x"}}, {}).code(), Status::Code::kInvalidArgument);
    ASSERT_TRUE(journal->Put({{101, Payload(101)}, {102, Payload(102)}}, {}).ok());
    EXPECT_EQ(journal->first_seq(), 101u);
    EXPECT_EQ(journal->last_seq(), 102u);
    EXPECT_EQ(journal->bytes(), BytesOf(101, 102));
    EXPECT_EQ(journal->Get(101)->value_or(""), Payload(101));
    EXPECT_EQ(journal->Get(102)->value_or(""), Payload(102));
    // Deleting applied entries works from the new base.
    ASSERT_TRUE(journal->DeleteUpTo(101).ok());
    EXPECT_EQ(journal->first_seq(), 102u);
    EXPECT_EQ(journal->bytes(), BytesOf(102, 102));
  }
  {
    auto journal = OpenJournal();
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->first_seq(), 102u);
    EXPECT_EQ(journal->last_seq(), 102u);
    // A rebase backwards works the same way (the journal's writer decides), and of a journal
    // with many entries (a range delete).
    std::vector<std::pair<uint64_t, std::string>> many;
    for (uint64_t seq = 103; seq <= 400; ++seq) many.emplace_back(seq, Payload(seq));
    ASSERT_TRUE(journal->Put(many, {}).ok());
    ASSERT_TRUE(journal->Rebase(50).ok());
    EXPECT_EQ(journal->first_seq(), 50u);
    EXPECT_EQ(journal->last_seq(), 49u);
    EXPECT_EQ(journal->bytes(), 0u);
    EXPECT_FALSE(journal->Get(200)->has_value());
    EXPECT_TRUE(journal->Read(0, 1000, 1 << 30)->empty());
    ASSERT_TRUE(journal->Put({{50, Payload(50)}}, {}).ok());
    EXPECT_EQ(journal->bytes(), BytesOf(50, 50));
  }
  {
    auto journal = OpenJournal();
    ASSERT_NE(journal, nullptr);
    EXPECT_EQ(journal->last_seq(), 50u);
    EXPECT_EQ(journal->Rebase(0).code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(journal->last_seq(), 50u);
  }
}

TEST_F(JournalTest, ReadHonoursLimitsAndReturnsAtLeastOneEntry) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  std::vector<std::string> entries;
  for (int i = 0; i < 10; ++i) entries.push_back(std::string(100, static_cast<char>('0' + i)));
  ASSERT_TRUE(journal->Append(entries, {}).ok());

  auto by_count = journal->Read(1, 3, 1 << 20);
  ASSERT_TRUE(by_count.ok());
  ASSERT_EQ(by_count->size(), 3u);
  EXPECT_EQ((*by_count)[2].first, 3u);

  auto by_bytes = journal->Read(4, 100, 250);
  ASSERT_TRUE(by_bytes.ok());
  ASSERT_EQ(by_bytes->size(), 2u);
  EXPECT_EQ((*by_bytes)[0].first, 4u);
  EXPECT_EQ((*by_bytes)[1].second, entries[4]);

  auto exact = journal->Read(1, 100, 300);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->size(), 3u);

  auto oversized = journal->Read(7, 100, 10);
  ASSERT_TRUE(oversized.ok());
  ASSERT_EQ(oversized->size(), 1u);
  EXPECT_EQ((*oversized)[0].first, 7u);

  EXPECT_TRUE(journal->Read(11, 100, 1 << 20)->empty());
  EXPECT_TRUE(journal->Read(1, 0, 1 << 20)->empty());
  auto from_zero = journal->Read(0, 100, 1 << 20);
  ASSERT_TRUE(from_zero.ok());
  ASSERT_EQ(from_zero->size(), 10u);
  EXPECT_EQ(from_zero->front().first, 1u);
}

TEST_F(JournalTest, SizeCapReportsFullAndNeverDrops) {
  auto journal = OpenJournal(/*max_bytes=*/1000);
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->Append({std::string(492, 'x')}, {}).ok());  // 500 bytes with the key
  EXPECT_FALSE(journal->full());
  ASSERT_TRUE(journal->Append({std::string(491, 'y')}, {}).ok());  // 999
  EXPECT_FALSE(journal->full());
  ASSERT_TRUE(journal->Append({std::string(), std::string(100, 'z')}, {}).ok());
  EXPECT_EQ(journal->bytes(), 999u + 8 + 108);
  EXPECT_TRUE(journal->full());
  // full() reports; it does not refuse or drop (the writer decides to wait).
  ASSERT_TRUE(journal->Append({"more"}, {}).ok());
  EXPECT_EQ(journal->last_seq(), 5u);
  journal.reset();

  journal = OpenJournal(1000);
  ASSERT_NE(journal, nullptr);
  EXPECT_TRUE(journal->full());
  ASSERT_TRUE(journal->DeleteUpTo(2).ok());
  EXPECT_EQ(journal->bytes(), 8u + 108 + 12);
  EXPECT_FALSE(journal->full());
  journal.reset();

  journal = OpenJournal(0);  // no cap
  ASSERT_NE(journal, nullptr);
  ASSERT_TRUE(journal->Append({std::string(5000, 'w')}, {}).ok());
  EXPECT_FALSE(journal->full());
}

uint64_t DirectoryBytes(const std::string& path) {
  uint64_t bytes = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
    if (entry.is_regular_file()) bytes += entry.file_size();
  }
  return bytes;
}

TEST_F(JournalTest, DeletedSpaceIsReturnedWithoutNewWrites) {
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  std::mt19937_64 rng(11);
  constexpr uint64_t kEntries = 1200;  // ~75 MiB of incompressible entries
  for (uint64_t i = 0; i < kEntries; i += 50) {
    std::vector<std::string> batch(50, std::string(64 << 10, '\0'));
    for (std::string& entry : batch) {
      for (size_t j = 0; j < entry.size(); j += 8) {
        const uint64_t r = rng();
        std::memcpy(entry.data() + j, &r, 8);
      }
    }
    ASSERT_TRUE(journal->Append(batch, {}).ok());
  }
  ASSERT_GT(DirectoryBytes(path_), 64u << 20);
  for (uint64_t seq = 100; seq <= kEntries; seq += 100) ASSERT_TRUE(journal->DeleteUpTo(seq).ok());
  EXPECT_EQ(journal->bytes(), 0u);
  // Background flush and compaction give the space back; nothing else is written meanwhile.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (DirectoryBytes(path_) > (16u << 20) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_LE(DirectoryBytes(path_), 16u << 20);
}

TEST_F(JournalTest, OpenErrorNamesThePath) {
  const std::string file = dir_ + "/a_file";
  std::ofstream(file) << "not a directory";
  const std::string bad = file + "/journal";
  auto journal = Journal::Open({.path = bad, .max_bytes = 0, .sync = true});
  ASSERT_FALSE(journal.ok());
  EXPECT_EQ(journal.status().code(), Status::Code::kIoError);
  EXPECT_NE(journal.status().message().find("open journal " + bad), std::string::npos)
      << journal.status().ToString();

  EXPECT_EQ(Journal::Open({}).status().code(), Status::Code::kInvalidArgument);
}

TEST_F(JournalTest, SecondOpenOfTheSameDirectoryFails) {
  auto first = OpenJournal();
  ASSERT_NE(first, nullptr);
  auto second = Journal::Open({.path = path_, .max_bytes = 0, .sync = true});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kIoError);
  EXPECT_NE(second.status().message().find(path_), std::string::npos) << second.status().ToString();
}

// Opens the journal's RocksDB directly (the layout of schemas/journal.md) to check or damage it.
class RawJournal {
 public:
  explicit RawJournal(const std::string& path) {
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"entries", {}}, {"meta", {}}};
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles_, &db_);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~RawJournal() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    delete db_;
  }
  rocksdb::ColumnFamilyHandle* entries() { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* meta() { return handles_[2]; }
  std::string Get(rocksdb::ColumnFamilyHandle* cf, const std::string& key) {
    std::string value;
    rocksdb::Status s = db_->Get({}, cf, key, &value);
    return s.ok() ? value : "<" + s.ToString() + ">";
  }
  rocksdb::DB* db() { return db_; }

 private:
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

TEST_F(JournalTest, OnDiskLayoutMatchesTheSchema) {
  {
    auto journal = OpenJournal();
    ASSERT_NE(journal, nullptr);
    AppendRange(*journal, 1, 3);
    ASSERT_TRUE(journal->DeleteUpTo(1, {{"checkpoint", "c"}}).ok());
  }
  RawJournal raw(path_);
  EXPECT_EQ(raw.Get(raw.entries(), std::string("\0\0\0\0\0\0\0\2", 8)), Payload(2));
  EXPECT_EQ(raw.Get(raw.entries(), std::string("\0\0\0\0\0\0\0\3", 8)), Payload(3));
  EXPECT_EQ(raw.Get(raw.meta(), "__version"), "1");
  EXPECT_EQ(raw.Get(raw.meta(), "__first_seq"), EncodeSeq(2));
  EXPECT_EQ(raw.Get(raw.meta(), "__last_seq"), EncodeSeq(3));
  EXPECT_EQ(raw.Get(raw.meta(), "__bytes"), EncodeSeq(BytesOf(2, 3)));
  EXPECT_EQ(raw.Get(raw.meta(), "checkpoint"), "c");
}

TEST_F(JournalTest, UnknownFormatVersionIsUnsupported) {
  { ASSERT_NE(OpenJournal(), nullptr); }
  {
    RawJournal raw(path_);
    ASSERT_TRUE(raw.db()->Put({}, raw.meta(), "__version", "2").ok());
  }
  auto journal = Journal::Open({.path = path_, .max_bytes = 0, .sync = true});
  ASSERT_FALSE(journal.ok());
  EXPECT_EQ(journal.status().code(), Status::Code::kUnsupported) << journal.status().ToString();
}

TEST_F(JournalTest, DamagedCountersAreCorruption) {
  {
    auto journal = OpenJournal();
    ASSERT_NE(journal, nullptr);
    AppendRange(*journal, 1, 3);
  }
  {
    RawJournal raw(path_);
    ASSERT_TRUE(raw.db()->Delete({}, raw.meta(), "__bytes").ok());
  }
  auto journal = Journal::Open({.path = path_, .max_bytes = 0, .sync = true});
  ASSERT_FALSE(journal.ok());
  EXPECT_TRUE(journal.status().IsCorruption()) << journal.status().ToString();
  {
    RawJournal raw(path_);
    ASSERT_TRUE(raw.db()->Put({}, raw.meta(), "__bytes", EncodeSeq(BytesOf(1, 3))).ok());
    // An entry beyond last_seq means the counters were not written with the entries.
    ASSERT_TRUE(raw.db()->Put({}, raw.entries(), EncodeSeq(4), "stray").ok());
  }
  journal = Journal::Open({.path = path_, .max_bytes = 0, .sync = true});
  ASSERT_FALSE(journal.ok());
  EXPECT_TRUE(journal.status().IsCorruption()) << journal.status().ToString();
}

// Runs this test binary again as a crash child (RunCrashChildIfAsked) appending to `path`;
// returns its pid and the read end of its count pipe.
std::pair<pid_t, int> StartCrashChild(const std::string& path, uint64_t limit) {
  int fds[2];
  if (pipe(fds) != 0) return {-1, -1};
  std::vector<std::string> env_strings = {"REPLSYNC_JOURNAL_CRASH_DIR=" + path,
                                          "REPLSYNC_JOURNAL_CRASH_FD=" + std::to_string(fds[1]),
                                          "REPLSYNC_JOURNAL_CRASH_LIMIT=" + std::to_string(limit)};
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  char self[] = "/proc/self/exe";
  char* argv[] = {self, nullptr};
  // The child execs at once: a forked copy of a process with RocksDB's threads is not usable.
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    execve(self, argv, envp.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

// Reads completed counts from the child until it has done `stop_after` (then kills it with
// SIGKILL when `kill` is set) and the pipe ends; returns the last count.
uint64_t FollowCrashChild(pid_t pid, int fd, uint64_t stop_after, bool kill_it, int* wstatus) {
  uint64_t last = 0, count = 0;
  bool killed = false;
  while (read(fd, &count, sizeof(count)) == sizeof(count)) {
    last = count;
    if (kill_it && !killed && count >= stop_after) {
      kill(pid, SIGKILL);
      killed = true;
    }
  }
  close(fd);
  waitpid(pid, wstatus, 0);
  return last;
}

// Checks that every entry 1..last_seq is there with its payload and the meta matches.
void ExpectCompleteJournal(Journal& journal) {
  const uint64_t last = journal.last_seq();
  EXPECT_EQ(journal.first_seq(), 1u);
  EXPECT_EQ(journal.GetMeta("checkpoint")->value_or(""), std::to_string(last));
  uint64_t bytes = 0;
  uint64_t next = 1;
  while (next <= last) {
    auto batch = journal.Read(next, 1000, 1 << 24);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    ASSERT_FALSE(batch->empty());
    for (auto& [seq, value] : *batch) {
      ASSERT_EQ(seq, next);
      ASSERT_EQ(value, Payload(seq));
      bytes += 8 + value.size();
      ++next;
    }
  }
  EXPECT_EQ(journal.bytes(), bytes);
}

TEST_F(JournalTest, ExitWithoutCloseKeepsEveryAppendedEntry) {
  auto [pid, fd] = StartCrashChild(path_, 300);
  ASSERT_GT(pid, 0);
  int wstatus = 0;
  const uint64_t done = FollowCrashChild(pid, fd, 0, false, &wstatus);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "child status " << wstatus;
  EXPECT_EQ(done, 300u);
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  EXPECT_EQ(journal->last_seq(), 300u);
  ExpectCompleteJournal(*journal);
}

TEST_F(JournalTest, KillDuringAppendsLosesNoAppendThatReturned) {
  auto [pid, fd] = StartCrashChild(path_, 0);
  ASSERT_GT(pid, 0);
  int wstatus = 0;
  const uint64_t done = FollowCrashChild(pid, fd, 200 + getpid() % 100, true, &wstatus);
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) << "child status " << wstatus;
  ASSERT_GE(done, 200u);
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  // Every append that returned is there; one more may have completed before the kill.
  EXPECT_GE(journal->last_seq(), done);
  EXPECT_LE(journal->last_seq(), done + 1);
  ExpectCompleteJournal(*journal);
  // And the journal goes on from there.
  uint64_t first = 0;
  ASSERT_TRUE(journal->Append({"after"}, {}, &first).ok());
  EXPECT_EQ(first, journal->last_seq());
}

}  // namespace
}  // namespace replsync
