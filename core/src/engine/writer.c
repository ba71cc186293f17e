/* engine/writer.c - group commit (see writer.h).
 *
 * Writes queued during a loop turn (emits, completions, signals, lease
 * renewals) run in one shared transaction that the pump commits once per
 * turn; their done callbacks run only after that commit, from the pump.
 * lash_engine_write_sync flushes the queue plus its own write right away.
 * The writer knows nothing of what the hooks do.
 *
 * A transient failure (LASH_EIO on a store that reopens by itself: a lost
 * PostgreSQL connection) is not the end of the engine: the transaction
 * rolled back on the server, so nothing of the turn is written. The
 * after-commit hooks see the EIO (admissions vanish), writes queued with
 * queue_again (completions) are queued again for the next transaction,
 * the others' done callbacks get LASH_EIO; the next transaction waits on
 * a libuv timer, 10 ms doubling to 1 s, for as long as it fails (never a
 * sleep in the loop). On a store that does not reopen (LMDB) an EIO stays
 * the first storage error, which ends lash_engine_run.
 *
 * Part: writer. May call: the registry (lash.h), pump. */
#include "engine/writer.h"

#include "base/inject.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int wrv_push(lash__wrv *v, lash_write_fn fn, void *ud, lash_done_fn done,
                    int rc, int again) {
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
  w->again = again;
  return 0;
}

static void wrv_free(lash__wrv *v) {
  free(v->v);
  memset(v, 0, sizeof *v);
}

static void retry_cb(uv_timer_t *t) {
  /* (the handle's data is the handle count's, pump.c) */
  lash__writer *w =
      (lash__writer *)(void *)((char *)t - offsetof(lash__writer, retry_timer));
  w->waiting = 0;
  if (w->on_retry != NULL)
    w->on_retry(w->retry_ud, LASH__RETRY_DUE, w->fails, w->delay_ms, "");
  lash__pump_kick(w->pump);
}

void lash__writer_init(lash__writer *w, lash_store *s, lash__pump *pump,
                       uv_loop_t *loop, lash__handles *hs) {
  memset(w, 0, sizeof *w);
  w->s = s;
  w->pump = pump;
  uv_timer_init(loop, &w->retry_timer);
  lash__handle_opened(hs, (uv_handle_t *)&w->retry_timer);
}

void lash__writer_on_retry(lash__writer *w, lash__retry_fn fn, void *ud) {
  w->on_retry = fn;
  w->retry_ud = ud;
}

void lash__writer_close_timer(lash__writer *w) {
  w->waiting = 0;
  lash__handle_close((uv_handle_t *)&w->retry_timer);
}

int lash__writer_hook(lash__writer *w, lash__in_txn_fn in_txn,
                      lash__committed_fn committed, void *ud) {
  if (w->nhooks == LASH__WRITER_HOOKS) return LASH_ENOMEM;
  w->hooks[w->nhooks].in_txn = in_txn;
  w->hooks[w->nhooks].committed = committed;
  w->hooks[w->nhooks].ud = ud;
  w->nhooks++;
  return 0;
}

static int queue(lash__writer *w, lash_write_fn fn, void *ud, lash_done_fn done,
                 int again) {
  int rc;
  if (w->closed) return LASH_ECLOSED;
  if ((rc = wrv_push(&w->wq, fn, ud, done, 0, again)) < 0) return rc;
  lash__pump_kick(w->pump);
  return 0;
}

int lash__writer_queue(lash__writer *w, lash_write_fn fn, void *ud,
                       lash_done_fn done) {
  return queue(w, fn, ud, done, 0);
}

int lash__writer_queue_again(lash__writer *w, lash_write_fn fn, void *ud,
                             lash_done_fn done) {
  return queue(w, fn, ud, done, 1);
}

/* An EIO the store gets over by itself: the next write reconnects. */
static int transient(lash__writer *w, int rc) {
  return rc == LASH_EIO && lash_store_reopens(w->s);
}

/* A transaction failed transiently: the next waits out the backoff. */
static void backoff(lash__writer *w) {
  uint64_t now = uv_now(w->retry_timer.loop);
  if (w->fails++ == 0) {
    w->failed_at = now;
    w->delay_ms = LASH__RETRY_MIN_MS;
  } else if (!w->waiting) {
    w->delay_ms = w->delay_ms * 2 > LASH__RETRY_MAX_MS ? LASH__RETRY_MAX_MS
                                                       : w->delay_ms * 2;
  }
  if (w->on_retry != NULL)
    w->on_retry(w->retry_ud, LASH__RETRY_FAILED, w->fails, w->delay_ms,
                lash_errmsg(w->s));
  if (!w->waiting && !w->no_again) {
    w->waiting = 1;
    uv_timer_start(&w->retry_timer, retry_cb, (uint64_t)w->delay_ms, 0);
  }
}

static void recovered(lash__writer *w) {
  uint64_t now = uv_now(w->retry_timer.loop);
  if (w->on_retry != NULL)
    w->on_retry(w->retry_ud, LASH__RETRY_RECOVERED, w->fails,
                (int64_t)(now - w->failed_at), "");
  w->fails = 0;
  w->delay_ms = 0;
}

/* Keeps the first storage error (with the store's message). */
static void note_storage(lash__writer *w, int rc) {
  if (w->storage_rc != 0 || transient(w, rc) ||
      !(rc == LASH_EIO || rc == LASH_EFULL || rc == LASH_EPANIC ||
        rc == LASH_ENOMEM || rc == LASH_ECORRUPT))
    return;
  w->storage_rc = rc;
  snprintf(w->storage_msg, sizeof w->storage_msg, "%s", lash_errmsg(w->s));
}

static void committed(lash__writer *w, int rc) {
  size_t i;
  if (rc < 0) note_storage(w, rc);
  for (i = 0; i < w->nhooks; i++)
    if (w->hooks[i].committed != NULL)
      w->hooks[i].committed(w->hooks[i].ud, rc);
}

/* Runs the writes of q in txn (each one's rc kept for its done). */
static void run_writes(lash__wrv *q, lash__writer *w, lash_txn *txn) {
  size_t i;
  for (i = q->head; i < q->n; i++) {
    if (i > q->head) LASH_INJECT("writer.between_writes");
    q->v[i].rc = q->v[i].fn(w->s, txn, q->v[i].ud);
  }
}

/* Queues the done callbacks of q with the commit's result; after a
 * transient failure the writes queued with queue_again go back to the
 * queue instead, in order. */
static void writes_done(lash__writer *w, lash__wrv *q, int began, int crc) {
  size_t i;
  for (i = q->head; i < q->n; i++) {
    lash__wr *r = &q->v[i];
    int final = !began ? crc : (r->rc >= 0 && crc < 0 ? crc : r->rc);
    if (r->again && transient(w, final) && !w->no_again &&
        wrv_push(&w->wq, r->fn, r->ud, r->done, 0, 1) == 0)
      continue; /* written again by the next transaction */
    if (r->done != NULL && wrv_push(&w->dq, NULL, r->ud, r->done, final, 0) < 0)
      r->done(r->ud, final); /* out of memory: deliver now, not lose it */
  }
}

/* Moves the writes queued since q was taken (by bodies started inside the
 * transaction) to the end of q. 1 when there were some. */
static int take_more(lash__writer *w, lash__wrv *q) {
  size_t i;
  int any = 0;
  for (i = w->wq.head; i < w->wq.n; i++) {
    lash__wr *r = &w->wq.v[i];
    if (wrv_push(q, r->fn, r->ud, r->done, 0, r->again) < 0)
      break; /* next flush */
    any = 1;
  }
  if (i == w->wq.n)
    w->wq.head = w->wq.n = 0;
  else
    w->wq.head = i;
  return any;
}

/* Rounds of writes queued inside one transaction that join it. */
#define TAIL_ROUNDS 4

int lash__writer_txn(lash__writer *w, lash_write_fn fn, void *ud) {
  lash__wrv q = w->wq;
  lash_txn *txn = NULL;
  int rc = 0, crc, fn_rc = 0, began = 0, round;
  size_t i, from;

  if (w->in_txn) return LASH_EINVAL;
  /* Writes queued from here on (by a write fn) go to the next flush, or
   * join this one when a body the hooks started queued them. */
  w->wq = w->wq_spare;
  w->wq.head = w->wq.n = 0;
  memset(&w->wq_spare, 0, sizeof w->wq_spare);

  rc = lash_txn_begin(w->s, &txn);
  if (rc < 0) {
    fn_rc = rc;
    crc = rc;
    goto out;
  }
  began = 1;
  w->in_txn = 1;
  w->cur = txn;
  run_writes(&q, w, txn);
  if (fn != NULL) fn_rc = fn(w->s, txn, ud);
  for (round = 0;; round++) {
    for (i = 0; i < w->nhooks; i++) {
      if (w->hooks[i].in_txn == NULL) continue;
      rc = w->hooks[i].in_txn(w->hooks[i].ud, txn);
      if (rc < 0) note_storage(w, rc);
      if (fn == NULL && rc < 0 && fn_rc == 0) fn_rc = rc;
    }
    /* Bodies the hooks started and that ended at once queued their
     * completions: they join this transaction, and the hooks run again
     * for the slots those freed. */
    from = q.n;
    if (round + 1 >= TAIL_ROUNDS || !take_more(w, &q)) break;
    {
      lash__wrv tail = q;
      tail.head = from;
      run_writes(&tail, w, txn);
    }
  }
  LASH_INJECT("writer.before_commit");
  if ((crc = LASH_INJECT("writer.commit")) < 0) {
    /* a test's lost commit: nothing of the transaction is written */
    lash_txn_abort(txn);
  } else {
    crc = lash_txn_commit(txn);
  }
  LASH_INJECT("writer.after_commit");
  w->in_txn = 0;
  w->cur = NULL;
  if (crc == 0) w->commits++;
  if (fn_rc >= 0 && crc < 0) fn_rc = crc;

out:
  if (crc == 0 && w->fails > 0) recovered(w);
  committed(w, crc);
  writes_done(w, &q, began, crc);
  if (transient(w, crc)) backoff(w);
  /* Keep the larger buffer as the spare for the next swap. */
  q.head = q.n = 0;
  if (w->wq_spare.v == NULL) {
    w->wq_spare = q;
  } else {
    wrv_free(&q);
  }
  lash__pump_kick(w->pump);
  return fn_rc;
}

int lash__writer_sync(lash__writer *w, lash_write_fn fn, void *ud) {
  if (w->closed) return LASH_ECLOSED;
  if (w->batch != NULL) return fn(w->s, w->batch, ud);
  /* From a body started inside the open transaction, in code that cannot
   * yield: the write joins that transaction (durable with its commit). */
  if (w->in_txn && w->cur != NULL) return fn(w->s, w->cur, ud);
  return lash__writer_txn(w, fn, ud);
}

int lash__writer_batch_begin(lash__writer *w) {
  int rc;
  if (w->batch != NULL || w->in_txn) return LASH_EINVAL;
  if (w->closed) return LASH_ECLOSED;
  /* the user's code runs between its writes: never ended for idling */
  rc = lash_txn_begin_held(w->s, &w->batch);
  if (rc < 0) w->batch = NULL;
  return rc;
}

int lash__writer_batch_end(lash__writer *w, int commit) {
  lash_txn *txn;
  int rc = 0;
  if (w->batch == NULL) return LASH_EINVAL;
  txn = w->batch;
  w->batch = NULL;
  if (commit) {
    rc = lash_txn_commit(txn);
    if (rc == 0) w->commits++;
  } else {
    lash_txn_abort(txn);
    rc = LASH_ECANCELED; /* runs admitted inside the batch never started */
  }
  committed(w, rc);
  if (!commit) rc = 0;
  lash__pump_kick(w->pump);
  return rc;
}

void lash__writer_abort_batch(lash__writer *w) {
  if (w->batch == NULL) return;
  lash_txn_abort(w->batch);
  w->batch = NULL;
}

size_t lash__writer_deliver(lash__writer *w, size_t max) {
  size_t k = 0;
  while (k < max && w->dq.head < w->dq.n) {
    lash__wr r = w->dq.v[w->dq.head++];
    k++;
    r.done(r.ud, r.rc);
  }
  if (w->dq.head == w->dq.n) w->dq.head = w->dq.n = 0;
  return k;
}

int lash__writer_pending(const lash__writer *w) {
  return w->wq.n > w->wq.head || w->dq.n > w->dq.head;
}

void lash__writer_close(lash__writer *w) {
  w->closed = 1;
  do {
    size_t i;
    for (i = w->wq.head; i < w->wq.n; i++)
      if (w->wq.v[i].done != NULL)
        wrv_push(&w->dq, NULL, w->wq.v[i].ud, w->wq.v[i].done, LASH_ECLOSED, 0);
    w->wq.head = w->wq.n = 0;
  } while (lash__writer_deliver(w, SIZE_MAX) > 0);
}

void lash__writer_free_mem(lash__writer *w) {
  wrv_free(&w->wq);
  wrv_free(&w->wq_spare);
  wrv_free(&w->dq);
}
