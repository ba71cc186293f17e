/* audit.c - the LMDB side of lash_check: the live, status and change
 * indexes list exactly the rows they should, events and lease rows belong
 * to records, tombstones have their change entries, and every key is well
 * formed. The core checks the rows themselves (fold, leases, counters);
 * it decodes records for us through lash_baudit. */
#include "lmdb-int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct aud {
  lmdb__store *s;
  lash_btxn *t;
  const lash_baudit *a;
  uint64_t meta_seq;
  char ev_last_id[LASH_ID_MAX + 1]; /* events: look each owner up once */
  size_t ev_last_len;
  char line[1024];
} aud;

__attribute__((format(printf, 2, 3))) static void
problem(aud *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->line, sizeof c->line, fmt, ap);
  va_end(ap);
  c->a->problem(c->a->ud, c->line);
}

/* Copies a key's id bytes into a printable NUL-terminated buffer. */
static const char *show_id(char *buf, const void *p, size_t n) {
  if (n > LASH_ID_MAX) n = LASH_ID_MAX;
  memcpy(buf, p, n);
  buf[n] = '\0';
  return buf;
}

static int valid_id_bytes(const void *p, size_t n) {
  return n >= 1 && n <= LASH_ID_MAX && memchr(p, 0, n) == NULL;
}

static int has_key(aud *c, int db, const void *k, size_t kn, MDB_val *v) {
  MDB_val tmp;
  return lmdb__get(c->s, c->t->mt, db, k, kn, v != NULL ? v : &tmp);
}

/* The record of id: 0 found (described), 1 absent, 2 undecodable (the
 * core reported it), < 0 error. */
static int describe(aud *c, const void *id, size_t idlen, lash_bdesc *d) {
  MDB_val v;
  lash_bytes rec;
  int rc = has_key(c, LMDB__DB_RECORDS, id, idlen, &v);
  if (rc != 0) return rc;
  rec.data = v.mv_data;
  rec.len = v.mv_size;
  return c->a->describe(c->a->ud, rec, d) < 0 ? 2 : 0;
}

typedef int (*walk_fn)(aud *c, const MDB_val *k, const MDB_val *v);

/* Walks one database, calling fn per entry. */
static int walk(aud *c, int db, const char *what, walk_fn fn) {
  MDB_cursor *cur = NULL;
  MDB_val k, v;
  int mrc, rc = 0;
  if ((mrc = mdb_cursor_open(c->t->mt, c->s->dbi[db], &cur)) != 0)
    return lmdb__fail(c->s, mrc, what);
  for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    if ((rc = fn(c, &k, &v)) < 0) break;
  if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
    rc = lmdb__fail(c->s, mrc, what);
  mdb_cursor_close(cur);
  return rc;
}

/* An index key "head 0x00 id" (live: kind, waiters: the awaited id):
 * *headn gets the head's length, id the id (printable), *d the record's
 * description. 1 described, 2 no record, 0 malformed or undecodable
 * (reported), < 0 error. */
static int split_describe(aud *c, const MDB_val *k, const char *index,
                          size_t *headn, char *id, lash_bdesc *d) {
  const char *p = k->mv_data, *nul = memchr(p, 0, k->mv_size);
  size_t idlen;
  int rc;
  if (nul == NULL || nul == p ||
      !valid_id_bytes(nul + 1, k->mv_size - (size_t)(nul - p) - 1)) {
    problem(c, "a %s index key is malformed (%zu bytes)", index, k->mv_size);
    return 0;
  }
  *headn = (size_t)(nul - p);
  idlen = k->mv_size - *headn - 1;
  show_id(id, nul + 1, idlen);
  rc = describe(c, nul + 1, idlen, d);
  if (rc < 0) return rc;
  return rc == 0 ? 1 : rc == 1 ? 2 : 0;
}

/* ---- suspension and timers (issue 9) ---- */

/* A record's timer and waiter entries. */
static int on_record_susp(aud *c, const char *id, const void *p, size_t idlen,
                          const lash_bdesc *d) {
  unsigned char key[LMDB__WAITKEY_MAX + 1];
  size_t kn;
  int rc;
  if (!c->s->has_susp) return 0;
  if (d->index.wake_at > 0) {
    kn = lmdb__timerkey(key, d->index.wake_at, p, idlen);
    if ((rc = has_key(c, LMDB__DB_TIMERS, key, kn, NULL)) < 0) return rc;
    if (rc == 1)
      problem(c, "process %s is missing from the timer index (wake_at %lld)",
              id, (long long)d->index.wake_at);
  }
  if (d->index.awaits.data != NULL && d->index.awaits.len <= LASH_ID_MAX) {
    kn = lmdb__livekey(key, d->index.awaits, p, idlen);
    if ((rc = has_key(c, LMDB__DB_WAITERS, key, kn, NULL)) < 0) return rc;
    if (rc == 1)
      problem(c, "process %s is missing from the waiter index of %.*s", id,
              (int)d->index.awaits.len, (const char *)d->index.awaits.data);
  }
  return 0;
}

static int on_timer(aud *c, const MDB_val *k, const MDB_val *v) {
  const char *p = k->mv_data;
  char id[LASH_ID_MAX + 1];
  lash_bdesc d;
  int64_t at;
  int rc;
  (void)v;
  if (k->mv_size < 9 || !valid_id_bytes(p + 8, k->mv_size - 8)) {
    problem(c, "a timer index key is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  at = (int64_t)lmdb__get_be64(k->mv_data);
  show_id(id, p + 8, k->mv_size - 8);
  rc = describe(c, p + 8, k->mv_size - 8, &d);
  if (rc < 0) return rc;
  if (rc == 1)
    problem(c, "timer index lists process %s, which has no record", id);
  else if (rc == 0 && d.index.wake_at != at)
    problem(c, "timer index lists process %s at %lld, but its wake_at is %lld",
            id, (long long)at, (long long)d.index.wake_at);
  return 0;
}

static int on_waiter(aud *c, const MDB_val *k, const MDB_val *v) {
  const char *p = k->mv_data;
  char id[LASH_ID_MAX + 1];
  lash_bdesc d;
  size_t an;
  int rc;
  (void)v;
  if ((rc = split_describe(c, k, "waiter", &an, id, &d)) <= 0) return rc;
  if (rc == 2)
    problem(c, "waiter index lists process %s, which has no record", id);
  else if (rc == 1 &&
           (d.index.awaits.data == NULL || d.index.awaits.len != an ||
            memcmp(d.index.awaits.data, p, an) != 0))
    problem(c,
            "waiter index lists process %s as awaiting %.*s, but it does "
            "not",
            id, (int)an, p);
  return 0;
}

/* Each record has its live, status and change entries. */
static int on_record(aud *c, const MDB_val *k, const MDB_val *v) {
  unsigned char key[LMDB__LIVEKEY_MAX + 9];
  char id[LASH_ID_MAX + 1];
  const char *p = k->mv_data;
  size_t idlen = k->mv_size, kn;
  lash_bytes rec;
  lash_bdesc d;
  MDB_val x;
  int rc;
  if (!valid_id_bytes(p, idlen)) return 0; /* the core reported it */
  rec.data = v->mv_data;
  rec.len = v->mv_size;
  if (c->a->describe(c->a->ud, rec, &d) < 0) return 0;
  if (d.kind.len == 0 || d.kind.len > LASH_NAME_MAX) return 0;
  show_id(id, p, idlen);
  kn = lmdb__liveposkey(key, d.kind, d.index.priority, d.index.order, p, idlen);
  if ((rc = has_key(c, LMDB__DB_LIVE, key, kn, NULL)) < 0) return rc;
  if (d.index.listed && rc == 1)
    problem(c, "process %s (%s) is missing from the live index", id,
            lash_status_name(d.index.status));
  /* (terminal and suspended rows in the live index are reported by
   * on_live) */
  if ((rc = on_record_susp(c, id, p, idlen, &d)) < 0) return rc;
  kn = lmdb__statkey(key, d.index.status, p, idlen);
  if ((rc = has_key(c, LMDB__DB_BYSTATUS, key, kn, NULL)) < 0) return rc;
  if (rc == 1)
    problem(c, "process %s is missing from the status index under %s", id,
            lash_status_name(d.index.status));
  lmdb__be64(key, d.index.change_seq);
  if ((rc = has_key(c, LMDB__DB_CHANGES, key, 8, &x)) < 0) return rc;
  if (rc == 1 || x.mv_size != idlen || memcmp(x.mv_data, p, idlen) != 0)
    problem(c, "process %s: change index has no entry %llu for it", id,
            (unsigned long long)d.index.change_seq);
  return 0;
}

static int on_event(aud *c, const MDB_val *k, const MDB_val *v) {
  const char *p = k->mv_data;
  char id[LASH_ID_MAX + 1];
  size_t idlen;
  int rc;
  (void)v;
  if (k->mv_size < 10 || p[k->mv_size - 9] != 0 ||
      !valid_id_bytes(p, k->mv_size - 9)) {
    problem(c, "an event key is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  idlen = k->mv_size - 9;
  if (idlen == c->ev_last_len && memcmp(c->ev_last_id, p, idlen) == 0) return 0;
  memcpy(c->ev_last_id, p, idlen);
  c->ev_last_len = idlen;
  if ((rc = has_key(c, LMDB__DB_RECORDS, p, idlen, NULL)) < 0) return rc;
  if (rc == 1)
    problem(c, "events of process %s have no record", show_id(id, p, idlen));
  return 0;
}

static int on_live(aud *c, const MDB_val *k, const MDB_val *v) {
  const char *p = k->mv_data, *nul = memchr(p, 0, k->mv_size);
  char id[LASH_ID_MAX + 1];
  lash_bdesc d;
  size_t kindn, idlen;
  int64_t prio;
  uint64_t order;
  int rc;
  (void)v;
  /* issue 13 (claim): kind 0x00 position(16) id */
  if (nul == NULL || nul == p || (size_t)(nul - p) + 17 >= k->mv_size ||
      !valid_id_bytes(nul + 17, k->mv_size - (size_t)(nul - p) - 17)) {
    problem(c, "a live index key is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  kindn = (size_t)(nul - p);
  idlen = k->mv_size - kindn - 17;
  show_id(id, nul + 17, idlen);
  lmdb__livepos((const unsigned char *)nul + 1, &prio, &order);
  rc = describe(c, nul + 17, idlen, &d);
  if (rc < 0) return rc;
  rc = rc == 0 ? 1 : rc == 1 ? 2 : 0;
  if (rc == 0) return 0;
  if (rc == 1 && (d.index.priority != prio || d.index.order != order))
    problem(c,
            "live index lists process %s at priority %lld order %llu, its "
            "record says %lld / %llu",
            id, (long long)prio, (unsigned long long)order,
            (long long)d.index.priority, (unsigned long long)d.index.order);
  if (rc == 2)
    problem(c, "live index lists process %s, which has no record", id);
  else if (rc == 1 && LASH_IS_TERMINAL(d.index.status))
    problem(c, "live index lists process %s, which is %s", id,
            lash_status_name(d.index.status));
  else if (rc == 1 && !d.index.listed)
    problem(c,
            "live index lists process %s, which is suspended (or waits "
            "for a concurrency slot)",
            id);
  else if (rc == 1 &&
           (d.kind.len != kindn || memcmp(d.kind.data, p, kindn) != 0))
    problem(c, "live index lists process %s under kind %.*s, not %.*s", id,
            (int)kindn, p, (int)d.kind.len, (const char *)d.kind.data);
  return 0;
}

static int on_status(aud *c, const MDB_val *k, const MDB_val *v) {
  const unsigned char *p = k->mv_data;
  char id[LASH_ID_MAX + 1];
  lash_bdesc d;
  int rc;
  (void)v;
  if (k->mv_size < 2 || lash_status_name(p[0]) == NULL ||
      !valid_id_bytes(p + 1, k->mv_size - 1)) {
    problem(c, "a status index key is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  show_id(id, p + 1, k->mv_size - 1);
  rc = describe(c, p + 1, k->mv_size - 1, &d);
  if (rc < 0) return rc;
  if (rc == 1)
    problem(c, "status index lists process %s, which has no record", id);
  else if (rc == 0 && d.index.status != p[0])
    problem(c, "status index lists process %s as %s, but it is %s", id,
            lash_status_name(p[0]), lash_status_name(d.index.status));
  return 0;
}

static int on_change(aud *c, const MDB_val *k, const MDB_val *v) {
  char id[LASH_ID_MAX + 1];
  lash_bdesc d;
  lash_bytes tb;
  MDB_val x;
  uint64_t cs, tcs;
  int rc;
  if (k->mv_size != 8 || !valid_id_bytes(v->mv_data, v->mv_size)) {
    problem(c, "a change index entry is malformed");
    return 0;
  }
  cs = lmdb__get_be64(k->mv_data);
  show_id(id, v->mv_data, v->mv_size);
  if (cs > c->meta_seq)
    problem(c, "change %llu (process %s) is past the store's change_seq %llu",
            (unsigned long long)cs, id, (unsigned long long)c->meta_seq);
  rc = describe(c, v->mv_data, v->mv_size, &d);
  if (rc < 0) return rc;
  if (rc == 0) {
    if (d.index.change_seq != cs)
      problem(c, "change %llu names process %s, whose change_seq is %llu",
              (unsigned long long)cs, id,
              (unsigned long long)d.index.change_seq);
    return 0;
  }
  if (rc == 2) return 0; /* reported by the core's record walk */
  rc = has_key(c, LMDB__DB_TOMBS, v->mv_data, v->mv_size, &x);
  if (rc < 0) return rc;
  if (rc == 1) {
    problem(c,
            "change %llu names process %s, which has no record or "
            "tombstone",
            (unsigned long long)cs, id);
    return 0;
  }
  tb.data = x.mv_data;
  tb.len = x.mv_size;
  if (c->a->tomb_seq(c->a->ud, tb, &tcs) == 0 && tcs != cs)
    problem(c,
            "change %llu names pruned process %s, whose tombstone has "
            "change_seq %llu",
            (unsigned long long)cs, id, (unsigned long long)tcs);
  return 0;
}

static int on_lease(aud *c, const MDB_val *k, const MDB_val *v) {
  char id[LASH_ID_MAX + 1];
  int rc;
  (void)v;
  if (!valid_id_bytes(k->mv_data, k->mv_size)) {
    problem(c, "a lease key is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  show_id(id, k->mv_data, k->mv_size);
  rc = has_key(c, LMDB__DB_RECORDS, k->mv_data, k->mv_size, NULL);
  if (rc < 0) return rc;
  if (rc == 1)
    problem(c, "a lease row exists for process %s, which has no record", id);
  return 0;
}

static int on_tomb(aud *c, const MDB_val *k, const MDB_val *v) {
  char id[LASH_ID_MAX + 1];
  unsigned char key[8];
  lash_bytes tb;
  MDB_val x;
  uint64_t cs;
  int rc;
  if (!valid_id_bytes(k->mv_data, k->mv_size)) {
    problem(c, "a tombstone key is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  show_id(id, k->mv_data, k->mv_size);
  tb.data = v->mv_data;
  tb.len = v->mv_size;
  if (c->a->tomb_seq(c->a->ud, tb, &cs) < 0) {
    problem(c, "tombstone of %s cannot be decoded", id);
    return 0;
  }
  lmdb__be64(key, cs);
  rc = has_key(c, LMDB__DB_CHANGES, key, 8, &x);
  if (rc < 0) return rc;
  if (rc == 1 || x.mv_size != k->mv_size ||
      memcmp(x.mv_data, k->mv_data, k->mv_size) != 0)
    problem(c, "tombstone of %s: change index has no entry %llu for it", id,
            (unsigned long long)cs);
  return 0;
}

/* replay keys (A): each key index entry names an event of its row that
 * carries that key. */
static int on_key(aud *c, const MDB_val *k, const MDB_val *v) {
  const char *p = k->mv_data, *nul = memchr(p, 0, k->mv_size);
  unsigned char ek[LMDB__EVKEY_MAX];
  char id[LASH_ID_MAX + 1];
  size_t idlen, kl;
  lash_bytes ev, key;
  MDB_val x;
  uint64_t seq;
  int rc;
  if (nul == NULL || !valid_id_bytes(p, (size_t)(nul - p)) ||
      (kl = k->mv_size - (size_t)(nul - p) - 1) == 0 || kl > LASH_NAME_MAX ||
      v->mv_size != 8) {
    problem(c, "a key index entry is malformed (%zu bytes)", k->mv_size);
    return 0;
  }
  idlen = (size_t)(nul - p);
  show_id(id, p, idlen);
  seq = lmdb__get_be64(v->mv_data);
  rc = has_key(c, LMDB__DB_EVENTS, ek, lmdb__evkey(ek, p, idlen, seq), &x);
  if (rc < 0) return rc;
  if (rc == 1) {
    problem(c,
            "key index: replay key %.*s of process %s names event %llu, "
            "which does not exist",
            (int)kl, nul + 1, id, (unsigned long long)seq);
    return 0;
  }
  ev.data = x.mv_data;
  ev.len = x.mv_size;
  if (c->a->event_key(c->a->ud, ev, &key) < 0) return 0; /* reported */
  if (key.data == NULL || key.len != kl || memcmp(key.data, nul + 1, kl) != 0)
    problem(c,
            "key index: replay key %.*s of process %s names event %llu, "
            "which carries %s%.*s",
            (int)kl, nul + 1, id, (unsigned long long)seq,
            key.data != NULL ? "key " : "no key", (int)key.len,
            key.data != NULL ? (const char *)key.data : "");
  return 0;
}

int lmdb__audit(lash_backend *b, lash_btxn *t, const lash_baudit *a) {
  aud c;
  lash_bmeta m;
  int rc;
  memset(&c, 0, sizeof c);
  c.s = LMDB__S(b);
  c.t = t;
  c.a = a;
  /* An unreadable meta was reported by the core: skip the range check. */
  c.meta_seq = lmdb__meta_get(b, t, &m) == 0 ? m.change_seq : UINT64_MAX;
  if ((rc = walk(&c, LMDB__DB_RECORDS, "checking records", on_record)) < 0 ||
      (rc = walk(&c, LMDB__DB_EVENTS, "checking events", on_event)) < 0 ||
      (rc = walk(&c, LMDB__DB_LIVE, "checking the live index", on_live)) < 0 ||
      (rc = walk(&c, LMDB__DB_BYSTATUS, "checking the status index",
                 on_status)) < 0 ||
      (rc = walk(&c, LMDB__DB_CHANGES, "checking the change index",
                 on_change)) < 0 ||
      (rc = walk(&c, LMDB__DB_LEASES, "checking leases", on_lease)) < 0 ||
      (rc = walk(&c, LMDB__DB_TOMBS, "checking tombstones", on_tomb)) < 0 ||
      (!c.s->no_keys &&
       (rc = walk(&c, LMDB__DB_KEYS, "checking the key index", on_key)) < 0))
    return rc;
  if (c.s->has_susp &&
      ((rc = walk(&c, LMDB__DB_TIMERS, "checking the timers", on_timer)) < 0 ||
       (rc = walk(&c, LMDB__DB_WAITERS, "checking the waiters", on_waiter)) <
           0))
    return rc;
  return 0;
}
