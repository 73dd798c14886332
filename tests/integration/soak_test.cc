// A mixed-load soak (issue 11): what a busy primary does, all at once, for a while — sysbench
// oltp_write_only on the replicated database, a writer saving a small file every ~20 ms, file
// churn (creates, renames, deletes, chmods, chowns, folder moves, symlinks, slow writers) and
// `replsync verify` on the secondary every few seconds — while a sampler reads both nodes' status
// every 200 ms and another reads the secondary's repository for half-written files.
//
// It fails when a status ever shows an error state (the applier, the receiver or capture
// stopped: "it never stops by itself"), when any verify does not exit 0 (verify tells the truth
// while changes flow, so 1 during the load is a false alarm or a real difference, and 2 is "could
// not verify"), when the secondary ever shows a half-written file, and unless, once the load has
// stopped and the secondary caught up, every table's CHECKSUM TABLE, both trees and a last verify
// are equal. It checks its own premise: sysbench committed transactions, the writer saved files,
// the churn ran, verifies ran while all of the load did, the samplers sampled.
//
// REPLSYNC_SOAK_SECONDS (default 75) sets how long the load runs; tools/soak_test.sh runs the
// long version (30 minutes).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/child_process.h"
#include "tests/harness/node_pair_test.h"
#include "tests/harness/repo_tree.h"

namespace replsync {

namespace {

using testing::ChildProcess;
using testing::ChurnWorkload;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// sysbench's pace: steady load that leaves the 2 CI cores room for both servers, both daemons,
// the file writers and verify.
constexpr int kSysbenchRate = 200;
constexpr auto kSaveEvery = 20ms;
constexpr int kRotatingNames = 20;
constexpr auto kChurnEvery = 150ms;
constexpr auto kVerifyPause = 3s;
constexpr auto kStatusEvery = 200ms;
// Every this many status samples, `replsync status --json` runs too (its exit code says whether
// the daemon runs).
constexpr int kCommandEvery = 10;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// What a node's status JSON (the status file, or `replsync status --json`) shows that the soak
// must never see: "" when nothing, else its states and error; nullopt when it does not parse.
std::optional<std::string> ErrorStateIn(const std::string& json) {
  Result<NodeStatus> status = NodeStatus::Parse(json);
  if (!status.ok()) return std::nullopt;
  std::string applier, receiver;
  if (status->secondary) {
    applier = status->secondary->applier_state;
    receiver = status->secondary->receiver_state;
  }
  if (status->state != "error" && applier != "error" && receiver != "error") return "";
  return fmt::format("state \"{}\", applier_state \"{}\", receiver_state \"{}\", error \"{}\"",
                     status->state, applier, receiver, status->error);
}

// Why a verify's run is not a clean pass ("" when it is: exit 0, consistent, files verified
// and none listed, tables compared).
std::string VerifyProblem(int exit_code, const std::string& out) {
  if (exit_code != 0) return fmt::format("exit {}", exit_code);
  rapidjson::Document doc;
  doc.Parse(out.c_str());
  if (doc.HasParseError() || !doc.IsObject()) return "exit 0 but its JSON does not parse";
  if (!doc.HasMember("consistent") || !doc["consistent"].IsTrue()) return "exit 0, not consistent";
  if (!doc.HasMember("files_verified") || !doc["files_verified"].IsTrue()) {
    return "exit 0, files not verified";
  }
  if (!doc.HasMember("files") || !doc["files"].IsArray() || !doc["files"].Empty()) {
    return "exit 0, files listed";
  }
  if (!doc.HasMember("tables") || !doc["tables"].IsArray() || doc["tables"].Empty()) {
    return "exit 0, no table compared";
  }
  return "";
}

// The transactions in sysbench's last report in the log at `path` ("transactions: N (..."), 0
// when there is none.
uint64_t SysbenchTransactions(const std::string& path) {
  std::ifstream in(path);
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  static const std::regex kLine(R"(transactions:\s+(\d+))");
  uint64_t n = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), kLine); it != std::sregex_iterator();
       ++it) {
    n = std::stoull((*it)[1].str());
  }
  return n;
}

// Writes `content` to `path` (created or truncated) and closes it; errors name the path.
Status WriteWhole(const std::string& path, const std::string& content) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError(fmt::format("open {}: {}", path, std::strerror(errno)));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      const int err = errno;
      close(fd);
      return Status::IoError(fmt::format("write {}: {}", path, std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0) {
    return Status::IoError(fmt::format("close {}: {}", path, std::strerror(errno)));
  }
  return Status::Ok();
}

class SoakTest : public testing::NodePairTest {
 protected:
  SoakTest() : NodePairTest({"sbtest"}, "soak") {}

  std::unique_ptr<ChildProcess> Sysbench(const std::string& command, int seconds) {
    auto child = ChildProcess::Start(
        {"/usr/bin/sysbench", "oltp_write_only", "--db-driver=mysql", "--mysql-host=127.0.0.1",
         fmt::format("--mysql-port={}", primary_->port()), "--mysql-user=root", "--mysql-db=sbtest",
         "--tables=4", "--table-size=10000", "--threads=4", fmt::format("--time={}", seconds),
         fmt::format("--rate={}", kSysbenchRate), "--mysql-ignore-errors=all", command},
        dir_ + "/sysbench.log");
    EXPECT_TRUE(child.ok()) << child.status().ToString();
    return child.ok() ? std::move(child).value() : nullptr;
  }

  // Records a failure seen by any thread, with the time since the load started; reported by
  // the test's own thread. Thread-safe.
  void Fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.push_back(fmt::format("at {:.1f} s: {}", SecondsSince(start_), what));
  }

  // The writer's thread: saves a small file every ~20 ms in saved/ of the primary's repository,
  // as an application would — a rotating set of names, each saved in place (O_TRUNC) one round
  // and replaced by temporary file + rename the next, and every tenth save a new name. Content
  // is checked content, so the partial-file sampler can judge the secondary's copies.
  void SaveFiles() {
    const std::string folder = RepositoryPath("primary") + "/saved";
    for (uint64_t i = 0; !stop_load_; ++i) {
      const bool fresh = i % 10 == 9;
      const std::string name = fresh ? fmt::format("checked-new-{:06}.xml", i)
                                     : fmt::format("checked-doc-{:02}.xml", i % kRotatingNames);
      const std::string content = testing::MakeCheckedContent(i, 64 + (i * 7919) % 4000);
      Status st;
      if (fresh || (i / kRotatingNames) % 2 == 0) {
        st = WriteWhole(folder + "/" + name, content);
      } else {
        const std::string temp = folder + "/.saving-" + name;
        st = WriteWhole(temp, content);
        if (st.ok() && std::rename(temp.c_str(), (folder + "/" + name).c_str()) != 0) {
          st = Status::IoError(fmt::format("rename {}: {}", temp, std::strerror(errno)));
        }
      }
      if (!st.ok()) {
        Fail("the file writer stopped: " + st.ToString());
        return;
      }
      ++saves_;
      if (fresh) ++new_files_;
      std::this_thread::sleep_for(kSaveEvery);
    }
  }

  // The churn's thread: one random step of the harness' churn workload every ~150 ms.
  void Churn(ChurnWorkload& churn) {
    while (!stop_load_) {
      if (Status st = churn.RunRandomSteps(1); !st.ok()) {
        Fail("the churn stopped: " + st.ToString());
        return;
      }
      ++churn_steps_;
      std::this_thread::sleep_for(kChurnEvery);
    }
  }

  // The status sampler's thread: reads both nodes' status files every 200 ms and runs `replsync
  // status --json` on the secondary every 2 s. An error state (each distinct one recorded once,
  // with the log's tail) also ends the load early: the stream has stopped.
  void SampleStatus() {
    std::string last[2];
    auto check = [&](int node, const std::string& json, const char* source) {
      const char* name = node == 0 ? "primary" : "secondary";
      std::optional<std::string> error = ErrorStateIn(json);
      if (!error) {
        ++status_unreadable_;
        return;
      }
      ++status_samples_;
      if (error->empty() || *error == last[node]) return;
      last[node] = *error;
      error_state_seen_ = true;
      Fail(fmt::format("the {}'s {} shows an error state: {}\n{} log:\n{}", name, source, *error,
                       name, Tail(name, 40)));
    };
    for (uint64_t round = 0; !stop_sampler_; ++round) {
      check(0, StatusText("primary"), "status file");
      const std::string secondary = StatusText("secondary");
      check(1, secondary, "status file");
      if (Result<NodeStatus> status = NodeStatus::Parse(secondary);
          status.ok() && status->secondary) {
        max_lag_ = std::max<uint64_t>(max_lag_, status->secondary->lag.transactions);
      }
      if (round % kCommandEvery == 0) {
        CommandRun run = RunReplsync("status", "--json");
        ++status_commands_;
        if (run.exit_code != 0) {
          error_state_seen_ = true;
          Fail(fmt::format("replsync status exited {} (1: the daemon does not run):\n{}{}",
                           run.exit_code, run.out, run.err));
        } else {
          check(1, run.out, "replsync status");
        }
      }
      std::this_thread::sleep_for(kStatusEvery);
    }
  }

  std::vector<std::string> failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }

  Clock::time_point start_ = Clock::now();  // when the load started; set before any thread
  std::atomic<bool> stop_load_{false};
  std::atomic<bool> stop_sampler_{false};
  std::atomic<bool> error_state_seen_{false};
  std::atomic<uint64_t> saves_{0};
  std::atomic<uint64_t> new_files_{0};
  std::atomic<uint64_t> churn_steps_{0};
  std::atomic<uint64_t> status_samples_{0};
  std::atomic<uint64_t> status_unreadable_{0};
  std::atomic<uint64_t> status_commands_{0};
  std::atomic<uint64_t> max_lag_{0};  // secondary lag in transactions, the most sampled

 private:
  std::mutex mu_;
  std::vector<std::string> failures_;  // guarded by mu_
};

TEST_F(SoakTest, MixedLoadNeverStopsAndEndsEqual) {
  const int seconds = EnvInt("REPLSYNC_SOAK_SECONDS", 75);
  ASSERT_GT(seconds, 0);
  std::printf("soak: %d s of mixed load (REPLSYNC_SOAK_SECONDS)\n", seconds);
  std::fflush(stdout);
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, "CREATE DATABASE sbtest"));
  {
    auto prepare = Sysbench("prepare", 0);
    ASSERT_TRUE(prepare);
    auto status = prepare->Wait(120s);
    ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << prepare->LogTail();
  }
  WaitSame("SELECT COUNT(*) FROM sbtest.sbtest4");
  ASSERT_FALSE(HasFailure());

  // The churn owns churn/, the writer saved/: neither renames or deletes the other's files.
  const std::string primary_repo = RepositoryPath("primary");
  std::filesystem::create_directories(primary_repo + "/saved");
  std::filesystem::create_directories(primary_repo + "/churn");
  std::filesystem::create_directories(RepositoryPath("secondary"));
  testing::ChurnOptions options;
  options.seed = 11;
  options.min_large_bytes = 1 << 20;
  options.max_large_bytes = 4 << 20;
  options.max_large_files = 2;
  options.min_burst_files = 5;
  options.max_burst_files = 30;
  options.max_slow_writers = 2;
  auto workload = ChurnWorkload::Open(primary_repo + "/churn", options);
  ASSERT_TRUE(workload.ok()) << workload.status().ToString();
  ChurnWorkload& churn = **workload;
  testing::PartialFileSampler partial(RepositoryPath("secondary"), {.pause_between_rounds = 50ms});

  start_ = Clock::now();
  const auto deadline = start_ + std::chrono::seconds(seconds);
  auto load = Sysbench("run", seconds);
  ASSERT_TRUE(load);
  partial.Start();
  std::thread sampler([this] { SampleStatus(); });
  std::thread saver([this] { SaveFiles(); });
  std::thread churner([&] { Churn(churn); });
  auto wait_unless_stopped = [&](Clock::duration d) {
    const auto until = std::min(Clock::now() + d, deadline);
    while (Clock::now() < until && !error_state_seen_) std::this_thread::sleep_for(50ms);
  };

  // Verify every few seconds. One overlapped the load when sysbench ran from its start to its
  // end and files were saved and churned meanwhile.
  int verifies = 0, overlapped = 0;
  double verify_seconds_max = 0;
  wait_unless_stopped(kVerifyPause);
  while (Clock::now() < deadline && !error_state_seen_) {
    const uint64_t saves = saves_, steps = churn_steps_;
    const bool loaded = load->running();
    const double at = SecondsSince(start_);
    CommandRun run = RunReplsync("verify", "--json");
    ++verifies;
    verify_seconds_max = std::max(verify_seconds_max, run.seconds);
    if (loaded && load->running() && saves_ > saves && churn_steps_ > steps) ++overlapped;
    if (const std::string problem = VerifyProblem(run.exit_code, run.out); !problem.empty()) {
      Fail(fmt::format("verify started at {:.1f} s ({:.1f} s long): {}:\n{}{}\nsecondary log:\n{}",
                       at, run.seconds, problem, run.out.substr(0, 6000), run.err.substr(0, 2000),
                       Tail("secondary", 20)));
    }
    wait_unless_stopped(kVerifyPause);
  }

  stop_load_ = true;
  saver.join();
  churner.join();
  const double load_seconds = SecondsSince(start_);
  if (Status st = churn.WaitForSlowWriters(); !st.ok()) Fail("a slow writer: " + st.ToString());
  if (error_state_seen_) {
    load->Signal(SIGKILL, 10s);
  } else {
    auto status = load->Wait(60s);
    if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      Fail("sysbench did not end well: " +
           (status ? testing::DescribeExitStatus(*status) : "still running") + "\n" +
           load->LogTail());
    }
  }
  const uint64_t transactions = SysbenchTransactions(dir_ + "/sysbench.log");

  // The end: the secondary catches up, and rows, trees and a last verify are equal. Pointless
  // (minutes of timeouts) once the stream has stopped on an error.
  const auto catch_up_start = Clock::now();
  if (!error_state_seen_) {
    ExpectTablesConverge(120s);
    ExpectTreesConverge(120s);
    CommandRun last = RunReplsync("verify", "--json");
    ++verifies;
    EXPECT_EQ(VerifyProblem(last.exit_code, last.out), "")
        << "the last verify, after the load:\n"
        << last.out << last.err << "\nsecondary log:\n"
        << Tail("secondary");
    // The status file is rewritten every second: let the sampler read the final state.
    std::this_thread::sleep_for(1500ms);
  }
  const double catch_up_seconds = SecondsSince(catch_up_start);
  stop_sampler_ = true;
  sampler.join();
  partial.Stop();

  uint64_t applied_transactions = 0, applied_file_changes = 0;
  if (std::optional<NodeStatus> end = ReadStatus("secondary"); end && end->secondary) {
    applied_transactions = end->secondary->transactions_applied;
    applied_file_changes = end->secondary->files.changes_applied;
  }
  auto tree = testing::SnapshotTree(primary_repo);
  const std::string sysbench_done = error_state_seen_
                                        ? std::string("killed before its report")
                                        : fmt::format("{} transactions", transactions);
  std::printf(
      "soak: load %.1f s, catch-up and checks %.1f s; sysbench %s; %llu files "
      "saved (%llu new names); %llu churn steps; %zu paths on the primary at the end; %d "
      "verifies (%d overlapped the whole load, the longest %.1f s); %llu status samples (%llu "
      "unreadable), %llu replsync status runs; most transactions behind %llu; the secondary "
      "applied %llu transactions and %llu file changes; the partial-file sampler read %llu "
      "files in %llu rounds\n",
      load_seconds, catch_up_seconds, sysbench_done.c_str(),
      static_cast<unsigned long long>(saves_.load()),
      static_cast<unsigned long long>(new_files_.load()),
      static_cast<unsigned long long>(churn_steps_.load()), tree.ok() ? tree->size() : 0, verifies,
      overlapped, verify_seconds_max, static_cast<unsigned long long>(status_samples_.load()),
      static_cast<unsigned long long>(status_unreadable_.load()),
      static_cast<unsigned long long>(status_commands_.load()),
      static_cast<unsigned long long>(max_lag_.load()),
      static_cast<unsigned long long>(applied_transactions),
      static_cast<unsigned long long>(applied_file_changes),
      static_cast<unsigned long long>(partial.files_checked()),
      static_cast<unsigned long long>(partial.rounds()));

  for (const std::string& f : failures()) ADD_FAILURE() << f;
  for (const auto& f : partial.findings()) {
    ADD_FAILURE() << "the secondary showed a partial file: " << testing::EscapePath(f.path) << " ("
                  << f.size << " bytes)";
  }
  if (error_state_seen_) {
    ADD_FAILURE() << "the stream stopped on an error: rows and trees were not compared";
    return;
  }

  // The premise: the load was real and ran all at once, the checks ran while it did.
  EXPECT_GE(transactions, 10u * seconds) << "sysbench committed too little:\n" << load->LogTail();
  EXPECT_GE(applied_transactions, transactions) << StatusText("secondary");
  EXPECT_GE(saves_.load(), 20u * seconds) << "the writer saved too few files";
  EXPECT_GE(new_files_.load(), 2u * seconds);
  EXPECT_GE(applied_file_changes, new_files_.load()) << StatusText("secondary");
  EXPECT_GE(churn_steps_.load(), 2u * seconds) << "the churn ran too few steps";
  EXPECT_GE(verifies, std::max(3, seconds / 15)) << "too few verifies ran";
  EXPECT_GE(overlapped, std::max(1, verifies / 2)) << "too few verifies ran while all load did";
  EXPECT_GE(status_samples_.load(), 2u * seconds) << "the status sampler sampled too little";
  EXPECT_GE(status_commands_.load(), 1u);
  EXPECT_GT(partial.rounds(), 0u);
  EXPECT_GT(partial.files_checked(), 0u);
  if (HasFailure()) {
    const auto& steps = churn.history();
    std::string history;
    for (size_t i = steps.size() > 100 ? steps.size() - 100 : 0; i < steps.size(); ++i) {
      history += "  " + steps[i] + "\n";
    }
    std::fprintf(stderr, "the last churn steps:\n%s", history.c_str());
  }
  // Both daemons are still the ones started first and stop cleanly.
  StopDaemon(primary_daemon_, SIGTERM);
  StopDaemon(secondary_daemon_, SIGTERM);
}

}  // namespace
}  // namespace replsync
