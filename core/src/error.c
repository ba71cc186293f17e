/* error.c - error codes, names of enumerations, the per-store message. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen, strdup, clock_gettime, getrandom */
#endif
#include "lash-int.h"

#include <errno.h>
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

const char *lash_errmsg(const lash_store *s) {
  if (s == NULL) return "";
  return s->errmsg;
}

void lash__clear(lash_store *s) {
  s->errmsg[0] = '\0';
}

int lash__fail(lash_store *s, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
  va_end(ap);
  return rc;
}

int lash__mdb_code(int mrc) {
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

int lash__mdb(lash_store *s, int mrc, const char *what) {
  int rc = lash__mdb_code(mrc);
  if (rc == 0) return 0;
  if (mrc == MDB_MAP_FULL)
    return lash__fail(s, rc,
                      "store %s is full (max_bytes %zu bytes) while %s: "
                      "reopen it with a larger max_bytes",
                      s->path, s->opts.max_bytes, what);
  if (mrc == MDB_TXN_FULL)
    return lash__fail(s, rc,
                      "store %s: the write batch is too large while %s: "
                      "commit smaller batches",
                      s->path, what);
  if (rc == LASH_EPANIC) s->panicked = 1;
  return lash__fail(s, rc, "store %s: %s while %s", s->path, mdb_strerror(mrc),
                    what);
}
