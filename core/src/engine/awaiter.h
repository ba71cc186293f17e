/* engine/awaiter.h - waits (DESIGN 4, SEMANTICS 4): terminal, event and
 * sleep; one timer heap for their backoffs, timeouts and sleeps; the slot
 * FIFO of settled waits of runs; delivery of wait callbacks.
 *
 * Part: awaiter (floor 5). May call: the registry (lash.h), hub, feed
 * (lash__feed_update), run (the run object and slots), base/heap,
 * base/queue, pump. */
#ifndef LASH_ENGINE_AWAITER_H
#define LASH_ENGINE_AWAITER_H

#include "base/heap.h"
#include "engine/feed.h"
#include "engine/hub.h"
#include "engine/run.h"

#include <stddef.h>
#include <stdint.h>

typedef struct lash__awaiter {
  lash_engine *e; /* the engine a run passed in must belong to (opaque) */
  lash_store *s;
  uv_loop_t *loop;
  lash__pump *pump;
  lash__hub *hub;
  lash__feed *feed;
  lash__slots *slots;
  uint64_t poll_min, poll_max;
  lash_attach attach; /* await_terminal == NULL: none */
  lash__q waits;      /* every wait not yet delivered */
  lash__q deliver;    /* settled waits whose cb is due */
  lash__q slotq;      /* settled waits of runs queued for a slot */
  lash__q idle;       /* parked waits a suspension may take (lash_wait_
                         suspendable), longest parked first */
  uint64_t nidle;
  lash__heap heap;
  uv_timer_t timer;
  uint64_t nparked; /* parked waits */
  uint64_t ntimed;  /* parked waits with a sleep/timeout deadline */
  uint64_t backoff_reads, hub_wakes;
  int closed;
} lash__awaiter;

void lash__awaiter_init(lash__awaiter *aw, lash_engine *e, lash_store *s,
                        uv_loop_t *loop, lash__handles *hs, lash__pump *pump,
                        lash__hub *hub, lash__feed *feed, lash__slots *slots,
                        uint64_t poll_min, uint64_t poll_max);
/* The awaits of lash.h (after the engine handle's check). */
int lash__await_terminal(lash__awaiter *aw, lash_run *run, const char *id,
                         int64_t timeout_ms, lash_wait_fn cb, void *ud,
                         lash_wait **out);
int lash__await_event(lash__awaiter *aw, lash_run *run, const char *id,
                      const char *type, uint64_t after_seq, int64_t timeout_ms,
                      lash_wait_fn cb, void *ud, lash_wait **out);
int lash__await_sleep(lash__awaiter *aw, lash_run *run, int64_t ms,
                      lash_wait_fn cb, void *ud, lash_wait **out);
int lash__await_manual(lash__awaiter *aw, lash_run *run, lash_wait_fn cb,
                       void *ud, lash_wait **out);
/* 1 when @p w is settled only by its host (lash_await_manual): a cancel or
 * a budget does not end it. */
int lash__wait_manual(const lash_wait *w);
void lash__awaiter_set_attach(lash__awaiter *aw, const lash_attach *a);
/* Re-reads up to @p max waits the hub marked ready (only those marked
 * before the call); returns how many. */
size_t lash__awaiter_drain(lash__awaiter *aw, size_t max);
/* Moves slot-FIFO waits into free slots, then delivers up to @p max
 * queued wait callbacks; returns how many ran. */
size_t lash__awaiter_deliver(lash__awaiter *aw, size_t max);
/* 1 while callbacks are due or a queued wait could take a free slot. */
int lash__awaiter_pending(const lash__awaiter *aw);
/* 1 when no callback is due, no wait queues for a slot and no parked wait
 * has a deadline. */
int lash__awaiter_idle(const lash__awaiter *aw);
/* Ends a parked wait with rc (0 resolved): unlinks it, retakes the run's
 * slot or queues for one, and queues the cb. */
void lash__wait_settle(lash_wait *w, int rc);
/* Takes @p w away from the engine without a callback (its run ends or the
 * engine closes); only its memory is left, for its owner to free. */
void lash__wait_detach(lash_wait *w);
/* What the suspender needs of a parked wait it may suspend (the head of
 * aw->idle first): the run, what wakes it (wake.event and wake.process
 * point into the wait; wake.at is in store ms), its label, and the loop
 * ms it parked at. NULL when aw->idle is empty. */
typedef struct lash__idle_wait {
  lash_wait *w;
  lash_run *run;
  lash_wake wake;
  const char *label;
  uint64_t parked_at;
} lash__idle_wait;
int lash__awaiter_idle_head(lash__awaiter *aw, lash__idle_wait *out);
/* 1 and *parked_at (loop ms) of the head of aw->idle, or 0 when empty:
 * the cheap question, without building the wake. */
int lash__awaiter_idle_since(const lash__awaiter *aw, uint64_t *parked_at);
/* Takes @p w off aw->idle (a suspension of it is in flight). */
void lash__awaiter_idle_take(lash__awaiter *aw, lash_wait *w);

/* Detaches every wait and refuses new ones; closes the timer. */
void lash__awaiter_close(lash__awaiter *aw);
void lash__awaiter_free(lash__awaiter *aw);

#endif /* LASH_ENGINE_AWAITER_H */
