// TransportSecurity: what a node's ZeroMQ sockets prove and whom they accept, from its
// configuration ([transport] secret_key_file and insecure, [peers.<name>]; schemas/wire.md
// "Security").
//
// Every node has its own CURVE key pair. A primary's server socket serves only the public keys
// listed in [peers] (replsync's ZAP handler, sync/wire/zap_handler.h), and each message carries
// the name of the peer whose key proved it; a secondary (and verify/repair on it, with the same
// key) connects only to the server whose key is that of the peer whose endpoint is its
// [transport] primary. `insecure = true` turns CURVE off: nothing is proved or encrypted, and a
// primary takes the [peers] name a Hello gives.
// Thread-safety: value types and free functions.
#pragma once

#include <map>
#include <string>

#include "sync/config.h"
#include "sync/status.h"
#include "sync/wire/curve_keys.h"

namespace replsync {

// The server end's security (a primary's ROUTER).
struct ZmqServerSecurity {
  // This node's secret key (Z85); empty: no CURVE (insecure) — every connection is accepted and
  // its messages carry no peer name.
  std::string secret_key;
  // Allowed clients: Z85 public key -> the peer's name.
  std::map<std::string, std::string> peers;
  // Test hook: false starts no ZAP handler, so that tests can show the transport failing closed
  // (libzmq then lets every CURVE client in, and the transport drops their messages).
  bool zap_handler = true;
};

// A client end's security (a secondary's DEALER, verify's and repair's).
struct ZmqClientSecurity {
  std::string secret_key;  // this node's (Z85); empty: no CURVE (insecure)
  std::string public_key;  // derived from secret_key
  std::string server_key;  // the configured primary's public key (Z85)
};

struct TransportSecurity {
  bool insecure = false;
  CurveKeyPair own;  // this node's keys (empty when insecure)
  // The configured peers (sorted by name): a primary serves only these names.
  std::vector<NodeConfig::Peer> peers;

  // The server end of this node ([transport] listen).
  ZmqServerSecurity ForServer() const;
  // The client end towards `endpoint` ([transport] primary): the key of the peer with that
  // endpoint. NotFound (naming the setting to fix) when no [peers] entry has it.
  Result<ZmqClientSecurity> ForClient(const std::string& endpoint) const;
};

// Reads the node's secret key and checks [peers]. Errors name the setting and how to fix it:
// - InvalidArgument without [transport] secret_key_file (and not insecure): make a key with
//   `replsync keygen --out FILE` and put its public key in the other nodes' [peers];
// - InvalidArgument for a peer without public_key (not insecure) or with one that is not 40
//   characters of Z85, or with this node's own public key;
// - the key file's own errors (LoadCurveSecretKeyFile: NotFound, mode, contents).
// With insecure = true a secret_key_file is still loaded when set (so that the same file works
// when CURVE is turned on), but not required.
Result<TransportSecurity> LoadTransportSecurity(const NodeConfig& config);

// The warning logged at every start (and shown in status) when [transport] insecure = true.
inline constexpr const char* kInsecureTransportWarning =
    "[transport] insecure = true: the ZeroMQ link has no CURVE keys, so anyone who reaches the "
    "port can read the change stream or pose as a configured peer; use it only on a trusted "
    "network (see `replsync keygen`)";

}  // namespace replsync
