/* engine_tu.h - helpers shared by the engine tests (test_engine_*.c):
 * an engine in a fresh temp directory, a scriptable C runner whose bodies
 * are small state machines, and host-side writes that complete a row under
 * another owner's lease, as a peer worker would. */
#ifndef LASH_ENGINE_TU_H
#define LASH_ENGINE_TU_H

#include "testutil.h"

#include <uv.h>

typedef struct et_env {
  char root[64];
  char dir[128];
  lash_engine *e;
  lash_store *s;
  int64_t now; /* the fake clock, when installed */
} et_env;

static inline void et_opts(lash_engine_opts *o) {
  lash_engine_opts_init(o);
  o->owner = "test-owner";
  o->incarnation = "inc-1";
  o->store.durability = LASH_DURABILITY_NONE;
}

/* Opens an engine in a fresh directory (opts NULL: et_opts defaults). */
static inline lash_engine *et_open(et_env *t, const lash_engine_opts *opts) {
  lash_engine_opts o;
  char err[512] = "";
  int rc;
  memset(t, 0, sizeof *t);
  t->now = TU_T0;
  if (opts != NULL)
    o = *opts;
  else
    et_opts(&o);
  if (tu_mkdtemp(t->root, sizeof t->root) != 0) {
    printf("Bail out! cannot create a temp dir\n");
    exit(1);
  }
  snprintf(t->dir, sizeof t->dir, "%s/store", t->root);
  rc = lash_engine_open(t->dir, &o, &t->e, err, sizeof err);
  if (rc != 0) {
    printf("Bail out! lash_engine_open: %s (%s)\n", lash_err_name(rc), err);
    exit(1);
  }
  t->s = lash_engine_store(t->e);
  return t->e;
}

/* Reopens an engine on the same directory. */
static inline lash_engine *et_reopen(et_env *t, const lash_engine_opts *opts) {
  lash_engine_opts o;
  char err[512] = "";
  int rc;
  if (opts != NULL)
    o = *opts;
  else
    et_opts(&o);
  rc = lash_engine_open(t->dir, &o, &t->e, err, sizeof err);
  if (rc != 0) {
    printf("Bail out! lash_engine_open: %s (%s)\n", lash_err_name(rc), err);
    exit(1);
  }
  t->s = lash_engine_store(t->e);
  return t->e;
}

static inline void et_fake_clock(et_env *t) {
  lash_store_set_clock(t->s, tu_clock_fn, &t->now);
}

static inline void et_close(et_env *t, int remove_dir) {
  lash_engine_close(t->e);
  t->e = NULL;
  t->s = NULL;
  if (remove_dir) tu_rmrf(t->root);
}

/* Claims, starts and completes @p id as @p owner through the store, as a
 * peer worker would. Returns the first failing code, or 0. */
static inline int et_complete_as(lash_store *s, const char *id,
                                 const char *owner, int status,
                                 lash_bytes outcome) {
  lash_lease ls;
  int rc;
  memset(&ls, 0, sizeof ls);
  if ((rc = lash_lease_claim(s, NULL, id, owner, "peer", 30000, &ls)) < 0)
    return rc;
  if ((rc = lash_start(s, NULL, &ls, NULL)) < 0) return rc;
  return lash_complete(s, NULL, &ls, status, outcome);
}

/* Claims and starts @p id as @p owner (leaves it running). */
static inline int et_start_as(lash_store *s, const char *id, const char *owner,
                              int64_t ttl, lash_lease *out) {
  int rc;
  memset(out, 0, sizeof *out);
  if ((rc = lash_lease_claim(s, NULL, id, owner, "peer", ttl, out)) < 0)
    return rc;
  return lash_start(s, NULL, out, NULL);
}

/* Runs the loop until *flag or @p ms of real time passed. */
static inline int et_run_for(lash_engine *e, volatile int *flag, uint64_t ms) {
  uint64_t end = uv_hrtime() / 1000000 + ms;
  while (!*flag && uv_hrtime() / 1000000 < end)
    lash_engine_run(e, LASH_RUN_NOWAIT), usleep(200);
  return *flag;
}

/* Runs @p n non-blocking loop turns (for bodies the test holds, which keep
 * the engine from ever being idle). */
static inline void et_turns(lash_engine *e, int n) {
  while (n-- > 0)
    lash_engine_run(e, LASH_RUN_NOWAIT);
}

/* ----------------------------------------------------------- a runner */

enum {
  TR_FINISH = 1, /* finish at once, outcome "ok" */
  TR_HOLD,       /* keep the run; the test finishes it */
  TR_FAIL,       /* infrastructure failure (start returns LASH_EIO) */
  TR_PARENT      /* register a child and await it, then finish */
};

#define TR_MAX 4096

typedef struct tr_runner {
  int mode;
  int starts;
  int drops;
  int last_drop_rc;
  int finished;
  int events;
  uint64_t last_event_seq;
  int order_ok;
  lash_run *held[TR_MAX];
  int nheld;
  char child_kind[32];
  int child_waits_resolved;
  int child_rc;
} tr_runner;

static inline void tr_wait_cb(void *ud, lash_wait *w, int rc) {
  lash_run *run = ud;
  tr_runner *r = lash_run_data(run);
  unsigned char buf[16];
  r->child_waits_resolved++;
  r->child_rc = rc;
  lash_wait_free(w);
  if (lash_run_finish(run, rc == 0 ? LASH_COMPLETED : LASH_FAILED,
                      tu_mp_str(buf, sizeof buf, "parent")) == 0)
    r->finished++;
}

typedef struct reg_ctx {
  lash_def def;
} reg_ctx;

static inline int tr_reg_fn(lash_store *s, lash_txn *txn, void *ud) {
  reg_ctx *c = ud;
  return lash_register(s, txn, &c->def, NULL, NULL);
}

static inline int tr_start(void *ud, lash_run *run) {
  tr_runner *r = ud;
  const lash_record *rec = lash_run_record(run);
  unsigned char buf[16];
  r->starts++;
  if (r->mode == TR_PARENT && strcmp(rec->kind, "parent") == 0) {
    char child[300];
    reg_ctx c;
    lash_wait *w = NULL;
    int rc;
    snprintf(child, sizeof child, "%s.child", rec->id);
    c.def = tu_def(child, r->child_kind, LASH_RERUNNABLE, 0);
    rc = lash_engine_write_sync(lash_run_engine(run), tr_reg_fn, &c);
    if (rc < 0) return rc;
    lash_run_set_data(run, r);
    rc = lash_await_terminal(lash_run_engine(run), run, child, -1, tr_wait_cb,
                             run, &w);
    if (rc == 1) {
      tr_wait_cb(run, w, 0);
      return 0;
    }
    return rc;
  }
  switch (r->mode) {
  case TR_HOLD:
    if (r->nheld < TR_MAX) r->held[r->nheld++] = run;
    return 0;
  case TR_FAIL:
    return LASH_EIO;
  default:
    if (lash_run_finish(run, LASH_COMPLETED,
                        tu_mp_str(buf, sizeof buf, "ok")) == 0)
      r->finished++;
    return 0;
  }
}

static inline void tr_drop(void *ud, lash_run *run, int rc) {
  tr_runner *r = ud;
  int i;
  r->drops++;
  r->last_drop_rc = rc;
  for (i = 0; i < r->nheld; i++)
    if (r->held[i] == run) r->held[i] = NULL;
}

static inline void tr_event(void *ud, const lash_event *ev) {
  tr_runner *r = ud;
  r->events++;
  r->last_event_seq = ev->seq;
}

static inline void tr_install(lash_engine *e, tr_runner *r, int mode,
                              int with_sink) {
  lash_runner rn;
  memset(r, 0, sizeof *r);
  r->mode = mode;
  r->order_ok = 1;
  snprintf(r->child_kind, sizeof r->child_kind, "child");
  memset(&rn, 0, sizeof rn);
  rn.ud = r;
  rn.start = tr_start;
  rn.drop = tr_drop;
  rn.event = with_sink ? tr_event : NULL;
  lash_engine_set_runner(e, &rn);
}

/* The outcome bytes of a wait's record equal @p s as a MessagePack str. */
static inline int et_outcome_is(const lash_record *rec, const char *s) {
  unsigned char buf[300];
  lash_bytes b = tu_mp_str(buf, sizeof buf, s);
  return rec != NULL && tu_bytes_eq(rec->outcome, b.data, b.len);
}

#endif
