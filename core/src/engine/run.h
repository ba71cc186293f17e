/* engine/run.h - the run object (one admitted execution attempt) and the
 * concurrency slots, shared by the awaiter (a run's wait gives its slot
 * back while parked) and the runs part (the run's life).
 *
 * Part: run (floor 4, header only). May call: renew (the held lease),
 * base/map, base/queue. */
#ifndef LASH_ENGINE_RUN_H
#define LASH_ENGINE_RUN_H

#include "base/map.h"
#include "base/queue.h"
#include "engine/renew.h"

#include <stddef.h>
#include <stdint.h>

/* Concurrency slots: at most `concurrency` runs execute at once; a parked
 * run holds none, a settled one queues for one (FIFO) before new
 * admissions get any. */
typedef struct lash__slots {
  unsigned concurrency;
  uint64_t running; /* runs holding a slot */
  uint64_t parked;  /* runs parked in a wait or queued for a slot */
  uint64_t queued;  /* settled waits of runs queued for a slot */
} lash__slots;

static inline uint64_t lash__slots_free(const lash__slots *sl) {
  uint64_t used = sl->running + sl->queued;
  return used >= sl->concurrency ? 0 : sl->concurrency - used;
}

enum {
  LASH__RS_ADMITTED = 1, /* holds a slot; start pending (after commit) */
  LASH__RS_RUNNING,      /* holds a slot */
  LASH__RS_PARKED,       /* in a wait; no slot */
  LASH__RS_SLOT,         /* its wait settled; waiting for a slot */
  LASH__RS_FINISHING     /* completion queued; no slot */
};

struct lash__runs;

struct lash_run {
  lash_engine *e; /* lash_run_engine (opaque here) */
  struct lash__runs *runs;
  lash__mnode node; /* runs->by_id, key = rec.id */
  lash__q link;     /* runs->all */
  lash__q slink;    /* start list, uncommitted-admission list */
  int state;
  int cancelled;
  int claim_lost;  /* started early; the claiming commit failed */
  lash_record rec; /* deep copy: strings point into this block */
  lash__held held; /* the lease, renewed by the renew part */
  void *data;
  lash_wait *wait;     /* the parked wait, if any */
  lash_run **susp_ref; /* a suspension in flight points here: cleared
                          when the run goes first */
  int fin_status;
  int fin_fatal;           /* issue 13: a failure that is not retried */
  int64_t fin_retry_at;    /* issue 13: > 0, the failure was answered with
                              a retry at this time (ms) */
  lash_retry_policy retry; /* issue 13: its kind's policy, for a row that
                              carries none (max_attempts 0: none) */
  lash_bytes fin_outcome;
  void *fin_buf; /* malloc'd outcome copy when over the inline size */
  unsigned char fin_inline[64];
  size_t recbuf_len;
  char recbuf[]; /* the record's strings and bytes */
};

/* The run stops holding a slot for good: its completion or release is
 * queued, so its lease is not renewed either. */
static inline void lash__run_finishing(lash_run *r) {
  r->state = LASH__RS_FINISHING;
  lash__held_done(&r->held);
}

#endif /* LASH_ENGINE_RUN_H */
