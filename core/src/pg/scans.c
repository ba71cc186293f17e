/* scans.c - the scans, a keyset page per statement (live rows of a kind
 * FOR UPDATE SKIP LOCKED inside a write), and stats. */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <stdlib.h>
#include <string.h>

#define PAGE 256

static int prefetch(const pg__store *s) {
  return s->in_write;
}

/* Builds one page's statement into s->sql; the cursor is *after (ids) or
 * after_seq (events, changes). */
static int page_sql(pg__store *s, const lash_bscan *q, const void *after,
                    size_t afterlen, uint64_t after_seq, int64_t after_prio) {
  pg__buf *b = &s->sql;
  int last = (q->flags & LASH_SCAN_LAST) != 0;
  int keys = (q->flags & LASH_SCAN_KEYS) != 0;
  const char *order = last ? "DESC LIMIT 1"
                           : "LIMIT "
                             "256";
  int rc = 0;
  b->len = 0;
  switch (q->what) {
  case LASH_SCAN_EVENTS:
    rc = pg__buf_fmt(
        b, "SELECT seq, id, %s FROM events WHERE id = ", keys ? "NULL" : "ev");
    if (rc == 0) rc = pg__buf_bytea(b, q->id, q->idlen);
    if (rc == 0 && !last)
      rc = pg__buf_fmt(b, " AND seq > %llu", (unsigned long long)after_seq);
    if (rc == 0) rc = pg__buf_fmt(b, " ORDER BY seq %s", order);
    return rc;
  case LASH_SCAN_CHANGES:
    /* Each table's page in its change index's order, then the two merged:
     * the planner otherwise reads every row past the cursor and sorts them
     * when many are (a reader far behind: 17 ms a page of 256 out of
     * 20,000, and 0.9 ms near the head; docs/perf.md, session 7). */
    return pg__buf_fmt(
        b,
        "SELECT cs, id, rec, tomb FROM ((SELECT change_seq AS cs, id, rec, "
        "NULL::bytea AS tomb FROM rows WHERE change_seq > %llu ORDER BY "
        "change_seq %s) UNION ALL (SELECT change_seq, id, NULL, tomb FROM "
        "tombs WHERE change_seq > %llu ORDER BY change_seq %s)) c ORDER BY cs "
        "%s",
        (unsigned long long)(last ? 0 : after_seq), order,
        (unsigned long long)(last ? 0 : after_seq), order, order);
  case LASH_SCAN_LIVE:
    /* Inside a write the page brings each row's lease and tombstone too:
     * the claims that follow load them from the cache. */
    /* issue 13 (claim): in live order (rank = -priority, cseq, id); the
     * last two columns are the position. */
    /* The plan walks the live index in order and stops at the page's
     * end (lease and tombstone by their keys). Left to itself the planner
     * sorts the whole kind when the table has no statistics yet (a new or
     * just filled store: `kind = X` is guessed to match 0.5% of the rows),
     * which made each page cost the whole backlog (docs/perf.md). SET
     * LOCAL: to the end of this transaction, whose other statements are
     * key look-ups and writes. */
    rc = pg__buf_str(b, "SET LOCAL enable_sort = off; SET LOCAL "
                        "enable_bitmapscan = off; SET LOCAL enable_hashjoin "
                        "= off; SET LOCAL enable_mergejoin = off; ");
    if (rc == 0)
      rc = pg__buf_fmt(b,
                       "SELECT 0, rows.id, %s, rows.rank, rows.cseq FROM "
                       "rows%s WHERE live AND kind = ",
                       keys          ? "NULL"
                       : prefetch(s) ? "rec, l.lease, t.tomb"
                                     : "rec",
                       !keys && prefetch(s) ? " LEFT JOIN leases l ON l.id = "
                                              "rows.id LEFT JOIN tombs t ON "
                                              "t.id = rows.id"
                                            : "");
    if (rc == 0) rc = pg__buf_bytea(b, q->kind.data, q->kind.len);
    if (rc == 0 && !last && after != NULL && afterlen > 0) {
      rc =
          pg__buf_fmt(b, " AND (rows.rank, rows.cseq, rows.id) > (%lld, %llu, ",
                      (long long)-after_prio, (unsigned long long)after_seq);
      if (rc == 0) rc = pg__buf_bytea(b, after, afterlen);
      if (rc == 0) rc = pg__buf_str(b, ")");
    }
    if (rc == 0)
      rc = last ? pg__buf_str(b, " ORDER BY rows.rank DESC, rows.cseq DESC, "
                                 "rows.id DESC LIMIT 1")
                : pg__buf_str(b, " ORDER BY rows.rank, rows.cseq, rows.id "
                                 "LIMIT 256");
    /* Claims page through live rows: rows another writer has locked are
     * skipped, not waited for. */
    if (rc == 0 && s->in_write && !last)
      rc = pg__buf_str(b, " FOR UPDATE OF rows SKIP LOCKED");
    return rc;
  case LASH_SCAN_STATUS:
    rc = pg__buf_fmt(b, "SELECT 0, id, %s FROM rows WHERE status = %d",
                     keys ? "NULL" : "rec", q->status);
    break;
  case LASH_SCAN_ROWS:
    rc = pg__buf_fmt(b, "SELECT 0, id, %s FROM rows WHERE true",
                     keys ? "NULL" : "rec");
    break;
  case LASH_SCAN_TOMBS:
    rc = pg__buf_fmt(b, "SELECT 0, id, %s FROM tombs WHERE true",
                     keys ? "NULL" : "tomb");
    break;
  case LASH_SCAN_LEASES:
    rc = pg__buf_fmt(b, "SELECT 0, id, %s FROM leases WHERE true",
                     keys ? "NULL" : "lease");
    break;
  /* ---- suspension and timers (issue 9) ---- */
  case LASH_SCAN_TIMERS:
    rc = pg__buf_fmt(b,
                     "SELECT wake_at, id, %s FROM rows WHERE wake_at IS "
                     "NOT NULL",
                     keys ? "NULL" : "rec");
    if (rc == 0 && !last && after != NULL && afterlen > 0) {
      rc = pg__buf_fmt(b, " AND (wake_at, id) > (%llu::bigint, ",
                       (unsigned long long)after_seq);
      if (rc == 0) rc = pg__buf_bytea(b, after, afterlen);
      if (rc == 0) rc = pg__buf_str(b, ")");
    }
    if (rc == 0)
      rc = pg__buf_fmt(b, " ORDER BY wake_at %s, id %s", last ? "DESC" : "",
                       order);
    return rc;
  case LASH_SCAN_WAITERS:
    rc = pg__buf_fmt(
        b, "SELECT 0, id, %s FROM rows WHERE awaits = ", keys ? "NULL" : "rec");
    if (rc == 0) rc = pg__buf_bytea(b, q->id, q->idlen);
    break;
  /* ---- version 4: the side table (kv) ---- */
  case LASH_SCAN_KV:
    rc = pg__buf_fmt(b, "SELECT 0, key, %s FROM kv WHERE ns = %d",
                     keys ? "NULL" : "val", q->ns);
    if (rc == 0 && q->idlen > 0) {
      rc = pg__buf_str(b, " AND key >= ");
      if (rc == 0) rc = pg__buf_bytea(b, q->id, q->idlen);
      if (rc == 0)
        rc = pg__buf_fmt(b, " AND substring(key from 1 for %zu) = ", q->idlen);
      if (rc == 0) rc = pg__buf_bytea(b, q->id, q->idlen);
    }
    if (rc == 0 && !last && after != NULL && afterlen > 0) {
      rc = pg__buf_str(b, " AND key > ");
      if (rc == 0) rc = pg__buf_bytea(b, after, afterlen);
    }
    if (rc == 0) rc = pg__buf_fmt(b, " ORDER BY key %s", order);
    return rc;
  default:
    return LASH_EINVAL;
  }
  if (rc == 0 && !last && after != NULL && afterlen > 0) {
    rc = pg__buf_str(b, " AND id > ");
    if (rc == 0) rc = pg__buf_bytea(b, after, afterlen);
  }
  if (rc == 0) rc = pg__buf_fmt(b, " ORDER BY id %s", order);
  return rc;
}

/* A live row of a write's page, with its lease and tombstone. */
static int cache_row(pg__store *s, const PGresult *r, int i,
                     const lash_bitem *it) {
  pg__ent *e;
  lash_bytes lease, tomb;
  int rc;
  if (pg__cache_get(s, it->id, it->idlen) != NULL) return 0; /* ours is newer */
  if ((rc = pg__bytea(s, r, i, 3, &lease)) < 0 ||
      (rc = pg__bytea(s, r, i, 4, &tomb)) < 0)
    return rc;
  if ((e = pg__cache_put(s, it->id, it->idlen)) == NULL) return 0;
  e->known = 1;
  e->rec = it->rec;
  e->lease = lease;
  e->tomb = tomb;
  return 0;
}

/* A read of the events our last commit appended (the tail of the row's
 * log: nothing after them) from the cache; 1 when answered. */
static int from_cache(pg__store *s, const lash_bscan *q, lash_bscan_fn fn,
                      void *ud, int *rc) {
  pg__ent *e;
  size_t i;
  *rc = 0;
  if (q->what != LASH_SCAN_EVENTS || (q->flags & LASH_SCAN_LAST)) return 0;
  e = pg__cache_get(s, q->id, q->idlen);
  if (e == NULL || e->nev == 0 || q->after_seq + 1 < e->ev[0].seq ||
      q->after_seq > e->ev[e->nev - 1].seq)
    return 0;
  for (i = 0; i < e->nev; i++) {
    lash_bitem it;
    if (e->ev[i].seq <= q->after_seq) continue;
    memset(&it, 0, sizeof it);
    it.id = (const char *)e->id;
    it.idlen = e->idlen;
    it.seq = e->ev[i].seq;
    if (!(q->flags & LASH_SCAN_KEYS)) it.ev = e->ev[i].data;
    if ((*rc = fn(ud, &it)) != 0) break;
  }
  if (*rc > 0) *rc = 0;
  return 1;
}

int pg__scan(lash_backend *b, lash_btxn *t, const lash_bscan *q,
             lash_bscan_fn fn, void *ud) {
  pg__store *s = PG__S(b);
  const void *after = q->after;
  size_t afterlen = q->after != NULL ? q->afterlen : 0;
  uint64_t after_seq = q->after_seq;
  int64_t after_prio = q->after_prio;
  int rc = 0, i, n;
  (void)t;
  if (q->what < LASH_SCAN_EVENTS || q->what > LASH_SCAN_KV)
    return lash_backend_fail(b, LASH_EINVAL, "scan: unknown scan %d", q->what);
  if (q->what == LASH_SCAN_KV && s->no_kv) return 0; /* (kv) nothing there */
  if (!s->in_write && s->pc) {
    int got = from_cache(s, q, fn, ud, &rc);
    if (got) return rc;
    pg__pc_off(s); /* this read may see newer commits */
  }
  for (;;) {
    PGresult *r = NULL;
    if (page_sql(s, q, after, afterlen, after_seq, after_prio) < 0)
      return lash_backend_fail(b, LASH_ENOMEM, "out of memory scanning %s",
                               s->name);
    if (pg__pending_flush(s) < 0) /* queued writes go first */
      return lash_backend_fail(b, LASH_ENOMEM, "out of memory scanning %s",
                               s->name);
    if ((rc = pg__run(s, s->sql.p, "scanning", &r)) < 0) return rc;
    n = PQntuples(r);
    for (i = 0; i < n && rc == 0; i++) {
      lash_bitem it;
      lash_bytes idb;
      memset(&it, 0, sizeof it);
      it.seq = pg__u64(r, i, 0);
      if ((rc = pg__bytea(s, r, i, 1, &idb)) < 0) break;
      it.id = (const char *)idb.data;
      it.idlen = idb.len;
      switch (q->what) {
      case LASH_SCAN_EVENTS:
        rc = pg__bytea(s, r, i, 2, &it.ev);
        after_seq = it.seq;
        break;
      case LASH_SCAN_CHANGES:
        rc = pg__bytea(s, r, i, 2, &it.rec);
        if (rc == 0) rc = pg__bytea(s, r, i, 3, &it.tomb);
        after_seq = it.seq;
        break;
      case LASH_SCAN_TOMBS:
        rc = pg__bytea(s, r, i, 2, &it.tomb);
        break;
      case LASH_SCAN_LEASES:
        rc = pg__bytea(s, r, i, 2, &it.lease);
        break;
      case LASH_SCAN_TIMERS:
        rc = pg__bytea(s, r, i, 2, &it.rec);
        after_seq = it.seq;
        break;
      case LASH_SCAN_LIVE: {
        int nf = PQnfields(r);
        rc = pg__bytea(s, r, i, 2, &it.rec);
        if (rc == 0 && nf == 7) rc = cache_row(s, r, i, &it);
        it.prio = -(int64_t)pg__u64(r, i, nf - 2);
        it.order = pg__u64(r, i, nf - 1);
        after_prio = it.prio;
        after_seq = it.order;
        break;
      }
      default:
        rc = pg__bytea(s, r, i, 2, &it.rec);
        break;
      }
      after = it.id;
      afterlen = it.idlen;
      if (rc == 0) rc = fn(ud, &it);
    }
    PQclear(r);
    if (rc != 0) return rc < 0 ? rc : 0;
    if (n < PAGE || (q->flags & LASH_SCAN_LAST)) return 0;
  }
}

int pg__stats(lash_backend *b, lash_btxn *t, lash_bstats *out) {
  pg__store *s = PG__S(b);
  PGresult *r = NULL;
  int rc;
  (void)t;
  rc = pg__run(s,
               "SELECT (SELECT count(*) FROM tombs), pg_total_relation_size("
               "'rows') + pg_total_relation_size('events') + "
               "pg_total_relation_size('leases') + pg_total_relation_size("
               "'tombs') + pg_total_relation_size('meta')",
               "reading stats", &r);
  if (rc < 0) return rc;
  out->tombstones = pg__u64(r, 0, 0);
  out->bytes_used = pg__u64(r, 0, 1);
  out->bytes_data = out->bytes_used;        /* the relations' sizes */
  out->bytes_available = UINT64_C(1) << 40; /* the server's disk decides */
  PQclear(r);
  return 0;
}
