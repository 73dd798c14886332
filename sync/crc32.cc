#include "sync/crc32.h"

#include <isa-l/crc.h>

// ISA-L's 128-bit PCLMULQDQ kernel. crc32_gzip_refl() would pick the AVX-512 kernel on CPUs
// that have it, which measured twice as slow here: binlog events are a few hundred bytes, and
// between two of them the decoder runs scalar code, so the 512-bit units keep paying their
// warm-up. The symbol is exported by libisal (multibinary "by8" variant) but not declared in
// its headers.
extern "C" uint32_t crc32_gzip_refl_by8(uint32_t init_crc, const unsigned char* buf,
                                        uint64_t len);

namespace replsync {

namespace {

using CrcFn = uint32_t (*)(uint32_t, const unsigned char*, uint64_t);

CrcFn PickKernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1")) {
    return crc32_gzip_refl_by8;
  }
  return [](uint32_t crc, const unsigned char* buf, uint64_t len) {
    return crc32_gzip_refl_base(crc, const_cast<unsigned char*>(buf), len);
  };
}

const CrcFn kCrc = PickKernel();

}  // namespace

uint32_t Crc32(uint32_t crc, const void* data, size_t size) {
  return kCrc(crc, static_cast<const unsigned char*>(data), size);
}

}  // namespace replsync
