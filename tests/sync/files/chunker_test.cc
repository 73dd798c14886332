#include "sync/files/chunker.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/harness/random_bytes.h"

namespace replsync {
namespace {

using testing::RandomBytes;

std::vector<ChunkInfo> ChunkWhole(std::string_view data) {
  Chunker chunker;
  std::vector<ChunkInfo> chunks;
  chunker.Update(data, &chunks);
  chunker.Finish(&chunks);
  return chunks;
}

TEST(ChunkerTest, SizesWithinBoundsAverageNear8KiBAndHashesMatchBytes) {
  std::string data = RandomBytes(32 << 20, 1);
  std::vector<ChunkInfo> chunks = ChunkWhole(data);
  ASSERT_FALSE(chunks.empty());
  uint64_t offset = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const ChunkInfo& c = chunks[i];
    ASSERT_EQ(c.offset, offset) << "chunk " << i;
    if (i + 1 < chunks.size()) {
      ASSERT_GE(c.length, 2048u) << "chunk " << i;
    }
    ASSERT_GT(c.length, 0u);
    ASSERT_LE(c.length, 65536u) << "chunk " << i;
    ASSERT_EQ(c.hash, ChunkHash::Of(data.data() + c.offset, c.length)) << "chunk " << i;
    offset += c.length;
  }
  EXPECT_EQ(offset, data.size());
  // FastCDC's expected size with cut-point skipping and normalization level 2 at 8 KiB is
  // about 9.2 KiB.
  double average = static_cast<double>(data.size()) / static_cast<double>(chunks.size());
  EXPECT_GT(average, 7.0 * 1024);
  EXPECT_LT(average, 11.0 * 1024);
}

TEST(ChunkerTest, BoundariesDoNotDependOnBlockSplit) {
  std::string data = RandomBytes(8 << 20, 2);
  std::vector<ChunkInfo> whole = ChunkWhole(data);

  std::mt19937_64 rng(3);
  for (int round = 0; round < 3; ++round) {
    Chunker chunker;
    std::vector<ChunkInfo> split;
    size_t pos = 0;
    while (pos < data.size()) {
      // Mostly small and odd-sized blocks, sometimes larger than a chunk.
      size_t n = (rng() % 4 == 0) ? rng() % 200000 : rng() % 5000;
      n = std::min(n, data.size() - pos);
      chunker.Update(std::string_view(data).substr(pos, n), &split);
      pos += n;
    }
    chunker.Finish(&split);
    ASSERT_EQ(split, whole) << "round " << round;
  }

  // One byte at a time.
  std::string_view head = std::string_view(data).substr(0, 1 << 20);
  std::vector<ChunkInfo> expected = ChunkWhole(head);
  Chunker chunker;
  std::vector<ChunkInfo> bytewise;
  for (size_t i = 0; i < head.size(); ++i) chunker.Update(head.substr(i, 1), &bytewise);
  chunker.Finish(&bytewise);
  EXPECT_EQ(bytewise, expected);
}

TEST(ChunkerTest, ChunkEndsAtMaxSizeWhenNoBoundaryIsFound) {
  // Constant content never matches a mask here, so every chunk is cut at max_size.
  std::string zeros(1 << 20, '\0');
  std::vector<ChunkInfo> chunks = ChunkWhole(zeros);
  ASSERT_EQ(chunks.size(), 16u);
  for (const ChunkInfo& c : chunks) {
    EXPECT_EQ(c.length, 65536u);
    EXPECT_EQ(c.hash, chunks[0].hash);
  }
}

TEST(ChunkerTest, ShortAndEmptyContents) {
  EXPECT_TRUE(ChunkWhole("").empty());
  std::vector<ChunkInfo> one = ChunkWhole("hello");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], (ChunkInfo{0, 5, ChunkHash::Of("hello")}));
}

TEST(ChunkerTest, FinishStartsNewContentAtOffsetZero) {
  std::string data = RandomBytes(300000, 4);
  Chunker chunker;
  std::vector<ChunkInfo> first;
  chunker.Update(data, &first);
  chunker.Finish(&first);
  std::vector<ChunkInfo> second;
  chunker.Update(data, &second);
  chunker.Finish(&second);
  EXPECT_EQ(first, second);
  EXPECT_EQ(chunker.pending_bytes(), 0u);
}

TEST(ChunkerTest, InsertionMovesOnlyNearbyBoundaries) {
  std::string base = RandomBytes(4 << 20, 5);
  std::string changed = base;
  changed.insert(2 << 20, "inserted bytes");
  std::vector<ChunkInfo> a = ChunkWhole(base);
  std::vector<ChunkInfo> b = ChunkWhole(changed);
  // Chunks equal by hash on both sides, except around the insertion.
  size_t same_prefix = 0;
  while (same_prefix < a.size() && a[same_prefix] == b[same_prefix]) ++same_prefix;
  size_t same_suffix = 0;
  while (same_suffix < a.size() &&
         a[a.size() - 1 - same_suffix].hash == b[b.size() - 1 - same_suffix].hash) {
    ++same_suffix;
  }
  EXPECT_GE(same_prefix + same_suffix + 3, a.size());
}

// The boundaries are part of the replication format (chunker.h): these values were recorded
// from this implementation, checked against an independent Python transcription of the rules in
// chunker.h, and must never change within format version 1.
TEST(ChunkerTest, BoundariesOfFixedInputArePinned) {
  std::string data = RandomBytes(1 << 20, 42);
  std::vector<ChunkInfo> chunks = ChunkWhole(data);
  std::vector<uint32_t> lengths;
  uint64_t fingerprint = 0;  // a cheap summary of every length and its position
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i < 8) lengths.push_back(chunks[i].length);
    fingerprint = fingerprint * 1000003 + chunks[i].length;
  }
  EXPECT_EQ(chunks.size(), 110u);
  EXPECT_EQ(lengths, (std::vector<uint32_t>{10753, 2289, 13338, 2864, 10480, 13589, 4250, 8594}));
  EXPECT_EQ(fingerprint, 89921072015139670u);
}

}  // namespace
}  // namespace replsync
