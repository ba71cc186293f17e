/* writer.c - group commit and the commit hook.
 *
 * Writes queued during a loop turn (emits, completions, signals, lease
 * renewals) run in one shared transaction that the pump commits once per
 * turn; their done callbacks run only after that commit, from the pump.
 * lash_engine_write_sync flushes the queue plus its own write right away.
 *
 * The store's commit hook only copies the changes; the pump then publishes
 * them to the hub, feeds the event sink, notices cancellation requests for
 * runs of this engine and requests drives for new rows. */
#include "engine-int.h"

#include <stdlib.h>
#include <string.h>

int lash__wrv_push(lash__wrv *v, lash_write_fn fn, void *ud, lash_done_fn done,
                   int rc) {
  lash__wr *w;
  if (v->head > 0 && v->head == v->n) {
    v->head = 0;
    v->n = 0;
  }
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 64;
    lash__wr *nv = realloc(v->v, cap * sizeof *nv);
    if (nv == NULL) return LASH_ENOMEM;
    v->v = nv;
    v->cap = cap;
  }
  w = &v->v[v->n++];
  w->fn = fn;
  w->ud = ud;
  w->done = done;
  w->rc = rc;
  return 0;
}

void lash__wrv_free(lash__wrv *v) {
  free(v->v);
  memset(v, 0, sizeof *v);
}

int lash_engine_write(lash_engine *e, lash_write_fn fn, void *ud,
                      lash_done_fn done) {
  int rc;
  if (e == NULL || fn == NULL) return LASH_EINVAL;
  if (e->closing) return LASH_ECLOSED;
  if ((rc = lash__wrv_push(&e->wq, fn, ud, done, 0)) < 0) return rc;
  lash__pump_kick(e);
  return 0;
}

int lash__writer_txn(lash_engine *e, lash_write_fn fn, void *ud, int scan,
                     lash_drive_report *rep) {
  lash__wrv q = e->wq;
  lash_txn *txn = NULL;
  int rc = 0, crc, fn_rc = 0, began = 0;
  size_t i;

  if (e->in_txn) return LASH_EINVAL;
  /* Writes queued from here on (by a write fn) go to the next flush. */
  e->wq = e->wq_spare;
  e->wq.head = e->wq.n = 0;
  memset(&e->wq_spare, 0, sizeof e->wq_spare);

  rc = lash_txn_begin(e->s, &txn);
  if (rc < 0) {
    fn_rc = rc;
    crc = rc;
    goto out;
  }
  began = 1;
  e->in_txn = 1;
  for (i = q.head; i < q.n; i++)
    q.v[i].rc = q.v[i].fn(e->s, txn, q.v[i].ud);
  if (fn != NULL) fn_rc = fn(e->s, txn, ud);
  if (scan) {
    rc = lash__scan_step(e, txn, rep);
    if (fn == NULL && rc < 0) fn_rc = rc;
  }
  crc = lash_txn_commit(txn);
  e->in_txn = 0;
  if (crc == 0) e->stats.commits++;
  if (fn_rc >= 0 && crc < 0) fn_rc = crc;

out:
  if (scan || !lash__q_empty(&e->uncommitted)) lash__scan_committed(e, crc);
  for (i = q.head; i < q.n; i++) {
    lash__wr *w = &q.v[i];
    int final = !began ? crc : (w->rc >= 0 && crc < 0 ? crc : w->rc);
    if (w->done != NULL &&
        lash__wrv_push(&e->dq, NULL, w->ud, w->done, final) < 0)
      w->done(w->ud, final); /* out of memory: deliver now, not lose it */
  }
  /* Keep the larger buffer as the spare for the next swap. */
  q.head = q.n = 0;
  if (e->wq_spare.v == NULL) {
    e->wq_spare = q;
  } else {
    lash__wrv_free(&q);
  }
  lash__pump_kick(e);
  return fn_rc;
}

int lash_engine_write_sync(lash_engine *e, lash_write_fn fn, void *ud) {
  int rc;
  if (e == NULL || fn == NULL) return LASH_EINVAL;
  if (e->closing) return LASH_ECLOSED;
  if (e->batch != NULL) return fn(e->s, e->batch, ud);
  rc = lash__writer_txn(e, fn, ud, 0, NULL);
  return rc;
}

int lash_engine_batch_begin(lash_engine *e) {
  int rc;
  if (e == NULL || e->batch != NULL || e->in_txn) return LASH_EINVAL;
  if (e->closing) return LASH_ECLOSED;
  rc = lash_txn_begin(e->s, &e->batch);
  if (rc < 0) e->batch = NULL;
  return rc;
}

int lash_engine_batch_end(lash_engine *e, int commit) {
  lash_txn *txn;
  int rc = 0;
  if (e == NULL || e->batch == NULL) return LASH_EINVAL;
  txn = e->batch;
  e->batch = NULL;
  if (commit) {
    rc = lash_txn_commit(txn);
    if (rc == 0) e->stats.commits++;
  } else {
    lash_txn_abort(txn);
    rc = LASH_ECANCELED; /* runs admitted inside the batch never started */
  }
  if (!lash__q_empty(&e->uncommitted)) lash__scan_committed(e, rc);
  if (!commit) rc = 0;
  lash__pump_kick(e);
  return rc;
}

size_t lash__writer_deliver(lash_engine *e, size_t max) {
  size_t k = 0;
  while (k < max && e->dq.head < e->dq.n) {
    lash__wr w = e->dq.v[e->dq.head++];
    k++;
    w.done(w.ud, w.rc);
  }
  if (e->dq.head == e->dq.n) e->dq.head = e->dq.n = 0;
  return k;
}

/* ------------------------------------------------------------ the hook */

void lash__commit_hook(void *ud, const lash_change *changes, size_t n) {
  lash_engine *e = ud;
  size_t i;
  if (e->chg_head > 0 && e->chg_head == e->nchg) e->chg_head = e->nchg = 0;
  if (e->nchg + n > e->chg_cap) {
    size_t cap = e->chg_cap ? e->chg_cap : 64;
    lash__chg_copy *nv;
    while (cap < e->nchg + n)
      cap *= 2;
    nv = realloc(e->chg, cap * sizeof *nv);
    if (nv == NULL)
      return; /* durable anyway; waiters fall back to their backoff */
    e->chg = nv;
    e->chg_cap = cap;
  }
  for (i = 0; i < n; i++) {
    lash__chg_copy *c = &e->chg[e->nchg++];
    size_t len = strlen(changes[i].id);
    if (len > LASH_ID_MAX) len = LASH_ID_MAX;
    memcpy(c->id, changes[i].id, len);
    c->id[len] = '\0';
    c->first_seq = changes[i].first_seq;
    c->last_seq = changes[i].last_seq;
    c->status = changes[i].status;
    c->registered = changes[i].registered;
    c->cancel_requested = changes[i].cancel_requested;
  }
  lash__pump_kick(e);
}

typedef struct ev_ctx {
  lash_engine *e;
  uint64_t last;
} ev_ctx;

static int ev_cb(void *ud, const lash_event *ev) {
  ev_ctx *c = ud;
  if (ev->seq > c->last) return 1;
  c->e->runner.event(c->e->runner.ud, ev);
  return 0;
}

void lash__changes_process(lash_engine *e) {
  while (e->chg_head < e->nchg) {
    /* Copy: the sink may commit, which appends to (and moves) e->chg. */
    lash__chg_copy c = e->chg[e->chg_head++];
    lash_run *run = lash__run_find(e, c.id);
    /* Also for a run admitted by this very commit: a cancel request written
     * later in the same transaction is in c.cancel_requested only. */
    int watch =
        run != NULL && !run->cancelled && run->state != LASH__RS_FINISHING;
    ev_ctx ctx;
    lash__hub_publish(e, c.id);
    if (watch && c.cancel_requested) lash__run_cancel(run);
    if (c.first_seq > 0 && e->runner.event != NULL) {
      ctx.e = e;
      ctx.last = c.last_seq;
      lash_events_after(e->s, NULL, c.id, c.first_seq - 1,
                        (size_t)(c.last_seq - c.first_seq + 1), ev_cb, &ctx);
    }
    /* A registration this engine already admitted (lash_engine_admit in the
     * same commit) needs no drive. */
    if (c.registered && run == NULL) lash__drive_request(e);
    if (e->poll_on) lash__feed_note(e, c.id, c.last_seq, c.status);
  }
  if (e->chg_head == e->nchg) e->chg_head = e->nchg = 0;
}
