/* scans.c - the one cursor loop of the LMDB backend: every scan of
 * lash_backend.h (events of an id, live rows of a kind, rows of a status,
 * all rows, the change feed, tombstones, leases) is a prefix of one
 * database walked from a start key, with one epilogue. */
#include "lmdb-int.h"

#include <string.h>

/* Compares a key's id bytes with another id, in LMDB order. */
static int id_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c != 0) return c;
  return an < bn ? -1 : an > bn;
}

typedef struct plan {
  int db;
  unsigned char key[LMDB__WAITKEY_MAX + 9]; /* prefix, then the start */
  size_t prefix;                            /* bytes every key starts with */
  size_t start;                             /* bytes of the start key */
  const char *after;                        /* ids to skip up to (incl.) */
  size_t afterlen;
  const char *what; /* for messages */
} plan;

static int make_plan(lmdb__store *s, const lash_bscan *q, plan *p) {
  memset(p, 0, sizeof *p);
  p->after = q->after;
  p->afterlen = q->after != NULL ? q->afterlen : 0;
  switch (q->what) {
  case LASH_SCAN_EVENTS:
    p->db = LMDB__DB_EVENTS;
    p->start = lmdb__evkey(p->key, q->id, q->idlen, q->after_seq + 1);
    p->prefix = q->idlen + 1;
    p->after = NULL;
    p->afterlen = 0;
    p->what = "reading events";
    return 0;
  case LASH_SCAN_LIVE:
    p->db = LMDB__DB_LIVE;
    memcpy(p->key, q->kind.data, q->kind.len);
    p->key[q->kind.len] = 0;
    p->prefix = q->kind.len + 1;
    p->what = "reading the worklist";
    break;
  case LASH_SCAN_STATUS:
    p->db = LMDB__DB_BYSTATUS;
    p->key[0] = (unsigned char)q->status;
    p->prefix = 1;
    p->what = "listing processes";
    break;
  case LASH_SCAN_ROWS:
    p->db = LMDB__DB_RECORDS;
    p->what = "listing processes";
    break;
  case LASH_SCAN_CHANGES:
    p->db = LMDB__DB_CHANGES;
    lmdb__be64(p->key, q->after_seq + 1);
    p->start = 8;
    p->after = NULL;
    p->afterlen = 0;
    p->what = "reading the change feed";
    return 0;
  case LASH_SCAN_TOMBS:
    p->db = LMDB__DB_TOMBS;
    p->what = "reading tombstones";
    break;
  case LASH_SCAN_LEASES:
    p->db = LMDB__DB_LEASES;
    p->what = "reading leases";
    break;
  /* ---- suspension and timers (issue 9) ---- */
  case LASH_SCAN_TIMERS:
    p->db = LMDB__DB_TIMERS;
    p->after = NULL;
    p->afterlen = 0;
    p->what = "reading the timers";
    return 0;
  case LASH_SCAN_WAITERS:
    p->db = LMDB__DB_WAITERS;
    if (q->idlen == 0 || q->idlen > LASH_ID_MAX)
      return lash_backend_fail(&s->base, LASH_EINVAL,
                               "scan: waiters of an invalid id");
    memcpy(p->key, q->id, q->idlen);
    p->key[q->idlen] = 0;
    p->prefix = q->idlen + 1;
    p->what = "reading the waiters";
    break;
  /* ---- version 4: the side table (kv) ---- */
  case LASH_SCAN_KV:
    p->db = LMDB__DB_KV;
    if (q->ns < 1 || q->ns > 255 || q->idlen > LASH_KV_KEY_MAX ||
        p->afterlen > LASH_KV_KEY_MAX)
      return lash_backend_fail(&s->base, LASH_EINVAL,
                               "scan: an invalid side table range");
    p->key[0] = (unsigned char)q->ns;
    if (q->idlen > 0) memcpy(p->key + 1, q->id, q->idlen);
    p->prefix = 1 + q->idlen;
    p->what = "reading the side table";
    /* From the key after, when it is inside the prefix range (else from
     * the prefix: the walk skips keys up to after). */
    p->start = p->prefix;
    if (p->afterlen > q->idlen && !(q->flags & LASH_SCAN_LAST) &&
        (q->idlen == 0 || memcmp(p->after, q->id, q->idlen) == 0)) {
      memcpy(p->key + 1, p->after, p->afterlen);
      p->start = 1 + p->afterlen;
    }
    return 0;
  default:
    return lash_backend_fail(&s->base, LASH_EINVAL, "scan: unknown scan %d",
                             q->what);
  }
  if (p->afterlen > 0) memcpy(p->key + p->prefix, p->after, p->afterlen);
  p->start = p->prefix + p->afterlen;
  return 0;
}

/* The record an index entry names (unless only keys are asked for). */
static int index_record(lmdb__store *s, lash_btxn *t, const lash_bscan *q,
                        lash_bitem *it) {
  MDB_val x;
  int rc;
  if (q->flags & LASH_SCAN_KEYS) return 0;
  rc = lmdb__get(s, t->mt, LMDB__DB_RECORDS, it->id, it->idlen, &x);
  if (rc < 0) return rc;
  if (rc == 1)
    return lash_backend_fail(&s->base, LASH_ECORRUPT,
                             "an index names process %.*s, which has no "
                             "record (run check)",
                             (int)it->idlen, it->id);
  it->rec.data = x.mv_data;
  it->rec.len = x.mv_size;
  return 0;
}

/* Fills *it from one entry; 1: the entry is past the range. */
static int make_item(lmdb__store *s, lash_btxn *t, const lash_bscan *q,
                     const plan *p, const MDB_val *k, const MDB_val *v,
                     lash_bitem *it) {
  const char *kp = k->mv_data;
  MDB_val x;
  int rc;
  memset(it, 0, sizeof *it);
  if (k->mv_size < p->prefix || memcmp(kp, p->key, p->prefix) != 0) return 1;
  switch (q->what) {
  case LASH_SCAN_EVENTS:
    if (k->mv_size != p->prefix + 8) return 1;
    it->id = q->id;
    it->idlen = q->idlen;
    it->seq = lmdb__get_be64((const unsigned char *)kp + p->prefix);
    it->ev.data = v->mv_data;
    it->ev.len = v->mv_size;
    return 0;
  case LASH_SCAN_CHANGES:
    if (k->mv_size != 8 || v->mv_size == 0 || v->mv_size > LASH_ID_MAX)
      return lash_backend_fail(&s->base, LASH_ECORRUPT,
                               "the change feed is malformed");
    it->seq = lmdb__get_be64(k->mv_data);
    it->id = v->mv_data;
    it->idlen = v->mv_size;
    if (q->flags & LASH_SCAN_KEYS) return 0;
    rc = lmdb__get(s, t->mt, LMDB__DB_RECORDS, it->id, it->idlen, &x);
    if (rc < 0) return rc;
    if (rc == 0) {
      it->rec.data = x.mv_data;
      it->rec.len = x.mv_size;
      return 0;
    }
    rc = lmdb__get(s, t->mt, LMDB__DB_TOMBS, it->id, it->idlen, &x);
    if (rc < 0) return rc;
    if (rc == 0) {
      it->tomb.data = x.mv_data;
      it->tomb.len = x.mv_size;
    }
    return 0;
  case LASH_SCAN_KV: /* (kv) the whole key, past the namespace byte */
    it->id = kp + 1;
    it->idlen = k->mv_size - 1;
    it->rec.data = v->mv_data != NULL ? v->mv_data : (const void *)"";
    it->rec.len = v->mv_size;
    return 0;
  case LASH_SCAN_TIMERS:
    if (k->mv_size < 9 || k->mv_size > LMDB__TIMERKEY_MAX)
      return lash_backend_fail(&s->base, LASH_ECORRUPT,
                               "store %s: a timer key is malformed (run "
                               "check)",
                               s->path);
    it->seq = lmdb__get_be64(k->mv_data);
    it->id = kp + 8;
    it->idlen = k->mv_size - 8;
    return index_record(s, t, q, it);
  default:
    break;
  }
  it->id = kp + p->prefix;
  it->idlen = k->mv_size - p->prefix;
  /* (Keys of rows, tombstones and leases are ids as stored: the caller
   * judges them; lash_check reports bad ones.) */
  if (p->prefix > 0 && (it->idlen == 0 || it->idlen > LASH_ID_MAX))
    return lash_backend_fail(&s->base, LASH_ECORRUPT,
                             "store %s: an index key is malformed while %s "
                             "(run check)",
                             s->path, p->what);
  switch (q->what) {
  case LASH_SCAN_ROWS:
    it->rec.data = v->mv_data;
    it->rec.len = v->mv_size;
    break;
  case LASH_SCAN_TOMBS:
    it->tomb.data = v->mv_data;
    it->tomb.len = v->mv_size;
    break;
  case LASH_SCAN_LEASES:
    it->lease.data = v->mv_data;
    it->lease.len = v->mv_size;
    break;
  default: /* an index: the record it names */
    return index_record(s, t, q, it);
  }
  return 0;
}

/* Positions on the last entry of the prefix range. */
static int seek_last(MDB_cursor *cur, plan *p, MDB_val *k, MDB_val *v) {
  int mrc;
  if (p->prefix == 0) return mdb_cursor_get(cur, k, v, MDB_LAST);
  p->key[p->prefix - 1]++; /* the first key past the range */
  k->mv_data = p->key;
  k->mv_size = p->prefix;
  mrc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
  if (mrc == 0)
    mrc = mdb_cursor_get(cur, k, v, MDB_PREV);
  else if (mrc == MDB_NOTFOUND)
    mrc = mdb_cursor_get(cur, k, v, MDB_LAST);
  p->key[p->prefix - 1]--;
  return mrc;
}

int lmdb__scan(lash_backend *b, lash_btxn *t, const lash_bscan *q,
               lash_bscan_fn fn, void *ud) {
  lmdb__store *s = LMDB__S(b);
  MDB_cursor *cur = NULL;
  MDB_val k, v;
  lash_bitem it;
  plan p;
  int rc, mrc;

  if ((rc = make_plan(s, q, &p)) < 0) return rc;
  if ((p.db == LMDB__DB_TIMERS || p.db == LMDB__DB_WAITERS) && !s->has_susp)
    return 0; /* an old store opened read-only: nothing suspended */
  if (p.db == LMDB__DB_KV && !s->has_kv) return 0; /* the same (kv) */
  if ((mrc = mdb_cursor_open(t->mt, s->dbi[p.db], &cur)) != 0)
    return lmdb__fail(s, mrc, p.what);
  if (q->flags & LASH_SCAN_LAST) {
    mrc = seek_last(cur, &p, &k, &v);
  } else {
    k.mv_data = p.key;
    k.mv_size = p.start;
    mrc = mdb_cursor_get(cur, &k, &v, p.start == 0 ? MDB_FIRST : MDB_SET_RANGE);
  }
  for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if ((rc = make_item(s, t, q, &p, &k, &v, &it)) != 0) break;
    if (p.afterlen > 0 && id_cmp(it.id, it.idlen, p.after, p.afterlen) <= 0 &&
        !(q->flags & LASH_SCAN_LAST))
      continue;
    if ((rc = fn(ud, &it)) != 0 || (q->flags & LASH_SCAN_LAST)) break;
  }
  if (rc > 0) rc = 0; /* past the range, or fn asked to stop */
  if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
    rc = lmdb__fail(s, mrc, p.what);
  mdb_cursor_close(cur);
  return rc;
}
