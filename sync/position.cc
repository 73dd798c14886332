#include "sync/position.h"
#include "sync/text.h"

#include <charconv>

#include <fmt/format.h>

namespace replsync {

namespace {

bool ParseU32(std::string_view text, uint32_t* out) {
  uint64_t v;
  if (!ParseU64(text, &v) || v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<BinlogPosition> BinlogPosition::Parse(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument(
        fmt::format("binlog position '{}': expected FILE:OFFSET, e.g. binlog.000001:4", text));
  }
  BinlogPosition pos;
  pos.file = std::string(text.substr(0, colon));
  if (!ParseU64(text.substr(colon + 1), &pos.offset)) {
    return Status::InvalidArgument(
        fmt::format("binlog position '{}': offset is not a non-negative integer", text));
  }
  return pos;
}

std::string BinlogPosition::ToString() const { return fmt::format("{}:{}", file, offset); }

bool SplitBinlogFileName(std::string_view name, std::string_view* base, uint64_t* index) {
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  if (!ParseU64(name.substr(dot + 1), index)) return false;
  *base = name.substr(0, dot);
  return true;
}

std::strong_ordering BinlogPosition::operator<=>(const BinlogPosition& other) const {
  std::string_view base_a, base_b;
  uint64_t index_a = 0, index_b = 0;
  bool numbered_a = SplitBinlogFileName(file, &base_a, &index_a);
  bool numbered_b = SplitBinlogFileName(other.file, &base_b, &index_b);
  if (numbered_a && numbered_b && base_a == base_b) {
    if (auto c = index_a <=> index_b; c != 0) return c;
  } else if (auto c = file.compare(other.file); c != 0) {
    return c < 0 ? std::strong_ordering::less : std::strong_ordering::greater;
  }
  return offset <=> other.offset;
}

Gtid Gtid::Mariadb(uint32_t domain, uint32_t server, uint64_t seq) {
  Gtid g;
  g.flavor = Flavor::kMariadb;
  g.domain_id = domain;
  g.server_id = server;
  g.sequence = seq;
  return g;
}

Gtid Gtid::Mysql(const std::array<uint8_t, 16>& uuid, std::string tag, uint64_t gno) {
  Gtid g;
  g.flavor = Flavor::kMysql;
  g.uuid = uuid;
  g.tag = std::move(tag);
  g.sequence = gno;
  return g;
}

std::string FormatUuid(const std::array<uint8_t, 16>& uuid) {
  const std::string_view raw(reinterpret_cast<const char*>(uuid.data()), uuid.size());
  std::string out(36, '-');
  char* w = out.data();
  for (auto [from, to] : {std::pair{0, 4}, {4, 6}, {6, 8}, {8, 10}, {10, 16}}) {
    w = EncodeHex(raw.substr(from, to - from), w) + 1;  // + 1 keeps the '-'
  }
  return out;
}

bool ParseUuid(std::string_view text, std::array<uint8_t, 16>* uuid) {
  if (text.size() != 36) return false;
  size_t byte = 0;
  for (size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return false;
      ++i;
      continue;
    }
    int hi = HexValue(text[i]), lo = HexValue(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*uuid)[byte++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return byte == 16;
}

Result<Gtid> Gtid::Parse(std::string_view text) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument(fmt::format(
        "GTID '{}': {}; expected MariaDB domain-server-sequence (0-1-5) or MySQL uuid:number",
        text, why));
  };
  if (text.find(':') != std::string_view::npos) {
    size_t first = text.find(':');
    size_t last = text.rfind(':');
    std::array<uint8_t, 16> uuid{};
    if (!ParseUuid(text.substr(0, first), &uuid)) return bad("the source uuid is malformed");
    std::string tag;
    if (last != first) {
      tag = std::string(text.substr(first + 1, last - first - 1));
      if (tag.empty() || tag.size() > 32) return bad("the tag must have 1 to 32 characters");
      for (char& c : tag) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
          return bad("the tag may hold only letters, digits and '_'");
        }
      }
    }
    uint64_t gno;
    if (!ParseU64(text.substr(last + 1), &gno) || gno == 0) {
      return bad("the transaction number must be a positive integer");
    }
    return Mysql(uuid, std::move(tag), gno);
  }
  size_t d1 = text.find('-');
  size_t d2 = d1 == std::string_view::npos ? d1 : text.find('-', d1 + 1);
  if (d2 == std::string_view::npos) return bad("missing '-'");
  uint32_t domain, server;
  uint64_t seq;
  if (!ParseU32(text.substr(0, d1), &domain) ||
      !ParseU32(text.substr(d1 + 1, d2 - d1 - 1), &server) ||
      !ParseU64(text.substr(d2 + 1), &seq)) {
    return bad("each part must be a non-negative integer");
  }
  return Mariadb(domain, server, seq);
}

std::string Gtid::ToString() const {
  switch (flavor) {
    case Flavor::kNone:
      return "";
    case Flavor::kMariadb:
      return fmt::format("{}-{}-{}", domain_id, server_id, sequence);
    case Flavor::kMysql:
      if (tag.empty()) return fmt::format("{}:{}", FormatUuid(uuid), sequence);
      return fmt::format("{}:{}:{}", FormatUuid(uuid), tag, sequence);
  }
  return "";
}

}  // namespace replsync
