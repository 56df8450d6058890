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

/*
 * Streaming through a ring (buffer-less API, the way ZSTD_decompressStream uses its own buffer):
 * JS copies each run of decoded bytes out while it is still in the CPU cache, instead of decoding
 * a whole segment into memory and copying 16 MiB out of it afterwards. One frame at a time.
 */
static const unsigned char *cursor, *srcEnd;
static size_t blockMax;

/* Start on the frame at src: the ring size it needs (window + 2 blocks, as zstd's own streaming
 * decoder), 0 when streaming does not pay (content no larger than the ring, unknown content size,
 * or src not exactly one frame), or -(zstd error code). */
EXPORT(stream_begin) double stream_begin(ZSTD_DCtx *dctx, const void *src, size_t size) {
  ZSTD_frameHeader h;
  size_t r = ZSTD_getFrameHeader(&h, src, size);
  if (ZSTD_isError(r)) return -(double)ZSTD_getErrorCode(r);
  if (r != 0 || h.frameType != ZSTD_frame || h.frameContentSize == ZSTD_CONTENTSIZE_UNKNOWN) return 0;
  if (ZSTD_findFrameCompressedSize(src, size) != size) return 0;
  size_t ring = ZSTD_decodingBufferSize_min(h.windowSize, h.frameContentSize);
  if (ZSTD_isError(ring) || ring >= h.frameContentSize) return 0;
  r = ZSTD_decompressBegin(dctx);
  if (ZSTD_isError(r)) return -(double)ZSTD_getErrorCode(r);
  cursor = src;
  srcEnd = (const unsigned char *)src + size;
  blockMax = h.blockSizeMax;
  return (double)ring;
}

/* Decode blocks into dst while a whole block still fits in capacity (the rest of the ring): the
 * bytes written, or -(zstd error code). The frame is done when stream_left() is 0. */
EXPORT(stream_run) double stream_run(ZSTD_DCtx *dctx, unsigned char *dst, size_t capacity) {
  size_t produced = 0;
  for (;;) {
    size_t need = ZSTD_nextSrcSizeToDecompress(dctx);
    if (need == 0) break;
    if (need > (size_t)(srcEnd - cursor)) return -(double)ZSTD_error_srcSize_wrong;
    ZSTD_nextInputType_e type = ZSTD_nextInputType(dctx);
    if ((type == ZSTDnit_block || type == ZSTDnit_lastBlock) && capacity - produced < blockMax) break;
    size_t r = ZSTD_decompressContinue(dctx, dst + produced, capacity - produced, cursor, need);
    if (ZSTD_isError(r)) return -(double)ZSTD_getErrorCode(r);
    cursor += need;
    produced += r;
  }
  return (double)produced;
}

/* Input bytes the frame still needs (0 once it is decoded and its checksum verified). */
EXPORT(stream_left) double stream_left(ZSTD_DCtx *dctx) { return (double)ZSTD_nextSrcSizeToDecompress(dctx); }
