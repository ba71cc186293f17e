/* cache.c - the rows a write transaction has loaded or written. Writers
 * hold the meta row's lock, so nobody else changes a row between our load
 * and our commit: a second load of the same row (the core asks for a
 * record, then its lease) costs no round trip, and a page of claimable
 * rows brings their leases and tombstones along. */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <poll.h>
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
  size_t i;
  if (s->ncache > 0) {
    for (i = 0; i < s->capcache; i++) {
      free(s->cache[i].ev);
      free(s->cache[i].keys.p); /* (A) */
    }
    memset(s->cache, 0, s->capcache * sizeof *s->cache);
  }
  s->ncache = 0;
}

int pg__cache_event(pg__store *s, pg__ent *e, uint64_t seq, lash_bytes data) {
  if (!e->known) return 0;
  if (e->nev > 0 && e->ev[e->nev - 1].seq + 1 != seq) {
    e->nev = 0; /* not a contiguous tail: forget it */
    return 0;
  }
  if (e->nev == e->evcap) {
    size_t cap = e->evcap ? e->evcap * 2 : 4;
    pg__ev *n = realloc(e->ev, cap * sizeof *n);
    if (n == NULL) return LASH_ENOMEM;
    e->ev = n;
    e->evcap = cap;
  }
  if (pg__keep(s, &data) < 0) return LASH_ENOMEM;
  e->ev[e->nev].seq = seq;
  e->ev[e->nev].data = data;
  e->nev++;
  return 0;
}

/* Writers hold the meta row's lock, so right after our commit the
 * database is exactly what the cache says. Reads may use it until another
 * writer's commit is noticed (its NOTIFY) or a read reaches the database
 * (which may see newer commits: later reads must not go back). Without a
 * listening connection nothing would tell: no pc then. */
/* Moves the open transaction's bytes in front of the kept ones: a walk of
 * this transaction's list only (walking the kept list made every commit
 * cost all earlier ones: half the drain's client time, docs/perf.md). */
static void splice_blobs(pg__store *s) {
  pg__blob *last = s->blobs;
  if (last == NULL) return;
  s->ncblobs++;
  while (last->next != NULL) {
    last = last->next;
    s->ncblobs++;
  }
  last->next = s->cblobs;
  s->cblobs = s->blobs;
  s->blobs = NULL;
}

void pg__pc_retain(pg__store *s) {
  if (s->ncache == 0) {
    pg__pc_drop(s);
    return;
  }
  splice_blobs(s);
  s->pc = 0;
}

/* The kept bytes hold every version a row had since the cache was made;
 * past a bound, the cache's current bytes are copied and the rest freed
 * (only between transactions: nothing handed out is in use then). */
int pg__pc_compact(pg__store *s) {
  pg__blob *old = s->cblobs;
  size_t i, j;
  if (s->depth > 0 || s->blobs != NULL ||
      s->ncblobs <= 2 * s->nclive + PG__COMPACT_MIN)
    return 0;
  for (i = 0; i < s->capcache; i++) {
    pg__ent *e = &s->cache[i];
    lash_bytes id;
    if (e->id == NULL) continue;
    id.data = e->id;
    id.len = e->idlen;
    if (pg__keep(s, &id) < 0 || pg__keep(s, &e->rec) < 0 ||
        pg__keep(s, &e->lease) < 0 || pg__keep(s, &e->tomb) < 0)
      goto oom;
    e->id = id.data;
    for (j = 0; j < e->nev; j++)
      if (pg__keep(s, &e->ev[j].data) < 0) goto oom;
  }
  s->cblobs = NULL;
  s->ncblobs = 0;
  splice_blobs(s);
  s->nclive = s->ncblobs; /* what the rows use: compact at twice that */
  while (old != NULL) {
    pg__blob *n = old->next;
    free(old);
    old = n;
  }
  return 0;
oom: /* the entries point into both lists now: drop them all */
  splice_blobs(s);
  pg__pc_drop(s);
  return LASH_ENOMEM;
}

void pg__pc_off(pg__store *s) {
  s->pc = 0;
}

void pg__pc_keep(pg__store *s) {
  pg__pc_retain(s);
  if (!s->l_ready || s->ncache == 0) return; /* for the next write only */
  s->pc = 1;
  s->pc_synced = 0;
  s->pc_seq = s->meta.change_seq;
}

void pg__pc_drop(pg__store *s) {
  pg__blob **tail = &s->blobs;
  s->pc = 0;
  pg__cache_clear(s);
  if (s->depth > 0) { /* the read's bytes stay valid until it ends */
    while (*tail != NULL)
      tail = &(*tail)->next;
    *tail = s->cblobs;
  } else {
    while (s->cblobs != NULL) {
      pg__blob *n = s->cblobs->next;
      free(s->cblobs);
      s->cblobs = n;
    }
  }
  s->cblobs = NULL;
  s->ncblobs = s->nclive = 0;
}

/* Notifications come in commit order: a foreign one before our own last
 * is a commit our write already saw under the lock; one after it is news
 * the cache does not have. */
int pg__notes(pg__store *s) {
  int self = s->w != NULL ? PQbackendPID(s->w) : 0, any = 0;
  PGnotify *n;
  if (s->l == NULL || !s->l_ready) return 0;
  if (!PQconsumeInput(s->l)) {
    s->l_ready = 0;
    pg__pc_drop(s);
    return 0;
  }
  while ((n = PQnotifies(s->l)) != NULL) {
    if (n->be_pid == self) {
      if (s->pc && strtoull(n->extra, NULL, 10) == s->pc_seq) s->pc_synced = 1;
    } else {
      uint64_t seq = strtoull(n->extra, NULL, 10); /* 0: a relay */
      any = 1;
      if (seq > s->note_seq) s->note_seq = seq;
      if (s->pc && s->pc_synced) pg__pc_off(s);
    }
    PQfreemem(n);
  }
  return any;
}

void pg__pc_check(pg__store *s) {
  struct pollfd p;
  int i;
  if (!s->pc) return;
  /* Wait briefly for our own last NOTIFY: until it is here, what came
   * after our commit cannot be told. */
  for (i = 0; i < 50 && s->pc; i++) {
    if (pg__notes(s)) s->foreign = 1;
    if (!s->pc || s->pc_synced) {
      p.fd = PQsocket(s->l);
      p.events = POLLIN;
      if (!s->pc || poll(&p, 1, 0) <= 0) break;
      continue; /* more is waiting: read it too */
    }
    p.fd = PQsocket(s->l);
    p.events = POLLIN;
    if (poll(&p, 1, 1) < 0) break;
  }
  if (s->pc && !s->pc_synced) pg__pc_off(s);
}

/* Keeps the entries whose `keep` is set (the others' own memory freed):
 * the table is rebuilt, as open addressing cannot delete in place. */
static int cache_rebuild(pg__store *s, const unsigned char *keep) {
  size_t cap = 256, n = 0, i, k = 0;
  pg__ent *t;
  for (i = 0; i < s->capcache; i++)
    if (s->cache[i].id != NULL && keep[k++]) n++;
  while (cap < 2 * (n + 1))
    cap *= 2;
  if ((t = calloc(cap, sizeof *t)) == NULL) return LASH_ENOMEM;
  for (i = k = 0; i < s->capcache; i++) {
    pg__ent *e = &s->cache[i];
    if (e->id == NULL) continue;
    if (keep[k++]) {
      *slot(t, cap, e->id, e->idlen) = *e;
    } else {
      free(e->ev);
      free(e->keys.p);
    }
  }
  free(s->cache);
  s->cache = t;
  s->capcache = cap;
  s->ncache = n;
  return 0;
}

/* With several writers the meta row's xmin is another's at nearly every
 * write, and dropping the whole cache then made each completion load its
 * row again (a round trip per row: three workers drained slower than
 * one). A row's own tuples tell instead: the rows and leases versions we
 * wrote still have our xmin when nobody wrote the row since (an update,
 * a prune or a re-registration makes a new tuple or none). Only live rows
 * whose record and lease this handle wrote are asked for (the ones a
 * later write of ours reads again: its claims); the rest are dropped.
 * The event tail and replay keys follow the record (its last_seq). */
int pg__cache_verify(pg__store *s) {
  pg__buf ids = {0}, rxs = {0}, lxs = {0};
  unsigned char *keep = NULL;
  size_t *at = NULL, i, k, nc = 0;
  PGresult *r = NULL;
  int rc = 0, j;
  char num[24];
  if (s->ncache == 0) return 0;
  keep = calloc(s->ncache, 1);
  at = malloc(s->ncache * sizeof *at);
  if (keep == NULL || at == NULL) goto drop;
  for (i = k = 0; i < s->capcache; i++) {
    const pg__ent *e = &s->cache[i];
    if (e->id == NULL) continue;
    if (e->known && e->rx_ok && e->lx_ok && e->live && e->tomb.data == NULL) {
      snprintf(num, sizeof num, "%u", (unsigned)e->rx);
      if (pg__el_bytes(&ids, nc, e->id, e->idlen) < 0 ||
          pg__el_text(&rxs, nc, num) < 0)
        goto drop;
      snprintf(num, sizeof num, "%u", (unsigned)e->lx);
      if (pg__el_text(&lxs, nc, num) < 0) goto drop;
      keep[k] = 1;
      at[nc++] = k;
    }
    k++;
  }
  if (nc == 0 || nc > PG__VERIFY_MAX) goto drop;
  s->sql.len = 0;
  if (pg__buf_fmt(&s->sql, "EXECUTE lash_verify('%s}', '%s}', '%s}')", ids.p,
                  rxs.p, lxs.p) < 0)
    goto drop;
  if ((rc = pg__run(s, s->sql.p, "checking its cached rows", &r)) < 0)
    goto drop;
  /* the ordinals (1-based) of the rows another writer changed */
  for (j = 0; j < PQntuples(r); j++) {
    uint64_t n = pg__u64(r, j, 0);
    if (n >= 1 && n <= nc) keep[at[n - 1]] = 0;
  }
  PQclear(r);
  if (cache_rebuild(s, keep) < 0) goto drop;
  s->pc = 0; /* the write goes on with the rows kept, as its own */
  goto out;
drop:
  pg__pc_drop(s);
out:
  free(keep);
  free(at);
  pg__buf_free(&ids);
  pg__buf_free(&rxs);
  pg__buf_free(&lxs);
  return rc;
}
