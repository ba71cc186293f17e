/* concurrency.c - keyed concurrency (issue 13, claim): at most
 * concurrency_limit rows of one concurrency key run at once, across every
 * worker and host, enforced in the transaction that starts them.
 *
 * The side table holds per key:
 *   LASH_KV_CONC_COUNT  KEY -> {n = rows holding a slot, h = the queue's
 *                              head, g = consumed entries not yet deleted}
 *   LASH_KV_CONC        KEY 0x00 be64(~(prio ^ sign)) be64(order) -> {id}
 * so the waiters of a key come out highest priority first, then in
 * creation order. A row's record says where it stands (conc_state):
 * HOLDS a slot (from its start until it ends, is suspended, or waits for a
 * retry; a crashed owner's row keeps it until it is taken over, then the
 * slot moves with the row), or WAITS (off the worklist, in its key's
 * queue, never rescanned). When a slot frees, the commit hands it to the
 * first waiter after the head (lash__conc_handoff, before the commit, like
 * the wake of suspended rows): that row holds the slot and is listed
 * again, and the head moves past its entry (see count_put for why the
 * entry stays a while). */
#include "registry-int.h"

#include "../base/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONC_KEY_MAX (LASH_NAME_MAX + 17)

static int conc_limit(const lash__rec *r) {
  return r->conc_limit > 0 ? r->conc_limit : 1;
}

/* ---- side table values of one number (also rate.c's) ---- */

int lash__kv_get_num(lash_txn *t, int ns, const char *key, size_t kn,
                     const char *field, int64_t *v, const char *what) {
  lash_store *s = t->s;
  lash_bytes b;
  msgpack_object o;
  const msgpack_object *f;
  int rc;
  *v = 0;
  rc = lash__kv_get(s, t, ns, key, kn, &b);
  if (rc == LASH_ENOENT) return 1;
  if (rc < 0) return rc;
  rc = lash__mp_unpack(b.data, b.len, &s->zone, &o);
  if (rc == 0 &&
      (o.type != MSGPACK_OBJECT_MAP ||
       (f = lash__mp_map_get(&o, field)) == NULL || lash__mp_i64(f, v) < 0))
    rc = LASH_ECORRUPT;
  msgpack_zone_clear(&s->zone);
  if (rc < 0)
    return lash__fail(s, LASH_ECORRUPT,
                      "%s %.*s is damaged in the side table (run lash check)",
                      what, (int)kn, key);
  return 0;
}

int lash__kv_put_num(lash_txn *t, int ns, const char *key, size_t kn,
                     const char *field, int64_t v, int del_zero) {
  lash_store *s = t->s;
  msgpack_packer pk;
  size_t fn = strlen(field);
  int e = 0;
  if (v == 0 && del_zero) return lash__kv_put(s, t, ns, key, kn, NULL, 0);
  lash__packer(&pk, &s->vbuf);
  e |= msgpack_pack_map(&pk, 1);
  e |= msgpack_pack_str(&pk, fn);
  e |= msgpack_pack_str_body(&pk, field, fn);
  e |= msgpack_pack_int64(&pk, v);
  if (e != 0)
    return lash__fail(s, LASH_ENOMEM, "out of memory writing the side table");
  return lash__kv_put(s, t, ns, key, kn, s->vbuf.p, s->vbuf.len);
}

/* A key's count entry (namespace LASH_KV_CONC_COUNT, so that the counts
 * of all keys sit together and a commit handing many keys their next rows
 * writes a few shared pages): n rows hold a slot; the queue entries at or
 * before head h are consumed (handed a slot, or gone) and g of them are not
 * yet deleted. Handing a slot moves h past the entry instead of deleting
 * it (the entry's page stays clean); every GC_EVERY moves, or when the
 * queue runs empty, the consumed entries go together. Every entry at or
 * before h is consumed: a row queued at or before h moves h back before it.
 * A store written before this layout kept {n} under the key itself in
 * LASH_KV_CONC; such an entry moves to the new place when first read. */
#define GC_EVERY 64

typedef struct conc_count {
  uint64_t n, g;
  int has_h;
  unsigned char h[16];
} conc_count;

static int count_decode(lash_store *s, lash_bytes b, conc_count *c) {
  msgpack_object o;
  const msgpack_object *f;
  int64_t v;
  lash__sv h;
  int rc = lash__mp_unpack(b.data, b.len, &s->zone, &o);
  memset(c, 0, sizeof *c);
  if (rc == 0 && (o.type != MSGPACK_OBJECT_MAP ||
                  (f = lash__mp_map_get(&o, "n")) == NULL ||
                  lash__mp_i64(f, &v) < 0 || v < 0))
    rc = LASH_ECORRUPT;
  if (rc == 0) c->n = (uint64_t)v;
  if (rc == 0 && (f = lash__mp_map_get(&o, "g")) != NULL)
    rc = lash__mp_i64(f, &v) < 0 || v < 0 ? LASH_ECORRUPT
                                          : (c->g = (uint64_t)v, 0);
  if (rc == 0 && (f = lash__mp_map_get(&o, "h")) != NULL) {
    if (lash__mp_bin(f, &h) < 0 || h.n != sizeof c->h)
      rc = LASH_ECORRUPT;
    else {
      memcpy(c->h, h.p, sizeof c->h);
      c->has_h = 1;
    }
  }
  msgpack_zone_clear(&s->zone);
  return rc;
}

static int count_damaged(lash_store *s, lash__sv k) {
  return lash__fail(s, LASH_ECORRUPT,
                    "the slots of concurrency key %.*s are damaged in the "
                    "side table (run lash check)",
                    (int)k.n, k.p);
}

static int count_put(lash_txn *t, lash__sv k, const conc_count *c);

/* The count entry of key k (all zero when absent). */
static int count_get(lash_txn *t, lash__sv k, conc_count *c) {
  lash_store *s = t->s;
  lash_bytes b;
  int rc;
  memset(c, 0, sizeof *c);
  rc = lash__kv_get(s, t, LASH_KV_CONC_COUNT, k.p, k.n, &b);
  if (rc == 0) return count_decode(s, b, c) < 0 ? count_damaged(s, k) : 0;
  if (rc != LASH_ENOENT) return rc;
  /* The layout before: {n} under the key in the queues' namespace. */
  rc = lash__kv_get(s, t, LASH_KV_CONC, k.p, k.n, &b);
  if (rc == LASH_ENOENT) return 0;
  if (rc < 0) return rc;
  if (count_decode(s, b, c) < 0) return count_damaged(s, k);
  c->g = 0;
  c->has_h = 0;
  if ((rc = lash__kv_put(s, t, LASH_KV_CONC, k.p, k.n, NULL, 0)) < 0) return rc;
  return count_put(t, k, c);
}

static int count_put(lash_txn *t, lash__sv k, const conc_count *c) {
  lash_store *s = t->s;
  msgpack_packer pk;
  int e = 0;
  if (c->n == 0 && c->g == 0)
    return lash__kv_put(s, t, LASH_KV_CONC_COUNT, k.p, k.n, NULL, 0);
  lash__packer(&pk, &s->vbuf);
  e |= msgpack_pack_map(&pk, 1 + (c->g > 0) + c->has_h);
  e |= msgpack_pack_str_with_body(&pk, "n", 1);
  e |= msgpack_pack_uint64(&pk, c->n);
  if (c->g > 0) {
    e |= msgpack_pack_str_with_body(&pk, "g", 1);
    e |= msgpack_pack_uint64(&pk, c->g);
  }
  if (c->has_h) {
    e |= msgpack_pack_str_with_body(&pk, "h", 1);
    e |= msgpack_pack_bin_with_body(&pk, c->h, sizeof c->h);
  }
  if (e != 0)
    return lash__fail(s, LASH_ENOMEM, "out of memory writing the side table");
  return lash__kv_put(s, t, LASH_KV_CONC_COUNT, k.p, k.n, s->vbuf.p,
                      s->vbuf.len);
}

static void be64(unsigned char *p, uint64_t v) {
  int i;
  for (i = 7; i >= 0; i--) {
    p[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
}

/* The waiter key of r: KEY 0x00 position(16). */
static size_t waiter_key(char *k, const lash__rec *r) {
  memcpy(k, r->conc_key.p, r->conc_key.n);
  k[r->conc_key.n] = 0;
  be64((unsigned char *)k + r->conc_key.n + 1,
       ~((uint64_t)r->priority ^ ((uint64_t)1 << 63)));
  be64((unsigned char *)k + r->conc_key.n + 9, r->created_seq);
  return r->conc_key.n + 17;
}

/* Moves head h back to just before position pos (16 bytes, big-endian). */
static void head_before(conc_count *c, const unsigned char *pos) {
  int i;
  for (i = 0; i < 16 && pos[i] == 0; i++) {
  }
  if (i == 16) { /* nothing comes before: from the start */
    c->has_h = 0;
    return;
  }
  memcpy(c->h, pos, sizeof c->h);
  for (i = 15; i >= 0; i--)
    if (c->h[i]-- != 0) break;
  c->has_h = 1;
}

static int waiter_put(lash_txn *t, const lash__rec *r, int add) {
  lash_store *s = t->s;
  char k[CONC_KEY_MAX];
  size_t kn = waiter_key(k, r);
  const unsigned char *pos = (const unsigned char *)k + r->conc_key.n + 1;
  conc_count c;
  msgpack_packer pk;
  int e = 0, rc;
  if (!add) return lash__kv_put(s, t, LASH_KV_CONC, k, kn, NULL, 0);
  lash__packer(&pk, &s->vbuf);
  e |= msgpack_pack_map(&pk, 1);
  e |= msgpack_pack_str(&pk, 2);
  e |= msgpack_pack_str_body(&pk, "id", 2);
  e |= msgpack_pack_str(&pk, r->id.n);
  e |= msgpack_pack_str_body(&pk, r->id.p, r->id.n);
  if (e != 0)
    return lash__fail(s, LASH_ENOMEM, "out of memory queueing %.*s",
                      (int)r->id.n, r->id.p);
  if ((rc = lash__kv_put(s, t, LASH_KV_CONC, k, kn, s->vbuf.p, s->vbuf.len)) <
      0)
    return rc;
  /* Queued at or before the head (a higher priority, or a row queued
   * again): the head moves back before it, so the handoff meets it. */
  if ((rc = count_get(t, r->conc_key, &c)) < 0) return rc;
  if (!c.has_h || memcmp(pos, c.h, sizeof c.h) > 0) return 0;
  head_before(&c, pos);
  return count_put(t, r->conc_key, &c);
}

int lash__conc_acquire(lash_txn *t, lash__rec *r) {
  conc_count c;
  int rc;
  if (r->conc_key.p == NULL || r->conc_state == LASH_CONC_HOLDS) return 0;
  if ((rc = count_get(t, r->conc_key, &c)) < 0) return rc;
  if (c.n < (uint64_t)conc_limit(r)) {
    c.n++;
    if ((rc = count_put(t, r->conc_key, &c)) < 0) return rc;
    if (r->conc_state == LASH_CONC_WAITS && (rc = waiter_put(t, r, 0)) < 0)
      return rc;
    r->conc_state = LASH_CONC_HOLDS;
    return 0;
  }
  if (r->conc_state != LASH_CONC_WAITS) {
    if ((rc = waiter_put(t, r, 1)) < 0) return rc;
    r->conc_state = LASH_CONC_WAITS;
  }
  return 1;
}

int lash__conc_release(lash_txn *t, lash__rec *r) {
  lash_store *s = t->s;
  conc_count c;
  int rc;
  if (r->conc_key.p == NULL) return 0;
  if (r->conc_state == LASH_CONC_WAITS) {
    /* A waiting row that ends (a cancel, an abandon) leaves the queue. */
    if ((rc = waiter_put(t, r, 0)) < 0) return rc;
    r->conc_state = LASH_CONC_NONE;
    return 0;
  }
  if (r->conc_state != LASH_CONC_HOLDS) return 0;
  if ((rc = count_get(t, r->conc_key, &c)) < 0) return rc;
  if (c.n > 0) c.n--;
  if ((rc = count_put(t, r->conc_key, &c)) < 0) return rc;
  r->conc_state = LASH_CONC_NONE;
  /* The key's first waiter gets the slot before the commit. */
  if (lash__buf_reserve(&t->conc_freed, r->conc_key.n + 1) < 0)
    return lash__fail(s, LASH_ENOMEM, "out of memory freeing a slot of %.*s",
                      (int)r->conc_key.n, r->conc_key.p);
  memcpy(t->conc_freed.p + t->conc_freed.len, r->conc_key.p, r->conc_key.n);
  t->conc_freed.p[t->conc_freed.len + r->conc_key.n] = '\0';
  t->conc_freed.len += r->conc_key.n + 1;
  return 0;
}

/* ---------------------------------------------------------- the handoff */

typedef struct first_ctx {
  lash_store *s;
  char key[CONC_KEY_MAX];
  size_t keylen;
  char id[LASH_ID_MAX + 1];
  size_t idlen;
  int found;
} first_ctx;

static int first_cb(void *ud, const char *key, size_t keylen, lash_bytes val) {
  first_ctx *f = ud;
  msgpack_object o;
  const msgpack_object *idf;
  lash__sv id;
  int rc;
  if (keylen > sizeof f->key) return 0;
  rc = lash__mp_unpack(val.data, val.len, &f->s->zone, &o);
  if (rc == 0 &&
      (o.type != MSGPACK_OBJECT_MAP ||
       (idf = lash__mp_map_get(&o, "id")) == NULL ||
       lash__mp_sv(idf, &id, 0) < 0 || id.n == 0 || id.n > LASH_ID_MAX))
    rc = LASH_ECORRUPT;
  if (rc == 0) {
    memcpy(f->key, key, keylen);
    f->keylen = keylen;
    memcpy(f->id, id.p, id.n);
    f->id[id.n] = '\0';
    f->idlen = id.n;
    f->found = 1;
  }
  msgpack_zone_clear(&f->s->zone);
  if (rc < 0)
    return lash__fail(f->s, LASH_ECORRUPT,
                      "a waiter of a concurrency key is damaged (run lash "
                      "check)");
  return 1;
}

typedef struct gc_ctx {
  const char *bound; /* KEY 0x00 head: the last consumed entry */
  size_t boundlen;
  lash__buf keys; /* each: u16 length, then the key */
  int full;
} gc_ctx;

static int gc_cb(void *ud, const char *key, size_t keylen, lash_bytes val) {
  gc_ctx *g = ud;
  uint16_t n = (uint16_t)keylen;
  (void)val;
  if (keylen != g->boundlen || memcmp(key, g->bound, keylen) > 0) return 1;
  if (lash__buf_reserve(&g->keys, sizeof n + keylen) < 0) {
    g->full = 1;
    return 1;
  }
  memcpy(g->keys.p + g->keys.len, &n, sizeof n);
  memcpy(g->keys.p + g->keys.len + sizeof n, key, keylen);
  g->keys.len += sizeof n + keylen;
  return 0;
}

/* Deletes the consumed queue entries of key k (those at or before its
 * head) together. */
static int gc_consumed(lash_txn *t, const char *prefix, size_t kn,
                       conc_count *c) {
  lash_store *s = t->s;
  char bound[CONC_KEY_MAX];
  gc_ctx g;
  size_t off;
  int rc;
  if (!c->has_h || c->g == 0) {
    c->g = 0;
    return 0;
  }
  memcpy(bound, prefix, kn + 1);
  memcpy(bound + kn + 1, c->h, sizeof c->h);
  memset(&g, 0, sizeof g);
  g.bound = bound;
  g.boundlen = kn + 17;
  rc = lash__kv_scan(s, t, LASH_KV_CONC, prefix, kn + 1, NULL, 0, gc_cb, &g);
  if (rc >= 0 && g.full)
    rc = lash__fail(s, LASH_ENOMEM, "out of memory tidying the queue of %.*s",
                    (int)kn, prefix);
  for (off = 0; rc >= 0 && off < g.keys.len;) {
    uint16_t n;
    memcpy(&n, g.keys.p + off, sizeof n);
    rc =
        lash__kv_put(s, t, LASH_KV_CONC, g.keys.p + off + sizeof n, n, NULL, 0);
    off += sizeof n + n;
  }
  lash__buf_free(&g.keys);
  if (rc < 0) return rc;
  c->g = 0;
  return 0;
}

/* Hands the free slots of key k to its first waiters: the queue's entries
 * after the head, in order; each one handed (or gone) moves the head past
 * it. */
static int handoff_key(lash_txn *t, const char *k, size_t kn,
                       lash__conc_relist_fn relist) {
  lash_store *s = t->s;
  char prefix[LASH_NAME_MAX + 1], after[CONC_KEY_MAX];
  lash__sv key = lash__sv_of(k, kn);
  conc_count c;
  int rc, got, guard = 0;
  if (kn == 0 || kn > LASH_NAME_MAX) return 0;
  memcpy(prefix, k, kn);
  prefix[kn] = 0;
  for (;;) {
    first_ctx f;
    int32_t lim = 0;
    memset(&f, 0, sizeof f);
    f.s = s;
    if ((rc = count_get(t, key, &c)) < 0) return rc;
    if (c.has_h) {
      memcpy(after, prefix, kn + 1);
      memcpy(after + kn + 1, c.h, sizeof c.h);
    }
    rc = lash__kv_scan(s, t, LASH_KV_CONC, prefix, kn + 1,
                       c.has_h ? after : NULL, c.has_h ? kn + 17 : 0, first_cb,
                       &f);
    if (rc < 0) return rc;
    if (!f.found) {
      /* The queue is empty: its consumed entries go now. */
      if (!c.has_h) return 0;
      if ((rc = gc_consumed(t, prefix, kn, &c)) < 0) return rc;
      c.has_h = 0;
      return count_put(t, key, &c);
    }
    if (f.keylen != kn + 17)
      return lash__fail(s, LASH_ECORRUPT,
                        "a waiter of concurrency key %.*s is damaged (run "
                        "lash check)",
                        (int)kn, k);
    /* The waiter holds the slot from here (or, gone or moved, leaves the
     * queue); its own limit decides. */
    got = relist(t, f.id, f.idlen, c.n, &lim);
    if (got < 0) return got;
    if (got == 2) return 0; /* it waits on: the slots are full for its limit */
    /* (relist writes no count: the row holds before its save) */
    memcpy(c.h, f.key + kn + 1, sizeof c.h);
    c.has_h = 1;
    c.g++;
    if (got == 1) c.n++;
    if (c.g >= GC_EVERY && (rc = gc_consumed(t, prefix, kn, &c)) < 0) return rc;
    if ((rc = count_put(t, key, &c)) < 0) return rc;
    if (got == 1 && c.n >= (uint64_t)(lim > 0 ? lim : 1)) return 0;
    if (++guard > 1000000) return 0;
  }
}

int lash__conc_handoff(lash_txn *t, lash__conc_relist_fn relist) {
  /* Take the list, so that a save during the handoff cannot move it. */
  lash__buf keys = t->conc_freed;
  size_t off;
  int rc = 0;
  t->conc_freed.p = NULL;
  t->conc_freed.len = t->conc_freed.cap = 0;
  for (off = 0; rc == 0 && off < keys.len;) {
    const char *k = keys.p + off;
    size_t kn = strlen(k);
    rc = handoff_key(t, k, kn, relist);
    off += kn + 1;
  }
  if (t->conc_freed.p == NULL) { /* keep the capacity */
    keys.len = 0;
    t->conc_freed = keys;
  } else {
    lash__buf_free(&keys);
  }
  if (rc < 0 && t->rc == 0) t->rc = rc;
  return rc;
}

/* ------------------------------------------------------------- the audit */

typedef struct key_node {
  lash__mnode node;
  uint64_t holds;
  char key[LASH_NAME_MAX + 1];
} key_node;

typedef struct audit_ctx {
  lash_store *s;
  lash_btxn *bt;
  lash__map keys; /* concurrency key -> rows holding a slot */
  void (*problem)(void *ud, const char *line);
  void *ud;
  int rc;
  char line[LASH__ERRMSG_MAX];
} audit_ctx;

static void say(audit_ctx *c, const char *line) {
  c->problem(c->ud, line);
}

static int audit_row(void *ud, const lash_bitem *it) {
  audit_ctx *c = ud;
  lash__rec r;
  key_node *k;
  char key[LASH_NAME_MAX + 1];
  if (it->rec.data == NULL ||
      lash__rec_decode(it->rec.data, it->rec.len, &r, &c->s->zone) < 0)
    return 0; /* the fold check reports it */
  if (r.conc_key.p == NULL || r.conc_state == LASH_CONC_NONE) return 0;
  if (r.conc_state == LASH_CONC_WAITS) {
    char wk[CONC_KEY_MAX];
    lash_bytes v;
    size_t kn = waiter_key(wk, &r);
    int rc = c->s->b->m->kv_get(c->s->b, c->bt, LASH_KV_CONC, wk, kn, &v);
    if (rc == LASH_ENOENT) {
      snprintf(c->line, sizeof c->line,
               "process %.*s waits for a slot of concurrency key %.*s but "
               "is not in its queue",
               (int)it->idlen, it->id, (int)r.conc_key.n, r.conc_key.p);
      say(c, c->line);
    } else if (rc < 0) {
      return rc;
    } else if ((rc = c->s->b->m->kv_get(c->s->b, c->bt, LASH_KV_CONC_COUNT,
                                        r.conc_key.p, r.conc_key.n, &v)) == 0) {
      conc_count cc;
      if (count_decode(c->s, v, &cc) == 0 && cc.has_h &&
          memcmp(wk + r.conc_key.n + 1, cc.h, sizeof cc.h) <= 0) {
        snprintf(c->line, sizeof c->line,
                 "process %.*s waits for a slot of concurrency key %.*s "
                 "behind its queue's head: no slot will reach it",
                 (int)it->idlen, it->id, (int)r.conc_key.n, r.conc_key.p);
        say(c, c->line);
      }
    } else if (rc != LASH_ENOENT) {
      return rc;
    }
    return 0;
  }
  memcpy(key, r.conc_key.p, r.conc_key.n);
  key[r.conc_key.n] = '\0';
  k = (key_node *)lash__map_find(&c->keys, key);
  if (k == NULL) {
    if ((k = calloc(1, sizeof *k)) == NULL) return LASH_ENOMEM;
    memcpy(k->key, key, r.conc_key.n + 1);
    lash__mnode_key(&k->node, k->key);
    if (lash__map_put(&c->keys, &k->node) < 0) {
      free(k);
      return LASH_ENOMEM;
    }
  }
  k->holds++;
  return 0;
}

/* A count entry: in LASH_KV_CONC_COUNT, or (the layout before) a key
 * without a 0 byte in LASH_KV_CONC. */
static int audit_kv(void *ud, const char *key, size_t keylen, lash_bytes val) {
  audit_ctx *c = ud;
  conc_count cc;
  uint64_t n;
  if (memchr(key, 0, keylen) != NULL) return 0; /* a waiter entry */
  if (keylen > LASH_NAME_MAX || count_decode(c->s, val, &cc) < 0) {
    snprintf(c->line, sizeof c->line,
             "the slots of concurrency key %.*s are damaged", (int)keylen, key);
    say(c, c->line);
    return 0;
  }
  {
    char k[LASH_NAME_MAX + 1];
    key_node *kn;
    memcpy(k, key, keylen);
    k[keylen] = '\0';
    kn = (key_node *)lash__map_find(&c->keys, k);
    n = cc.n;
    if (n != (kn != NULL ? kn->holds : 0)) {
      snprintf(c->line, sizeof c->line,
               "concurrency key %s counts %lld slots taken, but %llu rows "
               "hold one",
               k, (long long)n,
               (unsigned long long)(kn != NULL ? kn->holds : 0));
      say(c, c->line);
    }
    if (kn != NULL) kn->holds = UINT64_MAX; /* seen */
  }
  return 0;
}

static void audit_left(lash__mnode *n, void *ud) {
  audit_ctx *c = ud;
  key_node *k = (key_node *)n;
  if (k->holds != UINT64_MAX && c->rc == 0) {
    snprintf(c->line, sizeof c->line,
             "%llu rows hold a slot of concurrency key %s, which counts none",
             (unsigned long long)k->holds, k->key);
    say(c, c->line);
  }
  free(k);
}

static int kv_item(void *ud, const lash_bitem *it) {
  return audit_kv(ud, it->id, it->idlen, it->rec);
}

int lash__conc_audit(lash_store *s, lash_btxn *bt,
                     void (*problem)(void *ud, const char *line), void *ud) {
  audit_ctx c;
  lash_bscan q;
  int rc;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.bt = bt;
  c.problem = problem;
  c.ud = ud;
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_ROWS;
  rc = s->b->m->scan(s->b, bt, &q, audit_row, &c);
  if (rc == 0) {
    memset(&q, 0, sizeof q);
    q.what = LASH_SCAN_KV;
    q.ns = LASH_KV_CONC;
    rc = s->b->m->scan(s->b, bt, &q, kv_item, &c);
  }
  if (rc == 0) {
    memset(&q, 0, sizeof q);
    q.what = LASH_SCAN_KV;
    q.ns = LASH_KV_CONC_COUNT;
    rc = s->b->m->scan(s->b, bt, &q, kv_item, &c);
  }
  c.rc = rc;
  lash__map_clear(&c.keys, audit_left, &c);
  lash__map_free(&c.keys);
  return rc < 0 ? rc : 0;
}
