/* notify.c - the wake source: a second connection LISTENs on the store's
 * channel; every commit that wrote sends one NOTIFY (payload: its
 * change_seq). The engine polls this connection's socket and calls
 * wake_consume, which drains PQnotifies. The same connection answers
 * change_seq while the transaction connection is busy. A lost listening
 * connection is reconnected by change_seq (the engine's backoff re-read,
 * the fallback that keeps working meanwhile). */
#define _GNU_SOURCE 1
#include "pg-int.h"

#include <stdio.h>
#include <string.h>

int pg__listen(pg__store *s) {
  char err[600], sql[128];
  PGresult *r;
  int rc;
  if (s->l != NULL && PQstatus(s->l) == CONNECTION_OK && s->l_ready) return 0;
  err[0] = '\0';
  if ((rc = pg__connect(s, &s->l, err, sizeof err)) < 0)
    return lash_backend_fail(&s->base, rc, "%s", err);
  snprintf(sql, sizeof sql, "LISTEN \"%s\"", s->chan);
  r = PQexec(s->l, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    rc = pg__fail_res(s, s->l, r, "listening for commits");
    PQclear(r);
    return rc;
  }
  PQclear(r);
  PQsetnonblocking(s->l, 1);
  s->l_ready = 1;
  return 0;
}

int pg__change_seq(lash_backend *b, uint64_t *out) {
  pg__store *s = PG__S(b);
  PGconn *c;
  PGresult *r = NULL;
  int rc;
  *out = 0;
  /* A NOTIFY named a later commit than we last said: that commit (or our
   * own last one, if later) is the answer, without a round trip (the feed
   * reads from its cursor in any case, so a commit whose NOTIFY is still on
   * its way is not lost). */
  if (s->note_seq > s->told_seq) {
    *out = s->note_seq > s->own_seq ? s->note_seq : s->own_seq;
    s->told_seq = *out;
    if (s->pc && *out != s->meta.change_seq) pg__pc_off(s);
    return 0;
  }
  /* The transaction connection when it is idle (reconnecting it if it was
   * lost), else the listening one. */
  if (s->depth == 0) {
    if ((rc = pg__ensure_w(s)) < 0) return rc;
    rc = pg__run(s, "SELECT change_seq FROM meta WHERE id = 1",
                 "reading change_seq", &r);
  } else {
    if ((rc = pg__listen(s)) < 0) return rc;
    c = s->l;
    PQsetnonblocking(c, 0);
    rc = pg__exec(s, c, "SELECT change_seq FROM meta WHERE id = 1",
                  "reading change_seq", &r);
    PQsetnonblocking(c, 1);
  }
  if (rc < 0) return rc;
  if (PQntuples(r) == 1) *out = pg__u64(r, 0, 0);
  PQclear(r);
  if (*out > s->told_seq) s->told_seq = *out;
  if (s->pc && *out != s->meta.change_seq) pg__pc_off(s);
  return 0;
}

int pg__wake_source(lash_backend *b, lash_wake_source *out) {
  pg__store *s = PG__S(b);
  int rc;
  if ((rc = pg__listen(s)) < 0) return rc;
  out->kind = LASH_WAKE_FD;
  out->fd = PQsocket(s->l);
  return 0;
}

/* 1 when another process committed; our own commits are not news. */
int pg__wake_consume(lash_backend *b) {
  pg__store *s = PG__S(b);
  int any = pg__notes(s);
  if (s->foreign) any = 1; /* taken off the socket by a read (txn.c) */
  s->foreign = 0;
  return any;
}
