/* kv.c - the side table of the LMDB backend (lash_backend.h version 4):
 * the database "kv", keyed by the namespace byte and the key. Its scan is
 * scans.c's (LASH_SCAN_KV). */
#include "lmdb-int.h"

#include <string.h>

static size_t kvkey(unsigned char *k, int ns, const char *key, size_t keylen) {
  k[0] = (unsigned char)ns;
  memcpy(k + 1, key, keylen);
  return keylen + 1;
}

int lmdb__kv_get(lash_backend *b, lash_btxn *t, int ns, const char *key,
                 size_t keylen, lash_bytes *val) {
  lmdb__store *s = LMDB__S(b);
  unsigned char k[LMDB__KVKEY_MAX];
  MDB_val v;
  int rc;
  val->data = NULL;
  val->len = 0;
  if (!s->has_kv || keylen == 0 || keylen > LASH_KV_KEY_MAX) return LASH_ENOENT;
  rc = lmdb__get(s, t->mt, LMDB__DB_KV, k, kvkey(k, ns, key, keylen), &v);
  if (rc < 0) return rc;
  if (rc == 1) return LASH_ENOENT;
  val->data = v.mv_data != NULL ? v.mv_data : (const void *)"";
  val->len = v.mv_size;
  return 0;
}

int lmdb__kv_put(lash_backend *b, lash_btxn *t, int ns, const char *key,
                 size_t keylen, lash_bytes val) {
  lmdb__store *s = LMDB__S(b);
  unsigned char k[LMDB__KVKEY_MAX];
  size_t kn;
  if (!t->write || !s->has_kv)
    return lash_backend_fail(b, LASH_EINVAL,
                             "store %s: the side table is written only in a "
                             "write transaction",
                             s->path);
  if (keylen == 0 || keylen > LASH_KV_KEY_MAX)
    return lash_backend_fail(b, LASH_EINVAL,
                             "store %s: a side table key of %zu bytes", s->path,
                             keylen);
  kn = kvkey(k, ns, key, keylen);
  if (val.data == NULL) return lmdb__del(s, t->mt, LMDB__DB_KV, k, kn);
  return lmdb__put(s, t->mt, LMDB__DB_KV, k, kn, val.data, val.len, 0);
}
