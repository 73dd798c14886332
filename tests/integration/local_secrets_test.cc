// Local secrets through the real binaries: replsyncd refuses a configuration others may read,
// makes its state folder and status file owner-only, and `replsync keygen` writes a key the
// library reads back.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "sync/node/status_file.h"
#include "sync/wire/curve_keys.h"
#include "tests/harness/node_pair_test.h"

namespace replsync::testing {
namespace {

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

// Runs a shell command; its exit code and standard output.
std::pair<int, std::string> Shell(const std::string& cmd) {
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {-1, out};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class LocalSecretsTest : public NodePairTest {
 protected:
  LocalSecretsTest() : NodePairTest({"secrets_db"}, "secrets") {}
  std::string ConfigPath(const std::string& node) const { return dir_ + "/" + node + ".toml"; }
};

TEST_F(LocalSecretsTest, ConfigReadableByOthersIsRefusedByDaemonAndCommands) {
  ASSERT_EQ(::chmod(ConfigPath("primary").c_str(), 0644), 0);
  auto daemon = ChildProcess::Start(
      {REPLSYNC_BINARY_DIR "/tools/replsyncd", "--config", ConfigPath("primary")},
      dir_ + "/refused.log");
  ASSERT_TRUE(daemon.ok());
  auto status = (*daemon)->Wait(std::chrono::seconds(20));
  ASSERT_TRUE(status.has_value()) << "replsyncd ran with a world-readable configuration";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << DescribeExitStatus(*status);
  const std::string log = (*daemon)->LogTail();
  EXPECT_NE(log.find("chmod 600 " + ConfigPath("primary")), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/primary-state"))
      << "the state folder was made before the configuration was checked";

  CommandRun run = RunReplsync("status", "", "", "primary");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("chmod 600 " + ConfigPath("primary")), std::string::npos) << run.err;
}

TEST_F(LocalSecretsTest, StateFolderAndStatusFileAreOwnerOnly) {
  // Under the usual umask 022 of whoever starts it, replsyncd's own files are still private.
  const mode_t old_umask = ::umask(022);
  // A state folder left wider by an earlier install is tightened.
  std::filesystem::create_directories(dir_ + "/secondary-state");
  ASSERT_EQ(::chmod((dir_ + "/secondary-state").c_str(), 0755), 0);
  StartBoth();
  ::umask(old_umask);
  for (const std::string node : {"primary", "secondary"}) {
    const std::string state = dir_ + "/" + node + "-state";
    EXPECT_EQ(ModeOf(state), 0700u) << state;
    EXPECT_EQ(ModeOf(StatusFilePath(state)), 0600u) << StatusFilePath(state);
    // Whatever else the daemon made in it (journal or relay, locks) is owner-only too.
    for (const auto& entry : std::filesystem::recursive_directory_iterator(state)) {
      EXPECT_EQ(ModeOf(entry.path().string()) & 077, 0u) << entry.path();
    }
  }
  // `replsync status` (the same user) still reads it.
  CommandRun run = RunReplsync("status", "", "", "primary");
  EXPECT_EQ(run.exit_code, 0) << run.err;
}

TEST_F(LocalSecretsTest, KeygenBinaryWritesAKeyAndPrintsItsPublicKeyLast) {
  const std::string key = dir_ + "/node1.key";
  auto [code, out] = Shell(std::string(REPLSYNC_BINARY_DIR) + "/tools/replsync keygen --out " +
                           key + " | tail -1");
  ASSERT_EQ(code, 0);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  EXPECT_EQ(ModeOf(key), 0600u);
  auto loaded = LoadCurveSecretKeyFile(key);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(out, loaded->public_key);

  auto again = Shell(std::string(REPLSYNC_BINARY_DIR) + "/tools/replsync keygen --out " + key +
                     " 2>&1");
  EXPECT_EQ(again.first, 2);
  EXPECT_NE(again.second.find("already exists"), std::string::npos) << again.second;
  auto still = LoadCurveSecretKeyFile(key);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->secret_key, loaded->secret_key);

  auto help = Shell(std::string(REPLSYNC_BINARY_DIR) + "/tools/replsync keygen --help");
  EXPECT_EQ(help.first, 0);
  EXPECT_NE(help.second.find("secret_key_file"), std::string::npos) << help.second;
}

}  // namespace
}  // namespace replsync::testing
