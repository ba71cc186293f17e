/* validate.c - argument checks shared by every registry operation: ids,
 * names, texts, event types, presented leases, payload sizes. They read
 * nothing and write nothing but the store's message. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen */
#endif
#include "registry-int.h"

#include <string.h>

int lash__check_id(lash_store *s, const char *id) {
  size_t n;
  if (id == NULL)
    return lash__fail(s, LASH_EINVAL,
                      "process id is missing: give 1 to %d bytes", LASH_ID_MAX);
  n = strnlen(id, LASH_ID_MAX + 1);
  if (n == 0)
    return lash__fail(s, LASH_EINVAL, "process id is empty: give 1 to %d bytes",
                      LASH_ID_MAX);
  if (n > LASH_ID_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "process id \"%.40s...\" is longer than %d bytes", id,
                      LASH_ID_MAX);
  return (int)n;
}

int lash__check_name_of(lash_store *s, const char *what, const char *name,
                        const char *id) {
  size_t n;
  const char *sep = id != NULL ? " of process " : "";
  if (id == NULL) id = "";
  if (name == NULL)
    return lash__fail(s, LASH_EINVAL, "%s%s%s is missing: give 1 to %d bytes",
                      what, sep, id, LASH_NAME_MAX);
  n = strnlen(name, LASH_NAME_MAX + 1);
  if (n == 0)
    return lash__fail(s, LASH_EINVAL, "%s%s%s is empty: give 1 to %d bytes",
                      what, sep, id, LASH_NAME_MAX);
  if (n > LASH_NAME_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "%s \"%.40s...\"%s%s is longer than %d bytes", what, name,
                      sep, id, LASH_NAME_MAX);
  return (int)n;
}

int lash__check_name(lash_store *s, const char *what, const char *name) {
  return lash__check_name_of(s, what, name, NULL);
}

int lash__check_payload(lash_store *s, const char *what, const char *id,
                        lash_bytes b) {
  if (b.len > 0 && b.data == NULL)
    return lash__fail(s, LASH_EINVAL,
                      "%s of process %s has %zu bytes but no data pointer",
                      what, id, b.len);
  if (b.len > s->opts.max_payload)
    return lash__fail(s, LASH_ETOOBIG,
                      "payload of %zu bytes is over the %zu-byte limit "
                      "(max_payload): %s of process %s",
                      b.len, s->opts.max_payload, what, id);
  return 0;
}

int lash__check_lease_arg(lash_store *s, const lash_lease *ls) {
  size_t n;
  if (ls == NULL) return lash__fail(s, LASH_EINVAL, "no lease given");
  n = strnlen(ls->process_id, sizeof ls->process_id);
  if (n == 0 || n > LASH_ID_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "the lease names no valid process id (1 to %d bytes)",
                      LASH_ID_MAX);
  n = strnlen(ls->owner, sizeof ls->owner);
  if (n == 0 || n > LASH_NAME_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "the lease on process %s names no valid owner",
                      ls->process_id);
  n = strnlen(ls->incarnation, sizeof ls->incarnation);
  if (n == 0 || n > LASH_NAME_MAX)
    return lash__fail(s, LASH_EINVAL,
                      "the lease on process %s names no valid incarnation",
                      ls->process_id);
  return 0;
}

int lash__check_text(lash_store *s, const char *what, const char *text,
                     const char *id, size_t max, int nullable) {
  size_t n;
  if (text == NULL) {
    if (nullable) return 0;
    return lash__fail(s, LASH_EINVAL, "%s of process %s is missing", what, id);
  }
  n = strnlen(text, max + 1);
  if (n > max)
    return lash__fail(s, LASH_EINVAL,
                      "%s of process %s is longer than %zu bytes", what, id,
                      max);
  if (n == 0 && !nullable)
    return lash__fail(s, LASH_EINVAL, "%s of process %s is empty", what, id);
  return 0;
}

int lash__check_event_type(lash_store *s, const char *id, const char *type) {
  int n = lash__check_name_of(s, "event type", type, id);
  const char *p;
  if (n < 0) return n;
  if (strncmp(type, "process.", 8) == 0)
    return lash__fail(s, LASH_EINVAL,
                      "event type %s on process %s is reserved: types "
                      "starting with \"process.\" are written by lash",
                      type, id);
  if (strncmp(type, "signal.", 7) == 0) {
    if (type[7] == '\0')
      return lash__fail(s, LASH_EINVAL,
                        "signal on process %s has no name: use "
                        "\"signal.<name>\" with [A-Za-z0-9_-]+",
                        id);
    for (p = type + 7; *p != '\0'; p++) {
      char c = *p;
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_' || c == '-'))
        return lash__fail(s, LASH_EINVAL,
                          "signal name \"%s\" on process %s is invalid: use "
                          "[A-Za-z0-9_-]+",
                          type + 7, id);
    }
  }
  return 0;
}
