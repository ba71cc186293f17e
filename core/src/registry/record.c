/* record.c - MessagePack encodings of records, events, leases and
 * tombstones, lifecycle payloads, and the fold of one event onto a record.
 *
 * Encodings are arrays, versioned by LASH_FORMAT_VERSION (the store's meta
 * and the first element of every record). A record writes only what is
 * not at its default (the compact layout below); records of the older
 * layout, every field in a fixed place, are still read. Decoding uses
 * msgpack_unpack with the store's zone; strings and binaries reference the
 * input bytes, so a decoded value lives as long as those bytes.
 *
 * Every stored value (record, event, lease, tombstone) ends in a seal: the
 * CRC-32C of the bytes before it, 4 bytes big-endian (format 2). A value
 * whose seal does not match is damage (LASH_ECORRUPT), never decoded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen, strdup, clock_gettime, getrandom */
#endif
#include "registry-int.h"

#include "../base/crc32c.h"

#include <stdlib.h>
#include <string.h>

#define REC_FIELDS 21 /* + 1 (timeout_ms) when a budget is set */
#define REC_FIELDS_MAX                                                         \
  37                       /* [23] parent, [24] suspension (issue 9),          \
                              [25]..[31] (issue 13, retry), [32]..[37]         \
                              (issue 13, claim) */
#define REC_CLAIM_AT 31    /* 0-based index of [32] */
#define REC_CLAIM_N 36     /* fields written: through [36] conc_state */
#define REC_FIELDS_SUSP 24 /* through [24] suspension */

/* ------------------------------------------------------------ buffers */

int lash__buf_reserve(lash__buf *b, size_t extra) {
  size_t need = b->len + extra, cap;
  char *p;
  if (need < b->len) return LASH_ENOMEM;
  if (need <= b->cap) return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  p = realloc(b->p, cap);
  if (p == NULL) return LASH_ENOMEM;
  b->p = p;
  b->cap = cap;
  return 0;
}

int lash__buf_write(void *data, const char *p, size_t n) {
  lash__buf *b = data;
  if (n > b->cap - b->len && lash__buf_reserve(b, n) < 0) return -1;
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

void lash__buf_free(lash__buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

void lash__packer(msgpack_packer *pk, lash__buf *b) {
  b->len = 0;
  msgpack_packer_init(pk, b, lash__buf_write);
}

/* -------------------------------------------------------------- views */

lash__sv lash__sv_of(const void *p, size_t n) {
  lash__sv v;
  v.p = p != NULL ? (const char *)p : "";
  v.n = p != NULL ? n : 0;
  return v;
}

lash__sv lash__sv_str(const char *s) {
  lash__sv v;
  v.p = s;
  v.n = s != NULL ? strlen(s) : 0;
  return v;
}

int lash__sv_eq(lash__sv a, lash__sv b) {
  if (a.p == NULL || b.p == NULL) return a.p == NULL && b.p == NULL;
  return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static int sv_is(lash__sv v, const char *lit) {
  size_t n = strlen(lit);
  return v.n == n && memcmp(v.p, lit, n) == 0;
}

static int pack_sv(msgpack_packer *pk, lash__sv v) {
  if (v.p == NULL) return msgpack_pack_nil(pk);
  if (msgpack_pack_str(pk, v.n) != 0) return -1;
  return msgpack_pack_str_body(pk, v.p, v.n);
}

static int pack_bin(msgpack_packer *pk, lash__sv v) {
  if (v.p == NULL) return msgpack_pack_nil(pk);
  if (msgpack_pack_bin(pk, v.n) != 0) return -1;
  return msgpack_pack_bin_body(pk, v.p, v.n);
}

static int pack_cstr(msgpack_packer *pk, const char *s) {
  return pack_sv(pk, lash__sv_str(s));
}

/* ------------------------------------------------------ msgpack helpers */

const msgpack_object *lash__mp_map_get(const msgpack_object *map,
                                       const char *key) {
  size_t klen = strlen(key);
  uint32_t i;
  if (map->type != MSGPACK_OBJECT_MAP) return NULL;
  for (i = 0; i < map->via.map.size; i++) {
    const msgpack_object *k = &map->via.map.ptr[i].key;
    if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
        memcmp(k->via.str.ptr, key, klen) == 0)
      return &map->via.map.ptr[i].val;
  }
  return NULL;
}

int lash__mp_u64(const msgpack_object *o, uint64_t *out) {
  if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return LASH_ECORRUPT;
  *out = o->via.u64;
  return 0;
}

int lash__mp_i64(const msgpack_object *o, int64_t *out) {
  if (o == NULL) return LASH_ECORRUPT;
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    if (o->via.u64 > (uint64_t)INT64_MAX) return LASH_ECORRUPT;
    *out = (int64_t)o->via.u64;
    return 0;
  }
  if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
    *out = o->via.i64;
    return 0;
  }
  return LASH_ECORRUPT;
}

int lash__mp_sv(const msgpack_object *o, lash__sv *out, int nil_ok) {
  if (o == NULL) return LASH_ECORRUPT;
  if (o->type == MSGPACK_OBJECT_NIL && nil_ok) {
    out->p = NULL;
    out->n = 0;
    return 0;
  }
  if (o->type != MSGPACK_OBJECT_STR) return LASH_ECORRUPT;
  *out = lash__sv_of(o->via.str.ptr, o->via.str.size);
  return 0;
}

int lash__mp_bin(const msgpack_object *o, lash__sv *out) {
  if (o == NULL) return LASH_ECORRUPT;
  if (o->type == MSGPACK_OBJECT_BIN) {
    *out = lash__sv_of(o->via.bin.ptr, o->via.bin.size);
    return 0;
  }
  return LASH_ECORRUPT;
}

static int mp_bool(const msgpack_object *o, int *out) {
  if (o == NULL || o->type != MSGPACK_OBJECT_BOOLEAN) return LASH_ECORRUPT;
  *out = o->via.boolean ? 1 : 0;
  return 0;
}

static int mp_u32(const msgpack_object *o, uint32_t *out) {
  uint64_t v;
  if (lash__mp_u64(o, &v) < 0 || v > UINT32_MAX) return LASH_ECORRUPT;
  *out = (uint32_t)v;
  return 0;
}

static int mp_int(const msgpack_object *o, int lo, int hi, int *out) {
  uint64_t v;
  if (lash__mp_u64(o, &v) < 0 || v < (uint64_t)lo || v > (uint64_t)hi)
    return LASH_ECORRUPT;
  *out = (int)v;
  return 0;
}

/* Unpacks exactly one object spanning [p, p+n). */
/* 1 if the n bytes at p start with one whole MessagePack value whose
 * arrays and maps claim no more elements than bytes are left. msgpack-c
 * allocates what a container header claims before it reads a single
 * element, so a damaged header (an array32 of 4 billion) must not reach
 * it. Reads only: one pass over the headers. */
static int mp_plausible(const unsigned char *p, size_t n) {
  size_t i = 0;
  uint64_t pending = 1, skip, count;
  static const unsigned char fixed[32] = {
      /* 0xc0..0xdf: bytes after the type byte (0xff: length-prefixed or a
       * container, handled below) */
      0, 0xff, 0,  0,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 4,
      8, 1,    2,  4,    8,    1,    2,    4,    8,    2,    3,
      5, 9,    17, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  while (pending > 0) {
    unsigned char c;
    unsigned w = 0; /* width of a length or count field */
    if (i >= n) return 0;
    c = p[i++];
    pending--;
    skip = count = 0;
    if (c <= 0x7f || c >= 0xe0) continue;
    if (c <= 0x8f) {
      count = 2u * (c & 0x0f);
    } else if (c <= 0x9f) {
      count = c & 0x0f;
    } else if (c <= 0xbf) {
      skip = c & 0x1f;
    } else if (fixed[c - 0xc0] != 0xff) {
      skip = fixed[c - 0xc0];
    } else if (c == 0xc1) {
      return 0; /* never used */
    } else {
      uint64_t v = 0;
      unsigned k;
      switch (c) {
      case 0xc4:
      case 0xc7:
      case 0xd9:
        w = 1;
        break;
      case 0xc5:
      case 0xc8:
      case 0xda:
      case 0xdc:
      case 0xde:
        w = 2;
        break;
      default:
        w = 4;
        break; /* c6 c9 db dd df */
      }
      if (n - i < w) return 0;
      for (k = 0; k < w; k++)
        v = v << 8 | p[i++];
      if (c == 0xdc || c == 0xdd)
        count = v;
      else if (c == 0xde || c == 0xdf)
        count = 2 * v;
      else
        skip = v + (c >= 0xc7 && c <= 0xc9); /* ext: its type byte */
    }
    if (skip > n - i) return 0;
    i += (size_t)skip;
    pending += count;
    if (pending > n - i) return 0; /* each element takes a byte at least */
  }
  return 1;
}

static int unpack(const void *p, size_t n, msgpack_zone *z, msgpack_object *o) {
  size_t off = 0;
  msgpack_unpack_return r;
  if (n == 0 || !mp_plausible(p, n)) return LASH_ECORRUPT;
  r = msgpack_unpack(p, n, &off, z, o);
  if (r != MSGPACK_UNPACK_SUCCESS) return LASH_ECORRUPT;
  return 0;
}

int lash__mp_unpack(const void *p, size_t n, msgpack_zone *z,
                    msgpack_object *o) {
  return unpack(p, n, z, o);
}

/* --------------------------------------------------------------- seals */

#define SEAL 4

static int seal(lash__buf *b, int e) {
  uint32_t c;
  if (e != 0 || lash__buf_reserve(b, SEAL) < 0) return LASH_ENOMEM;
  c = lash__crc32c(b->p, b->len);
  b->p[b->len++] = (char)(c >> 24);
  b->p[b->len++] = (char)(c >> 16);
  b->p[b->len++] = (char)(c >> 8);
  b->p[b->len++] = (char)c;
  return 0;
}

/* 0 and *n without the seal, or LASH_ECORRUPT. */
static int unseal(const void *p, size_t *n) {
  const unsigned char *q = p;
  uint32_t c;
  if (p == NULL || *n <= SEAL) return LASH_ECORRUPT;
  *n -= SEAL;
  c = ((uint32_t)q[*n] << 24) | ((uint32_t)q[*n + 1] << 16) |
      ((uint32_t)q[*n + 2] << 8) | q[*n + 3];
  return c == lash__crc32c(p, *n) ? 0 : LASH_ECORRUPT;
}

/* Unpacks the sealed value [p, p+n). */
static int unpack_sealed(const void *p, size_t n, msgpack_zone *z,
                         msgpack_object *o) {
  if (unseal(p, &n) < 0) return LASH_ECORRUPT;
  return unpack(p, n, z, o);
}

/* ---- issue 13 (retry), the older layout: record fields [25]..[29] ---- */

static int mp_double(const msgpack_object *o, double *out) {
  if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
    *out = o->via.f64;
  else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
    *out = (double)o->via.u64;
  else
    return LASH_ECORRUPT;
  return 0;
}

static int retry_unpack_fields(const msgpack_object *f, size_t n,
                               lash__rec *r) {
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

/* ------------------------------------------------------------ records */

static void clear_suspension(lash__rec *r);

void lash__rec_reset_projection(lash__rec *r) {
  r->status = LASH_PENDING;
  r->has_attempt = 0;
  r->att_owner.p = r->att_inc.p = NULL;
  r->att_owner.n = r->att_inc.n = 0;
  r->att_fence = 0;
  r->att_number = 0;
  r->att_started_at = 0;
  r->outcome.p = NULL;
  r->outcome.n = 0;
  r->wait.p = NULL;
  r->wait.n = 0;
  r->wait_since = 0;
  r->cancel_requested = 0;
  r->cancel_reason.p = NULL;
  r->cancel_reason.n = 0;
  r->abandon_requested = 0;
  r->abandon_by.p = r->abandon_reason.p = NULL;
  r->abandon_by.n = r->abandon_reason.n = 0;
  r->updated_at = r->created_at;
  r->last_seq = 0;
  r->term_unleased = 0;
  clear_suspension(r);
  /* ---- issue 13 (retry): a delayed row waits from its registration ---- */
  r->failures = 0;
  r->retry_due = 0;
  if (r->run_at > r->created_at) {
    r->suspended = 1;
    r->wake_at = r->run_at;
  }
}

void lash__rec_base(lash__rec *r, lash__sv id, lash__sv kind, lash__sv input,
                    int disposition, uint32_t max_attempts, int64_t now,
                    uint64_t floor) {
  memset(r, 0, sizeof *r);
  r->id = id;
  r->kind = kind;
  r->input = input;
  r->disposition = disposition;
  r->max_attempts = max_attempts;
  r->created_at = now;
  r->floor = floor;
  lash__rec_reset_projection(r);
  r->change_seq = 0;
}

/* ---- issue 13 (claim), the older layout: [30] and [31] nil, then [32]
 * priority, [33] created_seq, [34] concurrency key (nil: none), [35] its
 * limit, [36] conc_state ---- */
static int claim_from_obj(const msgpack_object *o, lash__rec *r) {
  const msgpack_object *f = o->via.array.ptr;
  int64_t lim;
  if (o->via.array.size < REC_CLAIM_N) return 0;
  if (lash__mp_i64(&f[REC_CLAIM_AT], &r->priority) < 0 ||
      lash__mp_u64(&f[REC_CLAIM_AT + 1], &r->created_seq) < 0 ||
      lash__mp_sv(&f[REC_CLAIM_AT + 2], &r->conc_key, 1) < 0 ||
      lash__mp_i64(&f[REC_CLAIM_AT + 3], &lim) < 0 || lim < 0 ||
      lim > INT32_MAX ||
      mp_int(&f[REC_CLAIM_AT + 4], LASH_CONC_NONE, LASH_CONC_WAITS,
             &r->conc_state) < 0)
    return LASH_ECORRUPT;
  if (r->conc_key.p != NULL &&
      (r->conc_key.n == 0 || r->conc_key.n > LASH_NAME_MAX))
    return LASH_ECORRUPT;
  r->conc_limit = (int32_t)lim;
  return 0;
}

/* ---- the compact record (issue 10): what a record holds by default is
 * not written ----
 *
 *   [version, mask, id, kind, input, status, created_at, updated_at -
 * created_at, last_seq, change_seq, created_seq, <one element per set bit of
 * mask that carries a value, in bit order>]
 *
 * The older layout (the version, then all 21..36 fields in a fixed order,
 * id at [1]) is still read: its element [1] is a string, this one's an
 * integer. Times after the creation are differences from created_at
 * (small integers instead of 9-byte ones), wrapping in 64 bits. */
enum {
  RB_ATTEMPT = 1u << 0, /* [owner, inc, fence, number, started - created] */
  RB_OUTCOME = 1u << 1, /* bin */
  RB_DISP = 1u << 2,    /* disposition, absent: LASH_RERUNNABLE */
  RB_MAXATT = 1u << 3,  /* max_attempts */
  RB_FLOOR = 1u << 4,   /* floor */
  RB_WAIT = 1u << 5,    /* wait */
  RB_SINCE = 1u << 6,   /* wait_since */
  RB_CANCEL = 1u << 7,  /* cancel requested: its reason (str or nil) */
  RB_ABANDON = 1u << 8, /* abandon requested: [by, reason] */
  RB_TIMEOUT = 1u << 9, /* timeout_ms */
  RB_PARENT = 1u << 10, /* parent */
  RB_SUSP = 1u << 11,   /* [state, event, process, wake_at] */
  RB_RETRY = 1u << 12,  /* [max_attempts, initial_ms, factor, max_ms, jitter] */
  RB_RUNAT = 1u << 13,  /* run_at */
  RB_FAILS = 1u << 14,  /* failures */
  RB_DUE = 1u << 15,    /* retry_due (no value) */
  RB_UNIQUE = 1u << 16, /* unique_key */
  RB_UFOR = 1u << 17,   /* unique_for_ms */
  RB_PRIO = 1u << 18,   /* priority */
  RB_CKEY = 1u << 19,   /* concurrency key */
  RB_CLIMIT = 1u << 20, /* its limit */
  RB_CSTATE = 1u << 21, /* conc_state */
  RB_ALL = (1u << 22) - 1,
  RB_FLAGS = RB_DUE /* bits without an element */
};
#define REC_FIXED 11 /* elements before the optional ones */

static int64_t delta(int64_t t, int64_t base) {
  return (int64_t)((uint64_t)t - (uint64_t)base);
}

static int64_t undelta(int64_t d, int64_t base) {
  return (int64_t)((uint64_t)base + (uint64_t)d);
}

static uint32_t rec_mask(const lash__rec *r) {
  uint32_t m = 0;
  if (r->has_attempt) m |= RB_ATTEMPT;
  if (r->outcome.p != NULL) m |= RB_OUTCOME;
  if (r->disposition != LASH_RERUNNABLE) m |= RB_DISP;
  if (r->max_attempts != 0) m |= RB_MAXATT;
  if (r->floor != 0) m |= RB_FLOOR;
  if (r->wait.p != NULL) m |= RB_WAIT;
  if (r->wait_since != 0) m |= RB_SINCE;
  if (r->cancel_requested) m |= RB_CANCEL;
  if (r->abandon_requested) m |= RB_ABANDON;
  if (r->timeout_ms != 0) m |= RB_TIMEOUT;
  if (r->parent.p != NULL) m |= RB_PARENT;
  if (r->suspended || r->woken) m |= RB_SUSP;
  if (r->retry.max_attempts > 0) m |= RB_RETRY;
  if (r->run_at != 0) m |= RB_RUNAT;
  if (r->failures != 0) m |= RB_FAILS;
  if (r->retry_due) m |= RB_DUE;
  if (r->unique_key.p != NULL) m |= RB_UNIQUE;
  if (r->unique_for_ms != 0) m |= RB_UFOR;
  if (r->priority != 0) m |= RB_PRIO;
  if (r->conc_key.p != NULL) m |= RB_CKEY;
  if (r->conc_limit != 0) m |= RB_CLIMIT;
  if (r->conc_state != LASH_CONC_NONE) m |= RB_CSTATE;
  return m;
}

static uint32_t popcount32(uint32_t m) {
  uint32_t n = 0;
  for (; m != 0; m &= m - 1)
    n++;
  return n;
}

int lash__rec_encode(const lash__rec *r, lash__buf *b) {
  msgpack_packer pk;
  uint32_t m = rec_mask(r);
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_array(&pk, REC_FIXED + popcount32(m & ~(uint32_t)RB_FLAGS));
  e |= msgpack_pack_uint32(&pk, LASH_FORMAT_VERSION);
  e |= msgpack_pack_uint32(&pk, m);
  e |= pack_sv(&pk, r->id);
  e |= pack_sv(&pk, r->kind);
  e |= pack_bin(&pk, lash__sv_of(r->input.p, r->input.n));
  e |= msgpack_pack_int(&pk, r->status);
  e |= msgpack_pack_int64(&pk, r->created_at);
  e |= msgpack_pack_int64(&pk, delta(r->updated_at, r->created_at));
  e |= msgpack_pack_uint64(&pk, r->last_seq);
  e |= msgpack_pack_uint64(&pk, r->change_seq);
  e |= msgpack_pack_uint64(&pk, r->created_seq);
  if (m & RB_ATTEMPT) {
    e |= msgpack_pack_array(&pk, 5);
    e |= pack_sv(&pk, lash__sv_of(r->att_owner.p, r->att_owner.n));
    e |= pack_sv(&pk, lash__sv_of(r->att_inc.p, r->att_inc.n));
    e |= msgpack_pack_uint64(&pk, r->att_fence);
    e |= msgpack_pack_uint32(&pk, r->att_number);
    e |= msgpack_pack_int64(&pk, delta(r->att_started_at, r->created_at));
  }
  if (m & RB_OUTCOME) e |= pack_bin(&pk, r->outcome);
  if (m & RB_DISP) e |= msgpack_pack_int(&pk, r->disposition);
  if (m & RB_MAXATT) e |= msgpack_pack_uint32(&pk, r->max_attempts);
  if (m & RB_FLOOR) e |= msgpack_pack_uint64(&pk, r->floor);
  if (m & RB_WAIT) e |= pack_sv(&pk, r->wait);
  if (m & RB_SINCE) e |= msgpack_pack_int64(&pk, r->wait_since);
  if (m & RB_CANCEL) e |= pack_sv(&pk, r->cancel_reason);
  if (m & RB_ABANDON) {
    e |= msgpack_pack_array(&pk, 2);
    e |= pack_sv(&pk, r->abandon_by);
    e |= pack_sv(&pk, r->abandon_reason);
  }
  if (m & RB_TIMEOUT) e |= msgpack_pack_int64(&pk, r->timeout_ms);
  if (m & RB_PARENT) e |= pack_sv(&pk, r->parent);
  if (m & RB_SUSP) {
    e |= msgpack_pack_array(&pk, 4);
    e |= msgpack_pack_int(&pk, r->suspended ? 1 : 2);
    e |= pack_sv(&pk, r->wake_event);
    e |= pack_sv(&pk, r->wake_process);
    e |= msgpack_pack_int64(&pk, r->wake_at);
  }
  if (m & RB_RETRY) {
    e |= msgpack_pack_array(&pk, 5);
    e |= msgpack_pack_uint32(&pk, r->retry.max_attempts);
    e |= msgpack_pack_int64(&pk, r->retry.initial_ms);
    e |= msgpack_pack_double(&pk, r->retry.factor);
    e |= msgpack_pack_int64(&pk, r->retry.max_ms);
    e |= msgpack_pack_double(&pk, r->retry.jitter);
  }
  if (m & RB_RUNAT) e |= msgpack_pack_int64(&pk, r->run_at);
  if (m & RB_FAILS) e |= msgpack_pack_uint32(&pk, r->failures);
  if (m & RB_UNIQUE) e |= pack_sv(&pk, r->unique_key);
  if (m & RB_UFOR) e |= msgpack_pack_int64(&pk, r->unique_for_ms);
  if (m & RB_PRIO) e |= msgpack_pack_int64(&pk, r->priority);
  if (m & RB_CKEY) e |= pack_sv(&pk, r->conc_key);
  if (m & RB_CLIMIT) e |= msgpack_pack_int32(&pk, r->conc_limit);
  if (m & RB_CSTATE) e |= msgpack_pack_int(&pk, r->conc_state);
  return seal(b, e);
}

static int rec_from_compact(const msgpack_object *o, lash__rec *r) {
  const msgpack_object *f = o->via.array.ptr, *a, *x;
  uint32_t m;
  int64_t d, lim;
  if (mp_u32(&f[1], &m) < 0 || (m & ~(uint32_t)RB_ALL) != 0 ||
      o->via.array.size != REC_FIXED + popcount32(m & ~(uint32_t)RB_FLAGS))
    return LASH_ECORRUPT;
  r->disposition = LASH_RERUNNABLE;
  if (lash__mp_sv(&f[2], &r->id, 0) < 0 ||
      lash__mp_sv(&f[3], &r->kind, 0) < 0 ||
      lash__mp_bin(&f[4], &r->input) < 0 ||
      mp_int(&f[5], LASH_PENDING, LASH_ABANDONED, &r->status) < 0 ||
      lash__mp_i64(&f[6], &r->created_at) < 0 || lash__mp_i64(&f[7], &d) < 0 ||
      lash__mp_u64(&f[8], &r->last_seq) < 0 ||
      lash__mp_u64(&f[9], &r->change_seq) < 0 ||
      lash__mp_u64(&f[10], &r->created_seq) < 0)
    return LASH_ECORRUPT;
  r->updated_at = undelta(d, r->created_at);
  x = f + REC_FIXED; /* the next optional element */
  if (m & RB_ATTEMPT) {
    if (x->type != MSGPACK_OBJECT_ARRAY || x->via.array.size != 5)
      return LASH_ECORRUPT;
    a = x->via.array.ptr;
    r->has_attempt = 1;
    if (lash__mp_sv(&a[0], &r->att_owner, 0) < 0 ||
        lash__mp_sv(&a[1], &r->att_inc, 0) < 0 ||
        lash__mp_u64(&a[2], &r->att_fence) < 0 ||
        mp_u32(&a[3], &r->att_number) < 0 || lash__mp_i64(&a[4], &d) < 0)
      return LASH_ECORRUPT;
    r->att_started_at = undelta(d, r->created_at);
    x++;
  }
  if ((m & RB_OUTCOME) && lash__mp_bin(x++, &r->outcome) < 0)
    return LASH_ECORRUPT;
  if ((m & RB_DISP) &&
      mp_int(x++, LASH_RERUNNABLE, LASH_EXTERNAL, &r->disposition) < 0)
    return LASH_ECORRUPT;
  if ((m & RB_MAXATT) && mp_u32(x++, &r->max_attempts) < 0)
    return LASH_ECORRUPT;
  if ((m & RB_FLOOR) && lash__mp_u64(x++, &r->floor) < 0) return LASH_ECORRUPT;
  if ((m & RB_WAIT) && lash__mp_sv(x++, &r->wait, 0) < 0) return LASH_ECORRUPT;
  if ((m & RB_SINCE) && lash__mp_i64(x++, &r->wait_since) < 0)
    return LASH_ECORRUPT;
  if (m & RB_CANCEL) {
    r->cancel_requested = 1;
    if (lash__mp_sv(x++, &r->cancel_reason, 1) < 0) return LASH_ECORRUPT;
  }
  if (m & RB_ABANDON) {
    if (x->type != MSGPACK_OBJECT_ARRAY || x->via.array.size != 2 ||
        lash__mp_sv(&x->via.array.ptr[0], &r->abandon_by, 1) < 0 ||
        lash__mp_sv(&x->via.array.ptr[1], &r->abandon_reason, 1) < 0)
      return LASH_ECORRUPT;
    r->abandon_requested = 1;
    x++;
  }
  if ((m & RB_TIMEOUT) &&
      (lash__mp_i64(x++, &r->timeout_ms) < 0 || r->timeout_ms < 0))
    return LASH_ECORRUPT;
  if ((m & RB_PARENT) && (lash__mp_sv(x++, &r->parent, 0) < 0 ||
                          r->parent.n == 0 || r->parent.n > LASH_ID_MAX))
    return LASH_ECORRUPT;
  if (m & RB_SUSP) {
    int state;
    a = x->via.array.ptr;
    if (x->type != MSGPACK_OBJECT_ARRAY || x->via.array.size != 4 ||
        mp_int(&a[0], 1, 2, &state) < 0 ||
        lash__mp_sv(&a[1], &r->wake_event, 1) < 0 ||
        lash__mp_sv(&a[2], &r->wake_process, 1) < 0 ||
        lash__mp_i64(&a[3], &r->wake_at) < 0)
      return LASH_ECORRUPT;
    r->suspended = state == 1;
    r->woken = state == 2;
    x++;
  }
  if (m & RB_RETRY) {
    a = x->via.array.ptr;
    if (x->type != MSGPACK_OBJECT_ARRAY || x->via.array.size != 5 ||
        mp_u32(&a[0], &r->retry.max_attempts) < 0 ||
        r->retry.max_attempts == 0 ||
        lash__mp_i64(&a[1], &r->retry.initial_ms) < 0 ||
        mp_double(&a[2], &r->retry.factor) < 0 ||
        lash__mp_i64(&a[3], &r->retry.max_ms) < 0 ||
        mp_double(&a[4], &r->retry.jitter) < 0)
      return LASH_ECORRUPT;
    x++;
  }
  if ((m & RB_RUNAT) && lash__mp_i64(x++, &r->run_at) < 0) return LASH_ECORRUPT;
  if ((m & RB_FAILS) && mp_u32(x++, &r->failures) < 0) return LASH_ECORRUPT;
  r->retry_due = (m & RB_DUE) != 0;
  if ((m & RB_UNIQUE) && lash__mp_sv(x++, &r->unique_key, 0) < 0)
    return LASH_ECORRUPT;
  if ((m & RB_UFOR) && lash__mp_i64(x++, &r->unique_for_ms) < 0)
    return LASH_ECORRUPT;
  if ((m & RB_PRIO) && lash__mp_i64(x++, &r->priority) < 0)
    return LASH_ECORRUPT;
  if ((m & RB_CKEY) && (lash__mp_sv(x++, &r->conc_key, 0) < 0 ||
                        r->conc_key.n == 0 || r->conc_key.n > LASH_NAME_MAX))
    return LASH_ECORRUPT;
  if (m & RB_CLIMIT) {
    if (lash__mp_i64(x++, &lim) < 0 || lim < 0 || lim > INT32_MAX)
      return LASH_ECORRUPT;
    r->conc_limit = (int32_t)lim;
  }
  if ((m & RB_CSTATE) &&
      mp_int(x++, LASH_CONC_NONE, LASH_CONC_WAITS, &r->conc_state) < 0)
    return LASH_ECORRUPT;
  return 0;
}

static int rec_from_obj(const msgpack_object *o, lash__rec *r) {
  const msgpack_object *f, *a;
  uint32_t version;
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < REC_FIXED ||
      o->via.array.size > REC_FIELDS_MAX)
    return LASH_ECORRUPT;
  f = o->via.array.ptr;
  memset(r, 0, sizeof *r);
  if (mp_u32(&f[0], &version) < 0 || version != LASH_FORMAT_VERSION)
    return LASH_ECORRUPT;
  if (f[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
    return rec_from_compact(o, r);
  /* the older layout: every field in a fixed place */
  if (o->via.array.size < REC_FIELDS) return LASH_ECORRUPT;
  if (lash__mp_sv(&f[1], &r->id, 0) < 0 ||
      lash__mp_sv(&f[2], &r->kind, 0) < 0 ||
      lash__mp_bin(&f[3], &r->input) < 0 ||
      mp_int(&f[4], LASH_RERUNNABLE, LASH_EXTERNAL, &r->disposition) < 0 ||
      mp_u32(&f[5], &r->max_attempts) < 0 ||
      lash__mp_i64(&f[6], &r->created_at) < 0 ||
      lash__mp_u64(&f[7], &r->floor) < 0 ||
      mp_int(&f[8], LASH_PENDING, LASH_ABANDONED, &r->status) < 0)
    return LASH_ECORRUPT;
  if (f[9].type == MSGPACK_OBJECT_ARRAY) {
    if (f[9].via.array.size != 5) return LASH_ECORRUPT;
    a = f[9].via.array.ptr;
    r->has_attempt = 1;
    if (lash__mp_sv(&a[0], &r->att_owner, 0) < 0 ||
        lash__mp_sv(&a[1], &r->att_inc, 0) < 0 ||
        lash__mp_u64(&a[2], &r->att_fence) < 0 ||
        mp_u32(&a[3], &r->att_number) < 0 ||
        lash__mp_i64(&a[4], &r->att_started_at) < 0)
      return LASH_ECORRUPT;
  } else if (f[9].type != MSGPACK_OBJECT_NIL) {
    return LASH_ECORRUPT;
  }
  if (f[10].type != MSGPACK_OBJECT_NIL && lash__mp_bin(&f[10], &r->outcome) < 0)
    return LASH_ECORRUPT;
  if (lash__mp_sv(&f[11], &r->wait, 1) < 0 ||
      lash__mp_i64(&f[12], &r->wait_since) < 0 ||
      mp_bool(&f[13], &r->cancel_requested) < 0 ||
      lash__mp_sv(&f[14], &r->cancel_reason, 1) < 0 ||
      mp_bool(&f[15], &r->abandon_requested) < 0 ||
      lash__mp_sv(&f[16], &r->abandon_by, 1) < 0 ||
      lash__mp_sv(&f[17], &r->abandon_reason, 1) < 0 ||
      lash__mp_i64(&f[18], &r->updated_at) < 0 ||
      lash__mp_u64(&f[19], &r->last_seq) < 0 ||
      lash__mp_u64(&f[20], &r->change_seq) < 0)
    return LASH_ECORRUPT;
  if (o->via.array.size > REC_FIELDS &&
      (lash__mp_i64(&f[21], &r->timeout_ms) < 0 || r->timeout_ms < 0))
    return LASH_ECORRUPT;
  /* replay keys (A): [23] parent (nil: none) */
  if (o->via.array.size > REC_FIELDS + 1 &&
      (lash__mp_sv(&f[22], &r->parent, 1) < 0 ||
       (r->parent.p != NULL &&
        (r->parent.n == 0 || r->parent.n > LASH_ID_MAX))))
    return LASH_ECORRUPT;
  if (o->via.array.size > 23 && f[23].type != MSGPACK_OBJECT_NIL) {
    const msgpack_object *w = f[23].via.array.ptr;
    int state;
    if (f[23].type != MSGPACK_OBJECT_ARRAY || f[23].via.array.size != 4 ||
        mp_int(&w[0], 1, 2, &state) < 0 ||
        lash__mp_sv(&w[1], &r->wake_event, 1) < 0 ||
        lash__mp_sv(&w[2], &r->wake_process, 1) < 0 ||
        lash__mp_i64(&w[3], &r->wake_at) < 0)
      return LASH_ECORRUPT;
    r->suspended = state == 1;
    r->woken = state == 2;
  }
  /* ---- issue 13 (retry): [25]..[29] ---- */
  if (o->via.array.size > REC_FIELDS_SUSP &&
      retry_unpack_fields(f, o->via.array.size, r) < 0)
    return LASH_ECORRUPT;
  return claim_from_obj(o, r); /* (claim): [32]..[36] */
}

/* The sealed record [p, p+n); @p checked: its seal and headers were
 * verified before (bytes this process encoded, or decoded once already). */
static int rec_decode(const void *p, size_t n, lash__rec *r, msgpack_zone *z,
                      int checked) {
  msgpack_object o;
  size_t off = 0;
  int rc;
  if (!checked)
    rc = unpack_sealed(p, n, z, &o);
  else if (p == NULL || n <= SEAL)
    rc = LASH_ECORRUPT;
  else
    rc = msgpack_unpack(p, n - SEAL, &off, z, &o) == MSGPACK_UNPACK_SUCCESS
             ? 0
             : LASH_ECORRUPT;
  if (rc == 0) rc = rec_from_obj(&o, r);
  msgpack_zone_clear(z);
  return rc;
}

int lash__rec_decode(const void *p, size_t n, lash__rec *r, msgpack_zone *z) {
  return rec_decode(p, n, r, z, 0);
}

int lash__rec_decode_own(const void *p, size_t n, lash__rec *r,
                         msgpack_zone *z) {
  return rec_decode(p, n, r, z, 1);
}

/* Appends a NUL-terminated copy of v to the block at *pos; NULL if absent. */
static const char *put_str(char *base, size_t *pos, lash__sv v) {
  char *d;
  if (v.p == NULL) return NULL;
  d = base + *pos;
  memcpy(d, v.p, v.n);
  d[v.n] = '\0';
  *pos += v.n + 1;
  return d;
}

static void copy_name(char *dst, lash__sv v) {
  size_t n = v.p != NULL ? v.n : 0;
  if (n > LASH_NAME_MAX) n = LASH_NAME_MAX;
  if (n > 0) memcpy(dst, v.p, n);
  dst[n] = '\0';
}

static size_t str_size(lash__sv v) {
  return v.p != NULL ? v.n + 1 : 0;
}

int lash__rec_export(const lash__rec *r, lash_record *out, lash__buf *arena) {
  size_t total, pos = 0;
  char *base;
  total = str_size(r->id) + str_size(r->kind) + r->input.n + 1 + r->outcome.n +
          1 + str_size(r->wait) + str_size(r->cancel_reason) +
          str_size(r->abandon_by) + str_size(r->abandon_reason) +
          str_size(r->parent) + str_size(r->wake_event) +
          str_size(r->wake_process) + str_size(r->unique_key) +
          str_size(r->conc_key);
  memset(out, 0, sizeof *out);
  if (arena == NULL) {
    base = malloc(total);
    if (base == NULL) return LASH_ENOMEM;
    out->priv_ = base;
  } else {
    arena->len = 0;
    if (lash__buf_reserve(arena, total) < 0) return LASH_ENOMEM;
    base = arena->p;
  }
  out->id = put_str(base, &pos, r->id);
  out->kind = put_str(base, &pos, r->kind);
  out->input.data = base + pos;
  out->input.len = r->input.n;
  if (r->input.n > 0) memcpy(base + pos, r->input.p, r->input.n);
  pos += r->input.n + 1;
  if (r->outcome.p != NULL) {
    out->outcome.data = base + pos;
    out->outcome.len = r->outcome.n;
    if (r->outcome.n > 0) memcpy(base + pos, r->outcome.p, r->outcome.n);
  }
  pos += r->outcome.n + 1;
  out->wait = put_str(base, &pos, r->wait);
  out->cancel_reason = put_str(base, &pos, r->cancel_reason);
  out->abandon_by = put_str(base, &pos, r->abandon_by);
  out->abandon_reason = put_str(base, &pos, r->abandon_reason);
  out->parent = put_str(base, &pos, r->parent);
  if (r->suspended) {
    out->suspended = 1;
    out->wake_event = put_str(base, &pos, r->wake_event);
    out->wake_process = put_str(base, &pos, r->wake_process);
    out->wake_at = r->wake_at;
  }
  /* ---- issue 13 (retry) ---- */
  out->unique_key = put_str(base, &pos, r->unique_key);
  out->unique_for_ms = r->unique_for_ms;
  out->retry = r->retry;
  out->run_at = r->run_at;
  out->failures = r->failures;
  out->retry_due = r->retry_due;
  /* issue 13 (claim) */
  out->priority = r->priority;
  out->created_seq = r->created_seq;
  out->concurrency_key = put_str(base, &pos, r->conc_key);
  out->concurrency_limit = r->conc_limit;
  out->conc_state = r->conc_state;
  out->disposition = r->disposition;
  out->max_attempts = r->max_attempts;
  out->timeout_ms = r->timeout_ms;
  out->status = r->status;
  out->has_attempt = r->has_attempt;
  if (r->has_attempt) {
    copy_name(out->attempt.owner, r->att_owner);
    copy_name(out->attempt.incarnation, r->att_inc);
    out->attempt.fence = r->att_fence;
    out->attempt.number = r->att_number;
    out->attempt.started_at = r->att_started_at;
  }
  out->wait_since = r->wait_since;
  out->cancel_requested = r->cancel_requested;
  out->abandon_requested = r->abandon_requested;
  out->created_at = r->created_at;
  out->updated_at = r->updated_at;
  out->last_seq = r->last_seq;
  out->change_seq = r->change_seq;
  return 0;
}

void lash_record_free(lash_record *r) {
  if (r == NULL) return;
  free(r->priv_);
  memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------- events */

/* The core's own event types are written as their number here (issue 10:
 * one byte instead of 16-25); every other type as its string. Append
 * only: a number, once written, names its type for good. */
static const char *const ev_types[] = {NULL,
                                       LASH__EV_STARTED,
                                       "process.completed",
                                       "process.failed",
                                       "process.cancelled",
                                       "process.abandoned",
                                       LASH__EV_WAITING,
                                       LASH__EV_RESUMED,
                                       LASH__EV_CANCEL_REQ,
                                       LASH__EV_ABANDON_REQ,
                                       LASH__EV_SUSPENDED,
                                       LASH__EV_WOKEN,
                                       LASH__EV_ATTEMPT_FAILED,
                                       LASH__EV_RETRIED,
                                       "process.step",
                                       "process.child",
                                       "process.sleep",
                                       "process.wait",
                                       "process.timeout",
                                       "process.value"};
#define EV_TYPES (sizeof ev_types / sizeof ev_types[0])

static unsigned ev_type_code(lash__sv type) {
  unsigned i;
  if (type.n < 8 || memcmp(type.p, "process.", 8) != 0) return 0;
  for (i = 1; i < EV_TYPES; i++)
    if (sv_is(type, ev_types[i])) return i;
  return 0;
}

int lash__ev_encode(const lash__ev *ev, lash__buf *b) {
  msgpack_packer pk;
  unsigned code = ev_type_code(ev->type);
  int e = 0;
  lash__packer(&pk, b);
  /* replay keys (A): a 4th element, the key, only when there is one */
  e |= msgpack_pack_array(&pk, ev->key.p != NULL ? 4 : 3);
  if (code != 0)
    e |= msgpack_pack_unsigned_int(&pk, code);
  else
    e |= pack_sv(&pk, ev->type);
  e |= pack_bin(&pk, lash__sv_of(ev->payload.p, ev->payload.n));
  e |= msgpack_pack_int64(&pk, ev->at);
  if (ev->key.p != NULL) e |= pack_sv(&pk, ev->key);
  return seal(b, e);
}

static int ev_type_of(const msgpack_object *o, lash__sv *type) {
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    if (o->via.u64 == 0 || o->via.u64 >= EV_TYPES) return LASH_ECORRUPT;
    *type = lash__sv_str(ev_types[o->via.u64]);
    return 0;
  }
  return lash__mp_sv(o, type, 0);
}

int lash__ev_decode(const void *p, size_t n, lash__ev *ev, msgpack_zone *z) {
  msgpack_object o;
  int rc = unpack_sealed(p, n, z, &o);
  if (rc == 0) {
    ev->key.p = NULL;
    ev->key.n = 0;
    if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size < 3 ||
        o.via.array.size > 4 ||
        ev_type_of(&o.via.array.ptr[0], &ev->type) < 0 ||
        lash__mp_bin(&o.via.array.ptr[1], &ev->payload) < 0 ||
        lash__mp_i64(&o.via.array.ptr[2], &ev->at) < 0 ||
        (o.via.array.size == 4 &&
         lash__mp_sv(&o.via.array.ptr[3], &ev->key, 0) < 0))
      rc = LASH_ECORRUPT;
  }
  msgpack_zone_clear(z);
  return rc;
}

/* ------------------------------------------------------------- leases */

int lash__lease_encode(const lash_lease *ls, lash__buf *b) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_array(&pk, 5);
  e |= pack_cstr(&pk, ls->owner);
  e |= pack_cstr(&pk, ls->incarnation);
  e |= msgpack_pack_uint64(&pk, ls->token);
  e |= msgpack_pack_uint64(&pk, ls->fence);
  e |= msgpack_pack_int64(&pk, ls->expires_at);
  return seal(b, e);
}

int lash__lease_decode(const void *p, size_t n, lash_lease *ls,
                       msgpack_zone *z) {
  msgpack_object o;
  lash__sv owner, inc;
  int rc = unpack_sealed(p, n, z, &o);
  if (rc == 0) {
    const msgpack_object *f = o.via.array.ptr;
    if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 5 ||
        lash__mp_sv(&f[0], &owner, 0) < 0 || lash__mp_sv(&f[1], &inc, 0) < 0 ||
        owner.n > LASH_NAME_MAX || inc.n > LASH_NAME_MAX ||
        lash__mp_u64(&f[2], &ls->token) < 0 ||
        lash__mp_u64(&f[3], &ls->fence) < 0 ||
        lash__mp_i64(&f[4], &ls->expires_at) < 0) {
      rc = LASH_ECORRUPT;
    } else {
      copy_name(ls->owner, owner);
      copy_name(ls->incarnation, inc);
    }
  }
  msgpack_zone_clear(z);
  return rc;
}

/* ---------------------------------------------------------- tombstones */

int lash__tomb_encode(const lash_tombstone *t, lash__buf *b) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_array(&pk, 4);
  e |= msgpack_pack_int(&pk, t->status);
  e |= msgpack_pack_int64(&pk, t->pruned_at);
  e |= msgpack_pack_uint64(&pk, t->change_seq);
  e |= msgpack_pack_uint64(&pk, t->last_seq);
  return seal(b, e);
}

int lash__tomb_decode(const void *p, size_t n, lash_tombstone *t,
                      msgpack_zone *z) {
  msgpack_object o;
  int rc = unpack_sealed(p, n, z, &o);
  if (rc == 0) {
    const msgpack_object *f = o.via.array.ptr;
    if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 4 ||
        mp_int(&f[0], LASH_COMPLETED, LASH_ABANDONED, &t->status) < 0 ||
        lash__mp_i64(&f[1], &t->pruned_at) < 0 ||
        lash__mp_u64(&f[2], &t->change_seq) < 0 ||
        lash__mp_u64(&f[3], &t->last_seq) < 0)
      rc = LASH_ECORRUPT;
  }
  msgpack_zone_clear(z);
  return rc;
}

/* ------------------------------------------------- lifecycle payloads */

static int pack_key(msgpack_packer *pk, const char *k) {
  return pack_cstr(pk, k);
}

int lash__pl_started(lash__buf *b, const char *owner, const char *inc,
                     uint64_t fence, uint32_t attempt, int64_t at,
                     int resumed) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_map(&pk, resumed ? 6 : 5);
  e |= pack_key(&pk, "owner");
  e |= pack_cstr(&pk, owner);
  e |= pack_key(&pk, "incarnation");
  e |= pack_cstr(&pk, inc);
  e |= pack_key(&pk, "fence");
  e |= msgpack_pack_uint64(&pk, fence);
  e |= pack_key(&pk, "attempt");
  e |= msgpack_pack_uint32(&pk, attempt);
  e |= pack_key(&pk, "at");
  e |= msgpack_pack_int64(&pk, at);
  if (resumed) {
    e |= pack_key(&pk, "resumed");
    e |= msgpack_pack_true(&pk);
  }
  return e != 0 ? LASH_ENOMEM : 0;
}

/* ---- suspension (B) ---- */

int lash__pl_suspended(lash__buf *b, const char *wait, const lash_wake *w) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_map(&pk, 1 + (w->event != NULL) + (w->process != NULL) +
                                 (w->at > 0));
  e |= pack_key(&pk, "wait");
  e |= pack_cstr(&pk, wait);
  if (w->event != NULL) {
    e |= pack_key(&pk, "event");
    e |= pack_cstr(&pk, w->event);
  }
  if (w->process != NULL) {
    e |= pack_key(&pk, "process");
    e |= pack_cstr(&pk, w->process);
  }
  if (w->at > 0) {
    e |= pack_key(&pk, "at");
    e |= msgpack_pack_int64(&pk, w->at);
  }
  return e != 0 ? LASH_ENOMEM : 0;
}

int lash__pl_woken(lash__buf *b, const char *by, uint64_t seq,
                   lash__sv process) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_map(&pk, 1 + (seq > 0) + (process.p != NULL));
  e |= pack_key(&pk, "by");
  e |= pack_cstr(&pk, by);
  if (seq > 0) {
    e |= pack_key(&pk, "seq");
    e |= msgpack_pack_uint64(&pk, seq);
  }
  if (process.p != NULL) {
    e |= pack_key(&pk, "id");
    e |= pack_sv(&pk, process);
  }
  return e != 0 ? LASH_ENOMEM : 0;
}

void lash__rec_index(const lash__rec *r, lash_bindex *x) {
  int live = !LASH_IS_TERMINAL(r->status);
  /* issue 13 (claim): a row waiting for a slot of its concurrency key is
   * off the worklist until a slot frees */
  x->listed = live && !r->suspended && r->conc_state != LASH_CONC_WAITS;
  x->priority = r->priority;
  x->order = r->created_seq;
  x->wake_at = live && r->suspended ? r->wake_at : 0;
  x->awaits.data = NULL;
  x->awaits.len = 0;
  if (live && r->suspended && r->wake_process.p != NULL) {
    x->awaits.data = r->wake_process.p;
    x->awaits.len = r->wake_process.n;
  }
}

int lash__pl_waiting(lash__buf *b, const char *wait, int64_t since) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_map(&pk, 2);
  e |= pack_key(&pk, "wait");
  e |= pack_cstr(&pk, wait);
  e |= pack_key(&pk, "since");
  e |= msgpack_pack_int64(&pk, since);
  return e != 0 ? LASH_ENOMEM : 0;
}

int lash__pl_resumed(lash__buf *b) {
  msgpack_packer pk;
  lash__packer(&pk, b);
  return msgpack_pack_map(&pk, 0) != 0 ? LASH_ENOMEM : 0;
}

int lash__pl_cancel(lash__buf *b, const char *reason) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_map(&pk, 1);
  e |= pack_key(&pk, "reason");
  e |= pack_cstr(&pk, reason);
  return e != 0 ? LASH_ENOMEM : 0;
}

int lash__pl_abandon(lash__buf *b, const char *by, const char *reason) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_map(&pk, 2);
  e |= pack_key(&pk, "by");
  e |= pack_cstr(&pk, by);
  e |= pack_key(&pk, "reason");
  e |= pack_cstr(&pk, reason);
  return e != 0 ? LASH_ENOMEM : 0;
}

int lash__pl_terminal(lash__buf *b, lash_bytes outcome, const char *authority) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, b);
  e |= msgpack_pack_map(&pk, authority != NULL ? 2 : 1);
  e |= pack_key(&pk, "outcome");
  e |= pack_bin(&pk, lash__sv_of(outcome.data, outcome.len));
  if (authority != NULL) {
    e |= pack_key(&pk, "authority");
    e |= pack_cstr(&pk, authority);
  }
  return e != 0 ? LASH_ENOMEM : 0;
}

int lash__pl_str_or_nil(lash__buf *b, const char *s) {
  msgpack_packer pk;
  lash__packer(&pk, b);
  return pack_cstr(&pk, s) != 0 ? LASH_ENOMEM : 0;
}

/* A packer target of fixed capacity, for lash_abandon_payload. */
typedef struct fixed_buf {
  char *p;
  size_t len, cap;
} fixed_buf;

static int fixed_write(void *data, const char *p, size_t n) {
  fixed_buf *b = data;
  if (n > b->cap - b->len) return -1;
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

int lash_abandon_payload(int writer, const char *owner, void *buf, size_t cap) {
  msgpack_packer pk;
  fixed_buf fb;
  const char *name = lash_writer_name(writer);
  int e = 0;
  if (name == NULL || buf == NULL ||
      (owner != NULL && strlen(owner) > LASH_NAME_MAX))
    return LASH_EINVAL;
  fb.p = buf;
  fb.len = 0;
  fb.cap = cap;
  msgpack_packer_init(&pk, &fb, fixed_write);
  e |= msgpack_pack_map(&pk, 2);
  e |= pack_key(&pk, "writer");
  e |= pack_cstr(&pk, name);
  e |= pack_key(&pk, "owner");
  e |= pack_cstr(&pk, owner);
  if (e != 0) return LASH_EINVAL;
  return (int)fb.len;
}

/* ---------------------------------------------------------------- fold */

static const char *const terminal_types[LASH_STATUS_COUNT + 1] = {
    NULL,
    NULL,
    NULL,
    NULL,
    "process.completed",
    "process.failed",
    "process.cancelled",
    "process.abandoned"};

const char *lash__terminal_type(int status) {
  if (status < LASH_COMPLETED || status > LASH_ABANDONED) return NULL;
  return terminal_types[status];
}

int lash__terminal_type_status(lash__sv type) {
  int st;
  if (type.n < 8 || memcmp(type.p, "process.", 8) != 0) return 0;
  for (st = LASH_COMPLETED; st <= LASH_ABANDONED; st++)
    if (sv_is(type, terminal_types[st])) return st;
  return 0;
}

static void clear_wait(lash__rec *r) {
  r->wait.p = NULL;
  r->wait.n = 0;
  r->wait_since = 0;
}

/* ---- suspension (B) ---- */
static void clear_suspension(lash__rec *r) {
  r->suspended = r->woken = 0;
  r->wake_event.p = r->wake_process.p = NULL;
  r->wake_event.n = r->wake_process.n = 0;
  r->wake_at = 0;
}

int lash__authority_wrapper(const void *p, size_t n, msgpack_zone *z,
                            lash__sv *outcome) {
  msgpack_object o;
  const msgpack_object *out, *auth;
  int yes = 0;
  unsigned char first = n > 0 ? *(const unsigned char *)p : 0;
  /* The core writes the wrapper as a fixmap of 2 entries; nothing else is
   * one. (Checking the first byte before unpacking also keeps a caller's
   * outcome bytes such as a map32 header claiming 4 billion entries from
   * reaching msgpack-c's allocator.) */
  if (first != 0x82) return 0;
  if (unpack(p, n, z, &o) == 0 && o.type == MSGPACK_OBJECT_MAP &&
      o.via.map.size == 2 && (out = lash__mp_map_get(&o, "outcome")) != NULL &&
      out->type == MSGPACK_OBJECT_BIN &&
      (auth = lash__mp_map_get(&o, "authority")) != NULL &&
      auth->type == MSGPACK_OBJECT_STR) {
    yes = 1;
    if (outcome != NULL)
      *outcome = lash__sv_of(out->via.bin.ptr, out->via.bin.size);
  }
  msgpack_zone_clear(z);
  return yes;
}

/* replay keys (A): the journal types of a run's commands */
static const char *const journal_types[] = {"process.step",    "process.child",
                                            "process.sleep",   "process.wait",
                                            "process.timeout", "process.value"};

int lash__journal_type(lash__sv type) {
  size_t i;
  if (type.p == NULL) return 0;
  for (i = 0; i < sizeof journal_types / sizeof journal_types[0]; i++)
    if (sv_is(type, journal_types[i])) return 1;
  return 0;
}

int lash__fold(lash__rec *r, const lash__ev *ev, msgpack_zone *z) {
  msgpack_object o;
  int rc = 0, term, terminal = LASH_IS_TERMINAL(r->status);

  if (ev->type.n < 8 || memcmp(ev->type.p, "process.", 8) != 0)
    goto stamp; /* user events and signals only move the stamps */
  /* replay keys (A): a journal event only moves the stamps */
  if (lash__journal_type(ev->type)) goto stamp;
  term = lash__terminal_type_status(ev->type);
  if (term != 0) {
    /* A leased terminal's payload is the outcome itself; an unleased one
     * wraps it beside the authority. The first terminal wins. */
    lash__sv outcome;
    int unleased =
        lash__authority_wrapper(ev->payload.p, ev->payload.n, z, &outcome);
    if (!unleased) outcome = lash__sv_of(ev->payload.p, ev->payload.n);
    if (!terminal) {
      r->status = term;
      r->outcome = outcome;
      r->term_unleased = unleased;
      clear_wait(r);
      clear_suspension(r);
    }
    goto stamp;
  }
  if ((rc = unpack(ev->payload.p, ev->payload.n, z, &o)) < 0) goto out;
  if (o.type != MSGPACK_OBJECT_MAP) {
    rc = LASH_ECORRUPT;
    goto out;
  }
  if (sv_is(ev->type, LASH__EV_STARTED)) {
    lash__sv owner, inc;
    uint64_t fence;
    uint32_t number;
    int64_t at;
    if ((rc = lash__mp_sv(lash__mp_map_get(&o, "owner"), &owner, 0)) < 0 ||
        (rc = lash__mp_sv(lash__mp_map_get(&o, "incarnation"), &inc, 0)) < 0 ||
        (rc = lash__mp_u64(lash__mp_map_get(&o, "fence"), &fence)) < 0 ||
        (rc = mp_u32(lash__mp_map_get(&o, "attempt"), &number)) < 0 ||
        (rc = lash__mp_i64(lash__mp_map_get(&o, "at"), &at)) < 0)
      goto out;
    r->has_attempt = 1;
    r->att_owner = owner;
    r->att_inc = inc;
    r->att_fence = fence;
    r->att_number = number;
    r->att_started_at = at;
    r->retry_due = 0; /* issue 13 */
    if (!terminal) {
      r->status = LASH_RUNNING;
      clear_wait(r);
      clear_suspension(r);
    }
  } else if (sv_is(ev->type, LASH__EV_WAITING)) {
    lash__sv wait;
    int64_t since;
    if ((rc = lash__mp_sv(lash__mp_map_get(&o, "wait"), &wait, 0)) < 0 ||
        (rc = lash__mp_i64(lash__mp_map_get(&o, "since"), &since)) < 0)
      goto out;
    if (!terminal) {
      r->status = LASH_WAITING;
      r->wait = wait;
      r->wait_since = since;
    }
  } else if (sv_is(ev->type, LASH__EV_RESUMED)) {
    if (!terminal) {
      r->status = LASH_RUNNING;
      clear_wait(r);
    }
  } else if (sv_is(ev->type, LASH__EV_CANCEL_REQ)) {
    lash__sv reason;
    if ((rc = lash__mp_sv(lash__mp_map_get(&o, "reason"), &reason, 1)) < 0)
      goto out;
    r->cancel_requested = 1;
    r->cancel_reason = reason;
  } else if (sv_is(ev->type, LASH__EV_ABANDON_REQ)) {
    lash__sv by, reason;
    if ((rc = lash__mp_sv(lash__mp_map_get(&o, "by"), &by, 1)) < 0 ||
        (rc = lash__mp_sv(lash__mp_map_get(&o, "reason"), &reason, 1)) < 0)
      goto out;
    r->abandon_requested = 1;
    r->abandon_by = by;
    r->abandon_reason = reason;
  } else if (sv_is(ev->type, LASH__EV_SUSPENDED)) {
    /* ---- suspension (B) ---- */
    lash__sv wait, event = {NULL, 0}, process = {NULL, 0};
    const msgpack_object *x;
    int64_t at = 0;
    if ((rc = lash__mp_sv(lash__mp_map_get(&o, "wait"), &wait, 0)) < 0 ||
        ((x = lash__mp_map_get(&o, "event")) != NULL &&
         (rc = lash__mp_sv(x, &event, 0)) < 0) ||
        ((x = lash__mp_map_get(&o, "process")) != NULL &&
         (rc = lash__mp_sv(x, &process, 0)) < 0) ||
        ((x = lash__mp_map_get(&o, "at")) != NULL &&
         (rc = lash__mp_i64(x, &at)) < 0))
      goto out;
    if (!terminal) {
      if (r->status != LASH_WAITING) r->wait_since = ev->at;
      r->status = LASH_WAITING;
      r->wait = wait;
      r->suspended = 1;
      r->woken = 0;
      r->wake_event = event;
      r->wake_process = process;
      r->wake_at = at;
    }
  } else if (sv_is(ev->type, LASH__EV_WOKEN)) {
    lash__sv by;
    if ((rc = lash__mp_sv(lash__mp_map_get(&o, "by"), &by, 0)) < 0) goto out;
    if (!terminal && r->suspended) {
      clear_suspension(r);
      r->woken = 1;
    }
  } else if (sv_is(ev->type, LASH__EV_ATTEMPT_FAILED)) {
    /* ---- issue 13 (retry): pending, unlisted until retry_at ---- */
    int64_t at;
    if ((rc = lash__mp_i64(lash__mp_map_get(&o, "retry_at"), &at)) < 0)
      goto out;
    if (!terminal) {
      r->status = LASH_PENDING;
      clear_wait(r);
      clear_suspension(r);
      r->suspended = 1;
      r->wake_at = at;
      r->failures++;
      r->retry_due = 1;
    }
  } else if (sv_is(ev->type, LASH__EV_RETRIED)) {
    /* ---- issue 13 (retry): a failed row is live again ---- */
    if (r->status == LASH_FAILED) {
      r->status = LASH_PENDING;
      r->outcome.p = NULL;
      r->outcome.n = 0;
      r->term_unleased = 0;
      r->failures++;
      r->retry_due = 1;
    }
  } else {
    rc = LASH_ECORRUPT; /* an unknown reserved type */
    goto out;
  }
stamp:
  r->updated_at = ev->at;
  r->last_seq = ev->seq;
out:
  msgpack_zone_clear(z);
  return rc;
}
