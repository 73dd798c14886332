#include "sync/health/health_server.h"

// cpp-httplib as Debian builds it: a shared library whose header is compiled with the macros of
// its pkg-config file (CMakeLists.txt), so that the classes have the library's layout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <vector>

namespace replsync::health {

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

// Set on the accepting thread while it runs a connection's job itself because the queue is
// full: the job then closes the connection instead of serving it.
thread_local bool t_refuse = false;

// httplib's TaskQueue with a fixed number of threads and a bounded queue. A job beyond the bound
// runs at once on the accepting thread with t_refuse set (httplib's job owns the accepted
// socket, so only the job can close it). shutdown() runs what is queued, then joins.
class BoundedTaskQueue final : public httplib::TaskQueue {
 public:
  BoundedTaskQueue(size_t threads, size_t max_pending) : max_pending_(max_pending) {
    for (size_t i = 0; i < std::max<size_t>(threads, 1); ++i) {
      workers_.emplace_back([this] { Work(); });
    }
  }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!shutdown_ && jobs_.size() < max_pending_) {
        jobs_.push_back(std::move(fn));
        cv_.notify_one();
        return;
      }
    }
    t_refuse = true;
    fn();
    t_refuse = false;
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

 private:
  void Work() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return shutdown_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool shutdown_ = false;                   // guarded by mu_
  std::vector<std::thread> workers_;
};

// One connection as httplib reads and writes it: the socket, polled against the current
// request's deadline, reads buffered (httplib reads request lines a byte at a time) and counted
// against the request's byte budget. A read or write that runs out of time or budget fails and
// marks the connection cut.
class ConnectionStream final : public httplib::Stream {
 public:
  explicit ConnectionStream(int fd) : fd_(fd) {}

  // Waits up to `deadline` for the next request's first byte (or the client's close).
  bool WaitForRequest(SteadyTime deadline) { return begin_ < end_ || Wait(POLLIN, deadline); }
  // The request that begins now must be read and answered by `deadline`, reading at most
  // `budget` bytes from the socket.
  void BeginRequest(SteadyTime deadline, size_t budget) {
    deadline_ = deadline;
    budget_ = budget;
  }
  bool cut() const { return cut_; }

  bool is_readable() const override { return begin_ < end_ || Wait(POLLIN, deadline_); }
  bool is_writable() const override { return Wait(POLLOUT, deadline_); }

  ssize_t read(char* ptr, size_t size) override {
    if (begin_ == end_) {
      if (budget_ == 0 || !Wait(POLLIN, deadline_)) return Cut();
      ssize_t n;
      do {
        n = ::recv(fd_, buf_, std::min(sizeof(buf_), budget_), 0);
      } while (n < 0 && errno == EINTR);
      if (n < 0) return Cut();
      if (n == 0) return 0;  // the client closed its side
      budget_ -= static_cast<size_t>(n);
      begin_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const size_t n = std::min(size, end_ - begin_);
    std::memcpy(ptr, buf_ + begin_, n);
    begin_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!Wait(POLLOUT, deadline_)) return Cut();
    ssize_t n;
    do {
      n = ::send(fd_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? Cut() : n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    Address(::getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    Address(::getsockname, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  ssize_t Cut() {
    cut_ = true;
    return -1;
  }

  // Polls for `events` until `deadline`. True when they came, or an error or hang-up did (the
  // next recv or send reports it).
  bool Wait(short events, SteadyTime deadline) const {
    while (true) {
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left <= SteadyTime::duration::zero()) return false;
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
      pollfd p{.fd = fd_, .events = events, .revents = 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 60'000)));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }

  void Address(int (*name)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    ip.clear();
    port = 0;
    if (name(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
      ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
      port = ntohs(in->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* in = reinterpret_cast<const sockaddr_in6*>(&addr);
      ::inet_ntop(AF_INET6, &in->sin6_addr, text, sizeof(text));
      port = ntohs(in->sin6_port);
    }
    ip = text;
  }

  const int fd_;
  SteadyTime deadline_{};
  size_t budget_ = 0;
  bool cut_ = false;
  char buf_[4096];
  size_t begin_ = 0;  // buf_[begin_, end_) is read and not yet consumed
  size_t end_ = 0;
};

HealthAnswer Ask(const std::string& path, const HealthProvider& provider,
                 const HealthQuery& query) {
  if (!provider) return ReasonAnswer(503, fmt::format("{} has no provider", path));
  try {
    HealthAnswer answer = provider(query);
    if (answer.code != 200 && answer.code != 400 && answer.code != 503) {
      return ReasonAnswer(503, fmt::format("the provider of {} answered {}, not 200, 400 or 503",
                                           path, answer.code));
    }
    return answer;
  } catch (const std::exception& e) {
    return ReasonAnswer(503, fmt::format("the provider of {} failed: {}", path, e.what()));
  } catch (...) {
    return ReasonAnswer(503, fmt::format("the provider of {} failed", path));
  }
}

}  // namespace

// httplib's server with this file's connection handling: process_and_close_socket (httplib's
// hook for a connection, which SSLServer overrides the same way) runs httplib's own request
// parser and response writer over a ConnectionStream, and the sockets being served are known,
// so that Stop can end them.
class HealthServer::Impl final : public httplib::Server {
 public:
  Impl(const HealthServerOptions& options, std::map<std::string, HealthProvider> paths)
      : options_(options), paths_(std::move(paths)) {
    new_task_queue = [this] {
      return new BoundedTaskQueue(options_.threads, options_.max_pending);
    };
    // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second daemon bind the same
    // port and share its connections.
    set_socket_options([](socket_t fd) {
      int yes = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    });
    // Used by httplib for the accepted sockets' SO_RCVTIMEO/SO_SNDTIMEO (a bound on a blocking
    // send) and the Keep-Alive header; the limits themselves are enforced here.
    const auto request_s = std::chrono::ceil<std::chrono::seconds>(options_.request_timeout);
    set_read_timeout(request_s.count());
    set_write_timeout(request_s.count());
    set_keep_alive_timeout(std::chrono::ceil<std::chrono::seconds>(options_.idle_timeout).count());
    set_keep_alive_max_count(std::max<size_t>(options_.max_requests_per_connection, 1));
    set_payload_max_length(options_.max_request_bytes);
    set_pre_routing_handler(
        [this](const httplib::Request& req, httplib::Response& res) { return Route(req, res); });
    // The errors httplib answers itself (a request line or header it cannot parse, 414): a JSON
    // reason too, and the connection closes after it (what follows on it cannot be trusted).
    // Unhandled, so that httplib does not apply the request's ranges to the body; Content-Length
    // is then this handler's to set.
    set_error_handler(
        HandlerWithResponse([](const httplib::Request&, httplib::Response& res) -> HandlerResponse {
          if (!res.body.empty()) return HandlerResponse::Unhandled;  // a path's answer
          if (res.status == 416) res.status = 400;                   // a malformed Range header
          const char* reason = res.status == 414   ? "request target too long"
                               : res.status == 400 ? "malformed request"
                                                   : "request not served";
          res.set_header("Cache-Control", "no-store");
          res.set_header("Connection", "close");
          res.set_content(ReasonJson(reason), "application/json");
          res.set_header("Content-Length", std::to_string(res.body.size()));
          return HandlerResponse::Unhandled;
        }));
  }

  // Refuses connections from now on and shuts down the open ones (their threads see the close
  // at their next read or write, or at once when they wait).
  void EndConnections() {
    std::lock_guard<std::mutex> lock(mu_);
    ending_ = true;
    for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  bool process_and_close_socket(socket_t sock) override {
    if (t_refuse || !Register(sock)) {
      ::close(sock);
      return false;
    }
    ::fcntl(sock, F_SETFD, FD_CLOEXEC);
    // httplib writes the headers and the body apart: without this the body waits for the
    // client's delayed ACK (40 ms) on a kept-alive connection.
    int yes = 1;
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    ConnectionStream stream(sock);
    bool ok = true;
    const size_t max_requests = std::max<size_t>(options_.max_requests_per_connection, 1);
    for (size_t n = 1; n <= max_requests; ++n) {
      if (!stream.WaitForRequest(std::chrono::steady_clock::now() + options_.idle_timeout)) break;
      stream.BeginRequest(std::chrono::steady_clock::now() + options_.request_timeout,
                          options_.max_request_bytes);
      bool parsed = false;  // httplib calls setup_request only for a request it could parse
      bool close_after = false;
      bool closed_by_client = false;
      ok = process_request(stream, n == max_requests, closed_by_client,
                           [&parsed, &close_after](httplib::Request& req) {
                             parsed = true;
                             // A health answer is whole or nothing: no 206, no sliced JSON.
                             req.ranges.clear();
                             // A body is never read: after answering such a request, the
                             // connection's next bytes would be that body.
                             close_after = (req.method != "GET" && req.method != "HEAD") ||
                                           req.has_header("Content-Length") ||
                                           req.has_header("Transfer-Encoding");
                             if (close_after) {
                               req.headers.erase("Connection");
                               req.set_header("Connection", "close");  // said in the answer
                             }
                           });
      if (!ok || !parsed || closed_by_client || close_after || stream.cut()) break;
    }
    // Unregistered before it is closed: EndConnections never shuts down a number the system
    // has given to another socket since.
    Unregister(sock);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  HandlerResponse Route(const httplib::Request& req, httplib::Response& res) {
    HealthAnswer answer;
    if (req.method != "GET" && req.method != "HEAD") {
      answer = ReasonAnswer(405, fmt::format("method {} is not served: GET or HEAD", req.method));
      res.set_header("Allow", "GET, HEAD");
    } else if (auto it = paths_.find(req.path); it == paths_.end()) {
      std::string list;
      for (const auto& [path, provider] : paths_) list += (list.empty() ? "" : ", ") + path;
      answer = ReasonAnswer(404, fmt::format("no such path: {} (paths: {})", req.path, list));
    } else {
      HealthQuery query{.path = req.path, .params = {req.params.begin(), req.params.end()}};
      answer = Ask(it->first, it->second, query);
    }
    res.status = answer.code;
    res.set_header("Cache-Control", "no-store");
    res.set_content(answer.json, "application/json");
    return HandlerResponse::Handled;
  }

  bool Register(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ending_) return false;
    open_.insert(fd);
    return true;
  }
  void Unregister(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    open_.erase(fd);
  }

  const HealthServerOptions& options_;
  const std::map<std::string, HealthProvider> paths_;
  std::mutex mu_;
  std::set<int> open_;   // guarded by mu_: the sockets being served
  bool ending_ = false;  // guarded by mu_
};

HealthServer::HealthServer(HealthServerOptions options, std::map<std::string, HealthProvider> paths)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(options_, std::move(paths))) {}

HealthServer::~HealthServer() { Stop(); }

Status HealthServer::Start() {
  if (started_) return Status::FailedPrecondition("health endpoint: started already");
  started_ = true;
  errno = 0;
  int port = -1;
  if (options_.port == 0) {
    port = impl_->bind_to_any_port(options_.host);
  } else if (impl_->bind_to_port(options_.host, options_.port)) {
    port = options_.port;
  }
  if (port <= 0) {
    const int err = errno;
    return Status::Network(
        fmt::format("bind health endpoint {}:{}: {}", options_.host, options_.port,
                    err != 0 ? std::strerror(err)
                             : "not an address of this host, or a name that does not resolve"),
        /*retryable=*/false);
  }
  port_ = static_cast<uint16_t>(port);
  auto listening_ended = std::make_shared<std::atomic<bool>>(false);
  listener_ = std::thread([this, listening_ended] {
    impl_->listen_after_bind();
    *listening_ended = true;
  });
  // httplib's stop() does nothing before its loop has begun: return once it has.
  while (!impl_->is_running() && !*listening_ended) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status::Ok();
}

void HealthServer::Stop() {
  if (!listener_.joinable()) return;
  impl_->EndConnections();
  impl_->stop();  // closes the listening socket: the accept loop ends and joins its threads
  listener_.join();
}

}  // namespace replsync::health
