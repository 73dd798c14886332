#include "sync/verify/file_verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string_view>

#include "replsync.pb.h"
#include "sync/files/content_hash.h"
#include "sync/files/file_tree.h"
#include "sync/path_text.h"
#include "sync/node/status_file.h"
#include "sync/wire/zmq_transport.h"
#include "sync/verify/consistent_point.h"

namespace replsync::verify {

namespace {

using Clock = std::chrono::steady_clock;

// Folders listed per request (the primary also caps the nodes per reply).
constexpr size_t kDirsPerRequest = 256;

// A failure that ends the comparison; becomes FileVerifyResult::error.
struct CouldNot {
  std::string reason;
};

// Verify's connection to the primary's daemon (the replication endpoint, a DEALER of its own).
class PrimaryTrees {
 public:
  PrimaryTrees(const NodeConfig& config, int reply_timeout_s)
      : endpoint_(config.transport.primary), reply_timeout_s_(reply_timeout_s) {
    ZmqOptions zopts;
    zopts.send_timeout = std::chrono::milliseconds(5000);
    auto transport = ZmqClientTransport::Connect(endpoint_, zopts);
    if (!transport.ok()) {
      throw CouldNot{
          fmt::format("connect to the primary at {}: {}", endpoint_, transport.status().message())};
    }
    transport_ = std::move(transport).value();
  }

  ~PrimaryTrees() {
    if (session_.empty()) return;
    pb::Envelope close;
    close.mutable_tree_request()->set_request_id(++next_id_);
    close.mutable_tree_request()->set_session(session_);
    close.mutable_tree_request()->set_close(true);
    (void)transport_->Send(close);
  }

  // Opens a session: the primary's snapshot (after journaling `resync_paths`, deep if asked).
  pb::TreeReply Open(bool deep, const std::vector<std::string>& resync_paths) {
    pb::TreeRequest request;
    request.set_open(true);
    request.set_deep(deep);
    for (const std::string& p : resync_paths) request.add_resync_paths(p);
    // Rereading every file of the primary takes as long as it takes.
    pb::TreeReply reply = Ask(request, deep ? 24 * 3600 : reply_timeout_s_);
    session_ = reply.session();
    return reply;
  }

  // The complete listings of `dirs` (in any number of round trips).
  std::map<std::string, std::vector<pb::TreeNode>> List(const std::vector<std::string>& dirs) {
    std::map<std::string, std::vector<pb::TreeNode>> out;
    std::deque<std::pair<std::string, std::string>> todo;  // (dir, after)
    for (const std::string& d : dirs) todo.emplace_back(d, "");
    while (!todo.empty()) {
      pb::TreeRequest request;
      request.set_session(session_);
      for (size_t i = 0; i < todo.size() && i < kDirsPerRequest; ++i) {
        request.add_dirs(todo[i].first);
        request.add_after(todo[i].second);
      }
      pb::TreeReply reply = Ask(request, reply_timeout_s_);
      if (reply.listings_size() == 0) {
        throw CouldNot{"the primary answered a listing request with no listing"};
      }
      for (const pb::TreeListing& listing : reply.listings()) {
        if (todo.empty() || todo.front().first != listing.dir()) {
          throw CouldNot{
              fmt::format("the primary listed {} out of order", QuotePath(listing.dir()))};
        }
        std::vector<pb::TreeNode>& nodes = out[listing.dir()];
        listed_nodes_ += static_cast<uint64_t>(listing.nodes_size());
        for (const pb::TreeNode& n : listing.nodes()) nodes.push_back(n);
        std::pair<std::string, std::string> front = std::move(todo.front());
        todo.pop_front();
        if (listing.truncated() && !nodes.empty()) {
          todo.emplace_front(front.first, nodes.back().name());
          break;  // the reply's budget ran out here
        }
      }
    }
    return out;
  }

  uint64_t requests() const { return requests_; }
  uint64_t listed_nodes() const { return listed_nodes_; }

 private:
  pb::TreeReply Ask(pb::TreeRequest request, int timeout_s) {
    const uint64_t id = ++next_id_;
    request.set_request_id(id);
    pb::Envelope envelope;
    *envelope.mutable_tree_request() = std::move(request);
    ++requests_;
    Status sent = transport_->Send(envelope);
    if (!sent.ok()) {
      throw CouldNot{fmt::format(
          "the primary's replsyncd at {} cannot be reached ({}); is it running, and is [transport] "
          "primary right?",
          endpoint_, sent.message())};
    }
    const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
    while (Clock::now() < deadline) {
      pb::Envelope message;
      auto got = transport_->Receive(&message, std::chrono::milliseconds(200));
      if (!got.ok()) {
        throw CouldNot{
            fmt::format("receive from the primary at {}: {}", endpoint_, got.status().message())};
      }
      if (!*got || !message.has_tree_reply() || message.tree_reply().request_id() != id) continue;
      pb::TreeReply reply = std::move(*message.mutable_tree_reply());
      if (!reply.error().empty()) {
        throw CouldNot{fmt::format("the primary at {}: {}", endpoint_, reply.error())};
      }
      return reply;
    }
    throw CouldNot{
        fmt::format("the primary's replsyncd at {} did not answer within {} s (an older replsyncd "
                    "that does not "
                    "know verify's tree requests, or it is busy)",
                    endpoint_, timeout_s)};
  }

  std::string endpoint_;
  int reply_timeout_s_;
  std::unique_ptr<ZmqClientTransport> transport_;
  std::string session_;
  uint64_t next_id_ = 0;
  uint64_t requests_ = 0;
  uint64_t listed_nodes_ = 0;
};

void CheckConfig(const NodeConfig& config, const char* command) {
  if (config.node.role != NodeRole::kSecondary) {
    throw CouldNot{
        fmt::format("{} is a primary's configuration; run {} with the secondary's (it compares the "
                    "secondary with its primary)",
                    config.source_path, command)};
  }
  if (config.repository.path.empty()) {
    throw CouldNot{
        fmt::format("{} has no [repository] path: there is no file repository to compare (run with "
                    "--database-only)",
                    config.source_path)};
  }
  if (!ReplsyncdRunning(config.node.state_dir)) {
    throw CouldNot{fmt::format(
        "replsyncd is not running with {}: files are compared at a point the running applier "
        "reaches; start it first",
        config.source_path)};
  }
}

std::string Octal(uint32_t mode) { return fmt::format("{:04o}", mode); }

// Holds the applier at the file stream's point S of a freshly opened primary snapshot: first
// where it is (A), then, when S is past A, through S. Returns the open reply.
pb::TreeReply OpenAtPoint(const NodeConfig& config, const FileVerifyOptions& options,
                          PrimaryTrees& primary, const std::string& token,
                          const std::vector<std::string>& resync_paths) {
  const std::string& state = config.node.state_dir;
  // "all", not "now": file entries must stop too, or one journaled after the snapshot below
  // could be applied before the barrier moves to S.
  auto held = HoldApplier(state, token, "all", options.barrier_timeout_s);
  if (!held.ok()) throw CouldNot{held.status().message()};
  const uint64_t applied = std::strtoull((*held)["applied_seq"].c_str(), nullptr, 10);
  // Every file entry the secondary applied was journaled before this snapshot, so the snapshot
  // covers them: the applier only has to catch up to S, never go back.
  pb::TreeReply reply = primary.Open(options.deep, resync_paths);
  if (reply.journal_seq() > applied) {
    auto at = HoldApplier(state, token, fmt::format("seq:{}", reply.journal_seq() + 1),
                          options.barrier_timeout_s);
    if (!at.ok()) throw CouldNot{at.status().message()};
  }
  return reply;
}

struct Comparer {
  const NodeConfig& config;
  const FileVerifyOptions& options;
  PrimaryTrees& primary;
  const FileTree& local;
  FileVerifyResult& result;
  // Folders whose own mtime differs, decided once their children are known.
  std::map<std::string, std::string> folder_mtimes;  // path -> detail
  std::set<std::string> explained;                   // folders with missing/extra/type children

  void Report(const std::string& path, const char* problem, std::string detail) {
    const std::string_view p(problem);
    if (p == "missing" || p == "extra" || p == "type") explained.insert(ParentPath(path));
    result.differences.push_back(FileDifference{path, problem, std::move(detail)});
  }

  // Compares two nodes at `path` whose hashes differ; returns true when `path` is a folder on
  // both sides whose children differ (to be listed).
  bool CompareNode(const std::string& path, const pb::TreeNode& p, const pb::TreeNode& s) {
    if (p.type() != s.type()) {
      Report(path, "type",
             fmt::format("{} on the primary, {} on the secondary", TypeName(p.type()),
                         TypeName(s.type())));
      return false;
    }
    bool content = false;
    if (p.type() == kTreeFile) {
      if (p.size() != s.size()) {
        content = true;
        Report(path, "content",
               fmt::format("size {} on the primary, {} on the secondary", p.size(), s.size()));
      } else if (options.deep || p.mtime_ns() != s.mtime_ns()) {
        std::string hash = s.content_hash();
        if (hash.empty()) {
          Result<std::string> h = HashTreeFile(config.repository.path, path);
          if (!h.ok()) throw CouldNot{h.status().message()};
          hash = *h;
          result.hashed_bytes += s.size();
        }
        if (hash != p.content_hash()) {
          content = true;
          Report(path, "content",
                 fmt::format("SHA-256 {} on the primary, {} on the secondary",
                             HexOf(p.content_hash()).substr(0, 16), HexOf(hash).substr(0, 16)));
        }
      }
    }
    if (p.type() == kTreeSymlink && p.link_target() != s.link_target()) {
      content = true;  // a new link has a new mtime: one problem, not two
      Report(path, "link",
             fmt::format("-> {} on the primary, -> {} on the secondary", QuotePath(p.link_target()),
                         QuotePath(s.link_target())));
    }
    if (p.mode() != s.mode()) {
      Report(
          path, "mode",
          fmt::format("{} on the primary, {} on the secondary", Octal(p.mode()), Octal(s.mode())));
    }
    if (p.uid() != s.uid() || p.gid() != s.gid()) {
      Report(path, "owner",
             fmt::format("{}:{} on the primary, {}:{} on the secondary", p.uid(), p.gid(), s.uid(),
                         s.gid()));
    }
    if (p.mtime_ns() != s.mtime_ns() && !content) {
      std::string detail =
          fmt::format("{} ns on the primary, {} ns on the secondary", p.mtime_ns(), s.mtime_ns());
      if (p.type() == kTreeDirectory) {
        folder_mtimes[path] = std::move(detail);
      } else {
        Report(path, "mtime", std::move(detail));
      }
    }
    return p.type() == kTreeDirectory && p.children_hash() != s.children_hash();
  }

  static const char* TypeName(uint32_t type) {
    switch (type) {
      case kTreeFile:
        return "a file";
      case kTreeDirectory:
        return "a folder";
      case kTreeSymlink:
        return "a symbolic link";
      default:
        return "unknown";
    }
  }

  // Compares the children of `dir` on both sides; returns the child folders to descend into.
  std::vector<std::string> CompareDir(const std::string& dir,
                                      const std::vector<pb::TreeNode>& theirs) {
    static const std::vector<pb::TreeNode> kNone;
    const std::vector<pb::TreeNode>* found = local.Children(dir);
    const std::vector<pb::TreeNode>& ours = found != nullptr ? *found : kNone;
    std::vector<std::string> descend;
    size_t i = 0, j = 0;
    while (i < theirs.size() || j < ours.size()) {
      const int order =
          i == theirs.size() ? 1
          : j == ours.size()
              ? -1
              : std::string_view(theirs[i].name()).compare(std::string_view(ours[j].name()));
      if (order < 0) {
        Report(JoinPath(dir, theirs[i].name()), "missing",
               fmt::format("{} on the primary only", TypeName(theirs[i].type())));
        ++i;
      } else if (order > 0) {
        Report(JoinPath(dir, ours[j].name()), "extra",
               fmt::format("{} on the secondary only", TypeName(ours[j].type())));
        ++j;
      } else {
        if (theirs[i].hash() != ours[j].hash()) {
          const std::string path = JoinPath(dir, theirs[i].name());
          if (CompareNode(path, theirs[i], ours[j])) descend.push_back(path);
        }
        ++i;
        ++j;
      }
    }
    return descend;
  }

  void Run(const pb::TreeReply& opened) {
    if (opened.root_hash() == local.root_hash()) return;
    std::vector<std::string> level = CompareDir("", primary.List({""})[""]);
    while (!level.empty()) {
      std::vector<std::string> next;
      for (size_t at = 0; at < level.size(); at += kDirsPerRequest) {
        std::vector<std::string> batch(level.begin() + static_cast<std::ptrdiff_t>(at),
                                       level.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                           level.size(), at + kDirsPerRequest)));
        auto got = primary.List(batch);
        for (const std::string& dir : batch) {
          for (std::string& d : CompareDir(dir, got[dir])) next.push_back(std::move(d));
        }
      }
      level = std::move(next);
    }
    for (auto& [path, detail] : folder_mtimes) {
      if (explained.count(path) == 0) {
        result.differences.push_back(FileDifference{path, "mtime", std::move(detail)});
      }
    }
    std::stable_sort(
        result.differences.begin(), result.differences.end(),
        [](const FileDifference& a, const FileDifference& b) { return a.path < b.path; });
  }
};

FileVerifyResult DoVerify(const NodeConfig& config, const FileVerifyOptions& options) {
  FileVerifyResult result;
  CheckConfig(config, "verify");
  PrimaryTrees primary(config, options.reply_timeout_s);
  const std::string token = NewBarrierToken();
  VerifyBarrier barrier(config.node.state_dir + "/verify.barrier");
  if (options.show_progress) std::fprintf(stderr, "files: asking the primary for its tree...\r");
  // --deep: the secondary hashes its files while the primary rereads its own; the scan at the
  // point rereads only files changed since.
  ScanHashCache cache;
  std::future<Status> prehash;
  // A secondary that has not received a file yet may not have its folder yet: an empty tree.
  std::error_code ec;
  const bool root_exists = std::filesystem::exists(config.repository.path, ec) || ec;
  if (options.deep && root_exists) {
    prehash = std::async(std::launch::async, [&cache, &config] {
      ScanTreeOptions o;
      o.with_content = true;
      o.cache = &cache;
      return ScanTree(config.repository.path, o).status();
    });
  }
  pb::TreeReply opened;
  try {
    opened = OpenAtPoint(config, options, primary, token, {});
  } catch (...) {
    if (prehash.valid()) prehash.wait();
    throw;
  }
  if (prehash.valid()) {
    Status st = prehash.get();
    if (!st.ok()) throw CouldNot{st.message()};
  }
  result.journal_seq = opened.journal_seq();
  result.primary_paths = opened.paths();

  // The secondary's side, while the applier holds at S.
  ScanTreeOptions sopts;
  sopts.with_content = options.deep;
  sopts.cache = options.deep ? &cache : nullptr;
  const auto started = Clock::now();
  uint64_t scanned_bytes = 0;
  sopts.progress = [&](uint64_t paths, uint64_t bytes) {
    scanned_bytes = bytes;
    if (!options.show_progress) return;
    const double s = std::chrono::duration<double>(Clock::now() - started).count();
    std::fprintf(stderr, "\rfiles: %llu paths scanned, %.1f MiB reread (%.0f s)   ",
                 static_cast<unsigned long long>(paths), static_cast<double>(bytes) / (1 << 20), s);
  };
  // (Looked at again: the applier may have created the folder since.)
  const bool root_now = std::filesystem::exists(config.repository.path, ec) || ec;
  Result<FileTree> scanned =
      root_now ? ScanTree(config.repository.path, sopts) : Result<FileTree>(FileTree());
  if (options.show_progress) std::fprintf(stderr, "\r%70s\r", "");
  if (!scanned.ok()) throw CouldNot{scanned.status().message()};
  FileTree& local = *scanned;
  local.Finish(options.deep);
  result.secondary_paths = local.size();
  result.hashed_bytes = scanned_bytes;  // --deep: what the scan at the point reread
  Comparer comparer{config, options, primary, local, result, {}, {}};
  comparer.Run(opened);
  barrier.Lift();
  result.requests = primary.requests();
  result.listed_nodes = primary.listed_nodes();
  result.verified = true;
  return result;
}

}  // namespace

std::string FilesSkipped(const NodeConfig& config, bool database_only, bool files_only) {
  if (database_only) return "--database-only";
  if (config.repository.path.empty() && !files_only) {
    return "no [repository] path in " + config.source_path;
  }
  return "";
}

FileVerifyResult VerifyFiles(const NodeConfig& config, const FileVerifyOptions& options) {
  try {
    return DoVerify(config, options);
  } catch (const CouldNot& e) {
    FileVerifyResult result;
    result.error = e.reason;
    return result;
  }
}

FileRepairResult RepairFiles(const NodeConfig& config,
                             const std::vector<FileDifference>& differences,
                             const FileVerifyOptions& options) {
  FileRepairResult result;
  std::set<std::string> paths;
  for (const FileDifference& d : differences) paths.insert(d.path);
  if (paths.empty()) {
    result.done = true;
    return result;
  }
  try {
    CheckConfig(config, "repair");
    PrimaryTrees primary(config, options.reply_timeout_s);
    const std::string token = NewBarrierToken();
    VerifyBarrier barrier(config.node.state_dir + "/verify.barrier");
    // The primary journals each path's current state; the snapshot that follows tells up to
    // which sequence the secondary must apply to hold them.
    pb::TreeReply opened = OpenAtPoint(config, options, primary, token,
                                       std::vector<std::string>(paths.begin(), paths.end()));
    barrier.Lift();
    result.paths = paths.size();
    result.journal_seq = opened.journal_seq();
    result.done = true;
  } catch (const CouldNot& e) {
    result.error = e.reason;
  }
  return result;
}

}  // namespace replsync::verify
