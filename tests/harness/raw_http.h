// Raw HTTP over a loopback TCP socket, for the health endpoint's tests: requests are written
// byte for byte (HTTP/1.0 without Host, HEAD, methods and malformed lines a client library would
// not send) and responses read by this small reader, independent of the server's library.
// Thread-safety: free functions; each call uses its own socket.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "sync/status.h"
#include "sync/unique_fd.h"

namespace replsync::testing {

struct HttpReply {
  int code = 0;
  std::string status_line;                     // "HTTP/1.1 200 OK"
  std::map<std::string, std::string> headers;  // names lower-cased; the last of a repeated one
  std::string body;
  bool has_header(const std::string& name) const { return headers.count(name) > 0; }
};

// A TCP connection to 127.0.0.1:port. Network when it cannot connect.
Result<UniqueFd> ConnectLoopback(uint16_t port);

// Writes all of `bytes` to `fd`. Network on failure.
Status SendAll(int fd, std::string_view bytes);

// Reads one response from `fd`: the status line and headers, then the body: none when `head`
// (the answer to a HEAD), Content-Length bytes, or up to the close without a Content-Length.
// Network on a timeout or a close before the response is whole; Corruption when the bytes are
// not an HTTP response.
Result<HttpReply> ReadHttpReply(int fd, bool head,
                                std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Reads from `fd` until the peer closes it; returns everything read. Network when it is still
// open after `timeout` (or recv fails).
Result<std::string> ReadUntilClose(int fd,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Connects, sends `request` as it is, reads one response (`head` as above).
Result<HttpReply> SendHttp(uint16_t port, std::string_view request, bool head = false,
                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

// "GET <target> HTTP/1.1" with Host and Connection: close.
Result<HttpReply> HttpGet(uint16_t port, std::string_view target);

}  // namespace replsync::testing
