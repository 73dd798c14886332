#include "apply/bootstrap/file_copier.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "sync/files/file_meta.h"
#include "sync/files/open_beneath.h"
#include "sync/files/repository_path.h"
#include "sync/path_text.h"

namespace replsync::apply {
namespace {

constexpr size_t kPathsPerRequest = 128;
constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

std::string NameOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Why a path was skipped: "<operation> <path>: <reason>".
std::string Why(const char* op, const std::string& path, int err) {
  return fmt::format("{} '{}': {}", op, path, std::strerror(err));
}

// The file applier's metadata (sync/files/file_meta.h): "" on success, else why not.
std::string MetaApplied(int fd, const pb::FileMeta& meta, bool keep_setid,
                        const std::string& path) {
  Status st = ApplyMetaFd(fd, meta, keep_setid, "'" + path + "'");
  return st.ok() ? std::string() : st.message();
}

class Copier {
 public:
  Copier(const FileCopierOptions& options, UniqueFd root_fd)
      : options_(options), root_fd_(std::move(root_fd)) {}

  Result<FileCopyResult> Run(std::vector<std::string> paths) {
    std::sort(paths.begin(), paths.end());
    paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
    for (std::string& path : paths) {
      if (!CheckRepositoryPath(path).ok()) continue;
      const std::string parent = ParentPath(path);
      if (!parent.empty()) touched_parents_.insert(parent);
      queue_.push_back(std::move(path));
    }
    total_ = queue_.size();
    std::vector<std::unique_ptr<BootstrapClient>> clients;
    for (size_t i = 0; i < std::max<size_t>(options_.workers, 1); ++i) {
      Result<std::unique_ptr<BootstrapClient>> client = options_.connect();
      if (!client.ok()) return client.status().WithContext("files phase: connect to the primary");
      clients.push_back(std::move(client).value());
    }
    std::vector<std::thread> threads;
    for (auto& client : clients) {
      threads.emplace_back([this, c = client.get()] { Work(*c); });
    }
    for (std::thread& t : threads) t.join();
    RS_RETURN_IF_ERROR(error_);
    // The folders that held missing paths got new entries, which moved their mtimes: those the
    // bulk pass did not make itself are read again (metadata only) so that their mtimes match.
    std::vector<std::string> parents;
    for (const std::string& p : touched_parents_) {
      if (made_dirs_.count(p) == 0) parents.push_back(p);
    }
    for (size_t at = 0; at < parents.size(); at += kPathsPerRequest) {
      std::vector<std::string> batch(parents.begin() + static_cast<std::ptrdiff_t>(at),
                                     parents.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                           parents.size(), at + kPathsPerRequest)));
      while (!batch.empty()) {
        ++result_.requests;
        RS_ASSIGN_OR_RETURN(auto got, clients[0]->ReadFiles(batch, 0, 0));
        for (const auto& file : got) {
          if (file.kind == pb::BootstrapFile::DIRECTORY)
            dir_meta_.emplace_back(file.path, file.meta);
        }
        batch.erase(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(got.size()));
      }
    }
    // Deepest first: a folder's mtime is set after everything inside it was written.
    std::sort(dir_meta_.begin(), dir_meta_.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [path, meta] : dir_meta_) {
      Result<UniqueFd> fd = OpenBeneath(root_fd_.get(), options_.root, path, kDirFlags);
      if (!fd.ok()) continue;  // replaced meanwhile: the exact pass settles it
      timespec times[2] = {ToTimespec(meta.mtime_ns()), ToTimespec(meta.mtime_ns())};
      (void)::futimens(fd->get(), times);
    }
    if (::syncfs(root_fd_.get()) != 0) {
      return Status::IoError(fmt::format("syncfs {}: {}", options_.root, std::strerror(errno)));
    }
    if (options_.progress) options_.progress(done_, total_);
    return result_;
  }

 private:
  // A worker: takes batches of paths until none is left and no other worker may add more.
  void Work(BootstrapClient& client) {
    Worker w{client, {}, UniqueFd(), std::mt19937_64(std::random_device{}())};
    for (;;) {
      std::vector<std::string> batch;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty() || busy_ == 0 || !error_.ok(); });
        if (!error_.ok() || queue_.empty()) {
          cv_.notify_all();
          return;
        }
        while (!queue_.empty() && batch.size() < kPathsPerRequest) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        ++busy_;
      }
      Status st = CopyBatch(w, std::move(batch));
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
      if (!st.ok() && error_.ok()) error_ = st;
      cv_.notify_all();
    }
  }

  struct Worker {
    BootstrapClient& client;
    std::string parent_path;  // the folder parent_fd holds open
    UniqueFd parent_fd;
    std::mt19937_64 random;
  };

  Status CopyBatch(Worker& w, std::vector<std::string> batch) {
    size_t next = 0;
    while (next < batch.size()) {
      std::vector<std::string> rest(batch.begin() + static_cast<std::ptrdiff_t>(next), batch.end());
      Result<std::vector<BootstrapClient::RepositoryFile>> got =
          w.client.ReadFiles(rest, 0, options_.request_bytes);
      RS_RETURN_IF_ERROR(got.status());
      Count([&](FileCopyResult& r) { ++r.requests; });
      for (BootstrapClient::RepositoryFile& file : *got) {
        RS_RETURN_IF_ERROR(CopyOne(w, file));
      }
      next += got->size();
      std::lock_guard<std::mutex> lock(mu_);
      done_ += got->size();
      if (options_.progress && (done_ - reported_ >= 256 || done_ == total_)) {
        reported_ = done_;
        options_.progress(done_, total_);
      }
    }
    return Status::Ok();
  }

  template <typename F>
  void Count(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    f(result_);
  }

  void Skip(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    ++result_.skipped;
    if (result_.skipped <= 5) {
      spdlog::info("bootstrap files: left to the exact pass: {}", why);
    }
  }

  // The folder holding `path`, open (made when missing, as the file applier makes parents);
  // -1 (and skipped) when it cannot be, e.g. a symbolic link on the way.
  int ParentOf(Worker& w, const std::string& path) {
    const std::string parent = ParentPath(path);
    if (w.parent_fd.valid() && w.parent_path == parent) return w.parent_fd.get();
    w.parent_fd = UniqueFd();
    Result<UniqueFd> opened = OpenBeneath(root_fd_.get(), options_.root, parent, kDirFlags);
    if (!opened.ok() && opened.status().IsNotFound()) {
      // Walk down one component at a time, making what is missing; each step opened beneath the
      // folder above it, so a link planted meanwhile is still refused.
      Result<UniqueFd> current = OpenBeneath(root_fd_.get(), options_.root, "", kDirFlags);
      size_t start = 0;
      while (current.ok() && start < parent.size()) {
        size_t end = parent.find('/', start);
        if (end == std::string::npos) end = parent.size();
        const std::string component = parent.substr(start, end - start);
        Result<UniqueFd> next = OpenBeneath(current->get(), options_.root, component, kDirFlags);
        if (!next.ok() && next.status().IsNotFound()) {
          (void)::mkdirat(current->get(), component.c_str(), 0755);
          next = OpenBeneath(current->get(), options_.root, component, kDirFlags);
        }
        current = std::move(next);
        start = end + 1;
      }
      opened = std::move(current);
    }
    if (!opened.ok()) {
      Skip(fmt::format("the folder of '{}': {}", path, opened.status().message()));
      return -1;
    }
    w.parent_path = parent;
    w.parent_fd = std::move(opened).value();
    return w.parent_fd.get();
  }

  std::string TempName(Worker& w) {
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(w.random()));
    return std::string(kApplierTempPrefix) + hex;
  }

  Status CopyOne(Worker& w, BootstrapClient::RepositoryFile& file) {
    switch (file.kind) {
      case pb::BootstrapFile::FILE:
        return CopyFile(w, file);
      case pb::BootstrapFile::DIRECTORY:
        MakeDirectory(w, file);
        return Status::Ok();
      case pb::BootstrapFile::SYMLINK:
        MakeSymlink(w, file);
        return Status::Ok();
      case pb::BootstrapFile::GONE:
        Count([](FileCopyResult& r) { ++r.gone; });
        return Status::Ok();
      case pb::BootstrapFile::REFUSED:
        Count([](FileCopyResult& r) { ++r.refused; });
        return Status::Ok();
      default:
        return Status::Corruption(fmt::format(
            "the primary answered READ_FILES for '{}' with an unknown kind {} (a newer primary? "
            "update this node)",
            file.path, static_cast<int>(file.kind)));
    }
  }

  // Writes the file's content (asking for the rest while it is cut), its metadata, and renames
  // it over the path.
  Status CopyFile(Worker& w, BootstrapClient::RepositoryFile& file) {
    const int parent = ParentOf(w, file.path);
    if (parent < 0) return Status::Ok();
    std::string temp;
    UniqueFd fd;
    for (int attempt = 0; attempt < 100 && !fd.valid(); ++attempt) {
      temp = TempName(w);
      fd = UniqueFd(::openat(parent, temp.c_str(),
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!fd.valid() && errno != EEXIST) break;
    }
    if (!fd.valid()) {
      Skip(Why("create a temporary file for", file.path, errno));
      return Status::Ok();
    }
    std::string why;
    uint64_t written = 0;
    pb::FileMeta meta = file.meta;
    for (;;) {
      const char* data = file.data.data();
      size_t left = file.data.size();
      while (left > 0 && why.empty()) {
        const ssize_t n = ::pwrite(fd.get(), data, left,
                                   static_cast<off_t>(file.offset + (data - file.data.data())));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          why = Why("write", file.path, errno);
          break;
        }
        data += n;
        left -= static_cast<size_t>(n);
      }
      written += file.data.size();
      if (!why.empty() || file.eof) break;
      const uint64_t offset = file.offset + file.data.size();
      Result<std::vector<BootstrapClient::RepositoryFile>> more =
          w.client.ReadFiles({file.path}, offset, options_.request_bytes);
      Count([](FileCopyResult& r) { ++r.requests; });
      if (!more.ok()) {
        (void)::unlinkat(parent, temp.c_str(), 0);
        return more.status();
      }
      BootstrapClient::RepositoryFile& next = more->front();
      if (next.kind != pb::BootstrapFile::FILE || next.offset != offset) {
        why = fmt::format("'{}' changed on the primary while copied", file.path);
        break;
      }
      meta = next.meta;
      file.data = std::move(next.data);
      file.offset = next.offset;
      file.eof = next.eof;
    }
    if (why.empty()) why = MetaApplied(fd.get(), meta, options_.keep_setid, file.path);
    if (why.empty() && ::renameat(parent, temp.c_str(), parent, NameOf(file.path).c_str()) != 0) {
      why = Why("rename a temporary file over", file.path, errno);
    }
    if (!why.empty()) {
      (void)::unlinkat(parent, temp.c_str(), 0);
      Skip(why);
      return Status::Ok();
    }
    Count([&](FileCopyResult& r) {
      ++r.files;
      r.bytes += written;
    });
    return Status::Ok();
  }

  // Makes a missing directory (and queues its children), or gives an existing one its owner and
  // mode; its mtime comes at the end.
  void MakeDirectory(Worker& w, const BootstrapClient::RepositoryFile& dir) {
    const int parent = ParentOf(w, dir.path);
    if (parent < 0) return;
    const std::string name = NameOf(dir.path);
    const bool made = ::mkdirat(parent, name.c_str(), 0700) == 0;
    if (!made && errno != EEXIST) return Skip(Why("create directory", dir.path, errno));
    UniqueFd fd(::openat(parent, name.c_str(), kDirFlags | O_CLOEXEC));
    if (!fd.valid()) return Skip(Why("open directory", dir.path, errno));
    if (std::string why = MetaApplied(fd.get(), dir.meta, options_.keep_setid, dir.path);
        !why.empty()) {
      return Skip(why);
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++result_.directories;
    dir_meta_.emplace_back(dir.path, dir.meta);
    // An existing directory's differing children were compared (and listed) on their own.
    if (!made) return;
    made_dirs_.insert(dir.path);
    for (const std::string& child : dir.children) {
      std::string path = JoinPath(dir.path, child);
      if (!CheckRepositoryPath(path).ok()) continue;
      queue_.push_back(std::move(path));
      ++total_;
    }
    cv_.notify_all();
  }

  void MakeSymlink(Worker& w, const BootstrapClient::RepositoryFile& link) {
    if (link.link_target.empty() || link.link_target.find('\0') != std::string::npos) {
      return Skip(fmt::format("'{}': the primary sent a link without a target", link.path));
    }
    const int parent = ParentOf(w, link.path);
    if (parent < 0) return;
    std::string temp;
    bool made = false;
    for (int attempt = 0; attempt < 100 && !made; ++attempt) {
      temp = TempName(w);
      made = ::symlinkat(link.link_target.c_str(), parent, temp.c_str()) == 0;
      if (!made && errno != EEXIST) break;
    }
    if (!made) return Skip(Why("create symbolic link", link.path, errno));
    std::string why;
    timespec times[2] = {ToTimespec(link.meta.mtime_ns()), ToTimespec(link.meta.mtime_ns())};
    if (::fchownat(parent, temp.c_str(), link.meta.uid(), link.meta.gid(), AT_SYMLINK_NOFOLLOW) !=
        0) {
      why = Why("chown", link.path, errno);
    } else if (::utimensat(parent, temp.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      why = Why("set times of", link.path, errno);
    } else if (::renameat(parent, temp.c_str(), parent, NameOf(link.path).c_str()) != 0) {
      why = Why("rename a temporary link over", link.path, errno);
    }
    if (!why.empty()) {
      (void)::unlinkat(parent, temp.c_str(), 0);
      return Skip(why);
    }
    Count([](FileCopyResult& r) { ++r.symlinks; });
  }

  const FileCopierOptions& options_;
  UniqueFd root_fd_;
  std::set<std::string> touched_parents_;  // Run's thread only

  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  size_t busy_ = 0;
  Status error_;
  uint64_t done_ = 0;
  uint64_t total_ = 0;
  uint64_t reported_ = 0;
  FileCopyResult result_;
  std::vector<std::pair<std::string, pb::FileMeta>> dir_meta_;
  std::set<std::string> made_dirs_;
};

}  // namespace

Result<FileCopyResult> CopyRepositoryFiles(const FileCopierOptions& options,
                                           std::vector<std::string> paths) {
  UniqueFd root(::open(options.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) {
    return Status::InvalidArgument(
        fmt::format("open the repository {}: {}", options.root, std::strerror(errno)));
  }
  Copier copier(options, std::move(root));
  return copier.Run(std::move(paths));
}

}  // namespace replsync::apply
