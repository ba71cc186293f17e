/* engine_await.c - waits: a body parks on a signal and on a timer (the
 * run gives its slot back while parked), and plain host code awaits the
 * row's outcome, running the loop until it is there. */
#include "example.h"

/* The signal arrived (rc 0), or the row got a cancellation request. */
static void on_signal(void *ud, lash_wait *w, int rc) {
  lash_run *run = ud;
  if (rc == 0) /* the outcome is the signal's payload (copied) */
    lash_run_finish(run, LASH_COMPLETED, lash_wait_event(w)->payload);
  else
    lash_run_finish(run, LASH_CANCELLED, (lash_bytes){"\xc0", 1}); /* nil */
  lash_wait_free(w); /* the callback owns the wait */
}

static void on_timer(void *ud, lash_wait *w, int rc) {
  lash_run *run = ud;
  char out[32];
  lash_run_finish(run, rc == 0 ? LASH_COMPLETED : LASH_FAILED,
                  ex_mpstr(out, "rested"));
  lash_wait_free(w);
}

static int body_start(void *ud, lash_run *run) {
  lash_engine *e = lash_run_engine(run);
  const lash_record *rec = lash_run_record(run);
  lash_wait *w = NULL;
  int rc;
  (void)ud;
  if (strcmp(rec->kind, "nap") == 0) /* a timer never resolves at once */
    return lash_await_sleep(e, run, 20, on_timer, run, &w);
  rc = lash_await_event(e, run, rec->id, "signal.approve", 0, -1, on_signal,
                        run, &w);
  if (rc == 1) on_signal(run, w, 0); /* already there: resolved at once */
  return rc < 0 ? rc : 0;
}

static void body_drop(void *ud, lash_run *run, int rc) {
  (void)ud;
  (void)run;
  (void)rc;
}

typedef struct host_wait {
  volatile int done;
  int rc, status;
  char outcome[32];
} host_wait;

static void on_terminal(void *ud, lash_wait *w, int rc) {
  host_wait *hw = ud;
  const lash_record *rec = lash_wait_record(w);
  hw->rc = rc;
  if (rc == 0 && rec != NULL) {
    hw->status = rec->status;
    snprintf(hw->outcome, sizeof hw->outcome, "%.*s", (int)rec->outcome.len - 1,
             (const char *)rec->outcome.data + 1);
  }
  lash_wait_free(w);
  hw->done = 1;
}

static int register_fn(lash_store *s, lash_txn *txn, void *ud) {
  const lash_def *def = ud;
  return lash_register(s, txn, def, NULL, NULL);
}

static int signal_fn(lash_store *s, lash_txn *txn, void *ud) {
  char buf[32];
  (void)ud;
  return lash_append(s, txn, "req-1", "signal.approve", ex_mpstr(buf, "ok"),
                     NULL);
}

int main(void) {
  lash_engine *e = NULL;
  lash_engine_stats st;
  lash_wait *w = NULL;
  char err[256];

  if (lash_engine_open(ex_store_path("app.lash"), NULL, &e, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  lash_store *s = lash_engine_store(e);
  lash_runner runner = {.start = body_start, .drop = body_drop};
  lash_engine_set_runner(e, &runner);
  CHECK(s, lash_engine_define(e, "approval"));
  CHECK(s, lash_engine_define(e, "nap"));

  lash_def req = {
      .id = "req-1", .kind = "approval", .disposition = LASH_RERUNNABLE};
  lash_def nap = {.id = "nap-1", .kind = "nap", .disposition = LASH_RERUNNABLE};
  CHECK(s, lash_engine_write_sync(e, register_fn, &req));
  CHECK(s, lash_engine_write_sync(e, register_fn, &nap));
  CHECK(s, lash_engine_drive(e, NULL)); /* claims both, bodies start */
  CHECK(s, lash_engine_run(e, LASH_RUN_NOWAIT));
  lash_engine_get_stats(e, &st);
  EXPECT(st.parked == 2 && st.running == 0); /* parked bodies hold no slot */

  /* Plain code: 1 = already terminal, 0 = parked (cb runs later), < 0 =
   * error (cb never runs). Point-read first, subscribe, then re-read: no
   * wakeup is lost in between. */
  host_wait hw = {0, 0, 0, ""};
  int rc = CHECK(
      s, lash_await_terminal(e, NULL, "req-1", 5000, on_terminal, &hw, &w));
  EXPECT(rc == 0);
  CHECK(s, lash_engine_write_sync(e, signal_fn, NULL)); /* wakes the body */
  CHECK(s, lash_engine_run_until(e, &hw.done));
  EXPECT(hw.rc == 0 && hw.status == LASH_COMPLETED);
  printf("req-1 %s with \"%s\"\n", lash_status_name(hw.status), hw.outcome);

  /* A wait can time out; the callback then gets LASH_ETIMEDOUT. */
  host_wait slow = {0, 0, 0, ""};
  lash_def never = {
      .id = "never", .kind = "manual", .disposition = LASH_EXTERNAL};
  CHECK(s, lash_engine_write_sync(e, register_fn, &never));
  CHECK(s, lash_await_terminal(e, NULL, "never", 10, on_terminal, &slow, &w));
  CHECK(s, lash_engine_run_until(e, &slow.done));
  EXPECT(slow.rc == LASH_ETIMEDOUT);

  CHECK(s, lash_engine_run(e, LASH_RUN_UNTIL_IDLE)); /* nap-1 wakes */
  lash_record rec;
  CHECK(s, lash_get(s, NULL, "nap-1", &rec, NULL));
  EXPECT(rec.status == LASH_COMPLETED);
  lash_record_free(&rec);
  lash_engine_close(e);
  return 0;
}
