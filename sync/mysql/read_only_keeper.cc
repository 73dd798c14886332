#include "sync/mysql/read_only_keeper.h"

#include <spdlog/spdlog.h>

namespace replsync {

ReadOnlyKeeper::ReadOnlyKeeper(Options options) : options_(std::move(options)) {}

ReadOnlyKeeper::~ReadOnlyKeeper() { Stop(); }

void ReadOnlyKeeper::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void ReadOnlyKeeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ReadOnlyKeeper::read_only() const {
  std::lock_guard<std::mutex> lock(mu_);
  return read_only_;
}

std::string ReadOnlyKeeper::problem() const {
  std::lock_guard<std::mutex> lock(mu_);
  return problem_;
}

Result<bool> ReadOnlyKeeper::Look(std::unique_ptr<MysqlSession>& session) {
  if (session == nullptr || session->broken()) {
    session.reset();
    RS_ASSIGN_OR_RETURN(session, MysqlSession::Open(options_.mysql));
  }
  if (options_.need_bypass) {
    // Its own grants, as the server reports them for the current account.
    RS_ASSIGN_OR_RETURN(
        auto rows, session->Query("SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE "
                                  "GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), "
                                  "'''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''') AND "
                                  "PRIVILEGE_TYPE IN ('READ_ONLY ADMIN', 'SUPER')",
                                  "read_only: privileges"));
    if (rows.empty() || rows[0][0].value_or("0") == "0") {
      return Status::FailedPrecondition(
          "the account " + options_.mysql.user +
          " lacks READ_ONLY ADMIN: the database is left writable (read-only, it would stop the "
          "applier); GRANT READ_ONLY ADMIN ON *.* TO the account to keep it read-only");
    }
  }
  RS_ASSIGN_OR_RETURN(auto on, session->Query("SELECT @@GLOBAL.read_only", "read_only"));
  const bool is_on = !on.empty() && on[0][0].value_or("0") != "0";
  if (is_on || options_.observe_only) return is_on;
  RS_RETURN_IF_ERROR(session->Execute("SET GLOBAL read_only = ON", "set read_only"));
  spdlog::info("{}: the database {}:{} is now read-only", options_.who, options_.mysql.host,
               options_.mysql.port);
  return true;
}

void ReadOnlyKeeper::Run() {
  MysqlThreadScope scope;
  std::unique_ptr<MysqlSession> session;
  for (;;) {
    const Result<bool> looked = Look(session);
    {
      std::unique_lock<std::mutex> lock(mu_);
      const std::string problem = looked.ok() ? "" : looked.status().message();
      if (problem != problem_ && !problem.empty()) {
        spdlog::warn("{}: {}", options_.who, problem);
      }
      problem_ = problem;
      read_only_ = looked.ok() && *looked;
      if (cv_.wait_for(lock, options_.interval, [this] { return stop_; })) return;
    }
  }
}

}  // namespace replsync
