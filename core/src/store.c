/* store.c - opening a store, transactions, the commit hook, meta. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen, strdup, clock_gettime, getrandom */
#endif
#include "lash-int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const db_names[LASH__DB_COUNT] = {
    "records",  "events",  "leases",     "live",
    "bystatus", "changes", "tombstones", "meta"};

#define META_FORMAT "format"
#define META_CHANGE_SEQ "change_seq"
#define META_COUNTS "counts"

/* --------------------------------------------------------------- keys */

void lash__be64(unsigned char *p, uint64_t v) {
  int i;
  for (i = 7; i >= 0; i--) {
    p[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
}

uint64_t lash__get_be64(const unsigned char *p) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

size_t lash__evkey(unsigned char *k, const char *id, size_t idlen,
                   uint64_t seq) {
  memcpy(k, id, idlen);
  k[idlen] = 0;
  lash__be64(k + idlen + 1, seq);
  return idlen + 9;
}

size_t lash__livekey(unsigned char *k, lash__sv kind, const char *id,
                     size_t idlen) {
  memcpy(k, kind.p, kind.n);
  k[kind.n] = 0;
  memcpy(k + kind.n + 1, id, idlen);
  return kind.n + 1 + idlen;
}

size_t lash__statkey(unsigned char *k, int status, const char *id,
                     size_t idlen) {
  k[0] = (unsigned char)status;
  memcpy(k + 1, id, idlen);
  return idlen + 1;
}

/* -------------------------------------------------------------- clock */

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lash__now(lash_store *s) {
  return s->clock != NULL ? s->clock(s->clock_ud) : wall_ms();
}

int64_t lash_store_now(lash_store *s) {
  return lash__now(s);
}

void lash_store_set_clock(lash_store *s, lash_clock_fn fn, void *ud) {
  s->clock = fn;
  s->clock_ud = fn != NULL ? ud : NULL;
}

size_t lash_store_max_payload(const lash_store *s) {
  return s->opts.max_payload;
}

const char *lash_store_path(const lash_store *s) {
  return s->path;
}

int lash_store_wake_source(lash_store *s, lash_wake_source *out) {
  if (out == NULL) return LASH_EINVAL;
  memset(out, 0, sizeof *out);
  out->kind = LASH_WAKE_NONE;
  out->fd = -1;
  if (s == NULL) return LASH_EINVAL;
  /* LMDB writes data.mdb on every commit, whoever commits. */
  if ((size_t)snprintf(out->path, sizeof out->path, "%s/data.mdb", s->path) >=
      sizeof out->path)
    return lash__fail(s, LASH_EINVAL, "store path %s is too long to watch",
                      s->path);
  out->kind = LASH_WAKE_FILE;
  return 0;
}

int lash_store_wake_consume(lash_store *s) {
  return s == NULL ? LASH_EINVAL : 0;
}

void lash_store_on_commit(lash_store *s, lash_commit_fn fn, void *ud) {
  s->on_commit = fn;
  s->on_commit_ud = ud;
}

/* ------------------------------------------------------------- tokens */

static uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t seed64(void) {
  uint64_t seed = 0;
  struct timespec ts;
  ssize_t n = getrandom(&seed, sizeof seed, GRND_NONBLOCK);
  if (n != (ssize_t)sizeof seed) {
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed) seed = 0;
      close(fd);
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return seed ^ mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                      ((uint64_t)getpid() << 40));
}

/* A random non-zero token: the seed (random once per store), a counter,
 * the pid and the time, mixed, so two stores or processes never agree. */
uint64_t lash__token(lash_store *s) {
  struct timespec ts;
  uint64_t t;
  clock_gettime(CLOCK_REALTIME, &ts);
  t = mix64(s->tok_seed ^ mix64(++s->tok_ctr) ^
            mix64(((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^
                  (uint64_t)ts.tv_sec));
  return t != 0 ? t : 1;
}

/* --------------------------------------------------------------- open */

void lash_store_opts_init(lash_store_opts *o) {
  memset(o, 0, sizeof *o);
  o->durability = LASH_DURABILITY_FULL;
  o->max_bytes = LASH__DEFAULT_MAP_SIZE;
  o->max_payload = LASH__DEFAULT_MAX_PAYLOAD;
  o->max_readers = LASH__DEFAULT_MAX_READERS;
}

/* Makes sure dir is a usable directory, creating it (0700) when its parent
 * exists. */
static int prepare_dir(lash_store *s, const char *dir, int read_only) {
  struct stat st;
  if (stat(dir, &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return lash__fail(s, LASH_EACCES,
                        "store path %s exists and is not a directory", dir);
    if (!read_only && access(dir, W_OK | X_OK) != 0)
      return lash__fail(s, LASH_EACCES,
                        "store directory %s is not writable (%s): fix its "
                        "permissions or open it read-only",
                        dir, strerror(errno));
    if (read_only && access(dir, R_OK | X_OK) != 0)
      return lash__fail(s, LASH_EACCES,
                        "store directory %s is not readable (%s)", dir,
                        strerror(errno));
    return 0;
  }
  if (errno != ENOENT)
    return lash__fail(s, LASH_EACCES, "cannot access store directory %s: %s",
                      dir, strerror(errno));
  if (read_only)
    return lash__fail(s, LASH_EACCES,
                      "store directory %s does not exist (opened read-only, "
                      "so it was not created)",
                      dir);
  if (mkdir(dir, 0700) != 0) {
    if (errno == ENOENT)
      return lash__fail(s, LASH_EACCES,
                        "cannot create store directory %s: its parent "
                        "directory does not exist",
                        dir);
    if (errno != EEXIST)
      return lash__fail(s, LASH_EACCES, "cannot create store directory %s: %s",
                        dir, strerror(errno));
  }
  return 0;
}

/* Opens the named databases and checks (or writes) the format version. */
static int open_dbs(lash_store *s, int read_only) {
  MDB_txn *mt = NULL;
  MDB_val k, v;
  MDB_stat st;
  unsigned char fmt[4];
  int rc = 0, mrc, i;
  uint32_t version;

  mrc = mdb_txn_begin(s->env, NULL, read_only ? MDB_RDONLY : 0, &mt);
  if (mrc != 0) {
    rc = lash__mdb(s, mrc, "opening the store");
    mt = NULL;
    goto out;
  }
  for (i = 0; i < LASH__DB_COUNT; i++) {
    mrc = mdb_dbi_open(mt, db_names[i], read_only ? 0 : MDB_CREATE, &s->dbi[i]);
    if (mrc == MDB_NOTFOUND) {
      rc = lash__fail(s, LASH_EACCES,
                      "store %s is not initialised (database %s is missing): "
                      "open it once for writing",
                      s->path, db_names[i]);
      goto out;
    }
    if (mrc != 0) {
      rc = lash__mdb(s, mrc, "opening the databases");
      goto out;
    }
  }
  k.mv_data = (void *)META_FORMAT;
  k.mv_size = strlen(META_FORMAT);
  mrc = mdb_get(mt, s->dbi[LASH__DB_META], &k, &v);
  if (mrc == 0) {
    if (v.mv_size != 4) {
      rc = lash__fail(s, LASH_ECORRUPT,
                      "store %s has an unreadable format version", s->path);
      goto out;
    }
    memcpy(fmt, v.mv_data, 4);
    version = ((uint32_t)fmt[0] << 24) | ((uint32_t)fmt[1] << 16) |
              ((uint32_t)fmt[2] << 8) | fmt[3];
    if (version != LASH_FORMAT_VERSION) {
      rc = lash__fail(s, LASH_EFORMAT,
                      "store %s has format version %u, this lash reads "
                      "version %d",
                      s->path, (unsigned)version, LASH_FORMAT_VERSION);
      goto out;
    }
  } else if (mrc == MDB_NOTFOUND) {
    mrc = mdb_stat(mt, s->dbi[LASH__DB_RECORDS], &st);
    if (mrc != 0) {
      rc = lash__mdb(s, mrc, "reading the store");
      goto out;
    }
    if (st.ms_entries != 0) {
      rc = lash__fail(s, LASH_ECORRUPT,
                      "store %s holds records but no format version", s->path);
      goto out;
    }
    if (!read_only) {
      fmt[0] = fmt[1] = fmt[2] = 0;
      fmt[3] = LASH_FORMAT_VERSION;
      v.mv_data = fmt;
      v.mv_size = 4;
      mrc = mdb_put(mt, s->dbi[LASH__DB_META], &k, &v, 0);
      if (mrc != 0) {
        rc = lash__mdb(s, mrc, "writing the format version");
        goto out;
      }
    }
  } else {
    rc = lash__mdb(s, mrc, "reading the format version");
    goto out;
  }
  mrc = mdb_txn_commit(mt);
  mt = NULL;
  if (mrc != 0) rc = lash__mdb(s, mrc, "initialising the store");
out:
  if (mt != NULL) mdb_txn_abort(mt);
  return rc;
}

static void txn_free(lash_txn *t) {
  size_t i;
  for (i = 0; i < t->chcap; i++)
    lash__buf_free(&t->ch[i].rec);
  free(t->ch);
  free(t->hash);
  free(t->out);
  lash__buf_free(&t->ids);
  memset(t, 0, sizeof *t);
}

static void store_free(lash_store *s) {
  int i;
  if (s->rtxn != NULL) mdb_txn_abort(s->rtxn);
  if (s->env != NULL) mdb_env_close(s->env);
  msgpack_zone_destroy(&s->zone);
  lash__buf_free(&s->rbuf);
  lash__buf_free(&s->vbuf);
  for (i = 0; i < LASH__OP_EVENTS; i++) {
    lash__buf_free(&s->ebuf[i]);
    lash__buf_free(&s->pbuf[i]);
  }
  txn_free(&s->own);
  txn_free(&s->batch);
  free(s->path);
  free(s);
}

int lash_store_open(const char *dir, const lash_store_opts *opts,
                    lash_store **out, char *err, size_t errlen) {
  lash_store *s = NULL;
  unsigned flags;
  int rc = 0, mrc;

  if (out != NULL) *out = NULL;
  if (out == NULL || dir == NULL || dir[0] == '\0') {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "lash_store_open: %s",
               dir == NULL || dir[0] == '\0' ? "no store directory given"
                                             : "no output handle given");
    return LASH_EINVAL;
  }
  s = calloc(1, sizeof *s);
  if (s == NULL || !msgpack_zone_init(&s->zone, 4096)) {
    if (err != NULL && errlen > 0)
      snprintf(err, errlen, "out of memory opening store %s", dir);
    free(s);
    return LASH_ENOMEM;
  }
  if (opts != NULL)
    s->opts = *opts;
  else
    lash_store_opts_init(&s->opts);
  if (s->opts.max_bytes == 0) s->opts.max_bytes = LASH__DEFAULT_MAP_SIZE;
  if (s->opts.max_payload == 0) s->opts.max_payload = LASH__DEFAULT_MAX_PAYLOAD;
  if (s->opts.max_readers == 0) s->opts.max_readers = LASH__DEFAULT_MAX_READERS;
  s->path = strdup(dir);
  if (s->path == NULL) {
    rc = lash__fail(s, LASH_ENOMEM, "out of memory opening store %s", dir);
    goto out;
  }
  if (s->opts.durability < LASH_DURABILITY_FULL ||
      s->opts.durability > LASH_DURABILITY_NONE) {
    rc = lash__fail(s, LASH_EINVAL,
                    "store %s: durability %d is not one of full (0), "
                    "nometa (1), none (2)",
                    dir, s->opts.durability);
    goto out;
  }
  if (s->opts.max_payload > (size_t)1 << 30) {
    rc = lash__fail(s, LASH_EINVAL, "store %s: max_payload %zu is over 1 GiB",
                    dir, s->opts.max_payload);
    goto out;
  }
  if ((rc = prepare_dir(s, dir, s->opts.read_only)) < 0) goto out;
  if ((mrc = mdb_env_create(&s->env)) != 0) {
    s->env = NULL;
    rc = lash__mdb(s, mrc, "creating the environment");
    goto out;
  }
  if ((mrc = mdb_env_set_maxdbs(s->env, LASH__DB_COUNT)) != 0 ||
      (mrc = mdb_env_set_mapsize(s->env, s->opts.max_bytes)) != 0 ||
      (mrc = mdb_env_set_maxreaders(s->env, s->opts.max_readers)) != 0) {
    rc = lash__mdb(s, mrc, "configuring the environment");
    goto out;
  }
  flags = MDB_NOTLS;
  if (s->opts.read_only) flags |= MDB_RDONLY;
  if (s->opts.durability == LASH_DURABILITY_NOMETA)
    flags |= MDB_NOMETASYNC;
  else if (s->opts.durability == LASH_DURABILITY_NONE)
    flags |= MDB_NOSYNC;
  mrc = mdb_env_open(s->env, dir, flags, 0600);
  if (mrc != 0) {
    rc = lash__mdb_code(mrc);
    if (mrc == ENOENT) rc = LASH_EACCES;
    rc = lash__fail(s, rc, "cannot open store %s: %s", dir, mdb_strerror(mrc));
    goto out;
  }
  {
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) == 0 && info.me_mapsize > s->opts.max_bytes)
      s->opts.max_bytes = info.me_mapsize;
  }
  if ((rc = open_dbs(s, s->opts.read_only)) < 0) goto out;
  s->tok_seed = seed64();
  s->own.s = s;
  s->batch.s = s;
  s->batch.batch = 1;
  *out = s;
  s = NULL;
out:
  if (s != NULL) {
    if (err != NULL && errlen > 0) snprintf(err, errlen, "%s", s->errmsg);
    store_free(s);
  }
  return rc;
}

static void txn_reset(lash_txn *t);

void lash_store_close(lash_store *s) {
  if (s == NULL) return;
  if (s->batch.active) {
    mdb_txn_abort(s->batch.mt);
    txn_reset(&s->batch);
  }
  if (s->own.active) {
    mdb_txn_abort(s->own.mt);
    txn_reset(&s->own);
  }
  store_free(s);
}

/* --------------------------------------------------------------- meta */

int lash__meta_read(lash_store *s, MDB_txn *mt, uint64_t *change_seq,
                    uint64_t counts[LASH_STATUS_COUNT + 1]) {
  MDB_val v;
  int rc, i;
  *change_seq = 0;
  for (i = 0; i <= LASH_STATUS_COUNT; i++)
    counts[i] = 0;
  rc = lash__get(s, mt, LASH__DB_META, META_CHANGE_SEQ, strlen(META_CHANGE_SEQ),
                 &v);
  if (rc < 0) return rc;
  if (rc == 0) {
    if (v.mv_size != 8)
      return lash__fail(s, LASH_ECORRUPT,
                        "store %s: meta change_seq is corrupt", s->path);
    *change_seq = lash__get_be64(v.mv_data);
  }
  rc = lash__get(s, mt, LASH__DB_META, META_COUNTS, strlen(META_COUNTS), &v);
  if (rc < 0) return rc;
  if (rc == 0) {
    if (v.mv_size != 8 * LASH_STATUS_COUNT)
      return lash__fail(s, LASH_ECORRUPT, "store %s: meta counts are corrupt",
                        s->path);
    for (i = 0; i < LASH_STATUS_COUNT; i++)
      counts[i + 1] = lash__get_be64((const unsigned char *)v.mv_data + 8 * i);
  }
  return 0;
}

int lash__meta_load(lash_txn *t) {
  int rc;
  if (t->meta_loaded) return 0;
  rc = lash__meta_read(t->s, t->mt, &t->change_seq, t->counts);
  if (rc < 0) return rc;
  t->meta_loaded = 1;
  return 0;
}

uint64_t lash__next_change_seq(lash_txn *t) {
  t->meta_dirty = 1;
  return ++t->change_seq;
}

static int meta_flush(lash_txn *t) {
  unsigned char buf[8 * LASH_STATUS_COUNT];
  int rc, i;
  if (!t->meta_dirty) return 0;
  lash__be64(buf, t->change_seq);
  rc = lash__put(t, LASH__DB_META, META_CHANGE_SEQ, strlen(META_CHANGE_SEQ),
                 buf, 8, 0);
  if (rc < 0) return rc;
  for (i = 0; i < LASH_STATUS_COUNT; i++)
    lash__be64(buf + 8 * i, t->counts[i + 1]);
  rc = lash__put(t, LASH__DB_META, META_COUNTS, strlen(META_COUNTS), buf,
                 sizeof buf, 0);
  if (rc < 0) return rc;
  t->meta_dirty = 0;
  return 0;
}

uint64_t lash_change_seq(lash_store *s) {
  MDB_txn *mt = NULL;
  MDB_val v;
  uint64_t seq = 0;
  lash__clear(s);
  if (lash__rbegin(s, NULL, &mt) < 0) return 0;
  if (lash__get(s, mt, LASH__DB_META, META_CHANGE_SEQ, strlen(META_CHANGE_SEQ),
                &v) == 0 &&
      v.mv_size == 8)
    seq = lash__get_be64(v.mv_data);
  lash__rend(s, NULL, mt);
  return seq;
}

/* ------------------------------------------------------ change list */

static uint32_t hash_id(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 16777619u;
  return h;
}

/* Small commits search linearly; larger ones build an index. */
#define LINEAR_MAX 8

static int hash_rebuild(lash_txn *t, size_t cap) {
  uint32_t *h = calloc(cap, sizeof *h);
  size_t i;
  if (h == NULL) return LASH_ENOMEM;
  free(t->hash);
  t->hash = h;
  t->hcap = cap;
  for (i = 0; i < t->nch; i++) {
    const lash__chg *c = &t->ch[i];
    size_t j = hash_id(t->ids.p + c->id_off, c->id_len) & (cap - 1);
    while (h[j] != 0)
      j = (j + 1) & (cap - 1);
    h[j] = (uint32_t)(i + 1);
  }
  t->hused = 1;
  return 0;
}

lash__chg *lash__chg_find(lash_txn *t, const char *id, size_t idlen) {
  size_t i, j;
  if (!t->hused) {
    for (i = 0; i < t->nch; i++) {
      lash__chg *c = &t->ch[i];
      if (c->id_len == idlen && memcmp(t->ids.p + c->id_off, id, idlen) == 0)
        return c;
    }
    return NULL;
  }
  for (j = hash_id(id, idlen) & (t->hcap - 1); t->hash[j] != 0;
       j = (j + 1) & (t->hcap - 1)) {
    lash__chg *c = &t->ch[t->hash[j] - 1];
    if (c->id_len == idlen && memcmp(t->ids.p + c->id_off, id, idlen) == 0)
      return c;
  }
  return NULL;
}

lash__chg *lash__chg_get(lash_txn *t, const char *id, size_t idlen) {
  lash__chg *c = lash__chg_find(t, id, idlen);
  lash__buf keep;
  if (c != NULL) return c;
  if (t->nch == t->chcap) {
    size_t cap = t->chcap ? t->chcap * 2 : 16;
    lash__chg *n = realloc(t->ch, cap * sizeof *n);
    if (n == NULL) return NULL;
    memset(n + t->chcap, 0, (cap - t->chcap) * sizeof *n);
    t->ch = n;
    t->chcap = cap;
  }
  if (lash__buf_reserve(&t->ids, idlen + 1) < 0) return NULL;
  if (t->nch + 1 > LINEAR_MAX && (!t->hused || (t->nch + 1) * 2 > t->hcap)) {
    size_t cap = 64;
    while (cap < (t->nch + 1) * 4)
      cap *= 2;
    if (hash_rebuild(t, cap) < 0) return NULL;
  }
  c = &t->ch[t->nch++];
  keep = c->rec; /* a reused slot keeps its buffer's capacity */
  memset(c, 0, sizeof *c);
  c->rec = keep;
  c->rec.len = 0;
  c->id_off = t->ids.len;
  c->id_len = idlen;
  memcpy(t->ids.p + t->ids.len, id, idlen);
  t->ids.p[t->ids.len + idlen] = '\0';
  t->ids.len += idlen + 1;
  if (t->hused) {
    size_t j = hash_id(id, idlen) & (t->hcap - 1);
    while (t->hash[j] != 0)
      j = (j + 1) & (t->hcap - 1);
    t->hash[j] = (uint32_t)t->nch;
  }
  return c;
}

int lash__wb_flush(lash_txn *t, int drop) {
  unsigned char key[LASH__LIVEKEY_MAX + 1];
  size_t i, kn;
  int rc;
  for (i = 0; i < t->nch; i++) {
    lash__chg *c = &t->ch[i];
    const char *id = t->ids.p + c->id_off;
    if (c->rec_state == 2) {
      int was_live = c->orig_exists && !LASH_IS_TERMINAL(c->orig_status);
      int is_live = !LASH_IS_TERMINAL(c->cur_status);
      if ((rc = lash__put(t, LASH__DB_RECORDS, id, c->id_len, c->rec.p,
                          c->rec.len, 0)) < 0)
        return rc;
      if (!c->orig_exists || c->orig_status != c->cur_status) {
        if (c->orig_exists) {
          kn = lash__statkey(key, c->orig_status, id, c->id_len);
          if ((rc = lash__del(t, LASH__DB_BYSTATUS, key, kn)) < 0) return rc;
        }
        kn = lash__statkey(key, c->cur_status, id, c->id_len);
        if ((rc = lash__put(t, LASH__DB_BYSTATUS, key, kn, "", 0, 0)) < 0)
          return rc;
      }
      if (was_live != is_live) {
        kn = lash__livekey(key, lash__sv_of(c->kind, c->kind_n), id, c->id_len);
        if (is_live)
          rc = lash__put(t, LASH__DB_LIVE, key, kn, "", 0, 0);
        else
          rc = lash__del(t, LASH__DB_LIVE, key, kn);
        if (rc < 0) return rc;
      }
      if (c->orig_exists && c->orig_cs != c->cur_cs) {
        lash__be64(key, c->orig_cs);
        if ((rc = lash__del(t, LASH__DB_CHANGES, key, 8)) < 0) return rc;
      }
      lash__be64(key, c->cur_cs);
      if ((rc = lash__put(t, LASH__DB_CHANGES, key, 8, id, c->id_len, 0)) < 0)
        return rc;
      c->orig_exists = 1;
      c->orig_status = c->cur_status;
      c->orig_cs = c->cur_cs;
      c->rec_state = 1;
    }
    if (c->lease_state == 3) {
      if ((rc = lash__lease_encode(&c->lease, &t->s->vbuf)) < 0) {
        t->rc =
            lash__fail(t->s, rc, "out of memory writing the lease of %s", id);
        return t->rc;
      }
      if ((rc = lash__put(t, LASH__DB_LEASES, id, c->id_len, t->s->vbuf.p,
                          t->s->vbuf.len, 0)) < 0)
        return rc;
      c->lease_state = 2;
    }
    if (drop) {
      c->rec_state = 0;
      c->lease_state = 0;
    }
  }
  return 0;
}

/* -------------------------------------------------------- transactions */

static void txn_reset(lash_txn *t) {
  t->mt = NULL;
  t->active = 0;
  t->rc = 0;
  t->wrote = 0;
  t->tombs_known = 0;
  t->meta_loaded = 0;
  t->meta_dirty = 0;
  t->nch = 0;
  t->ids.len = 0;
  if (t->hused) {
    memset(t->hash, 0, t->hcap * sizeof *t->hash);
    t->hused = 0;
  }
}

/* Another process grew the map (MDB_MAP_RESIZED): adopt its size. LMDB
 * allows that only with no transaction of this process running, so not
 * from inside a listing callback (a read is busy) or during a write. */
static int adopt_mapsize(lash_store *s) {
  if (s->rtxn_busy || s->own.active || s->batch.active) return -1;
  if (s->rtxn != NULL) {
    mdb_txn_abort(s->rtxn);
    s->rtxn = NULL;
  }
  return mdb_env_set_mapsize(s->env, 0) == 0 ? 0 : -1;
}

static int txn_open(lash_store *s, lash_txn *t) {
  int mrc;
  if (s->panicked)
    return lash__fail(s, LASH_EPANIC,
                      "store %s had a fatal storage error: close and reopen it",
                      s->path);
  if (s->opts.read_only)
    return lash__fail(s, LASH_EACCES,
                      "store %s is open read-only: reopen it for writing",
                      s->path);
  mrc = mdb_txn_begin(s->env, NULL, 0, &t->mt);
  if (mrc == MDB_MAP_RESIZED && adopt_mapsize(s) == 0)
    mrc = mdb_txn_begin(s->env, NULL, 0, &t->mt); /* retry once */
  if (mrc != 0) {
    t->mt = NULL;
    return lash__mdb(s, mrc, "starting a write transaction");
  }
  t->active = 1;
  return 0;
}

/* Commits t; calls the hook after success. Always ends t. */
static int txn_finish(lash_txn *t) {
  lash_store *s = t->s;
  int rc = t->rc, mrc;
  size_t i;
  if (rc == 0) rc = lash__wb_flush(t, 0);
  if (rc == 0) rc = meta_flush(t);
  if (rc < 0) {
    mdb_txn_abort(t->mt);
    txn_reset(t);
    return rc;
  }
  mrc = mdb_txn_commit(t->mt);
  t->mt = NULL;
  if (mrc != 0) {
    rc = lash__mdb(s, mrc, "committing");
    if (rc == LASH_EIO) s->panicked = 1;
    txn_reset(t);
    return rc;
  }
  if (s->on_commit != NULL && t->nch > 0) {
    size_t n = 0;
    if (t->outcap < t->nch) {
      lash_change *nw = realloc(t->out, t->nch * sizeof *nw);
      if (nw == NULL) {
        /* The commit is durable; only the notification is lost. */
        txn_reset(t);
        return 0;
      }
      t->out = nw;
      t->outcap = t->nch;
    }
    for (i = 0; i < t->nch; i++) {
      const lash__chg *c = &t->ch[i];
      if (!c->report) continue;
      t->out[n].id = t->ids.p + c->id_off;
      t->out[n].first_seq = c->first_seq;
      t->out[n].last_seq = c->last_seq;
      t->out[n].status = c->status;
      t->out[n].registered = c->registered;
      t->out[n].cancel_requested = c->cancel_requested;
      n++;
    }
    if (n > 0) s->on_commit(s->on_commit_ud, t->out, n);
  }
  txn_reset(t);
  return 0;
}

int lash_txn_begin(lash_store *s, lash_txn **out) {
  int rc;
  if (out != NULL) *out = NULL;
  if (s == NULL || out == NULL) return LASH_EINVAL;
  lash__clear(s);
  if (s->batch.active)
    return lash__fail(s, LASH_EINVAL,
                      "store %s already has an open write batch: commit or "
                      "abort it first",
                      s->path);
  if ((rc = txn_open(s, &s->batch)) < 0) return rc;
  *out = &s->batch;
  return 0;
}

int lash_txn_commit(lash_txn *txn) {
  lash_store *s;
  int rc;
  if (txn == NULL || txn->s == NULL) return LASH_EINVAL;
  s = txn->s;
  if (!txn->active)
    return lash__fail(s, LASH_EINVAL, "the write batch is not open");
  lash__clear(s);
  rc = txn->rc;
  if (rc < 0)
    lash__fail(s, rc,
               "the write batch was poisoned by an earlier storage error "
               "(%s); nothing was committed",
               lash_err_name(rc));
  return txn_finish(txn);
}

void lash_txn_abort(lash_txn *txn) {
  if (txn == NULL || !txn->active) return;
  mdb_txn_abort(txn->mt);
  txn_reset(txn);
}

/* A caller's batch must be this store's, open, and not poisoned. */
static int batch_usable(lash_store *s, const lash_txn *txn) {
  if (txn->s != s || !txn->active)
    return lash__fail(s, LASH_EINVAL,
                      "the write batch does not belong to store %s or is "
                      "already finished",
                      s->path);
  if (txn->rc < 0)
    return lash__fail(s, txn->rc,
                      "the write batch was poisoned by an earlier storage "
                      "error (%s): abort it",
                      lash_err_name(txn->rc));
  return 0;
}

int lash__wbegin(lash_store *s, lash_txn *txn, lash_txn **out) {
  if (txn != NULL) {
    int rc = batch_usable(s, txn);
    if (rc < 0) return rc;
    *out = txn;
    return 0;
  }
  if (s->batch.active)
    return lash__fail(s, LASH_EINVAL,
                      "a write batch is open on this store; pass it");
  if (s->own.active)
    return lash__fail(s, LASH_EINVAL,
                      "store %s is in the middle of a write (called from a "
                      "callback?)",
                      s->path);
  *out = &s->own;
  return txn_open(s, &s->own);
}

int lash__wend(lash_store *s, lash_txn *t, int rc) {
  if (t == NULL || t->batch) return rc; /* NULL: the write never began */
  LASH__UNUSED(s);
  if (rc >= 0 && t->rc == 0 && t->wrote) {
    int crc = txn_finish(t);
    return crc < 0 ? crc : rc;
  }
  mdb_txn_abort(t->mt);
  txn_reset(t);
  if (rc >= 0 && t->rc < 0) rc = t->rc;
  return rc;
}

int lash__rbegin(lash_store *s, lash_txn *txn, MDB_txn **mt) {
  int mrc;
  *mt = NULL;
  if (txn != NULL) {
    int rc = batch_usable(s, txn);
    if (rc < 0) return rc;
    *mt = txn->mt;
    return 0;
  }
  if (!s->rtxn_busy) {
    if (s->rtxn != NULL) {
      mrc = mdb_txn_renew(s->rtxn);
      if (mrc != 0) {
        mdb_txn_abort(s->rtxn);
        s->rtxn = NULL;
      }
    }
    if (s->rtxn == NULL) {
      mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
      if (mrc == MDB_MAP_RESIZED && adopt_mapsize(s) == 0)
        mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
      if (mrc != 0) {
        s->rtxn = NULL;
        return lash__mdb(s, mrc, "starting a read transaction");
      }
    }
    s->rtxn_busy = 1;
    *mt = s->rtxn;
    return 0;
  }
  /* Nested read (from a listing callback): a transaction of its own. */
  mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, mt);
  if (mrc != 0) {
    *mt = NULL;
    return lash__mdb(s, mrc, "starting a read transaction");
  }
  return 0;
}

void lash__rend(lash_store *s, lash_txn *txn, MDB_txn *mt) {
  if (txn != NULL || mt == NULL) return;
  if (mt == s->rtxn) {
    mdb_txn_reset(mt);
    s->rtxn_busy = 0;
  } else {
    mdb_txn_abort(mt);
  }
}

/* -------------------------------------------------------- put/get/del */

int lash__put(lash_txn *t, int db, const void *k, size_t kn, const void *v,
              size_t vn, unsigned flags) {
  MDB_val key, val;
  int mrc;
  key.mv_data = (void *)k;
  key.mv_size = kn;
  val.mv_data = (void *)v;
  val.mv_size = vn;
  mrc = mdb_put(t->mt, t->s->dbi[db], &key, &val, flags);
  if (mrc != 0) {
    char what[64];
    snprintf(what, sizeof what, "writing to %s", db_names[db]);
    t->rc = lash__mdb(t->s, mrc, what);
    if (mrc == MDB_KEYEXIST)
      t->rc = lash__fail(t->s, LASH_ECORRUPT,
                         "store %s: the %s index is out of order (run check)",
                         t->s->path, db_names[db]);
    return t->rc;
  }
  t->wrote = 1;
  return 0;
}

int lash__del(lash_txn *t, int db, const void *k, size_t kn) {
  MDB_val key;
  int mrc;
  key.mv_data = (void *)k;
  key.mv_size = kn;
  mrc = mdb_del(t->mt, t->s->dbi[db], &key, NULL);
  if (mrc == MDB_NOTFOUND) return 0;
  if (mrc != 0) {
    char what[64];
    snprintf(what, sizeof what, "deleting from %s", db_names[db]);
    t->rc = lash__mdb(t->s, mrc, what);
    return t->rc;
  }
  t->wrote = 1;
  return 0;
}

int lash__get(lash_store *s, MDB_txn *mt, int db, const void *k, size_t kn,
              MDB_val *v) {
  MDB_val key;
  int mrc;
  key.mv_data = (void *)k;
  key.mv_size = kn;
  mrc = mdb_get(mt, s->dbi[db], &key, v);
  if (mrc == 0) return 0;
  if (mrc == MDB_NOTFOUND) return 1;
  {
    char what[64];
    snprintf(what, sizeof what, "reading %s", db_names[db]);
    return lash__mdb(s, mrc, what);
  }
}

/* -------------------------------------------------------------- stats */

int lash_store_stats(lash_store *s, lash_txn *txn, lash_stats *out) {
  MDB_txn *mt = NULL;
  MDB_stat st;
  MDB_envinfo info;
  int rc, mrc, i;
  uint64_t counts[LASH_STATUS_COUNT + 1];

  lash__clear(s);
  if (out == NULL)
    return lash__fail(s, LASH_EINVAL, "lash_store_stats: no output given");
  memset(out, 0, sizeof *out);
  if ((rc = lash__rbegin(s, txn, &mt)) < 0) return rc;
  if (txn != NULL && txn->meta_loaded) {
    out->change_seq = txn->change_seq;
    memcpy(counts, txn->counts, sizeof counts);
  } else if ((rc = lash__meta_read(s, mt, &out->change_seq, counts)) < 0) {
    goto out;
  }
  for (i = LASH_PENDING; i <= LASH_ABANDONED; i++) {
    out->count[i] = counts[i];
    out->total += counts[i];
    if (!LASH_IS_TERMINAL(i)) out->live += counts[i];
  }
  mrc = mdb_stat(mt, s->dbi[LASH__DB_TOMBS], &st);
  if (mrc != 0) {
    rc = lash__mdb(s, mrc, "reading tombstone statistics");
    goto out;
  }
  out->tombstones = st.ms_entries;
  if ((mrc = mdb_env_info(s->env, &info)) != 0 ||
      (mrc = mdb_env_stat(s->env, &st)) != 0) {
    rc = lash__mdb(s, mrc, "reading environment statistics");
    goto out;
  }
  out->bytes_used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
  out->bytes_available = info.me_mapsize > out->bytes_used
                             ? info.me_mapsize - out->bytes_used
                             : 0;
out:
  lash__rend(s, txn, mt);
  return rc;
}
