/* llash.h - declarations shared by the files of the lash.core Lua module.
 *
 * The bindings are thin: they check arguments, call the core (lash.h), push
 * results, and own the Lua side of every run: userdata, registry refs that
 * anchor coroutines, and the lua_yieldk continuations of every wait. Option
 * tables, defaults and policy live in lua/lash/init.lua.
 */
#ifndef LLASH_H
#define LLASH_H

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

/* ------------------------------------------------------------ payloads */

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

/* ----------------------------------------------------------- the engine */

typedef struct llash_co llash_co;
typedef struct llash_op llash_op;

/* How a coroutine or plain code waits for a wait or a write. */
typedef struct llash_waiter {
  llash_co *co;      /* the coroutine to resume, or NULL for plain code */
  volatile int done; /* set when the result arrived (plain code) */
  int what;          /* LLASH_W_* */
  int rc;            /* result code */
  lash_wait *res;    /* resolved wait, freed by whoever reads it */
  lash_wait *wait;   /* the parked wait, until it resolves */
  llash_op *op;      /* the queued write, until it commits */
  char *label;       /* copy of the awaited id, for messages */
} llash_waiter;

enum {
  LLASH_W_TERMINAL = 1,
  LLASH_W_EVENT,
  LLASH_W_SLEEP,
  LLASH_W_WRITE,
  LLASH_W_SPAWN
};

typedef struct llash_engine {
  lash_engine *e;
  lua_State *L;  /* the thread running the loop; callbacks run on it */
  int state_ref; /* registry ref: {kinds = {}, handlers = {}} */
  int depth;     /* > 0 while a coroutine of this engine runs */
  int in_loop;   /* > 0 while the loop runs */
  int batch;     /* an explicit batch is open */
  int nhandlers; /* on_event handlers */
  void *luv;     /* luv's context when running on its loop, else NULL */
  llash_co *cos; /* every anchored coroutine */
  llash_op *ops; /* every queued write */
} llash_engine;

enum { LLASH_CO_BODY = 1, LLASH_CO_SPAWN, LLASH_CO_HANDLER };

/* One coroutine the engine runs: a body (the ctx userdata), a spawned
 * function or an event handler. Lives in a "lash.Ctx" userdata whose first
 * uservalue is the thread and second the fields table; anchored by a
 * registry ref while it runs or is parked. */
struct llash_co {
  llash_engine *le;
  lua_State *th;
  int ref;       /* registry ref to this userdata, LUA_NOREF when done */
  int type;      /* LLASH_CO_* */
  lash_run *run; /* bodies: the run, NULL once finished or dropped */
  char *id;      /* bodies: the process id */
  int parked;    /* yielded inside a lash call */
  int running;
  llash_waiter w;
  llash_co *prev, *next;
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
  LLASH_OP_PRUNE
};

struct llash_op {
  int type;
  llash_engine *le;
  llash_waiter *w; /* NULL once nobody waits for the result */
  lash_lease lease;
  char *s1, *s2, *s3; /* id / kind / type / reason, by type */
  void *payload;
  size_t len;
  int i1, i2;
  int64_t n1;
  uint32_t u1;
  int rc;
  uint64_t seq;
  lash_prune_report prune;
  char msg[256];
  llash_op *prev, *next;
};

llash_engine *llash_checkengine(lua_State *L, int idx);
int llash_luv_running(const llash_engine *le);
void llash_check_yieldable(lua_State *L);

/* Argument checks whose errors name the argument:
 * "bad argument #2 to 'get' (id: string expected, got table)". */
const char *llash_checkstr(lua_State *L, int idx, const char *name);
const char *llash_optstr(lua_State *L, int idx, const char *name);
lua_Integer llash_checkint(lua_State *L, int idx, const char *name);
lua_Integer llash_optint(lua_State *L, int idx, const char *name,
                         lua_Integer def);
void llash_checkfn(lua_State *L, int idx, const char *name);
/* The engine coroutine running @p L, or NULL for plain code. Raises when a
 * coroutine nested inside an engine coroutine calls (it cannot yield to the
 * engine and must not run the loop). */
llash_co *llash_current(lua_State *L, llash_engine *le);

/* Pushes nil, message, code and returns 3. */
int llash_fail(lua_State *L, int rc, const char *msg);
int llash_fail_store(lua_State *L, llash_engine *le, int rc);

/* Record, event and outcome tables. */
void llash_pushrecord(lua_State *L, const lash_record *r);
void llash_pushevent(lua_State *L, const lash_event *ev);
void llash_pushoutcome(lua_State *L, int status, lash_bytes b);
void llash_pushtombstone_outcome(lua_State *L, const lash_tombstone *t);

/* Runs f(a, b) protected on le->L; prints a failure to stderr. Used by
 * every callback from the loop so no Lua error crosses core frames. */
int llash_protect(llash_engine *le, lua_CFunction f, void *a, void *b);

/* Queues or performs @p op: from an engine coroutine outside a batch it is
 * queued and the coroutine yields until the commit; else it is committed
 * now. Either way the results are pushed by llash_op_push. */
int llash_write(lua_State *L, llash_engine *le, llash_co *c, llash_op *op);
/* The coroutine of @p le running @p L, or NULL (never raises). */
llash_co *llash_writer(lua_State *L, llash_engine *le);
/* Registry key of the table thread -> coroutine userdata (weak keys). */
void *llash_cos_key(void);
llash_op *llash_op_new(llash_engine *le, int type);
void llash_op_free(llash_op *op);
char *llash_strdup(const char *s);

/* Waits: either yields (engine coroutine) or runs the loop (plain code).
 * @p wt is prepared by the caller with what and wait/res set from the
 * lash_await_* call that returned @p rc. */
int llash_wait(lua_State *L, llash_engine *le, llash_co *c, llash_waiter *wt,
               int rc);
void llash_wait_cb(void *ud, lash_wait *w, int rc);

/* Raises the cancellation error of @p id. */
int llash_raise_cancelled(lua_State *L, llash_engine *le, const char *id);

/* Coroutines (l_run.c). */
void llash_runner_init(llash_engine *le);
llash_co *llash_co_new(lua_State *L, llash_engine *le, int type);
void llash_co_resume(llash_co *c, int nargs);
void llash_co_release(llash_co *c);
void llash_engine_release_all(llash_engine *le);
int llash_spawn(lua_State *L);
void llash_ctx_open(lua_State *L);

void llash_engine_open(lua_State *L);

#endif /* LLASH_H */
