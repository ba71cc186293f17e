/* engine/engine.h - struct lash_engine: the parts of one engine, each with
 * its own state and init/free pair. Only engine.c (and white-box tests)
 * see the whole; a part sees the parts below it through the pointers its
 * init was given.
 *
 * Part: engine (floor 9, the top). May call: every part. */
#ifndef LASH_ENGINE_ENGINE_H
#define LASH_ENGINE_ENGINE_H

#include "engine/admit.h"
#include "engine/awaiter.h"
#include "engine/changes.h"
#include "engine/feed.h"
#include "engine/hub.h"
#include "engine/observe.h"
#include "engine/presence.h"
#include "engine/pump.h"
#include "engine/renew.h"
#include "engine/runs.h"
#include "engine/schedule.h"
#include "engine/suspend.h"
#include "engine/writer.h"

struct lash_engine {
  uv_loop_t *loop;
  uv_loop_t own_loop;
  int loop_owned;
  lash_store *s;
  int closing;
  lash__handles handles;

  /* the parts, bottom up */
  lash__pump pump;
  lash__observer obs;
  lash__writer writer;
  lash__hub hub;
  lash__feed feed;
  lash__renew renew;
  lash__awaiter awaiter;
  lash__runs runs;
  lash__admit admit;
  lash__suspender susp;
  lash__sched sched; /* cron schedules (issue 13) */
  lash__changes changes;
  lash__presence presence; /* the worker entry (issue 11, kv) */

  /* run modes */
  int in_run;
  int run_default;
  int stop;
  int interrupted; /* lash_engine_interrupt: end run_until/run early */
  /* The last storage retry said on stderr (one line per backoff step). */
  int64_t retry_said_ms;
  uint64_t retry_said_at;
};

#endif /* LASH_ENGINE_ENGINE_H */
