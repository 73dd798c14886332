#include "sync/node/role_state.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "sync/atomic_file.h"

namespace replsync {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Put(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}
void Put(Writer& w, const char* key, uint64_t value) {
  w.Key(key);
  w.Uint64(value);
}
void Put(Writer& w, const char* key, int64_t value) {
  w.Key(key);
  w.Int64(value);
}
void Put(Writer& w, const char* key, bool value) {
  w.Key(key);
  w.Bool(value);
}

// Reads the members of one JSON object into typed fields, remembering the first problem.
class Fields {
 public:
  Fields(const rapidjson::Value& object, std::string where)
      : object_(object), where_(std::move(where)) {}
  void Get(const char* key, std::string* out) {
    if (const rapidjson::Value* v = Find(key, "a string", &rapidjson::Value::IsString)) {
      out->assign(v->GetString(), v->GetStringLength());
    }
  }
  void Get(const char* key, uint64_t* out) {
    if (const rapidjson::Value* v = Find(key, "a whole number", &rapidjson::Value::IsUint64)) {
      *out = v->GetUint64();
    }
  }
  void Get(const char* key, int64_t* out) {
    if (const rapidjson::Value* v = Find(key, "a whole number", &rapidjson::Value::IsInt64)) {
      *out = v->GetInt64();
    }
  }
  void Get(const char* key, bool* out) {
    if (const rapidjson::Value* v = Find(key, "true or false", &rapidjson::Value::IsBool)) {
      *out = v->GetBool();
    }
  }
  const Status& status() const { return status_; }

 private:
  const rapidjson::Value* Find(const char* key, const char* kind,
                               bool (rapidjson::Value::*is)() const) {
    if (!status_.ok()) return nullptr;
    auto it = object_.FindMember(key);
    if (it == object_.MemberEnd() || !(it->value.*is)()) {
      status_ = Status::InvalidArgument(where_ + ": \"" + key + "\" is missing or not " + kind);
      return nullptr;
    }
    return &it->value;
  }
  const rapidjson::Value& object_;
  std::string where_;
  Status status_;
};

}  // namespace

std::string RoleState::ToJson() const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Put(w, "version", uint64_t{kVersion});
  Put(w, "role", std::string(RoleName(role)));
  Put(w, "epoch", epoch);
  Put(w, "fenced", fenced);
  Put(w, "fenced_by", fenced_by);
  w.Key("forks");
  w.StartArray();
  for (const ForkPoint& f : forks) {
    w.StartObject();
    Put(w, "epoch", f.epoch);
    Put(w, "promoted", f.promoted);
    Put(w, "old_primary", f.old_primary);
    Put(w, "journal_seq", f.journal_seq);
    Put(w, "gtid", f.gtid);
    Put(w, "binlog_file", f.binlog_file);
    Put(w, "binlog_offset", f.binlog_offset);
    Put(w, "manifest", f.manifest);
    Put(w, "at", f.at);
    Put(w, "lost", f.lost);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

Result<RoleState> RoleState::Parse(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::InvalidArgument("role state: not a JSON object");
  }
  RoleState state;
  Fields top(doc, "role state");
  uint64_t version = 0;
  std::string role;
  top.Get("version", &version);
  top.Get("role", &role);
  top.Get("epoch", &state.epoch);
  top.Get("fenced", &state.fenced);
  top.Get("fenced_by", &state.fenced_by);
  RS_RETURN_IF_ERROR(top.status());
  if (version != kVersion) {
    return Status::InvalidArgument("role state: format version " + std::to_string(version) +
                                   " (this replsync reads " + std::to_string(kVersion) + ")");
  }
  if (role == RoleName(NodeRole::kPrimary)) {
    state.role = NodeRole::kPrimary;
  } else if (role == RoleName(NodeRole::kSecondary)) {
    state.role = NodeRole::kSecondary;
  } else {
    return Status::InvalidArgument("role state: unknown role \"" + role + "\"");
  }
  if (state.epoch == 0) return Status::InvalidArgument("role state: epoch 0");
  auto forks = doc.FindMember("forks");
  if (forks == doc.MemberEnd() || !forks->value.IsArray()) {
    return Status::InvalidArgument("role state: \"forks\" is missing or not an array");
  }
  for (const rapidjson::Value& item : forks->value.GetArray()) {
    if (!item.IsObject()) return Status::InvalidArgument("role state: a fork is not an object");
    ForkPoint f;
    Fields fields(item, "role state: fork " + std::to_string(state.forks.size() + 1));
    fields.Get("epoch", &f.epoch);
    fields.Get("promoted", &f.promoted);
    fields.Get("old_primary", &f.old_primary);
    fields.Get("journal_seq", &f.journal_seq);
    fields.Get("gtid", &f.gtid);
    fields.Get("binlog_file", &f.binlog_file);
    fields.Get("binlog_offset", &f.binlog_offset);
    fields.Get("manifest", &f.manifest);
    fields.Get("at", &f.at);
    fields.Get("lost", &f.lost);
    RS_RETURN_IF_ERROR(fields.status());
    state.forks.push_back(std::move(f));
  }
  return state;
}

std::optional<ForkPoint> TakeoverFork(const RoleState& state, const std::string& self) {
  for (auto it = state.forks.rbegin(); it != state.forks.rend(); ++it) {
    if (it->promoted == self) break;  // this node's own promotion: nothing took over after it
    if (it->old_primary == self || it->old_primary.empty()) return *it;
  }
  return std::nullopt;
}

std::string FollowedNode(const RoleState& state, const std::string& self) {
  if (state.forks.empty() || state.forks.back().promoted == self) return "";
  return state.forks.back().promoted;
}

Status ApplyRoleState(const RoleState& state, NodeConfig* config) {
  config->node.role = state.role;
  const std::string followed = FollowedNode(state, config->node.name);
  if (state.role != NodeRole::kSecondary || followed.empty()) return Status::Ok();
  const NodeConfig::Peer* peer = config->FindPeer(followed);
  if (peer == nullptr) {
    return Status::FailedPrecondition(
        "the node's role state says it follows " + followed + " (promoted at epoch " +
        std::to_string(state.forks.back().epoch) + "), and " + config->source_path +
        " has no [peers." + followed + "] table: add it (its endpoint and public key)");
  }
  config->transport.primary = peer->endpoint;
  return Status::Ok();
}

Result<NodeConfig> LoadNodeConfig(const std::string& path) {
  RS_ASSIGN_OR_RETURN(NodeConfig config, NodeConfig::Load(path));
  Result<RoleState> state = ReadRoleState(config.node.state_dir);
  if (state.status().IsNotFound()) return config;
  if (!state.ok()) return state.status();
  RS_RETURN_IF_ERROR(ApplyRoleState(*state, &config));
  return config;
}

uint64_t PrimaryEpoch(const RoleState& state) {
  return state.role == NodeRole::kPrimary ? state.epoch : 0;
}

std::string FenceReason(const RoleState& self, const PeerClaim& peer) {
  if (self.role != NodeRole::kPrimary || self.fenced) return "";
  if (peer.epoch > self.epoch) {
    return "node " + peer.node + " knows epoch " + std::to_string(peer.epoch) +
           ", and this node is primary at epoch " + std::to_string(self.epoch) +
           ": another node was promoted after it";
  }
  if (peer.primary_epoch != 0 && peer.primary_epoch == self.epoch) {
    return "node " + peer.node + " is primary at epoch " + std::to_string(self.epoch) +
           " too: two primaries; promote one of them (replsync promote) and rejoin the other";
  }
  return "";
}

std::string RoleStatePath(const std::string& state_dir) { return state_dir + "/role.json"; }

Result<RoleState> ReadRoleState(const std::string& state_dir) {
  const std::string path = RoleStatePath(state_dir);
  RS_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, "the role state"));
  Result<RoleState> state = RoleState::Parse(text);
  if (!state.ok()) return state.status().WithContext(path);
  return state;
}

Result<RoleState> LoadRoleState(const NodeConfig& config) {
  Result<RoleState> state = ReadRoleState(config.node.state_dir);
  if (!state.status().IsNotFound()) return state;
  RoleState first;
  first.role = config.node.role;
  RS_RETURN_IF_ERROR(SaveRoleState(config.node.state_dir, first));
  return first;
}

Status SaveRoleState(const std::string& state_dir, const RoleState& state) {
  return WriteFileAtomically(RoleStatePath(state_dir), state.ToJson(), "role state");
}

}  // namespace replsync
