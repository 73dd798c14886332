#include "sync/verify/file_verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <string_view>

#include "replsync.pb.h"
#include "sync/files/content_hash.h"
#include "sync/files/file_tree.h"
#include "sync/node/status_file.h"
#include "sync/path_text.h"
#include "sync/verify/consistent_point.h"
#include "sync/wire/transport_security.h"
#include "sync/wire/tree_client.h"

namespace replsync::verify {

namespace {

Status CheckConfig(const NodeConfig& config, const char* command) {
  if (config.node.role != NodeRole::kSecondary) {
    return Status::Aborted(
        fmt::format("{} is a primary's configuration; run {} with the secondary's (it compares the "
                    "secondary with its primary)",
                    config.source_path, command));
  }
  if (config.repository.path.empty()) {
    return Status::Aborted(
        fmt::format("{} has no [repository] path: there is no file repository to compare (run with "
                    "--database-only)",
                    config.source_path));
  }
  if (!ReplsyncdRunning(config.node.state_dir)) {
    return Status::Aborted(fmt::format(
        "replsyncd is not running with {}: files are compared at a point the running applier "
        "reaches; start it first",
        config.source_path));
  }
  return Status::Ok();
}

Result<std::unique_ptr<TreeClient>> ConnectPrimary(const NodeConfig& config,
                                                   const FileVerifyOptions& options) {
  TreeClient::Options topts;
  topts.reply_timeout = std::chrono::seconds(options.reply_timeout_s);
  topts.clock = options.clock;
  topts.node_name = config.node.name;
  // The node's own key, and only the configured primary's key is accepted.
  RS_ASSIGN_OR_RETURN(TransportSecurity security, LoadTransportSecurity(config));
  auto client = security.ForClient(config.transport.primary);
  if (!client.ok()) return client.status().WithContext(config.source_path);
  return TreeClient::Connect(config.transport.primary, *client, topts);
}

std::string Octal(uint32_t mode) { return fmt::format("{:04o}", mode); }

// Holds the applier at the file stream's point S of a freshly opened primary snapshot: first
// where it is (A), then, when S is past A, through S. Returns the open reply.
Result<pb::TreeReply> OpenAtPoint(const NodeConfig& config, const FileVerifyOptions& options,
                                  TreeClient& primary, const std::string& token,
                                  const std::vector<std::string>& resync_paths) {
  const std::string& state = config.node.state_dir;
  const HoldOptions hold{.timeout_s = options.barrier_timeout_s, .clock = options.clock};
  // "all", not "now": file entries must stop too, or one journaled after the snapshot below
  // could be applied before the barrier moves to S.
  RS_ASSIGN_OR_RETURN(PausedAt held, HoldApplier(state, token, StopBefore::All(), hold));
  // Every file entry the secondary applied was journaled before this snapshot, so the snapshot
  // covers them: the applier only has to catch up to S, never go back.
  RS_ASSIGN_OR_RETURN(pb::TreeReply reply, primary.Open(options.deep, resync_paths));
  if (reply.journal_seq() > held.applied_seq) {
    RS_RETURN_IF_ERROR(
        HoldApplier(state, token, StopBefore::Seq(reply.journal_seq() + 1), hold).status());
  }
  return reply;
}

struct Comparer {
  const NodeConfig& config;
  const FileVerifyOptions& options;
  TreeClient& primary;
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
  // both sides whose children differ (to be listed). Errors: rehashing the secondary's file.
  Result<bool> CompareNode(const std::string& path, const pb::TreeNode& p, const pb::TreeNode& s) {
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
          RS_ASSIGN_OR_RETURN(hash, HashTreeFile(config.repository.path, path));
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
    // A secondary that does not keep setuid/setgid ([repository] keep_setid = false) clears
    // them on purpose: that is no difference.
    const uint32_t setid = config.repository.keep_setid ? 0 : 06000;
    if ((p.mode() & ~setid) != (s.mode() & ~setid)) {
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
  Result<std::vector<std::string>> CompareDir(const std::string& dir,
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
          RS_ASSIGN_OR_RETURN(bool differs, CompareNode(path, theirs[i], ours[j]));
          if (differs) descend.push_back(path);
        }
        ++i;
        ++j;
      }
    }
    return descend;
  }

  Status Run(const pb::TreeReply& opened) {
    if (opened.root_hash() == local.root_hash()) return Status::Ok();
    RS_ASSIGN_OR_RETURN(auto root, primary.List({""}));
    RS_ASSIGN_OR_RETURN(std::vector<std::string> level, CompareDir("", root[""]));
    constexpr size_t kBatch = TreeClient::kDirsPerRequest;
    while (!level.empty()) {
      std::vector<std::string> next;
      for (size_t at = 0; at < level.size(); at += kBatch) {
        std::vector<std::string> batch(
            level.begin() + static_cast<std::ptrdiff_t>(at),
            level.begin() + static_cast<std::ptrdiff_t>(std::min(level.size(), at + kBatch)));
        RS_ASSIGN_OR_RETURN(auto got, primary.List(batch));
        for (const std::string& dir : batch) {
          RS_ASSIGN_OR_RETURN(std::vector<std::string> below, CompareDir(dir, got[dir]));
          for (std::string& d : below) next.push_back(std::move(d));
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
    return Status::Ok();
  }
};

Result<FileVerifyResult> Compare(const NodeConfig& config, const FileVerifyOptions& options) {
  FileVerifyResult result;
  RS_RETURN_IF_ERROR(CheckConfig(config, "verify"));
  RS_ASSIGN_OR_RETURN(std::unique_ptr<TreeClient> primary, ConnectPrimary(config, options));
  const std::string token = NewBarrierToken();
  BarrierGuard barrier(config.node.state_dir);
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
  Result<pb::TreeReply> opened = OpenAtPoint(config, options, *primary, token, {});
  // The prehash uses `cache`: it ends before anything here returns.
  const Status prehashed = prehash.valid() ? prehash.get() : Status::Ok();
  RS_RETURN_IF_ERROR(opened.status());
  RS_RETURN_IF_ERROR(prehashed);
  result.journal_seq = opened->journal_seq();
  result.primary_paths = opened->paths();

  // The secondary's side, while the applier holds at S.
  ScanTreeOptions sopts;
  sopts.with_content = options.deep;
  sopts.cache = options.deep ? &cache : nullptr;
  Clock& clock = *options.clock;
  const auto started = clock.Now();
  uint64_t scanned_bytes = 0;
  sopts.progress = [&](uint64_t paths, uint64_t bytes) {
    scanned_bytes = bytes;
    if (!options.show_progress) return;
    const double s = std::chrono::duration<double>(clock.Now() - started).count();
    std::fprintf(stderr, "\rfiles: %llu paths scanned, %.1f MiB reread (%.0f s)   ",
                 static_cast<unsigned long long>(paths), static_cast<double>(bytes) / (1 << 20), s);
  };
  // (Looked at again: the applier may have created the folder since.)
  const bool root_now = std::filesystem::exists(config.repository.path, ec) || ec;
  Result<FileTree> scanned =
      root_now ? ScanTree(config.repository.path, sopts) : Result<FileTree>(FileTree());
  if (options.show_progress) std::fprintf(stderr, "\r%70s\r", "");
  RS_RETURN_IF_ERROR(scanned.status());
  FileTree& local = *scanned;
  local.Finish(options.deep);
  result.secondary_paths = local.size();
  result.hashed_bytes = scanned_bytes;  // --deep: what the scan at the point reread
  Comparer comparer{config, options, *primary, local, result, {}, {}};
  RS_RETURN_IF_ERROR(comparer.Run(*opened));
  barrier.Lift();
  result.requests = primary->requests();
  result.listed_nodes = primary->listed_nodes();
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

Result<FileVerifyResult> VerifyFiles(const NodeConfig& config, const FileVerifyOptions& options) {
  return Compare(config, options);
}

Result<FileRepairResult> RepairFiles(const NodeConfig& config,
                                     const std::vector<FileDifference>& differences,
                                     const FileVerifyOptions& options) {
  FileRepairResult result;
  std::set<std::string> paths;
  for (const FileDifference& d : differences) paths.insert(d.path);
  if (paths.empty()) return result;
  RS_RETURN_IF_ERROR(CheckConfig(config, "repair"));
  RS_ASSIGN_OR_RETURN(std::unique_ptr<TreeClient> primary, ConnectPrimary(config, options));
  const std::string token = NewBarrierToken();
  BarrierGuard barrier(config.node.state_dir);
  // The primary journals each path's current state; the snapshot that follows tells up to
  // which sequence the secondary must apply to hold them.
  RS_ASSIGN_OR_RETURN(pb::TreeReply opened,
                      OpenAtPoint(config, options, *primary, token,
                                  std::vector<std::string>(paths.begin(), paths.end())));
  barrier.Lift();
  result.paths = paths.size();
  result.journal_seq = opened.journal_seq();
  return result;
}

}  // namespace replsync::verify
