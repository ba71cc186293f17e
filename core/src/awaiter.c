/* awaiter.c - waits (DESIGN 4, SEMANTICS 4): terminal, event and sleep.
 *
 * An await subscribes to the hub and then point-reads (no lost wakeup:
 * a publish after the subscribe re-queues the wait). A parked wait is
 * re-read when the hub bumps its id, or when its backoff deadline comes up
 * on the engine's one timer heap (poll_min doubling to poll_max, reset on a
 * bump); the heap also holds timeouts and sleeps. A backoff re-read is
 * skipped while the store's change seq has not moved since the wait's last
 * one: nothing anywhere can have changed.
 *
 * A wait of a run gives the run's slot back while parked and retakes one
 * before its callback; when none is free it queues in a FIFO that is served
 * before new admissions. Callbacks run only from the pump. */
#include "engine-int.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ the heap */

static int heap_less(const lash_wait *a, const lash_wait *b) {
  return a->due < b->due;
}

static void heap_set(lash_engine *e, size_t i, lash_wait *w) {
  e->heap[i] = w;
  w->heap_idx = i;
}

static void heap_up(lash_engine *e, size_t i) {
  lash_wait *w = e->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!heap_less(w, e->heap[p])) break;
    heap_set(e, i, e->heap[p]);
    i = p;
  }
  heap_set(e, i, w);
}

static void heap_down(lash_engine *e, size_t i) {
  lash_wait *w = e->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    lash_wait *mw = w;
    if (l < e->heap_n && heap_less(e->heap[l], mw)) {
      m = l;
      mw = e->heap[l];
    }
    if (r < e->heap_n && heap_less(e->heap[r], mw)) {
      m = r;
      mw = e->heap[r];
    }
    if (m == i) break;
    heap_set(e, i, mw);
    i = m;
  }
  heap_set(e, i, w);
}

static void heap_arm(lash_engine *e) {
  uint64_t now, delay;
  if (e->heap_n == 0 || e->closing) {
    uv_timer_stop(&e->heap_timer);
    return;
  }
  now = uv_now(e->loop);
  delay = e->heap[0]->due > now ? e->heap[0]->due - now : 0;
  uv_timer_start(&e->heap_timer, lash__heap_timer_cb, delay, 0);
}

static int heap_push(lash_engine *e, lash_wait *w) {
  if (e->heap_n == e->heap_cap) {
    size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
    lash_wait **nh = realloc(e->heap, cap * sizeof *nh);
    if (nh == NULL) return LASH_ENOMEM;
    e->heap = nh;
    e->heap_cap = cap;
  }
  heap_set(e, e->heap_n++, w);
  heap_up(e, w->heap_idx);
  if (e->heap[0] == w) heap_arm(e);
  return 0;
}

static void heap_remove(lash_engine *e, lash_wait *w) {
  size_t i = w->heap_idx;
  int was_top = i == 0;
  lash_wait *last;
  if (i == SIZE_MAX) return;
  w->heap_idx = SIZE_MAX;
  last = e->heap[--e->heap_n];
  if (last != w) {
    heap_set(e, i, last);
    heap_up(e, i);
    heap_down(e, last->heap_idx);
  }
  if (was_top) heap_arm(e);
}

/* Re-positions w after its due time changed. */
static void heap_fix(lash_engine *e, lash_wait *w) {
  lash_wait *top = e->heap_n ? e->heap[0] : NULL;
  heap_up(e, w->heap_idx);
  heap_down(e, w->heap_idx);
  if (top != e->heap[0] || e->heap[0] == w) heap_arm(e);
}

static uint64_t next_due(const lash_wait *w, uint64_t now) {
  uint64_t due = now + w->backoff;
  return due < w->deadline ? due : w->deadline;
}

void lash__heap_reset_backoff(lash_engine *e, lash_wait *w) {
  if (w->kind == LASH__W_SLEEP || w->heap_idx == SIZE_MAX) return;
  w->backoff = e->poll_min;
  w->due = next_due(w, uv_now(e->loop));
  heap_fix(e, w);
}

/* ----------------------------------------------------------- re-reads */

static int ev_find_cb(void *ud, const lash_event *ev) {
  lash_wait *w = ud;
  size_t pl, tl;
  char *p;
  if (strcmp(w->etype, "*") != 0 && strcmp(ev->type, w->etype) != 0) {
    w->after = ev->seq;
    return 0;
  }
  pl = strlen(ev->process_id);
  tl = strlen(ev->type);
  p = malloc(pl + tl + 2 + ev->payload.len);
  if (p == NULL) return LASH_ENOMEM;
  w->ev_buf = p;
  memcpy(p, ev->process_id, pl + 1);
  w->ev.process_id = p;
  p += pl + 1;
  memcpy(p, ev->type, tl + 1);
  w->ev.type = p;
  p += tl + 1;
  if (ev->payload.len > 0) memcpy(p, ev->payload.data, ev->payload.len);
  w->ev.payload.data = p;
  w->ev.payload.len = ev->payload.len;
  w->ev.seq = ev->seq;
  w->ev.at = ev->at;
  w->has_ev = 1;
  return 1;
}

int lash__wait_check(lash_engine *e, lash_wait *w) {
  lash_record r;
  int rc;
  switch (w->kind) {
  case LASH__W_TERMINAL:
    memset(&r, 0, sizeof r);
    rc = lash_get(e->s, NULL, w->id, &r, &w->tomb);
    if (rc == 0) {
      if (LASH_IS_TERMINAL(r.status)) {
        w->rec = r;
        w->has_rec = 1;
        return 1;
      }
      lash_record_free(&r);
      return 0;
    }
    if (rc == LASH_EPRUNED) {
      w->has_tomb = 1;
      return 1;
    }
    return rc;
  case LASH__W_EVENT:
    rc = lash_events_after(e->s, NULL, w->id, w->after, 0, ev_find_cb, w);
    if (w->has_ev) return 1;
    return rc < 0 ? rc : 0;
  default:
    return 0;
  }
}

/* ------------------------------------------------------------- settle */

static void unpark(lash_engine *e, lash_wait *w) {
  if (w->attached) {
    /* Ended without the backend's answer: it must forget w. */
    w->attached = 0;
    if (e->attach.cancel != NULL) e->attach.cancel(e->attach.ud, w);
  }
  lash__hub_unsubscribe(e, w);
  heap_remove(e, w);
  if (w->deadline != LASH__NO_DEADLINE) e->ntimed--;
  e->nparked_waits--;
}

void lash__wait_settle(lash_wait *w, int rc) {
  lash_engine *e = w->e;
  lash_run *run = w->run;
  if (w->state != LASH__WS_PARKED) return;
  unpark(e, w);
  w->rc = rc;
  if (run != NULL) {
    if (e->running < e->concurrency && e->nslotq == 0) {
      e->running++;
      e->parked--;
      run->state = LASH__RS_RUNNING;
      w->state = LASH__WS_DELIVER;
      lash__q_push(&e->deliver, &w->link);
    } else {
      run->state = LASH__RS_SLOT;
      w->state = LASH__WS_SLOT;
      lash__q_push(&e->slotq, &w->link);
      e->nslotq++;
    }
  } else {
    w->state = LASH__WS_DELIVER;
    lash__q_push(&e->deliver, &w->link);
  }
  lash__poll_update(e);
  lash__pump_kick(e);
}

void lash__slots_serve(lash_engine *e) {
  while (e->nslotq > 0 && e->running < e->concurrency) {
    lash__q *q = lash__q_pop(&e->slotq);
    lash_wait *w = LASH__CONTAINER_OF(q, lash_wait, link);
    e->nslotq--;
    e->running++;
    e->parked--;
    w->run->state = LASH__RS_RUNNING;
    w->state = LASH__WS_DELIVER;
    lash__q_push(&e->deliver, &w->link);
  }
}

size_t lash__waits_deliver(lash_engine *e, size_t max) {
  size_t k = 0;
  lash__q *q;
  lash__slots_serve(e);
  while (k < max && (q = lash__q_pop(&e->deliver)) != NULL) {
    lash_wait *w = LASH__CONTAINER_OF(q, lash_wait, link);
    lash__q_remove(&w->all);
    w->state = LASH__WS_RESOLVED;
    if (w->run != NULL) {
      w->run->wait = NULL;
      w->run = NULL;
    }
    k++;
    w->cb(w->ud, w, w->rc);
  }
  return k;
}

void lash__heap_timer_cb(uv_timer_t *t) {
  lash_engine *e = LASH__CONTAINER_OF(t, lash_engine, heap_timer);
  uint64_t now = uv_now(e->loop), cs = 0;
  int cs_read = 0, rc;
  while (e->heap_n > 0 && e->heap[0]->due <= now) {
    lash_wait *w = e->heap[0];
    if (w->deadline != LASH__NO_DEADLINE && now >= w->deadline) {
      lash__wait_settle(w, w->kind == LASH__W_SLEEP ? 0 : LASH_ETIMEDOUT);
      continue;
    }
    if (!cs_read) {
      cs = lash_change_seq(e->s);
      cs_read = 1;
    }
    if (cs == 0 || w->seen_cseq != cs) {
      w->seen_cseq = cs;
      e->stats.backoff_reads++;
      rc = lash__wait_check(e, w);
      if (rc != 0) {
        lash__wait_settle(w, rc > 0 ? 0 : rc);
        continue;
      }
    }
    w->backoff *= 2;
    if (w->backoff > e->poll_max) w->backoff = e->poll_max;
    w->due = next_due(w, now);
    heap_down(e, 0);
  }
  heap_arm(e);
}

/* -------------------------------------------------------------- awaits */

static lash_wait *wait_new(lash_engine *e, lash_run *run, int kind,
                           const char *id, const char *etype, lash_wait_fn cb,
                           void *ud) {
  size_t il = id ? strlen(id) : 0, tl = etype ? strlen(etype) : 0;
  lash_wait *w = calloc(1, sizeof *w + il + 1 + (etype ? tl + 1 : 0));
  if (w == NULL) return NULL;
  w->e = e;
  w->run = run;
  w->kind = kind;
  w->cb = cb;
  w->ud = ud;
  w->heap_idx = SIZE_MAX;
  w->deadline = LASH__NO_DEADLINE;
  lash__q_init(&w->link);
  lash__q_init(&w->all);
  lash__q_init(&w->hub_link);
  if (il > 0) memcpy(w->id, id, il);
  w->id[il] = '\0';
  if (etype != NULL) {
    char *t = w->id + il + 1;
    memcpy(t, etype, tl + 1);
    w->etype = t;
  }
  return w;
}

static void wait_mem_free(lash_wait *w) {
  if (w->has_rec) lash_record_free(&w->rec);
  free(w->ev_buf);
  free(w);
}

static int check_args(lash_engine *e, lash_run *run, lash_wait_fn cb,
                      lash_wait **out) {
  if (out != NULL) *out = NULL;
  if (e == NULL || cb == NULL || out == NULL) return LASH_EINVAL;
  if (e->closing) return LASH_ECLOSED;
  if (run != NULL) {
    if (run->e != e || run->state != LASH__RS_RUNNING) return LASH_EINVAL;
    if (run->cancelled) return LASH_ECANCELED;
  }
  return 0;
}

/* Parks w (already subscribed unless a sleep). */
static int park(lash_engine *e, lash_wait *w, int64_t timeout_ms) {
  uint64_t now;
  int rc;
  uv_update_time(e->loop);
  now = uv_now(e->loop);
  w->backoff = e->poll_min;
  if (timeout_ms >= 0) w->deadline = now + (uint64_t)timeout_ms;
  w->due =
      w->kind == LASH__W_SLEEP || w->attached ? w->deadline : next_due(w, now);
  w->state = LASH__WS_PARKED;
  if ((rc = heap_push(e, w)) < 0) {
    w->state = 0;
    return rc;
  }
  if (w->deadline != LASH__NO_DEADLINE) e->ntimed++;
  e->nparked_waits++;
  lash__q_push(&e->waits, &w->all);
  if (w->run != NULL) {
    /* Give the slot back while parked (SEMANTICS 7.4). */
    w->run->state = LASH__RS_PARKED;
    w->run->wait = w;
    e->running--;
    e->parked++;
  }
  lash__poll_update(e);
  lash__pump_kick(e);
  return 0;
}

static int await_common(lash_engine *e, lash_wait *w, int64_t timeout_ms,
                        lash_wait **out) {
  int rc;
  if ((rc = lash__hub_subscribe(e, w)) < 0) goto fail;
  rc = lash__wait_check(e, w);
  if (rc != 0) {
    lash__hub_unsubscribe(e, w);
    if (rc < 0) goto fail;
    w->state = LASH__WS_RESOLVED;
    w->run = NULL;
    *out = w;
    return 1;
  }
  if (w->kind == LASH__W_TERMINAL && e->attach.await_terminal != NULL) {
    /* A live row: the backend owns this wait (no hub, no backoff). */
    lash__hub_unsubscribe(e, w);
    w->attached = 1;
    if ((rc = park(e, w, timeout_ms)) < 0) {
      w->attached = 0;
      goto fail;
    }
    rc = e->attach.await_terminal(e->attach.ud, w->id, w);
    if (rc < 0) {
      w->attached = 0; /* refused: nothing to cancel */
      *out = NULL;
      lash_wait_free(w);
      return rc;
    }
    *out = w;
    return 0;
  }
  if ((rc = park(e, w, timeout_ms)) < 0) {
    lash__hub_unsubscribe(e, w);
    goto fail;
  }
  *out = w;
  return 0;
fail:
  wait_mem_free(w);
  return rc;
}

int lash_await_terminal(lash_engine *e, lash_run *run, const char *id,
                        int64_t timeout_ms, lash_wait_fn cb, void *ud,
                        lash_wait **out) {
  lash_wait *w;
  int rc = check_args(e, run, cb, out);
  if (rc < 0) return rc;
  if (id == NULL || id[0] == '\0' || strlen(id) > LASH_ID_MAX)
    return LASH_EINVAL;
  if ((w = wait_new(e, run, LASH__W_TERMINAL, id, NULL, cb, ud)) == NULL)
    return LASH_ENOMEM;
  return await_common(e, w, timeout_ms, out);
}

int lash_await_event(lash_engine *e, lash_run *run, const char *id,
                     const char *type, uint64_t after_seq, int64_t timeout_ms,
                     lash_wait_fn cb, void *ud, lash_wait **out) {
  lash_wait *w;
  int rc = check_args(e, run, cb, out);
  if (rc < 0) return rc;
  if (id == NULL || id[0] == '\0' || strlen(id) > LASH_ID_MAX || type == NULL ||
      type[0] == '\0')
    return LASH_EINVAL;
  if ((w = wait_new(e, run, LASH__W_EVENT, id, type, cb, ud)) == NULL)
    return LASH_ENOMEM;
  w->after = after_seq;
  return await_common(e, w, timeout_ms, out);
}

int lash_await_sleep(lash_engine *e, lash_run *run, int64_t ms, lash_wait_fn cb,
                     void *ud, lash_wait **out) {
  lash_wait *w;
  int rc = check_args(e, run, cb, out);
  if (rc < 0) return rc;
  if (ms < 0) return LASH_EINVAL;
  if ((w = wait_new(e, run, LASH__W_SLEEP, NULL, NULL, cb, ud)) == NULL)
    return LASH_ENOMEM;
  if ((rc = park(e, w, ms)) < 0) {
    wait_mem_free(w);
    return rc;
  }
  *out = w;
  return 0;
}

void lash_engine_set_attach(lash_engine *e, const lash_attach *a) {
  if (e == NULL) return;
  if (a != NULL)
    e->attach = *a;
  else
    memset(&e->attach, 0, sizeof e->attach);
}

void lash_attach_resolve(lash_wait *w, int rc) {
  if (w == NULL || !w->attached || w->state != LASH__WS_PARKED) return;
  w->attached = 0; /* answered: no cancel */
  if (rc == 0) {
    rc = lash__wait_check(w->e, w);
    rc = rc > 0 ? 0 : rc == 0 ? LASH_EIO : rc;
  }
  lash__wait_settle(w, rc);
}

/* ------------------------------------------------------------- results */

const lash_record *lash_wait_record(const lash_wait *w) {
  return w != NULL && w->has_rec ? &w->rec : NULL;
}

const lash_tombstone *lash_wait_tombstone(const lash_wait *w) {
  return w != NULL && w->has_tomb ? &w->tomb : NULL;
}

const lash_event *lash_wait_event(const lash_wait *w) {
  return w != NULL && w->has_ev ? &w->ev : NULL;
}

/* Unlinks w from the engine. Returns the run it belonged to (still in the
 * state it had), or NULL. */
static lash_run *unlink_wait(lash_wait *w) {
  lash_engine *e = w->e;
  lash_run *run = w->run;
  switch (w->state) {
  case LASH__WS_PARKED:
    unpark(e, w);
    lash__q_remove(&w->all);
    break;
  case LASH__WS_SLOT:
    lash__q_remove(&w->link);
    e->nslotq--;
    lash__q_remove(&w->all);
    break;
  case LASH__WS_DELIVER:
    lash__q_remove(&w->link);
    lash__q_remove(&w->all);
    break;
  default:
    return NULL;
  }
  if (run != NULL) run->wait = NULL;
  w->run = NULL;
  return run;
}

void lash_wait_free(lash_wait *w) {
  lash_engine *e;
  lash_run *run;
  int state;
  if (w == NULL) return;
  e = w->e;
  state = w->state;
  run = unlink_wait(w);
  if (run != NULL && state != LASH__WS_DELIVER) {
    /* The body gave up its wait and goes on running: it holds a slot
     * again (it is executing right now, in the caller). */
    run->state = LASH__RS_RUNNING;
    e->running++;
    e->parked--;
  }
  if (e != NULL && (state == LASH__WS_PARKED || state == LASH__WS_SLOT))
    lash__poll_update(e);
  wait_mem_free(w);
}

void lash__wait_detach(lash_wait *w) {
  unlink_wait(w);
  w->state = LASH__WS_DETACHED;
  w->e = NULL;
}

void lash__waits_detach_all(lash_engine *e) {
  lash__q *q;
  while ((q = lash__q_pop(&e->waits)) != NULL) {
    lash_wait *w = LASH__CONTAINER_OF(q, lash_wait, all);
    lash__q_push(&e->waits, &w->all); /* unlink_wait removes it */
    lash__wait_detach(w);
  }
}
