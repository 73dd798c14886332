// Looking at repository paths: lstat, list and open below the repository's folder without
// following any symbolic link (sync/files/open_beneath.h), and what an lstat says in the
// manifest's and the journal's terms. Shared by the parts of the file capture; not a public API.
// Thread-safety: stateless functions; safe from any thread.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sync/files/manifest.h"
#include "sync/status.h"
#include "sync/unique_fd.h"

namespace replsync {
namespace pb {
class FileMeta;
}  // namespace pb
}  // namespace replsync

namespace replsync::capture {

int64_t Nanos(const struct timespec& ts);
// `path` is strictly below the folder `dir` ("a/b" is below "a", "ab" is not).
bool Below(const std::string& path, const std::string& dir);
std::string Errno(int err);

// The journal's metadata of an lstat (size for regular files only).
void FillMeta(const struct stat& st, pb::FileMeta* meta);
// A manifest row from an lstat (no content hash, chunks or link target).
ManifestEntry EntryFromStat(const std::string& path, ManifestEntry::Type type,
                            const struct stat& st);
// Inode, size, mtime and ctime are equal: the file was not changed between the two stats.
bool SameFileState(const struct stat& a, const struct stat& b);
// Mode, owner and mtime are equal (a directory's journaled metadata).
bool MetaEqual(const ManifestEntry& e, const struct stat& st);

// Whether OpenBeneath's `why` says the path is not in the repository as a path of its own: it
// is missing, a folder on the way is not a folder, or it goes through a symbolic link (a
// symlinked folder is replicated as the link; what it points at is never read).
bool NotInRepository(const Status& why);

// A repository path looked at without following any symbolic link, on the way or at its end:
// a descriptor of the path itself (O_PATH; a symbolic link's own) and its lstat, taken from that
// descriptor, so that what is read next (a link's target) is the object that was stat'ed.
struct Looked {
  UniqueFd fd;
  struct stat st;
};

// Errors: OpenBeneath's (NotInRepository tells the path is not there), IoError when fstat fails.
Result<Looked> LookBeneath(int root_fd, const std::string& root, const std::string& path);
// The lstat of `path` below `root_fd`, as LookBeneath takes it.
Result<struct stat> LstatBeneath(int root_fd, const std::string& root, const std::string& path);
// Reads a directory's names (without "." and ".."), sorted. NotFound when it is gone (or no
// longer a directory of the repository: replaced by a link, or below one).
Result<std::vector<std::string>> ListDirectory(int root_fd, const std::string& root,
                                               const std::string& path);
// The mtime of `path`'s parent folder in nanoseconds; -1 when it is not a folder any more.
int64_t ParentMtime(int root_fd, const std::string& root, const std::string& path);

}  // namespace replsync::capture
