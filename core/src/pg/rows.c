/* rows.c - load (FOR UPDATE in a write), save and remove (queued
 * statements), and the meta row (counts as big-endian u64s). */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <stdio.h>
#include <string.h>

static int oom(pg__store *s) {
  return lash_backend_fail(&s->base, LASH_ENOMEM,
                           "out of memory writing store %s", s->name);
}

/* replay keys (A): adds one key to the set of e. */
static int keys_add(pg__ent *e, const void *key, size_t len) {
  unsigned char n = (unsigned char)len;
  if (len == 0 || len > LASH_NAME_MAX || pg__buf_reserve(&e->keys, len + 1) < 0)
    return LASH_ENOMEM;
  e->keys.p[e->keys.len++] = (char)n;
  memcpy(e->keys.p + e->keys.len, key, len);
  e->keys.len += len;
  return 0;
}

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : (c | 32) - 'a' + 10;
}

/* The keys column of lash_load_w ("6b31,6b32": hex, comma-separated; NULL:
 * none; "*": more than 256, asked one by one) into e's set. */
static int keys_load(pg__ent *e, const PGresult *r, int col) {
  const char *v = PQgetvalue(r, 0, col);
  unsigned char key[LASH_NAME_MAX];
  size_t n = 0;
  e->keys.len = 0;
  e->keys_known = !(v[0] == '*' && v[1] == '\0');
  if (PQgetisnull(r, 0, col) || !e->keys_known) return 0;
  for (;; v++) {
    if (*v == ',' || *v == '\0') {
      if (keys_add(e, key, n) < 0) return LASH_ENOMEM;
      n = 0;
      if (*v == '\0') return 0;
    } else if (v[1] != '\0' && n < sizeof key) {
      key[n++] = (unsigned char)(hexval(v[0]) << 4 | hexval(v[1]));
      v++;
    } else {
      e->keys_known = 0; /* malformed: ask the database each time */
      return 0;
    }
  }
}

static int keys_has(const pg__ent *e, const char *key, size_t len) {
  size_t i = 0;
  while (i < e->keys.len) {
    size_t n = (unsigned char)e->keys.p[i];
    if (n == len && memcmp(e->keys.p + i + 1, key, len) == 0) return 1;
    i += n + 1;
  }
  return 0;
}

static void parts(const pg__ent *e, unsigned what, lash_brow *out) {
  if (what & LASH_ROW_RECORD) out->rec = e->rec;
  if (what & LASH_ROW_LEASE) out->lease = e->lease;
  if (what & LASH_ROW_TOMB) out->tomb = e->tomb;
}

int pg__load(lash_backend *b, lash_btxn *t, const char *id, size_t idlen,
             unsigned what, lash_brow *out) {
  pg__store *s = PG__S(b);
  PGresult *r = NULL;
  pg__ent *e;
  int rc = 0;
  (void)t;
  memset(out, 0, sizeof *out);
  if ((s->in_write || s->pc) && (e = pg__cache_get(s, id, idlen)) != NULL &&
      e->known) {
    parts(e, what, out);
    return 0;
  }
  if (!s->in_write) pg__pc_off(s); /* this read may see newer commits */
  if (pg__pending_flush(s) < 0) return oom(s); /* queued writes go first */
  s->sql.len = 0;
  if (pg__buf_str(&s->sql, s->in_write ? "EXECUTE lash_load_w("
                                       : "EXECUTE lash_load_r(") < 0 ||
      pg__buf_bytea(&s->sql, id, idlen) < 0 || pg__buf_str(&s->sql, ")") < 0)
    return oom(s);
  if ((rc = pg__run(s, s->sql.p, "loading a process", &r)) < 0) return rc;
  if (PQntuples(r) == 1) {
    pg__ent got;
    memset(&got, 0, sizeof got);
    rc = pg__bytea(s, r, 0, 0, &got.rec);
    if (rc == 0) rc = pg__bytea(s, r, 0, 1, &got.lease);
    if (rc == 0) rc = pg__bytea(s, r, 0, 2, &got.tomb);
    if (rc == 0) {
      parts(&got, what, out);
      if (s->in_write && (e = pg__cache_put(s, id, idlen)) != NULL) {
        e->known = 1;
        e->rec = got.rec;
        e->lease = got.lease;
        e->tomb = got.tomb;
        e->rx_ok = e->lx_ok = 0; /* versions not asked for */
        if (PQnfields(r) > 3 && keys_load(e, r, 3) < 0) rc = oom(s); /* (A) */
      }
    }
  }
  PQclear(r);
  return rc;
}

static int bytes_arg(pg__buf *q, const lash_bytes *v) {
  int rc = pg__buf_str(q, ", ");
  return rc == 0 ? pg__buf_bytea(q, v->data, v->len) : rc;
}

/* Queues "EXECUTE name(id[, a][mid][, b][tail]);". */
static int put_stmt(pg__store *s, const char *name, const lash_bsave *row,
                    const lash_bytes *a, const char *mid, const lash_bytes *b,
                    const char *tail) {
  pg__buf *q = &s->q;
  int rc = pg__buf_fmt(q, "EXECUTE %s(", name);
  if (rc == 0) rc = pg__buf_bytea(q, row->id, row->idlen);
  if (rc == 0 && a != NULL) rc = bytes_arg(q, a);
  if (rc == 0 && mid != NULL) rc = pg__buf_str(q, mid);
  if (rc == 0 && b != NULL) rc = bytes_arg(q, b);
  if (rc == 0 && tail != NULL) rc = pg__buf_str(q, tail);
  if (rc == 0) rc = pg__buf_str(q, ");");
  s->nq++;
  return rc;
}

int pg__save(lash_backend *b, lash_btxn *t, const lash_bsave *row) {
  pg__store *s = PG__S(b);
  pg__ent *e;
  size_t i;
  int rc = 0;
  (void)t;
  /* One INSERT may not touch a row twice: a row already pending goes
   * first. */
  if (s->pgen == 0) s->pgen = 1; /* a new entry's 0 is never pending */
  /* e stays where it is below: nothing adds an entry until the end */
  if ((e = pg__cache_put(s, row->id, row->idlen)) == NULL) return oom(s);
  if (e->pgen == s->pgen && pg__pending_flush(s) < 0) return oom(s);
  e->pgen = s->pgen;
  /* A lease row this write knows is absent (its claim page or load read
   * none, and nothing wrote one since) is inserted without ON CONFLICT's
   * look-up and speculative lock (docs/perf.md, session 7). */
  rc = pg__pending_save(s, row, e->known && e->lease.data == NULL);
  if (rc == 0 && row->drop_tomb)
    rc = put_stmt(s, "lash_tomb_drop", row, NULL, NULL, NULL, NULL);
  if (rc < 0) return oom(s);
  s->wrote = 1;
  /* What this transaction now knows of the row (only a row it loaded: of
   * another, the parts not written are unknown). */
  for (i = 0; i < row->nevents; i++)
    if (pg__cache_event(s, e, row->events[i].seq, row->events[i].data) < 0)
      return oom(s);
  /* replay keys (A): the row's key set follows its new events */
  if (e->keys_known)
    for (i = 0; i < row->nevents; i++)
      if (row->events[i].key.data != NULL &&
          keys_add(e, row->events[i].key.data, row->events[i].key.len) < 0)
        return oom(s);
  {
    lash_bytes rec = row->rec, lease = row->lease;
    if ((rec.data != NULL && pg__keep(s, &rec) < 0) ||
        (lease.data != NULL && pg__keep(s, &lease) < 0))
      return oom(s);
    /* the versions pg__cache_verify looks for: this transaction's */
    if (rec.data != NULL) {
      e->rec = rec;
      e->rx = s->cur_xid;
      e->rx_ok = 1;
      e->live = row->after.exists && row->after.listed;
    }
    if (lease.data != NULL) {
      e->lease = lease;
      e->lx = s->cur_xid;
      e->lx_ok = 1;
    }
    if (row->drop_tomb) e->tomb.data = NULL, e->tomb.len = 0;
  }
  return 0;
}

/* replay keys (A): one indexed look-up (the queued writes go first). */
int pg__key_get(lash_backend *b, lash_btxn *t, const char *id, size_t idlen,
                const char *key, size_t keylen, uint64_t *seq, lash_bytes *ev) {
  pg__store *s = PG__S(b);
  PGresult *r = NULL;
  int rc;
  pg__ent *e;
  (void)t;
  *seq = 0;
  if (ev != NULL) ev->data = NULL, ev->len = 0;
  /* A write knows the keys of the rows it loaded: a new key costs no
   * round trip. */
  if (s->in_write && (e = pg__cache_get(s, id, idlen)) != NULL &&
      e->keys_known && !keys_has(e, key, keylen))
    return LASH_ENOENT;
  s->sql.len = 0;
  if (pg__buf_str(&s->sql, "EXECUTE lash_key_get(") < 0 ||
      pg__buf_bytea(&s->sql, id, idlen) < 0 || pg__buf_str(&s->sql, ", ") < 0 ||
      pg__buf_bytea(&s->sql, key, keylen) < 0 || pg__buf_str(&s->sql, ")") < 0)
    return oom(s);
  if (pg__pending_flush(s) < 0) return oom(s); /* queued writes go first */
  if ((rc = pg__run(s, s->sql.p, "looking up a replay key", &r)) < 0) return rc;
  if (PQntuples(r) != 1) {
    rc = LASH_ENOENT;
  } else {
    *seq = pg__u64(r, 0, 0);
    if (ev != NULL) rc = pg__bytea(s, r, 0, 1, ev);
  }
  PQclear(r);
  return rc;
}

int pg__remove(lash_backend *b, lash_btxn *t, const lash_bremove *row,
               uint64_t *events) {
  pg__store *s = PG__S(b);
  PGresult *r = NULL;
  pg__ent *e;
  int rc;
  (void)t;
  *events = 0;
  if (pg__pending_flush(s) < 0) return oom(s); /* the row's writes first */
  s->sql.len = 0;
  if (pg__buf_str(&s->sql, "EXECUTE lash_remove(") < 0 ||
      pg__buf_bytea(&s->sql, row->id, row->idlen) < 0 ||
      pg__buf_str(&s->sql, ", ") < 0 ||
      pg__buf_bytea(&s->sql, row->tomb.data, row->tomb.len) < 0 ||
      pg__buf_fmt(&s->sql, ", %llu)",
                  (unsigned long long)row->tomb_change_seq) < 0)
    return oom(s);
  if ((rc = pg__run(s, s->sql.p, "pruning a process", &r)) < 0) return rc;
  if (PQntuples(r) == 1) *events = pg__u64(r, 0, 0);
  PQclear(r);
  s->wrote = 1;
  if ((e = pg__cache_put(s, row->id, row->idlen)) != NULL) {
    lash_bytes tomb = row->tomb;
    if (pg__keep(s, &tomb) < 0) return oom(s);
    memset(&e->rec, 0, sizeof e->rec);
    memset(&e->lease, 0, sizeof e->lease);
    e->tomb = tomb;
    e->known = 1;
    e->rx_ok = e->lx_ok = 0;
    e->nev = 0;      /* the log is gone */
    e->keys.len = 0; /* (A) and its keys */
    e->keys_known = 1;
  }
  return 0;
}

/* ---------------------------------------------------------------- meta */

static void be64(unsigned char *p, uint64_t v) {
  int i;
  for (i = 7; i >= 0; i--, v >>= 8)
    p[i] = (unsigned char)v;
}

int pg__meta_decode(const PGresult *r, int row, int col, lash_bmeta *out) {
  const char *v;
  size_t n;
  int i, j;
  memset(out, 0, sizeof *out);
  out->change_seq = pg__u64(r, row, col);
  if (PQgetisnull(r, row, col + 1)) return 0;
  v = PQgetvalue(r, row, col + 1);
  n = strlen(v);
  /* "\x" then 16 hex digits per counter, status 1..LASH_STATUS_COUNT */
  for (i = 1; i <= LASH_STATUS_COUNT + 1 && 2 + 16 * (size_t)i <= n; i++) {
    uint64_t c = 0;
    for (j = 0; j < 16; j++) {
      char h = v[2 + 16 * (i - 1) + j];
      c = (c << 4) | (uint64_t)(h <= '9' ? h - '0' : (h | 32) - 'a' + 10);
    }
    /* after the statuses: the suspended count (issue 9) */
    if (i <= LASH_STATUS_COUNT)
      out->counts[i] = c;
    else
      out->suspended = c;
  }
  return 0;
}

int pg__meta_get(lash_backend *b, lash_btxn *t, lash_bmeta *out) {
  pg__store *s = PG__S(b);
  PGresult *r = NULL;
  int rc;
  (void)t;
  if (!s->meta_loaded && s->pc) {
    *out = s->meta; /* as our last commit left it */
    return 0;
  }
  if (!s->meta_loaded) {
    if ((rc = pg__run(s, "EXECUTE lash_meta_read", "reading meta", &r)) < 0)
      return rc;
    rc = PQntuples(r) == 1 ? pg__meta_decode(r, 0, 0, &s->meta)
                           : lash_backend_fail(b, LASH_ECORRUPT,
                                               "store %s: its meta row is "
                                               "missing",
                                               s->name);
    PQclear(r);
    if (rc < 0) return rc;
    s->meta_loaded = 1;
  }
  *out = s->meta;
  return 0;
}

int pg__meta_put(lash_backend *b, lash_btxn *t, const lash_bmeta *m) {
  pg__store *s = PG__S(b);
  unsigned char v[8 * (LASH_STATUS_COUNT + 1)];
  int i, rc;
  (void)t;
  for (i = 1; i <= LASH_STATUS_COUNT; i++)
    be64(v + 8 * (i - 1), m->counts[i]);
  be64(v + 8 * LASH_STATUS_COUNT, m->suspended);
  rc = pg__buf_fmt(&s->q, "EXECUTE lash_meta_put(%llu, ",
                   (unsigned long long)m->change_seq);
  if (rc == 0) rc = pg__buf_bytea(&s->q, v, sizeof v);
  if (rc == 0) rc = pg__buf_str(&s->q, ");");
  if (rc < 0) return oom(s);
  s->nq++;
  s->meta = *m;
  s->wrote = 1;
  s->meta_touched = 1;
  return 0;
}
