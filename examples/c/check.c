/* check.c - counts per status and the store's size (lash_store_stats), and
 * the full audit (lash_check) that lash check and the tests run. */
#include "example.h"

static void problem(void *ud, const char *line) {
  (void)ud;
  printf("  problem: %s\n", line);
}

int main(void) {
  lash_store *s = NULL;
  lash_lease ls;
  lash_stats st;
  char err[256], ok[32];

  if (lash_store_open(ex_store_path("app.lash"), NULL, &s, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  lash_def a = {.id = "a", .kind = "k", .disposition = LASH_RERUNNABLE};
  lash_def b = {.id = "b", .kind = "k", .disposition = LASH_RERUNNABLE};
  CHECK(s, lash_register(s, NULL, &a, NULL, NULL));
  CHECK(s, lash_register(s, NULL, &b, NULL, NULL));
  CHECK(s, lash_lease_claim(s, NULL, "a", "w", "i", 30000, &ls));
  CHECK(s, lash_start(s, NULL, &ls, NULL));
  CHECK(s, lash_complete(s, NULL, &ls, LASH_COMPLETED, ex_mpstr(ok, "done")));

  CHECK(s, lash_store_stats(s, NULL, &st));
  EXPECT(st.count[LASH_COMPLETED] == 1 && st.count[LASH_PENDING] == 1);
  EXPECT(st.live == 1 && st.total == 2 && st.tombstones == 0);
  printf("%llu live of %llu, change seq %llu, %llu bytes used, %llu more "
         "available\n",
         (unsigned long long)st.live, (unsigned long long)st.total,
         (unsigned long long)st.change_seq, (unsigned long long)st.bytes_used,
         (unsigned long long)st.bytes_available);

  /* Re-folds every record from its log and audits every index and lease.
   * Returns the number of problems; fn gets one line each. */
  int problems = CHECK(s, lash_check(s, problem, NULL));
  EXPECT(problems == 0);
  printf("check: clean\n");
  lash_store_close(s);
  return 0;
}
