/* engine-int.h - private structures shared by the engine files:
 * engine.c (open/close/run/pump), writer.c (group commit and the commit
 * hook), hub.c (id -> version + subscribers), awaiter.c (waits, timers,
 * slots) and driver.c (admission, leases, change feed).
 *
 * Everything here runs on the loop thread. The engine uses only the public
 * registry API of lash.h, so another registry backend can sit below it.
 */
#ifndef LASH_ENGINE_INT_H
#define LASH_ENGINE_INT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* pthread types in uv.h, strdup */
#endif

#include "lash.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define LASH__CONTAINER_OF(ptr, type, field)                                   \
  ((type *)((char *)(ptr)-offsetof(type, field)))

/* ------------------------------------------------------ intrusive queue */

/* A circular doubly-linked list node; an unlinked node points at itself. */
typedef struct lash__q {
  struct lash__q *next;
  struct lash__q *prev;
} lash__q;

static inline void lash__q_init(lash__q *q) {
  q->next = q;
  q->prev = q;
}
static inline int lash__q_empty(const lash__q *q) {
  return q->next == q;
}
static inline void lash__q_push(lash__q *head, lash__q *n) {
  n->prev = head->prev;
  n->next = head;
  head->prev->next = n;
  head->prev = n;
}
static inline void lash__q_remove(lash__q *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  lash__q_init(n);
}
static inline lash__q *lash__q_pop(lash__q *head) {
  lash__q *n = head->next;
  if (n == head) return NULL;
  lash__q_remove(n);
  return n;
}

/* ------------------------------------------------------------ string map */

/* An intrusive chained hash map keyed by a NUL-terminated string the node
 * points at (inside the containing struct). */
typedef struct lash__mnode {
  struct lash__mnode *next;
  const char *key;
  uint32_t hash;
} lash__mnode;

typedef struct lash__map {
  lash__mnode **b;
  size_t nb; /* power of two, or 0 */
  size_t n;
} lash__map;

uint32_t lash__hash(const char *s);
lash__mnode *lash__map_get(const lash__map *m, const char *key, uint32_t h);
/* Inserts n (key and hash set by the caller). 0 or LASH_ENOMEM. */
int lash__map_put(lash__map *m, lash__mnode *n);
void lash__map_del(lash__map *m, lash__mnode *n);
void lash__map_free(lash__map *m);

/* ------------------------------------------------------------------ hub */

#include "hub.h"

/* ---------------------------------------------------------------- waits */

#define LASH__NO_DEADLINE UINT64_MAX

enum { LASH__W_TERMINAL = 1, LASH__W_EVENT, LASH__W_SLEEP };

enum {
  LASH__WS_RESOLVED = 1, /* resolved at once, or delivered: host-owned */
  LASH__WS_PARKED,       /* subscribed and/or on the timer heap */
  LASH__WS_SLOT,         /* settled, its run waits for a slot (FIFO) */
  LASH__WS_DELIVER,      /* settled, cb queued on the deliver list */
  LASH__WS_DETACHED      /* cancelled by close or a drop: memory only */
};

struct lash_wait {
  lash_engine *e;
  lash_run *run;
  int kind;
  int state;
  int rc;
  int ready;        /* on the hub ready list */
  int attached;     /* held by the attach backend (no hub, no backoff) */
  lash__q link;     /* ready list, slot FIFO or deliver list */
  lash__q all;      /* e->waits while parked/settled, not delivered */
  lash__q hub_link; /* the hub entry's subscribers */
  lash__hub_entry *entry;
  size_t heap_idx;   /* SIZE_MAX: not on the heap */
  uint64_t due;      /* loop ms of the next timer action */
  uint64_t deadline; /* loop ms of the timeout/sleep end, or NONE */
  uint64_t backoff;
  uint64_t seen_cseq; /* store change seq at the last backoff re-read */
  uint64_t after;     /* event waits: no match at or below this seq */
  lash_wait_fn cb;
  void *ud;
  /* results */
  lash_record rec;
  int has_rec;
  lash_tombstone tomb;
  int has_tomb;
  lash_event ev;
  int has_ev;
  char *ev_buf;
  const char *etype; /* event waits: points into the tail of this block */
  char id[];         /* id, then (event waits) the type */
};

/* ----------------------------------------------------------------- runs */

enum {
  LASH__RS_ADMITTED = 1, /* holds a slot; start pending (after commit) */
  LASH__RS_RUNNING,      /* holds a slot */
  LASH__RS_PARKED,       /* in a wait; no slot */
  LASH__RS_SLOT,         /* its wait settled; waiting for a slot */
  LASH__RS_FINISHING     /* completion queued; no slot */
};

struct lash_run {
  lash_engine *e;
  lash__mnode node; /* e->runs_by_id, key = rec.id */
  lash__q link;     /* e->runs */
  lash__q slink;    /* start list, uncommitted-admission list, lost list */
  int state;
  int cancelled;
  int lost;        /* renewal saw ESUPERSEDED; dropped from the pump */
  lash_record rec; /* deep copy: strings point into this block */
  lash_lease lease;
  void *data;
  lash_wait *wait; /* the parked wait, if any */
  int fin_status;
  lash_bytes fin_outcome;
  void *fin_buf; /* malloc'd outcome copy when over the inline size */
  unsigned char fin_inline[64];
  size_t recbuf_len;
  char recbuf[]; /* the record's strings and bytes */
};

/* ------------------------------------------------------------ the writer */

/* One queued write (or one done callback to deliver). */
typedef struct lash__wr {
  lash_write_fn fn;
  void *ud;
  lash_done_fn done;
  int rc;
} lash__wr;

typedef struct lash__wrv {
  lash__wr *v;
  size_t head, n, cap;
} lash__wrv;

/* A change reported by the commit hook, kept until the pump handles it. */
typedef struct lash__chg_copy {
  uint64_t first_seq;
  uint64_t last_seq;
  int status;
  int registered;
  int cancel_requested;
  char id[LASH_ID_MAX + 1];
} lash__chg_copy;

/* Feed map node: the last seq/status this engine knows for an id, so the
 * change feed tells this engine's own writes from other processes'. */
typedef struct lash__fnode {
  lash__mnode node;
  uint64_t last_seq;
  int status;
  struct lash__fnode *free_next;
  char id[LASH_ID_MAX + 1];
} lash__fnode;

/* ---------------------------------------------------------------- engine */

struct lash_engine {
  uv_loop_t *loop;
  uv_loop_t own_loop;
  int loop_owned;
  lash_store *s;
  char owner[LASH_NAME_MAX + 1];
  char incarnation[LASH_NAME_MAX + 1];
  unsigned concurrency;
  int64_t ttl_ms, renew_ms;
  uint64_t poll_min, poll_max;
  lash_runner runner;
  lash_attach attach; /* await_terminal == NULL: none */
  int closing;

  /* kinds this engine runs */
  char **kinds;
  size_t nkinds, kinds_cap;

  /* pump */
  uv_idle_t pump;
  int pump_on;
  int pump_depth;

  /* writer */
  lash__wrv wq; /* queued writes */
  lash__wrv wq_spare;
  lash__wrv dq;    /* done callbacks to deliver */
  lash_txn *batch; /* explicit batch (lash_engine_batch_begin) */
  int in_txn;      /* a writer transaction is open */
  lash__chg_copy *chg;
  size_t nchg, chg_cap;
  size_t chg_head;

  /* hub */
  lash__map hub;
  lash__q ready; /* waits woken by the hub, not yet re-read */

  /* awaiter */
  lash__q waits;   /* every wait not yet delivered */
  lash__q deliver; /* settled waits whose cb is due */
  lash__q slotq;   /* settled waits of runs waiting for a slot */
  size_t nslotq;
  lash_wait **heap;
  size_t heap_n, heap_cap;
  uv_timer_t heap_timer;
  uint64_t nparked_waits;
  uint64_t ntimed; /* parked waits with a sleep/timeout deadline */

  /* runs */
  lash__map runs_by_id;
  lash__q runs;
  lash__q starts;      /* committed admissions whose start is due */
  lash__q uncommitted; /* admitted by the open writer txn */
  uint64_t nruns;
  uint64_t running; /* runs holding a slot */
  uint64_t parked;  /* runs parked in a wait or waiting for a slot */
  uv_timer_t renew_timer;
  int renew_on;
  int renew_queued;

  /* driver */
  struct {
    int active; /* a scan is in flight */
    int rescan;
    size_t kind; /* index into kinds */
    lash_worklist_cursor cur;
    unsigned pass_admitted;
    int error;
  } scan;
  int drive_req;          /* a drive was requested (coalesced) */
  int last_pass_admitted; /* the last finished scan admitted something */
  int64_t lapse_at;       /* store ms of the armed lapse timer, 0 = none */
  uv_timer_t lapse_timer;

  /* change feed poller */
  uv_timer_t poll_timer;
  uv_fs_event_t fs_wake; /* watches data.mdb: another process committed */
  int fs_retry;          /* quick re-polls left after a file event */
  int poll_on;
  uint64_t poll_interval;
  uint64_t feed_seen;   /* store change seq at the last poll */
  uint64_t feed_cursor; /* lash_changes_since cursor */
  lash__map feed;       /* id -> lash__fnode */
  lash__fnode *ffree;

  /* run state */
  int in_run;
  int run_default;
  int stop;
  int interrupted; /* lash_engine_interrupt: end run_until/run early */
  int paused;      /* lash_engine_pause: admit nothing new */
  int eager;       /* lash_engine_register admits what it created */
  int handles_open;

  lash_engine_stats stats;
};

/* ------------------------------------------------------------ internals */

/* engine.c */
void lash__pump_kick(lash_engine *e);
int lash__kind_declared(const lash_engine *e, const char *kind);
uint64_t lash__free_slots(const lash_engine *e);

/* writer.c */
int lash__wrv_push(lash__wrv *v, lash_write_fn fn, void *ud, lash_done_fn done,
                   int rc);
void lash__wrv_free(lash__wrv *v);
/* Runs the queued writes, then @p fn (may be NULL), then (scan != 0) the
 * scan step, in one transaction; commits. Done callbacks of the queued
 * writes go to the deliver list. Returns fn's result or the commit error
 * (0 when fn is NULL and all went well). */
int lash__writer_txn(lash_engine *e, lash_write_fn fn, void *ud, int scan,
                     lash_drive_report *rep);
/* Delivers up to @p max done callbacks; returns how many ran. */
size_t lash__writer_deliver(lash_engine *e, size_t max);
void lash__commit_hook(void *ud, const lash_change *changes, size_t n);
/* Handles the changes reported by commits: hub, event sink, cancellations,
 * drive requests, feed map. */
void lash__changes_process(lash_engine *e);

/* awaiter.c */
void lash__heap_timer_cb(uv_timer_t *t);
/* 1 resolved (result stored in w), 0 not yet, < 0 error. */
int lash__wait_check(lash_engine *e, lash_wait *w);
/* Ends a parked wait with rc (0 resolved): unlinks it, retakes the run's
 * slot or queues for one, and queues the cb. */
void lash__wait_settle(lash_wait *w, int rc);
/* Moves slot FIFO waits into free slots; delivers queued wait cbs (at most
 * max). Returns how many cbs ran. */
size_t lash__waits_deliver(lash_engine *e, size_t max);
void lash__slots_serve(lash_engine *e);
void lash__wait_detach(lash_wait *w);
void lash__waits_detach_all(lash_engine *e);
void lash__heap_reset_backoff(lash_engine *e, lash_wait *w);

/* driver.c */
int lash__scan_step(lash_engine *e, lash_txn *txn, lash_drive_report *rep);
void lash__scan_committed(lash_engine *e, int commit_rc);
size_t lash__starts_deliver(lash_engine *e, size_t max);
void lash__run_cancel(lash_run *r);
lash_run *lash__run_find(lash_engine *e, const char *id);
void lash__runs_close(lash_engine *e);
void lash__renew_cb(uv_timer_t *t);
void lash__renew_update(lash_engine *e);
void lash__lapse_cb(uv_timer_t *t);
void lash__lapse_arm(lash_engine *e, int64_t expires_at);
void lash__poll_cb(uv_timer_t *t);
void lash__fs_wake_cb(uv_fs_event_t *h, const char *name, int events,
                      int status);
void lash__poll_update(lash_engine *e);
void lash__feed_note(lash_engine *e, const char *id, uint64_t last_seq,
                     int status);
void lash__feed_free(lash_engine *e);
void lash__drive_request(lash_engine *e);
int lash__drive_pump(lash_engine *e);
void lash__lost_drop(lash_engine *e);

#endif /* LASH_ENGINE_INT_H */
