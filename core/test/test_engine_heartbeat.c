/* test_engine_heartbeat.c - the heartbeat thread (engine/renew.c): leases
 * are renewed while the loop does not run, a lease that lapsed anyway is
 * dropped and its row re-admitted here, the watchdog reports a body that
 * does not yield (from its own thread) and a run past its time budget
 * (whose lease then lapses), and the emergency stop releases leases and
 * abandons owner_bound rows of a process whose loop is stuck (a real child
 * process). Real clock throughout: the thread reads it too. Run under TSan
 * by scripts/test (build-tsan/). */
#include "engine_tu.h"

#include <pthread.h>
#include <sys/wait.h>

static uint64_t ms_now(void) {
  return uv_hrtime() / 1000000;
}

/* Short leases on the real clock. */
static void hb_opts(lash_engine_opts *o, int64_t ttl, int64_t renew) {
  et_opts(o);
  o->lease_ttl_ms = ttl;
  o->renew_ms = renew;
}

/* Runs loop turns until @p fn(ud) or @p ms pass. */
static int turns_until(lash_engine *e, int (*fn)(void *), void *ud,
                       uint64_t ms) {
  uint64_t end = ms_now() + ms;
  while (!fn(ud) && ms_now() < end) {
    lash_engine_run(e, LASH_RUN_NOWAIT);
    usleep(1000);
  }
  return fn(ud);
}

static int two_starts(void *ud) {
  return ((tr_runner *)ud)->starts >= 2;
}

/* An engine (lease 300 ms, renewed every 100 ms) running row @p id of
 * kind "job" with a body the test holds. */
static lash_engine *hb_hold_one(et_env *t, tr_runner *tr, const char *id) {
  lash_engine_opts o;
  lash_engine *e;
  hb_opts(&o, 300, 100);
  e = et_open(t, &o);
  tr_install(e, tr, TR_HOLD, 0);
  lash_engine_define(e, "job");
  is(tu_reg(t->s, id, "job", LASH_RERUNNABLE, 0), 0, "register the row");
  et_turns(e, 5);
  is(tr->starts, 1, "running");
  return e;
}

static void test_stalled_loop_keeps_lease(void) {
  et_env t;
  lash_engine *e;
  tr_runner tr;
  lash_lease ls, thief;
  int64_t exp0;

  e = hb_hold_one(&t, &tr, "hb-1");
  is(lash_lease_get(t.s, NULL, "hb-1", &ls), 0, "lease row");
  exp0 = ls.expires_at;
  /* The loop stalls for more than three leases' time. */
  usleep(1000 * 1000);
  is(lash_lease_get(t.s, NULL, "hb-1", &ls), 0, "lease row after the stall");
  ok(ls.expires_at > exp0 + 500, "renewed while the loop did not run");
  ok(ls.expires_at > lash_store_now(t.s), "still live");
  is(lash_lease_claim(t.s, NULL, "hb-1", "thief", "t1", 60000, &thief),
     LASH_EBUSY, "a peer cannot take it");
  et_turns(e, 5);
  is(tr.drops, 0, "not dropped");
  et_close(&t, 1);
}

static void test_lapsed_is_readmitted(void) {
  et_env t;
  lash_engine *e;
  tr_runner tr;
  lash_record rec;

  e = hb_hold_one(&t, &tr, "hb-2");
  /* The store stays busy (another thread holds it) past the lease. */
  is(lash_store_lock(t.s, -1), 0, "the test thread holds the store");
  usleep(700 * 1000);
  lash_store_unlock(t.s);
  ok(turns_until(e, two_starts, &tr, 5000),
     "the lapsed row was dropped and admitted here again");
  is(tr.drops, 1, "one drop");
  is(tr.last_drop_rc, LASH_ESUPERSEDED, "with LASH_ESUPERSEDED");
  memset(&rec, 0, sizeof rec);
  is(lash_get(t.s, NULL, "hb-2", &rec, NULL), 0, "get hb-2");
  is(rec.status, LASH_RUNNING, "running again");
  is(rec.attempt.number, 2, "as attempt 2");
  lash_record_free(&rec);
  et_close(&t, 1);
}

/* A runner whose body "runs" in the loop: start marks the run busy and
 * returns, the test then leaves it busy (as a spinning body would). */
typedef struct st_runner {
  lash_run *run;
  int stalls;  /* atomic */
  int why;     /* atomic */
  int foreign; /* atomic: the call came from another thread */
  pthread_t loop;
} st_runner;

static int st_start(void *ud, lash_run *run) {
  st_runner *r = ud;
  r->run = run;
  return 0;
}

static void st_stall(void *ud, lash_run *run, int why, int64_t ms) {
  st_runner *r = ud;
  (void)run;
  (void)ms;
  __atomic_store_n(&r->why, why, __ATOMIC_RELAXED);
  __atomic_store_n(&r->foreign, !pthread_equal(pthread_self(), r->loop),
                   __ATOMIC_RELAXED);
  __atomic_add_fetch(&r->stalls, 1, __ATOMIC_RELEASE);
}

static void st_install(lash_engine *e, st_runner *r) {
  lash_runner rn;
  memset(r, 0, sizeof *r);
  r->loop = pthread_self();
  memset(&rn, 0, sizeof rn);
  rn.ud = r;
  rn.start = st_start;
  rn.stall = st_stall;
  lash_engine_set_runner(e, &rn);
}

static int stalled(void *ud) {
  return __atomic_load_n(&((st_runner *)ud)->stalls, __ATOMIC_ACQUIRE) > 0;
}

static void test_stall_reported(void) {
  et_env t;
  lash_engine_opts o;
  lash_engine *e;
  st_runner sr;
  uint64_t end;

  hb_opts(&o, 3000, 1000);
  o.stall_ms = 200;
  e = et_open(&t, &o);
  st_install(e, &sr);
  lash_engine_define(e, "job");
  is(tu_reg(t.s, "hb-3", "job", LASH_RERUNNABLE, 0), 0, "register hb-3");
  et_turns(e, 5);
  ok(sr.run != NULL, "started");
  lash_run_busy(sr.run, 1);
  end = ms_now() + 100;
  while (ms_now() < end)
    usleep(1000);
  is(__atomic_load_n(&sr.stalls, __ATOMIC_ACQUIRE), 0,
     "no stall before stall_ms");
  end = ms_now() + 3000;
  while (!stalled(&sr) && ms_now() < end)
    usleep(1000); /* the loop is "inside the body": no turns */
  ok(stalled(&sr), "the watchdog reported the stall");
  is(__atomic_load_n(&sr.why, __ATOMIC_RELAXED), LASH_STALL_LOOP,
     "as LASH_STALL_LOOP");
  ok(__atomic_load_n(&sr.foreign, __ATOMIC_RELAXED),
     "from the heartbeat thread");
  usleep(400 * 1000);
  is(__atomic_load_n(&sr.stalls, __ATOMIC_ACQUIRE), 1,
     "once per stretch without a yield");
  lash_run_busy(sr.run, 0);
  lash_run_busy(sr.run, 1);
  end = ms_now() + 3000;
  while (__atomic_load_n(&sr.stalls, __ATOMIC_ACQUIRE) < 2 && ms_now() < end)
    usleep(1000);
  is(__atomic_load_n(&sr.stalls, __ATOMIC_ACQUIRE), 2,
     "a new stretch is reported again");
  lash_run_busy(sr.run, 0);
  et_close(&t, 1);
}

static void test_budget(void) {
  et_env t;
  lash_engine_opts o;
  lash_engine *e;
  st_runner sr;
  lash_lease thief;
  uint64_t end;
  int rc = LASH_EBUSY;

  hb_opts(&o, 300, 100);
  e = et_open(&t, &o);
  st_install(e, &sr);
  lash_engine_define(e, "job");
  is(lash_engine_set_timeout(e, "job", 200), 0, "a 200 ms budget");
  is(lash_engine_set_timeout(e, "nope", 200), LASH_EINVAL,
     "only for a declared kind");
  is(lash_engine_set_timeout(e, "job", -1), LASH_EINVAL, "not negative");
  is(tu_reg(t.s, "hb-4", "job", LASH_RERUNNABLE, 0), 0, "register hb-4");
  et_turns(e, 5);
  ok(sr.run != NULL, "started");
  ok(turns_until(e, stalled, &sr, 3000), "the budget ran out");
  is(__atomic_load_n(&sr.why, __ATOMIC_RELAXED), LASH_STALL_BUDGET,
     "as LASH_STALL_BUDGET");
  ok(!__atomic_load_n(&sr.foreign, __ATOMIC_RELAXED),
     "on the loop (the body was not running)");
  /* Past its budget the lease is renewed no more. */
  end = ms_now() + 3000;
  while (rc == LASH_EBUSY && ms_now() < end) {
    rc = lash_lease_claim(t.s, NULL, "hb-4", "thief", "t1", 60000, &thief);
    if (rc == LASH_EBUSY) usleep(20 * 1000);
  }
  is(rc, 0, "a peer takes the row once the lease lapsed");
  et_close(&t, 1);
}

/* The child: a body that never returns to the loop, after a stop signal
 * armed the emergency stop (grace 100 ms). */
static int em_start(void *ud, lash_run *run) {
  lash_engine *e = ud;
  const lash_record *rec = lash_run_record(run);
  if (strcmp(rec->id, "em-rr") != 0) return 0;
  lash_run_busy(run, 1);
  lash_engine_emergency(e, 100);
  for (;;)
    pause();
  return 0;
}

static void emergency_child(const char *dir) {
  lash_engine_opts o;
  lash_engine *e;
  lash_runner rn;
  char err[256];
  hb_opts(&o, 30000, 10000);
  o.owner = "em-owner";
  o.stall_ms = -1;
  if (lash_engine_open(dir, &o, &e, err, sizeof err) != 0) _exit(3);
  memset(&rn, 0, sizeof rn);
  rn.ud = e;
  rn.start = em_start;
  lash_engine_set_runner(e, &rn);
  lash_engine_define(e, "job");
  lash_engine_run(e, LASH_RUN_UNTIL_IDLE);
  _exit(4); /* not reached */
}

static void test_emergency(void) {
  char root[64], dir[128], err[256];
  lash_store *s;
  lash_lease ls;
  lash_record rec;
  pid_t pid;
  int st = 0;
  uint64_t end;

  if (tu_mkdtemp(root, sizeof root) != 0) {
    printf("Bail out! cannot create a temp dir\n");
    exit(1);
  }
  snprintf(dir, sizeof dir, "%s/store", root);
  if (lash_store_open(dir, NULL, &s, err, sizeof err) != 0) {
    printf("Bail out! %s\n", err);
    exit(1);
  }
  is(tu_reg(s, "em-ob", "job", LASH_OWNER_BOUND, 0), 0, "register em-ob");
  is(tu_reg(s, "em-rr", "job", LASH_RERUNNABLE, 0), 0, "register em-rr");
  lash_store_close(s);
  fflush(stdout);
  if ((pid = fork()) == 0) emergency_child(dir);
  end = ms_now() + 20000;
  while (waitpid(pid, &st, WNOHANG) == 0 && ms_now() < end)
    usleep(10 * 1000);
  if (ms_now() >= end) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
  }
  ok(WIFEXITED(st) && WEXITSTATUS(st) == 1,
     "the stuck process ended itself with status 1");
  if (lash_store_open(dir, NULL, &s, err, sizeof err) != 0) {
    printf("Bail out! %s\n", err);
    exit(1);
  }
  is(lash_lease_get(s, NULL, "em-rr", &ls), 0, "lease row of em-rr");
  is(ls.token, 0, "the rerunnable row's lease was released");
  memset(&rec, 0, sizeof rec);
  is(lash_get(s, NULL, "em-ob", &rec, NULL), 0, "get em-ob");
  is(rec.status, LASH_ABANDONED, "the owner_bound row was abandoned");
  lash_record_free(&rec);
  lash_store_close(s);
  tu_rmrf(root);
}

int main(void) {
  test_stalled_loop_keeps_lease();
  test_lapsed_is_readmitted();
  test_stall_reported();
  test_budget();
  test_emergency();
  return done_testing();
}
