/* lash_backend.h - the registry backend: where a store keeps its rows.
 *
 * The registry (lash.h's store, records, events, leases, listings, prune,
 * check) is written once, above this table: argument validation, the
 * record/event/lease/tombstone codec, the fold, fencing, first-writer-wins,
 * tombstone floors, the per-transaction write-back cache, the change list
 * for the commit hook, and the store-wide change_seq and per-status
 * counters. A backend only stores and scans what the rules hand it; it
 * never decodes a record (audit asks the core to, through lash_baudit).
 *
 * The shape is SQLite's sqlite3_io_methods and Tarantool's engine_vtab: a
 * versioned, named table of function pointers, and a backend struct whose
 * first member points at it. The embedded default is "lmdb"
 * (core/src/lmdb/); docs/backend.md argues why a PostgreSQL backend fits
 * the same table.
 *
 * Conventions:
 * - Every method returns 0 or a negative LASH_E* code, and on failure sets
 *   a message with lash_backend_fail (naming the store and what it was
 *   doing). LASH_EPANIC makes the store refuse every later write.
 * - Bytes handed to a backend are borrowed for the call. Bytes a backend
 *   hands out (load, scan items) stay valid until the next write in that
 *   transaction or its end, whichever comes first.
 * - Ids are 1..LASH_ID_MAX bytes without NUL, ordered bytewise (memcmp,
 *   shorter first on a tie); every scan of ids returns them in that order.
 * - One write transaction at a time per handle; read transactions may
 *   nest (a listing callback that reads).
 */
#ifndef LASH_BACKEND_H
#define LASH_BACKEND_H

#include "lash.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this table. Version 2 added the owner-liveness methods
 * and grow at its end. Version 3 changes the shape of lash_bevent (replay
 * keys) and lash_bindex (suspension: listed, wake_at, awaits) and adds
 * methods at the end. Version 4 adds the side table (kv_get, kv_put,
 * LASH_SCAN_KV and lash_bscan.ns): only a version 4 table is accepted (the
 * in-tree backends). */
#define LASH_BACKEND_VERSION 4
#define LASH_BACKEND_VERSION_MIN 4

typedef struct lash_backend_methods lash_backend_methods;
typedef struct lash_backend lash_backend; /* one open store of a backend */
typedef struct lash_btxn lash_btxn;       /* a backend transaction */

/* The head of every backend's store struct (its first member). */
struct lash_backend {
  const lash_backend_methods *m;
  /* Set by the core right after open: where lash_backend_fail writes. */
  char *errmsg;
  size_t errcap;
  /* Set (by lash_backend_fail on LASH_EPANIC, or by the core after a
   * failed commit) when the store must be reopened. A backend that
   * reopens by itself (PostgreSQL reconnecting) clears it once it has. */
  int panicked;
  /* Set by the core while it begins a write that its caller holds open
   * across code of its own (lash_txn_begin_held): a backend whose server
   * ends idle writes (lash_store_opts.write_idle_ms) must not end it. */
  int held;
  /* Set by a backend that reopens by itself (PostgreSQL reconnects): a
   * write after `panicked` goes to its begin, which reconnects or fails,
   * instead of being refused with LASH_EPANIC until the store reopens. */
  int reopens;
};

/* Writes the message of a failure into @p b (if it has a buffer) and
 * returns @p rc; LASH_EPANIC also sets b->panicked. */
LASH_API int lash_backend_fail(lash_backend *b, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------ rows */

/* Where a row is listed: the status index, the live index of its kind
 * (exactly when `listed`) and the change index (its change_seq). */
typedef struct lash_bindex {
  int exists; /* 0: no row (before registration) */
  int status; /* lash_status */
  uint64_t change_seq;
  /* ---- version 3: suspension and timers (B) ---- */
  int listed;        /* in the live index of its kind: exists, live and not
                        suspended (the core computes it) */
  int64_t wake_at;   /* > 0: in the timer index (wake_at, id) */
  lash_bytes awaits; /* data != NULL: in the waiter index (awaits, id), the
                        rows to wake when row `awaits` ends */
  /* ---- version 4: the live index order (claim) ---- */
  int64_t priority; /* immutable per row: the live index of a kind is */
  uint64_t order;   /* ordered (priority desc, order asc, id); order is
                       the change_seq of the registration (exact
                       creation order) */
} lash_bindex;

/* What load fetches (a mask). */
enum { LASH_ROW_RECORD = 1, LASH_ROW_LEASE = 2, LASH_ROW_TOMB = 4 };

/* A loaded row; a part that is absent (or not asked for) has data NULL. */
typedef struct lash_brow {
  lash_bytes rec;   /* the encoded record */
  lash_bytes lease; /* the encoded lease row */
  lash_bytes tomb;  /* the encoded tombstone */
} lash_brow;

/* One new event of a row. */
typedef struct lash_bevent {
  uint64_t seq;
  lash_bytes data; /* the encoded event */
  /* ---- version 3: replay keys (A) ---- */
  lash_bytes key; /* data NULL: none. Else 1..LASH_NAME_MAX bytes: the
                     key index maps (id, key) -> seq; the core never hands
                     a backend a key its row already holds */
} lash_bevent;

/* Everything one flush writes for one row. */
typedef struct lash_bsave {
  const char *id;
  size_t idlen;
  lash_bytes kind;           /* immutable after registration */
  lash_bytes rec;            /* data NULL: record unchanged */
  lash_bindex before, after; /* the index transition (with rec only) */
  const lash_bevent *events; /* new events, ascending seq, after the
                                row's last stored one */
  size_t nevents;
  lash_bytes lease; /* data NULL: lease row unchanged */
  int drop_tomb;    /* the id was registered anew: remove its
                       tombstone and its change entry */
  uint64_t tomb_change_seq;
} lash_bsave;

/* A terminal row pruned: removed with its events and lease row; the
 * tombstone takes its place (and its own change entry). */
typedef struct lash_bremove {
  const char *id;
  size_t idlen;
  lash_bytes kind;
  lash_bindex before; /* where the row is listed now */
  lash_bytes tomb;
  uint64_t tomb_change_seq; /* above every change_seq stored so far */
} lash_bremove;

/* Store-wide bookkeeping, kept by the core, stored by the backend. */
typedef struct lash_bmeta {
  uint64_t change_seq;
  uint64_t counts[LASH_STATUS_COUNT + 1]; /* indexed by lash_status */
  /* ---- version 3: suspension and timers (B) ---- */
  uint64_t suspended; /* rows suspended now */
} lash_bmeta;

/* ------------------------------------------------------------ scans */

enum {
  LASH_SCAN_EVENTS = 1, /* events of `id` with seq > after_seq: seq, ev */
  LASH_SCAN_LIVE,       /* live rows of `kind` in live order (priority
                           desc, order, id) after the position
                           (after_prio, after_seq, after) when after is
                           set: id, rec, prio, order (version 4) */
  LASH_SCAN_STATUS,     /* rows of `status` with id > after: id, rec */
  LASH_SCAN_ROWS,       /* every row with id > after: id, rec */
  LASH_SCAN_CHANGES,    /* change entries with change_seq > after_seq, in
                           change order: seq, id, and the row's rec or
                           tomb as stored now (a stale entry may have
                           both absent) */
  LASH_SCAN_TOMBS,      /* tombstones with id > after: id, tomb */
  LASH_SCAN_LEASES,     /* lease rows with id > after: id, lease */
  /* ---- version 3: suspension and timers (B) ---- */
  LASH_SCAN_TIMERS,  /* rows in the timer index, ascending (wake_at, id):
                        seq = wake_at, id, rec (after, after_seq unused) */
  LASH_SCAN_WAITERS, /* rows whose awaits == `id`, id > after: id, rec */
  /* ---- version 4: the side table (kv) ---- */
  LASH_SCAN_KV /* entries of namespace `ns` whose keys start with id/idlen
                  (the prefix; idlen 0: all), key > after (a whole key),
                  ascending bytewise: id/idlen = the key, rec = the value */
};
enum {
  LASH_SCAN_KEYS = 1, /* ids (and seqs) only: rec/tomb/lease not fetched */
  LASH_SCAN_LAST = 2  /* only the last item of the range (after unused) */
};

typedef struct lash_bscan {
  int what;
  unsigned flags;
  const char *id; /* EVENTS, WAITERS */
  size_t idlen;
  lash_bytes kind;   /* LIVE */
  int status;        /* STATUS */
  const char *after; /* NULL or "": from the start */
  size_t afterlen;
  uint64_t after_seq; /* EVENTS, CHANGES; LIVE: the position's order */
  /* ---- version 4: the side table (kv) ---- */
  int ns; /* KV: the namespace (LASH_KV_*) */
  /* ---- version 4: the live index order (claim) ---- */
  int64_t after_prio; /* LIVE: the position's priority */
} lash_bscan;

typedef struct lash_bitem {
  const char *id; /* not NUL-terminated */
  size_t idlen;
  uint64_t seq;
  lash_bytes rec, ev, tomb, lease;
  /* ---- version 4: the live index order (claim) ---- */
  int64_t prio;   /* LIVE: the row's priority */
  uint64_t order; /* LIVE: the row's creation order */
} lash_bitem;

/* Return 0 to go on, > 0 to stop (scan returns 0), < 0 to stop with that
 * error. */
typedef int (*lash_bscan_fn)(void *ud, const lash_bitem *it);

/* ------------------------------------------------------- side table */

/* Small keyed values beside the rows, written in the same transactions as
 * the rows (version 4). A key lives in one namespace (one byte on disk;
 * never renumber); keys are 1..LASH_KV_KEY_MAX bytes, values any bytes
 * (MessagePack maps, encoded by the registry file owning the namespace). */
enum {
  LASH_KV_KIND = 1,     /* kind name -> its stored definition (kv) */
  LASH_KV_WORKER = 2,   /* owner "\0" incarnation -> a live worker (kv) */
  LASH_KV_UNIQUE = 3,   /* unique key -> the row holding it (retry) */
  LASH_KV_CONC = 4,     /* concurrency key -> its running rows (claim) */
  LASH_KV_RATE = 5,     /* kind -> its rate-limit bucket (claim) */
  LASH_KV_CHILD = 6,    /* parent "\0" child id -> "": children index (obs) */
  LASH_KV_SCHEDULE = 7, /* schedule name -> the schedule (cron) */
  LASH_KV_CONC_COUNT = 8, /* concurrency key -> its slots, queue head */
  LASH_KV_COUNT_ = 9      /* 9..255 free: take the next, say so in a report */
};
#define LASH_KV_KEY_MAX (LASH_NAME_MAX * 2 + 1)

/* ------------------------------------------------------------ audit */

/* What a stored record says about its listing (decoded by the core). */
typedef struct lash_bdesc {
  lash_bindex index;
  lash_bytes kind;
} lash_bdesc;

/* The core's side of an audit. */
typedef struct lash_baudit {
  void *ud;
  void (*problem)(void *ud, const char *line);
  /* 0, or < 0 when @p rec cannot be decoded (already reported). */
  int (*describe)(void *ud, lash_bytes rec, lash_bdesc *out);
  /* The change_seq of an encoded tombstone: 0, or < 0 (undecodable). */
  int (*tomb_seq)(void *ud, lash_bytes tomb, uint64_t *change_seq);
  /* ---- version 3: replay keys (A) ---- */
  /* The replay key an encoded event carries: 0 (key->data NULL when it
   * has none), or < 0 (undecodable). */
  int (*event_key)(void *ud, lash_bytes ev, lash_bytes *key);
} lash_baudit;

/* ------------------------------------------------------------ stats */

typedef struct lash_bstats {
  uint64_t tombstones;
  uint64_t bytes_used;      /* bytes the store occupies */
  uint64_t bytes_available; /* bytes it may still grow by before EFULL */
  int no_lock;         /* opened read-only without the backend's reader lock (a
                          store this user can read but not write): a writer
                          running meanwhile is not kept from what a read walks */
  uint64_t bytes_data; /* bytes of the pages that hold data now (free
                          pages not counted); 0: not known */
} lash_bstats;

/* ------------------------------------------------------------ the table */

enum { LASH_BTXN_READ = 0, LASH_BTXN_WRITE = 1 };

struct lash_backend_methods {
  int version;      /* LASH_BACKEND_VERSION */
  const char *name; /* "lmdb"; also the scheme of lash_store_open */

  /* Opens (creating if needed and not read-only) the store at @p target
   * (the scheme already stripped), storing records of encoding @p format
   * (a store of another format is LASH_EFORMAT, both versions named).
   * opts->max_bytes is 0 for the backend's default; the backend may raise
   * it to the size it found. On failure *out is NULL and @p err holds a
   * message naming the target. */
  int (*open)(const char *target, lash_store_opts *opts, uint32_t format,
              lash_backend **out, char *err, size_t errlen);
  void (*close)(lash_backend *b); /* aborts nothing: the core ends txns */

  /* Transactions. begin(LASH_BTXN_WRITE) is serialised against every
   * other writer of the store (any handle, any OS process). commit always
   * ends @p t; abort ends it without writing (and ends read txns). */
  int (*begin)(lash_backend *b, int mode, lash_btxn **out);
  int (*commit)(lash_backend *b, lash_btxn *t);
  void (*abort)(lash_backend *b, lash_btxn *t);

  /* Loads the parts of row @p id named by @p what (LASH_ROW_*); in a write
   * txn the row is locked for update. Absent parts: data NULL, return 0. */
  int (*load)(lash_backend *b, lash_btxn *t, const char *id, size_t idlen,
              unsigned what, lash_brow *out);
  /* Writes one row's changes (called once per row per flush). */
  int (*save)(lash_backend *b, lash_btxn *t, const lash_bsave *row);
  /* Prunes one row; *events gets the number of events removed. */
  int (*remove)(lash_backend *b, lash_btxn *t, const lash_bremove *row,
                uint64_t *events);

  /* The bookkeeping: all zero on a new store. */
  int (*meta_get)(lash_backend *b, lash_btxn *t, lash_bmeta *out);
  int (*meta_put)(lash_backend *b, lash_btxn *t, const lash_bmeta *m);
  /* The committed change_seq, cheaply, without a transaction of the
   * caller's: how other OS processes' writes are noticed. */
  int (*change_seq)(lash_backend *b, uint64_t *out);

  /* Calls fn for each item of @p q in order (see LASH_SCAN_*). */
  int (*scan)(lash_backend *b, lash_btxn *t, const lash_bscan *q,
              lash_bscan_fn fn, void *ud);

  /* How another process's commit can be noticed (lash.h); fill *out. */
  int (*wake_source)(lash_backend *b, lash_wake_source *out);
  /* May be NULL: after a LASH_WAKE_FD source fired, drain it; 1 if any
   * notification arrived, 0 if none. */
  int (*wake_consume)(lash_backend *b);

  int (*stats)(lash_backend *b, lash_btxn *t, lash_bstats *out);
  /* May be NULL: checks the backend's own indexes against the rows
   * (lash_check); reports through a->problem; returns 0 or an error. */
  int (*audit)(lash_backend *b, lash_btxn *t, const lash_baudit *a);
  /* May be NULL: the backend's clock (ms since the epoch), used unless a
   * test clock is installed (lash_store_set_clock). NULL: wall clock. */
  int64_t (*now)(lash_backend *b);

  /* ---- version 2: owner liveness (all three may be NULL) ----
   * An engine holds its owner incarnation for its life; a claimer that
   * meets a live lease of another owner asks whether that owner is still
   * alive, and takes a lease of a gone owner over at once (fenced, as
   * after a lapse). The hold must vanish when its OS process dies,
   * however it dies (LMDB: flock on a file per incarnation; PostgreSQL: a
   * session advisory lock on a hash of the pair). */
  /* Holds (owner, incarnation) for this handle until owner_release or
   * close. 0, or < 0 when it cannot be held (the lease TTL stays the only
   * rule for this owner's rows). One hold per handle. */
  int (*owner_hold)(lash_backend *b, const char *owner,
                    const char *incarnation);
  void (*owner_release)(lash_backend *b);
  /* 1: the pair is held by a live process; 0: it was held and its holder
   * is gone; < 0: unknown (never held here, another host, cannot tell):
   * the caller keeps to the TTL. Cheap: a few syscalls, no transaction. */
  int (*owner_alive)(lash_backend *b, const char *owner,
                     const char *incarnation);

  /* ---- version 2: growing the store ---- */
  /* May be NULL: after LASH_EFULL from save, meta_put or commit of the
   * write transaction @p t (NULL when commit already ended it), makes the
   * store larger: ends t, grows, and begins a fresh write in *out that
   * sees exactly what t saw (else LASH_EFULL), so the core can replay the
   * write. LASH_EFULL, with a message, when the store cannot grow. */
  int (*grow)(lash_backend *b, lash_btxn *t, lash_btxn **out);

  /* ---- version 3: replay keys (A) ---- */
  /* The event of row @p id stored with replay key @p key (the key index:
   * written by save from lash_bevent.key, emptied by remove with the
   * row's events); in a write txn it sees the txn's own saves. *seq gets
   * its seq and, when @p ev is not NULL, *ev its encoded bytes (valid as
   * a scan item's). @return 0, LASH_ENOENT when no event has that key (no
   * message needed), LASH_ECORRUPT when the index names a missing event,
   * or another error. Required. */
  int (*key_get)(lash_backend *b, lash_btxn *t, const char *id, size_t idlen,
                 const char *key, size_t keylen, uint64_t *seq, lash_bytes *ev);

  /* ---- version 4: the side table (kv) ---- */
  /* The value stored under (ns, key) (keys 1..LASH_KV_KEY_MAX bytes): 0
   * and *val (valid as a scan item's), or LASH_ENOENT (no message). In a
   * write txn it sees the txn's own puts. Required. */
  int (*kv_get)(lash_backend *b, lash_btxn *t, int ns, const char *key,
                size_t keylen, lash_bytes *val);
  /* Writes (val.data != NULL) or deletes (val.data == NULL; absent is 0)
   * in the write transaction t. Required. */
  int (*kv_put)(lash_backend *b, lash_btxn *t, int ns, const char *key,
                size_t keylen, lash_bytes val);
};

/* The embedded default. */
LASH_API const lash_backend_methods *lash_backend_lmdb(void);
/* PostgreSQL through libpq (core/src/pg/): targets postgresql://…
 * (lash_store_open strips the scheme), docs/backend.md. */
LASH_API const lash_backend_methods *lash_backend_pg(void);

/* Opens a store through @p m (lash_store_open with a backend of your
 * own: tests, or a backend built outside the core). @p target is given to
 * m->open as is and is what lash_store_path returns. @return as
 * lash_store_open; LASH_EINVAL when m is NULL, of another version, or
 * lacks a required method. */
LASH_API int lash_store_open_backend(const lash_backend_methods *m,
                                     const char *target,
                                     const lash_store_opts *opts,
                                     lash_store **out, char *err,
                                     size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* LASH_BACKEND_H */
