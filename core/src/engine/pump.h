/* engine/pump.h - the engine's loop side: the pump (one uv_idle handle,
 * active only while there is work) and the count of the engine's open
 * handles.
 *
 * Part: pump (floor 1 of the engine). May call: libuv (base/queue in the .c).
 * Every other part kicks the pump; the pump calls back only through the turn
 * function that the engine registered, so no part above is named here. */
#ifndef LASH_ENGINE_PUMP_H
#define LASH_ENGINE_PUMP_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* pthread types in uv.h, strdup */
#endif

#include "lash.h"

#include <uv.h>

/* One turn of work; returns 1 while work remains (the idle stays on). */
typedef int (*lash__turn_fn)(void *ud);

typedef struct lash__handles {
  int open; /* handles initialised and not yet closed */
} lash__handles;

typedef struct lash__pump {
  uv_idle_t idle;
  int on;
  int depth; /* nested turns (a host callback that runs the loop) */
  int closed;
  lash__turn_fn turn;
  void *ud;
} lash__pump;

/* Counts @p h as open (call right after its uv_*_init). */
void lash__handle_opened(lash__handles *hs, uv_handle_t *h);
/* Closes @p h if it was opened and is not closing; the count drops in its
 * close callback. */
void lash__handle_close(uv_handle_t *h);

void lash__pump_init(lash__pump *p, uv_loop_t *loop, lash__handles *hs,
                     lash__turn_fn turn, void *ud);
/* Makes sure a turn runs soon (no-op once closed). */
void lash__pump_kick(lash__pump *p);
/* No more kicks; closes the handle. */
void lash__pump_close(lash__pump *p);

#endif /* LASH_ENGINE_PUMP_H */
