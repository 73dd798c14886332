#include "sync/verify/last_verify.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>
#include <iterator>

#include "sync/atomic_file.h"

namespace replsync::verify {

std::string LastVerify::ToJson() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("at");
  w.Double(at);
  w.Key("seconds");
  w.Double(seconds);
  w.Key("exit_code");
  w.Int(exit_code);
  w.Key("what");
  w.String(what.c_str(), static_cast<rapidjson::SizeType>(what.size()));
  w.Key("tables");
  w.Uint64(tables);
  w.Key("tables_differing");
  w.Uint64(tables_differing);
  w.Key("files_verified");
  w.Bool(files_verified);
  w.Key("paths_differing");
  w.Uint64(paths_differing);
  w.Key("error");
  w.String(error.c_str(), static_cast<rapidjson::SizeType>(error.size()));
  w.EndObject();
  return buf.GetString();
}

std::optional<LastVerify> LastVerify::Parse(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  LastVerify v;
  auto member = [&](const char* name) -> const rapidjson::Value* {
    auto it = doc.FindMember(name);
    return it == doc.MemberEnd() ? nullptr : &it->value;
  };
  if (auto* m = member("at"); m && m->IsNumber()) v.at = m->GetDouble();
  if (auto* m = member("seconds"); m && m->IsNumber()) v.seconds = m->GetDouble();
  if (auto* m = member("exit_code"); m && m->IsInt()) v.exit_code = m->GetInt();
  if (auto* m = member("what"); m && m->IsString()) v.what = m->GetString();
  if (auto* m = member("tables"); m && m->IsUint64()) v.tables = m->GetUint64();
  if (auto* m = member("tables_differing"); m && m->IsUint64()) {
    v.tables_differing = m->GetUint64();
  }
  if (auto* m = member("files_verified"); m && m->IsBool()) v.files_verified = m->GetBool();
  if (auto* m = member("paths_differing"); m && m->IsUint64()) v.paths_differing = m->GetUint64();
  if (auto* m = member("error"); m && m->IsString()) v.error = m->GetString();
  return v;
}

std::string LastVerifyPath(const std::string& state_dir) { return state_dir + "/verify.last"; }

Status WriteLastVerify(const std::string& state_dir, const LastVerify& last) {
  return WriteFileAtomically(LastVerifyPath(state_dir), last.ToJson() + "\n",
                             "verify's last result");
}

std::string ReadLastVerifyText(const std::string& state_dir) {
  std::ifstream in(LastVerifyPath(state_dir));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace replsync::verify
