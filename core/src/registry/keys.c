/* keys.c - replay keys (SEMANTICS 1.4, DESIGN.md 9): the canonical
 * equality of two payloads, the argument checks of a keyed append (the
 * reserved "process:" prefix, the journal types), the look-up of a key
 * (the transaction's unsaved events, then the backend's key index), the
 * keys of lifecycle events (derived when read, never stored) and
 * lash_check's audit of stored keys.
 *
 * Part: registry. Calls record.c's codec, txn.c's cache and the backend;
 * called by registry.c (appends, reads) and check.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "registry-int.h"

#include "../base/crc32c.h"
#include "../base/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------ canonical equality */

static int is_num(const msgpack_object *o) {
  return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
         o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
         o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64;
}

static int is_float(const msgpack_object *o) {
  return o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64;
}

/* An integer object equals the float f by value (no libm: the range
 * check keeps the casts defined, NaN fails every comparison). */
static int int_float_eq(const msgpack_object *i, double f) {
  if (i->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    if (!(f >= 0.0 && f < 18446744073709551616.0)) return 0;
    return (double)(uint64_t)f == f && (uint64_t)f == i->via.u64;
  }
  if (!(f < 0.0 && f >= -9223372036854775808.0)) return 0;
  return (double)(int64_t)f == f && (int64_t)f == i->via.i64;
}

static int num_eq(const msgpack_object *a, const msgpack_object *b) {
  if (is_float(a) && is_float(b))
    return a->via.f64 == b->via.f64 ||
           (a->via.f64 != a->via.f64 && b->via.f64 != b->via.f64); /* NaNs */
  if (is_float(a)) return int_float_eq(b, a->via.f64);
  if (is_float(b)) return int_float_eq(a, b->via.f64);
  if (a->type != b->type) return 0; /* msgpack-c: negative means < 0 */
  return a->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? a->via.u64 == b->via.u64
                                                    : a->via.i64 == b->via.i64;
}

static int bytes_eq(const char *a, uint32_t an, const char *b, uint32_t bn) {
  return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static int obj_eq(const msgpack_object *a, const msgpack_object *b, int depth);

/* Maps as sets of pairs: every pair of a matches a distinct pair of b
 * (the same position first: the usual case). 0, 1, or -1 (no memory). */
static int map_eq(const msgpack_object_map *a, const msgpack_object_map *b,
                  int depth) {
  unsigned char *used;
  uint32_t i, j;
  int eq = 1;
  if (a->size != b->size) return 0;
  if (a->size == 0) return 1;
  if ((used = calloc(a->size, 1)) == NULL) return -1;
  for (i = 0; i < a->size && eq == 1; i++) {
    const msgpack_object_kv *p = &a->ptr[i];
    int found = 0;
    for (j = 0; j < b->size && !found; j++) {
      /* start at i, then wrap around */
      uint32_t k = (i + j) % b->size;
      int r;
      if (used[k]) continue;
      r = obj_eq(&p->key, &b->ptr[k].key, depth + 1);
      if (r == 1) r = obj_eq(&p->val, &b->ptr[k].val, depth + 1);
      if (r < 0) {
        eq = -1;
        break;
      }
      if (r == 1) {
        used[k] = 1;
        found = 1;
      }
    }
    if (eq == 1 && !found) eq = 0;
  }
  free(used);
  return eq;
}

static int obj_eq(const msgpack_object *a, const msgpack_object *b, int depth) {
  uint32_t i;
  if (depth > 64) return -1; /* (msgpack-c nests far less deep) */
  if (is_num(a) && is_num(b)) return num_eq(a, b);
  if (a->type != b->type) return 0;
  switch (a->type) {
  case MSGPACK_OBJECT_NIL:
    return 1;
  case MSGPACK_OBJECT_BOOLEAN:
    return a->via.boolean == b->via.boolean;
  case MSGPACK_OBJECT_STR:
    return bytes_eq(a->via.str.ptr, a->via.str.size, b->via.str.ptr,
                    b->via.str.size);
  case MSGPACK_OBJECT_BIN:
    return bytes_eq(a->via.bin.ptr, a->via.bin.size, b->via.bin.ptr,
                    b->via.bin.size);
  case MSGPACK_OBJECT_EXT:
    return a->via.ext.type == b->via.ext.type &&
           bytes_eq(a->via.ext.ptr, a->via.ext.size, b->via.ext.ptr,
                    b->via.ext.size);
  case MSGPACK_OBJECT_ARRAY:
    if (a->via.array.size != b->via.array.size) return 0;
    for (i = 0; i < a->via.array.size; i++) {
      int r = obj_eq(&a->via.array.ptr[i], &b->via.array.ptr[i], depth + 1);
      if (r != 1) return r;
    }
    return 1;
  case MSGPACK_OBJECT_MAP:
    return map_eq(&a->via.map, &b->via.map, depth);
  default:
    return 0;
  }
}

int lash__payload_equal(lash__sv a, lash__sv b, msgpack_zone *z) {
  msgpack_object oa, ob;
  int eq = -1;
  if (a.p == NULL || b.p == NULL) return a.p == NULL && b.p == NULL;
  if (lash__sv_eq(a, b)) return 1;
  if (lash__mp_unpack(a.p, a.n, z, &oa) == 0 &&
      lash__mp_unpack(b.p, b.n, z, &ob) == 0)
    eq = obj_eq(&oa, &ob, 0);
  msgpack_zone_clear(z);
  /* Not MessagePack (or beyond what can be compared): bytewise, as above. */
  return eq == 1;
}

/* ------------------------------------------------------------ checks */

int lash__check_keyed(lash_store *s, const char *id, const char *type,
                      const lash_lease *ls, const char *key, size_t *keylen) {
  int n;
  *keylen = 0;
  if (key != NULL) {
    if ((n = lash__check_name_of(s, "replay key", key, id)) < 0) return n;
    if (strncmp(key, LASH__KEY_RESERVED, strlen(LASH__KEY_RESERVED)) == 0)
      return lash__fail(s, LASH_EINVAL,
                        "replay key \"%.60s\" of process %s is reserved: keys "
                        "starting \"" LASH__KEY_RESERVED "\" belong to the "
                        "lifecycle events lash writes; use another prefix",
                        key, id);
    *keylen = (size_t)n;
  }
  if (type == NULL || !lash__journal_type(lash__sv_str(type)))
    return lash__check_event_type(s, id, type);
  if (ls == NULL)
    return lash__fail(s, LASH_EINVAL,
                      "event type %s on process %s is a journal type: only "
                      "the execution holding the lease appends it (fenced, "
                      "with a replay key " LASH__KEY_CMD "<n>)",
                      type, id);
  if (key == NULL || strncmp(key, LASH__KEY_CMD, strlen(LASH__KEY_CMD)) != 0)
    return lash__fail(s, LASH_EINVAL,
                      "event type %s on process %s is a journal type: it "
                      "needs a replay key that starts \"" LASH__KEY_CMD
                      "\" (%s%.60s%s given)",
                      type, id, key != NULL ? "\"" : "",
                      key != NULL ? key : "none", key != NULL ? "\"" : "");
  return 0;
}

/* ------------------------------------------------------------ look-up */

int lash__key_find(lash_store *s, lash_txn *t, const char *id, size_t idlen,
                   const char *key, size_t keylen, lash__ev *ev) {
  lash__chg *c = lash__chg_find(t, id, idlen);
  lash_bytes stored;
  uint64_t seq = 0;
  size_t i;
  int rc;
  /* Unsaved events of this transaction first: the backend has not seen
   * them. */
  for (i = 0; c != NULL && i < c->nev; i++) {
    const lash__evref *e = &c->ev[i];
    if (e->klen != keylen || memcmp(c->evs.p + e->koff, key, keylen) != 0)
      continue;
    if (lash__ev_decode(c->evs.p + e->off, e->len, ev, &s->zone) < 0)
      return lash__fail(s, LASH_ECORRUPT,
                        "process %s: an unsaved event of this transaction "
                        "cannot be decoded",
                        id);
    ev->seq = e->seq;
    return 0;
  }
  rc = s->b->m->key_get(s->b, t->bt, id, idlen, key, keylen, &seq, &stored);
  if (rc == LASH_ENOENT) return 1;
  if (rc < 0) return rc;
  if (lash__ev_decode(stored.data, stored.len, ev, &s->zone) < 0)
    return lash__fail(s, LASH_ECORRUPT,
                      "event %llu of process %s (replay key %s) is damaged "
                      "(checksum or encoding): run lash check",
                      (unsigned long long)seq, id, key);
  ev->seq = seq;
  return 0;
}

/* ----------------------------------------------------- derived keys */

int lash__sv_is(lash__sv v, const char *lit) {
  size_t n = strlen(lit);
  return v.p != NULL && v.n == n && memcmp(v.p, lit, n) == 0;
}

/* The map payload of ev in s->zone (the caller clears it): 0 or < 0. */
static int payload_map(lash_store *s, const lash__ev *ev, msgpack_object *o) {
  if (lash__mp_unpack(ev->payload.p, ev->payload.n, &s->zone, o) < 0 ||
      o->type != MSGPACK_OBJECT_MAP)
    return LASH_ECORRUPT;
  return 0;
}

/* Remembers the wait of a process.waiting event in kc. */
static void note_wait(lash_store *s, const lash__ev *ev, lash__keyctx *kc) {
  msgpack_object o;
  lash__sv wait;
  int64_t since;
  kc->has_wait = 0;
  if (payload_map(s, ev, &o) == 0 &&
      lash__mp_sv(lash__mp_map_get(&o, "wait"), &wait, 0) == 0 &&
      lash__mp_i64(lash__mp_map_get(&o, "since"), &since) == 0 &&
      wait.n <= LASH__WAIT_MAX) {
    memcpy(kc->wait, wait.p, wait.n);
    kc->wait[wait.n] = '\0';
    kc->since = since;
    kc->has_wait = 1;
  }
  msgpack_zone_clear(&s->zone);
}

typedef struct lookback {
  lash_store *s;
  uint64_t before;
  lash__keyctx *kc;
} lookback;

static int lookback_cb(void *ud, const lash_bitem *it) {
  lookback *l = ud;
  lash__ev ev;
  if (it->seq >= l->before) return 1;
  if (lash__ev_decode(it->ev.data, it->ev.len, &ev, &l->s->zone) < 0) return 0;
  if (lash__sv_is(ev.type, LASH__EV_WAITING))
    note_wait(l->s, &ev, l->kc);
  else if (lash__sv_is(ev.type, LASH__EV_RESUMED))
    l->kc->has_wait = 0;
  return 0;
}

/* The wait in force before event @p seq of id, read from the log. */
static void look_back(lash_store *s, lash_btxn *bt, const char *id,
                      size_t idlen, uint64_t seq, lash__keyctx *kc) {
  lookback l;
  l.s = s;
  l.before = seq;
  l.kc = kc;
  kc->has_wait = 0;
  lash__scan_events(s, NULL, bt, id, idlen, 0, lookback_cb, &l);
}

/* The hash of a cancel reason: 16 hex digits; absent and "" differ. */
static uint64_t reason_hash(lash__sv reason) {
  unsigned char tag = reason.p != NULL ? 1 : 0;
  uint32_t h = lash__hash_n(&tag, 1), c;
  size_t i;
  for (i = 0; i < reason.n; i++)
    h = (h ^ (unsigned char)reason.p[i]) * 16777619u;
  c = lash__crc32c(&tag, 1) ^
      (reason.n > 0 ? lash__crc32c(reason.p, reason.n) : 0u);
  return (uint64_t)h << 32 | c;
}

const char *lash__event_key(lash_store *s, lash_btxn *bt, const char *id,
                            size_t idlen, const lash__ev *ev, lash__keyctx *kc,
                            char *buf) {
  msgpack_object o;
  const char *out = NULL;
  int term;
  if (ev->key.p != NULL) {
    size_t n = ev->key.n < LASH__DKEY_MAX ? ev->key.n : LASH__DKEY_MAX - 1;
    memcpy(buf, ev->key.p, n);
    buf[n] = '\0';
    return buf;
  }
  if (ev->type.n < 8 || memcmp(ev->type.p, "process.", 8) != 0) return NULL;
  if ((term = lash__terminal_type_status(ev->type)) != 0) {
    snprintf(buf, LASH__DKEY_MAX, "process:%s:terminal:%s", id,
             lash__terminal_type(term));
    return buf;
  }
  if (lash__sv_is(ev->type, LASH__EV_WAITING)) {
    note_wait(s, ev, kc);
    if (!kc->has_wait) return NULL;
    snprintf(buf, LASH__DKEY_MAX, "process:%s:wait:%s:since:%lld:entered", id,
             kc->wait, (long long)kc->since);
    return buf;
  }
  if (lash__sv_is(ev->type, LASH__EV_RESUMED)) {
    if (!kc->has_wait) look_back(s, bt, id, idlen, ev->seq, kc);
    if (!kc->has_wait) return NULL;
    kc->has_wait = 0;
    snprintf(buf, LASH__DKEY_MAX, "process:%s:wait:%s:since:%lld:cleared", id,
             kc->wait, (long long)kc->since);
    return buf;
  }
  if (lash__sv_is(ev->type, LASH__EV_ABANDON_REQ)) {
    snprintf(buf, LASH__DKEY_MAX, "process:%s:abandon-requested", id);
    return buf;
  }
  if (payload_map(s, ev, &o) == 0) {
    if (lash__sv_is(ev->type, LASH__EV_STARTED)) {
      uint64_t n;
      if (lash__mp_u64(lash__mp_map_get(&o, "attempt"), &n) == 0) {
        snprintf(buf, LASH__DKEY_MAX, "process:%s:first-started:attempt:%llu",
                 id, (unsigned long long)n);
        out = buf;
      }
    } else if (lash__sv_is(ev->type, LASH__EV_ATTEMPT_FAILED) ||
               lash__sv_is(ev->type, LASH__EV_RETRIED)) {
      /* issue 13: one of each per attempt */
      uint64_t n;
      if (lash__mp_u64(lash__mp_map_get(&o, "attempt"), &n) == 0) {
        snprintf(buf, LASH__DKEY_MAX, "process:%s:%s:attempt:%llu", id,
                 lash__sv_is(ev->type, LASH__EV_RETRIED) ? "retried"
                                                         : "attempt-failed",
                 (unsigned long long)n);
        out = buf;
      }
    } else if (lash__sv_is(ev->type, LASH__EV_CANCEL_REQ)) {
      lash__sv reason;
      if (lash__mp_sv(lash__mp_map_get(&o, "reason"), &reason, 1) == 0) {
        snprintf(buf, LASH__DKEY_MAX, "process:%s:cancel:%016llx", id,
                 (unsigned long long)reason_hash(reason));
        out = buf;
      }
    }
  }
  msgpack_zone_clear(&s->zone);
  return out;
}

/* -------------------------------------------------------------- audit */

int lash__key_audit(lash_store *s, lash_btxn *bt, const char *id, size_t idlen,
                    const lash__ev *ev,
                    void (*problem)(void *ud, const char *line), void *ud) {
  char line[LASH__ERRMSG_MAX];
  uint64_t seq = 0;
  int rc;
  if (ev->key.p == NULL) return 0;
  if (ev->key.n == 0 || ev->key.n > LASH_NAME_MAX ||
      (ev->key.n >= 8 && memcmp(ev->key.p, LASH__KEY_RESERVED, 8) == 0)) {
    snprintf(line, sizeof line,
             "process %s: event %llu has a malformed replay key (%zu bytes)",
             id, (unsigned long long)ev->seq, ev->key.n);
    problem(ud, line);
    return 0;
  }
  rc = s->b->m->key_get(s->b, bt, id, idlen, ev->key.p, ev->key.n, &seq, NULL);
  if (rc == LASH_ENOENT) {
    snprintf(line, sizeof line,
             "process %s: event %llu has replay key %.*s, which the key "
             "index lacks",
             id, (unsigned long long)ev->seq, (int)ev->key.n, ev->key.p);
    problem(ud, line);
    return 0;
  }
  if (rc < 0) return rc;
  if (seq != ev->seq) {
    snprintf(line, sizeof line,
             "process %s: event %llu has replay key %.*s, which the key "
             "index maps to event %llu (a key is used once per process)",
             id, (unsigned long long)ev->seq, (int)ev->key.n, ev->key.p,
             (unsigned long long)seq);
    problem(ud, line);
  }
  return 0;
}
