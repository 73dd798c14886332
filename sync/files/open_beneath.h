// OpenBeneath: opens a relative path below an open folder (the repository's) without ever
// leaving that folder: not by "..", not by an absolute path, not through a symbolic link.
//
// Why one resolver: openat(root_fd, "a/b/c", O_NOFOLLOW) refuses a symbolic link only as the
// last component; a symlinked folder `a` or `a/b` on the way is still followed, so a repository
// path could read (on the primary) or write (on the secondary) outside the repository. Every
// open of a path of more than one component below the repository's folder goes through here:
// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS (Linux 5.6).
// A single name opened relative to an already open folder (openat(dir_fd, name, O_NOFOLLOW))
// cannot go through a folder and need not use it.
// Thread-safety: stateless; safe from any thread.
#pragma once

#include <string_view>

#include "sync/status.h"
#include "sync/unique_fd.h"

namespace replsync {

// Opens `path`, relative to the folder open at `dir_fd`, with the open(2) `flags` (O_CLOEXEC is
// always added; O_CREAT and O_TMPFILE are not supported). "" opens that folder itself.
// `dir_name` is how messages name the folder ("/srv/repository").
//
// No symbolic link is followed anywhere on the way. A link as the last component is refused
// too, unless `flags` hold O_PATH | O_NOFOLLOW: then the descriptor is the link's own (fstat
// it, readlinkat(fd, "", ...)). A ".." that stays below the folder is allowed.
//
// On success: the descriptor, owned by the caller. Errors, each naming the path and the folder:
// - NotFound: a component does not exist, or one on the way is not a folder (ENOENT, ENOTDIR).
// - InvalidArgument: the path is or goes through a symbolic link (ELOOP), or leaves the folder
//   by ".." or by being absolute (EXDEV), or holds a NUL byte; also O_CREAT / O_TMPFILE.
// - Unsupported: the kernel has no openat2 (ENOSYS: Linux before 5.6).
// - IoError: any other refusal (EACCES, EMFILE, a lookup that kept racing with renames, ...).
Result<UniqueFd> OpenBeneath(int dir_fd, std::string_view dir_name, std::string_view path,
                             int flags);

}  // namespace replsync
