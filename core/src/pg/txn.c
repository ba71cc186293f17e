/* txn.c - transactions and the database's clock.
 *
 * A write transaction's first statement locks the meta row: writers of a
 * store are serialised (lash_backend.h), and the same round trip reads the
 * bookkeeping and the database's clock. Writes wait in s->q and travel
 * with the next read or with COMMIT (and its one NOTIFY). */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include "base/inject.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define PG__KEEP_MAX 65536 /* rows a write keeps from the last commit */

static void set_clock(pg__store *s, const PGresult *r, int col) {
  if (PQgetisnull(r, 0, col)) return;
  s->clock_off = strtoll(PQgetvalue(r, 0, col), NULL, 10) - pg__mono_ms();
  s->clock_set = 1;
}

/* The database's clock, carried between round trips by the monotonic
 * clock and re-anchored by every transaction's first statement; it never
 * goes back (a re-anchor within the round trip's jitter would). */
int64_t pg__now(lash_backend *b) {
  pg__store *s = PG__S(b);
  struct timeval tv;
  int64_t t;
  if (s->clock_set) {
    t = pg__mono_ms() + s->clock_off;
  } else {
    gettimeofday(&tv, NULL);
    t = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
  }
  if (t < s->clock_last) t = s->clock_last;
  return s->clock_last = t;
}

/* Ends the transaction; @p committed: a write that committed (its cache
 * is kept for the reads that follow, see cache.c). */
static void end(pg__store *s, int committed) {
  int write = s->in_write, wrote = s->wrote;
  s->depth = 0;
  s->in_write = 0;
  s->wrote = 0;
  s->meta_loaded = 0;
  s->q.len = 0;
  s->nq = 0;
  pg__pending_reset(s);
  /* Only a commit that wrote sends the NOTIFY pc waits for. A read
   * leaves the cache as it is (pc_off when it went to the database). */
  if (write && committed && wrote)
    pg__pc_keep(s);
  else if (write && committed)
    pg__pc_retain(s);
  else if (write)
    pg__pc_drop(s); /* it may hold what was not committed */
  pg__blobs_free(s);
}

int pg__begin(lash_backend *b, int mode, lash_btxn **out) {
  pg__store *s = PG__S(b);
  lash_btxn *t;
  PGresult *r = NULL;
  char begin[128];
  int rc, keep, foreign;
  *out = NULL;
  if (s->depth > 0) {
    if (mode == LASH_BTXN_WRITE)
      return lash_backend_fail(b, LASH_EINVAL,
                               "store %s: a write cannot begin inside "
                               "another transaction of the same handle",
                               s->name);
    if ((t = calloc(1, sizeof *t)) == NULL) return LASH_ENOMEM;
    t->nested = 1;
    s->depth++;
    *out = t;
    return 0;
  }
  if ((rc = pg__ensure_w(s)) < 0) return rc;
  if ((t = calloc(1, sizeof *t)) == NULL) return LASH_ENOMEM;
  if (mode == LASH_BTXN_READ) {
    /* Another writer's commit seen here is taken off the listening
     * socket: notify ourselves, so the engine's poll of it still fires. */
    if (s->pc && (pg__pc_check(s), s->foreign)) {
      char relay[128];
      snprintf(relay, sizeof relay, "SELECT pg_notify('%s', 'relay')", s->chan);
      if (pg__run(s, relay, "relaying a wake", &r) == 0) PQclear(r);
      r = NULL;
    }
    /* BEGIN goes with the first statement (a read that reads nothing
     * costs no round trip); meta is read when asked for. */
    s->begin_due = 1;
    s->depth = 1;
    *out = t;
    return 0;
  }
  /* The cache our last commit left stays whole while no other writer
   * committed since (the meta row's xmin, read under its lock, below);
   * else the rows nobody else wrote since (pg__cache_verify). */
  keep = s->last_xid_ok && s->ncache > 0 && s->ncache <= PG__KEEP_MAX;
  if (!keep) pg__pc_drop(s);
  if (keep && pg__pc_compact(s) < 0) keep = 0;
  /* A write idle for longer than s->idle_ms (its process stopped inside
   * it) is ended by the server, so that its lock on the meta row does not
   * keep every other writer waiting: not one its caller holds open across
   * code of its own (b->held: eng:batch). */
  s->cur_idle_ms = b->held ? 0 : s->idle_ms;
  if (s->cur_idle_ms > 0)
    snprintf(begin, sizeof begin,
             "BEGIN; SET LOCAL idle_in_transaction_session_timeout = %d; "
             "EXECUTE lash_meta_lock",
             s->cur_idle_ms);
  else
    snprintf(begin, sizeof begin, "BEGIN; EXECUTE lash_meta_lock");
  rc = pg__run(s, begin, "beginning a write", &r);
  if (rc == 0 && PQntuples(r) != 1)
    rc = lash_backend_fail(b, LASH_ECORRUPT,
                           "store %s: its meta row is missing", s->name);
  if (rc == 0) rc = pg__meta_decode(r, 0, 0, &s->meta);
  if (rc < 0) {
    PQclear(r);
    if (PQstatus(s->w) == CONNECTION_OK &&
        PQtransactionStatus(s->w) != PQTRANS_IDLE)
      PQclear(PQexec(s->w, "ROLLBACK"));
    free(t);
    return rc;
  }
  set_clock(s, r, 2);
  s->cur_xid = (uint32_t)pg__u64(r, 0, 4);
  s->cur_txid = (int64_t)pg__u64(r, 0, 5);
  foreign = (uint32_t)pg__u64(r, 0, 3) != s->last_xid;
  PQclear(r);
  if (!keep)
    pg__pc_drop(s); /* a write reads afresh under the lock */
  else if (!foreign)
    s->pc = 0; /* the write goes on with the cache, as its own */
  else if ((rc = pg__cache_verify(s)) < 0) {
    /* another writer committed since: only the rows it left alone stay */
    if (PQstatus(s->w) == CONNECTION_OK &&
        PQtransactionStatus(s->w) != PQTRANS_IDLE)
      PQclear(PQexec(s->w, "ROLLBACK"));
    free(t);
    return rc;
  }
  s->meta_touched = 0;
  t->write = 1;
  s->depth = 1;
  s->in_write = 1;
  s->wrote = 0;
  s->meta_loaded = 1;
  *out = t;
  return 0;
}

/* The connection was lost while the COMMIT of a write was on its way
 * (the store's message says so): the server may have committed it. Asks it, on
 * a new connection, what became of the transaction (txid_status; "in progress"
 * until the server has seen the loss). @return 0 when it was committed, else
 * LASH_EIO saying whether anything was written. */
static int commit_outcome(pg__store *s) {
  char sql[96], st[32] = "", lost[600];
  int i;
  snprintf(lost, sizeof lost, "%s",
           s->base.errmsg != NULL ? s->base.errmsg : "lost the connection");
  for (i = 0; i < 40; i++) {
    PGresult *r;
    if (pg__ensure_w(s) < 0) break;
    snprintf(sql, sizeof sql, "SELECT txid_status(%lld)",
             (long long)s->cur_txid);
    r = PQexec(s->w, sql);
    st[0] = '\0';
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
        !PQgetisnull(r, 0, 0))
      snprintf(st, sizeof st, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (strcmp(st, "in progress") != 0) break;
    usleep(25000);
  }
  if (strcmp(st, "committed") == 0) return 0;
  if (strcmp(st, "aborted") == 0)
    return lash_backend_fail(&s->base, LASH_EIO,
                             "%s; the server rolled that transaction back: "
                             "nothing of it was written, lash reconnects",
                             lost);
  return lash_backend_fail(
      &s->base, LASH_EIO,
      "%s, and the server could not be asked whether the commit was "
      "written: it may have been. What lash writes again is recognised "
      "where it was done (starts, completions, fenced and keyed writes); an "
      "append without a replay key may be recorded twice",
      lost);
}

int pg__commit(lash_backend *b, lash_btxn *t) {
  pg__store *s = PG__S(b);
  PGresult *r = NULL;
  int rc, resolved;
  if (t->nested) {
    s->depth--;
    free(t);
    return 0;
  }
  if (!t->write) {
    pg__abort(b, t);
    return 0;
  }
  rc = pg__pending_flush(s);
  if (rc == 0 && s->wrote && !s->meta_touched)
    rc = pg__buf_str(&s->q, "UPDATE meta SET change_seq = change_seq WHERE "
                            "id = 1;");
  if (rc == 0 && s->wrote)
    rc = pg__buf_fmt(&s->q, "SELECT pg_notify('%s', '%llu');", s->chan,
                     (unsigned long long)s->meta.change_seq);
  if (rc == 0) rc = pg__buf_str(&s->q, "COMMIT");
  if (rc < 0) {
    rc = lash_backend_fail(b, LASH_ENOMEM, "out of memory committing to %s",
                           s->name);
  } else {
    s->nq++;
    s->committing = 1;
    rc = pg__run(s, NULL, "committing", &r);
    s->committing = 0;
    PQclear(r);
    if (rc == 0 && s->wrote && LASH_INJECT("pg.commit_lost") < 0) {
      /* a test's connection lost after the server committed */
      PQfinish(s->w);
      s->w = NULL;
      s->w_ready = 0;
      rc = lash_backend_fail(b, LASH_EIO,
                             "store %s: lost the connection to PostgreSQL "
                             "while committing (a test's)",
                             s->name);
    }
  }
  /* committed after all: a success, with nothing kept of the cache (the
   * session that wrote it is gone) */
  resolved = rc == LASH_EIO && s->wrote && PQstatus(s->w) != CONNECTION_OK &&
             (rc = commit_outcome(s)) == 0;
  if (rc < 0 && PQstatus(s->w) == CONNECTION_OK &&
      PQtransactionStatus(s->w) != PQTRANS_IDLE)
    PQclear(PQexec(s->w, "ROLLBACK"));
  if (rc == 0 && s->wrote) {
    s->own_seq = s->meta.change_seq;
    s->last_xid = s->cur_xid;
    s->last_xid_ok = !resolved;
  } else if (rc < 0) {
    s->last_xid_ok = 0;
  }
  end(s, rc == 0 && !resolved);
  free(t);
  return rc;
}

void pg__abort(lash_backend *b, lash_btxn *t) {
  pg__store *s = PG__S(b);
  if (t == NULL) return;
  if (t->nested) {
    s->depth--;
    free(t);
    return;
  }
  if (!t->write) {
    /* A read that sent its BEGIN ends with the next statement. */
    if (!s->begin_due) s->end_due = 1;
    s->begin_due = 0;
  } else if (s->w != NULL && PQstatus(s->w) == CONNECTION_OK &&
             PQtransactionStatus(s->w) != PQTRANS_IDLE) {
    PQclear(PQexec(s->w, "ROLLBACK"));
  }
  end(s, 0);
  free(t);
}
