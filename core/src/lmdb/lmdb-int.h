/* lmdb-int.h - private to the LMDB backend (core/src/lmdb/).
 *
 * One LMDB environment per store directory, with the named databases of
 * enum lmdb__db. Nothing outside this folder includes lmdb.h: the registry
 * reaches it only through the methods table of lash_backend.h.
 */
#ifndef LASH_LMDB_INT_H
#define LASH_LMDB_INT_H

#include "lash_backend.h"

#include <lmdb.h>
#include <stdint.h>

#define LMDB__EVKEY_MAX (LASH_ID_MAX + 1 + 8)
#define LMDB__LIVEKEY_MAX (LASH_NAME_MAX + 1 + 16 + LASH_ID_MAX)
#define LMDB__KEYKEY_MAX (LASH_ID_MAX + 1 + LASH_NAME_MAX) /* (A) */
#define LMDB__WAITKEY_MAX                                                      \
  (LASH_ID_MAX + 1 + LASH_ID_MAX) /* 511: LMDB's max                           \
                                   */
#define LMDB__TIMERKEY_MAX (8 + LASH_ID_MAX)

/* Named databases of one store. */
enum lmdb__db {
  LMDB__DB_RECORDS = 0, /* id -> encoded record */
  LMDB__DB_EVENTS,      /* id 0x00 be64(seq) -> encoded event */
  LMDB__DB_LEASES,      /* id -> encoded lease */
  LMDB__DB_LIVE,        /* kind 0x00 be64(~(priority ^ sign)) be64(order)
                           id -> "" (pending/running/waiting; the live order,
                           issue 13) */
  LMDB__DB_BYSTATUS,    /* status byte, id -> "" */
  LMDB__DB_CHANGES,     /* be64(change_seq) -> id */
  LMDB__DB_TOMBS,       /* id -> encoded tombstone */
  LMDB__DB_META,        /* "format", "change_seq", "counts", "suspended" */
  /* ---- version 3: replay keys (A) ---- */
  LMDB__DB_KEYS, /* id 0x00 replay key -> be64(seq) */
  /* ---- suspension and timers (issue 9) ---- */
  LMDB__DB_TIMERS,  /* be64(wake_at) id -> "" (suspended rows with a time) */
  LMDB__DB_WAITERS, /* awaits 0x00 id -> "" (suspended on row awaits) */
  /* ---- version 4: the side table (kv) ---- */
  LMDB__DB_KV, /* ns byte, key -> value */
  LMDB__DB_COUNT
};

#define LMDB__META_FORMAT "format"
#define LMDB__META_CHANGE_SEQ "change_seq"
#define LMDB__META_COUNTS "counts"
#define LMDB__META_SUSPENDED "suspended"

extern const char *const lmdb__db_names[LMDB__DB_COUNT];

struct lash_btxn {
  MDB_txn *mt;
  int write;
  int nested;      /* a read of its own (malloc'd), from a listing callback */
  int tombs_known; /* tombs_any is valid */
  int tombs_any;   /* the tombstones database has entries */
};

typedef struct lmdb__store {
  lash_backend base; /* first member */
  MDB_env *env;
  MDB_dbi dbi[LMDB__DB_COUNT];
  char *path;
  lash_store_opts opts;
  struct lash_btxn w; /* the one write transaction */
  struct lash_btxn r; /* the cached read transaction (reset between uses) */
  int r_busy;
  struct lmdb__owner *owner; /* owners.c: the held owner file, or NULL */
  size_t mapsize; /* the map now; grows up to opts.max_bytes (0: none) */
  size_t w_id;    /* the LMDB txn id of the last write begun */
  unsigned reads; /* read begins since the last reader check */
  unsigned psize; /* the page size */
  int no_keys;    /* replay keys (A): a store opened read-only from before
                     the key index: no key is stored */
  int no_lock;    /* read-only, opened with MDB_NOLOCK (no writable lock) */
  int has_susp;   /* the timer and waiter databases exist (a store made
                     before them, opened read-only, has none) */
  int has_kv;     /* the side table exists (the same for it) */
} lmdb__store;

#define LMDB__S(b) ((lmdb__store *)(b))

/* env.c: translates an LMDB/errno code and sets the message ("while
 * <what>"). */
int lmdb__code(int mrc);
int lmdb__fail(lmdb__store *s, int mrc, const char *what);

/* owners.c: owner liveness (lash_backend.h version 2) by flock. */
int lmdb__owner_hold(lash_backend *b, const char *owner, const char *inc);
void lmdb__owner_release(lash_backend *b);
int lmdb__owner_alive(lash_backend *b, const char *owner, const char *inc);

/* keys.c */
void lmdb__be64(unsigned char *p, uint64_t v);
uint64_t lmdb__get_be64(const unsigned char *p);
size_t lmdb__evkey(unsigned char *k, const char *id, size_t idlen,
                   uint64_t seq);
/* kind 0x00 id; also the waiter index's awaits 0x00 id */
size_t lmdb__livekey(unsigned char *k, lash_bytes kind, const char *id,
                     size_t idlen);
size_t lmdb__statkey(unsigned char *k, int status, const char *id,
                     size_t idlen);
/* issue 13 (claim): the live index key, kind 0x00 be64(~(prio ^ sign))
 * be64(order) id: priority descending, then creation order, then id */
size_t lmdb__liveposkey(unsigned char *k, lash_bytes kind, int64_t prio,
                        uint64_t order, const char *id, size_t idlen);
/* The priority and order of a live key's 16 position bytes. */
void lmdb__livepos(const unsigned char *p, int64_t *prio, uint64_t *order);
/* replay keys (A): id 0x00 key */
size_t lmdb__keykey(unsigned char *k, const char *id, size_t idlen,
                    const void *key, size_t keylen);
size_t lmdb__timerkey(unsigned char *k, int64_t wake_at, const char *id,
                      size_t idlen);

/* rows.c: failures set the message. _get: 0 found, 1 absent, < 0 error;
 * _del: 0 also when absent. */
int lmdb__get(lmdb__store *s, MDB_txn *mt, int db, const void *k, size_t kn,
              MDB_val *v);
int lmdb__put(lmdb__store *s, MDB_txn *mt, int db, const void *k, size_t kn,
              const void *v, size_t vn, unsigned flags);
int lmdb__del(lmdb__store *s, MDB_txn *mt, int db, const void *k, size_t kn);

int lmdb__load(lash_backend *b, lash_btxn *t, const char *id, size_t idlen,
               unsigned what, lash_brow *out);
int lmdb__save(lash_backend *b, lash_btxn *t, const lash_bsave *row);
int lmdb__remove(lash_backend *b, lash_btxn *t, const lash_bremove *row,
                 uint64_t *events);
int lmdb__meta_get(lash_backend *b, lash_btxn *t, lash_bmeta *out);
int lmdb__meta_put(lash_backend *b, lash_btxn *t, const lash_bmeta *m);
/* replay keys (A) */
int lmdb__key_get(lash_backend *b, lash_btxn *t, const char *id, size_t idlen,
                  const char *key, size_t keylen, uint64_t *seq,
                  lash_bytes *ev);

/* scans.c */
int lmdb__scan(lash_backend *b, lash_btxn *t, const lash_bscan *q,
               lash_bscan_fn fn, void *ud);

/* kv.c: the side table (version 4) */
#define LMDB__KVKEY_MAX (1 + LASH_KV_KEY_MAX)
int lmdb__kv_get(lash_backend *b, lash_btxn *t, int ns, const char *key,
                 size_t keylen, lash_bytes *val);
int lmdb__kv_put(lash_backend *b, lash_btxn *t, int ns, const char *key,
                 size_t keylen, lash_bytes val);

/* audit.c */
int lmdb__audit(lash_backend *b, lash_btxn *t, const lash_baudit *a);

#endif /* LASH_LMDB_INT_H */
