#include "capture/binlog/file_binlog_source.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "capture/binlog/binlog_event.h"

namespace replsync::capture {
namespace {

namespace fs = std::filesystem;

const std::string kBinlogDir = std::string(REPLSYNC_FIXTURES_DIR) + "/binlog";
const std::string kMagic = std::string(
    "\xfe"
    "bin",
    4);

class FileBinlogSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : ::testing::TempDir();
    dir_ = base + "/replsync-source-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
    return path;
  }
  std::string WriteGz(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    gzFile gz = gzopen(path.c_str(), "wb");
    EXPECT_NE(gz, nullptr);
    EXPECT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(gz);
    return path;
  }

  std::string dir_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// An event of `size` bytes (header + filler) of an ignorable type; bytes are not checked here.
std::string FakeEvent(uint32_t size, char fill) {
  std::string e(size, fill);
  e[4] = 100;
  for (int i = 0; i < 4; ++i) e[9 + i] = static_cast<char>((size >> (8 * i)) & 0xff);
  return e;
}

struct Copy {
  std::string data;
  std::string file;
  uint64_t offset;
  uint64_t next_offset;
  bool operator==(const Copy&) const = default;
};

Result<std::vector<Copy>> ReadAllRaw(BinlogSource* source) {
  std::vector<Copy> out;
  RawEvent raw;
  while (true) {
    RS_ASSIGN_OR_RETURN(bool got, source->Next(&raw));
    if (!got) return out;
    out.push_back({std::string(raw.data), std::string(raw.file), raw.offset, raw.next_offset});
  }
}

TEST_F(FileBinlogSourceTest, OpenChecksItsArguments) {
  auto none = FileBinlogSource::Open({});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Status::Code::kInvalidArgument);

  auto missing = FileBinlogSource::Open({dir_ + "/binlog.000404"});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
  EXPECT_NE(missing.status().message().find("binlog.000404"), std::string::npos);

  auto directory = FileBinlogSource::Open({dir_});
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(FileBinlogSourceTest, BadMagicIsCorruption) {
  std::string path = Write("binlog.000001", "GIF89a and so on");
  auto source = FileBinlogSource::Open({path});
  ASSERT_TRUE(source.ok());
  RawEvent raw;
  auto got = (*source)->Next(&raw);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.status().IsCorruption());
  EXPECT_EQ(got.status().message(), path + ": not a binlog file: bad magic");

  std::string empty = Write("binlog.000002", "");
  source = FileBinlogSource::Open({empty});
  ASSERT_TRUE(source.ok());
  got = (*source)->Next(&raw);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.status().IsCorruption());
}

TEST_F(FileBinlogSourceTest, EventsCarryTheirFileAndOffsets) {
  std::string path = kBinlogDir + "/rust_mysql_common/minimal_row_metadata.000001";
  std::string bytes = ReadFile(path);
  auto source = FileBinlogSource::Open({path});
  ASSERT_TRUE(source.ok());
  EXPECT_EQ((*source)->Describe(), "file " + path);
  auto events = ReadAllRaw(source->get());
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 8u);
  uint64_t offset = 4;
  for (const Copy& e : *events) {
    EXPECT_EQ(e.file, "minimal_row_metadata.000001");
    EXPECT_EQ(e.offset, offset);
    EXPECT_EQ(e.next_offset, offset + e.data.size());
    EXPECT_EQ(e.data, bytes.substr(offset, e.data.size()));
    offset = e.next_offset;
  }
  EXPECT_EQ(offset, bytes.size());
  RawEvent raw;
  auto again = (*source)->Next(&raw);  // stays at the end
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(FileBinlogSourceTest, FilesAreReadInOrder) {
  std::string a = kBinlogDir + "/rust_mysql_common/minimal_row_metadata.000001";
  std::string b = kBinlogDir + "/rust_mysql_common/mariadb-bin.000001";
  std::string empty = Write("binlog.000003", kMagic);
  auto source = FileBinlogSource::Open({a, empty, b});
  ASSERT_TRUE(source.ok());
  auto events = ReadAllRaw(source->get());
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 8u + 13u);
  EXPECT_EQ((*events)[7].file, "minimal_row_metadata.000001");
  EXPECT_EQ((*events)[8].file, "mariadb-bin.000001");
  EXPECT_EQ((*events)[8].offset, 4u);
  EXPECT_EQ((*events)[8].data[4], 15);  // each file starts with its FORMAT_DESCRIPTION
  EXPECT_EQ(events->back().next_offset, ReadFile(b).size());
}

TEST_F(FileBinlogSourceTest, GzipFilesReadLikeThePlainFile) {
  std::string plain = kBinlogDir + "/rust_mysql_common/mysql-enum-string-set.000001";
  std::string gz = WriteGz("mysql-enum-string-set.000001.gz", ReadFile(plain));
  auto a = FileBinlogSource::Open({plain});
  auto b = FileBinlogSource::Open({gz});
  ASSERT_TRUE(a.ok() && b.ok());
  auto plain_events = ReadAllRaw(a->get());
  auto gz_events = ReadAllRaw(b->get());
  ASSERT_TRUE(plain_events.ok() && gz_events.ok()) << gz_events.status().ToString();
  EXPECT_GT(plain_events->size(), 10u);
  EXPECT_EQ(*plain_events, *gz_events);  // same bytes, offsets and (".gz"-less) file name
}

TEST_F(FileBinlogSourceTest, SeekFirstFileStartsThere) {
  std::string plain = kBinlogDir + "/rust_mysql_common/mariadb-bin.000001";
  std::string gz = WriteGz("mariadb-bin.000001.gz", ReadFile(plain));
  for (const std::string& path : {plain, gz}) {
    auto source =
        FileBinlogSource::Open({path, kBinlogDir + "/rust_mysql_common/master-bin.000001"});
    ASSERT_TRUE(source.ok());
    (*source)->SeekFirstFile(612);  // the first WRITE_ROWS
    auto events = ReadAllRaw(source->get());
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    ASSERT_EQ(events->size(), 7u + 3u);
    EXPECT_EQ((*events)[0].offset, 612u);
    EXPECT_EQ((*events)[0].data[4], 23);  // WRITE_ROWS_EVENT_V1
    EXPECT_EQ((*events)[7].file, "master-bin.000001");
    EXPECT_EQ((*events)[7].offset, 4u);  // later files start at their beginning
  }
}

TEST_F(FileBinlogSourceTest, SeekOutsideTheFileIsInvalidArgument) {
  std::string path = kBinlogDir + "/rust_mysql_common/mariadb-bin.000001";
  for (uint64_t offset : {uint64_t{2}, uint64_t{5000}, uint64_t{1} << 40}) {
    auto source = FileBinlogSource::Open({path});
    ASSERT_TRUE(source.ok());
    (*source)->SeekFirstFile(offset);
    RawEvent raw;
    auto got = (*source)->Next(&raw);
    ASSERT_FALSE(got.ok()) << offset;
    EXPECT_EQ(got.status().code(), Status::Code::kInvalidArgument) << got.status().ToString();
  }
}

TEST_F(FileBinlogSourceTest, EventShorterThanItsHeaderIsCorruption) {
  std::string bytes = kMagic + FakeEvent(19, 'a') + FakeEvent(40, 'b');
  bytes[4 + 19 + 9] = 12;  // the second event claims 12 bytes
  std::string path = Write("binlog.000001", bytes);
  auto source = FileBinlogSource::Open({path});
  ASSERT_TRUE(source.ok());
  RawEvent raw;
  auto got = (*source)->Next(&raw);
  ASSERT_TRUE(got.ok() && *got);
  got = (*source)->Next(&raw);
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.status().IsCorruption());
  EXPECT_EQ(got.status().message(),
            path + ":23: event length 12 is shorter than the 19-byte header");
}

TEST_F(FileBinlogSourceTest, TruncatedEventIsCorruption) {
  std::string bytes = kMagic + FakeEvent(30, 'a') + FakeEvent(1000, 'b').substr(0, 500);
  for (bool gzip : {false, true}) {
    std::string path = gzip ? WriteGz("binlog.000001.gz", bytes) : Write("binlog.000001", bytes);
    auto source = FileBinlogSource::Open({path});
    ASSERT_TRUE(source.ok());
    RawEvent raw;
    auto got = (*source)->Next(&raw);
    ASSERT_TRUE(got.ok() && *got);
    got = (*source)->Next(&raw);
    ASSERT_FALSE(got.ok());
    EXPECT_TRUE(got.status().IsCorruption());
    EXPECT_NE(got.status().message().find(path + ":34: truncated event"), std::string::npos)
        << got.status().message();
  }
  // A header cut short at the end of the file.
  std::string path = Write("binlog.000002", kMagic + FakeEvent(30, 'a') + "\x01\x02\x03");
  auto source = FileBinlogSource::Open({path});
  ASSERT_TRUE(source.ok());
  RawEvent raw;
  ASSERT_TRUE((*source)->Next(&raw).ok());
  auto got = (*source)->Next(&raw);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message(),
            path + ":34: truncated event: 3 of the 19 header bytes before the end of the file");
}

TEST_F(FileBinlogSourceTest, LargeEventsAreReadWhole) {
  std::string big = FakeEvent(5u << 20, 'x');
  big[1000] = 'y';
  std::string bytes = kMagic + FakeEvent(19, 'a') + big + FakeEvent(25, 'c');
  for (bool gzip : {false, true}) {
    std::string path = gzip ? WriteGz("binlog.000001.gz", bytes) : Write("binlog.000001", bytes);
    auto source = FileBinlogSource::Open({path});
    ASSERT_TRUE(source.ok());
    auto events = ReadAllRaw(source->get());
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    ASSERT_EQ(events->size(), 3u);
    EXPECT_EQ((*events)[1].data, big);
    EXPECT_EQ((*events)[1].offset, 23u);
    EXPECT_EQ((*events)[2].offset, 23u + big.size());
    EXPECT_EQ((*events)[2].data, FakeEvent(25, 'c'));
  }
}

TEST_F(FileBinlogSourceTest, RecordedGzipFileIsRead) {
  auto source =
      FileBinlogSource::Open({kBinlogDir + "/mysql-binlog-connector-java/mysql-bin.sakila.gz"});
  ASSERT_TRUE(source.ok());
  auto events = ReadAllRaw(source->get());
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  EXPECT_EQ(events->size(), 1462u);
  EXPECT_EQ(events->front().file, "mysql-bin.sakila");
}

}  // namespace
}  // namespace replsync::capture
