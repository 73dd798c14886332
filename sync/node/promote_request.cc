#include "sync/node/promote_request.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

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

std::string PromoteRequest::ToJson() const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  PutString(w, "token", token);
  w.Key("force");
  w.Bool(force);
  w.EndObject();
  return buf.GetString();
}

Result<PromoteRequest> PromoteRequest::Parse(std::string_view json) {
  RS_ASSIGN_OR_RETURN(rapidjson::Document doc, ParseObject(json, "promote request"));
  PromoteRequest request;
  request.token = doc["token"].GetString();
  if (auto it = doc.FindMember("force"); it != doc.MemberEnd()) {
    if (!it->value.IsBool()) {
      return Status::InvalidArgument("promote request: force is not true or false");
    }
    request.force = it->value.GetBool();
  }
  return request;
}

std::string PromoteReply::ToJson() const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  PutString(w, "token", token);
  w.Key("exit_code");
  w.Int(exit_code);
  PutString(w, "message", message);
  w.Key("epoch");
  w.Uint64(epoch);
  w.EndObject();
  return buf.GetString();
}

Result<PromoteReply> PromoteReply::Parse(std::string_view json) {
  RS_ASSIGN_OR_RETURN(rapidjson::Document doc, ParseObject(json, "promote reply"));
  PromoteReply reply;
  reply.token = doc["token"].GetString();
  auto code = doc.FindMember("exit_code");
  auto message = doc.FindMember("message");
  auto epoch = doc.FindMember("epoch");
  if (code == doc.MemberEnd() || !code->value.IsInt() || message == doc.MemberEnd() ||
      !message->value.IsString() || epoch == doc.MemberEnd() || !epoch->value.IsUint64()) {
    return Status::InvalidArgument(
        "promote reply: exit_code, message or epoch missing or mistyped");
  }
  reply.exit_code = code->value.GetInt();
  reply.message = message->value.GetString();
  reply.epoch = epoch->value.GetUint64();
  return reply;
}

std::string PromoteRequestPath(const std::string& state_dir) {
  return state_dir + "/promote.request";
}
std::string PromoteReplyPath(const std::string& state_dir) { return state_dir + "/promote.reply"; }

Status WritePromoteRequest(const std::string& state_dir, const PromoteRequest& request) {
  return WriteFileAtomically(PromoteRequestPath(state_dir), request.ToJson(), "promote request");
}
Status WritePromoteReply(const std::string& state_dir, const PromoteReply& reply) {
  return WriteFileAtomically(PromoteReplyPath(state_dir), reply.ToJson(), "promote reply");
}

Result<PromoteRequest> ReadPromoteRequest(const std::string& state_dir) {
  RS_ASSIGN_OR_RETURN(std::string text,
                      ReadSmallFile(PromoteRequestPath(state_dir), "promote request"));
  return PromoteRequest::Parse(text);
}
Result<PromoteReply> ReadPromoteReply(const std::string& state_dir) {
  RS_ASSIGN_OR_RETURN(std::string text,
                      ReadSmallFile(PromoteReplyPath(state_dir), "promote reply"));
  return PromoteReply::Parse(text);
}

Status RemovePromoteRequest(const std::string& state_dir) {
  return RemoveSmallFile(PromoteRequestPath(state_dir), "promote request");
}

}  // namespace replsync
