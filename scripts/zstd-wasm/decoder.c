/*
 * pgbk's zstd decoder for WebAssembly (built by build.sh; loaded by src/catalog/zstd.ts).
 * No heap: the caller lays out [decompression context][frame][content] in the imported memory,
 * so nothing here allocates and one context serves every call.
 */
#define ZSTD_STATIC_LINKING_ONLY
#include "zstd.h"
#include "zstd_errors.h"
#include "xxhash.h"

#define EXPORT(name) __attribute__((export_name(#name)))

EXPORT(dctx_size) size_t dctx_size(void) { return ZSTD_estimateDCtxSize(); }

EXPORT(dctx_init) ZSTD_DCtx *dctx_init(void *workspace, size_t size) { return ZSTD_initStaticDCtx(workspace, size); }

/* Content size of all frames in src: -1 when a frame does not declare it, -2 when src is not zstd. */
EXPORT(content_size) double content_size(const void *src, size_t size) {
  unsigned long long n = ZSTD_findDecompressedSize(src, size);
  if (n == ZSTD_CONTENTSIZE_UNKNOWN) return -1;
  if (n == ZSTD_CONTENTSIZE_ERROR) return -2;
  return (double)n;
}

/* Bytes written to dst, or -(zstd error code) (zstd_errors.h); verifies content checksums. */
EXPORT(decompress) double decompress(ZSTD_DCtx *dctx, void *dst, size_t capacity, const void *src, size_t size) {
  size_t r = ZSTD_decompressDCtx(dctx, dst, capacity, src, size);
  if (ZSTD_isError(r)) return -(double)ZSTD_getErrorCode(r);
  return (double)r;
}

/* XXH64 (seed 0), for frames compressed where no native hash is installed. */
EXPORT(xxh64) unsigned long long xxh64(const void *src, size_t size) { return XXH64(src, size, 0); }
