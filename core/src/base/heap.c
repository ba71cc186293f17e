/* base/heap.c - the timer heap (see heap.h).
 *
 * Part: base (generic containers). May call: libc. */
#include "base/heap.h"

#include "lash.h"

#include <stdlib.h>

static void set(lash__heap *h, size_t i, lash__hnode *n) {
  h->v[i] = n;
  n->idx = i;
}

static void up(lash__heap *h, size_t i) {
  lash__hnode *n = h->v[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!(n->due < h->v[p]->due)) break;
    set(h, i, h->v[p]);
    i = p;
  }
  set(h, i, n);
}

static void down(lash__heap *h, size_t i) {
  lash__hnode *n = h->v[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    lash__hnode *mn = n;
    if (l < h->n && h->v[l]->due < mn->due) {
      m = l;
      mn = h->v[l];
    }
    if (r < h->n && h->v[r]->due < mn->due) {
      m = r;
      mn = h->v[r];
    }
    if (m == i) break;
    set(h, i, mn);
    i = m;
  }
  set(h, i, n);
}

int lash__heap_push(lash__heap *h, lash__hnode *n) {
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    lash__hnode **nv = realloc(h->v, cap * sizeof *nv);
    if (nv == NULL) return LASH_ENOMEM;
    h->v = nv;
    h->cap = cap;
  }
  set(h, h->n++, n);
  up(h, n->idx);
  return 0;
}

void lash__heap_remove(lash__heap *h, lash__hnode *n) {
  size_t i = n->idx;
  lash__hnode *last;
  if (i == LASH__HEAP_NONE) return;
  n->idx = LASH__HEAP_NONE;
  last = h->v[--h->n];
  if (last != n) {
    set(h, i, last);
    up(h, i);
    down(h, last->idx);
  }
}

void lash__heap_fix(lash__heap *h, lash__hnode *n) {
  up(h, n->idx);
  down(h, n->idx);
}

void lash__heap_free(lash__heap *h) {
  free(h->v);
  h->v = NULL;
  h->n = h->cap = 0;
}
