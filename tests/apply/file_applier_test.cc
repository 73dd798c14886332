#include "apply/file_applier.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sync/files/content_hash.h"

namespace replsync::apply {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMtime = 1700000000123456789;  // nanoseconds matter

std::string Sha256Of(const std::string& data) { return Sha256::Of(data); }

pb::FileMeta Meta(uint32_t mode, uint32_t uid, uint32_t gid, int64_t mtime_ns, uint64_t size = 0) {
  pb::FileMeta meta;
  meta.set_mode(mode);
  meta.set_uid(uid);
  meta.set_gid(gid);
  meta.set_mtime_ns(mtime_ns);
  meta.set_size(size);
  return meta;
}

pb::ContentOp Literal(const std::string& data) {
  pb::ContentOp op;
  op.set_data(data);
  return op;
}

pb::ContentOp Copy(uint64_t offset, uint64_t length) {
  pb::ContentOp op;
  op.set_offset(offset);
  op.set_length(length);
  return op;
}

// A single-part FILE with literal content.
pb::FileChange FileChange(const std::string& path, const std::string& content,
                          pb::FileMeta meta = Meta(0644, 0, 0, kMtime)) {
  pb::FileChange change;
  change.set_kind(pb::FileChange::FILE);
  change.set_path(path);
  meta.set_size(content.size());
  *change.mutable_meta() = meta;
  change.set_last_part(true);
  *change.add_ops() = Literal(content);
  change.set_content_hash(Sha256Of(content));
  change.set_parent_mtime_ns(-1);
  change.set_from_parent_mtime_ns(-1);
  return change;
}

// A single-part FILE built from `ops` against `base`, whose result is `content`.
pb::FileChange DeltaChange(const std::string& path, const std::vector<pb::ContentOp>& ops,
                           const std::string& base, const std::string& content) {
  pb::FileChange change = FileChange(path, content);
  change.clear_ops();
  for (const pb::ContentOp& op : ops) *change.add_ops() = op;
  change.set_base_hash(Sha256Of(base));
  return change;
}

pb::FileChange DirChange(const std::string& path, pb::FileMeta meta = Meta(0755, 0, 0, kMtime)) {
  pb::FileChange change;
  change.set_kind(pb::FileChange::DIRECTORY);
  change.set_path(path);
  *change.mutable_meta() = meta;
  change.set_parent_mtime_ns(-1);
  change.set_from_parent_mtime_ns(-1);
  return change;
}

pb::FileChange SymlinkChange(const std::string& path, const std::string& target,
                             pb::FileMeta meta = Meta(0777, 0, 0, kMtime)) {
  pb::FileChange change;
  change.set_kind(pb::FileChange::SYMLINK);
  change.set_path(path);
  change.set_link_target(target);
  *change.mutable_meta() = meta;
  change.set_parent_mtime_ns(-1);
  change.set_from_parent_mtime_ns(-1);
  return change;
}

pb::FileChange DeleteChange(const std::string& path) {
  pb::FileChange change;
  change.set_kind(pb::FileChange::DELETE);
  change.set_path(path);
  change.set_parent_mtime_ns(-1);
  change.set_from_parent_mtime_ns(-1);
  return change;
}

pb::FileChange RenameChange(const std::string& from, const std::string& to, pb::FileMeta meta) {
  pb::FileChange change;
  change.set_kind(pb::FileChange::RENAME);
  change.set_from_path(from);
  change.set_path(to);
  *change.mutable_meta() = meta;
  change.set_parent_mtime_ns(-1);
  change.set_from_parent_mtime_ns(-1);
  return change;
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

class FileApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/file_applier_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/repo";
    outside_ = dir_ + "/outside";
    fs::create_directories(outside_);
    auto applier = FileApplier::Open(FileApplierOptions{root_});
    ASSERT_TRUE(applier.ok()) << applier.status().ToString();
    applier_ = std::move(applier).value();
  }

  void TearDown() override {
    applier_.reset();
    fs::remove_all(dir_);
  }

  std::string P(const std::string& rel) const { return root_ + "/" + rel; }

  // Reopens the applier with [repository] keep_setid = true.
  void KeepSetid() {
    applier_.reset();
    auto keeping = FileApplier::Open(FileApplierOptions{.root = root_, .keep_setid = true});
    ASSERT_TRUE(keeping.ok()) << keeping.status().ToString();
    applier_ = std::move(keeping).value();
  }

  FileApplyOutcome MustApply(const pb::FileChange& change) {
    auto result = applier_->Apply(change);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? *result : FileApplyOutcome::kNeedsResync;
  }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }

  static void Write(const std::string& path, const std::string& content) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }

  static struct stat Lstat(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st;
  }

  static bool Exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
  }

  // Every ".replsync-tmp.*" entry below `dir`.
  static std::vector<std::string> Temporaries(const std::string& dir) {
    std::vector<std::string> found;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (entry.path().filename().string().rfind(".replsync-tmp.", 0) == 0) {
        found.push_back(entry.path().string());
      }
    }
    return found;
  }

  // Names below `dir` (recursively), for "nothing changed" checks.
  static std::vector<std::string> Tree(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      names.push_back(entry.path().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
  std::string root_;
  std::string outside_;
  std::unique_ptr<FileApplier> applier_;
};

TEST_F(FileApplierTest, OpenCreatesMissingRoot) {
  std::string root = dir_ + "/a/b/repo";
  auto applier = FileApplier::Open(FileApplierOptions{root});
  ASSERT_TRUE(applier.ok()) << applier.status().ToString();
  EXPECT_TRUE(fs::is_directory(root));
}

TEST_F(FileApplierTest, OpenRemovesLeftoverTemporaryFilesEverywhere) {
  applier_.reset();
  Write(P(".replsync-tmp.0123456789abcdef"), "half");
  Write(P("a/b/.replsync-tmp.fedcba9876543210"), "half");
  ASSERT_EQ(::symlink("x", P("a/.replsync-tmp.00000000000000aa").c_str()), 0);
  Write(P("a/b/keep.txt"), "keep");
  Write(P("a/replsync-tmp.not-ours"), "keep");
  ASSERT_EQ(Temporaries(root_).size(), 3u);

  auto applier = FileApplier::Open(FileApplierOptions{root_});
  ASSERT_TRUE(applier.ok()) << applier.status().ToString();
  EXPECT_TRUE(Temporaries(root_).empty());
  EXPECT_EQ(Read(P("a/b/keep.txt")), "keep");
  EXPECT_EQ(Read(P("a/replsync-tmp.not-ours")), "keep");
}

TEST_F(FileApplierTest, FileGetsContentOwnerSetuidModeAndNanosecondMtime) {
  KeepSetid();  // setuid bits are applied only with [repository] keep_setid = true
  pb::FileChange change =
      FileChange("bin/tool", "#!/bin/sh\necho hi\n", Meta(04755, 1234, 5678, kMtime));
  EXPECT_EQ(MustApply(change), FileApplyOutcome::kApplied);

  EXPECT_EQ(Read(P("bin/tool")), "#!/bin/sh\necho hi\n");
  struct stat st = Lstat(P("bin/tool"));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(MtimeNs(st), kMtime);
  EXPECT_TRUE(Temporaries(root_).empty());
  EXPECT_FALSE(applier_->file_in_progress());
}

TEST_F(FileApplierTest, SetuidAndSetgidBitsAreClearedUnlessKeepSetid) {
  // The default applier (keep_setid = false): every way a mode is applied.
  EXPECT_EQ(MustApply(FileChange("bin/tool", "x", Meta(06755, 0, 0, kMtime))),
            FileApplyOutcome::kApplied);
  EXPECT_EQ(Lstat(P("bin/tool")).st_mode & 07777, 0755u);
  EXPECT_EQ(MustApply(DirChange("shared", Meta(03775, 0, 0, kMtime))), FileApplyOutcome::kApplied);
  EXPECT_EQ(Lstat(P("shared")).st_mode & 07777, 01775u);  // the sticky bit is kept
  pb::FileChange same = FileChange("bin/tool", "x", Meta(04711, 0, 0, kMtime));
  same.clear_ops();
  same.set_content_unchanged(true);
  EXPECT_EQ(MustApply(same), FileApplyOutcome::kApplied);
  EXPECT_EQ(Lstat(P("bin/tool")).st_mode & 07777, 0711u);
  EXPECT_EQ(MustApply(RenameChange("bin/tool", "bin/moved", Meta(02755, 0, 0, kMtime, 1))),
            FileApplyOutcome::kApplied);
  EXPECT_EQ(Lstat(P("bin/moved")).st_mode & 07777, 0755u);

  // keep_setid = true applies them.
  KeepSetid();
  EXPECT_EQ(MustApply(FileChange("bin/tool", "x", Meta(06755, 0, 0, kMtime))),
            FileApplyOutcome::kApplied);
  EXPECT_EQ(Lstat(P("bin/tool")).st_mode & 07777, 06755u);
  EXPECT_EQ(MustApply(DirChange("shared", Meta(02775, 0, 0, kMtime))), FileApplyOutcome::kApplied);
  EXPECT_EQ(Lstat(P("shared")).st_mode & 07777, 02775u);
}

TEST_F(FileApplierTest, DevicesAndFifosAreRefusedAndNothingIsCreated) {
  const std::vector<std::string> before = Tree(root_);
  EXPECT_EQ(MustApply(FileChange("fifo", "", Meta(S_IFIFO | 0644, 0, 0, kMtime))),
            FileApplyOutcome::kRefused);
  EXPECT_EQ(MustApply(DirChange("chr", Meta(S_IFCHR | 0600, 0, 0, kMtime))),
            FileApplyOutcome::kRefused);
  EXPECT_EQ(MustApply(FileChange("blk", "", Meta(S_IFBLK | 0600, 0, 0, kMtime))),
            FileApplyOutcome::kRefused);
  EXPECT_EQ(MustApply(FileChange("sock", "", Meta(S_IFSOCK | 0600, 0, 0, kMtime))),
            FileApplyOutcome::kRefused);
  EXPECT_EQ(applier_->refused(), 4u);
  EXPECT_EQ(Tree(root_), before);
  // The applier goes on with ordinary entries.
  EXPECT_EQ(MustApply(FileChange("f", "data")), FileApplyOutcome::kApplied);
  EXPECT_EQ(Read(P("f")), "data");
}

TEST_F(FileApplierTest, RefusedMultiPartFileRefusesItsOtherParts) {
  pb::FileChange part0 = FileChange("fifo", "ab", Meta(S_IFIFO | 0644, 0, 0, kMtime));
  part0.set_last_part(false);
  pb::FileChange part1 = FileChange("fifo", "ab");
  part1.clear_meta();
  part1.set_part(1);
  EXPECT_EQ(MustApply(part0), FileApplyOutcome::kRefused);
  EXPECT_EQ(MustApply(part1), FileApplyOutcome::kRefused);
  EXPECT_EQ(applier_->refused(), 1u);
  EXPECT_FALSE(Exists(P("fifo")));
  EXPECT_FALSE(applier_->file_in_progress());
  // A part after the refused file's last one is no longer taken for it: it is a part without
  // its first one, asked for whole.
  EXPECT_EQ(MustApply(part1), FileApplyOutcome::kNeedsResync);
  EXPECT_EQ(applier_->refused(), 1u);
}

TEST_F(FileApplierTest, MissingParentDirectoriesAreCreated) {
  EXPECT_EQ(MustApply(FileChange("x/y/z/f", "data")), FileApplyOutcome::kApplied);
  EXPECT_EQ(Read(P("x/y/z/f")), "data");
  EXPECT_TRUE(fs::is_directory(P("x/y")));
  EXPECT_EQ(MustApply(SymlinkChange("s1/s2/link", "target")), FileApplyOutcome::kApplied);
  EXPECT_TRUE(fs::is_symlink(P("s1/s2/link")));
  EXPECT_EQ(MustApply(DirChange("d1/d2/d3")), FileApplyOutcome::kApplied);
  EXPECT_TRUE(fs::is_directory(P("d1/d2/d3")));
}

TEST_F(FileApplierTest, EmptyFileIsCreated) {
  pb::FileChange change = FileChange("empty", "");
  change.clear_ops();
  EXPECT_EQ(MustApply(change), FileApplyOutcome::kApplied);
  EXPECT_TRUE(fs::is_regular_file(P("empty")));
  EXPECT_EQ(fs::file_size(P("empty")), 0u);
}

TEST_F(FileApplierTest, ParentDirectoryMtimeIsSetAndAtimeKept) {
  ASSERT_EQ(MustApply(DirChange("d")), FileApplyOutcome::kApplied);
  struct stat before = Lstat(P("d"));

  pb::FileChange change = FileChange("d/f", "x");
  change.set_parent_mtime_ns(kMtime + 7);
  EXPECT_EQ(MustApply(change), FileApplyOutcome::kApplied);
  struct stat after = Lstat(P("d"));
  EXPECT_EQ(MtimeNs(after), kMtime + 7);
  EXPECT_EQ(after.st_atim.tv_sec, before.st_atim.tv_sec);
  EXPECT_EQ(after.st_atim.tv_nsec, before.st_atim.tv_nsec);

  pb::FileChange top = DirChange("top");
  top.set_parent_mtime_ns(kMtime + 9);
  EXPECT_EQ(MustApply(top), FileApplyOutcome::kApplied);
  EXPECT_EQ(MtimeNs(Lstat(root_)), kMtime + 9);

  pb::FileChange del = DeleteChange("d/f");
  del.set_parent_mtime_ns(kMtime + 11);
  EXPECT_EQ(MustApply(del), FileApplyOutcome::kApplied);
  EXPECT_EQ(MtimeNs(Lstat(P("d"))), kMtime + 11);
}

// -1: the primary could not tell the parent's new mtime (on the primary the parent was going
// too, e.g. `rm -rf d`: the children's deletes came while d was already gone), and its manifest
// keeps d's old mtime until d's own DELETE. The secondary keeps d's mtime as it was, so that a
// verify between the two sees both nodes agree (the mixed-load soak once saw a false "mtime"
// difference there when -1 left the secondary's own clock in d's mtime).
TEST_F(FileApplierTest, NegativeParentMtimeKeepsTheParentsMtime) {
  ASSERT_EQ(MustApply(DirChange("d", Meta(0755, 0, 0, kMtime))), FileApplyOutcome::kApplied);
  EXPECT_EQ(MustApply(FileChange("d/f", "x")), FileApplyOutcome::kApplied);
  EXPECT_EQ(MustApply(FileChange("d/g", "y")), FileApplyOutcome::kApplied);
  EXPECT_EQ(MustApply(SymlinkChange("d/l", "f")), FileApplyOutcome::kApplied);
  EXPECT_EQ(MustApply(DirChange("d/sub")), FileApplyOutcome::kApplied);
  EXPECT_EQ(MtimeNs(Lstat(P("d"))), kMtime);
  EXPECT_EQ(MustApply(DeleteChange("d/f")), FileApplyOutcome::kApplied);
  EXPECT_EQ(MustApply(RenameChange("d/g", "d/sub/g", Meta(0644, 0, 0, kMtime))),
            FileApplyOutcome::kApplied);
  EXPECT_EQ(MtimeNs(Lstat(P("d"))), kMtime);
  EXPECT_EQ(MtimeNs(Lstat(P("d/sub"))), kMtime);
  EXPECT_FALSE(std::filesystem::exists(P("d/f")));
  EXPECT_TRUE(std::filesystem::exists(P("d/sub/g")));
}

TEST_F(FileApplierTest, DirectoryIsCreatedAndExistingOneGetsMeta) {
  EXPECT_EQ(MustApply(DirChange("d", Meta(01775, 42, 43, kMtime))), FileApplyOutcome::kApplied);
  struct stat st = Lstat(P("d"));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 01775u);
  EXPECT_EQ(st.st_uid, 42u);
  EXPECT_EQ(st.st_gid, 43u);
  EXPECT_EQ(MtimeNs(st), kMtime);

  Write(P("d/inside"), "kept");
  EXPECT_EQ(MustApply(DirChange("d", Meta(0700, 7, 8, kMtime + 1))), FileApplyOutcome::kApplied);
  st = Lstat(P("d"));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, 7u);
  EXPECT_EQ(MtimeNs(st), kMtime + 1);
  EXPECT_EQ(Read(P("d/inside")), "kept");
}

TEST_F(FileApplierTest, SymlinkTargetsAreKeptAsWrittenWithOwnerAndMtime) {
  const std::vector<std::pair<std::string, std::string>> links = {
      {"rel", "../sibling/file"}, {"abs", "/etc/passwd"}, {"dangling", "no/such/thing"}};
  for (const auto& [name, target] : links) {
    EXPECT_EQ(MustApply(SymlinkChange("links/" + name, target, Meta(0777, 99, 98, kMtime))),
              FileApplyOutcome::kApplied);
    EXPECT_EQ(fs::read_symlink(P("links/" + name)).string(), target);
    struct stat st = Lstat(P("links/" + name));
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_EQ(st.st_uid, 99u);
    EXPECT_EQ(st.st_gid, 98u);
    EXPECT_EQ(MtimeNs(st), kMtime);
  }
  // Replacing a link changes the link, never what it points to.
  Write(outside_ + "/target", "outside");
  ASSERT_EQ(MustApply(SymlinkChange("links/out", outside_ + "/target")),
            FileApplyOutcome::kApplied);
  EXPECT_EQ(MustApply(FileChange("links/out", "inside")), FileApplyOutcome::kApplied);
  EXPECT_EQ(Read(outside_ + "/target"), "outside");
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(P("links/out"))));
  EXPECT_TRUE(Temporaries(root_).empty());
}

TEST_F(FileApplierTest, TypeChangesInEveryDirection) {
  enum Type { kFile, kDir, kLink };
  auto make = [&](Type type, const std::string& path) {
    switch (type) {
      case kFile:
        return FileChange(path, std::string("content of ") + path);
      case kDir:
        return DirChange(path);
      case kLink:
        return SymlinkChange(path, std::string("target-of-") + path);
    }
    return DirChange(path);
  };
  auto check = [&](Type type, const std::string& path) {
    struct stat st = Lstat(P(path));
    switch (type) {
      case kFile:
        EXPECT_TRUE(S_ISREG(st.st_mode)) << path;
        EXPECT_EQ(Read(P(path)), std::string("content of ") + path);
        break;
      case kDir:
        EXPECT_TRUE(S_ISDIR(st.st_mode)) << path;
        break;
      case kLink:
        EXPECT_TRUE(S_ISLNK(st.st_mode)) << path;
        EXPECT_EQ(fs::read_symlink(P(path)).string(), std::string("target-of-") + path);
        break;
    }
  };
  int n = 0;
  for (Type from : {kFile, kDir, kLink}) {
    for (Type to : {kFile, kDir, kLink}) {
      if (from == to) continue;
      std::string path = fmt::format("t{}", n++);
      ASSERT_EQ(MustApply(make(from, path)), FileApplyOutcome::kApplied);
      if (from == kDir) Write(P(path + "/sub/deep"), "inside the old directory");
      EXPECT_EQ(MustApply(make(to, path)), FileApplyOutcome::kApplied) << from << "->" << to;
      check(to, path);
    }
  }
  EXPECT_TRUE(Temporaries(root_).empty());
}

TEST_F(FileApplierTest, DeleteRemovesFileSymlinkAndWholeTree) {
  Write(P("f"), "x");
  ASSERT_EQ(::symlink("f", P("l").c_str()), 0);
  Write(P("tree/a/b/c"), "x");
  Write(P("tree/a/d"), "x");
  ASSERT_EQ(::symlink(outside_.c_str(), P("tree/a/out").c_str()), 0);
  Write(outside_ + "/precious", "keep");

  EXPECT_EQ(MustApply(DeleteChange("l")), FileApplyOutcome::kApplied);
  EXPECT_FALSE(Exists(P("l")));
  EXPECT_TRUE(Exists(P("f")));
  EXPECT_EQ(MustApply(DeleteChange("f")), FileApplyOutcome::kApplied);
  EXPECT_FALSE(Exists(P("f")));
  EXPECT_EQ(MustApply(DeleteChange("tree")), FileApplyOutcome::kApplied);
  EXPECT_FALSE(Exists(P("tree")));
  EXPECT_EQ(Read(outside_ + "/precious"), "keep");
}

TEST_F(FileApplierTest, DeleteOfMissingPathIsFine) {
  EXPECT_EQ(MustApply(DeleteChange("nothing")), FileApplyOutcome::kApplied);
  EXPECT_EQ(MustApply(DeleteChange("no/such/dir/file")), FileApplyOutcome::kApplied);
  EXPECT_FALSE(Exists(P("no")));
}

TEST_F(FileApplierTest, RenameMovesFileAndAppliesMeta) {
  Write(P("a/old"), "payload");
  pb::FileChange change = RenameChange("a/old", "b/new", Meta(0600, 11, 12, kMtime, 7));
  change.set_parent_mtime_ns(kMtime + 1);
  change.set_from_parent_mtime_ns(kMtime + 2);
  EXPECT_EQ(MustApply(change), FileApplyOutcome::kApplied);
  EXPECT_FALSE(Exists(P("a/old")));
  EXPECT_EQ(Read(P("b/new")), "payload");
  struct stat st = Lstat(P("b/new"));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 11u);
  EXPECT_EQ(MtimeNs(st), kMtime);
  EXPECT_EQ(MtimeNs(Lstat(P("b"))), kMtime + 1);
  EXPECT_EQ(MtimeNs(Lstat(P("a"))), kMtime + 2);

  // Applied again: the source is gone and the target holds the result.
  EXPECT_EQ(MustApply(change), FileApplyOutcome::kAlreadyApplied);
  EXPECT_EQ(Read(P("b/new")), "payload");
}

TEST_F(FileApplierTest, RenameMovesDirectoryTreeOverExistingDirectory) {
  Write(P("src/x/1"), "one");
  Write(P("src/2"), "two");
  Write(P("dst/old/stale"), "stale");
  EXPECT_EQ(MustApply(RenameChange("src", "dst", Meta(0750, 0, 0, kMtime))),
            FileApplyOutcome::kApplied);
  EXPECT_FALSE(Exists(P("src")));
  EXPECT_EQ(Read(P("dst/x/1")), "one");
  EXPECT_EQ(Read(P("dst/2")), "two");
  EXPECT_FALSE(Exists(P("dst/old")));
  struct stat st = Lstat(P("dst"));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(MtimeNs(st), kMtime);
}

TEST_F(FileApplierTest, RenameReplacesAcrossTypes) {
  Write(P("file"), "f");
  Write(P("dir/inner"), "i");
  EXPECT_EQ(MustApply(RenameChange("file", "dir", Meta(0644, 0, 0, kMtime, 1))),
            FileApplyOutcome::kApplied);
  EXPECT_EQ(Read(P("dir")), "f");

  Write(P("dir2/inner"), "i");
  Write(P("plain"), "p");
  EXPECT_EQ(MustApply(RenameChange("dir2", "plain", Meta(0755, 0, 0, kMtime))),
            FileApplyOutcome::kApplied);
  EXPECT_EQ(Read(P("plain/inner")), "i");
}

TEST_F(FileApplierTest, RenameOfSymlinkAppliesOwnerAndTimesOnly) {
  ASSERT_EQ(::symlink("somewhere", P("l1").c_str()), 0);
  EXPECT_EQ(MustApply(RenameChange("l1", "l2", Meta(0600, 5, 6, kMtime))),
            FileApplyOutcome::kApplied);
  EXPECT_EQ(fs::read_symlink(P("l2")).string(), "somewhere");
  struct stat st = Lstat(P("l2"));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_uid, 5u);
  EXPECT_EQ(MtimeNs(st), kMtime);
}

TEST_F(FileApplierTest, RenameWithSourceAndTargetMissingNeedsResync) {
  EXPECT_EQ(MustApply(RenameChange("gone", "also-gone", Meta(0644, 0, 0, kMtime))),
            FileApplyOutcome::kNeedsResync);
  EXPECT_FALSE(Exists(P("also-gone")));
  EXPECT_EQ(MustApply(RenameChange("gone", "new/dir/x", Meta(0644, 0, 0, kMtime))),
            FileApplyOutcome::kNeedsResync);
  EXPECT_FALSE(Exists(P("new")));
  // A target of another size is not the moved file.
  Write(P("other"), "different size");
  EXPECT_EQ(MustApply(RenameChange("gone", "other", Meta(0644, 0, 0, kMtime, 3))),
            FileApplyOutcome::kNeedsResync);
  EXPECT_EQ(Read(P("other")), "different size");
}

TEST_F(FileApplierTest, RenameOfHardLinkedFileRemovesSource) {
  Write(P("a"), "same");
  ASSERT_EQ(::link(P("a").c_str(), P("b").c_str()), 0);
  EXPECT_EQ(MustApply(RenameChange("a", "b", Meta(0644, 0, 0, kMtime, 4))),
            FileApplyOutcome::kApplied);
  EXPECT_FALSE(Exists(P("a")));
  EXPECT_EQ(Read(P("b")), "same");
}

TEST_F(FileApplierTest, InvalidPathsAreRefusedAndNothingIsWritten) {
  Write(P("a/existing"), "x");
  std::vector<std::string> before = Tree(dir_);
  const std::vector<std::string> bad = {
      "../x", outside_ + "/x", "a/../../x", "",   "a//b",
      "./a",  "a/.",           "a/",        "..", std::string("a\0b", 3)};
  for (const std::string& path : bad) {
    std::vector<pb::FileChange> changes = {FileChange(path, "evil"),
                                           DirChange(path),
                                           SymlinkChange(path, "/etc/passwd"),
                                           DeleteChange(path),
                                           RenameChange("a/existing", path, Meta(0644, 0, 0, 0)),
                                           RenameChange(path, "a/new", Meta(0644, 0, 0, 0))};
    for (const pb::FileChange& change : changes) {
      auto result = applier_->Apply(change);
      ASSERT_FALSE(result.ok()) << "'" << path << "' kind " << change.kind();
      EXPECT_EQ(result.status().code(), Status::Code::kInvalidArgument);
      EXPECT_NE(result.status().message().find("refusing path"), std::string::npos)
          << result.status().message();
      EXPECT_NE(result.status().message().find("nothing was written"), std::string::npos);
    }
  }
  EXPECT_EQ(Tree(dir_), before);
}

TEST_F(FileApplierTest, SymlinkInParentChainIsRefused) {
  ASSERT_EQ(::symlink(outside_.c_str(), P("escape").c_str()), 0);
  ASSERT_EQ(::symlink("inner", P("alias").c_str()), 0);
  fs::create_directories(P("inner"));
  Write(outside_ + "/victim", "keep");
  Write(P("plain"), "p");
  std::vector<std::string> before = Tree(dir_);
  const std::vector<pb::FileChange> changes = {
      FileChange("escape/x", "evil"),
      FileChange("escape/new/dir/x", "evil"),
      DirChange("escape/d"),
      SymlinkChange("escape/s", "/etc/passwd"),
      DeleteChange("escape/victim"),
      RenameChange("escape/victim", "stolen", Meta(0644, 0, 0, kMtime, 4)),
      RenameChange("plain", "escape/planted", Meta(0644, 0, 0, kMtime, 1)),
      FileChange("alias/x", "also refused: links inside the repository are not followed"),
  };
  for (const pb::FileChange& change : changes) {
    auto result = applier_->Apply(change);
    ASSERT_FALSE(result.ok()) << change.path();
    EXPECT_EQ(result.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(result.status().message().find("through a symbolic link"), std::string::npos)
        << result.status().message();
  }
  EXPECT_EQ(Tree(dir_), before);
  EXPECT_EQ(Read(outside_ + "/victim"), "keep");
  EXPECT_EQ(Read(P("plain")), "p");
}

TEST_F(FileApplierTest, CopyOpsRebuildFromTheBase) {
  const std::string base = "0123456789abcdefghijklmnopqrstuvwxyz";
  ASSERT_EQ(MustApply(FileChange("f", base)), FileApplyOutcome::kApplied);
  const std::string content = "abcdefghij" + std::string("NEW") + "0123456789" + "xyz";
  pb::FileChange change =
      DeltaChange("f", {Copy(10, 10), Literal("NEW"), Copy(0, 10), Copy(33, 3)}, base, content);
  EXPECT_EQ(MustApply(change), FileApplyOutcome::kApplied);
  EXPECT_EQ(Read(P("f")), content);

  // Again: the copies no longer fit, but the file already is the result.
  EXPECT_EQ(MustApply(change), FileApplyOutcome::kAlreadyApplied);
  EXPECT_EQ(Read(P("f")), content);
  EXPECT_TRUE(Temporaries(root_).empty());
}

TEST_F(FileApplierTest, BaseMismatchNeedsResyncAndKeepsOldFile) {
  ASSERT_EQ(MustApply(FileChange("f", "not the base the primary had", Meta(0640, 3, 4, kMtime))),
            FileApplyOutcome::kApplied);
  const std::string base = "the base the primary had";
  const std::string content = "the base" + std::string("!");

  // Copies that fit the size but not the bytes: the SHA-256 check refuses.
  EXPECT_EQ(MustApply(DeltaChange("f", {Copy(0, 8), Literal("!")}, base, content)),
            FileApplyOutcome::kNeedsResync);
  // A copy beyond the end of the file.
  EXPECT_EQ(MustApply(DeltaChange("f", {Copy(20, 100)}, base, content)),
            FileApplyOutcome::kNeedsResync);
  EXPECT_EQ(Read(P("f")), "not the base the primary had");
  struct stat st = Lstat(P("f"));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 3u);
  EXPECT_EQ(MtimeNs(st), kMtime);

  // No base at all.
  EXPECT_EQ(MustApply(DeltaChange("missing", {Copy(0, 8)}, base, "the base")),
            FileApplyOutcome::kNeedsResync);
  EXPECT_FALSE(Exists(P("missing")));
  EXPECT_TRUE(Temporaries(root_).empty());
}

TEST_F(FileApplierTest, WrongContentHashNeedsResync) {
  Write(P("f"), "old");
  pb::FileChange change = FileChange("f", "new");
  change.set_content_hash(Sha256Of("something else"));
  EXPECT_EQ(MustApply(change), FileApplyOutcome::kNeedsResync);
  EXPECT_EQ(Read(P("f")), "old");
  EXPECT_TRUE(Temporaries(root_).empty());
}

TEST_F(FileApplierTest, ReapplyingLiteralChangeGivesSameResult) {
  pb::FileChange change = FileChange("f", "content", Meta(0604, 1, 2, kMtime));
  ASSERT_EQ(MustApply(change), FileApplyOutcome::kApplied);
  FileApplyOutcome again = MustApply(change);
  EXPECT_TRUE(again == FileApplyOutcome::kApplied || again == FileApplyOutcome::kAlreadyApplied);
  EXPECT_EQ(Read(P("f")), "content");
  struct stat st = Lstat(P("f"));
  EXPECT_EQ(st.st_mode & 07777, 0604u);
  EXPECT_EQ(MtimeNs(st), kMtime);
  EXPECT_EQ(MustApply(DirChange("d")), FileApplyOutcome::kApplied);
  EXPECT_EQ(MustApply(DirChange("d")), FileApplyOutcome::kApplied);
  EXPECT_EQ(MustApply(SymlinkChange("l", "t")), FileApplyOutcome::kApplied);
  EXPECT_EQ(MustApply(SymlinkChange("l", "t")), FileApplyOutcome::kApplied);
  EXPECT_EQ(fs::read_symlink(P("l")).string(), "t");
}

TEST_F(FileApplierTest, MultiPartFileAcrossThreeApplies) {
  const std::string base(100, 'b');
  ASSERT_EQ(MustApply(FileChange("big", base)), FileApplyOutcome::kApplied);
  const std::string content = "part0-" + base.substr(0, 50) + "part2";

  pb::FileChange part0 = FileChange("big", "", Meta(0644, 0, 0, kMtime));
  part0.clear_ops();
  *part0.add_ops() = Literal("part0-");
  part0.set_last_part(false);
  part0.clear_content_hash();
  pb::FileChange part1 = part0;
  part1.clear_ops();
  part1.set_part(1);
  *part1.add_ops() = Copy(0, 50);
  pb::FileChange part2 = part1;
  part2.clear_ops();
  part2.set_part(2);
  *part2.add_ops() = Literal("part2");
  part2.set_last_part(true);
  part2.set_content_hash(Sha256Of(content));
  part2.mutable_meta()->set_size(content.size());
  part2.set_parent_mtime_ns(kMtime + 3);

  EXPECT_EQ(MustApply(part0), FileApplyOutcome::kApplied);
  EXPECT_TRUE(applier_->file_in_progress());
  EXPECT_EQ(MustApply(part1), FileApplyOutcome::kApplied);
  EXPECT_EQ(Read(P("big")), base);  // not visible before the last part
  EXPECT_EQ(Temporaries(root_).size(), 1u);
  EXPECT_EQ(MustApply(part2), FileApplyOutcome::kApplied);
  EXPECT_FALSE(applier_->file_in_progress());
  EXPECT_EQ(Read(P("big")), content);
  EXPECT_EQ(MtimeNs(Lstat(root_)), kMtime + 3);
  EXPECT_TRUE(Temporaries(root_).empty());
}

// A stream that begins inside a file (a bootstrap joins the stream at its copy's point) brings
// that file's later parts without its part 0: the path is left as it is and asked for whole.
TEST_F(FileApplierTest, LaterPartsWithoutTheFirstNeedResyncAndChangeNothing) {
  Write(P("big"), "old content");
  pb::FileChange part1 = FileChange("big", "middle of the new content");
  part1.set_part(1);
  part1.set_last_part(false);
  part1.clear_content_hash();
  pb::FileChange part2 = part1;
  part2.set_part(2);
  part2.set_last_part(true);
  EXPECT_EQ(MustApply(part1), FileApplyOutcome::kNeedsResync);
  EXPECT_FALSE(applier_->file_in_progress());
  EXPECT_EQ(MustApply(part2), FileApplyOutcome::kNeedsResync);
  EXPECT_EQ(Read(P("big")), "old content");
  EXPECT_TRUE(Temporaries(root_).empty());
  // The next whole file for the path is applied as usual.
  EXPECT_EQ(MustApply(FileChange("big", "whole")), FileApplyOutcome::kApplied);
  EXPECT_EQ(Read(P("big")), "whole");
}

TEST_F(FileApplierTest, AbandonedLastPartKeepsOldContentAndNoTemporary) {
  Write(P("f"), "old");
  pb::FileChange part0 = FileChange("f", "half of the new");
  part0.set_last_part(false);
  part0.clear_content_hash();
  pb::FileChange part1 = DeleteChange("f");
  part1.set_kind(pb::FileChange::FILE);
  part1.set_part(1);
  part1.set_last_part(true);
  part1.set_abandoned(true);

  EXPECT_EQ(MustApply(part0), FileApplyOutcome::kApplied);
  EXPECT_EQ(MustApply(part1), FileApplyOutcome::kApplied);
  EXPECT_FALSE(applier_->file_in_progress());
  EXPECT_EQ(Read(P("f")), "old");
  EXPECT_TRUE(Temporaries(root_).empty());
}

TEST_F(FileApplierTest, PartThatDoesNotContinueTheFileIsCorruption) {
  pb::FileChange part0 = FileChange("f", "head");
  part0.set_last_part(false);
  ASSERT_EQ(MustApply(part0), FileApplyOutcome::kApplied);
  auto result = applier_->Apply(DirChange("d"));
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsCorruption()) << result.status().ToString();
  EXPECT_FALSE(applier_->file_in_progress());
  EXPECT_TRUE(Temporaries(root_).empty());
  EXPECT_FALSE(Exists(P("d")));

  ASSERT_EQ(MustApply(part0), FileApplyOutcome::kApplied);
  pb::FileChange skipped = FileChange("f", "tail");
  skipped.set_part(2);
  result = applier_->Apply(skipped);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsCorruption());
  EXPECT_TRUE(Temporaries(root_).empty());
  EXPECT_FALSE(Exists(P("f")));
}

TEST_F(FileApplierTest, MalformedChangesAreCorruption) {
  pb::FileChange unknown = DirChange("d");
  unknown.set_kind(pb::FileChange::KIND_UNSPECIFIED);
  auto result = applier_->Apply(unknown);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsCorruption());
  EXPECT_FALSE(Exists(P("d")));

  pb::FileChange no_hash = FileChange("f", "x");
  no_hash.clear_content_hash();
  result = applier_->Apply(no_hash);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsCorruption());
  EXPECT_FALSE(Exists(P("f")));
  EXPECT_TRUE(Temporaries(root_).empty());

  pb::FileChange no_target = SymlinkChange("l", "");
  result = applier_->Apply(no_target);
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(result.status().IsCorruption());
  EXPECT_FALSE(Exists(P("l")));
}

TEST_F(FileApplierTest, ContentUnchangedAppliesMetaOnly) {
  KeepSetid();  // the setgid bit below is applied only with [repository] keep_setid = true
  Write(P("f"), "same");
  pb::FileChange change = FileChange("f", "same", Meta(02711, 21, 22, kMtime));
  change.clear_ops();
  change.set_content_unchanged(true);
  EXPECT_EQ(MustApply(change), FileApplyOutcome::kApplied);
  EXPECT_EQ(Read(P("f")), "same");
  struct stat st = Lstat(P("f"));
  EXPECT_EQ(st.st_mode & 07777, 02711u);
  EXPECT_EQ(st.st_uid, 21u);
  EXPECT_EQ(st.st_gid, 22u);
  EXPECT_EQ(MtimeNs(st), kMtime);

  change.set_path("missing");
  EXPECT_EQ(MustApply(change), FileApplyOutcome::kNeedsResync);
  EXPECT_FALSE(Exists(P("missing")));
  fs::create_directories(P("dir"));
  change.set_path("dir");
  EXPECT_EQ(MustApply(change), FileApplyOutcome::kNeedsResync);
}

TEST_F(FileApplierTest, SyncSucceeds) {
  ASSERT_EQ(MustApply(FileChange("f", "x")), FileApplyOutcome::kApplied);
  Status st = applier_->Sync();
  EXPECT_TRUE(st.ok()) << st.ToString();
}

}  // namespace
}  // namespace replsync::apply
