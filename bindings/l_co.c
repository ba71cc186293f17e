/* l_co.c - coroutines the engine runs: process bodies (with their "lash.Ctx"
 * userdata), eng:spawn functions and on_event handlers.
 *
 * Each coroutine lives in a "lash.Ctx" userdata (uservalue 1: the thread,
 * uservalue 2: the fields table), anchored by a registry ref from its start
 * until it ends or is dropped, and listed in a weak table thread -> userdata
 * so a wait can tell whether it runs in one of ours. Coroutines are resumed
 * only from loop callbacks (the runner's start, a wait or write callback),
 * always through llash_protect. What a coroutine parks on (a wait, a write)
 * belongs to l_waits.c and l_writes.c; here it is only let go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llash.h"

/* A stall hook that fires later than this after it was set found the body
 * inside a blocking C call (not spinning in Lua): logged, not failed. */
#define STALL_LATE_MS 250

/* Registry key of the table thread -> coroutine userdata (weak keys). */
static char cos_key;

/* ---------------------------------------------------------- lifetimes */

llash_co *llash_co_new(lua_State *L, llash_engine *le, int type) {
  llash_co *c = lua_newuserdatauv(L, sizeof *c, 3);
  memset(c, 0, sizeof *c);
  c->ref = LUA_NOREF;
  c->nondet_ref = LUA_NOREF;
  c->le = le;
  c->type = type;
  c->w.co = c;
  llash_list_init(&c->link);
  luaL_setmetatable(L, LLASH_CTX);
  c->th = lua_newthread(L);
  *(llash_co **)lua_getextraspace(c->th) = c;
  lua_setiuservalue(L, -2, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cos_key);
  lua_getiuservalue(L, -2, 1);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  c->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  llash_list_push(&le->cos, &c->link);
  return c;
}

void llash_co_release(llash_co *c) {
  lua_State *L = c->le->L;
  if (c->ref == LUA_NOREF) return;
  llash_waiter_clear(&c->w);
  if (c->op != NULL) { /* still queued: its callback frees it */
    c->op->co = NULL;
    c->op = NULL;
  }
  if (c->wwait != NULL) {
    lash_wait_free(c->wwait);
    c->wwait = NULL;
  }
  if (c->run != NULL) {
    lash_run_set_data(c->run, NULL);
    c->run = NULL;
  }
  llash_list_remove(&c->link);
  c->parked = 0;
  if (c->nondet_ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, c->nondet_ref);
    c->nondet_ref = LUA_NOREF;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cos_key);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
  lua_getiuservalue(L, -1, 1);
  lua_remove(L, -2);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, c->ref);
  c->ref = LUA_NOREF;
}

void llash_co_release_all(llash_engine *le) {
  while (!llash_list_empty(&le->cos))
    llash_co_release(llash_container_of(le->cos.next, llash_co, link));
}

static llash_co *co_of(lua_State *L, llash_engine *le) {
  llash_co *c;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cos_key);
  lua_pushthread(L);
  lua_rawget(L, -2);
  c = lua_touserdata(L, -1);
  lua_pop(L, 2);
  return c != NULL && c->le == le ? c : NULL;
}

llash_co *llash_current(lua_State *L, llash_engine *le) {
  llash_co *c;
  if (le->depth == 0) return NULL;
  if ((c = co_of(L, le)) == NULL)
    luaL_error(L, "lash: waits and writes inside a lash coroutine must run "
                  "in that coroutine, not in one nested inside it");
  return c;
}

llash_co *llash_writer(lua_State *L, llash_engine *le) {
  /* Writes from a coroutine nested in a body commit synchronously. */
  return le->depth > 0 ? co_of(L, le) : NULL;
}

void llash_check_yieldable(lua_State *L) {
  /* Checked before anything is registered: a failed yield would leave a
   * wait behind that resumes the coroutine later, at the wrong point. */
  if (!lua_isyieldable(L))
    luaL_error(L, "lash: cannot wait here: a C function (a table.sort "
                  "comparator, a metamethod, ...) stands between this call "
                  "and the lash coroutine");
}

/* -------------------------------------------------------------- endings */

static int is_cancelled(lua_State *L, int idx) {
  int yes;
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, LLASH_CANCELLED);
  yes = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return yes;
}

/* Stores the outcome payload at the top of L (popped) as the end of @p run
 * with @p status. An outcome too large or not encodable becomes a
 * failure. */
static void finish(llash_co *c, lash_run *run, int status, int fatal) {
  lua_State *L = c->le->L;
  lash_bytes b;
  int rc;
  if (llash_encode(L, -1, "value", &b) < 0) {
    /* Only a completed value can hold what cannot be encoded. */
    llash_push_outcome_payload(L, LASH_FAILED, -1, NULL);
    lua_replace(L, -3);
    lua_pop(L, 1);
    status = LASH_FAILED;
    if (llash_encode(L, -1, "value", &b) < 0) {
      lua_pop(L, 2);
      return;
    }
  }
  /* issue 13: a failure is retried under the row's policy unless fatal */
  rc = fatal && status == LASH_FAILED ? lash_run_fail_fatal(run, b)
                                      : lash_run_finish(run, status, b);
  lua_pop(L, 2);
  if (rc == LASH_ETOOBIG) {
    lua_pushfstring(L, "the %s outcome is over the payload size limit",
                    lash_status_name(status));
    llash_push_outcome_payload(L, LASH_FAILED, -1, NULL);
    if (llash_encode(L, -1, "value", &b) == 0)
      rc = lash_run_finish(run, LASH_FAILED, b);
    lua_pop(L, 3);
  }
  if (rc < 0)
    llash_background("lash: cannot finish process %s: %s\n",
                     c->id != NULL ? c->id : "?", lash_strerror(rc));
}

/* Pushes a message for the error value at @p idx, for stderr. */
static void push_errstring(lua_State *L, int idx) {
  llash_push_outcome_payload(L, LASH_FAILED, idx, NULL);
  lua_getfield(L, -1, "message");
  lua_remove(L, -2);
}

/* The coroutine @p c returned (LUA_OK), raised, or yielded outside our API
 * (LUA_YIELD): record the end and release it. */
static void co_end(llash_co *c, int st, int nres) {
  llash_engine *le = c->le;
  lua_State *L = le->L, *th = c->th;
  lash_run *run = c->type == LLASH_CO_BODY ? c->run : NULL;
  int top = lua_gettop(L);
  luaL_checkstack(L, 8, NULL);
  if (run != NULL) {
    c->run = NULL;
    lash_run_set_data(run, NULL);
  }
  if (run != NULL && c->nondet_ref != LUA_NOREF) {
    /* It asked for a command its journal does not hold: that is its
     * outcome, however the body ended (a pcall cannot hide it). */
    lua_pop(th, st == LUA_OK || st == LUA_YIELD ? nres : 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->nondet_ref);
    llash_push_outcome_payload(L, LASH_FAILED, -1, NULL);
    finish(c, run, LASH_FAILED, 0);
    if (st != LUA_OK) llash_closethread(th, L);
    llash_co_release(c);
    lua_settop(L, top);
    return;
  }
  if (st == LUA_OK) {
    if (run != NULL) {
      if (nres > 0) {
        lua_pop(th, nres - 1);
        lua_xmove(th, L, 1);
      } else {
        lua_pushnil(L);
      }
      llash_push_outcome_payload(L, LASH_COMPLETED, -1, NULL);
      lua_remove(L, -2);
      finish(c, run, LASH_COMPLETED, 0);
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
  if (run != NULL) {
    int status = is_cancelled(L, -1) ? LASH_CANCELLED : LASH_FAILED;
    const char *tb = NULL;
    if (status == LASH_FAILED && st != LUA_YIELD) {
      luaL_traceback(L, th, NULL, 0);
      tb = lua_tostring(L, -1);
    }
    int fatal = 0;
    if (status == LASH_FAILED && lua_type(L, top + 1) == LUA_TTABLE) {
      /* issue 13: lash.fatal(msg), or an error table with retry = false */
      lua_pushliteral(L, "retry");
      lua_rawget(L, top + 1);
      fatal = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
    llash_push_outcome_payload(L, status, top + 1, tb);
    finish(c, run, status, fatal);
  } else if (c->type != LLASH_CO_BODY) {
    push_errstring(L, -1);
    if (st != LUA_YIELD) luaL_traceback(L, th, lua_tostring(L, -1), 0);
    llash_background("lash: error in %s: %s\n",
                     c->type == LLASH_CO_SPAWN ? "a spawned function"
                                               : "an on_event handler",
                     lua_tostring(L, -1));
  }
  llash_closethread(th, L);
  llash_co_release(c);
  lua_settop(L, top);
}

/* ------------------------------------------------------------ watchdog */

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Raises {class = "ETIMEDOUT", message = ...} in the body. */
static void raise_timeout(lua_State *L, llash_co *c, int why, int64_t ms,
                          const lua_Debug *ar) {
  const char *kind = "?";
  if (c->run != NULL) kind = lash_run_record(c->run)->kind;
  lua_createtable(L, 0, 2);
  llash_setstr(L, "class", "ETIMEDOUT");
  if (why == LASH_STALL_BUDGET)
    lua_pushfstring(L,
                    "process %s (kind %s) ran past its time budget "
                    "(timeout_ms = %I) at %s:%d",
                    c->id != NULL ? c->id : "?", kind, (lua_Integer)ms,
                    ar->short_src, ar->currentline);
  else
    lua_pushfstring(L,
                    "process %s (kind %s) did not yield for %I ms (stall_ms) "
                    "at %s:%d: a body that never yields freezes its worker",
                    c->id != NULL ? c->id : "?", kind, (lua_Integer)ms,
                    ar->short_src, ar->currentline);
  lua_setfield(L, -2, "message");
  lua_error(L);
}

/* The count hook the watchdog sets: fired at once, the body spins in Lua
 * (it fails); fired late, it was blocked in C and has done its work (the
 * stall is logged, the body goes on). */
static void stall_hook(lua_State *L, lua_Debug *ar) {
  llash_co *c = *(llash_co **)lua_getextraspace(L);
  int64_t at, ms, now = mono_ms();
  int why;
  if (c == NULL) {
    lua_sethook(L, NULL, 0, 0);
    return;
  }
  at = __atomic_load_n(&c->stall_at, __ATOMIC_ACQUIRE);
  why = __atomic_load_n(&c->stall_why, __ATOMIC_RELAXED);
  ms = __atomic_load_n(&c->stall_ms, __ATOMIC_RELAXED);
  if (__atomic_load_n(&c->budget_over, __ATOMIC_RELAXED))
    why = LASH_STALL_BUDGET;
  lua_getinfo(L, "Sl", ar);
  if (c->doomed || why == LASH_STALL_BUDGET ||
      (at != 0 && now - at <= STALL_LATE_MS)) {
    c->doomed = 1; /* a pcall in the body cannot keep it going */
    lua_sethook(L, stall_hook, LUA_MASKCOUNT, 1);
    raise_timeout(L, c, why, ms, ar);
  }
  lua_sethook(L, NULL, 0, 0);
  __atomic_store_n(&c->stall_at, 0, __ATOMIC_RELAXED);
  if (at != 0)
    llash_background(
        "lash: %s: process %s (kind %s) stalled its worker for %lld ms "
        "in a blocking call (back at %s:%d); not failed, its lease was "
        "kept: use ctx:exec or a separate worker for slow commands\n",
        lash_engine_owner(c->le->e), c->id != NULL ? c->id : "?",
        c->run != NULL ? lash_run_record(c->run)->kind : "?",
        (long long)(now - c->entered_at), ar->short_src, ar->currentline);
}

/* runner->stall: from the heartbeat thread while the body runs (or from
 * the loop for a budget that ran out while it was parked). */
static void runner_stall(void *ud, lash_run *run, int why, int64_t ms) {
  llash_co *c = lash_run_data(run);
  (void)ud;
  if (c == NULL) return;
  __atomic_store_n(&c->stall_why, why, __ATOMIC_RELAXED);
  __atomic_store_n(&c->stall_ms, ms, __ATOMIC_RELAXED);
  if (why == LASH_STALL_BUDGET)
    __atomic_store_n(&c->budget_over, 1, __ATOMIC_RELAXED);
  __atomic_store_n(&c->stall_at, mono_ms(), __ATOMIC_RELEASE);
  lua_sethook(c->th, stall_hook, LUA_MASKCOUNT, 1);
}

void llash_co_resume(llash_co *c, int nargs) {
  llash_engine *le = c->le;
  lash_run *run = c->run;
  int nres = 0, st;
  le->depth++;
  c->running = 1;
  if (run != NULL) lash_run_busy(run, 1);
  /* A hook the watchdog set after the last yield is stale. */
  c->entered_at = mono_ms();
  __atomic_store_n(&c->stall_at, 0, __ATOMIC_RELAXED);
  if (c->doomed || __atomic_load_n(&c->budget_over, __ATOMIC_RELAXED))
    lua_sethook(c->th, stall_hook, LUA_MASKCOUNT, 1);
  else
    lua_sethook(c->th, NULL, 0, 0);
  st = lua_resume(c->th, le->L, nargs, &nres);
  if (run != NULL) lash_run_busy(run, 0);
  if (!c->doomed) lua_sethook(c->th, NULL, 0, 0);
  c->running = 0;
  le->depth--;
  if (st == LUA_YIELD && c->parked) {
    lua_pop(c->th, nres);
    return;
  }
  co_end(c, st, nres);
}

static int p_wake(lua_State *L) {
  llash_co *c = lua_touserdata(L, 1);
  int park = (int)(intptr_t)lua_touserdata(L, 2);
  if (c->ref != LUA_NOREF && c->parked == park) {
    if (park == LLASH_PARK_START) c->parked = 0;
    llash_co_resume(c, 0);
  }
  return 0;
}

void llash_co_wake(llash_co *c, int park) {
  llash_protect(c->le, p_wake, c, (void *)(intptr_t)park);
}

/* ------------------------------------------------------------- runner */

/* Ends @p run as failed with @p msg (at the top of L, popped). */
static int fail_run(lua_State *L, lash_run *run) {
  lash_bytes b;
  llash_push_outcome_payload(L, LASH_FAILED, -1, NULL);
  if (llash_encode(L, -1, "value", &b) == 0)
    lash_run_finish(run, LASH_FAILED, b);
  lua_pop(L, 3);
  return 0;
}

/* Ends @p run cancelled before its body ever ran. */
static int cancel_run(lua_State *L, llash_engine *le, lash_run *run) {
  const lash_record *r = lash_run_record(run);
  lash_record now;
  lash_bytes b;
  memset(&now, 0, sizeof now);
  lua_createtable(L, 0, 1);
  if (r->cancel_reason != NULL) {
    llash_setstr(L, "reason", r->cancel_reason);
  } else if (lash_get(lash_engine_store(le->e), NULL, r->id, &now, NULL) == 0) {
    llash_setstr(L, "reason", now.cancel_reason);
    lash_record_free(&now);
  }
  llash_push_outcome_payload(L, LASH_CANCELLED, -1, NULL);
  if (llash_encode(L, -1, "value", &b) == 0)
    lash_run_finish(run, LASH_CANCELLED, b);
  lua_pop(L, 3);
  return 0;
}

static int p_start(lua_State *L) {
  llash_engine *le = lua_touserdata(L, 1);
  lash_run *run = lua_touserdata(L, 2);
  const lash_record *r = lash_run_record(run);
  const lash_lease *ls = lash_run_lease(run);
  llash_co *c;
  int fn, input;
  /* A cancel request that came before the first resume: the body never
   * runs (a re-run of a cancelled row does not either). */
  if (r->cancel_requested || lash_run_cancelled(run))
    return cancel_run(L, le, run);
  lua_rawgeti(L, LUA_REGISTRYINDEX, le->state_ref);
  lua_getfield(L, -1, "kinds");
  if (lua_getfield(L, -1, r->kind) != LUA_TFUNCTION) {
    lua_pushfstring(L, "no body is defined for kind %s", r->kind);
    return fail_run(L, run);
  }
  fn = lua_gettop(L);
  if (llash_decode(L, r->input.data, r->input.len) < 0) {
    lua_pushliteral(L, "cannot decode the input: malformed MessagePack");
    return fail_run(L, run);
  }
  input = lua_gettop(L);
  c = llash_co_new(L, le, LLASH_CO_BODY);
  {
    size_t idn = strlen(r->id), kn = strlen(r->kind);
    if ((c->id = malloc(idn + kn + 2)) == NULL) {
      llash_co_release(c);
      return luaL_error(L, "out of memory");
    }
    memcpy(c->id, r->id, idn + 1);
    memcpy(c->id + idn + 1, r->kind, kn + 1);
    c->kind = c->id + idn + 1;
  }
  /* ctx's fields: the table waits for their first read (l_ctx.c) */
  c->attempt = r->has_attempt ? (lua_Integer)r->attempt.number : 1;
  c->fence = (lua_Integer)(ls != NULL ? ls->fence : 0);
  c->ctx_lazy = 1;
  lua_pushvalue(L, input);
  lua_setiuservalue(L, -2, 2);
  lua_getfield(L, fn - 2, "weak");
  lua_getfield(L, -1, "self");
  lua_setiuservalue(L, -3, 3);
  lua_pop(L, 1);
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

static int runner_start(void *ud, lash_run *run) {
  llash_engine *le = ud;
  return llash_protect(le, p_start, le, run) == LUA_OK ? 0 : LASH_ENOMEM;
}

static int p_release(lua_State *L) {
  llash_co_release(lua_touserdata(L, 1));
  return 0;
}

static void runner_drop(void *ud, lash_run *run, int rc) {
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

static void runner_event(void *ud, const lash_event *ev) {
  llash_engine *le = ud;
  if (le->nhandlers > 0) llash_protect(le, p_event, le, (void *)ev);
}

void llash_runner_init(llash_engine *le) {
  lash_runner r;
  memset(&r, 0, sizeof r);
  r.ud = le;
  r.start = runner_start;
  r.drop = runner_drop;
  /* Without an on_event handler the engine need not read back the events
   * of each commit to forward them (l_on_event installs the sink). */
  r.event = le->nhandlers > 0 ? runner_event : NULL;
  r.stall = runner_stall;
  lash_engine_set_runner(le->e, &r);
}

/* -------------------------------------------------------------- spawn */

static void spawn_cb(void *ud, lash_wait *w, int rc) {
  llash_co *c = ud;
  c->w.wait = NULL;
  lash_wait_free(w);
  if (rc < 0)
    llash_protect(c->le, p_release, c, NULL);
  else
    llash_co_wake(c, LLASH_PARK_START);
}

/* eng:spawn(fn) -> true: runs fn as an engine coroutine, started from the
 * loop (so it runs at the next eng:run / wait from plain code). */
static int l_spawn(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  llash_co *c;
  int rc;
  llash_checkfn(L, 2, "fn");
  lua_settop(L, 2);
  c = llash_co_new(L, le, LLASH_CO_SPAWN);
  lua_pushvalue(L, 2);
  lua_xmove(L, c->th, 1);
  c->parked = LLASH_PARK_START;
  rc = lash_await_sleep(le->e, NULL, 0, spawn_cb, c, &c->w.wait);
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

/* ------------------------------------------------------------- module */

static int cancelled_tostring(lua_State *L) {
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -1)) lua_pushliteral(L, "cancelled");
  return 1;
}

void llash_co_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"spawn", l_spawn}, {NULL, NULL}};
  llash_add_methods(L, methods);

  luaL_newmetatable(L, LLASH_CANCELLED);
  lua_pushcfunction(L, cancelled_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_setfield(L, -2, "Cancelled");

  /* Threads copy the main thread's extra space: NULL there means "not a
   * body" to the stall hook. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  *(llash_co **)lua_getextraspace(lua_tothread(L, -1)) = NULL;
  lua_pop(L, 1);

  /* thread -> coroutine userdata, weak keys */
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cos_key);
}
