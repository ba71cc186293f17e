/* mem_backend.h - a registry backend in memory, for tests only: it proves
 * that the registry runs on any lash_backend.h table, not just LMDB.
 *
 * Stores are named by their target and live in this process until
 * lash_test_mem_drop, so a test can close and reopen one. One writer at a
 * time (a second is refused, not waited for); reads see the last commit.
 * No wake source (optional in the table: the poll backoff finds
 * changes). */
#ifndef LASH_TEST_MEM_BACKEND_H
#define LASH_TEST_MEM_BACKEND_H

#include "lash_backend.h"

const lash_backend_methods *lash_test_mem_backend(void);
/* Forgets the store named @p target (no handle may be open on it). */
void lash_test_mem_drop(const char *target);

#endif
