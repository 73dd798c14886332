#include "capture/files/file_capture.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <optional>
#include <utility>

#include "capture/files/move_detector.h"
#include "capture/files/reconciler.h"
#include "capture/files/repo_paths.h"
#include "capture/files/settler.h"
#include "sync/files/manifest.h"
#include "sync/files/repository_path.h"
#include "sync/path_text.h"

namespace replsync::capture {

namespace {

// Events the watch thread holds for the capture thread; beyond that it stops reading, the
// kernel's queue fills, and its overflow asks for a rescan (as when the capture read it itself).
constexpr size_t kMaxQueuedEvents = 16384;
// How long the capture thread waits at most, so that commits are not held up.
constexpr std::chrono::milliseconds kMaxWait{100};
// How long one Poll of the watch thread waits for the kernel (Interrupt ends it at once).
constexpr std::chrono::milliseconds kWatchPoll{1000};

}  // namespace

FileCapture::FileCapture(FileCaptureOptions options, FileEntrySink sink, Clock& clock,
                         WaitHook on_wait)
    : options_(std::move(options)),
      sink_(std::move(sink)),
      clock_(clock),
      on_wait_(std::move(on_wait)) {
  status_.root = options_.root;
}

FileCapture::FileCapture(FileCaptureOptions options, FileEntrySink sink)
    : FileCapture(std::move(options), std::move(sink), SystemClock()) {}

FileCapture::~FileCapture() { Stop(); }

Status FileCapture::Start() {
  if (started_) return Status::Internal("file capture already started");
  root_fd_.Reset(open(options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd_.valid()) {
    const int err = errno;
    return Status::NotFound(fmt::format(
        "open repository {}: {}; create it or set [repository] path to the folder to replicate",
        options_.root, Errno(err)));
  }
  // The open-for-writing test takes a read lease and drops it at once; a writer opening the
  // file in between would make the kernel signal SIGIO, which must not end the process.
  signal(SIGIO, SIG_IGN);
  RS_ASSIGN_OR_RETURN(manifest_, Manifest::Open(options_.manifest_path));
  RS_ASSIGN_OR_RETURN(watcher_, RepoWatcher::Open(options_.root, {}, clock_));
  const int root_fd = root_fd_.get();
  settler_ = std::make_unique<Settler>(
      clock_, SettleTimes{options_.quiet, options_.open_write_quiet},
      [root_fd, this](const std::string& path) -> uint64_t {
        const Result<struct stat> st = LstatBeneath(root_fd, options_.root, path);
        return st.ok() && S_ISREG(st->st_mode) ? static_cast<uint64_t>(st->st_size) : 0;
      });
  writer_ = std::make_unique<ChangeWriter>(*manifest_, sink_, clock_, options_.commit_interval,
                                           stop_, counters_);
  reconciler_ = std::make_unique<Reconciler>(root_fd, options_, *manifest_, *writer_, *settler_,
                                             clock_, stop_, counters_);
  moves_ = std::make_unique<MoveDetector>(root_fd, options_.root, *manifest_, *writer_, *settler_);
  snapshots_ = std::make_unique<TreeSnapshotter>(root_fd, options_.root, *manifest_, *writer_,
                                                 *reconciler_, *settler_, sink_, stop_);
  stop_ = false;
  rescan_reason_ = "start";
  if (options_.adopt_changed_before_ns != 0) {
    RS_ASSIGN_OR_RETURN(const uint64_t known, manifest_->Count());
    adopting_ = known == 0;
  }
  started_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    accepting_ = true;
    events_.clear();
    watch_error_ = Status::Ok();
    status_.watches = watcher_->watch_count();
  }
  thread_ = std::thread([this] { Run(); });
  watch_thread_ = std::thread([this] { Watch(); });
  return Status::Ok();
}

void FileCapture::Stop() {
  if (!started_) return;
  stop_ = true;
  if (watcher_) watcher_->Interrupt();
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_.notify_all();
    room_.notify_all();
  }
  if (writer_) writer_->WakeForStop();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (thread_.joinable()) thread_.join();
  started_ = false;
  SetState("stopped");
}

void FileCapture::RequestResync(const std::vector<std::string>& paths) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& path : paths) {
    // A bad path is the requester's problem (the shipper refuses it before it gets here):
    // never the whole repository (""), never outside it, never a reason for the capture to fail.
    Status checked = CheckRepositoryPath(path);
    if (!checked.ok()) {
      spdlog::warn("files: a request to journal {} whole again is ignored: {}", QuotePath(path),
                   checked.message());
      continue;
    }
    resync_requests_.push_back(path);
    ++status_.resyncs_requested;
  }
  wake_.notify_all();
}

void FileCapture::RequestTreeSnapshot(TreeSnapshotRequest request) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!accepting_) {
    lock.unlock();
    request.done(Status::Aborted("the file capture is not running"));
    return;
  }
  snapshot_requests_.push_back(std::move(request));
  wake_.notify_all();
}

FileCaptureStatus FileCapture::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  FileCaptureStatus s = status_;
  s.changes_journaled = counters_.changes_journaled;
  s.literal_bytes = counters_.literal_bytes;
  s.copied_bytes = counters_.copied_bytes;
  s.abandoned = counters_.abandoned;
  return s;
}

Status FileCapture::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void FileCapture::SetState(const std::string& state) {
  std::lock_guard<std::mutex> lock(mu_);
  if (status_.state != "failed") status_.state = state;
}

void FileCapture::Watch() {
  std::vector<RepoEvent> batch;
  while (!stop_) {
    batch.clear();
    Status st = watcher_->Poll(kWatchPoll, &batch);
    std::unique_lock<std::mutex> lock(mu_);
    status_.watches = watcher_->watch_count();
    if (!st.ok()) {
      watch_error_ = st;
      wake_.notify_all();
      return;
    }
    if (!batch.empty()) {
      events_.insert(events_.end(), std::make_move_iterator(batch.begin()),
                     std::make_move_iterator(batch.end()));
      wake_.notify_all();
    }
    room_.wait(lock, [this] { return stop_ || events_.size() < kMaxQueuedEvents; });
  }
}

void FileCapture::Run() {
  Status st = RunLoop();
  {
    std::vector<TreeSnapshotRequest> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      accepting_ = false;
      left.swap(snapshot_requests_);
    }
    for (TreeSnapshotRequest& request : left) {
      request.done(Status::Aborted("the primary's file capture stopped"));
    }
  }
  // What was submitted and is durable stays in the manifest; the rest is found again by the
  // next start's rescan.
  if (writer_->in_transaction()) {
    Status committed = writer_->Commit(/*force=*/true);
    if (!committed.ok() && st.ok()) st = committed;
    writer_->Rollback();
  }
  if (!st.ok() && !stop_) {
    spdlog::error("files: capture of {} stopped: {}", options_.root, st.message());
    std::lock_guard<std::mutex> lock(mu_);
    error_ = st;
    status_.state = "failed";
    status_.last_error = st.message();
  }
}

Status FileCapture::TakeRequests() {
  std::vector<std::string> resyncs;
  std::vector<TreeSnapshotRequest> snapshots;
  {
    std::lock_guard<std::mutex> lock(mu_);
    resyncs.swap(resync_requests_);
    snapshots.swap(snapshot_requests_);
  }
  for (const std::string& path : resyncs) {
    spdlog::info("files: the secondary asks for '{}' whole; journaling it again", path);
    settler_->Mark(path, {.deep = true, .force = true});
  }
  for (TreeSnapshotRequest& request : snapshots) {
    Result<FileTreeSnapshot> snapshot = snapshots_->Take(request);
    // Only the request's own problems go back to it; the capture's own errors stop it.
    if (!snapshot.ok() && snapshot.status().code() != Status::Code::kInvalidArgument) {
      request.done(
          Status::Aborted("the primary's file capture failed: " + snapshot.status().message()));
      return snapshot.status();
    }
    request.done(std::move(snapshot));
  }
  return Status::Ok();
}

Status FileCapture::RunLoop() {
  std::vector<RepoEvent> events;
  while (!stop_) {
    RS_RETURN_IF_ERROR(TakeRequests());
    if (!rescan_reason_.empty()) {
      const std::string reason = std::move(rescan_reason_);
      rescan_reason_.clear();
      Status st = Rescan(reason);
      if (stop_) break;
      if (!st.ok()) return st;
      continue;
    }
    PublishStatus();
    // Wait for events until the next path is due (at most kMaxWait). The deadline comes from one
    // reading of the clock, taken before on_wait_ runs: time that passes after it (a test's
    // Advance) shortens the wait instead of moving it.
    const Clock::TimePoint now = clock_.Now();
    const Clock::TimePoint deadline = now + settler_->TimeToNextDue(now, kMaxWait);
    if (on_wait_) {
      on_wait_(handled_);
      handled_.clear();
    }
    events.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      clock_.WaitUntil(wake_, lock, deadline, [this] {
        return stop_ || !events_.empty() || !watch_error_.ok() || !resync_requests_.empty() ||
               !snapshot_requests_.empty();
      });
      if (!watch_error_.ok()) return watch_error_;
      events.swap(events_);
      room_.notify_all();
    }
    for (const RepoEvent& event : events) {
      if (event.kind == RepoEvent::Kind::kMoved) {
        // A move is taken at once. Paths waiting below the old name move with it: looking at
        // them first would find them gone and journal their deletion.
        RS_RETURN_IF_ERROR(moves_->OnMoved(event.from_path, event.path));
      } else {
        OnEvent(event);
      }
    }
    if (on_wait_) handled_.insert(handled_.end(), events.begin(), events.end());
    RS_RETURN_IF_ERROR(ProcessDue(/*all=*/false));
    RS_RETURN_IF_ERROR(writer_->Commit(/*force=*/settler_->empty()));
  }
  return Status::Ok();
}

void FileCapture::PublishStatus() {
  std::lock_guard<std::mutex> lock(mu_);
  status_.files_pending = settler_->size();
  status_.bytes_pending = settler_->bytes();
  if (status_.state != "failed") status_.state = "watching";
}

void FileCapture::OnEvent(const RepoEvent& event) {
  using Kind = RepoEvent::Kind;
  switch (event.kind) {
    case Kind::kChanged:
    case Kind::kRemoved:
      settler_->Mark(event.path);
      break;
    case Kind::kWriting:
      settler_->Mark(event.path, {.write = WriteEvent::kWriting});
      break;
    case Kind::kClosedWrite:
      settler_->Mark(event.path, {.write = WriteEvent::kClosed});
      break;
    case Kind::kSubtree:
      settler_->Mark(event.path, {.deep = true});
      break;
    case Kind::kMoved:
      break;  // handled by the caller
    case Kind::kRescan:
      spdlog::warn("files: rescanning {}: {}", options_.root, event.reason);
      rescan_reason_ = event.reason;
      break;
  }
}

Status FileCapture::ProcessDue(bool all) {
  const Clock::TimePoint now = clock_.Now();
  // In path order, so a directory comes before what is in it; a path marked again meanwhile
  // waits for the next pass.
  std::optional<std::string> from = std::string();
  while (from && !stop_) {
    std::optional<Settler::Taken> taken = settler_->TakeDue(*from, now, all);
    if (!taken) break;
    from = taken->next;
    RS_RETURN_IF_ERROR(reconciler_->Reconcile(
        taken->path, {.deep = taken->waiting.deep, .force = taken->waiting.force}));
    // A deep look covered the paths below it that were waiting too.
    if (taken->waiting.deep && from) from = settler_->DropSettledBelow(taken->path, *from, now);
    RS_RETURN_IF_ERROR(writer_->CommitIfDue());
  }
  return Status::Ok();
}

Status FileCapture::Rescan(const std::string& reason) {
  SetState("scanning");
  const Clock::TimePoint started = clock_.Now();
  spdlog::info("files: scanning {} against the manifest ({})", options_.root, reason);
  // Events queued so far are covered by the scan; later ones are handled after it.
  settler_->Clear();
  const bool adopt = std::exchange(adopting_, false);
  if (adopt) reconciler_->AdoptChangedBefore(options_.adopt_changed_before_ns);
  Status scanned = reconciler_->Reconcile("", {.deep = true});
  reconciler_->AdoptChangedBefore(0);
  writer_->set_adopting(false);
  RS_RETURN_IF_ERROR(scanned);
  RS_RETURN_IF_ERROR(writer_->Commit(/*force=*/true));
  if (adopt) {
    spdlog::info(
        "files: {} paths adopted into the manifest without journaling them (this node was just "
        "promoted: its followers hold them); paths changed since the promotion are journaled",
        writer_->adopted());
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - started).count();
  uint64_t count = 0;
  if (auto n = manifest_->Count(); n.ok()) count = *n;
  spdlog::info("files: scan of {} done in {} ms: {} paths in the manifest", options_.root, ms,
               count);
  const int64_t now_unix = clock_.UnixMillis() / 1000;
  RS_RETURN_IF_ERROR(manifest_->PutMeta("last_rescan", fmt::format("{} {}", now_unix, reason)));
  std::lock_guard<std::mutex> lock(mu_);
  status_.last_rescan_unix = now_unix;
  status_.last_rescan_reason = reason;
  ++status_.rescans;
  return Status::Ok();
}

}  // namespace replsync::capture
