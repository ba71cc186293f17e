/* prune.c - remove old terminal rows, leaving tombstones: a pruned id reads
 * as LASH_EPRUNED with its tombstone, and registering it again continues
 * its event sequence after the tombstone's floor. */
#include "example.h"

static int64_t clock_fn(void *ud) {
  return *(const int64_t *)ud;
}

int main(void) {
  lash_store *s = NULL;
  lash_lease ls;
  lash_record rec;
  lash_tombstone tomb;
  lash_prune_report rep;
  char err[256], ok[32];
  int64_t now = 1700000000000;
  const int64_t day = 24 * 3600 * 1000;

  if (lash_store_open(ex_store_path("app.lash"), NULL, &s, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  lash_store_set_clock(s, clock_fn, &now);
  lash_def old = {.id = "old", .kind = "k", .disposition = LASH_RERUNNABLE};
  lash_def live = {.id = "live", .kind = "k", .disposition = LASH_RERUNNABLE};
  CHECK(s, lash_register(s, NULL, &old, NULL, NULL));
  CHECK(s, lash_register(s, NULL, &live, NULL, NULL));
  CHECK(s, lash_lease_claim(s, NULL, "old", "w", "i", 30000, &ls));
  CHECK(s, lash_start(s, NULL, &ls, NULL));
  CHECK(s, lash_complete(s, NULL, &ls, LASH_COMPLETED, ex_mpstr(ok, "done")));

  /* Eight days later: prune terminal rows last updated over 7 days ago
   * (any status; live rows are never touched). */
  now += 8 * day;
  CHECK(s, lash_prune(s, NULL, now - 7 * day, 0, &rep));
  EXPECT(rep.processes == 1 && rep.events == 2);

  EXPECT(lash_get(s, NULL, "old", &rec, &tomb) == LASH_EPRUNED);
  EXPECT(tomb.status == LASH_COMPLETED && tomb.last_seq == 2);
  CHECK(s, lash_get(s, NULL, "live", &rec, NULL));
  lash_record_free(&rec);

  /* The id can be used again; its events continue after seq 2. */
  uint64_t seq = 0;
  CHECK(s, lash_register(s, NULL, &old, NULL, NULL));
  CHECK(s,
        lash_append(s, NULL, "old", "progress", ex_mpstr(ok, "again"), &seq));
  EXPECT(seq == 3);
  printf("pruned %llu process(es) and %llu event(s); old is back at seq %llu\n",
         (unsigned long long)rep.processes, (unsigned long long)rep.events,
         (unsigned long long)seq);
  lash_store_close(s);
  return 0;
}
