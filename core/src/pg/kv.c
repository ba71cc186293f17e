/* kv.c - the side table of the PostgreSQL backend (lash_backend.h version
 * 4): the table kv (ns, key, val) of the store's schema. A put waits in
 * the write's queue like every write; a get sends the queue with it (so a
 * write reads its own puts). The scan is scans.c's (LASH_SCAN_KV). */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <string.h>

static int oom(pg__store *s) {
  return lash_backend_fail(&s->base, LASH_ENOMEM,
                           "out of memory in the side table of %s", s->name);
}

int pg__kv_get(lash_backend *b, lash_btxn *t, int ns, const char *key,
               size_t keylen, lash_bytes *val) {
  pg__store *s = PG__S(b);
  PGresult *r = NULL;
  int rc;
  (void)t;
  val->data = NULL;
  val->len = 0;
  if (s->no_kv || keylen == 0 || keylen > LASH_KV_KEY_MAX) return LASH_ENOENT;
  s->sql.len = 0;
  if (pg__buf_fmt(&s->sql, "EXECUTE lash_kv_get(%d, ", ns) < 0 ||
      pg__buf_bytea(&s->sql, key, keylen) < 0 || pg__buf_str(&s->sql, ")") < 0)
    return oom(s);
  if ((rc = pg__run(s, s->sql.p, "reading the side table", &r)) < 0) return rc;
  rc = PQntuples(r) == 1 ? pg__bytea(s, r, 0, 0, val) : LASH_ENOENT;
  PQclear(r);
  return rc;
}

int pg__kv_put(lash_backend *b, lash_btxn *t, int ns, const char *key,
               size_t keylen, lash_bytes val) {
  pg__store *s = PG__S(b);
  int rc;
  if (t == NULL || !t->write || !s->in_write || s->no_kv)
    return lash_backend_fail(b, LASH_EINVAL,
                             "store %s: the side table is written only in a "
                             "write transaction",
                             s->name);
  if (keylen == 0 || keylen > LASH_KV_KEY_MAX)
    return lash_backend_fail(b, LASH_EINVAL,
                             "store %s: a side table key of %zu bytes", s->name,
                             keylen);
  rc = pg__buf_fmt(&s->q, "EXECUTE lash_kv_%s(%d, ",
                   val.data != NULL ? "put" : "del", ns);
  if (rc == 0) rc = pg__buf_bytea(&s->q, key, keylen);
  if (rc == 0 && val.data != NULL) {
    rc = pg__buf_str(&s->q, ", ");
    if (rc == 0) rc = pg__buf_bytea(&s->q, val.data, val.len);
  }
  if (rc == 0) rc = pg__buf_str(&s->q, ");");
  if (rc < 0) return oom(s);
  s->nq++;
  s->wrote = 1;
  return 0;
}
