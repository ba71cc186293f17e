/* test_names.c - the character rules of ids and names (lash.h lash_rule;
 * issue 8 item 6, issue 11): lash_check_string with explicit lengths (an
 * embedded NUL), and every registry entry point refusing control
 * characters, bytes that are not UTF-8 and kinds or event types outside
 * [A-Za-z0-9_.:-] with LASH_EINVAL naming the byte and its position,
 * writing nothing. */
#include "testutil.h"

static int refused(int rule, const char *s, size_t len, const char *want) {
  char msg[512];
  int rc = lash_check_string(rule, "x", s, len, msg, sizeof msg);
  if (rc != LASH_EINVAL || strstr(msg, want) == NULL) {
    diag("rc %d, message '%s', wanted '%s'", rc, msg, want);
    return 0;
  }
  return 1;
}

/* Strings each rule refuses, with a piece of the message. */
static const struct {
  int rule;
  const char *s;
  size_t len;
  const char *want, *what;
} bad[] = {
    {LASH_RULE_ID, "a\0one", 5, "a NUL byte (0x00) at byte 2", "embedded NUL"},
    {LASH_RULE_ID, "a\tb", 3, "control character (0x09) at byte 2", "a tab"},
    {LASH_RULE_ID, "\x7f", 1, "(0x7f) at byte 1", "DEL"},
    {LASH_RULE_ID, "x\xc2\x85", 3, "control character (0xc2) at byte 2",
     "a C1 control (U+0085)"},
    {LASH_RULE_ID, "ab\xff", 3, "not UTF-8 (0xff) at byte 3", "not UTF-8"},
    {LASH_RULE_ID, "\xc0\x80", 2, "not UTF-8", "an overlong NUL"},
    {LASH_RULE_ID, "\xed\xa0\x80", 3, "not UTF-8", "a surrogate"},
    {LASH_RULE_ID, "\xe2\x9c", 2, "not UTF-8", "a cut sequence"},
    {LASH_RULE_ID, "a\0", 2, "\"a\\x00\"", "the value shown escaped"},
    {LASH_RULE_ID, "", 0, "empty", "empty"},
    {LASH_RULE_NAME, "bad kind!", 9, "outside [A-Za-z0-9_.:-] (0x20) at byte 4",
     "a space in a name"},
    {LASH_RULE_NAME, "caf\xc3\xa9", 5, "(0xc3) at byte 4", "names are ASCII"},
    {LASH_RULE_OWNER, "w\0", 2, "NUL", "an owner with a NUL"},
};

static void test_rules(void) {
  char msg[256];
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ok(refused(bad[i].rule, bad[i].s, bad[i].len, bad[i].want), "refused: %s",
       bad[i].what);
  is(lash_check_string(LASH_RULE_ID, "id", "has#hash", 8, msg, sizeof msg), 0,
     "has#hash is an id");
  is(lash_check_string(LASH_RULE_ID, "id", "caf\xc3\xa9 \xe2\x9c\x93", 9, NULL,
                       0),
     0, "printable UTF-8 with a space is an id");
  is(lash_check_string(LASH_RULE_NAME, "kind", "a.b:c-d_E9", 10, NULL, 0), 0,
     "[A-Za-z0-9_.:-] is a name");
  is(lash_check_string(99, "x", "a", 1, msg, sizeof msg), LASH_EINVAL,
     "an unknown rule");
}

static void test_registry(tu_env *e) {
  lash_store *s = e->s;
  lash_def d = tu_def("ok-1", "k", LASH_RERUNNABLE, 0);
  lash_lease ls;
  uint64_t seq, before;
  int rc;

  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0, "register ok-1");
  before = lash_change_seq(s);
  d.id = "a\tb";
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL,
        "an id with a tab");
  msg_has(s, "(0x09) at byte 2", "the message names the byte and where");
  d.id = "esc\x1b[2J";
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL,
        "an id with an escape sequence");
  d.id = "hi\xfe";
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL,
        "an id that is not UTF-8");
  d.id = "has#hash";
  d.kind = "bad kind!";
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), LASH_EINVAL,
        "the kind 'bad kind!'");
  msg_has(s, "[A-Za-z0-9_.:-]", "the message states the rule");
  is(lash_change_seq(s), before, "nothing was written");
  d.kind = "k";
  is_rc(s, lash_register(s, NULL, &d, NULL, NULL), 0, "has#hash is an id");

  rc = lash_append(s, NULL, "ok-1", "step done", (lash_bytes){NULL, 0}, &seq);
  is_rc(s, rc, LASH_EINVAL, "an event type with a space");
  rc = lash_append(s, NULL, "ok-1", "signal.go\x01", (lash_bytes){NULL, 0},
                   &seq);
  is_rc(s, rc, LASH_EINVAL, "a signal name with a control character");
  rc = lash_append(s, NULL, "ok-1", "signal.a.b", (lash_bytes){NULL, 0}, &seq);
  is_rc(s, rc, LASH_EINVAL, "a signal name keeps [A-Za-z0-9_-]+");
  rc = lash_append(s, NULL, "ok-1", "step.done:1", (lash_bytes){NULL, 0}, &seq);
  is_rc(s, rc, 0, "an event type of [A-Za-z0-9_.:-]");

  rc = lash_lease_claim(s, NULL, "ok-1", "own\ner", "inc", 1000, &ls);
  is_rc(s, rc, LASH_EINVAL, "a lease owner with a newline");
  rc = lash_lease_claim(s, NULL, "ok-1", "owner", "in\x7f", 1000, &ls);
  is_rc(s, rc, LASH_EINVAL, "a lease incarnation with DEL");
  tu_check(s, "the store is consistent");
}

int main(void) {
  tu_env e;
  test_rules();
  tu_open(&e, NULL);
  test_registry(&e);
  tu_close(&e);
  return done_testing();
}
