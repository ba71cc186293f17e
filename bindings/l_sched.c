/* l_sched.c - durable cron schedules (lash_schedule_*, lash_cron_*): raw
 * positional functions that lua/lash/init.lua wraps (eng:schedule,
 * eng:unschedule, eng:schedules). */
#include "llash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const HOW[] = {"", "created", "same", "replaced"};

typedef struct put_ud {
  lash_schedule sc;
  int how;
  char msg[512]; /* the failure's message (the commit clears the store's) */
} put_ud;

static int put_fn(lash_store *s, lash_txn *txn, void *ud) {
  put_ud *p = ud;
  int rc = lash_schedule_put(s, txn, &p->sc, &p->how);
  if (rc < 0) snprintf(p->msg, sizeof p->msg, "%s", lash_errmsg(s));
  return rc;
}

/* nil, the write's own message (else the store's), code. */
static int fail_write(lua_State *L, llash_engine *le, int rc, const char *msg) {
  if (msg[0] != '\0') return llash_fail(L, rc, msg);
  return llash_fail_store(L, le, rc);
}

/* core.schedule(eng, name, spec, kind, input, tz, catch_up, disposition,
 * max_attempts, timeout_ms) -> "created" | "same" | "replaced" | nil, msg,
 * code. tz may be nil; catch_up and disposition are names (checked by
 * init.lua). */
static int l_schedule(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  put_ud p;
  const char *cu, *disp;
  int rc;
  memset(&p, 0, sizeof p);
  p.sc.name = llash_checkstr(L, 2, "name");
  p.sc.spec = llash_checkstr(L, 3, "spec");
  p.sc.kind = llash_checkstr(L, 4, "kind");
  p.sc.tz = llash_optstr(L, 6, "tz");
  cu = llash_optstr(L, 7, "catch_up");
  disp = llash_optstr(L, 8, "disposition");
  p.sc.max_attempts = (uint32_t)llash_optcount(L, 9, "max_attempts", 0);
  p.sc.timeout_ms = (int64_t)llash_optcount(L, 10, "timeout_ms", 0);
  p.sc.catch_up = cu != NULL ? lash_catchup_parse(cu) : LASH_CATCHUP_SKIP;
  if (p.sc.catch_up < 0)
    return llash_fail(L, LASH_EINVAL,
                      "catch_up must be \"skip\", \"one\" or \"all\"");
  p.sc.disposition = disp != NULL ? lash_disposition_parse(disp) : 0;
  lua_settop(L, 10);
  if (llash_encode(L, 5, "input", &p.sc.input) < 0) lua_error(L);
  rc = lash_engine_write_sync(le->e, put_fn, &p);
  if (rc < 0) return fail_write(L, le, rc, p.msg);
  if (p.how != LASH_SCHEDULE_SAME) lash_engine_schedules_changed(le->e);
  lua_pushstring(L, HOW[p.how >= 1 && p.how <= 3 ? p.how : 0]);
  return 1;
}

typedef struct del_ud {
  const char *name;
  char msg[512];
} del_ud;

static int del_fn(lash_store *s, lash_txn *txn, void *ud) {
  del_ud *d = ud;
  int rc = lash_schedule_delete(s, txn, d->name);
  if (rc < 0) snprintf(d->msg, sizeof d->msg, "%s", lash_errmsg(s));
  return rc;
}

/* core.unschedule(eng, name) -> true | nil, msg, code */
static int l_unschedule(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  del_ud d;
  int rc;
  d.name = llash_checkstr(L, 2, "name");
  d.msg[0] = '\0';
  rc = lash_engine_write_sync(le->e, del_fn, &d);
  if (rc < 0) return fail_write(L, le, rc, d.msg);
  lash_engine_schedules_changed(le->e);
  lua_pushboolean(L, 1);
  return 1;
}

/* Pushes the table of @p sc: its fields and `ticks`, its next three ticks
 * after @p now (epoch ms). */
static void push_schedule(lua_State *L, const lash_schedule *sc, int64_t now) {
  int64_t t[3];
  int i, n;
  lua_createtable(L, 0, 16);
  llash_setstr(L, "name", sc->name);
  llash_setstr(L, "spec", sc->spec);
  llash_setstr(L, "kind", sc->kind);
  llash_pushpayload(L, sc->input);
  lua_setfield(L, -2, "input");
  llash_setstr(L, "tz", sc->tz[0] != '\0' ? sc->tz : "UTC");
  llash_setstr(L, "catch_up", lash_catchup_name(sc->catch_up));
  llash_setstr(L, "disposition", lash_disposition_name(sc->disposition));
  llash_setint(L, "max_attempts", (lua_Integer)sc->max_attempts);
  llash_setint(L, "timeout_ms", (lua_Integer)sc->timeout_ms);
  if (sc->next_at > 0 && sc->next_at < INT64_MAX)
    llash_setint(L, "next_at", (lua_Integer)sc->next_at);
  if (sc->last_at > 0) llash_setint(L, "last_at", (lua_Integer)sc->last_at);
  llash_setint(L, "started", (lua_Integer)sc->started);
  llash_setint(L, "created_at", (lua_Integer)sc->created_at);
  llash_setint(L, "updated_at", (lua_Integer)sc->updated_at);
  /* The next three: the due one first (it may be a little in the past
   * while a worker starts it), then those after it. */
  lua_createtable(L, 3, 0);
  t[0] = sc->next_at;
  n = sc->next_at > 0 && sc->next_at < INT64_MAX ? 1 : 0;
  if (n == 0 || t[0] < now) n = 0;
  i = lash_schedule_ticks(sc, n == 1 ? t[0] : now, t + n, 3 - n);
  if (i > 0) n += i;
  for (i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)t[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "ticks");
}

/* The names of the schedules, gathered during the scan (which holds the
 * store: nothing that can raise runs inside it). */
typedef struct names_ud {
  char *p;
  size_t len, cap;
  int oom;
} names_ud;

static int name_fn(void *ud, const lash_schedule *sc) {
  names_ud *u = ud;
  size_t k = strlen(sc->name) + 1;
  if (u->len + k > u->cap) {
    size_t cap = u->cap ? u->cap * 2 : 1024;
    char *np;
    while (cap < u->len + k)
      cap *= 2;
    if ((np = realloc(u->p, cap)) == NULL) {
      u->oom = 1;
      return 1;
    }
    u->p = np;
    u->cap = cap;
  }
  memcpy(u->p + u->len, sc->name, k);
  u->len += k;
  return 0;
}

static void names_free(void *p) {
  free(((names_ud *)p)->p);
  free(p);
}

/* Pushes schedule @p name's table, or nothing (0) when it went meanwhile;
 * raises on other errors after freeing. */
static int push_one(lua_State *L, lash_store *s, const char *name) {
  lash_schedule sc;
  int64_t now = lash_store_now(s);
  int rc = lash_schedule_get(s, NULL, name, &sc);
  if (rc < 0) return rc;
  /* push_schedule raises only when out of memory: sc would leak then */
  push_schedule(L, &sc, now);
  lash_schedule_free(&sc);
  return 0;
}

/* core.schedules(eng) -> array of schedule tables (name order) | nil, msg,
 * code */
static int l_schedules(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  lash_store *s = lash_engine_store(le->e);
  names_ud *u;
  size_t off;
  lua_Integer n = 0;
  int rc;
  lua_settop(L, 1);
  if ((u = calloc(1, sizeof *u)) == NULL)
    return llash_fail(L, LASH_ENOMEM, "out of memory");
  llash_guard_new(L, names_free, u); /* 2: frees u however this ends */
  rc = lash_schedules_list(s, NULL, name_fn, u);
  if (rc < 0) return llash_fail_store(L, le, rc);
  if (u->oom) return llash_fail(L, LASH_ENOMEM, "out of memory");
  lua_newtable(L); /* 3 */
  for (off = 0; off < u->len; off += strlen(u->p + off) + 1) {
    rc = push_one(L, s, u->p + off);
    if (rc == LASH_ENOENT) continue;
    if (rc < 0) return llash_fail_store(L, le, rc);
    lua_rawseti(L, 3, ++n);
  }
  return 1;
}

/* core.schedule_get(eng, name) -> schedule table | nil, msg, code */
static int l_schedule_get(lua_State *L) {
  llash_engine *le = llash_checkengine(L, 1);
  const char *name = llash_checkstr(L, 2, "name");
  int rc = push_one(L, lash_engine_store(le->e), name);
  if (rc < 0) return llash_fail_store(L, le, rc);
  return 1;
}

/* core.cron_ticks(spec, tz, after_ms, n) -> array of epoch ms | nil, msg,
 * "EINVAL" (the spec's or the zone's fault, named); after_ms nil: now. */
static int l_cron_ticks(lua_State *L) {
  const char *spec = llash_checkstr(L, 1, "spec");
  const char *tz = llash_optstr(L, 2, "tz");
  struct timespec ts;
  lua_Integer after;
  clock_gettime(CLOCK_REALTIME, &ts);
  after = llash_optint(L, 3, "after",
                       (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
  lua_Integer n = llash_optcount(L, 4, "n", 1), i;
  char err[512];
  lash_cron c;
  int64_t t = (int64_t)after;
  if (lash_cron_parse(spec, &c, err, sizeof err) != 0 ||
      lash_cron_tz_check(tz, err, sizeof err) != 0)
    return llash_fail(L, LASH_EINVAL, err);
  lua_createtable(L, (int)(n < 64 ? n : 64), 0);
  for (i = 1; i <= n; i++) {
    if (lash_cron_next(&c, tz, t, &t) != 0) break;
    lua_pushinteger(L, (lua_Integer)t);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

void llash_sched_open(lua_State *L) {
  static const luaL_Reg raw[] = {
      {"schedule", l_schedule},     {"unschedule", l_unschedule},
      {"schedules", l_schedules},   {"schedule_get", l_schedule_get},
      {"cron_ticks", l_cron_ticks}, {NULL, NULL}};
  llash_add_functions(L, raw);
}
