/* check.c - lash_check: verifies that the store is self-consistent.
 *
 * Here, the rules: every record must equal the fold of its registration
 * base and its event log, field by field; counters must match; lease rows
 * never lag their attempt's fence; terminal rows hold no live lease; a row
 * and a tombstone never share an id. Then the backend's audit checks its
 * own indexes (live, status, changes) and orphans against the rows, with
 * records decoded here. Runs in one read transaction over the committed
 * state.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen, strdup, clock_gettime, getrandom */
#endif
#include "registry-int.h"

#include <stdio.h>
#include <string.h>

typedef struct chk {
  lash_store *s;
  lash_btxn *bt;
  lash_problem_fn fn;
  void *ud;
  int n;
  uint64_t meta_seq;
  int64_t now;
  uint64_t counts[LASH_STATUS_COUNT + 1];
  uint64_t suspended;
  char line[LASH__ERRMSG_MAX];
} chk;

__attribute__((format(printf, 2, 3))) static void
problem(chk *c, const char *fmt, ...) {
  va_list ap;
  c->n++;
  if (c->fn == NULL) return;
  va_start(ap, fmt);
  vsnprintf(c->line, sizeof c->line, fmt, ap);
  va_end(ap);
  c->fn(c->ud, c->line);
}

/* Copies a key's id bytes into a printable NUL-terminated buffer. */
static const char *show_id(char *buf, const void *p, size_t n) {
  if (n > LASH_ID_MAX) n = LASH_ID_MAX;
  memcpy(buf, p, n);
  buf[n] = '\0';
  return buf;
}

static void cmp_sv(chk *c, const char *id, const char *field, lash__sv stored,
                   lash__sv folded) {
  if (!lash__sv_eq(stored, folded))
    problem(c,
            "process %s: stored %s (%s%.*s%s) differs from the fold of its "
            "log (%s%.*s%s)",
            id, field, stored.p ? "\"" : "nil",
            stored.p ? (int)(stored.n > 60 ? 60 : stored.n) : 0,
            stored.p ? stored.p : "", stored.p ? "\"" : "",
            folded.p ? "\"" : "nil",
            folded.p ? (int)(folded.n > 60 ? 60 : folded.n) : 0,
            folded.p ? folded.p : "", folded.p ? "\"" : "");
}

static void cmp_i64(chk *c, const char *id, const char *field, int64_t stored,
                    int64_t folded) {
  if (stored != folded)
    problem(c,
            "process %s: stored %s %lld differs from the fold of its log "
            "(%lld)",
            id, field, (long long)stored, (long long)folded);
}

static void cmp_u64(chk *c, const char *id, const char *field, uint64_t stored,
                    uint64_t folded) {
  if (stored != folded)
    problem(c,
            "process %s: stored %s %llu differs from the fold of its log "
            "(%llu)",
            id, field, (unsigned long long)stored, (unsigned long long)folded);
}

static void audit_problem(void *ud, const char *line);

typedef struct fold_ctx {
  chk *c;
  const char *id;
  lash__rec d;
  uint64_t prev, floor;
} fold_ctx;

static int fold_cb(void *ud, const lash_bitem *it) {
  fold_ctx *f = ud;
  chk *c = f->c;
  lash__ev ev;
  uint64_t seq = it->seq;
  if (seq != f->prev + 1)
    problem(c,
            "process %s: event seq %llu follows %llu (sequences start "
            "after the floor %llu and increase by one)",
            f->id, (unsigned long long)seq, (unsigned long long)f->prev,
            (unsigned long long)f->floor);
  f->prev = seq;
  if (lash__ev_decode(it->ev.data, it->ev.len, &ev, &c->s->zone) < 0) {
    problem(c, "process %s: event %llu is damaged (checksum or encoding)",
            f->id, (unsigned long long)seq);
    return 0;
  }
  ev.seq = seq;
  if (lash__fold(&f->d, &ev, &c->s->zone) < 0)
    problem(c, "process %s: event %llu (%.*s) has a malformed payload", f->id,
            (unsigned long long)seq, (int)ev.type.n, ev.type.p);
  /* replay keys (A): a stored key is indexed to its event */
  return lash__key_audit(c->s, c->bt, f->id, strlen(f->id), &ev, audit_problem,
                         c);
}

/* Rebuilds the record from its base and its events; compares. */
static int check_fold(chk *c, const char *id, size_t idlen, const lash__rec *r,
                      int *term_unleased) {
  lash_store *s = c->s;
  fold_ctx f;
  const lash__rec *d = &f.d;
  int rc;

  f.c = c;
  f.id = id;
  f.prev = f.floor = r->floor;
  lash__rec_base(&f.d, r->id, r->kind, r->input, r->disposition,
                 r->max_attempts, r->created_at, r->floor);
  lash__retry_base(&f.d, r); /* issue 13: its delay and policy */
  rc = lash__scan_events(s, NULL, c->bt, id, idlen, 0, fold_cb, &f);
  if (rc < 0) return rc;

  if (r->status != d->status)
    problem(c,
            "process %s: stored status %s differs from the fold of its "
            "log (%s)",
            id, lash_status_name(r->status), lash_status_name(d->status));
  if (r->has_attempt != d->has_attempt) {
    problem(c, "process %s: stored record %s an attempt, the fold %s", id,
            r->has_attempt ? "has" : "has no",
            d->has_attempt ? "has one" : "has none");
  } else if (r->has_attempt) {
    cmp_sv(c, id, "attempt owner", r->att_owner, d->att_owner);
    cmp_sv(c, id, "attempt incarnation", r->att_inc, d->att_inc);
    cmp_u64(c, id, "attempt fence", r->att_fence, d->att_fence);
    cmp_u64(c, id, "attempt number", r->att_number, d->att_number);
    cmp_i64(c, id, "attempt started_at", r->att_started_at, d->att_started_at);
  }
  if (!lash__sv_eq(r->outcome, d->outcome))
    problem(c,
            "process %s: stored outcome (%zu bytes%s) differs from the "
            "fold of its log (%zu bytes%s)",
            id, r->outcome.n, r->outcome.p ? "" : ", none", d->outcome.n,
            d->outcome.p ? "" : ", none");
  if (LASH_IS_TERMINAL(r->status) != (r->outcome.p != NULL))
    problem(c, "process %s: status %s %s an outcome", id,
            lash_status_name(r->status),
            r->outcome.p ? "must not have" : "must have");
  cmp_sv(c, id, "wait", r->wait, d->wait);
  cmp_i64(c, id, "wait_since", r->wait_since, d->wait_since);
  cmp_i64(c, id, "cancel_requested", r->cancel_requested, d->cancel_requested);
  cmp_sv(c, id, "cancel_reason", r->cancel_reason, d->cancel_reason);
  cmp_i64(c, id, "abandon_requested", r->abandon_requested,
          d->abandon_requested);
  cmp_sv(c, id, "abandon_by", r->abandon_by, d->abandon_by);
  cmp_sv(c, id, "abandon_reason", r->abandon_reason, d->abandon_reason);
  cmp_i64(c, id, "updated_at", r->updated_at, d->updated_at);
  cmp_u64(c, id, "last_seq", r->last_seq, d->last_seq);
  /* ---- suspension (B) ---- */
  cmp_i64(c, id, "suspended", r->suspended, d->suspended);
  cmp_i64(c, id, "woken", r->woken, d->woken);
  cmp_sv(c, id, "wake event", r->wake_event, d->wake_event);
  cmp_sv(c, id, "wake process", r->wake_process, d->wake_process);
  cmp_i64(c, id, "wake_at", r->wake_at, d->wake_at);
  if (r->suspended && r->status != LASH_WAITING)
    problem(c, "process %s is suspended but %s (a suspended row waits)", id,
            lash_status_name(r->status));
  *term_unleased = d->term_unleased;
  return 0;
}

static int valid_id_bytes(const void *p, size_t n) {
  return n >= 1 && n <= LASH_ID_MAX && memchr(p, 0, n) == NULL;
}

/* The lease row of a record: decodable, fence >= the attempt's, and not
 * still held by the execution that completed the row. */
static void check_lease(chk *c, const char *id, const lash__rec *r,
                        int unleased, lash_bytes v) {
  lash_lease ls;
  if (lash__lease_decode(v.data, v.len, &ls, &c->s->zone) < 0) {
    problem(c, "process %s: lease row cannot be decoded", id);
    return;
  }
  if (ls.fence == 0) problem(c, "lease of %s has fence 0", id);
  if (r->has_attempt && ls.fence < r->att_fence)
    problem(c, "process %s: lease fence %llu is below the attempt's fence %llu",
            id, (unsigned long long)ls.fence, (unsigned long long)r->att_fence);
  /* A leased completion releases the completing lease in the same commit.
   * (Unleased completions touch no lease, and terminal rows may be claimed
   * again later, at a higher fence.) */
  if (LASH_IS_TERMINAL(r->status) && !unleased && r->has_attempt &&
      ls.fence == r->att_fence && ls.token != 0 && ls.expires_at > c->now)
    problem(c,
            "process %s is %s but the execution that completed it (owner %s, "
            "fence %llu) still holds a live lease (until %lld)",
            id, lash_status_name(r->status), ls.owner,
            (unsigned long long)ls.fence, (long long)ls.expires_at);
}

/* One record: its fold, its counters, its change_seq, its lease, and no
 * tombstone beside it. */
static int on_row(void *ud, const lash_bitem *it) {
  chk *c = ud;
  lash_store *s = c->s;
  char id[LASH_ID_MAX + 1];
  lash_brow row;
  lash__rec r;
  size_t idlen = it->idlen;
  int unleased = 0, rc;

  show_id(id, it->id, idlen);
  lash__progress_set(s, "records", it->id, idlen);
  if (!valid_id_bytes(it->id, idlen)) {
    problem(c, "a record has an invalid id key (%zu bytes)", idlen);
    return 0;
  }
  if (lash__rec_decode(it->rec.data, it->rec.len, &r, &s->zone) < 0) {
    problem(c, "process %s: record is damaged (checksum or encoding)", id);
    return 0;
  }
  if (r.id.n != idlen || memcmp(r.id.p, it->id, idlen) != 0)
    problem(c, "process %s: the record names another id (%.*s)", id,
            (int)r.id.n, r.id.p);
  if (r.kind.n == 0 || r.kind.n > LASH_NAME_MAX) {
    problem(c, "process %s: kind has %zu bytes", id, r.kind.n);
    return 0;
  }
  if (r.input.n > s->opts.max_payload)
    problem(c, "process %s: input of %zu bytes is over max_payload", id,
            r.input.n);
  if ((rc = check_fold(c, id, idlen, &r, &unleased)) < 0) return rc;
  c->counts[r.status]++;
  if (r.suspended) c->suspended++;
  if (r.change_seq == 0 || r.change_seq > c->meta_seq)
    problem(c,
            "process %s: change_seq %llu is outside the store's range "
            "(1..%llu)",
            id, (unsigned long long)r.change_seq,
            (unsigned long long)c->meta_seq);
  if ((rc = s->b->m->load(s->b, c->bt, id, idlen,
                          LASH_ROW_LEASE | LASH_ROW_TOMB, &row)) < 0)
    return rc;
  /* A tombstone shadowed by a live row must be gone. */
  if (row.tomb.data != NULL)
    problem(c, "process %s has both a record and a tombstone", id);
  if (row.lease.data != NULL) check_lease(c, id, &r, unleased, row.lease);
  if (r.suspended && row.lease.data != NULL) {
    lash_lease ls;
    if (lash__lease_decode(row.lease.data, row.lease.len, &ls, &s->zone) == 0 &&
        ls.token != 0)
      problem(c, "process %s is suspended but its lease is held by %s", id,
              ls.owner);
  }
  return 0;
}

/* ------------------------------------------------- the backend's audit */

static void audit_problem(void *ud, const char *line) {
  problem(ud, "%s", line);
}

static int audit_describe(void *ud, lash_bytes rec, lash_bdesc *out) {
  chk *c = ud;
  lash__rec r;
  if (lash__rec_decode(rec.data, rec.len, &r, &c->s->zone) < 0) return -1;
  out->index.exists = 1;
  out->index.status = r.status;
  out->index.change_seq = r.change_seq;
  lash__rec_index(&r, &out->index);
  out->kind.data = r.kind.p;
  out->kind.len = r.kind.n;
  return 0;
}

static int audit_tomb_seq(void *ud, lash_bytes tomb, uint64_t *change_seq) {
  chk *c = ud;
  lash_tombstone tb;
  if (lash__tomb_decode(tomb.data, tomb.len, &tb, &c->s->zone) < 0) return -1;
  *change_seq = tb.change_seq;
  return 0;
}

/* replay keys (A) */
static int audit_event_key(void *ud, lash_bytes evb, lash_bytes *key) {
  chk *c = ud;
  lash__ev ev;
  if (lash__ev_decode(evb.data, evb.len, &ev, &c->s->zone) < 0) return -1;
  key->data = ev.key.p;
  key->len = ev.key.p != NULL ? ev.key.n : 0;
  return 0;
}

int lash_check(lash_store *s, lash_problem_fn fn, void *ud) {
  chk c;
  lash_bmeta meta;
  lash_bscan q;
  lash_baudit a;
  int rc, i;

  if (s == NULL) return LASH_EINVAL;
  lash__clear(s);
  memset(&c, 0, sizeof c);
  c.s = s;
  c.fn = fn;
  c.ud = ud;
  if ((rc = lash__rbegin(s, NULL, &c.bt)) < 0) return rc;
  if ((rc = s->b->m->meta_get(s->b, c.bt, &meta)) < 0) {
    problem(&c, "%s", s->errmsg);
    lash__clear(s);
    rc = 0;
    meta.change_seq = UINT64_MAX;
  }
  c.meta_seq = meta.change_seq;
  c.now = lash__now(s);
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_ROWS;
  if ((rc = s->b->m->scan(s->b, c.bt, &q, on_row, &c)) < 0) goto out;
  if (c.meta_seq != UINT64_MAX)
    for (i = LASH_PENDING; i <= LASH_ABANDONED; i++)
      if (c.counts[i] != meta.counts[i])
        problem(&c, "counter of %s rows is %llu, but %llu rows are %s",
                lash_status_name(i), (unsigned long long)meta.counts[i],
                (unsigned long long)c.counts[i], lash_status_name(i));
  if (c.meta_seq != UINT64_MAX && c.suspended != meta.suspended)
    problem(
        &c, "counter of suspended rows is %llu, but %llu rows are suspended",
        (unsigned long long)meta.suspended, (unsigned long long)c.suspended);
  if (s->b->m->audit != NULL) {
    lash__progress_set(
        s, "the indexes (live, status, changes, tombstones, timers, waiters)",
        NULL, 0);
    a.ud = &c;
    a.problem = audit_problem;
    a.describe = audit_describe;
    a.tomb_seq = audit_tomb_seq;
    a.event_key = audit_event_key; /* (A) */
    if ((rc = s->b->m->audit(s->b, c.bt, &a)) < 0) goto out;
  }
  rc = c.n;
out:
  lash__rend(s, NULL, c.bt);
  return rc;
}
