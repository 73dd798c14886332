// TreeClient: the client of the primary's tree service (schemas/wire.md, "Verify's tree
// requests"), which verify and repair use to compare the repositories.
//
// A session: Open() asks the primary's replsyncd for a snapshot of its manifest (after journaling
// some paths whole again, and, `deep`, after rereading every file) and answers with the
// snapshot's journal sequence, root hash and path count; List() then fetches complete folder
// listings of that snapshot, paging through the primary's per-reply budget; the destructor tells
// the primary that the session is no longer needed. Each request carries an id, and only the
// reply with that id is taken (replies to earlier, timed-out requests are skipped).
//
// It talks over a ClientTransport of its own (a DEALER to `[transport] primary`) and says
// Hello{tree_only} before each request (the primary serves tree requests only after one; it
// starts no replication session and pins nothing): the replication stream's session is not
// involved.
//
// Thread-safety: not thread-safe; one thread uses a client.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "replsync.pb.h"
#include "sync/clock.h"
#include "sync/status.h"
#include "sync/wire/transport.h"
#include "sync/wire/transport_security.h"

namespace replsync {

class TreeClient {
 public:
  // Folders asked for per listing request (the primary also caps the nodes per reply).
  static constexpr size_t kDirsPerRequest = 256;

  struct Options {
    // The longest wait for one reply (an Open with `deep` waits up to deep_open_timeout).
    std::chrono::seconds reply_timeout{120};
    // Rereading every file of the primary takes as long as it takes.
    std::chrono::seconds deep_open_timeout{24 * 3600};
    // The reply deadlines go by this clock.
    Clock* clock = &SystemClock();
    // The name its Hello gives ([node] name). With CURVE the primary names the client by its
    // key instead (the node's own, [peers] on the primary); without, this must be a [peers] name.
    std::string node_name = "verify";
  };

  // Connects a ZeroMQ DEALER to the primary's replication endpoint `endpoint` with `security`
  // (the node's key; the primary's key) (it connects in the background; a primary that is down
  // shows on the first request). Errors: "connect to the primary at <endpoint>: <reason>"
  // (InvalidArgument for a malformed endpoint or key).
  static Result<std::unique_ptr<TreeClient>> Connect(const std::string& endpoint,
                                                     const ZmqClientSecurity& security,
                                                     const Options& options);

  // Over `transport` (unit tests: an in-process one); `endpoint` names the primary in messages.
  TreeClient(std::unique_ptr<ClientTransport> transport, std::string endpoint, Options options);
  // Closes the open session, if any (best effort: the primary also drops idle sessions).
  ~TreeClient();
  TreeClient(const TreeClient&) = delete;
  TreeClient& operator=(const TreeClient&) = delete;

  // Opens a session: the primary's snapshot, taken after it journaled `resync_paths` whole again
  // (and, `deep`, after rereading every file). The reply carries session, journal_seq, root_hash
  // and paths.
  // The primary refuses a message over kServerMaxReceiveBytes (8 MiB; ZeroMQ drops the
  // connection), so a long list goes in several open requests of at most kPathBytesPerRequest
  // encoded path bytes each (a single longer path alone), in order, one after the other: each
  // journals its paths, takes a snapshot and replaces this client's previous session on the
  // primary, so the last one's snapshot follows every path's journaling and is the session
  // returned. Only the last request carries `deep` (the primary rations deep opens). Errors: see
  // Ask below; the first failing request ends the open (paths of earlier requests were
  // journaled again, which does no harm) and no session should be listed.
  Result<pb::TreeReply> Open(bool deep, const std::vector<std::string>& resync_paths);

  // The complete listings of `dirs` in the open session, in as many round trips as it takes
  // (kDirsPerRequest folders a request; a truncated listing is asked again after its last
  // name). A folder the snapshot does not have lists as empty. Errors: see Ask below, and
  // Corruption when the primary answers with no listing or lists out of order.
  Result<std::map<std::string, std::vector<pb::TreeNode>>> List(
      const std::vector<std::string>& dirs);

  uint64_t requests() const { return requests_; }          // round trips so far
  uint64_t listed_nodes() const { return listed_nodes_; }  // nodes the primary sent so far

 private:
  // Sends `request` with a fresh id and waits up to `timeout` for the reply with that id.
  // Errors: Network when it cannot be sent ("the primary's replsyncd at E cannot be reached
  // (...); is it running, and is [transport] primary right?") or receiving fails; Aborted with
  // the primary's own error text ("the primary at E: ..."); Network (retryable) when no reply
  // came in time ("... did not answer within N s ...").
  Result<pb::TreeReply> Ask(pb::TreeRequest request, std::chrono::seconds timeout);
  // Sends Hello{node_name, tree_only}.
  Status SayHello();

  std::unique_ptr<ClientTransport> transport_;
  std::string endpoint_;
  Options options_;
  std::string session_;  // "" until Open
  uint64_t next_id_ = 0;
  uint64_t requests_ = 0;
  uint64_t listed_nodes_ = 0;
};

}  // namespace replsync
