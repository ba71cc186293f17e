/* driver.c - admission (claim_and_run_pending), runs, leases and the
 * cross-process change feed (DESIGN 3, SEMANTICS 3.6-3.8, 7).
 *
 * A drive pages the live rows of the declared kinds (page = free slots,
 * clamped to [1, 256]) and claims, checks and starts them inside the
 * writer's transaction, so the claims and starts of a page share one
 * commit; bodies start from the pump after that commit. When the slots run
 * out before the scan's bound the scan stays in flight and continues (in
 * the pump's shared transaction) as slots free; a drive call meanwhile only
 * asks for a rescan. One renewal timer renews every held lease in one
 * transaction; a lapse timer drives again when a foreign lease runs out;
 * a poller notices other OS processes' writes through the change seq. */
#include "engine-int.h"

#include <stdlib.h>
#include <string.h>

#define PAGE_MAX 256
#define FEED_PAGE 256

static int fatal(int rc) {
  return rc == LASH_EIO || rc == LASH_EFULL || rc == LASH_EPANIC ||
         rc == LASH_ENOMEM || rc == LASH_ECORRUPT;
}

/* ----------------------------------------------------------------- runs */

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

static lash_run *run_new(lash_engine *e, const lash_record *rec,
                         const lash_lease *ls) {
  size_t extra = slen(rec->id) + slen(rec->kind) + rec->input.len +
                 rec->outcome.len + slen(rec->wait) + slen(rec->cancel_reason) +
                 slen(rec->abandon_by) + slen(rec->abandon_reason);
  lash_run *r = malloc(sizeof *r + extra);
  char *p;
  if (r == NULL) return NULL;
  memset(r, 0, sizeof *r);
  r->e = e;
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
  r->lease = *ls;
  r->node.key = r->rec.id;
  r->node.hash = lash__hash(r->rec.id);
  lash__q_init(&r->link);
  lash__q_init(&r->slink);
  return r;
}

lash_run *lash__run_find(lash_engine *e, const char *id) {
  lash__mnode *n;
  if (e->runs_by_id.n == 0) return NULL;
  n = lash__map_get(&e->runs_by_id, id, lash__hash(id));
  return n ? LASH__CONTAINER_OF(n, lash_run, node) : NULL;
}

static void run_free(lash_run *r) {
  lash_engine *e = r->e;
  lash__map_del(&e->runs_by_id, &r->node);
  lash__q_remove(&r->link);
  lash__q_remove(&r->slink);
  e->nruns--;
  free(r->fin_buf);
  free(r);
  lash__renew_update(e);
}

/* Gives back whatever slot accounting the run's state holds. */
static void run_unslot(lash_run *r) {
  lash_engine *e = r->e;
  switch (r->state) {
  case LASH__RS_ADMITTED:
  case LASH__RS_RUNNING:
    e->running--;
    break;
  case LASH__RS_PARKED:
  case LASH__RS_SLOT:
    e->parked--;
    break;
  default:
    break;
  }
  r->state = LASH__RS_FINISHING;
  lash__pump_kick(e);
}

static void run_done_free(void *ud, int rc) {
  (void)rc; /* APPLIED, SUPERSEDED_OUTCOME, ESUPERSEDED are normal */
  run_free(ud);
}

static int release_fn(lash_store *s, lash_txn *txn, void *ud) {
  lash_run *r = ud;
  return lash_lease_release(s, txn, &r->lease);
}

/* Infrastructure failure: release the lease, write no terminal. */
static void run_abort(lash_run *r) {
  if (r->wait != NULL) lash__wait_detach(r->wait);
  run_unslot(r);
  if (lash__wrv_push(&r->e->wq, release_fn, r, run_done_free, 0) < 0)
    run_free(r); /* the lease lapses on its own */
}

/* Takes the run away without a terminal (lease lost, engine closing). */
static void run_drop(lash_run *r, int rc) {
  lash_engine *e = r->e;
  int started = r->state != LASH__RS_ADMITTED;
  if (r->wait != NULL) lash__wait_detach(r->wait);
  run_unslot(r);
  lash__q_remove(&r->slink);
  if (started && e->runner.drop != NULL) e->runner.drop(e->runner.ud, r, rc);
  run_free(r);
}

void lash__run_cancel(lash_run *r) {
  if (r->state == LASH__RS_FINISHING) return;
  r->cancelled = 1;
  if (r->wait != NULL && r->wait->state == LASH__WS_PARKED)
    lash__wait_settle(r->wait, LASH_ECANCELED);
}

const lash_record *lash_run_record(const lash_run *r) {
  return r ? &r->rec : NULL;
}
const lash_lease *lash_run_lease(const lash_run *r) {
  return r ? &r->lease : NULL;
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
  return lash_complete(s, txn, &r->lease, r->fin_status, r->fin_outcome);
}

int lash_run_finish(lash_run *r, int status, lash_bytes outcome) {
  lash_engine *e;
  int rc;
  if (r == NULL || r->state == LASH__RS_FINISHING) return LASH_EINVAL;
  e = r->e;
  if (status != LASH_COMPLETED && status != LASH_FAILED &&
      status != LASH_CANCELLED)
    return LASH_EINVAL;
  if (outcome.len > 0 && outcome.data == NULL) return LASH_EINVAL;
  if (outcome.len > lash_store_max_payload(e->s)) return LASH_ETOOBIG;
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
  if ((rc = lash__wrv_push(&e->wq, complete_fn, r, run_done_free, 0)) < 0) {
    free(r->fin_buf);
    r->fin_buf = NULL;
    return rc;
  }
  if (r->wait != NULL) lash__wait_detach(r->wait);
  run_unslot(r); /* admission continues before the commit */
  return 0;
}

size_t lash__starts_deliver(lash_engine *e, size_t max) {
  size_t k = 0;
  lash__q *q;
  while (k < max && (q = lash__q_pop(&e->starts)) != NULL) {
    lash_run *r = LASH__CONTAINER_OF(q, lash_run, slink);
    int rc;
    k++;
    r->state = LASH__RS_RUNNING;
    rc = e->runner.start != NULL ? e->runner.start(e->runner.ud, r)
                                 : LASH_EINVAL;
    if (rc < 0 && r->state != LASH__RS_FINISHING) run_abort(r);
  }
  return k;
}

/* ------------------------------------------------------------- the scan */

typedef struct scan_row {
  char id[LASH_ID_MAX + 1];
  char att_owner[LASH_NAME_MAX + 1];
  int disposition;
  int status;
  int abandon_requested;
  int has_attempt;
} scan_row;

typedef struct scan_ctx {
  lash_engine *e;
  lash_txn *txn;
  lash_drive_report *rep;
  scan_row *rows;
  size_t n;
  int64_t min_busy;
} scan_ctx;

static scan_row scan_rows[PAGE_MAX]; /* loop thread only */

static int collect_cb(void *ud, const lash_record *rec) {
  scan_ctx *c = ud;
  scan_row *w;
  size_t len;
  if (c->n >= PAGE_MAX) return 1;
  w = &c->rows[c->n++];
  len = strlen(rec->id);
  memcpy(w->id, rec->id, len + 1);
  w->disposition = rec->disposition;
  w->status = rec->status;
  w->abandon_requested = rec->abandon_requested;
  w->has_attempt = rec->has_attempt;
  w->att_owner[0] = '\0';
  if (rec->has_attempt)
    memcpy(w->att_owner, rec->attempt.owner, sizeof w->att_owner);
  return 0;
}

/* Leased abandonment (writer, owner) of a claimed row. */
static int abandon(scan_ctx *c, const lash_lease *ls, int writer,
                   const char *owner) {
  unsigned char buf[512];
  lash_bytes b;
  int n = lash_abandon_payload(writer, owner, buf, sizeof buf), rc;
  if (n < 0) return n;
  b.data = buf;
  b.len = (size_t)n;
  rc = lash_complete(c->e->s, c->txn, ls, LASH_ABANDONED, b);
  if (rc != 0 && !fatal(rc)) rc = lash_lease_release(c->e->s, c->txn, ls);
  return fatal(rc) ? rc : 0;
}

static int admit(scan_ctx *c, const scan_row *row, const lash_lease *ls) {
  lash_engine *e = c->e;
  lash_record full;
  lash_run *r;
  int rc;
  memset(&full, 0, sizeof full);
  rc = lash_get(e->s, c->txn, row->id, &full, NULL);
  if (rc < 0) goto fail;
  r = run_new(e, &full, ls);
  lash_record_free(&full);
  if (r == NULL) {
    rc = LASH_ENOMEM;
    goto fail;
  }
  if (lash__map_put(&e->runs_by_id, &r->node) < 0) {
    free(r);
    rc = LASH_ENOMEM;
    goto fail;
  }
  r->state = LASH__RS_ADMITTED;
  r->cancelled = r->rec.cancel_requested;
  lash__q_push(&e->runs, &r->link);
  lash__q_push(&e->uncommitted, &r->slink);
  e->nruns++;
  e->running++;
  e->scan.pass_admitted++;
  c->rep->admitted++;
  return 0;
fail:
  if (fatal(rc)) return rc;
  rc = lash_lease_release(e->s, c->txn, ls);
  return fatal(rc) ? rc : 0;
}

/* One worklist row, under the writer's transaction (SEMANTICS 3.7). */
static int row_do(scan_ctx *c, const scan_row *row) {
  lash_engine *e = c->e;
  lash_lease ls;
  uint32_t attempt = 0;
  int rc;

  if (lash__run_find(e, row->id) != NULL) {
    c->rep->deferred++; /* already running here: not admitted twice */
    return 0;
  }
  if (LASH_IS_TERMINAL(row->status)) return 0;
  if (row->disposition == LASH_EXTERNAL) {
    c->rep->deferred++; /* never run here */
    if (!row->abandon_requested) return 0;
  }
  memset(&ls, 0, sizeof ls);
  rc = lash_lease_claim(e->s, c->txn, row->id, e->owner, e->incarnation,
                        e->ttl_ms, &ls);
  if (rc == LASH_EBUSY) {
    if (row->disposition != LASH_EXTERNAL) c->rep->deferred++;
    if (c->min_busy == 0 || ls.expires_at < c->min_busy)
      c->min_busy = ls.expires_at;
    return 0;
  }
  if (rc < 0) return fatal(rc) ? rc : 0;
  if (row->abandon_requested)
    return abandon(c, &ls, LASH_WRITER_RECONCILED_REQUEST,
                   row->disposition != LASH_EXTERNAL && row->has_attempt
                       ? row->att_owner
                       : NULL);
  rc = lash_start(e->s, c->txn, &ls, &attempt);
  switch (rc) {
  case 0:
    return admit(c, row, &ls);
  case LASH_EEXHAUSTED:
    return abandon(c, &ls, LASH_WRITER_ENGINE_GAVE_UP,
                   row->has_attempt ? row->att_owner : NULL);
  case LASH_ESTARTED:
    c->rep->deferred++; /* left to its owner */
    break;
  default:
    if (fatal(rc)) return rc;
    if (rc != LASH_ETERMINAL) c->rep->deferred++;
    break;
  }
  rc = lash_lease_release(e->s, c->txn, &ls);
  return fatal(rc) ? rc : 0;
}

int lash_engine_admit(lash_engine *e, lash_txn *txn, const char *id) {
  lash_drive_report rep;
  lash_record rec;
  scan_ctx c;
  scan_row row;
  int rc;
  if (e == NULL || txn == NULL || id == NULL) return LASH_EINVAL;
  if (e->closing || e->paused || e->runner.start == NULL ||
      lash__free_slots(e) == 0)
    return 0;
  memset(&rec, 0, sizeof rec);
  if (lash_get(e->s, txn, id, &rec, NULL) < 0) return 0;
  if (!lash__kind_declared(e, rec.kind) || LASH_IS_TERMINAL(rec.status)) {
    lash_record_free(&rec);
    return 0;
  }
  memset(&c, 0, sizeof c);
  memset(&rep, 0, sizeof rep);
  c.e = e;
  c.txn = txn;
  c.rep = &rep;
  c.rows = &row;
  c.n = 0;
  collect_cb(&c, &rec);
  lash_record_free(&rec);
  rc = row_do(&c, &row);
  if (c.min_busy > 0) lash__lapse_arm(e, c.min_busy);
  if (rc < 0) return rc;
  return rep.admitted > 0;
}

int lash_engine_register(lash_engine *e, lash_txn *txn, const lash_def *def,
                         int *created, lash_record *out, int *admitted) {
  int made = 0, rc;
  if (admitted != NULL) *admitted = 0;
  if (e == NULL || txn == NULL) return LASH_EINVAL;
  rc = lash_register(e->s, txn, def, &made, out);
  if (created != NULL) *created = made;
  if (rc < 0 || !made || !e->eager) return rc;
  /* A kind run here starts in the same commit as its registration. */
  rc = lash_engine_admit(e, txn, def->id);
  if (rc < 0) return rc;
  if (admitted != NULL) *admitted = rc;
  return 0;
}

uint64_t lash__free_slots(const lash_engine *e) {
  uint64_t used = e->running + e->nslotq;
  return used >= e->concurrency ? 0 : e->concurrency - used;
}

static void scan_finish(lash_engine *e) {
  e->scan.active = 0;
  e->last_pass_admitted = e->scan.pass_admitted > 0;
  if (e->scan.rescan || e->scan.pass_admitted > 0) {
    /* A rescan was asked for, or this pass admitted rows: one more pass
     * proves nothing is left (SEMANTICS 7.3). */
    e->scan.rescan = 0;
    e->drive_req = 1;
  }
}

int lash__scan_step(lash_engine *e, lash_txn *txn, lash_drive_report *rep) {
  lash_drive_report dummy;
  scan_ctx c;
  size_t i;
  int n, rc = 0;
  if (rep == NULL) {
    memset(&dummy, 0, sizeof dummy);
    rep = &dummy;
  }
  memset(&c, 0, sizeof c);
  c.e = e;
  c.txn = txn;
  c.rep = rep;
  c.rows = scan_rows;
  while (e->scan.active) {
    uint64_t free_slots = lash__free_slots(e);
    size_t limit;
    if (e->scan.kind >= e->nkinds) {
      scan_finish(e);
      break;
    }
    if (free_slots == 0) break;
    limit = free_slots > PAGE_MAX ? PAGE_MAX : (size_t)free_slots;
    c.n = 0;
    n = lash_worklist_page(e->s, txn, e->kinds[e->scan.kind], &e->scan.cur,
                           limit, collect_cb, &c);
    if (n < 0) {
      rc = n;
      break;
    }
    for (i = 0; i < c.n; i++)
      if ((rc = row_do(&c, &c.rows[i])) < 0) break;
    if (rc < 0) break;
    if (e->scan.cur.done || n == 0) {
      e->scan.kind++;
      memset(&e->scan.cur, 0, sizeof e->scan.cur);
    }
  }
  if (rc < 0) {
    /* This pass failed (read or storage): end it; the next drive request
     * starts over. */
    e->scan.active = 0;
    e->scan.error = rc;
  }
  if (c.min_busy > 0) lash__lapse_arm(e, c.min_busy);
  return rc;
}

void lash__scan_committed(lash_engine *e, int commit_rc) {
  lash__q *q;
  while ((q = lash__q_pop(&e->uncommitted)) != NULL) {
    lash_run *r = LASH__CONTAINER_OF(q, lash_run, slink);
    if (commit_rc == 0) {
      lash__q_push(&e->starts, &r->slink);
    } else {
      /* The claim and start never became durable. */
      e->running--;
      r->state = LASH__RS_FINISHING;
      run_free(r);
    }
  }
  if (commit_rc < 0) e->scan.active = 0;
  lash__renew_update(e);
  lash__pump_kick(e);
}

void lash__drive_request(lash_engine *e) {
  if (e->nkinds == 0 || e->closing || e->paused) return;
  if (e->scan.active)
    e->scan.rescan = 1;
  else
    e->drive_req = 1;
  lash__pump_kick(e);
}

static void scan_begin(lash_engine *e) {
  e->scan.active = 1;
  e->scan.rescan = 0;
  e->scan.kind = 0;
  e->scan.error = 0;
  e->scan.pass_admitted = 0;
  memset(&e->scan.cur, 0, sizeof e->scan.cur);
  e->drive_req = 0;
  e->stats.drives++;
}

int lash__drive_pump(lash_engine *e) {
  if (e->closing || e->paused) return 0;
  if (e->scan.active) return lash__free_slots(e) > 0;
  if (e->drive_req) {
    if (e->nkinds == 0 || e->runner.start == NULL) {
      e->drive_req = 0;
      e->last_pass_admitted = 0;
      return 0;
    }
    if (lash__free_slots(e) == 0) return 0;
    scan_begin(e);
    return 1;
  }
  return 0;
}

int lash_engine_drive(lash_engine *e, lash_drive_report *out) {
  lash_drive_report rep;
  int rc;
  memset(&rep, 0, sizeof rep);
  if (out != NULL) *out = rep;
  if (e == NULL) return LASH_EINVAL;
  if (e->closing) return LASH_ECLOSED;
  if (e->in_txn || e->batch != NULL) return LASH_EINVAL;
  if (e->paused) return 0;
  if (e->scan.active) {
    e->scan.rescan = 1;
    rep.coalesced = 1;
    if (out != NULL) *out = rep;
    return 0;
  }
  if (e->nkinds == 0 || e->runner.start == NULL) {
    e->drive_req = 0;
    e->last_pass_admitted = 0;
    return 0;
  }
  scan_begin(e);
  rc = lash__writer_txn(e, NULL, NULL, 1, &rep);
  if (out != NULL) *out = rep;
  return rc;
}

/* -------------------------------------------------------- lease renewal */

static int renew_fn(lash_store *s, lash_txn *txn, void *ud) {
  lash_engine *e = ud;
  lash__q *q;
  int rc;
  for (q = e->runs.next; q != &e->runs; q = q->next) {
    lash_run *r = LASH__CONTAINER_OF(q, lash_run, link);
    if (r->state == LASH__RS_FINISHING || r->lost) continue;
    rc = lash_lease_renew(s, txn, &r->lease, e->ttl_ms);
    if (rc == LASH_ESUPERSEDED)
      r->lost = 1;
    else if (rc < 0 && fatal(rc))
      return rc;
  }
  return 0;
}

void lash__lost_drop(lash_engine *e) {
  lash__q *q;
  int again = 1;
  while (again) {
    again = 0;
    for (q = e->runs.next; q != &e->runs; q = q->next) {
      lash_run *r = LASH__CONTAINER_OF(q, lash_run, link);
      if (r->lost && r->state != LASH__RS_FINISHING) {
        run_drop(r, LASH_ESUPERSEDED); /* no writes: the lease is gone */
        again = 1;
        break;
      }
    }
  }
}

static void renew_done(void *ud, int rc) {
  lash_engine *e = ud;
  (void)rc;
  e->renew_queued = 0;
  lash__lost_drop(e);
}

void lash__renew_cb(uv_timer_t *t) {
  lash_engine *e = LASH__CONTAINER_OF(t, lash_engine, renew_timer);
  if (e->renew_queued || e->nruns == 0 || e->closing) return;
  if (lash__wrv_push(&e->wq, renew_fn, e, renew_done, 0) == 0) {
    e->renew_queued = 1;
    lash__pump_kick(e);
  }
}

void lash__renew_update(lash_engine *e) {
  if (e->nruns > 0 && !e->renew_on && !e->closing) {
    uv_timer_start(&e->renew_timer, lash__renew_cb, (uint64_t)e->renew_ms,
                   (uint64_t)e->renew_ms);
    e->renew_on = 1;
  } else if (e->nruns == 0 && e->renew_on) {
    uv_timer_stop(&e->renew_timer);
    e->renew_on = 0;
  }
}

/* ----------------------------------------------------------- lapse timer */

void lash__lapse_cb(uv_timer_t *t) {
  lash_engine *e = LASH__CONTAINER_OF(t, lash_engine, lapse_timer);
  e->lapse_at = 0;
  lash__drive_request(e);
}

void lash__lapse_arm(lash_engine *e, int64_t expires_at) {
  int64_t now, delay;
  if (e->closing || expires_at <= 0) return;
  if (e->lapse_at != 0 && e->lapse_at <= expires_at) return;
  now = lash_store_now(e->s);
  delay = expires_at > now ? expires_at - now : 0;
  e->lapse_at = expires_at;
  uv_timer_start(&e->lapse_timer, lash__lapse_cb, (uint64_t)delay + 1, 0);
}

/* ------------------------------------------------------ the change feed */

static lash__fnode *feed_get(lash_engine *e, const char *id) {
  lash__mnode *n;
  if (e->feed.n == 0) return NULL;
  n = lash__map_get(&e->feed, id, lash__hash(id));
  return n ? LASH__CONTAINER_OF(n, lash__fnode, node) : NULL;
}

static void feed_del(lash_engine *e, lash__fnode *f) {
  lash__map_del(&e->feed, &f->node);
  f->free_next = e->ffree;
  e->ffree = f;
}

void lash__feed_note(lash_engine *e, const char *id, uint64_t last_seq,
                     int status) {
  lash__fnode *f = feed_get(e, id);
  size_t len;
  if (f == NULL) {
    if (e->ffree != NULL) {
      f = e->ffree;
      e->ffree = f->free_next;
    } else if ((f = malloc(sizeof *f)) == NULL) {
      return;
    }
    len = strlen(id);
    memcpy(f->id, id, len + 1);
    f->node.key = f->id;
    f->node.hash = lash__hash(f->id);
    f->node.next = NULL;
    if (lash__map_put(&e->feed, &f->node) < 0) {
      free(f);
      return;
    }
  }
  f->last_seq = last_seq;
  f->status = status;
}

void lash__feed_free(lash_engine *e) {
  size_t i;
  lash__fnode *f;
  for (i = 0; i < e->feed.nb; i++) {
    lash__mnode *n = e->feed.b[i], *next;
    for (; n != NULL; n = next) {
      next = n->next;
      free(LASH__CONTAINER_OF(n, lash__fnode, node));
    }
  }
  lash__map_free(&e->feed);
  while ((f = e->ffree) != NULL) {
    e->ffree = f->free_next;
    free(f);
  }
}

typedef struct feed_row {
  char id[LASH_ID_MAX + 1];
  uint64_t last_seq;
  int status;
  int deleted;
  int declared;
  int cancel_requested;
} feed_row;

typedef struct feed_ctx {
  lash_engine *e;
  feed_row *rows;
  size_t n;
} feed_ctx;

static feed_row feed_rows[FEED_PAGE]; /* loop thread only */

static int feed_collect(void *ud, const lash_change_entry *c) {
  feed_ctx *f = ud;
  feed_row *r;
  size_t len = strlen(c->id);
  if (f->n >= FEED_PAGE || len > LASH_ID_MAX) return 0;
  r = &f->rows[f->n++];
  memcpy(r->id, c->id, len + 1);
  r->deleted = c->deleted;
  r->last_seq = 0;
  r->status = 0;
  r->declared = 0;
  r->cancel_requested = 0;
  if (!c->deleted && c->rec != NULL) {
    r->last_seq = c->rec->last_seq;
    r->status = c->rec->status;
    r->declared = lash__kind_declared(f->e, c->rec->kind);
    r->cancel_requested = c->rec->cancel_requested;
  } else if (c->tomb != NULL) {
    r->status = c->tomb->status;
  }
  return 0;
}

typedef struct sink_ctx {
  lash_engine *e;
  uint64_t last;
} sink_ctx;

static int sink_cb(void *ud, const lash_event *ev) {
  sink_ctx *c = ud;
  if (ev->seq > c->last) return 1;
  c->e->runner.event(c->e->runner.ud, ev);
  return 0;
}

static void feed_row_do(lash_engine *e, const feed_row *row) {
  lash__fnode *f = feed_get(e, row->id);
  lash_run *run;
  if (!row->deleted && f != NULL && f->last_seq == row->last_seq &&
      f->status == row->status) {
    /* This engine's own write, already handled through the hook. */
    if (LASH_IS_TERMINAL(row->status)) feed_del(e, f);
    return;
  }
  e->stats.feed_changes++;
  lash__hub_publish(e, row->id);
  if (row->deleted) {
    if (f != NULL) feed_del(e, f);
    return;
  }
  if (row->declared && !LASH_IS_TERMINAL(row->status)) lash__drive_request(e);
  run = lash__run_find(e, row->id);
  if (run != NULL && row->cancel_requested && !run->cancelled)
    lash__run_cancel(run);
  if (e->runner.event != NULL) {
    sink_ctx sc;
    uint64_t from = f != NULL && f->last_seq < row->last_seq ? f->last_seq : 0;
    sc.e = e;
    sc.last = row->last_seq;
    if (row->last_seq > from)
      lash_events_after(e->s, NULL, row->id, from, 0, sink_cb, &sc);
  }
  f = feed_get(e, row->id); /* the sink may have changed the map */
  if (LASH_IS_TERMINAL(row->status)) {
    if (f != NULL) feed_del(e, f);
  } else {
    lash__feed_note(e, row->id, row->last_seq, row->status);
  }
}

static void feed_read(lash_engine *e) {
  feed_ctx fc;
  size_t i;
  int n;
  do {
    uint64_t next = e->feed_cursor;
    fc.e = e;
    fc.rows = feed_rows;
    fc.n = 0;
    n = lash_changes_since(e->s, NULL, e->feed_cursor, FEED_PAGE, feed_collect,
                           &fc, &next);
    if (n < 0) return;
    e->feed_cursor = next;
    for (i = 0; i < fc.n && e->poll_on; i++)
      feed_row_do(e, &fc.rows[i]);
  } while (n == FEED_PAGE && e->poll_on);
}

void lash__poll_cb(uv_timer_t *t) {
  lash_engine *e = LASH__CONTAINER_OF(t, lash_engine, poll_timer);
  uint64_t cs;
  if (!e->poll_on) return;
  /* Own changes first, so the feed can tell them from foreign ones. */
  lash__changes_process(e);
  cs = lash_change_seq(e->s);
  if (cs != 0 && cs != e->feed_seen) {
    e->feed_seen = cs;
    feed_read(e);
    e->poll_interval = e->poll_min;
    e->fs_retry = 0;
  } else if (e->fs_retry > 0) {
    e->fs_retry--;
    if (e->poll_on) uv_timer_start(&e->poll_timer, lash__poll_cb, 1, 0);
    return;
  } else {
    e->poll_interval *= 2;
    if (e->poll_interval > e->poll_max) e->poll_interval = e->poll_max;
  }
  if (e->poll_on)
    uv_timer_start(&e->poll_timer, lash__poll_cb, e->poll_interval, 0);
}

void lash__fs_wake_cb(uv_fs_event_t *h, const char *name, int events,
                      int status) {
  lash_engine *e = LASH__CONTAINER_OF(h, lash_engine, fs_wake);
  (void)name;
  (void)events;
  if (status < 0 || !e->poll_on || e->closing) return;
  /* Poll now unless a poll at the shortest interval is already due: busy
   * engines (their own commits) keep polling at poll_min. */
  if (e->poll_interval > e->poll_min) {
    e->poll_interval = e->poll_min;
    /* The event can come before the commit is readable (LMDB writes the
     * data pages, syncs, then the meta page): re-poll quickly a few times
     * rather than wait a whole backoff step. */
    e->fs_retry = 4;
    uv_timer_start(&e->poll_timer, lash__poll_cb, 0, 0);
  }
}

void lash__poll_update(lash_engine *e) {
  int want =
      !e->closing && (e->nparked_waits > 0 || e->nkinds > 0 || e->run_default);
  if (want && !e->poll_on) {
    e->poll_on = 1;
    e->feed_seen = lash_change_seq(e->s);
    e->feed_cursor = e->feed_seen;
    e->poll_interval = e->poll_min;
    uv_timer_start(&e->poll_timer, lash__poll_cb, e->poll_interval, 0);
  } else if (!want && e->poll_on) {
    size_t i;
    e->poll_on = 0;
    uv_timer_stop(&e->poll_timer);
    for (i = 0; i < e->feed.nb; i++) {
      while (e->feed.b[i] != NULL)
        feed_del(e, LASH__CONTAINER_OF(e->feed.b[i], lash__fnode, node));
    }
  }
}

/* ----------------------------------------------------------- owner drain */

typedef struct drain_ctx {
  lash_engine *e;
  char **ids;
  size_t n, cap;
  int rc;
  unsigned abandoned;
} drain_ctx;

static int drain_collect(void *ud, const lash_record *rec) {
  drain_ctx *d = ud;
  if (rec->disposition != LASH_OWNER_BOUND || !rec->has_attempt ||
      LASH_IS_TERMINAL(rec->status) ||
      strcmp(rec->attempt.owner, d->e->owner) != 0)
    return 0;
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 16;
    char **nv = realloc(d->ids, cap * sizeof *nv);
    if (nv == NULL) return LASH_ENOMEM;
    d->ids = nv;
    d->cap = cap;
  }
  if ((d->ids[d->n] = strdup(rec->id)) == NULL) return LASH_ENOMEM;
  d->n++;
  return 0;
}

static int drain_fn(lash_store *s, lash_txn *txn, void *ud) {
  drain_ctx *d = ud;
  lash_engine *e = d->e;
  unsigned char buf[512];
  lash_list_filter f;
  lash_bytes b;
  size_t i;
  int rc, n;
  memset(&f, 0, sizeof f);
  f.live_only = 1;
  rc = lash_list(s, txn, &f, drain_collect, d);
  if (rc < 0) return rc;
  n = lash_abandon_payload(LASH_WRITER_OWNER_DRAIN, e->owner, buf, sizeof buf);
  if (n < 0) return n;
  b.data = buf;
  b.len = (size_t)n;
  for (i = 0; i < d->n; i++) {
    lash_lease ls;
    if (lash__run_find(e, d->ids[i]) != NULL)
      continue; /* in flight here: not ours to abandon now */
    memset(&ls, 0, sizeof ls);
    rc = lash_lease_claim(s, txn, d->ids[i], e->owner, e->incarnation,
                          e->ttl_ms, &ls);
    if (rc < 0) {
      if (fatal(rc)) return rc;
      continue; /* EBUSY: deferred */
    }
    rc = lash_complete(s, txn, &ls, LASH_ABANDONED, b);
    if (rc == 0) {
      d->abandoned++;
    } else {
      if (fatal(rc)) return rc;
      if ((rc = lash_lease_release(s, txn, &ls)) < 0 && fatal(rc)) return rc;
    }
  }
  return 0;
}

int lash_engine_drain(lash_engine *e, unsigned *abandoned) {
  drain_ctx d;
  size_t i;
  int rc;
  if (abandoned != NULL) *abandoned = 0;
  if (e == NULL) return LASH_EINVAL;
  memset(&d, 0, sizeof d);
  d.e = e;
  rc = lash_engine_write_sync(e, drain_fn, &d);
  for (i = 0; i < d.n; i++)
    free(d.ids[i]);
  free(d.ids);
  if (rc == 0 && abandoned != NULL) *abandoned = d.abandoned;
  return rc;
}

/* ------------------------------------------------------------- closing */

static int release_all_fn(lash_store *s, lash_txn *txn, void *ud) {
  lash_engine *e = ud;
  lash__q *q;
  int rc;
  for (q = e->runs.next; q != &e->runs; q = q->next) {
    lash_run *r = LASH__CONTAINER_OF(q, lash_run, link);
    if (r->state == LASH__RS_FINISHING || r->lost) continue;
    if ((rc = lash_lease_release(s, txn, &r->lease)) < 0 && fatal(rc))
      return rc;
  }
  return 0;
}

void lash__runs_close(lash_engine *e) {
  lash__q *q;
  /* Queued writes (completions) and the releases share one commit. */
  lash__writer_txn(e, release_all_fn, e, 0, NULL);
  lash__writer_deliver(e, SIZE_MAX);
  while ((q = e->runs.next) != &e->runs) {
    lash_run *r = LASH__CONTAINER_OF(q, lash_run, link);
    if (r->state == LASH__RS_FINISHING) {
      /* Its done callback was lost (out of memory): just free it. */
      run_free(r);
      continue;
    }
    run_drop(r, LASH_ECLOSED);
  }
}
