/* test_engine_reconnect.c - a commit that fails with LASH_EIO on a store
 * that reopens by itself (a lost PostgreSQL connection) is not the end of
 * the engine: the writer backs off on a timer and writes again, a failed
 * admission vanishes and is claimed again, a failed completion is written
 * again, and the row completes exactly once; on a store that does not
 * reopen (LMDB) the same EIO still ends lash_engine_run.
 *
 * The lost commit is the injection point "writer.commit" (the writer
 * aborts the transaction: nothing of it is written) and "store.reopens"
 * makes this LMDB store one that reopens: both need a LASH_TEST_HOOKS
 * build (scripts/test's sanitizer builds); a plain build skips. The real
 * server and lost connections: spec/reconnect_spec.lua. */
#ifdef LASH_TEST_HOOKS

#include "engine_tu.h"

#include "base/inject.h"
#include "engine/engine.h"

/* process.started and process.completed events of @p id. */
static void count_events(lash_store *s, const char *id, int *started,
                         int *completed) {
  tu_evs ev = {0};
  size_t i;
  *started = *completed = 0;
  if (tu_events(s, NULL, id, 0, 0, &ev) == 0)
    for (i = 0; i < ev.n; i++) {
      if (strcmp(ev.v[i].type, "process.started") == 0) ++*started;
      if (strcmp(ev.v[i].type, "process.completed") == 0) ++*completed;
    }
  tu_evs_free(&ev);
}

/* An engine running kind "job" (finished at once by tr), on a store that
 * reopens (injected) when @p reopens. */
static lash_engine *open_job_engine(et_env *t, tr_runner *tr, int reopens) {
  lash_engine *e;
  lash__inject_reset();
  if (reopens) lash__inject_arm("store.reopens", 1, 0, 0);
  e = et_open(t, NULL);
  tr_install(e, tr, TR_FINISH, 0);
  lash_engine_define(e, "job");
  return e;
}

/* Commits @p fail writer transactions fail with EIO after @p skip passed. */
static void lose_commits(const char *what, unsigned long skip,
                         unsigned long fail) {
  et_env t;
  lash_engine *e;
  tr_runner tr;
  int started, completed, rc;
  unsigned long hits;

  e = open_job_engine(&t, &tr, 1);
  ok(lash_store_reopens(t.s), "%s: the store reopens (injected)", what);
  is(tu_reg(t.s, "r-1", "job", LASH_RERUNNABLE, 0), 0, "%s: register r-1",
     what);
  lash__inject_arm("writer.commit", LASH_EIO, skip, fail);
  rc = lash_engine_run(e, LASH_RUN_UNTIL_IDLE);
  hits = lash__inject_hits("writer.commit");
  is(rc, 0, "%s: the engine kept running (no storage error)", what);
  is(lash_engine_storage_error(e, NULL), 0, "%s: no sticky storage error",
     what);
  is(tu_status(t.s, "r-1"), LASH_COMPLETED, "%s: r-1 completed", what);
  is(tr.finished, 1, "%s: its body finished once", what);
  count_events(t.s, "r-1", &started, &completed);
  is(completed, 1, "%s: one process.completed", what);
  is(started, 1, "%s: one process.started (nothing half-written)", what);
  /* 10, 20, 40 ms apart: a handful of commits, not a spin */
  ok(hits >= skip + fail + 1 && hits <= skip + fail + 4,
     "%s: %lu commits tried for %lu lost (the writer waited between)", what,
     hits, fail);
  is(e->writer.fails, 0, "%s: the writer is back to no failures", what);
  lash__inject_reset();
  tu_check(t.s, "store consistent");
  et_close(&t, 1);
}

/* A body started inside its claiming transaction (early start: the kind's
 * bodies end at once) whose commit is lost: nothing of the run is written;
 * the row is claimed again and runs again, and completes once. */
static void test_early_lost(void) {
  et_env t;
  lash_engine *e;
  tr_runner tr;
  int started, completed;

  e = open_job_engine(&t, &tr, 1);
  is(tu_reg(t.s, "r-1", "job", LASH_RERUNNABLE, 0), 0, "early: register r-1");
  is(lash_engine_run(e, LASH_RUN_UNTIL_IDLE), 0, "early: r-1 ran (learnt)");
  is(tu_reg(t.s, "r-2", "job", LASH_RERUNNABLE, 0), 0, "early: register r-2");
  lash__inject_arm("writer.commit", LASH_EIO, 0, 1);
  is(lash_engine_run(e, LASH_RUN_UNTIL_IDLE), 0, "early: the engine kept on");
  is(tu_status(t.s, "r-2"), LASH_COMPLETED, "early: r-2 completed");
  is(tr.finished, 3, "early: r-2's body ran twice (the lost run, the next)");
  count_events(t.s, "r-2", &started, &completed);
  is(started, 1, "early: one process.started");
  is(completed, 1, "early: one process.completed");
  lash__inject_reset();
  tu_check(t.s, "early: store consistent");
  et_close(&t, 1);
}

/* LMDB does not reopen: an EIO from a commit stays fatal. */
static void test_lmdb_fatal(void) {
  et_env t;
  lash_engine *e;
  tr_runner tr;
  const char *msg = NULL;

  e = open_job_engine(&t, &tr, 0);
  ok(!lash_store_reopens(t.s), "LMDB: the store does not reopen");
  is(tu_reg(t.s, "r-1", "job", LASH_RERUNNABLE, 0), 0, "LMDB: register r-1");
  lash__inject_arm("writer.commit", LASH_EIO, 0, 1);
  is(lash_engine_run(e, LASH_RUN_UNTIL_IDLE), LASH_EIO,
     "LMDB: the lost commit ends lash_engine_run with EIO");
  is(lash_engine_storage_error(e, &msg), LASH_EIO,
     "LMDB: the storage error is kept");
  is(tr.starts, 0, "LMDB: nothing started");
  lash__inject_reset();
  et_close(&t, 1);
}

int main(void) {
  /* the admission's commit lost three times: claimed again after */
  lose_commits("admission lost", 0, 3);
  /* admitted; the completion's commit lost twice: written again */
  lose_commits("completion lost", 1, 2);
  test_early_lost();
  test_lmdb_fatal();
  return done_testing();
}

#else

#include <stdio.h>

int main(void) {
  printf("1..0 # SKIP built without LASH_TEST_HOOKS (the injection points "
         "writer.commit and store.reopens)\n");
  return 0;
}

#endif
