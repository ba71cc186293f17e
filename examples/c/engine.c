/* engine.c - the engine: open it on a private loop, declare a kind, give it
 * a runner (the host's bodies), register a row through the group-commit
 * writer so it starts in the same commit, and run the loop until idle. */
#include "example.h"

typedef struct host {
  int started, dropped;
} host;

/* A row was claimed and its start recorded. A real host starts a body
 * (the Lua bindings resume a coroutine); this one finishes at once. */
static int body_start(void *ud, lash_run *run) {
  host *h = ud;
  const lash_record *rec = lash_run_record(run);
  char out[32];
  h->started++;
  printf("running %s (kind %s, attempt %u)\n", rec->id, rec->kind,
         rec->attempt.number);
  /* Queues the leased completion; the run is freed after its commit. */
  return lash_run_finish(run, LASH_COMPLETED, ex_mpstr(out, "hello"));
}

/* The engine took a run away without a terminal (lease lost, closing). */
static void body_drop(void *ud, lash_run *run, int rc) {
  host *h = ud;
  (void)run;
  h->dropped++;
  printf("dropped: %s\n", lash_err_name(rc));
}

typedef struct start_req {
  lash_engine *e;
  lash_def def;
  int admitted;
} start_req;

/* A write fn runs inside the engine's shared transaction. */
static int start_fn(lash_store *s, lash_txn *txn, void *ud) {
  start_req *r = ud;
  (void)s;
  return lash_engine_register(r->e, txn, &r->def, NULL, NULL, &r->admitted);
}

int main(void) {
  lash_engine_opts o;
  lash_engine *e = NULL;
  host h = {0, 0};
  char err[256];
  int rc;

  lash_engine_opts_init(&o);
  o.owner = "example-worker"; /* default "<host>:<pid>" */
  o.concurrency = 8;
  rc = lash_engine_open(ex_store_path("app.lash"), &o, &e, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "lash_engine_open: %s: %s\n", lash_err_name(rc), err);
    return 1;
  }
  lash_store *s = lash_engine_store(e); /* owned by the engine */

  lash_runner runner = {
      .ud = &h, .start = body_start, .drop = body_drop, .event = NULL};
  lash_engine_set_runner(e, &runner);
  CHECK(s, lash_engine_define(e, "greet")); /* rows of kind greet run here */

  /* Registered and admitted in one commit (eager start); the body starts
   * from the loop after that commit. */
  start_req req = {.e = e,
                   .def = {.id = "greet-1",
                           .kind = "greet",
                           .disposition = LASH_RERUNNABLE}};
  CHECK(s, lash_engine_write_sync(e, start_fn, &req));
  EXPECT(req.admitted == 1 && h.started == 0);

  CHECK(s, lash_engine_run(e, LASH_RUN_UNTIL_IDLE));
  EXPECT(h.started == 1 && h.dropped == 0);

  lash_record rec;
  CHECK(s, lash_get(s, NULL, "greet-1", &rec, NULL));
  EXPECT(rec.status == LASH_COMPLETED);
  printf("greet-1 %s by %s\n", lash_status_name(rec.status), rec.attempt.owner);
  lash_record_free(&rec);

  lash_engine_stats st;
  lash_engine_get_stats(e, &st);
  printf("%llu commit(s), %llu drive pass(es)\n",
         (unsigned long long)st.commits, (unsigned long long)st.drives);
  lash_engine_close(e); /* closes the store too */
  return 0;
}
