/* summary.c - lash_summarize: counts and duration histograms per kind, in
 * one walk of the rows (what `lash metrics` and `lash ui` show).
 *
 * Kinds are few beside rows: they are kept in an array sorted by name and
 * found by binary search, so the walk costs a decode per row and no
 * allocation per row. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, strcasecmp */
#endif
#include "registry-int.h"

#include <stdlib.h>
#include <string.h>

typedef struct sum_kind {
  char *name;
  lash_kind_summary k;
} sum_kind;

typedef struct sum_ctx {
  sum_kind *kinds;
  size_t n, cap;
  int oom;
} sum_ctx;

static const int64_t bounds[LASH_SUMMARY_NBOUNDS] = LASH_SUMMARY_BOUNDS;

static void hist_add(lash_hist *h, int64_t ms) {
  size_t i = 0;
  if (ms < 0) ms = 0;
  while (i < LASH_SUMMARY_NBOUNDS && ms > bounds[i])
    i++;
  h->bucket[i]++;
  h->count++;
  h->sum_ms += (double)ms;
}

/* The entry of @p kind, added when new; NULL when out of memory. */
static sum_kind *kind_of(sum_ctx *c, const char *kind) {
  size_t lo = 0, hi = c->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int cmp = strcmp(c->kinds[mid].name, kind);
    if (cmp == 0) return &c->kinds[mid];
    if (cmp < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    sum_kind *k = realloc(c->kinds, cap * sizeof *k);
    if (k == NULL) return NULL;
    c->kinds = k;
    c->cap = cap;
  }
  memmove(&c->kinds[lo + 1], &c->kinds[lo], (c->n - lo) * sizeof *c->kinds);
  memset(&c->kinds[lo], 0, sizeof c->kinds[lo]);
  if ((c->kinds[lo].name = strdup(kind)) == NULL) {
    memmove(&c->kinds[lo], &c->kinds[lo + 1], (c->n - lo) * sizeof *c->kinds);
    return NULL;
  }
  c->n++;
  return &c->kinds[lo];
}

static int per_row(void *ud, const lash_record *r) {
  sum_ctx *c = ud;
  sum_kind *k = kind_of(c, r->kind);
  if (k == NULL) {
    c->oom = 1;
    return 1;
  }
  if (r->status > 0 && r->status <= LASH_STATUS_COUNT) k->k.count[r->status]++;
  if (r->status == LASH_PENDING &&
      (k->k.oldest_pending_at == 0 || r->created_at < k->k.oldest_pending_at))
    k->k.oldest_pending_at = r->created_at;
  if (LASH_IS_TERMINAL(r->status)) {
    hist_add(&k->k.duration, r->updated_at - r->created_at);
    if (r->has_attempt)
      hist_add(&k->k.attempt, r->updated_at - r->attempt.started_at);
  }
  if (r->has_attempt) k->k.attempts += r->attempt.number;
  return 0;
}

int lash_summarize(lash_store *s, lash_txn *txn, lash_kind_summary_fn fn,
                   void *ud) {
  sum_ctx c;
  lash_list_filter f;
  size_t i;
  int rc, stopped = 0;
  if (s == NULL || fn == NULL)
    return s != NULL ? lash__fail(s, LASH_EINVAL, "lash_summarize: no fn")
                     : LASH_EINVAL;
  memset(&c, 0, sizeof c);
  memset(&f, 0, sizeof f);
  rc = lash_list(s, txn, &f, per_row, &c);
  if (rc >= 0 && c.oom)
    rc = lash__fail(s, LASH_ENOMEM, "lash_summarize: out of memory");
  for (i = 0; i < c.n; i++) {
    if (rc >= 0 && !stopped) {
      int st;
      c.kinds[i].k.kind = c.kinds[i].name;
      if ((st = fn(ud, &c.kinds[i].k)) != 0) {
        stopped = 1;
        if (st < 0) rc = st;
      }
    }
    free(c.kinds[i].name);
  }
  free(c.kinds);
  return rc < 0 ? rc : (int)c.n;
}
