/* engine/renew.h - the heartbeat: the leases this engine holds, renewed by
 * a thread of the engine (its own short write transactions through the
 * registry, txn NULL) every renew_ms, so a body that blocks the loop cannot
 * block renewal; and the watchdog of the same thread: a body that has not
 * yielded for stall_ms, or a run past its time budget, is reported to the
 * host (stall hook, from the thread); the emergency stop of a worker whose
 * loop does not answer a signal.
 *
 * Threads: the loop thread owns the runs; the heartbeat thread sees only
 * the lash__held entries, under r->mu (lock order: the store mutex, then
 * r->mu; the thread never holds both). It reaches the loop only through
 * the uv_async_t `wake` (lost leases, expired budgets): the loop then calls
 * on_wake. A lease whose renewal is refused (LASH_ESUPERSEDED) is marked
 * lost; the holder drops it from on_wake. Leases are released together at
 * close, from the loop, after the thread stopped.
 *
 * Part: renew (floor 3). May call: the registry (lash.h), writer, pump
 * (handles), base/queue. */
#ifndef LASH_ENGINE_RENEW_H
#define LASH_ENGINE_RENEW_H

#include "base/queue.h"
#include "engine/writer.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>

struct lash__renew;

/* A held lease, embedded in its holder (a run). Every field but link and
 * lease is shared with the thread: read and written under r->mu. The lease
 * is written by the loop only, before hold. */
typedef struct lash__held {
  lash__q link;
  lash_lease lease;
  struct lash__renew *r; /* while held */
  lash_run *holder;      /* the run (handed to the stall hook) */
  int lost;              /* renewal saw ESUPERSEDED, or could not reach
                            the store until the lease may have lapsed */
  uint64_t held_at;      /* ms (monotonic) it was claimed and held */
  int done;              /* its completion or release is queued: not renewed */
  int owner_bound;       /* abandoned, not released, at an emergency stop */
  int64_t budget_ms;     /* the body's time budget (0: none) */
  int64_t deadline;      /* store ms: attempt start + budget (0: none) */
  int over;              /* the budget ran out (reported once) */
  int over_seen;         /* the loop handled `over` */
  uint64_t busy_since;   /* ms (monotonic) the body was entered; 0: not in it */
  int stalled;           /* the stall of this busy period was reported */
} lash__held;

/* The stall hook: called from the heartbeat thread (with r->mu held) for a
 * body in host code for stall_ms (why LASH_STALL_LOOP) or past its budget
 * (LASH_STALL_BUDGET), and from the loop for a budget that ran out while
 * the body was not in host code. It may only flag the body (lua_sethook,
 * an atomic): no engine, store or loop call. */
typedef void (*lash__stall_fn)(void *ud, lash_run *run, int why, int64_t ms);

typedef struct lash__renew {
  lash_store *s;
  int64_t ttl_ms, every_ms, stall_ms;
  char owner[LASH_NAME_MAX + 1];
  /* loop side */
  uv_async_t wake;
  void (*on_wake)(void *ud); /* lost leases or expired budgets to handle */
  void *ud;
  int closed;
  /* shared, under mu */
  pthread_mutex_t mu;
  lash__q held;
  uint64_t n;
  int stop;
  int asleep; /* the thread sleeps until posted (idle for a while) */
  lash__stall_fn stall;
  void *stall_ud;
  uint64_t renewals, refused;
  uint64_t ok_at; /* ms (monotonic): start of the last round the store
                     answered (the leases renewed then live a TTL on) */
  /* the thread */
  pthread_t th;
  int th_on;
  sem_t sem; /* wakes the thread (also from a signal handler) */
  /* emergency stop (lash_engine_emergency; written from a signal handler) */
  volatile int64_t emerg_at; /* monotonic ms; 0: not armed */
} lash__renew;

/* Starts the heartbeat thread. 0, or LASH_ENOMEM (no thread: the engine
 * cannot open). */
int lash__renew_init(lash__renew *r, lash_store *s, uv_loop_t *loop,
                     lash__handles *hs, int64_t ttl_ms, int64_t every_ms,
                     int64_t stall_ms, const char *owner,
                     void (*on_wake)(void *ud), void *ud);
void lash__renew_set_stall(lash__renew *r, lash__stall_fn fn, void *ud);
/* Starts holding @p h (its lease, holder, budget set). */
void lash__renew_hold(lash__renew *r, lash__held *h);
void lash__renew_unhold(lash__renew *r, lash__held *h);
/* The holder's completion or release is queued: renew it no more. */
void lash__held_done(lash__held *h);
/* A release that was queued did not happen (a suspension that found its
 * wake already there): renew it again. */
void lash__held_undone(lash__held *h);
/* The loop enters (on 1) or leaves (0) the holder's body. */
void lash__held_busy(lash__held *h, int on);
/* Reads the flags the thread set: *lost, *busy, and (when @p over is not
 * NULL) *over: the budget ran out and the body is not running; reported
 * once. */
void lash__held_flags(lash__held *h, int *lost, int *over, int *busy);
/* A write fn (ud: the renew part) that releases every held lease not done
 * or lost; only fatal errors fail it. */
int lash__renew_release_all_fn(lash_store *s, lash_txn *txn, void *ud);
/* Arms the emergency stop: async-signal-safe (see lash_engine_emergency). */
void lash__renew_emergency(lash__renew *r, int64_t grace_ms);
/* Stops and joins the thread (first step of close); then closes the
 * async handle. */
void lash__renew_stop(lash__renew *r);
void lash__renew_close(lash__renew *r);
void lash__renew_free(lash__renew *r);

#endif /* LASH_ENGINE_RENEW_H */
