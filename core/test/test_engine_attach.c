/* test_engine_attach.c - the attach seam (SEMANTICS 4, S8.52, S8.58): an
 * external backend that owns terminal waits. A test backend records what
 * it is handed and answers from a libuv timer, as a remote service would.
 */
#include "engine_tu.h"

typedef struct backend {
  int calls;   /* await_terminal calls */
  int cancels; /* cancel calls */
  int refuse;  /* await_terminal returns this when non-zero */
  int answer;  /* rc passed to lash_attach_resolve from the timer */
  char last_id[64];
  lash_wait *held;
  lash_store *s; /* when set, the timer completes held's row first */
  uv_timer_t timer;
  int timer_on;
} backend;

static void backend_timer_cb(uv_timer_t *t) {
  backend *b = t->data;
  unsigned char buf[32];
  lash_wait *w = b->held;
  if (w == NULL) return;
  b->held = NULL;
  if (b->s != NULL)
    et_complete_as(b->s, b->last_id, "remote", LASH_COMPLETED,
                   tu_mp_str(buf, sizeof buf, "remote-done"));
  lash_attach_resolve(w, b->answer);
}

static int backend_await(void *ud, const char *id, lash_wait *w) {
  backend *b = ud;
  b->calls++;
  snprintf(b->last_id, sizeof b->last_id, "%s", id);
  if (b->refuse) return b->refuse;
  b->held = w;
  uv_timer_start(&b->timer, backend_timer_cb, 20, 0);
  return 0;
}

static void backend_cancel(void *ud, lash_wait *w) {
  backend *b = ud;
  b->cancels++;
  if (b->held == w) b->held = NULL;
}

static void backend_install(lash_engine *e, backend *b) {
  lash_attach a;
  uv_timer_init(lash_engine_loop(e), &b->timer);
  b->timer.data = b;
  a.ud = b;
  a.await_terminal = backend_await;
  a.cancel = backend_cancel;
  lash_engine_set_attach(e, &a);
}

static void backend_close(lash_engine *e, backend *b) {
  uv_close((uv_handle_t *)&b->timer, NULL);
  lash_engine_run(e, LASH_RUN_NOWAIT);
}

typedef struct res {
  int calls;
  int rc;
  int status;
} res;

static void res_cb(void *ud, lash_wait *w, int rc) {
  res *r = ud;
  const lash_record *rec = lash_wait_record(w);
  r->calls++;
  r->rc = rc;
  r->status = rec != NULL ? rec->status : 0;
  lash_wait_free(w);
}

int main(void) {
  et_env t;
  lash_engine *e = et_open(&t, NULL);
  backend b;
  lash_wait *w = NULL;
  unsigned char buf[32];
  lash_engine_stats st0, st1;
  res r;
  int rc;

  memset(&b, 0, sizeof b);
  backend_install(e, &b);

  /* S8.52: a terminal row resolves by point read; the backend never sees
   * it. Unknown ids fail before it too. */
  is(tu_reg(t.s, "done-1", "k", LASH_RERUNNABLE, 0), 0, "register done-1");
  is(et_complete_as(t.s, "done-1", "peer", LASH_COMPLETED,
                    tu_mp_str(buf, sizeof buf, "fine")),
     0, "complete done-1");
  memset(&r, 0, sizeof r);
  rc = lash_await_terminal(e, NULL, "done-1", -1, res_cb, &r, &w);
  is(rc, 1, "S8.52 terminal row: resolved at once");
  lash_wait_free(w);
  rc = lash_await_terminal(e, NULL, "nobody", -1, res_cb, &r, &w);
  is(rc, LASH_ENOENT, "unknown id: LASH_ENOENT");
  is(b.calls, 0, "S8.52 the backend was never consulted");

  /* A live row goes to the backend, which answers after completing it. */
  is(tu_reg(t.s, "live-1", "k", LASH_RERUNNABLE, 0), 0, "register live-1");
  b.s = t.s;
  b.answer = 0;
  memset(&r, 0, sizeof r);
  lash_engine_get_stats(e, &st0);
  rc = lash_await_terminal(e, NULL, "live-1", 5000, res_cb, &r, &w);
  is(rc, 0, "live row: parked");
  is(b.calls, 1, "the backend took the wait");
  iss(b.last_id, "live-1", "for that id");
  lash_engine_run_until(e, &r.calls);
  is(r.rc, 0, "resolved through the backend");
  is(r.status, LASH_COMPLETED, "with the terminal record re-read");
  lash_engine_get_stats(e, &st1);
  is(st1.backoff_reads, st0.backoff_reads, "no backoff re-read");
  is(b.cancels, 0, "no cancel after an answer");

  /* S8.58: a backend error is returned as-is, at the call ... */
  is(tu_reg(t.s, "live-2", "k", LASH_RERUNNABLE, 0), 0, "register live-2");
  b.s = NULL;
  b.refuse = LASH_EIO;
  memset(&r, 0, sizeof r);
  w = (lash_wait *)1;
  rc = lash_await_terminal(e, NULL, "live-2", 5000, res_cb, &r, &w);
  is(rc, LASH_EIO, "S8.58 a refusing backend's error is returned as-is");
  ok(w == NULL, "and no wait is left");
  lash_engine_run(e, LASH_RUN_NOWAIT);
  is(r.calls, 0, "cb never called");

  /* ... and when it answers later, with no polling fallback even though
   * the row then completes locally. */
  b.refuse = 0;
  b.answer = LASH_ETIMEDOUT;
  memset(&r, 0, sizeof r);
  lash_engine_get_stats(e, &st0);
  rc = lash_await_terminal(e, NULL, "live-2", 5000, res_cb, &r, &w);
  is(rc, 0, "parked with the backend");
  is(et_complete_as(t.s, "live-2", "peer", LASH_COMPLETED,
                    tu_mp_str(buf, sizeof buf, "local")),
     0, "the row completes meanwhile");
  lash_engine_run_until(e, &r.calls);
  is(r.rc, LASH_ETIMEDOUT, "S8.58 the backend's error reaches the waiter");
  lash_engine_get_stats(e, &st1);
  is(st1.backoff_reads, st0.backoff_reads, "no backoff re-read");

  /* A resolve that claims terminal for a live row is an I/O error. */
  is(tu_reg(t.s, "live-3", "k", LASH_RERUNNABLE, 0), 0, "register live-3");
  b.answer = 0;
  memset(&r, 0, sizeof r);
  rc = lash_await_terminal(e, NULL, "live-3", 5000, res_cb, &r, &w);
  is(rc, 0, "parked");
  lash_engine_run_until(e, &r.calls);
  is(r.rc, LASH_EIO, "a live row after a 0 answer: LASH_EIO");

  /* Timeouts and frees end the backend's part with cancel. */
  b.answer = 0;
  memset(&r, 0, sizeof r);
  rc = lash_await_terminal(e, NULL, "live-3", 0, res_cb, &r, &w);
  is(rc, 0, "parked with a 0 ms timeout");
  lash_engine_run_until(e, &r.calls);
  is(r.rc, LASH_ETIMEDOUT, "the local timeout wins");
  is(b.cancels, 1, "the backend was told to forget the wait");
  ok(b.held == NULL, "and holds nothing");
  rc = lash_await_terminal(e, NULL, "live-3", -1, res_cb, &r, &w);
  is(rc, 0, "parked again");
  lash_wait_free(w);
  is(b.cancels, 2, "lash_wait_free cancels it too");
  lash_engine_run(e, LASH_RUN_NOWAIT);

  /* Event waits stay local. */
  b.calls = 0;
  memset(&r, 0, sizeof r);
  rc = lash_await_event(e, NULL, "live-3", "progress", 0, 0, res_cb, &r, &w);
  is(rc, 0, "event wait parks locally");
  lash_engine_run_until(e, &r.calls);
  is(b.calls, 0, "event waits never reach the backend");

  /* Removing the backend restores the hub and backoff. */
  lash_engine_set_attach(e, NULL);
  memset(&r, 0, sizeof r);
  rc = lash_await_terminal(e, NULL, "live-3", 5000, res_cb, &r, &w);
  is(rc, 0, "parked on the hub");
  is(et_complete_as(t.s, "live-3", "peer", LASH_COMPLETED,
                    tu_mp_str(buf, sizeof buf, "x")),
     0, "complete live-3 through this store");
  lash_engine_run_until(e, &r.calls);
  is(r.rc, 0, "resolved without a backend");
  is(b.calls, 0, "the removed backend saw nothing");

  backend_close(e, &b);
  tu_check(t.s, "store consistent");
  et_close(&t, 1);
  return done_testing();
}
