/* test_start.c - execution starts and attempts (S8.34-S8.36), and the
 * authority matrix of unleased completion (S8.18-S8.21). */
#include "testutil.h"

#define TTL 30000

static int claim(lash_store *s, const char *id, const char *owner,
                 const char *inc, lash_lease *ls) {
  memset(ls, 0, sizeof *ls);
  return lash_lease_claim(s, NULL, id, owner, inc, TTL, ls);
}

static void get_rec(lash_store *s, const char *id, lash_record *r) {
  memset(r, 0, sizeof *r);
  if (lash_get(s, NULL, id, r, NULL) != 0)
    diag("lash_get(%s) failed: %s", id, lash_errmsg(s));
}

/* The fence in the payload of the n-th process.started event of @p id. */
static int started_events(lash_store *s, const char *id, uint64_t *fences,
                          uint64_t *attempts, int cap) {
  tu_evs ev = {0};
  size_t i;
  int n = 0;
  tu_events(s, NULL, id, 0, 0, &ev);
  for (i = 0; i < ev.n; i++) {
    if (strcmp(ev.v[i].type, "process.started") != 0) continue;
    if (n < cap) {
      fences[n] = attempts[n] = 0;
      tu_mp_map_uint(ev.v[i].payload, ev.v[i].len, "fence", &fences[n]);
      tu_mp_map_uint(ev.v[i].payload, ev.v[i].len, "attempt", &attempts[n]);
    }
    n++;
  }
  tu_evs_free(&ev);
  return n;
}

static void test_attempts(tu_env *e) {
  lash_store *s = e->s;
  lash_lease a, b, c;
  lash_record r;
  tu_snap sn;
  uint32_t att = 0;
  uint64_t fences[4], attempts[4];
  int rc, n;

  is_rc(s, tu_reg(s, "s-1", "k", LASH_RERUNNABLE, 0), 0, "register s-1");
  is_rc(s, claim(s, "s-1", "A", "a1", &a), 0, "A claims s-1");
  e->now += 5;
  rc = lash_start(s, NULL, &a, &att);
  is_rc(s, rc, 0, "first start");
  is(att, 1, "first attempt is 1");
  get_rec(s, "s-1", &r);
  is(r.status, LASH_RUNNING, "start: status running");
  ok(r.has_attempt, "start: attempt recorded");
  iss(r.attempt.owner, "A", "attempt owner");
  iss(r.attempt.incarnation, "a1", "attempt incarnation");
  is(r.attempt.fence, a.fence, "attempt fence == lease fence");
  is(r.attempt.number, 1, "attempt number 1");
  is(r.attempt.started_at, e->now, "attempt started_at is the clock");
  lash_record_free(&r);

  /* Same incarnation and fence: a no-op. */
  tu_snap_take(s, "s-1", &sn);
  e->now += 5;
  att = 0;
  rc = lash_start(s, NULL, &a, &att);
  is_rc(s, rc, 0, "same lease starts again -> 0");
  is(att, 1, "... same attempt number");
  ok(tu_snap_same(s, "s-1", &sn), "... nothing written");
  tu_snap_free(&sn);

  /* Expire, reclaim by another owner, start: attempt 2. */
  e->now = a.expires_at;
  is_rc(s, claim(s, "s-1", "B", "b1", &b), 0, "B reclaims after expiry");
  att = 0;
  rc = lash_start(s, NULL, &b, &att);
  is_rc(s, rc, 0, "rerunnable second start");
  is(att, 2, "rerunnable: claim/start/expire/reclaim/start -> attempt 2");
  get_rec(s, "s-1", &r);
  iss(r.attempt.owner, "B", "attempt now names B");
  is(r.attempt.fence, b.fence, "attempt fence is B's");
  lash_record_free(&r);

  /* Same owner + incarnation after release gets a new fence: new attempt. */
  lash_lease_release(s, NULL, &b);
  is_rc(s, claim(s, "s-1", "B", "b1", &c), 0, "B re-claims after release");
  ok(c.fence > b.fence, "... with a larger fence");
  att = 0;
  rc = lash_start(s, NULL, &c, &att);
  is_rc(s, rc, 0, "start under the new fence");
  is(att, 3, "new fence, same incarnation -> attempt 3");

  n = started_events(s, "s-1", fences, attempts, 4);
  is(n, 3, "three process.started events (the no-op wrote none)");
  ok(n == 3 && fences[0] == a.fence && fences[1] == b.fence &&
         fences[2] == c.fence,
     "process.started payloads carry the fences");
  ok(n == 3 && attempts[0] == 1 && attempts[1] == 2 && attempts[2] == 3,
     "process.started payloads carry the attempt numbers");
  tu_check(s, "S8.5 check after rerunnable starts");
}

static void test_owner_bound(tu_env *e) {
  lash_store *s = e->s;
  lash_lease a, b, c;
  lash_record r;
  tu_snap sn;
  uint32_t att = 0;
  int rc;

  is_rc(s, tu_reg(s, "ob-1", "k", LASH_OWNER_BOUND, 0), 0, "register ob-1");
  is_rc(s, claim(s, "ob-1", "owner-first", "i1", &a), 0, "first owner claims");
  rc = lash_start(s, NULL, &a, &att);
  is_rc(s, rc, 0, "owner_bound first start");
  is(att, 1, "owner_bound first attempt 1");
  rc = lash_start(s, NULL, &a, &att);
  is_rc(s, rc, 0, "owner_bound same execution restarts as a no-op");

  e->now = a.expires_at + 1;
  is_rc(s, claim(s, "ob-1", "owner-second", "i2", &b), 0,
        "second owner claims after expiry");
  tu_snap_take(s, "ob-1", &sn);
  rc = lash_start(s, NULL, &b, &att);
  is_rc(s, rc, LASH_ESTARTED, "S8.35 second execution start -> ESTARTED");
  msg_has(s, "owner-first", "S8.35 message names the first owner");
  msg_has(s, "ob-1", "S8.35 message names the id");
  ok(tu_snap_same(s, "ob-1", &sn), "S8.35 nothing written");
  get_rec(s, "ob-1", &r);
  iss(r.attempt.owner, "owner-first", "S8.35 first owner's attempt kept");
  is(r.status, LASH_RUNNING, "S8.35 row stays running");
  lash_record_free(&r);

  /* Same owner and incarnation but a new fence is another execution. */
  lash_lease_release(s, NULL, &b);
  is_rc(s, claim(s, "ob-1", "owner-first", "i1", &c), 0,
        "first owner re-claims with a new fence");
  rc = lash_start(s, NULL, &c, &att);
  is_rc(s, rc, LASH_ESTARTED, "S8.35 same owner, new fence -> ESTARTED");
  ok(tu_snap_same(s, "ob-1", &sn), "... nothing written");
  tu_snap_free(&sn);
  tu_check(s, "S8.5 check after owner_bound starts");
}

static void test_exhausted(tu_env *e) {
  lash_store *s = e->s;
  lash_lease a, b, c;
  lash_record r;
  tu_snap sn;
  uint32_t att = 0;
  int rc;

  is_rc(s, tu_reg(s, "ex-1", "k", LASH_RERUNNABLE, 1), 0,
        "register ex-1 max_attempts 1");
  is_rc(s, claim(s, "ex-1", "A", "a1", &a), 0, "A claims ex-1");
  is_rc(s, lash_start(s, NULL, &a, &att), 0, "attempt 1 starts");
  e->now = a.expires_at;
  is_rc(s, claim(s, "ex-1", "B", "b1", &b), 0, "B reclaims ex-1");
  tu_snap_take(s, "ex-1", &sn);
  att = 77;
  rc = lash_start(s, NULL, &b, &att);
  is_rc(s, rc, LASH_EEXHAUSTED, "S8.36 start beyond max_attempts");
  msg_has(s, "ex-1", "S8.36 message names the id");
  ok(tu_snap_same(s, "ex-1", &sn), "S8.36 nothing written");
  get_rec(s, "ex-1", &r);
  is(r.attempt.number, 1, "S8.36 attempt 1 retained");
  iss(r.attempt.owner, "A", "S8.36 attempt owner A retained");
  ok(!LASH_IS_TERMINAL(r.status), "S8.36 row non-terminal");
  lash_record_free(&r);
  tu_snap_free(&sn);

  is_rc(s, tu_reg(s, "ex-2", "k", LASH_RERUNNABLE, 2), 0,
        "register ex-2 max_attempts 2");
  is_rc(s, claim(s, "ex-2", "A", "a1", &a), 0, "A claims ex-2");
  is_rc(s, lash_start(s, NULL, &a, &att), 0, "ex-2 attempt 1");
  e->now = a.expires_at;
  is_rc(s, claim(s, "ex-2", "B", "b1", &b), 0, "B reclaims ex-2");
  rc = lash_start(s, NULL, &b, &att);
  is_rc(s, rc, 0, "ex-2 attempt 2 within budget");
  is(att, 2, "ex-2 attempt 2");
  e->now = b.expires_at;
  is_rc(s, claim(s, "ex-2", "C", "c1", &c), 0, "C reclaims ex-2");
  tu_snap_take(s, "ex-2", &sn);
  rc = lash_start(s, NULL, &c, &att);
  is_rc(s, rc, LASH_EEXHAUSTED, "S8.36 third start of max_attempts 2");
  ok(tu_snap_same(s, "ex-2", &sn), "S8.36 nothing written");
  tu_snap_free(&sn);
  tu_check(s, "S8.5 check after exhausted starts");
}

static void test_refused_starts(tu_env *e) {
  lash_store *s = e->s;
  unsigned char obuf[32];
  lash_bytes out = tu_mp_str(obuf, sizeof obuf, "done");
  lash_lease a, ghost;
  tu_snap sn;
  int rc;

  /* S8.34 external rows. */
  is_rc(s, tu_reg(s, "xt-1", "k", LASH_EXTERNAL, 0), 0, "register xt-1");
  rc = claim(s, "xt-1", "A", "a1", &a);
  is_rc(s, rc, 0, "an external row's lease can be claimed");
  tu_snap_take(s, "xt-1", &sn);
  rc = lash_start(s, NULL, &a, NULL);
  is_rc(s, rc, LASH_EEXTERNAL, "S8.34 start on an external row");
  msg_has(s, "xt-1", "S8.34 EEXTERNAL names the id");
  ok(tu_snap_same(s, "xt-1", &sn), "S8.34 nothing written");
  is(tu_status(s, "xt-1"), LASH_PENDING, "external row stays pending");
  tu_snap_free(&sn);
  lash_lease_release(s, NULL, &a);

  /* S8.34 terminal rows. */
  is_rc(s, tu_reg(s, "tm-1", "k", LASH_RERUNNABLE, 0), 0, "register tm-1");
  rc = lash_complete_unleased(s, NULL, "tm-1", LASH_COMPLETED, out,
                              LASH_AUTH_WORKFLOW);
  is_rc(s, rc, 0, "complete tm-1 unleased");
  rc = claim(s, "tm-1", "A", "a1", &a);
  is_rc(s, rc, 0, "a terminal row's lease can be claimed");
  tu_snap_take(s, "tm-1", &sn);
  rc = lash_start(s, NULL, &a, NULL);
  is_rc(s, rc, LASH_ETERMINAL, "S8.34 start on a terminal row");
  msg_has(s, "tm-1", "S8.34 ETERMINAL names the id");
  ok(tu_snap_same(s, "tm-1", &sn), "S8.34 nothing written");
  tu_snap_free(&sn);
  lash_lease_release(s, NULL, &a);

  /* A lease for an id that does not exist. */
  memset(&ghost, 0, sizeof ghost);
  snprintf(ghost.process_id, sizeof ghost.process_id, "nobody");
  snprintf(ghost.owner, sizeof ghost.owner, "A");
  snprintf(ghost.incarnation, sizeof ghost.incarnation, "a1");
  ghost.token = 1;
  ghost.fence = 1;
  ghost.expires_at = e->now + TTL;
  rc = lash_start(s, NULL, &ghost, NULL);
  is_rc(s, rc, LASH_ENOENT, "start for an unknown id -> ENOENT");
  msg_has(s, "nobody", "ENOENT start names the id");
  tu_check(s, "S8.5 check after refused starts");
}

/* S8.18-S8.20: the authority matrix. */
static void test_authority(tu_env *e) {
  static const int disps[] = {LASH_RERUNNABLE, LASH_OWNER_BOUND, LASH_EXTERNAL};
  static const int auths[] = {LASH_AUTH_EXTERNAL, LASH_AUTH_WORKFLOW,
                              LASH_AUTH_RECONCILED_ABANDON};
  static const int statuses[] = {LASH_COMPLETED, LASH_FAILED, LASH_CANCELLED,
                                 LASH_ABANDONED};
  lash_store *s = e->s;
  unsigned char obuf[32];
  lash_bytes out = tu_mp_str(obuf, sizeof obuf, "answer");
  size_t di, ai, si;
  int n = 0, rc;

  for (di = 0; di < 3; di++) {
    for (ai = 0; ai < 3; ai++) {
      for (si = 0; si < 4; si++) {
        int d = disps[di], au = auths[ai], st = statuses[si];
        int accept;
        char id[64];
        tu_snap sn;
        if (au == LASH_AUTH_EXTERNAL)
          accept = d == LASH_EXTERNAL;
        else if (au == LASH_AUTH_WORKFLOW)
          accept = d != LASH_EXTERNAL;
        else
          accept = d == LASH_EXTERNAL && st == LASH_ABANDONED;
        snprintf(id, sizeof id, "au-%d", n++);
        tu_reg(s, id, "k", d, 0);
        tu_snap_take(s, id, &sn);
        e->now += 1;
        rc = lash_complete_unleased(s, NULL, id, st, out, au);
        if (accept) {
          is_rc(s, rc, 0, "S8.18 %s authority completes a %s row as %s",
                lash_authority_name(au), lash_disposition_name(d),
                lash_status_name(st));
          is(tu_status(s, id), st, "S8.18 ... status %s", lash_status_name(st));
        } else {
          is_rc(s, rc, LASH_EAUTHORITY,
                "S8.18 %s authority on a %s row as %s -> EAUTHORITY",
                lash_authority_name(au), lash_disposition_name(d),
                lash_status_name(st));
          msg_has(s, id, "S8.18 ... message names the id");
          ok(tu_snap_same(s, id, &sn), "S8.18 ... nothing appended");
        }
        tu_snap_free(&sn);
      }
    }
  }

  /* The same on a running row (a live lease is not touched). */
  {
    lash_lease a, got;
    tu_snap sn;
    tu_reg(s, "au-run", "k", LASH_RERUNNABLE, 0);
    is_rc(s, claim(s, "au-run", "A", "a1", &a), 0, "claim au-run");
    is_rc(s, lash_start(s, NULL, &a, NULL), 0, "start au-run");
    tu_snap_take(s, "au-run", &sn);
    rc = lash_complete_unleased(s, NULL, "au-run", LASH_COMPLETED, out,
                                LASH_AUTH_EXTERNAL);
    is_rc(s, rc, LASH_EAUTHORITY,
          "S8.18 external authority on a running "
          "rerunnable row -> EAUTHORITY");
    ok(tu_snap_same(s, "au-run", &sn), "... nothing appended");
    tu_snap_free(&sn);
    rc = lash_complete_unleased(s, NULL, "au-run", LASH_COMPLETED, out,
                                LASH_AUTH_WORKFLOW);
    is_rc(s, rc, 0, "S8.19 workflow authority completes a running row");
    memset(&got, 0, sizeof got);
    lash_lease_get(s, NULL, "au-run", &got);
    ok(got.token == a.token && got.fence == a.fence,
       "unleased completion touched no lease");
  }

  /* Bad authority values. */
  tu_reg(s, "au-bad", "k", LASH_RERUNNABLE, 0);
  {
    tu_snap sn;
    tu_snap_take(s, "au-bad", &sn);
    rc = lash_complete_unleased(s, NULL, "au-bad", LASH_COMPLETED, out, 0);
    ok(rc == LASH_EINVAL || rc == LASH_EAUTHORITY,
       "authority 0 is refused (got %s)", lash_err_name(rc));
    rc = lash_complete_unleased(s, NULL, "au-bad", LASH_COMPLETED, out, 99);
    ok(rc == LASH_EINVAL || rc == LASH_EAUTHORITY,
       "authority 99 is refused (got %s)", lash_err_name(rc));
    ok(tu_snap_same(s, "au-bad", &sn), "... nothing appended");
    tu_snap_free(&sn);
  }
  rc = lash_complete_unleased(s, NULL, "au-ghost", LASH_COMPLETED, out,
                              LASH_AUTH_WORKFLOW);
  is_rc(s, rc, LASH_ENOENT, "unleased completion of an unknown id");
  msg_has(s, "au-ghost", "... names the id");
  tu_check(s, "S8.5 check after the authority matrix");
}

/* S8.21: the unleased terminal payload carries the authority. */
static void test_payloads(tu_env *e) {
  lash_store *s = e->s;
  unsigned char obuf[32];
  lash_bytes out = tu_mp_str(obuf, sizeof obuf, "same outcome");
  lash_lease a;
  lash_record r1, r2;
  tu_evs ev1 = {0}, ev2 = {0};
  int rc;

  tu_reg(s, "pl-leased", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "pl-unleased", "k", LASH_RERUNNABLE, 0);
  tu_reg(s, "pl-external", "k", LASH_EXTERNAL, 0);
  is_rc(s, claim(s, "pl-leased", "A", "a1", &a), 0, "claim pl-leased");
  is_rc(s, lash_start(s, NULL, &a, NULL), 0, "start pl-leased");
  rc = lash_complete(s, NULL, &a, LASH_COMPLETED, out);
  is_rc(s, rc, 0, "leased completion");
  rc = lash_complete_unleased(s, NULL, "pl-unleased", LASH_COMPLETED, out,
                              LASH_AUTH_WORKFLOW);
  is_rc(s, rc, 0, "unleased completion (workflow)");

  tu_events(s, NULL, "pl-leased", 0, 0, &ev1);
  tu_events(s, NULL, "pl-unleased", 0, 0, &ev2);
  ok(ev1.n > 0 && ev2.n > 0, "both rows have events");
  if (ev1.n > 0 && ev2.n > 0) {
    tu_ev *l = &ev1.v[ev1.n - 1], *u = &ev2.v[ev2.n - 1];
    iss(l->type, "process.completed", "leased terminal type");
    iss(u->type, "process.completed", "unleased terminal type");
    ok(tu_bytes_eq((lash_bytes){l->payload, l->len}, out.data, out.len),
       "S8.21 leased terminal payload is exactly the outcome");
    ok(!tu_bytes_eq((lash_bytes){u->payload, u->len}, l->payload, l->len),
       "S8.21 unleased terminal payload differs from the leased one");
    ok(tu_bytes_has(u->payload, u->len,
                    lash_authority_name(LASH_AUTH_WORKFLOW)),
       "S8.21 unleased payload names the authority '%s'",
       lash_authority_name(LASH_AUTH_WORKFLOW));
    ok(!tu_bytes_has(l->payload, l->len,
                     lash_authority_name(LASH_AUTH_WORKFLOW)),
       "S8.21 leased payload names no authority");
    ok(tu_bytes_has(u->payload, u->len, "same outcome"),
       "S8.21 unleased payload carries the outcome beside it");
  }
  get_rec(s, "pl-leased", &r1);
  get_rec(s, "pl-unleased", &r2);
  ok(tu_bytes_eq(r1.outcome, out.data, out.len), "leased record outcome");
  ok(tu_bytes_eq(r2.outcome, out.data, out.len),
     "unleased record outcome is the outcome (not the payload)");
  lash_record_free(&r1);
  lash_record_free(&r2);
  tu_evs_free(&ev1);
  tu_evs_free(&ev2);

  rc = lash_complete_unleased(s, NULL, "pl-external", LASH_COMPLETED, out,
                              LASH_AUTH_EXTERNAL);
  is_rc(s, rc, 0, "unleased completion (external)");
  tu_events(s, NULL, "pl-external", 0, 0, &ev1);
  ok(ev1.n > 0 && tu_bytes_has(ev1.v[ev1.n - 1].payload, ev1.v[ev1.n - 1].len,
                               lash_authority_name(LASH_AUTH_EXTERNAL)),
     "S8.21 external payload names the authority '%s'",
     lash_authority_name(LASH_AUTH_EXTERNAL));
  tu_evs_free(&ev1);

  /* Abandon payload encoder. */
  {
    unsigned char buf[512];
    int n = lash_abandon_payload(LASH_WRITER_OWNER_DRAIN, "worker-7", buf,
                                 sizeof buf);
    ok(n > 0, "lash_abandon_payload encodes");
    ok(n > 0 && tu_bytes_has(buf, (size_t)n, "owner_drain") &&
           tu_bytes_has(buf, (size_t)n, "worker-7"),
       "abandon payload names the writer and owner");
    n = lash_abandon_payload(LASH_WRITER_SWEEP, NULL, buf, sizeof buf);
    ok(n > 0 && tu_bytes_has(buf, (size_t)n, "sweep"),
       "abandon payload without owner");
    n = lash_abandon_payload(99, NULL, buf, sizeof buf);
    is(n, LASH_EINVAL, "abandon payload with a bad writer -> EINVAL");
    n = lash_abandon_payload(LASH_WRITER_SWEEP, "x", buf, 2);
    is(n, LASH_EINVAL, "abandon payload into a tiny buffer -> EINVAL");
  }
  tu_check(s, "S8.5 check after S8.21");
}

/* lash_start_record: the record it hands back is the one lash_get reads
 * after the start, also inside a transaction, and also for a start that
 * wrote nothing (the same execution again); a refused start leaves it
 * empty. */
static void test_start_record(tu_env *e) {
  lash_store *s = e->s;
  lash_lease a, b;
  lash_record got, want;
  lash_txn *t = NULL;
  uint32_t att = 0;

  is_rc(s, tu_reg(s, "sr-1", "k", LASH_RERUNNABLE, 0), 0, "register sr-1");
  is_rc(s, claim(s, "sr-1", "A", "a1", &a), 0, "A claims sr-1");
  is_rc(s, lash_txn_begin(s, &t), 0, "begin");
  is_rc(s, lash_start_record(s, t, &a, &att, &got), 0, "start_record in a txn");
  memset(&want, 0, sizeof want);
  is_rc(s, lash_get(s, t, "sr-1", &want, NULL), 0, "get in the same txn");
  iss(got.id, "sr-1", "its id");
  iss(got.kind, "k", "its kind");
  is(got.status, LASH_RUNNING, "running");
  is(got.status, want.status, "status as lash_get");
  ok(got.has_attempt && got.attempt.number == 1 && att == 1, "attempt 1");
  is(got.attempt.fence, want.attempt.fence, "fence as lash_get");
  is(got.last_seq, want.last_seq, "last_seq as lash_get");
  is(got.change_seq, want.change_seq, "change_seq as lash_get");
  lash_record_free(&got);
  lash_record_free(&want);
  is_rc(s, lash_txn_commit(t), 0, "commit");
  /* the same execution again: nothing written, the same record */
  is_rc(s, lash_start_record(s, NULL, &a, &att, &got), 0, "start again");
  get_rec(s, "sr-1", &want);
  is(got.change_seq, want.change_seq, "no write, the stored record");
  iss(got.attempt.owner, "A", "attempt owner A");
  lash_record_free(&got);
  lash_record_free(&want);
  /* a stale lease: refused, *out empty */
  e->now += TTL + 1;
  is_rc(s, claim(s, "sr-1", "B", "b1", &b), 0, "B takes sr-1 over");
  is(lash_start_record(s, NULL, &a, &att, &got), LASH_ESUPERSEDED,
     "A's stale start refused");
  ok(got.id == NULL && got.kind == NULL, "and *out is empty");
  lash_record_free(&got);
}

int main(void) {
  tu_env e;
  tu_open(&e, NULL);
  test_start_record(&e);
  test_attempts(&e);
  test_owner_bound(&e);
  test_exhausted(&e);
  test_refused_starts(&e);
  test_authority(&e);
  test_payloads(&e);
  tu_close(&e);
  return done_testing();
}
