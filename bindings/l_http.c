/* l_http.c - core.http_listen: an HTTP server on the engine's loop.
 *
 * Thin glue over lash_http.h (core/src/http/server.c): each request calls
 * the Lua handler on the loop's thread as handler(req, reply), where req =
 * {method, path, peer, body, query = {k = v}, headers = {lowercase k = v}}
 * and reply is a handle for core.http_respond(reply, status, content_type,
 * body [, headers]); the handler may answer later (from a coroutine of
 * eng:spawn, say). A handler that raises answers 500 with the message; a
 * reply collected unanswered answers 500. Routes and pages live in
 * lua/lash/ui.lua and lua/lash/metrics.lua. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lash_http.h"
#include "llash.h"

#define LLASH_HTTP "lash.HttpServer"
#define LLASH_REPLY "lash.HttpReply"

typedef struct llash_http {
  llash_engine *le;
  lash_http *h;    /* NULL once closed */
  int fn_ref;      /* the handler */
  int self_ref;    /* anchors the userdata while open */
  lua_State *L;    /* a state to unref with */
  llash_link link; /* in le->servers */
} llash_http;

static void server_close(llash_http *s) {
  if (s->h == NULL) return;
  lash_http_close(s->h);
  s->h = NULL;
  llash_list_remove(&s->link);
  luaL_unref(s->L, LUA_REGISTRYINDEX, s->fn_ref);
  luaL_unref(s->L, LUA_REGISTRYINDEX, s->self_ref);
  s->fn_ref = s->self_ref = LUA_NOREF;
}

void llash_http_close_all(llash_engine *le) {
  while (!llash_list_empty(&le->servers))
    server_close(llash_container_of(le->servers.next, llash_http, link));
}

/* ------------------------------------------------------------- replies */

static lash_http_req **checkreply(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, LLASH_REPLY);
}

static int reply_gc(lua_State *L) {
  lash_http_req **u = lua_touserdata(L, 1);
  static const char msg[] = "{\"error\":\"the handler did not answer\"}";
  if (u != NULL && *u != NULL) {
    lash_http_respond(*u, 500, "application/json", msg, sizeof msg - 1, NULL,
                      0);
    *u = NULL;
  }
  return 0;
}

/* core.http_respond(reply, status, content_type, body [, headers]) -> true
 * | nil, msg, "EINVAL" (answered already); headers = {"Name: value", ...} */
static int l_respond(lua_State *L) {
  lash_http_req **u = checkreply(L, 1);
  lua_Integer status = llash_checkint(L, 2, "status");
  const char *ctype = llash_checkstr(L, 3, "content_type");
  size_t len, n = 0, i;
  const char *body = luaL_checklstring(L, 4, &len);
  const char *hs[16];
  int rc;
  if (!lua_isnoneornil(L, 5)) {
    luaL_checktype(L, 5, LUA_TTABLE);
    n = (size_t)luaL_len(L, 5);
    if (n > sizeof hs / sizeof hs[0])
      return luaL_argerror(L, 5, "at most 16 headers");
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, 5, (lua_Integer)i + 1);
      hs[i] = luaL_checkstring(L, -1); /* stays on the stack */
    }
  }
  if (*u == NULL) return llash_fail(L, LASH_EINVAL, "answered already");
  rc = lash_http_respond(*u, (int)status, ctype, body, len, hs, n);
  *u = NULL;
  if (rc < 0) return llash_fail(L, rc, "the answer was not sent");
  lua_pushboolean(L, 1);
  return 1;
}

/* ------------------------------------------------------------ requests */

static int set_pair(void *ud, const char *key, const char *val) {
  lua_State *L = ud;
  char low[128];
  size_t i;
  for (i = 0; key[i] != '\0' && i + 1 < sizeof low; i++)
    low[i] = (char)tolower((unsigned char)key[i]);
  low[i] = '\0';
  lua_pushstring(L, val);
  lua_setfield(L, -2, low);
  return 0;
}

static int set_arg(void *ud, const char *key, const char *val) {
  lua_State *L = ud;
  lua_pushstring(L, val);
  lua_setfield(L, -2, key);
  return 0;
}

static int p_request(lua_State *L) {
  llash_http *s = lua_touserdata(L, 1);
  lash_http_req *r = lua_touserdata(L, 2);
  lash_http_req **u;
  size_t blen;
  const char *body;
  u = lua_newuserdatauv(L, sizeof *u, 0); /* 3: the reply */
  *u = r;
  luaL_setmetatable(L, LLASH_REPLY);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->fn_ref); /* 4 */
  lua_createtable(L, 0, 6);                     /* 5 */
  llash_setstr(L, "method", lash_http_method(r));
  llash_setstr(L, "path", lash_http_path(r));
  llash_setstr(L, "peer", lash_http_peer(r));
  body = lash_http_body(r, &blen);
  lua_pushlstring(L, body, blen);
  lua_setfield(L, -2, "body");
  lua_newtable(L);
  lash_http_pairs(r, 0, set_arg, L);
  lua_setfield(L, -2, "query");
  lua_newtable(L);
  lash_http_pairs(r, 1, set_pair, L);
  lua_setfield(L, -2, "headers");
  lua_pushvalue(L, 3);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    llash_background("lash: error in an HTTP handler: %s\n",
                     msg != NULL ? msg : "(not a string)");
    if (*u != NULL) {
      static const char err[] = "{\"error\":\"the handler raised an error "
                                "(see the server's stderr)\"}";
      lash_http_respond(*u, 500, "application/json", err, sizeof err - 1, NULL,
                        0);
      *u = NULL;
    }
  }
  return 0;
}

static void on_request(void *ud, lash_http_req *r) {
  llash_http *s = ud;
  if (llash_protect(s->le, p_request, s, r) != LUA_OK) {
    /* no reply was made (out of memory before it): answer here */
    static const char err[] = "{\"error\":\"out of memory\"}";
    lash_http_respond(r, 500, "application/json", err, sizeof err - 1, NULL, 0);
  }
}

/* -------------------------------------------------------------- server */

static llash_http *checkserver(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, LLASH_HTTP);
}

/* core.http_listen(eng, addr, handler) -> server | nil, msg, code */
static int l_listen(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *addr = llash_checkstr(L, 2, "addr");
  llash_http *s;
  char err[512] = "";
  int rc;
  llash_checkfn(L, 3, "handler");
  s = lua_newuserdatauv(L, sizeof *s, 1);
  memset(s, 0, sizeof *s);
  s->fn_ref = s->self_ref = LUA_NOREF;
  llash_list_init(&s->link);
  luaL_setmetatable(L, LLASH_HTTP);
  lua_pushvalue(L, 1); /* the engine outlives the server */
  lua_setiuservalue(L, -2, 1);
  rc = lash_http_listen(lash_engine_loop(le->e), addr, on_request, s, &s->h,
                        err, sizeof err);
  if (rc < 0) return llash_fail(L, rc, err);
  s->le = le;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  s->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_pushvalue(L, 3);
  s->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  s->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  llash_list_push(&le->servers, &s->link);
  return 1;
}

/* server:address() -> "127.0.0.1:40123" | nil when closed */
static int l_address(lua_State *L) {
  llash_http *s = checkserver(L, 1);
  if (s->h == NULL) return 0;
  lua_pushstring(L, lash_http_address(s->h));
  return 1;
}

/* server:close() */
static int l_close(lua_State *L) {
  server_close(checkserver(L, 1));
  return 0;
}

void llash_http_open(lua_State *L) {
  static const luaL_Reg server[] = {
      {"address", l_address}, {"close", l_close}, {NULL, NULL}};
  static const luaL_Reg raw[] = {
      {"http_listen", l_listen}, {"http_respond", l_respond}, {NULL, NULL}};
  luaL_newmetatable(L, LLASH_HTTP);
  lua_newtable(L);
  luaL_setfuncs(L, server, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newmetatable(L, LLASH_REPLY);
  lua_pushcfunction(L, reply_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  llash_add_functions(L, raw);
}
