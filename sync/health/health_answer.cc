#include "sync/health/health_answer.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace replsync::health {

std::string ReasonJson(std::string_view reason) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("healthy");
  w.Bool(false);
  w.Key("reason");
  w.String(reason.data(), static_cast<rapidjson::SizeType>(reason.size()));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

HealthAnswer ReasonAnswer(int code, std::string_view reason) {
  return {.code = code, .json = ReasonJson(reason)};
}

Status CheckParams(const HealthQuery& query, std::initializer_list<std::string_view> known) {
  for (const auto& [name, value] : query.params) {
    bool listed = false;
    for (std::string_view k : known) listed = listed || k == name;
    if (!listed) {
      std::string list;
      for (std::string_view k : known) list += fmt::format("{}{}", list.empty() ? "" : ", ", k);
      return Status::InvalidArgument(
          fmt::format("unknown parameter {} ({})", name,
                      list.empty() ? "this path takes none" : "known: " + list));
    }
    if (query.params.count(name) > 1) {
      return Status::InvalidArgument(fmt::format("parameter {} is given more than once", name));
    }
  }
  return Status::Ok();
}

Result<std::optional<double>> SecondsParam(const HealthQuery& query, std::string_view name) {
  auto it = query.params.find(std::string(name));
  if (it == query.params.end()) return std::optional<double>();
  const std::string& text = it->second;
  auto bad = [&] {
    return Status::InvalidArgument(
        fmt::format("{}={}: must be a number of seconds 0..86400, e.g. 10 or 2.5", name, text));
  };
  // Digits, then optionally '.' and digits: no sign, exponent, "inf" or "nan" (strtod's).
  double whole = 0;
  double scale = 1;
  bool digits = false;
  bool fraction = false;
  for (char ch : text) {
    if (ch >= '0' && ch <= '9') {
      if (whole > 1e6) return bad();  // far past the limit: stop before precision matters
      digits = true;
      if (fraction) {
        scale /= 10;
        whole += (ch - '0') * scale;
      } else {
        whole = whole * 10 + (ch - '0');
      }
    } else if (ch == '.' && !fraction && digits) {
      fraction = true;
      digits = false;  // a fraction needs digits of its own
    } else {
      return bad();
    }
  }
  if (!digits || whole > 86400) return bad();
  return std::optional<double>(whole);
}

}  // namespace replsync::health
