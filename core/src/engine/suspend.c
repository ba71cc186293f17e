/* engine/suspend.c - suspension and durable timers (see suspend.h).
 *
 * Part: suspend. May call: the registry (lash.h), awaiter, runs, writer,
 * pump. */
#include "engine/suspend.h"

#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* A wait that ends sooner than this stays in memory (it would be woken
 * before its suspension is worth the two commits). */
#define MIN_LEFT_MS 20
/* Other OS processes' commits re-read the earliest timer at most this
 * often. */
#define TIMERS_REREAD_MS 100
/* Rows one timer fire wakes per transaction. */
#define FIRE_BATCH 256

/* One suspension in flight. */
typedef struct susp_job {
  lash__suspender *sp;
  lash_run *run; /* NULL once the run went (runs clears it) */
  lash_lease lease;
  lash_wake wake;
  char *label, *event, *process;
} susp_job;

static void job_free(susp_job *j) {
  free(j->label);
  free(j->event);
  free(j->process);
  free(j);
}

/* ------------------------------------------------------------- timers */

static void fire_cb(uv_timer_t *t);

/* Arms the fire timer for the earlier of next_at and a pending re-read. */
static void arm_fire(lash__suspender *sp) {
  uint64_t delay = UINT64_MAX, now = uv_now(sp->loop);
  if (sp->closed) return;
  if (sp->next_at > 0 && !sp->firing) {
    int64_t left = sp->next_at - lash_store_now(sp->s);
    delay = left > 0 ? (uint64_t)left : 0;
  }
  if (sp->reread) {
    uint64_t r = sp->reread_after > now ? sp->reread_after - now : 0;
    if (r < delay) delay = r;
  }
  if (delay == UINT64_MAX)
    uv_timer_stop(&sp->fire_timer);
  else
    uv_timer_start(&sp->fire_timer, fire_cb, delay, 0);
}

static void reread(lash__suspender *sp) {
  int64_t at = 0;
  sp->reread = 0;
  sp->reread_after = uv_now(sp->loop) + TIMERS_REREAD_MS;
  if (lash_timers_next(sp->s, NULL, &at) == 0) sp->next_at = at;
  arm_fire(sp);
}

static int fire_fn(lash_store *s, lash_txn *txn, void *ud) {
  lash__suspender *sp = ud;
  sp->fire_count = 0;
  return lash_timers_fire(s, txn, lash_store_now(s), FIRE_BATCH,
                          &sp->fire_count);
}

static void fire_done(void *ud, int rc) {
  lash__suspender *sp = ud;
  size_t n = sp->fire_count;
  sp->firing = 0;
  if (rc == 0 && n > 0) {
    sp->fired += n;
    if (sp->on_fired != NULL) sp->on_fired(sp->ud);
  }
  sp->reread = 1;
  sp->reread_after = 0;
  lash__pump_kick(sp->pump);
}

static void fire_cb(uv_timer_t *t) {
  lash__suspender *sp = LASH__CONTAINER_OF(t, lash__suspender, fire_timer);
  if (sp->closed) return;
  if (sp->next_at > 0 && !sp->firing && sp->next_at <= lash_store_now(sp->s)) {
    if (lash__writer_queue(sp->w, fire_fn, sp, fire_done) == 0) {
      sp->firing = 1;
      sp->next_at = 0;
    }
  }
  if (sp->reread && uv_now(sp->loop) >= sp->reread_after) reread(sp);
  lash__pump_kick(sp->pump);
  arm_fire(sp);
}

void lash__suspender_note(void *ud, int64_t at) {
  lash__suspender *sp = ud;
  if (sp->closed || at <= 0) return;
  if (sp->next_at == 0 || at < sp->next_at) {
    sp->next_at = at;
    arm_fire(sp);
  }
}

void lash__suspender_foreign(lash__suspender *sp) {
  uint64_t now;
  if (sp->closed) return;
  if (!sp->reread) {
    sp->reread = 1;
    /* After the loop turn that saw the change: its resumes go first. */
    now = uv_now(sp->loop);
    if (sp->reread_after <= now) sp->reread_after = now + 1;
    arm_fire(sp);
  }
}

/* --------------------------------------------------------- suspension */

static int suspend_fn(lash_store *s, lash_txn *txn, void *ud) {
  susp_job *j = ud;
  uint64_t seq;
  if (j->run == NULL) return LASH_ECANCELED; /* dropped meanwhile */
  return lash_suspend(s, txn, &j->lease, j->label, &j->wake, &seq);
}

/* After many bodies were let go: hand their memory back to the OS (glibc
 * keeps freed memory in its arenas otherwise, and a worker that suspended
 * a million bodies would look as big as when it held them). */
static void give_back(lash__suspender *sp) {
  if (sp->inflight > 0 || sp->suspended - sp->trimmed_at < 4096) return;
  sp->trimmed_at = sp->suspended;
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

static void suspend_done(void *ud, int rc) {
  susp_job *j = ud;
  lash__suspender *sp = j->sp;
  sp->inflight--;
  if (j->run != NULL) {
    lash__run_susp_ref(j->run, NULL);
    if (rc == 0) {
      /* Durable: the store wakes the row; nothing of it stays here. */
      sp->suspended++;
      lash__observe_row(sp->obs, LASH_OBS_SUSPENDED, &j->run->rec);
      if (j->wake.at > 0 && (sp->next_at == 0 || j->wake.at < sp->next_at)) {
        sp->next_at = j->wake.at;
        arm_fire(sp);
      }
      lash__run_drop(j->run, 0);
    } else if (j->run->state != LASH__RS_FINISHING) {
      /* LASH_APPLIED: its wake came first (or the lease is lost): the
       * body stays here and its wait resolves as it would have; its lease
       * is renewed again. */
      lash__held_undone(&j->run->held);
    }
  }
  job_free(j);
  give_back(sp);
}

static void idle_timer_cb(uv_timer_t *t) {
  lash__suspender *sp = LASH__CONTAINER_OF(t, lash__suspender, timer);
  sp->timer_due = 0;
  lash__pump_kick(sp->pump);
}

/* Queues the suspension of the idle wait @p iw (taken off the idle list). */
static void suspend_one(lash__suspender *sp, const lash__idle_wait *iw) {
  susp_job *j;
  lash__awaiter_idle_take(sp->aw, iw->w);
  if (iw->wake.at > 0 && iw->wake.at - lash_store_now(sp->s) < MIN_LEFT_MS)
    return; /* about to end: stays */
  if ((j = calloc(1, sizeof *j)) == NULL) return;
  j->sp = sp;
  j->run = iw->run;
  j->lease = *lash_run_lease(iw->run);
  j->label = strdup(iw->label);
  j->event = iw->wake.event != NULL ? strdup(iw->wake.event) : NULL;
  j->process = iw->wake.process != NULL ? strdup(iw->wake.process) : NULL;
  j->wake.event = j->event;
  j->wake.process = j->process;
  j->wake.at = iw->wake.at;
  j->wake.has_after = iw->wake.has_after;
  j->wake.after = iw->wake.after;
  if (j->label == NULL || (iw->wake.event && !j->event) ||
      (iw->wake.process && !j->process)) {
    job_free(j);
    return;
  }
  if (lash__writer_queue(sp->w, suspend_fn, j, suspend_done) < 0) {
    job_free(j);
    return;
  }
  lash__run_susp_ref(iw->run, &j->run);
  /* Its lease is released in that commit: the heartbeat leaves it be. */
  lash__held_done(&iw->run->held);
  sp->inflight++;
}

/* When the longest parked idle wait is due for suspension (loop ms;
 * UINT64_MAX: never, 0: now, also when there are more than max_cached);
 * *any = 0 when there is none. */
static uint64_t head_due(const lash__suspender *sp, int *any) {
  uint64_t parked_at;
  *any = lash__awaiter_idle_since(sp->aw, &parked_at);
  if (!*any) return UINT64_MAX;
  if (sp->aw->nidle > sp->max_cached) return 0;
  return sp->after_ms < 0 ? UINT64_MAX : parked_at + (uint64_t)sp->after_ms;
}

void lash__suspender_pump(lash__suspender *sp) {
  lash__idle_wait iw;
  uint64_t now, due;
  int any;
  if (sp->closed) return;
  if (sp->reread && uv_now(sp->loop) >= sp->reread_after) reread(sp);
  now = uv_now(sp->loop);
  while ((due = head_due(sp, &any)) <= now && any &&
         lash__awaiter_idle_head(sp->aw, &iw))
    suspend_one(sp, &iw);
  /* The timer for the next one, re-armed only when that time changed. */
  if (any && due != UINT64_MAX && due != sp->timer_due) {
    sp->timer_due = due;
    uv_timer_start(&sp->timer, idle_timer_cb, due - now, 0);
  }
}

int lash__suspender_pending(const lash__suspender *sp) {
  int any;
  if (sp->closed) return 0;
  return head_due(sp, &any) <= uv_now(sp->loop) && any;
}

int lash__suspender_idle(const lash__suspender *sp) {
  return sp->next_at == 0 && sp->inflight == 0 && !sp->firing;
}

/* ------------------------------------------------------------ the part */

void lash__suspender_init(lash__suspender *sp, lash_store *s, uv_loop_t *loop,
                          lash__handles *hs, lash__pump *pump, lash__writer *w,
                          lash__awaiter *aw, lash__runs *runs,
                          uint64_t max_cached, int64_t after_ms,
                          void (*on_fired)(void *ud), void *ud) {
  memset(sp, 0, sizeof *sp);
  sp->s = s;
  sp->loop = loop;
  sp->pump = pump;
  sp->w = w;
  sp->aw = aw;
  sp->runs = runs;
  sp->max_cached = max_cached;
  sp->after_ms = after_ms;
  sp->on_fired = on_fired;
  sp->ud = ud;
  sp->reread = 1;
  uv_timer_init(loop, &sp->timer);
  lash__handle_opened(hs, (uv_handle_t *)&sp->timer);
  uv_timer_init(loop, &sp->fire_timer);
  lash__handle_opened(hs, (uv_handle_t *)&sp->fire_timer);
}

void lash__suspender_close(lash__suspender *sp) {
  if (sp->closed) return;
  sp->closed = 1;
  lash__handle_close((uv_handle_t *)&sp->timer);
  lash__handle_close((uv_handle_t *)&sp->fire_timer);
}
