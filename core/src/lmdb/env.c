/* env.c - the LMDB backend's environment: open and close, transactions
 * (one write, a cached read, nested reads), the map size, the wake source,
 * stats, and the methods table (the top of the backend: it calls rows,
 * scans and audit; nothing calls back into it). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup */
#endif
#include "lmdb-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* LMDB maps are sparse: a large map costs address space, not disk. */
#if SIZE_MAX > 0xffffffffu
#define DEFAULT_MAP_SIZE ((size_t)64 << 30)
#else
#define DEFAULT_MAP_SIZE ((size_t)1 << 30)
#endif
#define DEFAULT_MAX_READERS 1024u
/* Stale reader slots (of processes that died in a read) are reclaimed at
 * open, on MDB_READERS_FULL and on every READER_CHECK_EVERY-th read. */
#define READER_CHECK_EVERY 256u
/* A write that cannot be replayed after MDB_MAP_FULL finds at least this
 * much room: the map grows before a write when less is left. */
#define GROW_ROOM ((uint64_t)64 << 20)

/* --------------------------------------------------------------- open */

/* Makes sure dir is a usable directory, creating it (0700) when its parent
 * exists. */
static int prepare_dir(lmdb__store *s, const char *dir, int read_only) {
  lash_backend *b = &s->base;
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return lash_backend_fail(
          b, LASH_EACCES, "store path %s exists and is not a directory", dir);
    if (!read_only && access(dir, W_OK | X_OK) != 0)
      return lash_backend_fail(b, LASH_EACCES,
                               "store directory %s is not writable (%s): fix "
                               "its permissions or open it read-only",
                               dir, strerror(errno));
    if (read_only && access(dir, R_OK | X_OK) != 0)
      return lash_backend_fail(b, LASH_EACCES,
                               "store directory %s is not readable (%s)", dir,
                               strerror(errno));
    return 0;
  }
  if (errno != ENOENT)
    return lash_backend_fail(b, LASH_EACCES,
                             "cannot access store directory %s: %s", dir,
                             strerror(errno));
  if (read_only)
    return lash_backend_fail(b, LASH_EACCES,
                             "store directory %s does not exist (opened "
                             "read-only, so it was not created)",
                             dir);
  if (mkdir(dir, 0700) != 0) {
    if (errno == ENOENT)
      return lash_backend_fail(b, LASH_EACCES,
                               "cannot create store directory %s: its parent "
                               "directory does not exist",
                               dir);
    if (errno != EEXIST)
      return lash_backend_fail(b, LASH_EACCES,
                               "cannot create store directory %s: %s", dir,
                               strerror(errno));
  }
  return 0;
}

/* Opens the named databases and checks (or writes) the format version. */
/* Creates and configures s->env (before mdb_env_open). */
static int env_make(lmdb__store *s, const lash_store_opts *opts) {
  int mrc;
  if ((mrc = mdb_env_create(&s->env)) != 0) {
    s->env = NULL;
    return lmdb__fail(s, mrc, "creating the environment");
  }
  if ((mrc = mdb_env_set_maxdbs(s->env, LMDB__DB_COUNT)) != 0 ||
      (mrc = mdb_env_set_mapsize(s->env, s->mapsize)) != 0 ||
      (mrc = mdb_env_set_maxreaders(s->env, opts->max_readers)) != 0)
    return lmdb__fail(s, mrc, "configuring the environment");
  return 0;
}

static int open_dbs(lmdb__store *s, int read_only, uint32_t format) {
  lash_backend *b = &s->base;
  MDB_txn *mt = NULL;
  MDB_val k, v;
  MDB_stat st;
  unsigned char fmt[4];
  int rc = 0, mrc, i;
  uint32_t version;

  mrc = mdb_txn_begin(s->env, NULL, read_only ? MDB_RDONLY : 0, &mt);
  if (mrc != 0) {
    rc = lmdb__fail(s, mrc, "opening the store");
    mt = NULL;
    goto out;
  }
  for (i = 0; i < LMDB__DB_COUNT; i++) {
    mrc = mdb_dbi_open(mt, lmdb__db_names[i], read_only ? 0 : MDB_CREATE,
                       &s->dbi[i]);
    if (mrc == MDB_NOTFOUND && i == LMDB__DB_KEYS) {
      /* replay keys (A): a store from before the key index, read-only */
      s->no_keys = 1;
      continue;
    }
    if (mrc == MDB_NOTFOUND && i >= LMDB__DB_TIMERS) {
      /* A store made before suspension (or the side table), read only:
       * no suspended rows (no side table entries). */
      s->dbi[i] = 0;
      continue;
    }
    if (mrc == MDB_NOTFOUND) {
      rc = lash_backend_fail(b, LASH_EACCES,
                             "store %s is not initialised (database %s is "
                             "missing): open it once for writing",
                             s->path, lmdb__db_names[i]);
      goto out;
    }
    if (mrc != 0) {
      rc = lmdb__fail(s, mrc, "opening the databases");
      goto out;
    }
  }
  s->has_susp = s->dbi[LMDB__DB_TIMERS] != 0 && s->dbi[LMDB__DB_WAITERS] != 0;
  s->has_kv = s->dbi[LMDB__DB_KV] != 0;
  k.mv_data = (void *)LMDB__META_FORMAT;
  k.mv_size = strlen(LMDB__META_FORMAT);
  mrc = mdb_get(mt, s->dbi[LMDB__DB_META], &k, &v);
  if (mrc == 0) {
    if (v.mv_size != 4) {
      rc = lash_backend_fail(b, LASH_ECORRUPT,
                             "store %s has an unreadable format version",
                             s->path);
      goto out;
    }
    memcpy(fmt, v.mv_data, 4);
    version = ((uint32_t)fmt[0] << 24) | ((uint32_t)fmt[1] << 16) |
              ((uint32_t)fmt[2] << 8) | fmt[3];
    if (version != format) {
      rc = lash_backend_fail(b, LASH_EFORMAT,
                             "store %s has format version %u, this lash "
                             "reads version %u",
                             s->path, (unsigned)version, (unsigned)format);
      goto out;
    }
  } else if (mrc == MDB_NOTFOUND) {
    mrc = mdb_stat(mt, s->dbi[LMDB__DB_RECORDS], &st);
    if (mrc != 0) {
      rc = lmdb__fail(s, mrc, "reading the store");
      goto out;
    }
    if (st.ms_entries != 0) {
      rc = lash_backend_fail(b, LASH_ECORRUPT,
                             "store %s holds records but no format version",
                             s->path);
      goto out;
    }
    if (!read_only) {
      fmt[0] = (unsigned char)(format >> 24);
      fmt[1] = (unsigned char)(format >> 16);
      fmt[2] = (unsigned char)(format >> 8);
      fmt[3] = (unsigned char)format;
      v.mv_data = fmt;
      v.mv_size = 4;
      mrc = mdb_put(mt, s->dbi[LMDB__DB_META], &k, &v, 0);
      if (mrc != 0) {
        rc = lmdb__fail(s, mrc, "writing the format version");
        goto out;
      }
    }
  } else {
    rc = lmdb__fail(s, mrc, "reading the format version");
    goto out;
  }
  mrc = mdb_txn_commit(mt);
  mt = NULL;
  if (mrc != 0) rc = lmdb__fail(s, mrc, "initialising the store");
out:
  if (mt != NULL) mdb_txn_abort(mt);
  return rc;
}

/* A data file of 0 bytes (LMDB would take it for a new store and say it
 * is empty) is damage: a created store holds its two meta pages. */
static int check_empty(lmdb__store *s, const char *dir) {
  char path[4096];
  struct stat st;
  if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", dir) >= sizeof path)
    return 0;
  if (stat(path, &st) != 0 || st.st_size > 0) return 0;
  return lash_backend_fail(&s->base, LASH_ECORRUPT,
                           "store %s is damaged: its data file is empty (0 "
                           "bytes): restore it from a backup, or remove the "
                           "directory if the store was never used",
                           dir);
}

/* The data file must hold every page the meta pages name: a shorter file
 * (truncated) would fault (SIGBUS) on the first read of a missing page. */
static int check_length(lmdb__store *s) {
  char path[4096];
  MDB_envinfo info;
  MDB_stat st;
  struct stat fs;
  uint64_t want;
  if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
    return 0;
  if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", s->path) >=
          sizeof path ||
      stat(path, &fs) != 0)
    return 0;
  want = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
  if ((uint64_t)fs.st_size >= want) return 0;
  return lash_backend_fail(
      &s->base, LASH_ECORRUPT,
      "store %s is damaged: its data file is %llu bytes, but its meta pages "
      "say %llu (last page %llu x page size %u): the file was truncated; "
      "lash check --salvage DIR copies what is readable",
      s->path, (unsigned long long)fs.st_size, (unsigned long long)want,
      (unsigned long long)info.me_last_pgno, st.ms_psize);
}

/* Frees the reader slots of dead processes. */
static void reader_check(lmdb__store *s) {
  int dead = 0;
  mdb_reader_check(s->env, &dead);
  s->reads = 0;
}

static void env_close(lash_backend *b) {
  lmdb__store *s = LMDB__S(b);
  if (s == NULL) return;
  lmdb__owner_release(b);
  if (s->w.mt != NULL) mdb_txn_abort(s->w.mt);
  if (s->r.mt != NULL) mdb_txn_abort(s->r.mt);
  if (s->env != NULL) mdb_env_close(s->env);
  free(s->path);
  free(s);
}

static const lash_backend_methods lmdb_methods;

static int env_open(const char *dir, lash_store_opts *opts, uint32_t format,
                    lash_backend **out, char *err, size_t errlen) {
  lmdb__store *s;
  unsigned flags;
  int rc = 0, mrc;

  *out = NULL;
  s = calloc(1, sizeof *s);
  if (s == NULL || (s->path = strdup(dir)) == NULL) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "out of memory opening store %s", dir);
    free(s);
    return LASH_ENOMEM;
  }
  s->base.m = &lmdb_methods;
  s->base.errmsg = err; /* until the core gives its own buffer */
  s->base.errcap = err != NULL ? errlen : 0;
  s->w.write = 1;
  if (opts->max_readers == 0) opts->max_readers = DEFAULT_MAX_READERS;
  /* The map starts at map_bytes (or the default, below the ceiling
   * max_bytes) and grows on MDB_MAP_FULL up to max_bytes (0: no ceiling). */
  s->mapsize = opts->map_bytes != 0 ? opts->map_bytes : DEFAULT_MAP_SIZE;
  if (opts->max_bytes != 0 && s->mapsize > opts->max_bytes)
    s->mapsize = opts->max_bytes;
  if ((rc = prepare_dir(s, dir, opts->read_only)) < 0) goto out;
  if ((rc = check_empty(s, dir)) < 0) goto out;
  if ((rc = env_make(s, opts)) < 0) goto out;
  flags = MDB_NOTLS;
  if (opts->read_only) flags |= MDB_RDONLY;
  /* Full durability flushes the meta page after the commit, outside the
   * writer lock (env_commit): the next writer of another process need not
   * wait for that second flush. */
  if (opts->durability == LASH_DURABILITY_NOMETA ||
      (opts->durability == LASH_DURABILITY_FULL && !opts->read_only))
    flags |= MDB_NOMETASYNC;
  else if (opts->durability == LASH_DURABILITY_NONE)
    flags |= MDB_NOSYNC;
  mrc = mdb_env_open(s->env, dir, flags, 0600);
  if (mrc == EACCES && opts->read_only) {
    /* A store this user may read but not write: the lock file cannot be
     * opened for writing. Read without it (MDB_NOLOCK): no reader slot,
     * so a writer running meanwhile may reuse pages a long read walks;
     * lash_store_stats says so (no_lock). */
    mdb_env_close(s->env);
    s->env = NULL;
    if ((rc = env_make(s, opts)) < 0) goto out;
    mrc = mdb_env_open(s->env, dir, flags | MDB_NOLOCK, 0600);
    if (mrc == 0) s->no_lock = 1;
  }
  if (mrc != 0) {
    rc = lmdb__code(mrc);
    if (mrc == ENOENT) rc = LASH_EACCES;
    rc = lash_backend_fail(&s->base, rc, "cannot open store %s: %s", dir,
                           mdb_strerror(mrc));
    goto out;
  }
  {
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) == 0) s->mapsize = info.me_mapsize;
    if (opts->max_bytes != 0 && s->mapsize > opts->max_bytes)
      opts->max_bytes = s->mapsize; /* a larger store than the ceiling */
  }
  s->opts = *opts;
  {
    MDB_stat st;
    if (mdb_env_stat(s->env, &st) == 0) s->psize = st.ms_psize;
  }
  reader_check(s);
  if (!(opts->read_only && opts->damaged_ok) && (rc = check_length(s)) < 0)
    goto out;
  if ((rc = open_dbs(s, opts->read_only, format)) < 0) goto out;
  *out = &s->base;
  s = NULL;
out:
  env_close(s != NULL ? &s->base : NULL);
  return rc;
}

/* -------------------------------------------------------- transactions */

/* Another process grew the map (MDB_MAP_RESIZED): adopt its size. LMDB
 * allows that only with no transaction of this process running, so not
 * from inside a listing callback (a read is busy) or during a write. */
static int adopt_mapsize(lmdb__store *s) {
  if (s->r_busy || s->w.mt != NULL) return -1;
  if (s->r.mt != NULL) {
    mdb_txn_abort(s->r.mt);
    s->r.mt = NULL;
  }
  if (mdb_env_set_mapsize(s->env, 0) != 0) return -1;
  {
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) == 0) s->mapsize = info.me_mapsize;
  }
  return 0;
}

/* mdb_txn_begin, adopting another process's larger map (MDB_MAP_RESIZED)
 * and reclaiming dead readers' slots (MDB_READERS_FULL), each retried
 * once. */
static int txn_begin(lmdb__store *s, unsigned flags, MDB_txn **mt) {
  int mrc = mdb_txn_begin(s->env, NULL, flags, mt);
  if (mrc == MDB_MAP_RESIZED && adopt_mapsize(s) == 0)
    mrc = mdb_txn_begin(s->env, NULL, flags, mt);
  if (mrc == MDB_READERS_FULL) {
    reader_check(s);
    mrc = mdb_txn_begin(s->env, NULL, flags, mt);
  }
  if (mrc != 0) *mt = NULL;
  return mrc;
}

/* Before a write: a map more than 3/4 used doubles (up to the ceiling) now,
 * (or when less than GROW_ROOM is left), while no transaction of this
 * handle runs, so that a write which cannot
 * be replayed after MDB_MAP_FULL (it read its rows back mid-transaction)
 * rarely meets it. Reads the meta pages only: no system call. */
static void grow_early(lmdb__store *s) {
  MDB_envinfo info;
  size_t want, ceiling = s->opts.max_bytes;
  uint64_t used;
  if (s->r_busy || s->opts.read_only || s->psize == 0 ||
      mdb_env_info(s->env, &info) != 0)
    return;
  used = ((uint64_t)info.me_last_pgno + 1) * s->psize;
  /* Room kept: a quarter of the map, and at least GROW_ROOM bytes. */
  if (used + GROW_ROOM <= s->mapsize &&
      used < (uint64_t)s->mapsize - s->mapsize / 4)
    return;
  want = s->mapsize * 2 < s->mapsize ? SIZE_MAX : s->mapsize * 2;
  if (ceiling != 0 && want > ceiling) want = ceiling;
  if (want <= s->mapsize) return;
  if (s->r.mt != NULL) {
    mdb_txn_abort(s->r.mt);
    s->r.mt = NULL;
  }
  if (mdb_env_set_mapsize(s->env, want) == 0) s->mapsize = want;
}

static int env_begin(lash_backend *b, int mode, lash_btxn **out) {
  lmdb__store *s = LMDB__S(b);
  lash_btxn *t;
  int mrc;
  *out = NULL;
  if (mode == LASH_BTXN_WRITE) {
    if (s->w.mt != NULL)
      return lash_backend_fail(
          b, LASH_EINVAL, "store %s already has a write transaction", s->path);
    grow_early(s);
    if ((mrc = txn_begin(s, 0, &s->w.mt)) != 0)
      return lmdb__fail(s, mrc, "starting a write transaction");
    s->w_id = mdb_txn_id(s->w.mt);
    s->w.tombs_known = 0;
    *out = &s->w;
    return 0;
  }
  if (++s->reads >= READER_CHECK_EVERY) reader_check(s);
  if (!s->r_busy) {
    if (s->r.mt != NULL && mdb_txn_renew(s->r.mt) != 0) {
      mdb_txn_abort(s->r.mt);
      s->r.mt = NULL;
    }
    if (s->r.mt == NULL) {
      if ((mrc = txn_begin(s, MDB_RDONLY, &s->r.mt)) != 0)
        return lmdb__fail(s, mrc, "starting a read transaction");
    }
    s->r_busy = 1;
    s->r.tombs_known = 0;
    *out = &s->r;
    return 0;
  }
  /* Nested read (from a listing callback): a transaction of its own. */
  if ((t = calloc(1, sizeof *t)) == NULL)
    return lash_backend_fail(b, LASH_ENOMEM,
                             "out of memory starting a read transaction");
  mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t->mt);
  if (mrc == MDB_READERS_FULL) {
    reader_check(s);
    mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t->mt);
  }
  if (mrc != 0) {
    free(t);
    return lmdb__fail(s, mrc, "starting a read transaction");
  }
  t->nested = 1;
  *out = t;
  return 0;
}

/* A write met MDB_MAP_FULL: double the map (up to the ceiling), with no
 * transaction of this handle running, and begin the write again. LMDB
 * gives a new write the id last committed + 1, so an equal id means that
 * no other writer committed in between: the replay sees what t saw. */
static int env_grow(lash_backend *b, lash_btxn *t, lash_btxn **out) {
  lmdb__store *s = LMDB__S(b);
  size_t ceiling = s->opts.max_bytes, want = s->mapsize * 2, old = s->mapsize;
  size_t id = s->w_id;
  int mrc;
  *out = NULL;
  if (t != NULL && t->mt != NULL) {
    mdb_txn_abort(t->mt);
    t->mt = NULL;
  }
  if (want < old) want = SIZE_MAX;
  if (ceiling != 0 && want > ceiling) want = ceiling;
  if (want <= old)
    return lash_backend_fail(
        b, LASH_EFULL,
        "store %s is full: its map is at the ceiling "
        "max_bytes (%zu bytes): reopen it with a larger "
        "one (lash --map-size SIZE, lash.open's max_bytes)",
        s->path, ceiling);
  if (s->r_busy)
    return lash_backend_fail(b, LASH_EFULL,
                             "store %s is full (map %zu bytes) and cannot grow "
                             "while a read is running: retry the write",
                             s->path, old);
  if (s->r.mt != NULL) {
    mdb_txn_abort(s->r.mt);
    s->r.mt = NULL;
  }
  if ((mrc = mdb_env_set_mapsize(s->env, want)) != 0)
    return lash_backend_fail(b, LASH_EFULL,
                             "store %s is full (map %zu bytes) and cannot grow "
                             "to %zu bytes (%s): reopen it with a smaller "
                             "max_bytes ceiling or free address space",
                             s->path, old, want, mdb_strerror(mrc));
  s->mapsize = want;
  if ((mrc = txn_begin(s, 0, &s->w.mt)) != 0)
    return lmdb__fail(s, mrc, "starting a write transaction");
  s->w_id = mdb_txn_id(s->w.mt);
  s->w.tombs_known = 0;
  if (s->w_id != id) {
    mdb_txn_abort(s->w.mt);
    s->w.mt = NULL;
    return lash_backend_fail(b, LASH_EFULL,
                             "store %s was full; its map grew to %zu bytes, "
                             "but another process wrote meanwhile, so this "
                             "write was not committed: retry it",
                             s->path, want);
  }
  *out = &s->w;
  return 0;
}

static int env_commit(lash_backend *b, lash_btxn *t) {
  lmdb__store *s = LMDB__S(b);
  int mrc = mdb_txn_commit(t->mt);
  t->mt = NULL;
  /* durability full: the meta page's flush (MDB_NOMETASYNC, env_open) */
  if (mrc == 0 && s->opts.durability == LASH_DURABILITY_FULL)
    mrc = mdb_env_sync(s->env, 1);
  if (mrc == 0) return 0;
  return lmdb__fail(s, mrc, "committing");
}

static void env_abort(lash_backend *b, lash_btxn *t) {
  lmdb__store *s = LMDB__S(b);
  if (t == NULL) return;
  if (t == &s->r) {
    mdb_txn_reset(t->mt);
    s->r_busy = 0;
  } else if (t->nested) {
    mdb_txn_abort(t->mt);
    free(t);
  } else if (t->mt != NULL) {
    mdb_txn_abort(t->mt);
    t->mt = NULL;
  }
}

/* ----------------------------------------------------------- the rest */

static int env_change_seq(lash_backend *b, uint64_t *out) {
  lash_btxn *t = NULL;
  MDB_val v;
  int rc;
  *out = 0;
  if ((rc = env_begin(b, LASH_BTXN_READ, &t)) < 0) return rc;
  rc = lmdb__get(LMDB__S(b), t->mt, LMDB__DB_META, LMDB__META_CHANGE_SEQ,
                 strlen(LMDB__META_CHANGE_SEQ), &v);
  if (rc == 0 && v.mv_size == 8) *out = lmdb__get_be64(v.mv_data);
  if (rc > 0) rc = 0;
  env_abort(b, t);
  return rc;
}

static int env_wake_source(lash_backend *b, lash_wake_source *out) {
  lmdb__store *s = LMDB__S(b);
  /* LMDB writes data.mdb on every commit, whoever commits. */
  if ((size_t)snprintf(out->path, sizeof out->path, "%s/data.mdb", s->path) >=
      sizeof out->path)
    return lash_backend_fail(b, LASH_EINVAL,
                             "store path %s is too long to watch", s->path);
  out->kind = LASH_WAKE_FILE;
  return 0;
}

static int env_stats(lash_backend *b, lash_btxn *t, lash_bstats *out) {
  lmdb__store *s = LMDB__S(b);
  MDB_stat st;
  MDB_envinfo info;
  int mrc;
  if ((mrc = mdb_stat(t->mt, s->dbi[LMDB__DB_TOMBS], &st)) != 0)
    return lmdb__fail(s, mrc, "reading tombstone statistics");
  out->tombstones = st.ms_entries;
  if ((mrc = mdb_env_info(s->env, &info)) != 0 ||
      (mrc = mdb_env_stat(s->env, &st)) != 0)
    return lmdb__fail(s, mrc, "reading environment statistics");
  out->bytes_used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
  {
    uint64_t room =
        s->opts.max_bytes != 0 ? s->opts.max_bytes : (uint64_t)info.me_mapsize;
    out->bytes_available = room > out->bytes_used ? room - out->bytes_used : 0;
  }
  out->no_lock = s->no_lock;
  /* The pages of every sub-database (and the main one naming them). */
  out->bytes_data =
      ((uint64_t)st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) *
      st.ms_psize;
  {
    int i;
    for (i = 0; i < LMDB__DB_COUNT; i++) {
      MDB_stat ds;
      if ((mrc = mdb_stat(t->mt, s->dbi[i], &ds)) != 0)
        return lmdb__fail(s, mrc, "reading sub-database statistics");
      out->bytes_data += ((uint64_t)ds.ms_branch_pages + ds.ms_leaf_pages +
                          ds.ms_overflow_pages) *
                         ds.ms_psize;
    }
  }
  return 0;
}

static const lash_backend_methods lmdb_methods = {
    LASH_BACKEND_VERSION,
    "lmdb",
    env_open,
    env_close,
    env_begin,
    env_commit,
    env_abort,
    lmdb__load,
    lmdb__save,
    lmdb__remove,
    lmdb__meta_get,
    lmdb__meta_put,
    env_change_seq,
    lmdb__scan,
    env_wake_source,
    NULL, /* wake_consume: a file watch needs no draining */
    env_stats,
    lmdb__audit,
    NULL, /* now: the wall clock */
    lmdb__owner_hold,
    lmdb__owner_release,
    lmdb__owner_alive,
    env_grow,
    /* version 3: replay keys (A) */
    lmdb__key_get,
    /* version 4: the side table (kv) */
    lmdb__kv_get,
    lmdb__kv_put,
};

const lash_backend_methods *lash_backend_lmdb(void) {
  return &lmdb_methods;
}
