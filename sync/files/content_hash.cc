#include "sync/files/content_hash.h"

#include <openssl/evp.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace replsync {

namespace {

// Fetched once: an implicit fetch on every EVP_DigestInit_ex costs a provider lookup.
const EVP_MD* Sha256Md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

[[noreturn]] void DieOpenSsl(const char* what) {
  std::fprintf(stderr, "replsync: OpenSSL %s failed for SHA-256\n", what);
  std::abort();
}

}  // namespace

void Sha256::CtxDeleter::operator()(evp_md_ctx_st* ctx) const { EVP_MD_CTX_free(ctx); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr) DieOpenSsl("EVP_MD_CTX_new");
  if (Sha256Md() == nullptr) DieOpenSsl("EVP_MD_fetch");
  if (EVP_DigestInit_ex(ctx_.get(), Sha256Md(), nullptr) != 1) DieOpenSsl("EVP_DigestInit_ex");
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(const void* data, size_t size) {
  if (size == 0) return;
  if (EVP_DigestUpdate(ctx_.get(), data, size) != 1) DieOpenSsl("EVP_DigestUpdate");
}

std::string Sha256::Final() {
  std::string out(kSize, '\0');
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_.get(), reinterpret_cast<unsigned char*>(out.data()), &len) != 1 ||
      len != kSize) {
    DieOpenSsl("EVP_DigestFinal_ex");
  }
  if (EVP_DigestInit_ex(ctx_.get(), Sha256Md(), nullptr) != 1) DieOpenSsl("EVP_DigestInit_ex");
  return out;
}

std::string Sha256::Of(std::string_view data) {
  std::string out(kSize, '\0');
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len,
                 Sha256Md(), nullptr) != 1 ||
      len != kSize) {
    DieOpenSsl("EVP_Digest");
  }
  return out;
}

Result<std::string> Sha256OfFile(int fd) {
  constexpr size_t kBlock = 1 << 20;
  std::vector<char> buf(kBlock);
  Sha256 sha;
  off_t offset = 0;
  while (true) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("read file content for SHA-256 at offset " + std::to_string(offset) +
                             ": " + std::strerror(errno));
    }
    if (n == 0) break;
    sha.Update(buf.data(), static_cast<size_t>(n));
    offset += n;
  }
  return sha.Final();
}

ChunkHash ChunkHash::Of(const void* data, size_t size) {
  XXH128_hash_t h = XXH3_128bits(data, size);
  return ChunkHash{h.high64, h.low64};
}

}  // namespace replsync
