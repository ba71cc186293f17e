/* hub.h - the in-process change hub: process id -> version + subscribers.
 *
 * A publish only queues: it bumps the id's version and moves its parked
 * waits to the engine's ready list; the pump re-reads them later from a
 * loop callback, in bounded batches, so a waiter never runs inside the
 * writer's stack. Entries exist only while they have subscribers. */
#ifndef LASH_HUB_H
#define LASH_HUB_H

#include "lash.h"

#include <stddef.h>
#include <stdint.h>

typedef struct lash__hub_entry lash__hub_entry;

/* Subscribes w (w->id) before its re-read. 0 or LASH_ENOMEM. */
int lash__hub_subscribe(lash_engine *e, lash_wait *w);
/* Unsubscribes w and takes it off the ready list. Idempotent. */
void lash__hub_unsubscribe(lash_engine *e, lash_wait *w);
/* Bumps @p id's version and queues its subscribers for a re-read. */
void lash__hub_publish(lash_engine *e, const char *id);
/* The version of @p id (0 when nobody subscribes to it). */
uint64_t lash__hub_version(lash_engine *e, const char *id);
/* Re-reads up to @p max woken waits (only those queued before the call);
 * returns how many. */
size_t lash__hub_drain(lash_engine *e, size_t max);
void lash__hub_free(lash_engine *e);

#endif /* LASH_HUB_H */
