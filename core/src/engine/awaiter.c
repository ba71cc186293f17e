/* engine/awaiter.c - waits (see awaiter.h).
 *
 * An await subscribes to the hub and then point-reads (no lost wakeup:
 * a publish after the subscribe marks the wait ready). A parked wait is
 * re-read when the hub marks it, or when its backoff deadline comes up on
 * the awaiter's one timer heap (poll_min doubling to poll_max, reset on a
 * mark); the heap also holds timeouts and sleeps. A backoff re-read is
 * skipped while the store's change seq has not moved since the wait's last
 * one: nothing anywhere can have changed.
 *
 * A wait of a run gives the run's slot back while parked and retakes one
 * before its callback; when none is free it queues in a FIFO that is served
 * before new admissions. Callbacks run only from the pump.
 *
 * Part: awaiter. May call: the registry (lash.h), hub, feed
 * (lash__feed_update), run, base/heap, base/queue, pump. */
#include "engine/awaiter.h"

#include <stdlib.h>
#include <string.h>

#define NO_DEADLINE UINT64_MAX

enum { W_TERMINAL = 1, W_EVENT, W_SLEEP, W_MANUAL };

enum {
  WS_RESOLVED = 1, /* resolved at once, or delivered: host-owned */
  WS_PARKED,       /* subscribed and/or on the timer heap */
  WS_SLOT,         /* settled, its run waits for a slot (FIFO) */
  WS_DELIVER,      /* settled, cb queued on the deliver list */
  WS_DETACHED      /* cancelled by close or a drop: memory only */
};

struct lash_wait {
  lash__awaiter *aw; /* NULL once detached */
  lash_run *run;
  int kind;
  int state;
  int rc;
  int attached; /* held by the attach backend (no hub, no backoff) */
  lash__q link; /* slot FIFO or deliver list */
  lash__q all;  /* aw->waits while parked/settled, not delivered */
  lash__hub_sub sub;
  lash__hnode hn;    /* on the timer heap: hn.due, the next timer action */
  uint64_t deadline; /* loop ms of the timeout/sleep end, or NO_DEADLINE */
  uint64_t backoff;
  uint64_t seen_cseq; /* store change seq at the last backoff re-read */
  uint64_t after;     /* event waits: no match at or below this seq */
  lash_wait_fn cb;
  void *ud;
  /* results */
  lash_record rec;
  int has_rec;
  lash_tombstone tomb;
  int has_tomb;
  lash_event ev;
  int has_ev;
  char *ev_buf;
  const char *etype; /* event waits: points into the tail of this block */
  /* A wait its body may be suspended at (lash_wait_suspendable): in
   * aw->idle while parked, with its label and when it parked. */
  lash__q ilink;
  char *label;
  uint64_t parked_at;
  char id[]; /* id, then (event waits) the type */
};

#define WAIT_OF_HN(n) LASH__CONTAINER_OF(n, lash_wait, hn)

/* ------------------------------------------------------------ the heap */

static void heap_arm(lash__awaiter *aw);

static void timer_cb(uv_timer_t *t);

static void heap_arm(lash__awaiter *aw) {
  lash__hnode *top = lash__heap_top(&aw->heap);
  uint64_t now, delay;
  if (top == NULL || aw->closed) {
    uv_timer_stop(&aw->timer);
    return;
  }
  now = uv_now(aw->loop);
  delay = top->due > now ? top->due - now : 0;
  uv_timer_start(&aw->timer, timer_cb, delay, 0);
}

static int heap_push(lash__awaiter *aw, lash_wait *w) {
  int rc = lash__heap_push(&aw->heap, &w->hn);
  if (rc < 0) return rc;
  if (lash__heap_top(&aw->heap) == &w->hn) heap_arm(aw);
  return 0;
}

static void heap_remove(lash__awaiter *aw, lash_wait *w) {
  int was_top = w->hn.idx == 0;
  if (w->hn.idx == LASH__HEAP_NONE) return;
  lash__heap_remove(&aw->heap, &w->hn);
  if (was_top) heap_arm(aw);
}

/* Re-positions w after its due time changed. */
static void heap_fix(lash__awaiter *aw, lash_wait *w) {
  lash__hnode *top = lash__heap_top(&aw->heap);
  lash__heap_fix(&aw->heap, &w->hn);
  if (top != lash__heap_top(&aw->heap) || lash__heap_top(&aw->heap) == &w->hn)
    heap_arm(aw);
}

static uint64_t next_due(const lash_wait *w, uint64_t now) {
  uint64_t due = now + w->backoff;
  return due < w->deadline ? due : w->deadline;
}

static void reset_backoff(lash__awaiter *aw, lash_wait *w) {
  if (w->kind == W_SLEEP || w->hn.idx == LASH__HEAP_NONE) return;
  w->backoff = aw->poll_min;
  w->hn.due = next_due(w, uv_now(aw->loop));
  heap_fix(aw, w);
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

/* 1 resolved (result stored in w), 0 not yet, < 0 error. */
static int wait_check(lash_store *s, lash_wait *w) {
  lash_record r;
  int rc;
  switch (w->kind) {
  case W_TERMINAL:
    memset(&r, 0, sizeof r);
    rc = lash_get(s, NULL, w->id, &r, &w->tomb);
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
  case W_EVENT:
    rc = lash_events_after(s, NULL, w->id, w->after, 0, ev_find_cb, w);
    if (w->has_ev) return 1;
    return rc < 0 ? rc : 0;
  default:
    return 0;
  }
}

/* ------------------------------------------------------------- settle */

static void unpark(lash__awaiter *aw, lash_wait *w) {
  if (w->attached) {
    /* Ended without the backend's answer: it must forget w. */
    w->attached = 0;
    if (aw->attach.cancel != NULL) aw->attach.cancel(aw->attach.ud, w);
  }
  lash__hub_unsubscribe(aw->hub, &w->sub);
  heap_remove(aw, w);
  if (w->deadline != NO_DEADLINE) aw->ntimed--;
  if (w->kind != W_MANUAL) aw->nparked--;
  if (!lash__q_empty(&w->ilink)) {
    lash__q_remove(&w->ilink);
    aw->nidle--;
  }
}

/* The run of @p w takes a slot again; its cb is due. */
static void to_deliver(lash__awaiter *aw, lash_wait *w) {
  aw->slots->running++;
  aw->slots->parked--;
  w->run->state = LASH__RS_RUNNING;
  w->state = WS_DELIVER;
  lash__q_push(&aw->deliver, &w->link);
}

void lash__wait_settle(lash_wait *w, int rc) {
  lash__awaiter *aw = w->aw;
  lash_run *run = w->run;
  lash__slots *sl = aw->slots;
  if (w->state != WS_PARKED) return;
  unpark(aw, w);
  w->rc = rc;
  if (run != NULL) {
    if (sl->running < sl->concurrency && sl->queued == 0) {
      to_deliver(aw, w);
    } else {
      run->state = LASH__RS_SLOT;
      w->state = WS_SLOT;
      lash__q_push(&aw->slotq, &w->link);
      sl->queued++;
    }
  } else {
    w->state = WS_DELIVER;
    lash__q_push(&aw->deliver, &w->link);
  }
  lash__feed_update(aw->feed);
  lash__pump_kick(aw->pump);
}

static void slots_serve(lash__awaiter *aw) {
  lash__slots *sl = aw->slots;
  while (sl->queued > 0 && sl->running < sl->concurrency) {
    lash__q *q = lash__q_pop(&aw->slotq);
    sl->queued--;
    to_deliver(aw, LASH__CONTAINER_OF(q, lash_wait, link));
  }
}

size_t lash__awaiter_deliver(lash__awaiter *aw, size_t max) {
  size_t k = 0;
  lash__q *q;
  /* Served before each callback: a body that parks again (a wait, its
   * next write) gives its slot to the next one in the same turn. */
  while (k < max && (slots_serve(aw), q = lash__q_pop(&aw->deliver)) != NULL) {
    lash_wait *w = LASH__CONTAINER_OF(q, lash_wait, link);
    lash__q_remove(&w->all);
    w->state = WS_RESOLVED;
    if (w->run != NULL) {
      w->run->wait = NULL;
      w->run = NULL;
    }
    k++;
    w->cb(w->ud, w, w->rc);
  }
  return k;
}

int lash__awaiter_pending(const lash__awaiter *aw) {
  return !lash__q_empty(&aw->deliver) ||
         (aw->slots->queued > 0 && aw->slots->running < aw->slots->concurrency);
}

int lash__awaiter_idle(const lash__awaiter *aw) {
  return lash__q_empty(&aw->deliver) && aw->slots->queued == 0 &&
         aw->ntimed == 0;
}

size_t lash__awaiter_drain(lash__awaiter *aw, size_t max) {
  lash__q batch;
  lash__hub_sub *sub;
  size_t done = 0;
  int rc;
  if (!lash__hub_has_ready(aw->hub)) return 0;
  /* Take what is marked now; marks made while we re-read go to the next
   * batch. */
  lash__hub_take(aw->hub, &batch);
  while (done < max && (sub = lash__hub_next(&batch)) != NULL) {
    lash_wait *w = LASH__CONTAINER_OF(sub, lash_wait, sub);
    done++;
    aw->hub_wakes++;
    rc = wait_check(aw->s, w);
    if (rc != 0)
      lash__wait_settle(w, rc > 0 ? 0 : rc);
    else
      reset_backoff(aw, w);
  }
  /* Put the rest back in front of anything marked meanwhile. */
  lash__hub_untake(aw->hub, &batch);
  return done;
}

static void timer_cb(uv_timer_t *t) {
  lash__awaiter *aw = LASH__CONTAINER_OF(t, lash__awaiter, timer);
  uint64_t now = uv_now(aw->loop), cs = 0;
  lash__hnode *top;
  int cs_read = 0, rc;
  while ((top = lash__heap_top(&aw->heap)) != NULL && top->due <= now) {
    lash_wait *w = WAIT_OF_HN(top);
    if (w->deadline != NO_DEADLINE && now >= w->deadline) {
      lash__wait_settle(w, w->kind == W_SLEEP ? 0 : LASH_ETIMEDOUT);
      continue;
    }
    if (!cs_read) {
      cs = lash_change_seq(aw->s);
      cs_read = 1;
    }
    if (cs == 0 || w->seen_cseq != cs) {
      w->seen_cseq = cs;
      aw->backoff_reads++;
      rc = wait_check(aw->s, w);
      if (rc != 0) {
        lash__wait_settle(w, rc > 0 ? 0 : rc);
        continue;
      }
    }
    w->backoff *= 2;
    if (w->backoff > aw->poll_max) w->backoff = aw->poll_max;
    w->hn.due = next_due(w, now);
    lash__heap_fix(&aw->heap, &w->hn);
  }
  heap_arm(aw);
}

/* -------------------------------------------------------------- awaits */

static lash_wait *wait_new(lash__awaiter *aw, lash_run *run, int kind,
                           const char *id, const char *etype, lash_wait_fn cb,
                           void *ud) {
  size_t il = id ? strlen(id) : 0, tl = etype ? strlen(etype) : 0;
  lash_wait *w = calloc(1, sizeof *w + il + 1 + (etype ? tl + 1 : 0));
  if (w == NULL) return NULL;
  w->aw = aw;
  w->run = run;
  w->kind = kind;
  w->cb = cb;
  w->ud = ud;
  w->hn.idx = LASH__HEAP_NONE;
  w->deadline = NO_DEADLINE;
  lash__q_init(&w->link);
  lash__q_init(&w->all);
  lash__q_init(&w->ilink);
  lash__hub_sub_init(&w->sub);
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
  free(w->label);
  free(w);
}

static int check_args(lash__awaiter *aw, lash_run *run, lash_wait_fn cb,
                      lash_wait **out) {
  if (out != NULL) *out = NULL;
  if (cb == NULL || out == NULL) return LASH_EINVAL;
  if (aw->closed) return LASH_ECLOSED;
  if (run != NULL) {
    if (run->e != aw->e || run->state != LASH__RS_RUNNING) return LASH_EINVAL;
    if (run->cancelled) return LASH_ECANCELED;
  }
  return 0;
}

/* Parks w (already subscribed unless a sleep). */
static int park(lash__awaiter *aw, lash_wait *w, int64_t timeout_ms) {
  uint64_t now;
  int rc;
  uv_update_time(aw->loop);
  now = uv_now(aw->loop);
  w->backoff = aw->poll_min;
  if (timeout_ms >= 0) w->deadline = now + (uint64_t)timeout_ms;
  w->hn.due =
      w->kind == W_SLEEP || w->attached ? w->deadline : next_due(w, now);
  w->state = WS_PARKED;
  if (w->kind != W_MANUAL && (rc = heap_push(aw, w)) < 0) {
    w->state = 0;
    return rc;
  }
  if (w->deadline != NO_DEADLINE) aw->ntimed++;
  if (w->kind != W_MANUAL) aw->nparked++;
  lash__q_push(&aw->waits, &w->all);
  if (w->run != NULL) {
    /* Give the slot back while parked (SEMANTICS 7.4). */
    w->run->state = LASH__RS_PARKED;
    w->run->wait = w;
    aw->slots->running--;
    aw->slots->parked++;
  }
  lash__feed_update(aw->feed);
  lash__pump_kick(aw->pump);
  return 0;
}

static int await_common(lash__awaiter *aw, lash_wait *w, int64_t timeout_ms,
                        lash_wait **out) {
  int rc;
  if ((rc = lash__hub_subscribe(aw->hub, &w->sub, w->id)) < 0) goto fail;
  rc = wait_check(aw->s, w);
  if (rc != 0) {
    lash__hub_unsubscribe(aw->hub, &w->sub);
    if (rc < 0) goto fail;
    w->state = WS_RESOLVED;
    w->run = NULL;
    *out = w;
    return 1;
  }
  if (w->kind == W_TERMINAL && aw->attach.await_terminal != NULL) {
    /* A live row: the backend owns this wait (no hub, no backoff). */
    lash__hub_unsubscribe(aw->hub, &w->sub);
    w->attached = 1;
    if ((rc = park(aw, w, timeout_ms)) < 0) {
      w->attached = 0;
      goto fail;
    }
    rc = aw->attach.await_terminal(aw->attach.ud, w->id, w);
    if (rc < 0) {
      w->attached = 0; /* refused: nothing to cancel */
      *out = NULL;
      lash_wait_free(w);
      return rc;
    }
    *out = w;
    return 0;
  }
  if ((rc = park(aw, w, timeout_ms)) < 0) {
    lash__hub_unsubscribe(aw->hub, &w->sub);
    goto fail;
  }
  *out = w;
  return 0;
fail:
  wait_mem_free(w);
  return rc;
}

int lash__await_terminal(lash__awaiter *aw, lash_run *run, const char *id,
                         int64_t timeout_ms, lash_wait_fn cb, void *ud,
                         lash_wait **out) {
  lash_wait *w;
  int rc = check_args(aw, run, cb, out);
  if (rc < 0) return rc;
  if (id == NULL || id[0] == '\0' || strlen(id) > LASH_ID_MAX)
    return LASH_EINVAL;
  if ((w = wait_new(aw, run, W_TERMINAL, id, NULL, cb, ud)) == NULL)
    return LASH_ENOMEM;
  return await_common(aw, w, timeout_ms, out);
}

int lash__await_event(lash__awaiter *aw, lash_run *run, const char *id,
                      const char *type, uint64_t after_seq, int64_t timeout_ms,
                      lash_wait_fn cb, void *ud, lash_wait **out) {
  lash_wait *w;
  int rc = check_args(aw, run, cb, out);
  if (rc < 0) return rc;
  if (id == NULL || id[0] == '\0' || strlen(id) > LASH_ID_MAX || type == NULL ||
      type[0] == '\0')
    return LASH_EINVAL;
  if ((w = wait_new(aw, run, W_EVENT, id, type, cb, ud)) == NULL)
    return LASH_ENOMEM;
  w->after = after_seq;
  return await_common(aw, w, timeout_ms, out);
}

int lash__await_sleep(lash__awaiter *aw, lash_run *run, int64_t ms,
                      lash_wait_fn cb, void *ud, lash_wait **out) {
  lash_wait *w;
  int rc = check_args(aw, run, cb, out);
  if (rc < 0) return rc;
  if (ms < 0) return LASH_EINVAL;
  if ((w = wait_new(aw, run, W_SLEEP, NULL, NULL, cb, ud)) == NULL)
    return LASH_ENOMEM;
  if ((rc = park(aw, w, ms)) < 0) {
    wait_mem_free(w);
    return rc;
  }
  *out = w;
  return 0;
}

int lash__await_manual(lash__awaiter *aw, lash_run *run, lash_wait_fn cb,
                       void *ud, lash_wait **out) {
  lash_wait *w;
  int rc = check_args(aw, run, cb, out);
  if (rc < 0) return rc;
  if (run == NULL) return LASH_EINVAL;
  if ((w = wait_new(aw, run, W_MANUAL, NULL, NULL, cb, ud)) == NULL)
    return LASH_ENOMEM;
  if ((rc = park(aw, w, -1)) < 0) {
    wait_mem_free(w);
    return rc;
  }
  *out = w;
  return 0;
}

int lash__wait_manual(const lash_wait *w) {
  return w != NULL && w->kind == W_MANUAL;
}

void lash_wait_resolve(lash_wait *w, int rc) {
  if (w == NULL || w->kind != W_MANUAL || w->state != WS_PARKED) return;
  lash__wait_settle(w, rc);
}

void lash__awaiter_set_attach(lash__awaiter *aw, const lash_attach *a) {
  if (a != NULL)
    aw->attach = *a;
  else
    memset(&aw->attach, 0, sizeof aw->attach);
}

void lash_attach_resolve(lash_wait *w, int rc) {
  if (w == NULL || !w->attached || w->state != WS_PARKED) return;
  w->attached = 0; /* answered: no cancel */
  if (rc == 0) {
    rc = wait_check(w->aw->s, w);
    rc = rc > 0 ? 0 : rc == 0 ? LASH_EIO : rc;
  }
  lash__wait_settle(w, rc);
}

/* -------------------------------------------------------- suspension */

int lash_wait_suspendable(lash_wait *w, const char *label) {
  lash__awaiter *aw;
  lash_run *run;
  if (w == NULL || label == NULL) return LASH_EINVAL;
  aw = w->aw;
  run = w->run;
  if (aw == NULL || w->state != WS_PARKED || run == NULL || w->attached)
    return LASH_EINVAL;
  /* Owner-bound rows run at most once: never replayed elsewhere. An event
   * wait on another row has no wake the store indexes: it stays here. */
  if (run->rec.disposition == LASH_OWNER_BOUND ||
      (w->kind == W_EVENT &&
       (strcmp(w->id, run->rec.id) != 0 || strcmp(w->etype, "*") == 0)))
    return LASH_EINVAL;
  if (!lash__q_empty(&w->ilink)) return 0;
  free(w->label);
  if ((w->label = strdup(label)) == NULL) return LASH_ENOMEM;
  w->parked_at = uv_now(aw->loop);
  lash__q_push(&aw->idle, &w->ilink);
  aw->nidle++;
  lash__pump_kick(aw->pump);
  return 0;
}

int lash__awaiter_idle_head(lash__awaiter *aw, lash__idle_wait *out) {
  lash_wait *w;
  uint64_t now;
  memset(out, 0, sizeof *out);
  if (lash__q_empty(&aw->idle)) return 0;
  w = LASH__CONTAINER_OF(aw->idle.next, lash_wait, ilink);
  out->w = w;
  out->run = w->run;
  out->label = w->label;
  out->parked_at = w->parked_at;
  if (w->kind == W_TERMINAL) out->wake.process = w->id;
  if (w->kind == W_EVENT) {
    out->wake.event = w->etype;
    out->wake.has_after = 1;
    out->wake.after = w->after;
  }
  if (w->deadline != NO_DEADLINE) {
    now = uv_now(aw->loop);
    out->wake.at = lash_store_now(aw->s) +
                   (int64_t)(w->deadline > now ? w->deadline - now : 0);
  }
  return 1;
}

int lash__awaiter_idle_since(const lash__awaiter *aw, uint64_t *parked_at) {
  if (lash__q_empty(&aw->idle)) return 0;
  *parked_at = LASH__CONTAINER_OF(aw->idle.next, lash_wait, ilink)->parked_at;
  return 1;
}

void lash__awaiter_idle_take(lash__awaiter *aw, lash_wait *w) {
  if (lash__q_empty(&w->ilink)) return;
  lash__q_remove(&w->ilink);
  aw->nidle--;
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

/* Unlinks w from the awaiter. Returns the run it belonged to (still in the
 * state it had), or NULL. */
static lash_run *unlink_wait(lash_wait *w) {
  lash__awaiter *aw = w->aw;
  lash_run *run = w->run;
  switch (w->state) {
  case WS_PARKED:
    unpark(aw, w);
    lash__q_remove(&w->all);
    break;
  case WS_SLOT:
    lash__q_remove(&w->link);
    aw->slots->queued--;
    lash__q_remove(&w->all);
    break;
  case WS_DELIVER:
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
  lash__awaiter *aw;
  lash_run *run;
  int state;
  if (w == NULL) return;
  aw = w->aw;
  state = w->state;
  run = unlink_wait(w);
  if (run != NULL && state != WS_DELIVER) {
    /* The body gave up its wait and goes on running: it holds a slot
     * again (it is executing right now, in the caller). */
    run->state = LASH__RS_RUNNING;
    aw->slots->running++;
    aw->slots->parked--;
  }
  if (aw != NULL && (state == WS_PARKED || state == WS_SLOT))
    lash__feed_update(aw->feed);
  wait_mem_free(w);
}

void lash__wait_detach(lash_wait *w) {
  unlink_wait(w);
  w->state = WS_DETACHED;
  w->aw = NULL;
}

/* ------------------------------------------------------------ the part */

void lash__awaiter_init(lash__awaiter *aw, lash_engine *e, lash_store *s,
                        uv_loop_t *loop, lash__handles *hs, lash__pump *pump,
                        lash__hub *hub, lash__feed *feed, lash__slots *slots,
                        uint64_t poll_min, uint64_t poll_max) {
  memset(aw, 0, sizeof *aw);
  aw->e = e;
  aw->s = s;
  aw->loop = loop;
  aw->pump = pump;
  aw->hub = hub;
  aw->feed = feed;
  aw->slots = slots;
  aw->poll_min = poll_min;
  aw->poll_max = poll_max;
  lash__q_init(&aw->waits);
  lash__q_init(&aw->deliver);
  lash__q_init(&aw->slotq);
  lash__q_init(&aw->idle);
  uv_timer_init(loop, &aw->timer);
  lash__handle_opened(hs, (uv_handle_t *)&aw->timer);
}

void lash__awaiter_close(lash__awaiter *aw) {
  lash__q *q;
  aw->closed = 1;
  while ((q = lash__q_pop(&aw->waits)) != NULL) {
    lash_wait *w = LASH__CONTAINER_OF(q, lash_wait, all);
    lash__q_push(&aw->waits, &w->all); /* unlink_wait removes it */
    lash__wait_detach(w);
  }
  lash__handle_close((uv_handle_t *)&aw->timer);
}

void lash__awaiter_free(lash__awaiter *aw) {
  lash__heap_free(&aw->heap);
}
