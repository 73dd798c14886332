#include "sync/files/repository_path.h"

#include <string>

#include "sync/path_text.h"

namespace replsync {

std::string_view RepositoryPathProblem(std::string_view path) {
  if (path.empty()) return "is empty";
  if (path.find('\0') != std::string_view::npos) return "contains a NUL byte";
  if (path.front() == '/') return "is absolute";
  if (path.back() == '/') return "ends with '/'";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view component = path.substr(start, end - start);
    if (component.empty()) return "has an empty component";
    if (component == ".") return "has a '.' component";
    if (component == "..") return "has a '..' component";
    start = end + 1;
  }
  return {};
}

Status CheckRepositoryPath(std::string_view path) {
  const std::string_view problem = RepositoryPathProblem(path);
  if (problem.empty()) return Status::Ok();
  return Status::InvalidArgument("path " + QuotePath(path) + " " + std::string(problem));
}

}  // namespace replsync
