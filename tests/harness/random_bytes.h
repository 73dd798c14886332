// Deterministic pseudo-random test data: `size` bytes of std::mt19937_64 seeded with `seed`.
// The chunker's pinned boundaries (tests/sync/chunker_test.cc) were recorded on this generator:
// it must not change.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>

namespace replsync::testing {

inline std::string RandomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (size_t i = 0; i < size; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, size - i));
  }
  return out;
}

}  // namespace replsync::testing
