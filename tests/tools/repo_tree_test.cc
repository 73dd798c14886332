#include "tests/harness/repo_tree.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace replsync::testing {

namespace {

namespace fs = std::filesystem;

class RepoTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/repo_tree_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    primary_ = dir_ + "/primary";
    secondary_ = dir_ + "/secondary";
    ASSERT_EQ(mkdir(primary_.c_str(), 0755), 0);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static void WriteFile(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good()) << path;
  }

  static void SetMtime(const std::string& path, int64_t sec, long nsec) {
    struct timespec times[2] = {{sec, nsec}, {sec, nsec}};
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
  }

  // A small tree with one entry of each type and fixed times, built the same way in `root`.
  static void BuildSmallTree(const std::string& root) {
    if (!fs::exists(root)) {
      ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
    }
    ASSERT_EQ(mkdir((root + "/d").c_str(), 0750), 0);
    WriteFile(root + "/d/f.txt", "hello world");
    ASSERT_EQ(chmod((root + "/d/f.txt").c_str(), 0640), 0);
    ASSERT_EQ(lchown((root + "/d/f.txt").c_str(), 1000, 1001), 0);
    WriteFile(root + "/top", "top");
    ASSERT_EQ(symlink("d/f.txt", (root + "/link").c_str()), 0);
    SetMtime(root + "/d/f.txt", 1700000000, 123456789);
    SetMtime(root + "/top", 1700000001, 1);
    SetMtime(root + "/link", 1700000002, 2);
    SetMtime(root + "/d", 1700000003, 3);
  }

  static TreeSnapshot Snap(const std::string& root, SnapshotOptions options = {}) {
    auto snap = SnapshotTree(root, options);
    EXPECT_TRUE(snap.ok()) << snap.status().ToString();
    return snap.ok() ? *snap : TreeSnapshot{};
  }

  // The differences between the primary and secondary small trees.
  std::vector<std::string> Diff() { return CompareTrees(Snap(primary_), Snap(secondary_)); }

  static std::string Join(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }

  std::string dir_;
  std::string primary_;
  std::string secondary_;
};

TEST_F(RepoTreeTest, SnapshotRecordsTypesMetadataAndRelativePaths) {
  BuildSmallTree(primary_);
  TreeSnapshot snap = Snap(primary_);
  ASSERT_EQ(snap.size(), 4u);
  const TreeEntry& f = snap.at("d/f.txt");
  EXPECT_EQ(f.type, EntryType::kFile);
  EXPECT_EQ(f.mode, 0640u);
  EXPECT_EQ(f.uid, 1000u);
  EXPECT_EQ(f.gid, 1001u);
  EXPECT_EQ(f.size, 11u);
  EXPECT_EQ(f.mtime_ns, 1700000000123456789);
  EXPECT_NE(f.content_hash, (std::array<uint64_t, 2>{}));
  EXPECT_EQ(snap.at("d").type, EntryType::kDirectory);
  EXPECT_EQ(snap.at("d").mode, 0750u);
  EXPECT_EQ(snap.at("d").mtime_ns, 1700000003000000003);
  const TreeEntry& link = snap.at("link");
  EXPECT_EQ(link.type, EntryType::kSymlink);
  EXPECT_EQ(link.link_target, "d/f.txt");
  EXPECT_EQ(link.mtime_ns, 1700000002000000002);
  EXPECT_FALSE(snap.contains("."));
}

TEST_F(RepoTreeTest, SnapshotOfMissingRootIsNotFound) {
  auto snap = SnapshotTree(dir_ + "/nope");
  ASSERT_FALSE(snap.ok());
  EXPECT_TRUE(snap.status().IsNotFound()) << snap.status().ToString();
}

TEST_F(RepoTreeTest, RootEntryIncludedOnlyWhenAsked) {
  BuildSmallTree(primary_);
  SnapshotOptions options;
  options.include_root = true;
  TreeSnapshot snap = Snap(primary_, options);
  ASSERT_TRUE(snap.contains("."));
  EXPECT_EQ(snap.at(".").type, EntryType::kDirectory);
}

TEST_F(RepoTreeTest, IdenticalTreesHaveNoDifferences) {
  BuildSmallTree(primary_);
  BuildSmallTree(secondary_);
  EXPECT_EQ(Diff(), std::vector<std::string>{});
}

TEST_F(RepoTreeTest, ContentDifferenceIsReported) {
  BuildSmallTree(primary_);
  BuildSmallTree(secondary_);
  WriteFile(secondary_ + "/top", "TOP");
  SetMtime(secondary_ + "/top", 1700000001, 1);
  EXPECT_EQ(Diff(), std::vector<std::string>{"content differs: top (same size 3)"});
  WriteFile(secondary_ + "/top", "tops");
  SetMtime(secondary_ + "/top", 1700000001, 1);
  EXPECT_EQ(Diff(), std::vector<std::string>{"content differs: top (size 3 vs 4)"});
}

TEST_F(RepoTreeTest, ModeDifferenceIsReported) {
  BuildSmallTree(primary_);
  BuildSmallTree(secondary_);
  ASSERT_EQ(chmod((secondary_ + "/d/f.txt").c_str(), 04755), 0);
  EXPECT_EQ(Diff(), std::vector<std::string>{"mode differs: d/f.txt (0640 vs 4755)"});
}

TEST_F(RepoTreeTest, OwnerDifferenceIsReported) {
  BuildSmallTree(primary_);
  BuildSmallTree(secondary_);
  ASSERT_EQ(lchown((secondary_ + "/link").c_str(), 7, 8), 0);
  EXPECT_EQ(Diff(), std::vector<std::string>{"owner differs: link (uid:gid 0:0 vs 7:8)"});
}

TEST_F(RepoTreeTest, OneNanosecondMtimeDifferenceIsReported) {
  BuildSmallTree(primary_);
  BuildSmallTree(secondary_);
  SetMtime(secondary_ + "/d/f.txt", 1700000000, 123456788);
  EXPECT_EQ(Diff(), std::vector<std::string>{
                        "mtime differs: d/f.txt (1700000000.123456789 vs 1700000000.123456788)"});
}

TEST_F(RepoTreeTest, DirectoryMtimeIgnoredWhenOptionOff) {
  BuildSmallTree(primary_);
  BuildSmallTree(secondary_);
  SetMtime(secondary_ + "/d", 1600000000, 0);
  EXPECT_EQ(Diff(), std::vector<std::string>{
                        "mtime differs: d (1700000003.000000003 vs 1600000000.000000000)"});
  SnapshotOptions options;
  options.directory_mtimes = false;
  EXPECT_TRUE(CompareTrees(Snap(primary_, options), Snap(secondary_, options)).empty());
}

TEST_F(RepoTreeTest, TypeDifferenceIsReportedOnce) {
  BuildSmallTree(primary_);
  BuildSmallTree(secondary_);
  ASSERT_EQ(unlink((secondary_ + "/top").c_str()), 0);
  ASSERT_EQ(mkdir((secondary_ + "/top").c_str(), 0755), 0);
  WriteFile(secondary_ + "/top/inside", "x");
  EXPECT_EQ(Diff(), std::vector<std::string>{
                        "type differs: top (file vs directory; 1 entries below it extra on "
                        "secondary)"});
}

TEST_F(RepoTreeTest, LinkTargetDifferenceIsReported) {
  BuildSmallTree(primary_);
  BuildSmallTree(secondary_);
  ASSERT_EQ(unlink((secondary_ + "/link").c_str()), 0);
  ASSERT_EQ(symlink("top", (secondary_ + "/link").c_str()), 0);
  SetMtime(secondary_ + "/link", 1700000002, 2);
  EXPECT_EQ(Diff(), std::vector<std::string>{"link target differs: link (\"d/f.txt\" vs \"top\")"});
}

TEST_F(RepoTreeTest, MissingDirectoryIsReportedWithItsEntriesCounted) {
  BuildSmallTree(primary_);
  BuildSmallTree(secondary_);
  fs::remove_all(secondary_ + "/d");
  EXPECT_EQ(Diff(), std::vector<std::string>{
                        "missing on secondary: d (1 entries below it missing on secondary)"});
}

TEST_F(RepoTreeTest, MissingAndExtraFilesAreReported) {
  BuildSmallTree(primary_);
  BuildSmallTree(secondary_);
  ASSERT_EQ(unlink((secondary_ + "/top").c_str()), 0);
  WriteFile(secondary_ + "/d/line\nbreak", "x");
  SetMtime(secondary_ + "/d", 1700000003, 3);
  EXPECT_EQ(Diff(), (std::vector<std::string>{"extra on secondary: d/line\\nbreak",
                                              "missing on secondary: top"}));
}

TEST_F(RepoTreeTest, SecondaryTemporariesAreSkipped) {
  BuildSmallTree(primary_);
  BuildSmallTree(secondary_);
  WriteFile(secondary_ + "/d/.replsync-tmp.0123456789abcdef", "partial");
  SetMtime(secondary_ + "/d", 1700000003, 3);
  EXPECT_TRUE(Diff().empty());
  SnapshotOptions options;
  options.skip_temporaries = false;
  EXPECT_EQ(CompareTrees(Snap(primary_, options), Snap(secondary_, options)),
            std::vector<std::string>{"extra on secondary: d/.replsync-tmp.0123456789abcdef"});
}

TEST_F(RepoTreeTest, LongDifferenceListIsCapped) {
  ASSERT_EQ(mkdir(secondary_.c_str(), 0755), 0);
  for (int i = 0; i < 60; ++i) WriteFile(secondary_ + "/f" + std::to_string(100 + i), "x");
  std::vector<std::string> lines = CompareTrees(Snap(primary_), Snap(secondary_), 50);
  ASSERT_EQ(lines.size(), 51u);
  EXPECT_EQ(lines[0], "extra on secondary: f100");
  EXPECT_EQ(lines[50], "... and 10 more");
}

TEST(FormatNanosTest, PrintsNineFractionDigits) {
  EXPECT_EQ(FormatNanos(1700000000123456789), "1700000000.123456789");
  EXPECT_EQ(FormatNanos(5), "0.000000005");
  EXPECT_EQ(FormatNanos(-1), "-1.999999999");
}

TEST(CheckedContentTest, WholeContentIsCompleteAndDamagedIsNot) {
  std::string c = MakeCheckedContent(42, 1000);
  ASSERT_EQ(c.size(), 1000u);
  EXPECT_TRUE(IsCheckedContentComplete(c));
  EXPECT_EQ(c, MakeCheckedContent(42, 1000));
  EXPECT_NE(c, MakeCheckedContent(43, 1000));
  EXPECT_FALSE(IsCheckedContentComplete(c.substr(0, 999)));
  EXPECT_FALSE(IsCheckedContentComplete(c.substr(0, 512)));
  EXPECT_FALSE(IsCheckedContentComplete(c + "x"));
  EXPECT_FALSE(IsCheckedContentComplete(std::string(1000, '\0')));
  std::string flipped = c;
  flipped[10] ^= 1;
  EXPECT_FALSE(IsCheckedContentComplete(flipped));
  EXPECT_TRUE(IsCheckedContentComplete(MakeCheckedContent(1, 32)));
  EXPECT_EQ(MakeCheckedContent(1, 5).size(), 32u);
  EXPECT_FALSE(IsCheckedContentComplete(""));
}

TEST_F(RepoTreeTest, SamplerFlagsIncompleteCheckedFileOnly) {
  ASSERT_EQ(mkdir((primary_ + "/sub").c_str(), 0755), 0);
  std::string whole = MakeCheckedContent(7, 4096);
  WriteFile(primary_ + "/checked-ok", whole);
  WriteFile(primary_ + "/sub/checked-ok2", MakeCheckedContent(8, 100));
  WriteFile(primary_ + "/sub/checked-x", whole.substr(0, 4096 - kCheckedTrailerBytes));
  WriteFile(primary_ + "/sub/.replsync-tmp.00000000000000ab", whole.substr(0, 100));
  WriteFile(primary_ + "/plain", "not checked");
  PartialFileSampler sampler(primary_);
  sampler.Start();
  ASSERT_TRUE(sampler.WaitRounds(3, std::chrono::seconds(20)));
  sampler.Stop();
  EXPECT_EQ(sampler.findings(),
            (std::vector<PartialFileSampler::Finding>{{"sub/checked-x", 4096 - 32}}));
  EXPECT_GE(sampler.files_checked(), 3 * 4u);
}

TEST_F(RepoTreeTest, SamplerIgnoresFilesReplacedAtomically) {
  PartialFileSampler sampler(primary_, PartialFileSampler::Options{std::chrono::milliseconds(0)});
  sampler.Start();
  for (int i = 0; i < 300; ++i) {
    std::string tmp = primary_ + "/.replsync-tmp." + std::to_string(i);
    WriteFile(tmp, MakeCheckedContent(i, 1000 + 37 * i));
    ASSERT_EQ(rename(tmp.c_str(), (primary_ + "/checked-" + std::to_string(i % 5)).c_str()), 0);
    if (i % 7 == 0) {
      ASSERT_EQ(unlink((primary_ + "/checked-" + std::to_string(i % 5)).c_str()), 0);
    }
  }
  ASSERT_TRUE(sampler.WaitRounds(2, std::chrono::seconds(20)));
  sampler.Stop();
  EXPECT_TRUE(sampler.findings().empty());
  EXPECT_GT(sampler.files_checked(), 0u);
}

TEST_F(RepoTreeTest, SamplerFlagsSlowWriterFileWrittenInPlace) {
  ChurnOptions options;
  options.min_slow_write_duration = std::chrono::milliseconds(300);
  options.max_slow_write_duration = std::chrono::milliseconds(300);
  options.slow_write_pieces = 6;
  options.slow_file_max_bytes = 64 << 10;
  auto workload = ChurnWorkload::Open(primary_, options);
  ASSERT_TRUE(workload.ok()) << workload.status().ToString();
  PartialFileSampler sampler(primary_);
  sampler.Start();
  ASSERT_TRUE((*workload)->RunStep(ChurnWorkload::Kind::kSlowWrite).ok());
  ASSERT_TRUE((*workload)->WaitForSlowWriters().ok());
  ASSERT_TRUE(sampler.WaitRounds(2, std::chrono::seconds(20)));
  sampler.Stop();
  auto findings = sampler.findings();
  ASSERT_FALSE(findings.empty());
  EXPECT_EQ(findings[0].path, "slow/checked-slow-0");
  // Once written, the file is complete.
  TreeSnapshot snap = Snap(primary_);
  ASSERT_TRUE(snap.contains("slow/checked-slow-0"));
  std::ifstream in(primary_ + "/slow/checked-slow-0", std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(IsCheckedContentComplete(content));
}

ChurnOptions SmallChurnOptions(uint64_t seed) {
  ChurnOptions options;
  options.seed = seed;
  options.min_large_bytes = 64 << 10;
  options.max_large_bytes = 256 << 10;
  options.min_burst_files = 5;
  options.max_burst_files = 20;
  options.min_slow_write_duration = std::chrono::milliseconds(50);
  options.max_slow_write_duration = std::chrono::milliseconds(150);
  options.slow_write_pieces = 4;
  options.slow_file_max_bytes = 16 << 10;
  return options;
}

// Every checked-* regular file in the snapshot of `root` holds whole checked content.
void ExpectCheckedFilesComplete(const std::string& root, const TreeSnapshot& snap) {
  int checked = 0;
  for (const auto& [path, entry] : snap) {
    std::string base = path.substr(path.rfind('/') + 1);
    if (entry.type != EntryType::kFile || !base.starts_with(kCheckedPrefix)) continue;
    std::ifstream in(root + "/" + path, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(IsCheckedContentComplete(content)) << EscapePath(path);
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST_F(RepoTreeTest, EveryStepKindRunsOnEmptyTree) {
  auto workload = ChurnWorkload::Open(primary_, SmallChurnOptions(3));
  ASSERT_TRUE(workload.ok()) << workload.status().ToString();
  for (ChurnWorkload::Kind kind : ChurnWorkload::AllKinds()) {
    Status st = (*workload)->RunStep(kind);
    EXPECT_TRUE(st.ok()) << ChurnWorkload::KindName(kind) << ": " << st.ToString();
  }
  ASSERT_TRUE((*workload)->WaitForSlowWriters().ok());
  EXPECT_EQ((*workload)->steps_run(), ChurnWorkload::AllKinds().size());
  EXPECT_EQ((*workload)->history().size(), ChurnWorkload::AllKinds().size());
}

TEST_F(RepoTreeTest, TwoHundredRandomStepsRunAndCopyHasNoDifferences) {
  auto workload = ChurnWorkload::Open(primary_, SmallChurnOptions(12345));
  ASSERT_TRUE(workload.ok()) << workload.status().ToString();
  Status st = (*workload)->RunRandomSteps(200);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE((*workload)->WaitForSlowWriters().ok());
  EXPECT_EQ((*workload)->steps_run(), 200u);

  TreeSnapshot snap = Snap(primary_);
  std::set<EntryType> types;
  uint32_t modes = 0;
  bool foreign_owner = false;
  for (const auto& [path, entry] : snap) {
    types.insert(entry.type);
    modes |= entry.mode;
    foreign_owner = foreign_owner || entry.uid != 0 || entry.gid != 0;
  }
  EXPECT_EQ(types,
            (std::set<EntryType>{EntryType::kFile, EntryType::kDirectory, EntryType::kSymlink}));
  EXPECT_TRUE(foreign_owner);
  ExpectCheckedFilesComplete(primary_, snap);

  std::string cmd = "cp -a '" + primary_ + "' '" + secondary_ + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::vector<std::string> diff = CompareTrees(snap, Snap(secondary_));
  EXPECT_TRUE(diff.empty()) << Join(diff);
  // And the comparison does see a change made after the copy.
  ASSERT_EQ((*workload)->RunStep(ChurnWorkload::Kind::kAppend).ok(), true);
  EXPECT_FALSE(CompareTrees(Snap(primary_), Snap(secondary_)).empty());
}

TEST_F(RepoTreeTest, SameSeedGivesSameTree) {
  ASSERT_EQ(mkdir(secondary_.c_str(), 0755), 0);
  for (const std::string& root : {primary_, secondary_}) {
    auto workload = ChurnWorkload::Open(root, SmallChurnOptions(99));
    ASSERT_TRUE(workload.ok()) << workload.status().ToString();
    ASSERT_TRUE((*workload)->RunRandomSteps(120).ok());
    ASSERT_TRUE((*workload)->WaitForSlowWriters().ok());
  }
  TreeSnapshot a = Snap(primary_);
  TreeSnapshot b = Snap(secondary_);
  ASSERT_EQ(a.size(), b.size());
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    ASSERT_EQ(ia->first, ib->first);
    EXPECT_EQ(ia->second.type, ib->second.type) << EscapePath(ia->first);
    EXPECT_EQ(ia->second.mode, ib->second.mode) << EscapePath(ia->first);
    EXPECT_EQ(ia->second.uid, ib->second.uid) << EscapePath(ia->first);
    EXPECT_EQ(ia->second.content_hash, ib->second.content_hash) << EscapePath(ia->first);
    if (!ia->second.link_target.starts_with("/")) {
      EXPECT_EQ(ia->second.link_target, ib->second.link_target) << EscapePath(ia->first);
    }
  }
}

TEST_F(RepoTreeTest, SpecialNamesAppearInTree) {
  auto workload = ChurnWorkload::Open(primary_, SmallChurnOptions(5));
  ASSERT_TRUE(workload.ok()) << workload.status().ToString();
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE((*workload)->RunStep(ChurnWorkload::Kind::kSpecialNames).ok());
  }
  TreeSnapshot snap = Snap(primary_);
  auto has_name = [&](const std::string& name) {
    return std::any_of(snap.begin(), snap.end(), [&](const auto& e) {
      const std::string& p = e.first;
      return p == name || p.ends_with("/" + name) || p.starts_with(name + " ") ||
             p.find("/" + name + " ") != std::string::npos;
    });
  };
  EXPECT_TRUE(has_name("-rf"));
  EXPECT_TRUE(has_name("line\nbreak"));
  EXPECT_TRUE(has_name("Grüße ünïcödé.txt"));
  EXPECT_TRUE(has_name("日本語"));
}

}  // namespace
}  // namespace replsync::testing
