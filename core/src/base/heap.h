/* base/heap.h - the timer heap: a binary min-heap of intrusive nodes
 * ordered by their due time (libuv's heap-inl.h role). A node knows its
 * index, so it can be removed or re-positioned in O(log n).
 *
 * Part: base (generic containers). May call: nothing but libc. */
#ifndef LASH_BASE_HEAP_H
#define LASH_BASE_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define LASH__HEAP_NONE SIZE_MAX /* idx of a node not on the heap */

typedef struct lash__hnode {
  uint64_t due;
  size_t idx;
} lash__hnode;

typedef struct lash__heap {
  lash__hnode **v;
  size_t n, cap;
} lash__heap;

static inline lash__hnode *lash__heap_top(const lash__heap *h) {
  return h->n > 0 ? h->v[0] : NULL;
}

/* 0 or LASH_ENOMEM. */
int lash__heap_push(lash__heap *h, lash__hnode *n);
/* Takes @p n off (a no-op for a node not on the heap). */
void lash__heap_remove(lash__heap *h, lash__hnode *n);
/* Re-positions @p n after its due time changed. */
void lash__heap_fix(lash__heap *h, lash__hnode *n);
void lash__heap_free(lash__heap *h);

#endif /* LASH_BASE_HEAP_H */
