/* session.c - a transaction connection ready for use: connected, its
 * statements prepared, reconnected with backoff after a loss. */
#define _GNU_SOURCE 1
#include "pg-int.h"

/* The transaction connection, reconnected (with backoff) if it was lost.
 * A reconnect is the reopen lash_backend.h's `panicked` asks for. */
int pg__ensure_w(pg__store *s) {
  char err[600];
  int64_t now;
  int rc;
  if (s->w != NULL && PQstatus(s->w) == CONNECTION_OK && s->w_ready) return 0;
  now = pg__mono_ms();
  if (now < s->retry_at)
    return lash_backend_fail(&s->base, LASH_EIO,
                             "store %s: no connection to PostgreSQL (next "
                             "attempt in %d ms)",
                             s->name, (int)(s->retry_at - now));
  err[0] = '\0';
  if ((rc = pg__connect(s, &s->w, err, sizeof err)) == 0 &&
      (rc = pg__prepare(s)) == 0) {
    s->w_ready = 1;
    s->backoff_ms = 0;
    s->base.panicked = 0;
    return 0;
  }
  s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 50;
  if (s->backoff_ms > 2000) s->backoff_ms = 2000;
  s->retry_at = now + s->backoff_ms;
  if (err[0] != '\0') return lash_backend_fail(&s->base, rc, "%s", err);
  return rc;
}
