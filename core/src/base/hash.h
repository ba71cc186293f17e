/* base/hash.h - the one string hash of the core: 32-bit FNV-1a.
 *
 * Part: base (generic containers). May call: nothing. Header only. */
#ifndef LASH_BASE_HASH_H
#define LASH_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a of @p n bytes at @p p. */
static inline uint32_t lash__hash_n(const void *p, size_t n) {
  const unsigned char *b = p;
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ b[i]) * 16777619u;
  return h;
}

/* FNV-1a of the NUL-terminated @p s (equal to lash__hash_n(s, strlen(s))). */
static inline uint32_t lash__hash(const char *s) {
  uint32_t h = 2166136261u;
  while (*s != '\0')
    h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

#endif /* LASH_BASE_HASH_H */
