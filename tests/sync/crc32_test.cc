#include "sync/crc32.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>

namespace replsync {
namespace {

TEST(Crc32Test, KnownCheckValue) {
  // The standard check value of CRC-32/ISO-HDLC.
  EXPECT_EQ(Crc32(0, "123456789", 9), 0xCBF43926u);
  EXPECT_EQ(Crc32(0, "", 0), 0u);
}

TEST(Crc32Test, EqualsZlibAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string data(5000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t offset = 0; offset < 16; ++offset) {
    for (size_t len = 0; len + offset <= data.size(); len += (len < 300 ? 1 : 97)) {
      const auto* p = reinterpret_cast<const Bytef*>(data.data() + offset);
      ASSERT_EQ(Crc32(0, p, len), static_cast<uint32_t>(crc32(0, p, len)))
          << "offset " << offset << " length " << len;
    }
  }
}

TEST(Crc32Test, ContinuesAcrossPieces) {
  std::string data = "binlog event header and body";
  uint32_t whole = Crc32(0, data.data(), data.size());
  uint32_t part = Crc32(0, data.data(), 10);
  part = Crc32(part, data.data() + 10, data.size() - 10);
  EXPECT_EQ(whole, part);
}

}  // namespace
}  // namespace replsync
