/* engine/suspend.h - suspension and durable timers (DESIGN 9): a parked
 * body need not stay in memory. The suspender keeps at most `max_cached`
 * suspendable parked bodies (longest parked first out) and suspends any
 * that stayed parked `suspend_after_ms`: lash_suspend in the shared
 * transaction writes process.suspended and releases the lease, and after
 * that commit the run is dropped (its coroutine let go). The store wakes
 * the row when its condition fires (whoever causes it); a woken row is
 * claimable again and any worker that defines its kind replays it.
 *
 * The timer part arms one loop timer for the earliest wake time of the
 * store's suspended rows (lash_timers_next, re-read after this engine's
 * suspensions and, at most every TIMERS_REREAD_MS, after other OS
 * processes' commits) and fires them (lash_timers_fire) when it is due.
 *
 * Part: suspend (floor 7, beside admit). May call: the registry (lash.h),
 * awaiter (the idle waits), runs (drop a suspended run), writer, pump. */
#ifndef LASH_ENGINE_SUSPEND_H
#define LASH_ENGINE_SUSPEND_H

#include "engine/awaiter.h"
#include "engine/runs.h"
#include "engine/writer.h"

typedef struct lash__suspender {
  lash_store *s;
  uv_loop_t *loop;
  lash__pump *pump;
  lash__writer *w;
  lash__awaiter *aw;
  lash__runs *runs;
  uint64_t max_cached; /* suspendable parked bodies kept in memory */
  int64_t after_ms;    /* suspend a body parked this long; < 0 never */
  uv_timer_t timer;    /* the next idle wait due for suspension */
  uint64_t timer_due;  /* loop ms it is armed for; 0: not armed */
  uint64_t inflight;   /* suspensions queued, not yet committed */
  uint64_t suspended;  /* runs suspended by this engine */
  uint64_t trimmed_at; /* `suspended` when memory was last given back */
  uint64_t fired;      /* rows this engine's timer fire woke */
  /* durable timers */
  uv_timer_t fire_timer; /* armed for next_at */
  int64_t next_at;       /* store ms of the earliest wake, 0: none */
  int reread;            /* lash_timers_next is due */
  uint64_t reread_after; /* loop ms before which a foreign reread waits */
  int firing;            /* a lash_timers_fire write is queued */
  size_t fire_count;     /* rows the last fire woke */
  int closed;
  void (*on_fired)(void *ud); /* rows were woken: drive */
  void *ud;
} lash__suspender;

void lash__suspender_init(lash__suspender *sp, lash_store *s, uv_loop_t *loop,
                          lash__handles *hs, lash__pump *pump, lash__writer *w,
                          lash__awaiter *aw, lash__runs *runs,
                          uint64_t max_cached, int64_t after_ms,
                          void (*on_fired)(void *ud), void *ud);
/* From the pump, before its transaction: queues the suspensions that are
 * due and the timer re-read / fire. */
void lash__suspender_pump(lash__suspender *sp);
/* issue 13: a commit of this engine put a row on the timer index at @p at
 * (a retry wait, a delay; ud: the suspender). */
void lash__suspender_note(void *ud, int64_t at);
/* 1 while the pump has suspender work this turn. */
int lash__suspender_pending(const lash__suspender *sp);
/* 1 while no store timer is armed and no suspension is in flight. */
int lash__suspender_idle(const lash__suspender *sp);
/* Another OS process committed: its suspensions may have added timers. */
void lash__suspender_foreign(lash__suspender *sp);
void lash__suspender_close(lash__suspender *sp);

#endif /* LASH_ENGINE_SUSPEND_H */
