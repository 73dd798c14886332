#include "sync/node/bootstrap_request.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "sync/atomic_file.h"

namespace replsync {

std::string BootstrapRequest::ToJson() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("token");
  w.String(token.data(), static_cast<rapidjson::SizeType>(token.size()));
  w.Key("force");
  w.Bool(force);
  w.Key("resync");
  w.Bool(resync);
  w.EndObject();
  return buf.GetString();
}

Result<BootstrapRequest> BootstrapRequest::Parse(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::InvalidArgument("bootstrap request: not a JSON object");
  }
  BootstrapRequest request;
  auto token = doc.FindMember("token");
  if (token == doc.MemberEnd() || !token->value.IsString() || token->value.GetStringLength() == 0) {
    return Status::InvalidArgument("bootstrap request: no token");
  }
  request.token.assign(token->value.GetString(), token->value.GetStringLength());
  for (auto [key, out] : {std::pair{"force", &request.force}, {"resync", &request.resync}}) {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd()) continue;
    if (!it->value.IsBool()) {
      return Status::InvalidArgument(std::string("bootstrap request: ") + key +
                                     " is not true or false");
    }
    *out = it->value.GetBool();
  }
  return request;
}

std::string BootstrapRequestPath(const std::string& state_dir) {
  return state_dir + "/bootstrap.request";
}

Status WriteBootstrapRequest(const std::string& state_dir, const BootstrapRequest& request) {
  return WriteFileAtomically(BootstrapRequestPath(state_dir), request.ToJson(),
                             "bootstrap request");
}

Result<BootstrapRequest> ReadBootstrapRequest(const std::string& state_dir) {
  RS_ASSIGN_OR_RETURN(std::string text,
                      ReadSmallFile(BootstrapRequestPath(state_dir), "bootstrap request"));
  return BootstrapRequest::Parse(text);
}

Status RemoveBootstrapRequest(const std::string& state_dir) {
  return RemoveSmallFile(BootstrapRequestPath(state_dir), "bootstrap request");
}

}  // namespace replsync
