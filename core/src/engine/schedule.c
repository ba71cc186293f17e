/* engine/schedule.c - the cron part (see schedule.h).
 *
 * Part: schedule. May call: the registry (lash.h), admit, writer, pump. */
#include "engine/schedule.h"

#include <stdlib.h>
#include <string.h>

/* Change-seq moves re-read the schedules at most this often. */
#define REREAD_MS 200
/* And they are re-read this often in any case (a missed feed). */
#define POLL_MS 5000
/* A tick write that failed is tried again after this long. */
#define RETRY_MS 1000

static void timer_cb(uv_timer_t *t);

/* Arms the timer for the earliest of the next tick, a due re-read and the
 * poll. */
static void arm(lash__sched *sc) {
  uint64_t now = uv_now(sc->loop), delay;
  if (sc->closed) return;
  delay = sc->polled_at + POLL_MS > now ? sc->polled_at + POLL_MS - now : 0;
  if (sc->next_at > 0 && !sc->firing) {
    int64_t left = sc->next_at - lash_store_now(sc->s);
    uint64_t d = left > 0 ? (uint64_t)left : 0;
    if (sc->retry_at > now + d) d = sc->retry_at - now;
    if (d < delay) delay = d;
  }
  if (sc->reread) {
    uint64_t r = sc->reread_after > now ? sc->reread_after - now : 0;
    if (r < delay) delay = r;
  }
  uv_timer_start(&sc->timer, timer_cb, delay, 0);
}

static int collect(void *ud, const lash_schedule *s) {
  lash__sched *sc = ud;
  lash__sched_ent *e;
  if (!lash__admit_declared(sc->admit, s->kind)) return 0;
  if (sc->n == sc->cap) {
    size_t cap = sc->cap ? sc->cap * 2 : 8;
    lash__sched_ent *nv = realloc(sc->ents, cap * sizeof *nv);
    if (nv == NULL) return 0; /* the next re-read tries again */
    sc->ents = nv;
    sc->cap = cap;
  }
  e = &sc->ents[sc->n++];
  snprintf(e->name, sizeof e->name, "%s", s->name);
  e->next_at = s->next_at;
  return 0;
}

static void reread(lash__sched *sc) {
  size_t i;
  sc->reread = 0;
  sc->polled_at = uv_now(sc->loop);
  sc->reread_after = sc->polled_at + REREAD_MS;
  if (sc->admit->nkinds == 0) {
    sc->n = 0;
    sc->next_at = 0;
    return;
  }
  sc->n = 0;
  if (lash_schedules_list(sc->s, NULL, collect, sc) < 0) sc->n = 0;
  sc->next_at = 0;
  for (i = 0; i < sc->n; i++)
    if (sc->ents[i].next_at > 0 && sc->ents[i].next_at < INT64_MAX &&
        (sc->next_at == 0 || sc->ents[i].next_at < sc->next_at))
      sc->next_at = sc->ents[i].next_at;
}

static int tick_fn(lash_store *s, lash_txn *txn, void *ud) {
  lash__sched *sc = ud;
  int64_t now = lash_store_now(s);
  size_t off = 0, n;
  int rc = 0;
  sc->fired = 0;
  while (off < sc->due_len) {
    const char *name = sc->due + off;
    off += strlen(name) + 1;
    rc = lash_schedule_tick(s, txn, name, now, &n);
    if (rc == LASH_ENOENT) rc = 0; /* unscheduled meanwhile */
    if (rc < 0) break;
    sc->fired += n;
  }
  return rc;
}

static void tick_done(void *ud, int rc) {
  lash__sched *sc = ud;
  sc->firing = 0;
  if (rc == 0)
    sc->started += sc->fired;
  else
    sc->retry_at = uv_now(sc->loop) + RETRY_MS; /* no spin on a bad store */
  /* Learn the ticks' new next_at (also when another engine won). */
  sc->reread = 1;
  sc->reread_after = 0;
  arm(sc);
}

/* Queues one write ticking every schedule that is due. */
static void fire(lash__sched *sc) {
  int64_t now = lash_store_now(sc->s);
  size_t i, len = 0;
  char *p;
  for (i = 0; i < sc->n; i++)
    if (sc->ents[i].next_at <= now) len += strlen(sc->ents[i].name) + 1;
  if (len == 0) return;
  if ((p = realloc(sc->due, len)) == NULL) return;
  sc->due = p;
  sc->due_len = len;
  for (i = 0; i < sc->n; i++) {
    if (sc->ents[i].next_at > now) continue;
    size_t k = strlen(sc->ents[i].name) + 1;
    memcpy(p, sc->ents[i].name, k);
    p += k;
  }
  if (lash__writer_queue(sc->w, tick_fn, sc, tick_done) == 0) {
    sc->firing = 1;
    lash__pump_kick(sc->pump);
  }
}

static void timer_cb(uv_timer_t *t) {
  lash__sched *sc = LASH__CONTAINER_OF(t, lash__sched, timer);
  uint64_t now;
  if (sc->closed) return;
  now = uv_now(sc->loop);
  if ((sc->reread && now >= sc->reread_after) || now >= sc->polled_at + POLL_MS)
    reread(sc);
  if (!sc->firing && sc->next_at > 0 && now >= sc->retry_at &&
      sc->next_at <= lash_store_now(sc->s))
    fire(sc);
  arm(sc);
}

void lash__sched_reread(lash__sched *sc) {
  if (sc->closed) return;
  reread(sc);
  arm(sc);
}

void lash__sched_soon(lash__sched *sc) {
  if (sc->closed) return;
  sc->reread = 1;
  sc->reread_after = 0;
  arm(sc);
}

void lash__sched_moved(lash__sched *sc) {
  uint64_t now;
  if (sc->closed || sc->admit->nkinds == 0 || sc->reread) return;
  sc->reread = 1;
  /* Not in the loop turn that read the move: the bodies it resumes go
   * first (on a networked store each read is a round trip). */
  now = uv_now(sc->loop);
  if (sc->reread_after <= now) sc->reread_after = now + 1;
  arm(sc);
}

void lash__sched_init(lash__sched *sc, lash_store *s, uv_loop_t *loop,
                      lash__handles *hs, lash__pump *pump, lash__writer *w,
                      lash__admit *admit) {
  memset(sc, 0, sizeof *sc);
  sc->s = s;
  sc->loop = loop;
  sc->pump = pump;
  sc->w = w;
  sc->admit = admit;
  uv_timer_init(loop, &sc->timer);
  uv_unref((uv_handle_t *)&sc->timer);
  lash__handle_opened(hs, (uv_handle_t *)&sc->timer);
}

void lash__sched_close(lash__sched *sc) {
  if (sc->closed) return;
  sc->closed = 1;
  uv_timer_stop(&sc->timer);
  lash__handle_close((uv_handle_t *)&sc->timer);
}

void lash__sched_free(lash__sched *sc) {
  free(sc->ents);
  free(sc->due);
  sc->ents = NULL;
  sc->due = NULL;
  sc->n = sc->cap = sc->due_len = 0;
}
