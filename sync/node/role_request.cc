#include "sync/node/role_request.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <thread>
#include <utility>

#include "sync/atomic_file.h"

namespace replsync {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void PutString(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

Result<rapidjson::Document> ParseObject(std::string_view json, const char* what) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::InvalidArgument(std::string(what) + ": not a JSON object");
  }
  auto token = doc.FindMember("token");
  if (token == doc.MemberEnd() || !token->value.IsString() || token->value.GetStringLength() == 0) {
    return Status::InvalidArgument(std::string(what) + ": no token");
  }
  return doc;
}

}  // namespace

std::string RoleRequest::ToJson() const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  PutString(w, "token", token);
  PutString(w, "action",
            action == Action::kRejoin       ? "rejoin"
            : action == Action::kSwitchover ? "switchover"
                                            : "promote");
  w.Key("force");
  w.Bool(force);
  w.Key("dry_run");
  w.Bool(dry_run);
  PutString(w, "target", target);
  w.EndObject();
  return buf.GetString();
}

Result<RoleRequest> RoleRequest::Parse(std::string_view json) {
  RS_ASSIGN_OR_RETURN(rapidjson::Document doc, ParseObject(json, "role request"));
  RoleRequest request;
  request.token = doc["token"].GetString();
  if (auto it = doc.FindMember("action"); it != doc.MemberEnd()) {
    const std::string_view action = it->value.IsString() ? it->value.GetString() : "";
    if (action == "rejoin") {
      request.action = RoleRequest::Action::kRejoin;
    } else if (action == "switchover") {
      request.action = RoleRequest::Action::kSwitchover;
    } else if (action != "promote") {
      return Status::InvalidArgument(
          "role request: action is not \"promote\", \"rejoin\" or \"switchover\"");
    }
  }
  if (auto it = doc.FindMember("target"); it != doc.MemberEnd()) {
    if (!it->value.IsString()) return Status::InvalidArgument("role request: target is not text");
    request.target = it->value.GetString();
  }
  for (auto [key, flag] : {std::pair{"force", &request.force}, {"dry_run", &request.dry_run}}) {
    if (auto it = doc.FindMember(key); it != doc.MemberEnd()) {
      if (!it->value.IsBool()) {
        return Status::InvalidArgument(std::string("role request: ") + key +
                                       " is not true or false");
      }
      *flag = it->value.GetBool();
    }
  }
  return request;
}

std::string RoleReply::ToJson() const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  PutString(w, "token", token);
  w.Key("exit_code");
  w.Int(exit_code);
  PutString(w, "message", message);
  w.Key("epoch");
  w.Uint64(epoch);
  if (!report.empty()) {
    w.Key("report");
    w.RawValue(report.data(), report.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  return buf.GetString();
}

Result<RoleReply> RoleReply::Parse(std::string_view json) {
  RS_ASSIGN_OR_RETURN(rapidjson::Document doc, ParseObject(json, "role reply"));
  RoleReply reply;
  reply.token = doc["token"].GetString();
  auto code = doc.FindMember("exit_code");
  auto message = doc.FindMember("message");
  auto epoch = doc.FindMember("epoch");
  if (code == doc.MemberEnd() || !code->value.IsInt() || message == doc.MemberEnd() ||
      !message->value.IsString() || epoch == doc.MemberEnd() || !epoch->value.IsUint64()) {
    return Status::InvalidArgument("role reply: exit_code, message or epoch missing or mistyped");
  }
  reply.exit_code = code->value.GetInt();
  reply.message = message->value.GetString();
  reply.epoch = epoch->value.GetUint64();
  if (auto it = doc.FindMember("report"); it != doc.MemberEnd()) {
    if (!it->value.IsObject())
      return Status::InvalidArgument("role reply: report is not an object");
    rapidjson::StringBuffer buf;
    Writer w(buf);
    it->value.Accept(w);
    reply.report.assign(buf.GetString(), buf.GetSize());
  }
  return reply;
}

std::string RoleRequestPath(const std::string& state_dir) { return state_dir + "/role.request"; }
std::string RoleReplyPath(const std::string& state_dir) { return state_dir + "/role.reply"; }

Status WriteRoleRequest(const std::string& state_dir, const RoleRequest& request) {
  return WriteFileAtomically(RoleRequestPath(state_dir), request.ToJson(), "role request");
}
Status WriteRoleReply(const std::string& state_dir, const RoleReply& reply) {
  return WriteFileAtomically(RoleReplyPath(state_dir), reply.ToJson(), "role reply");
}

Result<RoleRequest> ReadRoleRequest(const std::string& state_dir) {
  RS_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(RoleRequestPath(state_dir), "role request"));
  return RoleRequest::Parse(text);
}
Result<RoleReply> ReadRoleReply(const std::string& state_dir) {
  RS_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(RoleReplyPath(state_dir), "role reply"));
  return RoleReply::Parse(text);
}

Status RemoveRoleRequest(const std::string& state_dir) {
  return RemoveSmallFile(RoleRequestPath(state_dir), "role request");
}

Result<RoleReply> AskReplsyncd(const std::string& state_dir, const RoleRequest& request,
                               std::chrono::seconds timeout, std::chrono::milliseconds poll) {
  RS_RETURN_IF_ERROR(WriteRoleRequest(state_dir, request));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    Result<RoleReply> reply = ReadRoleReply(state_dir);
    if (reply.ok() && reply->token == request.token) return reply;
    std::this_thread::sleep_for(poll);
  }
  (void)RemoveRoleRequest(state_dir);
  return Status::Unavailable("no answer from replsyncd in " + std::to_string(timeout.count()) +
                             " s (its log says what it does); the request was withdrawn if it "
                             "was not taken");
}

}  // namespace replsync
