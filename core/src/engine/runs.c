/* engine/runs.c - runs and slots (see runs.h).
 *
 * Part: runs. May call: the registry (lash.h), awaiter, writer, renew,
 * run, base/map, base/queue, pump; the host through lash_runner. */
#include "engine/runs.h"

#include "base/inject.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t slen(const char *s) {
  return s != NULL ? strlen(s) + 1 : 0;
}

static const char *put_str(char **p, const char *s) {
  size_t n;
  char *d;
  if (s == NULL) return NULL;
  n = strlen(s) + 1;
  d = *p;
  memcpy(d, s, n);
  *p += n;
  return d;
}

static lash_bytes put_bytes(char **p, lash_bytes b) {
  lash_bytes out;
  out.len = b.len;
  out.data = *p;
  if (b.len > 0) memcpy(*p, b.data, b.len);
  *p += b.len;
  return out;
}

static lash_run *run_new(lash__runs *rs, const lash_record *rec,
                         const lash_lease *ls) {
  size_t extra = slen(rec->id) + slen(rec->kind) + rec->input.len +
                 rec->outcome.len + slen(rec->wait) + slen(rec->cancel_reason) +
                 slen(rec->abandon_by) + slen(rec->abandon_reason);
  lash_run *r = malloc(sizeof *r + extra);
  char *p;
  if (r == NULL) return NULL;
  memset(r, 0, sizeof *r);
  r->e = rs->e;
  r->runs = rs;
  r->rec = *rec;
  r->rec.priv_ = NULL;
  p = r->recbuf;
  r->rec.id = put_str(&p, rec->id);
  r->rec.kind = put_str(&p, rec->kind);
  r->rec.input = put_bytes(&p, rec->input);
  r->rec.outcome = put_bytes(&p, rec->outcome);
  r->rec.wait = put_str(&p, rec->wait);
  r->rec.cancel_reason = put_str(&p, rec->cancel_reason);
  r->rec.abandon_by = put_str(&p, rec->abandon_by);
  r->rec.abandon_reason = put_str(&p, rec->abandon_reason);
  r->recbuf_len = extra;
  r->held.lease = *ls;
  lash__mnode_key(&r->node, r->rec.id);
  lash__q_init(&r->link);
  lash__q_init(&r->slink);
  lash__q_init(&r->held.link);
  return r;
}

lash_run *lash__run_find(lash__runs *rs, const char *id) {
  lash__mnode *n = lash__map_find(&rs->by_id, id);
  return n ? LASH__CONTAINER_OF(n, lash_run, node) : NULL;
}

lash_run *lash__run_admit(lash__runs *rs, const lash_record *rec,
                          const lash_lease *ls, int64_t budget_ms) {
  lash_run *r = run_new(rs, rec, ls);
  if (r == NULL) return NULL;
  r->held.holder = r;
  r->held.owner_bound = rec->disposition == LASH_OWNER_BOUND;
  r->held.budget_ms = budget_ms;
  if (lash__map_put(&rs->by_id, &r->node) < 0) {
    free(r);
    return NULL;
  }
  r->state = LASH__RS_ADMITTED;
  r->cancelled = r->rec.cancel_requested;
  lash__q_push(&rs->all, &r->link);
  lash__q_push(&rs->uncommitted, &r->slink);
  lash__renew_hold(rs->renew, &r->held);
  rs->slots.running++;
  return r;
}

static void run_free(lash_run *r) {
  lash__runs *rs = r->runs;
  if (!r->claim_lost) lash__map_del(&rs->by_id, &r->node);
  lash__q_remove(&r->link);
  lash__q_remove(&r->slink);
  if (r->susp_ref != NULL) *r->susp_ref = NULL;
  free(r->fin_buf);
  lash__renew_unhold(rs->renew, &r->held);
  free(r);
}

/* Gives back whatever slot accounting the run's state holds. */
static void run_unslot(lash_run *r) {
  lash__slots *sl = &r->runs->slots;
  switch (r->state) {
  case LASH__RS_ADMITTED:
  case LASH__RS_RUNNING:
    sl->running--;
    break;
  case LASH__RS_PARKED:
  case LASH__RS_SLOT:
    sl->parked--;
    break;
  default:
    break;
  }
  lash__run_finishing(r);
  lash__pump_kick(r->runs->pump);
}

static void run_done_free(void *ud, int rc) {
  (void)rc; /* APPLIED, SUPERSEDED_OUTCOME, ESUPERSEDED are normal */
  LASH_INJECT("engine.after_finish");
  run_free(ud);
}

/* The completion committed (rc 0: this run's outcome is the row's): the
 * host hears of it after it is durable, from the loop. */
static void finish_done(void *ud, int rc) {
  lash_run *r = ud;
  lash__observer *o = r->runs->obs;
  if (rc == 0 && o != NULL && o->fn != NULL) {
    lash_observation ob;
    memset(&ob, 0, sizeof ob);
    ob.type = LASH_OBS_FINISHED;
    ob.id = r->rec.id;
    ob.kind = r->rec.kind;
    ob.attempt = r->rec.has_attempt ? r->rec.attempt.number : 0;
    ob.status = r->fin_status;
    ob.payload = r->fin_outcome;
    ob.retry_at = r->fin_retry_at;
    lash__observe(o, &ob);
  }
  run_done_free(ud, rc);
}

static int release_fn(lash_store *s, lash_txn *txn, void *ud) {
  lash_run *r = ud;
  LASH_INJECT("engine.before_release");
  return lash_lease_release(s, txn, &r->held.lease);
}

/* Infrastructure failure: release the lease, write no terminal. */
static void run_abort(lash_run *r) {
  if (r->wait != NULL) lash__wait_detach(r->wait);
  run_unslot(r);
  if (lash__writer_queue(r->runs->w, release_fn, r, run_done_free) < 0)
    run_free(r); /* the lease lapses on its own */
}

/* Takes the run away without a terminal (lease lost, engine closing, a
 * committed suspension). */
void lash__run_drop(lash_run *r, int rc) {
  lash__runs *rs = r->runs;
  int started = r->state != LASH__RS_ADMITTED;
  if (r->wait != NULL) lash__wait_detach(r->wait);
  run_unslot(r);
  lash__q_remove(&r->slink);
  if (started && rs->runner.drop != NULL) rs->runner.drop(rs->runner.ud, r, rc);
  run_free(r);
}

void lash__run_cancel(lash_run *r) {
  if (r->state == LASH__RS_FINISHING) return;
  r->cancelled = 1;
  if (r->wait != NULL && !lash__wait_manual(r->wait))
    lash__wait_settle(r->wait, LASH_ECANCELED);
}

const lash_record *lash_run_record(const lash_run *r) {
  return r ? &r->rec : NULL;
}
const lash_lease *lash_run_lease(const lash_run *r) {
  return r ? &r->held.lease : NULL;
}
lash_engine *lash_run_engine(const lash_run *r) {
  return r ? r->e : NULL;
}
int lash_run_cancelled(const lash_run *r) {
  return r ? r->cancelled : 0;
}
void *lash_run_data(const lash_run *r) {
  return r ? r->data : NULL;
}
void lash_run_set_data(lash_run *r, void *data) {
  if (r) r->data = data;
}

static int complete_fn(lash_store *s, lash_txn *txn, void *ud) {
  lash_run *r = ud;
  int rc;
  LASH_INJECT("engine.before_complete");
  if (r->claim_lost) return LASH_ESUPERSEDED;
  if (r->fin_status == LASH_FAILED) /* issue 13: its retry policy */
    rc = lash_fail_attempt(s, txn, &r->held.lease, r->fin_outcome, r->fin_fatal,
                           &r->retry, &r->fin_retry_at);
  else
    rc = lash_complete(s, txn, &r->held.lease, r->fin_status, r->fin_outcome);
  LASH_INJECT("engine.after_complete");
  return rc;
}

int lash_run_finish(lash_run *r, int status, lash_bytes outcome) {
  lash__runs *rs;
  int rc;
  if (r == NULL || r->state == LASH__RS_FINISHING) return LASH_EINVAL;
  rs = r->runs;
  if (status != LASH_COMPLETED && status != LASH_FAILED &&
      status != LASH_CANCELLED)
    return LASH_EINVAL;
  if (outcome.len > 0 && outcome.data == NULL) return LASH_EINVAL;
  if (outcome.len > lash_store_max_payload(rs->s)) return LASH_ETOOBIG;
  if (outcome.len > sizeof r->fin_inline) {
    if ((r->fin_buf = malloc(outcome.len)) == NULL) return LASH_ENOMEM;
    memcpy(r->fin_buf, outcome.data, outcome.len);
    r->fin_outcome.data = r->fin_buf;
  } else {
    if (outcome.len > 0) memcpy(r->fin_inline, outcome.data, outcome.len);
    r->fin_outcome.data = r->fin_inline;
  }
  r->fin_outcome.len = outcome.len;
  r->fin_status = status;
  /* A completion a lost connection rolled back is written again: the row
   * is still ours (or its lease lapsed, and the fence refuses it). */
  if ((rc = lash__writer_queue_again(rs->w, complete_fn, r, finish_done)) < 0) {
    free(r->fin_buf);
    r->fin_buf = NULL;
    return rc;
  }
  if (r->wait != NULL) lash__wait_detach(r->wait);
  run_unslot(r); /* admission continues before the commit */
  return 0;
}

int lash_run_fail_fatal(lash_run *r, lash_bytes outcome) {
  if (r == NULL || r->state == LASH__RS_FINISHING) return LASH_EINVAL;
  r->fin_fatal = 1;
  return lash_run_finish(r, LASH_FAILED, outcome);
}

void lash__runs_committed(lash__runs *rs, int rc) {
  lash__q *q;
  rs->early_n = 0;
  while ((q = lash__q_pop(&rs->early)) != NULL) {
    lash_run *r = LASH__CONTAINER_OF(q, lash_run, slink);
    /* Started before the commit: on, or (the claim never became durable)
     * dropped; a finished one goes with its completion's done callback. */
    if (rc < 0 && r->state != LASH__RS_FINISHING) lash__run_drop(r, rc);
    /* its completion, queued again after a lost connection, writes
     * nothing: the claim it completes never became durable */
    else if (rc < 0) {
      r->claim_lost = 1;
      lash__map_del(&rs->by_id, &r->node); /* the row may be admitted again */
    }
  }
  while ((q = lash__q_pop(&rs->uncommitted)) != NULL) {
    lash_run *r = LASH__CONTAINER_OF(q, lash_run, slink);
    if (rc == 0) {
      lash__q_push(&rs->starts, &r->slink);
    } else {
      /* The claim and start never became durable. */
      rs->slots.running--;
      lash__run_finishing(r);
      run_free(r);
    }
  }
}

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* runner->start for r; tells learn how long its first resume took (until
 * the body ended or parked). */
static void run_start(lash__runs *rs, lash_run *r) {
  char kind[LASH_NAME_MAX + 1];
  int64_t t0 = rs->learn != NULL ? mono_us() : 0;
  int rc;
  r->state = LASH__RS_RUNNING;
  if (rs->learn != NULL) {
    /* r may be gone when the start returns: its kind is copied */
    size_t n = strlen(r->rec.kind);
    if (n >= sizeof kind) n = sizeof kind - 1;
    memcpy(kind, r->rec.kind, n);
    kind[n] = '\0';
  }
  rc = rs->runner.start != NULL ? rs->runner.start(rs->runner.ud, r)
                                : LASH_EINVAL;
  if (rs->learn != NULL) rs->learn(rs->learn_ud, kind, mono_us() - t0);
  if (rc < 0 && r->state != LASH__RS_FINISHING) run_abort(r);
}

size_t lash__runs_start(lash__runs *rs, size_t max) {
  size_t k = 0;
  lash__q *q;
  while (k < max && (q = lash__q_pop(&rs->starts)) != NULL) {
    k++;
    run_start(rs, LASH__CONTAINER_OF(q, lash_run, slink));
  }
  return k;
}

size_t lash__runs_start_early(lash__runs *rs, lash_txn *txn,
                              int (*ok)(void *ud, const lash_run *r), void *ud,
                              size_t max_txn) {
  size_t k = 0;
  lash__q *q, *next;
  if (lash__q_empty(&rs->uncommitted)) return 0;
  lash_store_set_ambient(rs->s, txn);
  for (q = rs->uncommitted.next; q != &rs->uncommitted && rs->early_n < max_txn;
       q = next) {
    lash_run *r = LASH__CONTAINER_OF(q, lash_run, slink);
    next = q->next;
    if (r->rec.disposition != LASH_RERUNNABLE || !ok(ud, r)) continue;
    lash__q_remove(q);
    lash__q_push(&rs->early, q);
    rs->early_n++;
    k++;
    /* r may be gone when this returns; next is another run, untouched by
     * a start (a body's writes only queue) */
    run_start(rs, r);
  }
  lash_store_set_ambient(rs->s, NULL);
  return k;
}

void lash_run_busy(lash_run *r, int on) {
  if (r != NULL) lash__held_busy(&r->held, on);
}

/* A budget ran out while the body was not in host code: flag it, and end
 * its parked wait (it then fails at its next instruction). */
static void run_over(lash_run *r) {
  lash__runs *rs = r->runs;
  if (rs->runner.stall != NULL)
    rs->runner.stall(rs->runner.ud, r, LASH_STALL_BUDGET, r->held.budget_ms);
  if (r->wait != NULL && !lash__wait_manual(r->wait))
    lash__wait_settle(r->wait, LASH_ETIMEDOUT);
}

size_t lash__runs_heartbeat(lash__runs *rs) {
  lash__q *q;
  size_t dropped = 0;
  int again = 1;
  while (again) {
    again = 0;
    for (q = rs->all.next; q != &rs->all; q = q->next) {
      lash_run *r = LASH__CONTAINER_OF(q, lash_run, link);
      int lost, over = 0, busy;
      if (r->state == LASH__RS_FINISHING) continue;
      /* A run not started yet meets its budget when its body runs. */
      lash__held_flags(&r->held, &lost,
                       r->state == LASH__RS_ADMITTED ? NULL : &over, &busy);
      if (lost) {
        lash__observe_row(rs->obs, LASH_OBS_LEASE_LOST, &r->rec);
        lash__run_drop(r, LASH_ESUPERSEDED); /* no writes: the lease is gone */
        dropped++;
        again = 1;
        break;
      }
      if (over && !busy) run_over(r);
    }
  }
  return dropped;
}

void lash__runs_close(lash__runs *rs) {
  lash__q *q;
  /* Queued writes (completions) and the releases share one commit. */
  lash__writer_txn(rs->w, lash__renew_release_all_fn, rs->renew);
  lash__writer_deliver(rs->w, SIZE_MAX);
  while ((q = rs->all.next) != &rs->all) {
    lash_run *r = LASH__CONTAINER_OF(q, lash_run, link);
    if (r->state == LASH__RS_FINISHING) {
      /* Its done callback was lost (out of memory): just free it. */
      run_free(r);
      continue;
    }
    lash__run_drop(r, LASH_ECLOSED);
  }
}

void lash__runs_init(lash__runs *rs, lash_engine *e, lash_store *s,
                     lash__pump *pump, lash__writer *w, lash__renew *renew,
                     unsigned concurrency) {
  memset(rs, 0, sizeof *rs);
  rs->e = e;
  rs->s = s;
  rs->pump = pump;
  rs->w = w;
  rs->renew = renew;
  rs->slots.concurrency = concurrency;
  lash__q_init(&rs->all);
  lash__q_init(&rs->starts);
  lash__q_init(&rs->uncommitted);
  lash__q_init(&rs->early);
}

void lash__runs_free(lash__runs *rs) {
  lash__map_free(&rs->by_id);
}
