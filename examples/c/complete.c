/* complete.c - end a process: a leased completion, its idempotent retry, a
 * different outcome that lost the race, and the unleased completion of an
 * externally owned row by its authority. */
#include "example.h"

int main(void) {
  lash_store *s = NULL;
  lash_lease ls;
  lash_record rec;
  char err[256], ok[32], other[32];

  if (lash_store_open(ex_store_path("app.lash"), NULL, &s, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  lash_def def = {
      .id = "job-1", .kind = "resize", .disposition = LASH_RERUNNABLE};
  CHECK(s, lash_register(s, NULL, &def, NULL, NULL));
  CHECK(s,
        lash_lease_claim(s, NULL, "job-1", "worker-a", "boot-1", 30000, &ls));
  CHECK(s, lash_start(s, NULL, &ls, NULL));

  /* The terminal event, status, outcome and the lease release: one
   * atomic write. */
  lash_bytes outcome = ex_mpstr(ok, "resized");
  EXPECT(CHECK(s, lash_complete(s, NULL, &ls, LASH_COMPLETED, outcome)) == 0);

  /* A retry with the same outcome (the reply was lost): LASH_APPLIED, a
   * positive code, not an error. Nothing is written. */
  EXPECT(lash_complete(s, NULL, &ls, LASH_COMPLETED, outcome) == LASH_APPLIED);
  /* Another outcome after the first: the first stays (write-once). */
  EXPECT(lash_complete(s, NULL, &ls, LASH_FAILED, ex_mpstr(other, "oops")) ==
         LASH_SUPERSEDED_OUTCOME);

  CHECK(s, lash_get(s, NULL, "job-1", &rec, NULL));
  EXPECT(rec.status == LASH_COMPLETED && rec.outcome.len == outcome.len);
  lash_record_free(&rec);

  /* An external row is never run here; its owner closes it without a
   * lease, as the external authority. */
  lash_def ext = {
      .id = "pay-9", .kind = "payment", .disposition = LASH_EXTERNAL};
  CHECK(s, lash_register(s, NULL, &ext, NULL, NULL));
  EXPECT(lash_complete_unleased(s, NULL, "pay-9", LASH_COMPLETED, outcome,
                                LASH_AUTH_WORKFLOW) == LASH_EAUTHORITY);
  CHECK(s, lash_complete_unleased(s, NULL, "pay-9", LASH_COMPLETED, outcome,
                                  LASH_AUTH_EXTERNAL));

  /* An abandonment's outcome is built by the core, naming its writer. */
  lash_def ob = {
      .id = "once-1", .kind = "charge", .disposition = LASH_OWNER_BOUND};
  unsigned char pay[512];
  CHECK(s, lash_register(s, NULL, &ob, NULL, NULL));
  CHECK(s,
        lash_lease_claim(s, NULL, "once-1", "worker-a", "boot-1", 30000, &ls));
  CHECK(s, lash_start(s, NULL, &ls, NULL));
  int n = CHECK(s, lash_abandon_payload(LASH_WRITER_OWNER_DRAIN, "worker-a",
                                        pay, sizeof pay));
  CHECK(s, lash_complete(s, NULL, &ls, LASH_ABANDONED,
                         (lash_bytes){pay, (size_t)n}));
  printf("job-1 completed, pay-9 completed by its authority, once-1 %s\n",
         lash_writer_name(LASH_WRITER_OWNER_DRAIN));
  lash_store_close(s);
  return 0;
}
