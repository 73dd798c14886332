// The fork point (sync/node/role_state.h) as the wire carries it (schemas/replsync.proto
// ForkPoint, in Hello and Heartbeat), both ways.
// Thread-safety: stateless functions.
#pragma once

#include "replsync.pb.h"
#include "sync/node/role_state.h"

namespace replsync {

pb::ForkPoint ForkToProto(const ForkPoint& fork);
ForkPoint ForkFromProto(const pb::ForkPoint& fork);

}  // namespace replsync
