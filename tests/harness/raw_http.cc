#include "tests/harness/raw_http.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace replsync::testing {

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

}  // namespace

Result<UniqueFd> ConnectLoopback(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::Network(fmt::format("socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Status::Network(fmt::format("connect 127.0.0.1:{}: {}", port, std::strerror(errno)));
  }
  return fd;
}

Status SendAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Network(fmt::format("send: {}", std::strerror(errno)));
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Result<HttpReply> ReadHttpReply(int fd, bool head, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string data;
  bool closed = false;
  // Reads more into `data` (nothing at the close, which sets `closed`); Network on a timeout.
  auto more = [&]() -> Status {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return Status::Network(fmt::format("no complete response within {} ms (have {} bytes)",
                                         timeout.count(), data.size()));
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0) return Status::Network(fmt::format("recv: {}", std::strerror(errno)));
    if (n == 0) closed = true;
    data.append(buf, static_cast<size_t>(n));
    return Status::Ok();
  };
  size_t header_end;
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    if (closed) {
      return Status::Network(
          fmt::format("closed before the headers ended ({} bytes)", data.size()));
    }
    RS_RETURN_IF_ERROR(more());
  }
  HttpReply reply;
  size_t line_end = data.find("\r\n");
  reply.status_line = data.substr(0, line_end);
  if (reply.status_line.rfind("HTTP/1.", 0) != 0 || reply.status_line.size() < 12) {
    return Status::Corruption("not an HTTP status line: " + reply.status_line);
  }
  reply.code = std::atoi(reply.status_line.c_str() + 9);
  size_t pos = line_end + 2;
  while (pos < header_end) {
    const size_t end = data.find("\r\n", pos);
    const std::string line = data.substr(pos, end - pos);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) return Status::Corruption("not a header line: " + line);
    reply.headers[Lower(line.substr(0, colon))] = Trim(std::string_view(line).substr(colon + 1));
    pos = end + 2;
  }
  std::string rest = data.substr(header_end + 4);
  if (head) {
    if (!rest.empty()) return Status::Corruption("bytes after the headers of a HEAD: " + rest);
    return reply;
  }
  if (reply.has_header("content-length")) {
    const size_t length = std::stoul(reply.headers["content-length"]);
    while (data.size() - header_end - 4 < length) {
      if (closed) return Status::Network("closed before the body ended");
      RS_RETURN_IF_ERROR(more());
    }
    reply.body = data.substr(header_end + 4, length);
    if (data.size() - header_end - 4 > length) {
      return Status::Corruption("bytes after the body: " + data.substr(header_end + 4 + length));
    }
    return reply;
  }
  while (!closed) RS_RETURN_IF_ERROR(more());
  reply.body = data.substr(header_end + 4);
  return reply;
}

Result<std::string> ReadUntilClose(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string data;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return Status::Network(
          fmt::format("still open after {} ms ({} bytes read)", timeout.count(), data.size()));
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return data;
    if (n < 0) {
      if (errno == ECONNRESET) return data;  // closed with unread bytes of ours: a close too
      return Status::Network(fmt::format("recv: {}", std::strerror(errno)));
    }
    data.append(buf, static_cast<size_t>(n));
  }
}

Result<HttpReply> SendHttp(uint16_t port, std::string_view request, bool head,
                           std::chrono::milliseconds timeout) {
  RS_ASSIGN_OR_RETURN(UniqueFd fd, ConnectLoopback(port));
  RS_RETURN_IF_ERROR(SendAll(fd.get(), request));
  return ReadHttpReply(fd.get(), head, timeout);
}

Result<HttpReply> HttpGet(uint16_t port, std::string_view target) {
  return SendHttp(
      port, fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", target));
}

}  // namespace replsync::testing
