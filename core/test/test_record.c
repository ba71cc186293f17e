/* test_record.c - the record encoding (registry/record.c): a record writes
 * only what is off its default, and records and events written by the
 * older encoder (the fixtures below: bytes made by that encoder, the
 * version before issue 10's compact records) still decode to the same
 * fields; so do leases. Codec only: no store. */
#include "testutil.h"

#include "base/crc32c.h"
#include "registry/registry-int.h"

/* Made by lash__rec_encode / lash__ev_encode / lash__lease_encode of the
 * older layout (every field in a fixed place, event types as strings, a
 * released lease with all five fields). */
static const char OLD_NOOP[] =
    "\xdc\x00\x24\x03\xa9\x6e\x30\x30\x30\x30\x30\x30\x30\x31\xa4\x6e\x6f\x6f"
    "\x70\xc4\x01\x01\x01\x00\xcf\x00\x00\x01\x9a\xdb\x8c\x5b\x00\x00\x04\x95"
    "\xa8\x76\x6d\x3a\x31\x33\x30\x38\x38\xb0\x33\x33\x64\x66\x61\x65\x65\x35"
    "\x32\x63\x33\x30\x33\x61\x66\x33\x01\x01\xcf\x00\x00\x01\x9a\xdb\x8c\x5d"
    "\x58\xc4\x01\x01\xc0\x00\xc2\xc0\xc2\xc0\xc0\xcf\x00\x00\x01\x9a\xdb\x8c"
    "\x5d\x61\x02\xcd\xc4\x51\x00\xc0\xc0\xc0\x00\x92\x00\xc2\xc0\x00\xc0\xc0"
    "\x00\x01\xc0\x00\x00\x06\xc5\x8e\x61";
static const char OLD_FULL[] =
    "\xdc\x00\x24\x03\xa8\x72\x6f\x77\x2d\x66\x75\x6c\x6c\xa6\x6b\x69\x6e\x64"
    "\x2e\x78\xc4\x03\x92\x01\x02\x02\x07\xcf\x00\x00\x01\x9a\xdb\x8c\x5b\x00"
    "\x29\x03\x95\xa6\x68\x6f\x73\x74\x3a\x31\xa5\x69\x6e\x63\x2d\x31\x09\x03"
    "\xcf\x00\x00\x01\x9a\xdb\x8c\x5e\xe8\xc4\x03\xa2\x6f\x6b\xa6\x61\x20\x77"
    "\x61\x69\x74\xcf\x00\x00\x01\x9a\xdb\x8c\x62\xd0\xc3\xa6\x65\x6e\x6f\x75"
    "\x67\x68\xc3\xa3\x6f\x70\x73\xa5\x73\x74\x75\x63\x6b\xcf\x00\x00\x01\x9a"
    "\xdb\x8c\x66\xb8\x0c\x63\xcd\x09\xc4\xa8\x70\x61\x72\x65\x6e\x74\x2d\x31"
    "\x94\x01\xa5\x65\x76\x2e\x67\x6f\xa7\x6f\x74\x68\x65\x72\x2d\x31\xcf\x00"
    "\x00\x01\x9a\xdb\x8c\x7e\x28\x95\x05\x64\xcb\x3f\xf8\x00\x00\x00\x00\x00"
    "\x00\xcd\xea\x60\xcb\x3f\xd0\x00\x00\x00\x00\x00\x00\xcf\x00\x00\x01\x9a"
    "\xdb\x8c\x5c\xf4\x92\x02\xc3\xa4\x75\x6b\x2d\x31\xce\x00\x36\xee\x80\xc0"
    "\xc0\xfd\x28\xa8\x74\x65\x6e\x61\x6e\x74\x2d\x61\x02\x01\xf7\x17\xad\xf8";
static const char OLD_PENDING[] =
    "\xdc\x00\x24\x03\xa2\x70\x31\xa1\x6b\xc4\x00\x01\x00\xcf\x00\x00\x01\x9a"
    "\xdb\x8c\x5b\x00\x00\x01\xc0\xc0\xc0\x00\xc2\xc0\xc2\xc0\xc0\xcf\x00\x00"
    "\x01\x9a\xdb\x8c\x5b\x00\x00\x01\x00\xc0\xc0\xc0\x00\x92\x00\xc2\xc0\x00"
    "\xc0\xc0\x00\x01\xc0\x00\x00\x93\x3d\xcd\xc7";
static const char OLD_EV_STARTED[] =
    "\x93\xaf\x70\x72\x6f\x63\x65\x73\x73\x2e\x73\x74\x61\x72\x74\x65\x64\xc4"
    "\x01\x80\xcf\x00\x00\x01\x9a\xdb\x8c\x5d\x58\xc4\x1d\xbc\xd5";
static const char OLD_EV_KEYED[] =
    "\x94\xb1\x70\x72\x6f\x63\x65\x73\x73\x2e\x63\x6f\x6d\x70\x6c\x65\x74\x65"
    "\x64\xc4\x01\x01\xcf\x00\x00\x01\x9a\xdb\x8c\x5d\x61\xa2\x6b\x31\x58\xa9"
    "\xf9\x56";
static const char OLD_LEASE_HELD[] =
    "\x95\xa8\x76\x6d\x3a\x31\x33\x30\x38\x38\xb0\x33\x33\x64\x66\x61\x65\x65"
    "\x35\x32\x63\x33\x30\x33\x61\x66\x33\xcf\x12\x34\x56\x78\x90\xab\xcd\xef"
    "\x03\xcf\x00\x00\x01\x9a\xdb\x8c\xd2\x88\x56\x3d\x0c\x47";
static const char OLD_LEASE_RELEASED[] =
    "\x95\xa0\xa0\x00\x03\x00\x12\x83\xb2\x2a";

#define SV(lit) lash__sv_of(lit, sizeof lit - 1)
#define FIX(a) (a), sizeof(a) - 1

static int sv_is(lash__sv v, const char *s) {
  return v.p != NULL && v.n == strlen(s) && memcmp(v.p, s, v.n) == 0;
}

/* Every field of two records equal (views by their bytes). */
static int rec_same(const lash__rec *a, const lash__rec *b) {
#define SAME_SV(f) lash__sv_eq(a->f, b->f)
  return SAME_SV(id) && SAME_SV(kind) && SAME_SV(input) &&
         a->disposition == b->disposition &&
         a->max_attempts == b->max_attempts && a->created_at == b->created_at &&
         a->floor == b->floor && a->timeout_ms == b->timeout_ms &&
         SAME_SV(parent) && a->status == b->status &&
         a->has_attempt == b->has_attempt && SAME_SV(att_owner) &&
         SAME_SV(att_inc) && a->att_fence == b->att_fence &&
         a->att_number == b->att_number &&
         a->att_started_at == b->att_started_at && SAME_SV(outcome) &&
         SAME_SV(wait) && a->wait_since == b->wait_since &&
         a->cancel_requested == b->cancel_requested && SAME_SV(cancel_reason) &&
         a->abandon_requested == b->abandon_requested && SAME_SV(abandon_by) &&
         SAME_SV(abandon_reason) && a->updated_at == b->updated_at &&
         a->last_seq == b->last_seq && a->change_seq == b->change_seq &&
         a->suspended == b->suspended && a->woken == b->woken &&
         SAME_SV(wake_event) && SAME_SV(wake_process) &&
         a->wake_at == b->wake_at &&
         a->retry.max_attempts == b->retry.max_attempts &&
         a->retry.initial_ms == b->retry.initial_ms &&
         a->retry.factor == b->retry.factor &&
         a->retry.max_ms == b->retry.max_ms &&
         a->retry.jitter == b->retry.jitter && a->run_at == b->run_at &&
         SAME_SV(unique_key) && a->unique_for_ms == b->unique_for_ms &&
         a->failures == b->failures && a->retry_due == b->retry_due &&
         a->priority == b->priority && a->created_seq == b->created_seq &&
         SAME_SV(conc_key) && a->conc_limit == b->conc_limit &&
         a->conc_state == b->conc_state;
#undef SAME_SV
}

/* Decodes old bytes, encodes them anew, decodes those: the same record,
 * in at most max_new bytes. */
static void old_round_trip(const char *name, const char *old, size_t n,
                           size_t max_new, msgpack_zone *z) {
  lash__rec a, b;
  lash__buf buf = {0};
  ok(lash__rec_decode(old, n, &a, z) == 0, "%s: the older encoding decodes",
     name);
  ok(lash__rec_encode(&a, &buf) == 0, "%s: encodes", name);
  ok(buf.len <= max_new, "%s: %zu bytes, was %zu (at most %zu)", name, buf.len,
     n, max_new);
  ok(lash__rec_decode(buf.p, buf.len, &b, z) == 0 && rec_same(&a, &b),
     "%s: the new encoding decodes to every field of the old one", name);
  lash__buf_free(&buf);
}

static void test_old_noop(msgpack_zone *z) {
  lash__rec r;
  ok(lash__rec_decode(FIX(OLD_NOOP), &r, z) == 0, "old no-op record decodes");
  ok(sv_is(r.id, "n00000001") && sv_is(r.kind, "noop"), "its id and kind");
  is(r.status, LASH_COMPLETED, "completed");
  is(r.disposition, LASH_RERUNNABLE, "rerunnable");
  ok(r.has_attempt && sv_is(r.att_owner, "vm:13088") &&
         sv_is(r.att_inc, "33dfaee52c303af3") && r.att_fence == 1 &&
         r.att_number == 1 && r.att_started_at == 1764620000600,
     "its attempt");
  ok(r.outcome.n == 1 && r.outcome.p[0] == 1, "its outcome");
  is(r.created_at, 1764620000000, "created_at");
  is(r.updated_at, 1764620000609, "updated_at");
  isu(r.last_seq, 2, "last_seq");
  isu(r.change_seq, 50257, "change_seq");
  isu(r.created_seq, 1, "created_seq");
  ok(r.wait.p == NULL && !r.cancel_requested && !r.abandon_requested &&
         r.parent.p == NULL && !r.suspended && r.retry.max_attempts == 0 &&
         r.unique_key.p == NULL && r.conc_key.p == NULL && r.priority == 0,
     "the rest at its defaults");
  old_round_trip("no-op", FIX(OLD_NOOP), 80, z);
}

static void test_old_full(msgpack_zone *z) {
  lash__rec r;
  ok(lash__rec_decode(FIX(OLD_FULL), &r, z) == 0, "old full record decodes");
  ok(sv_is(r.id, "row-full") && sv_is(r.kind, "kind.x") &&
         sv_is(r.input, "\x92\x01\x02"),
     "id, kind, input");
  ok(r.disposition == LASH_OWNER_BOUND && r.max_attempts == 7 &&
         r.floor == 41 && r.timeout_ms == 2500 && sv_is(r.parent, "parent-1"),
     "disposition, max_attempts, floor, timeout, parent");
  ok(r.status == LASH_WAITING && sv_is(r.wait, "a wait") &&
         r.wait_since == 1764620002000,
     "waiting, its wait");
  ok(r.has_attempt && sv_is(r.att_owner, "host:1") &&
         sv_is(r.att_inc, "inc-1") && r.att_fence == 9 && r.att_number == 3 &&
         r.att_started_at == 1764620001000,
     "the attempt");
  ok(sv_is(r.outcome, "\xa2ok"), "outcome");
  ok(r.cancel_requested && sv_is(r.cancel_reason, "enough") &&
         r.abandon_requested && sv_is(r.abandon_by, "ops") &&
         sv_is(r.abandon_reason, "stuck"),
     "cancel and abandon requests");
  ok(r.updated_at == 1764620003000 && r.last_seq == 12 && r.change_seq == 99,
     "stamps");
  ok(r.suspended && !r.woken && sv_is(r.wake_event, "ev.go") &&
         sv_is(r.wake_process, "other-1") && r.wake_at == 1764620009000,
     "suspension");
  ok(r.retry.max_attempts == 5 && r.retry.initial_ms == 100 &&
         r.retry.factor == 1.5 && r.retry.max_ms == 60000 &&
         r.retry.jitter == 0.25 && r.run_at == 1764620000500 &&
         r.failures == 2 && r.retry_due == 1 && sv_is(r.unique_key, "uk-1") &&
         r.unique_for_ms == 3600000,
     "retry policy, run_at, failures, unique key");
  ok(r.priority == -3 && r.created_seq == 40 && sv_is(r.conc_key, "tenant-a") &&
         r.conc_limit == 2 && r.conc_state == LASH_CONC_HOLDS,
     "priority, creation order, concurrency");
  old_round_trip("full", FIX(OLD_FULL), sizeof OLD_FULL - 1, z);
}

static void test_old_pending(msgpack_zone *z) {
  lash__rec r;
  ok(lash__rec_decode(FIX(OLD_PENDING), &r, z) == 0 &&
         r.status == LASH_PENDING && !r.has_attempt && r.outcome.p == NULL &&
         r.input.n == 0 && r.input.p != NULL && r.updated_at == r.created_at,
     "old pending record decodes");
  old_round_trip("pending", FIX(OLD_PENDING), 40, z);
}

/* Values away from the defaults in one field at a time, and the extremes
 * of the time differences, survive the new encoding. */
static void test_fields_one_by_one(msgpack_zone *z) {
  lash__rec base, r, d;
  lash__buf buf = {0};
  int i, good = 1;
  lash__rec_base(&base, SV("id-1"), SV("k"), SV("\x01"), LASH_RERUNNABLE, 0,
                 1000, 0);
  base.change_seq = base.created_seq = 1;
  for (i = 0; i < 24; i++) {
    r = base;
    switch (i) {
    case 0:
      r.has_attempt = 1, r.att_owner = SV("o"), r.att_inc = SV(""),
      r.att_started_at = INT64_MIN;
      break;
    case 1:
      r.outcome = SV("");
      break;
    case 2:
      r.disposition = LASH_EXTERNAL;
      break;
    case 3:
      r.max_attempts = UINT32_MAX;
      break;
    case 4:
      r.floor = UINT64_MAX;
      break;
    case 5:
      r.wait = SV("");
      break;
    case 6:
      r.wait_since = -5;
      break;
    case 7:
      r.cancel_requested = 1;
      break; /* no reason */
    case 8:
      r.abandon_requested = 1, r.abandon_reason = SV("r");
      break;
    case 9:
      r.timeout_ms = 1;
      break;
    case 10:
      r.parent = SV("p");
      break;
    case 11:
      r.woken = 1;
      break;
    case 12:
      r.retry.max_attempts = 1, r.retry.factor = 2;
      break;
    case 13:
      r.run_at = INT64_MAX;
      break;
    case 14:
      r.failures = 1;
      break;
    case 15:
      r.retry_due = 1;
      break;
    case 16:
      r.unique_key = SV("u");
      break;
    case 17:
      r.unique_for_ms = 1;
      break;
    case 18:
      r.priority = INT64_MIN;
      break;
    case 19:
      r.conc_key = SV("c");
      break;
    case 20:
      r.conc_limit = INT32_MAX;
      break;
    case 21:
      r.conc_state = LASH_CONC_WAITS;
      break;
    case 22:
      r.created_at = INT64_MAX, r.updated_at = INT64_MIN;
      break;
    default:
      r.status = LASH_ABANDONED, r.last_seq = UINT64_MAX;
      break;
    }
    if (lash__rec_encode(&r, &buf) != 0 ||
        lash__rec_decode(buf.p, buf.len, &d, z) != 0 || !rec_same(&r, &d)) {
      good = 0;
      printf("# field case %d does not survive\n", i);
    }
  }
  ok(good, "each field off its default survives encode and decode");
  /* the fresh row: the fixed part and nothing else */
  i = lash__rec_encode(&base, &buf);
  ok(i == 0 && buf.len <= 32, "a fresh row's record is %zu bytes (at most 32)",
     buf.len);
  lash__buf_free(&buf);
}

/* A mask naming fields the array does not hold, or bits no field has, is
 * damage: never a record. */
static void test_bad_mask(msgpack_zone *z) {
  lash__rec r;
  lash__buf buf = {0};
  unsigned char *p;
  int n_ok = 0, fixed = 0;
  lash__rec_base(&r, SV("id-1"), SV("k"), SV("\x01"), LASH_RERUNNABLE, 0, 1000,
                 0);
  ok(lash__rec_encode(&r, &buf) == 0, "encodes");
  p = (unsigned char *)buf.p;
  /* p[0] the fixarray, p[1] the version, p[2] the mask (0: a fixint) */
  ok(p[2] == 0, "no optional fields on a fresh row");
  {
    int bit;
    for (bit = 0; bit < 7; bit++) {
      uint32_t c;
      p[2] = (unsigned char)(1u << bit);
      /* reseal, so that the mask and not the seal is what is judged */
      c = lash__crc32c(buf.p, buf.len - 4);
      p[buf.len - 4] = (unsigned char)(c >> 24);
      p[buf.len - 3] = (unsigned char)(c >> 16);
      p[buf.len - 2] = (unsigned char)(c >> 8);
      p[buf.len - 1] = (unsigned char)c;
      if (lash__rec_decode(buf.p, buf.len, &r, z) == LASH_ECORRUPT) n_ok++;
    }
    fixed = 1;
  }
  ok(fixed && n_ok == 7,
     "a mask with a field the array lacks is ECORRUPT "
     "(%d of 7)",
     n_ok);
  lash__buf_free(&buf);
}

/* Events: the older encoding (type strings) decodes; the lifecycle types
 * are written shorter. */
static void test_events(msgpack_zone *z) {
  lash__ev ev, d;
  lash__buf buf = {0};
  int rc;
  ok(lash__ev_decode(FIX(OLD_EV_STARTED), &ev, z) == 0 &&
         sv_is(ev.type, "process.started") && ev.payload.n == 1 &&
         ev.at == 1764620000600 && ev.key.p == NULL,
     "old started event decodes");
  ok(lash__ev_decode(FIX(OLD_EV_KEYED), &ev, z) == 0 &&
         sv_is(ev.type, "process.completed") && sv_is(ev.key, "k1"),
     "old keyed event decodes");
  rc = lash__ev_encode(&ev, &buf);
  ok(rc == 0 && buf.len < sizeof OLD_EV_KEYED - 1 - 12,
     "a lifecycle event is written in %zu bytes (was %zu)", buf.len,
     sizeof OLD_EV_KEYED - 1);
  ok(lash__ev_decode(buf.p, buf.len, &d, z) == 0 &&
         sv_is(d.type, "process.completed") && sv_is(d.key, "k1") &&
         lash__sv_eq(d.payload, ev.payload) && d.at == ev.at,
     "and decodes to the same event");
  memset(&ev, 0, sizeof ev);
  ev.type = SV("user.thing");
  ev.payload = SV("\xc0");
  ev.at = 5;
  ok(lash__ev_encode(&ev, &buf) == 0 &&
         lash__ev_decode(buf.p, buf.len, &d, z) == 0 &&
         sv_is(d.type, "user.thing"),
     "a user event's type stays a string");
  lash__buf_free(&buf);
}

/* Leases (an encoding this change keeps): the bytes of the older build
 * decode. */
static void test_leases(msgpack_zone *z) {
  lash_lease a, b;
  lash__buf buf = {0};
  int rc;
  memset(&a, 0, sizeof a);
  ok(lash__lease_decode(FIX(OLD_LEASE_HELD), &a, z) == 0 &&
         strcmp(a.owner, "vm:13088") == 0 &&
         strcmp(a.incarnation, "33dfaee52c303af3") == 0 &&
         a.token == 0x1234567890abcdefULL && a.fence == 3 &&
         a.expires_at == 1764620030600,
     "old held lease decodes");
  rc = lash__lease_encode(&a, &buf);
  memset(&b, 0, sizeof b);
  ok(rc == 0 && lash__lease_decode(buf.p, buf.len, &b, z) == 0 &&
         strcmp(b.owner, a.owner) == 0 &&
         strcmp(b.incarnation, a.incarnation) == 0 && b.token == a.token &&
         b.fence == a.fence && b.expires_at == a.expires_at,
     "a held lease survives encode and decode");
  memset(&a, 0, sizeof a);
  ok(lash__lease_decode(FIX(OLD_LEASE_RELEASED), &a, z) == 0 &&
         a.owner[0] == '\0' && a.incarnation[0] == '\0' && a.token == 0 &&
         a.fence == 3 && a.expires_at == 0,
     "old released lease decodes");
  lash__buf_free(&buf);
}

int main(void) {
  msgpack_zone z;
  msgpack_zone_init(&z, 4096);
  test_old_noop(&z);
  test_old_full(&z);
  test_old_pending(&z);
  test_fields_one_by_one(&z);
  test_bad_mask(&z);
  test_events(&z);
  test_leases(&z);
  msgpack_zone_destroy(&z);
  return done_testing();
}
