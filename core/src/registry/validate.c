/* validate.c - argument checks shared by every registry operation: ids,
 * names, texts, event types, presented leases, payload sizes, and the
 * character rules of lash.h's lash_rule. They read nothing and write
 * nothing but the store's message. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strnlen */
#endif
#include "registry-int.h"

#include <stdio.h>
#include <string.h>

/* ----------------------------------------------------- character rules */

static const char *rule_text(int rule) {
  switch (rule) {
  case LASH_RULE_ID:
    return "ids are 1 to 255 bytes of UTF-8 without control characters";
  case LASH_RULE_OWNER:
    return "owners and incarnations are 1 to 127 bytes of UTF-8 without "
           "control characters";
  default:
    return "kinds and event types are 1 to 127 bytes of [A-Za-z0-9_.:-]";
  }
}

static int name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' || c == '-';
}

/* Length of the UTF-8 sequence at p (n bytes left), 0 if invalid:
 * no overlongs, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t n) {
  unsigned char c = p[0], lo = 0x80, hi = 0xbf;
  size_t k, i;
  if (c >= 0xc2 && c <= 0xdf)
    k = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    k = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    k = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else
    return 0;
  if (n < k || p[1] < lo || p[1] > hi) return 0;
  for (i = 2; i < k; i++)
    if (p[i] < 0x80 || p[i] > 0xbf) return 0;
  return k;
}

/* Offset of the first byte of s[0..len) that breaks rule (len: none);
 * *why says what is wrong with it. */
static size_t first_bad(int rule, const unsigned char *s, size_t len,
                        const char **why) {
  size_t i = 0, k;
  while (i < len) {
    unsigned char c = s[i];
    if (c == 0) {
      *why = "a NUL byte";
      return i;
    }
    if (c < 0x20 || c == 0x7f) {
      *why = "a control character";
      return i;
    }
    if (rule == LASH_RULE_NAME) {
      if (!name_char(c)) {
        *why = "a character outside [A-Za-z0-9_.:-]";
        return i;
      }
      i++;
      continue;
    }
    if (c < 0x80) {
      i++;
      continue;
    }
    if ((k = utf8_len(s + i, len - i)) == 0) {
      *why = "a byte that is not UTF-8";
      return i;
    }
    if (c == 0xc2 && s[i + 1] < 0xa0) { /* U+0080..U+009F */
      *why = "a control character";
      return i;
    }
    i += k;
  }
  return len;
}

/* s[0..len) for a message: at most 40 bytes, anything but printable ASCII
 * as \xNN, "..." when cut. */
static void escape(const unsigned char *s, size_t len, char *out, size_t cap) {
  size_t i, o = 0;
  for (i = 0; i < len && i < 40 && o + 5 < cap; i++) {
    unsigned char c = s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
      out[o++] = (char)c;
    else
      o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
  }
  if (i < len && o + 4 < cap) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o < cap ? o : cap - 1] = '\0';
}

/* The character check alone (lengths are checked by the callers, with
 * their own messages). */
static int check_chars(int rule, const char *what, const char *s, size_t len,
                       char *msg, size_t cap) {
  const char *why = "";
  char shown[256];
  size_t at = first_bad(rule, (const unsigned char *)s, len, &why);
  if (at == len) return 0;
  if (msg != NULL && cap > 0) {
    escape((const unsigned char *)s, len, shown, sizeof shown);
    snprintf(msg, cap, "%s \"%s\" has %s (0x%02x) at byte %zu: %s", what, shown,
             why, (unsigned char)s[at], at + 1, rule_text(rule));
  }
  return LASH_EINVAL;
}

int lash_check_string(int rule, const char *what, const char *s, size_t len,
                      char *msg, size_t cap) {
  size_t max = rule == LASH_RULE_ID ? LASH_ID_MAX : LASH_NAME_MAX;
  if (msg != NULL && cap > 0) msg[0] = '\0';
  if (rule != LASH_RULE_ID && rule != LASH_RULE_OWNER &&
      rule != LASH_RULE_NAME) {
    if (msg != NULL && cap > 0) snprintf(msg, cap, "unknown rule %d", rule);
    return LASH_EINVAL;
  }
  if (what == NULL) what = "string";
  if (s == NULL || len == 0 || len > max) {
    if (msg != NULL && cap > 0)
      snprintf(msg, cap, "%s is %s: %s", what,
               s == NULL  ? "missing"
               : len == 0 ? "empty"
                          : "too long",
               rule_text(rule));
    return LASH_EINVAL;
  }
  return check_chars(rule, what, s, len, msg, cap);
}

/* check_chars with the message into the store. */
static int fail_chars(lash_store *s, int rule, const char *what,
                      const char *str, size_t len) {
  char msg[LASH__ERRMSG_MAX];
  if (check_chars(rule, what, str, len, msg, sizeof msg) == 0) return 0;
  return lash__fail(s, LASH_EINVAL, "%s", msg);
}

/* ------------------------------------------------------------ checks */

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
  if (fail_chars(s, LASH_RULE_ID, "process id", id, n) < 0) return LASH_EINVAL;
  return (int)n;
}

/* A name of 1..127 bytes that follows @p rule, of process @p id (NULL:
 * none). */
static int check_rule_of(lash_store *s, int rule, const char *what,
                         const char *name, const char *id) {
  char label[LASH_NAME_MAX + LASH_ID_MAX + 32];
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
  /* (the label only for a message: this runs on every claim) */
  if (check_chars(rule, what, name, n, NULL, 0) == 0) return (int)n;
  snprintf(label, sizeof label, "%s%s%s", what, sep, id);
  (void)fail_chars(s, rule, label, name, n);
  return LASH_EINVAL;
}

int lash__check_name_of(lash_store *s, const char *what, const char *name,
                        const char *id) {
  return check_rule_of(s, LASH_RULE_OWNER, what, name, id);
}

int lash__check_name(lash_store *s, const char *what, const char *name) {
  return check_rule_of(s, LASH_RULE_OWNER, what, name, NULL);
}

int lash__check_kind(lash_store *s, const char *kind, const char *id) {
  return check_rule_of(s, LASH_RULE_NAME, "kind", kind, id);
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
  int n = check_rule_of(s, LASH_RULE_NAME, "event type", type, id);
  const char *p;
  if (n < 0) return n;
  if (strncmp(type, "process.", 8) == 0)
    return lash__fail(s, LASH_EINVAL,
                      "event type %s on process %s is reserved: types "
                      "starting with \"process.\" are written by lash",
                      type, id);
  if (strncmp(type, "signal.", 7) != 0) return 0;
  if (type[7] == '\0')
    return lash__fail(s, LASH_EINVAL,
                      "signal on process %s has no name: use "
                      "\"signal.<name>\" with [A-Za-z0-9_-]+",
                      id);
  for (p = type + 7; *p != '\0'; p++)
    if (*p == '.' || *p == ':')
      return lash__fail(s, LASH_EINVAL,
                        "signal name \"%s\" on process %s is invalid: use "
                        "[A-Za-z0-9_-]+",
                        type + 7, id);
  return 0;
}
