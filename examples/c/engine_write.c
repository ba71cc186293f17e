/* engine_write.c - the engine's group commit: writes queued during a loop
 * turn share one commit and report after it (lash_engine_write); plain
 * code commits before it goes on (lash_engine_write_sync); an explicit
 * batch makes several writes one atomic commit or none. */
#include "example.h"

typedef struct append_req {
  const char *id;
  const char *type;
  int done, rc;
} append_req;

static int append_fn(lash_store *s, lash_txn *txn, void *ud) {
  append_req *r = ud;
  char buf[32];
  return lash_append(s, txn, r->id, r->type, ex_mpstr(buf, "x"), NULL);
}

/* Runs from a loop callback after the commit: only now is it durable. */
static void append_done(void *ud, int rc) {
  append_req *r = ud;
  r->done = 1;
  r->rc = rc;
}

static int register_fn(lash_store *s, lash_txn *txn, void *ud) {
  lash_def def = {.id = ud, .kind = "k", .disposition = LASH_RERUNNABLE};
  return lash_register(s, txn, &def, NULL, NULL);
}

int main(void) {
  lash_engine *e = NULL;
  lash_engine_stats before, after;
  lash_record rec;
  char err[256];

  if (lash_engine_open(ex_store_path("app.lash"), NULL, &e, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  lash_store *s = lash_engine_store(e);
  CHECK(s, lash_engine_write_sync(e, register_fn, "p-1")); /* committed */

  /* Three queued writes: one commit at the end of the loop turn. */
  append_req r[3] = {{"p-1", "progress", 0, 0},
                     {"p-1", "signal.go", 0, 0},
                     {"p-1", "progress", 0, 0}};
  lash_engine_get_stats(e, &before);
  for (int i = 0; i < 3; i++)
    CHECK(s, lash_engine_write(e, append_fn, &r[i], append_done));
  EXPECT(!r[0].done); /* nothing is reported before the commit */
  CHECK(s, lash_engine_run(e, LASH_RUN_UNTIL_IDLE));
  lash_engine_get_stats(e, &after);
  EXPECT(r[0].done && r[1].done && r[2].done && r[2].rc == 0);
  EXPECT(after.commits - before.commits == 1);

  /* A write that fails its checks reports its own error; the others in
   * the same transaction still commit. */
  append_req bad = {"nobody", "progress", 0, 0};
  append_req good = {"p-1", "progress", 0, 0};
  CHECK(s, lash_engine_write(e, append_fn, &bad, append_done));
  CHECK(s, lash_engine_write(e, append_fn, &good, append_done));
  CHECK(s, lash_engine_run(e, LASH_RUN_UNTIL_IDLE));
  EXPECT(bad.rc == LASH_ENOENT && good.rc == 0);

  /* An explicit batch: both registrations or neither. */
  CHECK(s, lash_engine_batch_begin(e));
  CHECK(s, lash_engine_write_sync(e, register_fn, "p-2"));
  CHECK(s, lash_engine_write_sync(e, register_fn, "p-3"));
  CHECK(s, lash_engine_batch_end(e, 0)); /* 0: abort */
  EXPECT(lash_get(s, NULL, "p-2", &rec, NULL) == LASH_ENOENT);
  CHECK(s, lash_engine_batch_begin(e));
  CHECK(s, lash_engine_write_sync(e, register_fn, "p-2"));
  CHECK(s, lash_engine_write_sync(e, register_fn, "p-3"));
  CHECK(s, lash_engine_batch_end(e, 1)); /* 1: commit */
  CHECK(s, lash_get(s, NULL, "p-3", &rec, NULL));
  lash_record_free(&rec);
  CHECK(s, lash_get(s, NULL, "p-1", &rec, NULL));
  EXPECT(rec.last_seq == 4);
  printf("p-1 has %llu events; p-2 and p-3 committed together\n",
         (unsigned long long)rec.last_seq);
  lash_record_free(&rec);
  lash_engine_close(e);
  return 0;
}
