/* l_run.c - coroutines the engine runs: process bodies (with their "lash.Ctx"
 * userdata), eng:spawn functions and on_event handlers.
 *
 * Each coroutine lives in a "lash.Ctx" userdata (uservalue 1: the thread,
 * uservalue 2: the fields table), anchored by a registry ref from its start
 * until it ends or is dropped, and listed in a weak table thread -> userdata
 * so a wait can tell whether it runs in one of ours. Coroutines are resumed
 * only from loop callbacks (the runner's start, a wait or write callback),
 * always through llash_protect.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llash.h"

/* ---------------------------------------------------------- lifetimes */

/* Creates a coroutine userdata of @p le, pushes it, and anchors it. */
llash_co *llash_co_new(lua_State *L, llash_engine *le, int type) {
  llash_co *c = lua_newuserdatauv(L, sizeof *c, 2);
  memset(c, 0, sizeof *c);
  c->ref = LUA_NOREF;
  c->le = le;
  c->type = type;
  c->w.co = c;
  luaL_setmetatable(L, LLASH_CTX);
  c->th = lua_newthread(L);
  lua_setiuservalue(L, -2, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, llash_cos_key());
  lua_getiuservalue(L, -2, 1);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  c->next = le->cos;
  if (le->cos != NULL) le->cos->prev = c;
  le->cos = c;
  return c;
}

/* Unanchors @p c: cancels its wait, detaches its write, forgets its run. */
void llash_co_release(llash_co *c) {
  llash_engine *le = c->le;
  lua_State *L = le->L;
  if (c->ref == LUA_NOREF) return;
  if (c->w.wait != NULL) {
    lash_wait_free(c->w.wait);
    c->w.wait = NULL;
  }
  if (c->w.res != NULL) {
    lash_wait_free(c->w.res);
    c->w.res = NULL;
  }
  if (c->w.op != NULL) {
    if (c->w.done)
      llash_op_free(c->w.op); /* committed, handed over, never read */
    else
      c->w.op->w = NULL; /* still queued: its callback frees it */
    c->w.op = NULL;
  }
  free(c->w.label);
  c->w.label = NULL;
  if (c->run != NULL) {
    lash_run_set_data(c->run, NULL);
    c->run = NULL;
  }
  if (c->prev != NULL)
    c->prev->next = c->next;
  else if (le->cos == c)
    le->cos = c->next;
  if (c->next != NULL) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  c->parked = 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, llash_cos_key());
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
  lua_getiuservalue(L, -1, 1);
  lua_remove(L, -2);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, c->ref);
  c->ref = LUA_NOREF;
}

void llash_engine_release_all(llash_engine *le) {
  while (le->cos != NULL)
    llash_co_release(le->cos);
}

static int l_ctx_gc(lua_State *L) {
  llash_co *c = luaL_checkudata(L, 1, LLASH_CTX);
  free(c->id);
  c->id = NULL;
  return 0;
}

/* -------------------------------------------------------------- endings */

static int p_tostring(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* Pushes a string for the error value at @p idx; never raises except on
 * memory errors (a __tostring that fails is caught). */
static void l_errstring(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    lua_pushvalue(L, idx);
    return;
  }
  if (lua_type(L, idx) == LUA_TTABLE) {
    if (lua_getfield(L, idx, "message") == LUA_TSTRING) return;
    lua_pop(L, 1);
  }
  lua_pushcfunction(L, p_tostring);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
  }
}

static int l_is_cancelled(lua_State *L, int idx) {
  int yes;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, LLASH_CANCELLED);
  yes = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return yes;
}

/* Writes the end of a run: status and the outcome table at the top of L
 * (popped). An outcome too large or not encodable becomes a failure. */
static void l_finish(llash_co *c, lash_run *run, int status) {
  lua_State *L = c->le->L;
  lash_bytes b;
  int rc;
  if (llash_encode(L, -1, "value", &b) < 0) {
    /* Only a completed value can hold what cannot be encoded. */
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "error");
    lua_setfield(L, -2, "class");
    lua_rotate(L, -2, 1);
    lua_setfield(L, -2, "message");
    lua_remove(L, -2);
    status = LASH_FAILED;
    if (llash_encode(L, -1, "value", &b) < 0) {
      lua_pop(L, 2);
      return;
    }
  }
  rc = lash_run_finish(run, status, b);
  lua_pop(L, 2);
  if (rc == LASH_ETOOBIG) {
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "error");
    lua_setfield(L, -2, "class");
    lua_pushfstring(L, "the %s outcome is over the payload size limit",
                    lash_status_name(status));
    lua_setfield(L, -2, "message");
    if (llash_encode(L, -1, "value", &b) == 0)
      rc = lash_run_finish(run, LASH_FAILED, b);
    lua_pop(L, 2);
  }
  if (rc < 0)
    fprintf(stderr, "lash: cannot finish process %s: %s\n",
            c->id != NULL ? c->id : "?", lash_strerror(rc));
}

/* The coroutine @p c returned (LUA_OK), raised, or yielded outside our API
 * (LUA_YIELD): record the end and release it. */
static void l_co_end(llash_co *c, int st, int nres) {
  llash_engine *le = c->le;
  lua_State *L = le->L, *th = c->th;
  lash_run *run = c->run;
  int top = lua_gettop(L);
  luaL_checkstack(L, 8, NULL);
  if (st == LUA_OK) {
    if (c->type == LLASH_CO_BODY && run != NULL) {
      c->run = NULL;
      lash_run_set_data(run, NULL);
      if (nres > 0) {
        lua_pop(th, nres - 1);
        lua_xmove(th, L, 1);
      } else {
        lua_pushnil(L);
      }
      l_finish(c, run, LASH_COMPLETED);
    }
    llash_co_release(c);
    lua_settop(L, top);
    return;
  }
  if (st == LUA_YIELD) {
    lua_pop(th, nres);
    lua_pushliteral(L, "body yielded outside the lash API");
  } else {
    lua_xmove(th, L, 1);
  }
  /* error value at top of L */
  if (c->type == LLASH_CO_BODY && run != NULL) {
    c->run = NULL;
    lash_run_set_data(run, NULL);
    if (l_is_cancelled(L, -1)) {
      lua_createtable(L, 0, 1);
      lua_getfield(L, -2, "reason");
      lua_setfield(L, -2, "reason");
      l_finish(c, run, LASH_CANCELLED);
    } else {
      lua_createtable(L, 0, 3);
      l_errstring(L, -2);
      lua_setfield(L, -2, "message");
      if (lua_type(L, -2) == LUA_TTABLE &&
          lua_getfield(L, -2, "class") == LUA_TSTRING) {
        lua_setfield(L, -2, "class");
      } else {
        if (lua_type(L, -2) == LUA_TTABLE) lua_pop(L, 1);
        lua_pushliteral(L, "error");
        lua_setfield(L, -2, "class");
      }
      if (st != LUA_YIELD) {
        luaL_traceback(L, th, NULL, 0);
        lua_setfield(L, -2, "traceback");
      }
      l_finish(c, run, LASH_FAILED);
    }
  } else if (c->type != LLASH_CO_BODY) {
    l_errstring(L, -1);
    if (st != LUA_YIELD) luaL_traceback(L, th, lua_tostring(L, -1), 0);
    fprintf(stderr, "lash: error in %s: %s\n",
            c->type == LLASH_CO_SPAWN ? "a spawned function"
                                      : "an on_event handler",
            lua_tostring(L, -1));
  }
  llash_closethread(th, L);
  llash_co_release(c);
  lua_settop(L, top);
}

void llash_co_resume(llash_co *c, int nargs) {
  llash_engine *le = c->le;
  int nres = 0, st;
  le->depth++;
  c->running = 1;
  st = lua_resume(c->th, le->L, nargs, &nres);
  c->running = 0;
  le->depth--;
  if (st == LUA_YIELD && c->parked) {
    lua_pop(c->th, nres);
    return;
  }
  l_co_end(c, st, nres);
}

/* ------------------------------------------------------------- runner */

static int l_fail_run(lua_State *L, lash_run *run, const char *msg) {
  lash_bytes b;
  lua_createtable(L, 0, 2);
  lua_pushliteral(L, "error");
  lua_setfield(L, -2, "class");
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  if (llash_encode(L, -1, "value", &b) == 0)
    lash_run_finish(run, LASH_FAILED, b);
  lua_pop(L, 2);
  return 0;
}

static int p_start(lua_State *L) {
  llash_engine *le = lua_touserdata(L, 1);
  lash_run *run = lua_touserdata(L, 2);
  const lash_record *r = lash_run_record(run);
  const lash_lease *ls = lash_run_lease(run);
  llash_co *c;
  int fn, input;
  lua_rawgeti(L, LUA_REGISTRYINDEX, le->state_ref);
  lua_getfield(L, -1, "kinds");
  if (lua_getfield(L, -1, r->kind) != LUA_TFUNCTION) {
    lua_pushfstring(L, "no body is defined for kind %s", r->kind);
    return l_fail_run(L, run, lua_tostring(L, -1));
  }
  fn = lua_gettop(L);
  if (llash_decode(L, r->input.data, r->input.len) < 0)
    return l_fail_run(L, run, "cannot decode the input: malformed MessagePack");
  input = lua_gettop(L);
  c = llash_co_new(L, le, LLASH_CO_BODY);
  c->id = llash_strdup(r->id);
  if (c->id == NULL) {
    llash_co_release(c);
    return luaL_error(L, "out of memory");
  }
  lua_createtable(L, 0, 6);
  lua_pushstring(L, r->id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, r->kind);
  lua_setfield(L, -2, "kind");
  lua_pushvalue(L, input);
  lua_setfield(L, -2, "input");
  lua_pushinteger(L, r->has_attempt ? (lua_Integer)r->attempt.number : 1);
  lua_setfield(L, -2, "attempt");
  lua_pushinteger(L, (lua_Integer)(ls != NULL ? ls->fence : 0));
  lua_setfield(L, -2, "fence");
  lua_getfield(L, fn - 2, "weak");
  lua_getfield(L, -1, "self");
  lua_setfield(L, -3, "engine");
  lua_pop(L, 1);
  lua_setiuservalue(L, -2, 2);
  /* Nothing can fail from here on: the run is ours. */
  c->run = run;
  lash_run_set_data(run, c);
  lua_pushvalue(L, fn);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, input);
  lua_xmove(L, c->th, 3);
  llash_co_resume(c, 2);
  return 0;
}

static int l_runner_start(void *ud, lash_run *run) {
  llash_engine *le = ud;
  return llash_protect(le, p_start, le, run) == LUA_OK ? 0 : LASH_ENOMEM;
}

static int p_release(lua_State *L) {
  llash_co_release(lua_touserdata(L, 1));
  return 0;
}

static void l_runner_drop(void *ud, lash_run *run, int rc) {
  llash_engine *le = ud;
  llash_co *c = lash_run_data(run);
  (void)rc;
  if (c == NULL) return;
  c->run = NULL;
  lash_run_set_data(run, NULL);
  /* A body running right now notices the missing run when it returns. */
  if (!c->running) llash_protect(le, p_release, c, NULL);
}

static int p_event(lua_State *L) {
  llash_engine *le = lua_touserdata(L, 1);
  const lash_event *ev = lua_touserdata(L, 2);
  lua_Integer i, n;
  int hidx, eidx;
  lua_rawgeti(L, LUA_REGISTRYINDEX, le->state_ref);
  lua_getfield(L, -1, "handlers");
  hidx = lua_gettop(L);
  llash_pushevent(L, ev);
  eidx = lua_gettop(L);
  n = (lua_Integer)lua_rawlen(L, hidx);
  for (i = 1; i <= n; i++) {
    llash_co *c = llash_co_new(L, le, LLASH_CO_HANDLER);
    lua_rawgeti(L, hidx, i);
    lua_pushvalue(L, eidx);
    lua_xmove(L, c->th, 2);
    lua_pop(L, 1);
    llash_co_resume(c, 1);
  }
  return 0;
}

static void l_runner_event(void *ud, const lash_event *ev) {
  llash_engine *le = ud;
  if (le->nhandlers > 0) llash_protect(le, p_event, le, (void *)ev);
}

void llash_runner_init(llash_engine *le) {
  lash_runner r;
  r.ud = le;
  r.start = l_runner_start;
  r.drop = l_runner_drop;
  r.event = l_runner_event;
  lash_engine_set_runner(le->e, &r);
}

/* -------------------------------------------------------------- spawn */

static int p_spawn_go(lua_State *L) {
  llash_co *c = lua_touserdata(L, 1);
  if (c->ref != LUA_NOREF) llash_co_resume(c, 0);
  return 0;
}

static void l_spawn_cb(void *ud, lash_wait *w, int rc) {
  llash_co *c = ud;
  c->w.wait = NULL;
  lash_wait_free(w);
  c->parked = 0;
  llash_protect(c->le, rc < 0 ? p_release : p_spawn_go, c, NULL);
}

/* eng:spawn(fn) -> true: runs fn as an engine coroutine, started from the
 * loop (so it runs at the next eng:run / wait from plain code). */
int llash_spawn(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  llash_co *c;
  int rc;
  llash_checkfn(L, 2, "fn");
  lua_settop(L, 2);
  c = llash_co_new(L, le, LLASH_CO_SPAWN);
  lua_pushvalue(L, 2);
  lua_xmove(L, c->th, 1);
  c->w.what = LLASH_W_SPAWN;
  c->parked = 1;
  rc = lash_await_sleep(le->e, NULL, 0, l_spawn_cb, c, &c->w.wait);
  if (rc < 0) {
    lua_State *prev = le->L;
    c->w.wait = NULL;
    le->L = L;
    llash_co_release(c);
    le->L = prev;
    return llash_fail_store(L, le, rc);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ----------------------------------------------------------------- ctx */

static llash_co *l_checkctx(lua_State *L) {
  llash_co *c = luaL_checkudata(L, 1, LLASH_CTX);
  if (c->type != LLASH_CO_BODY) luaL_argerror(L, 1, "not a process context");
  if (c->run == NULL)
    luaL_error(L, "process %s: its run has ended; ctx is no longer usable",
               c->id != NULL ? c->id : "?");
  return c;
}

/* ctx methods that write or wait must run in the body's own coroutine. */
static void l_checkown(lua_State *L, llash_co *c) {
  if (llash_current(L, c->le) != c)
    luaL_error(L, "ctx of %s used outside its body's coroutine", c->id);
}

/* ctx:emit(type [, payload]) -> seq */
static int l_ctx_emit(lua_State *L) {
  llash_co *c = l_checkctx(L);
  const char *type = llash_checkstr(L, 2, "type");
  llash_op *op;
  lash_bytes b;
  l_checkown(L, c);
  lua_settop(L, 3);
  if (llash_encode(L, 3, "payload", &b) < 0)
    return llash_fail(L, LASH_EINVAL, lua_tostring(L, -1));
  op = llash_op_new(c->le, LLASH_OP_APPEND_FENCED);
  if (op != NULL) {
    op->s2 = llash_strdup(type);
    op->payload = malloc(b.len > 0 ? b.len : 1);
  }
  if (op == NULL || op->s2 == NULL || op->payload == NULL) {
    llash_op_free(op);
    return llash_fail(L, LASH_ENOMEM, NULL);
  }
  memcpy(op->payload, b.data, b.len);
  op->len = b.len;
  lua_pop(L, 1);
  op->lease = *lash_run_lease(c->run);
  return llash_write(L, c->le, c, op);
}

/* core.ctx_wait_set(ctx, what) / core.ctx_wait_clear(ctx) -> true */
static int l_ctx_wait_set(lua_State *L) {
  llash_co *c = l_checkctx(L);
  const char *what = llash_checkstr(L, 2, "what");
  llash_op *op;
  l_checkown(L, c);
  op = llash_op_new(c->le, LLASH_OP_WAIT_SET);
  if (op == NULL || (op->s2 = llash_strdup(what)) == NULL) {
    llash_op_free(op);
    return llash_fail(L, LASH_ENOMEM, NULL);
  }
  op->lease = *lash_run_lease(c->run);
  return llash_write(L, c->le, c, op);
}

static int l_ctx_wait_clear(lua_State *L) {
  llash_co *c = l_checkctx(L);
  llash_op *op;
  l_checkown(L, c);
  if ((op = llash_op_new(c->le, LLASH_OP_WAIT_CLEAR)) == NULL)
    return llash_fail(L, LASH_ENOMEM, NULL);
  op->lease = *lash_run_lease(c->run);
  return llash_write(L, c->le, c, op);
}

typedef struct l_find {
  lua_State *L;
  const char *type;
  int found, failed;
} l_find;

static int p_push_ev(lua_State *L) {
  llash_pushevent(L, lua_touserdata(L, 1));
  return 1;
}

static int l_find_cb(void *ud, const lash_event *ev) {
  l_find *f = ud;
  if (strcmp(ev->type, f->type) != 0) return 0;
  lua_pushcfunction(f->L, p_push_ev);
  lua_pushlightuserdata(f->L, (void *)ev);
  if (lua_pcall(f->L, 1, 1, 0) != LUA_OK)
    f->failed = 1;
  else
    f->found = 1;
  return 1;
}

/* core.ctx_find_event(ctx, type, after) -> event | nil: the first event of
 * this process of exactly @p type after seq @p after, without waiting. */
static int l_ctx_find_event(lua_State *L) {
  llash_co *c = l_checkctx(L);
  l_find f;
  int rc;
  f.L = L;
  f.type = llash_checkstr(L, 2, "type");
  f.found = f.failed = 0;
  rc = lash_events_after(lash_engine_store(c->le->e), NULL, c->id,
                         (uint64_t)llash_optint(L, 3, "after", 0), 0, l_find_cb,
                         &f);
  if (f.failed) return lua_error(L);
  if (f.found) return 1;
  if (rc < 0) return llash_fail_store(L, c->le, rc);
  lua_pushnil(L);
  return 1;
}

/* core.ctx_sleep(ctx, ms) -> true (a timer, without the waiting status) */
static int l_ctx_sleep(lua_State *L) {
  llash_co *c = l_checkctx(L);
  lua_Integer ms = llash_checkint(L, 2, "ms");
  int rc;
  if (ms < 0) luaL_argerror(L, 2, "ms must be >= 0");
  l_checkown(L, c);
  if (c->le->batch) return luaL_error(L, "cannot wait inside eng:batch");
  llash_check_yieldable(L);
  if (lash_run_cancelled(c->run)) return llash_raise_cancelled(L, c->le, c->id);
  memset(&c->w, 0, sizeof c->w);
  c->w.co = c;
  c->w.what = LLASH_W_SLEEP;
  c->w.label = llash_strdup(c->id);
  rc = lash_await_sleep(c->le->e, c->run, (int64_t)ms, llash_wait_cb, &c->w,
                        &c->w.wait);
  return llash_wait(L, c->le, c, &c->w, rc);
}

/* ctx:cancelled() -> boolean */
static int l_ctx_cancelled(lua_State *L) {
  llash_co *c = l_checkctx(L);
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

void llash_ctx_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"emit", l_ctx_emit}, {"cancelled", l_ctx_cancelled}, {NULL, NULL}};
  static const luaL_Reg raw[] = {{"ctx_sleep", l_ctx_sleep},
                                 {"ctx_wait_set", l_ctx_wait_set},
                                 {"ctx_wait_clear", l_ctx_wait_clear},
                                 {"ctx_find_event", l_ctx_find_event},
                                 {NULL, NULL}};
  /* module table at -1 */
  luaL_setfuncs(L, raw, 0);
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
