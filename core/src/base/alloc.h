/* base/alloc.h - the allocator every core file calls (private).
 *
 * Core allocates only through lash__malloc, lash__calloc, lash__realloc,
 * lash__strdup and frees only through lash__free, so a test can replace the
 * allocator and fail the Nth allocation (libuv's uv_replace_allocator, Lua's
 * debug_realloc in ltests.c).
 *
 * In a normal build these are inline wrappers over libc and cost nothing.
 * In a build with -DLASH_TEST_HOOKS=ON (CMake option LASH_TEST_HOOKS) they
 * are functions in base/testhooks.c that go through a replaceable
 * allocator, whose default is libc with two counters and a failure
 * schedule (lash__alloc_fail). Test code checks LASH_TEST_HOOKS before it
 * uses anything below the #ifdef.
 *
 * Semantics, the same in both builds:
 * - lash__realloc(p, 0) frees p and returns NULL (C leaves it to the
 *   implementation); lash__realloc(NULL, n) is lash__malloc(n).
 * - A failed lash__realloc returns NULL and leaves p allocated.
 * - lash__calloc returns NULL when count * size overflows.
 * - lash__free(NULL) is a no-op.
 * - lash__strdup(NULL) is NULL.
 */
#ifndef LASH_BASE_ALLOC_H
#define LASH_BASE_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef LASH_TEST_HOOKS

static inline void *lash__malloc(size_t size) {
  return malloc(size);
}

static inline void *lash__calloc(size_t count, size_t size) {
  return calloc(count, size);
}

static inline void *lash__realloc(void *ptr, size_t size) {
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, size);
}

static inline void lash__free(void *ptr) {
  free(ptr);
}

static inline char *lash__strdup(const char *s) {
  size_t n;
  char *p;
  if (s == NULL) return NULL;
  n = strlen(s) + 1;
  if ((p = malloc(n)) != NULL) memcpy(p, s, n);
  return p;
}

#else /* LASH_TEST_HOOKS */

void *lash__malloc(size_t size);
void *lash__calloc(size_t count, size_t size);
void *lash__realloc(void *ptr, size_t size);
void lash__free(void *ptr);
char *lash__strdup(const char *s);

/* A replacement allocator. Each function gets @p ud. realloc_fn is called
 * only with ptr != NULL and size != 0, calloc_fn only when count * size
 * does not overflow; free_fn never with NULL. */
typedef struct lash__allocator {
  void *ud;
  void *(*malloc_fn)(void *ud, size_t size);
  void *(*calloc_fn)(void *ud, size_t count, size_t size);
  void *(*realloc_fn)(void *ud, void *ptr, size_t size);
  void (*free_fn)(void *ud, void *ptr);
} lash__allocator;

/* Installs @p a (copied), or with NULL the default (counting) allocator.
 * Install it while nothing allocated through the hooks is live: memory must
 * be freed by the allocator that gave it. Not thread-safe against
 * concurrent allocations.
 * @return 0, or LASH_EINVAL (-1) when a function pointer is NULL. */
int lash__set_allocator(const lash__allocator *a);

/* The default allocator's failure schedule: after @p skip more allocations
 * succeed (malloc, calloc, realloc, strdup each count as one), the next
 * @p count fail (count 0: every later one fails), then they succeed again.
 * skip < 0 turns failures off. lash__alloc_fail(0, 1) fails the next one;
 * an OOM test raises skip from 0 until the operation succeeds. */
void lash__alloc_fail(long skip, long count);

typedef struct lash__alloc_stats {
  uint64_t calls;  /* allocation calls through the default allocator */
  uint64_t failed; /* of them, failed by the schedule */
  int64_t live;    /* allocations not yet freed (realloc moves one) */
} lash__alloc_stats;
/* Counters of the default allocator since the process started. */
void lash__alloc_get_stats(lash__alloc_stats *out);

#endif /* LASH_TEST_HOOKS */

#endif /* LASH_BASE_ALLOC_H */
