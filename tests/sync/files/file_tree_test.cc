// FileTree: Merkle hashes over a repository's metadata, listings, the manifest's tree and the
// folder scan (sync/files/file_tree.h).
#include "sync/files/file_tree.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "sync/clock.h"
#include "sync/files/content_hash.h"
#include "sync/files/manifest.h"

namespace replsync {
namespace {

pb::TreeNode File(uint64_t size, int64_t mtime, uint32_t mode = 0644,
                  const std::string& content_hash = std::string(32, 'h')) {
  pb::TreeNode n;
  n.set_type(kTreeFile);
  n.set_mode(mode);
  n.set_uid(1000);
  n.set_gid(1000);
  n.set_mtime_ns(mtime);
  n.set_size(size);
  n.set_content_hash(content_hash);
  return n;
}

pb::TreeNode Dir(int64_t mtime) {
  pb::TreeNode n;
  n.set_type(kTreeDirectory);
  n.set_mode(0755);
  n.set_mtime_ns(mtime);
  return n;
}

pb::TreeNode Link(const std::string& target) {
  pb::TreeNode n;
  n.set_type(kTreeSymlink);
  n.set_link_target(target);
  n.set_mtime_ns(5);
  return n;
}

// A small tree; `edit` may change one node before it is added.
FileTree Sample(const std::function<void(const std::string&, pb::TreeNode*)>& edit = {},
                bool with_content = false) {
  FileTree t;
  auto add = [&](const std::string& path, pb::TreeNode n) {
    if (edit) edit(path, &n);
    t.Add(path, std::move(n));
  };
  // Deliberately not in path order: Add must not depend on it.
  add("b/c/deep.txt", File(10, 100));
  add("a.txt", File(3, 1));
  add("b", Dir(7));
  add("b/c", Dir(8));
  add("b/link", Link("../a.txt"));
  add("z", Dir(9));
  t.Finish(with_content);
  return t;
}

const pb::TreeNode* Find(const FileTree& t, const std::string& dir, const std::string& name) {
  const auto* children = t.Children(dir);
  if (children == nullptr) return nullptr;
  for (const auto& n : *children) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

TEST(FileTreeTest, EqualTreesHashAlikeWhateverTheOrderOfAdds) {
  FileTree a = Sample();
  FileTree b;
  b.Add("z", Dir(9));
  b.Add("b/link", Link("../a.txt"));
  b.Add("b/c", Dir(8));
  b.Add("b", Dir(7));
  b.Add("a.txt", File(3, 1));
  b.Add("b/c/deep.txt", File(10, 100));
  b.Finish(false);
  EXPECT_EQ(a.root_hash(), b.root_hash());
  EXPECT_EQ(a.root_hash().size(), 16u);
  EXPECT_EQ(a.size(), 6u);
  ASSERT_NE(a.Children(""), nullptr);
  ASSERT_EQ(a.Children("")->size(), 3u);
  EXPECT_EQ((*a.Children(""))[0].name(), "a.txt");
  EXPECT_EQ((*a.Children(""))[1].name(), "b");
  EXPECT_EQ((*a.Children(""))[2].name(), "z");
  EXPECT_TRUE(a.IsDirectory("z"));
  ASSERT_NE(a.Children("z"), nullptr);
  EXPECT_TRUE(a.Children("z")->empty());
  EXPECT_FALSE(a.IsDirectory("a.txt"));
}

TEST(FileTreeTest, EveryFieldOfADeepNodeChangesOnlyItsAncestorsHashes) {
  const FileTree base = Sample();
  const std::vector<std::function<void(pb::TreeNode*)>> edits = {
      [](pb::TreeNode* n) { n->set_mode(0600); },
      [](pb::TreeNode* n) { n->set_uid(0); },
      [](pb::TreeNode* n) { n->set_gid(0); },
      [](pb::TreeNode* n) { n->set_mtime_ns(101); },
      [](pb::TreeNode* n) { n->set_size(11); },
      [](pb::TreeNode* n) { n->set_type(kTreeSymlink); },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    FileTree changed = Sample([&](const std::string& path, pb::TreeNode* n) {
      if (path == "b/c/deep.txt") edits[i](n);
    });
    EXPECT_NE(changed.root_hash(), base.root_hash()) << "edit " << i;
    EXPECT_NE(Find(changed, "b", "c")->hash(), Find(base, "b", "c")->hash()) << "edit " << i;
    EXPECT_NE(Find(changed, "b", "c")->children_hash(), Find(base, "b", "c")->children_hash());
    EXPECT_NE(Find(changed, "", "b")->children_hash(), Find(base, "", "b")->children_hash());
    // Siblings and other subtrees keep their hashes: the descent skips them.
    EXPECT_EQ(Find(changed, "", "a.txt")->hash(), Find(base, "", "a.txt")->hash());
    EXPECT_EQ(Find(changed, "", "z")->hash(), Find(base, "", "z")->hash());
    EXPECT_EQ(Find(changed, "b", "link")->hash(), Find(base, "b", "link")->hash());
  }
  // A folder's own metadata changes its hash, not its children hash.
  FileTree folder = Sample([](const std::string& path, pb::TreeNode* n) {
    if (path == "b/c") n->set_mtime_ns(99);
  });
  EXPECT_NE(Find(folder, "b", "c")->hash(), Find(base, "b", "c")->hash());
  EXPECT_EQ(Find(folder, "b", "c")->children_hash(), Find(base, "b", "c")->children_hash());
  // A link's target and a renamed entry.
  FileTree link = Sample([](const std::string& path, pb::TreeNode* n) {
    if (path == "b/link") n->set_link_target("../b.txt");
  });
  EXPECT_NE(link.root_hash(), base.root_hash());
  FileTree renamed;
  renamed.Add("a.txt", File(3, 1));
  FileTree other;
  other.Add("a.txx", File(3, 1));
  renamed.Finish(false);
  other.Finish(false);
  EXPECT_NE(renamed.root_hash(), other.root_hash());
}

TEST(FileTreeTest, ContentHashCountsOnlyWithContent) {
  auto edit = [](const std::string& path, pb::TreeNode* n) {
    if (path == "a.txt") n->set_content_hash(std::string(32, 'x'));
  };
  EXPECT_EQ(Sample(edit, false).root_hash(), Sample({}, false).root_hash());
  EXPECT_NE(Sample(edit, true).root_hash(), Sample({}, true).root_hash());
}

TEST(FileTreeTest, ListingsArePagedByName) {
  FileTree t;
  t.Add("d", Dir(1));
  for (int i = 0; i < 25; ++i) t.Add("d/" + std::to_string(100 + i), File(1, i));
  t.Finish(false);
  std::vector<std::string> names;
  std::string after;
  int pages = 0;
  while (true) {
    pb::TreeListing listing;
    t.Listing("d", after, 10, &listing);
    ++pages;
    EXPECT_EQ(listing.dir(), "d");
    EXPECT_FALSE(listing.missing());
    for (const auto& n : listing.nodes()) names.push_back(n.name());
    if (!listing.truncated()) break;
    after = names.back();
  }
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(names.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(names[i], std::to_string(100 + i));
  pb::TreeListing missing;
  t.Listing("nope", "", 10, &missing);
  EXPECT_TRUE(missing.missing());
  pb::TreeListing file;
  t.Listing("d/100", "", 10, &file);
  EXPECT_TRUE(file.missing());
  pb::TreeListing empty_root;
  FileTree none;
  none.Finish(false);
  none.Listing("", "", 10, &empty_root);
  EXPECT_FALSE(empty_root.missing());
  EXPECT_EQ(empty_root.nodes_size(), 0);
  EXPECT_EQ(none.root_hash().size(), 16u);
}

ScanTreeOptions Content(bool with_content) {
  ScanTreeOptions o;
  o.with_content = with_content;
  return o;
}

class FileTreeDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/replsync-file-tree-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/repo";
    std::filesystem::create_directories(root_ + "/docs/sub");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& content) {
    std::ofstream(root_ + "/" + rel, std::ios::binary) << content;
  }
  std::string dir_;
  std::string root_;
};

TEST_F(FileTreeDiskTest, ScanMatchesTheManifestOfTheSameTree) {
  Write("docs/a.txt", "alpha");
  Write("docs/sub/b.bin", std::string(5000, '\0'));
  ASSERT_EQ(symlink("a.txt", (root_ + "/docs/link").c_str()), 0);
  ASSERT_EQ(mkfifo((root_ + "/docs/fifo").c_str(), 0600), 0);    // not replicated: left out
  Write("docs/.replsync-tmp.0123456789abcdef", "half written");  // the applier's: left out

  auto scanned = ScanTree(root_, Content(true));
  ASSERT_TRUE(scanned.ok()) << scanned.status().ToString();
  EXPECT_EQ(scanned->size(), 5u);  // docs, docs/sub, a.txt, b.bin, link
  const pb::TreeNode* a = Find(*scanned, "docs", "a.txt");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->content_hash(), Sha256::Of("alpha"));
  EXPECT_EQ(a->size(), 5u);
  EXPECT_EQ(Find(*scanned, "docs", "link")->link_target(), "a.txt");
  auto hashed = HashTreeFile(root_, "docs/sub/b.bin");
  ASSERT_TRUE(hashed.ok());
  EXPECT_EQ(*hashed, Sha256::Of(std::string(5000, '\0')));
  EXPECT_FALSE(HashTreeFile(root_, "docs/link").ok());  // never follows a link

  // The same tree written into a manifest, as the primary's capture records it.
  auto manifest = Manifest::Open(dir_ + "/manifest.db");
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  for (const char* path : {"docs", "docs/sub", "docs/a.txt", "docs/sub/b.bin", "docs/link"}) {
    struct stat st;
    ASSERT_EQ(lstat((root_ + "/" + path).c_str(), &st), 0);
    ManifestEntry e;
    e.path = path;
    e.type = S_ISDIR(st.st_mode)   ? ManifestEntry::Type::kDirectory
             : S_ISLNK(st.st_mode) ? ManifestEntry::Type::kSymlink
                                   : ManifestEntry::Type::kFile;
    e.mode = st.st_mode;  // with the type bits, as the capture stores it
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.size = e.type == ManifestEntry::Type::kFile ? static_cast<uint64_t>(st.st_size) : 0;
    e.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    if (e.type == ManifestEntry::Type::kSymlink) e.link_target = "a.txt";
    if (e.type == ManifestEntry::Type::kFile) {
      e.content_hash = *HashTreeFile(root_, path);
    }
    ASSERT_TRUE((*manifest)->Put(e).ok());
  }
  auto from_manifest = FileTree::FromManifest(**manifest);
  ASSERT_TRUE(from_manifest.ok()) << from_manifest.status().ToString();
  for (bool with_content : {false, true}) {
    auto scan = ScanTree(root_, Content(with_content));
    ASSERT_TRUE(scan.ok());
    scan->Finish(with_content);
    FileTree m = *from_manifest;
    m.Finish(with_content);
    EXPECT_EQ(scan->root_hash(), m.root_hash()) << "with_content " << with_content;
  }
  // A change behind the manifest's back shows in the scan.
  ASSERT_EQ(chmod((root_ + "/docs/a.txt").c_str(), 0600), 0);
  auto after = ScanTree(root_, {});
  ASSERT_TRUE(after.ok());
  after->Finish(false);
  FileTree m = *from_manifest;
  m.Finish(false);
  EXPECT_NE(after->root_hash(), m.root_hash());
}

TEST_F(FileTreeDiskTest, AHashCacheSkipsOnlyFilesWhoseStatIsUnchanged) {
  Write("docs/a.txt", "alpha");
  Write("docs/sub/b.txt", "bravo");
  // Old enough to be trusted (the cache ignores files changed in the last 50 ms).
  const struct timespec old_times[2] = {{1700000000, 0}, {1700000000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (root_ + "/docs/a.txt").c_str(), old_times, 0), 0);
  ASSERT_EQ(utimensat(AT_FDCWD, (root_ + "/docs/sub/b.txt").c_str(), old_times, 0), 0);
  // The scan's clock is a second ahead of the kernel's: the ctimes of a.txt and b.txt are more
  // than 50 ms old by it...
  ManualClock clock(SystemClock().UnixMillis() + 1000);
  // ...and fresh.txt is written just now by it.
  Write("docs/fresh.txt", "written just now");
  const int64_t now_ms = clock.UnixMillis();
  const struct timespec now_times[2] = {{now_ms / 1000, (now_ms % 1000) * 1000000},
                                        {now_ms / 1000, (now_ms % 1000) * 1000000}};
  ASSERT_EQ(utimensat(AT_FDCWD, (root_ + "/docs/fresh.txt").c_str(), now_times, 0), 0);
  ScanHashCache cache;
  ScanTreeOptions o = Content(true);
  o.cache = &cache;
  o.clock = &clock;
  uint64_t bytes = 0;
  o.progress = [&bytes](uint64_t, uint64_t b) { bytes = b; };
  ASSERT_TRUE(ScanTree(root_, o).ok());
  EXPECT_EQ(bytes, 5u + 5u + 16u);
  EXPECT_EQ(cache.files.count("docs/a.txt"), 1u);
  EXPECT_EQ(cache.files.count("docs/fresh.txt"), 0u);  // too recent to trust

  // b.txt rewritten with the same size, its mtime put back: only the ctime tells.
  Write("docs/sub/b.txt", "BRAVO");
  ASSERT_EQ(utimensat(AT_FDCWD, (root_ + "/docs/sub/b.txt").c_str(), old_times, 0), 0);
  auto again = ScanTree(root_, o);
  ASSERT_TRUE(again.ok());
  // a.txt came from the cache; b.txt (new ctime) and fresh.txt (not cached) were read.
  EXPECT_EQ(bytes, 5u + 16u);
  EXPECT_EQ(Find(*again, "docs/sub", "b.txt")->content_hash(), Sha256::Of("BRAVO"));
  EXPECT_EQ(Find(*again, "docs", "a.txt")->content_hash(), Sha256::Of("alpha"));
}

TEST_F(FileTreeDiskTest, AMissingRootIsAnErrorNamingIt) {
  auto scanned = ScanTree(dir_ + "/nope", {});
  ASSERT_FALSE(scanned.ok());
  EXPECT_NE(scanned.status().message().find(dir_ + "/nope"), std::string::npos)
      << scanned.status().message();
}

}  // namespace
}  // namespace replsync
