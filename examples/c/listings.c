/* listings.c - page through the live rows of one kind with a worklist
 * cursor (what a worker's drive pass does), and list rows by status. */
#include "example.h"

static int print_row(void *ud, const lash_record *rec) {
  (void)ud;
  printf("  %s %s\n", rec->id, lash_status_name(rec->status));
  return 0;
}

int main(void) {
  lash_store *s = NULL;
  lash_lease ls;
  char err[256], id[32], ok[32];
  int i, n, pages = 0, rows = 0;

  if (lash_store_open(ex_store_path("app.lash"), NULL, &s, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  lash_txn *txn;
  CHECK(s, lash_txn_begin(s, &txn));
  for (i = 1; i <= 5; i++) {
    snprintf(id, sizeof id, "mail-%d", i);
    lash_def def = {.id = id, .kind = "mail", .disposition = LASH_RERUNNABLE};
    CHECK(s, lash_register(s, txn, &def, NULL, NULL));
  }
  lash_def sms = {.id = "sms-1", .kind = "sms", .disposition = LASH_RERUNNABLE};
  CHECK(s, lash_register(s, txn, &sms, NULL, NULL));
  CHECK(s, lash_txn_commit(txn));

  /* mail-2 ends: it leaves the live index. */
  CHECK(s, lash_lease_claim(s, NULL, "mail-2", "w", "i", 30000, &ls));
  CHECK(s, lash_start(s, NULL, &ls, NULL));
  CHECK(s, lash_complete(s, NULL, &ls, LASH_COMPLETED, ex_mpstr(ok, "sent")));

  /* A zeroed cursor starts a scan; pages of 2 continue after the last id
   * returned, up to the last live id seen by the first page. */
  lash_worklist_cursor cur;
  memset(&cur, 0, sizeof cur);
  while (!cur.done) {
    printf("page %d of live mail:\n", ++pages);
    n = CHECK(s, lash_worklist_page(s, NULL, "mail", &cur, 2, print_row, NULL));
    rows += n;
  }
  EXPECT(rows == 4);

  /* Every pending row, any kind, in id order (through the status index). */
  lash_list_filter f = {.status = LASH_PENDING, .limit = 10};
  printf("pending:\n");
  n = CHECK(s, lash_list(s, NULL, &f, print_row, NULL));
  EXPECT(n == 5);
  lash_store_close(s);
  return 0;
}
