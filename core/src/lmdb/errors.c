/* errors.c - the LMDB backend's names of its databases and the translation
 * of LMDB codes into LASH_E* codes with a message naming the store. Below
 * every other file of the backend. */
#include "lmdb-int.h"

#include <errno.h>

/* clang-format off */
const char *const lmdb__db_names[LMDB__DB_COUNT] = {
    "records",  "events",  "leases",     "live",
    "bystatus", "changes", "tombstones", "meta",
    /* version 3: replay keys (A) */
    "keys",
    /* version 3: suspension and timers (B) */
    "timers",   "waiters",
    /* version 4: the side table (kv) */
    "kv"};
/* clang-format on */

/* ------------------------------------------------------------- errors */

int lmdb__code(int mrc) {
  switch (mrc) {
  case 0:
    return 0;
  case MDB_MAP_FULL:
  case MDB_TXN_FULL:
  case MDB_PAGE_FULL:
    return LASH_EFULL;
  case MDB_PANIC:
    return LASH_EPANIC;
  case MDB_CORRUPTED:
  case MDB_PAGE_NOTFOUND:
  case MDB_INVALID:
  case MDB_VERSION_MISMATCH:
  case MDB_INCOMPATIBLE:
  case MDB_BAD_VALSIZE:
    return LASH_ECORRUPT;
  case ENOMEM:
    return LASH_ENOMEM;
  case EACCES:
  case EROFS:
  case EPERM:
    return LASH_EACCES;
  case EINVAL:
  case MDB_BAD_TXN:
  case MDB_BAD_RSLOT:
  case MDB_BAD_DBI:
    return LASH_EINVAL;
  default:
    return LASH_EIO;
  }
}

int lmdb__fail(lmdb__store *s, int mrc, const char *what) {
  int rc = lmdb__code(mrc);
  if (rc == 0) return 0;
  if (mrc == MDB_MAP_FULL)
    return lash_backend_fail(&s->base, rc,
                             "store %s is full (map %zu bytes, max_bytes %zu) "
                             "while %s: reopen it with a larger max_bytes "
                             "(lash --map-size SIZE)",
                             s->path, s->mapsize, s->opts.max_bytes, what);
  if (mrc == MDB_TXN_FULL)
    return lash_backend_fail(&s->base, rc,
                             "store %s: the write batch is too large while "
                             "%s: commit smaller batches",
                             s->path, what);
  return lash_backend_fail(&s->base, rc, "store %s: %s while %s", s->path,
                           mdb_strerror(mrc), what);
}
