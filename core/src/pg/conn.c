/* conn.c - buffers, connections (connect, reconnect with backoff), running
 * SQL, and libpq failures mapped to LASH_E* codes. */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ buffers */

int pg__buf_reserve(pg__buf *b, size_t more) {
  size_t cap;
  char *p;
  if (b->len + more + 1 <= b->cap) return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < b->len + more + 1)
    cap *= 2;
  if ((p = realloc(b->p, cap)) == NULL) return LASH_ENOMEM;
  b->p = p;
  b->cap = cap;
  return 0;
}

int pg__buf_str(pg__buf *b, const char *s) {
  size_t n = strlen(s);
  if (pg__buf_reserve(b, n) < 0) return LASH_ENOMEM;
  memcpy(b->p + b->len, s, n + 1);
  b->len += n;
  return 0;
}

int pg__buf_fmt(pg__buf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || pg__buf_reserve(b, (size_t)n) < 0) return LASH_ENOMEM;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

int pg__buf_bytea(pg__buf *b, const void *data, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = data;
  char *o;
  size_t i;
  if (data == NULL) return pg__buf_str(b, "NULL");
  if (pg__buf_reserve(b, 2 * n + 16) < 0) return LASH_ENOMEM;
  o = b->p + b->len;
  memcpy(o, "'\\x", 3);
  o += 3;
  for (i = 0; i < n; i++) {
    *o++ = hex[p[i] >> 4];
    *o++ = hex[p[i] & 15];
  }
  memcpy(o, "'::bytea", 9);
  b->len = (size_t)(o + 8 - b->p);
  return 0;
}

void pg__buf_free(pg__buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* -------------------------------------------------------------- bytes */

static int unhex(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int pg__bytea(pg__store *s, const PGresult *r, int row, int col,
              lash_bytes *out) {
  const char *v;
  size_t n, i;
  pg__blob *bl;
  out->data = NULL;
  out->len = 0;
  if (PQgetisnull(r, row, col)) return 0;
  v = PQgetvalue(r, row, col);
  n = (size_t)PQgetlength(r, row, col);
  if (n < 2 || v[0] != '\\' || v[1] != 'x')
    return lash_backend_fail(&s->base, LASH_ECORRUPT,
                             "store %s: a bytea value is not in hex format "
                             "(set bytea_output = hex)",
                             s->name);
  n = (n - 2) / 2;
  if ((bl = malloc(sizeof *bl + n + 1)) == NULL)
    return lash_backend_fail(&s->base, LASH_ENOMEM,
                             "out of memory reading store %s", s->name);
  for (i = 0; i < n; i++) {
    int hi = unhex(v[2 + 2 * i]), lo = unhex(v[3 + 2 * i]);
    if (hi < 0 || lo < 0) {
      free(bl);
      return lash_backend_fail(&s->base, LASH_ECORRUPT,
                               "store %s: a bytea value is not hex", s->name);
    }
    bl->b[i] = (unsigned char)(hi << 4 | lo);
  }
  bl->b[n] = 0;
  bl->next = s->blobs;
  s->blobs = bl;
  out->data = bl->b;
  out->len = n;
  return 0;
}

void pg__blobs_free(pg__store *s) {
  while (s->blobs != NULL) {
    pg__blob *n = s->blobs->next;
    free(s->blobs);
    s->blobs = n;
  }
}

uint64_t pg__u64(const PGresult *r, int row, int col) {
  if (PQgetisnull(r, row, col)) return 0;
  return strtoull(PQgetvalue(r, row, col), NULL, 10);
}

/* -------------------------------------------------------- connections */

int64_t pg__mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Defaults a target may override: a lost network shows within seconds,
 * not after the kernel's TCP timeout. */
int pg__connect(pg__store *s, PGconn **c, char *err, size_t errlen) {
  const char *const keys[] = {"connect_timeout",  "application_name",
                              "keepalives_idle",  "keepalives_interval",
                              "keepalives_count", "tcp_user_timeout",
                              "dbname",           NULL};
  const char *vals[] = {"5", "lash", "5", "2", "3", "5000", s->conninfo, NULL};
  char sql[512];
  PGresult *r;
  if (*c != NULL) PQfinish(*c);
  *c = PQconnectdbParams(keys, vals, 1);
  if (*c == NULL || PQstatus(*c) != CONNECTION_OK) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s",
             *c != NULL ? PQerrorMessage(*c) : "out of memory");
    msg[strcspn(msg, "\n")] = '\0';
    if (err != NULL && errlen > 0)
      snprintf(err, errlen,
               "store %s: cannot connect to PostgreSQL: %s (is the server "
               "running, and the URI right?)",
               s->name, msg);
    if (*c != NULL) PQfinish(*c);
    *c = NULL;
    return LASH_EIO;
  }
  snprintf(sql, sizeof sql,
           "SET search_path TO \"%s\"; SET bytea_output = hex; SET "
           "client_min_messages = warning; SET synchronous_commit = %s; "
           /* the server's side of a lost network: a session whose host
            * went away ends (and its locks with it) within seconds */
           "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
           "SET tcp_keepalives_count = 3; SET tcp_user_timeout = 5000; "
           /* a finished read's transaction stays open until the next
            * statement (pg__run): never ended for idling; each write sets
            * its own limit (pg__begin) */
           "SET idle_in_transaction_session_timeout = 0",
           s->schema, s->async_commit ? "off" : "DEFAULT");
  r = PQexec(*c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "store %s: setting up the session: %s", s->name,
               PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(*c);
    *c = NULL;
    return LASH_EIO;
  }
  PQclear(r);
  return 0;
}

int pg__fail_res(pg__store *s, PGconn *c, PGresult *r, const char *doing) {
  const char *state =
      r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  char msg[400];
  int rc = LASH_EIO;
  snprintf(msg, sizeof msg, "%s",
           r != NULL && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
                                                   : PQerrorMessage(c));
  msg[strcspn(msg, "\n")] = '\0';
  if (PQstatus(c) != CONNECTION_OK) {
    /* the connection's message: the server's last word comes first */
    snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
    msg[strcspn(msg, "\n")] = '\0';
    if (c == s->w) s->w_ready = 0;
    if (c == s->l) s->l_ready = 0;
    /* (a lost COMMIT may have been written: pg__commit asks the server
     * and says what became of it) */
    return lash_backend_fail(
        &s->base, LASH_EIO,
        "store %s: lost the connection to PostgreSQL while %s (%s)%s%s",
        s->name, doing, msg,
        strstr(msg, "idle-in-transaction") != NULL ||
                (c == s->w && s->in_write && s->cur_idle_ms > 0 &&
                 s->w_gap >= s->cur_idle_ms)
            ? ": the write sat idle for longer than write_idle_ms (was its "
              "process stopped?), and the server ended it"
            : "",
        c == s->w && s->committing
            ? ""
            : "; nothing of this transaction was written, lash reconnects");
  }
  if (state != NULL && strcmp(state, "53100") == 0) rc = LASH_EFULL;
  if (state != NULL && strcmp(state, "53200") == 0) rc = LASH_ENOMEM;
  if (state != NULL &&
      (strncmp(state, "42501", 5) == 0 || strncmp(state, "25006", 5) == 0))
    rc = LASH_EACCES;
  return lash_backend_fail(&s->base, rc, "store %s: PostgreSQL failed %s: %s",
                           s->name, doing, msg);
}

/* A round trip on w ended: how long since the one before (a stop between
 * two statements, or inside this one: write_idle_ms's message). */
static void w_round_trip(pg__store *s) {
  int64_t now = pg__mono_ms();
  s->w_gap = now - s->w_last;
  s->w_last = now;
}

int pg__exec(pg__store *s, PGconn *c, const char *sql, const char *doing,
             PGresult **res) {
  PGresult *r;
  ExecStatusType st;
  r = PQexec(c, sql);
  if (c == s->w) w_round_trip(s);
  st = PQresultStatus(r);
  *res = NULL;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    *res = r;
    return 0;
  }
  st = pg__fail_res(s, c, r, doing);
  PQclear(r);
  return (int)st;
}

/* The statements of @p sql (";"-separated: lash's own, no ";" inside a
 * literal) in one pipeline, one round trip: text ones as they are, a
 * marker "\001N" as the prepared multi-row write s->bst[N] with its binary
 * array parameters (pending.c); *res is the last statement's result, the
 * first failure the error. */
static int pipe_run(pg__store *s, char *sql, const char *doing,
                    PGresult **res) {
  PGconn *c = s->w;
  PGresult *r, *last = NULL, *bad = NULL;
  char *p = sql;
  size_t nsent = 0, i;
  int rc = 0, sent = 1;
  if (!PQenterPipelineMode(c)) return pg__fail_res(s, c, NULL, doing);
  while (*p != '\0' && sent) {
    char *e = strchr(p, ';');
    if (e != NULL) *e = '\0';
    while (*p == ' ' || *p == '\n')
      p++;
    if (*p == '\001') {
      const pg__bstmt *st = &s->bst[strtoul(p + 1, NULL, 10)];
      const char *vals[PG__PCOLS];
      int lens[PG__PCOLS], fmts[PG__PCOLS], k;
      for (k = 0; k < st->nparams; k++) {
        vals[k] = s->bdata.p + st->off[k];
        lens[k] = (int)st->len[k];
        fmts[k] = 1;
      }
      sent = PQsendQueryPrepared(c, st->name, st->nparams, vals, lens, fmts, 0);
      nsent++;
    } else if (*p != '\0') {
      sent = PQsendQueryParams(c, p, 0, NULL, NULL, NULL, NULL, 0);
      nsent++;
    }
    p = e != NULL ? e + 1 : p + strlen(p);
  }
  if (!sent || !PQpipelineSync(c)) {
    rc = pg__fail_res(s, c, NULL, doing);
    s->w_ready = 0; /* the next write connects afresh */
    return rc;
  }
  for (i = 0; i < nsent; i++)
    while ((r = PQgetResult(c)) != NULL) {
      ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(last);
        last = r;
      } else if (st == PGRES_PIPELINE_ABORTED || bad != NULL) {
        PQclear(r);
      } else {
        bad = r;
      }
    }
  /* the sync's own result, then out of pipeline mode */
  while ((r = PQgetResult(c)) != NULL) {
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st == PGRES_PIPELINE_SYNC) break;
  }
  w_round_trip(s);
  if (!PQexitPipelineMode(c) && bad == NULL && PQstatus(c) == CONNECTION_OK)
    bad = PQmakeEmptyPGresult(c, PGRES_FATAL_ERROR);
  if (bad != NULL || PQstatus(c) != CONNECTION_OK) {
    rc = pg__fail_res(s, c, bad, doing);
    PQclear(bad);
    PQclear(last);
    if (PQpipelineStatus(c) != PQ_PIPELINE_OFF)
      s->w_ready = 0; /* stuck in the pipeline: the next write connects */
    return rc;
  }
  *res = last;
  return 0;
}

/* Sends the queued writes (s->q) with @p sql appended, in one round
 * trip; *res is the last statement's result. */
int pg__run(pg__store *s, const char *sql, const char *doing, PGresult **res) {
  int rc, pipe = s->nbst > 0; /* multi-row writes with binary parameters */
  const char *pre;
  pg__buf all = {0};
  *res = NULL;
  if (!pipe && !s->end_due && !s->begin_due) {
    if (s->nq == 0) return sql != NULL ? pg__exec(s, s->w, sql, doing, res) : 0;
    if (sql != NULL && pg__buf_str(&s->q, sql) < 0)
      return lash_backend_fail(&s->base, LASH_ENOMEM,
                               "out of memory writing store %s", s->name);
    rc = pg__exec(s, s->w, s->q.p, doing, res);
    s->q.len = 0;
    s->nq = 0;
    return rc;
  }
  /* A finished read's ROLLBACK and a new read's BEGIN travel with it. */
  pre = s->end_due && s->begin_due
            ? "ROLLBACK; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
        : s->end_due   ? "ROLLBACK;"
        : s->begin_due ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
                       : "";
  s->end_due = 0;
  s->begin_due = 0;
  if (pg__buf_str(&all, pre) < 0 ||
      ((s->nq > 0 || pipe) && pg__buf_str(&all, s->q.p) < 0) ||
      (sql != NULL && pg__buf_str(&all, sql) < 0)) {
    pg__buf_free(&all);
    return lash_backend_fail(&s->base, LASH_ENOMEM, "out of memory %s store %s",
                             pipe ? "writing" : "reading", s->name);
  }
  rc = pipe ? pipe_run(s, all.p, doing, res)
            : pg__exec(s, s->w, all.p, doing, res);
  pg__buf_free(&all);
  s->q.len = 0;
  s->nq = 0;
  s->nbst = 0;
  s->bdata.len = 0;
  return rc;
}
