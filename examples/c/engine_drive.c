/* engine_drive.c - admission: rows registered elsewhere (another process,
 * or here with eager start off) wait until a drive pass claims them; the
 * loop drives by itself when rows change. Pause stops admission. */
#include "example.h"

static int body_start(void *ud, lash_run *run) {
  char out[32];
  (*(int *)ud)++;
  return lash_run_finish(run, LASH_COMPLETED, ex_mpstr(out, "done"));
}

static void body_drop(void *ud, lash_run *run, int rc) {
  (void)ud;
  (void)run;
  (void)rc;
}

int main(void) {
  lash_engine_opts o;
  lash_engine *e = NULL;
  lash_drive_report rep;
  char err[256], id[32];
  int started = 0, i;

  lash_engine_opts_init(&o);
  o.no_eager_start = 1; /* registration never admits */
  o.concurrency = 2;
  if (lash_engine_open(ex_store_path("app.lash"), &o, &e, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  lash_store *s = lash_engine_store(e);
  lash_runner runner = {.ud = &started, .start = body_start, .drop = body_drop};
  lash_engine_set_runner(e, &runner);
  CHECK(s, lash_engine_define(e, "batch"));

  for (i = 1; i <= 5; i++) { /* straight through the store */
    snprintf(id, sizeof id, "b-%d", i);
    lash_def def = {.id = id, .kind = "batch", .disposition = LASH_RERUNNABLE};
    CHECK(s, lash_register(s, NULL, &def, NULL, NULL));
  }
  lash_def other = {
      .id = "x-1", .kind = "not-here", .disposition = LASH_RERUNNABLE};
  CHECK(s, lash_register(s, NULL, &other, NULL, NULL));

  /* One pass: a page as large as the free slots (2), claimed and started
   * in one transaction. Bodies start from the loop afterwards. */
  CHECK(s, lash_engine_drive(e, &rep));
  printf("drive: admitted %u, deferred %u\n", rep.admitted, rep.deferred);
  EXPECT(rep.admitted == 2 && started == 0);

  /* Paused: running bodies go on, nothing new is claimed. */
  lash_engine_pause(e, 1);
  CHECK(s, lash_engine_run(e, LASH_RUN_UNTIL_IDLE));
  EXPECT(started == 2);
  lash_engine_pause(e, 0);

  /* UNTIL_IDLE drives again as slots free up, until nothing this engine
   * can claim is left: x-1 is of a kind it does not run. */
  CHECK(s, lash_engine_run(e, LASH_RUN_UNTIL_IDLE));
  EXPECT(started == 5 && lash_engine_idle(e));
  lash_record rec;
  CHECK(s, lash_get(s, NULL, "x-1", &rec, NULL));
  EXPECT(rec.status == LASH_PENDING);
  lash_record_free(&rec);
  printf("ran %d bodies; x-1 is still %s\n", started,
         lash_status_name(LASH_PENDING));
  lash_engine_close(e);
  return 0;
}
