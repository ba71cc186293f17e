/* cache.c - the rows a write transaction has loaded or written. Writers
 * hold the meta row's lock, so nobody else changes a row between our load
 * and our commit: a second load of the same row (the core asks for a
 * record, then its lease) costs no round trip, and a page of claimable
 * rows brings their leases and tombstones along. */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <stdlib.h>
#include <string.h>

static size_t hash(const void *p, size_t n) {
  const unsigned char *b = p;
  size_t h = 1469598103934665603ULL, i;
  for (i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

static pg__ent *slot(pg__ent *t, size_t cap, const void *id, size_t n) {
  size_t i = hash(id, n) & (cap - 1);
  while (t[i].id != NULL && (t[i].idlen != n || memcmp(t[i].id, id, n) != 0))
    i = (i + 1) & (cap - 1);
  return &t[i];
}

pg__ent *pg__cache_get(pg__store *s, const void *id, size_t idlen) {
  pg__ent *e;
  if (s->capcache == 0) return NULL;
  e = slot(s->cache, s->capcache, id, idlen);
  return e->id != NULL ? e : NULL;
}

int pg__keep(pg__store *s, lash_bytes *b) {
  pg__blob *bl;
  if (b->data == NULL) return 0;
  if ((bl = malloc(sizeof *bl + b->len + 1)) == NULL) return LASH_ENOMEM;
  memcpy(bl->b, b->data, b->len);
  bl->b[b->len] = 0;
  bl->next = s->blobs;
  s->blobs = bl;
  b->data = bl->b;
  return 0;
}

pg__ent *pg__cache_put(pg__store *s, const void *id, size_t idlen) {
  pg__ent *e;
  lash_bytes key;
  if ((s->ncache + 1) * 2 > s->capcache) {
    size_t cap = s->capcache ? s->capcache * 2 : 256, i;
    pg__ent *t = calloc(cap, sizeof *t);
    if (t == NULL) return NULL;
    for (i = 0; i < s->capcache; i++)
      if (s->cache[i].id != NULL)
        *slot(t, cap, s->cache[i].id, s->cache[i].idlen) = s->cache[i];
    free(s->cache);
    s->cache = t;
    s->capcache = cap;
  }
  e = slot(s->cache, s->capcache, id, idlen);
  if (e->id != NULL) return e;
  key.data = id;
  key.len = idlen;
  if (pg__keep(s, &key) < 0) return NULL;
  memset(e, 0, sizeof *e);
  e->id = key.data;
  e->idlen = idlen;
  s->ncache++;
  return e;
}

void pg__cache_clear(pg__store *s) {
  if (s->ncache > 0) memset(s->cache, 0, s->capcache * sizeof *s->cache);
  s->ncache = 0;
}
