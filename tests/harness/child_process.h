// ChildProcess: a program the tests run (replsyncd, replsync, sysbench) with its output in a log
// file. The destructor kills it (SIGKILL) if it is still running, so a failing test leaves no
// daemon behind; the child also dies with the thread that started it (PR_SET_PDEATHSIG).
// Thread-safety: not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sync/status.h"

namespace replsync::testing {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with the arguments; stdout and stderr are appended to `log_path`.
  static Result<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                     const std::string& log_path);
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal`, then waits up to `timeout` for the exit (0: does not wait).
  // Returns the exit status (as from waitpid) when the child exited, nullopt otherwise.
  std::optional<int> Signal(int signal, std::chrono::milliseconds timeout);
  // Waits up to `timeout` for the child to exit by itself.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  const std::string& log_path() const { return log_path_; }
  // The last `lines` lines of the log, for failure messages.
  std::string LogTail(size_t lines = 30) const;

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
  std::optional<int> exit_status_;
};

// "exited with code 1" / "killed by signal 9".
std::string DescribeExitStatus(int status);

}  // namespace replsync::testing
