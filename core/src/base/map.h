/* base/map.h - an intrusive chained hash map keyed by a NUL-terminated
 * string that the node points at (inside the containing struct).
 *
 * Part: base (generic containers). May call: base/hash.h. */
#ifndef LASH_BASE_MAP_H
#define LASH_BASE_MAP_H

#include "base/hash.h"

#include <stddef.h>
#include <stdint.h>

typedef struct lash__mnode {
  struct lash__mnode *next;
  const char *key;
  uint32_t hash;
} lash__mnode;

typedef struct lash__map {
  lash__mnode **b;
  size_t nb; /* power of two, or 0 */
  size_t n;
} lash__map;

/* Sets the node's key (which must outlive it in the map) and its hash. */
static inline void lash__mnode_key(lash__mnode *n, const char *key) {
  n->key = key;
  n->hash = lash__hash(key);
  n->next = NULL;
}

lash__mnode *lash__map_get(const lash__map *m, const char *key, uint32_t h);
/* The node of @p key, hashing it (NULL on an empty map without hashing). */
lash__mnode *lash__map_find(const lash__map *m, const char *key);
/* Inserts n (key and hash set). 0 or LASH_ENOMEM. */
int lash__map_put(lash__map *m, lash__mnode *n);
void lash__map_del(lash__map *m, lash__mnode *n);
/* Takes every node out (the buckets stay) and hands each to @p fn, which
 * may free it. */
void lash__map_clear(lash__map *m, void (*fn)(lash__mnode *n, void *ud),
                     void *ud);
/* Frees the buckets (the nodes are the caller's: clear them first). */
void lash__map_free(lash__map *m);

#endif /* LASH_BASE_MAP_H */
