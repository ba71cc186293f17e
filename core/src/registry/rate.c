/* rate.c - rate limits per kind (issue 13, claim): at most n starts of a
 * kind per per_ms across every worker and host, the bucket kept in the
 * side table (LASH_KV_RATE, kind -> {tat}) and taken in the transaction
 * that claims the row.
 *
 * The bucket is GCRA without burst (the "virtual scheduling" form): tat,
 * the theoretical arrival time of the next start, in ms scaled by n (so
 * that one token is exactly per_ms scaled units, with no rounding). A
 * start is allowed when tat <= now (scaled); it moves tat on by per_ms
 * from tat when it came less than one token late (its timer, a busy loop:
 * the schedule is kept, so the long-run rate holds), else from now (after
 * a pause). Starts are spread one per per_ms/n, and any window of per_ms
 * holds at most n + 1 of them. */
#include "registry-int.h"

#include <string.h>

static int rate_args(lash_store *s, const char *kind, uint32_t n,
                     int64_t per_ms) {
  int rc = lash__check_kind(s, kind, NULL);
  if (rc < 0) return rc;
  if (n < 1 || n > LASH_RATE_N_MAX || per_ms < 1 || per_ms > LASH_RATE_PER_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "rate of kind %s: n must be 1..%d and per_ms 1..%lld "
                      "(got n %u, per_ms %lld)",
                      kind, LASH_RATE_N_MAX, (long long)LASH_RATE_PER_MAX,
                      (unsigned)n, (long long)per_ms);
  return rc;
}

/* The bucket's tat (scaled), 0 when absent. */
static int tat_get(lash_txn *t, const char *kind, size_t kn, int64_t *tat) {
  int rc = lash__kv_get_num(t, LASH_KV_RATE, kind, kn, "tat", tat,
                            "the rate bucket of kind");
  return rc < 0 ? rc : 0;
}

static int tat_put(lash_txn *t, const char *kind, size_t kn, int64_t tat) {
  return lash__kv_put_num(t, LASH_KV_RATE, kind, kn, "tat", tat, 0);
}

int lash_rate_take(lash_store *s, lash_txn *txn, const char *kind, uint32_t n,
                   int64_t per_ms, int64_t *next_at) {
  lash_txn *t = NULL;
  int64_t tat, now;
  int rc, kn;
  lash__clear(s);
  if (next_at != NULL) *next_at = 0;
  if ((kn = rate_args(s, kind, n, per_ms)) < 0) return kn;
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return lash__wend(s, t, rc);
  now = lash__now(s) * (int64_t)n;
  if ((rc = tat_get(t, kind, (size_t)kn, &tat)) < 0) goto out;
  if (tat > now) {
    /* empty: the next token is due at tat (ms, rounded up) */
    if (next_at != NULL) *next_at = (tat + (int64_t)n - 1) / (int64_t)n;
    rc = 1;
    goto out;
  }
  /* A start less than one token late (its timer, the loop) keeps the
   * schedule, so the long-run rate holds; after a pause it starts anew. */
  rc = tat_put(t, kind, (size_t)kn,
               (tat > 0 && now - tat < per_ms ? tat : now) + per_ms);
out:
  return lash__wend(s, t, rc);
}

int lash_rate_give_back(lash_store *s, lash_txn *txn, const char *kind,
                        uint32_t n, int64_t per_ms) {
  lash_txn *t = NULL;
  int64_t tat;
  int rc, kn;
  lash__clear(s);
  if ((kn = rate_args(s, kind, n, per_ms)) < 0) return kn;
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return lash__wend(s, t, rc);
  if ((rc = tat_get(t, kind, (size_t)kn, &tat)) == 0 && tat > 0)
    rc = tat_put(t, kind, (size_t)kn, tat - per_ms);
  return lash__wend(s, t, rc);
}
