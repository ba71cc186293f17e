/* mem_backend.c - the in-memory test backend (see mem_backend.h).
 *
 * Eight sorted tables of (key, value) entries, laid out like the rows and
 * indexes a backend keeps. Entries are immutable and reference-counted,
 * tables too: a transaction starts from a snapshot (the tables of the last
 * commit), copies a table on its first write to it, and commit swaps the
 * copies in. So reads never see a writer's uncommitted state, and abort
 * just drops the copies. */
#define _GNU_SOURCE 1
#include "mem_backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  T_RECORDS,
  T_EVENTS,
  T_LEASES,
  T_LIVE,
  T_STATUS,
  T_CHANGES,
  T_TOMBS,
  T_META,
  T_KEYS, /* version 3: replay keys (A): id 0x00 key -> be64(seq) */
  /* ---- suspension and timers (issue 9) ---- */
  T_TIMERS,  /* be64(wake_at) id */
  T_WAITERS, /* awaits 0x00 id */
  /* ---- version 4: the side table (kv) ---- */
  T_KV, /* ns byte, key -> value */
  NT
};

typedef struct ment {
  unsigned refs;
  size_t kn, vn;
  unsigned char b[]; /* key, then value */
} ment;

typedef struct mtab {
  unsigned refs;
  size_t n, cap;
  ment **e;
} mtab;

typedef struct mdb {
  struct mdb *next;
  char *name;
  mtab *t[NT];
  size_t bytes;
  int writing;
  uint32_t format;
} mdb;

static mdb *g_dbs;

typedef struct mstore {
  lash_backend base;
  mdb *db;
  lash_store_opts opts;
} mstore;

struct lash_btxn {
  int write;
  mtab *t[NT];
  int own[NT];
  size_t bytes;
};

#define ENTRY_OVERHEAD 48

/* ------------------------------------------------------------ entries */

static void ent_rel(ment *e) {
  if (e != NULL && --e->refs == 0) free(e);
}

static mtab *tab_new(void) {
  mtab *t = calloc(1, sizeof *t);
  if (t != NULL) t->refs = 1;
  return t;
}

static void tab_rel(mtab *t) {
  size_t i;
  if (t == NULL || --t->refs > 0) return;
  for (i = 0; i < t->n; i++)
    ent_rel(t->e[i]);
  free(t->e);
  free(t);
}

static int key_cmp(const void *a, size_t an, const void *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c != 0) return c;
  return an < bn ? -1 : an > bn;
}

/* The first entry >= key (t->n if none); *found when equal. */
static size_t lower(const mtab *t, const void *k, size_t kn, int *found) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (key_cmp(t->e[mid]->b, t->e[mid]->kn, k, kn) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (found != NULL)
    *found = lo < t->n && key_cmp(t->e[lo]->b, t->e[lo]->kn, k, kn) == 0;
  return lo;
}

static int get(lash_btxn *x, int ti, const void *k, size_t kn, lash_bytes *v) {
  int found;
  size_t i = lower(x->t[ti], k, kn, &found);
  if (!found) return 1;
  v->data = x->t[ti]->e[i]->b + x->t[ti]->e[i]->kn;
  v->len = x->t[ti]->e[i]->vn;
  return 0;
}

/* The transaction's own copy of table ti. */
static mtab *writable(mstore *s, lash_btxn *x, int ti) {
  mtab *c, *o = x->t[ti];
  size_t i;
  if (x->own[ti]) return o;
  if ((c = tab_new()) == NULL) return NULL;
  if (o->n > 0 && (c->e = malloc(o->n * sizeof *c->e)) == NULL) {
    free(c);
    return NULL;
  }
  for (i = 0; i < o->n; i++) {
    c->e[i] = o->e[i];
    c->e[i]->refs++;
  }
  c->n = c->cap = o->n;
  tab_rel(o);
  x->t[ti] = c;
  x->own[ti] = 1;
  (void)s;
  return c;
}

static int oom(mstore *s) {
  return lash_backend_fail(&s->base, LASH_ENOMEM,
                           "out of memory in the test store %s", s->db->name);
}

static int put(mstore *s, lash_btxn *x, int ti, const void *k, size_t kn,
               const void *v, size_t vn) {
  mtab *t = writable(s, x, ti);
  ment *e;
  size_t i, size = kn + vn + ENTRY_OVERHEAD, old = 0;
  int found;
  if (t == NULL) return oom(s);
  i = lower(t, k, kn, &found);
  if (found) old = t->e[i]->kn + t->e[i]->vn + ENTRY_OVERHEAD;
  if (x->bytes - old + size > s->opts.max_bytes)
    return lash_backend_fail(&s->base, LASH_EFULL,
                             "store %s is full (max_bytes %zu bytes) while "
                             "writing: reopen it with a larger max_bytes",
                             s->db->name, s->opts.max_bytes);
  if ((e = malloc(sizeof *e + kn + vn)) == NULL) return oom(s);
  e->refs = 1;
  e->kn = kn;
  e->vn = vn;
  memcpy(e->b, k, kn);
  if (vn > 0) memcpy(e->b + kn, v, vn);
  if (found) {
    ent_rel(t->e[i]);
    t->e[i] = e;
  } else {
    if (t->n == t->cap) {
      size_t cap = t->cap ? t->cap * 2 : 16;
      ment **n = realloc(t->e, cap * sizeof *n);
      if (n == NULL) {
        free(e);
        return oom(s);
      }
      t->e = n;
      t->cap = cap;
    }
    memmove(t->e + i + 1, t->e + i, (t->n - i) * sizeof *t->e);
    t->e[i] = e;
    t->n++;
  }
  x->bytes = x->bytes - old + size;
  return 0;
}

static int del(mstore *s, lash_btxn *x, int ti, const void *k, size_t kn) {
  mtab *t;
  size_t i;
  int found;
  lower(x->t[ti], k, kn, &found);
  if (!found) return 0;
  if ((t = writable(s, x, ti)) == NULL) return oom(s);
  i = lower(t, k, kn, NULL);
  x->bytes -= t->e[i]->kn + t->e[i]->vn + ENTRY_OVERHEAD;
  ent_rel(t->e[i]);
  memmove(t->e + i, t->e + i + 1, (t->n - i - 1) * sizeof *t->e);
  t->n--;
  return 0;
}

/* ---------------------------------------------------------------- keys */

static void be64(unsigned char *p, uint64_t v) {
  int i;
  for (i = 7; i >= 0; i--, v >>= 8)
    p[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char *p) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

/* prefix bytes + id: the live (kind 0x00 id) and status (byte id) keys,
 * and the event key (id 0x00 be64). */
static size_t cat(unsigned char *k, const void *a, size_t an, int sep,
                  const void *b, size_t bn) {
  memcpy(k, a, an);
  if (sep >= 0) k[an++] = (unsigned char)sep;
  memcpy(k + an, b, bn);
  return an + bn;
}

#define KEY_MAX (LASH_ID_MAX + 1 + LASH_ID_MAX + 9 + 16)

/* issue 13 (claim): the live key, kind 0x00 be64(~(prio ^ sign))
 * be64(order) id: the live order (priority desc, creation, id). */
static size_t live_key(unsigned char *k, lash_bytes kind, int64_t prio,
                       uint64_t order, const void *id, size_t n) {
  memcpy(k, kind.data, kind.len);
  k[kind.len] = 0;
  be64(k + kind.len + 1, ~((uint64_t)prio ^ ((uint64_t)1 << 63)));
  be64(k + kind.len + 9, order);
  memcpy(k + kind.len + 17, id, n);
  return kind.len + 17 + n;
}

/* ------------------------------------------------------- open & close */

static const lash_backend_methods mem_methods;

static int open_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int open_fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || errlen == 0) return rc;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return rc;
}

static mdb *db_find(const char *name) {
  mdb *d;
  for (d = g_dbs; d != NULL; d = d->next)
    if (strcmp(d->name, name) == 0) return d;
  return NULL;
}

static int mem_open(const char *target, lash_store_opts *opts, uint32_t format,
                    lash_backend **out, char *err, size_t errlen) {
  mstore *s;
  mdb *d = db_find(target);
  int i;
  *out = NULL;
  if (d == NULL && opts->read_only)
    return open_fail(err, errlen, LASH_EACCES,
                     "store %s does not exist (opened read-only, so it was "
                     "not created)",
                     target);
  if (d != NULL && d->format != format)
    return open_fail(err, errlen, LASH_EFORMAT,
                     "store %s has format version %u, this lash reads "
                     "version %u",
                     target, (unsigned)d->format, (unsigned)format);
  if ((s = calloc(1, sizeof *s)) == NULL) return LASH_ENOMEM;
  if (d == NULL) {
    if ((d = calloc(1, sizeof *d)) == NULL || !(d->name = strdup(target))) {
      free(d);
      free(s);
      return LASH_ENOMEM;
    }
    for (i = 0; i < NT; i++)
      d->t[i] = tab_new(); /* (a failure here is a test bail-out) */
    d->format = format;
    d->next = g_dbs;
    g_dbs = d;
  }
  if (opts->max_bytes == 0) opts->max_bytes = (size_t)1 << 30;
  s->base.m = &mem_methods;
  s->db = d;
  s->opts = *opts;
  *out = &s->base;
  return 0;
}

static void mem_owner_release(lash_backend *b);

static void mem_close(lash_backend *b) {
  mem_owner_release(b);
  free(b);
}

void lash_test_mem_drop(const char *target) {
  mdb **p, *d;
  int i;
  for (p = &g_dbs; (d = *p) != NULL; p = &d->next)
    if (strcmp(d->name, target) == 0) {
      *p = d->next;
      for (i = 0; i < NT; i++)
        tab_rel(d->t[i]);
      free(d->name);
      free(d);
      return;
    }
}

/* -------------------------------------------------------- transactions */

static int mem_begin(lash_backend *b, int mode, lash_btxn **out) {
  mstore *s = (mstore *)b;
  lash_btxn *x;
  int i;
  *out = NULL;
  if (mode == LASH_BTXN_WRITE && s->db->writing)
    return lash_backend_fail(b, LASH_EIO,
                             "test store %s already has a writer (this "
                             "backend does not wait)",
                             s->db->name);
  if ((x = calloc(1, sizeof *x)) == NULL) return oom(s);
  for (i = 0; i < NT; i++) {
    x->t[i] = s->db->t[i];
    x->t[i]->refs++;
  }
  x->bytes = s->db->bytes;
  x->write = mode == LASH_BTXN_WRITE;
  if (x->write) s->db->writing = 1;
  *out = x;
  return 0;
}

static void mem_abort(lash_backend *b, lash_btxn *x) {
  mstore *s = (mstore *)b;
  int i;
  if (x == NULL) return;
  for (i = 0; i < NT; i++)
    tab_rel(x->t[i]);
  if (x->write) s->db->writing = 0;
  free(x);
}

static int mem_commit(lash_backend *b, lash_btxn *x) {
  mstore *s = (mstore *)b;
  int i;
  for (i = 0; i < NT; i++)
    if (x->own[i]) {
      tab_rel(s->db->t[i]);
      s->db->t[i] = x->t[i];
      x->t[i]->refs++;
    }
  s->db->bytes = x->bytes;
  mem_abort(b, x);
  return 0;
}

/* ---------------------------------------------------------------- rows */

static int mem_load(lash_backend *b, lash_btxn *x, const char *id, size_t idlen,
                    unsigned what, lash_brow *out) {
  (void)b;
  memset(out, 0, sizeof *out);
  if (what & LASH_ROW_RECORD) get(x, T_RECORDS, id, idlen, &out->rec);
  if (what & LASH_ROW_LEASE) get(x, T_LEASES, id, idlen, &out->lease);
  if (what & LASH_ROW_TOMB) get(x, T_TOMBS, id, idlen, &out->tomb);
  return 0;
}

static int live(const lash_bindex *i) {
  return i->exists && i->listed;
}

/* ---- suspension and timers (issue 9) ---- */

static size_t timer_key(unsigned char *k, int64_t at, const void *id,
                        size_t n) {
  be64(k, (uint64_t)at);
  memcpy(k + 8, id, n);
  return 8 + n;
}

/* Deletes (add 0) or adds (add 1) the timer and waiter entries of one
 * listing. */
static int susp_entries(mstore *s, lash_btxn *x, const char *id, size_t n,
                        const lash_bindex *at, int add) {
  unsigned char k[KEY_MAX];
  size_t kn;
  int rc = 0;
  if (!at->exists) return 0;
  if (at->wake_at > 0) {
    kn = timer_key(k, at->wake_at, id, n);
    rc = add ? put(s, x, T_TIMERS, k, kn, "", 0) : del(s, x, T_TIMERS, k, kn);
  }
  if (rc == 0 && at->awaits.data != NULL && at->awaits.len <= LASH_ID_MAX) {
    kn = cat(k, at->awaits.data, at->awaits.len, 0, id, n);
    rc = add ? put(s, x, T_WAITERS, k, kn, "", 0) : del(s, x, T_WAITERS, k, kn);
  }
  return rc;
}

/* Deletes (add 0) or adds (add 1) the index entries of one listing. */
static int index_entries(mstore *s, lash_btxn *x, const char *id, size_t n,
                         lash_bytes kind, const lash_bindex *at, int add,
                         int status, int lv, int change) {
  unsigned char k[KEY_MAX], st = (unsigned char)at->status;
  int rc = 0;
  if (status) {
    size_t kn = cat(k, &st, 1, -1, id, n);
    rc = add ? put(s, x, T_STATUS, k, kn, "", 0) : del(s, x, T_STATUS, k, kn);
  }
  if (rc == 0 && lv && live(at)) {
    size_t kn = live_key(k, kind, at->priority, at->order, id, n);
    rc = add ? put(s, x, T_LIVE, k, kn, "", 0) : del(s, x, T_LIVE, k, kn);
  }
  if (rc == 0 && change) {
    be64(k, at->change_seq);
    rc = add ? put(s, x, T_CHANGES, k, 8, id, n) : del(s, x, T_CHANGES, k, 8);
  }
  return rc;
}

static int mem_save(lash_backend *b, lash_btxn *x, const lash_bsave *r) {
  mstore *s = (mstore *)b;
  unsigned char k[KEY_MAX];
  size_t i;
  int rc;
  for (i = 0; i < r->nevents; i++) {
    unsigned char seq[8];
    be64(seq, r->events[i].seq);
    if ((rc = put(s, x, T_EVENTS, k, cat(k, r->id, r->idlen, 0, seq, 8),
                  r->events[i].data.data, r->events[i].data.len)) < 0)
      return rc;
    if (r->events[i].key.data != NULL &&
        (rc = put(s, x, T_KEYS, k,
                  cat(k, r->id, r->idlen, 0, r->events[i].key.data,
                      r->events[i].key.len),
                  seq, 8)) < 0)
      return rc;
  }
  if (r->rec.data != NULL) {
    const lash_bindex *was = &r->before, *now = &r->after;
    int moved = !was->exists || was->status != now->status;
    if ((rc = put(s, x, T_RECORDS, r->id, r->idlen, r->rec.data, r->rec.len)) <
        0)
      return rc;
    if (was->exists &&
        (rc = index_entries(s, x, r->id, r->idlen, r->kind, was, 0, moved,
                            live(was) != live(now),
                            was->change_seq != now->change_seq)) < 0)
      return rc;
    if ((rc = index_entries(s, x, r->id, r->idlen, r->kind, now, 1, moved,
                            live(was) != live(now), 1)) < 0)
      return rc;
    if ((rc = susp_entries(s, x, r->id, r->idlen, was, 0)) < 0 ||
        (rc = susp_entries(s, x, r->id, r->idlen, now, 1)) < 0)
      return rc;
  }
  if (r->lease.data != NULL && (rc = put(s, x, T_LEASES, r->id, r->idlen,
                                         r->lease.data, r->lease.len)) < 0)
    return rc;
  if (r->drop_tomb) {
    be64(k, r->tomb_change_seq);
    if ((rc = del(s, x, T_TOMBS, r->id, r->idlen)) < 0 ||
        (rc = del(s, x, T_CHANGES, k, 8)) < 0)
      return rc;
  }
  return 0;
}

static int mem_remove(lash_backend *b, lash_btxn *x, const lash_bremove *r,
                      uint64_t *events) {
  mstore *s = (mstore *)b;
  unsigned char k[KEY_MAX];
  size_t kn = cat(k, r->id, r->idlen, 0, "", 0);
  int rc;
  *events = 0;
  for (;;) { /* replay keys (A): the id's key index entries */
    size_t i = lower(x->t[T_KEYS], k, kn, NULL);
    const ment *e = i < x->t[T_KEYS]->n ? x->t[T_KEYS]->e[i] : NULL;
    if (e == NULL || e->kn <= kn || memcmp(e->b, k, kn) != 0) break;
    if ((rc = del(s, x, T_KEYS, e->b, e->kn)) < 0) return rc;
  }
  for (;;) { /* the events of the id: its prefix, id 0x00 */
    size_t i = lower(x->t[T_EVENTS], k, kn, NULL);
    const ment *e = i < x->t[T_EVENTS]->n ? x->t[T_EVENTS]->e[i] : NULL;
    if (e == NULL || e->kn != kn + 8 || memcmp(e->b, k, kn) != 0) break;
    if ((rc = del(s, x, T_EVENTS, e->b, e->kn)) < 0) return rc;
    (*events)++;
  }
  if ((rc = del(s, x, T_LEASES, r->id, r->idlen)) < 0 ||
      (rc = del(s, x, T_RECORDS, r->id, r->idlen)) < 0 ||
      (rc = index_entries(s, x, r->id, r->idlen, r->kind, &r->before, 0, 1, 1,
                          1)) < 0 ||
      (rc = susp_entries(s, x, r->id, r->idlen, &r->before, 0)) < 0 ||
      (rc = put(s, x, T_TOMBS, r->id, r->idlen, r->tomb.data, r->tomb.len)) < 0)
    return rc;
  be64(k, r->tomb_change_seq);
  return put(s, x, T_CHANGES, k, 8, r->id, r->idlen);
}

/* ---------------------------------------------------------------- meta */

static int mem_meta_get(lash_backend *b, lash_btxn *x, lash_bmeta *out) {
  lash_bytes v;
  int i;
  (void)b;
  memset(out, 0, sizeof *out);
  if (get(x, T_META, "m", 1, &v) != 0) return 0;
  out->change_seq = get_be64(v.data);
  for (i = 1; i <= LASH_STATUS_COUNT; i++)
    out->counts[i] = get_be64((const unsigned char *)v.data + 8 * i);
  if (v.len >= 8 * (LASH_STATUS_COUNT + 2))
    out->suspended =
        get_be64((const unsigned char *)v.data + 8 * (LASH_STATUS_COUNT + 1));
  return 0;
}

static int mem_meta_put(lash_backend *b, lash_btxn *x, const lash_bmeta *m) {
  unsigned char v[8 * (LASH_STATUS_COUNT + 2)];
  int i;
  be64(v, m->change_seq);
  for (i = 1; i <= LASH_STATUS_COUNT; i++)
    be64(v + 8 * i, m->counts[i]);
  be64(v + 8 * (LASH_STATUS_COUNT + 1), m->suspended);
  return put((mstore *)b, x, T_META, "m", 1, v, sizeof v);
}

static int mem_change_seq(lash_backend *b, uint64_t *out) {
  mstore *s = (mstore *)b;
  lash_btxn x;
  lash_bmeta m;
  memset(&x, 0, sizeof x);
  memcpy(x.t, s->db->t, sizeof x.t);
  mem_meta_get(b, &x, &m);
  *out = m.change_seq;
  return 0;
}

/* --------------------------------------------------------------- scans */

static int mem_scan(lash_backend *b, lash_btxn *x, const lash_bscan *q,
                    lash_bscan_fn fn, void *ud) {
  unsigned char pre[KEY_MAX], start[KEY_MAX];
  size_t pn = 0, sn, i;
  int ti, rc = 0;
  mtab *t;
  (void)b;
  switch (q->what) {
  case LASH_SCAN_EVENTS:
    ti = T_EVENTS;
    pn = cat(pre, q->id, q->idlen, 0, "", 0);
    break;
  case LASH_SCAN_LIVE:
    ti = T_LIVE;
    pn = cat(pre, q->kind.data, q->kind.len, 0, "", 0);
    break;
  case LASH_SCAN_STATUS:
    ti = T_STATUS;
    pre[0] = (unsigned char)q->status;
    pn = 1;
    break;
  case LASH_SCAN_ROWS:
    ti = T_RECORDS;
    break;
  case LASH_SCAN_CHANGES:
    ti = T_CHANGES;
    break;
  case LASH_SCAN_TOMBS:
    ti = T_TOMBS;
    break;
  case LASH_SCAN_LEASES:
    ti = T_LEASES;
    break;
  case LASH_SCAN_TIMERS:
    ti = T_TIMERS;
    break;
  case LASH_SCAN_WAITERS:
    ti = T_WAITERS;
    pn = cat(pre, q->id, q->idlen, 0, "", 0);
    break;
  case LASH_SCAN_KV: /* (kv) */
    ti = T_KV;
    if (q->ns < 1 || q->ns > 255 || q->idlen > LASH_KV_KEY_MAX ||
        (q->after != NULL && q->afterlen > LASH_KV_KEY_MAX))
      return lash_backend_fail(b, LASH_EINVAL,
                               "scan: an invalid side table range");
    pre[0] = (unsigned char)q->ns;
    if (q->idlen > 0) memcpy(pre + 1, q->id, q->idlen);
    pn = 1 + q->idlen;
    break;
  default:
    return lash_backend_fail(b, LASH_EINVAL, "scan: unknown scan %d", q->what);
  }
  memcpy(start, pre, pn);
  sn = pn;
  if (q->what == LASH_SCAN_EVENTS || q->what == LASH_SCAN_CHANGES) {
    be64(start + sn, q->after_seq + 1);
    sn += 8;
  } else if (q->what == LASH_SCAN_LIVE) {
    if (q->after != NULL && q->afterlen > 0 && !(q->flags & LASH_SCAN_LAST))
      sn = live_key(start, q->kind, q->after_prio, q->after_seq, q->after,
                    q->afterlen);
  } else if (q->what == LASH_SCAN_KV) {
    /* the key after is a whole key: from it when inside the prefix range */
    if (q->after != NULL && q->afterlen > q->idlen &&
        !(q->flags & LASH_SCAN_LAST) &&
        (q->idlen == 0 || memcmp(q->after, q->id, q->idlen) == 0)) {
      memcpy(start + 1, q->after, q->afterlen);
      sn = 1 + q->afterlen;
    }
  } else if (q->after != NULL && q->what != LASH_SCAN_TIMERS &&
             !(q->flags & LASH_SCAN_LAST)) {
    memcpy(start + sn, q->after, q->afterlen);
    sn += q->afterlen;
  }
  t = x->t[ti];
  if (q->flags & LASH_SCAN_LAST) {
    if (pn > 0) {
      pre[pn - 1]++;
      i = lower(t, pre, pn, NULL);
      pre[pn - 1]--;
    } else {
      i = t->n;
    }
    if (i == 0) return 0;
    i--;
  } else {
    i = lower(t, start, sn, NULL);
  }
  for (; i < x->t[ti]->n; i++) {
    const ment *e = x->t[ti]->e[i];
    lash_bitem it;
    lash_bytes v = {e->b + e->kn, e->vn};
    if (e->kn < pn || memcmp(e->b, pre, pn) != 0) break;
    memset(&it, 0, sizeof it);
    it.id = (const char *)e->b + pn;
    it.idlen = e->kn - pn;
    if (q->what == LASH_SCAN_KV) {
      it.id = (const char *)e->b + 1;
      it.idlen = e->kn - 1;
      it.rec = v;
    } else if (q->what == LASH_SCAN_EVENTS) {
      it.id = q->id;
      it.idlen = q->idlen;
      it.seq = get_be64(e->b + pn);
      it.ev = v;
    } else if (q->what == LASH_SCAN_CHANGES) {
      it.seq = get_be64(e->b);
      it.id = v.data;
      it.idlen = v.len;
      if (get(x, T_RECORDS, it.id, it.idlen, &it.rec) != 0)
        get(x, T_TOMBS, it.id, it.idlen, &it.tomb);
    } else if (q->what == LASH_SCAN_TIMERS) {
      if (e->kn < 9) break;
      it.seq = get_be64(e->b);
      it.id = (const char *)e->b + 8;
      it.idlen = e->kn - 8;
      if (!(q->flags & LASH_SCAN_KEYS) &&
          get(x, T_RECORDS, it.id, it.idlen, &it.rec) != 0)
        return lash_backend_fail(b, LASH_ECORRUPT,
                                 "the timer index names process %.*s, which "
                                 "has no record",
                                 (int)it.idlen, it.id);
    } else if (ti == T_LIVE || ti == T_STATUS || ti == T_WAITERS) {
      if (ti == T_LIVE) {
        if (e->kn < pn + 17) break;
        if (sn > pn &&
            key_cmp((const char *)e->b, e->kn, (const char *)start, sn) <= 0)
          continue;
        it.prio = (int64_t)(~get_be64(e->b + pn) ^ ((uint64_t)1 << 63));
        it.order = get_be64(e->b + pn + 8);
        it.id = (const char *)e->b + pn + 16;
        it.idlen = e->kn - pn - 16;
      }
      if (!(q->flags & LASH_SCAN_KEYS) &&
          get(x, T_RECORDS, it.id, it.idlen, &it.rec) != 0)
        return lash_backend_fail(b, LASH_ECORRUPT,
                                 "an index names process %.*s, which has no "
                                 "record",
                                 (int)it.idlen, it.id);
    } else if (ti == T_RECORDS) {
      it.rec = v;
    } else if (ti == T_TOMBS) {
      it.tomb = v;
    } else {
      it.lease = v;
    }
    if (q->after != NULL && q->afterlen > 0 && ti != T_EVENTS &&
        ti != T_CHANGES && ti != T_TIMERS && ti != T_LIVE &&
        !(q->flags & LASH_SCAN_LAST) &&
        key_cmp(it.id, it.idlen, q->after, q->afterlen) <= 0)
      continue;
    if ((rc = fn(ud, &it)) != 0 || (q->flags & LASH_SCAN_LAST)) break;
  }
  return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------ the rest */

static int mem_wake_source(lash_backend *b, lash_wake_source *out) {
  (void)b;
  out->kind = LASH_WAKE_NONE; /* one process: the hub sees every write */
  return 0;
}

static int mem_stats(lash_backend *b, lash_btxn *x, lash_bstats *out) {
  mstore *s = (mstore *)b;
  out->tombstones = x->t[T_TOMBS]->n;
  out->bytes_used = x->bytes;
  out->bytes_data = x->bytes;
  out->bytes_available = s->opts.max_bytes - x->bytes;
  return 0;
}

/* --------------------------------------------------------------- audit */

static void audit_keys(lash_btxn *x, const lash_baudit *a); /* (A) */

/* Every row is listed where its record says, and every listing names a
 * row that says so (the change index may also name tombstones). */
static int mem_audit(lash_backend *b, lash_btxn *x, const lash_baudit *a) {
  unsigned char k[KEY_MAX];
  char line[512];
  lash_bytes v;
  lash_bdesc d;
  size_t i;
  int ti;
  (void)b;
  for (i = 0; i < x->t[T_RECORDS]->n; i++) {
    const ment *e = x->t[T_RECORDS]->e[i];
    lash_bytes rec = {e->b + e->kn, e->vn};
    unsigned char st;
    if (a->describe(a->ud, rec, &d) < 0 || d.kind.len > LASH_NAME_MAX) continue;
    st = (unsigned char)d.index.status;
    be64(k, d.index.change_seq);
    if (get(x, T_STATUS, k + 8, cat(k + 8, &st, 1, -1, e->b, e->kn), &v) ||
        (live(&d.index) && get(x, T_LIVE, k + 8,
                               live_key(k + 8, d.kind, d.index.priority,
                                        d.index.order, e->b, e->kn),
                               &v)) ||
        get(x, T_CHANGES, k, 8, &v) || v.len != e->kn ||
        memcmp(v.data, e->b, e->kn) != 0 ||
        (d.index.wake_at > 0 &&
         get(x, T_TIMERS, k + 8, timer_key(k + 8, d.index.wake_at, e->b, e->kn),
             &v)) ||
        (d.index.awaits.data != NULL &&
         get(x, T_WAITERS, k + 8,
             cat(k + 8, d.index.awaits.data, d.index.awaits.len, 0, e->b,
                 e->kn),
             &v))) {
      snprintf(line, sizeof line, "process %.*s is missing from an index",
               (int)e->kn, (const char *)e->b);
      a->problem(a->ud, line);
    }
  }
  for (ti = T_LIVE; ti <= T_STATUS; ti++)
    for (i = 0; i < x->t[ti]->n; i++) {
      const ment *e = x->t[ti]->e[i];
      const unsigned char *sep = ti == T_LIVE ? memchr(e->b, 0, e->kn) : e->b;
      size_t off = sep != NULL ? (size_t)(sep - e->b) + 1 : e->kn;
      int bad;
      if (ti == T_LIVE) off = off + 16 <= e->kn ? off + 16 : e->kn;
      bad = get(x, T_RECORDS, e->b + off, e->kn - off, &v) != 0 ||
            a->describe(a->ud, v, &d) < 0 ||
            (ti == T_STATUS ? d.index.status != e->b[0] : !live(&d.index));
      if (bad) {
        snprintf(line, sizeof line, "the %s index lists %.*s wrongly",
                 ti == T_LIVE ? "live" : "status", (int)(e->kn - off),
                 (const char *)e->b + off);
        a->problem(a->ud, line);
      }
    }
  audit_keys(x, a); /* (A) */
  /* ---- suspension and timers: each entry names a row that says so ---- */
  for (ti = T_TIMERS; ti <= T_WAITERS; ti++)
    for (i = 0; i < x->t[ti]->n; i++) {
      const ment *e = x->t[ti]->e[i];
      const unsigned char *sep =
          ti == T_TIMERS ? e->b + 7 : memchr(e->b, 0, e->kn);
      size_t off = sep != NULL ? (size_t)(sep - e->b) + 1 : e->kn;
      int bad = e->kn <= off ||
                get(x, T_RECORDS, e->b + off, e->kn - off, &v) != 0 ||
                a->describe(a->ud, v, &d) < 0;
      if (!bad && ti == T_TIMERS)
        bad = (uint64_t)d.index.wake_at != get_be64(e->b);
      if (!bad && ti == T_WAITERS)
        bad = d.index.awaits.data == NULL || d.index.awaits.len != off - 1 ||
              memcmp(d.index.awaits.data, e->b, off - 1) != 0;
      if (bad) {
        snprintf(line, sizeof line, "the %s index lists %.*s wrongly",
                 ti == T_TIMERS ? "timer" : "waiter", (int)(e->kn - off),
                 (const char *)e->b + off);
        a->problem(a->ud, line);
      }
    }
  return 0;
}

/* ------------------------------------------- replay keys (A) */

static int mem_key_get(lash_backend *b, lash_btxn *x, const char *id,
                       size_t idlen, const char *key, size_t keylen,
                       uint64_t *seq, lash_bytes *ev) {
  unsigned char k[KEY_MAX];
  lash_bytes v, e;
  *seq = 0;
  if (keylen == 0 || keylen > LASH_NAME_MAX ||
      get(x, T_KEYS, k, cat(k, id, idlen, 0, key, keylen), &v) != 0)
    return LASH_ENOENT;
  *seq = get_be64(v.data);
  if (ev == NULL) return 0;
  if (get(x, T_EVENTS, k, cat(k, id, idlen, 0, v.data, 8), &e) != 0)
    return lash_backend_fail(b, LASH_ECORRUPT,
                             "the key index of process %.*s names a missing "
                             "event",
                             (int)idlen, id);
  *ev = e;
  return 0;
}

/* Each key index entry names an event of its row carrying that key. */
static void audit_keys(lash_btxn *x, const lash_baudit *a) {
  unsigned char k[KEY_MAX];
  char line[512];
  size_t i;
  for (i = 0; i < x->t[T_KEYS]->n; i++) {
    const ment *e = x->t[T_KEYS]->e[i];
    const unsigned char *nul = memchr(e->b, 0, e->kn);
    size_t idlen = nul != NULL ? (size_t)(nul - e->b) : 0;
    lash_bytes ev, key;
    int bad = nul == NULL || e->vn != 8 ||
              get(x, T_EVENTS, k, cat(k, e->b, idlen, 0, e->b + e->kn, 8),
                  &ev) != 0 ||
              a->event_key(a->ud, ev, &key) < 0 || key.data == NULL ||
              key.len != e->kn - idlen - 1 ||
              memcmp(key.data, nul + 1, key.len) != 0;
    if (bad) {
      snprintf(line, sizeof line,
               "the key index entry %.*s names no event with that key",
               (int)e->kn, (const char *)e->b);
      a->problem(a->ud, line);
    }
  }
}

/* ------------------------------------------- the side table (kv) */

static int mem_kv_get(lash_backend *b, lash_btxn *x, int ns, const char *key,
                      size_t keylen, lash_bytes *val) {
  unsigned char k[1 + LASH_KV_KEY_MAX];
  (void)b;
  val->data = NULL;
  val->len = 0;
  if (keylen == 0 || keylen > LASH_KV_KEY_MAX) return LASH_ENOENT;
  k[0] = (unsigned char)ns;
  memcpy(k + 1, key, keylen);
  return get(x, T_KV, k, keylen + 1, val) == 0 ? 0 : LASH_ENOENT;
}

static int mem_kv_put(lash_backend *b, lash_btxn *x, int ns, const char *key,
                      size_t keylen, lash_bytes val) {
  mstore *s = (mstore *)b;
  unsigned char k[1 + LASH_KV_KEY_MAX];
  if (!x->write || keylen == 0 || keylen > LASH_KV_KEY_MAX)
    return lash_backend_fail(b, LASH_EINVAL,
                             "the side table of %s: a put outside a write or "
                             "a key of %zu bytes",
                             s->db->name, keylen);
  k[0] = (unsigned char)ns;
  memcpy(k + 1, key, keylen);
  if (val.data == NULL) return del(s, x, T_KV, k, keylen + 1);
  return put(s, x, T_KV, k, keylen + 1, val.data, val.len);
}

/* ------------------------------------------------------ owner liveness */

/* Pairs held (by a handle) or held once and released: a process-wide set;
 * a release (or close) stands for the holder's death. */
typedef struct mowner {
  struct mowner *next;
  char *key;            /* owner NUL incarnation, as "owner\x01incarnation" */
  const mstore *holder; /* NULL: gone */
} mowner;

static mowner *g_owners;

static mowner *owner_find(const char *owner, const char *inc) {
  mowner *o;
  size_t n = strlen(owner);
  for (o = g_owners; o != NULL; o = o->next)
    if (strncmp(o->key, owner, n) == 0 && o->key[n] == '\1' &&
        strcmp(o->key + n + 1, inc) == 0)
      return o;
  return NULL;
}

static void mem_owner_release(lash_backend *b) {
  mowner *o;
  for (o = g_owners; o != NULL; o = o->next)
    if (o->holder == (const mstore *)b) o->holder = NULL;
}

static int mem_owner_hold(lash_backend *b, const char *owner, const char *inc) {
  mowner *o = owner_find(owner, inc);
  if (o != NULL && o->holder != NULL) return LASH_EBUSY;
  if (o == NULL) {
    size_t n = strlen(owner), m = strlen(inc);
    if ((o = calloc(1, sizeof *o)) == NULL ||
        (o->key = malloc(n + m + 2)) == NULL) {
      free(o);
      return LASH_ENOMEM;
    }
    memcpy(o->key, owner, n);
    o->key[n] = '\1';
    memcpy(o->key + n + 1, inc, m + 1);
    o->next = g_owners;
    g_owners = o;
  }
  o->holder = (const mstore *)b;
  return 0;
}

static int mem_owner_alive(lash_backend *b, const char *owner,
                           const char *inc) {
  mowner *o = owner_find(owner, inc);
  (void)b;
  if (o == NULL) return -1;
  return o->holder != NULL ? 1 : 0;
}

static const lash_backend_methods mem_methods = {
    LASH_BACKEND_VERSION,
    "mem",
    mem_open,
    mem_close,
    mem_begin,
    mem_commit,
    mem_abort,
    mem_load,
    mem_save,
    mem_remove,
    mem_meta_get,
    mem_meta_put,
    mem_change_seq,
    mem_scan,
    mem_wake_source,
    NULL, /* wake_consume */
    mem_stats,
    mem_audit,
    NULL, /* now: the wall clock */
    mem_owner_hold,
    mem_owner_release,
    mem_owner_alive,
    NULL, /* grow: a full store stays full */
    /* version 3: replay keys (A) */
    mem_key_get,
    /* version 4: the side table (kv) */
    mem_kv_get,
    mem_kv_put,
};

const lash_backend_methods *lash_test_mem_backend(void) {
  return &mem_methods;
}
