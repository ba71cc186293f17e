/* engine/writer.h - group commit: the writes queued during a loop turn run
 * in one shared transaction, committed once; their done callbacks run
 * after that commit, from the pump. Other parts join a transaction through
 * hooks: an in-transaction hook runs after the queued writes (the driver's
 * scan step), an after-commit hook sees every commit's result (the
 * driver's admissions become starts).
 *
 * Part: writer (floor 2). May call: the registry (lash.h), pump. */
#ifndef LASH_ENGINE_WRITER_H
#define LASH_ENGINE_WRITER_H

#include "engine/pump.h"

#include <stddef.h>
#include <stdint.h>

/* One queued write (or one done callback to deliver). */
typedef struct lash__wr {
  lash_write_fn fn;
  void *ud;
  lash_done_fn done;
  int rc;
  int again; /* queued again after a transient failure (queue_again) */
} lash__wr;

typedef struct lash__wrv {
  lash__wr *v;
  size_t head, n, cap;
} lash__wrv;

/* Runs inside every writer transaction, after the queued writes and the
 * transaction's own fn. Returns 0 or an error, which becomes the
 * transaction's result when it has no fn of its own. */
typedef int (*lash__in_txn_fn)(void *ud, lash_txn *txn);
/* Runs after every writer transaction (and explicit batch) with the
 * commit's result: 0, the commit error, or LASH_ECANCELED (batch aborted). */
typedef void (*lash__committed_fn)(void *ud, int rc);
/* Told of the writer's transient failures (see lash__writer_on_retry). */
typedef void (*lash__retry_fn)(void *ud, int event, unsigned fails, int64_t ms,
                               const char *msg);
enum {
  LASH__RETRY_FAILED = 1, /* fails in a row; the next try in ms */
  LASH__RETRY_DUE,        /* the backoff ended: writes may run again */
  LASH__RETRY_RECOVERED   /* a commit after fails failures, ms after them */
};

/* The backoff after a transient failure: 10 ms doubling to 1 s. */
#define LASH__RETRY_MIN_MS 10
#define LASH__RETRY_MAX_MS 1000

#define LASH__WRITER_HOOKS 8

typedef struct lash__writer {
  lash_store *s;
  lash__pump *pump;
  lash__wrv wq; /* queued writes */
  lash__wrv wq_spare;
  lash__wrv dq;    /* done callbacks to deliver */
  lash_txn *batch; /* explicit batch (lash_engine_batch_begin) */
  int in_txn;      /* a writer transaction is open */
  lash_txn *cur;   /* ... this one */
  int closed;
  int no_again; /* closing: a failed write is not queued again */
  uint64_t commits;
  /* A transient failure (LASH_EIO on a store that reopens, lash.h's
   * lash_store_reopens): the turn's writes rolled back; the writer waits
   * on its timer before the next transaction (pump_needed leaves queued
   * writes alone while `waiting`). */
  uv_timer_t retry_timer;
  int waiting;
  unsigned fails;     /* transient failures in a row */
  int64_t delay_ms;   /* the current backoff */
  uint64_t failed_at; /* uv_now of the first of them */
  lash__retry_fn on_retry;
  void *retry_ud;
  /* The first storage error a write met (EFULL, EIO, EPANIC, ENOMEM,
   * ECORRUPT) that is not transient: the engine cannot go on;
   * lash_engine_run returns it. */
  int storage_rc;
  char storage_msg[1024];
  struct {
    lash__in_txn_fn in_txn;
    lash__committed_fn committed;
    void *ud;
  } hooks[LASH__WRITER_HOOKS];
  size_t nhooks;
} lash__writer;

void lash__writer_init(lash__writer *w, lash_store *s, lash__pump *pump,
                       uv_loop_t *loop, lash__handles *hs);
/* Installs the retry listener (the engine logs and re-drives). */
void lash__writer_on_retry(lash__writer *w, lash__retry_fn fn, void *ud);
/* Registers a hook pair (either may be NULL). 0, or LASH_ENOMEM when the
 * table is full. */
int lash__writer_hook(lash__writer *w, lash__in_txn_fn in_txn,
                      lash__committed_fn committed, void *ud);
/* Queues a write for this turn's transaction. 0, LASH_ECLOSED, ENOMEM. */
int lash__writer_queue(lash__writer *w, lash_write_fn fn, void *ud,
                       lash_done_fn done);
/* lash__writer_queue for a write that must not be lost to a transient
 * failure (a completion): when its transaction fails so, it is queued
 * again for the next one instead of its done callback getting LASH_EIO.
 * Its fn must be safe to run again (the failed run wrote nothing). */
int lash__writer_queue_again(lash__writer *w, lash_write_fn fn, void *ud,
                             lash_done_fn done);
/* Runs the queued writes, then @p fn (may be NULL), then the in-txn
 * hooks, in one transaction; commits; runs the after-commit hooks. Done
 * callbacks of the queued writes go to the deliver list. Returns fn's
 * result (a hook's when fn is NULL) or the commit error. */
int lash__writer_txn(lash__writer *w, lash_write_fn fn, void *ud);
/* lash_engine_write_sync: joins an open batch, else lash__writer_txn. */
int lash__writer_sync(lash__writer *w, lash_write_fn fn, void *ud);
int lash__writer_batch_begin(lash__writer *w);
int lash__writer_batch_end(lash__writer *w, int commit);
/* Delivers up to @p max done callbacks; returns how many ran. */
size_t lash__writer_deliver(lash__writer *w, size_t max);
/* 1 while writes are queued or done callbacks wait. */
int lash__writer_pending(const lash__writer *w);
/* 1 when a transaction could run now (no batch or transaction open). */
static inline int lash__writer_free(const lash__writer *w) {
  return w->batch == NULL && !w->in_txn;
}
static inline int lash__writer_queued(const lash__writer *w) {
  return w->wq.n > w->wq.head;
}
/* 1 while a transient failure's backoff runs (no transaction is due). */
static inline int lash__writer_waiting(const lash__writer *w) {
  return w->waiting;
}
/* 1 while done callbacks wait for delivery. */
static inline int lash__writer_delivering(const lash__writer *w) {
  return w->dq.n > w->dq.head;
}
/* Refuses new writes from now on (LASH_ECLOSED). */
static inline void lash__writer_refuse(lash__writer *w) {
  w->closed = 1;
}
/* Aborts an open batch (engine close). */
void lash__writer_abort_batch(lash__writer *w);
/* Refuses new writes; writes still queued never run: their done callbacks
 * run once, now, with LASH_ECLOSED (and so do those they queue). */
void lash__writer_close(lash__writer *w);
/* Closes the retry timer (the engine's parts_close). */
void lash__writer_close_timer(lash__writer *w);
void lash__writer_free_mem(lash__writer *w);

#endif /* LASH_ENGINE_WRITER_H */
