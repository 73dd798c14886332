#include "capture/binlog/binlog_decoder.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <iterator>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "capture/binlog/file_binlog_source.h"

// Counts heap allocations so a test can prove the ROWS path allocates nothing per event. The
// replacement operator new allocates with malloc, so its operator delete frees with free; GCC
// cannot see that pairing once they are inlined and warns, wrongly, about the mismatch.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace replsync::capture {
namespace {

// ---- Byte building helpers -------------------------------------------------------------------

class Buf {
 public:
  Buf& U8(uint64_t v) { return Int(v, 1); }
  Buf& U16(uint64_t v) { return Int(v, 2); }
  Buf& U24(uint64_t v) { return Int(v, 3); }
  Buf& U32(uint64_t v) { return Int(v, 4); }
  Buf& U48(uint64_t v) { return Int(v, 6); }
  Buf& U64(uint64_t v) { return Int(v, 8); }
  Buf& Int(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  // MySQL packed integer (net_field_length).
  Buf& Packed(uint64_t v) {
    if (v < 251) return U8(v);
    if (v < (1u << 16)) return U8(252).U16(v);
    if (v < (1u << 24)) return U8(253).U24(v);
    return U8(254).U64(v);
  }
  // mysql::serialization variable-length unsigned integer.
  Buf& VarUInt(uint64_t v) {
    for (int n = 1; n <= 8; ++n) {
      if (n == 8 ? v < (uint64_t{1} << 56) : v < (uint64_t{1} << (7 * n))) {
        uint64_t encoded = (v << n) | ((uint64_t{1} << (n - 1)) - 1);
        return Int(encoded, n);
      }
    }
    return U8(0xff).U64(v);
  }
  Buf& Str(std::string_view v) {
    s_.append(v);
    return *this;
  }
  Buf& Zeros(size_t n) {
    s_.append(n, '\0');
    return *this;
  }
  const std::string& str() const { return s_; }
  size_t size() const { return s_.size(); }

 private:
  std::string s_;
};

constexpr uint32_t kTimestamp = 1700000000;

// A whole event: 19-byte header, body, and the CRC32 when `crc` is set.
std::string MakeEvent(uint8_t type, std::string_view body, bool crc, uint16_t flags = 0,
                      uint32_t log_pos = 0, uint32_t server_id = 1) {
  Buf b;
  size_t size = kEventHeaderSize + body.size() + (crc ? 4 : 0);
  b.U32(kTimestamp).U8(type).U32(server_id).U32(size).U32(log_pos).U16(flags).Str(body);
  std::string e = b.str();
  if (crc) {
    uint32_t c = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(e.data()), static_cast<uInt>(e.size())));
    e += Buf().U32(c).str();
  }
  return e;
}

std::vector<uint8_t> MysqlPostHeaders() {
  return {0, 13, 0, 8, 0, 0, 0, 0, 4,  0,  4,  0,  0,  0, 98, 0,  4, 26, 8,  0, 0,
          0, 8,  8, 8, 2, 0, 0, 0, 10, 10, 10, 42, 42, 0, 18, 52, 0, 10, 40, 0};
}

std::vector<uint8_t> MariadbPostHeaders() {
  std::vector<uint8_t> v(171, 0);
  v[2 - 1] = 13;
  v[4 - 1] = 8;
  v[19 - 1] = 8;
  for (int t = 23; t <= 25; ++t) v[t - 1] = 8;
  for (int t = 30; t <= 32; ++t) v[t - 1] = 10;
  v[26 - 1] = 2;
  v[161 - 1] = 4;
  v[162 - 1] = 19;
  v[163 - 1] = 4;
  v[165 - 1] = 13;
  for (int t = 166; t <= 168; ++t) v[t - 1] = 8;
  for (int t = 169; t <= 171; ++t) v[t - 1] = 10;
  return v;
}

// A FORMAT_DESCRIPTION event. `alg` < 0: a server without checksums (no algorithm byte).
std::string MakeFde(std::string_view version, int alg, const std::vector<uint8_t>& post_headers) {
  Buf body;
  std::string v(version);
  v.resize(50, '\0');
  body.U16(4).Str(v).U32(kTimestamp).U8(19);
  for (uint8_t l : post_headers) body.U8(l);
  if (alg < 0) return MakeEvent(15, body.str(), false);
  body.U8(static_cast<uint8_t>(alg));
  if (alg == 1) return MakeEvent(15, body.str(), true);
  std::string e = MakeEvent(15, body.str() + std::string(4, '\0'), false);
  return e;
}

std::string QueryBody(std::string_view db, std::string_view query, std::string_view status = {}) {
  Buf b;
  b.U32(7).U32(0).U8(db.size()).U16(0).U16(status.size()).Str(status).Str(db).U8(0).Str(query);
  return b.str();
}

// TABLE_MAP for `db`.`t`: (LONG, VARCHAR(255 bytes)) with the second column nullable.
std::string TableMapBody(uint64_t table_id, std::string_view optional = {}) {
  Buf b;
  b.U48(table_id).U16(1).U8(2).Str("db").U8(0).U8(1).Str("t").U8(0);
  b.Packed(2).U8(3).U8(15).Packed(2).U16(255).U8(0x02).Str(optional);
  return b.str();
}

// ---- Decoder harness ---------------------------------------------------------------------------

// Feeds events to a decoder as if they came from one file, keeping their bytes alive.
class Harness {
 public:
  explicit Harness(DecoderOptions options = {}) : decoder_(options) {}

  Result<std::vector<Event>> Feed(const std::string& bytes) {
    storage_.push_back(bytes);
    const std::string& b = storage_.back();
    RawEvent raw;
    raw.data = b;
    raw.file = file_;
    raw.offset = offset_;
    raw.next_offset = offset_ + b.size();
    offset_ += b.size();
    RS_RETURN_IF_ERROR(decoder_.Feed(raw));
    std::vector<Event> out;
    while (true) {
      Event e;
      RS_ASSIGN_OR_RETURN(bool got, decoder_.Next(&e));
      if (!got) break;
      out.push_back(std::move(e));
    }
    return out;
  }

  // Feeds one event that must decode to exactly one Event.
  Event One(const std::string& bytes) {
    auto events = Feed(bytes);
    EXPECT_TRUE(events.ok()) << events.status().ToString();
    if (!events.ok()) return Event{};
    EXPECT_EQ(events->size(), 1u);
    return events->empty() ? Event{} : events->front();
  }

  Status FeedStatus(const std::string& bytes) {
    auto events = Feed(bytes);
    return events.ok() ? Status::Ok() : events.status();
  }

  BinlogDecoder& decoder() { return decoder_; }
  uint64_t offset() const { return offset_; }

 private:
  BinlogDecoder decoder_;
  std::string file_ = "test-bin.000001";
  std::deque<std::string> storage_;
  uint64_t offset_ = 4;
};

std::string FixturePath(const char* relative) {
  return std::string(REPLSYNC_FIXTURES_DIR) + "/binlog/" + relative;
}

// Reads a fixture through FileBinlogSource + BinlogReader, calling `fn` for each event.
Status ForEachEvent(const char* relative, const std::function<void(const Event&)>& fn,
                    DecoderOptions options = {}) {
  RS_ASSIGN_OR_RETURN(auto source, FileBinlogSource::Open({FixturePath(relative)}));
  BinlogReader reader(std::move(source), options);
  while (true) {
    RS_ASSIGN_OR_RETURN(const Event* event, reader.Next());
    if (event == nullptr) return Status::Ok();
    fn(*event);
  }
}

// The raw events of a fixture (whole events, checksums included), with their offsets.
struct RawCopy {
  std::string bytes;
  uint64_t offset;
};
std::vector<RawCopy> RawEvents(const char* relative) {
  std::vector<RawCopy> out;
  auto source = FileBinlogSource::Open({FixturePath(relative)});
  EXPECT_TRUE(source.ok());
  if (!source.ok()) return out;
  RawEvent raw;
  while (true) {
    auto got = (*source)->Next(&raw);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok() || !*got) break;
    out.push_back({std::string(raw.data), raw.offset});
  }
  return out;
}

const char* kAllFixtures[] = {
    "rust_mysql_common/mariadb-bin.000001",
    "rust_mysql_common/minimal_row_metadata.000001",
    "rust_mysql_common/mysql-enum-string-set.000001",
    "rust_mysql_common/json.binlog.000001",
    "rust_mysql_common/vector.binlog",
    "rust_mysql_common/binlog_transaction_with_GTID_TAG.000001",
    "rust_mysql_common/transaction_compression.000001",
    "rust_mysql_common/ver_5_1-wl2325_r.001",
    "rust_mysql_common/binlog-invisible-columns.000001",
    "rust_mysql_common/bug40482-bin.000001",
    "mysql-binlog-connector-java/mysql-bin.compressed",
    "mysql-cdc-rs/events/5.7/14_user_var/log.bin",
    "mysql-cdc-rs/events/8.0/02_query_bigger/binlog.000733",
};

// ---- Names and framing -------------------------------------------------------------------------

TEST(BinlogDecoderTest, EventTypeNamesAreTheServerNames) {
  EXPECT_EQ(EventTypeName(2), "QUERY_EVENT");
  EXPECT_EQ(EventTypeName(15), "FORMAT_DESCRIPTION_EVENT");
  EXPECT_EQ(EventTypeName(30), "WRITE_ROWS_EVENT");
  EXPECT_EQ(EventTypeName(23), "WRITE_ROWS_EVENT_V1");
  EXPECT_EQ(EventTypeName(40), "TRANSACTION_PAYLOAD_EVENT");
  EXPECT_EQ(EventTypeName(42), "GTID_TAGGED_LOG_EVENT");
  EXPECT_EQ(EventTypeName(162), "GTID_EVENT");
  EXPECT_EQ(EventTypeName(171), "DELETE_ROWS_COMPRESSED_EVENT");
  EXPECT_EQ(EventTypeName(100), "UNKNOWN_EVENT(100)");
}

TEST(BinlogDecoderTest, FormatDescriptionSetsChecksumAndFlavor) {
  Harness h;
  Event e = h.One(MakeFde("8.0.32", 1, MysqlPostHeaders()));
  const auto* fde = std::get_if<FormatDescriptionEvent>(&e.body);
  ASSERT_NE(fde, nullptr);
  EXPECT_EQ(fde->server_version, "8.0.32");
  EXPECT_EQ(fde->checksum, ChecksumAlg::kCrc32);
  EXPECT_EQ(fde->flavor, ServerFlavor::kMysql);
  EXPECT_EQ(fde->post_header_lengths, MysqlPostHeaders());
  EXPECT_EQ(h.decoder().format(), *fde);

  Harness maria;
  e = maria.One(MakeFde("10.11.6-MariaDB-log", 0, MariadbPostHeaders()));
  fde = std::get_if<FormatDescriptionEvent>(&e.body);
  ASSERT_NE(fde, nullptr);
  EXPECT_EQ(fde->flavor, ServerFlavor::kMariadb);
  EXPECT_EQ(fde->checksum, ChecksumAlg::kOff);
  EXPECT_EQ(fde->post_header_lengths.size(), 171u);

  // MySQL 5.5 has no algorithm byte: every post-header byte is kept.
  Harness old;
  std::vector<uint8_t> lengths = MysqlPostHeaders();
  lengths.resize(27);
  e = old.One(MakeFde("5.5.40-log", -1, lengths));
  fde = std::get_if<FormatDescriptionEvent>(&e.body);
  ASSERT_NE(fde, nullptr);
  EXPECT_EQ(fde->checksum, ChecksumAlg::kOff);
  EXPECT_EQ(fde->post_header_lengths, lengths);
}

TEST(BinlogDecoderTest, EventPositionsComeFromTheRawEvent) {
  BinlogDecoder decoder;
  std::string fde = MakeFde("8.0.32", 1, MysqlPostHeaders());
  RawEvent raw{fde, "binlog.000042", uint64_t{5} << 32, (uint64_t{5} << 32) + fde.size()};
  ASSERT_TRUE(decoder.Feed(raw).ok());
  Event e;
  auto got = decoder.Next(&e);
  ASSERT_TRUE(got.ok() && *got);
  EXPECT_EQ(e.position.file, "binlog.000042");
  EXPECT_EQ(e.position.offset, uint64_t{5} << 32);  // 64-bit offsets survive
  EXPECT_EQ(e.next_offset, (uint64_t{5} << 32) + fde.size());
  EXPECT_FALSE(e.in_payload);
  EXPECT_EQ(e.header.type, 15);
  EXPECT_EQ(e.header.event_size, fde.size());
  EXPECT_EQ(e.header.timestamp, kTimestamp);
  got = decoder.Next(&e);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(*got);
}

TEST(BinlogDecoderTest, CrcMismatchIsCorruption) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  std::string xid = MakeEvent(16, Buf().U64(77).str(), true);
  xid[kEventHeaderSize + 2] ^= 0x01;  // flip one bit of the body
  uint64_t offset = h.offset();
  Status s = h.FeedStatus(xid);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("test-bin.000001:" + std::to_string(offset) + " XID_EVENT"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("CRC32 mismatch: expected 0x"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("computed 0x"), std::string::npos) << s.message();

  // The same event decodes when verification is off.
  Harness lenient(DecoderOptions{.verify_checksum = false});
  ASSERT_TRUE(lenient.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  Event e = lenient.One(xid);
  ASSERT_TRUE(std::holds_alternative<XidEvent>(e.body));
}

TEST(BinlogDecoderTest, CrcMismatchInRecordedBinlogIsCorruption) {
  std::vector<RawCopy> events = RawEvents("rust_mysql_common/mysql-enum-string-set.000001");
  ASSERT_GT(events.size(), 10u);
  for (size_t victim = 0; victim < events.size(); ++victim) {
    BinlogDecoder decoder;
    Status failure;
    for (size_t i = 0; i < events.size() && failure.ok(); ++i) {
      std::string bytes = events[i].bytes;
      if (i == victim) bytes[bytes.size() / 2] ^= 0x40;
      RawEvent raw{bytes, "mysql-enum-string-set.000001", events[i].offset,
                   events[i].offset + bytes.size()};
      failure = decoder.Feed(raw);
      Event e;
      while (failure.ok()) {
        auto got = decoder.Next(&e);
        if (!got.ok()) failure = got.status();
        if (!got.ok() || !*got) break;
      }
    }
    ASSERT_TRUE(failure.IsCorruption()) << "victim " << victim << ": " << failure.ToString();
    EXPECT_NE(failure.message().find(fmt::format(":{} ", events[victim].offset)),
              std::string::npos)
        << failure.message();
    EXPECT_NE(failure.message().find("CRC32 mismatch"), std::string::npos) << failure.message();
  }
}

TEST(BinlogDecoderTest, FormatDescriptionChecksumIgnoresBinlogInUseFlag) {
  // mariadb-bin.000001 was copied while open: its FORMAT_DESCRIPTION has
  // LOG_EVENT_BINLOG_IN_USE_F set, which the server leaves out of the checksum.
  std::vector<RawCopy> events = RawEvents("rust_mysql_common/mariadb-bin.000001");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].bytes[17] & 0x01, 0x01);
  Harness h;
  Event e = h.One(events[0].bytes);
  EXPECT_TRUE(std::holds_alternative<FormatDescriptionEvent>(e.body));
}

TEST(BinlogDecoderTest, SecondFormatDescriptionReplacesTheFirst) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  EXPECT_EQ(h.decoder().format().checksum, ChecksumAlg::kCrc32);
  Event e = h.One(MakeEvent(16, Buf().U64(5).str(), true));
  EXPECT_EQ(std::get<XidEvent>(e.body).xid, 5u);
  // A relay log switching to a master that writes no checksums.
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 0, MysqlPostHeaders())).ok());
  EXPECT_EQ(h.decoder().format().checksum, ChecksumAlg::kOff);
  e = h.One(MakeEvent(16, Buf().U64(6).str(), false));
  EXPECT_EQ(std::get<XidEvent>(e.body).xid, 6u);
}

TEST(BinlogDecoderTest, TruncatedHeaderIsCorruption) {
  Harness h;
  Status s = h.FeedStatus(std::string("\x01\x02\x03", 3));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  std::string xid = MakeEvent(16, Buf().U64(1).str(), false);
  xid[9] = 50;  // the length field disagrees with the bytes given
  s = h.FeedStatus(xid);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

// ---- Unknown, skipped and unsupported events
// -----------------------------------------------------

TEST(BinlogDecoderTest, UnknownIgnorableEventIsSkipped) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  Event e = h.One(MakeEvent(100, std::string(40, '*'), true, kFlagIgnorable));
  EXPECT_TRUE(std::holds_alternative<SkippedEvent>(e.body));
  EXPECT_EQ(e.header.type, 100);

  // The recorded Aurora padding event (type 100, flagged ignorable) is skipped too.
  int skipped = 0;
  Status s =
      ForEachEvent("mysql-binlog-connector-java/mysql-bin.aurora-padding", [&](const Event& ev) {
        if (ev.header.type == 100) {
          EXPECT_TRUE(std::holds_alternative<SkippedEvent>(ev.body));
          ++skipped;
        }
      });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(skipped, 1);
}

TEST(BinlogDecoderTest, UnknownMandatoryEventIsUnsupported) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  uint64_t offset = h.offset();
  Status s = h.FeedStatus(MakeEvent(100, std::string(40, '*'), true));
  EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
  EXPECT_NE(s.message().find("test-bin.000001:" + std::to_string(offset) + " UNKNOWN_EVENT(100)"),
            std::string::npos)
      << s.message();
}

TEST(BinlogDecoderTest, StartEncryptionIsUnsupported) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("10.11.6-MariaDB-log", 1, MariadbPostHeaders())).ok());
  Status s = h.FeedStatus(MakeEvent(164, Buf().U8(1).U32(1).Zeros(12).str(), true));
  EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
  EXPECT_NE(s.message().find("encrypted binlog; replsync cannot read it"), std::string::npos);
}

TEST(BinlogDecoderTest, LegacyAndInformationalEventsAreSkipped) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  for (uint8_t type : {1, 6, 8, 9, 10, 11, 12, 17, 18, 28, 36, 37}) {
    Event e = h.One(MakeEvent(type, std::string(30, 'x'), true));
    EXPECT_TRUE(std::holds_alternative<SkippedEvent>(e.body)) << int{type};
  }
}

// ---- QUERY
// -----------------------------------------------------------------------------------------

TEST(BinlogDecoderTest, QueryStatusVariablesAreDecoded) {
  Buf s;
  s.U8(0).U32(0x4000);
  s.U8(1).U64(0x45a00020);
  s.U8(3).U16(2).U16(1);
  s.U8(4).U16(33).U16(34).U16(8);
  s.U8(5).U8(6).Str("SYSTEM");
  s.U8(6).U8(3).Str("std");
  s.U8(7).U16(3);
  s.U8(8).U16(45);
  s.U8(9).U64(0x3);
  s.U8(10).U32(0);
  s.U8(11).U8(4).Str("root").U8(9).Str("localhost");
  s.U8(12).U8(2).Str("db1").U8(0).Str("db2").U8(0);
  s.U8(13).U24(123456);
  s.U8(16).U8(1);
  s.U8(17).U64(99);
  s.U8(18).U16(255);
  s.U8(19).U8(1);
  s.U8(20).U8(0);
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  Event e = h.One(MakeEvent(2, QueryBody("shop", "CREATE TABLE t (a INT)", s.str()), true));
  const auto& q = std::get<QueryEvent>(e.body);
  EXPECT_EQ(q.thread_id, 7u);
  EXPECT_EQ(q.db, "shop");
  EXPECT_EQ(q.query, "CREATE TABLE t (a INT)");
  const QueryStatusVars& v = q.status;
  EXPECT_EQ(v.flags2, 0x4000u);
  EXPECT_EQ(v.sql_mode, 0x45a00020u);
  EXPECT_EQ(v.auto_increment_increment, 2);
  EXPECT_EQ(v.auto_increment_offset, 1);
  EXPECT_EQ(v.charset_client, 33);
  EXPECT_EQ(v.collation_connection, 34);
  EXPECT_EQ(v.collation_server, 8);
  EXPECT_EQ(v.time_zone, "SYSTEM");
  EXPECT_EQ(v.catalog, "std");
  EXPECT_EQ(v.lc_time_names, 3);
  EXPECT_EQ(v.collation_database, 45);
  EXPECT_EQ(v.table_map_for_update, 3u);
  EXPECT_EQ(v.invoker_user, "root");
  EXPECT_EQ(v.invoker_host, "localhost");
  EXPECT_EQ(v.updated_db_names, (std::vector<std::string>{"db1", "db2"}));
  EXPECT_EQ(v.microseconds, 123456u);
  EXPECT_EQ(v.explicit_defaults_for_timestamp, 1);
  EXPECT_EQ(v.ddl_xid, 99u);
  EXPECT_EQ(v.default_collation_for_utf8mb4, 255);
  EXPECT_EQ(v.sql_require_primary_key, 1);
  EXPECT_EQ(v.default_table_encryption, 0);
}

TEST(BinlogDecoderTest, MariadbQueryStatusVariablesAreDecoded) {
  Buf s;
  s.U8(2).U8(3).Str("std").U8(0);  // Q_CATALOG (with its NUL)
  s.U8(12).U8(254);                // more databases than the event lists
  s.U8(128).U24(654321);           // Q_HRNOW
  s.U8(129).U64(1234);             // Q_XID
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("10.11.6-MariaDB-log", 1, MariadbPostHeaders())).ok());
  Event e = h.One(MakeEvent(2, QueryBody("", "DROP TABLE t", s.str()), true));
  const auto& q = std::get<QueryEvent>(e.body);
  EXPECT_EQ(q.status.catalog, "std");
  EXPECT_TRUE(q.status.updated_db_names.empty());
  EXPECT_EQ(q.status.microseconds, 654321u);
  EXPECT_EQ(q.status.ddl_xid, 1234u);
  EXPECT_EQ(q.query, "DROP TABLE t");
}

TEST(BinlogDecoderTest, UnknownStatusVariableStopsParsingSafely) {
  Buf s;
  s.U8(0).U32(1).U8(200).Str("\xff\xff\xff\xff garbage");  // code 200: unknown layout
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  Event e = h.One(MakeEvent(2, QueryBody("db", "BEGIN", s.str()), true));
  const auto& q = std::get<QueryEvent>(e.body);
  EXPECT_EQ(q.status.flags2, 1u);
  EXPECT_FALSE(q.status.sql_mode.has_value());
  EXPECT_EQ(q.db, "db");
  EXPECT_EQ(q.query, "BEGIN");
}

TEST(BinlogDecoderTest, StatusVariableOverrunningItsBlockIsCorruption) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  // Q_SQL_MODE needs 8 bytes; the block ends after 3.
  Status s = h.FeedStatus(MakeEvent(2, QueryBody("db", "BEGIN", Buf().U8(1).U24(5).str()), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("QUERY_EVENT: status variable 1"), std::string::npos) << s.message();
  // Q_UPDATED_DB_NAMES whose last name has no NUL inside the block.
  s = h.FeedStatus(MakeEvent(2, QueryBody("db", "x", Buf().U8(12).U8(1).Str("abc").str()), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // A status block longer than the event.
  Buf body;
  body.U32(1).U32(0).U8(2).U16(0).U16(500).Str("db").U8(0);
  s = h.FeedStatus(MakeEvent(2, body.str(), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(BinlogDecoderTest, MariadbCompressedQueryIsInflated) {
  std::string sql = "ALTER TABLE big ADD COLUMN " + std::string(300, 'c') + " INT";
  std::string packed(compressBound(sql.size()), '\0');
  uLongf packed_len = packed.size();
  ASSERT_EQ(compress(reinterpret_cast<Bytef*>(packed.data()), &packed_len,
                     reinterpret_cast<const Bytef*>(sql.data()), sql.size()),
            Z_OK);
  packed.resize(packed_len);
  Buf block;
  block.U8(0x80 | 2).U8(sql.size() >> 8).U8(sql.size() & 0xff).Str(packed);  // big-endian size
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("10.11.6-MariaDB-log", 1, MariadbPostHeaders())).ok());
  Event e = h.One(MakeEvent(165, QueryBody("db", block.str()), true));
  EXPECT_EQ(std::get<QueryEvent>(e.body).query, sql);

  // A block that does not inflate is Corruption.
  std::string bad = block.str();
  bad[5] ^= 0x55;
  Status s = h.FeedStatus(MakeEvent(165, QueryBody("db", bad), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("QUERY_COMPRESSED_EVENT"), std::string::npos);
}

// ---- GTIDs
// ---------------------------------------------------------------------------------------

TEST(BinlogDecoderTest, MysqlGtidFieldsAreDecoded) {
  std::array<uint8_t, 16> uuid = {0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1,
                                  0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62};
  Buf b;
  b.U8(1).Str(std::string(reinterpret_cast<const char*>(uuid.data()), 16)).U64(23);
  b.U8(2).U64(10).U64(11);
  b.Int(1700000000123456ull | (uint64_t{1} << 55), 7).Int(1600000000654321ull, 7);
  b.Packed(70000);
  b.U32(80032u | (1u << 31)).U32(80028);
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  Event e = h.One(MakeEvent(33, b.str(), true));
  const auto& g = std::get<GtidEvent>(e.body);
  EXPECT_EQ(g.gtid.ToString(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:23");
  EXPECT_FALSE(g.anonymous);
  EXPECT_EQ(g.mysql_flags, 1);
  EXPECT_EQ(g.last_committed, 10);
  EXPECT_EQ(g.sequence_number, 11);
  EXPECT_EQ(g.immediate_commit_us, 1700000000123456u);
  EXPECT_EQ(g.original_commit_us, 1600000000654321u);
  EXPECT_EQ(g.transaction_length, 70000u);
  EXPECT_EQ(g.immediate_server_version, 80032u);
  EXPECT_EQ(g.original_server_version, 80028u);

  // A 5.6 GTID event stops after the transaction number; an anonymous one has no GTID.
  Buf old;
  old.U8(1).Str(std::string(reinterpret_cast<const char*>(uuid.data()), 16)).U64(7);
  e = h.One(MakeEvent(34, old.str(), true));
  const auto& a = std::get<GtidEvent>(e.body);
  EXPECT_TRUE(a.anonymous);
  EXPECT_TRUE(a.gtid.empty());
  EXPECT_EQ(a.last_committed, 0);
  EXPECT_EQ(a.immediate_commit_us, 0u);

  Status s = h.FeedStatus(MakeEvent(33, Buf().U8(1).Zeros(10).str(), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(BinlogDecoderTest, TaggedGtidAndTaggedGtidSetAreDecoded) {
  std::vector<std::string> seen;
  Status s = ForEachEvent("rust_mysql_common/binlog_transaction_with_GTID_TAG.000001",
                          [&](const Event& e) {
                            if (const auto* g = std::get_if<GtidEvent>(&e.body)) {
                              EXPECT_EQ(e.header.type, 42);
                              EXPECT_EQ(g->gtid.tag, "mytag");
                              EXPECT_EQ(g->sequence_number, 1);
                              EXPECT_EQ(g->last_committed, 0);
                              EXPECT_EQ(g->immediate_server_version, 90600u);
                              EXPECT_EQ(g->original_server_version, 90600u);
                              EXPECT_EQ(g->transaction_length, 296u);
                              EXPECT_EQ(g->immediate_commit_us, 1770368687207196u);
                              EXPECT_EQ(g->original_commit_us, g->immediate_commit_us);
                              seen.push_back("gtid " + g->gtid.ToString());
                            }
                            if (const auto* set = std::get_if<GtidSetEvent>(&e.body)) {
                              seen.push_back("set " + set->gtid_set);
                            }
                          });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(seen,
            (std::vector<std::string>{"set 55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-2",
                                      "gtid 55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3"}));
}

TEST(BinlogDecoderTest, SyntheticTaggedGtidRoundTrips) {
  std::array<uint8_t, 16> uuid{};
  for (int i = 0; i < 16; ++i) uuid[i] = static_cast<uint8_t>(0xf0 + i);
  Buf fields;
  fields.VarUInt(0).VarUInt(1);
  fields.VarUInt(1);
  for (uint8_t b : uuid) fields.VarUInt(b);
  fields.VarUInt(2).VarUInt(uint64_t{1234567} << 1);  // gno, zig-zag
  fields.VarUInt(3).VarUInt(4).Str("Blue");
  fields.VarUInt(4).VarUInt(uint64_t{5} << 1).VarUInt(5).VarUInt(uint64_t{6} << 1);
  fields.VarUInt(6).VarUInt(1700000000000001ull).VarUInt(7).VarUInt(1600000000000002ull);
  fields.VarUInt(8).VarUInt(999).VarUInt(9).VarUInt(90100).VarUInt(10).VarUInt(80400);
  fields.VarUInt(11).VarUInt(3);
  // Envelope: version, message size (counting from the version byte), last non-ignorable id.
  size_t size = 1 + 1 + 1 + fields.size();
  ASSERT_LT(size, 128u);
  Buf body;
  body.VarUInt(1).VarUInt(size).VarUInt(0).Str(fields.str());
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("9.1.0", 1, MysqlPostHeaders())).ok());
  Event e = h.One(MakeEvent(42, body.str(), true));
  const auto& g = std::get<GtidEvent>(e.body);
  EXPECT_EQ(g.gtid.ToString(), "f0f1f2f3-f4f5-f6f7-f8f9-fafbfcfdfeff:blue:1234567");
  EXPECT_EQ(g.mysql_flags, 1);
  EXPECT_EQ(g.last_committed, 5);
  EXPECT_EQ(g.sequence_number, 6);
  EXPECT_EQ(g.immediate_commit_us, 1700000000000001u);
  EXPECT_EQ(g.original_commit_us, 1600000000000002u);
  EXPECT_EQ(g.transaction_length, 999u);
  EXPECT_EQ(g.immediate_server_version, 90100u);
  EXPECT_EQ(g.original_server_version, 80400u);

  // A message size beyond the event is Corruption.
  Buf bad;
  bad.VarUInt(1).VarUInt(100).VarUInt(0).Str(fields.str());
  Status s = h.FeedStatus(MakeEvent(42, bad.str(), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(BinlogDecoderTest, UntaggedPreviousGtidsAreFormatted) {
  std::string text;
  Status s = ForEachEvent("rust_mysql_common/binlog_transaction_previous_GTID_no_tag.000001",
                          [&](const Event& e) {
                            if (const auto* set = std::get_if<GtidSetEvent>(&e.body)) {
                              text = set->gtid_set;
                            }
                          });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(text, "b9b88c66-0755-11f1-9899-4a9da94c4d71:1-2");

  // Two source ids, single-transaction and multi-transaction intervals.
  Buf b;
  b.U64(2);
  b.Str(std::string(16, '\x11')).U64(2).U64(1).U64(6).U64(7).U64(8);
  b.Str(std::string(16, '\x22')).U64(1).U64(3).U64(10);
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  Event e = h.One(MakeEvent(35, b.str(), true));
  EXPECT_EQ(std::get<GtidSetEvent>(e.body).gtid_set,
            "11111111-1111-1111-1111-111111111111:1-5:7,"
            "22222222-2222-2222-2222-222222222222:3-9");
  // An interval count that cannot fit is Corruption, not a long loop.
  Buf bad;
  bad.U64(1).Str(std::string(16, '\x11')).U64(uint64_t{1} << 60);
  Status st = h.FeedStatus(MakeEvent(35, bad.str(), true));
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
}

TEST(BinlogDecoderTest, MariadbGtidsAndGtidListAreDecoded) {
  std::vector<std::string> gtids;
  Status s = ForEachEvent("rust_mysql_common/mariadb-bin.000001", [&](const Event& e) {
    if (const auto* g = std::get_if<GtidEvent>(&e.body)) {
      EXPECT_EQ(g->gtid.flavor, Gtid::Flavor::kMariadb);
      EXPECT_FALSE(g->standalone());
      gtids.push_back(g->gtid.ToString());
    }
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(gtids, (std::vector<std::string>{"0-1-1", "0-1-2"}));

  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("10.11.6-MariaDB-log", 1, MariadbPostHeaders())).ok());
  // Standalone DDL with a group commit id.
  Event e =
      h.One(MakeEvent(162, Buf().U64(100).U32(3).U8(0x01 | 0x02).U64(77).str(), true, 0, 0, 9));
  const auto& g = std::get<GtidEvent>(e.body);
  EXPECT_EQ(g.gtid.ToString(), "3-9-100");
  EXPECT_TRUE(g.standalone());
  EXPECT_EQ(g.commit_id, 77u);
  // A prepared XA transaction carries its xid.
  e = h.One(MakeEvent(
      162, Buf().U64(101).U32(0).U8(0x40).U32(1).U8(2).U8(1).Str("ab").Str("c").str(), true));
  EXPECT_EQ(std::get<GtidEvent>(e.body).xa_xid, "X'6162',X'63',1");
  // GTID_LIST: the top 4 bits of the count are flags.
  Buf list;
  list.U32(2 | (1u << 28)).U32(0).U32(1).U64(100).U32(1).U32(2).U64(7);
  e = h.One(MakeEvent(163, list.str(), true));
  EXPECT_EQ(std::get<GtidSetEvent>(e.body).gtid_set, "0-1-100,1-2-7");
  Status st = h.FeedStatus(MakeEvent(163, Buf().U32(1000).U32(0).str(), true));
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
}

// ---- TABLE_MAP
// -----------------------------------------------------------------------------------

const TableMap* FirstTableMap(const char* fixture, std::shared_ptr<const TableMap>* keep) {
  Status s = ForEachEvent(fixture, [&](const Event& e) {
    if (const auto* t = std::get_if<TableMapEvent>(&e.body); t != nullptr && *keep == nullptr) {
      *keep = t->table;
    }
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return keep->get();
}

TEST(BinlogDecoderTest, MariadbFullMetadataTableMap) {
  std::shared_ptr<const TableMap> keep;
  const TableMap* t = FirstTableMap("rust_mysql_common/mariadb-bin.000001", &keep);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->db, "toddy_test");
  EXPECT_EQ(t->table, "outbox");
  EXPECT_EQ(t->table_id, 38u);
  EXPECT_TRUE(t->has_optional_metadata);
  ASSERT_EQ(t->columns.size(), 5u);
  std::vector<std::string> names;
  for (const ColumnDef& c : t->columns) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"id", "topic", "event_type", "event", "created"}));
  EXPECT_EQ(t->columns[0].type, ColumnType::kLong);
  EXPECT_FALSE(t->columns[0].nullable);
  EXPECT_EQ(t->columns[1].type, ColumnType::kVarchar);
  EXPECT_EQ(t->columns[1].meta, 1020);
  EXPECT_EQ(t->columns[1].collation, 45u);
  EXPECT_EQ(t->columns[2].type, ColumnType::kEnum);  // logged as STRING, real type ENUM
  EXPECT_EQ(t->columns[2].meta, 1);
  EXPECT_TRUE(t->columns[2].nullable);
  EXPECT_EQ(t->columns[2].collation, 45u);  // ENUM_AND_SET_DEFAULT_CHARSET
  EXPECT_EQ(t->columns[2].enum_values, (std::vector<std::string>{"BLOB", "JSON", "PROTOBUF"}));
  EXPECT_EQ(t->columns[3].type, ColumnType::kBlob);
  EXPECT_EQ(t->columns[3].meta, 2);
  EXPECT_EQ(t->columns[3].collation, kBinaryCollation);
  EXPECT_EQ(t->columns[4].type, ColumnType::kTimestamp2);
  EXPECT_EQ(t->columns[4].meta, 0);
  EXPECT_EQ(t->primary_key, (std::vector<uint32_t>{0}));
  EXPECT_EQ(t->primary_key_prefix, (std::vector<uint32_t>{0}));
}

TEST(BinlogDecoderTest, MinimalMetadataIsIndexedByTableColumn) {
  // rust_mysql_common#162: the metadata of t1(col_1 int PK, col_2 blob, col_3 char(2), col_4 int,
  // col_5 int unsigned) must be indexed by the column's position in the table.
  std::shared_ptr<const TableMap> keep;
  const TableMap* t = FirstTableMap("rust_mysql_common/minimal_row_metadata.000001", &keep);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->columns.size(), 5u);
  EXPECT_EQ(t->columns[1].type, ColumnType::kBlob);
  EXPECT_EQ(t->columns[1].collation, kBinaryCollation);
  EXPECT_EQ(t->columns[2].type, ColumnType::kString);
  EXPECT_EQ(t->columns[2].meta, 8);          // CHAR(2) utf8mb4: 8 bytes
  EXPECT_EQ(t->columns[2].collation, 255u);  // utf8mb4_0900_ai_ci
  EXPECT_FALSE(t->columns[0].is_unsigned);
  EXPECT_FALSE(t->columns[3].is_unsigned);
  EXPECT_TRUE(t->columns[4].is_unsigned);
  EXPECT_TRUE(t->columns[4].name.empty());  // MINIMAL logs no names
}

TEST(BinlogDecoderTest, StringColumnsResolveTheirRealType) {
  std::shared_ptr<const TableMap> keep;
  const TableMap* t = FirstTableMap("rust_mysql_common/mysql-enum-string-set.000001", &keep);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->columns.size(), 5u);
  EXPECT_EQ(t->columns[0].type, ColumnType::kString);
  EXPECT_EQ(t->columns[0].meta, 512);  // CHAR(128) utf8mb4: the packed two-byte length
  EXPECT_EQ(t->columns[1].type, ColumnType::kVarchar);
  EXPECT_EQ(t->columns[1].meta, 1200);
  EXPECT_EQ(t->columns[2].type, ColumnType::kEnum);
  EXPECT_EQ(t->columns[2].meta, 1);
  EXPECT_EQ(t->columns[2].enum_values, (std::vector<std::string>{"var1", "variant2", "foo"}));
  EXPECT_EQ(t->columns[3].type, ColumnType::kSet);
  EXPECT_EQ(t->columns[3].meta, 1);
  EXPECT_EQ(t->columns[3].enum_values, (std::vector<std::string>{"one", "two", "three", "four"}));
  EXPECT_EQ(t->columns[4].type, ColumnType::kBlob);
  for (const ColumnDef& c : t->columns) EXPECT_EQ(c.collation, 255u) << c.name;
}

TEST(BinlogDecoderTest, VectorBitAndVisibilityMetadata) {
  std::vector<std::shared_ptr<const TableMap>> maps;
  Status s = ForEachEvent("rust_mysql_common/vector.binlog", [&](const Event& e) {
    if (const auto* t = std::get_if<TableMapEvent>(&e.body)) maps.push_back(t->table);
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_GE(maps.size(), 2u);
  const TableMap& bar = *maps[1];
  EXPECT_EQ(bar.table, "bar");
  ASSERT_EQ(bar.columns.size(), 4u);
  EXPECT_TRUE(bar.columns[0].is_unsigned);  // SERIAL
  EXPECT_EQ(bar.columns[1].type, ColumnType::kVector);
  EXPECT_EQ(bar.columns[1].vector_dimensions, 2u);
  EXPECT_EQ(bar.columns[1].collation, kBinaryCollation);
  EXPECT_EQ(bar.columns[2].collation, 255u);  // foo TEXT: index 1 among character columns
  EXPECT_EQ(bar.columns[3].vector_dimensions, 4u);
  EXPECT_EQ(maps[0]->columns[1].vector_dimensions, 3u);

  std::shared_ptr<const TableMap> keep;
  const TableMap* bits = FirstTableMap("rust_mysql_common/mysql_type_bit.000001", &keep);
  ASSERT_NE(bits, nullptr);
  EXPECT_EQ(bits->columns[0].type, ColumnType::kBit);
  EXPECT_EQ(bits->columns[0].meta, 3);
  EXPECT_EQ(bits->columns[2].meta, 8);

  std::shared_ptr<const TableMap> keep2;
  const TableMap* inv = FirstTableMap("rust_mysql_common/binlog-invisible-columns.000001", &keep2);
  ASSERT_NE(inv, nullptr);
  ASSERT_EQ(inv->columns.size(), 6u);
  std::vector<bool> visible;
  std::vector<bool> is_unsigned;
  for (const ColumnDef& c : inv->columns) {
    visible.push_back(c.visible);
    is_unsigned.push_back(c.is_unsigned);
  }
  EXPECT_EQ(visible, (std::vector<bool>{false, false, true, true, true, false}));
  EXPECT_EQ(is_unsigned, (std::vector<bool>{true, true, false, false, false, true}));
}

TEST(BinlogDecoderTest, DecimalTemporalAndOldTableMaps) {
  std::shared_ptr<const TableMap> keep;
  const TableMap* t =
      FirstTableMap("rust_mysql_common/binlog_transaction_with_GTID_TAG.000001", &keep);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->columns[2].type, ColumnType::kNewDecimal);
  EXPECT_EQ(t->columns[2].meta, (10 << 8) | 2);  // DECIMAL(10,2)

  // A 5.1 development-tree binlog: no metadata, no null bitmap, 4-byte table ids and the old
  // event numbering (TABLE_MAP was 16).
  std::shared_ptr<const TableMap> keep2;
  const TableMap* old = FirstTableMap("rust_mysql_common/ver_5_1-wl2325_r.001", &keep2);
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->db, "test");
  EXPECT_EQ(old->table, "t1");
  ASSERT_EQ(old->columns.size(), 2u);
  EXPECT_EQ(old->columns[0].type, ColumnType::kLong);
  EXPECT_EQ(old->columns[1].type, ColumnType::kString);
  EXPECT_TRUE(old->columns[1].nullable);
  EXPECT_FALSE(old->has_optional_metadata);
}

TEST(BinlogDecoderTest, OptionalMetadataCountsAreChecked) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  // COLUMN_NAME with one name for two columns.
  Status s = h.FeedStatus(
      MakeEvent(19, TableMapBody(5, Buf().U8(4).Packed(2).Packed(1).Str("a").str()), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // COLUMN_CHARSET with two collations but one character column.
  s = h.FeedStatus(MakeEvent(19, TableMapBody(5, Buf().U8(3).Packed(2).U8(8).U8(8).str()), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // DEFAULT_CHARSET naming character column 3 of 1.
  s = h.FeedStatus(
      MakeEvent(19, TableMapBody(5, Buf().U8(2).Packed(3).U8(8).U8(3).U8(9).str()), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // A primary key column past the end.
  s = h.FeedStatus(MakeEvent(19, TableMapBody(5, Buf().U8(8).Packed(1).U8(7).str()), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // A field longer than the event.
  s = h.FeedStatus(MakeEvent(19, TableMapBody(5, Buf().U8(4).Packed(90).str()), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // An unknown field is skipped by its length; known ones still apply.
  Event e = h.One(MakeEvent(19,
                            TableMapBody(6, Buf()
                                                .U8(99)
                                                .Packed(3)
                                                .Str("xyz")
                                                .U8(9)
                                                .Packed(4)
                                                .U8(1)
                                                .U8(10)
                                                .U8(0)
                                                .U8(0)
                                                .U8(2)
                                                .Packed(3)
                                                .U8(33)
                                                .U8(0)
                                                .U8(8)
                                                .str()),
                            true));
  const TableMap& t = *std::get<TableMapEvent>(e.body).table;
  EXPECT_EQ(t.primary_key, (std::vector<uint32_t>{1, 0}));
  EXPECT_EQ(t.primary_key_prefix, (std::vector<uint32_t>{10, 0}));
  EXPECT_EQ(t.columns[1].collation, 8u);
  EXPECT_EQ(t.columns[0].collation, 0u);
}

TEST(BinlogDecoderTest, TableMapIsSharedUntilItChanges) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  Event a = h.One(MakeEvent(19, TableMapBody(9), true));
  Event b = h.One(MakeEvent(19, TableMapBody(9), true));
  auto ta = std::get<TableMapEvent>(a.body).table;
  auto tb = std::get<TableMapEvent>(b.body).table;
  EXPECT_EQ(ta.get(), tb.get());
  EXPECT_EQ(h.decoder().FindTable(9), ta.get());
  EXPECT_EQ(h.decoder().FindTable(10), nullptr);
  Event c = h.One(MakeEvent(
      19, TableMapBody(9, Buf().U8(4).Packed(4).U8(1).Str("a").U8(1).Str("b").str()), true));
  auto tc = std::get<TableMapEvent>(c.body).table;
  EXPECT_NE(tc.get(), ta.get());
  EXPECT_EQ(tc->columns[1].name, "b");
  EXPECT_EQ(h.decoder().FindTable(9), tc.get());
  EXPECT_TRUE(ta->columns[1].name.empty());  // the old map is still intact for its holders
}

// ---- ROWS
// ----------------------------------------------------------------------------------------

TEST(BinlogDecoderTest, RowsV2FramingAndViews) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  ASSERT_TRUE(h.Feed(MakeEvent(19, TableMapBody(42), true)).ok());
  Buf rows;
  rows.U48(42).U16(0x0001).U16(2 + 3).Str("abc").Packed(2).U8(0x03).Str("ROWDATA");
  Event e = h.One(MakeEvent(30, rows.str(), true));
  const auto& r = std::get<RowsEvent>(e.body);
  EXPECT_EQ(r.kind, RowsKind::kWrite);
  EXPECT_EQ(r.version, 2);
  EXPECT_EQ(r.table_id, 42u);
  EXPECT_TRUE(r.end_of_statement());
  EXPECT_EQ(r.extra_data, "abc");
  EXPECT_EQ(r.column_count, 2u);
  EXPECT_EQ(r.columns_before, "\x03");
  EXPECT_TRUE(r.columns_after.empty());
  EXPECT_EQ(r.rows, "ROWDATA");  // no checksum
  EXPECT_EQ(r.table, h.decoder().FindTable(42));
  EXPECT_FALSE(r.partial_json);

  Buf update;
  update.U48(42).U16(0).U16(2).Packed(2).U8(0x01).U8(0x02).Str("UPD");
  e = h.One(MakeEvent(31, update.str(), true));
  const auto& u = std::get<RowsEvent>(e.body);
  EXPECT_EQ(u.kind, RowsKind::kUpdate);
  EXPECT_EQ(u.columns_before, "\x01");
  EXPECT_EQ(u.columns_after, "\x02");
  EXPECT_EQ(u.rows, "UPD");
  EXPECT_FALSE(u.end_of_statement());

  e = h.One(MakeEvent(39, update.str(), true));
  EXPECT_TRUE(std::get<RowsEvent>(e.body).partial_json);

  Buf v1;
  v1.U48(42).U16(1).Packed(2).U8(0x03).Str("DEL");
  e = h.One(MakeEvent(25, v1.str(), true));
  const auto& d = std::get<RowsEvent>(e.body);
  EXPECT_EQ(d.kind, RowsKind::kDelete);
  EXPECT_EQ(d.version, 1);
  EXPECT_EQ(d.rows, "DEL");
}

TEST(BinlogDecoderTest, RowsWithoutTableMapIsCorruption) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  uint64_t offset = h.offset();
  Status s = h.FeedStatus(MakeEvent(30, Buf().U48(77).U16(1).U16(2).Packed(1).U8(1).str(), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("test-bin.000001:" + std::to_string(offset) +
                             " WRITE_ROWS_EVENT: no TABLE_MAP for table id 77"),
            std::string::npos)
      << s.message();
}

TEST(BinlogDecoderTest, RowsFramingErrorsAreCorruption) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  ASSERT_TRUE(h.Feed(MakeEvent(19, TableMapBody(42), true)).ok());
  // Column count differs from the TABLE_MAP.
  Status s = h.FeedStatus(MakeEvent(30, Buf().U48(42).U16(1).U16(2).Packed(3).U8(7).str(), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // Extra data longer than the event.
  s = h.FeedStatus(MakeEvent(30, Buf().U48(42).U16(1).U16(300).str(), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // Extra data length below its own two bytes.
  s = h.FeedStatus(MakeEvent(30, Buf().U48(42).U16(1).U16(1).Packed(2).U8(3).str(), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // An UPDATE missing its second bitmap.
  s = h.FeedStatus(MakeEvent(31, Buf().U48(42).U16(1).U16(2).Packed(2).U8(3).str(), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // A huge column count.
  s = h.FeedStatus(
      MakeEvent(30, Buf().U48(42).U16(1).U16(2).U8(254).U64(~uint64_t{0}).str(), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(BinlogDecoderTest, PreGaRowsShareOneBitmapAndOldTypeNumbersArePermuted) {
  std::vector<std::string> seen;
  Status s = ForEachEvent("rust_mysql_common/ver_5_1-wl2325_r.001", [&](const Event& e) {
    seen.push_back(EventTypeName(e.header.type));
    if (const auto* r = std::get_if<RowsEvent>(&e.body)) {
      EXPECT_EQ(r->version, 0);
      EXPECT_EQ(r->column_count, 2u);
      EXPECT_EQ(r->table->table, "t1");
      if (r->kind == RowsKind::kUpdate) {
        EXPECT_EQ(r->columns_after.data(), r->columns_before.data());
      }
    }
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(seen, (std::vector<std::string>{"FORMAT_DESCRIPTION_EVENT", "QUERY_EVENT",
                                            "QUERY_EVENT", "QUERY_EVENT", "TABLE_MAP_EVENT",
                                            "PRE_GA_WRITE_ROWS_EVENT", "TABLE_MAP_EVENT",
                                            "PRE_GA_UPDATE_ROWS_EVENT", "TABLE_MAP_EVENT",
                                            "PRE_GA_DELETE_ROWS_EVENT", "STOP_EVENT"}));
  // The statement-based sibling file: its XID (numbered 20 there) decodes as XID.
  int xids = 0;
  s = ForEachEvent("rust_mysql_common/ver_5_1-wl2325_s.001", [&](const Event& e) {
    if (std::holds_alternative<XidEvent>(e.body)) ++xids;
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_GT(xids, 0);
}

TEST(BinlogDecoderTest, MariadbCompressedRowsAreInflated) {
  std::string rows = std::string("\xf8") + std::string(200, 'r');
  std::string packed(compressBound(rows.size()), '\0');
  uLongf packed_len = packed.size();
  ASSERT_EQ(compress(reinterpret_cast<Bytef*>(packed.data()), &packed_len,
                     reinterpret_cast<const Bytef*>(rows.data()), rows.size()),
            Z_OK);
  packed.resize(packed_len);
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("10.11.6-MariaDB-log", 1, MariadbPostHeaders())).ok());
  ASSERT_TRUE(h.Feed(MakeEvent(19, TableMapBody(3), true)).ok());
  Buf body;
  body.U48(3).U16(1).Packed(2).U8(0x03).U8(0x03).U8(0x80 | 1).U8(rows.size()).Str(packed);
  Event e = h.One(MakeEvent(167, body.str(), true));  // UPDATE_ROWS_COMPRESSED_EVENT_V1
  const auto& r = std::get<RowsEvent>(e.body);
  EXPECT_EQ(r.kind, RowsKind::kUpdate);
  EXPECT_EQ(r.version, 1);
  EXPECT_EQ(r.columns_before, "\x03");
  EXPECT_EQ(r.columns_after, "\x03");
  EXPECT_EQ(r.rows, rows);

  Buf wrong_size;
  wrong_size.U48(3).U16(1).Packed(2).U8(0x03).U8(0x80 | 1).U8(rows.size() - 1).Str(packed);
  Status s = h.FeedStatus(MakeEvent(166, wrong_size.str(), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  Buf no_header;
  no_header.U48(3).U16(1).Packed(2).U8(0x03).U8(0x01).Str(packed);
  s = h.FeedStatus(MakeEvent(166, no_header.str(), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

// ---- TRANSACTION_PAYLOAD
// -------------------------------------------------------------------------

TEST(BinlogDecoderTest, CompressedTransactionPayloadYieldsInnerEvents) {
  std::vector<std::string> top;
  std::vector<std::string> inner;
  int raw_events = 0;
  {
    auto source =
        FileBinlogSource::Open({FixturePath("mysql-binlog-connector-java/mysql-bin.compressed")});
    ASSERT_TRUE(source.ok());
    RawEvent raw;
    BinlogDecoder decoder;
    while (true) {
      auto got = (*source)->Next(&raw);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      if (!*got) break;
      ++raw_events;
      top.push_back(EventTypeName(static_cast<uint8_t>(raw.data[4])));
      ASSERT_TRUE(decoder.Feed(raw).ok());
      Event e;
      while (true) {
        auto next = decoder.Next(&e);
        ASSERT_TRUE(next.ok()) << next.status().ToString();
        if (!*next) break;
        if (e.in_payload) {
          inner.push_back(EventTypeName(e.header.type));
          EXPECT_EQ(e.position.offset, raw.offset);
          EXPECT_EQ(e.next_offset, raw.next_offset);
          EXPECT_EQ(e.header.log_pos, 0u);
          if (const auto* r = std::get_if<RowsEvent>(&e.body)) {
            EXPECT_EQ(r->table->table, "movies");
            EXPECT_EQ(r->kind, RowsKind::kUpdate);
          }
        }
      }
    }
  }
  EXPECT_EQ(raw_events, 5);
  EXPECT_EQ(top[3], "TRANSACTION_PAYLOAD_EVENT");
  EXPECT_EQ(inner, (std::vector<std::string>{"QUERY_EVENT", "TABLE_MAP_EVENT", "UPDATE_ROWS_EVENT",
                                             "XID_EVENT"}));

  inner.clear();
  Status s = ForEachEvent("rust_mysql_common/transaction_compression.000001", [&](const Event& e) {
    if (e.in_payload) inner.push_back(EventTypeName(e.header.type));
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(inner, (std::vector<std::string>{"QUERY_EVENT", "TABLE_MAP_EVENT", "WRITE_ROWS_EVENT",
                                             "XID_EVENT"}));
}

std::string InnerTransaction() {
  std::string inner;
  inner += MakeEvent(2, QueryBody("db", "BEGIN"), false);
  inner += MakeEvent(19, TableMapBody(4), false);
  inner += MakeEvent(30, Buf().U48(4).U16(1).U16(2).Packed(2).U8(3).Str("ROWS").str(), false);
  inner += MakeEvent(16, Buf().U64(88).str(), false);
  return inner;
}

std::string PayloadBody(uint64_t compression, std::string_view payload, uint64_t uncompressed) {
  auto field = [](Buf& b, uint64_t type, uint64_t value) {
    Buf v;
    v.Packed(value);
    b.Packed(type).Packed(v.size()).Str(v.str());
  };
  Buf b;
  field(b, 2, compression);
  field(b, 3, uncompressed);
  field(b, 1, payload.size());
  b.Packed(0).Str(payload);
  return b.str();
}

TEST(BinlogDecoderTest, TransactionPayloadWithoutCompression) {
  std::string inner = InnerTransaction();
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  uint64_t offset = h.offset();
  auto events = h.Feed(MakeEvent(40, PayloadBody(255, inner, inner.size()), true));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 4u);
  for (const Event& e : *events) {
    EXPECT_TRUE(e.in_payload);
    EXPECT_EQ(e.position.offset, offset);
  }
  EXPECT_EQ(std::get<QueryEvent>((*events)[0].body).query, "BEGIN");
  EXPECT_EQ(std::get<RowsEvent>((*events)[2].body).rows, "ROWS");
  EXPECT_EQ(std::get<XidEvent>((*events)[3].body).xid, 88u);
}

TEST(BinlogDecoderTest, TransactionPayloadWithZstd) {
  std::string inner;
  for (int i = 0; i < 50; ++i) inner += InnerTransaction();
  std::string packed(ZSTD_compressBound(inner.size()), '\0');
  size_t n = ZSTD_compress(packed.data(), packed.size(), inner.data(), inner.size(), 3);
  ASSERT_FALSE(ZSTD_isError(n));
  packed.resize(n);
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  auto events = h.Feed(MakeEvent(40, PayloadBody(0, packed, inner.size()), true));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  EXPECT_EQ(events->size(), 200u);

  // Wrong uncompressed size, damaged frame, truncated frame, unknown algorithm.
  Status s = h.FeedStatus(MakeEvent(40, PayloadBody(0, packed, inner.size() + 1), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  std::string damaged = packed;
  damaged[0] ^= 0x5a;  // the frame magic
  s = h.FeedStatus(MakeEvent(40, PayloadBody(0, damaged, inner.size()), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  s = h.FeedStatus(
      MakeEvent(40, PayloadBody(0, packed.substr(0, packed.size() / 2), inner.size()), true));
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  s = h.FeedStatus(MakeEvent(40, PayloadBody(7, packed, inner.size()), true));
  EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
  // Inner events that do not tile the payload.
  std::string ragged = inner.substr(0, inner.size() - 3);
  auto bad = h.Feed(MakeEvent(40, PayloadBody(255, ragged, ragged.size()), true));
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsCorruption()) << bad.status().ToString();
}

// ---- Other events
// --------------------------------------------------------------------------------

TEST(BinlogDecoderTest, SmallEventsAreDecoded) {
  Harness h;
  ASSERT_TRUE(h.Feed(MakeFde("8.0.32", 1, MysqlPostHeaders())).ok());
  Event e = h.One(MakeEvent(4, Buf().U64(4).Str("binlog.000002").str(), true));
  EXPECT_EQ(std::get<RotateEvent>(e.body), (RotateEvent{4, "binlog.000002"}));
  e = h.One(MakeEvent(5, Buf().U8(2).U64(1000).str(), true));
  EXPECT_EQ(std::get<IntvarEvent>(e.body), (IntvarEvent{2, 1000}));
  e = h.One(MakeEvent(13, Buf().U64(11).U64(22).str(), true));
  EXPECT_EQ(std::get<RandEvent>(e.body), (RandEvent{11, 22}));
  e = h.One(MakeEvent(14, Buf().U32(3).Str("foo").U8(1).str(), true));
  EXPECT_EQ(std::get<UserVarEvent>(e.body), (UserVarEvent{"foo", true}));
  e = h.One(MakeEvent(14, Buf().U32(1).Str("v").U8(0).U8(0).U32(33).U32(1).Str("x").str(), true));
  EXPECT_EQ(std::get<UserVarEvent>(e.body), (UserVarEvent{"v", false}));
  e = h.One(MakeEvent(29, Buf().U8(5).Str("INSERT INTO t VALUES (1)").str(), true));
  EXPECT_EQ(std::get<RowsQueryEvent>(e.body).query, "INSERT INTO t VALUES (1)");
  e = h.One(MakeEvent(38, Buf().U8(0).U32(1).U32(2).U32(1).Str("gtb").str(), true));
  EXPECT_EQ(std::get<XaPrepareEvent>(e.body), (XaPrepareEvent{false, 1, "gt", "b"}));
  e = h.One(MakeEvent(26, Buf().U16(1).U8(4).Str("LOST").str(), true));
  EXPECT_EQ(std::get<IncidentEvent>(e.body), (IncidentEvent{1, "LOST"}));
  e = h.One(MakeEvent(27, "binlog.000009", true, 0, 4096));
  EXPECT_EQ(std::get<HeartbeatEvent>(e.body), (HeartbeatEvent{"binlog.000009", 4096}));
  Buf hb2;
  hb2.Packed(1).Packed(13).Str("binlog.000010").Packed(2).Packed(4).Packed(70000).Packed(0);
  e = h.One(MakeEvent(41, hb2.str(), true));
  EXPECT_EQ(std::get<HeartbeatEvent>(e.body), (HeartbeatEvent{"binlog.000010", 70000}));
  e = h.One(MakeEvent(3, "", true));
  EXPECT_TRUE(std::holds_alternative<StopEvent>(e.body));

  // Lengths that overrun the event.
  EXPECT_TRUE(h.FeedStatus(MakeEvent(14, Buf().U32(100).Str("x").str(), true)).IsCorruption());
  EXPECT_TRUE(
      h.FeedStatus(MakeEvent(38, Buf().U8(0).U32(1).U32(65).U32(0).str(), true)).IsCorruption());
  EXPECT_TRUE(h.FeedStatus(MakeEvent(16, Buf().U32(1).str(), true)).IsCorruption());

  Harness maria;
  ASSERT_TRUE(maria.Feed(MakeFde("10.11.6-MariaDB-log", 1, MariadbPostHeaders())).ok());
  e = maria.One(MakeEvent(161, Buf().U32(13).Str("mysql-bin.007").str(), true));
  EXPECT_EQ(std::get<BinlogCheckpointEvent>(e.body).file, "mysql-bin.007");
  e = maria.One(MakeEvent(160, "insert into t values (1)", true));
  EXPECT_EQ(std::get<RowsQueryEvent>(e.body).query, "insert into t values (1)");
}

TEST(BinlogDecoderTest, RecordedIncidentAndUserVariables) {
  std::vector<IncidentEvent> incidents;
  Status s = ForEachEvent("rust_mysql_common/bug40482-bin.000001", [&](const Event& e) {
    if (const auto* i = std::get_if<IncidentEvent>(&e.body)) incidents.push_back(*i);
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  // MySQL bug #40482: an INCIDENT with an out-of-range number (66) crashed readers; the number
  // is reported as it is, with its empty message.
  ASSERT_EQ(incidents.size(), 1u);
  EXPECT_EQ(incidents[0].incident, 66);
  EXPECT_EQ(incidents[0].message, "");

  std::vector<std::string> names;
  s = ForEachEvent("mysql-cdc-rs/events/5.7/14_user_var/log.bin", [&](const Event& e) {
    if (const auto* u = std::get_if<UserVarEvent>(&e.body)) names.push_back(u->name);
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(names.size(), 3u);
}

// ---- Robustness
// ----------------------------------------------------------------------------------

// Every error the decoder may return for damaged input.
bool IsDecodeError(const Status& s) {
  return s.code() == Status::Code::kCorruption || s.code() == Status::Code::kUnsupported;
}

// Feeds `events` (whole raw events) to a fresh decoder with checksums off, draining each.
Status FeedAll(const std::vector<std::string>& events) {
  BinlogDecoder decoder(DecoderOptions{.verify_checksum = false});
  uint64_t offset = 4;
  for (const std::string& bytes : events) {
    RawEvent raw{bytes, "fuzz.000001", offset, offset + bytes.size()};
    offset += bytes.size();
    RS_RETURN_IF_ERROR(decoder.Feed(raw));
    Event e;
    while (true) {
      RS_ASSIGN_OR_RETURN(bool got, decoder.Next(&e));
      if (!got) break;
    }
  }
  return Status::Ok();
}

TEST(BinlogDecoderTest, TruncatedEventBodiesAreErrorsNeverCrashes) {
  for (const char* fixture : kAllFixtures) {
    std::vector<RawCopy> raw = RawEvents(fixture);
    std::vector<std::string> prefix;
    for (size_t i = 0; i < raw.size(); ++i) {
      // Event i cut to every shorter length, its length field patched to match.
      for (size_t len = kEventHeaderSize; len < raw[i].bytes.size(); ++len) {
        std::vector<std::string> events = prefix;
        std::string cut = raw[i].bytes.substr(0, len);
        cut[9] = static_cast<char>(len & 0xff);
        cut[10] = static_cast<char>((len >> 8) & 0xff);
        cut[11] = static_cast<char>((len >> 16) & 0xff);
        cut[12] = 0;
        events.push_back(cut);
        Status s = FeedAll(events);
        EXPECT_TRUE(s.ok() || IsDecodeError(s))
            << fixture << " event " << i << " len " << len << ": " << s.ToString();
      }
      prefix.push_back(raw[i].bytes);
    }
  }
}

TEST(BinlogDecoderTest, DamagedBytesAreErrorsNeverCrashes) {
  std::mt19937 rng(20240601);
  for (const char* fixture : kAllFixtures) {
    std::vector<RawCopy> raw = RawEvents(fixture);
    std::vector<std::string> events;
    for (const RawCopy& r : raw) events.push_back(r.bytes);
    for (int round = 0; round < 300; ++round) {
      std::vector<std::string> damaged = events;
      size_t victim = rng() % damaged.size();
      std::string& e = damaged[victim];
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        size_t at = 4 + rng() % (e.size() - 4);  // anything but the timestamp ...
        if (at >= 9 && at < 13) continue;        // ... and the length field
        e[at] = static_cast<char>(rng());
      }
      Status s = FeedAll(damaged);
      EXPECT_TRUE(s.ok() || IsDecodeError(s))
          << fixture << " round " << round << ": " << s.ToString();
    }
  }
}

// ---- Speed
// ---------------------------------------------------------------------------------------

TEST(BinlogDecoderTest, RowsPathAllocatesNothingPerEvent) {
  std::array<uint8_t, 16> uuid{};
  uuid[0] = 1;
  std::string fde = MakeFde("8.0.32", 1, MysqlPostHeaders());
  std::string gtid = MakeEvent(
      33, Buf().U8(0).Str(std::string(16, '\x01')).U64(1).U8(2).U64(0).U64(1).str(), true);
  std::string begin = MakeEvent(2, QueryBody("db", "BEGIN", Buf().U8(0).U32(0).str()), true);
  std::string map = MakeEvent(19, TableMapBody(12), true);
  std::string rows = MakeEvent(
      30, Buf().U48(12).U16(1).U16(2).Packed(2).U8(3).Str(std::string(40, 'r')).str(), true);
  std::string xid = MakeEvent(16, Buf().U64(1).str(), true);
  const std::string* txn[] = {&gtid, &begin, &map, &rows, &rows, &rows, &xid};

  BinlogDecoder decoder;
  Event event;
  auto feed = [&](const std::string& bytes) {
    RawEvent raw{bytes, "binlog.000001", 4, 4 + bytes.size()};
    ASSERT_TRUE(decoder.Feed(raw).ok());
    while (true) {
      auto got = decoder.Next(&event);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      if (!*got) break;
    }
  };
  feed(fde);
  for (int i = 0; i < 3; ++i) {
    for (const std::string* e : txn) feed(*e);
  }
  uint64_t before = g_allocations.load();
  constexpr int kTransactions = 2000;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kTransactions; ++i) {
    for (const std::string* e : txn) feed(*e);
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(g_allocations.load() - before, 0u);
  double seconds = std::chrono::duration<double>(elapsed).count();
  double events_per_second = kTransactions * std::size(txn) / seconds;
  RecordProperty("events_per_second", std::to_string(static_cast<int64_t>(events_per_second)));
  // CRC32 verification included; a loose floor that still catches a per-event allocation or
  // copy regression on a loaded machine.
  EXPECT_GT(events_per_second, 300000.0);
}

}  // namespace
}  // namespace replsync::capture
