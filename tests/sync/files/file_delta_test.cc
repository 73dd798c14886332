#include "sync/files/file_delta.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "tests/harness/random_bytes.h"

namespace replsync {
namespace {

using testing::RandomBytes;

// The result of running a DeltaEncoder over a content.
struct Encoded {
  std::vector<std::vector<pb::ContentOp>> batches;
  std::vector<ChunkInfo> chunks;
  std::string content_hash;
  uint64_t size = 0;
  uint64_t copied = 0;
  uint64_t literal = 0;

  size_t op_count() const {
    size_t n = 0;
    for (const auto& batch : batches) n += batch.size();
    return n;
  }
};

// Encodes `content` against `base_chunks`, fed in blocks of `block` bytes.
Encoded Encode(const std::vector<ChunkInfo>& base_chunks, std::string_view content,
               size_t part_bytes = DeltaEncoder::kDefaultPartBytes, size_t block = 1 << 20) {
  Encoded out;
  DeltaEncoder encoder(base_chunks, part_bytes);
  auto emit = [&out](std::vector<pb::ContentOp>&& ops) {
    out.batches.push_back(std::move(ops));
    return Status::Ok();
  };
  for (size_t pos = 0; pos < content.size(); pos += block) {
    Status st = encoder.Update(content.substr(pos, block), emit);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  Status st = encoder.Finish(emit);
  EXPECT_TRUE(st.ok()) << st.ToString();
  out.chunks = encoder.chunks();
  out.content_hash = encoder.content_hash();
  out.size = encoder.size();
  out.copied = encoder.copied_bytes();
  out.literal = encoder.literal_bytes();
  return out;
}

uint64_t LiteralBytes(const std::vector<pb::ContentOp>& ops) {
  uint64_t n = 0;
  for (const auto& op : ops) n += op.data().size();
  return n;
}

class FileDeltaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/file_delta_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    std::filesystem::remove_all(dir_);
  }

  // A new file `name` holding `content`, open read-write.
  int MakeFile(const std::string& name, std::string_view content) {
    std::string path = dir_ + "/" + name;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
    fds_.push_back(fd);
    size_t done = 0;
    while (done < content.size()) {
      ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      EXPECT_GT(n, 0);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    return fd;
  }

  std::string ReadAll(int fd) {
    struct stat st;
    EXPECT_EQ(::fstat(fd, &st), 0);
    std::string out(static_cast<size_t>(st.st_size), '\0');
    EXPECT_EQ(::pread(fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
    return out;
  }

  // Rebuilds the content of `encoded` over `base_fd` into a new file; checks that the decoder's
  // hash and size match the encoder's and returns the rebuilt bytes.
  std::string Decode(int base_fd, const Encoded& encoded) {
    int out_fd = MakeFile("rebuilt" + std::to_string(fds_.size()), "");
    DeltaDecoder decoder(base_fd, out_fd);
    for (const auto& batch : encoded.batches) {
      for (const auto& op : batch) {
        Status st = decoder.Apply(op);
        EXPECT_TRUE(st.ok()) << st.ToString();
        if (!st.ok()) return "";
      }
    }
    auto hash = decoder.Finish();
    EXPECT_TRUE(hash.ok()) << hash.status().ToString();
    if (!hash.ok()) return "";
    EXPECT_EQ(*hash, encoded.content_hash);
    EXPECT_EQ(decoder.size(), encoded.size);
    return ReadAll(out_fd);
  }

  std::string dir_;
  std::vector<int> fds_;
};

TEST_F(FileDeltaTest, InsertionInLargeFileSendsOnlyChunksAroundIt) {
  std::string base = RandomBytes(48 << 20, 1);
  Encoded base_encoded = Encode({}, base);
  std::string changed = base;
  changed.insert(24 << 20, "a few bytes typed into the middle of the file");

  Encoded delta = Encode(base_encoded.chunks, changed);
  EXPECT_LT(delta.literal, 3u * 64 * 1024);
  EXPECT_EQ(delta.copied + delta.literal, changed.size());
  EXPECT_LE(delta.op_count(), 5u);
  ASSERT_EQ(delta.batches.size(), 1u);
  EXPECT_EQ(delta.content_hash, Sha256::Of(changed));

  int base_fd = MakeFile("base", base);
  EXPECT_TRUE(Decode(base_fd, delta) == changed);
}

TEST_F(FileDeltaTest, ModifiedFileRoundTripsExactly) {
  std::string base = RandomBytes(3 << 20, 2);
  Encoded base_encoded = Encode({}, base);
  std::string changed = "prepended header" + base;
  changed.erase(500000, 30000);                          // a deletion
  std::memset(changed.data() + 1200000, 'x', 20000);     // an overwrite
  changed.append(RandomBytes(70000, 3));                 // an append
  changed.insert(2500000, base.substr(100000, 200000));  // a moved-in copy of earlier bytes

  // Odd-sized blocks, so chunks span Update calls.
  Encoded delta = Encode(base_encoded.chunks, changed, DeltaEncoder::kDefaultPartBytes, 77777);
  EXPECT_EQ(delta.size, changed.size());
  EXPECT_EQ(delta.content_hash, Sha256::Of(changed));
  EXPECT_GT(delta.copied, 2u * (1 << 20));
  EXPECT_EQ(delta.copied + delta.literal, changed.size());
  // The new chunk list is the one the chunker gives for the new content.
  Encoded fresh = Encode({}, changed);
  EXPECT_EQ(delta.chunks, fresh.chunks);

  int base_fd = MakeFile("base", base);
  EXPECT_TRUE(Decode(base_fd, delta) == changed);
}

TEST_F(FileDeltaTest, UnchangedFileIsOneCopyOp) {
  std::string base = RandomBytes(5 << 20, 4);
  Encoded base_encoded = Encode({}, base);
  Encoded delta = Encode(base_encoded.chunks, base);
  ASSERT_EQ(delta.batches.size(), 1u);
  ASSERT_EQ(delta.batches[0].size(), 1u);
  EXPECT_EQ(delta.batches[0][0].offset(), 0u);
  EXPECT_EQ(delta.batches[0][0].length(), base.size());
  EXPECT_EQ(delta.literal, 0u);
  int base_fd = MakeFile("base", base);
  EXPECT_TRUE(Decode(base_fd, delta) == base);
}

TEST_F(FileDeltaTest, SwappedHalvesAreCopiedFromWhereTheyAre) {
  std::string base = RandomBytes(2 << 20, 5);
  Encoded base_encoded = Encode({}, base);
  std::string changed = base.substr(1 << 20) + base.substr(0, 1 << 20);
  Encoded delta = Encode(base_encoded.chunks, changed);
  EXPECT_LT(delta.literal, 3u * 64 * 1024);
  EXPECT_LE(delta.op_count(), 6u);
  int base_fd = MakeFile("base", base);
  EXPECT_TRUE(Decode(base_fd, delta) == changed);
}

TEST_F(FileDeltaTest, WithoutBaseEverythingIsLiteral) {
  std::string content = RandomBytes(1 << 20, 6);
  Encoded encoded = Encode({}, content);
  EXPECT_EQ(encoded.literal, content.size());
  EXPECT_EQ(encoded.copied, 0u);
  ASSERT_EQ(encoded.op_count(), 1u);
  EXPECT_EQ(encoded.batches.back().back().data(), content);
  EXPECT_TRUE(Decode(-1, encoded) == content);
}

TEST_F(FileDeltaTest, SmallPartsBoundEachBatchAndStillDecode) {
  const size_t part_bytes = 64 * 1024;
  std::string base = RandomBytes(4 << 20, 7);
  Encoded base_encoded = Encode({}, base);
  // Every other 256 KiB region rewritten: about 2 MiB literal, interleaved with copies.
  std::string changed = base;
  for (size_t pos = 0; pos < changed.size(); pos += 512 * 1024) {
    std::string fresh = RandomBytes(256 * 1024, pos + 8);
    changed.replace(pos, fresh.size(), fresh);
  }

  Encoded delta = Encode(base_encoded.chunks, changed, part_bytes, 100000);
  EXPECT_GT(delta.batches.size(), 20u);
  EXPECT_GT(delta.copied, 1u << 20);
  uint64_t literal = 0;
  for (const auto& batch : delta.batches) {
    EXPECT_LT(LiteralBytes(batch), part_bytes + 64 * 1024);
    literal += LiteralBytes(batch);
  }
  EXPECT_EQ(literal, delta.literal);
  int base_fd = MakeFile("base", base);
  EXPECT_TRUE(Decode(base_fd, delta) == changed);
}

TEST_F(FileDeltaTest, EmptyContentEmitsOneEmptyBatch) {
  Encoded encoded = Encode({}, "");
  ASSERT_EQ(encoded.batches.size(), 1u);
  EXPECT_TRUE(encoded.batches[0].empty());
  EXPECT_TRUE(encoded.chunks.empty());
  EXPECT_EQ(encoded.size, 0u);
  EXPECT_EQ(encoded.content_hash, Sha256::Of(""));
  EXPECT_EQ(Decode(-1, encoded), "");
}

TEST_F(FileDeltaTest, EmitErrorStopsTheEncoder) {
  std::string content = RandomBytes(1 << 20, 9);
  DeltaEncoder encoder({}, 64 * 1024);
  int calls = 0;
  auto emit = [&calls](std::vector<pb::ContentOp>&&) {
    ++calls;
    return Status::IoError("append to journal: No space left on device");
  };
  Status st = encoder.Update(content, emit);
  EXPECT_EQ(st.code(), Status::Code::kIoError);
  EXPECT_EQ(calls, 1);
}

TEST_F(FileDeltaTest, FinishTwiceIsInternal) {
  DeltaEncoder encoder({});
  auto emit = [](std::vector<pb::ContentOp>&&) { return Status::Ok(); };
  ASSERT_TRUE(encoder.Finish(emit).ok());
  EXPECT_EQ(encoder.Finish(emit).code(), Status::Code::kInternal);
  EXPECT_EQ(encoder.Update("more", emit).code(), Status::Code::kInternal);
}

TEST_F(FileDeltaTest, CopyBeyondEndOfBaseIsCorruption) {
  int base_fd = MakeFile("base", std::string(1000, 'b'));
  int out_fd = MakeFile("out", "");
  DeltaDecoder decoder(base_fd, out_fd);
  pb::ContentOp op;
  op.set_offset(900);
  op.set_length(200);
  Status st = decoder.Apply(op);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("base ends at 1000"), std::string::npos) << st.message();

  pb::ContentOp far;
  far.set_offset(5000);
  far.set_length(1);
  EXPECT_TRUE(DeltaDecoder(base_fd, out_fd).Apply(far).IsCorruption());
}

TEST_F(FileDeltaTest, CopyWithoutBaseIsInvalidArgument) {
  int out_fd = MakeFile("out", "");
  DeltaDecoder decoder(-1, out_fd);
  pb::ContentOp op;
  op.set_offset(0);
  op.set_length(10);
  EXPECT_EQ(decoder.Apply(op).code(), Status::Code::kInvalidArgument);
}

TEST_F(FileDeltaTest, OpWithDataAndRangeIsCorruption) {
  int base_fd = MakeFile("base", "base content");
  int out_fd = MakeFile("out", "");
  DeltaDecoder decoder(base_fd, out_fd);
  pb::ContentOp op;
  op.set_data("literal");
  op.set_length(4);
  EXPECT_TRUE(decoder.Apply(op).IsCorruption());
}

TEST_F(FileDeltaTest, WriteFailureIsIoError) {
  int base_fd = MakeFile("base", "base content");
  DeltaDecoder decoder(base_fd, base_fd + 1000);  // not an open descriptor
  pb::ContentOp op;
  op.set_data("literal");
  Status st = decoder.Apply(op);
  EXPECT_EQ(st.code(), Status::Code::kIoError);
  EXPECT_NE(st.message().find("Bad file descriptor"), std::string::npos) << st.message();
}

TEST(ChunkListTest, RoundTripsAndHasTheDocumentedLayout) {
  std::vector<ChunkInfo> chunks = {
      {0, 0x01020304, ChunkHash{0x1112131415161718ULL, 0x2122232425262728ULL}},
      {0x01020304, 2048, ChunkHash::Of("second")},
      {0x01020304 + 2048, 7, ChunkHash::Of("third")},
  };
  std::string encoded = EncodeChunkList(chunks);
  ASSERT_EQ(encoded.size(), 60u);
  EXPECT_EQ(encoded.substr(0, 20), std::string("\x04\x03\x02\x01"
                                               "\x18\x17\x16\x15\x14\x13\x12\x11"
                                               "\x28\x27\x26\x25\x24\x23\x22\x21",
                                               20));
  auto decoded = DecodeChunkList(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, chunks);

  auto empty = DecodeChunkList("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(ChunkListTest, ChunkerOutputRoundTrips) {
  std::string content = RandomBytes(1 << 20, 10);
  Chunker chunker;
  std::vector<ChunkInfo> chunks;
  chunker.Update(content, &chunks);
  chunker.Finish(&chunks);
  auto decoded = DecodeChunkList(EncodeChunkList(chunks));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, chunks);
}

TEST(ChunkListTest, BadSizeOrZeroLengthIsCorruption) {
  std::string encoded = EncodeChunkList({{0, 100, ChunkHash::Of("a")}});
  EXPECT_TRUE(DecodeChunkList(encoded + "x").status().IsCorruption());
  EXPECT_TRUE(DecodeChunkList(encoded.substr(0, 19)).status().IsCorruption());
  std::string zero = EncodeChunkList({{0, 0, ChunkHash::Of("b")}});
  EXPECT_TRUE(DecodeChunkList(encoded + zero).status().IsCorruption());
}

}  // namespace
}  // namespace replsync
