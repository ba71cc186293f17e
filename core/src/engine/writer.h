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
  uint64_t commits;
  /* The first storage error a write met (EFULL, EIO, EPANIC, ENOMEM,
   * ECORRUPT): the engine cannot go on; lash_engine_run returns it. */
  int storage_rc;
  char storage_msg[1024];
  struct {
    lash__in_txn_fn in_txn;
    lash__committed_fn committed;
    void *ud;
  } hooks[LASH__WRITER_HOOKS];
  size_t nhooks;
} lash__writer;

void lash__writer_init(lash__writer *w, lash_store *s, lash__pump *pump);
/* Registers a hook pair (either may be NULL). 0, or LASH_ENOMEM when the
 * table is full. */
int lash__writer_hook(lash__writer *w, lash__in_txn_fn in_txn,
                      lash__committed_fn committed, void *ud);
/* Queues a write for this turn's transaction. 0, LASH_ECLOSED, ENOMEM. */
int lash__writer_queue(lash__writer *w, lash_write_fn fn, void *ud,
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
/* Refuses new writes from now on (LASH_ECLOSED). */
static inline void lash__writer_refuse(lash__writer *w) {
  w->closed = 1;
}
/* Aborts an open batch (engine close). */
void lash__writer_abort_batch(lash__writer *w);
/* Refuses new writes; writes still queued never run: their done callbacks
 * run once, now, with LASH_ECLOSED (and so do those they queue). */
void lash__writer_close(lash__writer *w);
void lash__writer_free_mem(lash__writer *w);

#endif /* LASH_ENGINE_WRITER_H */
