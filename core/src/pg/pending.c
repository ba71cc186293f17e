/* pending.c - multi-row writes (mig): the rows, events and leases that
 * saves queue wait here as VALUES lists and join s->q as one INSERT per
 * table (rows, events, leases) before a statement that may read them or
 * the COMMIT goes: a loop turn's hundreds of rows cost three statements,
 * not three per row. One INSERT may not touch a row twice: pg__save flushes
 * before it queues a row already pending. */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <stdio.h>
#include <string.h>

static int live(const lash_bindex *x) {
  return x->exists && x->listed;
}

static int bytes_arg(pg__buf *q, const lash_bytes *v) {
  int rc = pg__buf_str(q, ", ");
  return rc == 0 ? pg__buf_bytea(q, v->data, v->len) : rc;
}

void pg__pending_reset(pg__store *s) {
  s->prow.len = s->pev.len = s->plea.len = 0;
  s->nprow = s->npev = s->nplea = 0;
  s->pgen++;
}

/* Appends "INSERT INTO <head> VALUES <list> <tail>;" to s->q. */
static int pending_stmt(pg__store *s, const char *head, pg__buf *list,
                        size_t *n, const char *tail) {
  int rc;
  if (*n == 0) return 0;
  rc = pg__buf_fmt(&s->q, "INSERT INTO %s VALUES ", head);
  if (rc == 0 && pg__buf_reserve(&s->q, list->len + 1) < 0) rc = LASH_ENOMEM;
  if (rc == 0) {
    memcpy(s->q.p + s->q.len, list->p, list->len);
    s->q.len += list->len;
    s->q.p[s->q.len] = '\0';
    rc = pg__buf_fmt(&s->q, " %s;", tail);
  }
  s->nq++;
  list->len = 0;
  *n = 0;
  return rc;
}

int pg__pending_flush(pg__store *s) {
  int rc;
  if (s->nprow + s->npev + s->nplea == 0) return 0;
  rc = pending_stmt(s, "events (id, seq, ev, key)", &s->pev, &s->npev,
                    "ON CONFLICT (id, seq) DO UPDATE SET ev = EXCLUDED.ev, "
                    "key = EXCLUDED.key");
  if (rc == 0)
    rc = pending_stmt(
        s,
        "rows (id, kind, rec, status, live, change_seq, wake_at, awaits, rank, "
        "cseq)",
        &s->prow, &s->nprow,
        "ON CONFLICT (id) DO UPDATE SET rec = EXCLUDED.rec, status = "
        "EXCLUDED.status, live = EXCLUDED.live, change_seq = "
        "EXCLUDED.change_seq, wake_at = EXCLUDED.wake_at, awaits = "
        "EXCLUDED.awaits");
  if (rc == 0)
    rc = pending_stmt(s, "leases (id, lease)", &s->plea, &s->nplea,
                      "ON CONFLICT (id) DO UPDATE SET lease = EXCLUDED.lease");
  s->pgen++;
  return rc;
}

/* Opens one more "(...)" of a VALUES list: the id first. */
static int pending_open(pg__buf *list, size_t *n, const lash_bsave *row) {
  int rc = pg__buf_str(list, *n > 0 ? ", (" : "(");
  if (rc == 0) rc = pg__buf_bytea(list, row->id, row->idlen);
  (*n)++;
  return rc;
}

int pg__pending_save(pg__store *s, const lash_bsave *row) {
  char arg[96];
  size_t i;
  int rc = 0;
  for (i = 0; i < row->nevents && rc == 0; i++) {
    const lash_bevent *ev = &row->events[i];
    snprintf(arg, sizeof arg, ", %llu", (unsigned long long)ev->seq);
    rc = pending_open(&s->pev, &s->npev, row);
    if (rc == 0) rc = pg__buf_str(&s->pev, arg);
    if (rc == 0) rc = bytes_arg(&s->pev, &ev->data);
    /* replay keys (A): the key column, NULL when none */
    if (rc == 0)
      rc = ev->key.data != NULL ? bytes_arg(&s->pev, &ev->key)
                                : pg__buf_str(&s->pev, ", NULL::bytea");
    if (rc == 0) rc = pg__buf_str(&s->pev, ")");
  }
  if (rc == 0 && row->rec.data != NULL) {
    /* ---- suspension and timers (issue 9): wake_at, awaits ---- */
    char at[32];
    if (row->after.wake_at > 0)
      snprintf(at, sizeof at, "%lld", (long long)row->after.wake_at);
    else
      snprintf(at, sizeof at, "NULL::bigint");
    snprintf(arg, sizeof arg, ", %d, %s, %llu, %s", row->after.status,
             live(&row->after) ? "true" : "false",
             (unsigned long long)row->after.change_seq, at);
    rc = pending_open(&s->prow, &s->nprow, row);
    if (rc == 0) rc = bytes_arg(&s->prow, &row->kind);
    if (rc == 0) rc = bytes_arg(&s->prow, &row->rec);
    if (rc == 0) rc = pg__buf_str(&s->prow, arg);
    if (rc == 0)
      rc = row->after.awaits.data != NULL
               ? bytes_arg(&s->prow, &row->after.awaits)
               : pg__buf_str(&s->prow, ", NULL::bytea");
    /* issue 13 (claim): the live order, rank = -priority */
    if (rc == 0)
      rc = pg__buf_fmt(&s->prow, ", %lld::bigint, %llu::bigint)",
                       (long long)-row->after.priority,
                       (unsigned long long)row->after.order);
  }
  if (rc == 0 && row->lease.data != NULL) {
    rc = pending_open(&s->plea, &s->nplea, row);
    if (rc == 0) rc = bytes_arg(&s->plea, &row->lease);
    if (rc == 0) rc = pg__buf_str(&s->plea, ")");
  }
  return rc;
}
