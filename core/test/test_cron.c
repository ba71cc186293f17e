/* test_cron.c - cron specs (core/src/sched/cron.c): fields, ranges, steps,
 * lists, names, the leading seconds field, aliases and @every; Vixie cron's
 * day-of-month / day-of-week rule; leap years; ticks in Europe/Berlin and
 * America/New_York across both daylight-saving changes (the rule of
 * lash_cron_next: a skipped local time ticks at the jump, a repeated one
 * at its first occurrence); bad specs and zones name the field and text. */
#define _GNU_SOURCE /* timegm */
#include "tap.h"

#include "lash.h"

#include <time.h>

/* "2026-01-01T00:07:00Z" -> epoch ms. */
static int64_t ms_of(const char *iso) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  if (sscanf(iso, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
             &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (int64_t)timegm(&tm) * 1000;
}

/* The tick of @p spec in @p tz after @p after, as ISO text ("ERR..." on
 * failure). */
static const char *next_of(const char *spec, const char *tz,
                           const char *after) {
  static char out[64];
  char err[256];
  lash_cron c;
  int64_t n;
  int rc = lash_cron_parse(spec, &c, err, sizeof err);
  if (rc != 0) {
    snprintf(out, sizeof out, "ERRPARSE %.50s", err);
    return out;
  }
  rc = lash_cron_next(&c, tz, ms_of(after), &n);
  if (rc != 0) {
    snprintf(out, sizeof out, "ERR %s", lash_err_name(rc));
    return out;
  }
  return lash_cron_iso(n, out, sizeof out);
}

#define NEXT(spec, tz, after, want)                                            \
  iss(next_of(spec, tz, after), want, "%s [%s] after %s", spec,                \
      tz ? tz : "UTC", after)

/* @p spec is refused with a message that contains @p w1 and @p w2. */
static void bad(const char *spec, const char *w1, const char *w2) {
  char err[512];
  lash_cron c;
  int rc = lash_cron_parse(spec, &c, err, sizeof err);
  is(rc, LASH_EINVAL, "'%s' is refused", spec);
  ok(strstr(err, w1) != NULL && strstr(err, w2) != NULL,
     "'%s': the message names %s / %s: %s", spec, w1, w2, err);
}

static void fields(void) {
  NEXT("*/15 * * * *", NULL, "2026-01-01T00:07:00Z", "2026-01-01T00:15:00Z");
  NEXT("*/15 * * * *", NULL, "2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z");
  NEXT("* * * * *", NULL, "2026-01-01T00:07:30Z", "2026-01-01T00:08:00Z");
  NEXT("5 * * * *", "", "2026-01-01T23:59:00Z", "2026-01-02T00:05:00Z");
  NEXT("0 1-10/3 * * *", NULL, "2026-01-01T04:00:00Z", "2026-01-01T07:00:00Z");
  NEXT("0 1-10/3 * * *", NULL, "2026-01-01T10:00:00Z", "2026-01-02T01:00:00Z");
  NEXT("0 20/2 * * *", NULL, "2026-01-01T20:00:00Z", "2026-01-01T22:00:00Z");
  NEXT("0 20/2 * * *", NULL, "2026-01-01T22:00:00Z", "2026-01-02T20:00:00Z");
  NEXT("10,20,40-42 * * * *", NULL, "2026-01-01T00:20:00Z",
       "2026-01-01T00:40:00Z");
  NEXT("10,20,40-42 * * * *", NULL, "2026-01-01T00:42:00Z",
       "2026-01-01T01:10:00Z");
  /* names, any case; 7 is Sunday; 2026-01-01 is a Thursday */
  NEXT("0 0 1 JAN,jul *", NULL, "2026-01-01T00:00:00Z", "2026-07-01T00:00:00Z");
  NEXT("0 9 * * MON-FRI", NULL, "2026-01-02T10:00:00Z", "2026-01-05T09:00:00Z");
  NEXT("0 0 * * 7", NULL, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
  NEXT("0 0 * * sun", NULL, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
  NEXT("0 0 * * 5-7", NULL, "2026-01-03T12:00:00Z", "2026-01-04T00:00:00Z");
  NEXT("0 0 31 * *", NULL, "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z");
  NEXT("0 12 * DEC *", NULL, "2026-01-01T00:00:00Z", "2026-12-01T12:00:00Z");
  /* the leading seconds field */
  NEXT("*/10 * * * * *", NULL, "2026-01-01T00:00:05Z", "2026-01-01T00:00:10Z");
  NEXT("* * * * * *", NULL, "2026-01-01T00:00:05Z", "2026-01-01T00:00:06Z");
  NEXT("30 0 0 1 1 *", NULL, "2026-01-01T00:00:30Z", "2027-01-01T00:00:30Z");
  /* aliases */
  NEXT("@hourly", NULL, "2026-01-01T10:30:00Z", "2026-01-01T11:00:00Z");
  NEXT("@daily", NULL, "2026-01-01T10:30:00Z", "2026-01-02T00:00:00Z");
  NEXT("@midnight", NULL, "2026-01-01T10:30:00Z", "2026-01-02T00:00:00Z");
  NEXT("@weekly", NULL, "2026-01-01T10:30:00Z", "2026-01-04T00:00:00Z");
  NEXT("@monthly", NULL, "2026-01-01T10:30:00Z", "2026-02-01T00:00:00Z");
  NEXT("@yearly", NULL, "2026-01-01T10:30:00Z", "2027-01-01T00:00:00Z");
  NEXT("@annually", NULL, "2026-01-01T10:30:00Z", "2027-01-01T00:00:00Z");
  NEXT("@every 30s", NULL, "2026-01-01T00:00:10Z", "2026-01-01T00:00:30Z");
  NEXT("@every 30s", NULL, "2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z");
  NEXT("@every 1h30m", NULL, "2026-01-01T00:00:00Z", "2026-01-01T01:30:00Z");
  NEXT("@every 1d", "Europe/Berlin", "2026-01-01T05:00:00Z",
       "2026-01-02T00:00:00Z");
  NEXT("@every 1500ms", NULL, "2026-01-01T00:00:00Z",
       "2026-01-01T00:00:01.500Z");
}

static void days(void) {
  /* Vixie cron: both day fields restricted -> either matches. 2026-01-02,
   * 01-09 are Fridays; 01-13 a Tuesday. */
  NEXT("0 0 13 * FRI", NULL, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
  NEXT("0 0 13 * FRI", NULL, "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z");
  /* one starts with '*' -> both: odd days that are Fridays */
  NEXT("0 0 */2 * 5", NULL, "2026-01-01T00:00:00Z", "2026-01-09T00:00:00Z");
  NEXT("0 0 */2 * 5", NULL, "2026-01-09T00:00:00Z", "2026-01-23T00:00:00Z");
  NEXT("0 0 13 * *", NULL, "2026-01-01T00:00:00Z", "2026-01-13T00:00:00Z");
  NEXT("0 0 * * 5", NULL, "2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z");
  /* leap years: 2100 is not one */
  NEXT("0 0 29 2 *", NULL, "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z");
  NEXT("0 0 29 2 *", NULL, "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z");
  NEXT("59 23 28-29 2 *", NULL, "2024-02-28T23:59:00Z", "2024-02-29T23:59:00Z");
  NEXT("59 23 28-29 2 *", NULL, "2025-02-28T00:00:00Z", "2025-02-28T23:59:00Z");
  NEXT("59 23 28-29 2 *", NULL, "2025-02-28T23:59:00Z", "2026-02-28T23:59:00Z");
}

static void zones(void) {
  const char *B = "Europe/Berlin", *NY = "America/New_York";
  /* winter CET (+1), summer CEST (+2) */
  NEXT("0 0 * * *", B, "2026-01-15T00:00:00Z", "2026-01-15T23:00:00Z");
  NEXT("0 0 * * *", B, "2026-06-01T00:00:00Z", "2026-06-01T22:00:00Z");
  /* spring forward, 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z): 02:30 does
   * not exist and ticks at the jump; the day after at 02:30 CEST */
  NEXT("30 2 * * *", B, "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z");
  NEXT("30 2 * * *", B, "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z");
  NEXT("0 * * * *", B, "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z");
  NEXT("0 * * * *", B, "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z");
  NEXT("*/20 * * * *", B, "2026-03-29T00:50:00Z", "2026-03-29T01:00:00Z");
  NEXT("*/20 * * * *", B, "2026-03-29T01:00:00Z", "2026-03-29T01:20:00Z");
  /* fall back, 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z): 02:30 ticks at
   * its first occurrence only */
  NEXT("30 2 * * *", B, "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z");
  NEXT("30 2 * * *", B, "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z");
  NEXT("0 * * * *", B, "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z");
  NEXT("0 * * * *", B, "2026-10-25T01:10:00Z", "2026-10-25T02:00:00Z");
  /* New York: EST (-5), EDT (-4); 2026-03-08 02:00 -> 03:00 (07:00Z),
   * 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z) */
  NEXT("0 9 * * *", NY, "2026-01-15T00:00:00Z", "2026-01-15T14:00:00Z");
  NEXT("0 9 * * *", NY, "2026-07-15T00:00:00Z", "2026-07-15T13:00:00Z");
  NEXT("30 2 * * *", NY, "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z");
  NEXT("30 2 * * *", NY, "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z");
  NEXT("30 1 * * *", NY, "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z");
  NEXT("30 1 * * *", NY, "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z");
  NEXT("0 0 1 * *", NY, "2026-01-01T12:00:00Z", "2026-02-01T05:00:00Z");
  /* a local weekday, not the UTC one: Monday 00:30 in New York is Monday
   * 05:30Z; Monday 00:30 in Berlin is Sunday 23:30Z */
  NEXT("30 0 * * MON", NY, "2026-01-01T00:00:00Z", "2026-01-05T05:30:00Z");
  NEXT("30 0 * * MON", B, "2026-01-01T00:00:00Z", "2026-01-04T23:30:00Z");
}

static void bad_input(void) {
  char err[256];
  lash_cron c;
  int64_t n;
  bad("61 * * * *", "minute", "61");
  bad("* 24 * * *", "hour", "24");
  bad("* * 0 * *", "day-of-month", "0");
  bad("* * * 13 *", "month", "13");
  bad("* * * FOO *", "month", "FOO");
  bad("* * * * 8", "day-of-week", "8");
  bad("* * * * XYZ", "day-of-week", "XYZ");
  bad("60 * * * * *", "second", "60");
  bad("*/0 * * * *", "minute", "step");
  bad("5-1 * * * *", "minute", "5-1");
  bad("1,,2 * * * *", "minute", "empty");
  bad("1-x * * * *", "minute", "'x'");
  bad("* * * *", "4 fields", "expected 5");
  bad("* * * * * * *", "more than 6 fields", "expected 5");
  bad("", "empty", "5 fields");
  bad("@often", "unknown alias", "@often");
  bad("@daily 5", "@daily", "nothing after");
  bad("@every", "@every", "duration");
  bad("@every 10x", "@every", "10x");
  bad("@every 500ms", "@every", "at least 1s");
  bad("0 0 30 2 *", "30", "no date matches");
  bad("0 0 31 4,6 *", "31", "no date matches");
  ok(lash_cron_parse("0 0 30 2 MON", &c, err, sizeof err) == 0,
     "Feb 30 or any Monday of February matches (the either rule)");
  is(lash_cron_tz_check("Europe/Berlin", err, sizeof err), 0, "a zone");
  is(lash_cron_tz_check(NULL, err, sizeof err), 0, "no zone: UTC");
  is(lash_cron_tz_check("UTC", err, sizeof err), 0, "UTC");
  is(lash_cron_tz_check("Mars/Olympus", err, sizeof err), LASH_EINVAL,
     "an unknown zone");
  ok(strstr(err, "Mars/Olympus") != NULL && strstr(err, "tz") != NULL,
     "its message names the zone: %s", err);
  is(lash_cron_parse("* * * * *", &c, NULL, 0), 0, "parse without err");
  is(lash_cron_next(&c, "Mars/Olympus", 0, &n), LASH_EINVAL,
     "next in an unknown zone");
}

static void iso(void) {
  char b[40];
  iss(lash_cron_iso(0, b, sizeof b), "1970-01-01T00:00:00Z", "the epoch");
  iss(lash_cron_iso(ms_of("2026-12-24T18:00:00Z") + 5, b, sizeof b),
      "2026-12-24T18:00:00.005Z", "milliseconds when not whole");
}

/* Many ticks in a row agree with a walk over every second (UTC, and one
 * zone away from its changes). */
static void walk(void) {
  static const char *specs[] = {"*/7 * * * * *", "0 */5 * * *",
                                "0 0 1,15 * WED", "17 3 * * *"};
  size_t i;
  for (i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    lash_cron c;
    int64_t t = ms_of("2026-05-01T00:00:00Z"), n, want;
    int k, okk = 1;
    lash_cron_parse(specs[i], &c, NULL, 0);
    for (k = 0; k < 30 && okk; k++) {
      okk = lash_cron_next(&c, NULL, t, &n) == 0;
      /* the brute-force walk: the first second after t whose UTC fields
       * match */
      int64_t step = c.sec == 1 ? 60000 : 1000;
      for (want = (t / step + 1) * step;; want += step) {
        time_t s = (time_t)(want / 1000);
        struct tm tm;
        int dom, dow;
        gmtime_r(&s, &tm);
        dom = (int)(c.dom >> tm.tm_mday & 1);
        dow = c.dow >> tm.tm_wday & 1;
        if ((c.sec >> tm.tm_sec & 1) && (c.min >> tm.tm_min & 1) &&
            (c.hour >> tm.tm_hour & 1) && (c.mon >> (tm.tm_mon + 1) & 1) &&
            ((c.flags & 3) ? dom && dow : dom || dow))
          break;
      }
      okk = okk && n == want;
      t = n;
    }
    ok(okk, "%s: 30 ticks agree with a walk over the seconds", specs[i]);
  }
}

int main(void) {
  fields();
  days();
  zones();
  bad_input();
  iso();
  walk();
  return done_testing();
}
