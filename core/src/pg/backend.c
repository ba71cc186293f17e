/* backend.c - the PostgreSQL backend's table: open (connect, schema,
 * statements), close. Reached through lash_store_open("postgresql://…"). */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pg_close(lash_backend *b) {
  pg__store *s = PG__S(b);
  if (s == NULL) return;
  pg__pc_drop(s);
  pg__blobs_free(s);
  free(s->cache);
  if (s->w != NULL) PQfinish(s->w);
  if (s->l != NULL) PQfinish(s->l);
  if (s->o != NULL) PQfinish(s->o); /* its advisory lock goes with it */
  pg__buf_free(&s->q);
  pg__pending_free(s);
  pg__buf_free(&s->sql);
  free(s->conninfo);
  free(s->name);
  free(s);
}

static const lash_backend_methods pg_methods;

#define PG__WRITE_IDLE_MS 30000 /* lash_store_opts.write_idle_ms 0 */

static int pg_open(const char *target, lash_store_opts *opts, uint32_t format,
                   lash_backend **out, char *err, size_t errlen) {
  pg__store *s;
  int rc;
  char dummy[8];
  if (err == NULL || errlen == 0) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  *out = NULL;
  if ((s = calloc(1, sizeof *s)) == NULL) return LASH_ENOMEM;
  s->base.m = &pg_methods;
  s->base.reopens = 1; /* a lost connection is reconnected (session.c) */
  if ((rc = pg__parse_target(target, &s->conninfo, s->schema, &s->name, err,
                             errlen)) < 0)
    goto fail;
  snprintf(s->chan, sizeof s->chan, "lash_%s", s->schema);
  s->read_only = opts->read_only;
  s->async_commit = opts->durability != LASH_DURABILITY_FULL;
  s->idle_ms = opts->write_idle_ms == 0        ? PG__WRITE_IDLE_MS
               : opts->write_idle_ms < 0       ? 0
               : opts->write_idle_ms > INT_MAX ? INT_MAX
                                               : (int)opts->write_idle_ms;
  if ((rc = pg__connect(s, &s->w, err, errlen)) < 0 ||
      (rc = pg__schema_open(s, format, err, errlen)) < 0)
    goto fail;
  if ((rc = pg__prepare(s)) < 0) {
    snprintf(err, errlen, "store %s: preparing statements failed", s->name);
    goto fail;
  }
  s->w_ready = 1;
  if (opts->max_bytes == 0) opts->max_bytes = (size_t)1 << 40;
  *out = &s->base;
  return 0;
fail:
  pg_close(&s->base);
  return rc;
}

static const lash_backend_methods pg_methods = {
    LASH_BACKEND_VERSION,
    "postgresql",
    pg_open,
    pg_close,
    pg__begin,
    pg__commit,
    pg__abort,
    pg__load,
    pg__save,
    pg__remove,
    pg__meta_get,
    pg__meta_put,
    pg__change_seq,
    pg__scan,
    pg__wake_source,
    pg__wake_consume,
    pg__stats,
    NULL, /* audit: the core's checks of records, logs and leases */
    pg__now,
    pg__owner_hold, /* session advisory locks (owners.c) */
    pg__owner_release,
    pg__owner_alive,
    NULL, /* grow: the server's disk is the limit */
    /* version 3: replay keys (A) */
    pg__key_get,
    /* version 4: the side table (kv) */
    pg__kv_get,
    pg__kv_put,
};

const lash_backend_methods *lash_backend_pg(void) {
  return &pg_methods;
}
