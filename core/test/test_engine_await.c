/* test_engine_await.c - the awaiter: immediate results (S8.52, S8.53,
 * S8.57, S8.49), parked waits resolved by the hub (no backoff read) or by
 * the backoff/feed when another OS process writes (S8.56), timeouts,
 * sleeps, cancellation of a parked run's wait, silent wait_free. */
#include "engine_tu.h"

#include <sys/wait.h>

typedef struct aw {
  int calls;
  int rc;
  int has_rec, has_tomb, has_ev;
  int status;
  uint64_t ev_seq;
  char ev_type[64];
  int tomb_status;
} aw;

static void aw_cb(void *ud, lash_wait *w, int rc) {
  aw *a = ud;
  const lash_record *rec = lash_wait_record(w);
  const lash_tombstone *tb = lash_wait_tombstone(w);
  const lash_event *ev = lash_wait_event(w);
  a->calls++;
  a->rc = rc;
  a->has_rec = rec != NULL;
  a->has_tomb = tb != NULL;
  a->has_ev = ev != NULL;
  if (rec) a->status = rec->status;
  if (tb) a->tomb_status = tb->status;
  if (ev) {
    a->ev_seq = ev->seq;
    snprintf(a->ev_type, sizeof a->ev_type, "%s", ev->type);
  }
  lash_wait_free(w);
}

static void test_immediate(void) {
  et_env t;
  lash_engine *e = et_open(&t, NULL);
  lash_wait *w = NULL;
  unsigned char buf[32];
  uint64_t seq = 0;
  aw a = {0};
  int rc;

  is(tu_reg(t.s, "t-1", "k", LASH_RERUNNABLE, 0), 0, "register t-1");
  is(et_complete_as(t.s, "t-1", "peer", LASH_COMPLETED,
                    tu_mp_str(buf, sizeof buf, "fine")),
     0, "complete t-1");
  rc = lash_await_terminal(e, NULL, "t-1", -1, aw_cb, &a, &w);
  is(rc, 1, "S8.52 await on a terminal row returns 1 at once");
  ok(w != NULL && lash_wait_record(w) != NULL, "resolved wait has the record");
  if (w != NULL && lash_wait_record(w) != NULL) {
    is(lash_wait_record(w)->status, LASH_COMPLETED, "status completed");
    ok(et_outcome_is(lash_wait_record(w), "fine"), "outcome bytes");
  }
  lash_wait_free(w);
  lash_engine_run(e, LASH_RUN_NOWAIT);
  is(a.calls, 0, "cb never called for an immediate result");

  w = (lash_wait *)1;
  rc = lash_await_terminal(e, NULL, "nobody", -1, aw_cb, &a, &w);
  is(rc, LASH_ENOENT, "S8.53 unknown id -> LASH_ENOENT");
  ok(w == NULL, "no wait on error");
  rc = lash_await_event(e, NULL, "nobody", "progress", 0, -1, aw_cb, &a, &w);
  is(rc, LASH_ENOENT, "event wait on an unknown id -> LASH_ENOENT");
  lash_engine_run(e, LASH_RUN_NOWAIT);
  is(a.calls, 0, "cb never called on error");

  is(tu_reg(t.s, "ev-1", "k", LASH_RERUNNABLE, 0), 0, "register ev-1");
  lash_append(t.s, NULL, "ev-1", "other", tu_mp_uint(buf, 1), NULL);
  lash_append(t.s, NULL, "ev-1", "progress", tu_mp_uint(buf, 2), &seq);
  rc = lash_await_event(e, NULL, "ev-1", "progress", 0, -1, aw_cb, &a, &w);
  is(rc, 1, "S8.57 historical match returns at once");
  ok(w != NULL && lash_wait_event(w) != NULL &&
         lash_wait_event(w)->seq == seq &&
         strcmp(lash_wait_event(w)->type, "progress") == 0 &&
         strcmp(lash_wait_event(w)->process_id, "ev-1") == 0,
     "the event is the matching one");
  lash_wait_free(w);
  rc = lash_await_event(e, NULL, "ev-1", "progress", seq, 0, aw_cb, &a, &w);
  is(rc, 0, "no match after its seq: parks");
  lash_engine_run_until(e, &a.calls);
  is(a.rc, LASH_ETIMEDOUT, "timeout 0 -> LASH_ETIMEDOUT");

  /* pruned */
  t.now = TU_T0;
  is(lash_prune(t.s, NULL, INT64_MAX, 0, NULL), 0, "prune terminal rows");
  rc = lash_await_terminal(e, NULL, "t-1", -1, aw_cb, &a, &w);
  is(rc, 1, "S8.49 pruned id: resolved at once");
  ok(w != NULL && lash_wait_record(w) == NULL &&
         lash_wait_tombstone(w) != NULL &&
         lash_wait_tombstone(w)->status == LASH_COMPLETED,
     "with the tombstone, no record");
  lash_wait_free(w);
  rc = lash_await_event(e, NULL, "t-1", "progress", 0, -1, aw_cb, &a, &w);
  is(rc, LASH_EPRUNED, "event wait on a pruned id -> LASH_EPRUNED");
  et_close(&t, 1);
}

typedef struct sig {
  const char *id;
  const char *type;
} sig;

static int sig_fn(lash_store *s, lash_txn *txn, void *ud) {
  sig *g = ud;
  unsigned char b[8];
  return lash_append(s, txn, g->id, g->type, tu_mp_uint(b, 7), NULL);
}

static void test_parked(void) {
  et_env t;
  lash_engine *e = et_open(&t, NULL);
  lash_engine_stats st;
  lash_wait *w = NULL, *w2 = NULL, *w3 = NULL;
  aw a = {0}, b = {0}, c = {0};
  sig g = {"p-1", "signal.go"};
  uint64_t t0;

  is(tu_reg(t.s, "p-1", "k", LASH_RERUNNABLE, 0), 0, "register p-1");
  is(lash_await_event(e, NULL, "p-1", "signal.go", 0, -1, aw_cb, &a, &w), 0,
     "event wait parks");
  is(lash_await_terminal(e, NULL, "p-1", 30, aw_cb, &b, &w2), 0,
     "terminal wait with a 30 ms timeout parks");
  is(lash_await_terminal(e, NULL, "p-1", -1, aw_cb, &c, &w3), 0,
     "a third wait parks");
  lash_wait_free(w3); /* cancelled silently */
  lash_engine_write(e, sig_fn, &g, NULL);
  lash_engine_run(e, LASH_RUN_NOWAIT);
  is(a.calls, 1, "a queued write woke the event wait in the same turn");
  is(a.rc, 0, "resolved");
  iss(a.ev_type, "signal.go", "with the signal event");
  lash_engine_get_stats(e, &st);
  is(st.backoff_reads, 0, "in-process: no backoff read");
  t0 = uv_hrtime();
  lash_engine_run_until(e, &b.calls);
  is(b.rc, LASH_ETIMEDOUT, "the terminal wait timed out");
  ok((uv_hrtime() - t0) / 1000000 >= 20, "not before its time");
  is(c.calls, 0, "a freed wait is never called");

  /* sleep */
  memset(&a, 0, sizeof a);
  t0 = uv_hrtime();
  is(lash_await_sleep(e, NULL, 20, aw_cb, &a, &w), 0, "sleep 20 ms parks");
  ok(!lash_engine_idle(e), "a pending sleep keeps the engine busy");
  lash_engine_run_until(e, &a.calls);
  is(a.rc, 0, "sleep resolves with 0");
  ok((uv_hrtime() - t0) / 1000000 >= 15, "after about 20 ms");
  ok(lash_engine_idle(e), "idle again");
  is(lash_await_sleep(e, NULL, -1, aw_cb, &a, &w), LASH_EINVAL,
     "negative sleep refused");

  /* a parked wait without timeout does not keep UNTIL_IDLE busy */
  memset(&a, 0, sizeof a);
  is(lash_await_terminal(e, NULL, "p-1", -1, aw_cb, &a, &w), 0, "park");
  ok(lash_engine_idle(e), "a wait without timeout leaves the engine idle");
  is(lash_engine_run(e, LASH_RUN_UNTIL_IDLE), 0, "run until idle returns");
  lash_engine_get_stats(e, &st);
  is(st.waits, 1, "still parked");
  lash_wait_free(w);
  lash_engine_get_stats(e, &st);
  is(st.waits, 0, "freed");
  et_close(&t, 1);
}

/* A wait parked when the engine closes is detached; the host frees it. */
static void test_close_detaches(void) {
  et_env t;
  lash_engine *e = et_open(&t, NULL);
  lash_wait *w = NULL;
  aw a = {0};
  is(tu_reg(t.s, "c-1", "k", LASH_RERUNNABLE, 0), 0, "register");
  is(lash_await_terminal(e, NULL, "c-1", 1000, aw_cb, &a, &w), 0, "park");
  et_close(&t, 1);
  is(a.calls, 0, "close cancels waits silently");
  lash_wait_free(w);
  ok(1, "freeing a detached wait after close is safe");
}

static void test_cross_process(void) {
  et_env t;
  lash_engine_opts o;
  lash_engine *e;
  lash_engine_stats st;
  lash_wait *w = NULL;
  aw a = {0};
  pid_t pid;
  int status = -1, got;

  et_opts(&o);
  o.store.durability = LASH_DURABILITY_NONE;
  e = et_open(&t, &o);
  is(tu_reg(t.s, "x-1", "k", LASH_RERUNNABLE, 0), 0, "register x-1");
  is(lash_await_terminal(e, NULL, "x-1", 10000, aw_cb, &a, &w), 0, "park");
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    lash_store *s = NULL;
    unsigned char buf[32];
    char err[256];
    int rc;
    usleep(50000);
    rc = lash_store_open(t.dir, NULL, &s, err, sizeof err);
    if (rc == 0)
      rc = et_complete_as(s, "x-1", "child-proc", LASH_COMPLETED,
                          tu_mp_str(buf, sizeof buf, "from child"));
    lash_store_close(s);
    _exit(rc == 0 ? 0 : 1);
  }
  ok(pid > 0, "forked a child process");
  got = et_run_for(e, &a.calls, 5000);
  waitpid(pid, &status, 0);
  ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
     "the child completed the row with its own store handle");
  ok(got, "the parent's wait resolved");
  is(a.rc, 0, "rc 0");
  is(a.status, LASH_COMPLETED, "completed");
  lash_engine_get_stats(e, &st);
  ok(st.backoff_reads + st.feed_changes >= 1,
     "seen via the backoff or the feed (backoff_reads %llu, feed %llu)",
     (unsigned long long)st.backoff_reads, (unsigned long long)st.feed_changes);
  ok(st.feed_changes >= 1, "the feed counted the foreign change");
  et_close(&t, 1);
}

/* ------------------------------------------------- runs parked in waits */

typedef struct cr {
  lash_run *run;
  int resumed;
  int rc;
  int cancelled_flag;
} cr;

static void cr_cb(void *ud, lash_wait *w, int rc) {
  cr *c = ud;
  unsigned char buf[16];
  c->resumed++;
  c->rc = rc;
  c->cancelled_flag = lash_run_cancelled(c->run);
  lash_wait_free(w);
  lash_run_finish(c->run, rc == LASH_ECANCELED ? LASH_CANCELLED : LASH_FAILED,
                  tu_mp_str(buf, sizeof buf, "stopped"));
}

static cr g_cr;

static int cr_start(void *ud, lash_run *run) {
  lash_wait *w = NULL;
  (void)ud;
  g_cr.run = run;
  return lash_await_event(lash_run_engine(run), run, lash_run_record(run)->id,
                          "signal.never", 0, -1, cr_cb, &g_cr, &w);
}

static void test_cancel_parked_run(void) {
  et_env t;
  lash_engine *e = et_open(&t, NULL);
  lash_engine_stats st;
  lash_runner rn;
  lash_drive_report rep;

  memset(&g_cr, 0, sizeof g_cr);
  memset(&rn, 0, sizeof rn);
  rn.start = cr_start;
  lash_engine_set_runner(e, &rn);
  is(lash_engine_define(e, "waiter"), 0, "define waiter");
  is(tu_reg(t.s, "cw-1", "waiter", LASH_RERUNNABLE, 0), 0, "register cw-1");
  is(lash_engine_drive(e, &rep), 0, "drive");
  is(rep.admitted, 1, "admitted");
  lash_engine_run(e, LASH_RUN_UNTIL_IDLE);
  lash_engine_get_stats(e, &st);
  is(st.parked, 1, "the run is parked");
  is(st.running, 0, "and holds no slot");
  is(lash_request_cancel(t.s, NULL, "cw-1", "stop it", NULL), 0,
     "host requests cancellation");
  lash_engine_run(e, LASH_RUN_UNTIL_IDLE);
  is(g_cr.resumed, 1, "the parked wait resumed once");
  is(g_cr.rc, LASH_ECANCELED, "with LASH_ECANCELED");
  is(g_cr.cancelled_flag, 1, "lash_run_cancelled() is 1");
  is(tu_status(t.s, "cw-1"), LASH_CANCELLED, "the body finished cancelled");
  lash_engine_get_stats(e, &st);
  is(st.parked + st.running, 0, "no run left");
  tu_check(t.s, "store consistent");
  et_close(&t, 1);
}

/* ------------------------------------------------ the slot FIFO (7.4) */

typedef struct fifo {
  lash_run *p_run, *h_run;
  int p_resumed;
  int p_rc;
  uint64_t running_at_resume;
} fifo;

static fifo g_fifo;

static void fifo_cb(void *ud, lash_wait *w, int rc) {
  lash_engine_stats st;
  unsigned char buf[16];
  (void)ud;
  lash_engine_get_stats(lash_run_engine(g_fifo.p_run), &st);
  g_fifo.p_resumed++;
  g_fifo.p_rc = rc;
  g_fifo.running_at_resume = st.running;
  lash_wait_free(w);
  lash_run_finish(g_fifo.p_run, LASH_COMPLETED,
                  tu_mp_str(buf, sizeof buf, "p"));
}

static int fifo_start(void *ud, lash_run *run) {
  lash_wait *w = NULL;
  (void)ud;
  if (strcmp(lash_run_record(run)->kind, "p") == 0) {
    g_fifo.p_run = run;
    return lash_await_event(lash_run_engine(run), run, lash_run_record(run)->id,
                            "signal.go", 0, -1, fifo_cb, NULL, &w);
  }
  g_fifo.h_run = run; /* holds its slot until the test finishes it */
  return 0;
}

static void test_slot_fifo(void) {
  et_env t;
  lash_engine_opts o;
  lash_engine *e;
  lash_engine_stats st;
  lash_runner rn;
  unsigned char buf[16];
  sig g = {"fp-1", "signal.go"};

  et_opts(&o);
  o.concurrency = 1;
  e = et_open(&t, &o);
  memset(&g_fifo, 0, sizeof g_fifo);
  memset(&rn, 0, sizeof rn);
  rn.start = fifo_start;
  lash_engine_set_runner(e, &rn);
  lash_engine_define(e, "p");
  lash_engine_define(e, "h");
  is(tu_reg(t.s, "fp-1", "p", LASH_RERUNNABLE, 0), 0, "register parker");
  is(tu_reg(t.s, "fq-1", "h", LASH_RERUNNABLE, 0), 0, "register holder");
  et_turns(e, 6);
  ok(g_fifo.p_run != NULL && g_fifo.h_run != NULL,
     "both ran at concurrency 1 (the parker gave its slot back)");
  lash_engine_get_stats(e, &st);
  is(st.running, 1, "the holder has the slot");
  is(st.parked, 1, "the parker is parked");
  is(lash_engine_write_sync(e, sig_fn, &g), 0, "signal the parker");
  et_turns(e, 4);
  is(g_fifo.p_resumed, 0, "its wait resolved but no slot is free: it waits");
  lash_engine_get_stats(e, &st);
  is(st.waits, 0, "no longer a parked wait");
  is(st.parked, 1, "still counted parked (waiting for a slot)");
  ok(!lash_engine_idle(e), "a run waiting for a slot is not idle");
  lash_run_finish(g_fifo.h_run, LASH_COMPLETED,
                  tu_mp_str(buf, sizeof buf, "h"));
  lash_engine_run(e, LASH_RUN_UNTIL_IDLE);
  is(g_fifo.p_resumed, 1, "resumed once the holder freed the slot");
  is(g_fifo.p_rc, 0, "rc 0");
  is(g_fifo.running_at_resume, 1, "it holds the one slot when resumed");
  is(tu_status(t.s, "fp-1"), LASH_COMPLETED, "parker completed");
  is(tu_status(t.s, "fq-1"), LASH_COMPLETED, "holder completed");
  et_close(&t, 1);
}

/* ------------------------------------- manual waits (a write's commit) */

typedef struct man {
  lash_run *run;
  lash_wait *w;
  int resumed;
  int rc;
} man;

static man g_man;

static void man_cb(void *ud, lash_wait *w, int rc) {
  man *m = ud;
  m->resumed++;
  m->rc = rc;
  lash_wait_free(w);
  m->w = NULL;
}

static int man_start(void *ud, lash_run *run) {
  (void)ud;
  g_man.run = run;
  return lash_await_manual(lash_run_engine(run), run, man_cb, &g_man,
                           &g_man.w);
}

static void test_manual_wait(void) {
  et_env t;
  lash_engine_opts o;
  lash_engine *e;
  lash_engine_stats st;
  lash_runner rn;
  lash_wait *w = NULL;
  unsigned char buf[16];

  et_opts(&o);
  o.concurrency = 1;
  e = et_open(&t, &o);
  memset(&g_man, 0, sizeof g_man);
  memset(&rn, 0, sizeof rn);
  rn.start = man_start;
  lash_engine_set_runner(e, &rn);
  lash_engine_define(e, "m");
  is(lash_await_manual(e, NULL, man_cb, &g_man, &w), LASH_EINVAL,
     "a manual wait needs a run");
  is(tu_reg(t.s, "mw-1", "m", LASH_RERUNNABLE, 0), 0, "register mw-1");
  et_turns(e, 6);
  ok(g_man.run != NULL && g_man.w != NULL, "the run waits on a manual wait");
  lash_engine_get_stats(e, &st);
  is(st.running, 0, "it gave its slot back");
  is(st.parked, 1, "it counts as parked");
  is(st.waits, 0, "but not as a parked wait of the awaiter's (no polling)");
  is(lash_request_cancel(t.s, NULL, "mw-1", "stop", NULL), 0, "cancel it");
  et_turns(e, 6);
  is(g_man.resumed, 0, "a cancel does not end a manual wait");
  ok(lash_run_cancelled(g_man.run), "the run knows it is cancelled");
  lash_wait_resolve(g_man.w, 0);
  lash_wait_resolve(g_man.w, LASH_EIO); /* a second resolve: ignored */
  et_turns(e, 4);
  is(g_man.resumed, 1, "resolved: its callback ran once");
  is(g_man.rc, 0, "with the first resolve's code");
  lash_engine_get_stats(e, &st);
  is(st.running, 1, "it holds the slot again");
  lash_run_finish(g_man.run, LASH_CANCELLED, tu_mp_str(buf, sizeof buf, "x"));
  lash_engine_run(e, LASH_RUN_UNTIL_IDLE);
  is(tu_status(t.s, "mw-1"), LASH_CANCELLED, "finished");
  tu_check(t.s, "store consistent");
  et_close(&t, 1);
}

int main(void) {
  test_immediate();
  test_parked();
  test_close_detaches();
  test_cross_process();
  test_cancel_parked_run();
  test_slot_fifo();
  test_manual_wait();
  return done_testing();
}
