// FileTree: a snapshot of a repository's paths as `replsync verify` compares them
// (schemas/verify.md, "Files"): every path's type, mode, owner, mtime, size, link target and,
// when known, content hash, with a Merkle hash per path so that two trees are compared from the
// root down and an equal subtree costs one hash.
//
// - A node's `hash` is XXH3-128 over its metadata (type, mode & 07777, uid, gid, mtime ns; size
//   for files; the link target for symbolic links; the content hash for files when the tree is
//   finished `with_content`) and, for a directory, its `children_hash`: XXH3-128 over each child's
//   name and hash in name order. The root's children hash is the tree's root hash. Every field is
//   fixed-width or length-prefixed, so two different trees hash alike only by chance (2^-128).
// - The primary builds its tree from its manifest (what it journaled, FromManifest); a secondary
//   from its folder (ScanTree, lstat only unless asked to hash contents). The repository root's
//   own metadata is not part of the tree (the operator creates that folder on each node).
// - Temporary files of the file applier (".replsync-tmp.*") and what replsync does not replicate
//   (FIFOs, sockets, devices) are left out of a scan, as the primary leaves them out.
// Thread-safety: a finished tree may be read from any number of threads; building is
// single-threaded.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "replsync.pb.h"
#include "sync/clock.h"
#include "sync/status.h"

namespace replsync {

class Manifest;

// pb::TreeNode::type values (the same numbers as ManifestEntry::Type).
enum TreeNodeType : uint32_t { kTreeFile = 1, kTreeDirectory = 2, kTreeSymlink = 3 };

class FileTree {
 public:
  // Adds `path` (relative, '/' separated, not empty) with `node`'s metadata; node.name is set
  // from the path. The parent folders need not be added first, but every folder holding paths
  // must be added at some point (a scan and a manifest always do).
  void Add(const std::string& path, pb::TreeNode node);

  // Sorts every folder's children by name and computes every hash. Call once, after the last Add.
  // with_content: files' content hashes are part of their hashes (both trees must agree).
  void Finish(bool with_content);

  // The children of `dir` in name order ("" is the root), or nullptr when `dir` holds nothing or
  // is not a folder of the tree.
  const std::vector<pb::TreeNode>* Children(const std::string& dir) const;
  // Whether `dir` is the root or a folder of the tree.
  bool IsDirectory(const std::string& dir) const;
  // The root's children hash (16 bytes).
  const std::string& root_hash() const { return root_hash_; }
  // The number of paths.
  uint64_t size() const { return size_; }

  // Fills `out` with the children of `dir` after the name `after` ("" from the first), at most
  // `max_nodes`; `truncated` when more follow, `missing` when `dir` is not a folder of the tree.
  void Listing(const std::string& dir, const std::string& after, size_t max_nodes,
               pb::TreeListing* out) const;

  // The tree the manifest describes (every row). Errors: the manifest's read errors.
  static Result<FileTree> FromManifest(const Manifest& manifest);

 private:
  std::unordered_map<std::string, std::vector<pb::TreeNode>> children_;
  std::string root_hash_;
  uint64_t size_ = 0;
};

// A finished tree with the journal sequence it describes (verify's snapshot of the primary).
struct FileTreeSnapshot {
  std::shared_ptr<const FileTree> tree;
  uint64_t journal_seq = 0;
};

// Content hashes of an earlier scan, by path, valid while the file's inode, size, mtime and ctime
// are unchanged. A hash is kept only when the file's stat was the same after reading it and its
// times were more than 50 ms old (a write within the file system's timestamp granularity could
// otherwise leave the stat unchanged).
struct ScanHashCache {
  struct Entry {
    uint64_t inode = 0;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    std::string sha256;
  };
  std::unordered_map<std::string, Entry> files;
};

struct ScanTreeOptions {
  // Hash every regular file's content (SHA-256) into TreeNode::content_hash.
  bool with_content = false;
  // With with_content: hashes of files whose stat matches an entry are taken from here instead of
  // reading the file again; every hash computed is put here. Optional.
  ScanHashCache* cache = nullptr;
  // Called now and then with the paths and content bytes seen so far (optional).
  std::function<void(uint64_t paths, uint64_t bytes)> progress;
  // The wall clock a file's times are compared with (the cache's 50 ms); not owned.
  Clock* clock = &SystemClock();
};

// Walks the folder `root` (never following symbolic links) into a FileTree, not yet finished.
// Errors: IoError naming the path that could not be listed, stat'ed, read or hashed (a path
// that disappears during the walk is left out instead).
Result<FileTree> ScanTree(const std::string& root, const ScanTreeOptions& options);

// The SHA-256 (raw, 32 bytes) of the regular file `path` below `root`, opened with OpenBeneath
// (sync/files/open_beneath.h): no symbolic link is followed, neither a folder on the way nor the last
// component. Errors name the path: NotFound (gone), InvalidArgument (a symbolic link on the way
// or at the end, or a path leaving `root`), IoError (unreadable).
Result<std::string> HashTreeFile(const std::string& root, const std::string& path);

}  // namespace replsync
