/* pending.c - multi-row writes (mig): the rows, events and leases that
 * saves queue wait here, one array per column, and join s->q as one
 * prepared statement per table (rows, events, leases: INSERT ... SELECT
 * FROM unnest of the arrays, prepared in schema.c) before a statement
 * that may read them or the COMMIT goes: a loop turn's hundreds of rows
 * cost three statements, not three per row. The arrays travel in the
 * binary format as parameters (pg__run sends them in a pipeline with the
 * text statements around them): the server reads no array literal, no
 * hex, and parses no statement text for them (array_in and the lexer were
 * ~12% of its time in the drain: docs/perf.md). One INSERT may not touch
 * a row twice: pg__save flushes before it queues a row already pending. */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { C_ID, C_KIND, C_REC, C_STATUS, C_LIVE, C_CS, C_WAKE, C_AWAITS, C_RANK };
enum { C_SEQ = 1, C_EV, C_KEY }; /* events: id, seq, ev, key */
enum { C_LEASE = 1 };            /* leases: id, lease */
enum { N_ROWS = 10, N_EV = 4, N_LEASE = 2 };

/* The element types of each table's columns (pg_type oids: bytea 17,
 * int2 21, int8 20, bool 16), as the prepared statements declare them. */
enum { T_BYTEA = 17, T_INT2 = 21, T_INT8 = 20, T_BOOL = 16 };
static const unsigned rows_types[N_ROWS] = {T_BYTEA, T_BYTEA, T_BYTEA, T_INT2,
                                            T_BOOL,  T_INT8,  T_INT8,  T_BYTEA,
                                            T_INT8,  T_INT8};
static const unsigned ev_types[N_EV] = {T_BYTEA, T_INT8, T_BYTEA, T_BYTEA};
static const unsigned lease_types[N_LEASE] = {T_BYTEA, T_BYTEA};

static int live(const lash_bindex *x) {
  return x->exists && x->listed;
}

void pg__pending_reset(pg__store *s) {
  int i;
  for (i = 0; i < PG__PCOLS; i++)
    s->prow.col[i].len = s->pev.col[i].len = s->plea.col[i].len =
        s->pnew.col[i].len = 0;
  s->prow.n = s->pev.n = s->plea.n = s->pnew.n = 0;
  s->nbst = 0;
  s->bdata.len = 0;
  s->pgen++;
}

void pg__pending_free(pg__store *s) {
  int i;
  for (i = 0; i < PG__PCOLS; i++) {
    pg__buf_free(&s->prow.col[i]);
    pg__buf_free(&s->pev.col[i]);
    pg__buf_free(&s->plea.col[i]);
    pg__buf_free(&s->pnew.col[i]);
  }
  pg__buf_free(&s->bdata);
  free(s->bst);
  s->bst = NULL;
  s->nbst = s->capbst = 0;
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

/* ---- binary array elements: a 4-byte length (-1: NULL), the bytes */

static void put_be(unsigned char *o, uint64_t v, int n) {
  int i;
  for (i = n - 1; i >= 0; i--, v >>= 8)
    o[i] = (unsigned char)v;
}

static int bin_bytes(pg__buf *b, const void *data, size_t len) {
  unsigned char *o;
  if (len > 0x7fffffff || pg__buf_reserve(b, 4 + len) < 0) return LASH_ENOMEM;
  o = (unsigned char *)b->p + b->len;
  put_be(o, data == NULL ? 0xffffffffu : (uint32_t)len, 4);
  if (data != NULL && len > 0) memcpy(o + 4, data, len);
  b->len += 4 + (data != NULL ? len : 0);
  return 0;
}

static int bin_int(pg__buf *b, uint64_t v, int n) {
  unsigned char *o;
  if (pg__buf_reserve(b, 4 + (size_t)n) < 0) return LASH_ENOMEM;
  o = (unsigned char *)b->p + b->len;
  put_be(o, (uint64_t)n, 4);
  put_be(o + 4, v, n);
  b->len += 4 + (size_t)n;
  return 0;
}

/* Moves a table's columns into s->bdata as binary arrays (array_recv's
 * format: dimensions 1, no null flag needed, the element type, the length,
 * lower bound 1, the elements) and queues its marker in s->q. */
static int pending_stmt(pg__store *s, const char *name, pg__pend *p, int ncols,
                        const unsigned *types) {
  pg__bstmt *st;
  char mark[32];
  int i;
  if (p->n == 0) return 0;
  if (s->nbst == s->capbst) {
    size_t cap = s->capbst ? 2 * s->capbst : 8;
    pg__bstmt *n = realloc(s->bst, cap * sizeof *n);
    if (n == NULL) return LASH_ENOMEM;
    s->bst = n;
    s->capbst = cap;
  }
  st = &s->bst[s->nbst];
  st->name = name;
  st->nparams = ncols;
  for (i = 0; i < ncols; i++) {
    pg__buf *c = &p->col[i];
    unsigned char *o;
    if (pg__buf_reserve(&s->bdata, 20 + c->len) < 0) return LASH_ENOMEM;
    st->off[i] = s->bdata.len;
    o = (unsigned char *)s->bdata.p + s->bdata.len;
    put_be(o, 1, 4);
    put_be(o + 4, 0, 4);
    put_be(o + 8, types[i], 4);
    put_be(o + 12, p->n, 4);
    put_be(o + 16, 1, 4);
    memcpy(o + 20, c->p, c->len);
    s->bdata.len += 20 + c->len;
    st->len[i] = 20 + c->len;
    c->len = 0;
  }
  snprintf(mark, sizeof mark, "\001%zu;", s->nbst);
  s->nbst++;
  s->nq++;
  p->n = 0;
  return pg__buf_str(&s->q, mark);
}

int pg__pending_flush(pg__store *s) {
  int rc;
  if (s->prow.n + s->pev.n + s->plea.n + s->pnew.n == 0) return 0;
  rc = pending_stmt(s, "lash_ev_putn", &s->pev, N_EV, ev_types);
  if (rc == 0)
    rc = pending_stmt(s, "lash_rows_putn", &s->prow, N_ROWS, rows_types);
  if (rc == 0)
    rc = pending_stmt(s, "lash_lease_putn", &s->plea, N_LEASE, lease_types);
  if (rc == 0)
    rc = pending_stmt(s, "lash_lease_newn", &s->pnew, N_LEASE, lease_types);
  s->pgen++;
  return rc;
}

int pg__pending_save(pg__store *s, const lash_bsave *row, int lease_new) {
  size_t i;
  int rc = 0;
  for (i = 0; i < row->nevents && rc == 0; i++) {
    const lash_bevent *ev = &row->events[i];
    pg__buf *c = s->pev.col;
    rc = bin_bytes(&c[C_ID], row->id, row->idlen);
    if (rc == 0) rc = bin_int(&c[C_SEQ], ev->seq, 8);
    if (rc == 0)
      rc = bin_bytes(&c[C_EV], ev->data.data != NULL ? ev->data.data : "",
                     ev->data.len);
    /* replay keys (A): the key column, NULL when none */
    if (rc == 0) rc = bin_bytes(&c[C_KEY], ev->key.data, ev->key.len);
    s->pev.n++;
  }
  if (rc == 0 && row->rec.data != NULL) {
    pg__buf *c = s->prow.col;
    rc = bin_bytes(&c[C_ID], row->id, row->idlen);
    if (rc == 0)
      rc = bin_bytes(&c[C_KIND], row->kind.data != NULL ? row->kind.data : "",
                     row->kind.len);
    if (rc == 0) rc = bin_bytes(&c[C_REC], row->rec.data, row->rec.len);
    if (rc == 0)
      rc = bin_int(&c[C_STATUS], (uint64_t)(int64_t)row->after.status, 2);
    if (rc == 0) rc = bin_int(&c[C_LIVE], live(&row->after) ? 1 : 0, 1);
    if (rc == 0) rc = bin_int(&c[C_CS], row->after.change_seq, 8);
    /* ---- suspension and timers (issue 9): wake_at, awaits ---- */
    if (rc == 0)
      rc = row->after.wake_at > 0
               ? bin_int(&c[C_WAKE], (uint64_t)row->after.wake_at, 8)
               : bin_bytes(&c[C_WAKE], NULL, 0);
    if (rc == 0)
      rc = bin_bytes(&c[C_AWAITS], row->after.awaits.data,
                     row->after.awaits.len);
    /* issue 13 (claim): the live order, rank = -priority, cseq */
    if (rc == 0) rc = bin_int(&c[C_RANK], (uint64_t)-row->after.priority, 8);
    if (rc == 0) rc = bin_int(&c[C_RANK + 1], row->after.order, 8);
    s->prow.n++;
  }
  if (rc == 0 && row->lease.data != NULL) {
    pg__pend *p = lease_new ? &s->pnew : &s->plea;
    rc = bin_bytes(&p->col[C_ID], row->id, row->idlen);
    if (rc == 0)
      rc = bin_bytes(&p->col[C_LEASE], row->lease.data, row->lease.len);
    p->n++;
  }
  return rc;
}
