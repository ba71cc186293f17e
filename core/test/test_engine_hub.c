/* test_engine_hub.c - the change hub and the group-commit writer: publish
 * only queues (waiters wake from the loop, never inline), 16 racing
 * waiters see identical bytes (S8.55), entries drop with their last
 * subscriber (S8.59), writes of one turn share one commit, done callbacks
 * come after the commit, the event sink sees events in order (S8.60). */
#include "engine_tu.h"

#include "engine/engine.h"

typedef struct hw {
  int calls;
  int rc;
  unsigned char outcome[64];
  size_t outcome_len;
} hw;

static void hw_cb(void *ud, lash_wait *w, int rc) {
  hw *h = ud;
  const lash_record *rec = lash_wait_record(w);
  h->calls++;
  h->rc = rc;
  if (rec != NULL && rec->outcome.len <= sizeof h->outcome) {
    memcpy(h->outcome, rec->outcome.data, rec->outcome.len);
    h->outcome_len = rec->outcome.len;
  }
  lash_wait_free(w);
}

static void test_publish_queues(void) {
  et_env t;
  lash_engine *e = et_open(&t, NULL);
  lash_engine_stats st;
  lash_wait *w = NULL;
  unsigned char buf[32];
  hw h = {0};
  int rc;

  is(tu_reg(t.s, "h-1", "k", LASH_RERUNNABLE, 0), 0, "register h-1");
  rc = lash_await_terminal(e, NULL, "h-1", -1, hw_cb, &h, &w);
  is(rc, 0, "await on a live row parks");
  is(lash__hub_subscribers(&e->hub, "h-1"), 1,
     "the hub entry exists with the one subscriber");
  rc = et_complete_as(t.s, "h-1", "peer", LASH_COMPLETED,
                      tu_mp_str(buf, sizeof buf, "done"));
  is(rc, 0, "a peer completes h-1 on the same store");
  is(h.calls, 0, "no wake inside the writer's call (publish only queues)");
  lash_engine_run(e, LASH_RUN_NOWAIT);
  is(h.calls, 1, "the waiter woke from the loop, once");
  is(h.rc, 0, "resolved");
  ok(tu_bytes_eq((lash_bytes){h.outcome, h.outcome_len},
                 tu_mp_str(buf, sizeof buf, "done").data,
                 tu_mp_str(buf, sizeof buf, "done").len),
     "outcome bytes");
  lash_engine_get_stats(e, &st);
  is(st.backoff_reads, 0, "in-process completion needed no backoff read");
  ok(st.hub_wakes >= 1, "hub_wakes counted");
  is(st.waits, 0, "no parked waits left");
  is(lash__hub_subscribers(&e->hub, "h-1"), 0,
     "entry dropped with its last subscriber (S8.59)");
  lash_engine_run(e, LASH_RUN_NOWAIT);
  is(h.calls, 1, "exactly once");
  et_close(&t, 1);
}

static void test_sixteen_waiters(void) {
  et_env t;
  lash_engine *e = et_open(&t, NULL);
  lash_wait *w[16];
  hw h[16];
  unsigned char buf[64];
  lash_bytes want;
  int i, all = 1, parked = 0;
  lash_engine_stats st;

  memset(h, 0, sizeof h);
  is(tu_reg(t.s, "race-1", "k", LASH_RERUNNABLE, 0), 0, "register race-1");
  for (i = 0; i < 16; i++)
    parked +=
        lash_await_terminal(e, NULL, "race-1", 5000, hw_cb, &h[i], &w[i]) == 0;
  is(parked, 16, "16 waiters parked");
  lash_engine_get_stats(e, &st);
  is(st.waits, 16, "stats.waits == 16");
  want = tu_mp_str(buf, sizeof buf, "the one outcome");
  is(et_complete_as(t.s, "race-1", "peer", LASH_COMPLETED, want), 0,
     "one completion");
  lash_engine_run(e, LASH_RUN_NOWAIT);
  for (i = 0; i < 16; i++)
    if (h[i].calls != 1 || h[i].rc != 0 ||
        !tu_bytes_eq((lash_bytes){h[i].outcome, h[i].outcome_len}, want.data,
                     want.len))
      all = 0;
  ok(all, "S8.55 all 16 waiters resolved once with identical bytes");
  lash_engine_get_stats(e, &st);
  is(st.backoff_reads, 0, "no backoff reads");
  et_close(&t, 1);
}

/* ------------------------------------------------------------ writer */

typedef struct app {
  const char *id;
  int done_calls;
  int done_rc;
  int *order;
  int seen_at;
} app;

static int app_fn(lash_store *s, lash_txn *txn, void *ud) {
  app *a = ud;
  unsigned char b[8];
  return lash_append(s, txn, a->id, "progress", tu_mp_uint(b, 1), NULL);
}

static void app_done(void *ud, int rc) {
  app *a = ud;
  a->done_calls++;
  a->done_rc = rc;
  a->seen_at = (*a->order)++;
}

static int bad_fn(lash_store *s, lash_txn *txn, void *ud) {
  unsigned char b[8];
  (void)ud;
  return lash_append(s, txn, "no-such-row", "progress", tu_mp_uint(b, 1), NULL);
}

static void test_group_commit(void) {
  et_env t;
  lash_engine *e = et_open(&t, NULL);
  lash_engine_stats st0, st1;
  static app a[100];
  app bad;
  int i, order = 0, all = 1, rc;

  is(tu_reg(t.s, "g-1", "k", LASH_RERUNNABLE, 0), 0, "register g-1");
  lash_engine_get_stats(e, &st0);
  for (i = 0; i < 100; i++) {
    memset(&a[i], 0, sizeof a[i]);
    a[i].id = "g-1";
    a[i].order = &order;
    if (lash_engine_write(e, app_fn, &a[i], app_done) != 0) all = 0;
  }
  memset(&bad, 0, sizeof bad);
  bad.order = &order;
  lash_engine_write(e, bad_fn, &bad, app_done);
  ok(all, "100 writes queued");
  is(a[0].done_calls, 0, "no done callback before the commit");
  is(tu_event_count(t.s, "g-1"), 0, "nothing durable before the turn");
  lash_engine_run(e, LASH_RUN_NOWAIT);
  lash_engine_get_stats(e, &st1);
  is(st1.commits - st0.commits, 1, "100 writes of one turn: one commit");
  is(tu_event_count(t.s, "g-1"), 100, "all 100 appends durable");
  for (i = 0; i < 100; i++)
    if (a[i].done_calls != 1 || a[i].done_rc != 0 || a[i].seen_at != i) all = 0;
  ok(all, "every done callback ran once, rc 0, in queue order");
  is(bad.done_calls, 1, "a failed write gets its done callback");
  is(bad.done_rc, LASH_ENOENT, "with its own error; the batch committed");

  /* write_sync flushes the queue with its own write and returns its rc. */
  memset(&a[0], 0, sizeof a[0]);
  a[0].id = "g-1";
  a[0].order = &order;
  lash_engine_write(e, app_fn, &a[0], app_done);
  rc = lash_engine_write_sync(e, app_fn, &a[1]);
  is(rc, 0, "write_sync returns fn's result");
  is(tu_event_count(t.s, "g-1"), 102, "queued write flushed with it");
  is(a[0].done_calls, 0, "its done callback waits for the loop");
  lash_engine_run(e, LASH_RUN_NOWAIT);
  is(a[0].done_calls, 1, "delivered from the loop");
  is(lash_engine_write_sync(e, bad_fn, NULL), LASH_ENOENT,
     "write_sync returns a failing fn's code");

  /* explicit batch: both appends or none */
  is(lash_engine_batch_begin(e), 0, "batch_begin");
  is(lash_engine_batch_begin(e), LASH_EINVAL, "one batch at a time");
  is(lash_engine_write_sync(e, app_fn, &a[2]), 0, "write in batch");
  is(lash_engine_write_sync(e, app_fn, &a[3]), 0, "write in batch");
  is(tu_event_count(t.s, "g-1"), 102, "not visible before batch_end");
  is(lash_engine_batch_end(e, 0), 0, "abort the batch");
  is(tu_event_count(t.s, "g-1"), 102, "aborted: nothing written");
  is(lash_engine_batch_begin(e), 0, "batch_begin again");
  is(lash_engine_write_sync(e, app_fn, &a[2]), 0, "write in batch");
  is(lash_engine_batch_end(e, 1), 0, "commit the batch");
  is(tu_event_count(t.s, "g-1"), 103, "committed");
  is(lash_engine_batch_end(e, 1), LASH_EINVAL, "no open batch");
  lash_engine_run(e, LASH_RUN_NOWAIT);
  tu_check(t.s, "store consistent");
  et_close(&t, 1);
}

/* -------------------------------------------------------------- sink */

typedef struct sink {
  uint64_t seqs[64];
  char types[64][48];
  int n;
  int inline_calls;
  int in_write;
} sink;

static void sink_event(void *ud, const lash_event *ev) {
  sink *k = ud;
  if (k->in_write) k->inline_calls++;
  if (k->n < 64) {
    k->seqs[k->n] = ev->seq;
    snprintf(k->types[k->n], sizeof k->types[k->n], "%s", ev->type);
    k->n++;
  }
}

static void test_sink(void) {
  et_env t;
  lash_engine *e = et_open(&t, NULL);
  lash_runner rn;
  sink k;
  unsigned char buf[32];
  int i, ordered = 1;

  memset(&k, 0, sizeof k);
  memset(&rn, 0, sizeof rn);
  rn.ud = &k;
  rn.event = sink_event;
  lash_engine_set_runner(e, &rn);
  is(tu_reg(t.s, "s-1", "k", LASH_RERUNNABLE, 0), 0, "register s-1");
  k.in_write = 1;
  is(lash_append(t.s, NULL, "s-1", "progress", tu_mp_uint(buf, 1), NULL), 0,
     "append");
  is(et_complete_as(t.s, "s-1", "peer", LASH_COMPLETED,
                    tu_mp_str(buf, sizeof buf, "x")),
     0, "complete");
  k.in_write = 0;
  is(k.n, 0, "sink not called inside the writes");
  lash_engine_run(e, LASH_RUN_NOWAIT);
  is(k.n, 3, "S8.60 sink saw append, started and terminal");
  for (i = 0; i < k.n; i++)
    if (k.seqs[i] != (uint64_t)i + 1) ordered = 0;
  ok(ordered, "in seq order");
  iss(k.types[0], "progress", "first the user event");
  iss(k.types[1], "process.started", "then the start");
  iss(k.types[2], "process.completed", "then the terminal");
  is(k.inline_calls, 0, "never inline");
  et_close(&t, 1);
}

static void test_open_errors(void) {
  lash_engine_opts o;
  lash_engine *e = (lash_engine *)1;
  char err[256] = "";
  int rc;
  lash_engine_opts_init(&o);
  o.lease_ttl_ms = 1000;
  o.renew_ms = 500;
  rc = lash_engine_open("/tmp/lash-never-created", &o, &e, err, sizeof err);
  is(rc, LASH_EINVAL, "ttl < 3 * renew is refused");
  ok(e == NULL, "no engine on failure");
  ok(tu_has(err, "1000") && tu_has(err, "500"),
     "the message names both values: %s", err);
  o.renew_ms = 0;
  o.lease_ttl_ms = -5;
  rc = lash_engine_open("/tmp/lash-never-created", &o, &e, err, sizeof err);
  is(rc, LASH_EINVAL, "negative ttl refused");
}

static void test_defaults(void) {
  et_env t;
  lash_engine_opts o;
  lash_engine *e;
  const char *inc;
  size_t i;
  int hex = 1;
  lash_engine_opts_init(&o);
  o.store.durability = LASH_DURABILITY_NONE;
  e = et_open(&t, &o);
  ok(strchr(lash_engine_owner(e), ':') != NULL, "default owner host:pid (%s)",
     lash_engine_owner(e));
  inc = lash_engine_incarnation(e);
  is(strlen(inc), 16, "incarnation has 16 chars");
  for (i = 0; i < strlen(inc); i++)
    if (!strchr("0123456789abcdef", inc[i])) hex = 0;
  ok(hex, "incarnation is hex (%s)", inc);
  ok(lash_engine_idle(e), "a fresh engine is idle");
  is(lash_engine_run(e, LASH_RUN_UNTIL_IDLE), 0, "run until idle returns");
  is(lash_engine_run(e, 99), LASH_EINVAL, "bad mode");
  et_close(&t, 1);
}

static void test_host_loop(void) {
  et_env t;
  lash_engine_opts o;
  uv_loop_t loop;
  lash_wait *w = NULL;
  hw h = {0};
  unsigned char buf[16];
  et_opts(&o);
  uv_loop_init(&loop);
  o.loop = &loop;
  et_open(&t, &o);
  ok(lash_engine_loop(t.e) == &loop, "the host's loop is used");
  is(tu_reg(t.s, "hl-1", "k", LASH_RERUNNABLE, 0), 0, "register");
  is(lash_await_terminal(t.e, NULL, "hl-1", -1, hw_cb, &h, &w), 0, "park");
  et_complete_as(t.s, "hl-1", "peer", LASH_COMPLETED,
                 tu_mp_str(buf, sizeof buf, "y"));
  uv_run(&loop, UV_RUN_NOWAIT);
  is(h.calls, 1, "woken by the host running its loop");
  et_close(&t, 1);
  is(uv_loop_close(&loop), 0, "host loop has no handle of ours left");
}

int main(void) {
  test_publish_queues();
  test_sixteen_waiters();
  test_group_commit();
  test_sink();
  test_open_errors();
  test_defaults();
  test_host_loop();
  return done_testing();
}
