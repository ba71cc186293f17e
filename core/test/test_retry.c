/* test_retry.c - retries with backoff, delays and unique keys (issue 13
 * items 1, 2, 7) at the registry, with the store's fake clock: the
 * backoff of a policy; a failure with attempts left writes
 * process.attempt_failed {attempt, error, retry_at}, releases the lease
 * and leaves the row pending, unlisted and on the timer index until
 * retry_at exactly; the next start is attempt + 1; used-up attempts and
 * fatal failures are terminal; lash_retry re-queues a failed row; a
 * delayed row is suspended from its registration until run_at; a unique
 * key held by a live row (or one ended within unique_for_ms) gives that
 * row; bad input writes nothing; lash_check stays clean, a reopen keeps it
 * all. */
#include "testutil.h" /* first: its _GNU_SOURCE (nftw) */

#include "registry/registry-int.h" /* the side table (lash__kv_get) */

#define TTL 30000

static lash_bytes err_payload(void) {
  lash_bytes b;
  b.data = "\x81\xa7message\xa4"
           "boom"; /* {message = "boom"} */
  b.len = 14;
  return b;
}

typedef struct seen {
  const char *id;
  int found;
} seen;

static int seen_cb(void *ud, const lash_record *r) {
  seen *w = ud;
  if (strcmp(r->id, w->id) == 0) w->found = 1;
  return 0;
}

static int listed(lash_store *s, const char *kind, const char *id) {
  lash_worklist_cursor cur;
  seen w = {id, 0};
  int n;
  memset(&cur, 0, sizeof cur);
  do
    n = lash_worklist_page(s, NULL, kind, &cur, 64, seen_cb, &w);
  while (n > 0 && !cur.done);
  return w.found;
}

static int get(lash_store *s, const char *id, lash_record *r) {
  memset(r, 0, sizeof *r);
  return lash_get(s, NULL, id, r, NULL);
}

static int claim_start(lash_store *s, const char *id, const char *owner,
                       lash_lease *ls, uint32_t *attempt) {
  int rc;
  memset(ls, 0, sizeof *ls);
  if ((rc = lash_lease_claim(s, NULL, id, owner, "inc", TTL, ls)) < 0)
    return rc;
  return lash_start(s, NULL, ls, attempt);
}

static size_t fire(lash_store *s, int64_t now) {
  size_t n = 0;
  lash_timers_fire(s, NULL, now, 0, &n);
  return n;
}

static void test_backoff(void) {
  lash_retry_policy p;
  char err[256];
  memset(&p, 0, sizeof p);
  p.max_attempts = 5;
  p.initial_ms = 100;
  p.factor = 3;
  p.max_ms = 1000;
  is(lash_retry_backoff(&p, 1, 0), 100, "first backoff: initial_ms");
  is(lash_retry_backoff(&p, 2, 0), 300, "second: x factor");
  is(lash_retry_backoff(&p, 3, 0), 900, "third: x factor again");
  is(lash_retry_backoff(&p, 4, 0), 1000, "fourth: capped at max_ms");
  p.jitter = 0.5;
  is(lash_retry_backoff(&p, 1, 0.5), 75, "jitter takes up to its share off");
  p.factor = 0;
  p.jitter = 0;
  is(lash_retry_backoff(&p, 2, 0), 200, "factor 0: the default 2");
  is(lash_retry_check(&p, err, sizeof err), 0, "a good policy passes");
  p.factor = 0.5;
  is(lash_retry_check(&p, err, sizeof err), LASH_EINVAL, "factor < 1");
  ok(tu_has(err, "retry.factor"), "... named: %s", err);
  p.factor = 2;
  p.jitter = 1.5;
  is(lash_retry_check(&p, err, sizeof err), LASH_EINVAL, "jitter > 1");
  ok(tu_has(err, "retry.jitter"), "... named: %s", err);
  p.jitter = 0;
  p.initial_ms = -1;
  is(lash_retry_check(&p, err, sizeof err), LASH_EINVAL, "initial_ms < 0");
  ok(tu_has(err, "retry.initial_ms"), "... named: %s", err);
}

static void test_retries(tu_env *e) {
  lash_store *s = e->s;
  lash_def d = tu_def("r-1", "k", LASH_RERUNNABLE, 1);
  lash_record r;
  lash_lease ls, other;
  uint32_t attempt = 0;
  int64_t at = 0, t0;
  tu_evs ev = {0};
  uint64_t v = 0;

  d.retry.max_attempts = 3;
  d.retry.initial_ms = 100;
  d.retry.factor = 2;
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0, "register with a policy");
  is_rc(s, claim_start(s, "r-1", "A", &ls, &attempt), 0, "attempt 1 starts");
  t0 = e->now;
  is_rc(s, lash_fail_attempt(s, NULL, &ls, err_payload(), 0, NULL, &at), 0,
        "attempt 1 fails");
  is(at, t0 + 100, "retry_at = now + initial_ms");
  is_rc(s, get(s, "r-1", &r), 0, "read");
  is(r.status, LASH_PENDING, "the row is pending");
  ok(r.suspended && r.retry_due, "... suspended for its next attempt");
  is(r.wake_at, t0 + 100, "... on the timer index at retry_at");
  isu(r.failures, 1, "... one failure");
  is(r.retry.max_attempts, 3, "the policy is on the row");
  lash_record_free(&r);
  ok(!listed(s, "k", "r-1"), "not listed while it waits");
  tu_events(s, NULL, "r-1", 0, 0, &ev);
  iss(ev.v[ev.n - 1].type, "process.attempt_failed", "the event");
  ok(tu_mp_map_uint(ev.v[ev.n - 1].payload, ev.v[ev.n - 1].len, "attempt",
                    &v) &&
         v == 1,
     "... attempt 1");
  ok(tu_mp_map_uint(ev.v[ev.n - 1].payload, ev.v[ev.n - 1].len, "retry_at",
                    &v) &&
         (int64_t)v == t0 + 100,
     "... retry_at");
  ok(tu_bytes_has(ev.v[ev.n - 1].payload, ev.v[ev.n - 1].len, "boom"),
     "... the error");
  tu_evs_free(&ev);
  /* the lease is free: another owner claims at once, but cannot start */
  memset(&other, 0, sizeof other);
  is_rc(s, lash_lease_claim(s, NULL, "r-1", "B", "inc", TTL, &other), 0,
        "the lease was released");
  is(lash_start(s, NULL, &other, NULL), LASH_EBUSY, "no start before its time");
  lash_lease_release(s, NULL, &other);
  tu_clock_add(&e->now, 99);
  isu(fire(s, e->now), 0, "nothing fires 1 ms early");
  tu_clock_add(&e->now, 1);
  isu(fire(s, e->now), 1, "it fires at retry_at");
  ok(listed(s, "k", "r-1"), "listed again");
  is_rc(s, claim_start(s, "r-1", "B", &ls, &attempt), 0, "B starts it");
  is(attempt, 2, "as attempt 2 (max_attempts 1 counts crash re-runs only)");
  t0 = e->now;
  is_rc(s, lash_fail_attempt(s, NULL, &ls, err_payload(), 0, NULL, &at), 0,
        "attempt 2 fails");
  is(at, t0 + 200, "retry_at = now + initial_ms * factor");
  tu_clock_add(&e->now, 200);
  isu(fire(s, e->now), 1, "fires");
  is_rc(s, claim_start(s, "r-1", "A", &ls, &attempt), 0, "attempt 3");
  is(attempt, 3, "attempt 3");
  is_rc(s, lash_fail_attempt(s, NULL, &ls, err_payload(), 0, NULL, &at), 0,
        "attempt 3 fails");
  is(at, 0, "no retry_at: attempts used up");
  is(tu_status(s, "r-1"), LASH_FAILED, "the row failed");
  ok(!listed(s, "k", "r-1"), "not listed");
  /* lash_retry: one more attempt */
  is_rc(s, lash_retry(s, NULL, "r-1", NULL), 0, "lash_retry");
  is(tu_status(s, "r-1"), LASH_PENDING, "pending again");
  ok(listed(s, "k", "r-1"), "listed again");
  is_rc(s, claim_start(s, "r-1", "A", &ls, &attempt), 0, "started");
  is(attempt, 4, "as attempt 4");
  is_rc(s, lash_fail_attempt(s, NULL, &ls, err_payload(), 0, NULL, &at), 0,
        "fails again");
  is(tu_status(s, "r-1"), LASH_FAILED, "a manual retry grants one attempt");
  is_rc(s, lash_retry(s, NULL, "r-1", NULL), 0, "lash_retry again");
  is_rc(s, claim_start(s, "r-1", "A", &ls, &attempt), 0, "started");
  is_rc(s, lash_complete(s, NULL, &ls, LASH_COMPLETED, err_payload()), 0,
        "completes");
  is(lash_retry(s, NULL, "r-1", NULL), LASH_EINVAL, "a completed row: refused");
  ok(tu_has(lash_errmsg(s), "completed"), "... naming its status: %s",
     lash_errmsg(s));
  tu_check(s, "check clean after retries");

  /* fatal */
  d = tu_def("r-2", "k", LASH_RERUNNABLE, 0);
  d.retry.max_attempts = 5;
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0, "register r-2");
  is_rc(s, claim_start(s, "r-2", "A", &ls, NULL), 0, "start r-2");
  is_rc(s, lash_fail_attempt(s, NULL, &ls, err_payload(), 1, NULL, &at), 0,
        "a fatal failure");
  is(tu_status(s, "r-2"), LASH_FAILED, "fails at once");
  is(lash_retry(s, NULL, "r-2-none", NULL), LASH_ENOENT, "unknown id");
  /* no policy: no retry */
  is_rc(s, tu_reg(s, "r-3", "k", LASH_RERUNNABLE, 0), 0, "register r-3");
  is_rc(s, claim_start(s, "r-3", "A", &ls, NULL), 0, "start r-3");
  is_rc(s, lash_fail_attempt(s, NULL, &ls, err_payload(), 0, NULL, &at), 0,
        "fails");
  is(tu_status(s, "r-3"), LASH_FAILED, "no policy: fails at once");
  /* a cancel request while it waits for its next attempt ends it now */
  d = tu_def("r-5", "k", LASH_RERUNNABLE, 0);
  d.retry.max_attempts = 5;
  d.retry.initial_ms = 60000;
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0, "register r-5");
  is_rc(s, claim_start(s, "r-5", "A", &ls, NULL), 0, "start r-5");
  is_rc(s, lash_fail_attempt(s, NULL, &ls, err_payload(), 0, NULL, &at), 0,
        "r-5 fails, waits a minute");
  is_rc(s, lash_request_cancel(s, NULL, "r-5", "stop", NULL), 0, "cancel");
  is(tu_status(s, "r-5"), LASH_CANCELLED, "cancelled at once");
  is_rc(s, tu_reg(s, "r-4", "k", LASH_RERUNNABLE, 0), 0, "register r-4");
  is(lash_retry(s, NULL, "r-4", NULL), LASH_EINVAL, "a pending row: refused");
  ok(tu_has(lash_errmsg(s), "pending"), "... naming it: %s", lash_errmsg(s));
}

static void test_delays(tu_env *e) {
  lash_store *s = e->s;
  lash_def d = tu_def("d-1", "dk", LASH_RERUNNABLE, 0);
  lash_record r;
  lash_lease ls;
  int64_t next = 0;
  uint64_t cs;
  uint32_t attempt = 0;

  d.run_at = e->now + 500;
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0, "register delayed");
  is_rc(s, get(s, "d-1", &r), 0, "read");
  is(r.status, LASH_PENDING, "pending");
  ok(r.suspended, "suspended from its registration");
  is(r.run_at, e->now + 500, "run_at stored");
  is(r.wake_at, e->now + 500, "on the timer index at run_at");
  lash_record_free(&r);
  ok(!listed(s, "dk", "d-1"), "not listed");
  is_rc(s, lash_timers_next(s, NULL, &next), 0, "timers_next");
  ok(next > 0 && next <= e->now + 500, "the earliest timer is due by run_at");
  is(claim_start(s, "d-1", "A", &ls, NULL), LASH_EBUSY, "no start before");
  lash_lease_release(s, NULL, &ls);
  tu_clock_add(&e->now, 499);
  isu(fire(s, e->now), 0, "not fired 1 ms early");
  tu_clock_add(&e->now, 1);
  isu(fire(s, e->now), 1, "fired at run_at");
  ok(listed(s, "dk", "d-1"), "listed");
  is_rc(s, claim_start(s, "d-1", "A", &ls, &attempt), 0, "started");
  is(attempt, 1, "attempt 1");
  /* a time in the past: no delay */
  d = tu_def("d-2", "dk", LASH_RERUNNABLE, 0);
  d.run_at = e->now - 1;
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0, "register past run_at");
  is_rc(s, get(s, "d-2", &r), 0, "read");
  ok(!r.suspended && r.run_at == 0, "not delayed");
  lash_record_free(&r);
  /* bad input writes nothing */
  cs = lash_change_seq(s);
  d = tu_def("d-3", "dk", LASH_RERUNNABLE, 0);
  d.run_at = -5;
  is(lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL, "negative run_at");
  ok(tu_has(lash_errmsg(s), "run_at"), "... named: %s", lash_errmsg(s));
  d.run_at = 0;
  d.retry.max_attempts = 2;
  d.retry.factor = 0.25;
  is(lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL, "a bad policy");
  ok(tu_has(lash_errmsg(s), "retry.factor"), "... named: %s", lash_errmsg(s));
  is(tu_status(s, "d-3"), LASH_ENOENT, "nothing registered");
  isu(lash_change_seq(s), cs, "nothing written");
  tu_check(s, "check clean after delays");
}

static void test_unique(tu_env *e) {
  lash_store *s = e->s;
  lash_def d = tu_def("u-1", "uk", LASH_RERUNNABLE, 0);
  lash_record out;
  lash_lease ls;
  int created = 0;
  uint64_t cs;

  d.unique_key = "cust-1";
  is_rc(s, lash_register(s, NULL, &d, &created, NULL), 0, "u-1 takes the key");
  ok(created, "created");
  d.id = "u-2";
  cs = lash_change_seq(s);
  memset(&out, 0, sizeof out);
  is(lash_register(s, NULL, &d, &created, &out), LASH_APPLIED,
     "u-2 with the same key");
  ok(!created, "... not created");
  iss(out.id, "u-1", "... gives u-1");
  lash_record_free(&out);
  is(tu_status(s, "u-2"), LASH_ENOENT, "u-2 does not exist");
  isu(lash_change_seq(s), cs, "nothing written");
  is_rc(s, claim_start(s, "u-1", "A", &ls, NULL), 0, "u-1 runs");
  is_rc(s, lash_complete(s, NULL, &ls, LASH_COMPLETED, err_payload()), 0,
        "u-1 ends");
  is_rc(s, lash_register(s, NULL, &d, &created, NULL), 0,
        "after its end u-2 takes the key");
  ok(created, "created");
  /* a window */
  d = tu_def("w-1", "uk", LASH_RERUNNABLE, 0);
  d.unique_key = "cust-2";
  d.unique_for_ms = 1000;
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0, "w-1");
  is_rc(s, claim_start(s, "w-1", "A", &ls, NULL), 0, "w-1 runs");
  is_rc(s, lash_complete(s, NULL, &ls, LASH_COMPLETED, err_payload()), 0,
        "w-1 ends");
  tu_clock_add(&e->now, 999);
  d.id = "w-2";
  memset(&out, 0, sizeof out);
  is(lash_register(s, NULL, &d, NULL, &out), LASH_APPLIED,
     "999 ms after its end: still w-1's");
  iss(out.id, "w-1", "... gives w-1");
  ok(out.status == LASH_COMPLETED, "... with its outcome");
  lash_record_free(&out);
  tu_clock_add(&e->now, 1);
  is_rc(s, lash_register(s, NULL, &d, &created, NULL), 0,
        "1000 ms after: a new row");
  ok(created, "w-2 created");
  d = tu_def("w-3", "uk", LASH_RERUNNABLE, 0);
  d.unique_key = "";
  is(lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL, "empty key");
  ok(tu_has(lash_errmsg(s), "unique_key"), "... named: %s", lash_errmsg(s));
  tu_check(s, "check clean after unique keys");
}

static void test_reopen(tu_env *e) {
  lash_record r;
  is_rc(e->s, tu_reopen(e), 0, "reopen");
  is_rc(e->s, get(e->s, "r-1", &r), 0, "r-1 read");
  is(r.retry.max_attempts, 3, "its policy survives");
  is(r.retry.initial_ms, 100, "... initial_ms");
  ok(r.retry.factor == 2.0, "... factor");
  ok(r.failures >= 3, "... its failures");
  lash_record_free(&r);
  is_rc(e->s, get(e->s, "w-2", &r), 0, "w-2 read");
  iss(r.unique_key, "cust-2", "its unique key survives");
  is(r.unique_for_ms, 1000, "... and its window");
  lash_record_free(&r);
  tu_check(e->s, "check clean after reopen");
}

/* A pruned holder's entry goes with it; a live holder's stays. */
static void test_unique_prune(tu_env *e) {
  lash_store *s = e->s;
  lash_def d = tu_def("p-1", "uk", LASH_RERUNNABLE, 0);
  lash_prune_report rep;
  lash_lease ls;
  lash_bytes v;
  d.unique_key = "cust-9";
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0, "p-1 takes cust-9");
  is(lash__kv_get(s, NULL, LASH_KV_UNIQUE, "cust-9", 6, &v), 0,
     "cust-9 has an entry");
  is_rc(s, claim_start(s, "p-1", "A", &ls, NULL), 0, "p-1 runs");
  is_rc(s, lash_complete(s, NULL, &ls, LASH_COMPLETED, err_payload()), 0,
        "p-1 ends");
  tu_clock_add(&e->now, 10);
  memset(&rep, 0, sizeof rep);
  is_rc(s, lash_prune(s, NULL, lash_store_now(s), 0, &rep), 0, "prune");
  is(tu_status(s, "p-1"), LASH_EPRUNED, "p-1 pruned");
  is(lash__kv_get(s, NULL, LASH_KV_UNIQUE, "cust-9", 6, &v), LASH_ENOENT,
     "... and the entry of its key with it");
  is(tu_status(s, "u-1"), LASH_EPRUNED, "u-1 (ended) pruned");
  is(lash__kv_get(s, NULL, LASH_KV_UNIQUE, "cust-1", 6, &v), 0,
     "... but cust-1 is u-2's now (taken over): its entry stays");
  is(tu_status(s, "w-2"), LASH_PENDING, "w-2 is live (not pruned)");
  is(lash__kv_get(s, NULL, LASH_KV_UNIQUE, "cust-2", 6, &v), 0,
     "... and keeps its key's entry");
  tu_check(s, "check clean after pruning unique keys");
}

int main(void) {
  tu_env e;
  test_backoff();
  tu_open(&e, NULL);
  test_retries(&e);
  test_delays(&e);
  test_unique(&e);
  test_reopen(&e);
  test_unique_prune(&e);
  tu_close(&e);
  return done_testing();
}
