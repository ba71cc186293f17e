/* engine/admit.h - admission (DESIGN 3, SEMANTICS 3.6-3.8, 7): the kinds
 * this engine runs, the drive (claim_and_run_pending) as a scan that
 * continues inside the writer's shared transactions as slots free, single
 * admissions (lash_engine_admit, eager start on registration), the lapse
 * timer that drives again when a foreign lease runs out, and owner drain.
 *
 * Part: admit (floor 7). May call: the registry (lash.h), runs (admit a
 * run, its starts), writer (transactions and hooks), pump. */
#ifndef LASH_ENGINE_ADMIT_H
#define LASH_ENGINE_ADMIT_H

#include "engine/runs.h"
#include "engine/writer.h"

struct lash__scan_row;

#define LASH__BUSY_OWNERS_MAX 64

/* The owner of live foreign leases met by claims (probed for liveness). */
typedef struct lash__busy_owner {
  char owner[LASH_NAME_MAX + 1];
  char incarnation[LASH_NAME_MAX + 1];
  int64_t until; /* the latest expiry seen of its leases */
} lash__busy_owner;

typedef struct lash__admit {
  lash_store *s;
  lash__pump *pump;
  lash__writer *w;
  lash__runs *runs;
  char owner[LASH_NAME_MAX + 1];
  char incarnation[LASH_NAME_MAX + 1];
  int64_t ttl_ms;
  char **kinds; /* the kinds this engine runs */
  size_t nkinds, kinds_cap;
  int64_t *timeouts;          /* per kind: the body time budget, 0 none */
  lash_retry_policy *retries; /* per kind: the retry policy (issue 13) */
  /* ---- issue 13 (claim): per kind the rate limit, n 0: none ---- */
  uint32_t *rate_n;
  int64_t *rate_per;
  /* per kind: how its bodies' first resumes went, until they ended or
   * parked (> 0: mostly within EARLY_US; 0: none seen yet). A kind whose
   * bodies resume that briefly starts inside the claiming transaction
   * (lash__runs_start_early). */
  int8_t *early_score;
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
  int step_due;           /* the next writer txn continues the scan */
  lash_drive_report *rep; /* of the lash_engine_drive in progress */
  int64_t lapse_at;       /* store ms of the armed lapse timer, 0 = none */
  uv_timer_t lapse_timer;
  uv_timer_t probe_timer; /* probes busy[] while non-empty */
  lash__busy_owner busy[LASH__BUSY_OWNERS_MAX];
  size_t nbusy;
  int owner_held;       /* lash_owner_hold took */
  uint64_t taken_over;  /* rows taken over from gone owners */
  uint64_t owners_gone; /* gone owners noticed by the probe */
  int paused;           /* lash_engine_pause: admit nothing new */
  int eager;            /* lash_engine_register admits what it created */
  int closed;
  uint64_t drives;
  struct lash__scan_row *rows; /* one page, per engine */
  /* issue 13 (claim): rows handed a freed concurrency slot in this txn */
  char **handed;
  size_t nhanded, handed_cap;
  struct lash__observer *obs; /* set by the engine after init */
} lash__admit;

/* 0 or LASH_ENOMEM. Registers the writer hooks. */
int lash__admit_init(lash__admit *a, lash_store *s, uv_loop_t *loop,
                     lash__handles *hs, lash__pump *pump, lash__writer *w,
                     lash__runs *runs, const char *owner,
                     const char *incarnation, int64_t ttl_ms, int eager);
/* lash_engine_define: 1 declared now, 0 declared before, LASH_EINVAL,
 * LASH_ECLOSED, LASH_ENOMEM. */
int lash__admit_define(lash__admit *a, const char *kind);
int lash__admit_declared(const lash__admit *a, const char *kind);
/* The body time budget of @p kind (0: none). */
int64_t lash__admit_timeout(const lash__admit *a, const char *kind);
/* lash_engine_set_timeout: 0 or LASH_EINVAL (not declared, ms < 0). */
int lash__admit_set_timeout(lash__admit *a, const char *kind, int64_t ms);
/* issue 13 (retry): the kind's retry policy (NULL: not declared) and its
 * setter (p NULL: none; 0 or LASH_EINVAL). */
const lash_retry_policy *lash__admit_retry(const lash__admit *a,
                                           const char *kind);
int lash__admit_set_retry(lash__admit *a, const char *kind,
                          const lash_retry_policy *p);
/* issue 13 (claim): at most n starts of kind per per_ms (n 0: none). */
int lash__admit_set_rate(lash__admit *a, const char *kind, uint32_t n,
                         int64_t per_ms);
/* Asks for a drive (coalesced; from the pump). */
void lash__admit_request(lash__admit *a);
/* From the pump, before its transaction: 1 when that transaction must
 * continue (or begin) a scan. */
int lash__admit_pump(lash__admit *a);
/* 1 while a scan or a requested drive could admit into a free slot. */
int lash__admit_pending(const lash__admit *a);
/* 1 while a scan runs or a drive is requested that could admit. */
int lash__admit_busy(const lash__admit *a);
int lash__admit_drive(lash__admit *a, lash_drive_report *out);
int lash__admit_one(lash__admit *a, lash_txn *txn, const char *id);
int lash__admit_register(lash__admit *a, lash_txn *txn, const lash_def *def,
                         int *created, lash_record *out, int *admitted);
void lash__admit_pause(lash__admit *a, int paused);
int lash__admit_drain(lash__admit *a, unsigned *abandoned);
/* lash_engine_reconcile. */
int lash__admit_reconcile(lash__admit *a, const char *id, int *result,
                          lash_lease *holder);
/* Ends the scan in flight and any requested drive (first step of close). */
void lash__admit_stop(lash__admit *a);
void lash__admit_close(lash__admit *a);
void lash__admit_free(lash__admit *a);

#endif /* LASH_ENGINE_ADMIT_H */
