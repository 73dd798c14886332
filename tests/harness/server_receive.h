// ServerReceive: ServerTransport::Receive for tests that do not look at the peer's name.
#pragma once

#include <chrono>
#include <string>

#include "sync/wire/transport.h"

namespace replsync::testing {

inline Result<bool> ServerReceive(ServerTransport& server, std::string* peer,
                                  pb::Envelope* message, std::chrono::milliseconds timeout) {
  std::string name;
  return server.Receive(peer, &name, message, timeout);
}

}  // namespace replsync::testing
