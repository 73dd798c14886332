#include "capture/binlog/mysql_packed.h"

#include <cstring>

namespace replsync::capture::internal {
namespace {

constexpr int kDigitsPerGroup = 9;
constexpr int kGroupBytes = 4;
// Bytes needed for a group of 0..9 leftover digits.
constexpr int kDigitBytes[10] = {0, 1, 1, 2, 2, 3, 3, 4, 4, 4};
constexpr uint32_t kPowersOfTen[10] = {1,      10,      100,      1000,      10000,
                                       100000, 1000000, 10000000, 100000000, 1000000000};
constexpr int kMaxPrecision = 65;
constexpr int kMaxScale = 38;  // MariaDB; MySQL stops at 30

// Reads a big-endian group of `bytes` bytes from the (already un-inverted) decimal image.
uint32_t ReadGroup(const uint8_t* p, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | p[i];
  return v;
}

// A fixed-capacity digit buffer (no allocation on the row path).
struct Digits {
  char data[kMaxPrecision + kDigitsPerGroup];
  size_t size = 0;
  // Appends `value` zero-padded to `digits` digits.
  void AppendPadded(uint32_t value, int digits) {
    for (int i = digits - 1; i >= 0; --i) {
      data[size + static_cast<size_t>(i)] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
    size += static_cast<size_t>(digits);
  }
  // Index of the first non-zero digit, or size when all are zero.
  size_t FirstNonZero() const {
    size_t i = 0;
    while (i < size && data[i] == '0') ++i;
    return i;
  }
};

}  // namespace

size_t DecimalBinarySize(int precision, int scale) {
  if (precision < 1 || precision > kMaxPrecision || scale < 0 || scale > kMaxScale ||
      scale > precision) {
    return 0;
  }
  const int intg = precision - scale;
  return static_cast<size_t>(
      intg / kDigitsPerGroup * kGroupBytes + kDigitBytes[intg % kDigitsPerGroup] +
      scale / kDigitsPerGroup * kGroupBytes + kDigitBytes[scale % kDigitsPerGroup]);
}

Status AppendDecimalText(std::string_view bin, int precision, int scale, std::string* out) {
  const size_t size = DecimalBinarySize(precision, scale);
  if (size == 0) {
    return Status::Corruption("impossible DECIMAL(" + std::to_string(precision) + "," +
                              std::to_string(scale) + ")");
  }
  if (bin.size() < size) {
    return Status::Corruption("DECIMAL needs " + std::to_string(size) + " bytes, " +
                              std::to_string(bin.size()) + " left");
  }
  uint8_t buf[64];
  std::memcpy(buf, bin.data(), size);
  const bool negative = (buf[0] & 0x80) == 0;
  buf[0] ^= 0x80;
  if (negative) {
    for (size_t i = 0; i < size; ++i) buf[i] = static_cast<uint8_t>(~buf[i]);
  }

  // Digits are produced into a local buffer first so that the sign can be dropped for zero.
  char text[kMaxPrecision + 2 + kMaxScale];
  size_t len = 0;
  bool nonzero = false;
  const uint8_t* p = buf;
  Digits digits;

  const int intg = precision - scale;
  const int lead_digits = intg % kDigitsPerGroup;
  const int full_int_groups = intg / kDigitsPerGroup;
  auto bad_group = [&]() {
    return Status::Corruption("DECIMAL(" + std::to_string(precision) + "," + std::to_string(scale) +
                              ") holds an impossible digit group");
  };
  // Integer part: leading partial group, then full groups.
  if (lead_digits > 0) {
    const int bytes = kDigitBytes[lead_digits];
    const uint32_t v = ReadGroup(p, bytes);
    if (v >= kPowersOfTen[lead_digits]) return bad_group();
    digits.AppendPadded(v, lead_digits);
    p += bytes;
  }
  for (int g = 0; g < full_int_groups; ++g) {
    const uint32_t v = ReadGroup(p, kGroupBytes);
    if (v >= kPowersOfTen[kDigitsPerGroup]) return bad_group();
    digits.AppendPadded(v, kDigitsPerGroup);
    p += kGroupBytes;
  }
  const size_t first = digits.FirstNonZero();
  if (first == digits.size) {
    text[len++] = '0';
  } else {
    nonzero = true;
    std::memcpy(text + len, digits.data + first, digits.size - first);
    len += digits.size - first;
  }
  // Fraction: full groups, then the trailing partial group.
  if (scale > 0) {
    digits.size = 0;
    const int full_frac_groups = scale / kDigitsPerGroup;
    const int trail_digits = scale % kDigitsPerGroup;
    for (int g = 0; g < full_frac_groups; ++g) {
      const uint32_t v = ReadGroup(p, kGroupBytes);
      if (v >= kPowersOfTen[kDigitsPerGroup]) return bad_group();
      digits.AppendPadded(v, kDigitsPerGroup);
      p += kGroupBytes;
    }
    if (trail_digits > 0) {
      const int bytes = kDigitBytes[trail_digits];
      const uint32_t v = ReadGroup(p, bytes);
      if (v >= kPowersOfTen[trail_digits]) return bad_group();
      digits.AppendPadded(v, trail_digits);
    }
    if (digits.FirstNonZero() != digits.size) nonzero = true;
    text[len++] = '.';
    std::memcpy(text + len, digits.data, digits.size);
    len += digits.size;
  }
  if (negative && nonzero) out->push_back('-');
  out->append(text, len);
  return Status::Ok();
}

TimeValue TimeFromPacked(int64_t packed) {
  TimeValue t{};
  uint64_t magnitude;
  if (packed < 0) {
    t.negative = true;
    magnitude = static_cast<uint64_t>(0) - static_cast<uint64_t>(packed);
  } else {
    magnitude = static_cast<uint64_t>(packed);
  }
  const uint64_t hms = magnitude >> 24;
  t.micro = static_cast<uint32_t>(magnitude % (1u << 24));
  t.hours = static_cast<uint32_t>((hms >> 12) % (1u << 10));
  t.minute = static_cast<uint8_t>((hms >> 6) % (1u << 6));
  t.second = static_cast<uint8_t>(hms % (1u << 6));
  return t;
}

DateTimeValue DateTimeFromPacked(int64_t packed, bool* negative) {
  DateTimeValue dt{};
  uint64_t magnitude;
  *negative = packed < 0;
  magnitude = *negative ? static_cast<uint64_t>(0) - static_cast<uint64_t>(packed)
                        : static_cast<uint64_t>(packed);
  dt.micro = static_cast<uint32_t>(magnitude % (1u << 24));
  const uint64_t ymdhms = magnitude >> 24;
  const uint64_t ymd = ymdhms >> 17;
  const uint64_t ym = ymd >> 5;
  const uint64_t hms = ymdhms % (1u << 17);
  dt.day = static_cast<uint8_t>(ymd % (1u << 5));
  dt.month = static_cast<uint8_t>(ym % 13);
  dt.year = static_cast<uint16_t>(ym / 13);
  dt.second = static_cast<uint8_t>(hms % (1u << 6));
  dt.minute = static_cast<uint8_t>((hms >> 6) % (1u << 6));
  dt.hour = static_cast<uint8_t>(hms >> 12);
  return dt;
}

}  // namespace replsync::capture::internal
