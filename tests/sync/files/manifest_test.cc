#include "sync/files/manifest.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace replsync {
namespace {

using Type = ManifestEntry::Type;

ManifestEntry File(std::string path, uint64_t inode = 1) {
  ManifestEntry e;
  e.path = std::move(path);
  e.type = Type::kFile;
  e.mode = 0100644;
  e.uid = 1000;
  e.gid = 1000;
  e.size = 4096;
  e.mtime_ns = 1700000000123456789;
  e.ctime_ns = 1700000000987654321;
  e.inode = inode;
  e.content_hash = std::string(32, '\x5a');
  e.chunks = std::string("\x00\x10\x00\x00", 4) + std::string(16, '\x01');
  return e;
}

ManifestEntry Dir(std::string path) {
  ManifestEntry e;
  e.path = std::move(path);
  e.type = Type::kDirectory;
  e.mode = 040755;
  e.mtime_ns = 1;
  e.ctime_ns = 2;
  e.inode = 7;
  return e;
}

// Runs one SQL text directly on a database file, outside Manifest. Returns the sqlite result.
int RawExec(const std::string& file, const std::string& sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open(file.c_str(), &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return rc;
}

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "manifest_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << strerror(errno);
    dir_ = tmpl;
    file_ = dir_ + "/manifest.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Manifest> OpenOrDie() {
    auto m = Manifest::Open(file_);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? std::move(m).value() : nullptr;
  }

  static void PutAll(Manifest& m, const std::vector<ManifestEntry>& entries) {
    for (const auto& e : entries) ASSERT_TRUE(m.Put(e).ok()) << e.path;
  }

  static std::vector<std::string> AllPaths(const Manifest& m) {
    std::vector<std::string> paths;
    const Status st = m.ForEach([&](const ManifestEntry& e) {
      paths.push_back(e.path);
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return paths;
  }

  static std::vector<std::string> Paths(const std::vector<ManifestEntry>& entries) {
    std::vector<std::string> paths;
    for (const auto& e : entries) paths.push_back(e.path);
    return paths;
  }

  std::string dir_;
  std::string file_;
};

TEST_F(ManifestTest, RoundTripKeepsEveryFieldAndUnusualPaths) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);

  ManifestEntry file = File("dir with spaces/file name.txt", 42);
  file.content_hash = std::string("\x00\x01\x02\x00\xff\xfe", 6) + std::string(26, '\0');
  file.chunks = std::string("\x00\x00\x00\x00\x00\x20\x00\x00", 8) + std::string(32, '\0');
  file.size = std::numeric_limits<uint64_t>::max();
  file.inode = std::numeric_limits<uint64_t>::max() - 1;
  file.uid = std::numeric_limits<uint32_t>::max();
  file.gid = 0;
  file.mode = 0104755;
  file.mtime_ns = -1234567890123;  // before 1970
  file.ctime_ns = std::numeric_limits<int64_t>::max();

  ManifestEntry link;
  link.path = "-leading-dash";
  link.type = Type::kSymlink;
  link.mode = 0120777;
  link.uid = 5;
  link.gid = 6;
  link.size = 11;
  link.mtime_ns = 3;
  link.ctime_ns = 4;
  link.inode = 99;
  link.link_target = "../target \n\xff";

  const std::vector<ManifestEntry> entries = {
      file,
      link,
      Dir("new\nline"),
      File("non-ascii/été/файл/日本語.txt"),
      File("raw/\xff\xfe\x80 not utf-8"),
      File("tab\there/\x01\x1f"),
  };
  PutAll(*m, entries);
  for (const auto& e : entries) {
    auto got = m->Get(e.path);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(got->has_value()) << e.path;
    EXPECT_EQ(**got, e) << e.path;
  }
  EXPECT_EQ(*m->Count(), entries.size());
}

TEST_F(ManifestTest, GetOfMissingPathIsNullopt) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->Put(File("a")).ok());
  auto got = m->Get("b");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_FALSE(got->has_value());
  // A prefix or an extension of a stored path is another path.
  EXPECT_FALSE(m->Get("a/x")->has_value());
}

TEST_F(ManifestTest, PutReplacesExistingEntry) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->Put(File("a", 1)).ok());
  ManifestEntry replacement = Dir("a");
  ASSERT_TRUE(m->Put(replacement).ok());
  EXPECT_EQ(**m->Get("a"), replacement);
  EXPECT_EQ(*m->Count(), 1u);
}

TEST_F(ManifestTest, InvalidPathsAreInvalidArgument) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  for (const std::string& bad : {std::string(), std::string("/abs"), std::string("a/"),
                                 std::string("a//b"), std::string("a\0b", 3)}) {
    EXPECT_EQ(m->Put(File(bad)).code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_EQ(m->Get(bad).status().code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_EQ(m->Delete(bad).code(), Status::Code::kInvalidArgument) << bad;
  }
  ManifestEntry bad_type = File("x");
  bad_type.type = static_cast<Type>(9);
  EXPECT_EQ(m->Put(bad_type).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(*m->Count(), 0u);
}

TEST_F(ManifestTest, DotAndDotDotComponentsAreInvalidArgument) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  for (const std::string bad : {"..", ".", "../secret.txt", "a/../../b", "a/./b", "a/.."}) {
    EXPECT_EQ(m->Put(File(bad)).code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_EQ(m->Get(bad).status().code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_EQ(m->Delete(bad).code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_EQ(m->Rename("x", bad).code(), Status::Code::kInvalidArgument) << bad;
  }
  // Names that merely start with dots are ordinary names.
  for (const std::string good : {"...", "..a", ".hidden", "a/.b/..c"}) {
    EXPECT_TRUE(m->Put(File(good)).ok()) << good;
  }
  EXPECT_EQ(*m->Count(), 4u);
}

TEST_F(ManifestTest, DeleteOfSubtreeKeepsSiblingsWithCommonPrefix) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  PutAll(*m, {Dir("a"), Dir("a/b"), File("a/b/c"), Dir("a/b/d"), File("a/b/d/e"), File("a/bc"),
              File("a/b.txt"), File("a/b0"), File("a/b-x"), File("a/b 1"), File("a/a"),
              File("a/b\xff"), File("b")});
  ASSERT_TRUE(m->Delete("a/b").ok());
  EXPECT_EQ(AllPaths(*m), (std::vector<std::string>{"a", "a/a", "a/b 1", "a/b-x", "a/b.txt", "a/b0",
                                                    "a/bc", "a/b\xff", "b"}));
}

TEST_F(ManifestTest, DeleteOfFileRemovesOnlyIt) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  PutAll(*m, {File("x"), File("x.y"), File("xy")});
  ASSERT_TRUE(m->Delete("x").ok());
  EXPECT_EQ(AllPaths(*m), (std::vector<std::string>{"x.y", "xy"}));
}

TEST_F(ManifestTest, DeleteOfMissingPathIsOk) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->Put(File("a")).ok());
  EXPECT_TRUE(m->Delete("nothing/here").ok());
  EXPECT_EQ(*m->Count(), 1u);
}

TEST_F(ManifestTest, RenameOfDirectoryOntoExistingSubtreeReplacesIt) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  const ManifestEntry src_x = File("src/x", 11);
  const ManifestEntry src_sub_y = File("src/sub/y", 12);
  PutAll(*m, {Dir("src"), src_x, Dir("src/sub"), src_sub_y, File("src.txt"), File("srcdir/z"),
              Dir("dst"), Dir("dst/old"), File("dst/old/z"), File("dst/x", 99), File("dstx"),
              File("dst.txt")});
  ASSERT_TRUE(m->Rename("src", "dst").ok());
  EXPECT_EQ(AllPaths(*m), (std::vector<std::string>{"dst", "dst.txt", "dst/sub", "dst/sub/y",
                                                    "dst/x", "dstx", "src.txt", "srcdir/z"}));
  // The moved rows keep everything but their path.
  ManifestEntry expected = src_x;
  expected.path = "dst/x";
  EXPECT_EQ(**m->Get("dst/x"), expected);
  expected = src_sub_y;
  expected.path = "dst/sub/y";
  EXPECT_EQ(**m->Get("dst/sub/y"), expected);
}

TEST_F(ManifestTest, RenameToAnotherDirectoryDepthMovesSubtree) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  PutAll(*m, {Dir("a"), Dir("a/b"), File("a/b/c"), Dir("x")});
  ASSERT_TRUE(m->Rename("a/b", "x/deeper name").ok());
  EXPECT_EQ(AllPaths(*m), (std::vector<std::string>{"a", "x", "x/deeper name", "x/deeper name/c"}));
  ASSERT_TRUE(m->Rename("x/deeper name", "top").ok());
  EXPECT_EQ(AllPaths(*m), (std::vector<std::string>{"a", "top", "top/c", "x"}));
}

TEST_F(ManifestTest, RenameKeepsBytesThatAreNotUtf8) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  PutAll(*m, {Dir("\xc3\xa9t\xff"), File("\xc3\xa9t\xff/\x80\xfe"), File("\xc3\xa9t\xff/ok")});
  ASSERT_TRUE(m->Rename("\xc3\xa9t\xff", "n\xe9w").ok());
  EXPECT_EQ(AllPaths(*m), (std::vector<std::string>{"n\xe9w", "n\xe9w/ok", "n\xe9w/\x80\xfe"}));
  EXPECT_EQ(**m->Get("n\xe9w/\x80\xfe"), File("n\xe9w/\x80\xfe"));
}

TEST_F(ManifestTest, RenameOfMissingPathIsNotFoundAndChangesNothing) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  PutAll(*m, {File("to"), File("to/x"), File("fromx")});
  const Status st = m->Rename("from", "to");
  EXPECT_EQ(st.code(), Status::Code::kNotFound) << st.ToString();
  EXPECT_EQ(AllPaths(*m), (std::vector<std::string>{"fromx", "to", "to/x"}));
}

TEST_F(ManifestTest, RenameIntoOwnSubtreeIsInvalidArgument) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  PutAll(*m, {Dir("a"), Dir("a/b")});
  EXPECT_EQ(m->Rename("a", "a/b/c").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(m->Rename("a/b", "a").code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(m->Rename("a", "a").ok());
  EXPECT_EQ(AllPaths(*m), (std::vector<std::string>{"a", "a/b"}));
}

TEST_F(ManifestTest, ChildrenOfRootAndOfNestedDirectory) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  PutAll(*m, {Dir("a"), Dir("a/b"), File("a/b/c"), Dir("a/b/d"), File("a/b/d/e"), File("a/b.txt"),
              File("a/bc"), File("a.txt"), Dir("b"), File("b/x"), File("c/d"), File("z")});
  auto root = m->Children("");
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(Paths(*root), (std::vector<std::string>{"a", "a.txt", "b", "z"}));
  EXPECT_EQ((*root)[0], Dir("a"));

  auto a = m->Children("a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(Paths(*a), (std::vector<std::string>{"a/b", "a/b.txt", "a/bc"}));

  auto ab = m->Children("a/b");
  ASSERT_TRUE(ab.ok()) << ab.status().ToString();
  EXPECT_EQ(Paths(*ab), (std::vector<std::string>{"a/b/c", "a/b/d"}));
  EXPECT_EQ((*ab)[0], File("a/b/c"));

  // "c" has no row of its own, but its child does.
  EXPECT_EQ(Paths(*m->Children("c")), (std::vector<std::string>{"c/d"}));
  EXPECT_TRUE(m->Children("a/b/c")->empty());
  EXPECT_TRUE(m->Children("missing")->empty());
}

TEST_F(ManifestTest, ChildrenSkipsLargeSubtrees) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->Begin().ok());
  for (int d = 0; d < 5; ++d) {
    const std::string dir = "d" + std::to_string(d);
    ASSERT_TRUE(m->Put(Dir(dir)).ok());
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(m->Put(File(dir + "/sub/f" + std::to_string(i))).ok());
    }
  }
  ASSERT_TRUE(m->Commit().ok());
  EXPECT_EQ(Paths(*m->Children("")), (std::vector<std::string>{"d0", "d1", "d2", "d3", "d4"}));
  EXPECT_EQ(m->Children("d2/sub")->size(), 500u);
}

TEST_F(ManifestTest, ForEachVisitsEveryEntryInPathOrderAcrossBatches) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  std::vector<std::string> paths;
  for (int i = 0; i < 3000; ++i) paths.push_back("p/" + std::to_string(i * 7919 % 3001));
  std::shuffle(paths.begin(), paths.end(), std::mt19937(42));
  ASSERT_TRUE(m->Begin().ok());
  for (const auto& p : paths) ASSERT_TRUE(m->Put(File(p)).ok());
  ASSERT_TRUE(m->Commit().ok());
  std::sort(paths.begin(), paths.end());
  EXPECT_EQ(AllPaths(*m), paths);
}

TEST_F(ManifestTest, ForEachStopsAtFirstErrorAndReturnsIt) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  PutAll(*m, {File("a"), File("b"), File("c")});
  std::vector<std::string> seen;
  const Status st = m->ForEach([&](const ManifestEntry& e) {
    seen.push_back(e.path);
    return e.path == "b" ? Status::Aborted("stop here") : Status::Ok();
  });
  EXPECT_EQ(st.code(), Status::Code::kAborted);
  EXPECT_EQ(st.message(), "stop here");
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
}

TEST_F(ManifestTest, ForEachCallbackMayModifyTheManifest) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  PutAll(*m, {File("a"), File("b"), File("c")});
  const Status st = m->ForEach([&](const ManifestEntry& e) {
    ManifestEntry changed = e;
    changed.size = 1;
    return m->Put(changed);
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  for (const char* p : {"a", "b", "c"}) EXPECT_EQ((*m->Get(p))->size, 1u) << p;
}

TEST_F(ManifestTest, RollbackDiscardsChangesAndCommitKeepsThem) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->Put(File("kept")).ok());
  ASSERT_TRUE(m->Begin().ok());
  EXPECT_TRUE(m->in_transaction());
  EXPECT_EQ(m->Begin().code(), Status::Code::kInternal);
  ASSERT_TRUE(m->Put(File("discarded")).ok());
  ASSERT_TRUE(m->Delete("kept").ok());
  ASSERT_TRUE(m->Rollback().ok());
  EXPECT_FALSE(m->in_transaction());
  EXPECT_EQ(AllPaths(*m), (std::vector<std::string>{"kept"}));
  EXPECT_TRUE(m->Rollback().ok());  // no transaction: nothing to do
  EXPECT_EQ(m->Commit().code(), Status::Code::kInternal);

  ASSERT_TRUE(m->Begin().ok());
  ASSERT_TRUE(m->Put(File("new")).ok());
  ASSERT_TRUE(m->Rename("kept", "moved").ok());
  ASSERT_TRUE(m->Commit().ok());
  m.reset();
  m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(AllPaths(*m), (std::vector<std::string>{"moved", "new"}));
}

TEST_F(ManifestTest, UncommittedTransactionIsLostWhenClosed) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->Begin().ok());
  ASSERT_TRUE(m->Put(File("pending")).ok());
  m.reset();
  m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(*m->Count(), 0u);
}

TEST_F(ManifestTest, ReopenKeepsEntriesAndMeta) {
  {
    auto m = OpenOrDie();
    ASSERT_NE(m, nullptr);
    PutAll(*m, {Dir("d"), File("d/f", 3)});
    ASSERT_TRUE(m->PutMeta("last_rescan", "2024-05-01T10:00:00Z").ok());
  }
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(AllPaths(*m), (std::vector<std::string>{"d", "d/f"}));
  EXPECT_EQ(**m->Get("d/f"), File("d/f", 3));
  EXPECT_EQ(**m->GetMeta("last_rescan"), "2024-05-01T10:00:00Z");
  EXPECT_EQ(**m->GetMeta("format_version"), "1");
}

TEST_F(ManifestTest, MetaValuesRoundTripAndFormatVersionIsReserved) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->GetMeta("last_rescan")->has_value());
  ASSERT_TRUE(m->PutMeta("last_rescan", "1").ok());
  ASSERT_TRUE(m->PutMeta("last_rescan", "2").ok());
  ASSERT_TRUE(m->PutMeta("empty", "").ok());
  EXPECT_EQ(**m->GetMeta("last_rescan"), "2");
  EXPECT_EQ(**m->GetMeta("empty"), "");
  EXPECT_EQ(m->PutMeta("format_version", "2").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(**m->GetMeta("format_version"), "1");
}

TEST_F(ManifestTest, NewManifestUsesWalJournal) {
  ASSERT_NE(OpenOrDie(), nullptr);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(ManifestTest, FileOfAnotherFormatIsCorruptionAndStaysUnchanged) {
  const std::string text(4096, 'x');
  std::ofstream(file_) << "this is a text file, not a database\n" << text;
  auto m = Manifest::Open(file_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kCorruption) << m.status().ToString();
  EXPECT_NE(m.status().message().find(file_), std::string::npos) << m.status().ToString();
  EXPECT_NE(m.status().message().find("remove it"), std::string::npos) << m.status().ToString();
  EXPECT_NE(m.status().message().find("rescans"), std::string::npos) << m.status().ToString();
  EXPECT_EQ(std::filesystem::file_size(file_), 36 + text.size());
}

TEST_F(ManifestTest, SqliteDatabaseThatIsNotAManifestIsCorruption) {
  ASSERT_EQ(RawExec(file_, "CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('hi');"),
            SQLITE_OK);
  auto m = Manifest::Open(file_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kCorruption) << m.status().ToString();
  EXPECT_NE(m.status().message().find(file_), std::string::npos) << m.status().ToString();
  EXPECT_NE(m.status().message().find("remove it"), std::string::npos) << m.status().ToString();
  // The foreign database keeps its rollback journal mode and its table.
  EXPECT_FALSE(std::filesystem::exists(file_ + "-wal"));
  EXPECT_EQ(RawExec(file_, "SELECT x FROM notes"), SQLITE_OK);
}

TEST_F(ManifestTest, OtherFormatVersionIsCorruption) {
  {
    auto m = OpenOrDie();
    ASSERT_NE(m, nullptr);
    ASSERT_TRUE(m->Put(File("a")).ok());
  }
  ASSERT_EQ(RawExec(file_, "UPDATE meta SET value = '2' WHERE key = 'format_version'"), SQLITE_OK);
  auto m = Manifest::Open(file_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kCorruption) << m.status().ToString();
  EXPECT_NE(m.status().message().find("format version \"2\""), std::string::npos)
      << m.status().ToString();
  EXPECT_NE(m.status().message().find(file_), std::string::npos) << m.status().ToString();
  EXPECT_NE(m.status().message().find("remove it"), std::string::npos) << m.status().ToString();
}

TEST_F(ManifestTest, MissingFormatVersionIsCorruption) {
  ASSERT_NE(OpenOrDie(), nullptr);
  ASSERT_EQ(RawExec(file_, "DELETE FROM meta"), SQLITE_OK);
  auto m = Manifest::Open(file_);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kCorruption) << m.status().ToString();
}

TEST_F(ManifestTest, StoredUnknownTypeIsCorruption) {
  {
    auto m = OpenOrDie();
    ASSERT_NE(m, nullptr);
    ASSERT_TRUE(m->Put(File("a")).ok());
  }
  ASSERT_EQ(RawExec(file_, "UPDATE files SET type = 9"), SQLITE_OK);
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->Get("a").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(m->ForEach([](const ManifestEntry&) { return Status::Ok(); }).code(),
            Status::Code::kCorruption);
}

TEST_F(ManifestTest, OpenInMissingDirectoryIsIoErrorNamingTheFile) {
  const std::string missing = dir_ + "/no/such/dir/manifest.db";
  auto m = Manifest::Open(missing);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kIoError) << m.status().ToString();
  EXPECT_NE(m.status().message().find("open manifest " + missing), std::string::npos)
      << m.status().ToString();
}

TEST_F(ManifestTest, DamagedPageIsCorruptionNamingTheFile) {
  {
    auto m = OpenOrDie();
    ASSERT_NE(m, nullptr);
    PutAll(*m, {File("a"), File("b")});
  }  // closing checkpoints the WAL into the file
  ASSERT_FALSE(std::filesystem::exists(file_ + "-wal"));
  // Page 2 (bytes 4096..8191 with the default page size) is the root of table files.
  {
    std::fstream f(file_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    const std::string garbage(4096, '\xab');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  const Status st = m->Get("a").status();
  EXPECT_EQ(st.code(), Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("get \"a\" from manifest " + file_ + ": "), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("remove it"), std::string::npos) << st.ToString();
}

TEST_F(ManifestTest, HundredThousandPutsInOneTransaction) {
  auto m = OpenOrDie();
  ASSERT_NE(m, nullptr);
  constexpr int kEntries = 100000;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(m->Begin().ok());
  for (int i = 0; i < kEntries; ++i) {
    ManifestEntry e = File("dir" + std::to_string(i % 100) + "/file" + std::to_string(i), i);
    e.chunks.assign(20 * 8, static_cast<char>(i));  // 8 chunks
    ASSERT_TRUE(m->Put(e).ok());
  }
  ASSERT_TRUE(m->Commit().ok());
  const auto put_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  const auto scan_start = std::chrono::steady_clock::now();
  uint64_t visited = 0;
  ASSERT_TRUE(m->ForEach([&](const ManifestEntry&) {
                 ++visited;
                 return Status::Ok();
               }).ok());
  const auto scan_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - scan_start)
                           .count();
  std::printf("[ manifest ] %d puts in one transaction: %lld ms; ForEach over them: %lld ms\n",
              kEntries, static_cast<long long>(put_ms), static_cast<long long>(scan_ms));
  EXPECT_EQ(visited, static_cast<uint64_t>(kEntries));
  EXPECT_EQ(*m->Count(), static_cast<uint64_t>(kEntries));
  EXPECT_EQ(m->Children("dir7")->size(), static_cast<size_t>(kEntries / 100));
}

}  // namespace
}  // namespace replsync
