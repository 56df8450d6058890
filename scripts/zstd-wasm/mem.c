/*
 * The C library functions zstd's decoder calls, for a module without a C library. Plain loops
 * rather than memory.copy/memory.fill: V8 makes those a call into the runtime, which costs more
 * than it saves on the many short copies zstd makes (measured on WAL: no gain, some loss).
 */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *restrict d, const void *restrict s, size_t n) {
  unsigned char *dd = d;
  const unsigned char *ss = s;
  while (n >= 16) {
    uint64_t a, b;
    __builtin_memcpy(&a, ss, 8);
    __builtin_memcpy(&b, ss + 8, 8);
    __builtin_memcpy(dd, &a, 8);
    __builtin_memcpy(dd + 8, &b, 8);
    dd += 16;
    ss += 16;
    n -= 16;
  }
  while (n--) *dd++ = *ss++;
  return d;
}

void *memmove(void *d, const void *s, size_t n) {
  unsigned char *dd = d;
  const unsigned char *ss = s;
  if (dd <= ss || dd >= ss + n) return memcpy(d, s, n);
  while (n--) dd[n] = ss[n];
  return d;
}

void *memset(void *d, int c, size_t n) {
  unsigned char *dd = d;
  while (n--) *dd++ = (unsigned char)c;
  return d;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y) return *x - *y;
  return 0;
}
