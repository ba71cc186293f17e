/* pg-int.h - the PostgreSQL backend's internals (core/src/pg/).
 *
 * One store is one schema of a database reached through libpq. Two
 * connections: `w` runs every transaction (text protocol; statements
 * prepared once per connection and EXECUTEd with hex bytea literals, so
 * queued writes and the next read travel in one round trip), `l` LISTENs
 * for other processes' commits (the wake source) and answers change_seq.
 *
 * Writes are queued in `q` and sent with the next read or the commit:
 * every write transaction first locks the meta row (writers are
 * serialised store-wide, as lash_backend.h asks), so nothing another
 * writer does can interleave with the queue. */
#ifndef LASH_PG_INT_H
#define LASH_PG_INT_H

#include "lash_backend.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#define PG__SCHEMA_MAX 48

typedef struct pg__buf {
  char *p;
  size_t len, cap;
} pg__buf;

typedef struct pg__blob {
  struct pg__blob *next;
  unsigned char b[];
} pg__blob;

/* A table's pending rows: each column's array elements so far, in the
 * binary array format (pending.c). */
#define PG__PCOLS 10
typedef struct pg__pend {
  pg__buf col[PG__PCOLS];
  size_t n;
} pg__pend;

/* A flushed multi-row write waiting in s->q: a prepared statement and its
 * binary array parameters (offsets into s->bdata). */
typedef struct pg__bstmt {
  const char *name;
  int nparams;
  size_t off[PG__PCOLS], len[PG__PCOLS];
} pg__bstmt;

/* A row as this write transaction knows it (loaded, or written by it). */
typedef struct pg__ev {
  uint64_t seq;
  lash_bytes data;
} pg__ev;

typedef struct pg__ent {
  const unsigned char *id; /* NULL: an empty slot */
  size_t idlen;
  int known; /* rec, lease and tomb are the row's (loaded or written) */
  lash_bytes rec, lease, tomb;
  pg__ev *ev; /* the events this write appended: the tail of the log */
  size_t nev, evcap;
  /* replay keys (A): the row's stored keys, each as a length byte and its
   * bytes, when keys_known (loaded with the row in a write, kept up to
   * date by save): a key not among them is absent without a round trip */
  int keys_known;
  pg__buf keys;
  uint64_t pgen; /* == the store's pgen: in the multi-row writes pending */
  /* The row version the cache holds, for pg__cache_verify: the xmin its
   * rows and leases tuples have if nobody else wrote them since (ours: the
   * transaction that saved them; rx_ok/lx_ok 0: not known, or the lease
   * never written by us). live: the row is live as saved. */
  uint32_t rx, lx;
  unsigned char rx_ok, lx_ok, live;
} pg__ent;

typedef struct pg__store {
  lash_backend base;
  char *conninfo; /* the target's URI without lash's own options */
  char *name;     /* how messages name the store (no password) */
  char schema[PG__SCHEMA_MAX + 1];
  char chan[PG__SCHEMA_MAX + 16];
  int read_only;
  int no_kv;        /* (kv) read-only, and the schema has no side table */
  int async_commit; /* durability none/nometa */
  int idle_ms;      /* a write idle this long is ended by the server (its
                       idle_in_transaction_session_timeout); 0: never */
  int cur_idle_ms;  /* the open write's limit (0: none, or held) */
  int64_t w_last;   /* monotonic ms: w's last round trip ended */
  int64_t w_gap;    /* ms from w's round trip before the last to its end */
  PGconn *w;        /* transactions */
  PGconn *l;        /* LISTEN + change_seq */
  /* ---- owner liveness (owners.c, kv) ---- */
  PGconn *o;        /* holds the owner's session advisory lock; asks */
  int held;         /* the lock (k1, k2) is held on o */
  uint32_t k1, k2;  /* the held pair's lock keys */
  int w_ready;      /* statements prepared on w */
  int l_ready;      /* LISTEN issued on l */
  int64_t retry_at; /* monotonic ms: no reconnect before */
  int backoff_ms;
  /* The database's clock: db_ms = mono_ms + clock_off. */
  int64_t clock_off;
  int clock_set;
  int64_t clock_last; /* the last time handed out */
  /* The open transaction (depth > 1: nested reads). */
  int depth;
  int in_write;
  int wrote;
  lash_bmeta meta;   /* the write txn's meta (read by its first statement) */
  int begin_due;     /* a read whose BEGIN goes with its first statement */
  int end_due;       /* a finished read whose ROLLBACK goes with the next */
  int meta_loaded;   /* s->meta is this transaction's */
  pg__ent *cache;    /* rows of the write transaction (open addressing) */
  int pc;            /* the cache is the state our last commit left, and no
                        other writer's commit has been seen since */
  int foreign;       /* another writer's commit noticed outside wake_consume */
  int pc_synced;     /* our last commit's own NOTIFY has arrived */
  uint64_t pc_seq;   /* its change_seq */
  uint64_t note_seq; /* the highest change_seq another writer's NOTIFY named */
  uint64_t told_seq; /* the highest change_seq pg__change_seq returned */
  uint64_t own_seq;  /* the change_seq of our last commit that wrote */
  pg__blob *cblobs;  /* bytes the cache keeps after that commit */
  size_t ncblobs;    /* how many (pg__pc_compact) */
  size_t nclive;     /* how many the last compaction kept */
  /* Every commit that wrote updates the meta row, so the meta row's xmin
   * names the last writer: a write that finds it is our last commit's
   * transaction keeps the cache (nobody wrote in between, mig); one that
   * finds another's keeps the rows whose own tuples still carry the xmin
   * of our write (pg__cache_verify). */
  uint32_t cur_xid;  /* the open write's transaction id */
  int64_t cur_txid;  /* the same with its epoch (txid_current): what a
                        commit whose connection was lost asks about */
  int committing;    /* pg__commit's round trip is on its way */
  uint32_t last_xid; /* our last commit that wrote (last_xid_ok) */
  int last_xid_ok;
  int meta_touched; /* the open write queued an update of the meta row */
  size_t ncache, capcache;
  pg__buf q; /* queued writes */
  size_t nq;
  /* Multi-row writes (mig): the rows, events and leases saves wait here
   * as one array per column and join s->q as one prepared statement per
   * table before it is sent (pg__pending_flush); a row saved twice
   * flushes the first. */
  pg__pend prow, pev, plea;
  pg__pend pnew; /* leases known absent until now: a plain INSERT */
  uint64_t pgen;
  /* The flushed ones: each a marker statement in s->q ("\001N"), sent
   * with binary parameters in a pipeline by pg__run (conn.c). */
  pg__bstmt *bst;
  size_t nbst, capbst;
  pg__buf bdata;
  pg__blob *blobs; /* bytes handed out in the open transaction */
  pg__buf sql;     /* scratch */
} pg__store;

struct lash_btxn {
  int write;
  int nested;
};

#define PG__S(b) ((pg__store *)(b))

/* buffers (conn.c) */
int pg__buf_reserve(pg__buf *b, size_t more);
int pg__buf_str(pg__buf *b, const char *s);
int pg__buf_fmt(pg__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int pg__buf_bytea(pg__buf *b, const void *p, size_t n); /* '\x..'::bytea */
void pg__buf_free(pg__buf *b);

/* connections and errors (conn.c) */
int64_t pg__mono_ms(void);
int pg__connect(pg__store *s, PGconn **c, char *err, size_t errlen);
/* Runs @p sql (one or more statements) on w; *res the last result (NULL
 * on failure, the error set on the backend). */
int pg__exec(pg__store *s, PGconn *c, const char *sql, const char *doing,
             PGresult **res);
int pg__fail_res(pg__store *s, PGconn *c, PGresult *r, const char *doing);
/* Sends the queued writes with @p sql appended (NULL: none). */
/* Moves the pending multi-row writes into s->q: 0 or LASH_ENOMEM. */
int pg__pending_flush(pg__store *s);
/* Forgets them (the transaction ended). */
void pg__pending_reset(pg__store *s);
/* Frees their buffers (the handle closes). */
void pg__pending_free(pg__store *s);
/* One element of a column's array literal: bytes as a hex bytea element
 * (data NULL: NULL), or text as it is (pending.c). */
int pg__el_bytes(pg__buf *b, size_t n, const void *data, size_t len);
int pg__el_text(pg__buf *b, size_t n, const char *text);
/* Queues the events, row and lease of one save (pending.c); @p lease_new:
 * the row has no lease row yet (this write knows it). */
int pg__pending_save(pg__store *s, const lash_bsave *row, int lease_new);
int pg__run(pg__store *s, const char *sql, const char *doing, PGresult **res);
/* Decodes a bytea text value into a blob kept until the txn ends. */
int pg__bytea(pg__store *s, const PGresult *r, int row, int col,
              lash_bytes *out);
void pg__blobs_free(pg__store *s);
uint64_t pg__u64(const PGresult *r, int row, int col);

/* the write transaction's rows (cache.c) */
pg__ent *pg__cache_get(pg__store *s, const void *id, size_t idlen);
/* The entry of id, created (with all parts absent) when missing. */
pg__ent *pg__cache_put(pg__store *s, const void *id, size_t idlen);
void pg__cache_clear(pg__store *s);
/* Appends a written event to a row's entry (if the row is known). */
int pg__cache_event(pg__store *s, pg__ent *e, uint64_t seq, lash_bytes data);
/* Keeps the cache past a commit (pc), or drops what it kept; a drop inside
 * a read leaves its bytes valid until that read ends. */
void pg__pc_keep(pg__store *s);
void pg__pc_drop(pg__store *s);
/* Reads stop trusting the cache; its rows stay for the next write, which
 * keeps them when nobody wrote in between (the meta row's xmin). */
void pg__pc_off(pg__store *s);
/* After a write that committed without writing: the rows stay (pc off). */
void pg__pc_retain(pg__store *s);
/* Frees the kept bytes no cached row uses any more, when they are many
 * (between transactions; a failure drops the cache): 0 or LASH_ENOMEM. */
#define PG__COMPACT_MIN 1024
int pg__pc_compact(pg__store *s);
/* At a read's start: whether another writer committed after our last
 * commit (drops pc). */
void pg__pc_check(pg__store *s);
/* Takes the notifications that arrived off the listening connection; 1 if
 * another writer committed (wake_consume's answer), updating pc. */
int pg__notes(pg__store *s);
/* Under a write's lock, after another writer committed since our last
 * commit: keeps the cached rows whose rows and leases tuples are still the
 * versions we wrote (one round trip; their xmin), drops the rest: 0, or
 * an error (the connection failed; the cache is dropped). */
#define PG__VERIFY_MAX 16384
int pg__cache_verify(pg__store *s);
/* A copy of borrowed bytes, kept until the transaction ends. */
int pg__keep(pg__store *s, lash_bytes *b);

/* schema (schema.c) */
int pg__parse_target(const char *target, char **conninfo, char *schema,
                     char **name, char *err, size_t errlen);
int pg__schema_open(pg__store *s, uint32_t format, char *err, size_t errlen);
int pg__prepare(pg__store *s);

/* the transaction connection, reconnected with backoff (session.c) */
int pg__ensure_w(pg__store *s);

/* transactions (txn.c) */
int pg__begin(lash_backend *b, int mode, lash_btxn **out);
int pg__commit(lash_backend *b, lash_btxn *t);
void pg__abort(lash_backend *b, lash_btxn *t);
int64_t pg__now(lash_backend *b);

/* rows (rows.c) */
int pg__load(lash_backend *b, lash_btxn *t, const char *id, size_t idlen,
             unsigned what, lash_brow *out);
int pg__save(lash_backend *b, lash_btxn *t, const lash_bsave *row);
int pg__remove(lash_backend *b, lash_btxn *t, const lash_bremove *row,
               uint64_t *events);
int pg__meta_get(lash_backend *b, lash_btxn *t, lash_bmeta *out);
int pg__meta_put(lash_backend *b, lash_btxn *t, const lash_bmeta *m);
int pg__meta_decode(const PGresult *r, int row, int col, lash_bmeta *out);
/* replay keys (A) */
int pg__key_get(lash_backend *b, lash_btxn *t, const char *id, size_t idlen,
                const char *key, size_t keylen, uint64_t *seq, lash_bytes *ev);

/* the side table, version 4 (kv.c); its scan is scans.c's */
int pg__kv_get(lash_backend *b, lash_btxn *t, int ns, const char *key,
               size_t keylen, lash_bytes *val);
int pg__kv_put(lash_backend *b, lash_btxn *t, int ns, const char *key,
               size_t keylen, lash_bytes val);

/* owner liveness by session advisory locks (owners.c) */
int pg__owner_hold(lash_backend *b, const char *owner, const char *inc);
void pg__owner_release(lash_backend *b);
int pg__owner_alive(lash_backend *b, const char *owner, const char *inc);

/* scans (scans.c) */
int pg__scan(lash_backend *b, lash_btxn *t, const lash_bscan *q,
             lash_bscan_fn fn, void *ud);
int pg__stats(lash_backend *b, lash_btxn *t, lash_bstats *out);

/* the wake source (notify.c) */
int pg__listen(pg__store *s);
int pg__change_seq(lash_backend *b, uint64_t *out);
int pg__wake_source(lash_backend *b, lash_wake_source *out);
int pg__wake_consume(lash_backend *b);

#endif
