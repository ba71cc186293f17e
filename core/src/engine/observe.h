/* engine/observe.h - the observer hook: what the engine tells its host
 * (lash_engine_set_observer), for worker logs. The parts that see a
 * notable moment (runs: a body's end, a lost lease; admit: a takeover;
 * suspend: a suspension) call lash__observe with a filled struct; the
 * part counts suspensions and reports them every summary period.
 *
 * Part: observe (floor 2 of the engine). May call: libuv, pump (handles). */
#ifndef LASH_ENGINE_OBSERVE_H
#define LASH_ENGINE_OBSERVE_H

#include "engine/pump.h"

typedef struct lash__observer {
  lash_observe_fn fn;
  void *ud;
  uv_timer_t timer; /* the summary period (unref'd) */
  int timer_open;
  int64_t summary_ms; /* 0: no summaries */
  uint64_t suspended; /* suspensions in the current period */
  lash__handles *hs;
  uv_loop_t *loop;
} lash__observer;

void lash__observer_init(lash__observer *o, uv_loop_t *loop, lash__handles *hs);
void lash__observer_set(lash__observer *o, lash_observe_fn fn, void *ud,
                        int64_t summary_ms);
/* Tells the host (no-op without an observer; NULL-safe). */
void lash__observe(lash__observer *o, const lash_observation *ob);
/* A row, as most observations carry it. */
void lash__observe_row(lash__observer *o, int type, const lash_record *rec);
void lash__observer_close(lash__observer *o);

#endif /* LASH_ENGINE_OBSERVE_H */
