/* owners.c - owner liveness (lash_backend.h version 2) on PostgreSQL: a
 * session advisory lock per held (owner, incarnation), on a connection of
 * its own (`o`) that lives as long as the handle. The server drops the
 * lock when that session ends, however its process dies (kill -9: the
 * socket closes; a lost host: TCP keepalive / tcp_user_timeout), so
 * another host sees the pair gone at once. The table `owners` records
 * every pair ever held in the store: a pair found there whose lock nobody
 * holds is gone (0); a pair not there is unknown (< 0: keep to the TTL).
 * The probe reads pg_locks and takes no lock itself. */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <stdio.h>
#include <string.h>

/* FNV-1a over a label and the bytes (owner 0x00 incarnation). */
static uint32_t fnv(const char *label, const char *a, const char *b) {
  uint32_t h = 2166136261u;
  const char *p;
  for (p = label; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  if (a != NULL) {
    for (p = a; *p; p++)
      h = (h ^ (unsigned char)*p) * 16777619u;
    h = (h ^ 0u) * 16777619u;
    for (p = b; *p; p++)
      h = (h ^ (unsigned char)*p) * 16777619u;
  }
  return h;
}

static void keys_of(const pg__store *s, const char *owner, const char *inc,
                    uint32_t *k1, uint32_t *k2) {
  *k1 = fnv("lash-owner:", s->schema, "");
  *k2 = fnv("", owner, inc);
}

/* The owner connection, connected when missing or lost (a lost one took
 * its lock with it: held is cleared). */
static int ensure_o(pg__store *s) {
  char err[600];
  if (s->o != NULL && PQstatus(s->o) == CONNECTION_OK) return 0;
  if (s->o != NULL) {
    PQfinish(s->o);
    s->o = NULL;
    s->held = 0;
  }
  err[0] = '\0';
  if (pg__connect(s, &s->o, err, sizeof err) < 0)
    return lash_backend_fail(&s->base, LASH_EIO, "%s", err);
  return 0;
}

/* Runs sql on o (freeing it); *res the result. */
static int run_o(pg__store *s, pg__buf *sql, int built, const char *doing,
                 PGresult **res) {
  int rc = built < 0 ? lash_backend_fail(&s->base, LASH_ENOMEM,
                                         "out of memory %s", doing)
                     : pg__exec(s, s->o, sql->p, doing, res);
  pg__buf_free(sql);
  return rc;
}

int pg__owner_hold(lash_backend *b, const char *owner, const char *inc) {
  pg__store *s = PG__S(b);
  pg__buf sql = {0};
  PGresult *r = NULL;
  uint32_t k1, k2;
  int rc, e;
  if (s->read_only || s->held) return LASH_EINVAL;
  if ((rc = ensure_o(s)) < 0) return rc;
  keys_of(s, owner, inc, &k1, &k2);
  e = pg__buf_fmt(&sql, "SELECT pg_try_advisory_lock(%d, %d)", (int32_t)k1,
                  (int32_t)k2);
  if ((rc = run_o(s, &sql, e, "holding the owner lock", &r)) < 0) return rc;
  rc = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't' ? 0 : LASH_EBUSY;
  PQclear(r);
  if (rc < 0)
    return lash_backend_fail(b, rc,
                             "store %s: owner %s incarnation %s is held by "
                             "another live session",
                             s->name, owner, inc);
  s->held = 1;
  s->k1 = k1;
  s->k2 = k2;
  e = pg__buf_str(&sql, "INSERT INTO owners VALUES (");
  if (e == 0) e = pg__buf_bytea(&sql, owner, strlen(owner));
  if (e == 0) e = pg__buf_str(&sql, ", ");
  if (e == 0) e = pg__buf_bytea(&sql, inc, strlen(inc));
  if (e == 0)
    e = pg__buf_str(&sql,
                    ", (extract(epoch from clock_timestamp()) * 1000)::bigint) "
                    "ON CONFLICT (owner, inc) DO UPDATE SET held_at = "
                    "EXCLUDED.held_at");
  if ((rc = run_o(s, &sql, e, "recording the owner", &r)) < 0) {
    pg__owner_release(b);
    return rc;
  }
  PQclear(r);
  return 0;
}

void pg__owner_release(lash_backend *b) {
  pg__store *s = PG__S(b);
  char sql[96];
  if (!s->held) return;
  s->held = 0;
  if (s->o == NULL || PQstatus(s->o) != CONNECTION_OK) return;
  snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%d, %d)", (int32_t)s->k1,
           (int32_t)s->k2);
  PQclear(PQexec(s->o, sql));
}

int pg__owner_alive(lash_backend *b, const char *owner, const char *inc) {
  pg__store *s = PG__S(b);
  pg__buf sql = {0};
  PGresult *r = NULL;
  uint32_t k1, k2;
  int rc, e;
  if (ensure_o(s) < 0) return -1;
  keys_of(s, owner, inc, &k1, &k2);
  e = pg__buf_str(&sql, "SELECT EXISTS (SELECT 1 FROM owners WHERE owner = ");
  if (e == 0) e = pg__buf_bytea(&sql, owner, strlen(owner));
  if (e == 0) e = pg__buf_str(&sql, " AND inc = ");
  if (e == 0) e = pg__buf_bytea(&sql, inc, strlen(inc));
  if (e == 0)
    e = pg__buf_fmt(&sql,
                    "), EXISTS (SELECT 1 FROM pg_locks WHERE locktype = "
                    "'advisory' AND classid = %u AND objid = %u AND objsubid "
                    "= 2 AND granted AND database = (SELECT oid FROM "
                    "pg_database WHERE datname = current_database()))",
                    k1, k2);
  if (run_o(s, &sql, e, "asking whether an owner is alive", &r) < 0) return -1;
  if (PQntuples(r) != 1)
    rc = -1;
  else if (PQgetvalue(r, 0, 1)[0] == 't')
    rc = 1;
  else
    rc = PQgetvalue(r, 0, 0)[0] == 't' ? 0 : -1;
  PQclear(r);
  return rc;
}
