/* registry-int.h - private to the registry (core/src/registry/): the rules
 * written once above the backend of lash_backend.h.
 *
 * Nothing here is API, and nothing here knows which backend stores the
 * rows: the store reaches it only through s->b->m (see DESIGN.md sections
 * 2 and 10, docs/backend.md).
 */
#ifndef LASH_REGISTRY_INT_H
#define LASH_REGISTRY_INT_H

#include "lash.h"
#include "lash_backend.h"

#include <msgpack.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

#define LASH__ERRMSG_MAX 1024
#define LASH__DEFAULT_MAX_BYTES 0 /* no ceiling: the map grows */
#define LASH__DEFAULT_MAX_PAYLOAD ((size_t)1 << 20)
#define LASH__DEFAULT_MAX_READERS 1024u
#define LASH__WAIT_MAX 1024   /* bytes of a wait description */
#define LASH__REASON_MAX 4096 /* bytes of a cancel/abandon reason */
#define LASH__OP_EVENTS                                                        \
  3 /* events one operation may append (its own,                               \
       and a process.woken) */

#define LASH__UNUSED(x) ((void)(x))

/* ------------------------------------------------------------ buffers */

/* A growable byte buffer; also the write target of msgpack_packer. */
typedef struct lash__buf {
  char *p;
  size_t len;
  size_t cap;
} lash__buf;

int lash__buf_reserve(lash__buf *b, size_t extra);        /* 0 or LASH_ENOMEM */
int lash__buf_write(void *data, const char *p, size_t n); /* packer cb */
void lash__buf_free(lash__buf *b);
void lash__packer(msgpack_packer *pk, lash__buf *b); /* resets b */

/* A byte view. p == NULL means "absent" (nil); present values always have
 * a non-NULL p, even when empty. */
typedef struct lash__sv {
  const char *p;
  size_t n;
} lash__sv;

lash__sv lash__sv_of(const void *p, size_t n); /* NULL p -> present "" */
lash__sv lash__sv_str(const char *s);          /* NULL -> absent */
int lash__sv_eq(lash__sv a, lash__sv b);       /* absent == absent only */

/* ------------------------------------------------------------ records */

/* The decoded form of a stored record. Views point into the bytes the
 * backend handed out or into scratch buffers: valid only until the next
 * write in the txn. The field numbers in the comments ([24], [25]..) are
 * places in the older record layout, which record.c still reads; the
 * records it writes hold only the fields off their defaults. */
typedef struct lash__rec {
  /* registration base (immutable) */
  lash__sv id;
  lash__sv kind;
  lash__sv input;
  int disposition;
  uint32_t max_attempts;
  int64_t created_at;
  uint64_t floor;     /* sequence floor inherited from a tombstone */
  int64_t timeout_ms; /* body time budget of each attempt; 0 none (stored
                         as a 22nd field only when set) */
  lash__sv parent;    /* replay keys (A): the id of the process that started
                         it, absent when none (a 23rd field when set) */
  /* projection of the event log */
  int status;
  int has_attempt;
  lash__sv att_owner;
  lash__sv att_inc;
  uint64_t att_fence;
  uint32_t att_number;
  int64_t att_started_at;
  lash__sv outcome;
  lash__sv wait;
  int64_t wait_since;
  int cancel_requested;
  lash__sv cancel_reason;
  int abandon_requested;
  lash__sv abandon_by;
  lash__sv abandon_reason;
  int64_t updated_at;
  uint64_t last_seq;
  uint64_t change_seq;
  /* Set by the fold only (not stored): the first terminal event carried an
   * authority, i.e. came from an unleased completion. */
  int term_unleased;
  /* ---- suspension (issue 9, B): record field [24] ---- */
  int suspended; /* process.suspended folded, not yet woken */
  int woken;     /* process.woken folded, not yet started again */
  lash__sv wake_event;
  lash__sv wake_process;
  int64_t wake_at;
  /* ---- issue 13: retries, delays, unique keys (retry): record fields
   * [25] policy, [26] run_at, [27] [failures, retry_due], [28] unique key,
   * [29] unique_for_ms ---- */
  lash_retry_policy retry; /* base */
  int64_t run_at;          /* base: suspended from registration until */
  lash__sv unique_key;     /* base */
  int64_t unique_for_ms;   /* base */
  uint32_t failures;       /* attempt_failed and retried events folded */
  int retry_due;           /* one of them folded, no start since */
  /* ---- issue 13: priority, keyed concurrency (claim): record fields
   * [32] priority, [33] created_seq, [34] concurrency key, [35] limit,
   * [36] conc_state ---- */
  int64_t priority;
  uint64_t created_seq; /* change_seq of the registration */
  lash__sv conc_key;    /* absent: none */
  int32_t conc_limit;
  int conc_state; /* LASH_CONC_* */
} lash__rec;

/* ---- issue 13: retries, delays, unique keys ----
 * The record fields are record.c's (the codec); the policy and the
 * payloads retry.c's. */
/* Copies the issue-13 base fields of src into d and resets d's projection
 * (the fold's start, lash_check). */
void lash__retry_base(lash__rec *d, const lash__rec *src);
/* 1 when a failure of the current attempt may wait for another. */
int lash__retry_left(const lash_retry_policy *p, const lash__rec *r);

/* unique.c (issue 13): 1 when key is held (by *holder: live, or ended
 * within its unique_for_ms of now), 0 free, or an error. */
int lash__unique_holder(lash_store *s, lash_txn *t, const char *key,
                        size_t keylen, int64_t now, lash__rec *holder);
/* Notes that row id holds key now (in t). */
int lash__unique_take(lash_store *s, lash_txn *t, const char *key,
                      size_t keylen, const char *id, size_t idlen);
/* A pruned row's key: its entry goes, unless another row took it over.
 * 0 or an error. */
int lash__unique_forget(lash_store *s, lash_txn *t, const char *key,
                        size_t keylen, const char *id, size_t idlen);

/* One event to append or being folded. */
typedef struct lash__ev {
  lash__sv type;
  lash__sv payload;
  uint64_t seq;
  int64_t at;
  lash__sv key; /* replay keys (A): the stored key, absent when none */
} lash__ev;

/* Lifecycle event types. */
#define LASH__EV_STARTED "process.started"
#define LASH__EV_WAITING "process.waiting"
#define LASH__EV_RESUMED "process.resumed"
#define LASH__EV_CANCEL_REQ "process.cancel_requested"
#define LASH__EV_ABANDON_REQ "process.abandon_requested"
#define LASH__EV_SUSPENDED "process.suspended"
#define LASH__EV_WOKEN "process.woken"
#define LASH__EV_ATTEMPT_FAILED "process.attempt_failed" /* issue 13 */
#define LASH__EV_RETRIED "process.retried"               /* issue 13 */

/* Fresh base record (status pending, no events). */
void lash__rec_base(lash__rec *r, lash__sv id, lash__sv kind, lash__sv input,
                    int disposition, uint32_t max_attempts, int64_t now,
                    uint64_t floor);
/* Resets the projection of r to the state right after registration. */
void lash__rec_reset_projection(lash__rec *r);
int lash__rec_encode(const lash__rec *r, lash__buf *b);
/* 0 or LASH_ECORRUPT (no message set). Clears the zone. */
int lash__rec_decode(const void *p, size_t n, lash__rec *r, msgpack_zone *z);
/* lash__rec_decode of a record this transaction encoded (its write-back
 * cache): the seal and the container headers are not checked again. */
int lash__rec_decode_own(const void *p, size_t n, lash__rec *r,
                         msgpack_zone *z);
/* Copies r into out. arena NULL: one malloc'd block owned by out->priv_;
 * else memory of arena (reset first), out->priv_ = NULL. */
int lash__rec_export(const lash__rec *r, lash_record *out, lash__buf *arena);

/* Applies one event to r (the fold). 0 or LASH_ECORRUPT. */
int lash__fold(lash__rec *r, const lash__ev *ev, msgpack_zone *z);
/* 1 if p is an unleased terminal payload {outcome=<bin>, authority=<str>}
 * (exactly those two keys); then *outcome is set when non-NULL. */
int lash__authority_wrapper(const void *p, size_t n, msgpack_zone *z,
                            lash__sv *outcome);
/* Terminal status of an event type, or 0. */
int lash__terminal_type_status(lash__sv type);
/* "process.completed" ... for a terminal status; NULL otherwise. */
const char *lash__terminal_type(int status);

int lash__ev_encode(const lash__ev *ev, lash__buf *b);
int lash__ev_decode(const void *p, size_t n, lash__ev *ev, msgpack_zone *z);

int lash__lease_encode(const lash_lease *ls, lash__buf *b);
int lash__lease_decode(const void *p, size_t n, lash_lease *ls,
                       msgpack_zone *z);
int lash__tomb_encode(const lash_tombstone *t, lash__buf *b);
int lash__tomb_decode(const void *p, size_t n, lash_tombstone *t,
                      msgpack_zone *z);

/* Lifecycle payload builders (into b, reset first). */
int lash__pl_started(lash__buf *b, const char *owner, const char *inc,
                     uint64_t fence, uint32_t attempt, int64_t at, int resumed);
/* process.suspended {wait, event?, process?, at?} and process.woken {by,
 * seq?, id?} (suspension, issue 9). */
int lash__pl_suspended(lash__buf *b, const char *wait, const lash_wake *w);
int lash__pl_attempt_failed(lash__buf *b, uint32_t attempt, lash_bytes error,
                            int64_t retry_at);        /* issue 13 */
int lash__pl_retried(lash__buf *b, uint32_t attempt); /* issue 13 */
int lash__pl_woken(lash__buf *b, const char *by, uint64_t seq,
                   lash__sv process);
/* Where a record is listed (the core's side of lash_bindex): listed,
 * wake_at and awaits from r (status and change_seq are the caller's). */
void lash__rec_index(const lash__rec *r, lash_bindex *x);
/* How many bytes of x's awaited id a cache entry keeps (0: none). */
static inline size_t lash__awaits_n(const lash_bindex *x) {
  return x->awaits.data != NULL && x->awaits.len <= LASH_ID_MAX ? x->awaits.len
                                                                : 0;
}
int lash__pl_waiting(lash__buf *b, const char *wait, int64_t since);
int lash__pl_resumed(lash__buf *b);
int lash__pl_cancel(lash__buf *b, const char *reason);
int lash__pl_abandon(lash__buf *b, const char *by, const char *reason);
int lash__pl_terminal(lash__buf *b, lash_bytes outcome, const char *authority);
int lash__pl_str_or_nil(lash__buf *b, const char *s);

/* msgpack_object helpers. */
const msgpack_object *lash__mp_map_get(const msgpack_object *map,
                                       const char *key);
int lash__mp_u64(const msgpack_object *o, uint64_t *out);
int lash__mp_i64(const msgpack_object *o, int64_t *out);
int lash__mp_sv(const msgpack_object *o, lash__sv *out, int nil_ok);
int lash__mp_bin(const msgpack_object *o, lash__sv *out);
/* Unpacks exactly one plausible MessagePack value spanning [p, p+n) into
 * z (not cleared): 0 or LASH_ECORRUPT. */
int lash__mp_unpack(const void *p, size_t n, msgpack_zone *z,
                    msgpack_object *o);

/* ------------------------------------------- replay keys (A): keys.c */

#define LASH__KEY_RESERVED "process:" /* derived lifecycle keys */
#define LASH__KEY_CMD "cmd:"          /* journal keys of a run's commands */
#define LASH__DKEY_MAX                                                         \
  (LASH_ID_MAX + LASH__WAIT_MAX + 96) /* a derived key, NUL included */

/* 1 if the two MessagePack values are canonically equal (maps as sets of
 * pairs, arrays in order, numbers by value, -0.0 == 0.0; bytes that are
 * not one MessagePack value compare bytewise). Uses and clears z. */
int lash__payload_equal(lash__sv a, lash__sv b, msgpack_zone *z);
/* 1 if v is present and holds exactly the bytes of @p lit. */
int lash__sv_is(lash__sv v, const char *lit);
/* 1 for a journal type (process.step, .child, .sleep, .wait, .timeout,
 * .value): folded as a stamp only. */
int lash__journal_type(lash__sv type);
/* The argument checks of a keyed append: the type (a journal type only
 * fenced with a cmd: key, else lash__check_event_type) and the key
 * (LASH_RULE_OWNER, not process:). *keylen gets its length (0: none). */
int lash__check_keyed(lash_store *s, const char *id, const char *type,
                      const lash_lease *ls, const char *key, size_t *keylen);
/* Looks @p key up among the events of row id (t's unsaved ones, then the
 * backend's key index): 0 found (*ev decoded, ev->seq set), 1 absent, or
 * an error with a message. */
int lash__key_find(lash_store *s, lash_txn *t, const char *id, size_t idlen,
                   const char *key, size_t keylen, lash__ev *ev);
/* What a reader of one row's log remembers for the derived keys: the
 * last process.waiting it passed (a process.resumed clears that wait). */
typedef struct lash__keyctx {
  int has_wait;
  int64_t since;
  char wait[LASH__WAIT_MAX + 1];
} lash__keyctx;
/* The key an event of row id is read with (lash_event.key): its stored
 * key, else the derived key of a lifecycle event, else NULL. @p buf has
 * LASH__DKEY_MAX bytes; @p kc (zeroed before the first event) follows the
 * reader along the log: a process.resumed whose wait it did not pass
 * looks back in the log through @p bt. Uses and clears s->zone. */
const char *lash__event_key(lash_store *s, lash_btxn *bt, const char *id,
                            size_t idlen, const lash__ev *ev, lash__keyctx *kc,
                            char *buf);
/* lash_check's part: a stored key is indexed to its event. Reports
 * through problem(ud, line); returns 0 or a storage error. */
int lash__key_audit(lash_store *s, lash_btxn *bt, const char *id, size_t idlen,
                    const lash__ev *ev,
                    void (*problem)(void *ud, const char *line), void *ud);

/* ------------------------------------------- copying rows (copy.c) */

/* The events of one row read for a copy (lash_copy, lash_salvage): their
 * bytes kept across the reads of the row, handed to a save as ev[0..n). */
typedef struct lash__evlist {
  lash__buf buf;
  lash_bevent *ev;
  size_t *off, *koff; /* where each event, and its key (0: none), starts */
  size_t n, cap;
} lash__evlist;
/* Appends the scanned event @p it (decoded as @p ev): 0 or LASH_ENOMEM. */
int lash__evlist_add(lash__evlist *l, const lash_bitem *it, const lash__ev *ev);
/* Points ev[i].data and .key into the bytes (after the last add). */
void lash__evlist_fix(lash__evlist *l);
void lash__evlist_free(lash__evlist *l);

/* -------------------------------------------------------- transactions */

/* One event waiting in the write-back cache: its bytes in lash__chg.evs. */
typedef struct lash__evref {
  uint64_t seq;
  size_t off, len;
  size_t koff, klen; /* replay keys (A): its key's bytes in evs (klen 0:
                        none) */
} lash__evref;

/* One process touched by the current write transaction: its entry for the
 * commit hook, and the write-back cache of its record, new events and
 * lease. They stay here and reach the backend once per flush (commit, or
 * before a read that walks an index or the row's events), as one
 * lash_bsave with the index transition from the state before (orig_*) to
 * the state after (cur_*). */
typedef struct lash__chg {
  size_t id_off; /* into lash_txn.ids (NUL-terminated) */
  size_t id_len;
  /* commit hook */
  int report;
  uint64_t first_seq;
  uint64_t last_seq;
  int status;
  int registered;
  int cancel_requested;
  int woken;
  /* record write-back: 0 not cached, 1 cached clean, 2 dirty */
  int rec_state;
  lash__buf rec; /* encoded record (capacity kept across commits) */
  int orig_exists;
  int orig_status;
  uint64_t orig_cs;
  int cur_status;
  uint64_t cur_cs;
  unsigned char kind[LASH_NAME_MAX];
  size_t kind_n;
  /* new events, not yet saved (capacity kept across commits) */
  lash__buf evs;
  lash__evref *ev;
  size_t nev, evcap;
  /* a re-registration shadows a tombstone: dropped at flush */
  int drop_tomb;
  uint64_t tomb_cs;
  /* lease write-back: 0 unknown, 1 absent, 2 cached clean, 3 dirty */
  int lease_state;
  int dirty; /* in the transaction's dirty list (lash__chg_dirty) */
  lash_lease lease;
  /* ---- suspension (B): the rest of the index transition ---- */
  int orig_listed, cur_listed;
  int64_t orig_wake_at, cur_wake_at;
  size_t orig_awaits_n, cur_awaits_n; /* 0: not in the waiter index */
  char orig_awaits[LASH_ID_MAX], cur_awaits[LASH_ID_MAX];
  int orig_suspended, cur_suspended;
  /* ---- issue 13 (claim): the row's live order (immutable) ---- */
  int64_t prio;
  uint64_t order;
} lash__chg;

struct lash_txn {
  lash_store *s;
  lash_btxn *bt;
  int active;
  int batch;        /* 1: a user batch from lash_txn_begin */
  int rc;           /* poisoning error, 0 if healthy */
  int wrote;        /* something is to be committed */
  int spilled;      /* rows went to the backend before commit (no replay) */
  int64_t began_us; /* monotonic time of the backend's begin */
  /* meta cache, loaded on first use, written at commit */
  int meta_loaded;
  int meta_dirty;
  uint64_t change_seq;
  uint64_t change_seq0; /* the stored change_seq when the meta was loaded */
  uint64_t counts[LASH_STATUS_COUNT + 1];
  uint64_t suspended; /* rows suspended (meta, issue 9) */
  /* rows that became terminal in this transaction: their waiters are
   * woken before the commit (lash__wake_waiters) */
  lash__buf ended; /* ids, each NUL-terminated */
  /* Called by the commit before its flush when set (the registry sets it
   * to lash__wake_ended when a row ends); its error aborts the commit. */
  int (*pre_commit)(lash_txn *t);
  /* ---- issue 13 (claim): concurrency keys whose slot freed in this
   * transaction: handed to their waiters before the commit ---- */
  lash__buf conc_freed; /* keys, each NUL-terminated */
  /* lash_txn_handoff's callback while it runs (NULL otherwise) */
  lash_handoff_fn handoff_fn;
  void *handoff_ud;
  int awaits_cached; /* a cached row awaits another (lash__wake_waiters) */
  /* change list for the commit hook */
  lash__chg *ch;
  size_t nch, chcap;
  /* the indexes of the rows written since the last flush: a flush before
   * a read (lash__wb_flush) saves these instead of looking at every row */
  uint32_t *dirty;
  size_t ndirty, dirtycap;
  uint32_t *hash; /* open addressing: index + 1, 0 empty */
  size_t hcap;
  int hused;
  lash__buf ids;
  lash_change *out; /* built at commit */
  size_t outcap;
  lash_bevent *bev; /* events of one row, built at flush */
  size_t bevcap;
  /* ---- version 4: the side table (kv): puts not yet handed to the
   * backend, in order (kv.c) ---- */
  lash__buf kv;
  size_t nkv;
};

/* Where a walk is (isolate.c): set as it goes, read by a parent process
 * when the walker dies. */
typedef struct lash__progress {
  const char *phase; /* a literal: the same address in a forked child */
  char id[LASH_ID_MAX + 1];
} lash__progress;

/* Sets s->progress, when the store has one. */
void lash__progress_set(lash_store *s, const char *phase, const char *id,
                        size_t idlen);

struct lash_store {
  lash_backend *b;
  /* lash_store_set_ambient: NULL-txn reads of that thread go through it */
  lash_txn *ambient;
  pthread_t ambient_thread;
  char *path; /* the target, as given */
  lash_store_opts opts;
  lash_clock_fn clock;
  void *clock_ud;
  lash_commit_fn on_commit;
  void *on_commit_ud;
  /* The change_seq range (from, to] of the commit being reported to
   * on_commit (lash_store_commit_range). */
  uint64_t report_from, report_to;
  lash_txn own; /* the transaction of an operation given txn == NULL */
  int64_t longest_write_us; /* the longest begin -> commit of a write */
  lash__progress *progress; /* NULL, or where a walk reports (isolate.c) */
  lash_txn batch;           /* the user batch, when active */
  msgpack_zone zone;
  lash__buf rbuf;                  /* record encoding */
  lash__buf ebuf[LASH__OP_EVENTS]; /* event values */
  lash__buf pbuf[LASH__OP_EVENTS]; /* lifecycle payloads */
  lash__buf vbuf;                  /* lease / tombstone values */
  lash__buf wbuf;                  /* process.woken payloads */
  lash__buf kvbuf; /* the side table (kv): a value read without a txn */
  uint64_t tok_seed;
  uint64_t tok_ctr;
  char errmsg[LASH__ERRMSG_MAX];
  /* The store mutex (recursive): held by every transaction from its begin
   * to its end and by lash_store_lock, so the engine's heartbeat thread
   * and the loop thread never interleave inside the store. Uncontended in
   * the common path (one thread). */
  pthread_mutex_t mu;
  int mu_depth; /* lock depth of the holder (only the holder reads it) */
  /* Owner liveness answers of the write transaction in progress (lease.c):
   * a claim page meeting many rows of one live owner probes it once.
   * Emptied when a write transaction opens. */
  struct {
    char owner[LASH_NAME_MAX + 1];
    char incarnation[LASH_NAME_MAX + 1];
    int alive;
  } alive[8];
  size_t nalive, alive_next;
};

/* The transaction a read that named @p txn reads through: txn, or the
 * store's ambient one on the thread that set it (lash_store_set_ambient). */
static inline lash_txn *lash__read_txn(lash_store *s, lash_txn *txn) {
  if (txn != NULL || s == NULL || s->ambient == NULL) return txn;
  return pthread_equal(s->ambient_thread, pthread_self()) ? s->ambient : NULL;
}

/* ------------------------------------------------------------ errors */

void lash__clear(lash_store *s);
/* The message buffer of the calling thread for @p s (lash_thread_errbuf). */
char *lash__errbuf(lash_store *s, size_t *cap);
/* The store mutex: recursive; the first lock points the backend's message
 * buffer at the holder thread's. */
void lash__lock(lash_store *s);
void lash__unlock(lash_store *s);
int lash__fail(lash_store *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------- store */

int64_t lash__now(lash_store *s);
uint64_t lash__token(lash_store *s);

/* Starts an operation that writes: txn NULL opens the store's own write
 * txn, else the batch is checked (same store, active, not poisoned). */
int lash__wbegin(lash_store *s, lash_txn *txn, lash_txn **out);
/* A transaction handed in (a batch, or the own txn of an operation under
 * way) must be this store's, open and not poisoned: 0, or an error with
 * a message. */
int lash__txn_usable(lash_store *s, const lash_txn *txn);
/* Ends it: the own txn commits if rc >= 0 and something was written, else
 * aborts. Returns the final code. */
int lash__wend(lash_store *s, lash_txn *t, int rc);
/* Read access: the batch's txn, or a read-only one of the backend. */
int lash__rbegin(lash_store *s, lash_txn *txn, lash_btxn **bt);
void lash__rend(lash_store *s, lash_txn *txn, lash_btxn *bt);

/* The bookkeeping: loaded into t on first use, written at commit. */
int lash__meta_load(lash_txn *t);
uint64_t lash__next_change_seq(lash_txn *t);
/* The entry of id in t, or NULL; _get creates it (NULL: out of memory).
 * Entry pointers are invalidated by the next _get. */
lash__chg *lash__chg_find(lash_txn *t, const char *id, size_t idlen);
lash__chg *lash__chg_get(lash_txn *t, const char *id, size_t idlen);
/* Hands every dirty cached record, event and lease of t to the backend
 * (one save per row). drop: forget the cache afterwards. Failures poison
 * t. */
int lash__wb_flush(lash_txn *t, int drop);
/* Notes that @p c has something to save (its record, lease or events):
 * 0 or LASH_ENOMEM (the transaction is then poisoned). */
int lash__chg_dirty(lash_txn *t, lash__chg *c);
/* Keeps the record @p rec (decoded: @p r) that the backend gave t for id
 * in its write-back cache, clean, with the stored state as after a flush;
 * nothing when the row is cached already (or out of memory). */
void lash__chg_keep(lash_txn *t, const char *id, size_t idlen, lash_bytes rec,
                    const lash__rec *r);
/* Flushes t if it holds unsaved events of id (before reading its log). */
int lash__wb_flush_events(lash_txn *t, const char *id, size_t idlen);
void lash__txn_free(lash_txn *t);
void lash__txn_abort(lash_txn *t);

/* ---------------------------------------------------------- validation */

/* Length of a valid id (LASH_RULE_ID) or LASH_EINVAL with a message. */
int lash__check_id(lash_store *s, const char *id);
/* Length of a valid owner-like name (LASH_RULE_OWNER: 1..127 bytes, no
 * control characters) or LASH_EINVAL naming `what`. */
int lash__check_name(lash_store *s, const char *what, const char *name);
/* The same, naming `what` of process id. */
int lash__check_name_of(lash_store *s, const char *what, const char *name,
                        const char *id);
/* Length of a valid kind (LASH_RULE_NAME) of process id (NULL: none). */
int lash__check_kind(lash_store *s, const char *kind, const char *id);
/* Optional (nullable) or required text of at most max bytes. */
int lash__check_text(lash_store *s, const char *what, const char *text,
                     const char *id, size_t max, int nullable);
/* A user event type or "signal.<name>"; "process.*" is reserved. */
int lash__check_event_type(lash_store *s, const char *id, const char *type);
/* Checks a presented lease struct (id and names NUL-terminated in range). */
int lash__check_lease_arg(lash_store *s, const lash_lease *ls);
int lash__check_payload(lash_store *s, const char *what, const char *id,
                        lash_bytes b);

/* ------------------------------------------------------------ registry */

/* Looks a record up (t's cache first): 0 found (decoded into r unless r is
 * NULL), 1 absent, <0 error. Sets no message when absent. */
int lash__rec_lookup(lash_store *s, lash_txn *t, lash_btxn *bt, const char *id,
                     size_t idlen, lash__rec *r);
/* Loads a record; LASH_ENOENT / LASH_EPRUNED (with tomb if non-NULL) with a
 * message naming the id. */
/* The tombstone of id: 0 (filled), 1 none, or an error. */
int lash__tomb_lookup(lash_store *s, lash_btxn *bt, const char *id,
                      size_t idlen, lash_tombstone *out);
int lash__rec_load(lash_store *s, lash_txn *t, lash_btxn *bt, const char *id,
                   size_t idlen, lash__rec *r, lash_tombstone *tomb);
/* Calls fn for each event of id with seq > after (t: the write txn whose
 * unsaved events of id are saved first, or NULL). */
int lash__scan_events(lash_store *s, lash_txn *t, lash_btxn *bt, const char *id,
                      size_t idlen, uint64_t after, lash_bscan_fn fn, void *ud);
/* Decodes a tombstone of id into *tb; LASH_ECORRUPT with a message. */
int lash__tomb_read(lash_store *s, const char *id, size_t idlen, lash_bytes v,
                    lash_tombstone *tb);

/* The fence predicate (SEMANTICS 3.3): 0 or LASH_ESUPERSEDED. On success
 * *row holds the stored lease. */
int lash__fence(lash_txn *t, const lash_lease *ls, int64_t now,
                lash_lease *row);
/* Reads the lease of id through t's cache (t may be NULL): 0, 1 (none), or
 * an error. */
int lash__lease_read(lash_store *s, lash_txn *t, lash_btxn *bt, const char *id,
                     size_t idlen, lash_lease *row);
/* Writes the lease row of id (into t's cache). */
int lash__lease_put(lash_txn *t, const char *id, size_t idlen,
                    const lash_lease *ls);
/* Marks a lease row released: the holder goes, the fence stays. */
void lash__lease_released(lash_lease *row);

/* ------------------------------------------------- suspension (B) */

/* Wakes row id if it is suspended and the wake applies: by "timer" (its
 * wake_at <= now), or "process" (it awaits @p pid). 1 woken, 0 not, or an
 * error (t is then poisoned by a storage failure). */
int lash__wake(lash_txn *t, const char *id, size_t idlen, const char *by,
               int64_t now, lash__sv pid);
/* Appends id (n bytes) and a NUL to b: 0, or LASH_ENOMEM. */
int lash__ids_add(lash__buf *b, const char *id, size_t n);
/* Wakes the waiters of every row t->ended names (before the commit). */
int lash__wake_ended(lash_txn *t);
/* Calls fn for each NUL-terminated name of @p list (taken from it
 * meanwhile, its capacity kept, emptied), until one fails. */
int lash__each_name(lash_txn *t, lash__buf *list,
                    int (*fn)(lash_txn *t, const char *name, size_t n));
/* The same for one row, pruned or ended now. */
int lash__wake_waiters(lash_txn *t, const char *id, size_t idlen);

/* ------------------------------------------- the side table (kv.c) */

/* Small keyed values beside the rows (lash_backend.h, LASH_KV_*), in the
 * same transactions as the rows. Keys are 1..LASH_KV_KEY_MAX bytes; ns is
 * 1..255. With a txn (the store's own write of an operation, a user
 * batch, the engine's group commit) a put is kept in the txn and reaches
 * the backend with its commit (an abort leaves nothing); a get sees the
 * txn's own puts. */
/* txn NULL: an own read txn, and *val is a copy valid until the next
 * lash__kv_* call on s. 0 (*val set), LASH_ENOENT (no message), or an
 * error with a message. */
int lash__kv_get(lash_store *s, lash_txn *txn, int ns, const char *key,
                 size_t keylen, lash_bytes *val);
/* val NULL: delete (absent is 0). txn NULL: an own write txn. */
int lash__kv_put(lash_store *s, lash_txn *txn, int ns, const char *key,
                 size_t keylen, const void *val, size_t vallen);
/* Calls fn for each entry of ns whose key starts with prefix (plen 0:
 * all), key > after (alen 0: from the start), ascending bytewise; fn
 * returns 0 to go on, > 0 to stop, < 0 to stop with that error. With a
 * txn its own puts are handed to the backend first. */
typedef int (*lash__kv_fn)(void *ud, const char *key, size_t keylen,
                           lash_bytes val);
int lash__kv_scan(lash_store *s, lash_txn *txn, int ns, const char *prefix,
                  size_t plen, const char *after, size_t alen, lash__kv_fn fn,
                  void *ud);
/* One pending put in lash_txn.kv: this head, then the key, then the
 * value (written by kv.c, handed to the backend by txn.c). */
typedef struct lash__kvent {
  unsigned char ns;
  unsigned char del; /* 1: a delete */
  uint16_t keylen;
  uint32_t vallen;
} lash__kvent;
/* txn.c: hands t's pending puts to the backend (keep: leave them cached,
 * for a replay after the store grew). 0 or an error (t poisoned). */
int lash__kv_flush(lash_txn *t, int keep);
/* ------------------- issue 13 (claim): keyed concurrency (concurrency.c) */

/* In lash_start, before the start is written: a row with a concurrency
 * key that holds no slot takes one if its key has one free (conc_state
 * HOLDS), else waits (conc_state WAITS: off the worklist, in its key's
 * queue). 0 go on, 1 the row waits (the caller saves it and refuses the
 * start), or an error. */
int lash__conc_acquire(lash_txn *t, lash__rec *r);
/* Pending side table puts a batch keeps before lash_start hands them to
 * the backend (a get looks through them one by one). */
#define LASH__CONC_PENDING_MAX 32
/* Where a row stops running (it ends, is suspended, waits for a retry):
 * frees its slot (conc_state NONE; a waiting row leaves the queue); the
 * commit hands the slot to the key's first waiter. op_save calls it for
 * rows that end or are suspended; a path that parks a row otherwise (a
 * retry's backoff) calls it on the record before saving. 0 or an error. */
int lash__conc_release(lash_txn *t, lash__rec *r);
/* Before the commit (registry.c's pre_commit): the freed slots go to the
 * first waiters of their keys, which @p relist (lash__conc_relist) lists
 * again holding them. 0 or an error. */
typedef int (*lash__conc_relist_fn)(lash_txn *t, const char *id, size_t idlen,
                                    uint64_t held, int32_t *limit);
int lash__conc_handoff(lash_txn *t, lash__conc_relist_fn relist);
/* lash_check: every row holding a slot is counted by its key, every
 * waiting row is in its key's queue. Reports through problem; 0 or an
 * error. */
int lash__conc_audit(lash_store *s, lash_btxn *bt,
                     void (*problem)(void *ud, const char *line), void *ud);
/* Side table values that are a map of one integer {field = v}: get (0,
 * 1 absent: *v 0, or an error naming @p what) and put (v 0 with
 * del_zero: the entry is deleted). */
int lash__kv_get_num(lash_txn *t, int ns, const char *key, size_t kn,
                     const char *field, int64_t *v, const char *what);
int lash__kv_put_num(lash_txn *t, int ns, const char *key, size_t kn,
                     const char *field, int64_t v, int del_zero);
/* registry.c: the waiting row @p id gets a slot of its key, of which
 * @p held are taken: 1 it holds it now (listed again, reported as woken),
 * 2 its limit is reached (it waits on), 0 it no longer waits (gone, ended,
 * moved on); *limit gets its limit. Or an error. */
int lash__conc_relist(lash_txn *t, const char *id, size_t idlen, uint64_t held,
                      int32_t *limit);

/* ------------------------------------------- the children index (children.c)
 */

/* Notes @p child (cl bytes) under @p parent in the write txn t (obs). */
int lash__child_note(lash_store *s, lash_txn *t, const char *parent,
                     const char *child, size_t cl);
/* Takes @p child out of @p parent's entries (prune). */
int lash__child_forget(lash_store *s, lash_txn *t, const char *parent,
                       size_t pl, const char *child, size_t cl);

#endif /* LASH_REGISTRY_INT_H */
