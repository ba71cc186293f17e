/* engine/schedule.h - the cron part (DESIGN 11): every engine that defines
 * the kind of a durable schedule (registry lash_schedule_*) keeps its next
 * tick and arms one loop timer for the earliest tick it serves. When that
 * timer fires it queues lash_schedule_tick for each due schedule in the
 * writer's shared transaction: the registry re-reads the schedule there and
 * starts the tick's child only if the tick is still due, so of many
 * engines (processes, hosts) that fire one tick, one starts its child.
 *
 * The schedules are re-read when a kind is defined, after its own ticks,
 * when the store's change seq moves (the feed: a put or delete of another
 * process moves it; at most every REREAD_MS), and every POLL_MS anyway.
 * The timer is unref'd: schedules never keep a loop running on their own
 * (a worker's loop runs anyway; run{until_idle} ends as before).
 *
 * Part: schedule (floor 7, beside admit and suspend). May call: the
 * registry (lash.h), admit (which kinds are declared), writer, pump. */
#ifndef LASH_ENGINE_SCHEDULE_H
#define LASH_ENGINE_SCHEDULE_H

#include "engine/admit.h"
#include "engine/writer.h"

/* A schedule this engine serves. */
typedef struct lash__sched_ent {
  char name[LASH_SCHEDULE_NAME_MAX + 1];
  int64_t next_at;
} lash__sched_ent;

typedef struct lash__sched {
  lash_store *s;
  uv_loop_t *loop;
  lash__pump *pump;
  lash__writer *w;
  lash__admit *admit;
  uv_timer_t timer;
  lash__sched_ent *ents; /* of the declared kinds, from the last re-read */
  size_t n, cap;
  int64_t next_at;       /* store ms of the earliest tick, 0: none */
  int reread;            /* a re-read is due */
  uint64_t reread_after; /* loop ms before which a re-read waits */
  uint64_t polled_at;    /* loop ms of the last re-read */
  int firing;            /* a tick write is queued */
  uint64_t retry_at;     /* loop ms: after a failed tick write, not before */
  char *due;             /* names of the queued ticks, NUL-separated */
  size_t due_len;
  size_t fired;     /* children the last tick write started */
  uint64_t started; /* children this engine's ticks started */
  int closed;
} lash__sched;

void lash__sched_init(lash__sched *sc, lash_store *s, uv_loop_t *loop,
                      lash__handles *hs, lash__pump *pump, lash__writer *w,
                      lash__admit *admit);
/* A kind was declared, or a schedule changed here: re-read now. */
void lash__sched_reread(lash__sched *sc);
/* A schedule was put or deleted through this engine: re-read from the
 * loop's next turn (never inside a caller's open batch). */
void lash__sched_soon(lash__sched *sc);
/* The store's change seq moved (another process may have put one). */
void lash__sched_moved(lash__sched *sc);
void lash__sched_close(lash__sched *sc);
void lash__sched_free(lash__sched *sc);

#endif /* LASH_ENGINE_SCHEDULE_H */
