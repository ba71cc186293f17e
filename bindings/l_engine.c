/* l_engine.c - the "lash.Engine" object: open and close, the reads (get,
 * events, list, stats, check ...) and driving the loop (define, drive, run,
 * stop, drain, on_event ...). Writes and waits add their methods from
 * l_writes.c and l_waits.c.
 *
 * No Lua error may cross core frames: every callback the core makes does its
 * Lua work through llash_protect, and listings push through lua_pcall.
 */
#include <stdlib.h>
#include <string.h>

#include "llash.h"

/* The names of lash_durability, in its order (exported as
 * core.DURABILITIES). */
static const char *const durabilities[] = {"full", "nometa", "none", NULL};

/* ------------------------------------------------------- open, close */

static int clamp_int(lua_Integer v) {
  return (int)(v < 0 ? 0 : v > 0x7fffffff ? 0x7fffffff : v);
}

/* The option @p k at @p t: a string of LASH_RULE_OWNER (a bad one raises:
 * open options are the program's own), or NULL. */
static const char *field_owner(lua_State *L, int t, const char *k) {
  char msg[512];
  size_t len;
  const char *s = llash_field_str(L, t, k);
  if (s == NULL) return NULL;
  lua_tolstring(L, -1, &len);
  if (lash_check_string(LASH_RULE_OWNER, k, s, len, msg, sizeof msg) < 0)
    luaL_error(L, "option %s: %s", k, msg);
  return s;
}

/* Reads the open options at @p t (checked and filled by init.lua) into
 * @p o. Strings stay on the stack until the open returns. */
static void read_opts(lua_State *L, int t, lash_engine_opts *o, void **luv) {
  const char *s;
  int i;
  lash_engine_opts_init(o);
  if ((s = llash_field_str(L, t, "durability")) != NULL) {
    for (i = 0; durabilities[i] != NULL && strcmp(durabilities[i], s); i++)
      ;
    if (durabilities[i] == NULL) luaL_error(L, "option durability: %s", s);
    o->store.durability = i;
  }
  o->store.max_bytes = (size_t)llash_field_int(L, t, "max_bytes");
  o->store.map_bytes = (size_t)llash_field_int(L, t, "map_bytes");
  o->store.max_payload = (size_t)llash_field_int(L, t, "max_payload");
  o->store.max_readers =
      (unsigned)clamp_int(llash_field_int(L, t, "max_readers"));
  o->store.read_only = llash_field_bool(L, t, "read_only");
  if ((s = llash_field_str(L, t, "loop")) != NULL && strcmp(s, "luv") == 0) {
#ifdef LASH_HAVE_LUV
    if ((*luv = llash_luv_context(L)) == NULL)
      luaL_error(L, "option loop \"luv\": require \"luv\" first");
    o->loop = llash_luv_loop(*luv);
#else
    luaL_error(L, "option loop \"luv\": this lash was built without luv "
                  "(install lua-luv-dev and rebuild)");
#endif
  }
  o->owner = field_owner(L, t, "owner");
  o->incarnation = field_owner(L, t, "incarnation");
  o->concurrency = (unsigned)clamp_int(llash_field_int(L, t, "concurrency"));
  o->lease_ttl_ms = llash_field_int(L, t, "lease_ttl_ms");
  o->renew_ms = llash_field_int(L, t, "renew_ms");
  o->stall_ms = llash_field_int(L, t, "stall_ms");
  o->poll_min_ms = llash_field_int(L, t, "poll_min_ms");
  o->poll_max_ms = llash_field_int(L, t, "poll_max_ms");
  o->no_fs_wake = !llash_field_bool(L, t, "fs_wake");
  o->no_eager_start = !llash_field_bool(L, t, "eager_start");
  /* Lua's 0 is "at once"; absent is the default. */
  if (lua_getfield(L, t, "suspend_after_ms") != LUA_TNIL) {
    int64_t ms = llash_field_int(L, t, "suspend_after_ms");
    o->suspend_after_ms = ms == 0 ? LASH_SUSPEND_AT_ONCE : ms;
  }
  lua_pop(L, 1);
  o->max_cached = (uint64_t)llash_field_int(L, t, "max_cached");
}

/* core.open(target, opts) -> engine | nil, msg, code */
static int l_open(lua_State *L) {
  const char *target = llash_checkstr(L, 1, "target");
  llash_engine **u, *le;
  lash_engine_opts o;
  void *luv = NULL;
  char err[512];
  int rc;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  read_opts(L, 2, &o, &luv);

  /* Created closed, then opened: a memory error in between leaves a valid
   * object for __gc. */
  u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = NULL;
  luaL_setmetatable(L, LLASH_ENGINE);
  lua_newtable(L); /* state: {kinds = {}, handlers = {}} */
  lua_newtable(L);
  lua_setfield(L, -2, "kinds");
  lua_newtable(L);
  lua_setfield(L, -2, "handlers");
  le = calloc(1, sizeof *le);
  if (le == NULL) return llash_fail(L, LASH_ENOMEM, NULL);
  llash_list_init(&le->cos);
  llash_list_init(&le->ops);
  llash_list_init(&le->servers);
  le->state_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* Loop callbacks outside eng:run/await (a luv host's uv.run) run on the
   * main thread, which outlives any coroutine that opened the engine. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  le->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  le->luv = luv;
  err[0] = '\0';
  rc = lash_engine_open(target, &o, &le->e, err, sizeof err);
  if (rc < 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, le->state_ref);
    free(le);
    return llash_fail(L, rc, err);
  }
  *u = le;
  /* A weak reference to the userdata, for ctx.engine. */
  lua_rawgeti(L, LUA_REGISTRYINDEX, le->state_ref);
  lua_createtable(L, 0, 1);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "self");
  lua_setfield(L, -2, "weak");
  lua_pop(L, 1);
  llash_runner_init(le);
  return 1;
}

/* Closes the engine of userdata @p u; never raises. */
static void close_engine(lua_State *L, llash_engine **u) {
  llash_engine *le = *u;
  le->L = L;
  if (le->batch) {
    lash_engine_batch_end(le->e, 0);
    le->batch = 0;
  }
  llash_http_close_all(le);
  llash_co_release_all(le);
  llash_ops_orphan(le);
  lash_engine_close(le->e);
  le->e = NULL;
  llash_ops_free(le);
  luaL_unref(L, LUA_REGISTRYINDEX, le->state_ref);
  *u = NULL;
  free(le);
}

/* eng:close(), __close */
static int l_close(lua_State *L) {
  llash_engine **u = luaL_checkudata(L, 1, LLASH_ENGINE);
  if (*u == NULL) return 0;
  if ((*u)->in_loop > 0 || (*u)->depth > 0)
    return luaL_error(L, "cannot close a lash engine while its loop runs");
  close_engine(L, u);
  return 0;
}

/* __gc: closes quietly. An engine whose loop runs is reachable, so it is
 * not collected; should it be anyway, it is left open rather than raise. */
static int l_gc(lua_State *L) {
  llash_engine **u = lua_touserdata(L, 1);
  if (u != NULL && *u != NULL && (*u)->in_loop == 0 && (*u)->depth == 0)
    close_engine(L, u);
  return 0;
}

static int l_tostring(lua_State *L) {
  llash_engine **u = luaL_checkudata(L, 1, LLASH_ENGINE);
  if (*u == NULL)
    lua_pushliteral(L, "lash.Engine (closed)");
  else
    lua_pushfstring(L, "lash.Engine (%s)",
                    lash_store_path(lash_engine_store((*u)->e)));
  return 1;
}

/* -------------------------------------------------------------- reads */

/* eng:get(id) -> record | nil, msg, code */
static int l_get(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id;
  llash_guard *g;
  int gi, rc;
  if ((rc = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0) return rc;
  g = llash_guard_new(L, NULL, NULL);
  gi = lua_gettop(L);
  rc = lash_get(lash_engine_store(le->e), NULL, id, &g->rec, NULL);
  if (rc < 0) return llash_fail_store(L, le, rc);
  g->free = llash_free_record;
  g->p = &g->rec;
  llash_pushrecord(L, &g->rec);
  llash_guard_done(L, gi);
  return 1;
}

/* eng:events(id [, after [, limit]]) -> array of events | nil, msg, code */
static int l_events(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id;
  lua_Integer after = llash_optcount(L, 3, "after", 0);
  lua_Integer limit = llash_optcount(L, 4, "limit", 0);
  llash_collect k;
  int rc;
  if ((rc = llash_argid(L, 2, "id", LASH_RULE_ID, 0, &id)) != 0) return rc;
  lua_settop(L, 4);
  llash_collect_begin(L, &k);
  rc = lash_events_after(lash_engine_store(le->e), NULL, id, (uint64_t)after,
                         (size_t)limit, llash_collect_event, &k);
  return llash_collect_end(L, le, &k, rc);
}

/* core.list(eng, status, kind, limit, after) -> array of records */
static int l_list(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *st = llash_optstr(L, 2, "status");
  lash_list_filter f;
  llash_collect k;
  int rc;
  memset(&f, 0, sizeof f);
  if (st != NULL && strcmp(st, "live") == 0)
    f.live_only = 1;
  else if (st != NULL)
    luaL_argcheck(L, (f.status = lash_status_parse(st)) != 0, 2,
                  "unknown status");
  f.limit = (size_t)llash_optcount(L, 4, "limit", 0);
  if ((rc = llash_argid(L, 3, "kind", LASH_RULE_NAME, 1, &f.kind)) != 0 ||
      (rc = llash_argid(L, 5, "after", 0, 1, &f.after)) != 0)
    return rc;
  lua_settop(L, 5);
  llash_collect_begin(L, &k);
  rc = lash_list(lash_engine_store(le->e), NULL, &f, llash_collect_record, &k);
  return llash_collect_end(L, le, &k, rc);
}

/* eng:stats() -> table */
static int l_stats(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lash_stats s;
  lash_engine_stats es;
  int rc;
  if ((rc = lash_store_stats(lash_engine_store(le->e), NULL, &s)) < 0)
    return llash_fail_store(L, le, rc);
  lash_engine_get_stats(le->e, &es);
  llash_pushstats(L, &s, &es);
  return 1;
}

/* eng:now() -> ms (the store's clock) */
static int l_now(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lua_pushinteger(L, (lua_Integer)lash_store_now(lash_engine_store(le->e)));
  return 1;
}

/* eng:owner() -> owner, incarnation */
static int l_owner(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lua_pushstring(L, lash_engine_owner(le->e));
  lua_pushstring(L, lash_engine_incarnation(le->e));
  return 2;
}

/* eng:path() -> the target the store was opened with */
static int l_path(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lua_pushstring(L, lash_store_path(lash_engine_store(le->e)));
  return 1;
}

typedef struct check_ud {
  lua_State *L;
  int t;
} check_ud;

static void check_problem(void *ud, const char *problem) {
  check_ud *c = ud;
  lua_pushstring(c->L, problem);
  lua_rawseti(c->L, c->t, (lua_Integer)lua_rawlen(c->L, c->t) + 1);
}

/* eng:check() -> problems (an array of lines; empty when clean) */
static int l_check(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  check_ud c;
  int rc;
  lua_newtable(L);
  c.L = L;
  c.t = lua_gettop(L);
  rc = lash_check(lash_engine_store(le->e), check_problem, &c);
  if (rc < 0) return llash_fail_store(L, le, rc);
  return 1;
}

/* ------------------------------------------------------------ driving */

/* Appends the value at @p v to the array field @p field of the state. */
static void state_add(lua_State *L, llash_engine *le, const char *field,
                      const char *key, int v) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, le->state_ref);
  lua_getfield(L, -1, field);
  lua_pushvalue(L, v);
  if (key != NULL)
    lua_setfield(L, -2, key);
  else
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 2);
}

/* core.define(eng, kind, fn, timeout_ms [, retry [, rate_n, rate_per_ms]]) */
static int l_define(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *kind;
  lua_Integer budget = llash_optcount(L, 4, "timeout_ms", 0);
  lash_retry_policy retry = llash_policy(L, 5);           /* issue 13 (retry) */
  lua_Integer rate_n = llash_optcount(L, 6, "rate.n", 0); /* (claim) */
  lua_Integer rate_per = llash_optcount(L, 7, "rate.per_ms", 0);
  int rc;
  llash_checkfn(L, 3, "fn");
  luaL_argcheck(L, rate_n <= LASH_RATE_N_MAX, 6, "rate.n is out of range");
  luaL_argcheck(L, rate_per <= LASH_RATE_PER_MAX, 7,
                "rate.per_ms is out of range");
  if ((rc = llash_argid(L, 2, "kind", LASH_RULE_NAME, 0, &kind)) != 0)
    return rc;
  if ((rc = lash_engine_define(le->e, kind)) < 0 ||
      (rc = lash_engine_set_timeout(le->e, kind, (int64_t)budget)) < 0 ||
      (rc = lash_engine_set_retry(le->e, kind, &retry)) < 0 ||
      (rc = lash_engine_set_rate(le->e, kind, (uint32_t)rate_n,
                                 (int64_t)rate_per)) < 0)
    return llash_fail_store(L, le, rc);
  state_add(L, le, "kinds", kind, 3);
  lua_pushboolean(L, 1);
  return 1;
}

/* eng:on_event(fn) */
static int l_on_event(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  llash_checkfn(L, 2, "fn");
  state_add(L, le, "handlers", NULL, 2);
  if (le->nhandlers++ == 0) llash_runner_init(le);
  return 0;
}

/* eng:drive() -> {admitted=, deferred=, taken_over=} */
static int l_drive(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lash_drive_report rep;
  int rc;
  memset(&rep, 0, sizeof rep);
  if ((rc = lash_engine_drive(le->e, &rep)) < 0)
    return llash_fail_store(L, le, rc);
  lua_createtable(L, 0, 3);
  llash_setint(L, "admitted", rep.admitted);
  llash_setint(L, "deferred", rep.deferred);
  llash_setint(L, "taken_over", rep.taken_over);
  return 1;
}

/* core.run(eng, mode) -> true | nil, msg, code */
static int l_run(lua_State *L) {
  static const char *const modes[] = {"default", "once", "nowait", "until_idle",
                                      NULL};
  static const int values[] = {LASH_RUN_DEFAULT, LASH_RUN_ONCE, LASH_RUN_NOWAIT,
                               LASH_RUN_UNTIL_IDLE};
  llash_engine *le = llash_checkengine(L, 1);
  int mode = values[llash_checkname(L, 2, "mode", modes)], rc;
  const char *smsg = NULL;
  lua_State *prev = le->L;
  if (le->depth > 0 || le->in_loop > 0 || llash_luv_running(le))
    return luaL_error(L, "cannot run the lash loop from inside it");
  if (le->batch) return luaL_error(L, "cannot run the loop inside eng:batch");
  le->L = L;
  le->in_loop++;
  rc = lash_engine_run(le->e, mode);
  le->in_loop--;
  le->L = prev;
  if (rc == LASH_ECANCELED) return luaL_error(L, "interrupted!");
  if (rc < 0 && lash_engine_storage_error(le->e, &smsg) == rc) {
    lua_pushnil(L);
    lua_pushstring(L, smsg);
    lua_pushstring(L, lash_err_name(rc));
    return 3;
  }
  if (rc < 0) return llash_fail_store(L, le, rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* eng:stop() */
static int l_stop(lua_State *L) {
  lash_engine_stop(llash_checkengine(L, 1)->e);
  return 0;
}

/* eng:idle() -> boolean */
static int l_idle(lua_State *L) {
  lua_pushboolean(L, lash_engine_idle(llash_checkengine(L, 1)->e));
  return 1;
}

/* eng:drain() -> number of rows abandoned */
static int l_drain(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  unsigned n = 0;
  int rc;
  if ((rc = lash_engine_drain(le->e, &n)) < 0)
    return llash_fail_store(L, le, rc);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* eng:reconcile(id) -> "ended" | "held" [, holder] | "nothing": honours
 * the row's abandon or cancel request now if no execution of it is live;
 * holder = {owner=, incarnation=, expires_at=, alive=} of a held lease. */
static int l_reconcile(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *id = llash_checkstr(L, 2, "id");
  lash_lease holder;
  int rc, result = 0;
  if ((rc = lash_engine_reconcile(le->e, id, &result, &holder)) < 0)
    return llash_fail_store(L, le, rc);
  lua_pushstring(L, result == LASH_RECONCILE_ENDED  ? "ended"
                    : result == LASH_RECONCILE_HELD ? "held"
                                                    : "nothing");
  if (result != LASH_RECONCILE_HELD || holder.owner[0] == '\0') return 1;
  lua_createtable(L, 0, 4);
  llash_setstr(L, "owner", holder.owner);
  llash_setstr(L, "incarnation", holder.incarnation);
  llash_setint(L, "expires_at", (lua_Integer)holder.expires_at);
  lua_pushboolean(L, lash_owner_alive(lash_engine_store(le->e), holder.owner,
                                      holder.incarnation) == 1);
  lua_setfield(L, -2, "alive");
  return 2;
}

/* ---- issue 14: the summary behind metrics and the UI (web) ---- */

static void push_hist(lua_State *L, const char *name, const lash_hist *h) {
  int i;
  lua_createtable(L, 0, 3);
  lua_createtable(L, LASH_SUMMARY_NBOUNDS + 1, 0);
  for (i = 0; i <= LASH_SUMMARY_NBOUNDS; i++) {
    lua_pushinteger(L, (lua_Integer)h->bucket[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "buckets");
  llash_setint(L, "count", (lua_Integer)h->count);
  lua_pushnumber(L, h->sum_ms);
  lua_setfield(L, -2, "sum_ms");
  lua_setfield(L, -2, name);
}

static int p_push_kind(lua_State *L) {
  const lash_kind_summary *k = lua_touserdata(L, 2);
  int st;
  lua_createtable(L, 0, 12);
  llash_setstr(L, "kind", k->kind);
  for (st = LASH_PENDING; st <= LASH_ABANDONED; st++)
    llash_setint(L, lash_status_name(st), (lua_Integer)k->count[st]);
  llash_setint(L, "oldest_pending_at", (lua_Integer)k->oldest_pending_at);
  llash_setint(L, "attempts", (lua_Integer)k->attempts);
  push_hist(L, "duration", &k->duration);
  push_hist(L, "attempt", &k->attempt);
  lua_rawseti(L, 1, (lua_Integer)luaL_len(L, 1) + 1);
  return 0;
}

static int push_kind(void *ud, const lash_kind_summary *k) {
  lua_State *L = ud;
  lua_pushcfunction(L, p_push_kind);
  lua_pushvalue(L, -2);
  lua_pushlightuserdata(L, (void *)k);
  return lua_pcall(L, 2, 0, 0) == LUA_OK ? 0 : 1;
}

/* core.summarize(eng) -> {{kind =, pending = N, ..., oldest_pending_at =,
 * attempts =, duration = {buckets = {...}, count =, sum_ms =}, attempt =
 * {...}}, ...} in kind order (lash_summarize) | nil, msg, code */
static int l_summarize(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  int rc;
  lua_settop(L, 1);
  lua_newtable(L);
  rc = lash_summarize(lash_engine_store(le->e), NULL, push_kind, L);
  if (lua_gettop(L) > 2) return lua_error(L); /* a push raised */
  if (rc < 0) return llash_fail_store(L, le, rc);
  return 1;
}

/* core.SUMMARY_BOUNDS: the histograms' bucket bounds (ms). */
static void push_bounds(lua_State *L) {
  static const int64_t b[LASH_SUMMARY_NBOUNDS] = LASH_SUMMARY_BOUNDS;
  int i;
  lua_createtable(L, LASH_SUMMARY_NBOUNDS, 0);
  for (i = 0; i < LASH_SUMMARY_NBOUNDS; i++) {
    lua_pushinteger(L, (lua_Integer)b[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* eng:pause([on]) -> admission stops (on, the default) or resumes; running
 * and parked bodies go on. */
static int l_pause(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lash_engine_pause(le->e, lua_isnone(L, 2) || lua_toboolean(L, 2));
  return 0;
}

/* eng:interrupt(): the wait or run in progress from plain code returns
 * early (a REPL's Ctrl-C). */
static int l_interrupt(lua_State *L) {
  lash_engine_interrupt(llash_checkengine(L, 1)->e);
  return 0;
}

/* ---------------------------------------------------------- metatable */

void llash_engine_open(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"close", l_close}, {"get", l_get},     {"events", l_events},
      {"drive", l_drive}, {"stop", l_stop},   {"idle", l_idle},
      {"drain", l_drain}, {"pause", l_pause}, {"interrupt", l_interrupt},
      {"check", l_check}, {"stats", l_stats}, {"on_event", l_on_event},
      {"now", l_now},     {"owner", l_owner}, {"path", l_path},
      {NULL, NULL}};
  static const luaL_Reg recovery[] = {{"reconcile", l_reconcile}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", l_gc},
                                  {"__close", l_close},
                                  {"__tostring", l_tostring},
                                  {NULL, NULL}};
  static const luaL_Reg raw[] = {
      {"open", l_open}, {"define", l_define},       {"list", l_list},
      {"run", l_run},   {"summarize", l_summarize}, {NULL, NULL}};
  int i;
  /* module table at -1 */
  llash_add_functions(L, raw);
  luaL_newmetatable(L, LLASH_ENGINE);
  luaL_setfuncs(L, meta, 0);
  luaL_newlib(L, methods);
  luaL_setfuncs(L, recovery, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
  lua_setfield(L, -3, "Engine"); /* core.Engine: the method table */
  lua_pop(L, 1);
  lua_createtable(L, 3, 0);
  for (i = 0; durabilities[i] != NULL; i++) {
    lua_pushstring(L, durabilities[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "DURABILITIES");
  push_bounds(L);
  lua_setfield(L, -2, "SUMMARY_BOUNDS");
}
