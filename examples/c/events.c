/* events.c - append events and signals to a process, read its log, and
 * request a cancellation. */
#include "example.h"

static int print_event(void *ud, const lash_event *ev) {
  int *n = ud;
  (*n)++;
  printf("  %llu %s (%zu payload bytes)\n", (unsigned long long)ev->seq,
         ev->type, ev->payload.len);
  return 0; /* non-zero would stop the listing */
}

int main(void) {
  lash_store *s = NULL;
  char err[256], buf[32];
  uint64_t seq = 0;
  int n = 0;

  if (lash_store_open(ex_store_path("app.lash"), NULL, &s, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  lash_def def = {
      .id = "req-1", .kind = "approval", .disposition = LASH_RERUNNABLE};
  CHECK(s, lash_register(s, NULL, &def, NULL, NULL));

  /* Host appends: user events and signals ("signal.<name>"). */
  CHECK(s,
        lash_append(s, NULL, "req-1", "progress", ex_mpstr(buf, "50%"), &seq));
  CHECK(s, lash_append(s, NULL, "req-1", "signal.approve", ex_mpstr(buf, "ada"),
                       &seq));
  EXPECT(seq == 2);
  /* "process." is the core's own namespace. */
  EXPECT(lash_append(s, NULL, "req-1", "process.completed", ex_mpstr(buf, "x"),
                     NULL) == LASH_EINVAL);

  /* The log after seq 0, ascending, no limit. */
  printf("events of req-1:\n");
  CHECK(s, lash_events_after(s, NULL, "req-1", 0, 0, print_event, &n));
  EXPECT(n == 2);

  /* A pending row (never started) is cancelled at once: the request and
   * process.cancelled land in one commit. */
  CHECK(s, lash_request_cancel(s, NULL, "req-1", "no longer needed", &seq));
  lash_record rec;
  CHECK(s, lash_get(s, NULL, "req-1", &rec, NULL));
  EXPECT(rec.status == LASH_CANCELLED && rec.cancel_requested);
  printf("req-1 is %s after event %llu\n", lash_status_name(rec.status),
         (unsigned long long)rec.last_seq);
  lash_record_free(&rec);
  EXPECT(lash_append(s, NULL, "req-1", "progress", ex_mpstr(buf, "late"),
                     NULL) == LASH_ETERMINAL);
  lash_store_close(s);
  return 0;
}
