// CheckRepositoryPath: the one check of a repository path's text, for the manifest and for
// every path a peer names on the wire (TreeRequest, FileResync) before anything is read.
//
// A repository path is relative and '/' separated ("a/b/c"); "" is the repository's root and is
// never a valid path to name (journaling "" again would mean the whole repository). This check
// is about text only: a path that passes is still opened through OpenBeneath (openat2 with
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), which also refuses symbolic links on the way.
// Thread-safety: stateless.
#pragma once

#include <string_view>

#include "sync/status.h"

namespace replsync {

// OK when `path` is not empty, holds no NUL byte, is not absolute, does not end with '/', and
// has no empty ("a//b"), "." or ".." component. Otherwise InvalidArgument with the quoted path
// and what is wrong with it: "path \"../x\" has a '..' component".
Status CheckRepositoryPath(std::string_view path);
// What is wrong with `path` as the words after "path ... " above ("has a '..' component"), or
// "" when nothing is; for callers that word the refusal themselves (the file applier).
std::string_view RepositoryPathProblem(std::string_view path);

}  // namespace replsync
