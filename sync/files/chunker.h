// Content-defined chunking of file contents: FastCDC (Xia et al., "FastCDC: a Fast and
// Efficient Content-Defined Chunking Approach for Data Deduplication", USENIX ATC 2016) with
// normalized chunking level 2. Design: schemas/files.md, "Chunking".
//
// The boundaries are part of replication format version 1: the primary compares a new
// version's chunks with the chunk list it stored for the previous version (possibly by an
// earlier run, or another build), so every node and every run must cut identical content
// identically. What fixes them, and must never change without a new format version:
//  - the gear table: kGear[i] is the (i+1)-th output of splitmix64 (Steele, Lea and Flood,
//    "Fast splittable pseudorandom number generators", 2014) seeded with 0x7265706c73796e63
//    ("replsync" in ASCII), computed at compile time;
//  - the gear hash fp = (fp << 1) + kGear[byte], starting from 0 at the chunk's byte
//    min_size - kWarmup (0-based; kWarmup = 64, the bytes before are not hashed), so the hash
//    has seen a full window at the first possible cut;
//  - the masks: with avg_size = 2^b, a chunk may end after its n-th byte (min_size <= n) when
//    fp & mask == 0, using mask_s (b + 2 bits) while n <= avg_size and mask_l (b - 2 bits)
//    after; a mask of k bits has bit 16 + floor(j * 32 / k) set for j = 0 .. k-1 (spread over
//    bits 16..47, as the paper spreads its masks, so each bit sees a wide window);
//  - a chunk ends after max_size bytes regardless; the last chunk of a content may be shorter
//    than min_size;
//  - the parameters: min 2 KiB, average 8 KiB, max 64 KiB (ChunkerParams' defaults).
// chunker_test pins the boundaries of a fixed input.
// Thread-safety: not thread-safe (one Chunker per content being read).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "sync/files/content_hash.h"

struct XXH3_state_s;

namespace replsync {

// One chunk of a content: bytes [offset, offset + length) and their XXH3-128 hash.
struct ChunkInfo {
  uint64_t offset = 0;
  uint32_t length = 0;
  ChunkHash hash;

  bool operator==(const ChunkInfo&) const = default;
};

struct ChunkerParams {
  // Requirements (not checked at run time): kWarmup <= min_size < avg_size < max_size,
  // avg_size a power of two between 2^4 and 2^30, max_size < 2^32.
  uint32_t min_size = 2 * 1024;
  uint32_t avg_size = 8 * 1024;
  uint32_t max_size = 64 * 1024;
};

// Streaming chunker: feed a content in blocks of any size; the chunks (and so their hashes) do
// not depend on how the content was split into blocks.
class Chunker {
 public:
  // Bytes hashed before the first possible cut of a chunk (see the header comment).
  static constexpr uint32_t kWarmup = 64;

  explicit Chunker(const ChunkerParams& params = {});
  ~Chunker();
  Chunker(Chunker&&) noexcept;
  Chunker& operator=(Chunker&&) noexcept;

  // Feeds the next `data` of the content; appends to `chunks` every chunk that ends within it,
  // in order (a chunk's bytes may have come over several calls; offsets count from the start
  // of the content).
  void Update(std::string_view data, std::vector<ChunkInfo>* chunks);
  // Ends the content: appends its last chunk, if any bytes are left after the last boundary,
  // to `chunks`. The chunker is then ready for a new content starting at offset 0.
  void Finish(std::vector<ChunkInfo>* chunks);

  // Bytes fed since the last boundary (those of the chunk in progress).
  uint32_t pending_bytes() const { return len_; }

  // Returns how many of the `size` bytes at `data` belong to the chunk in progress, whose first
  // `len` bytes came before (with gear hash `*fp`, updated): the length up to and including its
  // last byte when the chunk ends within them (*cut set to true), else `size`. The boundary
  // search alone, without hashing the chunk; exposed for benchmarks.
  size_t FindBoundary(const uint8_t* data, size_t size, uint32_t len, uint64_t* fp,
                      bool* cut) const;

 private:
  struct XxhStateDeleter {
    void operator()(XXH3_state_s* state) const;
  };

  void EmitChunk(std::vector<ChunkInfo>* chunks);

  ChunkerParams params_;
  uint64_t mask_s_;
  uint64_t mask_l_;
  uint64_t offset_ = 0;  // where the chunk in progress starts in the content
  uint32_t len_ = 0;     // its bytes so far
  uint64_t fp_ = 0;      // gear hash
  // XXH3-128 of the chunk in progress, for chunks spanning several Update calls (a chunk that
  // lies inside one block is hashed in one call).
  std::unique_ptr<XXH3_state_s, XxhStateDeleter> xxh_;
};

}  // namespace replsync
