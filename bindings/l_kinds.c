/* l_kinds.c - kind definitions and live workers in the store (issue 11):
 * core.kind_put, core.kind_get, core.kinds, core.workers. Listings are
 * copied out of the store's read first and pushed after it ended, so a
 * Lua error while pushing never leaves a read open. */
#include "llash.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- a byte list */

/* Entries copied out of a listing: each a fixed head and its bytes. */
typedef struct item {
  lash_kind_info k;
  lash_worker_info w;
  size_t off, len; /* options / kinds_mp bytes in the blob */
} item;

typedef struct items {
  item *v;
  size_t n, cap;
  char *blob;
  size_t blen, bcap;
} items;

static int items_add(items *it, const void *bytes, size_t len, item **out) {
  if (it->n == it->cap) {
    size_t cap = it->cap ? it->cap * 2 : 16;
    item *nv = realloc(it->v, cap * sizeof *nv);
    if (nv == NULL) return LASH_ENOMEM;
    it->v = nv;
    it->cap = cap;
  }
  if (it->blen + len > it->bcap) {
    size_t cap = it->bcap ? it->bcap : 256;
    char *nb;
    while (cap < it->blen + len)
      cap *= 2;
    if ((nb = realloc(it->blob, cap)) == NULL) return LASH_ENOMEM;
    it->blob = nb;
    it->bcap = cap;
  }
  *out = &it->v[it->n++];
  memset(*out, 0, sizeof **out);
  (*out)->off = it->blen;
  (*out)->len = len;
  if (len > 0) memcpy(it->blob + it->blen, bytes, len);
  it->blen += len;
  return 0;
}

static void items_free(void *p) {
  items *it = p;
  free(it->v);
  free(it->blob);
  free(it);
}

static int kinds_cb(void *ud, const lash_kind_info *k);
static int workers_cb(void *ud, const lash_worker_info *w);

/* Copies a listing (the kinds, or with @p workers the workers) out of the
 * store into a guarded list, the guard pushed; NULL with the failure
 * pushed instead (*nret values). */
static items *collect(lua_State *L, llash_engine *le, int workers, int *nret) {
  llash_guard *g = llash_guard_new(L, NULL, NULL);
  lash_store *s = lash_engine_store(le->e);
  items *it = calloc(1, sizeof *it);
  int rc;
  if (it == NULL) {
    *nret = llash_fail(L, LASH_ENOMEM, "out of memory listing the store");
    return NULL;
  }
  g->p = it;
  g->free = items_free;
  rc = workers ? lash_workers_list(s, NULL, workers_cb, it)
               : lash_kinds_list(s, NULL, kinds_cb, it);
  if (rc < 0) {
    *nret = llash_fail_store(L, le, rc);
    return NULL;
  }
  return it;
}

/* ------------------------------------------------------------- kinds */

typedef struct put_ud {
  const char *kind;
  lash_bytes opts;
  uint32_t version;
} put_ud;

static int put_fn(lash_store *s, lash_txn *txn, void *ud) {
  put_ud *p = ud;
  return lash_kind_put(s, txn, p->kind, p->opts, &p->version);
}

/* core.kind_put(eng, kind, options) -> version, changed | nil, msg, code:
 * stores the definition in one commit with the engine's queued writes (and
 * its worker entry). */
static int l_kind_put(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  put_ud p;
  int rc;
  if ((rc = llash_argid(L, 2, "kind", LASH_RULE_NAME, 0, &p.kind)) != 0)
    return rc;
  luaL_checktype(L, 3, LUA_TTABLE);
  if (llash_encode(L, 3, "options", &p.opts) < 0)
    return llash_fail(L, LASH_EINVAL, lua_tostring(L, -1));
  p.version = 0;
  rc = lash_engine_write_sync(le->e, put_fn, &p);
  if (rc < 0) return llash_fail_store(L, le, rc);
  lua_pushinteger(L, (lua_Integer)p.version);
  lua_pushboolean(L, rc == 1);
  return 2;
}

static void push_kind(lua_State *L, const lash_kind_info *k, lash_bytes opts) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, k->kind);
  lua_setfield(L, -2, "kind");
  lua_pushinteger(L, (lua_Integer)k->version);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, (lua_Integer)k->updated_at);
  lua_setfield(L, -2, "updated_at");
  llash_pushpayload(L, opts);
  lua_setfield(L, -2, "options");
}

/* core.kind_get(eng, kind) -> {kind, version, updated_at, options} | nil
 * (none stored) | nil, msg, code */
static int l_kind_get(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lash_store *s = lash_engine_store(le->e);
  lash_kind_info k;
  const char *kind;
  int rc;
  if ((rc = llash_argid(L, 2, "kind", LASH_RULE_NAME, 0, &kind)) != 0)
    return rc;
  rc = lash_kind_get(s, NULL, kind, &k);
  if (rc == LASH_ENOENT) {
    lua_pushnil(L);
    return 1;
  }
  if (rc < 0) return llash_fail_store(L, le, rc);
  /* k.options lives until the next call on the store: copy it to Lua
   * first (a string), then decode. */
  lua_pushlstring(L, k.options.data, k.options.len);
  {
    size_t n;
    const char *p = lua_tolstring(L, -1, &n);
    lash_bytes b;
    b.data = p;
    b.len = n;
    push_kind(L, &k, b);
  }
  return 1;
}

static int kinds_cb(void *ud, const lash_kind_info *k) {
  items *it = ud;
  item *e;
  int rc = items_add(it, k->options.data, k->options.len, &e);
  if (rc == 0) e->k = *k;
  return rc;
}

/* core.kinds(eng) -> array of {kind, version, updated_at, options} */
static int l_kinds(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  int gi, nret = 0;
  items *it = collect(L, le, 0, &nret);
  size_t i;
  if (it == NULL) return nret;
  gi = lua_gettop(L);
  lua_createtable(L, (int)it->n, 0);
  for (i = 0; i < it->n; i++) {
    lash_bytes b;
    b.data = it->blob + it->v[i].off;
    b.len = it->v[i].len;
    push_kind(L, &it->v[i].k, b);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_replace(L, gi);
  return 1;
}

/* ----------------------------------------------------------- workers */

static int workers_cb(void *ud, const lash_worker_info *w) {
  items *it = ud;
  item *e;
  int rc = items_add(it, w->kinds_mp.data, w->kinds_mp.len, &e);
  if (rc == 0) e->w = *w;
  return rc;
}

/* core.workers(eng) -> array of {owner, incarnation, pid, host, kinds,
 * started_at, heartbeat_at, alive} */
static int l_workers(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  int gi, nret = 0;
  items *it = collect(L, le, 1, &nret);
  size_t i;
  if (it == NULL) return nret;
  gi = lua_gettop(L);
  lua_createtable(L, (int)it->n, 0);
  for (i = 0; i < it->n; i++) {
    const lash_worker_info *w = &it->v[i].w;
    lash_bytes b;
    b.data = it->blob + it->v[i].off;
    b.len = it->v[i].len;
    lua_createtable(L, 0, 8);
    lua_pushstring(L, w->owner);
    lua_setfield(L, -2, "owner");
    lua_pushstring(L, w->incarnation);
    lua_setfield(L, -2, "incarnation");
    lua_pushinteger(L, (lua_Integer)w->pid);
    lua_setfield(L, -2, "pid");
    lua_pushstring(L, w->host);
    lua_setfield(L, -2, "host");
    if (b.len > 0) {
      llash_pushpayload(L, b);
    } else {
      lua_newtable(L);
      luaL_setmetatable(L, LLASH_ARRAY);
    }
    lua_setfield(L, -2, "kinds");
    lua_pushinteger(L, (lua_Integer)w->started_at);
    lua_setfield(L, -2, "started_at");
    lua_pushinteger(L, (lua_Integer)w->heartbeat_at);
    lua_setfield(L, -2, "heartbeat_at");
    /* unknown (-1: the backend cannot tell) counts as alive */
    lua_pushboolean(L, w->alive != 0);
    lua_setfield(L, -2, "alive");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_replace(L, gi);
  return 1;
}

void llash_kinds_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"kind_put", l_kind_put},
                                 {"kind_get", l_kind_get},
                                 {"kinds", l_kinds},
                                 {"workers", l_workers},
                                 {NULL, NULL}};
  llash_add_functions(L, fns);
}
