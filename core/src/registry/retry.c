/* retry.c - retries with backoff and delays (issue 13, items 1 and 2): the
 * retry policy (its checks and the backoff it gives), the fold's start of
 * a row with a delay, and the payloads of process.attempt_failed and
 * process.retried. The record fields [25]..[29] (a policy, a delay, the
 * failures so far, a unique key) are record.c's, with the rest of the
 * codec; the writes (lash_fail_attempt, lash_retry) registry.c's, beside
 * the other fenced transitions. */
#include "registry-int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ policy */

int64_t lash_retry_backoff(const lash_retry_policy *p, uint32_t n, double u) {
  double d, factor, cap;
  uint32_t i;
  if (p == NULL || n == 0) return 0;
  factor = p->factor > 0 ? p->factor : 2.0;
  cap = p->max_ms > 0 ? (double)p->max_ms : 9.0e15; /* an int64 of ms */
  d = (double)p->initial_ms;
  for (i = 1; i < n && d < cap; i++)
    d *= factor;
  if (d > cap) d = cap;
  if (p->jitter > 0 && u > 0) d -= d * p->jitter * (u < 1 ? u : 1);
  return d > 0 ? (int64_t)d : 0;
}

static int bad(char *err, size_t errlen, const char *fmt, double v) {
  if (err != NULL && errlen > 0) snprintf(err, errlen, fmt, v);
  return LASH_EINVAL;
}

int lash_retry_check(const lash_retry_policy *p, char *err, size_t errlen) {
  if (err != NULL && errlen > 0) err[0] = '\0';
  if (p == NULL) return 0;
  if (p->initial_ms < 0)
    return bad(err, errlen, "retry.initial_ms %.0f must be >= 0 (ms)",
               (double)p->initial_ms);
  if (p->max_ms < 0)
    return bad(err, errlen,
               "retry.max_ms %.0f must be >= 0 (ms; 0: no ceiling)",
               (double)p->max_ms);
  if (!(p->factor == 0 || (p->factor >= 1 && isfinite(p->factor))))
    return bad(err, errlen, "retry.factor %g must be a number >= 1", p->factor);
  if (!(p->jitter >= 0 && p->jitter <= 1))
    return bad(err, errlen, "retry.jitter %g must be between 0 and 1",
               p->jitter);
  return 0;
}

int lash__retry_left(const lash_retry_policy *p, const lash__rec *r) {
  return p != NULL && p->max_attempts > 1 && r->failures + 1 < p->max_attempts;
}

void lash__retry_base(lash__rec *d, const lash__rec *src) {
  d->retry = src->retry;
  d->run_at = src->run_at;
  d->unique_key = src->unique_key;
  d->unique_for_ms = src->unique_for_ms;
  lash__rec_reset_projection(d);
}

/* ---------------------------------------------------------- payloads */

static int pack_key(msgpack_packer *pk, const char *k) {
  size_t n = strlen(k);
  if (msgpack_pack_str(pk, n) != 0) return -1;
  return msgpack_pack_str_body(pk, k, n);
}

int lash__pl_attempt_failed(lash__buf *b, uint32_t attempt, lash_bytes error,
                            int64_t retry_at) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_map(&pk, 3);
  e |= pack_key(&pk, "attempt");
  e |= msgpack_pack_uint32(&pk, attempt);
  e |= pack_key(&pk, "error");
  /* The failure payload is one MessagePack value: kept as it is. */
  if (error.len > 0)
    e |= lash__buf_write(b, error.data, error.len);
  else
    e |= msgpack_pack_nil(&pk);
  e |= pack_key(&pk, "retry_at");
  e |= msgpack_pack_int64(&pk, retry_at);
  return e != 0 ? LASH_ENOMEM : 0;
}

int lash__pl_retried(lash__buf *b, uint32_t attempt) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_map(&pk, 1);
  e |= pack_key(&pk, "attempt");
  e |= msgpack_pack_uint32(&pk, attempt);
  return e != 0 ? LASH_ENOMEM : 0;
}
