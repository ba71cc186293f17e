/* l_helpers.c - what every part of the bindings uses: argument checks that
 * name the argument, fields of option tables, the nil, msg, code failure,
 * guards for C resources, and protected calls from loop callbacks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LASH_HAVE_LUV
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes" /* luv.h's own */
#include <luv/luv.h>
#pragma GCC diagnostic pop
#endif
#include "llash.h"

char *llash_strdup(const char *s) {
  size_t n;
  char *p;
  if (s == NULL) return NULL;
  n = strlen(s) + 1;
  p = malloc(n);
  if (p != NULL) memcpy(p, s, n);
  return p;
}

/* ------------------------------------------------------------ failures */

int llash_fail(lua_State *L, int rc, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg != NULL && msg[0] != '\0' ? msg : lash_strerror(rc));
  lua_pushstring(L, lash_err_name(rc));
  return 3;
}

int llash_fail_store(lua_State *L, llash_engine *le, int rc) {
  return llash_fail(L, rc, lash_errmsg(lash_engine_store(le->e)));
}

/* -------------------------------------------------------------- engines */

llash_engine *llash_checkengine(lua_State *L, int idx) {
  llash_engine **u = luaL_checkudata(L, idx, LLASH_ENGINE);
  if (*u == NULL) luaL_error(L, "attempt to use a closed lash engine");
  return *u;
}

/* libuv loops are not re-entrant, so plain-code waits must not run luv's
 * loop while uv.run runs it. */
int llash_luv_running(const llash_engine *le) {
#ifdef LASH_HAVE_LUV
  return le->luv != NULL && ((const luv_ctx_t *)le->luv)->mode != -1;
#else
  (void)le;
  return 0;
#endif
}

void *llash_luv_context(lua_State *L) {
#ifdef LASH_HAVE_LUV
  void *ctx;
  /* luv keeps its context (loop first) in the registry. */
  lua_getfield(L, LUA_REGISTRYINDEX, "luv_context");
  ctx = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return ctx;
#else
  (void)L;
  return NULL;
#endif
}

struct uv_loop_s *llash_luv_loop(void *luv) {
#ifdef LASH_HAVE_LUV
  return ((luv_ctx_t *)luv)->loop;
#else
  (void)luv;
  return NULL;
#endif
}

/* ----------------------------------------------------- argument checks */

static int typeerr(lua_State *L, int idx, const char *name, const char *want) {
  return luaL_argerror(L, idx,
                       lua_pushfstring(L, "%s: %s expected, got %s", name, want,
                                       luaL_typename(L, idx)));
}

const char *llash_checkstr(lua_State *L, int idx, const char *name) {
  if (lua_type(L, idx) != LUA_TSTRING) typeerr(L, idx, name, "string");
  return lua_tostring(L, idx);
}

const char *llash_optstr(lua_State *L, int idx, const char *name) {
  if (lua_isnoneornil(L, idx)) return NULL;
  return llash_checkstr(L, idx, name);
}

int llash_argid(lua_State *L, int idx, const char *name, int rule, int opt,
                const char **out) {
  char msg[512];
  size_t len;
  const char *s;
  *out = NULL;
  if (opt && lua_isnoneornil(L, idx)) return 0;
  llash_checkstr(L, idx, name);
  s = lua_tolstring(L, idx, &len);
  if (rule == 0 && strlen(s) != len) {
    snprintf(msg, sizeof msg, "%s has a NUL byte (0x00) at byte %zu", name,
             strlen(s) + 1);
    return llash_fail(L, LASH_EINVAL, msg);
  }
  if (rule != 0 && lash_check_string(rule, name, s, len, msg, sizeof msg) < 0)
    return llash_fail(L, LASH_EINVAL, msg);
  *out = s;
  return 0;
}

lua_Integer llash_checkint(lua_State *L, int idx, const char *name) {
  if (!lua_isinteger(L, idx)) {
    if (lua_type(L, idx) == LUA_TNUMBER)
      luaL_argerror(
          L, idx, lua_pushfstring(L, "%s: number has no integer value", name));
    typeerr(L, idx, name, "integer");
  }
  return lua_tointeger(L, idx);
}

lua_Integer llash_optint(lua_State *L, int idx, const char *name,
                         lua_Integer def) {
  if (lua_isnoneornil(L, idx)) return def;
  return llash_checkint(L, idx, name);
}

lua_Integer llash_optcount(lua_State *L, int idx, const char *name,
                           lua_Integer def) {
  lua_Integer v = llash_optint(L, idx, name, def);
  if (v < 0) luaL_argerror(L, idx, lua_pushfstring(L, "%s must be >= 0", name));
  return v;
}

void llash_checkfn(lua_State *L, int idx, const char *name) {
  if (lua_type(L, idx) != LUA_TFUNCTION) typeerr(L, idx, name, "function");
}

int llash_checkname(lua_State *L, int idx, const char *name,
                    const char *const names[]) {
  const char *s = llash_checkstr(L, idx, name);
  int i;
  for (i = 0; names[i] != NULL; i++)
    if (strcmp(names[i], s) == 0) return i;
  return luaL_argerror(L, idx,
                       lua_pushfstring(L, "%s: unknown name \"%s\"", name, s));
}

int llash_checkenum(lua_State *L, int idx, const char *name,
                    const char *(*name_of)(int)) {
  const char *s = llash_checkstr(L, idx, name), *n;
  int i;
  for (i = 1; (n = name_of(i)) != NULL; i++)
    if (strcmp(n, s) == 0) return i;
  return luaL_argerror(L, idx,
                       lua_pushfstring(L, "%s: unknown name \"%s\"", name, s));
}

int64_t llash_opttimeout(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return -1;
  return (int64_t)llash_optcount(L, idx, "timeout_ms", 0);
}

/* -------------------------------------------------------- option fields */

static void fielderr(lua_State *L, const char *k, const char *want) {
  luaL_error(L, "option %s: %s expected, got %s", k, want,
             luaL_typename(L, -1));
}

lua_Integer llash_field_int(lua_State *L, int t, const char *k) {
  lua_Integer v = 0;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    if (!lua_isinteger(L, -1)) fielderr(L, k, "integer");
    v = lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

int llash_field_bool(lua_State *L, int t, const char *k) {
  int v;
  lua_getfield(L, t, k);
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *llash_field_str(lua_State *L, int t, const char *k) {
  int type = lua_getfield(L, t, k);
  if (type == LUA_TNIL) return NULL;
  if (type != LUA_TSTRING) fielderr(L, k, "string");
  return lua_tostring(L, -1);
}

/* ---------------------------------------------------------------- guards */

static int guard_gc(lua_State *L) {
  llash_guard *g = lua_touserdata(L, 1);
  if (g != NULL && g->free != NULL) {
    g->free(g->p);
    g->free = NULL;
  }
  return 0;
}

llash_guard *llash_guard_new(lua_State *L, void (*fn)(void *), void *p) {
  llash_guard *g = lua_newuserdatauv(L, sizeof *g, 0);
  memset(g, 0, sizeof *g);
  if (luaL_newmetatable(L, "lash.Guard")) {
    lua_pushcfunction(L, guard_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  g->free = fn;
  g->p = p;
  return g;
}

void llash_guard_done(lua_State *L, int idx) {
  llash_guard *g = lua_touserdata(L, idx);
  if (g->free != NULL) {
    g->free(g->p);
    g->free = NULL;
  }
  lua_remove(L, idx);
}

void llash_waiter_clear(llash_waiter *w) {
  if (w->ext_free != NULL) w->ext_free(w->ext);
  w->ext = NULL;
  w->ext_free = NULL;
  w->ext_push = NULL;
  lash_wait_free(w->wait); /* a pending one is cancelled silently */
  w->wait = NULL;
  lash_wait_free(w->res);
  w->res = NULL;
  free(w->label);
  w->label = NULL;
  w->done = 0;
}

void llash_free_record(void *p) {
  lash_record_free(p);
}

void llash_free_wait(void *p) {
  lash_wait_free(p);
}

/* --------------------------------------------------------- module setup */

void llash_add_methods(lua_State *L, const luaL_Reg *fns) {
  lua_getfield(L, -1, "Engine");
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}

void llash_add_functions(lua_State *L, const luaL_Reg *raw) {
  luaL_setfuncs(L, raw, 0);
}

/* ------------------------------------------------------------ protection */

static llash_printer printer;

void llash_set_printer(llash_printer fn) {
  printer = fn;
}

void llash_background(const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (printer != NULL) {
    printer(buf);
  } else {
    fputs(buf, stderr);
    fflush(stderr);
  }
}

int llash_protect(llash_engine *le, lua_CFunction f, void *a, void *b) {
  lua_State *L = le->L;
  int st;
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, a);
  lua_pushlightuserdata(L, b);
  st = lua_pcall(L, 2, 0, 0);
  if (st != LUA_OK) {
    llash_background("lash: error in a loop callback: %s\n",
                     lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                    : "(not a string)");
    lua_pop(L, 1);
  }
  return st;
}

/* ---- issue 13 (retry) ---------------------------------------------- */

lua_Number llash_numfield(lua_State *L, int t, const char *k) {
  lua_Number v;
  lua_getfield(L, t, k);
  v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
  lua_pop(L, 1);
  return v;
}

lash_retry_policy llash_policy(lua_State *L, int idx) {
  lash_retry_policy p;
  memset(&p, 0, sizeof p);
  if (!lua_istable(L, idx)) return p;
  idx = lua_absindex(L, idx);
  p.max_attempts = (uint32_t)llash_numfield(L, idx, "max_attempts");
  p.initial_ms = (int64_t)llash_numfield(L, idx, "initial_ms");
  p.factor = llash_numfield(L, idx, "factor");
  p.max_ms = (int64_t)llash_numfield(L, idx, "max_ms");
  p.jitter = llash_numfield(L, idx, "jitter");
  return p;
}
