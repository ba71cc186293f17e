/* lash.h - the public C API of liblash, the durable process engine core.
 *
 * This is the only public header. It includes neither a storage library's
 * header nor lua.h: the registry backend stays private (lash_backend.h is
 * the interface a backend implements), and a C host can use the core
 * without Lua.
 *
 * Conventions (see docs/c-api.md for the long form):
 * - Every function that can fail returns an int: 0 on success, a negative
 *   LASH_E* code on failure, and where documented a positive "informational"
 *   code (LASH_APPLIED, LASH_SUPERSEDED_OUTCOME) that is not an error.
 * - On failure the store keeps a message naming the id and what was wrong;
 *   lash_errmsg(store) returns it, valid until the next call on that store.
 * - A failed operation changes nothing: record, event log and indexes stay
 *   byte-identical.
 * - Every operation takes a `lash_txn *txn`. NULL means "run in a transaction
 *   of your own and commit it before returning". A non-NULL write batch from
 *   lash_txn_begin() lets many operations share one commit (group commit).
 *   Inside a batch, an operation that fails its checks writes nothing and the
 *   batch stays usable; a storage failure (store full, I/O) poisons the batch:
 *   every later call on it and its commit return that error.
 * - Strings in (ids, kinds, owners) are NUL-terminated. Data out (records,
 *   events) is either copied into caller-owned structs freed with
 *   lash_record_free(), or passed to a callback and valid only during it.
 * - A store handle may be used from several threads: every transaction
 *   (a call with txn NULL, or a batch from lash_txn_begin to its commit or
 *   abort) holds the store's mutex, so they run one at a time. A batch is
 *   used from the thread that began it. Messages: see lash_thread_errbuf.
 *   Many OS processes may open the same store; the backend serialises
 *   their writers.
 * - Times are wall-clock milliseconds since the epoch from one replaceable
 *   clock (lash_store_set_clock), so lease lapses are testable without sleep.
 */
#ifndef LASH_H
#define LASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LASH_API __attribute__((visibility("default")))

#define LASH_VERSION_MAJOR 0
#define LASH_VERSION_MINOR 1
#define LASH_VERSION_PATCH 0
#define LASH_VERSION_STRING "0.1.0"
/* Version of the on-disk record encoding; a store written with another
 * version refuses to open (LASH_EFORMAT, both versions named). */
#define LASH_FORMAT_VERSION 3

LASH_API const char *lash_version(void);

/* ---------------------------------------------------------------- errors */

/* XX(NAME, value, text). Values are stable: they cross the C/Lua boundary as
 * the names ("ENOENT") and are written in no store. */
#define LASH_ERRNO_MAP(XX)                                                     \
  XX(EINVAL, -1, "invalid argument")                                           \
  XX(ENOENT, -2, "unknown process")                                            \
  XX(ECONFLICT, -3, "conflicts with the stored definition")                    \
  XX(ESUPERSEDED, -4, "lease is no longer held by this owner")                 \
  XX(EBUSY, -5, "lease is held by another owner")                              \
  XX(ETERMINAL, -6, "process is already terminal")                             \
  XX(EPRUNED, -7, "process is no longer retained")                             \
  XX(ETOOBIG, -8, "payload is over the size limit")                            \
  XX(EFORMAT, -9, "store has another format version")                          \
  XX(EIO, -10, "storage I/O error")                                            \
  XX(EFULL, -11, "store is full (max_bytes)")                                  \
  XX(ENOMEM, -12, "out of memory")                                             \
  XX(EEXHAUSTED, -13, "attempt budget exhausted")                              \
  XX(ESTARTED, -14, "owner-bound process was already started")                 \
  XX(EEXTERNAL, -15, "process is externally owned")                            \
  XX(EAUTHORITY, -16, "completion authority not valid for this process")       \
  XX(EACCES, -17, "store directory is not accessible")                         \
  XX(ECORRUPT, -18, "store is corrupt")                                        \
  XX(ETIMEDOUT, -19, "timed out")                                              \
  XX(ECANCELED, -20, "cancelled")                                              \
  XX(ECLOSED, -21, "closed")                                                   \
  XX(EPANIC, -22, "fatal storage error; reopen required")                      \
  XX(ENONDETERMINISM, -23, "the body does not replay its journal")

enum {
#define LASH__ERR_ENUM(name, val, text) LASH_##name = (val),
  LASH_ERRNO_MAP(LASH__ERR_ENUM)
#undef LASH__ERR_ENUM
      LASH_ERR_LAST = -23
};

/* Positive, non-error results of completion verbs on a terminal row. */
enum {
  LASH_APPLIED = 1,           /* identical outcome already recorded */
  LASH_SUPERSEDED_OUTCOME = 2 /* a different outcome won first */
};

/* Text for a code ("unknown process"); never NULL. */
LASH_API const char *lash_strerror(int rc);
/* Name of a code without the LASH_ prefix ("ENOENT"); "OK" for 0. */
LASH_API const char *lash_err_name(int rc);

/* ------------------------------------------------------------ enumerations */

typedef enum lash_status {
  LASH_PENDING = 1, /* registered, never started        (live) */
  LASH_RUNNING,     /* started by an owner               (live) */
  LASH_WAITING,     /* parked on a signal/event/timer    (live) */
  LASH_COMPLETED,   /* terminal */
  LASH_FAILED,      /* terminal */
  LASH_CANCELLED,   /* terminal */
  LASH_ABANDONED    /* terminal */
} lash_status;
#define LASH_STATUS_COUNT 7
#define LASH_IS_TERMINAL(st) ((st) >= LASH_COMPLETED)

/* "pending", "running", ...; NULL for an unknown value. */
LASH_API const char *lash_status_name(int status);
/* Parses a status name; returns 0 when unknown. */
LASH_API int lash_status_parse(const char *name);

typedef enum lash_disposition {
  LASH_RERUNNABLE = 1, /* re-run after its lease lapses, up to max_attempts */
  LASH_OWNER_BOUND,    /* runs at most once */
  LASH_EXTERNAL        /* never run here; closed by an external authority */
} lash_disposition;
LASH_API const char *lash_disposition_name(int disposition);
LASH_API int lash_disposition_parse(const char *name); /* 0 when unknown */

/* Who may complete a row without holding its lease (SEMANTICS 3.5). */
typedef enum lash_authority {
  LASH_AUTH_EXTERNAL = 1,      /* external owner: LASH_EXTERNAL rows only */
  LASH_AUTH_WORKFLOW,          /* host/workflow key: rerunnable, owner_bound */
  LASH_AUTH_RECONCILED_ABANDON /* external rows, abandoned outcome only */
} lash_authority;
LASH_API const char *lash_authority_name(int authority);

/* Writers of an abandoned outcome (SEMANTICS 1.3). */
typedef enum lash_abandon_writer {
  LASH_WRITER_OWNER_DRAIN = 1,
  LASH_WRITER_RECONCILED_REQUEST,
  LASH_WRITER_ENGINE_GAVE_UP,
  LASH_WRITER_SWEEP
} lash_abandon_writer;
/* "owner_drain", "reconciled_request", "engine_gave_up", "sweep" */
LASH_API const char *lash_writer_name(int writer);

typedef enum lash_durability {
  LASH_DURABILITY_FULL = 0, /* every commit is on disk before it returns */
  LASH_DURABILITY_NOMETA,   /* data synced, the commit marker may lag: a
                               crash can lose the last commit, never tear */
  LASH_DURABILITY_NONE      /* no sync: the OS decides when */
} lash_durability;

/* --------------------------------------------------------------- values */

#define LASH_ID_MAX 255   /* ids are 1..255 bytes: LASH_RULE_ID below */
#define LASH_NAME_MAX 127 /* kinds, owners, incarnations, event types */

/* The rules for the strings lash stores (docs/lua-api.md, "Ids and
 * names"); every registry call enforces them with LASH_EINVAL:
 *   LASH_RULE_ID     process ids: 1..LASH_ID_MAX bytes of UTF-8 without
 *                    control characters (U+0000..U+001F, U+007F..U+009F);
 *                    spaces, '#', '/' and any other printable are fine
 *   LASH_RULE_OWNER  owners, incarnations, requesters: the same, 1..
 *                    LASH_NAME_MAX bytes
 *   LASH_RULE_NAME   kinds and event types: 1..LASH_NAME_MAX bytes of
 *                    [A-Za-z0-9_.:-]; a signal's name (event type
 *                    "signal.<name>") is [A-Za-z0-9_-]+ */
typedef enum lash_rule {
  LASH_RULE_ID = 1,
  LASH_RULE_OWNER,
  LASH_RULE_NAME
} lash_rule;

/* Checks @p len bytes at @p s (not necessarily NUL-terminated: an
 * embedded NUL counts as a control character) against @p rule. On a
 * refusal, writes to @p msg (cap bytes; NULL: none) a message that starts
 * with @p what ("id", "kind"), shows the value with bytes escaped as \xNN,
 * names the first bad byte and its position (1-based) and states the rule.
 * @return 0 or LASH_EINVAL. */
LASH_API int lash_check_string(int rule, const char *what, const char *s,
                               size_t len, char *msg, size_t cap);

typedef struct lash_bytes {
  const void *data;
  size_t len;
} lash_bytes;

/* ---------------------------------------------------------------- store */

typedef struct lash_store lash_store;
typedef struct lash_txn lash_txn;

typedef struct lash_store_opts {
  int durability;        /* lash_durability; default FULL */
  size_t max_bytes;      /* most bytes the store may hold: the ceiling
                            its map grows to; 0 = no ceiling */
  size_t map_bytes;      /* the map the store starts with (LMDB: it
                            doubles on a full map, up to max_bytes);
                            0 = 64 GiB (1 GiB on 32-bit), sparse */
  size_t max_payload;    /* 0 = 1 MiB; applies to input, event payloads,
                            outcome payloads */
  unsigned max_readers;  /* concurrent readers, where the backend has a
                            limit; 0 = 1024 (dead readers' slots
                            are reclaimed) */
  int read_only;         /* open for reading only; a store this user may
                            read but not write opens too (LMDB: without
                            its lock file, lash_stats.no_lock) */
  int damaged_ok;        /* with read_only: open even a store whose data
                            file is shorter than its meta pages say (what
                            lash_salvage does in its child processes) */
  int64_t write_idle_ms; /* a write transaction that sits idle this long (no
                            statement from its handle: its process stopped,
                            its host frozen) is ended by the server and rolled
                            back, so it cannot keep the store's other writers
                            waiting for longer; its handle then gets LASH_EIO
                            and reconnects. PostgreSQL only (its
                            idle_in_transaction_session_timeout; LMDB's writer
                            holds its lock while its process lives). 0 =
                            30000 (lash_engine_open: lease_ttl_ms - 2 *
                            renew_ms, at least 5000: the other owners'
                            leases outlive the wait, a network cut the
                            sessions survive (tcp_user_timeout 5 s) is
                            survived here too), < 0 = never. A batch of
                            lash_txn_begin_held is never ended. */
} lash_store_opts;

/* Fills *o with the defaults above. */
LASH_API void lash_store_opts_init(lash_store_opts *o);

/* Opens (creating if needed) the store named by @p dir: a directory path,
 * or "lmdb:PATH" (the embedded LMDB backend: dir 0700, files 0600). Any
 * other "scheme:" prefix (letters, then ':') is LASH_EINVAL, the message
 * naming the schemes this lash knows; lash_backend.h's
 * lash_store_open_backend opens a store through a backend of your own.
 * @p opts may be NULL for defaults.
 * On failure *out is NULL, nothing is left to close, and if @p err is not
 * NULL a message (naming the directory and the cause) is written into it
 * (at most @p errlen bytes, NUL-terminated).
 * @return 0, LASH_EINVAL, LASH_EACCES (missing parent, not a directory, read
 *   only), LASH_EFORMAT (other format version; message names both),
 *   LASH_EIO, LASH_ENOMEM, LASH_ECORRUPT. */
LASH_API int lash_store_open(const char *dir, const lash_store_opts *opts,
                             lash_store **out, char *err, size_t errlen);
/* Closes the store; aborts an open batch. NULL is a no-op. */
LASH_API void lash_store_close(lash_store *s);

/* The message of the last failed call on @p s; "" if none. Owned by the
 * store, valid until the next call on it. */
LASH_API const char *lash_errmsg(const lash_store *s);

/* Takes the store's mutex for the calling thread (recursive: the calls it
 * then makes take it again), so a sequence of calls is not interleaved
 * with another thread's. @p timeout_ms < 0 waits for as long as it takes.
 * @return 0, LASH_EBUSY (not taken within timeout_ms), LASH_EINVAL. */
LASH_API int lash_store_lock(lash_store *s, int64_t timeout_ms);
LASH_API void lash_store_unlock(lash_store *s);
/* From now on the messages of this thread's calls (on any store) go to
 * @p buf (cap bytes, caller-owned, must outlive the calls), and
 * lash_errmsg returns it on this thread; NULL: back to each store's own.
 * For a helper thread (the engine's heartbeat) that must not overwrite
 * the message the store's main thread is about to read. */
LASH_API void lash_thread_errbuf(char *buf, size_t cap);

/* Reads that name no transaction (txn NULL), made by the calling thread,
 * read through @p txn (an open write transaction: they see its writes)
 * until this is called again with NULL: the engine sets it while a body
 * runs inside the transaction that claimed its row (an early start), so
 * the body sees its own row as the transaction left it. The readers:
 * lash_get, lash_events_after, lash_children, lash_lease_get, lash_list. */
LASH_API void lash_store_set_ambient(lash_store *s, lash_txn *txn);

/* Replaces the clock (NULL restores the wall clock). */
typedef int64_t (*lash_clock_fn)(void *ud);
LASH_API void lash_store_set_clock(lash_store *s, lash_clock_fn fn, void *ud);
LASH_API int64_t lash_store_now(lash_store *s);

LASH_API size_t lash_store_max_payload(const lash_store *s);
/* 1 when the store's backend reopens by itself after a lost connection
 * (PostgreSQL reconnects): a failed write (LASH_EIO) may be retried, and
 * the next one reconnects; 0 when an EIO ends the handle (LMDB). */
LASH_API int lash_store_reopens(const lash_store *s);
/* The target the store was opened with, as given ("app.lash",
 * "lmdb:app.lash"). */
LASH_API const char *lash_store_path(const lash_store *s);

/* How another OS process's commit can be noticed without polling: the
 * backend's wake source. The change sequence (lash_change_seq) stays the
 * truth; a wake only says "read it now". */
enum {
  LASH_WAKE_NONE = 0, /* nothing: poll lash_change_seq on a backoff */
  LASH_WAKE_FILE,     /* watch `path`: it is written by every commit */
  LASH_WAKE_FD        /* `fd` becomes readable on a commit; then call
                         lash_store_wake_consume */
};
typedef struct lash_wake_source {
  int kind;
  char path[4096]; /* LASH_WAKE_FILE */
  int fd;          /* LASH_WAKE_FD; -1 otherwise */
} lash_wake_source;
/* Fills *out. @return 0, or a negative error (then kind is NONE). */
LASH_API int lash_store_wake_source(lash_store *s, lash_wake_source *out);
/* After a LASH_WAKE_FD source became readable: takes the notifications
 * off it. @return 1 if any arrived, 0 if none, or a negative error. */
LASH_API int lash_store_wake_consume(lash_store *s);

/* --------------------------------------------------------------- batches */

/* Starts a write batch. Only one batch per store at a time (a second begin
 * returns LASH_EINVAL). While a batch is open, writes with txn == NULL on
 * the same store return LASH_EINVAL (pass the batch instead); reads with
 * txn == NULL see the last committed state, reads given the batch see its
 * uncommitted writes.
 * @return 0, LASH_EINVAL, LASH_EIO, LASH_EPANIC, LASH_EACCES (read-only). */
LASH_API int lash_txn_begin(lash_store *s, lash_txn **out);
/* lash_txn_begin for a batch its caller holds open while code of its own
 * runs between the batch's calls, for as long as that takes (eng:batch:
 * the user's Lua): the server never ends it for sitting idle
 * (lash_store_opts.write_idle_ms). Such a batch stopped half-way keeps the
 * store's other writers waiting until it goes on or its process ends.
 * @return as lash_txn_begin. */
LASH_API int lash_txn_begin_held(lash_store *s, lash_txn **out);
/* Commits every write of the batch and frees it (even on failure). The
 * commit hook (below) runs after a successful commit.
 * @return 0, the poisoning error, LASH_EFULL, LASH_EIO. */
LASH_API int lash_txn_commit(lash_txn *txn);
/* Discards every write of the batch and frees it. NULL is a no-op. */
LASH_API void lash_txn_abort(lash_txn *txn);
/* Keyed concurrency: hands the slots freed so far in @p txn to their keys'
 * next rows now (the commit does it otherwise) and calls @p fn with the id
 * of each row that got one; such a row is claimable in this transaction,
 * so a worker can start it in the commit that ended the row before it.
 * @return 0 or the error that poisons the transaction. */
typedef void (*lash_handoff_fn)(void *ud, const char *id);
LASH_API int lash_txn_handoff(lash_txn *txn, lash_handoff_fn fn, void *ud);

/* One committed change to one process, reported to the commit hook. */
typedef struct lash_change {
  const char *id;       /* the process id */
  uint64_t first_seq;   /* first event seq appended by the commit, 0: none */
  uint64_t last_seq;    /* last event seq after the commit */
  int status;           /* status after the commit */
  int registered;       /* 1 if the commit created the row */
  int cancel_requested; /* the record's cancel_requested after the commit */
  int woken;            /* the row is woken from a suspension (claimable
                           again, not resumed yet) after the commit */
  /* ---- issue 13: retries, delays (retry) ---- */
  int64_t wake_at; /* the row's time on the timer index after the
                      commit (a retry wait, a delay, a sleep); 0 */
} lash_change;
/* Called after every successful commit that changed records or events
 * (registration, appends, starts, waits, completions, requests; not lease
 * operations, not prune), once per commit, with one entry per changed
 * process in first-change order. Data valid during the call only. The hook
 * must not call back into the store. It runs on the committing thread with
 * the store mutex held (lease-only commits, such as the engine heartbeat's
 * renewals, never call it). */
typedef void (*lash_commit_fn)(void *ud, const lash_change *changes, size_t n);
LASH_API void lash_store_on_commit(lash_store *s, lash_commit_fn fn, void *ud);
/* Inside the commit hook (and only there: it takes no lock): the store's
 * change_seq before (*from) and after (*to) the commit being reported, so
 * a reader of the change feed can skip the entries it made itself when no
 * other commit came between (from == where it has read up to). */
LASH_API void lash_store_commit_range(const lash_store *s, uint64_t *from,
                                      uint64_t *to);

/* --------------------------------------------------------------- records */

/* ---- issue 13: retries, delays, unique keys (retry) ----
 * A retry policy: a body that raises is run again, after a backoff of
 * min(max_ms, initial_ms * factor^(n-1)) ms after its n-th failure, less
 * a random share of up to `jitter` of it, until max_attempts attempts
 * failed. max_attempts 0 or 1: no retries (the default). */
typedef struct lash_retry_policy {
  uint32_t max_attempts; /* attempts in all, the first included; 0: none */
  int64_t initial_ms;    /* backoff after the first failure (>= 0) */
  double factor;         /* growth per failure (>= 1; 0 given: 2) */
  int64_t max_ms;        /* ceiling of a backoff (0: none) */
  double jitter;         /* 0..1: share of a backoff taken off at random */
} lash_retry_policy;

typedef struct lash_attempt {
  char owner[LASH_NAME_MAX + 1];
  char incarnation[LASH_NAME_MAX + 1];
  uint64_t fence;
  uint32_t number; /* 1-based attempt number */
  int64_t started_at;
} lash_attempt;

/* A process record: the stored projection of the event log. Pointers point
 * into memory owned by the record; free with lash_record_free(). */
typedef struct lash_record {
  const char *id;
  const char *kind;
  lash_bytes input;      /* opaque payload (MessagePack by convention) */
  int disposition;       /* lash_disposition */
  uint32_t max_attempts; /* 0 = unlimited */
  int status;            /* lash_status */
  int has_attempt;
  lash_attempt attempt; /* latest start, if has_attempt */
  lash_bytes outcome;   /* terminal payload, iff terminal */
  const char *wait;     /* what it is parked on, or NULL */
  int64_t wait_since;
  int cancel_requested;
  const char *cancel_reason; /* may be NULL */
  int abandon_requested;
  const char *abandon_by;     /* may be NULL */
  const char *abandon_reason; /* may be NULL */
  int64_t created_at;
  int64_t updated_at;  /* `at` of the last event folded in */
  uint64_t last_seq;   /* seq of the last event, 0 if none */
  uint64_t change_seq; /* store-wide change seq of the last save */
  int64_t timeout_ms;  /* the start's body time budget; 0 = none */
  /* ---- replay keys and the parent field (issue 9) ---- */
  const char *parent; /* id of the process that started it, or NULL */
  /* ---- suspension (issue 9, B) ---- */
  int suspended;            /* 1: parked without a lease or a body,
                               until its wake fires (lash_suspend) */
  const char *wake_event;   /* what wakes it, when suspended: an event */
  const char *wake_process; /*   type, another row's terminal, a time */
  int64_t wake_at;          /*   (0: none) */
  /* ---- issue 13: retries, delays, unique keys (retry) ---- */
  lash_retry_policy retry; /* its retry policy (max_attempts 0: none) */
  int64_t run_at;          /* its delay: not claimable before (0: none) */
  uint32_t failures;       /* attempts that ended in a retry wait or were
                              re-queued by lash_retry */
  int retry_due;           /* 1: the next start is a new attempt after a
                              failure (not a resume) */
  const char *unique_key;  /* its unique key, or NULL */
  int64_t unique_for_ms;   /* the key holds this long after its end */
  /* ---- issue 13: priority, keyed concurrency (claim) ---- */
  int64_t priority;            /* higher first; 0 default */
  uint64_t created_seq;        /* the change_seq of its registration: the
                                  exact creation order */
  const char *concurrency_key; /* NULL: none */
  int32_t concurrency_limit;   /* with a key: at most this many running */
  int conc_state;              /* LASH_CONC_*: holds a slot of its key, or
                                  waits for one (not on the worklist) */
  void *priv_;                 /* owned memory; do not touch */
} lash_record;

/* The range of lash_def.priority (issue 13). */
#define LASH_PRIORITY_MIN (-(INT64_C(1) << 53))
#define LASH_PRIORITY_MAX (INT64_C(1) << 53)

/* ---- issue 13: rate limits per kind (claim) ----
 * At most n starts of @p kind per per_ms across every worker and host,
 * spread one per per_ms/n (a bucket in the store, taken in @p txn: the
 * engine takes one for each row of a rate-limited kind it claims).
 * @return 0 (a token taken), 1 (none left: *next_at, if not NULL, gets
 *   when the next is due, ms since the epoch), LASH_EINVAL (n 1..
 *   LASH_RATE_N_MAX, per_ms 1..LASH_RATE_PER_MAX), a storage error. */
#define LASH_RATE_N_MAX 1000000
#define LASH_RATE_PER_MAX (INT64_C(1) << 40)
LASH_API int lash_rate_take(lash_store *s, lash_txn *txn, const char *kind,
                            uint32_t n, int64_t per_ms, int64_t *next_at);
/* Returns a token taken in this transaction (its start did not happen).
 * @return 0 or an error. */
LASH_API int lash_rate_give_back(lash_store *s, lash_txn *txn, const char *kind,
                                 uint32_t n, int64_t per_ms);

/* Where a row with a concurrency key stands (lash_record.conc_state). */
enum { LASH_CONC_NONE = 0, LASH_CONC_HOLDS = 1, LASH_CONC_WAITS = 2 };

LASH_API void lash_record_free(lash_record *r); /* NULL-safe; zeroes *r */

/* A tombstone: what remains of a pruned process. */
typedef struct lash_tombstone {
  char id[LASH_ID_MAX + 1];
  int status; /* terminal status at prune */
  int64_t pruned_at;
  uint64_t change_seq;
  uint64_t last_seq; /* sequence floor: a re-registered id continues here */
} lash_tombstone;

/* What a new process is. Immutable after registration; registration is
 * idempotent per (id, kind, input, disposition, max_attempts, timeout_ms,
 * parent). */
typedef struct lash_def {
  const char *id;        /* 1..255 bytes */
  const char *kind;      /* 1..127 bytes */
  lash_bytes input;      /* <= max_payload */
  int disposition;       /* required: a lash_disposition */
  uint32_t max_attempts; /* 0 = unlimited */
  int64_t timeout_ms;    /* body time budget of each attempt, from the
                            attempt's start; 0 = none (>= 0) */
  /* ---- replay keys and the parent field (issue 9) ---- */
  const char *parent; /* id of the process that started it, or NULL
                         (LASH_RULE_ID); part of the definition: the
                         same id with another parent is ECONFLICT */
  /* ---- issue 13: retries, delays, unique keys (retry) ---- */
  lash_retry_policy retry; /* zero: no retries. Not part of the identity:
                              a repeated registration keeps the first */
  int64_t run_at;          /* ms since the epoch: the row is pending and
                              unlisted (on the timer index) until then;
                              0 or a past time: none (>= 0) */
  const char *unique_key;  /* 1..255 bytes or NULL: a registration while
                              another row holds the key registers nothing
                              and gives that row (lash_register_unique) */
  int64_t unique_for_ms;   /* the key stays held this long after the
                              holder ended (>= 0) */
  /* ---- issue 13: priority, keyed concurrency (claim) ---- */
  int64_t priority;            /* higher is claimed first; 0 default
                                  (LASH_PRIORITY_MIN..MAX) */
  const char *concurrency_key; /* NULL: none; 1..LASH_NAME_MAX bytes
                                  (LASH_RULE_ID): at most
                                  concurrency_limit rows of one key run at
                                  once, across every worker */
  int32_t concurrency_limit;   /* with a key: >= 1 (0 means 1); < 0 EINVAL */
} lash_def;

/* Registers a process (status pending).
 * @param[out] created  1 if this call created the row, 0 if an identical
 *   row existed (nothing written, change seq untouched). May be NULL.
 * @param[out] out      the stored record; may be NULL.
 * A tombstoned id is registered anew (its sequence continues after the
 * tombstone's floor).
 * Unique keys (issue 13): when def->unique_key is held by another row (a
 * live one, or one that ended less than its unique_for_ms ago) nothing is
 * written and the call returns LASH_APPLIED with *out that row.
 * @return 0, LASH_APPLIED, LASH_EINVAL (empty/over-long id or kind, bad
 * disposition), LASH_ETOOBIG, LASH_ECONFLICT (same id, other definition),
 * LASH_EFULL, LASH_EIO, LASH_EPANIC. */
LASH_API int lash_register(lash_store *s, lash_txn *txn, const lash_def *def,
                           int *created, lash_record *out);

/* ---- issue 13: retries, delays, unique keys (retry) ---- */

/* The backoff (ms) after failure number @p n (1-based) under @p p, with
 * @p u in [0, 1) the random draw for its jitter. */
LASH_API int64_t lash_retry_backoff(const lash_retry_policy *p, uint32_t n,
                                    double u);
/* Checks a policy; 0 or LASH_EINVAL with a message naming the field in
 * @p err (may be NULL). */
LASH_API int lash_retry_check(const lash_retry_policy *p, char *err,
                              size_t errlen);

/* Reads one record.
 * @return 0, LASH_ENOENT, LASH_EPRUNED (then *tomb is filled if not NULL),
 *   LASH_EINVAL, LASH_EIO. */
LASH_API int lash_get(lash_store *s, lash_txn *txn, const char *id,
                      lash_record *out, lash_tombstone *tomb);

/* ------------------------------------------------------------------ events */

typedef struct lash_event {
  const char *process_id;
  uint64_t seq;
  const char *type;   /* "process.started", "signal.approve", "progress" */
  lash_bytes payload; /* MessagePack; lifecycle payloads written by core */
  int64_t at;
  /* ---- replay keys (issue 9) ---- */
  const char *key; /* its replay key (SEMANTICS 1.4), or NULL: the key of a
                      keyed append as stored, or a lifecycle event's key,
                      derived when read (never stored):
                      process:{id}:first-started:attempt:{n},
                      process:{id}:terminal:{type},
                      process:{id}:wait:{wait}:since:{ms}:entered|cleared,
                      process:{id}:cancel:{16 hex digits: hash of reason},
                      process:{id}:abandon-requested,
                      process:{id}:attempt-failed:attempt:{n},
                      process:{id}:retried:attempt:{n} (issue 13) */
} lash_event;

/* Callback for listings: return 0 to continue, non-zero to stop early (that
 * value is then returned by the listing call if it is negative, else 0). */
typedef int (*lash_event_fn)(void *ud, const lash_event *ev);
typedef int (*lash_record_fn)(void *ud, const lash_record *rec);

/* Calls fn for each event of @p id with seq > after, ascending, at most
 * @p limit (0 = no limit).
 * @return 0, LASH_ENOENT, LASH_EPRUNED, LASH_EINVAL, LASH_EIO, or fn's
 *   negative stop value. */
LASH_API int lash_events_after(lash_store *s, lash_txn *txn, const char *id,
                               uint64_t after, size_t limit, lash_event_fn fn,
                               void *ud);

/* ---- issue 14: the children index (obs) ---- */
/* Calls fn for each process registered with def.parent == @p parent (the
 * children index, written by lash_register), in id order; pruned children
 * are left out. fn returns 0 to go on, > 0 to stop, < 0 to stop with that.
 * @return 0, fn's error, LASH_EINVAL, LASH_ENOMEM, LASH_EIO. (An unknown
 * parent has no children: 0.) */
LASH_API int lash_children(lash_store *s, lash_txn *txn, const char *parent,
                           lash_record_fn fn, void *ud);

/* Host appends (unfenced). A signal: type "signal.<name>", name
 * [A-Za-z0-9_-]+; a user event type must not start with "process.".
 * @param[out] seq  the new event's sequence (may be NULL)
 * @return 0, LASH_ENOENT, LASH_EPRUNED, LASH_ETERMINAL, LASH_EINVAL,
 *   LASH_ETOOBIG, LASH_EFULL, LASH_EIO. */
LASH_API int lash_append(lash_store *s, lash_txn *txn, const char *id,
                         const char *type, lash_bytes payload, uint64_t *seq);

/* Records a cancellation request (process.cancel_requested {reason}).
 * Idempotent: a row that already has a request returns its seq and writes
 * nothing. On a terminal row it writes nothing and returns LASH_ETERMINAL.
 * A pending row (never started) is cancelled at once: the request and the
 * terminal process.cancelled are appended in the same commit; except an
 * external row, whose owner runs it elsewhere and closes it (with
 * lash_complete_unleased) when it sees the request.
 * @return 0, LASH_ENOENT, LASH_EPRUNED, LASH_ETERMINAL, LASH_EINVAL,
 *   LASH_EFULL, LASH_EIO. */
LASH_API int lash_request_cancel(lash_store *s, lash_txn *txn, const char *id,
                                 const char *reason, uint64_t *seq);

/* Records an abandon request (process.abandon_requested {by, reason}).
 * Identical repeat: no-op; a different one: LASH_ECONFLICT (first kept).
 * @return 0, LASH_ENOENT, LASH_EPRUNED, LASH_ETERMINAL, LASH_ECONFLICT,
 *   LASH_EINVAL, LASH_EFULL, LASH_EIO. */
LASH_API int lash_request_abandon(lash_store *s, lash_txn *txn, const char *id,
                                  const char *by, const char *reason,
                                  uint64_t *seq);

/* ------------------------------------------------------------------ leases */

typedef struct lash_lease {
  char process_id[LASH_ID_MAX + 1];
  char owner[LASH_NAME_MAX + 1];
  char incarnation[LASH_NAME_MAX + 1];
  uint64_t token; /* minted at acquire, only ever compared; 0 = none */
  uint64_t fence; /* per process, starts at 1, only grows */
  int64_t expires_at;
  int owner_gone; /* set by claim: 1 when it took over a live lease whose
                     owner is gone (lash_owner_alive 0); not stored */
} lash_lease;

/* Claims the lease of @p id for (owner, incarnation) for @p ttl_ms.
 * Live lease of the same owner+incarnation: expiry extended, token and fence
 * kept. Live lease of another: LASH_EBUSY, *out filled with the holder,
 * unless the backend knows that owner is gone (lash_owner_alive 0): then
 * it counts as lapsed (out->owner_gone = 1). None, released, expired
 * (expires_at <= now) or of a gone owner: acquired with fence =
 * retained + 1 and a fresh token. Terminal rows can be claimed (callers
 * re-check).
 * @return 0, LASH_EBUSY, LASH_ENOENT, LASH_EPRUNED (no lease row created),
 *   LASH_EINVAL, LASH_EFULL, LASH_EIO. */
LASH_API int lash_lease_claim(lash_store *s, lash_txn *txn, const char *id,
                              const char *owner, const char *incarnation,
                              int64_t ttl_ms, lash_lease *out);

/* Extends a held lease to now + ttl_ms (fence check at now). Updates
 * ls->expires_at. @return 0, LASH_ESUPERSEDED (superseded or expired,
 * expires_at == now counts as expired), LASH_EFULL, LASH_EIO. */
LASH_API int lash_lease_renew(lash_store *s, lash_txn *txn, lash_lease *ls,
                              int64_t ttl_ms);

/* Releases where the token matches; a stale release is a silent no-op. The
 * fence is retained. @return 0, LASH_EIO. */
LASH_API int lash_lease_release(lash_store *s, lash_txn *txn,
                                const lash_lease *ls);

/* Reads the lease row of @p id. @return 0 (token 0 if released),
 * LASH_ENOENT (no lease row), LASH_EIO. */
LASH_API int lash_lease_get(lash_store *s, lash_txn *txn, const char *id,
                            lash_lease *out);

/* ------------------------------------------------------- owner liveness */

/* An engine holds its (owner, incarnation) for its life, so that a claimer
 * on the same host can tell at once that a lease's holder died (kill -9)
 * instead of waiting out the TTL (SEMANTICS 3.2). The hold vanishes with
 * the OS process however it ends. A backend without the methods (or a
 * store on another host) answers "unknown" and the TTL stays the rule.
 * lash_owner_hold: 0 held, 1 the backend cannot hold (no such methods),
 * LASH_EINVAL (bad names), LASH_EBUSY (the pair is held already), LASH_EIO
 * (with a message); one hold per store handle (a second replaces the
 * first). */
LASH_API int lash_owner_hold(lash_store *s, const char *owner,
                             const char *incarnation);
LASH_API void lash_owner_release(lash_store *s);
/* 1 alive, 0 gone (held once, its holder died), < 0 unknown. */
LASH_API int lash_owner_alive(lash_store *s, const char *owner,
                              const char *incarnation);

/* ------------------------------------------------------- fenced writes */

/* Records the start of an execution attempt under @p ls (process.started
 * {owner, incarnation, fence, attempt}); status becomes running.
 * Attempt number: the retained one if the retained owner incarnation and
 * fence equal the lease's (a no-op, nothing written), else retained + 1.
 * A row woken from a suspension (lash_suspend) is resumed: resumed = true,
 * the same attempt number; a row still suspended is LASH_EBUSY.
 * @param[out] attempt  the attempt number (may be NULL)
 * @return 0, LASH_ESUPERSEDED, LASH_ETERMINAL, LASH_EEXTERNAL, LASH_EBUSY,
 *   LASH_ESTARTED (owner-bound, started before by another execution; the
 *   message names that owner), LASH_EEXHAUSTED (attempt > max_attempts;
 *   nothing written), LASH_ENOENT, LASH_EPRUNED, LASH_EFULL, LASH_EIO. */
LASH_API int lash_start(lash_store *s, lash_txn *txn, const lash_lease *ls,
                        uint32_t *attempt);
/* lash_start, and on 0 *out is the row's record as the start left it (as
 * lash_get returns it: free it with lash_record_free); on a failure *out is
 * empty. Saves the caller a lash_get of the row it just started. */
LASH_API int lash_start_record(lash_store *s, lash_txn *txn,
                               const lash_lease *ls, uint32_t *attempt,
                               lash_record *out);

/* Fenced append of a user event by the execution holding @p ls.
 * @return as lash_append, plus LASH_ESUPERSEDED. */
LASH_API int lash_append_fenced(lash_store *s, lash_txn *txn,
                                const lash_lease *ls, const char *type,
                                lash_bytes payload, uint64_t *seq);

/* ---- replay keys (issue 9) ----
 * Appends an event with a replay key (SEMANTICS 1.4). @p ls NULL: an
 * unfenced host append (the rules of lash_append); else fenced (the rules
 * of lash_append_fenced; @p id must then be ls->process_id or NULL).
 * @p key NULL: exactly lash_append / lash_append_fenced. Else 1..
 * LASH_NAME_MAX bytes under LASH_RULE_OWNER; a key starting "process:" is
 * reserved (LASH_EINVAL).
 * The key is looked up first, before the terminal and the lease check: a
 * stored event of this row with this key, the same type and a canonically
 * equal payload (MessagePack maps compared as sets of pairs, arrays in
 * order, numbers by value: 1 == 1.0, -0.0 == 0.0; strings and binaries
 * bytewise) -> nothing written, *seq = that event's seq, LASH_APPLIED. The
 * same key with another type or payload -> LASH_ECONFLICT naming the key
 * and the stored event's type and seq; nothing written.
 * Journal types ("process.step", "process.child", "process.sleep",
 * "process.wait", "process.timeout", "process.value") are accepted only
 * fenced (ls != NULL) and with a key that starts "cmd:"; any other
 * "process." type stays refused.
 * @return 0, LASH_APPLIED, LASH_ECONFLICT, and the codes of
 *   lash_append(_fenced). */
LASH_API int lash_append_keyed(lash_store *s, lash_txn *txn, const char *id,
                               const lash_lease *ls, const char *type,
                               lash_bytes payload, const char *key,
                               uint64_t *seq);

/* Enters a wait (process.waiting {wait, since}): status waiting. @p wait is a
 * short description ("signal:approve", "sleep:5000", "process:child-1").
 * Clear with lash_wait_clear (process.resumed): status running. Clearing
 * when not waiting is a no-op. @return 0, LASH_ESUPERSEDED, LASH_ETERMINAL,
 * LASH_EINVAL, LASH_EFULL, LASH_EIO. */
LASH_API int lash_wait_set(lash_store *s, lash_txn *txn, const lash_lease *ls,
                           const char *wait, uint64_t *seq);
LASH_API int lash_wait_clear(lash_store *s, lash_txn *txn, const lash_lease *ls,
                             uint64_t *seq);

/* Leased completion: appends the terminal event process.<status> whose
 * payload is @p outcome, sets status and outcome, clears the wait and
 * releases the lease, atomically. The terminal check precedes the lease
 * check: on a terminal row it writes nothing and returns LASH_APPLIED
 * (same status and payload) or LASH_SUPERSEDED_OUTCOME. Argument checks
 * (status, outcome size) come before both, so a malformed retry gets
 * LASH_EINVAL or LASH_ETOOBIG even on a terminal row.
 * @param status  LASH_COMPLETED, LASH_FAILED, LASH_CANCELLED, LASH_ABANDONED
 * @return 0, LASH_APPLIED, LASH_SUPERSEDED_OUTCOME, LASH_ESUPERSEDED,
 *   LASH_EINVAL, LASH_ETOOBIG, LASH_ENOENT, LASH_EPRUNED, LASH_EFULL,
 *   LASH_EIO. */
LASH_API int lash_complete(lash_store *s, lash_txn *txn, const lash_lease *ls,
                           int status, lash_bytes outcome);

/* Unleased completion by an authority (SEMANTICS 3.5). The terminal
 * event's payload carries the authority beside the outcome. No lease is
 * touched. @return as lash_complete, plus LASH_EAUTHORITY (nothing
 * appended), without LASH_ESUPERSEDED. */
LASH_API int lash_complete_unleased(lash_store *s, lash_txn *txn,
                                    const char *id, int status,
                                    lash_bytes outcome, int authority);

/* ---- issue 13: retries (retry) ---- */
/* Leased failure of the attempt holding @p ls with the failure payload
 * @p outcome. When the row's retry policy has attempts left (and
 * @p fatal is 0, the row is rerunnable and has no cancel request), it
 * appends process.attempt_failed {attempt, error, retry_at} instead of a
 * terminal: status pending, the lease released (fence retained), the row
 * unlisted on the timer index until retry_at (lash_timers_fire wakes it
 * and the next lash_start is attempt + 1); *retry_at (may be NULL) gets
 * the time. Otherwise exactly lash_complete(..., LASH_FAILED, outcome)
 * and *retry_at = 0. A row without a policy of its own (retry.max_attempts
 * 0) is retried under @p fallback (may be NULL: none), its kind's.
 * @return as lash_complete. */
LASH_API int lash_fail_attempt(lash_store *s, lash_txn *txn,
                               const lash_lease *ls, lash_bytes outcome,
                               int fatal, const lash_retry_policy *fallback,
                               int64_t *retry_at);

/* Re-queues a failed row as a new attempt (process.retried {attempt}):
 * status pending, listed, outcome gone; its next start is attempt + 1.
 * @return 0, LASH_ENOENT, LASH_EPRUNED, LASH_EINVAL (not failed: the
 *   message says its status), LASH_EEXTERNAL, LASH_EFULL, LASH_EIO. */
LASH_API int lash_retry(lash_store *s, lash_txn *txn, const char *id,
                        uint64_t *seq);

/* ------------------------------------------ suspension and timers */

/* What wakes a suspended process; at least one member set. */
typedef struct lash_wake {
  const char *event;   /* an event type of this row whose append wakes it
                          ("signal.approve", "shipped"); NULL: none. Any
                          cancel request on the row wakes it too. */
  const char *process; /* the id of another row whose terminal (or prune)
                          wakes it; NULL: none */
  int64_t at;          /* the time that wakes it (ms since the epoch: a
                          sleep's end, a wait's deadline); 0: none */
  /* With event: has_after = 1 says the waiter has seen no event of that
   * type up to seq `after` (its cursor), so one above it means the
   * condition already holds; has_after = 0: one appended since the row's
   * last process.waiting or process.started does. */
  int has_after;
  uint64_t after;
} lash_wake;

/* Suspends the execution holding @p ls at a wait: appends
 * process.suspended {wait, event?, process?, at?} (status waiting, wait =
 * @p wait) and releases the lease (fence retained). The row leaves the
 * worklist (lash_worklist_page, the live index the admitter pages) until
 * its wake fires; the record shows it (suspended = 1, wake_event,
 * wake_process, wake_at); lash_start refuses it (LASH_EBUSY).
 * The wake is written in the transaction of its cause: an append of type
 * wake.event to the row (any path, fenced or not), a cancel request, the
 * terminal or prune of row wake.process, or lash_timers_fire reaching
 * wake.at. Waking appends process.woken {by = "event" | "cancel" |
 * "process" | "timer", seq? (the event that woke it), id? (the process)};
 * the row is listed again (claimable: no lease), suspended = 0, still
 * waiting. The next lash_start of a woken row (after a claim, fence + 1)
 * is a resume: process.started carries resumed = true and the same
 * attempt number (a resume does not count against max_attempts); a start
 * after a crash of the resumed run is attempt + 1 as always.
 * If the wake condition already holds (an event of type wake.event was
 * appended after the row's last process.waiting or process.started, the
 * row has a cancel request, wake.process is terminal, pruned or unknown,
 * wake.at <= now), it writes nothing and returns LASH_APPLIED: the caller
 * keeps the body in memory (its wait resolves there).
 * Owner-bound rows: LASH_EINVAL (they stay in memory: "runs at most
 * once").
 * @return 0, LASH_APPLIED, LASH_ESUPERSEDED, LASH_ETERMINAL, LASH_EINVAL,
 *   LASH_ENOENT, LASH_EPRUNED, LASH_EFULL, LASH_EIO. */
LASH_API int lash_suspend(lash_store *s, lash_txn *txn, const lash_lease *ls,
                          const char *wait, const lash_wake *wake,
                          uint64_t *seq);

/* The earliest wake.at of the suspended rows (the timer index (wake_at,
 * id)); *at = 0 when none. One cheap read. @return 0, LASH_EINVAL,
 * LASH_EIO. */
LASH_API int lash_timers_next(lash_store *s, lash_txn *txn, int64_t *at);
/* Wakes (as above, by = "timer") up to @p limit (0: all) suspended rows
 * whose wake.at <= @p now, in (wake_at, id) order; *fired (may be NULL)
 * gets how many. A row fires exactly once: many workers may call this at
 * once (their writes are serialised; the second finds it woken).
 * @return 0, LASH_EINVAL, LASH_EFULL, LASH_EIO. */
LASH_API int lash_timers_fire(lash_store *s, lash_txn *txn, int64_t now,
                              size_t limit, size_t *fired);

/* Encodes the outcome payload of an abandonment, {writer=, owner=}, as
 * MessagePack into @p buf (at most @p cap bytes; 512 is always enough).
 * @p owner may be NULL. Returns the length, or LASH_EINVAL. */
LASH_API int lash_abandon_payload(int writer, const char *owner, void *buf,
                                  size_t cap);

/* ------------------------------------------------------------- listings */

/* Keyset cursor over the live index of one kind (SEMANTICS 7.1). Zero it to
 * start a scan: the first page captures the current last live position of
 * the kind as an inclusive bound, later pages continue after the last
 * position returned. A position is (priority, creation order, id): the live
 * index order, highest priority first, FIFO by creation within one. */
typedef struct lash_worklist_cursor {
  char last[LASH_ID_MAX + 1];
  char bound[LASH_ID_MAX + 1];
  int started;
  int done; /* set when the scan reached its bound */
  /* ---- issue 13: the live index order (claim) ---- */
  int64_t last_prio, bound_prio;
  uint64_t last_order, bound_order;
} lash_worklist_cursor;

/* Calls fn for up to @p limit live rows of @p kind after the cursor, in
 * live order (priority desc, creation order, id), and advances the cursor.
 * Touches only live rows of that kind.
 * @return the number of rows passed to fn (>= 0), or a negative error. */
LASH_API int lash_worklist_page(lash_store *s, lash_txn *txn, const char *kind,
                                lash_worklist_cursor *cur, size_t limit,
                                lash_record_fn fn, void *ud);

typedef struct lash_list_filter {
  int status;        /* 0 = any; a lash_status */
  int live_only;     /* only pending/running/waiting */
  const char *kind;  /* NULL = any */
  const char *after; /* ids strictly after this one; NULL = from start */
  size_t limit;      /* 0 = no limit */
} lash_list_filter;

/* Calls fn for each matching record in id order. Uses the status index when
 * a status is given. @return the number of rows passed, or an error. */
LASH_API int lash_list(lash_store *s, lash_txn *txn, const lash_list_filter *f,
                       lash_record_fn fn, void *ud);

/* --------------------------------------------------------- change feed */

/* The store-wide change sequence: a cheap point read (one read txn), for
 * noticing writes by other OS processes. 0 on a read error. */
LASH_API uint64_t lash_change_seq(lash_store *s);

typedef struct lash_change_entry {
  uint64_t change_seq;
  const char *id;
  int deleted;                /* 1: pruned (tombstone), 0: upsert */
  const lash_record *rec;     /* the record, if !deleted */
  const lash_tombstone *tomb; /* the tombstone, if deleted */
} lash_change_entry;
typedef int (*lash_change_fn)(void *ud, const lash_change_entry *c);

/* Calls fn for each change strictly after @p cursor in order (the latest
 * change per id), at most @p limit (0 = all); *next receives the cursor to
 * pass next time. @return the number passed, or an error. */
LASH_API int lash_changes_since(lash_store *s, lash_txn *txn, uint64_t cursor,
                                size_t limit, lash_change_fn fn, void *ud,
                                uint64_t *next);

/* ----------------------------------------------------------------- prune */

typedef struct lash_prune_report {
  uint64_t processes;
  uint64_t events;
} lash_prune_report;

/* Removes terminal rows with updated_at < before_ms (and status == @p status
 * if non-zero), with their events and lease rows, leaving tombstones
 * (status label, pruned_at = now, consecutive change seqs in id order).
 * Live rows are never touched. @return 0, LASH_EINVAL, LASH_EFULL,
 * LASH_EIO. */
LASH_API int lash_prune(lash_store *s, lash_txn *txn, int64_t before_ms,
                        int status, lash_prune_report *out);

/* ----------------------------------------------------------------- stats */

typedef struct lash_stats {
  uint64_t count[LASH_STATUS_COUNT + 1]; /* indexed by lash_status */
  uint64_t live;
  uint64_t total;
  uint64_t tombstones;
  uint64_t change_seq;
  uint64_t bytes_used;       /* bytes the store occupies */
  uint64_t bytes_available;  /* bytes it may still grow by before EFULL */
  uint64_t longest_write_us; /* the longest write transaction of this
                                handle so far, begin to commit */
  uint64_t suspended;        /* waiting rows that are suspended (issue 9) */
  int no_lock;               /* a read-only open of a store this user
                                cannot write went without the reader lock:
                                reads are not protected from a writer
                                running meanwhile (lash_store_opts) */
  uint64_t bytes_data;       /* bytes of the pages holding data now (bytes_used
                                less the free pages; PostgreSQL: the relations'
                                sizes); divided by total: bytes per row */
} lash_stats;

LASH_API int lash_store_stats(lash_store *s, lash_txn *txn, lash_stats *out);

/* ----------------------------------------------------------------- check */

/* Walks the whole store and verifies: every record equals the fold of its
 * registration base and event log, field by field; sequences start at 1 and
 * strictly increase; the live, status and change indexes list exactly the
 * rows they should; per-status counters match; every lease row belongs to a
 * record and its fence is >= the latest attempt's fence; terminal rows hold
 * no live lease. fn (may be NULL) is called with a line per problem.
 * @return the number of problems (0 = clean), or a negative error. */
typedef void (*lash_problem_fn)(void *ud, const char *problem);
LASH_API int lash_check(lash_store *s, lash_problem_fn fn, void *ud);
/* lash_check of the store at @p dir, in a child process (fork) that opens
 * it read-only, so that this process never maps a damaged file: a page so
 * damaged that reading it faults kills the child, and that is reported as
 * one more problem ("damage: the check died by signal 7 (Bus error) while
 * reading records at process ID ..."), never a crash of the caller. A
 * store that opening finds damaged (LASH_ECORRUPT: an empty or truncated
 * data file) is one problem. @p opts may be NULL.
 * @return the number of problems, or a negative error (no store, another
 *   format, fork failed: err says which). */
LASH_API int lash_check_isolated(const char *dir, const lash_store_opts *opts,
                                 lash_problem_fn fn, void *ud, char *err,
                                 size_t errlen);

/* Copies every readable row of the store at @p dir (its record and events; its
 * lease is dropped, so a running row is reclaimed after its attempt's lease
 * would have lapsed) into a new store at @p dest, in child processes: a row
 * whose record or an event fails its checksum is skipped, and so is a row whose
 * reading killed a child (the copy then goes on after it). fn (may be
 * NULL) gets a line per row skipped and per signal.
 * @return 0, LASH_EINVAL (dest is the store itself), LASH_ECORRUPT (rows
 *   beyond a damaged page cannot be reached: the report counts what was
 *   copied), or an error opening or writing dest. */
typedef struct lash_salvage_report {
  uint64_t copied;  /* rows written to dest */
  uint64_t skipped; /* rows left out as unreadable */
} lash_salvage_report;
LASH_API int lash_salvage(const char *dir, const char *dest,
                          const lash_store_opts *opts, lash_problem_fn fn,
                          void *ud, lash_salvage_report *out, char *err,
                          size_t errlen);

/* ---- issue 11: kind definitions and live workers in the store (kv) ----
 *
 * Beside the rows (the side table), in the same transactions: each kind's
 * stored definition (the options a program defined it with, a MessagePack
 * map the host encodes), versioned, and an entry per live worker (an
 * engine that defines kinds). */
typedef struct lash_kind_info {
  char kind[LASH_NAME_MAX + 1];
  uint32_t version;   /* 1 for the first definition, +1 per change */
  int64_t updated_at; /* ms, when this version was stored */
  lash_bytes options; /* a MessagePack map: lash_kind_get's valid until the
                         next call on the store, a listing's during fn */
} lash_kind_info;

/* Stores @p options (a MessagePack map) as kind's definition. Equal
 * (canonically) to the stored one: nothing is written. *version (may be
 * NULL) gets the version now stored. @return 1 written (a new version), 0
 * unchanged, LASH_EINVAL (bad kind, not a map, over max_payload), or a
 * storage error. */
LASH_API int lash_kind_put(lash_store *s, lash_txn *txn, const char *kind,
                           lash_bytes options, uint32_t *version);
/* The stored definition of kind: 0 (*out filled), LASH_ENOENT (none; no
 * message), or an error. */
LASH_API int lash_kind_get(lash_store *s, lash_txn *txn, const char *kind,
                           lash_kind_info *out);
typedef int (*lash_kind_fn)(void *ud, const lash_kind_info *k);
/* Calls fn for every stored kind in name order (fn: 0 go on, > 0 stop,
 * < 0 stop with that error). */
LASH_API int lash_kinds_list(lash_store *s, lash_txn *txn, lash_kind_fn fn,
                             void *ud);

/* A live worker: an engine that defines kinds. */
typedef struct lash_worker_info {
  char owner[LASH_NAME_MAX + 1];
  char incarnation[LASH_NAME_MAX + 1];
  int64_t pid;
  char host[256];
  /* lash_worker_put: the kinds it defines */
  const char *const *kinds;
  size_t nkinds;
  /* lash_workers_list: the same as a MessagePack array of strings */
  lash_bytes kinds_mp;
  int64_t started_at;   /* ms */
  int64_t heartbeat_at; /* ms: refreshed in commits it makes anyway */
  int alive;      /* listing: 1 its owner hold is alive, 0 its holder is gone,
                     -1 the backend cannot tell (see lash_owner_alive) */
  int if_writing; /* lash_worker_put in a batch: only when the batch has
                     written something already (a heartbeat riding on a
                     commit made anyway, never a commit of its own) */
} lash_worker_info;

/* Writes (replaces) the entry of (w->owner, w->incarnation). @return 0,
 * 1 (w->if_writing and the batch wrote nothing: nothing written), or an
 * error. */
LASH_API int lash_worker_put(lash_store *s, lash_txn *txn,
                             const lash_worker_info *w);
/* Removes it (absent is 0). */
LASH_API int lash_worker_remove(lash_store *s, lash_txn *txn, const char *owner,
                                const char *incarnation);
typedef int (*lash_worker_fn)(void *ud, const lash_worker_info *w);
/* Calls fn for every worker entry (owner, then incarnation order) with
 * alive filled by the backend's owner_alive (outside the read). */
LASH_API int lash_workers_list(lash_store *s, lash_txn *txn, lash_worker_fn fn,
                               void *ud);

/* ------------------------------------------------------------- migrate */

/* What lash_copy wrote into the target. */
typedef struct lash_copy_report {
  uint64_t rows;                          /* processes (records) copied */
  uint64_t counts[LASH_STATUS_COUNT + 1]; /* of them, per lash_status */
  uint64_t events;                        /* events, with their replay keys */
  uint64_t tombstones;
  uint64_t leases_released; /* leases held at the source, released in the
                               copy (their rows are claimable at once) */
  uint64_t suspended;       /* rows suspended (issue 9) */
  uint64_t change_seq;      /* the target's change_seq after the copy */
  uint64_t side;            /* side-table entries (kind definitions,
                               schedules, unique keys, ...; live workers
                               are not copied: none runs on the target) */
} lash_copy_report;

/* Copies the store @p from into the empty store @p to, of any backend
 * (lash migrate): every record with its events (seqs and replay keys as
 * stored), its lease row released (owner and token cleared, the fence
 * kept, so the next claim on the target fences above every token the
 * source handed out: a running row is re-run on the target), its listing
 * in the live, timer and waiter indexes (a suspended row resumes there),
 * every tombstone, each at its change_seq, the meta counters, and the
 * side table but its live-worker entries. The
 * source is read in one read transaction (stop its workers first); the
 * target is written in batches. Messages are the target's (lash_errmsg
 * of @p to). *out (may be NULL) counts what was written.
 * @return 0; LASH_EINVAL (the same store, @p to read-only, or @p to not
 *   empty: nothing written); LASH_ECORRUPT (a source row cannot be decoded,
 *   or its change index misses rows: what was copied stays); or a storage
 *   error of either (the message says which store, and that the target
 *   holds a partial copy when it does). */
LASH_API int lash_copy(lash_store *from, lash_store *to, lash_copy_report *out);

/* ================================================================ engine
 *
 * The engine runs on a libuv loop: it owns a store, the change hub, the
 * awaiter, a group-commit writer and the driver. Everything below is called
 * on the loop thread only. Host code (the Lua bindings) runs process bodies;
 * the engine never calls into a body except through lash_runner callbacks,
 * and only from loop callbacks (never nested inside a caller's stack).
 */
struct uv_loop_s;
typedef struct lash_engine lash_engine;
typedef struct lash_run lash_run;   /* one admitted execution attempt */
typedef struct lash_wait lash_wait; /* one parked wait */

typedef struct lash_engine_opts {
  lash_store_opts store;
  const char *owner;       /* stable worker identity; NULL: "<host>:<pid>" */
  const char *incarnation; /* per boot; NULL: random */
  unsigned concurrency;    /* bodies running at once; 0 = 64 */
  int64_t lease_ttl_ms;    /* 0 = 30000 */
  int64_t renew_ms;        /* 0 = ttl / 3; must satisfy ttl >= 3 * renew */
  int64_t poll_min_ms;     /* cross-process change poll backoff: 0 = 25 */
  int64_t poll_max_ms;     /* 0 = 1000 */
  int no_fs_wake;          /* 1: no wake source; other OS processes' writes
                              are seen by the poll backoff alone */
  int no_eager_start;      /* 1: lash_engine_register never admits */
  int64_t stall_ms;        /* a body that has not yielded for this long is
                              reported to runner->stall; 0 = 5000, < 0 =
                              never */
  /* Suspension (lash_wait_suspendable): a body parked this long is
   * suspended: 0 = 60000, LASH_SUSPEND_AT_ONCE = at once,
   * LASH_SUSPEND_NEVER = only when over max_cached. */
  int64_t suspend_after_ms;
  uint64_t max_cached;    /* suspendable parked bodies kept in memory
                             (the longest parked goes first); 0 = 10000 */
  struct uv_loop_s *loop; /* NULL: a private loop owned by the engine */
} lash_engine_opts;

#define LASH_SUSPEND_AT_ONCE (-1)
#define LASH_SUSPEND_NEVER (-2)

LASH_API void lash_engine_opts_init(lash_engine_opts *o);

/* @return 0, LASH_EINVAL (bad timings: message says which), and every
 *   lash_store_open error. On failure *out is NULL and err holds a message. */
LASH_API int lash_engine_open(const char *dir, const lash_engine_opts *opts,
                              lash_engine **out, char *err, size_t errlen);
/* Stops admission, drops every run (runner->drop with LASH_ECLOSED, leases
 * released so rerunnable rows can be re-run elsewhere at once), cancels
 * waits silently, closes handles and the store. NULL is a no-op. */
LASH_API void lash_engine_close(lash_engine *e);

LASH_API lash_store *lash_engine_store(lash_engine *e);
LASH_API struct uv_loop_s *lash_engine_loop(lash_engine *e);
LASH_API const char *lash_engine_owner(const lash_engine *e);
LASH_API const char *lash_engine_incarnation(const lash_engine *e);

/* Why runner->stall is called. */
enum {
  LASH_STALL_LOOP = 1,  /* the body has not yielded for stall_ms */
  LASH_STALL_BUDGET = 2 /* the run is past its time budget (timeout_ms) */
};

/* Host callbacks. All run from loop callbacks, except stall. */
typedef struct lash_runner {
  void *ud;
  /* A row was claimed and its start recorded: begin the body. Return 0, or
   * a negative code for an infrastructure failure (the lease is released,
   * no terminal is written, the run is freed). */
  int (*start)(void *ud, lash_run *run);
  /* The engine takes @p run away without a terminal (lease lost:
   * LASH_ESUPERSEDED; engine closing: LASH_ECLOSED). The host discards the
   * body; the run pointer is invalid after the call. */
  void (*drop)(void *ud, lash_run *run, int rc);
  /* Event sink (may be NULL): every event appended through this engine or
   * seen through the change feed, after its durable write, in seq order per
   * process. Best effort; data valid during the call only. */
  void (*event)(void *ud, const lash_event *ev);
  /* May be NULL. The body of @p run should stop (@p why LASH_STALL_LOOP:
   * it has been executing for @p ms without yielding; LASH_STALL_BUDGET:
   * its time budget of @p ms ran out). Called from the engine's heartbeat
   * thread while the loop is inside the body (only for runs the host
   * marked with lash_run_busy), or from a loop callback for a budget that
   * ran out while the body was parked (its wait then ends with
   * LASH_ETIMEDOUT). Only flag the body here (lua_sethook is safe, as from
   * a signal handler): call nothing of the engine or the store. */
  void (*stall)(void *ud, lash_run *run, int why, int64_t ms);
} lash_runner;
LASH_API void lash_engine_set_runner(lash_engine *e, const lash_runner *r);

/* Declares that this engine runs rows of @p kind (the driver only claims
 * kinds declared here). Idempotent. @return 0, LASH_EINVAL. */
LASH_API int lash_engine_define(lash_engine *e, const char *kind);
/* The body time budget of the declared @p kind (0: none), for starts that
 * carry no timeout_ms of their own: counted from each attempt's start;
 * past it the lease is no longer renewed and runner->stall is called
 * (LASH_STALL_BUDGET). @return 0, LASH_EINVAL (kind not declared, ms < 0). */
LASH_API int lash_engine_set_timeout(lash_engine *e, const char *kind,
                                     int64_t timeout_ms);
/* ---- issue 13 (retry) ----
 * The retry policy of the declared @p kind (NULL: none), for rows that
 * carry none of their own (lash_def.retry): a run of such a row fails
 * under it (lash_fail_attempt). @return 0, LASH_EINVAL (not declared, a
 * bad policy). */
LASH_API int lash_engine_set_retry(lash_engine *e, const char *kind,
                                   const lash_retry_policy *p);
/* issue 13: at most @p n starts of the declared @p kind per @p per_ms
 * across every worker and host (lash_rate_take in the claim's
 * transaction; an empty bucket arms a loop timer for the next token).
 * n 0: no limit. @return 0, LASH_EINVAL (kind not declared, bad numbers). */
LASH_API int lash_engine_set_rate(lash_engine *e, const char *kind, uint32_t n,
                                  int64_t per_ms);

/* ------------------------------------------------------ group commit */

/* A write to perform inside the engine's shared transaction. It calls
 * registry functions with the given txn and returns their result. */
typedef int (*lash_write_fn)(lash_store *s, lash_txn *txn, void *ud);
/* Called once after the commit (or failure) of a queued write, from a loop
 * callback: rc is the write's result, or the commit error when the write
 * succeeded but its commit failed. */
typedef void (*lash_done_fn)(void *ud, int rc);

/* Queues @p fn for the shared transaction flushed at the end of this loop
 * turn; @p done runs after that commit. Nothing is reported durable (and
 * no waiter is woken) before the commit. @return 0, LASH_ECLOSED. */
LASH_API int lash_engine_write(lash_engine *e, lash_write_fn fn, void *ud,
                               lash_done_fn done);
/* lash_engine_write for a write that must outlive a lost connection: when
 * its transaction fails with an EIO the store gets over by itself
 * (lash_store_reopens), it is queued again, in order, for the transaction
 * after the backoff, instead of @p done getting LASH_EIO. @p fn must be
 * safe to run again (the failed run wrote nothing). The engine writes
 * completions so, the Lua bindings a coroutine's writes (a body's journal
 * stays in order). Elsewhere it is lash_engine_write. */
LASH_API int lash_engine_write_again(lash_engine *e, lash_write_fn fn, void *ud,
                                     lash_done_fn done);
/* Runs @p fn now in one transaction with everything already queued and
 * commits before returning (inside lash_engine_batch_begin: joins the open
 * batch, committed by batch_end). @return fn's result or the commit
 * error. Queued done callbacks still run later from the loop. */
LASH_API int lash_engine_write_sync(lash_engine *e, lash_write_fn fn, void *ud);
/* Opens an explicit atomic batch for write_sync calls (eng:batch). While
 * it is open the loop must not run. @return 0, LASH_EINVAL (one open). */
LASH_API int lash_engine_batch_begin(lash_engine *e);
/* Commits (commit != 0) or aborts the explicit batch. @return 0 or the
 * commit error. */
LASH_API int lash_engine_batch_end(lash_engine *e, int commit);

/* ------------------------------------------------------------- runs */

/* The record as it was when the run started (input, kind, id, attempt). */
LASH_API const lash_record *lash_run_record(const lash_run *r);
/* The current lease (renewed by the engine); use it for fenced writes. */
LASH_API const lash_lease *lash_run_lease(const lash_run *r);
LASH_API lash_engine *lash_run_engine(const lash_run *r);
/* 1 once a cancellation request for this row has been seen. */
LASH_API int lash_run_cancelled(const lash_run *r);
/* A slot for the host's own pointer (the body's coroutine). */
LASH_API void *lash_run_data(const lash_run *r);
LASH_API void lash_run_set_data(lash_run *r, void *data);
/* The host enters (@p on 1) or leaves (0) the body of @p r: the watchdog
 * measures stalls (runner->stall) between the two. Cheap (an uncontended
 * mutex). */
LASH_API void lash_run_busy(lash_run *r, int on);

/* Ends the run: queues the leased completion (status COMPLETED, FAILED,
 * CANCELLED) with @p outcome (copied), frees its slot, and frees the run
 * after the commit. @return 0, LASH_EINVAL (bad status), LASH_ETOOBIG (the
 * run is still live: finish it again with a smaller outcome). */
LASH_API int lash_run_finish(lash_run *r, int status, lash_bytes outcome);
/* ---- issue 13 (retry) ----
 * A failed run (status LASH_FAILED) goes through lash_fail_attempt: under
 * the row's retry policy it waits for its next attempt. lash_run_fail_fatal
 * ends it failed at once whatever the policy (lash.fatal). */
LASH_API int lash_run_fail_fatal(lash_run *r, lash_bytes outcome);

/* ------------------------------------------------------------ waits */

/* Wait results are delivered to a lash_wait_fn exactly once, from a loop
 * callback: rc 0 (resolved: read the result from the wait), LASH_ETIMEDOUT,
 * LASH_ECANCELED (the run's row got a cancellation request while parked),
 * LASH_ENOENT, LASH_EIO. The callback owns @p w and frees it with
 * lash_wait_free (after reading the result). */
typedef void (*lash_wait_fn)(void *ud, lash_wait *w, int rc);

/* Every await below:
 * - point-reads first: if already satisfied it returns 1 and *out is a
 *   resolved wait (read, then lash_wait_free; cb is never called);
 * - otherwise subscribes to the hub BEFORE re-reading (no lost wakeup),
 *   returns 0 and calls cb later exactly once; re-reads on hub bumps and
 *   on a backoff timer (poll_min_ms doubling to poll_max_ms, reset on a
 *   bump) which catches writes by other OS processes;
 * - on error returns it (negative) and never calls cb.
 * @p run: the run whose body waits, or NULL for plain host code. A run
 * gives its concurrency slot back while parked and retakes one before cb
 * (so a parent awaiting its child finishes at concurrency 1); a run whose
 * row gets a cancellation request sees cb(LASH_ECANCELED).
 * @p timeout_ms: < 0 waits forever. */
LASH_API int lash_await_terminal(lash_engine *e, lash_run *run, const char *id,
                                 int64_t timeout_ms, lash_wait_fn cb, void *ud,
                                 lash_wait **out);
/* First event of @p id with seq > after_seq and exactly @p type ("*": of
 * any type). Does not stop on terminal rows (bound it with a timeout). */
LASH_API int lash_await_event(lash_engine *e, lash_run *run, const char *id,
                              const char *type, uint64_t after_seq,
                              int64_t timeout_ms, lash_wait_fn cb, void *ud,
                              lash_wait **out);
/* A timer (ctx:sleep). Never resolves at once; returns 0 or an error. */
LASH_API int lash_await_sleep(lash_engine *e, lash_run *run, int64_t ms,
                              lash_wait_fn cb, void *ud, lash_wait **out);
/* Says that the run's body can be suspended at the parked wait @p w: a
 * re-run replays it up to this wait (its journal), so the engine may,
 * after suspend_after_ms or when over max_cached, write lash_suspend
 * (@p label is the wait's description), drop the run (runner->drop with
 * rc 0) and leave the rest to the store's wake. Only waits the store can
 * wake qualify: the outcome of a row, an event type of the run's own row,
 * a sleep, each with its deadline; never an owner-bound row's.
 * @return 0, LASH_EINVAL (not a parked wait of a run, or one that does not
 *   qualify: it just stays in memory), LASH_ENOMEM. */
LASH_API int lash_wait_suspendable(lash_wait *w, const char *label);

/* A wait that the host resolves itself (lash_wait_resolve): a body of
 * @p run waiting for its own write to commit gives its concurrency slot
 * back meanwhile, as in any wait, so that more bodies join the next group
 * commit; cb comes (from the pump) once the run has a slot again. It is
 * not ended by a cancellation or a time budget (the write decides). @p run
 * is required. @return 0 (pending), LASH_EINVAL, LASH_ECLOSED,
 * LASH_ECANCELED, LASH_ENOMEM. */
LASH_API int lash_await_manual(lash_engine *e, lash_run *run, lash_wait_fn cb,
                               void *ud, lash_wait **out);
/* Resolves a lash_await_manual wait with @p rc (its cb follows from the
 * pump). A wait that is not parked any more (detached: its run went) is
 * left alone. */
LASH_API void lash_wait_resolve(lash_wait *w, int rc);

/* An external backend that owns terminal waits (SEMANTICS 4, "attach"):
 * when installed, lash_await_terminal still point-reads first (terminal,
 * pruned and unknown rows never reach the backend), then hands a live row's
 * wait to the backend instead of the hub and backoff. Event waits and
 * sleeps always stay local. */
typedef struct lash_attach {
  void *ud;
  /* Takes over the wait @p w for @p id. Return 0, then call
   * lash_attach_resolve(w, rc) exactly once, from a loop callback, unless
   * cancel(ud, w) came first; or return a negative error, which
   * lash_await_terminal returns as-is (no polling fallback). */
  int (*await_terminal)(void *ud, const char *id, lash_wait *w);
  /* @p w ended without the backend (timeout, cancellation, freed, engine
   * closed): forget it; it must not be resolved. */
  void (*cancel)(void *ud, lash_wait *w);
} lash_attach;
/* Installs (or, with NULL, removes) the attach backend. */
LASH_API void lash_engine_set_attach(lash_engine *e, const lash_attach *a);
/* The backend's answer for @p w: 0 when the row is terminal (the engine
 * re-reads the record; a row still live then is LASH_EIO), or an error,
 * delivered to the waiter as-is. */
LASH_API void lash_attach_resolve(lash_wait *w, int rc);

/* Results of a resolved wait (valid until lash_wait_free):
 * terminal waits: the record (with outcome), or, when the id was pruned,
 * NULL from lash_wait_record and the tombstone from lash_wait_tombstone;
 * event waits: the event. */
LASH_API const lash_record *lash_wait_record(const lash_wait *w);
LASH_API const lash_tombstone *lash_wait_tombstone(const lash_wait *w);
LASH_API const lash_event *lash_wait_event(const lash_wait *w);
/* Frees a resolved wait, or cancels a parked one silently (cb is then
 * never called). NULL is a no-op. */
LASH_API void lash_wait_free(lash_wait *w);

/* ------------------------------------------------------------ driving */

typedef struct lash_drive_report {
  unsigned admitted;   /* rows claimed and started by this pass */
  unsigned deferred;   /* busy (foreign lease, already running here),
                          external, left to their owner */
  int coalesced;       /* a scan was in flight: this call only asked for a
                          rescan */
  unsigned taken_over; /* rows whose live lease was taken over because its
                          owner is gone (lash_owner_alive) */
} lash_drive_report;

/* claim_and_run_pending: pages through the live rows of the declared kinds
 * (page = free slots clamped to [1, 256]), and in one transaction claims
 * and records the start of each row this owner can run; bodies start from
 * the loop afterwards (runner->start). Handles recovery per disposition:
 * rerunnable past max_attempts -> abandoned (engine_gave_up); owner_bound
 * started elsewhere -> left (or abandoned reconciled_request when an
 * abandon request exists); external -> deferred (abandoned reconciled if
 * requested). Admission, not completion. @return 0 or an error of the
 * page read. */
LASH_API int lash_engine_drive(lash_engine *e, lash_drive_report *out);

/* Inside a write fn of this engine (or an explicit batch): if @p id is a
 * live row of a kind this engine declared, not running here, and a slot is
 * free, claims it and records its start in @p txn, so a registration and
 * its start share one commit; the body starts from the loop after the
 * commit (nothing starts if the commit fails). @return 1 admitted,
 * 0 not admitted (busy, undeclared kind, no slot, ...), or a storage
 * error (the transaction is then poisoned). */
LASH_API int lash_engine_admit(lash_engine *e, lash_txn *txn, const char *id);

/* Registers @p def (lash_register) inside a write fn of this engine (or an
 * explicit batch) and, when the row was created, its kind is declared
 * here and the engine starts eagerly (the default; no_eager_start turns it
 * off), admits it in the same @p txn (lash_engine_admit). @p created and
 * @p out as lash_register; @p admitted (may be NULL) is set to 1 when the
 * row was admitted. @return as lash_register. */
LASH_API int lash_engine_register(lash_engine *e, lash_txn *txn,
                                  const lash_def *def, int *created,
                                  lash_record *out, int *admitted);

enum {
  LASH_RUN_DEFAULT = 0, /* until lash_engine_stop */
  LASH_RUN_ONCE,        /* one loop turn (blocks for events if none ready) */
  LASH_RUN_NOWAIT,      /* one loop turn without blocking */
  LASH_RUN_UNTIL_IDLE   /* until lash_engine_idle() */
};
/* Runs the loop, driving when rows change (hub, change feed of other OS
 * processes, lapse timers). @return 0, LASH_EINVAL (bad mode, already
 * running, a batch open), LASH_ECLOSED (the engine is closing),
 * LASH_ECANCELED (lash_engine_interrupt). Not re-entrant except through
 * lash_engine_run_until. */
LASH_API int lash_engine_run(lash_engine *e, int mode);
/* Runs the loop until *flag becomes non-zero (used by plain-code awaits).
 * Re-entrant: may be called from plain code while no body runs.
 * @return 0, LASH_EINVAL (no flag, a batch open), LASH_ECLOSED (the engine
 * is closing, or the loop died: nothing alive could set the flag),
 * LASH_ECANCELED (lash_engine_interrupt). */
LASH_API int lash_engine_run_until(lash_engine *e, volatile int *flag);
/* The first storage error (LASH_EFULL, LASH_EIO, LASH_EPANIC, LASH_ENOMEM,
 * LASH_ECORRUPT) a write of the engine met, or 0; *msg (may be NULL) gets
 * its message. lash_engine_run(DEFAULT) returns it: the engine cannot go
 * on (a worker should log it and exit non-zero). */
LASH_API int lash_engine_storage_error(lash_engine *e, const char **msg);
/* Asks lash_engine_run(DEFAULT) to return after the current turn. Outside
 * a lash_engine_run (a host running a shared loop, luv) it stops nothing:
 * the host's uv_run is not the engine's to end. */
LASH_API void lash_engine_stop(lash_engine *e);
/* Makes the lash_engine_run or lash_engine_run_until in progress (or the
 * next one) return LASH_ECANCELED after the current loop turn, leaving
 * every wait in place. For a host's SIGINT handler run on the loop (the
 * REPL's Ctrl-C). */
LASH_API void lash_engine_interrupt(lash_engine *e);
/* Stops (paused != 0) or resumes admission: a paused engine claims no new
 * rows (drive, lash_engine_admit), while running and parked bodies go on.
 * For a worker's graceful shutdown. */
LASH_API void lash_engine_pause(lash_engine *e, int paused);
/* 1 when no body of this engine runs or is ready, no write is queued,
 * nothing is claimable by it, and no timer of its waits is pending. */
LASH_API int lash_engine_idle(lash_engine *e);

/* Owner drain (SEMANTICS 3.7): abandons (writer owner_drain) the non-
 * terminal owner_bound rows started by this owner. @return 0 or error. */
LASH_API int lash_engine_drain(lash_engine *e, unsigned *abandoned);

/* What lash_engine_reconcile did. */
enum {
  LASH_RECONCILE_NOTHING = 0, /* no request it may honour now (none, the row
                                 is terminal, or a rerunnable row that will
                                 be re-run and see its cancel request) */
  LASH_RECONCILE_ENDED = 1,   /* ended now: abandoned or cancelled */
  LASH_RECONCILE_HELD = 2     /* its execution may be live: the lease is
                                 held (by *holder) or it runs here */
};
/* Honours the abandon or cancel request of row @p id now if no execution
 * of it is live (SEMANTICS 3.7; issue 8): its lease is free, lapsed, or
 * held by a gone owner (lash_owner_alive). An abandon request ends it
 * abandoned (writer reconciled_request, naming the started owner); a
 * cancel request ends it cancelled when it will not run again
 * (owner_bound and started, or rerunnable out of attempts). Never starts a
 * body, also for rows of kinds this engine does not run; any engine (the
 * CLI's) may call it. @param[out] result  LASH_RECONCILE_*
 * @param[out] holder  the lease holder when HELD (may be NULL)
 * @return 0, LASH_ENOENT, LASH_EPRUNED, LASH_ECLOSED, LASH_EFULL, LASH_EIO. */
LASH_API int lash_engine_reconcile(lash_engine *e, const char *id, int *result,
                                   lash_lease *holder);

/* Arms the emergency stop, for a host's SIGINT/SIGTERM handler
 * (async-signal-safe: an atomic store and a sem_post). If @p grace_ms
 * later the loop is still inside one body (it has not yielded for 250 ms,
 * so it cannot answer the signal), the heartbeat thread releases every
 * lease this engine holds (completing its owner_bound rows as abandoned,
 * writer owner_drain, as at drain), prints one line to stderr naming the
 * owner and the stuck process, and ends the process with _exit(1). (A
 * body stuck inside a write batch keeps the store locked: after 1 s the
 * thread exits without writing, and the leases lapse by their TTL.) A
 * second call can only bring the deadline closer (grace 0: at once).
 * Closing the engine disarms it. */
LASH_API void lash_engine_emergency(lash_engine *e, int64_t grace_ms);

typedef struct lash_engine_stats {
  uint64_t running;       /* bodies holding a slot */
  uint64_t parked;        /* bodies parked in a wait */
  uint64_t waits;         /* parked waits (bodies and host) */
  uint64_t backoff_reads; /* awaiter re-reads triggered by the backoff timer */
  uint64_t hub_wakes;     /* awaiter re-reads triggered by the hub */
  uint64_t commits;       /* shared transactions committed */
  uint64_t drives;        /* drive passes */
  uint64_t feed_changes;  /* changes by other OS processes seen via the feed */
  uint64_t taken_over;    /* rows taken over from owners that are gone */
  uint64_t owners_gone;   /* gone owners its probe noticed */
  int owner_held;         /* it holds its owner lock (lash_owner_hold) */
  uint64_t suspended;     /* runs it suspended (their bodies let go) */
  uint64_t timers_fired;  /* suspended rows its timer woke */
} lash_engine_stats;
LASH_API void lash_engine_get_stats(lash_engine *e, lash_engine_stats *out);

/* ---- issue 13: cron schedules (cron) ---- */

/* A parsed cron spec (lash_cron_parse). Bit i of a field's mask set: value
 * i matches (sec, min 0..59; hour 0..23; dom 1..31; mon 1..12; dow 0..6,
 * Sunday 0). every_ms > 0: an `@every` interval instead of the fields. */
typedef struct lash_cron {
  uint64_t sec, min;
  uint32_t hour, dom;
  uint16_t mon;
  uint8_t dow;
  uint8_t flags; /* LASH_CRON_DOM_STAR, LASH_CRON_DOW_STAR */
  int64_t every_ms;
} lash_cron;
enum { LASH_CRON_DOM_STAR = 1, LASH_CRON_DOW_STAR = 2 };

/* Parses @p spec: five fields (minute hour day-of-month month day-of-week),
 * or six with a leading seconds field; each a list of `*`, N, N-M, with an
 * optional /STEP (`N/STEP` runs to the field's end); names JAN..DEC and
 * SUN..SAT (any case), 7 is Sunday too; the aliases @yearly @annually
 * @monthly @weekly @daily @midnight @hourly, and `@every D` (D: one or more
 * NUMBER UNIT, units ms s m h d; at least 1s). The day rule is Vixie
 * cron's: when both day fields are restricted (neither starts with `*`) a
 * day matches either, else both. A spec no date can match (`0 0 30 2 *`)
 * is an error. @return 0, or LASH_EINVAL with a message naming the field
 * and the bad text in @p err (@p errlen bytes, may be 0). */
LASH_API int lash_cron_parse(const char *spec, lash_cron *out, char *err,
                             size_t errlen);
/* Checks the time zone name @p tz (NULL or "" is UTC): 0, or LASH_EINVAL
 * with a message in @p err. */
LASH_API int lash_cron_tz_check(const char *tz, char *err, size_t errlen);
/* The first tick of @p c strictly after @p after_ms (epoch ms) in the time
 * zone @p tz (an IANA name of the tz database; NULL or "" is UTC) into
 * *next_ms. Ticks are whole seconds of local wall time; `@every` ticks are
 * the multiples of the interval since the epoch (no time zone). Daylight
 * saving: a local time that does not exist (the clock jumps over it) ticks
 * once at the first instant after the jump; a local time that exists twice
 * (the clock falls back) ticks once, at its first occurrence.
 * @return 0, LASH_EINVAL (an unknown tz: lash_cron_tz_check says why),
 * LASH_ENOENT (no tick before the year 9999). */
LASH_API int lash_cron_next(const lash_cron *c, const char *tz,
                            int64_t after_ms, int64_t *next_ms);
/* Formats @p ms as ISO 8601 UTC into @p buf ("2026-12-01T14:00:00Z", with
 * ".mmmZ" when ms is not a whole second); at least 32 bytes. Returns buf. */
LASH_API char *lash_cron_iso(int64_t ms, char *buf, size_t cap);

/* Durable schedules (registry/schedules.c): a named cron spec that starts
 * one child of its kind per tick, exactly once across every engine of the
 * store: the child `NAME@TICK` (TICK in ISO 8601 UTC, lash_cron_iso). */
#define LASH_SCHEDULE_NAME_MAX LASH_NAME_MAX
/* What a tick does with the ticks that passed while no engine ran. */
enum {
  LASH_CATCHUP_SKIP = 0, /* none: only ticks on time (within their grace) */
  LASH_CATCHUP_ONE = 1,  /* the latest one that passed */
  LASH_CATCHUP_ALL = 2   /* each one (at most 256 per write, then on) */
};
LASH_API const char *lash_catchup_name(int catch_up); /* NULL: unknown */
LASH_API int lash_catchup_parse(const char *name);    /* -1: unknown */

typedef struct lash_schedule {
  const char *name;      /* 1..LASH_SCHEDULE_NAME_MAX bytes, no control
                            characters */
  const char *spec;      /* lash_cron_parse */
  const char *kind;      /* of its children */
  lash_bytes input;      /* of its children (<= max_payload) */
  const char *tz;        /* NULL or "": UTC */
  int catch_up;          /* LASH_CATCHUP_* */
  int disposition;       /* of its children (0: rerunnable) */
  uint32_t max_attempts; /* of its children (0: unlimited) */
  int64_t timeout_ms;    /* of its children (0: none) */
  /* kept by the store (ignored by lash_schedule_put) */
  int64_t next_at;    /* the next tick due (epoch ms) */
  int64_t last_at;    /* the last tick a child was started for, 0: none */
  uint64_t started;   /* children started */
  int64_t created_at; /* first put */
  int64_t updated_at; /* last put that changed it */
  void *priv_;        /* owned memory (lash_schedule_free) */
} lash_schedule;

/* What lash_schedule_put did. */
enum {
  LASH_SCHEDULE_CREATED = 1,
  LASH_SCHEDULE_SAME = 2,    /* an equal schedule of that name: no write */
  LASH_SCHEDULE_REPLACED = 3 /* another definition replaced: its next tick
                                counts from now */
};

/* Adds (or replaces) schedule @p sc (name, spec, kind, input, tz, catch_up,
 * disposition, max_attempts, timeout_ms); its first tick is the first
 * after now. *how (may be NULL) gets a LASH_SCHEDULE_* result. A change
 * moves the store's change seq (engines of other processes re-read).
 * @return 0, LASH_EINVAL (the message names the field: name, spec, tz,
 *   kind, catch_up, disposition, ...; nothing written), LASH_ETOOBIG,
 *   LASH_EFULL, LASH_EIO. */
LASH_API int lash_schedule_put(lash_store *s, lash_txn *txn,
                               const lash_schedule *sc, int *how);
/* Reads schedule @p name into *out (free with lash_schedule_free).
 * @return 0, LASH_ENOENT (with a message), LASH_EINVAL, LASH_EIO. */
LASH_API int lash_schedule_get(lash_store *s, lash_txn *txn, const char *name,
                               lash_schedule *out);
/* Removes schedule @p name (its children stay). @return 0, LASH_ENOENT
 * (none of that name; with a message), LASH_EIO. */
LASH_API int lash_schedule_delete(lash_store *s, lash_txn *txn,
                                  const char *name);
/* Calls fn for each schedule in name order (data valid during the call
 * only; fn returns non-zero to stop). @return 0, or fn's or a storage
 * error. */
typedef int (*lash_schedule_fn)(void *ud, const lash_schedule *sc);
LASH_API int lash_schedules_list(lash_store *s, lash_txn *txn,
                                 lash_schedule_fn fn, void *ud);
LASH_API void lash_schedule_free(lash_schedule *sc); /* NULL-safe */
/* The tick of schedule @p name at @p now, in one write: re-reads it, and
 * if its next tick is due (next_at <= now) registers the children its
 * catch_up asks for (lash_register: idempotent per id, so a tick started
 * twice makes one child) and advances next_at past now (catch_up all: past
 * the last tick started, at most 256 each call). *started (may be NULL):
 * children this call created. @return 0 (also when not due), LASH_ENOENT
 * (no such schedule), LASH_EINVAL, storage errors. */
LASH_API int lash_schedule_tick(lash_store *s, lash_txn *txn, const char *name,
                                int64_t now, size_t *started);
/* The engine re-reads the schedules at its loop's next turn: call it after
 * a put or delete through this engine's store (puts of other processes
 * reach it through the change feed). NULL is a no-op. */
LASH_API void lash_engine_schedules_changed(lash_engine *e);
/* The next @p n ticks of @p sc after @p after_ms into @p out; returns how
 * many (fewer when the spec has no more), or LASH_EINVAL. */
LASH_API int lash_schedule_ticks(const lash_schedule *sc, int64_t after_ms,
                                 int64_t *out, int n);

/* ---- issue 14: the per-kind summary of metrics and the UI (web) ---- */

/* Upper bounds (ms) of the duration histograms' buckets; a last bucket
 * (+Inf) follows them. */
#define LASH_SUMMARY_BOUNDS                                                    \
  {                                                                            \
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,       \
        300000, 3600000                                                        \
  }
#define LASH_SUMMARY_NBOUNDS 15

typedef struct lash_hist {
  uint64_t bucket[LASH_SUMMARY_NBOUNDS + 1]; /* not cumulative; [N]: +Inf */
  uint64_t count;
  double sum_ms;
} lash_hist;

/* What one walk of the rows says about one kind. */
typedef struct lash_kind_summary {
  const char *kind;
  uint64_t count[LASH_STATUS_COUNT + 1]; /* indexed by lash_status */
  int64_t oldest_pending_at; /* created_at of its oldest pending row; 0 */
  lash_hist duration;        /* terminal rows: created -> last event */
  lash_hist attempt;         /* terminal rows: last attempt's start -> end */
  uint64_t attempts;         /* sum of the latest attempt numbers */
} lash_kind_summary;
typedef int (*lash_kind_summary_fn)(void *ud, const lash_kind_summary *k);

/* Walks every row once (one read transaction when @p txn is NULL) and
 * calls fn for each kind (in name order) with its counts and histograms.
 * @return the number of kinds, or an error. */
LASH_API int lash_summarize(lash_store *s, lash_txn *txn,
                            lash_kind_summary_fn fn, void *ud);
/* ---- issue 14: the observer hook (obs) ---- */
/* What an engine tells its host about (worker logs; not events). */
typedef enum lash_obs_type {
  LASH_OBS_FINISHED = 1, /* a body ended: status, payload = its outcome */
  LASH_OBS_LEASE_LOST,   /* a held lease was refused renewal: run dropped */
  LASH_OBS_TAKEN_OVER,   /* a row claimed from another owner's run */
  LASH_OBS_SUSPENDED,    /* a parked body was suspended */
  LASH_OBS_SUMMARY       /* every summary_ms: count = suspensions since */
} lash_obs_type; /* (a storage error ends lash_engine_run: the host says it) */

typedef struct lash_observation {
  int type;           /* lash_obs_type */
  const char *id;     /* the row (NULL for SUMMARY) */
  const char *kind;   /* its kind, or NULL */
  uint32_t attempt;   /* its attempt number, or 0 */
  int status;         /* FINISHED: completed, failed or cancelled */
  lash_bytes payload; /* FINISHED: the outcome (MessagePack) */
  const char *owner;  /* TAKEN_OVER: the previous owner, or NULL */
  int owner_gone;     /* TAKEN_OVER: 1 its process is gone, 0 its lease
                         lapsed (the TTL) */
  uint64_t count;     /* SUMMARY: suspensions in the period */
  int64_t period_ms;  /* SUMMARY: the period */
  int64_t retry_at;   /* FINISHED, failed: > 0 when the store answered the
                         failure with a retry at this time (ms; the row
                         is not terminal) */
} lash_observation;

/* Called on the loop thread; pointers are valid during the call only. */
typedef void (*lash_observe_fn)(void *ud, const lash_observation *ob);
/* Sets (fn NULL: clears) the engine's one observer. summary_ms > 0 also
 * reports, every summary_ms, the suspensions of the period (when any). */
LASH_API void lash_engine_set_observer(lash_engine *e, lash_observe_fn fn,
                                       void *ud, int64_t summary_ms);

#ifdef __cplusplus
}
#endif
#endif /* LASH_H */
