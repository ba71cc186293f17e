/* engine/runs.h - runs and slots: the runs this engine admitted, from
 * their admission to their start (runner->start, after the admitting
 * commit), parking, cancellation, completion (lash_run_finish) and drop.
 *
 * Part: runs (floor 6). May call: the registry (lash.h), awaiter
 * (settle/detach a run's wait), writer, renew, run, base/map, base/queue,
 * pump; the host only through its lash_runner. */
#ifndef LASH_ENGINE_RUNS_H
#define LASH_ENGINE_RUNS_H

#include "engine/awaiter.h"
#include "engine/observe.h"
#include "engine/renew.h"
#include "engine/run.h"
#include "engine/writer.h"

typedef struct lash__runs {
  lash_engine *e; /* handed to runs as lash_run_engine (opaque) */
  lash_store *s;
  lash__pump *pump;
  lash__writer *w;
  lash__renew *renew;
  lash__slots slots;
  lash_runner runner;
  lash__map by_id;
  lash__q all;
  lash__q starts;      /* committed admissions whose start is due */
  lash__q uncommitted; /* admitted by the open writer txn */
  lash__q early;       /* admitted and started in the open writer txn */
  size_t early_n;      /* how many so far in the open txn */
  lash__observer *obs; /* set by the engine after init; may be NULL */
  /* What a body's first resume took (runner->start until it returned):
   * told to learn (admit, which decides what starts early). */
  void (*learn)(void *ud, const char *kind, int64_t us);
  void *learn_ud;
} lash__runs;

void lash__runs_init(lash__runs *rs, lash_engine *e, lash_store *s,
                     lash__pump *pump, lash__writer *w, lash__renew *renew,
                     unsigned concurrency);
lash_run *lash__run_find(lash__runs *rs, const char *id);
/* A new run of @p rec under @p ls, admitted (holding a slot) in the open
 * writer transaction; it starts after that commit (lash__runs_committed).
 * NULL when out of memory. */
lash_run *lash__run_admit(lash__runs *rs, const lash_record *rec,
                          const lash_lease *ls, int64_t budget_ms);
/* 1 while admissions of an open transaction wait for its commit. */
static inline int lash__runs_uncommitted(const lash__runs *rs) {
  return !lash__q_empty(&rs->uncommitted) || !lash__q_empty(&rs->early);
}
/* Starts now, inside the open writer transaction, up to @p max of its
 * admissions of rerunnable rows that @p ok accepts (at most max_txn in
 * one transaction): a body that ends in its first resume then completes
 * in the commit that claimed it (its writes queued meanwhile join that
 * transaction: lash__writer_txn). Their writes are durable with that
 * commit; a failed commit drops the runs that are still going, and the
 * rows stay claimable (a rerunnable row may run again). Meanwhile the
 * store's reads that name no transaction read through @p txn (a body sees
 * its own row as the transaction left it: lash_store_set_ambient). */
size_t lash__runs_start_early(lash__runs *rs, lash_txn *txn,
                              int (*ok)(void *ud, const lash_run *r), void *ud,
                              size_t max_txn);
/* The commit of the admitting transaction: @p rc 0 queues the starts,
 * otherwise the admissions are dropped (they never became durable). */
void lash__runs_committed(lash__runs *rs, int rc);
/* Starts up to @p max committed admissions (runner->start). */
size_t lash__runs_start(lash__runs *rs, size_t max);
static inline int lash__runs_starts_due(const lash__runs *rs) {
  return !lash__q_empty(&rs->starts);
}
/* Takes the run away without a terminal and without a write: its lease
 * is gone or was released in a commit (a suspension); runner->drop gets
 * @p rc. */
void lash__run_drop(lash_run *r, int rc);
/* A suspension of @p r is in flight: *ref is cleared if the run goes
 * before it commits (NULL: none any more). */
static inline void lash__run_susp_ref(lash_run *r, lash_run **ref) {
  r->susp_ref = ref;
}
/* A cancellation request was seen for @p r's row: marks it and ends its
 * parked wait with LASH_ECANCELED. */
void lash__run_cancel(lash_run *r);
/* The heartbeat's news (renew's on_wake): drops the runs whose lease
 * renewal was refused; a run past its budget that is not in its body is
 * flagged (runner->stall) and its parked wait ends with LASH_ETIMEDOUT.
 * Returns how many runs were dropped. */
size_t lash__runs_heartbeat(lash__runs *rs);
/* Engine close: commits queued completions with every lease released,
 * then drops every run (runner->drop, LASH_ECLOSED). */
void lash__runs_close(lash__runs *rs);
void lash__runs_free(lash__runs *rs);

#endif /* LASH_ENGINE_RUNS_H */
