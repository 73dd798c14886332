#include "sync/files/chunker.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdio>
#include <cstdlib>

namespace replsync {

namespace {

// splitmix64 seeded with "replsync" in ASCII. Part of the format (see chunker.h).
constexpr std::array<uint64_t, 256> MakeGear() {
  std::array<uint64_t, 256> table{};
  uint64_t state = 0x7265706c73796e63ULL;
  for (uint64_t& entry : table) {
    state += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    entry = z ^ (z >> 31);
  }
  return table;
}

constexpr std::array<uint64_t, 256> kGear = MakeGear();

// Outputs computed independently (reference splitmix64 in Python): a change to MakeGear(),
// which would silently move every boundary, fails to compile.
static_assert(kGear[0] == 0x4d34ebb2fbca7bf8ULL && kGear[1] == 0x912a869c378a7ad5ULL &&
              kGear[2] == 0x8b453f1394fe975eULL);

// A mask of `bits` bits spread over bits 16..47 (see chunker.h).
constexpr uint64_t SpreadMask(int bits) {
  uint64_t mask = 0;
  for (int j = 0; j < bits; ++j) mask |= uint64_t{1} << (16 + (j * 32) / bits);
  return mask;
}
static_assert(SpreadMask(15) == 0x2aaa55550000ULL && SpreadMask(11) == 0x249249250000ULL);

int Log2(uint32_t value) {
  int bits = 0;
  while ((uint32_t{1} << (bits + 1)) <= value) ++bits;
  return bits;
}

// The data index where the phase ending before chunk byte `phase_end` ends, for a chunk that
// had `len` bytes before data[0]; never beyond `size`.
inline size_t PhaseLimit(uint32_t phase_end, uint32_t len, size_t size) {
  if (phase_end <= len) return 0;
  return std::min<size_t>(size, phase_end - len);
}

}  // namespace

void Chunker::XxhStateDeleter::operator()(XXH3_state_s* state) const { XXH3_freeState(state); }

Chunker::Chunker(const ChunkerParams& params) : params_(params), xxh_(XXH3_createState()) {
  assert(params.min_size >= kWarmup && params.min_size < params.avg_size &&
         params.avg_size < params.max_size);
  assert((params.avg_size & (params.avg_size - 1)) == 0);
  if (xxh_ == nullptr) {
    std::fprintf(stderr, "replsync: XXH3_createState failed: out of memory\n");
    std::abort();
  }
  int bits = Log2(params.avg_size);
  mask_s_ = SpreadMask(bits + 2);
  mask_l_ = SpreadMask(bits - 2);
}

Chunker::~Chunker() = default;
Chunker::Chunker(Chunker&&) noexcept = default;
Chunker& Chunker::operator=(Chunker&&) noexcept = default;

size_t Chunker::FindBoundary(const uint8_t* data, size_t size, uint32_t len, uint64_t* fp,
                             bool* cut) const {
  *cut = false;
  uint64_t h = *fp;
  // Bytes before the warm-up are not hashed (cut-point skipping).
  size_t i = PhaseLimit(params_.min_size - kWarmup, len, size);
  // Warm-up: hashed, but no chunk may end here (it would be shorter than min_size).
  for (size_t lim = PhaseLimit(params_.min_size - 1, len, size); i < lim; ++i) {
    h = (h << 1) + kGear[data[i]];
  }
  // Below the average size: the harder mask.
  for (size_t lim = PhaseLimit(params_.avg_size, len, size); i < lim; ++i) {
    h = (h << 1) + kGear[data[i]];
    if ((h & mask_s_) == 0) {
      *fp = h;
      *cut = true;
      return i + 1;
    }
  }
  // Above it: the easier mask, up to max_size.
  for (size_t lim = PhaseLimit(params_.max_size, len, size); i < lim; ++i) {
    h = (h << 1) + kGear[data[i]];
    if ((h & mask_l_) == 0) {
      *fp = h;
      *cut = true;
      return i + 1;
    }
  }
  *fp = h;
  if (len + i == params_.max_size) *cut = true;
  return i;
}

void Chunker::Update(std::string_view data, std::vector<ChunkInfo>* chunks) {
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t n = data.size();
  while (n > 0) {
    bool cut = false;
    size_t k = FindBoundary(p, n, len_, &fp_, &cut);
    if (len_ == 0 && cut) {
      chunks->push_back(ChunkInfo{offset_, static_cast<uint32_t>(k), ChunkHash::Of(p, k)});
      offset_ += k;
      fp_ = 0;
    } else {
      if (len_ == 0) XXH3_128bits_reset(xxh_.get());
      XXH3_128bits_update(xxh_.get(), p, k);
      len_ += static_cast<uint32_t>(k);
      if (cut) EmitChunk(chunks);
    }
    p += k;
    n -= k;
  }
}

void Chunker::Finish(std::vector<ChunkInfo>* chunks) {
  if (len_ > 0) EmitChunk(chunks);
  offset_ = 0;
}

void Chunker::EmitChunk(std::vector<ChunkInfo>* chunks) {
  XXH128_hash_t h = XXH3_128bits_digest(xxh_.get());
  chunks->push_back(ChunkInfo{offset_, len_, ChunkHash{h.high64, h.low64}});
  offset_ += len_;
  len_ = 0;
  fp_ = 0;
}

}  // namespace replsync
