// Owners of zstd's compression and decompression contexts (libzstd's C handles), for every user
// in the tree: the receiver and the binlog decoder decompress, the shipper compresses.
// Thread-safety: a context is used by one thread at a time, like the handle it owns.
#pragma once

#include <zstd.h>

#include <memory>

#include "sync/status.h"

namespace replsync {

struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* dctx) const { ZSTD_freeDCtx(dctx); }
};
struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* cctx) const { ZSTD_freeCCtx(cctx); }
};

using ZstdDCtx = std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree>;
using ZstdCCtx = std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree>;

// A new context; Internal ("ZSTD_createDCtx failed") when zstd could not allocate one.
inline Result<ZstdDCtx> NewZstdDCtx() {
  ZstdDCtx dctx(ZSTD_createDCtx());
  if (dctx == nullptr) return Status::Internal("ZSTD_createDCtx failed");
  return dctx;
}
inline Result<ZstdCCtx> NewZstdCCtx() {
  ZstdCCtx cctx(ZSTD_createCCtx());
  if (cctx == nullptr) return Status::Internal("ZSTD_createCCtx failed");
  return cctx;
}

}  // namespace replsync
