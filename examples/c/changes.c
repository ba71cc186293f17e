/* changes.c - notice changes: the commit hook (this process's commits, as
 * they land) and the change feed (any process's commits, read later from a
 * cursor), with the store-wide change sequence as the cheap "anything
 * new?" read. */
#include "example.h"

static void on_commit(void *ud, const lash_change *c, size_t n) {
  size_t i;
  int *commits = ud;
  (*commits)++;
  for (i = 0; i < n; i++) /* valid during the call only; no store calls */
    printf("  hook: %s %s%s\n", c[i].id, lash_status_name(c[i].status),
           c[i].registered ? " (new)" : "");
}

static int on_change(void *ud, const lash_change_entry *c) {
  (void)ud;
  printf("  feed: %llu %s %s\n", (unsigned long long)c->change_seq, c->id,
         c->deleted ? "pruned" : lash_status_name(c->rec->status));
  return 0;
}

int main(void) {
  lash_store *s = NULL;
  char err[256], buf[32];
  int commits = 0;

  if (lash_store_open(ex_store_path("app.lash"), NULL, &s, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  lash_store_on_commit(s, on_commit, &commits);
  uint64_t cursor = lash_change_seq(s); /* 0 on a new store */

  lash_def a = {.id = "a", .kind = "k", .disposition = LASH_RERUNNABLE};
  lash_def b = {.id = "b", .kind = "k", .disposition = LASH_RERUNNABLE};
  lash_txn *txn;
  CHECK(s, lash_txn_begin(s, &txn));
  CHECK(s, lash_register(s, txn, &a, NULL, NULL));
  CHECK(s, lash_register(s, txn, &b, NULL, NULL));
  CHECK(s, lash_txn_commit(txn)); /* one hook call, two entries */
  CHECK(s, lash_append(s, NULL, "a", "progress", ex_mpstr(buf, "1"), NULL));
  EXPECT(commits == 2);

  /* Another OS process would poll this, then read the feed. */
  EXPECT(lash_change_seq(s) > cursor);
  printf("changes since %llu:\n", (unsigned long long)cursor);
  int n = CHECK(
      s, lash_changes_since(s, NULL, cursor, 0, on_change, NULL, &cursor));
  EXPECT(n == 2); /* the latest change per id: a once, b once */
  EXPECT(CHECK(s, lash_changes_since(s, NULL, cursor, 0, on_change, NULL,
                                     &cursor)) == 0);

  /* How this store lets a watcher in another process know when to read. */
  lash_wake_source ws;
  CHECK(s, lash_store_wake_source(s, &ws));
  printf("wake source: %s\n", ws.kind == LASH_WAKE_FILE ? "a file to watch"
                              : ws.kind == LASH_WAKE_FD ? "a descriptor"
                                                        : "none (poll)");
  lash_store_close(s);
  return 0;
}
