#include "sync/node/bootstrap_request.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

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
  const std::string path = BootstrapRequestPath(state_dir);
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return Status::NotFound("no bootstrap request " + path);
    return Status::IoError("read bootstrap request " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return BootstrapRequest::Parse(text.str());
}

Status RemoveBootstrapRequest(const std::string& state_dir) {
  const std::string path = BootstrapRequestPath(state_dir);
  if (std::remove(path.c_str()) != 0 && errno != ENOENT) {
    return Status::IoError("remove bootstrap request " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace replsync
