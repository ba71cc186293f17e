/* registry.c - process records and their event logs: register, read,
 * append, requests, fenced transitions, completion (listings and prune are
 * in list.c).
 *
 * Every write validates first (reads only), then writes: a check failure
 * inside a batch writes nothing and leaves the batch usable. The record is
 * always the fold of its base and its events: writes build lifecycle
 * payloads, fold them through lash__fold (the same code lash_check runs),
 * and save the result with the events in one go (op_save).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen, strdup, clock_gettime, getrandom */
#endif
#include "registry-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------- the write op */

typedef struct op {
  lash_store *s;
  lash_txn *t;
  const char *id; /* the caller's string: stable across writes */
  size_t idlen;
  lash__rec r;
  int existed;
  int old_status;
  uint64_t old_change_seq;
  lash__ev ev[LASH__OP_EVENTS];
  size_t nev;
  int drop_tomb; /* the row shadows this tombstone (re-registration) */
  uint64_t tomb_cs;
  /* ---- suspension (B): the stored state's index ---- */
  int old_listed, old_suspended;
  int64_t old_wake_at;
  size_t old_awaits_n;
  char old_awaits[LASH_ID_MAX];
  /* ---- issue 13 (claim): a waiting row got a concurrency slot ---- */
  int relisted;
} op;

static void op_init(op *o, lash_txn *t, const char *id, size_t idlen) {
  memset(o, 0, sizeof *o);
  o->s = t->s;
  o->t = t;
  o->id = id;
  o->idlen = idlen;
}

/* Remembers the loaded record's state (for the index transition). */
static void op_loaded(op *o) {
  lash_bindex x;
  o->existed = 1;
  o->old_status = o->r.status;
  o->old_change_seq = o->r.change_seq;
  lash__rec_index(&o->r, &x);
  o->old_listed = x.listed;
  o->old_suspended = o->r.suspended;
  o->old_wake_at = x.wake_at;
  o->old_awaits_n = lash__awaits_n(&x);
  if (o->old_awaits_n > 0)
    memcpy(o->old_awaits, x.awaits.data, o->old_awaits_n);
}

static int op_load(op *o, lash_tombstone *tomb) {
  int rc = lash__rec_load(o->s, o->t, o->t->bt, o->id, o->idlen, &o->r, tomb);
  if (rc < 0) return rc;
  op_loaded(o);
  return 0;
}

static uint64_t next_seq(const lash__rec *r) {
  return (r->last_seq > r->floor ? r->last_seq : r->floor) + 1;
}

/* Adds one event (payload must outlive op_save) and folds it in. */
static int op_event(op *o, const char *type, size_t tlen, const void *payload,
                    size_t plen, int64_t at, uint64_t *seq) {
  lash__ev *ev = &o->ev[o->nev];
  ev->type = lash__sv_of(type, tlen);
  ev->payload = lash__sv_of(payload, plen);
  ev->seq = next_seq(&o->r);
  ev->at = at;
  ev->key.p = NULL; /* replay keys (A): set by a keyed append */
  ev->key.n = 0;
  if (lash__fold(&o->r, ev, &o->s->zone) < 0)
    return lash__fail(o->s, LASH_ECORRUPT,
                      "process %s: event %s could not be folded into its "
                      "record",
                      o->id, type);
  o->nev++;
  if (seq != NULL) *seq = ev->seq;
  return 0;
}

static int op_event_lit(op *o, const char *type, const lash__buf *pl,
                        int64_t at, uint64_t *seq) {
  return op_event(o, type, strlen(type), pl->p, pl->len, at, seq);
}

/* ---- suspension (B): the wake rule of an append or a cancel request ----
 * A suspended row that gets an event of its wake.event type (any path) or
 * a cancel request is woken in the same operation: process.woken {by,
 * seq} right after the event that woke it. */
static int op_wake_rule(op *o) {
  lash__rec *r = &o->r;
  size_t i, n = o->nev;
  if (!r->suspended) return 0;
  for (i = 0; i < n; i++) {
    const lash__ev *ev = &o->ev[i];
    const char *by = NULL;
    if (r->wake_event.p != NULL && lash__sv_eq(ev->type, r->wake_event))
      by = "event";
    else if (lash__sv_eq(ev->type, lash__sv_str(LASH__EV_CANCEL_REQ)))
      by = "cancel";
    if (by != NULL) {
      lash__sv none = {NULL, 0};
      int rc;
      if (o->nev >= LASH__OP_EVENTS)
        return lash__fail(o->s, LASH_EINVAL,
                          "process %s: too many events in one operation",
                          o->id);
      if ((rc = lash__pl_woken(&o->s->wbuf, by, ev->seq, none)) < 0)
        return lash__fail(o->s, rc, "out of memory waking %s", o->id);
      return op_event(o, LASH__EV_WOKEN, strlen(LASH__EV_WOKEN), o->s->wbuf.p,
                      o->s->wbuf.len, ev->at, NULL);
    }
  }
  return 0;
}

/* Notes the row's index transition and the suspended counter in c and
 * t. */
static void op_index(op *o, lash__chg *c) {
  lash_txn *t = o->t;
  lash__rec *r = &o->r;
  lash_bindex x;
  if (c->rec_state == 0) {
    c->orig_listed = o->existed ? o->old_listed : 0;
    c->orig_suspended = o->existed ? o->old_suspended : 0;
    c->orig_wake_at = o->existed ? o->old_wake_at : 0;
    c->orig_awaits_n = o->existed ? o->old_awaits_n : 0;
    if (c->orig_awaits_n > 0)
      memcpy(c->orig_awaits, o->old_awaits, c->orig_awaits_n);
  }
  lash__rec_index(r, &x);
  c->cur_listed = x.listed;
  c->cur_wake_at = x.wake_at;
  c->cur_awaits_n = lash__awaits_n(&x);
  if (c->cur_awaits_n > 0) {
    memcpy(c->cur_awaits, x.awaits.data, x.awaits.len);
    t->awaits_cached = 1;
  }
  if (o->existed && o->old_suspended && !r->suspended && t->suspended > 0)
    t->suspended--;
  if (r->suspended && !(o->existed && o->old_suspended)) t->suspended++;
  c->cur_suspended = r->suspended;
}

/* Encodes, then caches: the record, its new events and the index
 * transition wait in the transaction's write-back cache and reach the
 * backend at flush; counters move; the change is noted for the hook. */
static int op_save(op *o, int registered) {
  lash_store *s = o->s;
  lash_txn *t = o->t;
  lash__rec *r = &o->r;
  lash__chg *c;
  lash__buf tmp;
  size_t i, need = 0;
  int rc, ended;

  if ((rc = lash__meta_load(t)) < 0) return rc;
  if ((rc = op_wake_rule(o)) < 0) return rc;
  /* issue 13 (claim): a row that ends or is suspended frees its slot */
  if (r->conc_key.p != NULL && r->conc_state != LASH_CONC_NONE &&
      (LASH_IS_TERMINAL(r->status) || r->suspended)) {
    if ((rc = lash__conc_release(t, r)) < 0) return rc;
    t->pre_commit = lash__wake_ended; /* the handoff of the freed slot */
  }
  ended = o->existed && !LASH_IS_TERMINAL(o->old_status) &&
          LASH_IS_TERMINAL(r->status);
  if (ended && lash__buf_reserve(&t->ended, o->idlen + 1) < 0)
    return lash__fail(s, LASH_ENOMEM, "out of memory saving process %s", o->id);
  if (r->kind.n > LASH_NAME_MAX)
    return lash__fail(s, LASH_ECORRUPT, "process %s has an over-long kind",
                      o->id);
  if ((c = lash__chg_get(t, o->id, o->idlen)) == NULL)
    return lash__fail(s, LASH_ENOMEM, "out of memory saving process %s", o->id);
  r->change_seq = t->change_seq + 1;
  /* issue 13 (claim): the exact creation order */
  if (registered) {
    r->created_seq = r->change_seq;
    /* A claimable row takes its key's slot at once, or waits in the key's
     * queue from its registration (off the worklist: no claim has to meet
     * it to move it there). A delayed row does so when it wakes. */
    if (r->conc_key.p != NULL && !r->suspended &&
        (rc = lash__conc_acquire(t, r)) < 0)
      return t->rc = rc; /* the side table is written: no batch keeps it */
  }
  if ((rc = lash__rec_encode(r, &s->rbuf)) < 0)
    return lash__fail(s, rc, "out of memory encoding process %s", o->id);
  for (i = 0; i < o->nev; i++) {
    if ((rc = lash__ev_encode(&o->ev[i], &s->ebuf[i])) < 0)
      return lash__fail(s, rc, "out of memory encoding an event of %s", o->id);
    need += s->ebuf[i].len + o->ev[i].key.n; /* (A: the key's bytes) */
  }
  if (c->nev + o->nev > c->evcap) {
    size_t cap = c->evcap ? c->evcap * 2 : 4;
    lash__evref *n;
    while (cap < c->nev + o->nev)
      cap *= 2;
    if ((n = realloc(c->ev, cap * sizeof *n)) == NULL)
      return lash__fail(s, LASH_ENOMEM, "out of memory saving process %s",
                        o->id);
    c->ev = n;
    c->evcap = cap;
  }
  if (lash__buf_reserve(&c->evs, need) < 0)
    return lash__fail(s, LASH_ENOMEM, "out of memory saving process %s", o->id);
  if (c->rec_state == 0) {
    /* First save in this transaction: remember the stored state (r->kind
     * may point into the backend's memory, which a write may move). */
    c->orig_exists = o->existed;
    c->orig_status = o->old_status;
    c->orig_cs = o->old_change_seq;
    memcpy(c->kind, r->kind.p, r->kind.n);
    c->kind_n = r->kind.n;
  }
  if ((rc = lash__chg_dirty(t, c)) < 0) return rc;
  /* Nothing can fail from here on. */
  op_index(o, c);
  c->prio = r->priority;
  c->order = r->created_seq;
  if (ended) {
    t->pre_commit = lash__wake_ended;
    memcpy(t->ended.p + t->ended.len, o->id, o->idlen);
    t->ended.p[t->ended.len + o->idlen] = '\0';
    t->ended.len += o->idlen + 1;
  }
  lash__next_change_seq(t);
  for (i = 0; i < o->nev; i++) {
    lash__evref *e = &c->ev[c->nev++];
    e->seq = o->ev[i].seq;
    e->off = c->evs.len;
    e->len = s->ebuf[i].len;
    memcpy(c->evs.p + c->evs.len, s->ebuf[i].p, e->len);
    c->evs.len += e->len;
    /* replay keys (A): the key's bytes follow the event's */
    e->koff = c->evs.len;
    e->klen = o->ev[i].key.p != NULL ? o->ev[i].key.n : 0;
    if (e->klen > 0) memcpy(c->evs.p + c->evs.len, o->ev[i].key.p, e->klen);
    c->evs.len += e->klen;
  }
  if (o->drop_tomb) {
    c->drop_tomb = 1;
    c->tomb_cs = o->tomb_cs;
  }
  /* r may point into c->rec: swap buffers rather than copy. */
  tmp = c->rec;
  c->rec = s->rbuf;
  s->rbuf = tmp;
  c->rec_state = 2;
  c->cur_status = r->status;
  c->cur_cs = r->change_seq;
  t->wrote = 1;
  if (!o->existed) {
    t->counts[r->status]++;
  } else if (o->old_status != r->status) {
    if (t->counts[o->old_status] > 0) t->counts[o->old_status]--;
    t->counts[r->status]++;
  }
  c->report = 1;
  if (c->first_seq == 0 && o->nev > 0) c->first_seq = o->ev[0].seq;
  c->last_seq = r->last_seq;
  c->status = r->status;
  c->cancel_requested = r->cancel_requested;
  c->woken = r->woken || o->relisted; /* claimable again */
  c->registered |= registered;
  return 0;
}

static int refuse_terminal(lash_store *s, const lash__rec *r, const char *id,
                           const char *what) {
  return lash__fail(s, LASH_ETERMINAL, "process %s is already %s: %s", id,
                    lash_status_name(r->status), what);
}

/* Opens the write (own or the caller's batch), loads @p id into @p o and
 * refuses a terminal row, saying @p why. On failure *t may be NULL (the
 * write never began); lash__wend accepts that. */
static int op_open_live(lash_store *s, lash_txn *txn, lash_txn **t, op *o,
                        const char *id, size_t idlen, const char *why) {
  int rc;
  *t = NULL;
  if ((rc = lash__wbegin(s, txn, t)) < 0) return rc;
  op_init(o, *t, id, idlen);
  if ((rc = op_load(o, NULL)) < 0) return rc;
  if (LASH_IS_TERMINAL(o->r.status)) return refuse_terminal(s, &o->r, id, why);
  return 0;
}

typedef struct find_ev {
  lash_store *s;
  const char *id;
  const char *type;
  size_t tlen;
  uint64_t seq;
  /* 1: the walk goes on; a process.waiting or process.started forgets a
   * match (suspension: an event since the current wait began) */
  int since_wait;
} find_ev;

static int find_event_cb(void *ud, const lash_bitem *it) {
  find_ev *f = ud;
  lash__ev ev;
  if (lash__ev_decode(it->ev.data, it->ev.len, &ev, &f->s->zone) < 0)
    return lash__fail(f->s, LASH_ECORRUPT,
                      "event %llu of process %s is damaged (checksum or "
                      "encoding): run lash check",
                      (unsigned long long)it->seq, f->id);
  if (f->since_wait && (lash__sv_eq(ev.type, lash__sv_str(LASH__EV_WAITING)) ||
                        lash__sv_eq(ev.type, lash__sv_str(LASH__EV_STARTED))))
    f->seq = 0;
  if (ev.type.n != f->tlen || memcmp(ev.type.p, f->type, f->tlen) != 0)
    return 0;
  f->seq = it->seq;
  return f->since_wait ? 0 : 1;
}

/* The seq of the first event of `type` in the log of id (0: none). */
static int find_event(lash_store *s, lash_txn *t, const char *id, size_t idlen,
                      const char *type, uint64_t *seq) {
  find_ev f;
  int rc;
  *seq = 0;
  f.s = s;
  f.id = id;
  f.type = type;
  f.tlen = strlen(type);
  f.seq = 0;
  f.since_wait = 0;
  rc = lash__scan_events(s, t, t->bt, id, idlen, 0, find_event_cb, &f);
  *seq = f.seq;
  return rc;
}

/* ----------------------------------------------------------- register */

static const char *def_difference(const lash__rec *r, const lash_def *def) {
  if (r->kind.n != strlen(def->kind) ||
      memcmp(r->kind.p, def->kind, r->kind.n) != 0)
    return "kind";
  if (!lash__sv_eq(r->input, lash__sv_of(def->input.data, def->input.len)))
    return "input";
  if (r->disposition != def->disposition) return "disposition";
  if (r->max_attempts != def->max_attempts) return "max_attempts";
  if (r->timeout_ms != def->timeout_ms) return "timeout_ms";
  if (!lash__sv_eq(r->parent, lash__sv_str(def->parent))) return "parent";
  /* issue 13 (claim) */
  if (r->priority != def->priority) return "priority";
  if (!lash__sv_eq(r->conc_key, lash__sv_str(def->concurrency_key)))
    return "concurrency_key";
  if (def->concurrency_key != NULL &&
      r->conc_limit !=
          (def->concurrency_limit > 0 ? def->concurrency_limit : 1))
    return "concurrency_limit";
  return NULL;
}

/* issue 13 (claim): the concurrency key and its limit. */
static int check_conc(lash_store *s, const lash_def *def) {
  char msg[LASH__ERRMSG_MAX];
  if (def->priority < LASH_PRIORITY_MIN || def->priority > LASH_PRIORITY_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "priority %lld of process %s is out of range (%lld to "
                      "%lld)",
                      (long long)def->priority, def->id,
                      (long long)LASH_PRIORITY_MIN,
                      (long long)LASH_PRIORITY_MAX);
  if (def->concurrency_key == NULL) {
    if (def->concurrency_limit != 0)
      return lash__fail(s, LASH_EINVAL,
                        "concurrency_limit of process %s needs a "
                        "concurrency_key (the limit is per key)",
                        def->id);
    return 0;
  }
  if (def->concurrency_limit < 0)
    return lash__fail(s, LASH_EINVAL,
                      "concurrency_limit %d of process %s must be >= 1",
                      (int)def->concurrency_limit, def->id);
  if (lash_check_string(LASH_RULE_ID, "concurrency_key", def->concurrency_key,
                        strnlen(def->concurrency_key, LASH_NAME_MAX + 1), msg,
                        sizeof msg) < 0)
    return lash__fail(s, LASH_EINVAL, "%s (process %s)", msg, def->id);
  if (strlen(def->concurrency_key) > LASH_NAME_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "concurrency_key of process %s is longer than %d bytes",
                      def->id, LASH_NAME_MAX);
  return 0;
}

/* replay keys (A): the parent names a process id (not necessarily a row
 * that exists: a host may register a child before its parent). */
static int check_parent(lash_store *s, const lash_def *def) {
  char msg[LASH__ERRMSG_MAX];
  if (lash_check_string(LASH_RULE_ID, "parent", def->parent,
                        strnlen(def->parent, LASH_ID_MAX + 1), msg,
                        sizeof msg) < 0)
    return lash__fail(s, LASH_EINVAL, "%s (process %s)", msg, def->id);
  return 0;
}

/* issue 13 (retry): the retry policy, the delay and the unique key. */
static int check_issue13(lash_store *s, const lash_def *def) {
  char msg[LASH__ERRMSG_MAX];
  if (lash_retry_check(&def->retry, msg, sizeof msg) < 0)
    return lash__fail(s, LASH_EINVAL, "%s (process %s)", msg, def->id);
  if (def->run_at < 0)
    return lash__fail(s, LASH_EINVAL,
                      "run_at %lld of process %s must be a time (ms since "
                      "the epoch) or 0",
                      (long long)def->run_at, def->id);
  if (def->unique_for_ms < 0)
    return lash__fail(s, LASH_EINVAL,
                      "unique_for_ms %lld of process %s must be >= 0",
                      (long long)def->unique_for_ms, def->id);
  if (def->unique_key != NULL &&
      lash_check_string(LASH_RULE_ID, "unique_key", def->unique_key,
                        strnlen(def->unique_key, LASH_ID_MAX + 1), msg,
                        sizeof msg) < 0)
    return lash__fail(s, LASH_EINVAL, "%s (process %s)", msg, def->id);
  return 0;
}

int lash_register(lash_store *s, lash_txn *txn, const lash_def *def,
                  int *created, lash_record *out) {
  lash_txn *t = NULL;
  lash_record tmp;
  lash_tombstone tomb;
  op o;
  const char *diff;
  int rc, idn, has_tomb = 0;
  uint64_t floor = 0;

  memset(&tmp, 0, sizeof tmp);
  if (created != NULL) *created = 0;
  if (out != NULL) memset(out, 0, sizeof *out);
  lash__clear(s);
  if (def == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_register: no definition given");
  if ((idn = lash__check_id(s, def->id)) < 0) return idn;
  if ((rc = lash__check_kind(s, def->kind, def->id)) < 0) return rc;
  if (lash_disposition_name(def->disposition) == NULL)
    return lash__fail(s, LASH_EINVAL,
                      "disposition %d of process %s is not one of "
                      "rerunnable (1), owner_bound (2), external (3)",
                      def->disposition, def->id);
  if ((rc = lash__check_payload(s, "input", def->id, def->input)) < 0)
    return rc;
  if (def->timeout_ms < 0)
    return lash__fail(s, LASH_EINVAL,
                      "timeout_ms %lld of process %s must be >= 0 (0: none)",
                      (long long)def->timeout_ms, def->id);
  if (def->parent != NULL && (rc = check_parent(s, def)) < 0) return rc;
  if ((rc = check_issue13(s, def)) < 0) return rc;
  if ((rc = check_conc(s, def)) < 0) return rc;
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  op_init(&o, t, def->id, (size_t)idn);
  memset(&tomb, 0, sizeof tomb);
  rc = lash__rec_lookup(s, t, t->bt, def->id, (size_t)idn, &o.r);
  if (rc == 1) {
    /* Absent: a tombstone, if any, gives the sequence floor. */
    rc = lash__tomb_lookup(s, t->bt, def->id, (size_t)idn, &tomb);
    if (rc == 0)
      rc = LASH_EPRUNED;
    else if (rc == 1)
      rc = LASH_ENOENT;
    if (rc < 0 && rc != LASH_EPRUNED && rc != LASH_ENOENT) goto out;
  }
  if (rc == 0) {
    if ((diff = def_difference(&o.r, def)) != NULL) {
      rc = lash__fail(s, LASH_ECONFLICT,
                      "process %s is already registered with another "
                      "definition (its %s differs): use another id",
                      def->id, diff);
      goto out;
    }
    rc = out != NULL ? lash__rec_export(&o.r, &tmp, NULL) : 0;
    if (rc < 0)
      rc = lash__fail(s, rc, "out of memory copying process %s", def->id);
    goto out;
  }
  if (rc == LASH_EPRUNED) {
    has_tomb = 1;
    floor = tomb.last_seq;
  } else if (rc != LASH_ENOENT) {
    goto out;
  }
  if (def->unique_key != NULL) {
    /* issue 13: a key held by another row gives that row, writes nothing */
    rc = lash__unique_holder(s, t, def->unique_key, strlen(def->unique_key),
                             lash__now(s), &o.r);
    if (rc < 0) goto out;
    if (rc == 1) {
      rc = out != NULL ? lash__rec_export(&o.r, &tmp, NULL) : 0;
      if (rc < 0)
        rc = lash__fail(s, rc, "out of memory copying process %s", def->id);
      else
        rc = LASH_APPLIED;
      goto out;
    }
  }
  lash__rec_base(&o.r, lash__sv_of(def->id, (size_t)idn),
                 lash__sv_str(def->kind),
                 lash__sv_of(def->input.data, def->input.len), def->disposition,
                 def->max_attempts, lash__now(s), floor);
  o.r.timeout_ms = def->timeout_ms;
  o.r.parent = lash__sv_str(def->parent); /* replay keys (A) */
  /* issue 13 (retry): the policy and the delay are part of the base; a
   * delay in the future suspends the row from its registration. */
  o.r.retry = def->retry;
  o.r.run_at = def->run_at > o.r.created_at ? def->run_at : 0;
  o.r.unique_key = lash__sv_str(def->unique_key);
  o.r.unique_for_ms = def->unique_key != NULL ? def->unique_for_ms : 0;
  /* issue 13 (claim) */
  o.r.priority = def->priority;
  o.r.conc_key = lash__sv_str(def->concurrency_key);
  if (def->concurrency_key != NULL)
    o.r.conc_limit = def->concurrency_limit > 0 ? def->concurrency_limit : 1;
  lash__rec_reset_projection(&o.r);
  /* The new row shadows the tombstone; the floor lives on in the row. */
  o.drop_tomb = has_tomb;
  o.tomb_cs = tomb.change_seq;
  if ((rc = op_save(&o, 1)) < 0) goto out;
  if (def->unique_key != NULL &&
      (rc = lash__unique_take(s, t, def->unique_key, strlen(def->unique_key),
                              def->id, (size_t)idn)) < 0) {
    t->rc = rc; /* the row is already written: a batch cannot keep it */
    goto out;
  }
  /* the children index (issue 14), in this registration's transaction */
  if (def->parent != NULL &&
      (rc = lash__child_note(s, t, def->parent, def->id, (size_t)idn)) < 0) {
    t->rc = rc; /* the row is already written: a batch cannot keep it */
    goto out;
  }
  if (created != NULL) *created = 1;
  if (out != NULL && (rc = lash__rec_export(&o.r, &tmp, NULL)) < 0)
    /* The row is already written: a batch cannot keep it silently. */
    rc = t->rc = lash__fail(s, rc, "out of memory copying process %s", def->id);
out:
  rc = lash__wend(s, t, rc);
  if (rc >= 0 && out != NULL)
    *out = tmp;
  else
    lash_record_free(&tmp);
  if (rc < 0 && created != NULL) *created = 0;
  return rc;
}

/* ---------------------------------------------------------------- get */

int lash_get(lash_store *s, lash_txn *txn, const char *id, lash_record *out,
             lash_tombstone *tomb) {
  lash_btxn *bt = NULL;
  lash__rec r;
  int rc, idn;
  txn = lash__read_txn(s, txn);
  if (out != NULL) memset(out, 0, sizeof *out);
  lash__clear(s);
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if ((rc = lash__rbegin(s, txn, &bt)) < 0) return rc;
  rc = lash__rec_load(s, txn, bt, id, (size_t)idn, &r, tomb);
  if (rc == 0 && out != NULL && (rc = lash__rec_export(&r, out, NULL)) < 0)
    rc = lash__fail(s, rc, "out of memory copying process %s", id);
  lash__rend(s, txn, bt);
  return rc;
}

/* ------------------------------------------------------------- events */

typedef struct events_cb {
  lash_store *s;
  lash_btxn *bt;
  const char *id;
  size_t idlen;
  size_t limit, n;
  lash_event_fn fn;
  void *ud;
  lash__keyctx kc; /* replay keys (A): derived keys along the log */
} events_cb;

static int events_after_cb(void *ud, const lash_bitem *it) {
  events_cb *c = ud;
  char type[LASH_NAME_MAX + 1], key[LASH__DKEY_MAX];
  lash__ev ev;
  lash_event e;
  int rc;
  if (lash__ev_decode(it->ev.data, it->ev.len, &ev, &c->s->zone) < 0 ||
      ev.type.n > LASH_NAME_MAX)
    return lash__fail(c->s, LASH_ECORRUPT,
                      "event %llu of process %s is damaged (checksum or "
                      "encoding): run lash check",
                      (unsigned long long)it->seq, c->id);
  memcpy(type, ev.type.p, ev.type.n);
  type[ev.type.n] = '\0';
  e.process_id = c->id;
  e.seq = it->seq;
  e.type = type;
  e.payload.data = ev.payload.p;
  e.payload.len = ev.payload.n;
  e.at = ev.at;
  ev.seq = it->seq;
  e.key = lash__event_key(c->s, c->bt, c->id, c->idlen, &ev, &c->kc, key);
  c->n++;
  if ((rc = c->fn(c->ud, &e)) != 0) return rc < 0 ? rc : 1;
  return c->limit > 0 && c->n >= c->limit ? 1 : 0;
}

int lash_events_after(lash_store *s, lash_txn *txn, const char *id,
                      uint64_t after, size_t limit, lash_event_fn fn,
                      void *ud) {
  lash_btxn *bt = NULL;
  events_cb c;
  lash__rec r;
  size_t idlen;
  int rc, idn;
  txn = lash__read_txn(s, txn);

  lash__clear(s);
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if (fn == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_events_after: no callback given");
  idlen = (size_t)idn;
  if ((rc = lash__rbegin(s, txn, &bt)) < 0) return rc;
  if ((rc = lash__rec_load(s, txn, bt, id, idlen, &r, NULL)) < 0) goto out;
  if (after == UINT64_MAX) goto out;
  c.s = s;
  c.bt = bt;
  c.id = id;
  c.idlen = idlen;
  c.kc.has_wait = 0;
  c.limit = limit;
  c.n = 0;
  c.fn = fn;
  c.ud = ud;
  rc = lash__scan_events(s, txn, bt, id, idlen, after, events_after_cb, &c);
out:
  lash__rend(s, txn, bt);
  return rc;
}

/* ------------------------------------------------------------ appends */

/* replay keys (A): a stored event of the row holds @p key: the same type
 * and a canonically equal payload replay it (LASH_APPLIED, *seq its seq),
 * anything else is LASH_ECONFLICT. */
static int key_replay(op *o, const char *type, lash_bytes payload,
                      const lash__ev *old, const char *key, uint64_t *seq) {
  lash_store *s = o->s;
  int same_type = lash__sv_is(old->type, type);
  if (same_type &&
      lash__payload_equal(old->payload, lash__sv_of(payload.data, payload.len),
                          &s->zone)) {
    if (seq != NULL) *seq = old->seq;
    return LASH_APPLIED;
  }
  return lash__fail(s, LASH_ECONFLICT,
                    "process %s: replay key %s is taken by event %llu (%.*s) "
                    "with another %s: a replay repeats the same type and "
                    "payload; a new event needs a new key",
                    o->id, key, (unsigned long long)old->seq, (int)old->type.n,
                    old->type.p, same_type ? "payload" : "type");
}

static int append_common(lash_store *s, lash_txn *txn, const char *id,
                         const lash_lease *ls, const char *type,
                         lash_bytes payload, const char *key, uint64_t *seq) {
  lash_txn *t = NULL;
  lash_lease row;
  lash__ev old;
  op o;
  int rc, idn;
  int64_t now;
  size_t keylen = 0;

  if (seq != NULL) *seq = 0;
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if ((rc = lash__check_keyed(s, id, type, ls, key, &keylen)) < 0) return rc;
  if ((rc = lash__check_payload(s, "event payload", id, payload)) < 0)
    return rc;
  if ((rc = lash__wbegin(s, txn, &t)) < 0) goto out;
  op_init(&o, t, id, (size_t)idn);
  if ((rc = op_load(&o, NULL)) < 0) goto out;
  /* replay keys (A): the key first, before the terminal and lease checks
   * (SEMANTICS 2.3) */
  if (key != NULL) {
    rc = lash__key_find(s, t, id, (size_t)idn, key, keylen, &old);
    if (rc < 0) goto out;
    if (rc == 0) {
      rc = key_replay(&o, type, payload, &old, key, seq);
      goto out;
    }
  }
  if (LASH_IS_TERMINAL(o.r.status)) {
    rc = refuse_terminal(s, &o.r, id, "no more events can be appended");
    goto out;
  }
  now = lash__now(s);
  if (ls != NULL && (rc = lash__fence(t, ls, now, &row)) < 0) goto out;
  if ((rc = op_event(&o, type, strlen(type), payload.data, payload.len, now,
                     seq)) < 0)
    goto out;
  if (key != NULL) o.ev[o.nev - 1].key = lash__sv_of(key, keylen); /* (A) */
  rc = op_save(&o, 0);
out:
  return lash__wend(s, t, rc);
}

int lash_append(lash_store *s, lash_txn *txn, const char *id, const char *type,
                lash_bytes payload, uint64_t *seq) {
  lash__clear(s);
  return append_common(s, txn, id, NULL, type, payload, NULL, seq);
}

int lash_append_fenced(lash_store *s, lash_txn *txn, const lash_lease *ls,
                       const char *type, lash_bytes payload, uint64_t *seq) {
  int rc;
  lash__clear(s);
  if (seq != NULL) *seq = 0;
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  return append_common(s, txn, ls->process_id, ls, type, payload, NULL, seq);
}

/* replay keys (A) */
int lash_append_keyed(lash_store *s, lash_txn *txn, const char *id,
                      const lash_lease *ls, const char *type,
                      lash_bytes payload, const char *key, uint64_t *seq) {
  int rc;
  lash__clear(s);
  if (seq != NULL) *seq = 0;
  if (ls == NULL)
    return append_common(s, txn, id, NULL, type, payload, key, seq);
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  if (id != NULL && strcmp(id, ls->process_id) != 0)
    return lash__fail(s, LASH_EINVAL,
                      "lash_append_keyed: the lease is of process %s, not "
                      "%.*s: pass the lease's id or NULL",
                      ls->process_id, LASH_ID_MAX, id);
  return append_common(s, txn, ls->process_id, ls, type, payload, key, seq);
}

/* ----------------------------------------------------------- requests */

int lash_request_cancel(lash_store *s, lash_txn *txn, const char *id,
                        const char *reason, uint64_t *seq) {
  lash_txn *t = NULL;
  op o;
  int rc, idn;
  int64_t now;
  uint64_t first = 0;

  lash__clear(s);
  if (seq != NULL) *seq = 0;
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if ((rc = lash__check_text(s, "cancel reason", reason, id, LASH__REASON_MAX,
                             1)) < 0)
    return rc;
  if ((rc = op_open_live(s, txn, &t, &o, id, (size_t)idn,
                         "a cancel request changes nothing")) < 0)
    goto out;
  if (o.r.cancel_requested) {
    /* Idempotent: report the first request, write nothing. */
    rc = find_event(s, t, id, (size_t)idn, LASH__EV_CANCEL_REQ, &first);
    if (rc == 0 && seq != NULL) *seq = first;
    goto out;
  }
  now = lash__now(s);
  if ((rc = lash__pl_cancel(&s->pbuf[0], reason)) < 0 ||
      (rc = op_event_lit(&o, LASH__EV_CANCEL_REQ, &s->pbuf[0], now, &first)) <
          0)
    goto out;
  if (o.r.status == LASH_PENDING && (!o.r.has_attempt || o.r.retry_due) &&
      o.r.disposition != LASH_EXTERNAL) {
    /* Never started here (or waiting for its next attempt after a failure,
     * issue 13: no body holds it): nobody will notice the request, so
     * cancel now. External rows run elsewhere: their owner honours the
     * request. */
    if ((rc = lash__pl_str_or_nil(&s->pbuf[1], reason)) < 0 ||
        (rc = op_event_lit(&o, lash__terminal_type(LASH_CANCELLED), &s->pbuf[1],
                           now, NULL)) < 0)
      goto out;
  }
  if ((rc = op_save(&o, 0)) == 0 && seq != NULL) *seq = first;
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory requesting cancellation of %s", id);
  return lash__wend(s, t, rc);
}

int lash_request_abandon(lash_store *s, lash_txn *txn, const char *id,
                         const char *by, const char *reason, uint64_t *seq) {
  lash_txn *t = NULL;
  op o;
  int rc, idn;
  uint64_t first = 0;

  lash__clear(s);
  if (seq != NULL) *seq = 0;
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if (by != NULL &&
      (rc = lash__check_name_of(s, "abandon requester", by, id)) < 0)
    return rc;
  if ((rc = lash__check_text(s, "abandon reason", reason, id, LASH__REASON_MAX,
                             1)) < 0)
    return rc;
  if ((rc = op_open_live(s, txn, &t, &o, id, (size_t)idn,
                         "an abandon request changes nothing")) < 0)
    goto out;
  if (o.r.abandon_requested) {
    if (!lash__sv_eq(o.r.abandon_by, lash__sv_str(by)) ||
        !lash__sv_eq(o.r.abandon_reason, lash__sv_str(reason))) {
      rc = lash__fail(s, LASH_ECONFLICT,
                      "process %s already has a different abandon request "
                      "(by %.*s): the first request is kept",
                      id, (int)(o.r.abandon_by.p ? o.r.abandon_by.n : 7),
                      o.r.abandon_by.p ? o.r.abandon_by.p : "nobody");
      goto out;
    }
    rc = find_event(s, t, id, (size_t)idn, LASH__EV_ABANDON_REQ, &first);
    if (rc == 0 && seq != NULL) *seq = first;
    goto out;
  }
  if ((rc = lash__pl_abandon(&s->pbuf[0], by, reason)) < 0 ||
      (rc = op_event_lit(&o, LASH__EV_ABANDON_REQ, &s->pbuf[0], lash__now(s),
                         &first)) < 0)
    goto out;
  if ((rc = op_save(&o, 0)) == 0 && seq != NULL) *seq = first;
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory requesting abandonment of %s", id);
  return lash__wend(s, t, rc);
}

/* --------------------------------------------------- fenced transitions */

static int attempt_is(const lash__rec *r, const lash_lease *ls) {
  return r->has_attempt && r->att_fence == ls->fence &&
         lash__sv_eq(r->att_owner, lash__sv_str(ls->owner)) &&
         lash__sv_eq(r->att_inc, lash__sv_str(ls->incarnation));
}

/* lash_start; with @p out, the row's record as it is after the start. */
static int start_row(lash_store *s, lash_txn *txn, const lash_lease *ls,
                     uint32_t *attempt, lash_record *out) {
  lash_txn *t = NULL;
  lash_lease row;
  op o;
  const char *id;
  int rc, resumed;
  int64_t now;
  uint32_t number;

  lash__clear(s);
  if (attempt != NULL) *attempt = 0;
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  /* issue 13 (claim): a batch that parks many rows on full concurrency
   * keys keeps its side table puts few (a get looks through them all):
   * they go to the backend first, before this op loads anything. */
  if (txn != NULL && txn->nkv > LASH__CONC_PENDING_MAX &&
      (rc = lash__kv_flush(txn, 0)) < 0)
    return rc;
  id = ls->process_id;
  if ((rc = op_open_live(s, txn, &t, &o, id, strlen(id),
                         "it cannot be started")) < 0)
    goto out;
  if (o.r.disposition == LASH_EXTERNAL) {
    rc = lash__fail(s, LASH_EEXTERNAL,
                    "process %s is externally owned: it is never started "
                    "here; complete it with the external authority",
                    id);
    goto out;
  }
  now = lash__now(s);
  if ((rc = lash__fence(t, ls, now, &row)) < 0) goto out;
  if (attempt_is(&o.r, ls)) {
    if (attempt != NULL) *attempt = o.r.att_number;
    goto out; /* this execution already started it: nothing to write */
  }
  if (o.r.suspended) {
    rc = lash__fail(s, LASH_EBUSY,
                    "process %s is suspended (waiting on %.*s) until its "
                    "wake fires: it cannot be started before",
                    id, (int)o.r.wait.n, o.r.wait.p != NULL ? o.r.wait.p : "");
    goto out;
  }
  if (o.r.disposition == LASH_OWNER_BOUND && o.r.has_attempt) {
    rc =
        lash__fail(s, LASH_ESTARTED,
                   "process %s is owner_bound and was already started by "
                   "owner %.*s (incarnation %.*s, attempt %u): it runs at "
                   "most once",
                   id, (int)o.r.att_owner.n, o.r.att_owner.p,
                   (int)o.r.att_inc.n, o.r.att_inc.p, (unsigned)o.r.att_number);
    goto out;
  }
  /* A woken row resumes its attempt (issue 9): not counted again; one
   * woken from a retry wait (issue 13) starts the next. max_attempts
   * counts crash re-runs: attempts that ended in a retry wait or were
   * re-queued (failures) are not counted against it. */
  resumed = o.r.woken && o.r.has_attempt && !o.r.retry_due;
  number = o.r.has_attempt ? o.r.att_number + (resumed ? 0 : 1) : 1;
  if (!resumed && o.r.max_attempts > 0 &&
      number > o.r.max_attempts + o.r.failures) {
    rc = lash__fail(s, LASH_EEXHAUSTED,
                    "process %s has used all %u of its attempts "
                    "(max_attempts): attempt %u is refused",
                    id, (unsigned)o.r.max_attempts, (unsigned)number);
    goto out;
  }
  /* issue 13 (claim): a slot of its concurrency key, or it waits */
  if ((rc = lash__conc_acquire(t, &o.r)) < 0) goto out;
  if (rc == 1) {
    /* It waits off the worklist (written, also by an own commit), and the
     * start is refused. */
    char key[LASH_NAME_MAX + 1];
    int lim = o.r.conc_limit > 0 ? o.r.conc_limit : 1;
    memcpy(key, o.r.conc_key.p, o.r.conc_key.n);
    key[o.r.conc_key.n] = '\0';
    rc = op_save(&o, 0);
    if (rc == 0 && t != txn) rc = lash__wend(s, t, 0), t = NULL;
    if (rc == 0)
      rc = lash__fail(s, LASH_EBUSY,
                      "process %s waits for a slot of concurrency key %s "
                      "(limit %d): it starts when one frees",
                      id, key, lim);
    if (t == NULL) return rc;
    goto out;
  }
  if ((rc = lash__pl_started(&s->pbuf[0], ls->owner, ls->incarnation, ls->fence,
                             number, now, resumed)) < 0 ||
      (rc = op_event_lit(&o, LASH__EV_STARTED, &s->pbuf[0], now, NULL)) < 0)
    goto out;
  if ((rc = op_save(&o, 0)) == 0 && attempt != NULL) *attempt = number;
out:
  /* the row as it is now (o.r's bytes stay where op_save left them until
   * the next save); every failure comes here with rc < 0 */
  if (rc == 0 && out != NULL && lash__rec_export(&o.r, out, NULL) < 0)
    rc = LASH_ENOMEM;
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory starting %s", id);
  return lash__wend(s, t, rc);
}

int lash_start(lash_store *s, lash_txn *txn, const lash_lease *ls,
               uint32_t *attempt) {
  return start_row(s, txn, ls, attempt, NULL);
}

int lash_start_record(lash_store *s, lash_txn *txn, const lash_lease *ls,
                      uint32_t *attempt, lash_record *out) {
  int rc;
  memset(out, 0, sizeof *out);
  rc = start_row(s, txn, ls, attempt, out);
  if (rc < 0) lash_record_free(out);
  return rc;
}

static int wait_common(lash_store *s, lash_txn *txn, const lash_lease *ls,
                       const char *wait, uint64_t *seq) {
  lash_txn *t = NULL;
  lash_lease row;
  op o;
  const char *id;
  int rc;
  int64_t now;

  if (seq != NULL) *seq = 0;
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  id = ls->process_id;
  if (wait != NULL && (rc = lash__check_text(s, "wait description", wait, id,
                                             LASH__WAIT_MAX, 0)) < 0)
    return rc;
  if ((rc = op_open_live(s, txn, &t, &o, id, strlen(id),
                         wait != NULL ? "it cannot wait"
                                      : "it is not waiting")) < 0)
    goto out;
  now = lash__now(s);
  if ((rc = lash__fence(t, ls, now, &row)) < 0) goto out;
  if (wait != NULL) {
    if ((rc = lash__pl_waiting(&s->pbuf[0], wait, now)) < 0 ||
        (rc = op_event_lit(&o, LASH__EV_WAITING, &s->pbuf[0], now, seq)) < 0)
      goto out;
  } else {
    if (o.r.status != LASH_WAITING) goto out; /* not waiting: a no-op */
    if ((rc = lash__pl_resumed(&s->pbuf[0])) < 0 ||
        (rc = op_event_lit(&o, LASH__EV_RESUMED, &s->pbuf[0], now, seq)) < 0)
      goto out;
  }
  rc = op_save(&o, 0);
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory writing the wait of %s", id);
  return lash__wend(s, t, rc);
}

int lash_wait_set(lash_store *s, lash_txn *txn, const lash_lease *ls,
                  const char *wait, uint64_t *seq) {
  lash__clear(s);
  if (wait == NULL) {
    if (seq != NULL) *seq = 0;
    return lash__fail(s, LASH_EINVAL,
                      "lash_wait_set: no wait description given");
  }
  return wait_common(s, txn, ls, wait, seq);
}

int lash_wait_clear(lash_store *s, lash_txn *txn, const lash_lease *ls,
                    uint64_t *seq) {
  lash__clear(s);
  return wait_common(s, txn, ls, NULL, seq);
}

/* --------------------------------------------------------- completion */

static int check_terminal_status(lash_store *s, int status, const char *id) {
  if (status < LASH_COMPLETED || status > LASH_ABANDONED)
    return lash__fail(s, LASH_EINVAL,
                      "status %d for process %s is not a terminal status "
                      "(completed, failed, cancelled, abandoned)",
                      status, id != NULL ? id : "?");
  return 0;
}

/* First writer wins: identical -> APPLIED, different -> SUPERSEDED. */
static int terminal_verdict(const lash__rec *r, int status,
                            lash_bytes outcome) {
  if (r->status == status &&
      lash__sv_eq(r->outcome, lash__sv_of(outcome.data, outcome.len)))
    return LASH_APPLIED;
  return LASH_SUPERSEDED_OUTCOME;
}

/* lash_complete, and lash_fail_attempt when @p retry_at is not NULL (a
 * failure may then wait for its next attempt instead, issue 13). */
static int complete_leased(lash_store *s, lash_txn *txn, const lash_lease *ls,
                           int status, lash_bytes outcome, int fatal,
                           const lash_retry_policy *fallback,
                           int64_t *retry_at) {
  const lash_retry_policy *policy;
  lash_txn *t = NULL;
  lash_lease row;
  op o;
  const char *id;
  int rc;
  int64_t now;

  lash__clear(s);
  if (retry_at != NULL) *retry_at = 0;
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  id = ls->process_id;
  if ((rc = check_terminal_status(s, status, id)) < 0 ||
      (rc = lash__check_payload(s, "outcome", id, outcome)) < 0)
    return rc;
  if (lash__authority_wrapper(outcome.data, outcome.len, &s->zone, NULL))
    return lash__fail(s, LASH_EINVAL,
                      "outcome of process %s has the shape of an unleased "
                      "terminal payload ({outcome=<bin>, authority=<str>}): "
                      "shape it differently",
                      id);
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  op_init(&o, t, id, strlen(id));
  if ((rc = op_load(&o, NULL)) < 0) goto out;
  if (LASH_IS_TERMINAL(o.r.status)) {
    rc = terminal_verdict(&o.r, status, outcome);
    goto out;
  }
  now = lash__now(s);
  if ((rc = lash__fence(t, ls, now, &row)) < 0) goto out;
  /* issue 13: the row's own policy, else its kind's */
  policy = o.r.retry.max_attempts > 0 ? &o.r.retry : fallback;
  if (retry_at != NULL && !fatal && o.r.disposition == LASH_RERUNNABLE &&
      !o.r.cancel_requested && lash__retry_left(policy, &o.r)) {
    /* issue 13: the attempt failed; the row waits for its next one. */
    double u = (double)(lash__token(s) >> 11) / 9007199254740992.0;
    int64_t at = now + lash_retry_backoff(policy, o.r.failures + 1, u);
    if ((rc = lash__pl_attempt_failed(&s->pbuf[0], o.r.att_number, outcome,
                                      at)) < 0 ||
        (rc = op_event_lit(&o, LASH__EV_ATTEMPT_FAILED, &s->pbuf[0], now,
                           NULL)) < 0)
      goto out;
    *retry_at = at;
  } else {
    const char *type = lash__terminal_type(status);
    if ((rc = op_event(&o, type, strlen(type), outcome.data, outcome.len, now,
                       NULL)) < 0)
      goto out;
  }
  if ((rc = op_save(&o, 0)) < 0) goto out;
  /* Release in the same commit: the fence survives, the holder goes. */
  lash__lease_released(&row);
  rc = lash__lease_put(t, id, strlen(id), &row);
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory completing %s", id);
  return lash__wend(s, t, rc);
}

int lash_complete(lash_store *s, lash_txn *txn, const lash_lease *ls,
                  int status, lash_bytes outcome) {
  return complete_leased(s, txn, ls, status, outcome, 0, NULL, NULL);
}

/* ---- issue 13: retries (retry) ---- */

int lash_fail_attempt(lash_store *s, lash_txn *txn, const lash_lease *ls,
                      lash_bytes outcome, int fatal,
                      const lash_retry_policy *fallback, int64_t *retry_at) {
  int64_t at = 0;
  int rc =
      complete_leased(s, txn, ls, LASH_FAILED, outcome, fatal, fallback, &at);
  if (retry_at != NULL) *retry_at = rc == 0 ? at : 0;
  return rc;
}

int lash_retry(lash_store *s, lash_txn *txn, const char *id, uint64_t *seq) {
  lash_txn *t = NULL;
  op o;
  int rc, idn;

  lash__clear(s);
  if (seq != NULL) *seq = 0;
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  op_init(&o, t, id, (size_t)idn);
  if ((rc = op_load(&o, NULL)) < 0) goto out;
  if (o.r.disposition == LASH_EXTERNAL) {
    rc = lash__fail(s, LASH_EEXTERNAL,
                    "process %s is externally owned: it is never run here, "
                    "so it cannot be retried",
                    id);
    goto out;
  }
  if (o.r.status != LASH_FAILED) {
    rc = lash__fail(s, LASH_EINVAL,
                    "process %s is %s: only a failed process can be retried%s",
                    id, lash_status_name(o.r.status),
                    LASH_IS_TERMINAL(o.r.status)
                        ? ""
                        : " (it has not ended; cancel it first to stop it)");
    goto out;
  }
  if ((rc = lash__pl_retried(&s->pbuf[0], o.r.att_number)) < 0 ||
      (rc = op_event_lit(&o, LASH__EV_RETRIED, &s->pbuf[0], lash__now(s),
                         seq)) < 0 ||
      (rc = op_save(&o, 0)) < 0)
    goto out;
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory retrying %s", id);
  return lash__wend(s, t, rc);
}

int lash_complete_unleased(lash_store *s, lash_txn *txn, const char *id,
                           int status, lash_bytes outcome, int authority) {
  lash_txn *t = NULL;
  op o;
  const char *aname = lash_authority_name(authority);
  int rc, idn, ok;

  lash__clear(s);
  if ((idn = lash__check_id(s, id)) < 0) return idn;
  if ((rc = check_terminal_status(s, status, id)) < 0 ||
      (rc = lash__check_payload(s, "outcome", id, outcome)) < 0)
    return rc;
  if (aname == NULL)
    return lash__fail(s, LASH_EINVAL,
                      "authority %d for process %s is not one of external "
                      "(1), workflow (2), reconciled_abandon (3)",
                      authority, id);
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  op_init(&o, t, id, (size_t)idn);
  if ((rc = op_load(&o, NULL)) < 0) goto out;
  /* SEMANTICS 3.5, checked against the live row. */
  switch (authority) {
  case LASH_AUTH_EXTERNAL:
    ok = o.r.disposition == LASH_EXTERNAL;
    break;
  case LASH_AUTH_WORKFLOW:
    ok = o.r.disposition == LASH_RERUNNABLE ||
         o.r.disposition == LASH_OWNER_BOUND;
    break;
  default:
    ok = o.r.disposition == LASH_EXTERNAL && status == LASH_ABANDONED;
    break;
  }
  if (!ok) {
    rc = lash__fail(s, LASH_EAUTHORITY,
                    "authority %s cannot complete process %s (disposition "
                    "%s) as %s",
                    aname, id, lash_disposition_name(o.r.disposition),
                    lash_status_name(status));
    goto out;
  }
  if (LASH_IS_TERMINAL(o.r.status)) {
    rc = terminal_verdict(&o.r, status, outcome);
    goto out;
  }
  if ((rc = lash__pl_terminal(&s->pbuf[0], outcome, aname)) < 0 ||
      (rc = op_event_lit(&o, lash__terminal_type(status), &s->pbuf[0],
                         lash__now(s), NULL)) < 0)
    goto out;
  rc = op_save(&o, 0);
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory completing %s", id);
  return lash__wend(s, t, rc);
}

/* ------------------------------------------- suspension and timers (B) */

/* 1 when the wake condition of @p w already holds for row o, 0 if not, or
 * an error. */
static int wake_holds(op *o, const lash_wake *w, int64_t now) {
  lash_store *s = o->s;
  int rc;
  if (o->r.cancel_requested) return 1;
  if (w->at > 0 && w->at <= now) return 1;
  if (w->process != NULL) {
    lash__rec pr;
    size_t pn = strlen(w->process);
    rc = lash__rec_lookup(s, o->t, o->t->bt, w->process, pn, &pr);
    if (rc < 0) return rc;
    if (rc == 1 || LASH_IS_TERMINAL(pr.status)) return 1;
  }
  if (w->event != NULL) {
    /* An event of its type since the current wait began. */
    find_ev f;
    f.s = s;
    f.id = o->id;
    f.type = w->event;
    f.tlen = strlen(w->event);
    f.seq = 0;
    /* With the waiter's cursor: any event of the type after it (one that
     * came before the row showed the wait counts too); without: one
     * since the current wait began. */
    f.since_wait = !w->has_after;
    rc = lash__scan_events(s, o->t, o->t->bt, o->id, o->idlen,
                           w->has_after ? w->after : 0, find_event_cb, &f);
    if (rc < 0) return rc;
    if (f.seq > 0) return 1;
  }
  return 0;
}

int lash_suspend(lash_store *s, lash_txn *txn, const lash_lease *ls,
                 const char *wait, const lash_wake *wake, uint64_t *seq) {
  lash_txn *t = NULL;
  lash_lease row;
  op o;
  const char *id;
  int rc;
  int64_t now;

  lash__clear(s);
  if (seq != NULL) *seq = 0;
  if ((rc = lash__check_lease_arg(s, ls)) < 0) return rc;
  id = ls->process_id;
  if ((rc = lash__check_text(s, "wait description", wait, id, LASH__WAIT_MAX,
                             0)) < 0)
    return rc;
  if (wake == NULL ||
      (wake->event == NULL && wake->process == NULL && wake->at <= 0))
    return lash__fail(s, LASH_EINVAL,
                      "lash_suspend of process %s: no wake condition given "
                      "(set wake.event, wake.process or wake.at)",
                      id);
  if (wake->at < 0)
    return lash__fail(s, LASH_EINVAL,
                      "lash_suspend of process %s: wake.at %lld is negative",
                      id, (long long)wake->at);
  if (wake->event != NULL &&
      (rc = lash__check_event_type(s, id, wake->event)) < 0)
    return rc;
  if (wake->process != NULL && (rc = lash__check_id(s, wake->process)) < 0)
    return rc;
  if ((rc = op_open_live(s, txn, &t, &o, id, strlen(id),
                         "it cannot be suspended")) < 0)
    goto out;
  if (o.r.disposition != LASH_RERUNNABLE) {
    rc = lash__fail(s, LASH_EINVAL,
                    "process %s is %s: only rerunnable processes can be "
                    "suspended (it stays in memory: it runs at most once)",
                    id, lash_disposition_name(o.r.disposition));
    goto out;
  }
  now = lash__now(s);
  if ((rc = lash__fence(t, ls, now, &row)) < 0) goto out;
  if ((rc = wake_holds(&o, wake, now)) != 0) {
    if (rc > 0) rc = LASH_APPLIED; /* nothing written: resolve in memory */
    goto out;
  }
  if ((rc = lash__pl_suspended(&s->pbuf[0], wait, wake)) < 0 ||
      (rc = op_event_lit(&o, LASH__EV_SUSPENDED, &s->pbuf[0], now, seq)) < 0 ||
      (rc = op_save(&o, 0)) < 0)
    goto out;
  /* Release in the same commit: the fence survives, the holder goes. */
  lash__lease_released(&row);
  rc = lash__lease_put(t, id, strlen(id), &row);
out:
  if (rc == LASH_ENOMEM && s->errmsg[0] == '\0')
    lash__fail(s, rc, "out of memory suspending %s", id);
  return lash__wend(s, t, rc);
}

int lash__wake(lash_txn *t, const char *id, size_t idlen, const char *by,
               int64_t now, lash__sv pid) {
  lash_store *s = t->s;
  lash__sv none = {NULL, 0};
  op o;
  int rc;
  op_init(&o, t, id, idlen);
  rc = lash__rec_lookup(s, t, t->bt, id, idlen, &o.r);
  if (rc != 0) return rc < 0 ? rc : 0; /* gone: nothing to wake */
  op_loaded(&o);
  if (!o.r.suspended || LASH_IS_TERMINAL(o.r.status)) return 0;
  if (pid.p != NULL && !lash__sv_eq(o.r.wake_process, pid)) return 0;
  if (pid.p == NULL && (o.r.wake_at <= 0 || o.r.wake_at > now)) return 0;
  if ((rc = lash__pl_woken(&s->wbuf, by, 0, pid.p != NULL ? pid : none)) < 0)
    return lash__fail(s, rc, "out of memory waking %.*s", (int)idlen, id);
  if ((rc = op_event(&o, LASH__EV_WOKEN, strlen(LASH__EV_WOKEN), s->wbuf.p,
                     s->wbuf.len, lash__now(s), NULL)) < 0 ||
      (rc = op_save(&o, 0)) < 0)
    return rc;
  return 1;
}

int lash__ids_add(lash__buf *b, const char *id, size_t n) {
  if (n == 0 || n > LASH_ID_MAX) return 0;
  if (lash__buf_reserve(b, n + 1) < 0) return LASH_ENOMEM;
  memcpy(b->p + b->len, id, n);
  b->p[b->len + n] = '\0';
  b->len += n + 1;
  return 0;
}

/* Collects NUL-terminated ids into a buffer (scan callback). */
static int collect_id_cb(void *ud, const lash_bitem *it) {
  return lash__ids_add(ud, it->id, it->idlen);
}

int lash__wake_waiters(lash_txn *t, const char *id, size_t idlen) {
  lash_store *s = t->s;
  lash__buf ids = {NULL, 0, 0};
  char pid[LASH_ID_MAX + 1];
  lash_bscan q;
  size_t i, off;
  int rc;
  if ((rc = lash__meta_load(t)) < 0) return rc;
  if (t->suspended == 0 || idlen == 0 || idlen > LASH_ID_MAX) return 0;
  memcpy(pid, id, idlen);
  pid[idlen] = '\0';
  /* The stored waiter index, and the rows of this transaction's cache
   * that await it (not saved yet); lash__wake re-checks each. */
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_WAITERS;
  q.flags = LASH_SCAN_KEYS;
  q.id = pid;
  q.idlen = idlen;
  rc = s->b->m->scan(s->b, t->bt, &q, collect_id_cb, &ids);
  for (i = 0; rc == 0 && t->awaits_cached && i < t->nch; i++) {
    lash__chg *c = &t->ch[i];
    /* (a clean row, flushed or only loaded, is in the stored index) */
    if (c->rec_state != 2 || c->cur_awaits_n != idlen ||
        memcmp(c->cur_awaits, pid, idlen) != 0)
      continue;
    rc = lash__ids_add(&ids, t->ids.p + c->id_off, c->id_len);
  }
  if (rc == LASH_ENOMEM)
    rc = lash__fail(s, rc, "out of memory waking the waiters of %s", pid);
  for (off = 0; rc == 0 && off < ids.len;) {
    const char *w = ids.p + off;
    size_t wn = strlen(w);
    rc = lash__wake(t, w, wn, "process", 0, lash__sv_of(pid, idlen));
    if (rc > 0) rc = 0;
    off += wn + 1;
  }
  lash__buf_free(&ids);
  if (rc < 0 && t->rc == 0) t->rc = rc;
  return rc;
}

/* ---- issue 13 (claim): a waiting row gets its key's slot ---- */
int lash__conc_relist(lash_txn *t, const char *id, size_t idlen, uint64_t held,
                      int32_t *limit) {
  op o;
  int rc;
  *limit = 0;
  op_init(&o, t, id, idlen);
  rc = lash__rec_lookup(t->s, t, t->bt, id, idlen, &o.r);
  if (rc == 1) return 0;
  if (rc < 0) return rc;
  op_loaded(&o);
  if (LASH_IS_TERMINAL(o.r.status) || o.r.conc_state != LASH_CONC_WAITS)
    return 0;
  *limit = o.r.conc_limit > 0 ? o.r.conc_limit : 1;
  if (held >= (uint64_t)*limit) return 2;
  o.r.conc_state = LASH_CONC_HOLDS;
  o.relisted = 1;
  rc = op_save(&o, 0);
  if (rc < 0) return rc;
  if (t->handoff_fn != NULL) {
    char buf[LASH_ID_MAX + 1];
    size_t n = idlen < LASH_ID_MAX ? idlen : LASH_ID_MAX;
    memcpy(buf, id, n);
    buf[n] = '\0';
    t->handoff_fn(t->handoff_ud, buf);
  }
  return 1;
}

int lash_txn_handoff(lash_txn *t, lash_handoff_fn fn, void *ud) {
  int rc;
  if (t == NULL) return LASH_EINVAL;
  if (t->rc < 0) return t->rc;
  if (t->conc_freed.len == 0) return 0;
  t->handoff_fn = fn;
  t->handoff_ud = ud;
  rc = lash__conc_handoff(t, lash__conc_relist);
  t->handoff_fn = NULL;
  t->handoff_ud = NULL;
  if (rc < 0 && t->rc == 0) t->rc = rc;
  return rc;
}

int lash__each_name(lash_txn *t, lash__buf *list,
                    int (*fn)(lash_txn *t, const char *name, size_t n)) {
  lash__buf names = *list;
  size_t off;
  int rc = 0;
  if (names.len == 0) return 0;
  /* Take the list, so that fn cannot see it half done. */
  list->p = NULL;
  list->len = list->cap = 0;
  for (off = 0; rc == 0 && off < names.len;) {
    const char *name = names.p + off;
    size_t n = strlen(name);
    rc = fn(t, name, n);
    off += n + 1;
  }
  names.len = 0;
  lash__buf_free(list);
  *list = names; /* keep the capacity */
  return rc;
}

int lash__wake_ended(lash_txn *t) {
  int rc;
  /* issue 13 (claim): freed slots first go to their keys' waiters */
  if (t->conc_freed.len > 0 &&
      (rc = lash__conc_handoff(t, lash__conc_relist)) < 0)
    return rc;
  /* Waking writes no terminal, so the list does not grow meanwhile. */
  return lash__each_name(t, &t->ended, lash__wake_waiters);
}
