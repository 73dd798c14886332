#include "capture/files/file_capture.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "capture/files/repo_watcher.h"
#include "replsync.pb.h"
#include "sync/clock.h"
#include "sync/files/content_hash.h"
#include "sync/unique_fd.h"

namespace replsync::capture {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Kind = RepoEvent::Kind;

// How long a test waits for the capture before it fails (real time; never spent when it passes).
constexpr auto kDeadline = 10s;
constexpr size_t kInline = 64 << 10;  // FileCaptureOptions::inline_bytes

// An in-process journal: keeps every submitted entry, parsed, and calls everything durable.
// Thread-safe.
class Recorder {
 public:
  FileEntrySink Sink() {
    FileEntrySink sink;
    sink.submit = [this](std::string entry, bool completes) -> Result<uint64_t> {
      pb::JournalEntry parsed;
      if (!parsed.ParseFromString(entry)) return Status::Corruption("unparsable journal entry");
      EXPECT_TRUE(parsed.has_file());
      // A group ends exactly with a file's last part.
      EXPECT_EQ(completes, parsed.file().last_part()) << parsed.file().path();
      std::lock_guard<std::mutex> lock(mu_);
      changes_.push_back(parsed.file());
      return ++next_ticket_;
    };
    sink.wait_durable = [](uint64_t) { return Status::Ok(); };
    sink.journal_full = [] { return false; };
    return sink;
  }

  std::vector<pb::FileChange> Changes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return changes_;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return changes_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<pb::FileChange> changes_;
  uint64_t next_ticket_ = 0;
};

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(rng() & 0xff);
  return s;
}

void WriteFile(const std::string& path, const std::string& content, mode_t mode = 0644) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  ASSERT_TRUE(fd.valid()) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd.get(), content.data(), content.size()),
            static_cast<ssize_t>(content.size()));
  ASSERT_EQ(::close(fd.release()), 0);
}

// Overwrites bytes in place (no truncation).
void OverwriteAt(const std::string& path, uint64_t offset, const std::string& bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::pwrite(fd.get(), bytes.data(), bytes.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(bytes.size()));
  ASSERT_EQ(::close(fd.release()), 0);
}

std::string Describe(const std::vector<pb::FileChange>& changes) {
  std::string s;
  for (const pb::FileChange& c : changes) {
    s += "\n  " + pb::FileChange::Kind_Name(c.kind()) + " " + c.path();
    if (!c.from_path().empty()) s += " from " + c.from_path();
    s += " part " + std::to_string(c.part()) + (c.last_part() ? " last" : "") +
         (c.content_unchanged() ? " unchanged" : "") + (c.abandoned() ? " abandoned" : "") +
         " ops " + std::to_string(c.ops_size()) + " reason " + c.reason();
  }
  return s.empty() ? " (none)" : s;
}

size_t CountKind(const std::vector<pb::FileChange>& changes, pb::FileChange::Kind kind,
                 const std::string& path) {
  return static_cast<size_t>(std::count_if(changes.begin(), changes.end(), [&](const auto& c) {
    return c.kind() == kind && c.path() == path;
  }));
}

const pb::FileChange* FindKind(const std::vector<pb::FileChange>& changes,
                               pb::FileChange::Kind kind, const std::string& path) {
  for (const pb::FileChange& c : changes) {
    if (c.kind() == kind && c.path() == path) return &c;
  }
  return nullptr;
}

// The complete FILE groups (part 0 .. last part) of `path`, in journal order; groups that end
// abandoned are left out.
std::vector<std::vector<pb::FileChange>> FileGroups(const std::vector<pb::FileChange>& changes,
                                                    const std::string& path) {
  std::vector<std::vector<pb::FileChange>> groups;
  std::vector<pb::FileChange> current;
  for (const pb::FileChange& c : changes) {
    if (c.kind() != pb::FileChange::FILE || c.path() != path) continue;
    if (c.part() == 0) current.clear();
    current.push_back(c);
    if (c.last_part()) {
      if (!c.abandoned()) groups.push_back(std::move(current));
      current.clear();
    }
  }
  return groups;
}

// Groups of `path` that carry content (not metadata only).
std::vector<std::vector<pb::FileChange>> ContentGroups(const std::vector<pb::FileChange>& changes,
                                                       const std::string& path) {
  std::vector<std::vector<pb::FileChange>> groups;
  for (auto& g : FileGroups(changes, path)) {
    if (!g.back().content_unchanged()) groups.push_back(std::move(g));
  }
  return groups;
}

bool IsCopy(const pb::ContentOp& op) {
  return op.data().empty() && op.source_length() == 0 && op.length() > 0;
}

// The content a FILE group describes: copy ops from `base`, content references read (and
// checked) from the file under `root` as it is now.
std::string Rebuild(std::vector<pb::FileChange> group, const std::string& base,
                    const std::string& root) {
  FileContentReader reader(root);
  std::string out;
  for (pb::FileChange& part : group) {
    Result<bool> filled = reader.Fill(&part);
    EXPECT_TRUE(filled.ok()) << filled.status().ToString();
    EXPECT_TRUE(filled.ok() && *filled) << "references of " << part.path() << " not filled";
    for (const pb::ContentOp& op : part.ops()) {
      EXPECT_EQ(op.source_length(), 0u) << "reference left after Fill";
      if (IsCopy(op)) {
        EXPECT_LE(op.offset() + op.length(), base.size());
        if (op.offset() + op.length() <= base.size()) out += base.substr(op.offset(), op.length());
      } else {
        out += op.data();
      }
    }
  }
  return out;
}

class FileCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "replsync-file-capture-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    base_ = tmpl;
    root_ = base_ + "/repo";
    fs::create_directories(root_);
    fs::create_directories(base_ + "/state");
    manifest_ = base_ + "/state/manifest.db";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  std::string P(const std::string& rel) const { return root_ + "/" + rel; }

  FileCaptureOptions Options() const {
    FileCaptureOptions o;
    o.root = root_;
    o.manifest_path = manifest_;
    o.quiet = 50ms;
    o.commit_interval = 50ms;
    return o;
  }

  // Starts a capture on the test's ManualClock, observed through its wait hook.
  std::unique_ptr<FileCapture> StartCapture(Recorder* recorder, const FileCaptureOptions& options) {
    {
      std::lock_guard<std::mutex> lock(obs_mu_);
      last_status_ = FileCaptureStatus();
      waited_at_.reset();
    }
    auto capture = std::make_unique<FileCapture>(
        options, recorder->Sink(), clock_,
        [this](const std::vector<RepoEvent>& handled) { OnCaptureWaits(handled); });
    observed_ = capture.get();
    Status st = capture->Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
    return capture;
  }
  std::unique_ptr<FileCapture> StartCapture(Recorder* recorder) {
    return StartCapture(recorder, Options());
  }

  // The capture thread is about to wait: record what it handled and where it stands.
  void OnCaptureWaits(const std::vector<RepoEvent>& handled) {
    const FileCaptureStatus status = observed_->status();
    std::lock_guard<std::mutex> lock(obs_mu_);
    handled_.insert(handled_.end(), handled.begin(), handled.end());
    last_status_ = status;
    waited_at_ = clock_.Now();
    obs_cv_.notify_all();
  }

  // Waits until `done` holds, checked each time the capture thread goes to wait (and at once);
  // false after kDeadline.
  bool WaitFor(const std::function<bool()>& done) {
    std::unique_lock<std::mutex> lock(obs_mu_);
    return obs_cv_.wait_for(lock, kDeadline, done);
  }

  // Waits until the capture thread has handled the watcher's event `kind` for `path` (every
  // event the kernel queued before it too) and gone back to waiting.
  bool WaitSeen(Kind kind, const std::string& path) {
    return WaitFor([&] {
      return std::any_of(handled_.begin(), handled_.end(),
                         [&](const RepoEvent& e) { return e.kind == kind && e.path == path; });
    });
  }

  // Waits until the capture thread went to wait at or after the clock's present time: it has
  // looked at everything that is due now.
  bool WaitLookedNow() {
    const Clock::TimePoint now = clock_.Now();
    return WaitFor([&] { return waited_at_.has_value() && *waited_at_ >= now; });
  }

  struct stat Lstat(const std::string& rel) const {
    struct stat st {};
    EXPECT_EQ(::lstat(P(rel).c_str(), &st), 0) << rel << ": " << std::strerror(errno);
    return st;
  }

  // Waits until the capture has scanned, has nothing pending and waits (so `recorder` gets
  // nothing new until the test acts or moves the clock).
  bool WaitIdle(const FileCapture&, const Recorder&) {
    return WaitFor([&] {
      return last_status_.files_pending == 0 && last_status_.state == "watching" &&
             last_status_.rescans > 0;
    });
  }

  void ExpectMetaOf(const pb::FileChange& c, const std::string& rel) const {
    const struct stat st = Lstat(rel);
    EXPECT_EQ(c.meta().uid(), st.st_uid) << rel;
    EXPECT_EQ(c.meta().gid(), st.st_gid) << rel;
    EXPECT_EQ(c.meta().mtime_ns(), Nanos(st.st_mtim)) << rel;
    if (!S_ISLNK(st.st_mode)) {
      EXPECT_EQ(c.meta().mode(), st.st_mode & 07777) << rel;
    }
    if (S_ISREG(st.st_mode)) {
      EXPECT_EQ(c.meta().size(), static_cast<uint64_t>(st.st_size)) << rel;
    }
  }

  std::string base_;
  std::string root_;
  std::string manifest_;
  // Files are written at the real time, long after this clock's wall time: none of them counts
  // as written a moment ago, and settling happens only when the test advances the clock.
  ManualClock clock_;

  FileCapture* observed_ = nullptr;
  std::mutex obs_mu_;
  std::condition_variable obs_cv_;             // notified by OnCaptureWaits
  std::vector<RepoEvent> handled_;             // guarded by obs_mu_
  FileCaptureStatus last_status_;              // guarded by obs_mu_
  std::optional<Clock::TimePoint> waited_at_;  // guarded by obs_mu_
};

TEST_F(FileCaptureTest, FirstScanShipsEveryPathWithContentAndMetadata) {
  const std::string big = RandomBytes(300 << 10, 1);
  fs::create_directories(P("sub/deeper"));
  ASSERT_EQ(::chmod(P("sub").c_str(), 0750), 0);
  WriteFile(P("a.txt"), "hello\n", 0640);
  WriteFile(P("empty.txt"), "");
  WriteFile(P("sub/deeper/b.bin"), std::string("\0\1\2\3binary\n", 12));
  WriteFile(P("big.bin"), big);
  ASSERT_EQ(::chmod(P("a.txt").c_str(), 0640), 0);  // whatever the umask
  ASSERT_EQ(::symlink("a.txt", P("link").c_str()), 0);
  ASSERT_EQ(::symlink("../missing", P("sub/dangling").c_str()), 0);

  Recorder rec;
  auto capture = StartCapture(&rec);
  const std::vector<std::pair<std::string, std::string>> files = {
      {"a.txt", "hello\n"},
      {"empty.txt", ""},
      {"sub/deeper/b.bin", std::string("\0\1\2\3binary\n", 12)},
      {"big.bin", big}};
  ASSERT_TRUE(WaitFor([&] {
    const auto changes = rec.Changes();
    for (const auto& [path, content] : files) {
      if (FileGroups(changes, path).empty()) return false;
    }
    return FindKind(changes, pb::FileChange::SYMLINK, "link") != nullptr &&
           FindKind(changes, pb::FileChange::SYMLINK, "sub/dangling") != nullptr &&
           FindKind(changes, pb::FileChange::DIRECTORY, "sub/deeper") != nullptr;
  })) << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const auto changes = rec.Changes();

  for (const auto& [path, content] : files) {
    SCOPED_TRACE(path);
    const auto groups = FileGroups(changes, path);
    ASSERT_EQ(groups.size(), 1u) << Describe(changes);
    EXPECT_EQ(CountKind(changes, pb::FileChange::FILE, path), groups[0].size());
    const pb::FileChange& last = groups[0].back();
    EXPECT_FALSE(last.content_unchanged());
    EXPECT_TRUE(groups[0].front().base_hash().empty());
    EXPECT_EQ(last.content_hash(), Sha256::Of(content));
    ExpectMetaOf(groups[0].front(), path);
    for (const pb::FileChange& part : groups[0]) {
      EXPECT_EQ(part.reason(), "event");
      for (const pb::ContentOp& op : part.ops()) EXPECT_FALSE(IsCopy(op));
    }
    EXPECT_EQ(Rebuild(groups[0], "", root_), content);
  }

  // The large file's content is journaled as references, not bytes.
  {
    const auto group = FileGroups(changes, "big.bin").at(0);
    uint64_t referenced = 0;
    for (const pb::FileChange& part : group) {
      for (const pb::ContentOp& op : part.ops()) {
        EXPECT_GE(op.source_length(), kInline);
        EXPECT_TRUE(op.data().empty());
        EXPECT_TRUE(op.source_hash_high() != 0 || op.source_hash_low() != 0);
        EXPECT_EQ(op.source_offset(), referenced);
        referenced += op.source_length();
      }
    }
    EXPECT_EQ(referenced, big.size());
    std::string filled;
    FileContentReader reader(root_);
    for (pb::FileChange part : group) {
      Result<bool> ok = reader.Fill(&part);
      ASSERT_TRUE(ok.ok()) << ok.status().ToString();
      EXPECT_TRUE(*ok);
      for (const pb::ContentOp& op : part.ops()) {
        EXPECT_EQ(op.source_length(), 0u);
        filled += op.data();
      }
    }
    EXPECT_TRUE(filled == big) << "filled " << filled.size() << " bytes";
  }
  // Small content stays inline.
  EXPECT_EQ(FileGroups(changes, "a.txt").at(0).back().ops(0).data(), "hello\n");
  EXPECT_EQ(FileGroups(changes, "a.txt").at(0).back().meta().mode(), 0640u);

  for (const std::string dir : {"sub", "sub/deeper"}) {
    ASSERT_EQ(CountKind(changes, pb::FileChange::DIRECTORY, dir), 1u) << dir << Describe(changes);
    ExpectMetaOf(*FindKind(changes, pb::FileChange::DIRECTORY, dir), dir);
  }
  EXPECT_EQ(FindKind(changes, pb::FileChange::DIRECTORY, "sub")->meta().mode(), 0750u);
  for (const auto& [path, target] : std::vector<std::pair<std::string, std::string>>{
           {"link", "a.txt"}, {"sub/dangling", "../missing"}}) {
    ASSERT_EQ(CountKind(changes, pb::FileChange::SYMLINK, path), 1u) << path << Describe(changes);
    const pb::FileChange* c = FindKind(changes, pb::FileChange::SYMLINK, path);
    EXPECT_EQ(c->link_target(), target);
    ExpectMetaOf(*c, path);
  }
  // A directory's entry comes before what is in it; parent mtimes are the parents' own.
  auto index_of = [&](pb::FileChange::Kind kind, const std::string& path) {
    for (size_t i = 0; i < changes.size(); ++i) {
      if (changes[i].kind() == kind && changes[i].path() == path) return i;
    }
    return changes.size();
  };
  EXPECT_LT(index_of(pb::FileChange::DIRECTORY, "sub"),
            index_of(pb::FileChange::DIRECTORY, "sub/deeper"));
  EXPECT_LT(index_of(pb::FileChange::DIRECTORY, "sub/deeper"),
            index_of(pb::FileChange::FILE, "sub/deeper/b.bin"));
  EXPECT_EQ(FileGroups(changes, "sub/deeper/b.bin").at(0).back().parent_mtime_ns(),
            Nanos(Lstat("sub/deeper").st_mtim));
  // Nothing else: no DELETE, RENAME or unexpected path.
  EXPECT_EQ(changes.size(), CountKind(changes, pb::FileChange::FILE, "a.txt") +
                                CountKind(changes, pb::FileChange::FILE, "empty.txt") +
                                CountKind(changes, pb::FileChange::FILE, "sub/deeper/b.bin") +
                                CountKind(changes, pb::FileChange::FILE, "big.bin") + 4)
      << Describe(changes);
  EXPECT_TRUE(capture->error().ok()) << capture->error().ToString();
}

TEST_F(FileCaptureTest, RestartReadsNothingUnchanged) {
  fs::create_directories(P("dir/inner"));
  WriteFile(P("dir/inner/x.txt"), "x");
  WriteFile(P("y.txt"), "y");
  WriteFile(P("big.bin"), RandomBytes(200 << 10, 2));
  ASSERT_EQ(::symlink("y.txt", P("dir/ly").c_str()), 0);
  {
    Recorder rec;
    auto capture = StartCapture(&rec);
    ASSERT_TRUE(WaitFor([&] {
      const auto changes = rec.Changes();
      return !FileGroups(changes, "dir/inner/x.txt").empty() &&
             !FileGroups(changes, "y.txt").empty() && !FileGroups(changes, "big.bin").empty() &&
             FindKind(changes, pb::FileChange::SYMLINK, "dir/ly") != nullptr;
    })) << Describe(rec.Changes());
    ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
    capture->Stop();
    EXPECT_EQ(capture->status().state, "stopped");
  }
  Recorder rec;
  auto capture = StartCapture(&rec);
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  EXPECT_GE(capture->status().rescans, 1u);
  EXPECT_EQ(capture->status().last_rescan_reason, "start");
  EXPECT_EQ(rec.size(), 0u) << Describe(rec.Changes());
}

// A node just promoted: its first scan records what did not change since the promotion in the
// manifest without journaling it (its followers hold it), and journals what did. The cut is the
// ctime: `old.txt` is changed before it, `new.txt` after it (ctimes compared, not slept on).
TEST_F(FileCaptureTest, AdoptingScanJournalsOnlyWhatChangedSinceTheCut) {
  fs::create_directories(P("dir"));
  WriteFile(P("dir/old.txt"), RandomBytes(300 << 10, 7));
  WriteFile(P("keep.txt"), "kept");
  // The cut: just after the last of the three changes before it.
  const int64_t cut = std::max({Nanos(Lstat("dir").st_ctim), Nanos(Lstat("dir/old.txt").st_ctim),
                                Nanos(Lstat("keep.txt").st_ctim)}) +
                      1;
  // The kernel's ctime is coarse: write until new.txt's is after the cut.
  for (int i = 0; i < 200 && (!fs::exists(P("new.txt")) || Nanos(Lstat("new.txt").st_ctim) < cut);
       ++i) {
    std::this_thread::sleep_for(5ms);
    WriteFile(P("new.txt"), "changed after the promotion");
  }
  ASSERT_GE(Nanos(Lstat("new.txt").st_ctim), cut);
  ASSERT_LT(Nanos(Lstat("keep.txt").st_ctim), cut);
  {
    Recorder rec;
    FileCaptureOptions options = Options();
    options.adopt_changed_before_ns = cut;
    auto capture = StartCapture(&rec, options);
    ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
    const auto changes = rec.Changes();
    EXPECT_EQ(ContentGroups(changes, "new.txt").size(), 1u) << Describe(changes);
    EXPECT_TRUE(FileGroups(changes, "dir/old.txt").empty()) << Describe(changes);
    EXPECT_TRUE(FileGroups(changes, "keep.txt").empty()) << Describe(changes);
    EXPECT_EQ(FindKind(changes, pb::FileChange::DIRECTORY, "dir"), nullptr) << Describe(changes);
    // The manifest knows the adopted file's chunks: a small change ships as a delta.
    OverwriteAt(P("dir/old.txt"), 1000, "xyz");
    ASSERT_TRUE(WaitSeen(Kind::kClosedWrite, "dir/old.txt")) << Describe(rec.Changes());
    clock_.Advance(Options().quiet);
    ASSERT_TRUE(WaitFor([&] { return !ContentGroups(rec.Changes(), "dir/old.txt").empty(); }))
        << Describe(rec.Changes());
    const auto groups = ContentGroups(rec.Changes(), "dir/old.txt");
    size_t copied = 0;
    for (const pb::FileChange& part : groups.back()) {
      for (const pb::ContentOp& op : part.ops()) copied += IsCopy(op) ? op.length() : 0;
    }
    EXPECT_GT(copied, 200u << 10) << Describe(rec.Changes());
    capture->Stop();
  }
  // Adopted once: with a manifest, a later start (the option still set) adopts nothing.
  WriteFile(P("keep.txt"), "changed while stopped");
  Recorder rec;
  FileCaptureOptions options = Options();
  options.adopt_changed_before_ns = Nanos(Lstat("keep.txt").st_ctim) + 1;
  auto capture = StartCapture(&rec, options);
  ASSERT_TRUE(WaitFor([&] { return !ContentGroups(rec.Changes(), "keep.txt").empty(); }))
      << Describe(rec.Changes());
}

TEST_F(FileCaptureTest, ChangeWhileStoppedIsFoundByTheScan) {
  WriteFile(P("a.txt"), "one");
  WriteFile(P("b.txt"), "two");
  WriteFile(P("c.txt"), "three");
  {
    Recorder rec;
    auto capture = StartCapture(&rec);
    ASSERT_TRUE(WaitFor([&] {
      const auto changes = rec.Changes();
      return !FileGroups(changes, "a.txt").empty() && !FileGroups(changes, "b.txt").empty() &&
             !FileGroups(changes, "c.txt").empty();
    })) << Describe(rec.Changes());
    ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
    capture->Stop();
  }
  WriteFile(P("a.txt"), "one, changed");
  ASSERT_EQ(::unlink(P("b.txt").c_str()), 0);

  Recorder rec;
  auto capture = StartCapture(&rec);
  ASSERT_TRUE(WaitFor([&] {
    const auto changes = rec.Changes();
    return !FileGroups(changes, "a.txt").empty() &&
           FindKind(changes, pb::FileChange::DELETE, "b.txt") != nullptr;
  })) << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const auto changes = rec.Changes();

  const auto groups = FileGroups(changes, "a.txt");
  ASSERT_EQ(groups.size(), 1u) << Describe(changes);
  EXPECT_FALSE(groups[0].back().content_unchanged());
  EXPECT_EQ(groups[0].back().content_hash(), Sha256::Of("one, changed"));
  EXPECT_EQ(groups[0].front().base_hash(), Sha256::Of("one"));
  EXPECT_EQ(Rebuild(groups[0], "one", root_), "one, changed");
  ExpectMetaOf(groups[0].front(), "a.txt");

  EXPECT_EQ(CountKind(changes, pb::FileChange::DELETE, "b.txt"), 1u) << Describe(changes);
  const pb::FileChange* del = FindKind(changes, pb::FileChange::DELETE, "b.txt");
  EXPECT_TRUE(del->last_part());
  struct stat root_st {};
  ASSERT_EQ(::lstat(root_.c_str(), &root_st), 0);
  EXPECT_EQ(del->parent_mtime_ns(), Nanos(root_st.st_mtim));
  // The unchanged file is not read again.
  EXPECT_EQ(CountKind(changes, pb::FileChange::FILE, "c.txt"), 0u) << Describe(changes);
  EXPECT_EQ(changes.size(), 2u) << Describe(changes);
}

TEST_F(FileCaptureTest, RenameBecomesOneRenameEntry) {
  fs::create_directories(P("d"));
  WriteFile(P("f.txt"), "file content");
  WriteFile(P("d/inner.txt"), "inner content");
  WriteFile(P("d/big.bin"), RandomBytes(100 << 10, 3));
  Recorder rec;
  auto capture = StartCapture(&rec);
  ASSERT_TRUE(WaitFor([&] {
    const auto changes = rec.Changes();
    return !FileGroups(changes, "f.txt").empty() && !FileGroups(changes, "d/inner.txt").empty() &&
           !FileGroups(changes, "d/big.bin").empty();
  })) << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const size_t before = rec.size();

  ASSERT_EQ(::rename(P("f.txt").c_str(), P("g.txt").c_str()), 0);
  ASSERT_EQ(::rename(P("d").c_str(), P("e").c_str()), 0);
  // The renames are journaled at once; the new paths are looked at once they settled.
  ASSERT_TRUE(WaitSeen(Kind::kMoved, "e")) << Describe(rec.Changes());
  clock_.Advance(Options().quiet);
  ASSERT_TRUE(WaitFor([&] {
    const auto changes = rec.Changes();
    return FindKind(changes, pb::FileChange::RENAME, "g.txt") != nullptr &&
           FindKind(changes, pb::FileChange::RENAME, "e") != nullptr;
  })) << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const auto all = rec.Changes();
  const std::vector<pb::FileChange> after(all.begin() + static_cast<ptrdiff_t>(before), all.end());

  EXPECT_EQ(CountKind(after, pb::FileChange::RENAME, "g.txt"), 1u) << Describe(after);
  EXPECT_EQ(CountKind(after, pb::FileChange::RENAME, "e"), 1u) << Describe(after);
  const pb::FileChange* file_rename = FindKind(after, pb::FileChange::RENAME, "g.txt");
  EXPECT_EQ(file_rename->from_path(), "f.txt");
  EXPECT_EQ(file_rename->meta().size(), std::string("file content").size());
  EXPECT_EQ(FindKind(after, pb::FileChange::RENAME, "e")->from_path(), "d");
  for (const pb::FileChange& c : after) {
    SCOPED_TRACE(Describe({c}));
    // No content shipped again, nothing deleted, nothing under the old names.
    EXPECT_NE(c.kind(), pb::FileChange::DELETE);
    // The moved folder's own metadata may be journaled again (some file systems change a moved
    // folder's mtime); no other directory changed.
    if (c.kind() == pb::FileChange::DIRECTORY) {
      EXPECT_EQ(c.path(), "e");
    }
    EXPECT_NE(c.kind(), pb::FileChange::SYMLINK);
    if (c.kind() == pb::FileChange::FILE) {
      EXPECT_TRUE(c.content_unchanged());
      EXPECT_EQ(c.ops_size(), 0);
    }
    EXPECT_NE(c.path(), "f.txt");
    EXPECT_NE(c.path(), "d");
    EXPECT_NE(c.path().rfind("d/", 0), 0u);
  }
  const pb::FileChange* meta_only = FindKind(after, pb::FileChange::FILE, "g.txt");
  if (meta_only != nullptr) {
    EXPECT_EQ(meta_only->content_hash(), Sha256::Of("file content"));
    ExpectMetaOf(*meta_only, "g.txt");
  }
}

TEST_F(FileCaptureTest, SmallChangeInLargeFileShipsCopyOps) {
  const std::string old_content = RandomBytes(4 << 20, 4);
  WriteFile(P("big.bin"), old_content);
  Recorder rec;
  auto capture = StartCapture(&rec);
  ASSERT_TRUE(WaitFor([&] { return !FileGroups(rec.Changes(), "big.bin").empty(); }))
      << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const auto first = ContentGroups(rec.Changes(), "big.bin");
  ASSERT_EQ(first.size(), 1u) << Describe(rec.Changes());
  const std::string old_hash = first[0].back().content_hash();
  ASSERT_EQ(old_hash, Sha256::Of(old_content));

  std::string new_content = old_content;
  const std::string patch = RandomBytes(100, 5);
  const size_t at = (2 << 20) + 12345;
  new_content.replace(at, patch.size(), patch);
  OverwriteAt(P("big.bin"), at, patch);
  ASSERT_TRUE(WaitSeen(Kind::kClosedWrite, "big.bin")) << Describe(rec.Changes());
  clock_.Advance(Options().quiet);

  ASSERT_TRUE(WaitFor([&] { return ContentGroups(rec.Changes(), "big.bin").size() >= 2; }))
      << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const auto groups = ContentGroups(rec.Changes(), "big.bin");
  ASSERT_EQ(groups.size(), 2u) << Describe(rec.Changes());
  const auto& group = groups[1];

  EXPECT_EQ(group.front().base_hash(), old_hash);
  EXPECT_EQ(group.back().content_hash(), Sha256::Of(new_content));
  uint64_t copied = 0;
  uint64_t literal = 0;
  size_t copy_ops = 0;
  for (const pb::FileChange& part : group) {
    for (const pb::ContentOp& op : part.ops()) {
      if (IsCopy(op)) {
        ++copy_ops;
        copied += op.length();
      } else {
        literal += op.data().size() + op.source_length();
      }
    }
  }
  EXPECT_GT(copy_ops, 0u);
  EXPECT_LT(literal, 3 * kInline);
  EXPECT_EQ(copied + literal, new_content.size());
  EXPECT_TRUE(Rebuild(group, old_content, root_) == new_content);
  ExpectMetaOf(group.front(), "big.bin");
}

TEST_F(FileCaptureTest, FileOpenForWritingWaitsForClose) {
  WriteFile(P("other.txt"), "other");
  Recorder rec;
  auto capture = StartCapture(&rec);
  ASSERT_TRUE(WaitFor([&] { return !FileGroups(rec.Changes(), "other.txt").empty(); }))
      << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());

  const std::string part1 = RandomBytes(3000, 6);
  const std::string part2 = RandomBytes(5000, 7);
  UniqueFd fd(::open(P("open.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid()) << std::strerror(errno);
  // After `written` modifications were seen, 500 ms (ten quiet periods) pass on the clock: the
  // capture looks at what is due by then and must journal nothing for the open file.
  auto no_entry_for_500ms = [&](size_t written) {
    EXPECT_TRUE(WaitFor([&] {
      return static_cast<size_t>(std::count_if(handled_.begin(), handled_.end(), [](const auto& e) {
               return e.kind == Kind::kWriting && e.path == "open.bin";
             })) >= written;
    }));
    clock_.Advance(500ms);
    EXPECT_TRUE(WaitLookedNow());
    return CountKind(rec.Changes(), pb::FileChange::FILE, "open.bin") == 0;
  };
  ASSERT_EQ(::write(fd.get(), part1.data(), part1.size()), static_cast<ssize_t>(part1.size()));
  const bool quiet_while_open1 = no_entry_for_500ms(1);
  ASSERT_EQ(::write(fd.get(), part2.data(), part2.size()), static_cast<ssize_t>(part2.size()));
  const bool quiet_while_open2 = no_entry_for_500ms(2);
  ASSERT_EQ(::close(fd.release()), 0);
  EXPECT_TRUE(quiet_while_open1) << Describe(rec.Changes());
  EXPECT_TRUE(quiet_while_open2) << Describe(rec.Changes());
  ASSERT_TRUE(WaitSeen(Kind::kClosedWrite, "open.bin")) << Describe(rec.Changes());
  clock_.Advance(Options().quiet);

  ASSERT_TRUE(WaitFor([&] { return !FileGroups(rec.Changes(), "open.bin").empty(); }))
      << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const auto changes = rec.Changes();
  const auto groups = FileGroups(changes, "open.bin");
  ASSERT_EQ(groups.size(), 1u) << Describe(changes);
  EXPECT_EQ(CountKind(changes, pb::FileChange::FILE, "open.bin"), groups[0].size())
      << Describe(changes);  // nothing abandoned either
  EXPECT_EQ(groups[0].back().content_hash(), Sha256::Of(part1 + part2));
  EXPECT_TRUE(Rebuild(groups[0], "", root_) == part1 + part2);
  ExpectMetaOf(groups[0].front(), "open.bin");
}

TEST_F(FileCaptureTest, ChmodShipsMetadataOnly) {
  WriteFile(P("a.txt"), "some content");
  ASSERT_EQ(::chmod(P("a.txt").c_str(), 0644), 0);
  Recorder rec;
  auto capture = StartCapture(&rec);
  ASSERT_TRUE(WaitFor([&] { return !FileGroups(rec.Changes(), "a.txt").empty(); }))
      << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());

  ASSERT_EQ(::chmod(P("a.txt").c_str(), 0600), 0);
  ASSERT_TRUE(WaitSeen(Kind::kChanged, "a.txt")) << Describe(rec.Changes());
  clock_.Advance(Options().quiet);
  ASSERT_TRUE(WaitFor([&] { return FileGroups(rec.Changes(), "a.txt").size() >= 2; }))
      << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const auto groups = FileGroups(rec.Changes(), "a.txt");
  ASSERT_EQ(groups.size(), 2u) << Describe(rec.Changes());
  ASSERT_EQ(groups[1].size(), 1u);
  const pb::FileChange& c = groups[1][0];
  EXPECT_TRUE(c.content_unchanged());
  EXPECT_EQ(c.ops_size(), 0);
  EXPECT_TRUE(c.base_hash().empty());
  EXPECT_EQ(c.content_hash(), Sha256::Of("some content"));
  EXPECT_EQ(c.meta().mode(), 0600u);
  ExpectMetaOf(c, "a.txt");
}

TEST_F(FileCaptureTest, ResyncShipsWholeContent) {
  const std::string big = RandomBytes(1 << 20, 8);
  fs::create_directories(P("sub"));
  WriteFile(P("big.bin"), big);
  WriteFile(P("sub/x.txt"), "x content");
  WriteFile(P("other.txt"), "other");
  Recorder rec;
  auto capture = StartCapture(&rec);
  ASSERT_TRUE(WaitFor([&] {
    const auto changes = rec.Changes();
    return !FileGroups(changes, "big.bin").empty() && !FileGroups(changes, "sub/x.txt").empty() &&
           !FileGroups(changes, "other.txt").empty();
  })) << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const size_t before = rec.size();

  capture->RequestResync({"big.bin", "sub"});
  auto resync_groups = [&](const std::vector<pb::FileChange>& changes, const std::string& path) {
    std::vector<std::vector<pb::FileChange>> out;
    for (auto& g : FileGroups(changes, path)) {
      if (g.front().reason() == "resync") out.push_back(std::move(g));
    }
    return out;
  };
  ASSERT_TRUE(WaitFor([&] {
    const auto changes = rec.Changes();
    return !resync_groups(changes, "big.bin").empty() &&
           !resync_groups(changes, "sub/x.txt").empty();
  })) << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const auto all = rec.Changes();
  const std::vector<pb::FileChange> after(all.begin() + static_cast<ptrdiff_t>(before), all.end());
  EXPECT_EQ(capture->status().resyncs_requested, 2u);

  for (const auto& [path, content] : std::vector<std::pair<std::string, std::string>>{
           {"big.bin", big}, {"sub/x.txt", "x content"}}) {
    SCOPED_TRACE(path);
    const auto groups = resync_groups(after, path);
    ASSERT_EQ(groups.size(), 1u) << Describe(after);
    const auto& group = groups[0];
    EXPECT_FALSE(group.back().content_unchanged());
    EXPECT_TRUE(group.front().base_hash().empty());
    for (const pb::FileChange& part : group) {
      EXPECT_EQ(part.reason(), "resync");
      for (const pb::ContentOp& op : part.ops()) EXPECT_FALSE(IsCopy(op));
    }
    EXPECT_EQ(group.back().content_hash(), Sha256::Of(content));
    EXPECT_TRUE(Rebuild(group, "", root_) == content);
    ExpectMetaOf(group.front(), path);
  }
  const pb::FileChange* dir = FindKind(after, pb::FileChange::DIRECTORY, "sub");
  ASSERT_NE(dir, nullptr) << Describe(after);
  EXPECT_EQ(dir->reason(), "resync");
  // Only what was asked for.
  EXPECT_EQ(CountKind(after, pb::FileChange::FILE, "other.txt"), 0u) << Describe(after);
}

TEST_F(FileCaptureTest, FileContentReaderRefusesChangedFile) {
  const std::string big = RandomBytes(200 << 10, 9);
  WriteFile(P("big.bin"), big);
  WriteFile(P("gone.bin"), big);
  Recorder rec;
  auto capture = StartCapture(&rec);
  ASSERT_TRUE(WaitFor([&] {
    const auto changes = rec.Changes();
    return !FileGroups(changes, "big.bin").empty() && !FileGroups(changes, "gone.bin").empty();
  })) << Describe(rec.Changes());
  capture->Stop();
  const auto changes = rec.Changes();
  const auto group = FileGroups(changes, "big.bin").at(0);
  ASSERT_EQ(group.size(), 1u);
  ASSERT_GT(group[0].ops_size(), 0);
  ASSERT_GT(group[0].ops(0).source_length(), 0u);

  // The same bytes at the same place: filled.
  {
    pb::FileChange copy = group[0];
    FileContentReader reader(root_);
    Result<bool> ok = reader.Fill(&copy);
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
    EXPECT_TRUE(*ok);
  }
  // Changed bytes inside the referenced range (same size): refused, references left as they are.
  std::string flipped = big.substr(1000, 10);
  for (char& ch : flipped) ch = static_cast<char>(~ch);
  OverwriteAt(P("big.bin"), 1000, flipped);
  {
    pb::FileChange copy = group[0];
    FileContentReader reader(root_);
    Result<bool> ok = reader.Fill(&copy);
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
    EXPECT_FALSE(*ok);
    EXPECT_EQ(copy.ops(0).source_length(), group[0].ops(0).source_length());
    EXPECT_EQ(copy.ops(0).source_hash_high(), group[0].ops(0).source_hash_high());
    EXPECT_TRUE(copy.ops(0).data().empty());
  }
  // Shorter now: refused.
  ASSERT_EQ(::truncate(P("big.bin").c_str(), 1000), 0);
  {
    pb::FileChange copy = group[0];
    FileContentReader reader(root_);
    Result<bool> ok = reader.Fill(&copy);
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
    EXPECT_FALSE(*ok);
  }
  // Gone: refused.
  ASSERT_EQ(::unlink(P("gone.bin").c_str()), 0);
  {
    pb::FileChange copy = FileGroups(changes, "gone.bin").at(0).back();
    FileContentReader reader(root_);
    Result<bool> ok = reader.Fill(&copy);
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
    EXPECT_FALSE(*ok);
  }
}

// The outside world for the symlinked-folder tests: a folder beside the repository (not in it)
// holding a file whose bytes must never reach the journal.
constexpr char kSecret[] = "outside secret: never to be journaled\n";

bool JournalHolds(const std::vector<pb::FileChange>& changes, const std::string& bytes) {
  for (const pb::FileChange& c : changes) {
    for (const pb::ContentOp& op : c.ops()) {
      if (op.data().find(bytes) != std::string::npos) return true;
    }
  }
  return false;
}

// A change event names a/secret.txt, and before the path settles the folder `a` is replaced by a
// symbolic link to a folder outside the repository that holds a secret.txt. The old code looked
// the path up with fstatat(root, "a/secret.txt", AT_SYMLINK_NOFOLLOW) and opened it with
// openat(root, "a/secret.txt", O_NOFOLLOW): both follow the symlinked parent `a` (NOFOLLOW only
// concerns the last component), so the outside file's content was journaled as a/secret.txt.
// Now the path is resolved beneath the root without following any link: `a` is journaled as the
// link it is, and nothing of what it points at.
TEST_F(FileCaptureTest, EventBelowAFolderReplacedBySymlinkDoesNotJournalTheOutsideFile) {
  const std::string outside = base_ + "/outside";
  fs::create_directories(outside);
  WriteFile(outside + "/secret.txt", kSecret);
  fs::create_directories(P("a"));
  Recorder rec;
  FileCaptureOptions options = Options();
  options.quiet = 300ms;  // the swap below happens well inside it
  auto capture = StartCapture(&rec, options);
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  ASSERT_NE(FindKind(rec.Changes(), pb::FileChange::DIRECTORY, "a"), nullptr)
      << Describe(rec.Changes());

  // An event for a/secret.txt (a watched folder), then the folder becomes a link to `outside`.
  WriteFile(P("a/secret.txt"), "inside, about to go\n");
  fs::remove_all(P("a"));
  ASSERT_EQ(::symlink(outside.c_str(), P("a").c_str()), 0);
  // Every event of the swap is seen before a/secret.txt is due.
  ASSERT_TRUE(WaitSeen(Kind::kChanged, "a")) << Describe(rec.Changes());
  // The premise: the old lookup of the path reaches the outside file.
  {
    struct stat st {};
    ASSERT_EQ(::fstatat(AT_FDCWD, P("a/secret.txt").c_str(), &st, AT_SYMLINK_NOFOLLOW), 0);
    ASSERT_TRUE(S_ISREG(st.st_mode));
  }
  clock_.Advance(options.quiet);

  ASSERT_TRUE(WaitFor([&] {
    return FindKind(rec.Changes(), pb::FileChange::SYMLINK, "a") != nullptr;
  })) << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const auto changes = rec.Changes();
  EXPECT_EQ(FindKind(changes, pb::FileChange::SYMLINK, "a")->link_target(), outside);
  EXPECT_EQ(CountKind(changes, pb::FileChange::FILE, "a/secret.txt"), 0u) << Describe(changes);
  EXPECT_FALSE(JournalHolds(changes, kSecret)) << Describe(changes);
  EXPECT_EQ(capture->status().state, "watching") << capture->status().last_error;
}

// The secondary asks for a/secret.txt whole, where `a` is a link to a folder outside the
// repository: the old code stat'ed and opened the path through the link and journaled the
// outside file. Now nothing below the link is journaled; the request beside it still is.
TEST_F(FileCaptureTest, ResyncOfAPathBelowASymlinkedFolderDoesNotJournalTheOutsideFile) {
  const std::string outside = base_ + "/outside";
  fs::create_directories(outside);
  WriteFile(outside + "/secret.txt", kSecret);
  ASSERT_EQ(::symlink(outside.c_str(), P("a").c_str()), 0);
  WriteFile(P("marker.txt"), "marker");
  Recorder rec;
  auto capture = StartCapture(&rec);
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  ASSERT_NE(FindKind(rec.Changes(), pb::FileChange::SYMLINK, "a"), nullptr)
      << Describe(rec.Changes());

  // Looked at in path order: a/secret.txt before marker.txt, whose resync says both are done.
  capture->RequestResync({"a/secret.txt", "marker.txt"});
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& group : FileGroups(rec.Changes(), "marker.txt")) {
      if (group.front().reason() == "resync") return true;
    }
    return false;
  })) << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const auto changes = rec.Changes();
  EXPECT_EQ(CountKind(changes, pb::FileChange::FILE, "a/secret.txt"), 0u) << Describe(changes);
  EXPECT_FALSE(JournalHolds(changes, kSecret)) << Describe(changes);
  EXPECT_EQ(capture->status().state, "watching") << capture->status().last_error;
}

// Paths a peer names are refused before anything is read: "../secret.txt" and the secret's
// absolute path journal nothing outside the repository, "" does not journal the whole repository
// again, and none of them stops the capture (an absolute path used to send it to "failed").
TEST_F(FileCaptureTest, ResyncOfBadPathsIsIgnoredAndTheCaptureKeepsWatching) {
  WriteFile(base_ + "/secret.txt", kSecret);
  WriteFile(P("marker.txt"), "marker");
  WriteFile(P("other.txt"), "other");
  Recorder rec;
  auto capture = StartCapture(&rec);
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  ASSERT_EQ(FileGroups(rec.Changes(), "other.txt").size(), 1u) << Describe(rec.Changes());

  capture->RequestResync(
      {"../secret.txt", base_ + "/secret.txt", "", ".", "a/../other.txt", "marker.txt"});
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& group : FileGroups(rec.Changes(), "marker.txt")) {
      if (group.front().reason() == "resync") return true;
    }
    return false;
  })) << Describe(rec.Changes());
  ASSERT_TRUE(WaitIdle(*capture, rec)) << Describe(rec.Changes());
  const auto changes = rec.Changes();
  EXPECT_FALSE(JournalHolds(changes, kSecret)) << Describe(changes);
  EXPECT_EQ(FileGroups(changes, "other.txt").size(), 1u) << Describe(changes);
  EXPECT_EQ(capture->status().resyncs_requested, 1u);
  EXPECT_EQ(capture->status().state, "watching") << capture->status().last_error;
  EXPECT_TRUE(capture->error().ok()) << capture->error().message();
}

// A content reference journaled for d/data.bin; before it is sent, the folder `d` is moved out of
// the repository and a link to it takes its place. The same bytes are there through the link, but
// they are no longer the repository's: the reader refuses them instead of following the link.
TEST_F(FileCaptureTest, FileContentReaderDoesNotFollowASymlinkedFolder) {
  const std::string big = RandomBytes(200 << 10, 10);
  fs::create_directories(P("d"));
  WriteFile(P("d/data.bin"), big);
  Recorder rec;
  auto capture = StartCapture(&rec);
  ASSERT_TRUE(WaitFor([&] { return !FileGroups(rec.Changes(), "d/data.bin").empty(); }))
      << Describe(rec.Changes());
  capture->Stop();
  const auto group = FileGroups(rec.Changes(), "d/data.bin").at(0);
  ASSERT_GT(group[0].ops_size(), 0);
  ASSERT_GT(group[0].ops(0).source_length(), 0u);

  const std::string moved = base_ + "/moved-out";
  ASSERT_EQ(::rename(P("d").c_str(), moved.c_str()), 0);
  ASSERT_EQ(::symlink(moved.c_str(), P("d").c_str()), 0);
  pb::FileChange copy = group[0];
  FileContentReader reader(root_);
  Result<bool> filled = reader.Fill(&copy);
  ASSERT_TRUE(filled.ok()) << filled.status().ToString();
  EXPECT_FALSE(*filled);
  EXPECT_TRUE(copy.ops(0).data().empty());
}

}  // namespace
}  // namespace replsync::capture
