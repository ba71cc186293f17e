/* schema.c - the target (postgresql://…?schema=NAME), the schema created
 * on first open with its version row, and the statements prepared on
 * every new connection. */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The layout of the tables below; the record format is the core's.
 * Layout 2 (replay keys, A): events.key and its unique index.
 * Layout 3 (issue 13, claim): rows.rank (-priority) and rows.cseq (the
 * creation order); the live index is (kind, rank, cseq, id). */
#define PG__LAYOUT 3

static int valid_schema(const char *v, size_t n) {
  size_t i;
  if (n == 0 || n > PG__SCHEMA_MAX) return 0;
  for (i = 0; i < n; i++) {
    char c = v[i];
    if (!((c >= 'a' && c <= 'z') || c == '_' ||
          (i > 0 && c >= '0' && c <= '9')))
      return 0;
  }
  return 1;
}

/* @p target is what follows "postgresql:" ("//host/db?schema=x&…"). */
int pg__parse_target(const char *target, char **conninfo, char *schema,
                     char **name, char *err, size_t errlen) {
  size_t n = strlen(target), at = 0;
  char *uri = malloc(n + 16), *q, *p, *disp;
  const char *prefix = "postgresql:";
  *conninfo = *name = NULL;
  strcpy(schema, "lash");
  if (uri == NULL) return LASH_ENOMEM;
  if (strncmp(target, "//", 2) != 0) {
    snprintf(err, errlen,
             "store target postgresql:%s: expected postgresql://[user@]host"
             "[:port]/database[?schema=NAME]",
             target);
    free(uri);
    return LASH_EINVAL;
  }
  at = (size_t)sprintf(uri, "%s", prefix);
  q = strchr(target, '?');
  memcpy(uri + at, target, q != NULL ? (size_t)(q - target) : n);
  at += q != NULL ? (size_t)(q - target) : n;
  uri[at] = '\0';
  if (q != NULL) {
    int first = 1;
    for (p = (char *)q + 1; *p != '\0';) {
      size_t len = strcspn(p, "&");
      if (len > 7 && strncmp(p, "schema=", 7) == 0) {
        if (!valid_schema(p + 7, len - 7)) {
          snprintf(err, errlen,
                   "store target postgresql:%s: schema \"%.*s\" is not a "
                   "name of lowercase letters, digits and _ (at most %d)",
                   target, (int)(len - 7), p + 7, PG__SCHEMA_MAX);
          free(uri);
          return LASH_EINVAL;
        }
        memcpy(schema, p + 7, len - 7);
        schema[len - 7] = '\0';
      } else if (len > 0) {
        uri[at++] = first ? '?' : '&';
        memcpy(uri + at, p, len);
        at += len;
        uri[at] = '\0';
        first = 0;
      }
      p += len;
      if (*p == '&') p++;
    }
  }
  /* The name in messages: the URI without a password. */
  disp = malloc(strlen(uri) + strlen(schema) + 16);
  if (disp == NULL) {
    free(uri);
    return LASH_ENOMEM;
  }
  {
    const char *auth = uri + strlen(prefix) + 2;
    const char *end = auth + strcspn(auth, "/?");
    const char *atp = memchr(auth, '@', (size_t)(end - auth));
    const char *colon = atp ? memchr(auth, ':', (size_t)(atp - auth)) : NULL;
    if (colon != NULL)
      sprintf(disp, "%.*s:***%s", (int)(colon - uri), uri, atp);
    else
      strcpy(disp, uri);
    sprintf(disp + strlen(disp), "%sschema=%s", strchr(disp, '?') ? "&" : "?",
            schema);
  }
  *conninfo = uri;
  *name = disp;
  return 0;
}

static const char *const tables =
    "CREATE TABLE IF NOT EXISTS meta (id int PRIMARY KEY, layout int NOT "
    "NULL, format bigint NOT NULL, change_seq bigint NOT NULL DEFAULT 0, "
    "counts bytea);"
    "CREATE TABLE IF NOT EXISTS rows (id bytea PRIMARY KEY, kind bytea NOT "
    "NULL, rec bytea NOT NULL, status smallint NOT NULL, live boolean NOT "
    "NULL, change_seq bigint NOT NULL, wake_at bigint, awaits bytea, rank "
    "bigint NOT NULL DEFAULT 0, cseq bigint NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS rows_live ON rows (kind, rank, cseq, id) "
    "WHERE live;"
    "CREATE INDEX IF NOT EXISTS rows_status ON rows (status, id);"
    "CREATE INDEX IF NOT EXISTS rows_change ON rows (change_seq);"
    "CREATE TABLE IF NOT EXISTS events (id bytea NOT NULL, seq bigint NOT "
    "NULL, ev bytea NOT NULL, key bytea, PRIMARY KEY (id, seq));"
    /* (A) Only when missing: CREATE INDEX IF NOT EXISTS locks the table
     * before it looks, which deadlocks with another handle that is
     * preparing its statements on an existing schema. */
    "DO $$BEGIN IF to_regclass('events_key') IS NULL THEN CREATE UNIQUE "
    "INDEX events_key ON events (id, key) WHERE key IS NOT NULL; END IF; "
    "END$$;"
    /* A lease row is rewritten in place at every claim, renewal and
     * release: pages half empty let the update stay on its page without a
     * new index entry (a HOT update; docs/perf.md) */
    "CREATE TABLE IF NOT EXISTS leases (id bytea PRIMARY KEY, lease bytea "
    "NOT NULL) WITH (fillfactor = 50);"
    "CREATE TABLE IF NOT EXISTS tombs (id bytea PRIMARY KEY, tomb bytea NOT "
    "NULL, change_seq bigint NOT NULL);"
    "CREATE INDEX IF NOT EXISTS tombs_change ON tombs (change_seq);"
    /* ---- suspension and timers (issue 9): the columns added to a schema
     * made before them (only then: an ALTER TABLE would lock the table
     * against every open of a running store) ---- */
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = 'rows' AND "
    "column_name = 'wake_at') THEN ALTER TABLE rows ADD COLUMN wake_at "
    "bigint, ADD COLUMN awaits bytea; END IF; END $$;"
    /* only when missing, as events_key above */
    "DO $$BEGIN IF to_regclass('rows_timers') IS NULL THEN CREATE INDEX "
    "rows_timers ON rows (wake_at, id) WHERE wake_at IS NOT NULL; END IF; "
    "IF to_regclass('rows_waiters') IS NULL THEN CREATE INDEX rows_waiters "
    "ON rows (awaits, id) WHERE awaits IS NOT NULL; END IF; END$$;"
    /* ---- version 4: the side table (kv), only when missing ---- */
    "DO $$BEGIN IF to_regclass('kv') IS NULL THEN CREATE TABLE kv (ns "
    "smallint NOT NULL, key bytea NOT NULL, val bytea NOT NULL, PRIMARY KEY "
    "(ns, key)); END IF; END$$;"
    /* ---- owner liveness (kv): the pairs ever held here, so that a pair
     * whose advisory lock is free reads as gone, not unknown ---- */
    "DO $$BEGIN IF to_regclass('owners') IS NULL THEN CREATE TABLE owners "
    "(owner bytea NOT NULL, inc bytea NOT NULL, held_at bigint NOT NULL, "
    "PRIMARY KEY (owner, inc)); END IF; END$$;";

/* Creates the schema if missing (not read-only), then checks its version
 * row: another layout or format is EFORMAT naming both. */
int pg__schema_open(pg__store *s, uint32_t format, char *err, size_t errlen) {
  PGresult *r;
  int rc;
  pg__buf b = {0};
  long layout, fmt;
  int exists = 0;
  /* A schema already there is not created again: CREATE INDEX IF NOT
   * EXISTS locks its table against the writers of a running store, which
   * hold the meta row this open would wait for (a deadlock). */
  r = PQexec(s->w, "SELECT layout, format FROM meta WHERE id = 1");
  exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  PQclear(r);
  if (!s->read_only && !exists) {
    rc =
        pg__buf_fmt(&b,
                    "BEGIN; SELECT pg_advisory_xact_lock(74, "
                    "hashtext('%s')); CREATE SCHEMA IF NOT EXISTS \"%s\"; "
                    "%s INSERT INTO meta (id, layout, format) VALUES (1, %d, "
                    "%u) ON CONFLICT (id) DO NOTHING; COMMIT",
                    s->schema, s->schema, tables, PG__LAYOUT, (unsigned)format);
    if (rc < 0) return LASH_ENOMEM;
    r = PQexec(s->w, b.p);
    pg__buf_free(&b);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      snprintf(err, errlen, "store %s: creating the schema: %s", s->name,
               PQresultErrorMessage(r));
      err[strcspn(err, "\n")] = '\0';
      PQclear(r);
      return LASH_EIO;
    }
    PQclear(r);
  }
  r = PQexec(s->w, "SELECT layout, format FROM meta WHERE id = 1");
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    int missing = st != NULL && strcmp(st, "42P01") == 0;
    if (missing)
      snprintf(err, errlen,
               "store %s does not exist (opened read-only, so it was not "
               "created)",
               s->name);
    else
      snprintf(err, errlen, "store %s: reading the version row: %s", s->name,
               PQresultStatus(r) == PGRES_TUPLES_OK ? "it is missing"
                                                    : PQresultErrorMessage(r));
    err[strcspn(err, "\n")] = '\0';
    PQclear(r);
    return missing ? LASH_EACCES : LASH_EIO;
  }
  layout = strtol(PQgetvalue(r, 0, 0), NULL, 10);
  fmt = strtol(PQgetvalue(r, 0, 1), NULL, 10);
  PQclear(r);
  if (layout != PG__LAYOUT || fmt != (long)format) {
    snprintf(err, errlen,
             "store %s has format version %ld (table layout %ld), this lash "
             "reads version %u (table layout %d)",
             s->name, fmt, layout, (unsigned)format, PG__LAYOUT);
    return LASH_EFORMAT;
  }
  if (s->read_only) { /* (kv) a schema from before the side table */
    r = PQexec(s->w, "SELECT to_regclass('kv') IS NULL");
    s->no_kv = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
               PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
  }
  return 0;
}

/* The statements of the hot paths, planned once per connection. */
int pg__prepare(pg__store *s) {
  static const char sql[] =
      "PREPARE lash_meta_lock AS SELECT change_seq, counts, "
      "(extract(epoch from clock_timestamp()) * 1000)::bigint, "
      "xmin::text::bigint, txid_current() % 4294967296, txid_current() "
      "FROM meta WHERE id = 1 FOR UPDATE;"
      "PREPARE lash_meta_read AS SELECT change_seq, counts, "
      "(extract(epoch from clock_timestamp()) * 1000)::bigint FROM meta "
      "WHERE id = 1;"
      "PREPARE lash_meta_put (bigint, bytea) AS UPDATE meta SET change_seq "
      "= $1, counts = $2 WHERE id = 1;"
      "PREPARE lash_load_w (bytea) AS SELECT (SELECT rec FROM rows WHERE id "
      "= $1 FOR UPDATE), (SELECT lease FROM leases WHERE id = $1), (SELECT "
      "tomb FROM tombs WHERE id = $1), (SELECT CASE WHEN count(*) > 256 "
      "THEN '*' ELSE string_agg(encode(key, 'hex'), ',') END FROM (SELECT "
      "key FROM events WHERE id = $1 AND key IS NOT NULL LIMIT 257) k);"
      "PREPARE lash_load_r (bytea) AS SELECT (SELECT rec FROM rows WHERE id "
      "= $1), (SELECT lease FROM leases WHERE id = $1), (SELECT tomb FROM "
      "tombs WHERE id = $1);"
      "PREPARE lash_ev_put (bytea, bigint, bytea, bytea) AS INSERT INTO "
      "events VALUES ($1, $2, $3, $4) ON CONFLICT (id, seq) DO UPDATE SET ev "
      "= EXCLUDED.ev, key = EXCLUDED.key;"
      "PREPARE lash_key_get (bytea, bytea) AS SELECT seq, ev FROM events "
      "WHERE id = $1 AND key = $2;"
      "PREPARE lash_row_put (bytea, bytea, bytea, smallint, boolean, bigint, "
      "bigint, bytea, bigint, bigint) AS INSERT INTO rows (id, kind, rec, "
      "status, live, change_seq, wake_at, awaits, rank, cseq) VALUES ($1, "
      "$2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO UPDATE SET rec "
      "= EXCLUDED.rec, status = "
      "EXCLUDED.status, live = EXCLUDED.live, change_seq = "
      "EXCLUDED.change_seq, wake_at = EXCLUDED.wake_at, awaits = "
      "EXCLUDED.awaits;"
      "PREPARE lash_lease_put (bytea, bytea) AS INSERT INTO leases VALUES "
      "($1, $2) ON CONFLICT (id) DO UPDATE SET lease = EXCLUDED.lease;"
      /* the multi-row writes (pending.c): one array per column. A save's
       * events are new (lash_backend.h: after the row's last stored one):
       * a plain INSERT, without ON CONFLICT's second look-up of the key
       * and its speculative insertion lock (docs/perf.md, session 7). */
      "PREPARE lash_rows_putn (bytea[], bytea[], bytea[], smallint[], "
      "boolean[], bigint[], bigint[], bytea[], bigint[], bigint[]) AS INSERT "
      "INTO rows (id, kind, rec, status, live, change_seq, wake_at, awaits, "
      "rank, cseq) SELECT i, k, r, s, l, c, w, a, rk, cq FROM unnest($1, $2, "
      "$3, $4, $5, $6, $7, $8, $9, $10) AS u (i, k, r, s, l, c, w, a, rk, cq) "
      "ON "
      "CONFLICT (id) DO UPDATE SET rec = EXCLUDED.rec, status = "
      "EXCLUDED.status, live = EXCLUDED.live, change_seq = "
      "EXCLUDED.change_seq, wake_at = EXCLUDED.wake_at, awaits = "
      "EXCLUDED.awaits;"
      "PREPARE lash_ev_putn (bytea[], bigint[], bytea[], bytea[]) AS INSERT "
      "INTO events (id, seq, ev, key) SELECT i, q, e, k FROM unnest($1, $2, "
      "$3, $4) AS u (i, q, e, k);"
      "PREPARE lash_lease_newn (bytea[], bytea[]) AS INSERT INTO leases (id, "
      "lease) SELECT i, l FROM unnest($1, $2) AS u (i, l);"
      "PREPARE lash_lease_putn (bytea[], bytea[]) AS INSERT INTO leases (id, "
      "lease) SELECT i, l FROM unnest($1, $2) AS u (i, l) ON CONFLICT (id) DO "
      "UPDATE SET lease = EXCLUDED.lease;"
      /* pg__cache_verify: the ordinals of cached rows whose rows or
       * leases tuple is no longer the version we wrote (its xmin) */
      "PREPARE lash_verify (bytea[], bigint[], bigint[]) AS SELECT u.n FROM "
      "unnest($1, $2, $3) WITH ORDINALITY AS u (id, rx, lx, n) WHERE (SELECT "
      "xmin::text::bigint FROM rows WHERE id = u.id) IS DISTINCT FROM u.rx "
      "OR (SELECT xmin::text::bigint FROM leases WHERE id = u.id) IS "
      "DISTINCT FROM u.lx;"
      "PREPARE lash_ev_scan (bytea, bigint) AS SELECT seq, id, ev FROM "
      "events WHERE id = $1 AND seq > $2 ORDER BY seq LIMIT 256;"
      "PREPARE lash_tomb_drop (bytea) AS DELETE FROM tombs WHERE id = $1;"

      "PREPARE lash_remove (bytea, bytea, bigint) AS WITH e AS (DELETE FROM "
      "events WHERE id = $1 RETURNING 1), l AS (DELETE FROM leases WHERE id "
      "= $1), r AS (DELETE FROM rows WHERE id = $1), t AS (INSERT INTO tombs "
      "VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET tomb = "
      "EXCLUDED.tomb, change_seq = EXCLUDED.change_seq) SELECT count(*) "
      "FROM e;";
  /* version 4: the side table (kv), unless a schema from before it is
   * open read-only */
  static const char kv_sql[] =
      "PREPARE lash_kv_get (smallint, bytea) AS SELECT val FROM kv WHERE ns "
      "= $1 AND key = $2;"
      "PREPARE lash_kv_put (smallint, bytea, bytea) AS INSERT INTO kv VALUES "
      "($1, $2, $3) ON CONFLICT (ns, key) DO UPDATE SET val = EXCLUDED.val;"
      "PREPARE lash_kv_del (smallint, bytea) AS DELETE FROM kv WHERE ns = $1 "
      "AND key = $2;";
  PGresult *r = PQexec(s->w, sql);
  int rc = 0;
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    rc = pg__fail_res(s, s->w, r, "preparing its statements");
  PQclear(r);
  if (rc == 0 && !s->no_kv) {
    r = PQexec(s->w, kv_sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      rc = pg__fail_res(s, s->w, r, "preparing its statements");
    PQclear(r);
  }
  return rc;
}
