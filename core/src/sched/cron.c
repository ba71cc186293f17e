/* cron.c - cron specs: the parser and the next tick in a time zone (the sched
 * room, below the registry: the C library and ICU's C calendar only).
 *
 * A spec is parsed into bit masks (lash_cron, lash.h). The next tick is a
 * search in local wall-clock fields (year, month, day, hour, minute,
 * second: plain calendar arithmetic, no time zone), and each match found is
 * turned into an instant by ICU's calendar for the zone (ucal_*: the tz
 * database ICU carries; no TZ variable is touched, so any thread may call
 * this).
 *
 * Daylight saving (the rule lash_cron_next documents):
 * - a local time the clock jumps over does not exist: ICU's "next valid"
 *   rule maps it to the first instant after the jump, so a 02:30 daily tick
 *   runs at 03:00 on the spring-forward day (several skipped ticks become
 *   one there);
 * - a local time the clock passes twice ticks once, at its first
 *   occurrence ("first" rule); the search skips matches whose instant is
 *   not after the given time, so the second pass through the hour ticks
 *   nothing.
 * The search walks fields, never instants, so both rules fall out of the
 * one conversion. */
#include "lash.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unicode/ucal.h>
#include <unicode/ustring.h>

/* ---------------------------------------------------------------- errors */

static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  if (err != NULL && errlen > 0) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return LASH_EINVAL;
}

/* ---------------------------------------------------------------- fields */

typedef struct fdesc {
  const char *name;
  int lo, hi;
  const char *const *names; /* NULL, or names of lo.. (3 letters) */
} fdesc;

static const char *const MON_NAMES[] = {"JAN", "FEB", "MAR", "APR", "MAY",
                                        "JUN", "JUL", "AUG", "SEP", "OCT",
                                        "NOV", "DEC", NULL};
static const char *const DOW_NAMES[] = {"SUN", "MON", "TUE", "WED",
                                        "THU", "FRI", "SAT", NULL};

static const fdesc F_SEC = {"second", 0, 59, NULL};
static const fdesc F_MIN = {"minute", 0, 59, NULL};
static const fdesc F_HOUR = {"hour", 0, 23, NULL};
static const fdesc F_DOM = {"day-of-month", 1, 31, NULL};
static const fdesc F_MON = {"month", 1, 12, MON_NAMES};
static const fdesc F_DOW = {"day-of-week", 0, 7, DOW_NAMES};

typedef struct ptext {
  const char *spec; /* the whole spec, for messages */
  char *err;
  size_t errlen;
} ptext;

/* One value (a number or a name) of @p t[0..n) into *v. */
static int field_value(const ptext *p, const fdesc *f, const char *t, size_t n,
                       int *v) {
  size_t i;
  long x = 0;
  if (n == 0)
    return fail(p->err, p->errlen,
                "cron spec \"%s\": the %s field: a value is missing", p->spec,
                f->name);
  if (isdigit((unsigned char)t[0])) {
    for (i = 0; i < n; i++) {
      if (!isdigit((unsigned char)t[i]) || x > 1000)
        return fail(p->err, p->errlen,
                    "cron spec \"%s\": the %s field: '%.*s' is not a number",
                    p->spec, f->name, (int)n, t);
      x = x * 10 + (t[i] - '0');
    }
    if (x < f->lo || x > f->hi)
      return fail(p->err, p->errlen,
                  "cron spec \"%s\": the %s field: %.*s is out of range %d-%d",
                  p->spec, f->name, (int)n, t, f->lo, f->hi);
    *v = (int)x;
    return 0;
  }
  if (f->names != NULL && n == 3) {
    for (i = 0; f->names[i] != NULL; i++) {
      const char *nm = f->names[i];
      if (toupper((unsigned char)t[0]) == nm[0] &&
          toupper((unsigned char)t[1]) == nm[1] &&
          toupper((unsigned char)t[2]) == nm[2]) {
        *v = f->lo + (int)i;
        return 0;
      }
    }
  }
  return fail(p->err, p->errlen,
              "cron spec \"%s\": the %s field: '%.*s' is not a %s", p->spec,
              f->name, (int)n, t,
              f->names == MON_NAMES   ? "number or a month name (JAN..DEC)"
              : f->names == DOW_NAMES ? "number or a day name (SUN..SAT)"
                                      : "number");
}

/* One field @p t[0..n) (a comma list) into *mask; *star: it starts with
 * '*' (Vixie cron's rule for the two day fields). */
static int field_parse(const ptext *p, const fdesc *f, const char *t, size_t n,
                       uint64_t *mask, int *star) {
  size_t i = 0;
  *mask = 0;
  *star = n > 0 && t[0] == '*';
  while (i <= n) {
    size_t j = i, slash, dash;
    int lo, hi, step = 1, rc;
    while (j < n && t[j] != ',')
      j++;
    /* the item t[i..j) */
    if (j == i)
      return fail(p->err, p->errlen,
                  "cron spec \"%s\": the %s field: an empty list item in "
                  "'%.*s'",
                  p->spec, f->name, (int)n, t);
    for (slash = i; slash < j && t[slash] != '/'; slash++)
      ;
    if (slash < j) {
      const char *st = t + slash + 1;
      size_t sn = j - slash - 1, k;
      long x = 0;
      if (sn == 0)
        return fail(p->err, p->errlen,
                    "cron spec \"%s\": the %s field: '%.*s' has no step "
                    "after '/'",
                    p->spec, f->name, (int)(j - i), t + i);
      for (k = 0; k < sn; k++) {
        if (!isdigit((unsigned char)st[k]) || x > 1000)
          return fail(p->err, p->errlen,
                      "cron spec \"%s\": the %s field: step '%.*s' is not a "
                      "number",
                      p->spec, f->name, (int)sn, st);
        x = x * 10 + (st[k] - '0');
      }
      if (x < 1)
        return fail(p->err, p->errlen,
                    "cron spec \"%s\": the %s field: step '%.*s' must be at "
                    "least 1",
                    p->spec, f->name, (int)sn, st);
      step = (int)x;
    }
    if (slash - i == 1 && t[i] == '*') {
      lo = f->lo;
      hi = f->hi == 7 ? 6 : f->hi;
    } else {
      for (dash = i; dash < slash && t[dash] != '-'; dash++)
        ;
      rc = field_value(p, f, t + i, dash - i, &lo);
      if (rc != 0) return rc;
      if (dash < slash) {
        rc = field_value(p, f, t + dash + 1, slash - dash - 1, &hi);
        if (rc != 0) return rc;
        if (hi < lo)
          return fail(p->err, p->errlen,
                      "cron spec \"%s\": the %s field: range '%.*s' runs "
                      "backwards",
                      p->spec, f->name, (int)(slash - i), t + i);
      } else {
        /* N/STEP runs to the field's end */
        hi = slash < j ? (f->hi == 7 ? 6 : f->hi) : lo;
      }
    }
    for (int v = lo; v <= hi; v += step)
      *mask |= (uint64_t)1 << v;
    i = j + 1;
  }
  return 0;
}

static int days_in(int y, int mo) {
  static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return dm[mo - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int weekday(int y, int m, int d) {
  int64_t z = days_from_civil(y, m, d); /* 1970-01-01 was a Thursday */
  return (int)(((z % 7) + 11) % 7);
}

/* ------------------------------------------------------------- @aliases */

static int parse_every(const ptext *p, const char *t, lash_cron *out) {
  int64_t total = 0;
  const char *s = t;
  while (isspace((unsigned char)*s))
    s++;
  if (*s == '\0')
    return fail(p->err, p->errlen,
                "cron spec \"%s\": @every needs a duration (e.g. @every 30s; "
                "units ms s m h d)",
                p->spec);
  while (*s != '\0' && !isspace((unsigned char)*s)) {
    int64_t x = 0, unit;
    if (!isdigit((unsigned char)*s)) goto bad;
    while (isdigit((unsigned char)*s)) {
      if (x > (int64_t)1e12) goto bad;
      x = x * 10 + (*s++ - '0');
    }
    if (s[0] == 'm' && s[1] == 's')
      unit = 1, s += 2;
    else if (*s == 's')
      unit = 1000, s++;
    else if (*s == 'm')
      unit = 60000, s++;
    else if (*s == 'h')
      unit = 3600000, s++;
    else if (*s == 'd')
      unit = 86400000, s++;
    else
      goto bad;
    total += x * unit;
    if (total > (int64_t)1e15) goto bad;
  }
  while (isspace((unsigned char)*s))
    s++;
  if (*s != '\0') goto bad;
  if (total < 1000)
    return fail(p->err, p->errlen,
                "cron spec \"%s\": @every: the interval must be at least 1s",
                p->spec);
  out->every_ms = total;
  return 0;
bad:
  return fail(p->err, p->errlen,
              "cron spec \"%s\": @every: '%s' is not a duration (NUMBER UNIT, "
              "units ms s m h d, e.g. 90s or 1h30m)",
              p->spec, t + strspn(t, " \t"));
}

static const struct {
  const char *name, *spec;
} ALIASES[] = {{"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
               {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
               {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
               {"@hourly", "0 * * * *"},  {NULL, NULL}};

/* ----------------------------------------------------------------- parse */

static int parse_fields(const ptext *p, const char *spec, lash_cron *out) {
  const char *tok[7];
  size_t len[7], n = 0;
  const char *s = spec;
  const fdesc *fs[6];
  uint64_t m[6];
  int star[6], nf, i, rc;
  while (*s != '\0') {
    while (isspace((unsigned char)*s))
      s++;
    if (*s == '\0') break;
    if (n == 7) break;
    tok[n] = s;
    while (*s != '\0' && !isspace((unsigned char)*s))
      s++;
    len[n] = (size_t)(s - tok[n]);
    n++;
  }
  if (n != 5 && n != 6)
    return fail(p->err, p->errlen,
                "cron spec \"%s\": %s%zu fields; expected 5 (minute hour "
                "day-of-month month day-of-week) or 6 (a leading second, "
                "then those), or an alias (@hourly, @daily, @every 30s, ...)",
                p->spec, n == 7 ? "more than " : "", n == 7 ? (size_t)6 : n);
  nf = (int)n;
  fs[0] = &F_SEC;
  fs[1] = &F_MIN;
  fs[2] = &F_HOUR;
  fs[3] = &F_DOM;
  fs[4] = &F_MON;
  fs[5] = &F_DOW;
  m[0] = 1;
  star[0] = 0;
  for (i = 0; i < nf; i++) {
    int fi = nf == 6 ? i : i + 1;
    rc = field_parse(p, fs[fi], tok[i], len[i], &m[fi], &star[fi]);
    if (rc != 0) return rc;
  }
  if (m[5] & ((uint64_t)1 << 7)) m[5] = (m[5] | 1) & 0x7f; /* 7 is Sunday */
  out->sec = m[0];
  out->min = m[1];
  out->hour = (uint32_t)m[2];
  out->dom = (uint32_t)m[3];
  out->mon = (uint16_t)m[4];
  out->dow = (uint8_t)m[5];
  out->flags = (uint8_t)((star[3] ? LASH_CRON_DOM_STAR : 0) |
                         (star[5] ? LASH_CRON_DOW_STAR : 0));
  /* A day rule of "both" (one day field starts with '*') with a restricted
   * day of month must meet a month that has that day. */
  if (!star[3] && star[5]) {
    int mo, d, meet = 0;
    for (mo = 1; mo <= 12 && !meet; mo++) {
      if (!(out->mon >> mo & 1)) continue;
      for (d = 1; d <= (mo == 2 ? 29 : days_in(2001, mo)); d++)
        if (out->dom >> d & 1) meet = 1;
    }
    if (!meet)
      return fail(p->err, p->errlen,
                  "cron spec \"%s\": the day-of-month field %.*s never falls "
                  "in the month field %.*s: no date matches",
                  p->spec, (int)len[nf - 3], tok[nf - 3], (int)len[nf - 2],
                  tok[nf - 2]);
  }
  return 0;
}

LASH_API int lash_cron_parse(const char *spec, lash_cron *out, char *err,
                             size_t errlen) {
  ptext p;
  const char *s;
  size_t i;
  if (err != NULL && errlen > 0) err[0] = '\0';
  if (spec == NULL || out == NULL)
    return fail(err, errlen, "cron spec: missing (NULL)");
  p.spec = spec;
  p.err = err;
  p.errlen = errlen;
  memset(out, 0, sizeof *out);
  s = spec + strspn(spec, " \t\r\n");
  if (*s == '\0')
    return fail(err, errlen,
                "cron spec \"%s\": empty; expected 5 fields (minute hour "
                "day-of-month month day-of-week) or an alias (@hourly, ...)",
                spec);
  if (*s == '@') {
    size_t n = strcspn(s, " \t\r\n");
    if (n == 6 && strncmp(s, "@every", 6) == 0)
      return parse_every(&p, s + 6, out);
    for (i = 0; ALIASES[i].name != NULL; i++) {
      if (strlen(ALIASES[i].name) == n && strncmp(s, ALIASES[i].name, n) == 0) {
        if (s[n + strspn(s + n, " \t\r\n")] != '\0')
          return fail(err, errlen,
                      "cron spec \"%s\": %s takes nothing after it", spec,
                      ALIASES[i].name);
        return parse_fields(&p, ALIASES[i].spec, out);
      }
    }
    return fail(err, errlen,
                "cron spec \"%s\": unknown alias '%.*s' (known: @yearly "
                "@annually @monthly @weekly @daily @midnight @hourly @every)",
                spec, (int)n, s);
  }
  return parse_fields(&p, s, out);
}

/* ------------------------------------------------------------ time zones */

typedef struct civil {
  int y, mo, d, h, mi, s;
} civil;

/* Opens a Gregorian calendar of zone @p tz (NULL/"": UTC), or NULL when
 * the zone is unknown. */
static UCalendar *cal_open(const char *tz) {
  UChar utz[128], canon[128];
  UErrorCode st = U_ZERO_ERROR;
  UBool sys = 0;
  UCalendar *cal;
  if (tz == NULL || tz[0] == '\0') tz = "UTC";
  if (strlen(tz) >= sizeof utz / sizeof utz[0]) return NULL;
  u_uastrcpy(utz, tz);
  ucal_getCanonicalTimeZoneID(utz, -1, canon, 128, &sys, &st);
  if (U_FAILURE(st) || !sys) return NULL;
  cal = ucal_open(utz, -1, "en_US_POSIX", UCAL_GREGORIAN, &st);
  if (U_FAILURE(st)) return NULL;
  ucal_setAttribute(cal, UCAL_LENIENT, 1);
  ucal_setAttribute(cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
  ucal_setAttribute(cal, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_NEXT_VALID);
  return cal;
}

LASH_API int lash_cron_tz_check(const char *tz, char *err, size_t errlen) {
  UCalendar *cal = cal_open(tz);
  if (err != NULL && errlen > 0) err[0] = '\0';
  if (cal == NULL)
    return fail(err, errlen,
                "tz \"%s\": not a time zone of the tz database (an IANA name "
                "such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\")",
                tz);
  ucal_close(cal);
  return 0;
}

static int to_civil(UCalendar *cal, int64_t ms, civil *c) {
  UErrorCode st = U_ZERO_ERROR;
  ucal_setMillis(cal, (UDate)ms, &st);
  c->y = ucal_get(cal, UCAL_EXTENDED_YEAR, &st);
  c->mo = ucal_get(cal, UCAL_MONTH, &st) + 1;
  c->d = ucal_get(cal, UCAL_DATE, &st);
  c->h = ucal_get(cal, UCAL_HOUR_OF_DAY, &st);
  c->mi = ucal_get(cal, UCAL_MINUTE, &st);
  c->s = ucal_get(cal, UCAL_SECOND, &st);
  return U_FAILURE(st) ? LASH_EINVAL : 0;
}

static int from_civil(UCalendar *cal, const civil *c, int64_t *ms) {
  UErrorCode st = U_ZERO_ERROR;
  UDate u;
  ucal_clear(cal);
  ucal_setDateTime(cal, c->y, c->mo - 1, c->d, c->h, c->mi, c->s, &st);
  u = ucal_getMillis(cal, &st);
  if (U_FAILURE(st)) return LASH_EINVAL;
  *ms = (int64_t)u;
  return 0;
}

static void civil_next_sec(civil *c) {
  if (++c->s < 60) return;
  c->s = 0;
  if (++c->mi < 60) return;
  c->mi = 0;
  if (++c->h < 24) return;
  c->h = 0;
  if (++c->d <= days_in(c->y, c->mo)) return;
  c->d = 1;
  if (++c->mo <= 12) return;
  c->mo = 1;
  c->y++;
}

static int day_ok(const lash_cron *c, int y, int mo, int d) {
  int dom = (int)(c->dom >> d & 1), dow = c->dow >> weekday(y, mo, d) & 1;
  if (c->flags & (LASH_CRON_DOM_STAR | LASH_CRON_DOW_STAR)) return dom && dow;
  return dom || dow;
}

/* The first local wall time >= @p st whose fields match; 0 none. */
static int search(const lash_cron *c, const civil *st, civil *out) {
  int y, mo, d, h, mi, s;
  for (y = st->y; y <= st->y + 400 && y <= 9999; y++) {
    for (mo = y == st->y ? st->mo : 1; mo <= 12; mo++) {
      int sm = y == st->y && mo == st->mo, dim = days_in(y, mo);
      if (!(c->mon >> mo & 1)) continue;
      for (d = sm ? st->d : 1; d <= dim; d++) {
        int sd = sm && d == st->d;
        if (!day_ok(c, y, mo, d)) continue;
        for (h = sd ? st->h : 0; h < 24; h++) {
          int sh = sd && h == st->h;
          if (!(c->hour >> h & 1)) continue;
          for (mi = sh ? st->mi : 0; mi < 60; mi++) {
            int smi = sh && mi == st->mi;
            if (!(c->min >> mi & 1)) continue;
            for (s = smi ? st->s : 0; s < 60; s++) {
              if (!(c->sec >> s & 1)) continue;
              out->y = y, out->mo = mo, out->d = d;
              out->h = h, out->mi = mi, out->s = s;
              return 1;
            }
          }
        }
      }
    }
  }
  return 0;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

LASH_API int lash_cron_next(const lash_cron *c, const char *tz,
                            int64_t after_ms, int64_t *next_ms) {
  UCalendar *cal;
  civil st, m;
  int rc = LASH_ENOENT, guard;
  if (c == NULL || next_ms == NULL) return LASH_EINVAL;
  if (c->every_ms > 0) {
    *next_ms = (floor_div(after_ms, c->every_ms) + 1) * c->every_ms;
    return 0;
  }
  cal = cal_open(tz);
  if (cal == NULL) return LASH_EINVAL;
  if (to_civil(cal, (floor_div(after_ms, 1000) + 1) * 1000, &st) != 0) {
    ucal_close(cal);
    return LASH_EINVAL;
  }
  /* A match whose instant is not after after_ms is a repeated local time
   * already ticked at its first occurrence (or a skipped one folded into
   * the jump): search on from the next local second. The bound is more
   * than the seconds of the longest repeated stretch of any zone. */
  for (guard = 0; guard < 200000; guard++) {
    int64_t ms;
    if (!search(c, &st, &m)) break;
    if (from_civil(cal, &m, &ms) != 0) {
      rc = LASH_EINVAL;
      break;
    }
    if (ms > after_ms) {
      *next_ms = ms;
      rc = 0;
      break;
    }
    st = m;
    civil_next_sec(&st);
  }
  ucal_close(cal);
  return rc;
}

LASH_API char *lash_cron_iso(int64_t ms, char *buf, size_t cap) {
  int64_t sec = floor_div(ms, 1000), frac = ms - sec * 1000;
  time_t t = (time_t)sec;
  struct tm tm;
  if (cap == 0) return buf;
  if (gmtime_r(&t, &tm) == NULL) {
    snprintf(buf, cap, "%lld", (long long)ms);
    return buf;
  }
  if (frac != 0)
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)frac);
  else
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}
