// Every recorded binlog in fixtures/binlog (see SOURCES.md there) read end to end through
// FileBinlogSource and BinlogReader.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "capture/binlog/binlog_decoder.h"
#include "capture/binlog/file_binlog_source.h"

namespace replsync::capture {
namespace {

namespace fs = std::filesystem;

const std::string kBinlogDir = std::string(REPLSYNC_FIXTURES_DIR) + "/binlog";

// Files that must fail, decided by reading their bytes (SOURCES.md calls them negative tests).
struct KnownBad {
  const char* file;
  const char* message;  // part of the error
};
const KnownBad kKnownBad[] = {
    // 14 bytes: the magic and 10 bytes of an event header.
    {"rust_mysql_common/binlog_truncated_event.000001", ":4: truncated event"},
    // A FORMAT_DESCRIPTION, then 9 bytes of a PREVIOUS_GTIDS header.
    {"rust_mysql_common/binlog_truncated_prev_gtid_event.000001", ":120: truncated event"},
    // A relay log whose QUERY at 91204 holds the middle of another statement's text: its
    // status-variable length runs past the event (5.0, no checksums to catch it earlier).
    {"rust_mysql_common/corrupt-relay-bin.000624",
     "corrupt-relay-bin.000624:91204 QUERY_EVENT: status variables"},
};

std::vector<std::string> AllFixtureFiles() {
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(kBinlogDir)) {
    if (entry.is_regular_file() && entry.path().filename() != "SOURCES.md") {
      files.push_back(fs::relative(entry.path(), kBinlogDir).string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct ReadResult {
  Status status;
  size_t events = 0;          // decoded events (inner events of payloads included)
  size_t payload_events = 0;  // of which came out of a TRANSACTION_PAYLOAD
  std::map<std::string, size_t> by_type;
};

// Reads `path` to its end (or first error), checking that positions chain.
ReadResult ReadAll(const std::string& path) {
  ReadResult result;
  auto source = FileBinlogSource::Open({path});
  if (!source.ok()) {
    result.status = source.status();
    return result;
  }
  BinlogReader reader(std::move(source).value());
  uint64_t expected_offset = 4;
  uint64_t payload_offset = 0;
  while (true) {
    auto next = reader.Next();
    if (!next.ok()) {
      result.status = next.status();
      break;
    }
    const Event* e = *next;
    if (e == nullptr) break;
    ++result.events;
    ++result.by_type[EventTypeName(e->header.type)];
    if (e->in_payload) {
      ++result.payload_events;
      if (payload_offset != e->position.offset) {
        EXPECT_EQ(e->position.offset, expected_offset) << path;
        payload_offset = e->position.offset;
      }
      expected_offset = e->next_offset;
      continue;
    }
    EXPECT_EQ(e->position.offset, expected_offset) << path;
    EXPECT_EQ(e->next_offset, e->position.offset + e->header.event_size) << path;
    expected_offset = e->next_offset;
  }
  return result;
}

TEST(FixtureFilesTest, EveryFixtureDecodesToItsEnd) {
  std::vector<std::string> files = AllFixtureFiles();
  ASSERT_GE(files.size(), 70u);  // SOURCES.md lists 74 files
  std::map<std::string, const KnownBad*> bad;
  for (const KnownBad& k : kKnownBad) bad[k.file] = &k;
  size_t failed = 0;
  for (const std::string& file : files) {
    ReadResult r = ReadAll(kBinlogDir + "/" + file);
    auto it = bad.find(file);
    if (it == bad.end()) {
      EXPECT_TRUE(r.status.ok()) << file << ": " << r.status.ToString();
      EXPECT_GE(r.by_type["FORMAT_DESCRIPTION_EVENT"], 1u) << file;
    } else {
      ++failed;
      EXPECT_TRUE(r.status.IsCorruption()) << file << ": " << r.status.ToString();
      EXPECT_NE(r.status.message().find(it->second->message), std::string::npos)
          << r.status.message();
    }
  }
  EXPECT_EQ(failed, std::size(kKnownBad));
}

TEST(FixtureFilesTest, KnownEventCounts) {
  // mysql-binlog-connector-java's BinaryLogFileReaderIntegrationTest counts.
  ReadResult crc = ReadAll(kBinlogDir + "/mysql-binlog-connector-java/mysql-bin.checksum-crc32");
  ASSERT_TRUE(crc.status.ok()) << crc.status.ToString();
  EXPECT_EQ(crc.events, 303u);
  EXPECT_EQ(crc.by_type["WRITE_ROWS_EVENT"], 34u);
  EXPECT_EQ(crc.by_type["UPDATE_ROWS_EVENT"], 20u);
  EXPECT_EQ(crc.by_type["DELETE_ROWS_EVENT"], 6u);

  ReadResult none = ReadAll(kBinlogDir + "/mysql-binlog-connector-java/mysql-bin.checksum-none");
  ASSERT_TRUE(none.status.ok()) << none.status.ToString();
  EXPECT_EQ(none.events, 191u);

  ReadResult sakila = ReadAll(kBinlogDir + "/mysql-binlog-connector-java/mysql-bin.sakila.gz");
  ASSERT_TRUE(sakila.status.ok()) << sakila.status.ToString();
  EXPECT_EQ(sakila.events, 1462u);
  EXPECT_EQ(sakila.by_type["WRITE_ROWS_EVENT_V1"], 1374u);

  // Five top-level events; the payload holds QUERY, TABLE_MAP, UPDATE_ROWS_V2 and XID.
  ReadResult compressed = ReadAll(kBinlogDir + "/mysql-binlog-connector-java/mysql-bin.compressed");
  ASSERT_TRUE(compressed.status.ok()) << compressed.status.ToString();
  EXPECT_EQ(compressed.events - compressed.payload_events + 1, 5u);
  EXPECT_EQ(compressed.payload_events, 4u);
  EXPECT_EQ(compressed.by_type["UPDATE_ROWS_EVENT"], 1u);

  // canal's 5.1 binlog: 89 table maps and 78 updates.
  ReadResult canal = ReadAll(kBinlogDir + "/canal/binlog/mysql-bin.000001");
  ASSERT_TRUE(canal.status.ok()) << canal.status.ToString();
  EXPECT_EQ(canal.by_type["TABLE_MAP_EVENT"], 89u);
  EXPECT_EQ(canal.by_type["UPDATE_ROWS_EVENT_V1"], 78u);
}

TEST(FixtureFilesTest, GtidsAreDecoded) {
  auto gtids = [](const char* file) {
    std::vector<std::string> out;
    auto source = FileBinlogSource::Open({kBinlogDir + "/" + file});
    EXPECT_TRUE(source.ok());
    BinlogReader reader(std::move(source).value());
    while (true) {
      auto next = reader.Next();
      EXPECT_TRUE(next.ok()) << next.status().ToString();
      if (!next.ok() || *next == nullptr) break;
      if (const auto* g = std::get_if<GtidEvent>(&(*next)->body)) {
        out.push_back(g->anonymous ? "anonymous" : g->gtid.ToString());
      }
      if (const auto* s = std::get_if<GtidSetEvent>(&(*next)->body)) {
        out.push_back("set " + s->gtid_set);
      }
    }
    return out;
  };
  EXPECT_EQ(gtids("rust_mysql_common/mariadb-bin.000001"),
            (std::vector<std::string>{"set ", "0-1-1", "0-1-2"}));
  EXPECT_EQ(gtids("rust_mysql_common/binlog_transaction_with_GTID_TAG.000001"),
            (std::vector<std::string>{"set 55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-2",
                                      "55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3"}));
  EXPECT_EQ(gtids("rust_mysql_common/binlog_transaction_with_GTID.000001"),
            (std::vector<std::string>{"set ", "006c2cf2-b1ea-11e4-9057-8c705a3d3e78:1",
                                      "006c2cf2-b1ea-11e4-9057-8c705a3d3e78:2",
                                      "006c2cf2-b1ea-11e4-9057-8c705a3d3e78:3"}));
  EXPECT_EQ(gtids("rust_mysql_common/binlog_transaction_with_anonymous_GTID.000001"),
            (std::vector<std::string>{"set ", "anonymous", "anonymous"}));
}

// A scratch directory, in memory when the machine has /dev/shm (the truncation tests write
// thousands of small files).
std::string ScratchDir(const std::string& name) {
  std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : ::testing::TempDir();
  std::string dir = base + "/replsync-" + name + "-" + std::to_string(getpid());
  fs::create_directories(dir);
  return dir;
}

// Writes the first `length` bytes of `data` to `path`.
void WritePrefix(const std::string& path, const std::string& data, size_t length) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(length));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(FixtureFilesTest, TruncatedEventIsCorruption) {
  // Each fixture cut at every byte: reading either ends cleanly (the cut falls between events,
  // and exactly the events before it are read) or fails with Corruption. Never a crash.
  const char* fixtures[] = {
      "rust_mysql_common/mariadb-bin.000001",
      "rust_mysql_common/minimal_row_metadata.000001",
      "rust_mysql_common/binlog_transaction_with_GTID_TAG.000001",
      "rust_mysql_common/transaction_compression.000001",
      "rust_mysql_common/mysql-enum-string-set.000001",
      "rust_mysql_common/ver_5_1-wl2325_r.001",
      "mysql-binlog-connector-java/mysql-bin.compressed",
  };
  std::string dir = ScratchDir("truncated");
  for (const char* fixture : fixtures) {
    std::string data = ReadFile(kBinlogDir + "/" + fixture);
    ASSERT_GT(data.size(), 4u) << fixture;
    // Event boundaries, from the length fields, and the decoded events before each.
    std::map<size_t, size_t> boundaries;
    ReadResult whole = ReadAll(kBinlogDir + "/" + fixture);
    ASSERT_TRUE(whole.status.ok()) << fixture;
    {
      auto source = FileBinlogSource::Open({kBinlogDir + "/" + fixture});
      ASSERT_TRUE(source.ok());
      BinlogReader reader(std::move(source).value());
      size_t count = 0;
      boundaries[4] = 0;
      while (true) {
        auto next = reader.Next();
        ASSERT_TRUE(next.ok());
        if (*next == nullptr) break;
        ++count;
        boundaries[(*next)->next_offset] = count;
      }
    }
    std::string name = fs::path(fixture).filename().string();
    std::string path = dir + "/" + name;
    for (size_t length = 0; length < data.size(); ++length) {
      WritePrefix(path, data, length);
      ReadResult r = ReadAll(path);
      auto boundary = boundaries.find(length);
      if (boundary != boundaries.end()) {
        EXPECT_TRUE(r.status.ok()) << name << " cut at " << length << ": " << r.status.ToString();
        EXPECT_EQ(r.events, boundary->second) << name << " cut at " << length;
      } else {
        EXPECT_TRUE(r.status.IsCorruption())
            << name << " cut at " << length << ": " << r.status.ToString();
      }
    }
  }
  fs::remove_all(dir);
}

TEST(FixtureFilesTest, TruncatedGzipIsCorruption) {
  std::string data = ReadFile(kBinlogDir + "/mysql-binlog-connector-java/mysql-bin.sakila.gz");
  ASSERT_GT(data.size(), 1000u);
  std::string dir = ScratchDir("truncated-gz");
  std::string path = dir + "/mysql-bin.000001.gz";
  for (size_t length : {size_t{0}, size_t{5}, size_t{30}, data.size() / 7, data.size() / 3,
                        data.size() / 2, data.size() - 9, data.size() - 1}) {
    WritePrefix(path, data, length);
    ReadResult r = ReadAll(path);
    EXPECT_TRUE(r.status.IsCorruption()) << "cut at " << length << ": " << r.status.ToString();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace replsync::capture
