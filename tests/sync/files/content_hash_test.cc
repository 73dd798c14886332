#include "sync/files/content_hash.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <unordered_set>

namespace replsync {
namespace {

std::string RandomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(HexOf(Sha256::Of("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexOf(Sha256::Of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexOf(Sha256::Of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256::Of("abc").size(), Sha256::kSize);
}

TEST(Sha256Test, IncrementalEqualsOneShotAndFinalStartsOver) {
  std::string data = RandomBytes(100000, 1);
  Sha256 sha;
  size_t pos = 0;
  for (size_t step = 1; pos < data.size(); step = step * 3 + 1) {
    size_t n = std::min(step, data.size() - pos);
    sha.Update(data.data() + pos, n);
    pos += n;
  }
  EXPECT_EQ(sha.Final(), Sha256::Of(data));
  sha.Update(std::string_view("abc"));
  EXPECT_EQ(HexOf(sha.Final()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha.Final(), Sha256::Of(""));
}

TEST(Sha256Test, MovedHashKeepsItsState) {
  Sha256 a;
  a.Update(std::string_view("ab"));
  Sha256 b = std::move(a);
  b.Update(std::string_view("c"));
  EXPECT_EQ(b.Final(), Sha256::Of("abc"));
}

class Sha256OfFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/content_hash_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `content` to a new file and returns it open for reading.
  int WriteFile(const std::string& content) {
    std::string path = dir_ + "/file";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    return fd;
  }

  std::string dir_;
};

TEST_F(Sha256OfFileTest, HashesWholeFileOverSeveralBlocksFromOffsetZero) {
  std::string content = RandomBytes(3 * (1 << 20) + 12345, 2);
  int fd = WriteFile(content);
  off_t position = ::lseek(fd, 0, SEEK_CUR);  // at the end, after the write
  auto hash = Sha256OfFile(fd);
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_EQ(*hash, Sha256::Of(content));
  EXPECT_EQ(::lseek(fd, 0, SEEK_CUR), position);
  ::close(fd);
}

TEST_F(Sha256OfFileTest, EmptyFileHashesLikeEmptyString) {
  int fd = WriteFile("");
  auto hash = Sha256OfFile(fd);
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_EQ(*hash, Sha256::Of(""));
  ::close(fd);
}

TEST_F(Sha256OfFileTest, UnreadableDescriptorIsIoErrorNamingErrno) {
  auto hash = Sha256OfFile(-1);
  ASSERT_FALSE(hash.ok());
  EXPECT_EQ(hash.status().code(), Status::Code::kIoError);
  EXPECT_NE(hash.status().message().find("Bad file descriptor"), std::string::npos)
      << hash.status().message();
}

TEST(ChunkHashTest, IsXxh3With128Bits) {
  // The reference XXH3-128 of empty input.
  ChunkHash empty = ChunkHash::Of("");
  EXPECT_EQ(empty.high, 0x99aa06d3014798d8ULL);
  EXPECT_EQ(empty.low, 0x6001c324468d497fULL);
  EXPECT_EQ(ChunkHash::Of("abc"), ChunkHash::Of(std::string("abc").data(), 3));
  EXPECT_FALSE(ChunkHash::Of("abc") == ChunkHash::Of("abd"));
}

TEST(ChunkHashTest, UsableAsUnorderedKey) {
  std::unordered_set<ChunkHash> set;
  for (int i = 0; i < 1000; ++i) set.insert(ChunkHash::Of(std::to_string(i)));
  set.insert(ChunkHash::Of("7"));
  EXPECT_EQ(set.size(), 1000u);
  EXPECT_TRUE(set.count(ChunkHash::Of("999")));
  EXPECT_FALSE(set.count(ChunkHash::Of("1000")));
}

}  // namespace
}  // namespace replsync
