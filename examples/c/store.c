/* store.c - open and close a store, read its message on failure, share one
 * commit between several writes (a batch), replace the clock. */
#include "example.h"

static int64_t fixed_clock(void *ud) {
  return *(const int64_t *)ud;
}

int main(void) {
  const char *path = ex_store_path("app.lash");
  lash_store_opts opts;
  lash_store *s = NULL, *bad = NULL;
  lash_txn *txn = NULL;
  char err[256];
  int64_t now = 1700000000000;
  int rc;

  /* Open: defaults, then what this program wants. */
  lash_store_opts_init(&opts);
  opts.durability = LASH_DURABILITY_NOMETA; /* may lose the last commit */
  opts.max_bytes = (size_t)64 << 20;        /* EFULL beyond 64 MiB */
  rc = lash_store_open(path, &opts, &s, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "lash_store_open: %s: %s\n", lash_err_name(rc), err);
    return 1;
  }

  /* A failed open leaves nothing to close; err says why. */
  rc = lash_store_open("/nonexistent/parent/app.lash", NULL, &bad, err,
                       sizeof err);
  EXPECT(rc == LASH_EACCES && bad == NULL);
  printf("expected failure: %s: %s\n", lash_err_name(rc), err);

  /* A batch: the two registrations share one commit. */
  lash_def a = {.id = "job-1", .kind = "mail", .disposition = LASH_RERUNNABLE};
  lash_def b = {.id = "job-2", .kind = "mail", .disposition = LASH_RERUNNABLE};
  CHECK(s, lash_txn_begin(s, &txn));
  CHECK(s, lash_register(s, txn, &a, NULL, NULL));
  CHECK(s, lash_register(s, txn, &b, NULL, NULL));
  /* While the batch is open, a write with txn == NULL is refused. */
  EXPECT(lash_append(s, NULL, "job-1", "note", (lash_bytes){NULL, 0}, NULL) ==
         LASH_EINVAL);
  CHECK(s, lash_txn_commit(txn)); /* frees txn, even when it fails */

  /* Tests replace the clock to make leases lapse without sleeping. */
  lash_store_set_clock(s, fixed_clock, &now);
  EXPECT(lash_store_now(s) == now);
  lash_store_set_clock(s, NULL, NULL); /* back to the wall clock */

  printf("opened %s (lash %s), payload limit %zu bytes\n", lash_store_path(s),
         lash_version(), lash_store_max_payload(s));
  lash_store_close(s);
  lash_store_close(NULL); /* a no-op */
  return 0;
}
