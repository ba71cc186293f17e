/* lmdb/owners.c - owner liveness on one host (lash_backend.h, version 2).
 *
 * An engine holds an flock on a file per owner incarnation in the store's
 * owners/ folder for its life; the kernel drops the lock when the process
 * dies, however it dies. A claimer that meets a live lease of another
 * owner opens that owner's file and tries the lock: taken (EWOULDBLOCK)
 * means alive; free means its holder is gone, so the lease counts as
 * lapsed. No file means unknown (never held here: an older lash, a store
 * API user without an engine): the TTL stays the rule.
 *
 * The holder locks a fresh temporary file and only then renames it into
 * place, so a file found under its name is locked unless its holder died.
 * A prober that takes the lock checks that the name still names the inode
 * it locked (a holder of the same pair may have replaced it since). A
 * gone owner's file is kept (every claim of its rows needs the answer
 * "gone", not "unknown") with its mtime set to when it was found gone;
 * owner_hold sweeps unlocked files older than an hour. A file swept too
 * early only means "unknown": the TTL again, never a wrong take-over.
 *
 * The descriptors are close-on-exec: a child a body spawns must not keep
 * its parent's lock alive after the parent died.
 *
 * Part: lmdb (the backend). May call: the OS. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkostemp, O_CLOEXEC */
#endif
#include "lmdb-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* mkstemp's template suffix: six capital X, spelt out so it reads as what
 * it is. */
#define MKSTEMP_SUFFIX "XX" "XX" "XX"

#define OWNERS_DIR "owners"
#define SWEEP_AGE_S 3600

struct lmdb__owner {
  int fd;
  char path[PATH_MAX];
};

/* Appends @p s escaped ([A-Za-z0-9._-] kept, else %XX), at most @p max
 * output bytes. */
static size_t put_escaped(char *out, size_t at, size_t cap, const char *s,
                          size_t max) {
  static const char hex[] = "0123456789abcdef";
  size_t start = at;
  for (; *s != '\0' && at + 4 < cap && at - start + 3 <= max; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-') {
      out[at++] = (char)c;
    } else {
      out[at++] = '%';
      out[at++] = hex[c >> 4];
      out[at++] = hex[c & 15];
    }
  }
  out[at] = '\0';
  return at;
}

static uint64_t fnv64(const char *a, const char *b) {
  uint64_t h = 14695981039346656037ull;
  const char *p;
  for (p = a; *p != '\0'; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  h = (h ^ 0) * 1099511628211ull; /* the separator */
  for (p = b; *p != '\0'; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return h;
}

/* <store>/owners/<owner>.<incarnation>.<hash>.lock (names shortened and
 * escaped; the hash of the whole pair keeps them apart). 0 or -1. */
static int owner_path(const lmdb__store *s, const char *owner, const char *inc,
                      char *out, size_t cap) {
  char name[256];
  size_t n = 0;
  int w;
  n = put_escaped(name, n, sizeof name, owner, 90);
  name[n++] = '.';
  n = put_escaped(name, n, sizeof name, inc, 90);
  snprintf(name + n, sizeof name - n, ".%016llx.lock",
           (unsigned long long)fnv64(owner, inc));
  w = snprintf(out, cap, "%s/" OWNERS_DIR "/%s", s->path, name);
  return w < 0 || (size_t)w >= cap ? -1 : 0;
}

/* Probes the lock file at @p path: 1 held, 0 its holder is gone (the file
 * is kept, its mtime set to now), -1 no file or cannot tell. */
static int probe(const char *path) {
  int tries;
  for (tries = 0; tries < 3; tries++) {
    struct stat a, b;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      close(fd);
      return e == EWOULDBLOCK ? 1 : -1;
    }
    /* Ours now: is it still the file of that name? */
    if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
      (void)futimens(fd, NULL); /* found gone now (for the sweep) */
      close(fd);
      return 0;
    }
    close(fd); /* replaced meanwhile: look again */
  }
  return -1;
}

/* Removes unlocked lock files older than SWEEP_AGE_S (dead owners). */
static void sweep(const char *dir, const char *keep) {
  DIR *d = opendir(dir);
  struct dirent *de;
  time_t now = time(NULL);
  char path[PATH_MAX];
  if (d == NULL) return;
  while ((de = readdir(d)) != NULL) {
    struct stat st;
    size_t n = strlen(de->d_name);
    int fd;
    if (n < 5 || strcmp(de->d_name + n - 5, ".lock") != 0) continue;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >=
            sizeof path ||
        strcmp(path, keep) == 0)
      continue;
    if (stat(path, &st) != 0 || now - st.st_mtime < SWEEP_AGE_S) continue;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) unlink(path);
    close(fd);
  }
  closedir(d);
}

void lmdb__owner_release(lash_backend *b) {
  lmdb__store *s = LMDB__S(b);
  struct lmdb__owner *o = s->owner;
  if (o == NULL) return;
  /* Unlinked while still locked: a prober then finds no file (unknown),
   * and our leases were released before (a clean close). */
  unlink(o->path);
  close(o->fd);
  free(o);
  s->owner = NULL;
}

int lmdb__owner_hold(lash_backend *b, const char *owner, const char *inc) {
  lmdb__store *s = LMDB__S(b);
  struct lmdb__owner *o;
  char dir[PATH_MAX], tmp[PATH_MAX];
  int fd;

  lmdb__owner_release(b);
  if ((size_t)snprintf(dir, sizeof dir, "%s/" OWNERS_DIR, s->path) >=
      sizeof dir)
    return lash_backend_fail(b, LASH_EINVAL, "store path %s is too long",
                             s->path);
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    return lash_backend_fail(b, LASH_EIO,
                             "cannot create the owners folder %s: %s", dir,
                             strerror(errno));
  if ((o = calloc(1, sizeof *o)) == NULL) return LASH_ENOMEM;
  if (owner_path(s, owner, inc, o->path, sizeof o->path) < 0 ||
      (size_t)snprintf(tmp, sizeof tmp, "%s.%s", o->path, MKSTEMP_SUFFIX) >=
          sizeof tmp) {
    free(o);
    return lash_backend_fail(
        b, LASH_EINVAL, "store path %s is too long for owner files", s->path);
  }
  if (probe(o->path) == 1) {
    free(o);
    return lash_backend_fail(b, LASH_EBUSY,
                             "owner %s (incarnation %s) is held by another "
                             "live engine of store %s",
                             owner, inc, s->path);
  }
  if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
    int e = errno;
    free(o);
    return lash_backend_fail(b, LASH_EIO, "cannot create owner file in %s: %s",
                             dir, strerror(e));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0 || rename(tmp, o->path) != 0) {
    int e = errno;
    unlink(tmp);
    close(fd);
    free(o);
    return lash_backend_fail(b, LASH_EIO, "cannot hold owner file %s: %s", tmp,
                             strerror(e));
  }
  {
    char line[64];
    int n = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (n > 0 && write(fd, line, (size_t)n) < 0) { /* informative only */
    }
  }
  o->fd = fd;
  s->owner = o;
  sweep(dir, o->path);
  return 0;
}

int lmdb__owner_alive(lash_backend *b, const char *owner, const char *inc) {
  char path[PATH_MAX];
  if (owner_path(LMDB__S(b), owner, inc, path, sizeof path) < 0) return -1;
  return probe(path);
}
