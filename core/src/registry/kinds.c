/* kinds.c - kind definitions and live workers in the store (issue 11):
 * two namespaces of the side table (kv.c).
 *
 *   LASH_KV_KIND    kind -> {version, updated_at, options = bin(map)}
 *   LASH_KV_WORKER  owner 0x00 incarnation -> {pid, host, kinds =
 *                   bin(array of str), started_at, heartbeat_at}
 *
 * A definition is stored only when it differs (canonically) from the one
 * there, as the next version. A worker's liveness is the backend's owner
 * hold (lash_owner_alive), asked outside the read that lists them. */
#include "registry-int.h"

#include <stdlib.h>
#include <string.h>

#define WKEY_MAX (LASH_NAME_MAX * 2 + 1)

static void copy_str(char *dst, size_t cap, const char *p, size_t n) {
  if (n >= cap) n = cap - 1;
  memcpy(dst, p, n);
  dst[n] = '\0';
}

static int pack_key(msgpack_packer *pk, const char *k) {
  return msgpack_pack_str_with_body(pk, k, strlen(k));
}

/* ------------------------------------------------------------ kinds */

/* Decodes a stored definition into *out (options view into v). Uses and
 * clears s->zone. 0 or LASH_ECORRUPT with a message. */
static int kind_decode(lash_store *s, const char *kind, size_t n, lash_bytes v,
                       lash_kind_info *out) {
  msgpack_object o;
  const msgpack_object *ver, *at, *opts;
  uint64_t u = 0;
  int64_t t = 0;
  int rc = 0;
  memset(out, 0, sizeof *out);
  copy_str(out->kind, sizeof out->kind, kind, n);
  if (lash__mp_unpack(v.data, v.len, &s->zone, &o) < 0 ||
      (ver = lash__mp_map_get(&o, "version")) == NULL ||
      lash__mp_u64(ver, &u) < 0 || u > UINT32_MAX ||
      (at = lash__mp_map_get(&o, "updated_at")) == NULL ||
      lash__mp_i64(at, &t) < 0 ||
      (opts = lash__mp_map_get(&o, "options")) == NULL ||
      opts->type != MSGPACK_OBJECT_BIN) {
    rc = lash__fail(s, LASH_ECORRUPT,
                    "store %s: the stored definition of kind %s is "
                    "unreadable (run check)",
                    s->path, out->kind);
  } else {
    out->version = (uint32_t)u;
    out->updated_at = t;
    out->options.data = opts->via.bin.ptr;
    out->options.len = opts->via.bin.size;
  }
  msgpack_zone_clear(&s->zone);
  return rc;
}

/* options must be one MessagePack map. */
static int check_options(lash_store *s, const char *kind, lash_bytes options) {
  msgpack_object o;
  int ok;
  if (options.data == NULL || options.len > s->opts.max_payload)
    return lash__fail(s, LASH_EINVAL,
                      "the definition of kind %s: options must be a "
                      "MessagePack map of at most max_payload bytes",
                      kind);
  ok = lash__mp_unpack(options.data, options.len, &s->zone, &o) == 0 &&
       o.type == MSGPACK_OBJECT_MAP;
  msgpack_zone_clear(&s->zone);
  if (!ok)
    return lash__fail(s, LASH_EINVAL,
                      "the definition of kind %s: options are not a "
                      "MessagePack map",
                      kind);
  return 0;
}

int lash_kind_put(lash_store *s, lash_txn *txn, const char *kind,
                  lash_bytes options, uint32_t *version) {
  lash_txn *t = NULL;
  lash_kind_info old;
  lash__buf b = {0};
  msgpack_packer pk;
  lash_bytes v;
  uint32_t next = 1;
  int rc, n, e = 0;
  if (s == NULL) return LASH_EINVAL;
  lash__clear(s);
  if (version != NULL) *version = 0;
  if ((n = lash__check_kind(s, kind, NULL)) < 0) return n;
  if ((rc = check_options(s, kind, options)) < 0) return rc;
  if ((rc = lash__wbegin(s, txn, &t)) < 0) return rc;
  rc = lash__kv_get(s, t, LASH_KV_KIND, kind, (size_t)n, &v);
  if (rc == 0 && (rc = kind_decode(s, kind, (size_t)n, v, &old)) == 0) {
    int same =
        lash__payload_equal(lash__sv_of(old.options.data, old.options.len),
                            lash__sv_of(options.data, options.len), &s->zone);
    msgpack_zone_clear(&s->zone);
    if (same == 1) {
      if (version != NULL) *version = old.version;
      return lash__wend(s, t, 0);
    }
    next = old.version + 1;
  } else if (rc == LASH_ENOENT) {
    rc = 0;
  }
  if (rc < 0) return lash__wend(s, t, rc);
  lash__packer(&pk, &b);
  e |= msgpack_pack_map(&pk, 3);
  e |= pack_key(&pk, "version");
  e |= msgpack_pack_uint32(&pk, next);
  e |= pack_key(&pk, "updated_at");
  e |= msgpack_pack_int64(&pk, lash__now(s));
  e |= pack_key(&pk, "options");
  e |= msgpack_pack_bin_with_body(&pk, options.data, options.len);
  rc = e != 0
           ? lash__fail(s, LASH_ENOMEM, "out of memory defining kind %s", kind)
           : lash__kv_put(s, t, LASH_KV_KIND, kind, (size_t)n, b.p, b.len);
  lash__buf_free(&b);
  rc = lash__wend(s, t, rc < 0 ? rc : 1);
  if (rc == 1 && version != NULL) *version = next;
  return rc;
}

int lash_kind_get(lash_store *s, lash_txn *txn, const char *kind,
                  lash_kind_info *out) {
  lash_bytes v;
  int rc, n;
  if (s == NULL || out == NULL) return LASH_EINVAL;
  lash__clear(s);
  memset(out, 0, sizeof *out);
  if ((n = lash__check_kind(s, kind, NULL)) < 0) return n;
  rc = lash__kv_get(s, txn, LASH_KV_KIND, kind, (size_t)n, &v);
  if (rc < 0) return rc;
  return kind_decode(s, kind, (size_t)n, v, out);
}

typedef struct kinds_ud {
  lash_store *s;
  lash_kind_fn fn;
  void *ud;
} kinds_ud;

static int kinds_cb(void *ud, const char *key, size_t keylen, lash_bytes val) {
  kinds_ud *k = ud;
  lash_kind_info info;
  int rc = kind_decode(k->s, key, keylen, val, &info);
  return rc < 0 ? rc : k->fn(k->ud, &info);
}

int lash_kinds_list(lash_store *s, lash_txn *txn, lash_kind_fn fn, void *ud) {
  kinds_ud k;
  if (s == NULL) return LASH_EINVAL;
  lash__clear(s);
  if (fn == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_kinds_list: no callback given");
  k.s = s;
  k.fn = fn;
  k.ud = ud;
  return lash__kv_scan(s, txn, LASH_KV_KIND, NULL, 0, NULL, 0, kinds_cb, &k);
}

/* ---------------------------------------------------------- workers */

/* owner 0x00 incarnation into k (WKEY_MAX bytes): its length, or < 0. */
static int worker_key(lash_store *s, char *k, const char *owner,
                      const char *inc) {
  int on, in;
  if ((on = lash__check_name(s, "owner", owner)) < 0) return on;
  if ((in = lash__check_name(s, "incarnation", inc)) < 0) return in;
  memcpy(k, owner, (size_t)on);
  k[on] = '\0';
  memcpy(k + on + 1, inc, (size_t)in);
  return on + 1 + in;
}

int lash_worker_put(lash_store *s, lash_txn *txn, const lash_worker_info *w) {
  char key[WKEY_MAX];
  lash__buf b = {0}, kb = {0};
  msgpack_packer pk;
  lash_txn *t = NULL;
  int n, rc, e = 0;
  size_t i;
  if (s == NULL) return LASH_EINVAL;
  lash__clear(s);
  if (w == NULL || (w->nkinds > 0 && w->kinds == NULL))
    return lash__fail(s, LASH_EINVAL, "lash_worker_put: no worker given");
  if ((n = worker_key(s, key, w->owner, w->incarnation)) < 0) return n;
  if (w->if_writing && txn != NULL) {
    if ((rc = lash__txn_usable(s, txn)) < 0) return rc;
    if (!txn->wrote) return 1;
  }
  lash__packer(&pk, &kb);
  e |= msgpack_pack_array(&pk, w->nkinds);
  for (i = 0; i < w->nkinds; i++)
    e |= pack_key(&pk, w->kinds[i] != NULL ? w->kinds[i] : "");
  lash__packer(&pk, &b);
  e |= msgpack_pack_map(&pk, 5);
  e |= pack_key(&pk, "pid");
  e |= msgpack_pack_int64(&pk, w->pid);
  e |= pack_key(&pk, "host");
  e |= pack_key(&pk, w->host);
  e |= pack_key(&pk, "kinds");
  e |= msgpack_pack_bin_with_body(&pk, kb.p, kb.len);
  e |= pack_key(&pk, "started_at");
  e |= msgpack_pack_int64(&pk, w->started_at);
  e |= pack_key(&pk, "heartbeat_at");
  e |= msgpack_pack_int64(&pk, w->heartbeat_at);
  lash__buf_free(&kb);
  if (e != 0) {
    lash__buf_free(&b);
    return lash__fail(s, LASH_ENOMEM, "out of memory writing worker %s",
                      w->owner);
  }
  if ((rc = lash__wbegin(s, txn, &t)) == 0)
    rc = lash__wend(
        s, t, lash__kv_put(s, t, LASH_KV_WORKER, key, (size_t)n, b.p, b.len));
  lash__buf_free(&b);
  return rc;
}

int lash_worker_remove(lash_store *s, lash_txn *txn, const char *owner,
                       const char *incarnation) {
  char key[WKEY_MAX];
  int n;
  if (s == NULL) return LASH_EINVAL;
  lash__clear(s);
  if ((n = worker_key(s, key, owner, incarnation)) < 0) return n;
  return lash__kv_put(s, txn, LASH_KV_WORKER, key, (size_t)n, NULL, 0);
}

/* Decodes one entry (views into key and val). Uses and clears s->zone. */
static int worker_decode(lash_store *s, const char *key, size_t keylen,
                         lash_bytes val, lash_worker_info *w) {
  const char *nul = memchr(key, 0, keylen);
  const msgpack_object *f;
  msgpack_object o;
  int rc = 0;
  memset(w, 0, sizeof *w);
  w->alive = -1;
  if (nul == NULL || lash__mp_unpack(val.data, val.len, &s->zone, &o) < 0 ||
      o.type != MSGPACK_OBJECT_MAP) {
    msgpack_zone_clear(&s->zone);
    return lash__fail(s, LASH_ECORRUPT,
                      "store %s: a worker entry is unreadable (run check)",
                      s->path);
  }
  copy_str(w->owner, sizeof w->owner, key, (size_t)(nul - key));
  copy_str(w->incarnation, sizeof w->incarnation, nul + 1,
           keylen - (size_t)(nul - key) - 1);
  if ((f = lash__mp_map_get(&o, "pid")) != NULL) lash__mp_i64(f, &w->pid);
  if ((f = lash__mp_map_get(&o, "host")) != NULL &&
      f->type == MSGPACK_OBJECT_STR)
    copy_str(w->host, sizeof w->host, f->via.str.ptr, f->via.str.size);
  if ((f = lash__mp_map_get(&o, "kinds")) != NULL &&
      f->type == MSGPACK_OBJECT_BIN) {
    w->kinds_mp.data = f->via.bin.ptr;
    w->kinds_mp.len = f->via.bin.size;
  }
  if ((f = lash__mp_map_get(&o, "started_at")) != NULL)
    lash__mp_i64(f, &w->started_at);
  if ((f = lash__mp_map_get(&o, "heartbeat_at")) != NULL)
    lash__mp_i64(f, &w->heartbeat_at);
  msgpack_zone_clear(&s->zone);
  return rc;
}

/* The entries, copied out of the read: [keylen u16][vallen u32][key][val]. */
static int workers_cb(void *ud, const char *key, size_t keylen,
                      lash_bytes val) {
  lash__buf *b = ud;
  uint16_t kl = (uint16_t)keylen;
  uint32_t vl = (uint32_t)val.len;
  if (lash__buf_reserve(b, 6 + keylen + val.len) < 0) return LASH_ENOMEM;
  memcpy(b->p + b->len, &kl, 2);
  memcpy(b->p + b->len + 2, &vl, 4);
  memcpy(b->p + b->len + 6, key, keylen);
  if (val.len > 0) memcpy(b->p + b->len + 6 + keylen, val.data, val.len);
  b->len += 6 + keylen + val.len;
  return 0;
}

int lash_workers_list(lash_store *s, lash_txn *txn, lash_worker_fn fn,
                      void *ud) {
  lash__buf b = {0};
  size_t off = 0;
  int rc;
  if (s == NULL) return LASH_EINVAL;
  lash__clear(s);
  if (fn == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_workers_list: no callback given");
  rc = lash__kv_scan(s, txn, LASH_KV_WORKER, NULL, 0, NULL, 0, workers_cb, &b);
  if (rc == LASH_ENOMEM)
    rc = lash__fail(s, rc, "out of memory listing the workers");
  while (rc == 0 && off < b.len) {
    lash_worker_info w;
    lash_bytes v;
    uint16_t kl;
    uint32_t vl;
    memcpy(&kl, b.p + off, 2);
    memcpy(&vl, b.p + off + 2, 4);
    v.data = b.p + off + 6 + kl;
    v.len = vl;
    rc = worker_decode(s, b.p + off + 6, kl, v, &w);
    off += 6 + kl + vl;
    if (rc < 0) break;
    w.alive = lash_owner_alive(s, w.owner, w.incarnation);
    if (w.alive < -1) w.alive = -1;
    if ((rc = fn(ud, &w)) != 0) break;
  }
  lash__buf_free(&b);
  return rc < 0 ? rc : 0;
}
