// BinlogDecoder: byte layouts follow MySQL libbinlogevents (control_events, statement_events,
// rows_event, the mysql::serialization library for GTID_TAGGED) and the MariaDB knowledge base
// pages of the replication protocol. Every read is bounds-checked: a length or count that
// overruns the event is Corruption, never a read past the end.
#include "capture/binlog/binlog_decoder.h"

#include <fmt/format.h>
#include <zlib.h>

#include "sync/crc32.h"
#include "sync/zstd.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cstring>
#include <iterator>

namespace replsync::capture {

namespace {

// Largest decompressed MariaDB event body and TRANSACTION_PAYLOAD we accept (a corrupt length
// must not make us allocate without bound).
constexpr uint64_t kMaxInflatedSize = uint64_t{1} << 30;
constexpr uint64_t kMaxPayloadSize = uint64_t{4} << 30;
// TABLE_MAP cache: dropped at a statement boundary once it holds this many table ids (table
// ids grow for as long as the server runs).
constexpr size_t kMaxCachedTables = 1024;
constexpr uint8_t kFlagBinlogInUse = 0x01;  // LOG_EVENT_BINLOG_IN_USE_F

// A bounds-checked little-endian reader. A read past the end marks the reader failed, moves
// it to the end and returns zero / empty; callers test failed() before trusting what they got.
class ByteReader {
 public:
  ByteReader() = default;
  explicit ByteReader(std::string_view data)
      : p_(reinterpret_cast<const uint8_t*>(data.data())), end_(p_ + data.size()) {}

  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool empty() const { return p_ == end_; }
  bool failed() const { return failed_; }
  size_t position(std::string_view whole) const {
    return static_cast<size_t>(reinterpret_cast<const char*>(p_) - whole.data());
  }
  uint8_t Peek() const { return p_ < end_ ? *p_ : 0; }

  bool Need(uint64_t n) {
    if (n > remaining()) {
      failed_ = true;
      p_ = end_;
      return false;
    }
    return true;
  }
  uint64_t UInt(size_t n) {
    if (!Need(n)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{p_[i]} << (8 * i);
    p_ += n;
    return v;
  }
  uint64_t UIntBigEndian(size_t n) {
    if (!Need(n)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | p_[i];
    p_ += n;
    return v;
  }
  uint8_t U8() { return static_cast<uint8_t>(UInt(1)); }
  uint16_t U16() { return static_cast<uint16_t>(UInt(2)); }
  uint32_t U24() { return static_cast<uint32_t>(UInt(3)); }
  uint32_t U32() { return static_cast<uint32_t>(UInt(4)); }
  uint64_t U48() { return UInt(6); }
  uint64_t U64() { return UInt(8); }
  std::string_view Bytes(uint64_t n) {
    if (!Need(n)) return {};
    std::string_view v(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
    p_ += n;
    return v;
  }
  std::string_view Rest() { return Bytes(remaining()); }
  void Skip(uint64_t n) {
    if (Need(n)) p_ += n;
  }
  // A NUL-terminated string; fails when there is no NUL before the end.
  std::string_view CString() {
    const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(p_, 0, remaining()));
    if (nul == nullptr) {
      failed_ = true;
      p_ = end_;
      return {};
    }
    std::string_view v(reinterpret_cast<const char*>(p_), static_cast<size_t>(nul - p_));
    p_ = nul + 1;
    return v;
  }
  // MySQL packed integer (net_field_length): < 251 in one byte; 252, 253, 254 prefix 2, 3 and 8
  // bytes. 251 (NULL) and 255 are invalid where a length or count is expected.
  uint64_t Packed() {
    uint8_t b = U8();
    if (b < 251) return b;
    if (b == 252) return UInt(2);
    if (b == 253) return UInt(3);
    if (b == 254) return UInt(8);
    failed_ = true;
    p_ = end_;
    return 0;
  }
  // mysql::serialization variable-length unsigned integer: the count of trailing one bits in
  // the first byte is the number of bytes that follow; the value is the little-endian number
  // shifted right by the byte count. 0xFF is followed by the plain 8-byte value.
  uint64_t VarUInt() {
    if (!Need(1)) return 0;
    int ones = std::countr_one(static_cast<unsigned>(*p_));
    if (ones >= 8) {
      if (!Need(9)) return 0;
      ++p_;
      return UInt(8);
    }
    size_t n = static_cast<size_t>(ones) + 1;
    if (!Need(n)) return 0;
    uint64_t v = UInt(n);
    return v >> n;
  }
  // Signed variant: zig-zag encoded (sign in the lowest bit).
  int64_t VarInt() {
    uint64_t u = VarUInt();
    return (u & 1) ? -static_cast<int64_t>(u >> 1) - 1 : static_cast<int64_t>(u >> 1);
  }

 private:
  const uint8_t* p_ = nullptr;
  const uint8_t* end_ = nullptr;
  bool failed_ = false;
};

uint32_t LoadLe32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return uint32_t{u[0]} | uint32_t{u[1]} << 8 | uint32_t{u[2]} << 16 | uint32_t{u[3]} << 24;
}

// The server version string "X.Y.Z..." as X*65536 + Y*256 + Z (0 when it does not parse).
uint32_t VersionProduct(std::string_view version) {
  uint32_t parts[3] = {0, 0, 0};
  size_t i = 0;
  for (int part = 0; part < 3; ++part) {
    size_t start = i;
    uint32_t v = 0;
    while (i < version.size() && version[i] >= '0' && version[i] <= '9' && i - start < 4) {
      v = v * 10 + static_cast<uint32_t>(version[i] - '0');
      ++i;
    }
    if (i == start) break;
    parts[part] = v;
    if (i < version.size() && version[i] == '.') {
      ++i;
    } else {
      break;
    }
  }
  return (parts[0] << 16) | (parts[1] << 8) | parts[2];
}

bool IsMariadbVersion(std::string_view version) {
  return version.find("MariaDB") != std::string_view::npos;
}

// Checksums exist from MySQL 5.6.1 and MariaDB 5.3; older FORMAT_DESCRIPTIONs carry no
// algorithm byte (what sits there is unrelated data).
bool VersionHasChecksum(std::string_view version) {
  uint32_t product = VersionProduct(version);
  if (IsMariadbVersion(version)) return product >= ((5u << 16) | (3u << 8));
  return product >= ((5u << 16) | (6u << 8) | 1u);
}

// The server version inside a FORMAT_DESCRIPTION event (whole event), up to its first NUL.
std::string_view FdeServerVersion(std::string_view event) {
  if (event.size() < kEventHeaderSize + 2 + 50) return {};
  std::string_view v = event.substr(kEventHeaderSize + 2, 50);
  size_t nul = v.find('\0');
  return nul == std::string_view::npos ? v : v.substr(0, nul);
}

// Binlogs from some pre-GA 5.1/5.2 development trees ("5.1.1-a_drop5p3" .. "5.2.2-a_drop6p13")
// numbered the events after FORMAT_DESCRIPTION differently: TABLE_MAP was 16, the rows events
// 17-19, XID 20, BEGIN_LOAD_QUERY 21 and EXECUTE_LOAD_QUERY 22. MySQL's Format_description
// constructor detects these versions the same way and permutes the type codes.
bool VersionHasPermutedTypes(std::string_view v) {
  if (v.size() < 13 || v[0] != '5' || v[1] != '.' || v[3] != '.' || v.substr(5, 7) != "-a_drop") {
    return false;
  }
  return (v[2] == '1' && v[4] >= '1' && v[4] <= '5' && v[12] == '5') ||
         (v[2] == '2' && v[4] >= '0' && v[4] <= '2' && v[12] == '6');
}

// Maps a type code of those trees to today's.
uint8_t PermutedType(uint8_t type) {
  static constexpr uint8_t kMap[] = {19, 20, 21, 22, 16, 17, 18};  // for 16 .. 22
  return type >= 16 && type <= 22 ? kMap[type - 16] : type;
}

ChecksumAlg ToChecksumAlg(uint8_t b) {
  switch (b) {
    case 0:
      return ChecksumAlg::kOff;
    case 1:
      return ChecksumAlg::kCrc32;
    default:
      return ChecksumAlg::kUndefined;
  }
}

std::string HexLower(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) {
    auto b = static_cast<uint8_t>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

// v4 post-header lengths used when the FORMAT_DESCRIPTION does not list a type.
uint8_t DefaultPostHeaderLength(uint8_t type) {
  switch (static_cast<EventType>(type)) {
    case EventType::kQuery:
    case EventType::kQueryCompressed:
      return 13;
    case EventType::kRotate:
      return 8;
    case EventType::kTableMap:
      return 8;
    case EventType::kPreGaWriteRows:
    case EventType::kPreGaUpdateRows:
    case EventType::kPreGaDeleteRows:
    case EventType::kWriteRowsV1:
    case EventType::kUpdateRowsV1:
    case EventType::kDeleteRowsV1:
    case EventType::kWriteRowsCompressedV1:
    case EventType::kUpdateRowsCompressedV1:
    case EventType::kDeleteRowsCompressedV1:
      return 8;
    case EventType::kWriteRowsV2:
    case EventType::kUpdateRowsV2:
    case EventType::kDeleteRowsV2:
    case EventType::kPartialUpdateRows:
    case EventType::kWriteRowsCompressed:
    case EventType::kUpdateRowsCompressed:
    case EventType::kDeleteRowsCompressed:
      return 10;
    case EventType::kIncident:
      return 2;
    case EventType::kBinlogCheckpoint:
      return 4;
    default:
      return 0;
  }
}

bool IsNumericType(ColumnType t) {
  switch (t) {
    case ColumnType::kTiny:
    case ColumnType::kShort:
    case ColumnType::kInt24:
    case ColumnType::kLong:
    case ColumnType::kLongLong:
    case ColumnType::kNewDecimal:
    case ColumnType::kFloat:
    case ColumnType::kDouble:
      return true;
    default:
      return false;
  }
}

// Columns that DEFAULT_CHARSET / COLUMN_CHARSET describe (is_character_type in both servers'
// log_event code). MariaDB counts GEOMETRY among them (its geometry field is a blob); MySQL
// does not.
bool IsCharacterType(ColumnType t, ServerFlavor flavor) {
  switch (t) {
    case ColumnType::kString:
    case ColumnType::kVarString:
    case ColumnType::kVarchar:
    case ColumnType::kBlob:
    case ColumnType::kTinyBlob:
    case ColumnType::kMediumBlob:
    case ColumnType::kLongBlob:
    case ColumnType::kVector:  // MySQL 9 counts VECTOR among them; MariaDB has no such type
      return true;
    case ColumnType::kGeometry:
      return flavor == ServerFlavor::kMariadb;
    default:
      return false;
  }
}

bool BitMsbFirst(std::string_view bits, size_t i) {
  return (static_cast<uint8_t>(bits[i / 8]) >> (7 - i % 8)) & 1;
}

}  // namespace

std::string EventTypeName(uint8_t type) {
  // Index: type code (MySQL 0..42), type code - 160 (MariaDB 160..171).
  static constexpr const char* kMysql[] = {
      nullptr,
      "START_EVENT_V3",
      "QUERY_EVENT",
      "STOP_EVENT",
      "ROTATE_EVENT",
      "INTVAR_EVENT",
      "LOAD_EVENT",
      "SLAVE_EVENT",
      "CREATE_FILE_EVENT",
      "APPEND_BLOCK_EVENT",
      "EXEC_LOAD_EVENT",
      "DELETE_FILE_EVENT",
      "NEW_LOAD_EVENT",
      "RAND_EVENT",
      "USER_VAR_EVENT",
      "FORMAT_DESCRIPTION_EVENT",
      "XID_EVENT",
      "BEGIN_LOAD_QUERY_EVENT",
      "EXECUTE_LOAD_QUERY_EVENT",
      "TABLE_MAP_EVENT",
      "PRE_GA_WRITE_ROWS_EVENT",
      "PRE_GA_UPDATE_ROWS_EVENT",
      "PRE_GA_DELETE_ROWS_EVENT",
      "WRITE_ROWS_EVENT_V1",
      "UPDATE_ROWS_EVENT_V1",
      "DELETE_ROWS_EVENT_V1",
      "INCIDENT_EVENT",
      "HEARTBEAT_LOG_EVENT",
      "IGNORABLE_LOG_EVENT",
      "ROWS_QUERY_LOG_EVENT",
      "WRITE_ROWS_EVENT",
      "UPDATE_ROWS_EVENT",
      "DELETE_ROWS_EVENT",
      "GTID_LOG_EVENT",
      "ANONYMOUS_GTID_LOG_EVENT",
      "PREVIOUS_GTIDS_LOG_EVENT",
      "TRANSACTION_CONTEXT_EVENT",
      "VIEW_CHANGE_EVENT",
      "XA_PREPARE_LOG_EVENT",
      "PARTIAL_UPDATE_ROWS_EVENT",
      "TRANSACTION_PAYLOAD_EVENT",
      "HEARTBEAT_LOG_EVENT_V2",
      "GTID_TAGGED_LOG_EVENT",
  };
  static constexpr const char* kMariadb[] = {
      "ANNOTATE_ROWS_EVENT",
      "BINLOG_CHECKPOINT_EVENT",
      "GTID_EVENT",
      "GTID_LIST_EVENT",
      "START_ENCRYPTION_EVENT",
      "QUERY_COMPRESSED_EVENT",
      "WRITE_ROWS_COMPRESSED_EVENT_V1",
      "UPDATE_ROWS_COMPRESSED_EVENT_V1",
      "DELETE_ROWS_COMPRESSED_EVENT_V1",
      "WRITE_ROWS_COMPRESSED_EVENT",
      "UPDATE_ROWS_COMPRESSED_EVENT",
      "DELETE_ROWS_COMPRESSED_EVENT",
  };
  if (type < std::size(kMysql) && kMysql[type] != nullptr) return kMysql[type];
  if (type >= 160 && type - 160u < std::size(kMariadb)) return kMariadb[type - 160];
  return "UNKNOWN_EVENT(" + std::to_string(type) + ")";
}

struct BinlogDecoder::ZstdContext {
  ZstdDCtx dctx;
};

BinlogDecoder::BinlogDecoder(DecoderOptions options) : options_(options) {}
BinlogDecoder::~BinlogDecoder() = default;

const TableMap* BinlogDecoder::FindTable(uint64_t table_id) const {
  auto it = table_cache_.find(table_id);
  return it == table_cache_.end() ? nullptr : it->second.table.get();
}

Status BinlogDecoder::Corrupt(std::string_view what) const {
  return Status::Corruption(
      fmt::format("{}:{} {}: {}", cur_file_, cur_offset_, EventTypeName(cur_type_), what));
}

Status BinlogDecoder::Unsupported(std::string_view what) const {
  return Status::Unsupported(
      fmt::format("{}:{} {}: {}", cur_file_, cur_offset_, EventTypeName(cur_type_), what));
}

uint8_t BinlogDecoder::PostHeaderLength(uint8_t type) const {
  if (type >= 1 && static_cast<size_t>(type - 1) < format_.post_header_lengths.size()) {
    return format_.post_header_lengths[type - 1];
  }
  return DefaultPostHeaderLength(type);
}

Status BinlogDecoder::CheckEvent(std::string_view data, size_t* length_without_crc) {
  if (data.size() < kEventHeaderSize) {
    return Corrupt(
        fmt::format("truncated event: {} bytes, shorter than the 19-byte header", data.size()));
  }
  uint32_t size = LoadLe32(data.data() + 9);
  if (size != data.size()) {
    return Corrupt(
        fmt::format("event length field says {} bytes but the event has {}", size, data.size()));
  }
  ChecksumAlg alg = format_.checksum;
  size_t trailer = 0;  // bytes after the body: the CRC (or the FDE's unused CRC slot)
  if (cur_type_ == static_cast<uint8_t>(EventType::kFormatDescription)) {
    alg = ChecksumAlg::kOff;
    std::string_view version = FdeServerVersion(data);
    if (VersionHasChecksum(version)) {
      if (data.size() < kEventHeaderSize + 57 + 5) {
        return Corrupt(
            fmt::format("{} bytes: too short for a {} FORMAT_DESCRIPTION", data.size(), version));
      }
      alg = ToChecksumAlg(static_cast<uint8_t>(data[data.size() - 5]));
      trailer = kChecksumSize;  // present even when the algorithm is OFF
    }
  } else if (alg == ChecksumAlg::kCrc32) {
    trailer = kChecksumSize;
  }
  if (data.size() < kEventHeaderSize + trailer) {
    return Corrupt(fmt::format("event of {} bytes is too short for its CRC32", data.size()));
  }
  if (alg == ChecksumAlg::kCrc32 && options_.verify_checksum) {
    size_t n = data.size() - kChecksumSize;
    uint32_t expected = LoadLe32(data.data() + n);
    const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
    uint32_t crc;
    if (cur_type_ == static_cast<uint8_t>(EventType::kFormatDescription) &&
        (static_cast<uint8_t>(data[17]) & kFlagBinlogInUse) != 0) {
      // The server computes the FORMAT_DESCRIPTION's checksum with LOG_EVENT_BINLOG_IN_USE_F
      // clear: the flag is reset in place when the binlog is closed.
      auto flags = static_cast<uint8_t>(bytes[17] & ~kFlagBinlogInUse);
      crc = Crc32(0, bytes, 17);
      crc = Crc32(crc, &flags, 1);
      crc = Crc32(crc, bytes + 18, n - 18);
    } else {
      crc = Crc32(0, bytes, n);
    }
    auto actual = static_cast<uint32_t>(crc);
    if (expected != actual) {
      return Corrupt(
          fmt::format("CRC32 mismatch: expected 0x{:08x}, computed 0x{:08x}", expected, actual));
    }
  }
  *length_without_crc = data.size() - trailer;
  return Status::Ok();
}

Status BinlogDecoder::Feed(const RawEvent& raw) {
  has_pending_ = false;
  in_payload_ = false;
  payload_offset_ = 0;
  pending_ = raw;
  cur_file_ = raw.file;
  cur_offset_ = raw.offset;
  cur_type_ = raw.data.size() > 4 ? static_cast<uint8_t>(raw.data[4]) : 0;
  size_t length = 0;
  RS_RETURN_IF_ERROR(CheckEvent(raw.data, &length));
  if (cur_type_ == static_cast<uint8_t>(EventType::kTransactionPayload)) {
    // The FORMAT_DESCRIPTION lists a post-header length for this type, but the event has no
    // fixed post-header: its fields start right after the common header.
    size_t start = std::max<size_t>(kEventHeaderSize, format_.header_length);
    if (start > length) return Corrupt("event shorter than its post-header");
    RS_RETURN_IF_ERROR(UnpackPayload(raw.data.substr(start, length - start)));
    payload_position_.file.assign(raw.file);
    payload_position_.offset = raw.offset;
    payload_next_offset_ = raw.next_offset;
    payload_offset_ = 0;
    in_payload_ = true;
    return Status::Ok();
  }
  pending_length_ = length;
  has_pending_ = true;
  return Status::Ok();
}

Result<bool> BinlogDecoder::Next(Event* event) {
  if (in_payload_) {
    if (payload_offset_ >= payload_.size()) {
      in_payload_ = false;
      return false;
    }
    cur_file_ = payload_position_.file;
    cur_offset_ = payload_position_.offset;
    cur_type_ = static_cast<uint8_t>(EventType::kTransactionPayload);
    size_t rest = payload_.size() - payload_offset_;
    const char* p = payload_.data() + payload_offset_;
    if (rest < kEventHeaderSize) {
      in_payload_ = false;
      return Corrupt(fmt::format("inner event at payload byte {} truncated: {} bytes left",
                                 payload_offset_, rest));
    }
    uint32_t size = LoadLe32(p + 9);
    if (size < kEventHeaderSize || size > rest) {
      in_payload_ = false;
      return Corrupt(fmt::format("inner event at payload byte {} has length {} ({} bytes left)",
                                 payload_offset_, size, rest));
    }
    payload_offset_ += size;
    cur_type_ = static_cast<uint8_t>(p[4]);
    event->position.file.assign(payload_position_.file);
    event->position.offset = payload_position_.offset;
    event->next_offset = payload_next_offset_;
    event->in_payload = true;
    Status s = DecodeOne(std::string_view(p, size), event);
    if (!s.ok()) {
      in_payload_ = false;
      return s;
    }
    raw_event_ = std::string_view(p, size);
    return true;
  }
  if (!has_pending_) return false;
  has_pending_ = false;
  cur_file_ = pending_.file;
  cur_offset_ = pending_.offset;
  cur_type_ = static_cast<uint8_t>(pending_.data[4]);
  event->position.file.assign(pending_.file);
  event->position.offset = pending_.offset;
  event->next_offset = pending_.next_offset;
  event->in_payload = false;
  RS_RETURN_IF_ERROR(DecodeOne(pending_.data.substr(0, pending_length_), event));
  raw_event_ = pending_.data;
  return true;
}

Status BinlogDecoder::DecodeOne(std::string_view data, Event* event) {
  ByteReader r(data);
  EventHeader& h = event->header;
  h.timestamp = r.U32();
  h.type = r.U8();
  h.server_id = r.U32();
  h.event_size = r.U32();
  h.log_pos = r.U32();
  h.flags = r.U16();
  if (r.failed()) return Corrupt("truncated event header");
  if (permuted_types_) {
    h.type = PermutedType(h.type);
    cur_type_ = h.type;
  }
  size_t header_length = kEventHeaderSize;
  if (h.type != static_cast<uint8_t>(EventType::kFormatDescription) &&
      format_.header_length > kEventHeaderSize) {
    header_length = format_.header_length;
    if (header_length > data.size()) return Corrupt("event shorter than the common header");
  }
  return DecodeBody(h, data.substr(header_length), event);
}

Status BinlogDecoder::DecodeFormatDescription(std::string_view body, Event* event) {
  ByteReader r(body);
  FormatDescriptionEvent fde;
  fde.binlog_version = r.U16();
  std::string_view version = r.Bytes(50);
  fde.create_timestamp = r.U32();
  fde.header_length = r.U8();
  if (r.failed()) return Corrupt("truncated FORMAT_DESCRIPTION");
  size_t nul = version.find('\0');
  fde.server_version.assign(nul == std::string_view::npos ? version : version.substr(0, nul));
  if (fde.header_length < kEventHeaderSize) {
    return Corrupt(fmt::format("common header length {} is shorter than 19", fde.header_length));
  }
  std::string_view rest = r.Rest();
  fde.checksum = ChecksumAlg::kOff;
  if (VersionHasChecksum(fde.server_version) && !rest.empty()) {
    // CheckEvent removed the checksum slot; the algorithm byte ends the body.
    fde.checksum = ToChecksumAlg(static_cast<uint8_t>(rest.back()));
    rest.remove_suffix(1);
  }
  fde.post_header_lengths.assign(rest.begin(), rest.end());
  permuted_types_ = VersionHasPermutedTypes(fde.server_version);
  if (permuted_types_) {
    std::vector<uint8_t> lengths = fde.post_header_lengths;
    for (size_t i = 0; i < lengths.size(); ++i) {
      size_t to = PermutedType(static_cast<uint8_t>(i + 1)) - 1u;
      if (to < lengths.size()) fde.post_header_lengths[to] = lengths[i];
    }
  }
  fde.flavor = IsMariadbVersion(fde.server_version) ? ServerFlavor::kMariadb : ServerFlavor::kMysql;
  format_ = fde;
  event->body = std::move(fde);
  return Status::Ok();
}

Status BinlogDecoder::Inflate(std::string_view block, const char* what) {
  ByteReader r(block);
  uint8_t head = r.U8();
  if (r.failed() || (head & 0x80) == 0) {
    return Corrupt(fmt::format("compressed {} has no compression header", what));
  }
  unsigned alg = (head & 0x70) >> 4;
  if (alg != 0) return Unsupported(fmt::format("compressed {}: algorithm {}", what, alg));
  size_t lenlen = head & 0x07;
  if (lenlen < 1 || lenlen > 4) {
    return Corrupt(fmt::format("compressed {}: length of length {} not in 1..4", what, lenlen));
  }
  uint64_t size = r.UIntBigEndian(lenlen);
  if (r.failed()) return Corrupt(fmt::format("compressed {}: truncated header", what));
  if (size > kMaxInflatedSize) {
    return Corrupt(fmt::format("compressed {}: uncompressed size {} too large", what, size));
  }
  std::string_view src = r.Rest();
  inflated_.resize(static_cast<size_t>(size));
  uLongf out_len = static_cast<uLongf>(size);
  int rc = uncompress(reinterpret_cast<Bytef*>(inflated_.data()), &out_len,
                      reinterpret_cast<const Bytef*>(src.data()), static_cast<uLong>(src.size()));
  if (rc != Z_OK || out_len != size) {
    return Corrupt(fmt::format("compressed {} does not inflate (zlib {}, {} of {} bytes)", what, rc,
                               static_cast<uint64_t>(out_len), size));
  }
  return Status::Ok();
}

Status BinlogDecoder::UnpackPayload(std::string_view body) {
  ByteReader r(body);
  uint64_t payload_size = 0, compression = 0, uncompressed_size = 0;
  bool have_size = false, have_compression = false, have_uncompressed = false, ended = false;
  while (!r.empty()) {
    uint64_t field = r.Packed();
    if (r.failed()) break;
    if (field == 0) {
      ended = true;
      break;
    }
    uint64_t length = r.Packed();
    ByteReader value(r.Bytes(length));
    if (r.failed()) break;
    switch (field) {
      case 1:
        payload_size = value.Packed();
        have_size = true;
        break;
      case 2:
        compression = value.Packed();
        have_compression = true;
        break;
      case 3:
        uncompressed_size = value.Packed();
        have_uncompressed = true;
        break;
      default:
        break;  // unknown fields are skipped by their length
    }
    if (value.failed()) return Corrupt(fmt::format("payload header field {} is malformed", field));
  }
  if (r.failed() || !ended) return Corrupt("payload header is truncated");
  if (!have_size || !have_compression) {
    return Corrupt("payload header lacks the payload size or the compression type");
  }
  if (payload_size > r.remaining()) {
    return Corrupt(fmt::format("payload size {} exceeds the {} bytes left in the event",
                               payload_size, r.remaining()));
  }
  std::string_view data = r.Bytes(payload_size);
  if (compression == 255) {
    payload_.assign(data);
    return Status::Ok();
  }
  if (compression != 0) {
    return Unsupported(
        fmt::format("payload compression type {} (only zstd and none)", compression));
  }
  if (have_uncompressed && uncompressed_size > kMaxPayloadSize) {
    return Corrupt(fmt::format("payload uncompressed size {} too large", uncompressed_size));
  }
  if (!zstd_) {
    RS_ASSIGN_OR_RETURN(ZstdDCtx dctx, NewZstdDCtx());
    zstd_ = std::make_unique<ZstdContext>(ZstdContext{std::move(dctx)});
  }
  ZSTD_DCtx_reset(zstd_->dctx.get(), ZSTD_reset_session_only);
  // Start with the announced size (bounded: it may be corrupt) and grow while data comes out.
  size_t capacity = have_uncompressed
                        ? static_cast<size_t>(std::min<uint64_t>(
                              uncompressed_size, uint64_t{data.size()} * 64 + (1u << 20)))
                        : data.size() * 4 + 4096;
  if (capacity == 0) capacity = 64;
  payload_.resize(capacity);
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  size_t produced = 0;
  size_t last = 1;
  while (in.pos < in.size || last != 0) {
    if (produced == payload_.size()) {
      if (payload_.size() >= kMaxPayloadSize) return Corrupt("payload decompresses past 4 GiB");
      payload_.resize(std::min<size_t>(payload_.size() * 2, kMaxPayloadSize));
    }
    ZSTD_outBuffer out{payload_.data() + produced, payload_.size() - produced, 0};
    size_t in_before = in.pos;
    last = ZSTD_decompressStream(zstd_->dctx.get(), &out, &in);
    if (ZSTD_isError(last)) {
      return Corrupt(fmt::format("payload does not decompress: {}", ZSTD_getErrorName(last)));
    }
    produced += out.pos;
    if (last != 0 && in.pos == in.size && out.pos == 0 && in.pos == in_before &&
        produced < payload_.size()) {
      return Corrupt("payload zstd frame is truncated");
    }
  }
  payload_.resize(produced);
  if (have_uncompressed && produced != uncompressed_size) {
    return Corrupt(fmt::format("payload decompressed to {} bytes, header says {}", produced,
                               uncompressed_size));
  }
  return Status::Ok();
}

Status BinlogDecoder::DecodeQuery(std::string_view body, bool compressed, Event* event) {
  ByteReader r(body);
  uint8_t phl = PostHeaderLength(cur_type_);
  QueryEvent& q = event->body.emplace<QueryEvent>();
  q.thread_id = r.U32();
  q.exec_time = r.U32();
  uint8_t db_len = r.U8();
  q.error_code = r.U16();
  uint16_t status_len = 0;
  if (phl >= 13) {
    status_len = r.U16();
    r.Skip(phl - 13);
  }
  if (r.failed()) return Corrupt("truncated post-header");
  std::string_view status = r.Bytes(status_len);
  if (r.failed()) {
    return Corrupt(fmt::format("status variables ({} bytes) overrun the event", status_len));
  }
  std::string_view db = r.Bytes(db_len);
  uint8_t nul = r.U8();
  if (r.failed())
    return Corrupt(fmt::format("database name ({} bytes) overruns the event", db_len));
  if (nul != 0) return Corrupt("database name is not NUL-terminated");
  q.db.assign(db);
  std::string_view query = r.Rest();
  if (compressed) {
    RS_RETURN_IF_ERROR(Inflate(query, "query"));
    q.query.assign(inflated_);
  } else {
    q.query.assign(query);
  }

  // Status variables: a code byte, then a value whose layout the code fixes. An unknown code
  // (or COMMIT_TS / COMMIT_TS2, which have no defined layout) ends parsing: the rest of the
  // block is skipped, as the server itself does.
  ByteReader s(status);
  QueryStatusVars& v = q.status;
  bool stop = false;
  while (!s.empty() && !stop) {
    uint8_t code = s.U8();
    switch (code) {
      case 0:
        v.flags2 = s.U32();
        break;
      case 1:
        v.sql_mode = s.U64();
        break;
      case 2: {  // Q_CATALOG: length, bytes, NUL
        uint8_t n = s.U8();
        v.catalog = std::string(s.Bytes(n));
        s.Skip(1);
        break;
      }
      case 3:
        v.auto_increment_increment = s.U16();
        v.auto_increment_offset = s.U16();
        break;
      case 4:
        v.charset_client = s.U16();
        v.collation_connection = s.U16();
        v.collation_server = s.U16();
        break;
      case 5: {
        uint8_t n = s.U8();
        v.time_zone = std::string(s.Bytes(n));
        break;
      }
      case 6: {
        uint8_t n = s.U8();
        v.catalog = std::string(s.Bytes(n));
        break;
      }
      case 7:
        v.lc_time_names = s.U16();
        break;
      case 8:
        v.collation_database = s.U16();
        break;
      case 9:
        v.table_map_for_update = s.U64();
        break;
      case 10:  // Q_MASTER_DATA_WRITTEN
        s.Skip(4);
        break;
      case 11: {
        uint8_t n = s.U8();
        v.invoker_user = std::string(s.Bytes(n));
        n = s.U8();
        v.invoker_host = std::string(s.Bytes(n));
        break;
      }
      case 12: {
        uint8_t count = s.U8();
        v.updated_db_names.clear();
        if (count != 254) {  // 254: more databases than the event lists
          for (uint8_t i = 0; i < count && !s.failed(); ++i) {
            v.updated_db_names.emplace_back(s.CString());
          }
        }
        break;
      }
      case 13:
      case 128:  // MariaDB Q_HRNOW
        v.microseconds = s.U24();
        break;
      case 16:
        v.explicit_defaults_for_timestamp = s.U8();
        break;
      case 17:
      case 129:  // MariaDB Q_XID
        v.ddl_xid = s.U64();
        break;
      case 18:
        v.default_collation_for_utf8mb4 = s.U16();
        break;
      case 19:
        v.sql_require_primary_key = s.U8();
        break;
      case 20:
        v.default_table_encryption = s.U8();
        break;
      default:
        stop = true;
        break;
    }
    if (s.failed()) {
      return Corrupt(fmt::format("status variable {} overruns the status block", code));
    }
  }
  return Status::Ok();
}

Status BinlogDecoder::DecodeTableMap(std::string_view body, Event* event) {
  ByteReader r(body);
  uint8_t phl = PostHeaderLength(cur_type_);
  uint64_t table_id = phl == 6 ? r.U32() : r.U48();
  uint16_t flags = r.U16();
  if (phl > 8) r.Skip(phl - 8);
  if (r.failed()) return Corrupt("truncated post-header");

  auto cached = table_cache_.find(table_id);
  if (cached != table_cache_.end() && cached->second.bytes == body) {
    event->body.emplace<TableMapEvent>().table = cached->second.table;
    return Status::Ok();
  }

  auto map = std::make_shared<TableMap>();
  map->table_id = table_id;
  map->flags = flags;
  uint8_t db_len = r.U8();
  map->db.assign(r.Bytes(db_len));
  r.Skip(1);
  uint8_t table_len = r.U8();
  map->table.assign(r.Bytes(table_len));
  r.Skip(1);
  if (r.failed()) return Corrupt("database or table name overruns the event");
  uint64_t count = r.Packed();
  std::string_view types = r.Bytes(count);
  if (r.failed()) return Corrupt(fmt::format("column types ({}) overrun the event", count));
  const ServerFlavor flavor = format_.flavor;
  std::vector<ColumnDef>& cols = map->columns;
  cols.resize(static_cast<size_t>(count));

  std::string_view metadata, null_bits, optional;
  if (!r.empty()) {  // servers before 5.1.18 logged no metadata and no null bitmap
    uint64_t meta_len = r.Packed();
    metadata = r.Bytes(meta_len);
    null_bits = r.Bytes(count / 8 + (count % 8 != 0));
    if (r.failed()) return Corrupt("column metadata or null bitmap overruns the event");
    optional = r.Rest();
  }

  ByteReader m(metadata);
  for (size_t i = 0; i < cols.size(); ++i) {
    ColumnDef& c = cols[i];
    auto type = static_cast<uint8_t>(types[i]);
    c.type = static_cast<ColumnType>(type);
    if (metadata.data() == nullptr) continue;
    switch (c.type) {
      case ColumnType::kFloat:
      case ColumnType::kDouble:
      case ColumnType::kBlob:
      case ColumnType::kTinyBlob:
      case ColumnType::kMediumBlob:
      case ColumnType::kLongBlob:
      case ColumnType::kGeometry:
      case ColumnType::kJson:
      case ColumnType::kVector:
      case ColumnType::kBlobCompressed:
        c.meta = m.U8();
        break;
      case ColumnType::kVarchar:
      case ColumnType::kVarString:
      case ColumnType::kVarcharCompressed:
        c.meta = m.U16();
        break;
      case ColumnType::kBit: {
        uint8_t bits = m.U8();
        uint8_t bytes = m.U8();
        c.meta = static_cast<uint16_t>(bytes * 8 + bits);
        break;
      }
      case ColumnType::kNewDecimal: {
        uint8_t precision = m.U8();
        uint8_t scale = m.U8();
        c.meta = static_cast<uint16_t>(precision << 8 | scale);
        break;
      }
      case ColumnType::kString: {
        uint8_t b0 = m.U8();
        uint8_t b1 = m.U8();
        uint8_t real = b0;
        uint16_t length = b1;
        if ((b0 & 0x30) != 0x30) {  // CHAR longer than 255 bytes: length bits 8-9 folded in
          real = b0 | 0x30;
          length = static_cast<uint16_t>((((b0 & 0x30) ^ 0x30) << 4) | b1);
        }
        if (m.failed()) break;
        if (real == static_cast<uint8_t>(ColumnType::kEnum) ||
            real == static_cast<uint8_t>(ColumnType::kSet)) {
          c.type = static_cast<ColumnType>(real);
        } else if (real != static_cast<uint8_t>(ColumnType::kString)) {
          return Corrupt(
              fmt::format("column {}: impossible real type {} for a STRING column", i, real));
        }
        c.meta = length;
        break;
      }
      case ColumnType::kEnum:
      case ColumnType::kSet:
        m.U8();  // the real type again
        c.meta = m.U8();
        break;
      case ColumnType::kTime2:
      case ColumnType::kDateTime2:
      case ColumnType::kTimestamp2:
        c.meta = m.U8();
        break;
      default:
        break;
    }
    if (m.failed()) return Corrupt(fmt::format("metadata block too short for column {}", i));
  }
  if (null_bits.data() != nullptr) {
    for (size_t i = 0; i < cols.size(); ++i) {
      cols[i].nullable = (static_cast<uint8_t>(null_bits[i / 8]) >> (i % 8)) & 1;
    }
  }

  // Optional metadata indexes columns by their position in the table, counting only the
  // columns of the kind the field describes (numeric, character, ENUM/SET, ...).
  std::vector<uint32_t> numeric, character, enum_set, enums, sets, geometry, vectors;
  for (uint32_t i = 0; i < cols.size(); ++i) {
    ColumnType t = cols[i].type;
    if (IsNumericType(t)) numeric.push_back(i);
    if (IsCharacterType(t, flavor)) character.push_back(i);
    if (t == ColumnType::kEnum || t == ColumnType::kSet) enum_set.push_back(i);
    if (t == ColumnType::kEnum) enums.push_back(i);
    if (t == ColumnType::kSet) sets.push_back(i);
    if (t == ColumnType::kGeometry) geometry.push_back(i);
    if (t == ColumnType::kVector) vectors.push_back(i);
  }
  ByteReader o(optional);
  while (!o.empty()) {
    uint8_t field = o.U8();
    uint64_t length = o.Packed();
    std::string_view value = o.Bytes(length);
    if (o.failed()) {
      return Corrupt(fmt::format("optional metadata field {} overruns the event", field));
    }
    map->has_optional_metadata = true;
    ByteReader f(value);
    bool bad = false;  // content inconsistent with the columns
    auto per_column = [&](const std::vector<uint32_t>& which, auto&& read_one) {
      for (uint32_t col : which) {
        read_one(cols[col]);
        if (f.failed()) return;
      }
      if (!f.empty()) bad = true;
    };
    auto charsets_default = [&](const std::vector<uint32_t>& which) {
      uint64_t def = f.Packed();
      for (uint32_t col : which) cols[col].collation = static_cast<uint32_t>(def);
      while (!f.empty() && !f.failed()) {
        uint64_t index = f.Packed();
        uint64_t collation = f.Packed();
        if (f.failed()) break;
        if (index >= which.size()) {
          bad = true;
          break;
        }
        cols[which[index]].collation = static_cast<uint32_t>(collation);
      }
    };
    switch (field) {
      case 1: {  // SIGNEDNESS: one bit per numeric column, most significant bit first
        if (value.size() * 8 < numeric.size()) {
          bad = true;
          break;
        }
        for (size_t k = 0; k < numeric.size(); ++k) {
          cols[numeric[k]].is_unsigned = BitMsbFirst(value, k);
        }
        break;
      }
      case 2:
        charsets_default(character);
        break;
      case 3:
        per_column(character,
                   [&](ColumnDef& c) { c.collation = static_cast<uint32_t>(f.Packed()); });
        break;
      case 4: {
        std::vector<uint32_t> all(cols.size());
        for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
        per_column(all, [&](ColumnDef& c) {
          uint64_t n = f.Packed();
          c.name.assign(f.Bytes(n));
        });
        break;
      }
      case 5:
      case 6:
        per_column(field == 5 ? sets : enums, [&](ColumnDef& c) {
          uint64_t n = f.Packed();
          if (n > f.remaining()) {
            f.Skip(n);  // marks the reader failed: every label takes at least one byte
            return;
          }
          c.enum_values.clear();
          c.enum_values.reserve(static_cast<size_t>(n));
          for (uint64_t k = 0; k < n && !f.failed(); ++k) {
            uint64_t len = f.Packed();
            c.enum_values.emplace_back(f.Bytes(len));
          }
        });
        break;
      case 7:
        per_column(geometry,
                   [&](ColumnDef& c) { c.geometry_type = static_cast<uint32_t>(f.Packed()); });
        break;
      case 8:    // SIMPLE_PRIMARY_KEY: column indexes
      case 9: {  // PRIMARY_KEY_WITH_PREFIX: (column index, prefix length) pairs
        const bool with_prefix = field == 9;
        map->primary_key.clear();
        map->primary_key_prefix.clear();
        while (!f.empty() && !f.failed()) {
          uint64_t index = f.Packed();
          uint64_t prefix = with_prefix ? f.Packed() : 0;
          if (f.failed()) break;
          if (index >= cols.size()) {
            bad = true;
            break;
          }
          map->primary_key.push_back(static_cast<uint32_t>(index));
          map->primary_key_prefix.push_back(static_cast<uint32_t>(prefix));
        }
        break;
      }
      case 10:
        charsets_default(enum_set);
        break;
      case 11:
        per_column(enum_set,
                   [&](ColumnDef& c) { c.collation = static_cast<uint32_t>(f.Packed()); });
        break;
      case 12:  // COLUMN_VISIBILITY: one bit per column, most significant bit first
        if (value.size() * 8 < cols.size()) {
          bad = true;
          break;
        }
        for (size_t k = 0; k < cols.size(); ++k) cols[k].visible = BitMsbFirst(value, k);
        break;
      case 13:
        per_column(vectors,
                   [&](ColumnDef& c) { c.vector_dimensions = static_cast<uint32_t>(f.Packed()); });
        break;
      default:
        break;  // unknown field: skipped by its length
    }
    if (f.failed() || bad) {
      return Corrupt(
          fmt::format("optional metadata field {} ({} bytes) does not match the "
                      "table's columns",
                      field, value.size()));
    }
  }

  if (statement_ended_ && table_cache_.size() >= kMaxCachedTables) table_cache_.clear();
  CachedTable& slot = table_cache_[table_id];
  slot.bytes.assign(body);
  slot.table = std::move(map);
  event->body.emplace<TableMapEvent>().table = slot.table;
  return Status::Ok();
}

Status BinlogDecoder::DecodeRows(uint8_t type, std::string_view body, Event* event) {
  RowsKind kind = RowsKind::kWrite;
  uint8_t version = 1;
  bool compressed = false;
  bool partial = false;
  switch (static_cast<EventType>(type)) {
    case EventType::kPreGaWriteRows:
      version = 0;
      kind = RowsKind::kWrite;
      break;
    case EventType::kPreGaUpdateRows:
      version = 0;
      kind = RowsKind::kUpdate;
      break;
    case EventType::kPreGaDeleteRows:
      version = 0;
      kind = RowsKind::kDelete;
      break;
    case EventType::kWriteRowsV1:
      kind = RowsKind::kWrite;
      break;
    case EventType::kUpdateRowsV1:
      kind = RowsKind::kUpdate;
      break;
    case EventType::kDeleteRowsV1:
      kind = RowsKind::kDelete;
      break;
    case EventType::kWriteRowsV2:
      version = 2;
      kind = RowsKind::kWrite;
      break;
    case EventType::kUpdateRowsV2:
      version = 2;
      kind = RowsKind::kUpdate;
      break;
    case EventType::kDeleteRowsV2:
      version = 2;
      kind = RowsKind::kDelete;
      break;
    case EventType::kPartialUpdateRows:
      version = 2;
      kind = RowsKind::kUpdate;
      partial = true;
      break;
    case EventType::kWriteRowsCompressedV1:
      compressed = true;
      kind = RowsKind::kWrite;
      break;
    case EventType::kUpdateRowsCompressedV1:
      compressed = true;
      kind = RowsKind::kUpdate;
      break;
    case EventType::kDeleteRowsCompressedV1:
      compressed = true;
      kind = RowsKind::kDelete;
      break;
    case EventType::kWriteRowsCompressed:
      compressed = true;
      version = 2;
      kind = RowsKind::kWrite;
      break;
    case EventType::kUpdateRowsCompressed:
      compressed = true;
      version = 2;
      kind = RowsKind::kUpdate;
      break;
    case EventType::kDeleteRowsCompressed:
      compressed = true;
      version = 2;
      kind = RowsKind::kDelete;
      break;
    default:
      return Status::Internal("DecodeRows on a non-rows event");
  }
  ByteReader r(body);
  uint8_t phl = PostHeaderLength(type);
  size_t id_size = phl == 6 ? 4 : 6;
  uint64_t table_id = r.UInt(id_size);
  uint16_t flags = r.U16();
  size_t consumed = id_size + 2;
  uint16_t extra_len = 0;
  if (version == 2) {
    extra_len = r.U16();
    consumed += 2;
  }
  if (phl > consumed) r.Skip(phl - consumed);
  if (r.failed()) return Corrupt("truncated post-header");
  std::string_view extra;
  if (version == 2) {
    if (extra_len < 2) return Corrupt(fmt::format("extra data length {} is below 2", extra_len));
    extra = r.Bytes(extra_len - 2);
    if (r.failed())
      return Corrupt(fmt::format("extra data ({} bytes) overruns the event", extra_len));
  }
  uint64_t count = r.Packed();
  uint64_t bitmap_len = count / 8 + (count % 8 != 0);
  std::string_view before = r.Bytes(bitmap_len);
  std::string_view after;
  if (kind == RowsKind::kUpdate) after = version == 0 ? before : r.Bytes(bitmap_len);
  if (r.failed()) return Corrupt("column count or bitmaps overrun the event");
  std::string_view rows = r.Rest();
  if (compressed) {
    RS_RETURN_IF_ERROR(Inflate(rows, "rows"));
    rows = inflated_;
  }

  auto it = table_cache_.find(table_id);
  if (it == table_cache_.end()) {
    uint64_t all_ones = id_size == 4 ? 0xFFFFFFFFull : 0xFFFFFFFFFFFFull;
    if ((table_id == all_ones || table_id == 0xFFFFFF) && count == 0 && (flags & 0x01)) {
      // The dummy end-of-statement event (no table) old servers wrote to free the table maps.
      statement_ended_ = true;
      event->body.emplace<SkippedEvent>();
      return Status::Ok();
    }
    return Corrupt(fmt::format("no TABLE_MAP for table id {}", table_id));
  }
  const TableMap* table = it->second.table.get();
  if (count != table->columns.size()) {
    return Corrupt(fmt::format("column count {} differs from the TABLE_MAP's {} ({}.{})", count,
                               table->columns.size(), table->db, table->table));
  }
  statement_ended_ = (flags & 0x01) != 0;
  RowsEvent& e = event->body.emplace<RowsEvent>();
  e.kind = kind;
  e.partial_json = partial;
  e.version = version;
  e.table_id = table_id;
  e.flags = flags;
  e.extra_data = extra;
  e.column_count = count;
  e.columns_before = before;
  e.columns_after = after;
  e.rows = rows;
  e.table = table;
  return Status::Ok();
}

Status BinlogDecoder::DecodeGtidTagged(std::string_view body, Event* event) {
  ByteReader r(body);
  r.VarUInt();                          // serialization format version
  uint64_t message_size = r.VarUInt();  // counts from the first byte of the body
  uint64_t last_non_ignorable = r.VarUInt();
  if (r.failed()) return Corrupt("truncated serialization header");
  size_t header = r.position(body);
  if (message_size < header || message_size > body.size()) {
    return Corrupt(
        fmt::format("message size {} outside the event ({} bytes)", message_size, body.size()));
  }
  ByteReader f(body.substr(header, static_cast<size_t>(message_size) - header));
  GtidEvent& g = event->body.emplace<GtidEvent>();
  std::array<uint8_t, 16> uuid{};
  std::string tag;
  int64_t gno = 0;
  bool have_original_ts = false, have_original_version = false, have_gno = false;
  while (!f.empty()) {
    uint64_t id = f.VarUInt();
    switch (id) {
      case 0: {
        uint64_t flags = f.VarUInt();
        if (flags > 255) return Corrupt("GTID flags out of range");
        g.mysql_flags = static_cast<uint8_t>(flags);
        break;
      }
      case 1:
        for (auto& b : uuid) {
          uint64_t v = f.VarUInt();
          if (v > 255) return Corrupt("source uuid byte out of range");
          b = static_cast<uint8_t>(v);
        }
        break;
      case 2:
        gno = f.VarInt();
        have_gno = true;
        break;
      case 3: {
        uint64_t n = f.VarUInt();
        tag.assign(f.Bytes(n));
        break;
      }
      case 4:
        g.last_committed = f.VarInt();
        break;
      case 5:
        g.sequence_number = f.VarInt();
        break;
      case 6:
        g.immediate_commit_us = f.VarUInt();
        break;
      case 7:
        g.original_commit_us = f.VarUInt();
        have_original_ts = true;
        break;
      case 8:
        g.transaction_length = f.VarUInt();
        break;
      case 9:
        g.immediate_server_version = static_cast<uint32_t>(f.VarUInt());
        break;
      case 10:
        g.original_server_version = static_cast<uint32_t>(f.VarUInt());
        have_original_version = true;
        break;
      case 11:
        f.VarUInt();  // commit group ticket
        break;
      default:
        if (id <= last_non_ignorable) {
          return Unsupported(fmt::format("unknown mandatory field {}", id));
        }
        f.Skip(f.remaining());  // an ignorable field we cannot size: the rest is optional
        break;
    }
    if (f.failed()) return Corrupt(fmt::format("field {} overruns the event", id));
  }
  if (!have_gno || gno <= 0) return Corrupt("missing or invalid transaction number");
  if (!have_original_ts) g.original_commit_us = g.immediate_commit_us;
  if (!have_original_version) g.original_server_version = g.immediate_server_version;
  for (char& c : tag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  g.gtid = Gtid::Mysql(uuid, std::move(tag), static_cast<uint64_t>(gno));
  return Status::Ok();
}

Status BinlogDecoder::DecodeBody(const EventHeader& header, std::string_view body, Event* event) {
  ByteReader r(body);
  const uint8_t type = header.type;
  switch (static_cast<EventType>(type)) {
    case EventType::kFormatDescription:
      return DecodeFormatDescription(body, event);

    case EventType::kRotate: {
      uint8_t phl = PostHeaderLength(type);
      RotateEvent& e = event->body.emplace<RotateEvent>();
      if (phl >= 8) {
        e.position = r.U64();
        r.Skip(phl - 8);
      }
      e.next_file.assign(r.Rest());
      if (r.failed()) return Corrupt("truncated post-header");
      return Status::Ok();
    }

    case EventType::kQuery:
      return DecodeQuery(body, false, event);
    case EventType::kQueryCompressed:
      return DecodeQuery(body, true, event);

    case EventType::kStop:
      event->body.emplace<StopEvent>();
      return Status::Ok();

    case EventType::kIntvar: {
      IntvarEvent& e = event->body.emplace<IntvarEvent>();
      e.kind = r.U8();
      e.value = r.U64();
      if (r.failed()) return Corrupt("truncated event");
      return Status::Ok();
    }

    case EventType::kRand: {
      RandEvent& e = event->body.emplace<RandEvent>();
      e.seed1 = r.U64();
      e.seed2 = r.U64();
      if (r.failed()) return Corrupt("truncated event");
      return Status::Ok();
    }

    case EventType::kUserVar: {
      UserVarEvent& e = event->body.emplace<UserVarEvent>();
      uint32_t n = r.U32();
      e.name.assign(r.Bytes(n));
      e.is_null = r.U8() != 0;
      if (r.failed()) return Corrupt("variable name overruns the event");
      return Status::Ok();
    }

    case EventType::kXid: {
      XidEvent& e = event->body.emplace<XidEvent>();
      e.xid = r.U64();
      if (r.failed()) return Corrupt("truncated event");
      return Status::Ok();
    }

    case EventType::kTableMap:
      return DecodeTableMap(body, event);

    case EventType::kPreGaWriteRows:
    case EventType::kPreGaUpdateRows:
    case EventType::kPreGaDeleteRows:
    case EventType::kWriteRowsV1:
    case EventType::kUpdateRowsV1:
    case EventType::kDeleteRowsV1:
    case EventType::kWriteRowsV2:
    case EventType::kUpdateRowsV2:
    case EventType::kDeleteRowsV2:
    case EventType::kPartialUpdateRows:
    case EventType::kWriteRowsCompressedV1:
    case EventType::kUpdateRowsCompressedV1:
    case EventType::kDeleteRowsCompressedV1:
    case EventType::kWriteRowsCompressed:
    case EventType::kUpdateRowsCompressed:
    case EventType::kDeleteRowsCompressed:
      return DecodeRows(type, body, event);

    case EventType::kIncident: {
      uint8_t phl = PostHeaderLength(type);
      IncidentEvent& e = event->body.emplace<IncidentEvent>();
      if (phl >= 2) {
        e.incident = r.U16();
        r.Skip(phl - 2);
      }
      if (!r.empty()) {
        uint8_t n = r.U8();
        e.message.assign(r.Bytes(n));
      }
      if (r.failed()) return Corrupt("message overruns the event");
      return Status::Ok();
    }

    case EventType::kHeartbeat: {
      HeartbeatEvent& e = event->body.emplace<HeartbeatEvent>();
      e.log_file.assign(body);
      e.position = header.log_pos;
      return Status::Ok();
    }

    case EventType::kHeartbeatV2: {
      // Fields: type, length, value (net_field_length integers); 0 ends the list.
      HeartbeatEvent& e = event->body.emplace<HeartbeatEvent>();
      while (!r.empty()) {
        uint64_t field = r.Packed();
        if (field == 0 || r.failed()) break;
        uint64_t length = r.Packed();
        std::string_view value = r.Bytes(length);
        if (r.failed()) break;
        if (field == 1) {
          e.log_file.assign(value);
        } else if (field == 2) {
          ByteReader v(value);
          e.position = v.Packed();
          if (v.failed()) return Corrupt("malformed log position field");
        }
      }
      if (r.failed()) return Corrupt("field overruns the event");
      return Status::Ok();
    }

    case EventType::kRowsQuery: {
      r.Skip(1);  // a length byte that truncates at 255; the text runs to the end
      RowsQueryEvent& e = event->body.emplace<RowsQueryEvent>();
      e.query.assign(r.Rest());
      if (r.failed()) return Corrupt("empty event");
      return Status::Ok();
    }

    case EventType::kAnnotateRows:
      event->body.emplace<RowsQueryEvent>().query.assign(body);
      return Status::Ok();

    case EventType::kGtid:
    case EventType::kAnonymousGtid: {
      GtidEvent& g = event->body.emplace<GtidEvent>();
      g.mysql_flags = r.U8();
      std::string_view sid = r.Bytes(16);
      uint64_t gno = r.U64();
      if (r.failed()) return Corrupt("truncated event");
      g.anonymous = type == static_cast<uint8_t>(EventType::kAnonymousGtid);
      if (!g.anonymous) {
        std::array<uint8_t, 16> uuid;
        std::memcpy(uuid.data(), sid.data(), 16);
        g.gtid = Gtid::Mysql(uuid, "", gno);
      }
      if (!r.empty() && r.Peek() == 2) {  // logical clock typecode (5.7.5+)
        r.U8();
        g.last_committed = static_cast<int64_t>(r.U64());
        g.sequence_number = static_cast<int64_t>(r.U64());
        if (r.failed()) return Corrupt("truncated logical timestamps");
        if (r.remaining() >= 7) {
          uint64_t immediate = r.UInt(7);
          if (immediate & (uint64_t{1} << 55)) {
            immediate &= ~(uint64_t{1} << 55);
            g.original_commit_us = r.UInt(7);
            if (r.failed()) return Corrupt("truncated original commit timestamp");
          } else {
            g.original_commit_us = immediate;
          }
          g.immediate_commit_us = immediate;
        }
        if (!r.empty()) {
          g.transaction_length = r.Packed();
          if (r.failed()) return Corrupt("truncated transaction length");
        }
        if (r.remaining() >= 4) {
          uint32_t immediate = r.U32();
          if (immediate & (uint32_t{1} << 31)) {
            immediate &= ~(uint32_t{1} << 31);
            g.original_server_version = r.U32();
            if (r.failed()) return Corrupt("truncated original server version");
          } else {
            g.original_server_version = immediate;
          }
          g.immediate_server_version = immediate;
        }
      }
      return Status::Ok();
    }

    case EventType::kGtidTagged:
      return DecodeGtidTagged(body, event);

    case EventType::kPreviousGtids: {
      uint64_t head = r.U64();
      if (r.failed()) return Corrupt("truncated event");
      uint8_t format = static_cast<uint8_t>(head >> 56);
      if (format > 1) return Corrupt(fmt::format("unknown GTID set format {}", format));
      bool tagged = format == 1;
      uint64_t sids =
          tagged ? (head >> 8) & ((uint64_t{1} << 48) - 1) : head & ((uint64_t{1} << 56) - 1);
      if (sids > r.remaining() / 24) {
        return Corrupt(fmt::format("{} source ids cannot fit in {} bytes", sids, r.remaining()));
      }
      std::string text;
      std::string_view last_uuid;
      for (uint64_t i = 0; i < sids; ++i) {
        std::string_view sid = r.Bytes(16);
        std::string_view tag;
        if (tagged) {
          uint64_t n = r.VarUInt();
          tag = r.Bytes(n);
        }
        uint64_t intervals = r.U64();
        if (r.failed()) return Corrupt("GTID set overruns the event");
        if (intervals > r.remaining() / 16) {
          return Corrupt(
              fmt::format("{} intervals cannot fit in {} bytes", intervals, r.remaining()));
        }
        if (i == 0 || sid != last_uuid) {
          if (i != 0) text += ',';
          std::array<uint8_t, 16> uuid;
          std::memcpy(uuid.data(), sid.data(), 16);
          text += FormatUuid(uuid);
          last_uuid = sid;
        }
        if (!tag.empty()) {
          text += ':';
          for (char c : tag) text += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        for (uint64_t k = 0; k < intervals; ++k) {
          uint64_t start = r.U64();
          uint64_t end = r.U64();  // exclusive
          if (end <= start) {
            return Corrupt(fmt::format("empty GTID interval [{}, {})", start, end));
          }
          if (end - 1 == start) {
            text += fmt::format(":{}", start);
          } else {
            text += fmt::format(":{}-{}", start, end - 1);
          }
        }
      }
      event->body.emplace<GtidSetEvent>().gtid_set = std::move(text);
      return Status::Ok();
    }

    case EventType::kXaPrepare: {
      XaPrepareEvent& e = event->body.emplace<XaPrepareEvent>();
      e.one_phase = r.U8() != 0;
      e.format_id = static_cast<int32_t>(r.U32());
      uint32_t gtrid_len = r.U32();
      uint32_t bqual_len = r.U32();
      if (r.failed()) return Corrupt("truncated event");
      if (gtrid_len > 64 || bqual_len > 64) {
        return Corrupt(fmt::format("XID lengths {} and {} exceed 64", gtrid_len, bqual_len));
      }
      e.gtrid.assign(r.Bytes(gtrid_len));
      e.bqual.assign(r.Bytes(bqual_len));
      if (r.failed()) return Corrupt("XID overruns the event");
      return Status::Ok();
    }

    case EventType::kTransactionPayload:
      return Corrupt("TRANSACTION_PAYLOAD inside a TRANSACTION_PAYLOAD");

    case EventType::kBinlogCheckpoint: {
      uint8_t phl = PostHeaderLength(type);
      uint32_t n = phl >= 4 ? r.U32() : static_cast<uint32_t>(body.size());
      if (phl > 4) r.Skip(phl - 4);
      BinlogCheckpointEvent& e = event->body.emplace<BinlogCheckpointEvent>();
      e.file.assign(r.Bytes(n));
      if (r.failed()) return Corrupt("file name overruns the event");
      return Status::Ok();
    }

    case EventType::kMariadbGtid: {
      GtidEvent& g = event->body.emplace<GtidEvent>();
      uint64_t seq = r.U64();
      uint32_t domain = r.U32();
      g.mariadb_flags = r.U8();
      if (r.failed()) return Corrupt("truncated event");
      if (g.mariadb_flags & 0x02) {  // FL_GROUP_COMMIT_ID
        g.commit_id = r.U64();
        if (r.failed()) return Corrupt("truncated commit id");
      }
      if (g.mariadb_flags & (0x40 | 0x80)) {  // FL_PREPARED_XA, FL_COMPLETED_XA
        int32_t format_id = static_cast<int32_t>(r.U32());
        uint8_t gtrid_len = r.U8();
        uint8_t bqual_len = r.U8();
        std::string_view gtrid = r.Bytes(gtrid_len);
        std::string_view bqual = r.Bytes(bqual_len);
        if (r.failed()) return Corrupt("XA xid overruns the event");
        g.xa_xid = fmt::format("X'{}',X'{}',{}", HexLower(gtrid), HexLower(bqual), format_id);
      }
      g.gtid = Gtid::Mariadb(domain, header.server_id, seq);
      return Status::Ok();
    }

    case EventType::kGtidList: {
      uint32_t count = r.U32() & 0x0FFFFFFF;  // the top 4 bits are flags
      if (r.failed()) return Corrupt("truncated event");
      if (count > r.remaining() / 16) {
        return Corrupt(fmt::format("{} GTIDs cannot fit in {} bytes", count, r.remaining()));
      }
      std::string text;
      for (uint32_t i = 0; i < count; ++i) {
        uint32_t domain = r.U32();
        uint32_t server = r.U32();
        uint64_t seq = r.U64();
        if (i != 0) text += ',';
        text += fmt::format("{}-{}-{}", domain, server, seq);
      }
      event->body.emplace<GtidSetEvent>().gtid_set = std::move(text);
      return Status::Ok();
    }

    case EventType::kStartEncryption:
      return Unsupported("encrypted binlog; replsync cannot read it");

    case EventType::kStartV3:
    case EventType::kLoad:
    case EventType::kSlave:
    case EventType::kCreateFile:
    case EventType::kAppendBlock:
    case EventType::kExecLoad:
    case EventType::kDeleteFile:
    case EventType::kNewLoad:
    case EventType::kBeginLoadQuery:
    case EventType::kExecuteLoadQuery:
    case EventType::kIgnorable:
    case EventType::kTransactionContext:
    case EventType::kViewChange:
      event->body.emplace<SkippedEvent>();
      return Status::Ok();

    default:
      if (header.flags & kFlagIgnorable) {
        event->body.emplace<SkippedEvent>();
        return Status::Ok();
      }
      return Unsupported(fmt::format("unknown event type {} without LOG_EVENT_IGNORABLE_F", type));
  }
}

BinlogReader::BinlogReader(std::unique_ptr<BinlogSource> source, DecoderOptions options)
    : source_(std::move(source)), decoder_(options) {}

Result<const Event*> BinlogReader::Next() {
  while (true) {
    RS_ASSIGN_OR_RETURN(bool got, decoder_.Next(&event_));
    if (got) return static_cast<const Event*>(&event_);
    RawEvent raw;
    RS_ASSIGN_OR_RETURN(bool more, source_->Next(&raw));
    if (!more) return static_cast<const Event*>(nullptr);
    RS_RETURN_IF_ERROR(decoder_.Feed(raw));
  }
}

}  // namespace replsync::capture
