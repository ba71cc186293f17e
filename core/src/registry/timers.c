/* timers.c - durable timers (issue 9): the earliest wake_at of the
 * suspended rows, and firing the rows whose wake_at has come, through the
 * backend's timer index (wake_at, id). Waking itself is registry.c's
 * (lash__wake): a row fires once, whoever fires it. */
#include "registry-int.h"

#include <string.h>

static int first_cb(void *ud, const lash_bitem *it) {
  *(int64_t *)ud = (int64_t)it->seq;
  return 1;
}

int lash_timers_next(lash_store *s, lash_txn *txn, int64_t *at) {
  lash_btxn *bt = NULL;
  lash_bscan q;
  int rc;
  lash__clear(s);
  if (at == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_timers_next: no output given");
  *at = 0;
  if ((rc = lash__rbegin(s, txn, &bt)) < 0) return rc;
  /* The indexes of a batch's cached rows are written at flush. */
  if (txn != NULL && (rc = lash__wb_flush(txn, 0)) < 0) goto out;
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_TIMERS;
  q.flags = LASH_SCAN_KEYS;
  rc = s->b->m->scan(s->b, bt, &q, first_cb, at);
out:
  lash__rend(s, txn, bt);
  return rc;
}

typedef struct due {
  lash__buf ids; /* NUL-terminated */
  int64_t now;
  size_t limit, n;
} due;

static int due_cb(void *ud, const lash_bitem *it) {
  due *d = ud;
  if ((int64_t)it->seq > d->now) return 1;
  if (lash__ids_add(&d->ids, it->id, it->idlen) < 0) return LASH_ENOMEM;
  d->n++;
  return d->limit > 0 && d->n >= d->limit ? 1 : 0;
}

int lash_timers_fire(lash_store *s, lash_txn *txn, int64_t now, size_t limit,
                     size_t *fired) {
  lash_txn *t = NULL;
  lash_bscan q;
  lash__sv none = {NULL, 0};
  due d;
  size_t off, n = 0;
  int rc;

  lash__clear(s);
  if (fired != NULL) *fired = 0;
  if (now <= 0)
    return lash__fail(s, LASH_EINVAL,
                      "lash_timers_fire: now %lld must be a time (ms since "
                      "the epoch)",
                      (long long)now);
  memset(&d, 0, sizeof d);
  d.now = now;
  d.limit = limit;
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  /* The timer index must hold this transaction's rows too. */
  if ((rc = lash__wb_flush(t, 0)) < 0) goto out;
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_TIMERS;
  q.flags = LASH_SCAN_KEYS;
  rc = s->b->m->scan(s->b, t->bt, &q, due_cb, &d);
  if (rc == LASH_ENOMEM) rc = lash__fail(s, rc, "out of memory firing timers");
  for (off = 0; rc >= 0 && off < d.ids.len;) {
    const char *id = d.ids.p + off;
    size_t idn = strlen(id);
    rc = lash__wake(t, id, idn, "timer", now, none);
    if (rc > 0) n++;
    off += idn + 1;
  }
  if (rc > 0) rc = 0;
  /* A wake that failed after an earlier one wrote must not be committed
   * in part by a batch. */
  if (rc < 0 && n > 0 && t->rc == 0) t->rc = rc;
out:
  lash__buf_free(&d.ids);
  rc = lash__wend(s, t, rc);
  if (rc >= 0 && fired != NULL) *fired = n;
  return rc;
}
