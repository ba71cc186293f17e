/* lease.c - claim a process's lease, record the start of an attempt, write
 * under the lease, renew it, and see a stale owner fenced off once another
 * owner took the lapsed lease over. A fake clock makes the lease lapse. */
#include "example.h"

static int64_t clock_fn(void *ud) {
  return *(const int64_t *)ud;
}

int main(void) {
  lash_store *s = NULL;
  lash_lease a, b, holder;
  char err[256], buf[32];
  uint32_t attempt = 0;
  int64_t now = 1700000000000;
  uint64_t seq = 0;

  if (lash_store_open(ex_store_path("app.lash"), NULL, &s, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  lash_store_set_clock(s, clock_fn, &now);
  lash_def def = {.id = "job-1",
                  .kind = "resize",
                  .disposition = LASH_RERUNNABLE,
                  .max_attempts = 5};
  CHECK(s, lash_register(s, NULL, &def, NULL, NULL));

  /* Worker A claims the lease for 30 s and records its start: status
   * running, attempt 1, fence 1. Both in one commit. */
  lash_txn *txn;
  CHECK(s, lash_txn_begin(s, &txn));
  CHECK(s, lash_lease_claim(s, txn, "job-1", "worker-a", "boot-1", 30000, &a));
  CHECK(s, lash_start(s, txn, &a, &attempt));
  CHECK(s, lash_txn_commit(txn));
  EXPECT(attempt == 1 && a.fence == 1);

  /* Writes under the lease are fenced: they check it is still A's. */
  CHECK(s, lash_append_fenced(s, NULL, &a, "progress", ex_mpstr(buf, "1/3"),
                              &seq));
  CHECK(s, lash_wait_set(s, NULL, &a, "signal:approve", NULL));
  CHECK(s, lash_wait_clear(s, NULL, &a, NULL));
  now += 10000;
  CHECK(s, lash_lease_renew(s, NULL, &a, 30000)); /* a.expires_at moves */

  /* While A's lease is live, B is refused and told who holds it. */
  EXPECT(lash_lease_claim(s, NULL, "job-1", "worker-b", "boot-7", 30000,
                          &holder) == LASH_EBUSY);
  EXPECT(strcmp(holder.owner, "worker-a") == 0);

  /* A stops renewing (paused, partitioned); its lease lapses and B takes
   * over with a higher fence: attempt 2. */
  now += 31000;
  CHECK(s, lash_lease_claim(s, NULL, "job-1", "worker-b", "boot-7", 30000, &b));
  CHECK(s, lash_start(s, NULL, &b, &attempt));
  EXPECT(attempt == 2 && b.fence == 2);

  /* A wakes up: every write of A is refused, and nothing changes. */
  EXPECT(lash_append_fenced(s, NULL, &a, "progress", ex_mpstr(buf, "2/3"),
                            NULL) == LASH_ESUPERSEDED);
  EXPECT(lash_lease_renew(s, NULL, &a, 30000) == LASH_ESUPERSEDED);
  printf("stale owner refused: %s\n", lash_errmsg(s));

  /* B releases; the fence is kept, so the next owner gets fence 3. */
  CHECK(s, lash_lease_release(s, NULL, &b));
  CHECK(s, lash_lease_get(s, NULL, "job-1", &holder));
  EXPECT(holder.token == 0 && holder.fence == 2);
  lash_store_close(s);
  return 0;
}
