#include "sync/crc32.h"

#include <isa-l/crc.h>

namespace replsync {

uint32_t Crc32(uint32_t crc, const void* data, size_t size) {
  // ISA-L takes a non-const pointer but does not write through it.
  return crc32_gzip_refl(crc, static_cast<unsigned char*>(const_cast<void*>(data)), size);
}

}  // namespace replsync
