/* llash.h - declarations shared by the files of the lash.core Lua module.
 *
 * The bindings are thin: they check arguments, call the core (lash.h), push
 * results, and own the Lua side of every run: userdata, registry refs that
 * anchor coroutines, and the lua_yieldk continuations of every wait. Option
 * tables, defaults and user-facing messages live in lua/lash/init.lua; the
 * name tables and limits it checks against come from the core through
 * lash.core (lash_core.c).
 *
 * One file per part; each part uses only the parts listed above it here:
 *
 *   l_helpers.c   argument checks, option fields, failures, guards, protect
 *   l_payload.c   MessagePack <-> Lua
 *   l_push.c      records, events, outcomes, stats -> Lua tables; the one
 *                 builder of stored outcome payloads
 *   l_co.c        coroutines: anchoring, resume, their end, the runner
 *   l_writes.c    the queued writes (group commit) and the write methods
 *   l_waits.c     waits: yield in a coroutine, run the loop in plain code
 *   l_ctx.c       the body's ctx object
 *   l_exec.c      ctx:exec: a command on the loop (uv_spawn), as a ctx wait
 *   l_engine.c    the engine object: open/close, reads, driving
 *   l_kinds.c     kind definitions and live workers in the store
 *   lash_core.c   luaopen_lash_core: the module, core's names and limits
 *
 * (lash_main.c, the `lash` executable and its lash.host module, uses the
 * helpers only.) Writes and waits do not use each other: a coroutine keeps
 * its write (op, res) and its wait (w) apart, so a ctx wait can begin,
 * record its waiting status with a write, then park.
 */
#ifndef LLASH_H
#define LLASH_H

#include <stddef.h>
#include <stdint.h>

#include <lauxlib.h>
#include <lua.h>

#include "lash.h"

/* Lua 5.4.6 renamed lua_resetthread (one argument) to lua_closethread. */
#if LUA_VERSION_RELEASE_NUM < 50406
#define llash_closethread(L, from) ((void)(from), lua_resetthread(L))
#else
#define llash_closethread(L, from) lua_closethread(L, from)
#endif

#define LLASH_ENGINE "lash.Engine"
#define LLASH_CTX "lash.Ctx"
#define LLASH_CANCELLED "lash.Cancelled"
#define LLASH_BUF "lash.Buffer"

/* Nesting limit of encoded payloads. */
#define LLASH_MAX_DEPTH 64

/* --------------------------------------------------------------- lists */

/* A circular intrusive list: a head in the owner, a link in each element.
 * A link is its own list when unlinked, so removing twice is harmless. */
typedef struct llash_link {
  struct llash_link *prev, *next;
} llash_link;

#define llash_container_of(p, type, field)                                     \
  ((type *)(void *)((char *)(p)-offsetof(type, field)))

static inline void llash_list_init(llash_link *l) {
  l->prev = l->next = l;
}

static inline int llash_list_empty(const llash_link *head) {
  return head->next == head;
}

static inline void llash_list_push(llash_link *head, llash_link *l) {
  l->next = head->next;
  l->prev = head;
  head->next->prev = l;
  head->next = l;
}

static inline void llash_list_remove(llash_link *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = l;
}

/* ------------------------------------------------------------ the state */

typedef struct llash_co llash_co;
typedef struct llash_op llash_op;

typedef struct llash_engine {
  lash_engine *e;
  lua_State *L;   /* the thread running the loop; callbacks run on it */
  int state_ref;  /* registry ref: {kinds = {}, handlers = {}, weak = {}} */
  int depth;      /* > 0 while a coroutine of this engine runs */
  int in_loop;    /* > 0 while the loop runs */
  int batch;      /* an explicit batch is open */
  int nhandlers;  /* on_event handlers */
  void *luv;      /* luv's context when running on its loop, else NULL */
  llash_link cos; /* every anchored coroutine (llash_co.link) */
  llash_link ops; /* every queued write (llash_op.link) */
  /* ---- HTTP servers on its loop (issue 14, web) ---- */
  llash_link servers; /* every open server (l_http.c), closed with it */
} llash_engine;

/* What a wait waits for. */
enum { LLASH_W_TERMINAL = 1, LLASH_W_EVENT, LLASH_W_SLEEP };

/* One wait, of a coroutine (co) or of plain code (co == NULL). */
typedef struct llash_waiter {
  llash_co *co;
  volatile int done; /* the result arrived */
  int what;          /* LLASH_W_* */
  int rc;            /* result code */
  lash_wait *res;    /* resolved wait, freed by whoever reads it */
  lash_wait *wait;   /* the pending wait, until it resolves */
  char *label;       /* copy of the awaited id, for messages */
  /* A wait that is more than its lash_wait (ctx:exec, l_exec.c): ext is
   * its state; ext_push pushes its result (instead of the lash_wait's)
   * and takes ext over; ext_free lets go of ext when the wait is dropped. */
  void *ext;
  int (*ext_push)(lua_State *L, struct llash_waiter *w);
  void (*ext_free)(void *ext);
} llash_waiter;

/* The result of a write, copied out of it when it committed. */
typedef struct llash_result {
  int type; /* LLASH_OP_* */
  int rc;
  uint64_t seq;
  lash_prune_report prune;
  char msg[256];
  char uid[LASH_ID_MAX + 1]; /* issue 13: the row holding a unique key */
  int created;               /* a start: 1 if this write created the row */
} llash_result;

/* What a coroutine yielded on (llash_co.parked). */
enum { LLASH_PARK_START = 1, LLASH_PARK_WAIT, LLASH_PARK_WRITE };

enum { LLASH_CO_BODY = 1, LLASH_CO_SPAWN, LLASH_CO_HANDLER };

/* One coroutine the engine runs: a body (the ctx userdata), a spawned
 * function or an event handler. Lives in a "lash.Ctx" userdata whose first
 * uservalue is the thread and second the fields table; anchored by a
 * registry ref while it runs or is parked. */
struct llash_co {
  llash_engine *le;
  lua_State *th;
  int ref;          /* registry ref to this userdata, LUA_NOREF when done */
  int type;         /* LLASH_CO_* */
  lash_run *run;    /* bodies: the run, NULL once finished or dropped */
  char *id;         /* bodies: the process id (one allocation with kind) */
  const char *kind; /* bodies: the kind, in id's allocation */
  /* Bodies: ctx's fields table is built at the first read of a field
   * (most bodies read none); until then user value 2 holds the input and
   * these the rest. */
  int ctx_lazy;
  lua_Integer attempt, fence;
  int parked; /* LLASH_PARK_*, 0 when not parked */
  int running;
  /* The watchdog (runner->stall, from the engine's heartbeat thread while
   * the body runs): written with __atomic builtins. */
  int64_t entered_at; /* monotonic ms of the current resume */
  int64_t stall_at;   /* monotonic ms the stall hook was set; 0: none */
  int stall_why;      /* LASH_STALL_* of that hook */
  int64_t stall_ms;   /* what the watchdog measured (or the budget) */
  int budget_over;    /* its time budget ran out: fails when it next runs */
  int doomed;         /* the stall hook raised: it raises again */
  /* The body asked for another command than its journal holds: registry
   * ref to the ENONDETERMINISM error that is its outcome, whatever it
   * does next (LUA_NOREF: none). */
  int nondet_ref;
  llash_waiter w;   /* its wait */
  llash_op *op;     /* the queued write it waits for, until it commits */
  lash_wait *wwait; /* a body's slot given back while it waits for that
                       commit (lash_await_manual), or NULL */
  llash_result res; /* that write's result */
  llash_link link;  /* in le->cos */
};

/* A write: performed inside the engine's shared transaction. */
enum {
  LLASH_OP_REGISTER = 1,
  LLASH_OP_APPEND,
  LLASH_OP_APPEND_FENCED,
  LLASH_OP_CANCEL,
  LLASH_OP_ABANDON,
  LLASH_OP_WAIT_SET,
  LLASH_OP_WAIT_CLEAR,
  LLASH_OP_COMPLETE,
  LLASH_OP_PRUNE,
  LLASH_OP_JOURNAL, /* a journal event of the run (fenced, keyed) */
  LLASH_OP_CHILD,   /* ctx:start: register a child + its journal event */
  LLASH_OP_RETRY    /* issue 13: eng:retry, re-queue a failed row */
};

struct llash_op {
  llash_engine *le;
  llash_co *co; /* the coroutine waiting for it; NULL once nobody waits */
  lash_lease lease;
  char *s1, *s2, *s3; /* id / kind / type / reason, by type */
  void *payload;
  size_t len;
  /* The run's journal event this write carries in the same commit (key
   * "cmd:<n>..."): appended fenced after the write itself succeeded; for
   * LLASH_OP_APPEND_FENCED and LLASH_OP_JOURNAL the key of the append. */
  char *key, *jtype;
  void *jpayload;
  size_t jlen;
  int i1, i2;
  int64_t n1;
  uint32_t u1;
  /* ---- issue 13 (retry): a registration's retry policy, delay and
   * unique key ---- */
  lash_retry_policy retry;
  int64_t run_at, unique_for_ms; /* run_at < 0: a delay of -run_at ms */
  char *unique_key;
  /* ---- issue 13 (claim): a register's priority and concurrency limit
   * (its concurrency key is s3) ---- */
  int64_t prio;
  int32_t climit;
  llash_result res;
  llash_link link; /* in le->ops while queued */
};

/* ------------------------------------------------------------- helpers */

char *llash_strdup(const char *s);

/* ---- issue 13 (retry) ---- */
/* t[k] as a number, 0 when it is none. */
lua_Number llash_numfield(lua_State *L, int t, const char *k);
/* The retry policy table at @p idx ({max_attempts, initial_ms, factor,
 * max_ms, jitter}, checked by lua/lash); zero when not a table. */
lash_retry_policy llash_policy(lua_State *L, int idx);

/* Pushes nil, message, code and returns 3. */
int llash_fail(lua_State *L, int rc, const char *msg);
int llash_fail_store(lua_State *L, llash_engine *le, int rc);

/* The open engine at @p idx; raises when it is closed. */
llash_engine *llash_checkengine(lua_State *L, int idx);
/* 1 while the engine runs on luv's loop and luv is running it. */
int llash_luv_running(const llash_engine *le);
/* luv's context in this state (NULL without luv or before require "luv"). */
void *llash_luv_context(lua_State *L);
struct uv_loop_s *llash_luv_loop(void *luv);

/* Argument checks whose errors name the argument:
 * "bad argument #2 to 'get' (id: string expected, got table)". */
const char *llash_checkstr(lua_State *L, int idx, const char *name);
const char *llash_optstr(lua_State *L, int idx, const char *name);
/* The id or name argument @p idx (called @p name; a non-string raises as
 * llash_checkstr; nil too unless @p opt, then *out is NULL), checked with
 * its Lua length against core's @p rule (lash.h: LASH_RULE_ID, _NAME,
 * _OWNER; 0: only a NUL is refused, for cursors), so an embedded NUL is
 * refused rather than cut. @return 0 with
 * *out set, or 3 with nil, msg, "EINVAL" pushed (return them). */
int llash_argid(lua_State *L, int idx, const char *name, int rule, int opt,
                const char **out);
lua_Integer llash_checkint(lua_State *L, int idx, const char *name);
lua_Integer llash_optint(lua_State *L, int idx, const char *name,
                         lua_Integer def);
/* As llash_optint, and >= 0. */
lua_Integer llash_optcount(lua_State *L, int idx, const char *name,
                           lua_Integer def);
void llash_checkfn(lua_State *L, int idx, const char *name);
/* A name of @p names (NULL-terminated); returns its index. */
int llash_checkname(lua_State *L, int idx, const char *name,
                    const char *const names[]);
/* A name of a core enumeration, given its name function (NULL past the
 * last value, which starts at 1); returns the value. */
int llash_checkenum(lua_State *L, int idx, const char *name,
                    const char *(*name_of)(int));
/* timeout_ms at @p idx: -1 (forever) when absent, else >= 0. */
int64_t llash_opttimeout(lua_State *L, int idx);

/* Fields of an option table at @p t that lua/lash/init.lua checked and
 * filled: read as they are (a wrong type raises, naming the field). */
lua_Integer llash_field_int(lua_State *L, int t, const char *k);
int llash_field_bool(lua_State *L, int t, const char *k);
/* Leaves the value on the stack, so the string lives until it is popped. */
const char *llash_field_str(lua_State *L, int t, const char *k);

/* A guard: a userdata that frees a C resource when collected, so a memory
 * error raised while the resource is held leaks nothing. */
typedef struct llash_guard {
  void (*free)(void *p);
  void *p;
  lash_record rec; /* room for a record read into the guard */
} llash_guard;
llash_guard *llash_guard_new(lua_State *L, void (*fn)(void *), void *p);
/* Frees the guarded resource now; pops the guard at @p idx (absolute). */
void llash_guard_done(lua_State *L, int idx);
void llash_free_record(void *p);
/* Lets go of what @p w holds: its pending wait (cancelled silently), an
 * unread result, its label. */
void llash_waiter_clear(llash_waiter *w);
void llash_free_wait(void *p);

/* Module setup (module table at -1): adds @p fns to the method table
 * core.Engine (made by llash_engine_open), and @p raw to the module. */
void llash_add_methods(lua_State *L, const luaL_Reg *fns);
void llash_add_functions(lua_State *L, const luaL_Reg *raw);

/* Runs f(a, b) protected on le->L; prints a failure to stderr. Used by
 * every callback from the loop so no Lua error crosses core frames. */
int llash_protect(llash_engine *le, lua_CFunction f, void *a, void *b);
/* A message from the background (a handler that raised, a body that could
 * not finish): one line or more, written to stderr, or handed to the
 * printer a host installed (the REPL prints it above its prompt and redraws
 * the prompt). NULL restores stderr. Loop thread only. */
typedef void (*llash_printer)(const char *text);
void llash_set_printer(llash_printer fn);
void llash_background(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------- payload */

/* The light userdata that stands for nil inside tables (lash.null). */
extern char llash_null_tag;
#define llash_pushnull(L) lua_pushlightuserdata(L, &llash_null_tag)
/* Metatable that marks a table as an array, so an empty one stays an array
 * through MessagePack and JSON (what decoding an array gives; lash.array). */
#define LLASH_ARRAY "lash.array"

/* Encodes the value at @p idx as MessagePack into a fresh buffer userdata
 * pushed on the stack; *out points into it (valid while it stays there).
 * @p what names the value in messages ("input"). On failure pushes the
 * message instead ("cannot encode a function at input.cb") and returns -1.
 * Either way exactly one value is pushed. */
int llash_encode(lua_State *L, int idx, const char *what, lash_bytes *out);
/* Decodes one MessagePack value and pushes it (nil for an empty payload).
 * Returns 0, or -1 with a message pushed instead. */
int llash_decode(lua_State *L, const void *data, size_t len);
/* Like llash_decode, but raises the message. */
void llash_pushpayload(lua_State *L, lash_bytes b);
void llash_payload_open(lua_State *L);
/* core.json_encode, core.json_decode, core.array, core.array_mt (l_json.c) */
void llash_json_open(lua_State *L);
/* Whether the table at @p idx is an array (marked with LLASH_ARRAY, or
 * keyed exactly 1..n, n > 0) for MessagePack and JSON alike; *len gets its
 * length, *count (may be NULL) its number of keys. */
int llash_table_shape(lua_State *L, int idx, lua_Integer *len,
                      lua_Integer *count);

/* ------------------------------------------------------------- pushers */

void llash_setstr(lua_State *L, const char *k, const char *v);
void llash_setint(lua_State *L, const char *k, lua_Integer v);

/* Record, event, outcome and stats tables. */
void llash_pushrecord(lua_State *L, const lash_record *r);
void llash_pushevent(lua_State *L, const lash_event *ev);
void llash_pushoutcome(lua_State *L, int status, lash_bytes b);
void llash_pushtombstone_outcome(lua_State *L, const lash_tombstone *t);
void llash_pushstats(lua_State *L, const lash_stats *s,
                     const lash_engine_stats *es);

/* The one builder of stored outcome payloads. Pushes the payload of an
 * outcome of @p status (COMPLETED, FAILED, CANCELLED) made from the value
 * at @p idx (0: none): completed, the value itself; failed, the error
 * table {class=, message= [, traceback=]} of an error value (a string, a
 * table with message/class/traceback, anything tostring takes), with
 * @p traceback when not NULL; cancelled, {reason=} from a string or a
 * table's reason. */
void llash_push_outcome_payload(lua_State *L, int status, int idx,
                                const char *traceback);

/* Listings: push an array, then one element per callback, each pushed
 * under lua_pcall so no Lua error crosses core frames. */
typedef struct llash_collect {
  lua_State *L;
  int tidx;
  lua_Integer n;
  int failed;
} llash_collect;
void llash_collect_begin(lua_State *L, llash_collect *k);
int llash_collect_record(void *ud, const lash_record *rec);
int llash_collect_event(void *ud, const lash_event *ev);
/* Returns the array, or raises/fails for a callback or store error. */
int llash_collect_end(lua_State *L, llash_engine *le, llash_collect *k, int rc);

/* ---------------------------------------------------------- coroutines */

/* Creates a coroutine userdata of @p le, pushes it, and anchors it. */
llash_co *llash_co_new(lua_State *L, llash_engine *le, int type);
/* Resumes @p c with @p nargs values on its thread; records its end. */
void llash_co_resume(llash_co *c, int nargs);
/* From a loop callback: resumes @p c if it is still parked on @p park. */
void llash_co_wake(llash_co *c, int park);
/* Unanchors @p c: cancels its wait, detaches its write, forgets its run. */
void llash_co_release(llash_co *c);
void llash_co_release_all(llash_engine *le);
/* The engine coroutine running @p L, or NULL for plain code. Raises when a
 * coroutine nested inside an engine coroutine calls (it cannot yield to the
 * engine and must not run the loop). */
llash_co *llash_current(lua_State *L, llash_engine *le);
/* The coroutine of @p le running @p L, or NULL (never raises). */
llash_co *llash_writer(lua_State *L, llash_engine *le);
/* Raises unless @p L may yield to the engine here. */
void llash_check_yieldable(lua_State *L);
/* Installs the runner: bodies, their drop, on_event handlers. */
void llash_runner_init(llash_engine *le);
/* core.Cancelled, the thread table, eng:spawn. */
void llash_co_open(lua_State *L);

/* -------------------------------------------------------------- writes */

/* A write of @p type with copies of the strings given (NULL: none), or
 * NULL when out of memory. */
llash_op *llash_op_new(llash_engine *le, int type, const char *s1,
                       const char *s2, const char *s3);
void llash_op_free(llash_op *op);
/* Encodes the value at @p idx into op->payload. Returns 0, or frees @p op,
 * pushes nil, msg, code and returns 3. */
int llash_op_payload(lua_State *L, llash_op *op, int idx, const char *what);
/* Frees @p op, pushes nil, msg, "ENOMEM", returns 3. */
int llash_op_nomem(lua_State *L, llash_op *op);
/* Performs @p op: from the engine coroutine @p c outside a batch it is
 * queued and c yields until the commit; else it commits now. Either way
 * the results are pushed as the Lua call returns them. */
int llash_write(lua_State *L, llash_engine *le, llash_co *c, llash_op *op);
/* A registration op of @p type from the Lua arguments (kind, input, id,
 * disposition, max_attempts, timeout_ms) at @p at..at+5; NULL with *nret
 * the number of values pushed (nil, msg, code) when they are refused. */
llash_op *llash_register_op(lua_State *L, llash_engine *le, int type, int at,
                            int *nret);
/* Queues @p op for this turn's commit without waiting for it (inside an
 * engine coroutine; elsewhere as llash_write). Pushes true. */
int llash_write_nowait(lua_State *L, llash_engine *le, llash_op *op);
/* Makes @p op carry the run's journal entry: key "cmd:<n><suffix>" and,
 * when @p jtype is not NULL, an event of that type whose payload is the
 * value at @p idx (appended fenced after the write itself). With jtype
 * NULL only the key is set (the write's own append takes it). 0, or the
 * number of values pushed (nil, msg, code) after freeing @p op. */
int llash_op_journal(lua_State *L, llash_op *op, lua_Integer n,
                     const char *suffix, const char *jtype, int idx);
/* Engine closing: nobody waits for the queued writes any more, then (after
 * lash_engine_close) the ones left are freed. */
void llash_ops_orphan(llash_engine *le);
void llash_ops_free(llash_engine *le);
/* start, signal, append, cancel, abandon, complete, prune, batches. */
void llash_writes_open(lua_State *L);

/* --------------------------------------------------------------- waits */

/* Checks that a wait may start from @p L and prepares its waiter: the
 * coroutine's own (*pc set), or @p local for plain code. */
/* What a wait waits for, in words, for its messages ("signal approve on
 * o-2", "the outcome of job-1"); @p type only for LLASH_W_EVENT. */
#define LLASH_WAIT_LABEL_MAX (2 * LASH_ID_MAX + 64)
void llash_wait_describe(char *buf, size_t cap, int what, const char *id,
                         const char *type);
llash_waiter *llash_wait_prepare(lua_State *L, llash_engine *le, llash_co **pc,
                                 llash_waiter *local, int what,
                                 const char *label);
/* After the lash_await_* call that returned @p rc into @p wt: pushes the
 * result if it resolved at once or failed; else yields (engine coroutine)
 * or runs the loop (plain code) until it resolves. */
int llash_wait(lua_State *L, llash_engine *le, llash_co *c, llash_waiter *wt,
               int rc);
/* As llash_wait for coroutine @p c, without parking: a wait still pending
 * stays in c->w and pushes false (park later with llash_wait_park). */
int llash_wait_begin(lua_State *L, llash_co *c, int rc);
/* Parks @p c on its pending wait; pushes the result. */
int llash_wait_park(lua_State *L, llash_co *c);
void llash_wait_cb(void *ud, lash_wait *w, int rc);
/* Raises the cancellation error of @p id. */
int llash_raise_cancelled(lua_State *L, llash_engine *le, const char *id);
/* await, await_event, sleep. */
void llash_waits_open(lua_State *L);

/* ----------------------------------------------------------------- ctx */

void llash_ctx_open(lua_State *L);
/* core.ctx_exec (l_exec.c: uses the waits). */
void llash_exec_open(lua_State *L);
/* core.kind_put, kind_get, kinds, workers (l_kinds.c, issue 11) */
void llash_kinds_open(lua_State *L);

/* ---------------------------------------------------------------- http */

/* core.http_listen (l_http.c). */
void llash_http_open(lua_State *L);
/* Closes the engine's HTTP servers (before its loop closes). */
void llash_http_close_all(llash_engine *le);
/* core.set_observer (worker logs) and core.term_* (lash top). */
void llash_observe_open(lua_State *L);

/* -------------------------------------------------------------- engine */

/* core.open, the "lash.Engine" metatable and core.Engine, its methods. */
void llash_sched_open(lua_State *L); /* l_sched.c: cron schedules */
void llash_engine_open(lua_State *L);

#endif /* LLASH_H */
