#include "sync/files/file_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "sync/files/content_hash.h"
#include "sync/files/manifest.h"
#include "sync/files/open_beneath.h"
#include "sync/path_text.h"
#include "sync/unique_fd.h"

namespace replsync {

namespace {

int64_t Nanos(const struct timespec& ts) { return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec; }

// Appends fixed-width little-endian integers and length-prefixed bytes to one XXH3-128 state.
class Hasher {
 public:
  Hasher() : state_(XXH3_createState()) { XXH3_128bits_reset(state_); }
  ~Hasher() { XXH3_freeState(state_); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void U64(uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    XXH3_128bits_update(state_, b, sizeof b);
  }
  void Bytes(const std::string& s) {
    U64(s.size());
    XXH3_128bits_update(state_, s.data(), s.size());
  }
  std::string Final() {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(state_));
    XXH3_128bits_reset(state_);
    return std::string(reinterpret_cast<const char*>(c.digest), sizeof c.digest);
  }

 private:
  XXH3_state_t* state_;
};

void HashNode(Hasher& h, pb::TreeNode* node, bool with_content) {
  h.U64(node->type());
  h.U64(node->mode());
  h.U64(node->uid());
  h.U64(node->gid());
  h.U64(static_cast<uint64_t>(node->mtime_ns()));
  switch (node->type()) {
    case kTreeFile:
      h.U64(node->size());
      h.Bytes(with_content ? node->content_hash() : std::string());
      break;
    case kTreeSymlink:
      h.Bytes(node->link_target());
      break;
    case kTreeDirectory:
      h.Bytes(node->children_hash());
      break;
    default:
      break;
  }
  node->set_hash(h.Final());
}

bool NameLess(const pb::TreeNode& a, const pb::TreeNode& b) {
  return std::string_view(a.name()) < std::string_view(b.name());
}

size_t Depth(const std::string& path) {
  return path.empty() ? 0 : 1 + static_cast<size_t>(std::count(path.begin(), path.end(), '/'));
}

}  // namespace

void FileTree::Add(const std::string& path, pb::TreeNode node) {
  const size_t slash = path.rfind('/');
  node.set_name(slash == std::string::npos ? path : path.substr(slash + 1));
  if (node.type() == kTreeDirectory) children_.try_emplace(path);
  children_[ParentPath(path)].push_back(std::move(node));
  ++size_;
}

void FileTree::Finish(bool with_content) {
  Hasher h;
  std::vector<std::string> dirs;
  dirs.reserve(children_.size());
  for (auto& [dir, nodes] : children_) {
    std::sort(nodes.begin(), nodes.end(), NameLess);
    for (pb::TreeNode& node : nodes) {
      if (node.type() != kTreeDirectory) HashNode(h, &node, with_content);
    }
    dirs.push_back(dir);
  }
  // Deepest folders first: a folder's children are final when it is hashed.
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) {
    return Depth(a) > Depth(b) || (Depth(a) == Depth(b) && a < b);
  });
  for (const std::string& dir : dirs) {
    for (const pb::TreeNode& child : children_[dir]) {
      h.Bytes(child.name());
      h.Bytes(child.hash());
    }
    std::string children_hash = h.Final();
    if (dir.empty()) {
      root_hash_ = std::move(children_hash);
      continue;
    }
    auto parent = children_.find(ParentPath(dir));
    if (parent == children_.end()) continue;
    const size_t slash = dir.rfind('/');
    pb::TreeNode key;
    key.set_name(slash == std::string::npos ? dir : dir.substr(slash + 1));
    auto it = std::lower_bound(parent->second.begin(), parent->second.end(), key, NameLess);
    if (it == parent->second.end() || it->name() != key.name()) continue;
    it->set_children_hash(std::move(children_hash));
    HashNode(h, &*it, with_content);
  }
  if (root_hash_.empty()) root_hash_ = h.Final();  // an empty tree
}

const std::vector<pb::TreeNode>* FileTree::Children(const std::string& dir) const {
  auto it = children_.find(dir);
  return it == children_.end() ? nullptr : &it->second;
}

bool FileTree::IsDirectory(const std::string& dir) const {
  return dir.empty() || children_.count(dir) != 0;
}

void FileTree::Listing(const std::string& dir, const std::string& after, size_t max_nodes,
                       pb::TreeListing* out) const {
  out->set_dir(dir);
  if (!IsDirectory(dir)) {
    out->set_missing(true);
    return;
  }
  const std::vector<pb::TreeNode>* nodes = Children(dir);
  if (nodes == nullptr) return;
  auto it = nodes->begin();
  if (!after.empty()) {
    pb::TreeNode key;
    key.set_name(after);
    it = std::upper_bound(nodes->begin(), nodes->end(), key, NameLess);
  }
  for (; it != nodes->end(); ++it) {
    if (static_cast<size_t>(out->nodes_size()) >= max_nodes) {
      out->set_truncated(true);
      return;
    }
    *out->add_nodes() = *it;
  }
}

Result<FileTree> FileTree::FromManifest(const Manifest& manifest) {
  FileTree tree;
  Status st = manifest.ForEach([&tree](const ManifestEntry& e) {
    pb::TreeNode node;
    node.set_type(static_cast<uint32_t>(e.type));
    node.set_uid(e.uid);
    node.set_gid(e.gid);
    node.set_mtime_ns(e.mtime_ns);
    switch (e.type) {
      case ManifestEntry::Type::kFile:
        node.set_mode(e.mode & 07777);
        node.set_size(e.size);
        node.set_content_hash(e.content_hash);
        break;
      case ManifestEntry::Type::kDirectory:
        node.set_mode(e.mode & 07777);
        break;
      case ManifestEntry::Type::kSymlink:
        node.set_link_target(e.link_target);
        break;
    }
    tree.Add(e.path, std::move(node));
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return tree;
}

namespace {

struct Scanner {
  const std::string& root;
  const ScanTreeOptions& options;
  FileTree tree;
  uint64_t paths = 0;
  uint64_t bytes = 0;

  Status IoErr(const char* what, const std::string& path, int err) const {
    return Status::IoError(
        fmt::format("{} {} in {}: {}", what, QuotePath(path), root, std::strerror(err)));
  }

  void Progress() {
    if (options.progress && paths % 1000 == 0) options.progress(paths, bytes);
  }

  // Lists the folder open at `fd` (relative path `dir`), adding its children and recursing.
  Status Walk(int fd, const std::string& dir) {
    DIR* d = fdopendir(fd);
    if (d == nullptr) {
      const int err = errno;
      ::close(fd);
      return IoErr("list", dir.empty() ? std::string(".") : dir, err);
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = readdir(d)) {
      std::string_view name(e->d_name);
      if (name == "." || name == ".." ||
          name.substr(0, kApplierTempPrefix.size()) == kApplierTempPrefix) {
        continue;
      }
      names.emplace_back(name);
    }
    const int read_err = errno;
    const int dfd = dirfd(d);
    if (read_err != 0) {
      closedir(d);
      return IoErr("list", dir.empty() ? std::string(".") : dir, read_err);
    }
    for (const std::string& name : names) {
      const std::string path = JoinPath(dir, name);
      struct stat st;
      if (fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        const int err = errno;
        closedir(d);
        return IoErr("stat", path, err);
      }
      pb::TreeNode node;
      node.set_uid(st.st_uid);
      node.set_gid(st.st_gid);
      node.set_mtime_ns(Nanos(st.st_mtim));
      ++paths;
      Progress();
      if (S_ISREG(st.st_mode)) {
        node.set_type(kTreeFile);
        node.set_mode(st.st_mode & 07777);
        node.set_size(static_cast<uint64_t>(st.st_size));
        const ScanHashCache::Entry* cached = nullptr;
        if (options.with_content && options.cache != nullptr) {
          auto it = options.cache->files.find(path);
          if (it != options.cache->files.end() && it->second.inode == st.st_ino &&
              it->second.size == static_cast<uint64_t>(st.st_size) &&
              it->second.mtime_ns == Nanos(st.st_mtim) &&
              it->second.ctime_ns == Nanos(st.st_ctim)) {
            cached = &it->second;
          }
        }
        if (cached != nullptr) {
          node.set_content_hash(cached->sha256);
        } else if (options.with_content) {
          UniqueFd f(openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
          if (!f.valid()) {
            if (errno == ENOENT) continue;
            const int err = errno;
            closedir(d);
            return IoErr("open", path, err);
          }
          Result<std::string> hash = Sha256OfFile(f.get());
          if (!hash.ok()) {
            closedir(d);
            return hash.status().WithContext(fmt::format("hash {} in {}", QuotePath(path), root));
          }
          node.set_content_hash(*hash);
          bytes += static_cast<uint64_t>(st.st_size);
          // Cached only when the file did not change while it was read and its times are older
          // than the clock's granularity (a write in the same tick would keep them equal).
          struct stat after;
          const int64_t now_ns = options.clock->UnixMillis() * 1000000;
          if (options.cache != nullptr && fstat(f.get(), &after) == 0 &&
              after.st_ino == st.st_ino && after.st_size == st.st_size &&
              Nanos(after.st_mtim) == Nanos(st.st_mtim) &&
              Nanos(after.st_ctim) == Nanos(st.st_ctim) &&
              now_ns - std::max(Nanos(st.st_mtim), Nanos(st.st_ctim)) > 50000000) {
            options.cache->files[path] = ScanHashCache::Entry{
                static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
                Nanos(st.st_mtim), Nanos(st.st_ctim), *hash};
          }
        }
        tree.Add(path, std::move(node));
      } else if (S_ISLNK(st.st_mode)) {
        node.set_type(kTreeSymlink);
        std::string target(static_cast<size_t>(st.st_size) + 256, '\0');
        const ssize_t n = readlinkat(dfd, name.c_str(), target.data(), target.size());
        if (n < 0) {
          if (errno == ENOENT) continue;
          const int err = errno;
          closedir(d);
          return IoErr("read the link", path, err);
        }
        target.resize(static_cast<size_t>(n));
        node.set_link_target(std::move(target));
        tree.Add(path, std::move(node));
      } else if (S_ISDIR(st.st_mode)) {
        node.set_type(kTreeDirectory);
        node.set_mode(st.st_mode & 07777);
        tree.Add(path, std::move(node));
        const int sub = openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
          if (errno == ENOENT) continue;
          const int err = errno;
          closedir(d);
          return IoErr("open the folder", path, err);
        }
        Status st2 = Walk(sub, path);
        if (!st2.ok()) {
          closedir(d);
          return st2;
        }
      }
      // FIFOs, sockets and devices are not replicated: left out.
    }
    closedir(d);
    return Status::Ok();
  }
};

}  // namespace

Result<FileTree> ScanTree(const std::string& root, const ScanTreeOptions& options) {
  Scanner scanner{root, options, FileTree(), 0, 0};
  const int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return Status::IoError(
        fmt::format("open the repository folder {}: {}", root, std::strerror(errno)));
  }
  RS_RETURN_IF_ERROR(scanner.Walk(fd, ""));
  if (options.progress) options.progress(scanner.paths, scanner.bytes);
  return std::move(scanner.tree);
}

Result<std::string> HashTreeFile(const std::string& root, const std::string& path) {
  UniqueFd dir(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    return Status::IoError(fmt::format("open {}: {}", root, std::strerror(errno)));
  }
  // The path comes from a tree; a symlinked folder on the way must not be followed out.
  RS_ASSIGN_OR_RETURN(UniqueFd f, OpenBeneath(dir.get(), root, path, O_RDONLY | O_NOFOLLOW));
  Result<std::string> hash = Sha256OfFile(f.get());
  if (!hash.ok()) {
    return hash.status().WithContext(fmt::format("hash {} in {}", QuotePath(path), root));
  }
  return hash;
}

}  // namespace replsync
