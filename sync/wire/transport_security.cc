#include "sync/wire/transport_security.h"

#include <fmt/format.h>

namespace replsync {

ZmqServerSecurity TransportSecurity::ForServer() const {
  ZmqServerSecurity server;
  if (insecure) return server;
  server.secret_key = own.secret_key;
  for (const NodeConfig::Peer& peer : peers) server.peers[peer.public_key] = peer.name;
  return server;
}

Result<ZmqClientSecurity> TransportSecurity::ForClient(const std::string& endpoint) const {
  ZmqClientSecurity client;
  const NodeConfig::Peer* primary = nullptr;
  for (const NodeConfig::Peer& peer : peers) {
    if (peer.endpoint == endpoint) primary = &peer;
  }
  if (primary == nullptr) {
    return Status::NotFound(fmt::format(
        "[transport] primary = \"{}\" is not the endpoint of any [peers.<name>] table: add the "
        "primary as a peer (its endpoint exactly as here, and its public key)",
        endpoint));
  }
  if (insecure) return client;
  client.secret_key = own.secret_key;
  client.public_key = own.public_key;
  client.server_key = primary->public_key;
  return client;
}

Result<TransportSecurity> LoadTransportSecurity(const NodeConfig& config) {
  const std::string& origin = config.source_path;
  TransportSecurity security;
  security.insecure = config.transport.insecure;
  security.peers = config.peers;
  if (config.transport.secret_key_file.empty()) {
    if (!security.insecure) {
      return Status::InvalidArgument(fmt::format(
          "{}: [transport] secret_key_file is not set, and every ZeroMQ link needs this node's "
          "CURVE key: run `replsync keygen --out /etc/replsync/{}.key`, set secret_key_file to "
          "that file, and put the public key it prints in the other nodes' [peers.{}] public_key "
          "(or set [transport] insecure = true, on a trusted network only)",
          origin, config.node.name, config.node.name));
    }
  } else {
    auto keys = LoadCurveSecretKeyFile(config.transport.secret_key_file);
    if (!keys.ok()) return keys.status().WithContext(origin + ": [transport] secret_key_file");
    security.own = std::move(keys).value();
  }
  for (const NodeConfig::Peer& peer : config.peers) {
    if (peer.public_key.empty()) {
      if (security.insecure) continue;
      return Status::InvalidArgument(fmt::format(
          "{}: [peers.{}] public_key is missing: copy the public key that `replsync keygen` "
          "printed on {} (the last line), or `replsync keygen --public FILE` there",
          origin, peer.name, peer.name));
    }
    auto check = CurvePublicKeyOf(peer.public_key);  // any 40 Z85 characters make a key
    if (!check.ok()) {
      return Status::InvalidArgument(fmt::format(
          "{}: [peers.{}] public_key \"{}\" is not a CURVE public key ({} characters of Z85 "
          "text, as `replsync keygen` prints)",
          origin, peer.name, peer.public_key, kCurveKeyTextSize));
    }
    if (peer.public_key == security.own.public_key) {
      return Status::InvalidArgument(fmt::format(
          "{}: [peers.{}] public_key is this node's own public key: each node has its own key "
          "(run `replsync keygen` on {})",
          origin, peer.name, peer.name));
    }
  }
  return security;
}

}  // namespace replsync
