/* example.h - what the C API examples share; not part of the API.
 *
 * Each example is a program of its own, built and run by ctest
 * (example.<name>) so that docs/c-api.md, which quotes them, cannot rot.
 * This header gives each one a fresh directory to put its store in
 * (removed at exit), CHECK() for calls that must succeed, EXPECT() for
 * what the example claims, and a MessagePack string for payloads. */
#ifndef LASH_EXAMPLE_H
#define LASH_EXAMPLE_H

#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lash.h"

/* CHECK(s, call): @p call must not return a negative code; if it does,
 * print the code's name and the store's message and exit 1. Evaluates to
 * the call's result (0 or a positive informational code). */
#define CHECK(s, call) ex_check_((s), (call), #call, __FILE__, __LINE__)

/* EXPECT(cond): what the example claims; like assert, also under NDEBUG. */
#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);      \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static inline int ex_check_(lash_store *s, int rc, const char *what,
                            const char *file, int line) {
  if (rc < 0) {
    fprintf(stderr, "%s:%d: %s: %s: %s\n", file, line, what, lash_err_name(rc),
            s != NULL ? lash_errmsg(s) : "");
    exit(1);
  }
  return rc;
}

static char ex_root_[64];

static inline int ex_rm_(const char *path, const struct stat *sb, int flag,
                         struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static inline void ex_cleanup_(void) {
  if (ex_root_[0] != '\0') nftw(ex_root_, ex_rm_, 16, FTW_DEPTH | FTW_PHYS);
}

/* A path for a store, NAME inside a fresh directory under /tmp that is
 * removed when the program exits. Valid until exit. */
static inline const char *ex_store_path(const char *name) {
  static char path[160];
  snprintf(ex_root_, sizeof ex_root_, "/tmp/lash-example-XXXXXX");
  if (mkdtemp(ex_root_) == NULL) {
    perror("mkdtemp");
    exit(1);
  }
  atexit(ex_cleanup_);
  snprintf(path, sizeof path, "%s/%s", ex_root_, name);
  return path;
}

/* @p s (at most 31 bytes) as a MessagePack string in @p buf (>= 32 bytes).
 * Payloads are opaque to the core; MessagePack is the convention the Lua
 * API and the lash tool read. */
static inline lash_bytes ex_mpstr(char buf[32], const char *s) {
  size_t n = strlen(s);
  lash_bytes b;
  if (n > 31) n = 31;
  buf[0] = (char)(0xa0 | n);
  memcpy(buf + 1, s, n);
  b.data = buf;
  b.len = n + 1;
  return b;
}

#endif
