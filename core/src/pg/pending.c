/* pending.c - multi-row writes (mig): the rows, events and leases that
 * saves queue wait here, one array per column, and join s->q as one
 * EXECUTE per table (rows, events, leases: INSERT ... SELECT FROM unnest
 * of the arrays, prepared in schema.c) before a statement that may read
 * them or the COMMIT goes: a loop turn's hundreds of rows cost three
 * statements, not three per row, and the server parses and plans three
 * short statements, not a VALUES list of thousands of literals (which
 * was a third of its time in the drain: docs/perf.md). Bytes travel as
 * hex bytea elements. One INSERT may not touch a row twice: pg__save
 * flushes before it queues a row already pending. */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <stdio.h>
#include <string.h>

enum { C_ID, C_KIND, C_REC, C_STATUS, C_LIVE, C_CS, C_WAKE, C_AWAITS, C_RANK };
enum { C_SEQ = 1, C_EV, C_KEY }; /* events: id, seq, ev, key */
enum { C_LEASE = 1 };            /* leases: id, lease */
enum { N_ROWS = 10, N_EV = 4, N_LEASE = 2 };

static int live(const lash_bindex *x) {
  return x->exists && x->listed;
}

void pg__pending_reset(pg__store *s) {
  int i;
  for (i = 0; i < PG__PCOLS; i++)
    s->prow.col[i].len = s->pev.col[i].len = s->plea.col[i].len = 0;
  s->prow.n = s->pev.n = s->plea.n = 0;
  s->pgen++;
}

void pg__pending_free(pg__store *s) {
  int i;
  for (i = 0; i < PG__PCOLS; i++) {
    pg__buf_free(&s->prow.col[i]);
    pg__buf_free(&s->pev.col[i]);
    pg__buf_free(&s->plea.col[i]);
  }
}

/* The next element of a column's array literal: its separator first. */
static int el_sep(pg__buf *b, size_t n) {
  return pg__buf_str(b, n == 0 ? "{" : ",");
}

/* Bytes as a bytea element in hex ("\\x0a1b": the array literal's
 * escaped backslash, inside a standard-conforming string literal, as
 * pg__buf_bytea assumes too), read by byteain itself: no text element and
 * no decode() call per element; "" when empty, NULL when absent. */
int pg__el_bytes(pg__buf *b, size_t n, const void *data, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = data;
  char *o;
  size_t i;
  if (el_sep(b, n) < 0) return LASH_ENOMEM;
  if (data == NULL) return pg__buf_str(b, "NULL");
  if (len == 0) return pg__buf_str(b, "\"\"");
  if (pg__buf_reserve(b, 2 * len + 3) < 0) return LASH_ENOMEM;
  o = b->p + b->len;
  memcpy(o, "\\\\x", 3);
  o += 3;
  for (i = 0; i < len; i++) {
    o[2 * i] = hex[p[i] >> 4];
    o[2 * i + 1] = hex[p[i] & 15];
  }
  b->len += 2 * len + 3;
  b->p[b->len] = '\0';
  return 0;
}

int pg__el_text(pg__buf *b, size_t n, const char *text) {
  return el_sep(b, n) < 0 ? LASH_ENOMEM : pg__buf_str(b, text);
}

/* Appends "EXECUTE <name>('{..}', ...);" to s->q and empties the arrays. */
static int pending_stmt(pg__store *s, const char *name, pg__pend *p,
                        int ncols) {
  int rc, i;
  if (p->n == 0) return 0;
  rc = pg__buf_fmt(&s->q, "EXECUTE %s(", name);
  for (i = 0; i < ncols && rc == 0; i++) {
    pg__buf *c = &p->col[i];
    rc = pg__buf_str(&s->q, i > 0 ? ", '" : "'");
    if (rc == 0 && pg__buf_reserve(&s->q, c->len + 4) < 0) rc = LASH_ENOMEM;
    if (rc == 0) {
      memcpy(s->q.p + s->q.len, c->p, c->len);
      s->q.len += c->len;
      s->q.p[s->q.len] = '\0';
      rc = pg__buf_str(&s->q, "}'");
    }
    c->len = 0;
  }
  if (rc == 0) rc = pg__buf_str(&s->q, ");");
  s->nq++;
  p->n = 0;
  return rc;
}

int pg__pending_flush(pg__store *s) {
  int rc;
  if (s->prow.n + s->pev.n + s->plea.n == 0) return 0;
  rc = pending_stmt(s, "lash_ev_putn", &s->pev, N_EV);
  if (rc == 0) rc = pending_stmt(s, "lash_rows_putn", &s->prow, N_ROWS);
  if (rc == 0) rc = pending_stmt(s, "lash_lease_putn", &s->plea, N_LEASE);
  s->pgen++;
  return rc;
}

int pg__pending_save(pg__store *s, const lash_bsave *row) {
  char num[32];
  size_t i, n;
  int rc = 0;
  for (i = 0; i < row->nevents && rc == 0; i++) {
    const lash_bevent *ev = &row->events[i];
    pg__buf *c = s->pev.col;
    n = s->pev.n;
    snprintf(num, sizeof num, "%llu", (unsigned long long)ev->seq);
    rc = pg__el_bytes(&c[C_ID], n, row->id, row->idlen);
    if (rc == 0) rc = pg__el_text(&c[C_SEQ], n, num);
    if (rc == 0) rc = pg__el_bytes(&c[C_EV], n, ev->data.data, ev->data.len);
    /* replay keys (A): the key column, NULL when none */
    if (rc == 0) rc = pg__el_bytes(&c[C_KEY], n, ev->key.data, ev->key.len);
    s->pev.n++;
  }
  if (rc == 0 && row->rec.data != NULL) {
    pg__buf *c = s->prow.col;
    n = s->prow.n;
    rc = pg__el_bytes(&c[C_ID], n, row->id, row->idlen);
    if (rc == 0)
      rc = pg__el_bytes(&c[C_KIND], n, row->kind.data, row->kind.len);
    if (rc == 0) rc = pg__el_bytes(&c[C_REC], n, row->rec.data, row->rec.len);
    snprintf(num, sizeof num, "%d", row->after.status);
    if (rc == 0) rc = pg__el_text(&c[C_STATUS], n, num);
    if (rc == 0) rc = pg__el_text(&c[C_LIVE], n, live(&row->after) ? "t" : "f");
    snprintf(num, sizeof num, "%llu",
             (unsigned long long)row->after.change_seq);
    if (rc == 0) rc = pg__el_text(&c[C_CS], n, num);
    /* ---- suspension and timers (issue 9): wake_at, awaits ---- */
    if (row->after.wake_at > 0)
      snprintf(num, sizeof num, "%lld", (long long)row->after.wake_at);
    else
      snprintf(num, sizeof num, "NULL");
    if (rc == 0) rc = pg__el_text(&c[C_WAKE], n, num);
    if (rc == 0)
      rc = pg__el_bytes(&c[C_AWAITS], n, row->after.awaits.data,
                        row->after.awaits.len);
    /* issue 13 (claim): the live order, rank = -priority, cseq */
    snprintf(num, sizeof num, "%lld", (long long)-row->after.priority);
    if (rc == 0) rc = pg__el_text(&c[C_RANK], n, num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)row->after.order);
    if (rc == 0) rc = pg__el_text(&c[C_RANK + 1], n, num);
    s->prow.n++;
  }
  if (rc == 0 && row->lease.data != NULL) {
    pg__buf *c = s->plea.col;
    n = s->plea.n;
    rc = pg__el_bytes(&c[C_ID], n, row->id, row->idlen);
    if (rc == 0)
      rc = pg__el_bytes(&c[C_LEASE], n, row->lease.data, row->lease.len);
    s->plea.n++;
  }
  return rc;
}
