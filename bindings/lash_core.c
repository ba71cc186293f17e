/* lash_core.c - luaopen_lash_core: the lash.core Lua module.
 *
 * The module holds the raw, positional functions (open, define, start, list,
 * await, ...) that lua/lash/init.lua wraps with option tables and defaults,
 * the method tables of engines (core.Engine) and process contexts
 * (core.Ctx), which init.lua extends, the payload codec (encode, decode,
 * null), the version, and the core's names and limits that the Lua layer
 * checks against instead of typing them again:
 *
 *   core.STATUSES      {"pending", ..., "abandoned"}, in lash_status order
 *   core.TERMINAL      the terminal ones, in the same order
 *   core.DISPOSITIONS  {"rerunnable", "owner_bound", "external"}
 *   core.AUTHORITIES   {"external", "workflow", "reconciled_abandon"}
 *   core.DURABILITIES  {"full", "nometa", "none"}
 *   core.ID_MAX, core.NAME_MAX  the byte limits of ids and names
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "llash.h"

/* core.strerror(code) -> text, name */
static int l_strerror(lua_State *L) {
  int rc = (int)luaL_checkinteger(L, 1);
  lua_pushstring(L, lash_strerror(rc));
  lua_pushstring(L, lash_err_name(rc));
  return 2;
}

/* core.random_bytes(n) -> n bytes from the kernel's generator (1..256):
 * generated ids and uuids must differ across processes, which Lua's
 * math.random (seeded from the time and addresses) does not promise. */
static int l_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  unsigned char buf[256];
  size_t got = 0;
  luaL_argcheck(L, n >= 1 && n <= (lua_Integer)sizeof buf, 1, "1 to 256 bytes");
  while (got < (size_t)n) {
    ssize_t r = getrandom(buf + got, (size_t)n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return luaL_error(L, "getrandom: %s", strerror(errno));
    got += (size_t)r;
  }
  lua_pushlstring(L, (const char *)buf, (size_t)n);
  return 1;
}

static void close_dir(void *p) {
  closedir(p);
}

/* core.dir_files(dir) -> array of the names of its regular files (not
 * sorted) | nil, msg, code */
static int l_dir_files(lua_State *L) {
  const char *dir = llash_checkstr(L, 1, "dir");
  struct dirent *d;
  llash_guard *g;
  DIR *dp;
  lua_Integer n = 0;
  lua_settop(L, 1);
  lua_newtable(L);
  g = llash_guard_new(L, NULL, NULL); /* closes dp if a push raises */
  if ((dp = opendir(dir)) == NULL) {
    int err = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "cannot list %s: %s", dir, strerror(err));
    lua_pushstring(L, err == ENOENT ? "ENOENT" : "EIO");
    return 3;
  }
  g->free = close_dir;
  g->p = dp;
  while ((d = readdir(dp)) != NULL) {
    struct stat st;
    lua_pushfstring(L, "%s/%s", dir, d->d_name);
    if (lstat(lua_tostring(L, -1), &st) == 0 && S_ISREG(st.st_mode)) {
      lua_pushstring(L, d->d_name);
      lua_rawseti(L, 2, ++n);
    }
    lua_pop(L, 1);
  }
  llash_guard_done(L, 3);
  return 1;
}

typedef struct lines_ud {
  lua_State *L;
  int t;
} lines_ud;

static void push_line(void *ud, const char *line) {
  lines_ud *u = ud;
  lua_pushstring(u->L, line);
  lua_rawseti(u->L, u->t, (lua_Integer)lua_rawlen(u->L, u->t) + 1);
}

static void store_opts_at(lua_State *L, int idx, lash_store_opts *o) {
  lua_Integer n = luaL_optinteger(L, idx, 0);
  lash_store_opts_init(o);
  o->max_readers = n > 0 && n < 1 << 30 ? (unsigned)n : 0;
}

/* core.check(dir, max_readers) -> problems (lines) | nil, msg, code:
 * lash_check_isolated (a child process walks the store). */
static int l_check_dir(lua_State *L) {
  const char *dir = llash_checkstr(L, 1, "dir");
  char err[1024] = "";
  lash_store_opts o;
  lines_ud u;
  int rc;
  store_opts_at(L, 2, &o);
  lua_settop(L, 2);
  lua_newtable(L);
  u.L = L;
  u.t = 3;
  rc = lash_check_isolated(dir, &o, push_line, &u, err, sizeof err);
  if (rc < 0) {
    lua_pushnil(L);
    lua_pushstring(L, err[0] ? err : lash_strerror(rc));
    lua_pushstring(L, lash_err_name(rc));
    return 3;
  }
  return 1;
}

/* core.salvage(dir, dest, max_readers) -> report | nil, msg, code, report;
 * report = {copied = N, skipped = N, lines = {...}} */
static int l_salvage(lua_State *L) {
  const char *dir = llash_checkstr(L, 1, "dir");
  const char *dest = llash_checkstr(L, 2, "dest");
  char err[1024] = "";
  lash_store_opts o;
  lash_salvage_report rep;
  lines_ud u;
  int rc;
  store_opts_at(L, 3, &o);
  lua_settop(L, 3);
  lua_newtable(L); /* 4: report */
  lua_newtable(L); /* 5: lines */
  u.L = L;
  u.t = 5;
  rc = lash_salvage(dir, dest, &o, push_line, &u, &rep, err, sizeof err);
  lua_setfield(L, 4, "lines");
  lua_pushvalue(L, 4);
  llash_setint(L, "copied", (lua_Integer)rep.copied);
  llash_setint(L, "skipped", (lua_Integer)rep.skipped);
  if (rc < 0) {
    lua_pushnil(L);
    lua_pushstring(L, err[0] ? err : lash_strerror(rc));
    lua_pushstring(L, lash_err_name(rc));
    lua_pushvalue(L, 4);
    return 4;
  }
  return 1;
}

/* Pushes the report of lash_copy as a table. */
static void push_copy_report(lua_State *L, const lash_copy_report *rep) {
  int i;
  lua_newtable(L);
  llash_setint(L, "processes", (lua_Integer)rep->rows);
  llash_setint(L, "events", (lua_Integer)rep->events);
  llash_setint(L, "tombstones", (lua_Integer)rep->tombstones);
  llash_setint(L, "leases_released", (lua_Integer)rep->leases_released);
  llash_setint(L, "suspended", (lua_Integer)rep->suspended);
  llash_setint(L, "change_seq", (lua_Integer)rep->change_seq);
  llash_setint(L, "side", (lua_Integer)rep->side);
  lua_newtable(L);
  for (i = 1; i <= LASH_STATUS_COUNT; i++) {
    lua_pushinteger(L, (lua_Integer)rep->counts[i]);
    lua_setfield(L, -2, lash_status_name(i));
  }
  lua_setfield(L, -2, "statuses");
}

/* core.migrate(from, to) -> report | nil, msg, code, report: opens the
 * source read-only and the target (created when missing), lash_copy. */
static int l_migrate(lua_State *L) {
  const char *from = llash_checkstr(L, 1, "from");
  const char *to = llash_checkstr(L, 2, "to");
  char err[1024] = "";
  lash_store_opts o;
  lash_store *a = NULL, *b = NULL;
  lash_copy_report rep;
  int rc;
  memset(&rep, 0, sizeof rep);
  lash_store_opts_init(&o);
  o.read_only = 1;
  rc = lash_store_open(from, &o, &a, err, sizeof err);
  if (rc == 0) {
    lash_store_opts_init(&o);
    rc = lash_store_open(to, &o, &b, err, sizeof err);
  }
  if (rc == 0) {
    rc = lash_copy(a, b, &rep);
    if (rc < 0) snprintf(err, sizeof err, "%s", lash_errmsg(b));
  }
  lash_store_close(b);
  lash_store_close(a);
  push_copy_report(L, &rep);
  if (rc < 0) {
    lua_pushnil(L);
    lua_pushstring(L, err[0] ? err : lash_strerror(rc));
    lua_pushstring(L, lash_err_name(rc));
    lua_pushvalue(L, -4);
    return 4;
  }
  return 1;
}

/* Pushes the array of the names @p name gives for first..last. */
static void push_names(lua_State *L, const char *(*name)(int), int first,
                       int last, int terminal_only) {
  int i, n = 0;
  lua_newtable(L);
  for (i = first; i <= last; i++) {
    if (terminal_only && !LASH_IS_TERMINAL(i)) continue;
    lua_pushstring(L, name(i));
    lua_rawseti(L, -2, ++n);
  }
}

LASH_API int luaopen_lash_core(lua_State *L);

LASH_API int luaopen_lash_core(lua_State *L) {
  luaL_checkversion(L);
  lua_newtable(L);
  llash_payload_open(L);
  llash_json_open(L);
  llash_engine_open(L); /* first: it makes core.Engine for the others */
  llash_writes_open(L);
  llash_waits_open(L);
  llash_co_open(L);
  llash_ctx_open(L);
  llash_exec_open(L);
  llash_kinds_open(L);
  llash_http_open(L);
  llash_observe_open(L);
  llash_sched_open(L);
  lua_pushcfunction(L, l_strerror);
  lua_setfield(L, -2, "strerror");
  lua_pushcfunction(L, l_random_bytes);
  lua_setfield(L, -2, "random_bytes");
  lua_pushcfunction(L, l_dir_files);
  lua_setfield(L, -2, "dir_files");
  lua_pushcfunction(L, l_check_dir);
  lua_setfield(L, -2, "check");
  lua_pushcfunction(L, l_salvage);
  lua_setfield(L, -2, "salvage");
  lua_pushcfunction(L, l_migrate);
  lua_setfield(L, -2, "migrate");
  lua_pushstring(L, lash_version());
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, LLASH_MAX_DEPTH);
  lua_setfield(L, -2, "max_depth");
  push_names(L, lash_status_name, LASH_PENDING, LASH_ABANDONED, 0);
  lua_setfield(L, -2, "STATUSES");
  push_names(L, lash_status_name, LASH_PENDING, LASH_ABANDONED, 1);
  lua_setfield(L, -2, "TERMINAL");
  push_names(L, lash_disposition_name, LASH_RERUNNABLE, LASH_EXTERNAL, 0);
  lua_setfield(L, -2, "DISPOSITIONS");
  push_names(L, lash_authority_name, LASH_AUTH_EXTERNAL,
             LASH_AUTH_RECONCILED_ABANDON, 0);
  lua_setfield(L, -2, "AUTHORITIES");
  lua_pushinteger(L, LASH_ID_MAX);
  lua_setfield(L, -2, "ID_MAX");
  lua_pushinteger(L, LASH_NAME_MAX);
  lua_setfield(L, -2, "NAME_MAX");
  return 1;
}
