/* engine/admit.c - admission (see admit.h).
 *
 * A drive pages the live rows of the declared kinds (page = free slots,
 * clamped to [1, 256]) and claims, checks and starts them inside the
 * writer's transaction (its in-txn hook), so the claims and starts of a
 * page share one commit; bodies start from the pump after that commit
 * (the after-commit hook hands them to the runs). When the slots run out
 * before the scan's bound the scan stays in flight and continues (in the
 * pump's shared transaction) as slots free; a drive call meanwhile only
 * asks for a rescan.
 *
 * Part: admit. May call: the registry (lash.h), runs, writer, pump. */
#include "engine/admit.h"
#include "engine/observe.h"

#include "base/inject.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MAX 256

static int fatal(int rc) {
  return rc == LASH_EIO || rc == LASH_EFULL || rc == LASH_EPANIC ||
         rc == LASH_ENOMEM || rc == LASH_ECORRUPT;
}

static int name_ok(const char *s) {
  return s != NULL &&
         lash_check_string(LASH_RULE_NAME, "kind", s, strlen(s), NULL, 0) == 0;
}

static uint64_t free_slots(const lash__admit *a) {
  return lash__slots_free(&a->runs->slots);
}

static int can_run(const lash__admit *a) {
  return a->nkinds > 0 && a->runs->runner.start != NULL;
}

/* --------------------------------------------------------------- kinds */

int lash__admit_declared(const lash__admit *a, const char *kind) {
  size_t i;
  if (kind == NULL) return 0;
  for (i = 0; i < a->nkinds; i++)
    if (strcmp(a->kinds[i], kind) == 0) return 1;
  return 0;
}

/* Appends a copy of @p str to the growing vector *v (n used, cap). 0 or
 * LASH_ENOMEM. */
static int strv_push(char ***v, size_t *n, size_t *cap, const char *str) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 16;
    char **nv = realloc(*v, nc * sizeof *nv);
    if (nv == NULL) return LASH_ENOMEM;
    *v = nv;
    *cap = nc;
  }
  if (((*v)[*n] = strdup(str)) == NULL) return LASH_ENOMEM;
  (*n)++;
  return 0;
}

static size_t kind_index(const lash__admit *a, const char *kind) {
  size_t i;
  for (i = 0; kind != NULL && i < a->nkinds; i++)
    if (strcmp(a->kinds[i], kind) == 0) return i;
  return SIZE_MAX;
}

static int rates_grow(lash__admit *a);

int lash__admit_define(lash__admit *a, const char *kind) {
  size_t cap;
  int rc;
  if (!name_ok(kind)) return LASH_EINVAL;
  if (a->closed) return LASH_ECLOSED;
  if (lash__admit_declared(a, kind)) return 0;
  cap = a->kinds_cap;
  if ((rc = strv_push(&a->kinds, &a->nkinds, &a->kinds_cap, kind)) < 0)
    return rc;
  if (a->kinds_cap != cap) {
    int64_t *t = realloc(a->timeouts, a->kinds_cap * sizeof *t);
    lash_retry_policy *p;
    if (t != NULL) a->timeouts = t;
    if (t == NULL || rates_grow(a) < 0) {
      free(a->kinds[--a->nkinds]);
      return LASH_ENOMEM;
    }
    /* issue 13 (retry): the kind's retry policy */
    p = realloc(a->retries, a->kinds_cap * sizeof *p);
    if (p == NULL) {
      free(a->kinds[--a->nkinds]);
      return LASH_ENOMEM;
    }
    a->retries = p;
  }
  a->timeouts[a->nkinds - 1] = 0;
  memset(&a->retries[a->nkinds - 1], 0, sizeof a->retries[0]);
  a->rate_n[a->nkinds - 1] = 0;
  a->rate_per[a->nkinds - 1] = 0;
  a->early_score[a->nkinds - 1] = 0;
  return 1;
}

/* ---- issue 13 (retry) ---- */
const lash_retry_policy *lash__admit_retry(const lash__admit *a,
                                           const char *kind) {
  size_t i = kind_index(a, kind);
  return i == SIZE_MAX ? NULL : &a->retries[i];
}

int lash__admit_set_retry(lash__admit *a, const char *kind,
                          const lash_retry_policy *p) {
  size_t i = kind_index(a, kind);
  if (i == SIZE_MAX || lash_retry_check(p, NULL, 0) < 0) return LASH_EINVAL;
  if (p != NULL)
    a->retries[i] = *p;
  else
    memset(&a->retries[i], 0, sizeof a->retries[i]);
  return 0;
}

/* ---- issue 13 (claim): rate limits per kind ---- */

static int rates_grow(lash__admit *a) {
  uint32_t *n = realloc(a->rate_n, a->kinds_cap * sizeof *n);
  int64_t *p;
  if (n == NULL) return LASH_ENOMEM;
  a->rate_n = n;
  if ((p = realloc(a->rate_per, a->kinds_cap * sizeof *p)) == NULL)
    return LASH_ENOMEM;
  a->rate_per = p;
  {
    int8_t *e = realloc(a->early_score, a->kinds_cap * sizeof *e);
    if (e == NULL) return LASH_ENOMEM;
    a->early_score = e;
  }
  return 0;
}

int lash__admit_set_rate(lash__admit *a, const char *kind, uint32_t n,
                         int64_t per_ms) {
  size_t i = kind_index(a, kind);
  if (i == SIZE_MAX || (n > 0 && per_ms < 1) || n > LASH_RATE_N_MAX ||
      per_ms > LASH_RATE_PER_MAX)
    return LASH_EINVAL;
  a->rate_n[i] = n;
  a->rate_per[i] = n > 0 ? per_ms : 0;
  return 0;
}

int64_t lash__admit_timeout(const lash__admit *a, const char *kind) {
  size_t i = kind_index(a, kind);
  return i == SIZE_MAX ? 0 : a->timeouts[i];
}

int lash__admit_set_timeout(lash__admit *a, const char *kind, int64_t ms) {
  size_t i = kind_index(a, kind);
  if (i == SIZE_MAX || ms < 0) return LASH_EINVAL;
  a->timeouts[i] = ms;
  return 0;
}

/* ---------------------------------------------------------- lapse timer */

static void lapse_cb(uv_timer_t *t) {
  lash__admit *a = LASH__CONTAINER_OF(t, lash__admit, lapse_timer);
  a->lapse_at = 0;
  lash__admit_request(a);
}

static void lapse_arm(lash__admit *a, int64_t expires_at) {
  int64_t now, delay;
  if (a->closed || expires_at <= 0) return;
  if (a->lapse_at != 0 && a->lapse_at <= expires_at) return;
  now = lash_store_now(a->s);
  delay = expires_at > now ? expires_at - now : 0;
  a->lapse_at = expires_at;
  uv_timer_start(&a->lapse_timer, lapse_cb, (uint64_t)delay + 1, 0);
}

/* ---------------------------------------------------------- owner probe */

/* While rows are deferred because of live foreign leases, the owners of
 * those leases are probed every PROBE_MS (one lash_owner_alive per
 * distinct owner, not per row); when one is gone a drive takes its rows
 * over at once. An owner leaves the set when gone, when its liveness is
 * unknown (the lapse timer keeps the TTL rule), or when the leases seen
 * of it have run out. */
#define PROBE_MS 3

static void probe_cb(uv_timer_t *t) {
  lash__admit *a = LASH__CONTAINER_OF(t, lash__admit, probe_timer);
  int64_t now = lash_store_now(a->s);
  size_t i = 0;
  int gone = 0;
  while (i < a->nbusy) {
    lash__busy_owner *b = &a->busy[i];
    int alive =
        b->until > now ? lash_owner_alive(a->s, b->owner, b->incarnation) : -1;
    if (alive == 1) {
      i++;
      continue;
    }
    if (alive == 0) gone = 1;
    a->busy[i] = a->busy[--a->nbusy];
  }
  if (a->nbusy == 0) uv_timer_stop(&a->probe_timer);
  if (gone) {
    a->owners_gone++;
    lash__admit_request(a);
  }
}

/* Remembers the owner of a live foreign lease met by a claim. */
static void busy_note(lash__admit *a, const lash_lease *ls) {
  size_t i;
  if (a->closed || ls->owner[0] == '\0') return;
  for (i = 0; i < a->nbusy; i++)
    if (strcmp(a->busy[i].owner, ls->owner) == 0 &&
        strcmp(a->busy[i].incarnation, ls->incarnation) == 0) {
      if (ls->expires_at > a->busy[i].until) a->busy[i].until = ls->expires_at;
      return;
    }
  if (a->nbusy == LASH__BUSY_OWNERS_MAX) return; /* the TTL rule for it */
  /* Not known here (no hold of its own, another host): only the TTL. */
  if (lash_owner_alive(a->s, ls->owner, ls->incarnation) != 1) return;
  memcpy(a->busy[a->nbusy].owner, ls->owner, sizeof ls->owner);
  memcpy(a->busy[a->nbusy].incarnation, ls->incarnation,
         sizeof ls->incarnation);
  a->busy[a->nbusy].until = ls->expires_at;
  if (a->nbusy++ == 0)
    uv_timer_start(&a->probe_timer, probe_cb, PROBE_MS, PROBE_MS);
}

/* ------------------------------------------------------------- the scan */

typedef struct lash__scan_row {
  char id[LASH_ID_MAX + 1];
  char att_owner[LASH_NAME_MAX + 1];
  int disposition;
  int status;
  int abandon_requested;
  int cancel_requested;
  int has_attempt;
  size_t kind_i;   /* issue 13 (claim): its kind's index (SIZE_MAX: none) */
  int foreign_run; /* running or parked (not suspended) under another
                      incarnation's attempt: a claim takes it over */
} scan_row;

typedef struct scan_ctx {
  lash__admit *a;
  lash_txn *txn;
  lash_drive_report *rep;
  scan_row *rows;
  size_t n;
  int64_t min_busy;
  /* ---- issue 13 (claim): the current kind's rate bucket is empty ---- */
  int rate_out;
} scan_ctx;

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
  w->cancel_requested = rec->cancel_requested;
  w->has_attempt = rec->has_attempt;
  w->kind_i = kind_index(c->a, rec->kind);
  w->att_owner[0] = '\0';
  if (rec->has_attempt)
    memcpy(w->att_owner, rec->attempt.owner, sizeof w->att_owner);
  w->foreign_run =
      rec->has_attempt && !rec->suspended &&
      (rec->status == LASH_RUNNING || rec->status == LASH_WAITING) &&
      (strcmp(rec->attempt.owner, c->a->owner) != 0 ||
       strcmp(rec->attempt.incarnation, c->a->incarnation) != 0);
  return 0;
}

/* Completes the leased row abandoned by @p writer, naming @p owner (NULL:
 * none). The one builder of the abandoned outcome: scan and owner drain. */
static int complete_abandoned(lash_store *s, lash_txn *txn,
                              const lash_lease *ls, int writer,
                              const char *owner) {
  unsigned char buf[512];
  lash_bytes b;
  int n = lash_abandon_payload(writer, owner, buf, sizeof buf);
  if (n < 0) return n;
  b.data = buf;
  b.len = (size_t)n;
  return lash_complete(s, txn, ls, LASH_ABANDONED, b);
}

/* A cancel request on a claimed row that will not run again (its owner
 * is gone, SEMANTICS 3.7): ended cancelled, with the request's reason as
 * the outcome (as a pending row's cancellation). */
static int cancel_orphan(scan_ctx *c, const scan_row *row,
                         const lash_lease *ls) {
  lash_store *s = c->a->s;
  unsigned char buf[8 + 1024];
  lash_record rec;
  lash_bytes b;
  size_t n = 0;
  int rc;
  memset(&rec, 0, sizeof rec);
  rc = lash_get(s, c->txn, row->id, &rec, NULL);
  if (rc == 0 && rec.cancel_reason != NULL &&
      strlen(rec.cancel_reason) + 3 <= sizeof buf) {
    size_t len = strlen(rec.cancel_reason);
    if (len < 32) {
      buf[n++] = (unsigned char)(0xa0 | len);
    } else if (len < 256) {
      buf[n++] = 0xd9;
      buf[n++] = (unsigned char)len;
    } else {
      buf[n++] = 0xda;
      buf[n++] = (unsigned char)(len >> 8);
      buf[n++] = (unsigned char)len;
    }
    memcpy(buf + n, rec.cancel_reason, len);
    n += len;
  } else {
    buf[n++] = 0xc0; /* nil: no reason */
  }
  lash_record_free(&rec);
  if (rc < 0 && fatal(rc)) return rc;
  b.data = buf;
  b.len = n;
  rc = lash_complete(s, c->txn, ls, LASH_CANCELLED, b);
  if (rc != 0 && !fatal(rc)) rc = lash_lease_release(s, c->txn, ls);
  return fatal(rc) ? rc : 0;
}

/* Leased abandonment (writer, owner) of a claimed row. */
static int abandon(scan_ctx *c, const lash_lease *ls, int writer,
                   const char *owner) {
  int rc = complete_abandoned(c->a->s, c->txn, ls, writer, owner);
  if (rc != 0 && !fatal(rc)) rc = lash_lease_release(c->a->s, c->txn, ls);
  return fatal(rc) ? rc : 0;
}

/* @p full: the row's record after its start (lash_start_record), freed
 * here. */
static int admit(scan_ctx *c, const lash_lease *ls, lash_record *full) {
  lash__admit *a = c->a;
  lash_run *r;
  r = lash__run_admit(a->runs, full, ls,
                      full->timeout_ms > 0
                          ? full->timeout_ms
                          : lash__admit_timeout(a, full->kind));
  if (r != NULL && full->retry.max_attempts == 0) {
    /* issue 13: a row started without a policy takes its kind's here */
    const lash_retry_policy *p = lash__admit_retry(a, full->kind);
    if (p != NULL) r->retry = *p;
  }
  lash_record_free(full);
  if (r == NULL) return LASH_ENOMEM; /* fatal: the transaction fails */
  a->scan.pass_admitted++;
  c->rep->admitted++;
  return 0;
}

/* One worklist row, under the writer's transaction (SEMANTICS 3.7). */
static int row_claim(scan_ctx *c, const scan_row *row) {
  lash__admit *a = c->a;
  lash_record full;
  lash_lease ls;
  uint32_t attempt = 0;
  int rc;

  memset(&ls, 0, sizeof ls);
  rc = lash_lease_claim(a->s, c->txn, row->id, a->owner, a->incarnation,
                        a->ttl_ms, &ls);
  if (rc == LASH_EBUSY) {
    if (row->disposition != LASH_EXTERNAL) c->rep->deferred++;
    if (c->min_busy == 0 || ls.expires_at < c->min_busy)
      c->min_busy = ls.expires_at;
    busy_note(a, &ls);
    return 0;
  }
  if (rc < 0) return fatal(rc) ? rc : 0;
  if (ls.owner_gone) {
    c->rep->taken_over++;
    a->taken_over++;
  }
  /* The host hears of a takeover: from a gone owner, or of a lapsed
   * lease of another incarnation's run. */
  if ((ls.owner_gone || row->foreign_run) && a->obs != NULL &&
      a->obs->fn != NULL) {
    lash_observation ob;
    memset(&ob, 0, sizeof ob);
    ob.type = LASH_OBS_TAKEN_OVER;
    ob.id = row->id;
    ob.owner = row->has_attempt ? row->att_owner : NULL;
    ob.owner_gone = ls.owner_gone;
    lash__observe(a->obs, &ob);
  }
  LASH_INJECT("engine.after_claim");
  if (row->abandon_requested)
    return abandon(c, &ls, LASH_WRITER_RECONCILED_REQUEST,
                   row->disposition != LASH_EXTERNAL && row->has_attempt
                       ? row->att_owner
                       : NULL);
  /* Claimable and started before by an execution that is not running
   * here: an owner_bound one will not run again. */
  if (row->cancel_requested && row->disposition == LASH_OWNER_BOUND &&
      row->has_attempt)
    return cancel_orphan(c, row, &ls);
  rc = lash_start_record(a->s, c->txn, &ls, &attempt, &full);
  LASH_INJECT("engine.after_start");
  switch (rc) {
  case 0:
    return admit(c, &ls, &full);
  case LASH_EEXHAUSTED:
    if (row->cancel_requested) return cancel_orphan(c, row, &ls);
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
  rc = lash_lease_release(a->s, c->txn, &ls);
  return fatal(rc) ? rc : 0;
}

/* issue 13 (claim): a row of a rate-limited kind takes a token first (none
 * left: the rest of the kind waits for the timer of the next one); a
 * token whose row did not start is given back. */
static int row_do(scan_ctx *c, const scan_row *row) {
  lash__admit *a = c->a;
  uint64_t admitted = c->rep->admitted;
  uint32_t rate = 0;
  int64_t per = 0, next_at = 0;
  const char *kind;
  int rc;
  if (lash__run_find(a->runs, row->id) != NULL) {
    c->rep->deferred++; /* already running here: not admitted twice */
    return 0;
  }
  if (LASH_IS_TERMINAL(row->status)) return 0;
  if (row->disposition == LASH_EXTERNAL) {
    c->rep->deferred++; /* never run here */
    if (!row->abandon_requested) return 0;
    return row_claim(c, row);
  }
  if (row->abandon_requested || row->kind_i == SIZE_MAX ||
      (rate = a->rate_n[row->kind_i]) == 0)
    return row_claim(c, row);
  per = a->rate_per[row->kind_i];
  kind = a->kinds[row->kind_i];
  if (c->rate_out) {
    c->rep->deferred++;
    return 0;
  }
  rc = lash_rate_take(a->s, c->txn, kind, rate, per, &next_at);
  if (rc < 0) return fatal(rc) ? rc : 0;
  if (rc == 1) {
    c->rate_out = 1;
    c->rep->deferred++;
    lapse_arm(a, next_at);
    return 0;
  }
  rc = row_claim(c, row);
  if (rc >= 0 && c->rep->admitted == admitted) {
    int grc = lash_rate_give_back(a->s, c->txn, kind, rate, per);
    if (grc < 0 && fatal(grc)) return grc;
  }
  return rc;
}

/* A scan context of the one row @p rec (into *row), outside a scan. */
static void one_row(scan_ctx *c, lash__admit *a, lash_txn *txn,
                    lash_drive_report *rep, scan_row *row,
                    const lash_record *rec) {
  memset(c, 0, sizeof *c);
  memset(rep, 0, sizeof *rep);
  c->a = a;
  c->txn = txn;
  c->rep = rep;
  c->rows = row;
  collect_cb(c, rec);
}

int lash__admit_one(lash__admit *a, lash_txn *txn, const char *id) {
  lash_drive_report rep;
  lash_record rec;
  scan_ctx c;
  scan_row row;
  int rc;
  if (txn == NULL || id == NULL) return LASH_EINVAL;
  if (a->closed || a->paused || a->runs->runner.start == NULL ||
      free_slots(a) == 0)
    return 0;
  memset(&rec, 0, sizeof rec);
  if (lash_get(a->s, txn, id, &rec, NULL) < 0) return 0;
  /* A suspended row (issue 13: a delayed one, a retry wait) is not
   * claimable before its wake: no lease is taken for it. */
  if (!lash__admit_declared(a, rec.kind) || LASH_IS_TERMINAL(rec.status) ||
      rec.suspended) {
    lash_record_free(&rec);
    return 0;
  }
  one_row(&c, a, txn, &rep, &row, &rec);
  lash_record_free(&rec);
  rc = row_do(&c, &row);
  if (c.min_busy > 0) lapse_arm(a, c.min_busy);
  if (rc < 0) return rc;
  return rep.admitted > 0;
}

int lash__admit_register(lash__admit *a, lash_txn *txn, const lash_def *def,
                         int *created, lash_record *out, int *admitted) {
  int made = 0, rc;
  if (admitted != NULL) *admitted = 0;
  if (txn == NULL) return LASH_EINVAL;
  rc = lash_register(a->s, txn, def, &made, out);
  if (created != NULL) *created = made;
  if (rc < 0 || !made || !a->eager) return rc;
  /* A kind run here starts in the same commit as its registration. */
  rc = lash__admit_one(a, txn, def->id);
  if (rc < 0) return rc;
  if (admitted != NULL) *admitted = rc;
  return 0;
}

static void scan_finish(lash__admit *a) {
  a->scan.active = 0;
  a->last_pass_admitted = a->scan.pass_admitted > 0;
  if (a->scan.rescan || a->scan.pass_admitted > 0) {
    /* A rescan was asked for, or this pass admitted rows: one more pass
     * proves nothing is left (SEMANTICS 7.3). */
    a->scan.rescan = 0;
    a->drive_req = 1;
  }
}

/* A first resume this short (us) holds the writer's transaction (and, on
 * LMDB, every worker's writer lock) for no longer than its own claim and
 * completion cost anyway. */
#define EARLY_US 300
/* at most so many early starts in one transaction */
#define EARLY_MAX (2 * PAGE_MAX)

static int scan_step(lash__admit *a, lash_txn *txn, lash_drive_report *rep) {
  lash_drive_report dummy;
  scan_ctx c;
  uint64_t admitted0;
  size_t i;
  int n, rc = 0;
  if (rep == NULL) {
    memset(&dummy, 0, sizeof dummy);
    rep = &dummy;
  }
  memset(&c, 0, sizeof c);
  c.a = a;
  c.txn = txn;
  c.rep = rep;
  c.rows = a->rows;
  admitted0 = rep->admitted;
  while (a->scan.active) {
    uint64_t nfree = free_slots(a);
    size_t limit;
    if (a->scan.kind >= a->nkinds) {
      scan_finish(a);
      break;
    }
    if (nfree == 0) break;
    limit = nfree > PAGE_MAX ? PAGE_MAX : (size_t)nfree;
    /* A kind whose bodies start early (the writer's hook, the one caller,
     * starts them after this): no more rows in this transaction than can
     * start in it. One claimed beyond would start after the commit and be
     * written twice, claimed in this commit and completed in the next; it
     * is claimed by the next. */
    if (a->early_score[a->scan.kind] > 0) {
      size_t used = a->runs->early_n + (size_t)(rep->admitted - admitted0);
      if (used >= EARLY_MAX) break;
      if (limit > EARLY_MAX - used) limit = EARLY_MAX - used;
    }
    c.n = 0;
    n = lash_worklist_page(a->s, txn, a->kinds[a->scan.kind], &a->scan.cur,
                           limit, collect_cb, &c);
    if (n < 0) {
      rc = n;
      break;
    }
    for (i = 0; i < c.n; i++)
      if ((rc = row_do(&c, &c.rows[i])) < 0) break;
    if (rc < 0) break;
    if (a->scan.cur.done || n == 0 || c.rate_out) {
      a->scan.kind++;
      memset(&a->scan.cur, 0, sizeof a->scan.cur);
      c.rate_out = 0; /* issue 13 (claim): the next kind has its own */
    }
  }
  if (rc < 0) {
    /* This pass failed (read or storage): end it; the next drive request
     * starts over. */
    a->scan.active = 0;
    a->scan.error = rc;
  }
  if (c.min_busy > 0) lapse_arm(a, c.min_busy);
  return rc;
}

/* issue 13 (claim): a row handed a freed slot (out of memory: it stays
 * listed, and a scan claims it). */
static void handed_cb(void *ud, const char *id) {
  lash__admit *a = ud;
  (void)strv_push(&a->handed, &a->nhanded, &a->handed_cap, id);
}

/* The slots freed so far in this transaction (by the bodies that ended in
 * it) go to their keys' next rows now, and those of the kinds run here
 * start in this same commit instead of one commit later. */
static int take_handed(lash__admit *a, lash_txn *txn) {
  size_t i;
  int rc;
  if (a->closed || a->paused || !can_run(a) || free_slots(a) == 0) return 0;
  rc = lash_txn_handoff(txn, handed_cb, a);
  for (i = 0; i < a->nhanded; i++) {
    if (rc >= 0) {
      int one = lash__admit_one(a, txn, a->handed[i]);
      if (one < 0 && fatal(one)) rc = one;
    }
    free(a->handed[i]);
  }
  a->nhanded = 0;
  return rc < 0 ? rc : 0;
}

/* ---- issue 10: bodies that end at once complete in the claiming commit ----
 */

/* A kind's score rises by one for each first resume within EARLY_US and
 * falls by two for each longer one (a preempted resume alone does not
 * stop a kind of short bodies; a kind of long ones stops at once and stays
 * stopped until most of its resumes are short). */
#define SCORE_MAX 4

static void learn_cb(void *ud, const char *kind, int64_t us) {
  lash__admit *a = ud;
  size_t i = kind_index(a, kind);
  int8_t *sc;
  if (i == SIZE_MAX) return;
  sc = &a->early_score[i];
  if (us <= EARLY_US)
    *sc = (int8_t)(*sc < SCORE_MAX ? *sc + 1 : SCORE_MAX);
  else
    *sc = (int8_t)(*sc > 0 ? (*sc >= 2 ? *sc - 2 : 0) : -SCORE_MAX);
}

static int early_ok(void *ud, const lash_run *r) {
  lash__admit *a = ud;
  size_t i = kind_index(a, r->rec.kind);
  return i != SIZE_MAX && a->early_score[i] > 0;
}

/* The writer's in-txn hook: the handed slots, then the scan step when one
 * is due; then the admitted bodies known to end at once start, before the
 * commit, so their completions join it. */
static int in_txn_hook(void *ud, lash_txn *txn) {
  lash__admit *a = ud;
  int rc = take_handed(a, txn);
  if (rc >= 0 && a->step_due) rc = scan_step(a, txn, a->rep);
  if (rc >= 0 && !a->closed && !a->paused && can_run(a))
    lash__runs_start_early(a->runs, txn, early_ok, a, EARLY_MAX);
  return rc;
}

/* The writer's after-commit hook: admissions become starts (or vanish). */
static void committed_hook(void *ud, int rc) {
  lash__admit *a = ud;
  if (!a->step_due && !lash__runs_uncommitted(a->runs)) return;
  a->step_due = 0;
  lash__runs_committed(a->runs, rc);
  if (rc < 0) a->scan.active = 0;
  lash__pump_kick(a->pump);
}

void lash__admit_request(lash__admit *a) {
  if (a->nkinds == 0 || a->closed || a->paused) return;
  if (a->scan.active)
    a->scan.rescan = 1;
  else
    a->drive_req = 1;
  lash__pump_kick(a->pump);
}

static void scan_begin(lash__admit *a) {
  a->scan.active = 1;
  a->scan.rescan = 0;
  a->scan.kind = 0;
  a->scan.error = 0;
  a->scan.pass_admitted = 0;
  memset(&a->scan.cur, 0, sizeof a->scan.cur);
  a->drive_req = 0;
  a->drives++;
}

static int pump_step(lash__admit *a) {
  if (a->closed || a->paused) return 0;
  if (a->scan.active) return free_slots(a) > 0;
  if (a->drive_req) {
    if (!can_run(a)) {
      a->drive_req = 0;
      a->last_pass_admitted = 0;
      return 0;
    }
    if (free_slots(a) == 0) return 0;
    scan_begin(a);
    return 1;
  }
  return 0;
}

int lash__admit_pump(lash__admit *a) {
  a->step_due = pump_step(a);
  return a->step_due;
}

int lash__admit_pending(const lash__admit *a) {
  return (a->scan.active || a->drive_req) && free_slots(a) > 0;
}

int lash__admit_busy(const lash__admit *a) {
  return a->scan.active || a->scan.rescan || (a->drive_req && can_run(a));
}

int lash__admit_drive(lash__admit *a, lash_drive_report *out) {
  lash_drive_report rep;
  int rc;
  memset(&rep, 0, sizeof rep);
  if (out != NULL) *out = rep;
  if (a->closed) return LASH_ECLOSED;
  if (!lash__writer_free(a->w)) return LASH_EINVAL;
  if (a->paused) return 0;
  if (a->scan.active) {
    a->scan.rescan = 1;
    rep.coalesced = 1;
    if (out != NULL) *out = rep;
    return 0;
  }
  if (!can_run(a)) {
    a->drive_req = 0;
    a->last_pass_admitted = 0;
    return 0;
  }
  scan_begin(a);
  a->step_due = 1;
  a->rep = &rep;
  rc = lash__writer_txn(a->w, NULL, NULL);
  a->rep = NULL;
  if (out != NULL) *out = rep;
  return rc;
}

void lash__admit_pause(lash__admit *a, int paused) {
  a->paused = paused != 0;
  if (a->paused) {
    /* End the scan in flight; resuming starts a new one. */
    a->scan.active = 0;
    a->scan.rescan = 0;
    a->drive_req = 0;
  } else {
    lash__admit_request(a);
  }
}

/* ----------------------------------------------------------- owner drain */

typedef struct drain_ctx {
  lash__admit *a;
  char **ids;
  size_t n, cap;
  unsigned abandoned;
} drain_ctx;

static int drain_collect(void *ud, const lash_record *rec) {
  drain_ctx *d = ud;
  if (rec->disposition != LASH_OWNER_BOUND || !rec->has_attempt ||
      LASH_IS_TERMINAL(rec->status) ||
      strcmp(rec->attempt.owner, d->a->owner) != 0)
    return 0;
  return strv_push(&d->ids, &d->n, &d->cap, rec->id);
}

static int drain_fn(lash_store *s, lash_txn *txn, void *ud) {
  drain_ctx *d = ud;
  lash__admit *a = d->a;
  lash_list_filter f;
  size_t i;
  int rc;
  memset(&f, 0, sizeof f);
  f.live_only = 1;
  rc = lash_list(s, txn, &f, drain_collect, d);
  if (rc < 0) return rc;
  for (i = 0; i < d->n; i++) {
    lash_lease ls;
    if (lash__run_find(a->runs, d->ids[i]) != NULL)
      continue; /* in flight here: not ours to abandon now */
    memset(&ls, 0, sizeof ls);
    rc = lash_lease_claim(s, txn, d->ids[i], a->owner, a->incarnation,
                          a->ttl_ms, &ls);
    if (rc < 0) {
      if (fatal(rc)) return rc;
      continue; /* EBUSY: deferred */
    }
    rc = complete_abandoned(s, txn, &ls, LASH_WRITER_OWNER_DRAIN, a->owner);
    if (rc == 0) {
      d->abandoned++;
    } else {
      if (fatal(rc)) return rc;
      if ((rc = lash_lease_release(s, txn, &ls)) < 0 && fatal(rc)) return rc;
    }
  }
  return 0;
}

int lash__admit_drain(lash__admit *a, unsigned *abandoned) {
  drain_ctx d;
  size_t i;
  int rc;
  memset(&d, 0, sizeof d);
  d.a = a;
  rc = lash__writer_sync(a->w, drain_fn, &d);
  for (i = 0; i < d.n; i++)
    free(d.ids[i]);
  free(d.ids);
  if (rc == 0 && abandoned != NULL) *abandoned = d.abandoned;
  return rc;
}

/* ------------------------------------------------------------ reconcile */

typedef struct reconcile_ctx {
  lash__admit *a;
  const char *id;
  int result;
  lash_lease *holder;
} reconcile_ctx;

/* One row's abandon or cancel request, honoured now if its execution is
 * not live anywhere (lash_engine_reconcile). Never starts a body. */
static int reconcile_fn(lash_store *s, lash_txn *txn, void *ud) {
  reconcile_ctx *r = ud;
  lash__admit *a = r->a;
  lash_drive_report rep;
  lash_record rec;
  lash_lease ls;
  scan_ctx c;
  scan_row row;
  int rc, will_rerun;

  memset(&rec, 0, sizeof rec);
  if ((rc = lash_get(s, txn, r->id, &rec, NULL)) < 0) return rc;
  one_row(&c, a, txn, &rep, &row, &rec);
  /* issue 13: attempts that ended in a retry wait do not count */
  will_rerun = row.disposition == LASH_RERUNNABLE &&
               (rec.max_attempts == 0 || !rec.has_attempt ||
                rec.attempt.number < rec.max_attempts + rec.failures);
  lash_record_free(&rec);
  r->result = LASH_RECONCILE_NOTHING;
  if (LASH_IS_TERMINAL(row.status)) return 0;
  if (lash__run_find(a->runs, row.id) != NULL) {
    r->result = LASH_RECONCILE_HELD; /* running here: its body sees it */
    return 0;
  }
  if (!row.abandon_requested && !(row.cancel_requested && !will_rerun &&
                                  row.disposition != LASH_EXTERNAL))
    return 0; /* nothing this call may end */
  memset(&ls, 0, sizeof ls);
  rc = lash_lease_claim(s, txn, row.id, a->owner, a->incarnation, a->ttl_ms,
                        &ls);
  if (rc == LASH_EBUSY) {
    r->result = LASH_RECONCILE_HELD;
    if (r->holder != NULL) *r->holder = ls;
    return 0;
  }
  if (rc < 0) return rc;
  if (row.abandon_requested)
    rc = abandon(&c, &ls, LASH_WRITER_RECONCILED_REQUEST,
                 row.disposition != LASH_EXTERNAL && row.has_attempt
                     ? row.att_owner
                     : NULL);
  else
    rc = cancel_orphan(&c, &row, &ls);
  if (rc < 0) return rc;
  memset(&rec, 0, sizeof rec);
  if (lash_get(s, txn, row.id, &rec, NULL) == 0 && LASH_IS_TERMINAL(rec.status))
    r->result = LASH_RECONCILE_ENDED;
  lash_record_free(&rec);
  return 0;
}

int lash__admit_reconcile(lash__admit *a, const char *id, int *result,
                          lash_lease *holder) {
  reconcile_ctx r;
  int rc;
  memset(&r, 0, sizeof r);
  r.a = a;
  r.id = id;
  r.holder = holder;
  if (holder != NULL) memset(holder, 0, sizeof *holder);
  rc = lash__writer_sync(a->w, reconcile_fn, &r);
  if (result != NULL) *result = rc == 0 ? r.result : LASH_RECONCILE_NOTHING;
  return rc;
}

/* ------------------------------------------------------------ the part */

int lash__admit_init(lash__admit *a, lash_store *s, uv_loop_t *loop,
                     lash__handles *hs, lash__pump *pump, lash__writer *w,
                     lash__runs *runs, const char *owner,
                     const char *incarnation, int64_t ttl_ms, int eager) {
  memset(a, 0, sizeof *a);
  a->s = s;
  a->pump = pump;
  a->w = w;
  a->runs = runs;
  a->ttl_ms = ttl_ms;
  a->eager = eager;
  snprintf(a->owner, sizeof a->owner, "%s", owner);
  snprintf(a->incarnation, sizeof a->incarnation, "%s", incarnation);
  if ((a->rows = malloc(PAGE_MAX * sizeof *a->rows)) == NULL)
    return LASH_ENOMEM;
  uv_timer_init(loop, &a->lapse_timer);
  lash__handle_opened(hs, (uv_handle_t *)&a->lapse_timer);
  uv_timer_init(loop, &a->probe_timer);
  lash__handle_opened(hs, (uv_handle_t *)&a->probe_timer);
  /* Held for the engine's life: peers on this host see our death at once.
   * Not held (a backend without it, a read-only folder): the TTL only. */
  a->owner_held = lash_owner_hold(s, a->owner, a->incarnation) == 0;
  runs->learn = learn_cb;
  runs->learn_ud = a;
  return lash__writer_hook(w, in_txn_hook, committed_hook, a);
}

void lash__admit_stop(lash__admit *a) {
  a->scan.active = 0;
  a->drive_req = 0;
}

void lash__admit_close(lash__admit *a) {
  a->closed = 1;
  a->nbusy = 0;
  lash__handle_close((uv_handle_t *)&a->lapse_timer);
  lash__handle_close((uv_handle_t *)&a->probe_timer);
}

void lash__admit_free(lash__admit *a) {
  size_t i;
  for (i = 0; i < a->nkinds; i++)
    free(a->kinds[i]);
  free(a->kinds);
  free(a->timeouts);
  free(a->retries);
  free(a->rate_n);
  free(a->rate_per);
  free(a->early_score);
  a->early_score = NULL;
  free(a->rows);
  free(a->handed);
  a->handed = NULL;
  /* After the last commit (our leases released): only now may a peer see
   * this owner as gone. */
  if (a->owner_held) lash_owner_release(a->s);
  a->owner_held = 0;
  a->kinds = NULL;
  a->timeouts = NULL;
  a->retries = NULL;
  a->rate_n = NULL;
  a->rate_per = NULL;
  a->rows = NULL;
}
