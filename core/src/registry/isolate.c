/* isolate.c - reading a damaged store without crashing: lash_check_isolated
 * walks the store in a child process (fork) that reopens it read-only, so
 * that a page that faults (SIGSEGV, SIGBUS) kills the child, not the
 * caller; the child reports problems through a pipe and where it is through
 * a shared page, and the parent reports the signal as damage there.
 * lash_salvage copies every readable row (record and events, lease dropped)
 * into a new store the same way, restarting after the row that killed it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen, strdup, strsignal */
#endif
#include "registry-int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* What a child shares with its parent (one anonymous shared page). */
#define SKIP_MAX 64

typedef struct shared {
  lash__progress where; /* written by check/salvage as they go */
  int finished;         /* the child reached the end */
  /* salvage: the last row committed to the new store, the rows copied
   * and skipped so far, the rows a child died on (never read again) */
  char done_id[LASH_ID_MAX + 1];
  uint64_t copied, skipped;
  int nskip;
  char skip[SKIP_MAX][LASH_ID_MAX + 1];
  int failed;  /* the child stopped on an error (not a fault) */
  int sig;     /* the fault the child died of, when it could say */
  int open_rc; /* the child could not open the store: why */
  char open_err[LASH__ERRMSG_MAX];
} shared;

/* What a child is asked to walk. */
typedef struct job {
  const char *dir, *dest;
  lash_store_opts opts;
} job;

static shared *the_shared; /* in a child: where its fault handler writes */

/* A fault in the child: note it, then die of it (a sanitizer's own handler
 * may come first and exit instead: the parent takes both for a fault). */
static void on_fault(int sig) {
  if (the_shared != NULL) the_shared->sig = sig;
  signal(sig, SIG_DFL);
  raise(sig);
}

static shared *shared_new(void) {
  void *p = mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  memset(p, 0, sizeof(shared));
  return p;
}

/* Opens the store of the job read-only (in the child); a failure is kept
 * in the shared page. */
static int reopen(const job *j, shared *sh, lash_store **out) {
  lash_store_opts o = j->opts;
  o.read_only = 1;
  o.damaged_ok = j->dest != NULL; /* salvage reads what it can */
  sh->open_rc =
      lash_store_open(j->dir, &o, out, sh->open_err, sizeof sh->open_err);
  return sh->open_rc;
}

static void write_all(int fd, const void *p, size_t n) {
  const char *q = p;
  while (n > 0) {
    ssize_t w = write(fd, q, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    q += w;
    n -= (size_t)w;
  }
}

/* A problem line through the pipe: its length (4 bytes), then its bytes. */
static void send_line(int fd, const char *line) {
  uint32_t n = (uint32_t)strlen(line);
  write_all(fd, &n, sizeof n);
  write_all(fd, line, n);
}

static void child_problem(void *ud, const char *line) {
  send_line(*(int *)ud, line);
}

/* Reads lines from fd until EOF, handing each to fn; the count. */
static int recv_lines(int fd, lash_problem_fn fn, void *ud) {
  char line[LASH__ERRMSG_MAX + 1];
  uint32_t n;
  int count = 0;
  for (;;) {
    size_t got = 0, want;
    while (got < sizeof n) {
      ssize_t r = read(fd, (char *)&n + got, sizeof n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return count;
      got += (size_t)r;
    }
    want = n < LASH__ERRMSG_MAX ? n : LASH__ERRMSG_MAX;
    got = 0;
    while (got < n) {
      char sink[256];
      ssize_t r;
      if (got < want)
        r = read(fd, line + got, want - got);
      else
        r = read(fd, sink, n - got > sizeof sink ? sizeof sink : n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return count;
      got += (size_t)r;
    }
    line[want] = '\0';
    count++;
    if (fn != NULL) fn(ud, line);
  }
}

/* Forks; the child runs body(s, sh, fd) and exits with its result. The
 * parent forwards the child's lines; returns their count, and *status
 * gets the child's wait status (-1: fork failed). */
static int run_child(const job *j, shared *sh,
                     int (*body)(const job *, shared *, int),
                     lash_problem_fn fn, void *ud, int *status) {
  int fds[2], n;
  pid_t pid;
  *status = -1;
  if (pipe(fds) != 0) return 0;
  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return 0;
  }
  if (pid == 0) {
    int rc;
    close(fds[0]);
    the_shared = sh;
    signal(SIGSEGV, on_fault);
    signal(SIGBUS, on_fault);
    rc = body(j, sh, fds[1]);
    if (rc < 0) sh->failed = 1;
    _exit(rc < 0 ? 2 : 0);
  }
  close(fds[1]);
  n = recv_lines(fds[0], fn, ud);
  close(fds[0]);
  while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
  }
  return n;
}

/* The fault a child died of: its signal, or the one its handler noted
 * (when a sanitizer caught it and exited), else SIGSEGV. */
static int fault_of(int status, const shared *sh) {
  if (WIFSIGNALED(status)) return WTERMSIG(status);
  return sh->sig != 0 ? sh->sig : SIGSEGV;
}

static void signal_line(char *buf, size_t cap, int sig, const shared *sh,
                        const char *what) {
  const char *phase = sh->where.phase != NULL ? sh->where.phase : "the store";
  snprintf(buf, cap,
           "damage: %s died by signal %d (%s) while reading %s%s%s: the "
           "pages there are damaged%s",
           what, sig, strsignal(sig), phase,
           sh->where.id[0] ? " at process " : "", sh->where.id,
           strcmp(what, "the check") == 0
               ? "; lash check --salvage DIR copies every readable row to a "
                 "new store"
               : "");
}

/* ------------------------------------------------------------- check */

static int check_body(const job *j, shared *sh, int fd) {
  lash_store *c = NULL;
  int rc;
  if ((rc = reopen(j, sh, &c)) < 0) return 0;
  c->progress = &sh->where;
  rc = lash_check(c, child_problem, &fd);
  if (rc < 0) send_line(fd, lash_errmsg(c));
  sh->finished = 1;
  lash_store_close(c);
  return 0;
}

static void set_err(char *err, size_t cap, const char *fmt, const char *a,
                    const char *b) {
  if (err != NULL && cap > 0) snprintf(err, cap, fmt, a, b);
}

/* The child could not open the store: damage (ECORRUPT: one problem), or
 * an error of the call. */
static int open_failed(const shared *sh, lash_problem_fn fn, void *ud,
                       char *err, size_t errlen) {
  if (sh->open_rc == LASH_ECORRUPT) {
    if (fn != NULL) fn(ud, sh->open_err);
    return 1;
  }
  set_err(err, errlen, "%s%s", sh->open_err, "");
  return sh->open_rc;
}

int lash_check_isolated(const char *dir, const lash_store_opts *opts,
                        lash_problem_fn fn, void *ud, char *err,
                        size_t errlen) {
  shared *sh;
  char line[LASH__ERRMSG_MAX];
  job j;
  int n, status;
  if (err != NULL && errlen > 0) err[0] = '\0';
  if (dir == NULL) return LASH_EINVAL;
  memset(&j, 0, sizeof j);
  j.dir = dir;
  if (opts != NULL)
    j.opts = *opts;
  else
    lash_store_opts_init(&j.opts);
  if ((sh = shared_new()) == NULL) {
    set_err(err, errlen, "check of %s: cannot map a shared page: %s", dir,
            strerror(errno));
    return LASH_ENOMEM;
  }
  n = run_child(&j, sh, check_body, fn, ud, &status);
  if (status == -1) {
    set_err(err, errlen, "check of %s: cannot start a child process: %s", dir,
            strerror(errno));
    n = LASH_EIO;
  } else if (WIFSIGNALED(status) || (!sh->finished && sh->open_rc == 0)) {
    signal_line(line, sizeof line, fault_of(status, sh), sh, "the check");
    n++;
    if (fn != NULL) fn(ud, line);
  } else if (sh->open_rc < 0) {
    n = open_failed(sh, fn, ud, err, errlen);
  }
  munmap(sh, sizeof *sh);
  return n;
}

/* ----------------------------------------------------------- salvage */

#define SALVAGE_BATCH 512

typedef struct salv {
  lash_store *src, *dst;
  shared *sh;
  int fd;
  lash_btxn *bt; /* the read of src */
  lash_txn *t;   /* the open write of dst */
  size_t nrows;
  char last[LASH_ID_MAX + 1];
  lash__evlist evs; /* the events of the row being read */
  int bad;
} salv;

static int salv_event(void *ud, const lash_bitem *it) {
  salv *v = ud;
  lash__ev ev;
  if (lash__ev_decode(it->ev.data, it->ev.len, &ev, &v->src->zone) < 0) {
    v->bad = 1;
    return 1;
  }
  return lash__evlist_add(&v->evs, it, &ev);
}

static int salv_commit(salv *v) {
  int rc;
  if (v->t == NULL) return 0;
  rc = lash__wend(v->dst, v->t, 0);
  v->t = NULL;
  if (rc < 0) return rc;
  memcpy(v->sh->done_id, v->last, sizeof v->last);
  v->sh->copied += v->nrows;
  v->nrows = 0;
  return 0;
}

static int salv_skip(salv *v, const char *id, const char *why) {
  char line[LASH__ERRMSG_MAX];
  snprintf(line, sizeof line, "skipped process %s: %s", id, why);
  send_line(v->fd, line);
  v->sh->skipped++;
  return 0;
}

static int salv_row(void *ud, const lash_bitem *it) {
  salv *v = ud;
  lash_store *s = v->src;
  char id[LASH_ID_MAX + 1];
  lash__rec r;
  lash_bscan q;
  lash_bsave row;
  size_t i, idlen = it->idlen > LASH_ID_MAX ? LASH_ID_MAX : it->idlen;
  int rc;

  memcpy(id, it->id, idlen);
  id[idlen] = '\0';
  lash__progress_set(s, "records", id, idlen);
  for (i = 0; i < (size_t)v->sh->nskip; i++)
    if (strcmp(v->sh->skip[i], id) == 0) return 0; /* killed a child */
  if (lash__rec_decode(it->rec.data, it->rec.len, &r, &s->zone) < 0)
    return salv_skip(v, id, "its record is damaged");
  v->evs.n = 0;
  v->evs.buf.len = 0;
  v->bad = 0;
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_EVENTS;
  q.id = id;
  q.idlen = idlen;
  if ((rc = s->b->m->scan(s->b, v->bt, &q, salv_event, v)) < 0)
    return salv_skip(v, id, lash_errmsg(s));
  if (v->bad) return salv_skip(v, id, "an event of it is damaged");
  /* The record again: decoding the events reused the zone. */
  if (lash__rec_decode(it->rec.data, it->rec.len, &r, &s->zone) < 0)
    return salv_skip(v, id, "its record is damaged");
  lash__evlist_fix(&v->evs);
  if (v->t == NULL) {
    if ((rc = lash__wbegin(v->dst, NULL, &v->t)) < 0) return rc;
    v->t->spilled = 1; /* rows go to the backend directly */
  }
  if ((rc = lash__meta_load(v->t)) < 0) return rc;
  memset(&row, 0, sizeof row);
  row.id = id;
  row.idlen = idlen;
  row.kind.data = r.kind.p;
  row.kind.len = r.kind.n;
  row.rec = it->rec;
  row.after.exists = 1;
  row.after.status = r.status;
  row.after.change_seq = r.change_seq;
  lash__rec_index(&r, &row.after); /* suspension: listed, timers, waiters */
  row.events = v->evs.ev;
  row.nevents = v->evs.n;
  if ((rc = v->dst->b->m->save(v->dst->b, v->t->bt, &row)) < 0) return rc;
  v->t->counts[r.status]++;
  if (r.suspended) v->t->suspended++;
  if (r.change_seq > v->t->change_seq) v->t->change_seq = r.change_seq;
  v->t->meta_dirty = 1;
  v->t->wrote = 1;
  memcpy(v->last, id, idlen + 1);
  if (++v->nrows >= SALVAGE_BATCH) return salv_commit(v);
  return 0;
}

static int salvage_body(const job *j, shared *sh, int fd) {
  char err[LASH__ERRMSG_MAX];
  lash_store *c = NULL, *d = NULL;
  lash_store_opts o;
  lash_bscan q;
  salv v;
  int rc;
  if ((rc = reopen(j, sh, &c)) < 0) return rc;
  lash_store_opts_init(&o);
  o.max_payload = j->opts.max_payload;
  if ((rc = lash_store_open(j->dest, &o, &d, err, sizeof err)) < 0) {
    send_line(fd, err);
    lash_store_close(c);
    return rc;
  }
  memset(&v, 0, sizeof v);
  v.src = c;
  v.dst = d;
  v.sh = sh;
  v.fd = fd;
  c->progress = &sh->where;
  memset(&q, 0, sizeof q);
  q.what = LASH_SCAN_ROWS;
  q.after = sh->done_id;
  q.afterlen = strlen(sh->done_id);
  if ((rc = lash__rbegin(c, NULL, &v.bt)) < 0) {
    send_line(fd, lash_errmsg(c));
  } else {
    rc = c->b->m->scan(c->b, v.bt, &q, salv_row, &v);
    if (rc < 0) {
      send_line(fd, *lash_errmsg(d) ? lash_errmsg(d) : lash_errmsg(c));
      if (v.t != NULL) lash__wend(d, v.t, rc);
    } else if ((rc = salv_commit(&v)) < 0) {
      send_line(fd, lash_errmsg(d));
    }
    lash__rend(c, NULL, v.bt);
  }
  if (rc >= 0) sh->finished = 1;
  lash__evlist_free(&v.evs);
  lash_store_close(d);
  lash_store_close(c);
  return rc;
}

int lash_salvage(const char *dir, const char *dest, const lash_store_opts *opts,
                 lash_problem_fn fn, void *ud, lash_salvage_report *out,
                 char *err, size_t errlen) {
  shared *sh;
  char line[LASH__ERRMSG_MAX];
  job j;
  int status, runs, i, rc = 0;
  if (out != NULL) memset(out, 0, sizeof *out);
  if (err != NULL && errlen > 0) err[0] = '\0';
  if (dir == NULL || dest == NULL || *dest == '\0') return LASH_EINVAL;
  if (strcmp(dest, dir) == 0) {
    set_err(err, errlen,
            "salvage: the new store %s must not be the damaged "
            "one%s",
            dest, "");
    return LASH_EINVAL;
  }
  memset(&j, 0, sizeof j);
  j.dir = dir;
  j.dest = dest;
  if (opts != NULL)
    j.opts = *opts;
  else
    lash_store_opts_init(&j.opts);
  if ((sh = shared_new()) == NULL) {
    set_err(err, errlen, "salvage of %s: cannot map a shared page: %s", dir,
            strerror(errno));
    return LASH_ENOMEM;
  }
  for (runs = 0; runs <= SKIP_MAX; runs++) {
    int again = 0;
    memset(&sh->where, 0, sizeof sh->where);
    run_child(&j, sh, salvage_body, fn, ud, &status);
    if (status == -1) {
      set_err(err, errlen, "salvage of %s: cannot start a child process: %s",
              dir, strerror(errno));
      rc = LASH_EIO;
      break;
    }
    if (sh->finished) break;
    if (sh->open_rc < 0) {
      set_err(err, errlen, "salvage: %s%s", sh->open_err, "");
      rc = sh->open_rc;
      break;
    }
    if (sh->failed) {
      set_err(err, errlen, "salvage into %s stopped; the lines above say why%s",
              dest, "");
      rc = LASH_EIO;
      break;
    }
    signal_line(line, sizeof line, fault_of(status, sh), sh, "the salvage");
    if (fn != NULL) fn(ud, line);
    for (i = 0; i < sh->nskip; i++)
      if (strcmp(sh->skip[i], sh->where.id) == 0) again = 1;
    if (sh->where.id[0] == '\0' || again || sh->nskip >= SKIP_MAX) {
      set_err(err, errlen,
              "salvage: the rows after process %s cannot be reached (the "
              "pages leading to them are damaged)%s",
              sh->done_id[0] ? sh->done_id : "(none)", "");
      rc = LASH_ECORRUPT;
      break;
    }
    memcpy(sh->skip[sh->nskip++], sh->where.id, sizeof sh->where.id);
    sh->skipped++;
  }
  if (out != NULL) {
    out->copied = sh->copied;
    out->skipped = sh->skipped;
  }
  munmap(sh, sizeof *sh);
  return rc;
}
