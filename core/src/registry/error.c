/* error.c - error codes, names of enumerations, the per-store message
 * (also the one a backend writes through lash_backend_fail). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen, strdup, clock_gettime, getrandom */
#endif
#include "registry-int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *lash_version(void) {
  return LASH_VERSION_STRING;
}

const char *lash_strerror(int rc) {
  switch (rc) {
  case 0:
    return "success";
  case LASH_APPLIED:
    return "identical outcome already recorded";
  case LASH_SUPERSEDED_OUTCOME:
    return "a different outcome won first";
#define LASH__ERR_TEXT(name, val, text)                                        \
  case val:                                                                    \
    return text;
    LASH_ERRNO_MAP(LASH__ERR_TEXT)
#undef LASH__ERR_TEXT
  default:
    return "unknown error";
  }
}

const char *lash_err_name(int rc) {
  switch (rc) {
  case 0:
    return "OK";
  case LASH_APPLIED:
    return "APPLIED";
  case LASH_SUPERSEDED_OUTCOME:
    return "SUPERSEDED_OUTCOME";
#define LASH__ERR_NAME(name, val, text)                                        \
  case val:                                                                    \
    return #name;
    LASH_ERRNO_MAP(LASH__ERR_NAME)
#undef LASH__ERR_NAME
  default:
    return "EUNKNOWN";
  }
}

static const char *const status_names[LASH_STATUS_COUNT + 1] = {
    NULL,        "pending", "running",   "waiting",
    "completed", "failed",  "cancelled", "abandoned"};

const char *lash_status_name(int status) {
  if (status < LASH_PENDING || status > LASH_ABANDONED) return NULL;
  return status_names[status];
}

int lash_status_parse(const char *name) {
  int i;
  if (name == NULL) return 0;
  for (i = LASH_PENDING; i <= LASH_ABANDONED; i++)
    if (strcmp(name, status_names[i]) == 0) return i;
  return 0;
}

static const char *const disposition_names[] = {NULL, "rerunnable",
                                                "owner_bound", "external"};

const char *lash_disposition_name(int disposition) {
  if (disposition < LASH_RERUNNABLE || disposition > LASH_EXTERNAL) return NULL;
  return disposition_names[disposition];
}

int lash_disposition_parse(const char *name) {
  int i;
  if (name == NULL) return 0;
  for (i = LASH_RERUNNABLE; i <= LASH_EXTERNAL; i++)
    if (strcmp(name, disposition_names[i]) == 0) return i;
  return 0;
}

const char *lash_authority_name(int authority) {
  switch (authority) {
  case LASH_AUTH_EXTERNAL:
    return "external";
  case LASH_AUTH_WORKFLOW:
    return "workflow";
  case LASH_AUTH_RECONCILED_ABANDON:
    return "reconciled_abandon";
  default:
    return NULL;
  }
}

const char *lash_writer_name(int writer) {
  switch (writer) {
  case LASH_WRITER_OWNER_DRAIN:
    return "owner_drain";
  case LASH_WRITER_RECONCILED_REQUEST:
    return "reconciled_request";
  case LASH_WRITER_ENGINE_GAVE_UP:
    return "engine_gave_up";
  case LASH_WRITER_SWEEP:
    return "sweep";
  default:
    return NULL;
  }
}

/* ------------------------------------------------------ store messages */

/* A thread that is not the store's owner (the engine's heartbeat) keeps
 * its messages apart: lash_thread_errbuf. */
static _Thread_local char *tls_err;
static _Thread_local size_t tls_errcap;

void lash_thread_errbuf(char *buf, size_t cap) {
  tls_err = buf != NULL && cap > 0 ? buf : NULL;
  tls_errcap = tls_err != NULL ? cap : 0;
  if (tls_err != NULL) tls_err[0] = '\0';
}

char *lash__errbuf(lash_store *s, size_t *cap) {
  if (tls_err != NULL) {
    *cap = tls_errcap;
    return tls_err;
  }
  *cap = sizeof s->errmsg;
  return s->errmsg;
}

const char *lash_errmsg(const lash_store *s) {
  if (s == NULL) return "";
  return tls_err != NULL ? tls_err : s->errmsg;
}

void lash__clear(lash_store *s) {
  size_t cap;
  lash__errbuf(s, &cap)[0] = '\0';
}

int lash__fail(lash_store *s, int rc, const char *fmt, ...) {
  va_list ap;
  size_t cap;
  char *buf = lash__errbuf(s, &cap);
  va_start(ap, fmt);
  vsnprintf(buf, cap, fmt, ap);
  va_end(ap);
  return rc;
}

int lash_backend_fail(lash_backend *b, int rc, const char *fmt, ...) {
  va_list ap;
  if (rc == LASH_EPANIC) b->panicked = 1;
  if (b->errmsg == NULL || b->errcap == 0) return rc;
  va_start(ap, fmt);
  vsnprintf(b->errmsg, b->errcap, fmt, ap);
  va_end(ap);
  return rc;
}

/* Where a walk is, for a parent process watching it (isolate.c). */
void lash__progress_set(lash_store *s, const char *phase, const char *id,
                        size_t idlen) {
  lash__progress *p = s->progress;
  if (p == NULL) return;
  if (idlen > LASH_ID_MAX) idlen = LASH_ID_MAX;
  p->phase = phase;
  if (id != NULL) memcpy(p->id, id, idlen);
  p->id[id != NULL ? idlen : 0] = '\0';
}
