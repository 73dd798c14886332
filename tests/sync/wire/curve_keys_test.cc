#include "sync/wire/curve_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace replsync {
namespace {

class CurveKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "curve_keys.XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(CurveKeysTest, GeneratedPairsAreDistinctZ85Keys) {
  auto a = GenerateCurveKeyPair();
  auto b = GenerateCurveKeyPair();
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->public_key.size(), kCurveKeyTextSize);
  EXPECT_EQ(a->secret_key.size(), kCurveKeyTextSize);
  EXPECT_NE(a->secret_key, b->secret_key);
  EXPECT_NE(a->public_key, a->secret_key);
}

TEST_F(CurveKeysTest, PublicKeyIsDerivedFromTheSecretKey) {
  auto pair = GenerateCurveKeyPair();
  ASSERT_TRUE(pair.ok());
  auto derived = CurvePublicKeyOf(pair->secret_key);
  ASSERT_TRUE(derived.ok()) << derived.status().ToString();
  EXPECT_EQ(*derived, pair->public_key);
}

TEST_F(CurveKeysTest, WrittenFileIsOwnerOnlyAndRoundTrips) {
  auto pair = GenerateCurveKeyPair();
  ASSERT_TRUE(pair.ok());
  const mode_t old_umask = ::umask(0);  // the file must be 0600 even under a permissive umask
  const std::string path = dir_ + "/node1.key";
  Status written = WriteCurveSecretKeyFile(path, pair->secret_key);
  ::umask(old_umask);
  ASSERT_TRUE(written.ok()) << written.ToString();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, pair->secret_key + "\n");

  auto loaded = LoadCurveSecretKeyFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->secret_key, pair->secret_key);
  EXPECT_EQ(loaded->public_key, pair->public_key);
}

TEST_F(CurveKeysTest, ExistingFileIsNeverOverwritten) {
  const std::string path = Write("node1.key", "precious\n", 0600);
  auto pair = GenerateCurveKeyPair();
  ASSERT_TRUE(pair.ok());
  Status st = WriteCurveSecretKeyFile(path, pair->secret_key);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("already exists"), std::string::npos) << st.message();
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "precious\n");
}

TEST_F(CurveKeysTest, DanglingSymlinkIsNotFollowed) {
  const std::string target = dir_ + "/elsewhere.key";
  const std::string path = dir_ + "/node1.key";
  ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0);
  auto pair = GenerateCurveKeyPair();
  ASSERT_TRUE(pair.ok());
  EXPECT_FALSE(WriteCurveSecretKeyFile(path, pair->secret_key).ok());
  EXPECT_FALSE(std::filesystem::exists(target));
}

TEST_F(CurveKeysTest, KeyFileReadableByOthersIsRefusedWithChmodHint) {
  auto pair = GenerateCurveKeyPair();
  ASSERT_TRUE(pair.ok());
  for (mode_t mode : {0644, 0640, 0604}) {
    const std::string path = Write("open.key", pair->secret_key + "\n", mode);
    auto loaded = LoadCurveSecretKeyFile(path);
    ASSERT_FALSE(loaded.ok()) << std::oct << mode;
    EXPECT_NE(loaded.status().message().find("chmod 600 " + path), std::string::npos)
        << loaded.status().message();
  }
}

TEST_F(CurveKeysTest, MissingFileSaysHowToMakeOne) {
  auto loaded = LoadCurveSecretKeyFile(dir_ + "/none.key");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), Status::Code::kNotFound);
  EXPECT_NE(loaded.status().message().find("replsync keygen --out " + dir_ + "/none.key"),
            std::string::npos)
      << loaded.status().message();
}

TEST_F(CurveKeysTest, BadContentsAreRefused) {
  auto pair = GenerateCurveKeyPair();
  ASSERT_TRUE(pair.ok());
  const std::vector<std::string> bad = {
      "",
      "\n",
      pair->secret_key.substr(0, 39) + "\n",         // too short
      pair->secret_key + "x\n",                      // too long
      pair->secret_key.substr(0, 39) + "~\n",        // not Z85
      pair->secret_key + "\n" + pair->secret_key + "\n",  // two keys
      std::string(5000, 'a'),                        // not a key file at all
  };
  for (const std::string& text : bad) {
    auto loaded = LoadCurveSecretKeyFile(Write("bad.key", text, 0600));
    ASSERT_FALSE(loaded.ok()) << "'" << text << "'";
    EXPECT_EQ(loaded.status().code(), Status::Code::kInvalidArgument) << text;
    EXPECT_NE(loaded.status().message().find("bad.key"), std::string::npos);
  }
  // A key written with CRLF or without a final newline is still one key.
  for (const std::string& text : {pair->secret_key, pair->secret_key + "\r\n"}) {
    auto loaded = LoadCurveSecretKeyFile(Write("ok.key", text, 0600));
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->public_key, pair->public_key);
  }
}

TEST_F(CurveKeysTest, PublicKeyOfRejectsNonKeys) {
  EXPECT_FALSE(CurvePublicKeyOf("").ok());
  EXPECT_FALSE(CurvePublicKeyOf(std::string(40, '~')).ok());
  EXPECT_FALSE(CurvePublicKeyOf(std::string(41, 'a')).ok());
}

}  // namespace
}  // namespace replsync
