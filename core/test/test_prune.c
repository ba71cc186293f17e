/* test_prune.c - retention: S8.46-S8.48, re-registration after prune. */
#include "testutil.h"

#define TTL 30000

static hook_rec hooks; /* testutil.h's commit hook recorder */

static void complete_unleased(lash_store *s, const char *id, int status) {
  unsigned char b[16];
  int rc = lash_complete_unleased(
      s, NULL, id, status, tu_mp_str(b, sizeof b, "v"), LASH_AUTH_WORKFLOW);
  if (rc != 0)
    diag("complete %s: %s %s", id, lash_err_name(rc), lash_errmsg(s));
}

typedef struct del {
  size_t n;
  char id[16][32];
  int deleted[16];
  uint64_t cseq[16];
  int tomb_status[16];
  int64_t pruned_at[16];
} del;

static int on_change(void *ud, const lash_change_entry *c) {
  del *d = (del *)ud;
  if (d->n < 16) {
    snprintf(d->id[d->n], sizeof d->id[0], "%s", c->id);
    d->deleted[d->n] = c->deleted;
    d->cseq[d->n] = c->change_seq;
    d->tomb_status[d->n] = c->tomb ? c->tomb->status : -1;
    d->pruned_at[d->n] = c->tomb ? c->tomb->pruned_at : -1;
  }
  d->n++;
  return 0;
}

int main(void) {
  tu_env e;
  lash_store *s = tu_open(&e, NULL);
  unsigned char pb[16];
  lash_bytes pl = tu_mp_str(pb, sizeof pb, "p");
  lash_lease lt1, lr, tmp;
  lash_prune_report rep;
  lash_record r;
  lash_tombstone tb;
  lash_stats st0, st1;
  uint64_t last_t1 = 0, cursor, t1_cseq = 0;
  int64_t t0, cutoff, prune_at;
  int rc, i;
  long ev_t1, ev_t2, ev_t3;
  tu_snap sn;

  lash_store_on_commit(s, hook_fn, &hooks);
  t0 = e.now;
  /* Terminal rows at t0: t1 (leased, with extra events), t2, t3 completed,
   * t4 failed; t5 completed later; live rows l1 (pending) and l2 (running),
   * both created at t0. */
  tu_reg(s, "t1", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "t2", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "t3", "k", LASH_OWNER_BOUND, 0);
  tu_reg(s, "t4", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "t5", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "l1", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "l2", "k", LASH_RERUNNABLE, 0);
  memset(&lt1, 0, sizeof lt1);
  is_rc(s, lash_lease_claim(s, NULL, "t1", "A", "a1", TTL, &lt1), 0,
        "claim t1");
  is_rc(s, lash_start(s, NULL, &lt1, NULL), 0, "start t1");
  lash_append(s, NULL, "t1", "progress", pl, NULL);
  lash_append(s, NULL, "t1", "progress", pl, NULL);
  is_rc(s, lash_complete(s, NULL, &lt1, LASH_COMPLETED, pl), 0,
        "complete t1 leased");
  complete_unleased(s, "t2", LASH_COMPLETED);
  complete_unleased(s, "t3", LASH_COMPLETED);
  complete_unleased(s, "t4", LASH_FAILED);
  memset(&lr, 0, sizeof lr);
  is_rc(s, lash_lease_claim(s, NULL, "l2", "A", "a1", TTL, &lr), 0, "claim l2");
  is_rc(s, lash_start(s, NULL, &lr, NULL), 0, "start l2");
  e.now = t0 + 1000;
  cutoff = e.now;
  complete_unleased(s, "t5", LASH_COMPLETED); /* updated_at == cutoff */
  ev_t1 = tu_event_count(s, "t1");
  ev_t2 = tu_event_count(s, "t2");
  ev_t3 = tu_event_count(s, "t3");
  memset(&r, 0, sizeof r);
  lash_get(s, NULL, "t1", &r, NULL);
  last_t1 = r.last_seq;
  lash_record_free(&r);
  ok(ev_t1 == 4 && ev_t2 == 1 && ev_t3 == 1, "event counts before prune");

  memset(&st0, 0, sizeof st0);
  is_rc(s, lash_store_stats(s, NULL, &st0), 0, "stats before prune");
  is(st0.count[LASH_COMPLETED], 4, "stats: 4 completed before prune");
  is(st0.tombstones, 0, "stats: no tombstones before prune");

  /* Prune completed rows older than the cutoff, some time later. */
  e.now = t0 + 5000;
  prune_at = e.now;
  cursor = lash_change_seq(s);
  hooks.calls = 0;
  rc = lash_prune(s, NULL, 99, 99, &rep);
  is_rc(s, rc, LASH_EINVAL, "prune with status 99 -> EINVAL");
  memset(&rep, 0, sizeof rep);
  rc = lash_prune(s, NULL, cutoff, LASH_COMPLETED, &rep);
  is_rc(s, rc, 0, "S8.46 prune completed rows before the cutoff");
  is(rep.processes, 3, "S8.46 report: 3 processes (t1, t2, t3)");
  is(rep.events, ev_t1 + ev_t2 + ev_t3, "S8.46 report: their events");
  is(hooks.calls, 0, "prune does not call the commit hook");
  tu_check(s, "S8.5 check after prune");

  is(tu_status(s, "t4"), LASH_FAILED, "S8.46 failed row survives the filter");
  is(tu_status(s, "t5"), LASH_COMPLETED,
     "S8.46 row with updated_at == cutoff survives (strictly older only)");
  is(tu_status(s, "l1"), LASH_PENDING, "S8.46 live pending row survives");
  is(tu_status(s, "l2"), LASH_RUNNING, "S8.46 live running row survives");
  memset(&tmp, 0, sizeof tmp);
  ok(lash_lease_get(s, NULL, "l2", &tmp) == 0 && tmp.token == lr.token,
     "S8.46 live row's lease survives");

  /* S8.48 tombstone reads. */
  memset(&r, 0, sizeof r);
  memset(&tb, 0, sizeof tb);
  rc = lash_get(s, NULL, "t1", &r, &tb);
  is_rc(s, rc, LASH_EPRUNED, "S8.48 lash_get of a pruned id -> EPRUNED");
  msg_has(s, "t1", "S8.48 EPRUNED message names the id");
  iss(tb.id, "t1", "S8.48 tombstone id");
  is(tb.status, LASH_COMPLETED, "S8.48 tombstone keeps the terminal status");
  is(tb.pruned_at, prune_at, "S8.48 pruned_at is the prune time");
  ok(tb.pruned_at != cutoff, "S8.48 ... not the cutoff");
  is(tb.last_seq, last_t1, "S8.48 tombstone keeps last_seq as floor");
  t1_cseq = tb.change_seq;
  ok(tb.change_seq > cursor, "S8.48 tombstone has a new change seq");
  lash_record_free(&r);
  rc = lash_get(s, NULL, "t2", &r, NULL);
  is_rc(s, rc, LASH_EPRUNED, "S8.48 lash_get with tomb NULL -> EPRUNED");
  lash_record_free(&r);
  {
    lash_tombstone a, b, c;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    lash_get(s, NULL, "t1", NULL, &a);
    lash_get(s, NULL, "t2", NULL, &b);
    lash_get(s, NULL, "t3", NULL, &c);
    ok(b.change_seq == a.change_seq + 1 && c.change_seq == b.change_seq + 1,
       "S8.47 tombstones get consecutive change seqs in id order");
  }

  {
    del d;
    uint64_t next = 0;
    memset(&d, 0, sizeof d);
    rc = lash_changes_since(s, NULL, cursor, 0, on_change, &d, &next);
    ok(rc == 3 && d.n == 3 && d.deleted[0] && d.deleted[1] && d.deleted[2] &&
           strcmp(d.id[0], "t1") == 0 && strcmp(d.id[2], "t3") == 0,
       "change feed reports the three deletions in order");
    ok(d.n >= 1 && d.tomb_status[0] == LASH_COMPLETED &&
           d.pruned_at[0] == prune_at && d.cseq[0] == t1_cseq,
       "deletion entries carry their tombstones");
  }

  tu_snap_take(s, "t1", &sn);
  {
    tu_evs ev = {0};
    uint64_t seq = 0;
    lash_lease ls;
    rc = tu_events(s, NULL, "t1", 0, 0, &ev);
    is_rc(s, rc, LASH_EPRUNED, "S8.48 events_after -> EPRUNED");
    msg_has(s, "t1", "S8.48 events_after message names the id");
    tu_evs_free(&ev);
    rc = lash_append(s, NULL, "t1", "progress", pl, &seq);
    is_rc(s, rc, LASH_EPRUNED, "S8.48 append -> EPRUNED");
    rc = lash_append(s, NULL, "t1", "signal.go", pl, &seq);
    is_rc(s, rc, LASH_EPRUNED, "S8.48 signal -> EPRUNED");
    rc = lash_request_cancel(s, NULL, "t1", "r", &seq);
    is_rc(s, rc, LASH_EPRUNED, "S8.48 request_cancel -> EPRUNED");
    rc = lash_request_abandon(s, NULL, "t1", "ops", "r", &seq);
    is_rc(s, rc, LASH_EPRUNED, "S8.48 request_abandon -> EPRUNED");
    memset(&ls, 0, sizeof ls);
    rc = lash_lease_claim(s, NULL, "t1", "B", "b1", TTL, &ls);
    is_rc(s, rc, LASH_EPRUNED, "S8.48 lease_claim -> EPRUNED");
    msg_has(s, "t1", "S8.48 lease_claim message names the id");
    rc = lash_lease_get(s, NULL, "t1", &ls);
    is_rc(s, rc, LASH_ENOENT, "S8.48 no lease row after prune and claim");
    rc = lash_complete_unleased(s, NULL, "t1", LASH_COMPLETED, pl,
                                LASH_AUTH_WORKFLOW);
    is_rc(s, rc, LASH_EPRUNED, "S8.48 complete_unleased -> EPRUNED");
    rc = lash_complete(s, NULL, &lt1, LASH_COMPLETED, pl);
    is_rc(s, rc, LASH_EPRUNED, "S8.48 leased complete -> EPRUNED");
    rc = lash_start(s, NULL, &lt1, NULL);
    is_rc(s, rc, LASH_EPRUNED, "S8.48 start -> EPRUNED");
    rc = lash_append_fenced(s, NULL, &lt1, "progress", pl, NULL);
    is_rc(s, rc, LASH_EPRUNED, "S8.48 fenced append -> EPRUNED");
  }
  ok(tu_snap_same(s, "t1", &sn), "S8.48 refused operations wrote nothing");
  tu_snap_free(&sn);

  memset(&st1, 0, sizeof st1);
  is_rc(s, lash_store_stats(s, NULL, &st1), 0, "stats after prune");
  is(st1.tombstones, 3, "stats: 3 tombstones");
  is(st1.count[LASH_COMPLETED], 1, "stats: 1 completed left (t5)");
  is(st1.count[LASH_FAILED], 1, "stats: failed t4 left");
  is(st1.total, st0.total - 3, "stats: total dropped by 3");
  is(st1.live, 2, "stats: 2 live");
  tu_check(s, "S8.5 check after refused operations on pruned ids");

  /* Prune again: nothing matches now; then all terminals with no filter. */
  memset(&rep, 0, sizeof rep);
  rc = lash_prune(s, NULL, cutoff, LASH_COMPLETED, &rep);
  ok(rc == 0 && rep.processes == 0 && rep.events == 0,
     "a second identical prune removes nothing");
  memset(&rep, 0, sizeof rep);
  rc = lash_prune(s, NULL, e.now + 1, 0, &rep);
  ok(rc == 0 && rep.processes == 2 && rep.events == 2,
     "prune without a status filter takes t4 and t5");
  is(tu_status(s, "l1"), LASH_PENDING, "live rows never pruned (l1)");
  is(tu_status(s, "l2"), LASH_RUNNING, "live rows never pruned (l2)");
  {
    lash_tombstone t4;
    memset(&t4, 0, sizeof t4);
    rc = lash_get(s, NULL, "t4", NULL, &t4);
    ok(rc == LASH_EPRUNED && t4.status == LASH_FAILED,
       "t4 tombstone keeps status failed");
  }

  /* Re-registration of a pruned id. */
  e.now += 100;
  {
    lash_def d = tu_def("t1", "other-kind", LASH_EXTERNAL, 0);
    int created = -1;
    uint64_t seq = 0;
    memset(&r, 0, sizeof r);
    rc = lash_register(s, NULL, &d, &created, &r);
    is_rc(s, rc, 0, "re-registering a pruned id works");
    is(created, 1, "... and creates a new row");
    is(r.status, LASH_PENDING, "... pending");
    iss(r.kind, "other-kind", "... with the new definition");
    lash_record_free(&r);
    rc = lash_append(s, NULL, "t1", "progress", pl, &seq);
    is_rc(s, rc, 0, "append to the re-registered id");
    ok(seq > last_t1, "first new seq %" PRIu64 " > pruned last_seq %" PRIu64,
       seq, last_t1);
    memset(&r, 0, sizeof r);
    rc = lash_get(s, NULL, "t1", &r, NULL);
    ok(rc == 0 && r.last_seq == seq, "lash_get sees the new row");
    lash_record_free(&r);
  }
  tu_check(s, "S8.5 check after re-registration");
  is(tu_reopen(&e), 0, "reopen");
  s = e.s;
  tu_check(s, "S8.5 check after reopen");
  is(tu_status(s, "t2"), LASH_EPRUNED, "tombstone survives reopen");
  is(tu_status(s, "t1"), LASH_PENDING, "re-registered row survives reopen");
  (void)i;
  tu_close(&e);
  return done_testing();
}
