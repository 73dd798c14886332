// Content hashes of replicated files: SHA-256 for whole contents (FileChange.content_hash,
// base_hash, the manifest's content_hash) and XXH3-128 for chunks (schemas/files.md,
// "Content" and "Chunking").
//
// SHA-256 comes from OpenSSL's libcrypto (EVP interface, SHA-NI on CPUs that have it); XXH3
// from libxxhash.
// Thread-safety: Sha256 is not thread-safe (one object per thread); the functions and ChunkHash
// are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "sync/status.h"
#include "sync/text.h"

struct evp_md_ctx_st;

namespace replsync {

// Incremental SHA-256. Allocation failure of the OpenSSL context, or a libcrypto without SHA-256,
// aborts the process (like std::bad_alloc would: there is nothing a caller could do about it).
// A moved-from Sha256 may only be destroyed or assigned to.
class Sha256 {
 public:
  static constexpr size_t kSize = 32;

  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Adds `size` bytes at `data` to the message.
  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Returns the digest (kSize raw bytes) of everything added since construction or the previous
  // Final(), and starts a new, empty message.
  std::string Final();

  // The digest (kSize raw bytes) of `data`.
  static std::string Of(std::string_view data);

 private:
  struct CtxDeleter {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, CtxDeleter> ctx_;
};

// The SHA-256 (raw) of the whole content of the open file `fd`, read with pread from offset 0 to
// the end in 1 MiB blocks (the file position is neither used nor moved). IoError naming the
// errno when a read fails; callers add the path with WithContext.
Result<std::string> Sha256OfFile(int fd);

// The XXH3-128 hash of one chunk of content. Stored in chunk lists (high then low 64 bits).
struct ChunkHash {
  uint64_t high = 0;
  uint64_t low = 0;

  // XXH3_128bits of `size` bytes at `data` (seed 0, default secret).
  static ChunkHash Of(const void* data, size_t size);
  static ChunkHash Of(std::string_view data) { return Of(data.data(), data.size()); }

  bool operator==(const ChunkHash&) const = default;
};

}  // namespace replsync

// For unordered containers keyed by chunk hash: the low 64 bits are already uniform.
template <>
struct std::hash<replsync::ChunkHash> {
  size_t operator()(const replsync::ChunkHash& h) const noexcept {
    return static_cast<size_t>(h.low);
  }
};
