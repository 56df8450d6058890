#pragma once
#include <stddef.h>
/* No heap: the decompression context is static (ZSTD_initStaticDCtx), so these are never reached. */
static inline void *malloc(size_t n) { (void)n; return NULL; }
static inline void *calloc(size_t n, size_t m) { (void)n; (void)m; return NULL; }
static inline void free(void *p) { (void)p; }
