/* unique.c - unique keys (issue 13 item 7): a registration that names a
 * unique key held by another row registers nothing and gives that row.
 * The side table maps the key to the row that took it (LASH_KV_UNIQUE,
 * value {id = <row id>}); the row holds it while live, and after its end
 * for its unique_for_ms. A stale entry (its row ended past the window,
 * pruned, or re-registered without the key) is simply taken over. All in
 * the registration's write transaction: writers are serialised store-wide,
 * so racing producers dedupe exactly. */
#include "registry-int.h"

#include <string.h>

static int pack_str(msgpack_packer *pk, const char *s, size_t n) {
  if (msgpack_pack_str(pk, n) != 0) return -1;
  return msgpack_pack_str_body(pk, s, n);
}

/* The row id in the entry of key (into id: idn bytes and a NUL): 0, 1
 * no entry, or an error. */
static int entry_id(lash_store *s, lash_txn *t, const char *key, size_t keylen,
                    char *id, size_t *idn) {
  const msgpack_object *v;
  msgpack_object o;
  lash_bytes val;
  int rc = lash__kv_get(s, t, LASH_KV_UNIQUE, key, keylen, &val);
  if (rc == LASH_ENOENT) return 1;
  if (rc < 0) return rc;
  if (lash__mp_unpack(val.data, val.len, &s->zone, &o) < 0 ||
      (v = lash__mp_map_get(&o, "id")) == NULL ||
      v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 ||
      v->via.str.size > LASH_ID_MAX) {
    msgpack_zone_clear(&s->zone);
    return lash__fail(s, LASH_ECORRUPT,
                      "the side table's entry of unique key %.*s is damaged",
                      (int)keylen, key);
  }
  *idn = v->via.str.size;
  memcpy(id, v->via.str.ptr, *idn);
  id[*idn] = '\0';
  msgpack_zone_clear(&s->zone);
  return 0;
}

int lash__unique_holder(lash_store *s, lash_txn *t, const char *key,
                        size_t keylen, int64_t now, lash__rec *holder) {
  char id[LASH_ID_MAX + 1];
  size_t idn = 0;
  int rc = entry_id(s, t, key, keylen, id, &idn);
  if (rc != 0) return rc == 1 ? 0 : rc;
  rc = lash__rec_lookup(s, t, t->bt, id, idn, holder);
  if (rc < 0) return rc;
  if (rc == 1) return 0; /* gone (pruned): free */
  if (!lash__sv_eq(holder->unique_key, lash__sv_of(key, keylen))) return 0;
  if (!LASH_IS_TERMINAL(holder->status)) return 1;
  return holder->unique_for_ms > 0 &&
         now - holder->updated_at < holder->unique_for_ms;
}

int lash__unique_take(lash_store *s, lash_txn *t, const char *key,
                      size_t keylen, const char *id, size_t idlen) {
  msgpack_packer pk;
  int e = 0;
  lash__packer(&pk, &s->pbuf[1]);
  e |= msgpack_pack_map(&pk, 1);
  e |= pack_str(&pk, "id", 2);
  e |= pack_str(&pk, id, idlen);
  if (e != 0)
    return lash__fail(s, LASH_ENOMEM, "out of memory taking unique key %.*s",
                      (int)keylen, key);
  return lash__kv_put(s, t, LASH_KV_UNIQUE, key, keylen, s->pbuf[1].p,
                      s->pbuf[1].len);
}

int lash__unique_forget(lash_store *s, lash_txn *t, const char *key,
                        size_t keylen, const char *id, size_t idlen) {
  char held[LASH_ID_MAX + 1];
  size_t hn = 0;
  int rc = entry_id(s, t, key, keylen, held, &hn);
  if (rc != 0) return rc == 1 ? 0 : rc;
  if (hn != idlen || memcmp(held, id, idlen) != 0) return 0; /* taken over */
  return lash__kv_put(s, t, LASH_KV_UNIQUE, key, keylen, NULL, 0);
}
