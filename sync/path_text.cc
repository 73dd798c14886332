#include "sync/path_text.h"

#include <cstdio>

namespace replsync {

namespace {

void AppendEscaped(std::string_view path, bool escape_quote, std::string* out) {
  for (const char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\' || (escape_quote && c == '"')) {
      *out += '\\';
      *out += c;
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '\t') {
      *out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      *out += buf;
    } else {
      *out += c;
    }
  }
}

}  // namespace

std::string EscapePath(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  AppendEscaped(path, false, &out);
  return out;
}

std::string QuotePath(std::string_view path) {
  std::string out;
  out.reserve(path.size() + 2);
  out += '"';
  AppendEscaped(path, true, &out);
  out += '"';
  return out;
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out(dir);
  out += '/';
  out += name;
  return out;
}

std::string ParentPath(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

}  // namespace replsync
