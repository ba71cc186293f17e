/* retry.c - retries with backoff and delays (issue 13, items 1 and 2): the
 * retry policy (its checks and the backoff it gives), the record fields
 * [25]..[29] that hold a policy, a delay, the failures so far and a unique
 * key, and the payloads of process.attempt_failed and process.retried.
 * The writes themselves (lash_fail_attempt, lash_retry) are registry.c's,
 * beside the other fenced transitions. */
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

/* -------------------------------------------------- record fields */

size_t lash__retry_fields(const lash__rec *r) {
  if (r->unique_for_ms > 0) return 29;
  if (r->unique_key.p != NULL) return 28;
  if (r->failures > 0 || r->retry_due) return 27;
  if (r->run_at > 0) return 26;
  if (r->retry.max_attempts > 0) return 25;
  return 0;
}

static int pack_sv(msgpack_packer *pk, lash__sv v) {
  if (v.p == NULL) return msgpack_pack_nil(pk);
  if (msgpack_pack_str(pk, v.n) != 0) return -1;
  return msgpack_pack_str_body(pk, v.p, v.n);
}

int lash__retry_pack_fields(msgpack_packer *pk, const lash__rec *r, size_t nf) {
  int e = 0;
  /* [25] [max_attempts, initial_ms, factor, max_ms, jitter] or nil */
  if (r->retry.max_attempts > 0) {
    e |= msgpack_pack_array(pk, 5);
    e |= msgpack_pack_uint32(pk, r->retry.max_attempts);
    e |= msgpack_pack_int64(pk, r->retry.initial_ms);
    e |= msgpack_pack_double(pk, r->retry.factor);
    e |= msgpack_pack_int64(pk, r->retry.max_ms);
    e |= msgpack_pack_double(pk, r->retry.jitter);
  } else {
    e |= msgpack_pack_nil(pk);
  }
  if (nf > 25) e |= msgpack_pack_int64(pk, r->run_at); /* [26] */
  if (nf > 26) {                                       /* [27] */
    e |= msgpack_pack_array(pk, 2);
    e |= msgpack_pack_uint32(pk, r->failures);
    e |= r->retry_due ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
  }
  if (nf > 27) e |= pack_sv(pk, r->unique_key);               /* [28] */
  if (nf > 28) e |= msgpack_pack_int64(pk, r->unique_for_ms); /* [29] */
  return e;
}

static int mp_double(const msgpack_object *o, double *out) {
  if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
    *out = o->via.f64;
  else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
    *out = (double)o->via.u64;
  else
    return LASH_ECORRUPT;
  return 0;
}

int lash__retry_unpack_fields(const msgpack_object *f, size_t n, lash__rec *r) {
  uint64_t u;
  if (n > 24 && f[24].type != MSGPACK_OBJECT_NIL) {
    const msgpack_object *a = f[24].via.array.ptr;
    if (f[24].type != MSGPACK_OBJECT_ARRAY || f[24].via.array.size != 5 ||
        lash__mp_u64(&a[0], &u) < 0 || u > UINT32_MAX ||
        lash__mp_i64(&a[1], &r->retry.initial_ms) < 0 ||
        mp_double(&a[2], &r->retry.factor) < 0 ||
        lash__mp_i64(&a[3], &r->retry.max_ms) < 0 ||
        mp_double(&a[4], &r->retry.jitter) < 0)
      return LASH_ECORRUPT;
    r->retry.max_attempts = (uint32_t)u;
  }
  if (n > 25 && lash__mp_i64(&f[25], &r->run_at) < 0) return LASH_ECORRUPT;
  if (n > 26) {
    const msgpack_object *a = f[26].via.array.ptr;
    if (f[26].type != MSGPACK_OBJECT_ARRAY || f[26].via.array.size != 2 ||
        lash__mp_u64(&a[0], &u) < 0 || u > UINT32_MAX ||
        a[1].type != MSGPACK_OBJECT_BOOLEAN)
      return LASH_ECORRUPT;
    r->failures = (uint32_t)u;
    r->retry_due = a[1].via.boolean ? 1 : 0;
  }
  if (n > 27 && lash__mp_sv(&f[27], &r->unique_key, 1) < 0)
    return LASH_ECORRUPT;
  if (n > 28 && lash__mp_i64(&f[28], &r->unique_for_ms) < 0)
    return LASH_ECORRUPT;
  return 0;
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
