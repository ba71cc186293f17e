/* l_ctx.c - the "lash.Ctx" object a body gets: ctx:emit, ctx:cancelled,
 * the fields (id, kind, input, attempt, fence, engine), and the raw parts
 * of the waits init.lua builds (ctx:await, ctx:await_signal,
 * ctx:await_event, ctx:sleep).
 *
 * A ctx wait shows the row as waiting only when it has to park: it begins
 * the wait (one read: an answer already there returns at once), then
 * init.lua records process.waiting, parks, and records process.resumed.
 */
#include <stdlib.h>

#include "llash.h"

static llash_co *checkctx(lua_State *L) {
  llash_co *c = luaL_checkudata(L, 1, LLASH_CTX);
  if (c->type != LLASH_CO_BODY) luaL_argerror(L, 1, "not a process context");
  if (c->run == NULL)
    luaL_error(L, "process %s: its run has ended; ctx is no longer usable",
               c->id != NULL ? c->id : "?");
  return c;
}

/* ctx methods that write or wait must run in the body's own coroutine. */
static llash_co *checkown(lua_State *L) {
  llash_co *c = checkctx(L);
  if (llash_current(L, c->le) != c)
    luaL_error(L, "ctx of %s used outside its body's coroutine", c->id);
  return c;
}

/* A fenced write of the body's run; @p s2 is its type or wait. */
static llash_op *fenced_op(llash_co *c, int type, const char *s2) {
  llash_op *op = llash_op_new(c->le, type, NULL, s2, NULL);
  if (op != NULL) op->lease = *lash_run_lease(c->run);
  return op;
}

/* ctx:emit(type [, payload]) -> seq */
static int l_ctx_emit(lua_State *L) {
  llash_co *c = checkctx(L);
  const char *type;
  llash_op *op;
  int n;
  checkown(L);
  if ((n = llash_argid(L, 2, "event type", LASH_RULE_NAME, 0, &type)) != 0)
    return n;
  lua_settop(L, 3);
  if ((op = fenced_op(c, LLASH_OP_APPEND_FENCED, type)) == NULL)
    return llash_op_nomem(L, op);
  if ((n = llash_op_payload(L, op, 3, "payload")) != 0) return n;
  return llash_write(L, c->le, c, op);
}

/* core.ctx_wait_set(ctx, what) / core.ctx_wait_clear(ctx) -> true */
static int l_ctx_wait_set(lua_State *L) {
  llash_co *c = checkown(L);
  const char *what = llash_checkstr(L, 2, "what");
  llash_op *op = fenced_op(c, LLASH_OP_WAIT_SET, what);
  return op != NULL ? llash_write(L, c->le, c, op) : llash_op_nomem(L, op);
}

static int l_ctx_wait_clear(lua_State *L) {
  llash_co *c = checkown(L);
  llash_op *op = fenced_op(c, LLASH_OP_WAIT_CLEAR, NULL);
  return op != NULL ? llash_write(L, c->le, c, op) : llash_op_nomem(L, op);
}

/* core.ctx_await(ctx, id [, timeout_ms]) -> outcome | false (pending) |
 * nil, msg, code */
static int l_ctx_await(lua_State *L) {
  llash_co *c = checkown(L);
  const char *id;
  int64_t timeout = llash_opttimeout(L, 3);
  llash_waiter *w;
  int rc;
  if ((rc = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0) return rc;
  char label[LLASH_WAIT_LABEL_MAX];
  llash_wait_describe(label, sizeof label, LLASH_W_TERMINAL, id, NULL);
  w = llash_wait_prepare(L, c->le, &c, NULL, LLASH_W_TERMINAL, label);
  rc = lash_await_terminal(c->le->e, c->run, id, timeout, llash_wait_cb, w,
                           &w->wait);
  return llash_wait_begin(L, c, rc);
}

/* core.ctx_await_event(ctx, type, after [, timeout_ms]) -> event | false |
 * nil, msg, code: the first event of this process of exactly @p type
 * after seq @p after. */
static int l_ctx_await_event(lua_State *L) {
  llash_co *c = checkown(L);
  const char *type;
  lua_Integer after = llash_optcount(L, 3, "after", 0);
  int64_t timeout = llash_opttimeout(L, 4);
  llash_waiter *w;
  int rc;
  if ((rc = llash_argid(L, 2, "event type", 0, 0, &type)) != 0) return rc;
  char label[LLASH_WAIT_LABEL_MAX];
  llash_wait_describe(label, sizeof label, LLASH_W_EVENT, c->id, type);
  w = llash_wait_prepare(L, c->le, &c, NULL, LLASH_W_EVENT, label);
  rc = lash_await_event(c->le->e, c->run, c->id, type, (uint64_t)after, timeout,
                        llash_wait_cb, w, &w->wait);
  return llash_wait_begin(L, c, rc);
}

/* core.ctx_sleep(ctx, ms) -> false (a timer is pending) | nil, msg, code */
static int l_ctx_sleep(lua_State *L) {
  llash_co *c = checkown(L);
  lua_Integer ms = llash_checkint(L, 2, "ms");
  llash_waiter *w;
  int rc;
  luaL_argcheck(L, ms >= 0, 2, "ms must be >= 0");
  w = llash_wait_prepare(L, c->le, &c, NULL, LLASH_W_SLEEP, c->id);
  rc = lash_await_sleep(c->le->e, c->run, (int64_t)ms, llash_wait_cb, w,
                        &w->wait);
  return llash_wait_begin(L, c, rc);
}

/* core.ctx_park(ctx) -> the result of the wait begun last */
static int l_ctx_park(lua_State *L) {
  return llash_wait_park(L, checkown(L));
}

/* core.ctx_forget(ctx): drops the wait begun last. */
static int l_ctx_forget(lua_State *L) {
  llash_waiter_clear(&checkown(L)->w);
  return 0;
}

/* ctx:cancelled() -> boolean */
static int l_ctx_cancelled(lua_State *L) {
  llash_co *c = checkctx(L);
  lua_pushboolean(L, lash_run_cancelled(c->run));
  return 1;
}

/* ctx.field: methods first, then the fields table. */
static int l_ctx_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE) return 0;
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int l_ctx_tostring(lua_State *L) {
  llash_co *c = luaL_checkudata(L, 1, LLASH_CTX);
  lua_pushfstring(L, "lash.Ctx (%s)", c->id != NULL ? c->id : "coroutine");
  return 1;
}

static int l_ctx_gc(lua_State *L) {
  llash_co *c = luaL_checkudata(L, 1, LLASH_CTX);
  free(c->id);
  c->id = NULL;
  return 0;
}

void llash_ctx_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"emit", l_ctx_emit}, {"cancelled", l_ctx_cancelled}, {NULL, NULL}};
  static const luaL_Reg raw[] = {
      {"ctx_wait_set", l_ctx_wait_set}, {"ctx_wait_clear", l_ctx_wait_clear},
      {"ctx_await", l_ctx_await},       {"ctx_await_event", l_ctx_await_event},
      {"ctx_sleep", l_ctx_sleep},       {"ctx_park", l_ctx_park},
      {"ctx_forget", l_ctx_forget},     {NULL, NULL}};
  /* module table at -1 */
  llash_add_functions(L, raw);
  luaL_newmetatable(L, LLASH_CTX);
  lua_pushcfunction(L, l_ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_ctx_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "Ctx"); /* core.Ctx: the method table */
  lua_pushcclosure(L, l_ctx_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
