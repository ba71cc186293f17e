/* test_worklist.c - the paged live-row scan (S8.41-S8.44), lash_list and the
 * change feed (lash_changes_since). */
#include "testutil.h"

#define MAXIDS 256

typedef struct idlist {
  size_t n;
  char id[MAXIDS][LASH_ID_MAX + 1];
  int status[MAXIDS];
  char kind[MAXIDS][LASH_NAME_MAX + 1];
} idlist;

static int collect(void *ud, const lash_record *r) {
  idlist *l = (idlist *)ud;
  if (l->n < MAXIDS) {
    snprintf(l->id[l->n], sizeof l->id[0], "%s", r->id);
    snprintf(l->kind[l->n], sizeof l->kind[0], "%s", r->kind);
    l->status[l->n] = r->status;
  }
  l->n++;
  return 0;
}

static int count_of(const idlist *l, const char *id) {
  size_t i;
  int c = 0;
  for (i = 0; i < l->n && i < MAXIDS; i++)
    if (strcmp(l->id[i], id) == 0) c++;
  return c;
}

static int sorted(const idlist *l) {
  size_t i;
  for (i = 1; i < l->n && i < MAXIDS; i++)
    if (strcmp(l->id[i - 1], l->id[i]) >= 0) return 0;
  return 1;
}

/* Runs one whole scan of @p kind with page limit @p limit into @p all.
 * Returns the number of pages; *bad_page is set if a page was over limit.
 * @p between (may be NULL) runs after the first page. */
static int scan(lash_store *s, const char *kind, size_t limit, idlist *all,
                int *bad_page, void (*between)(lash_store *, int), int *err) {
  lash_worklist_cursor cur;
  int pages = 0;
  memset(&cur, 0, sizeof cur);
  memset(all, 0, sizeof *all);
  *bad_page = 0;
  *err = 0;
  while (!cur.done && pages < 200) {
    size_t before = all->n;
    int rc = lash_worklist_page(s, NULL, kind, &cur, limit, collect, all);
    if (rc < 0) {
      diag("worklist page: %s %s", lash_err_name(rc), lash_errmsg(s));
      *err = rc;
      break;
    }
    if ((size_t)rc != all->n - before) {
      diag("page returned %d but passed %zu rows", rc, all->n - before);
      *bad_page = 1;
    }
    if ((size_t)rc > limit) *bad_page = 1;
    pages++;
    if (between && pages == 1) between(s, pages);
    if (rc == 0 && !cur.done) {
      diag("empty page without done");
      *err = -1;
      break;
    }
  }
  return pages;
}

static unsigned char g_out[16];

static void complete_row(lash_store *s, const char *id) {
  lash_bytes out = tu_mp_str(g_out, sizeof g_out, "ok");
  int rc = lash_complete_unleased(s, NULL, id, LASH_COMPLETED, out,
                                  LASH_AUTH_WORKFLOW);
  if (rc != 0)
    diag("complete %s: %s %s", id, lash_err_name(rc), lash_errmsg(s));
}

/* Runs after the first page of the main scan. */
static void mid_scan(lash_store *s, int page) {
  (void)page;
  complete_row(s, "a-040");                     /* terminal before its page */
  tu_reg(s, "a-099", "a", LASH_RERUNNABLE, 0);  /* beyond the bound */
  tu_reg(s, "a-000x", "a", LASH_RERUNNABLE, 0); /* behind the cursor */
}

static void test_worklist(tu_env *e) {
  lash_store *s = e->s;
  idlist all;
  char id[32];
  int i, pages, bad, err, once = 1;
  lash_lease ls;

  /* 50 live rows of kind a ("a-000".."a-049"; a-050.. for the terminals),
   * rows of kind b interleaved in id order. */
  for (i = 0; i < 50; i++) {
    snprintf(id, sizeof id, "a-%03d", i);
    tu_reg(s, id, "a", LASH_RERUNNABLE, 0);
    if (i % 5 == 0) {
      snprintf(id, sizeof id, "a-%03db", i);
      tu_reg(s, id, "b", LASH_RERUNNABLE, 0);
    }
  }
  for (i = 50; i < 55; i++) {
    snprintf(id, sizeof id, "a-%03d", i);
    tu_reg(s, id, "a", LASH_RERUNNABLE, 0);
    complete_row(s, id);
  }
  tu_reg(s, "a-000t", "a", LASH_OWNER_BOUND, 0);
  complete_row(s, "a-000t");

  /* S8.41: running and waiting rows stay on the worklist. */
  memset(&ls, 0, sizeof ls);
  is_rc(s, lash_lease_claim(s, NULL, "a-010", "w", "i", 30000, &ls), 0,
        "claim a-010");
  is_rc(s, lash_start(s, NULL, &ls, NULL), 0, "start a-010");
  is_rc(s, lash_wait_set(s, NULL, &ls, "signal:go", NULL), 0, "a-010 waits");
  memset(&ls, 0, sizeof ls);
  is_rc(s, lash_lease_claim(s, NULL, "a-011", "w", "i", 30000, &ls), 0,
        "claim a-011");
  is_rc(s, lash_start(s, NULL, &ls, NULL), 0, "start a-011");

  pages = scan(s, "a", 7, &all, &bad, mid_scan, &err);
  is(err, 0, "S8.42 scan completes without error");
  ok(!bad, "S8.42 every page within the limit of 7");
  ok(pages >= 7 && pages <= 9, "S8.42 50 rows in about 8 pages (%d)", pages);
  for (i = 0; i < 50; i++) {
    snprintf(id, sizeof id, "a-%03d", i);
    if (i == 40) continue;
    if (count_of(&all, id) != 1) {
      diag("%s seen %d times", id, count_of(&all, id));
      once = 0;
    }
  }
  ok(once, "S8.42 every scan-start live row came back exactly once");
  is(count_of(&all, "a-040"), 0, "S8.43 row completed before its page skipped");
  is(count_of(&all, "a-099"), 0, "S8.44 insert beyond the bound not in scan");
  is(count_of(&all, "a-000x"), 0, "S8.44 insert behind the cursor not in scan");
  is(count_of(&all, "a-010"), 1, "S8.41 waiting row on the worklist");
  is(count_of(&all, "a-011"), 1, "running row on the worklist");
  {
    size_t k;
    int kinds_ok = 1, live_ok = 1, term = 0;
    for (k = 0; k < all.n && k < MAXIDS; k++) {
      if (strcmp(all.kind[k], "a") != 0) kinds_ok = 0;
      if (LASH_IS_TERMINAL(all.status[k])) live_ok = 0;
    }
    for (i = 50; i < 55; i++) {
      snprintf(id, sizeof id, "a-%03d", i);
      term += count_of(&all, id);
    }
    term += count_of(&all, "a-000t");
    ok(kinds_ok, "S8.42 only rows of kind a");
    ok(live_ok, "terminal rows never in the worklist (statuses)");
    is(term, 0, "terminal rows never in the worklist (ids)");
    is(all.n, 49, "49 rows in the scan");
    ok(sorted(&all), "scan in ascending id order");
  }

  /* The next scan sees the inserts. */
  pages = scan(s, "a", 7, &all, &bad, NULL, &err);
  is(err, 0, "second scan completes");
  is(count_of(&all, "a-099"), 1, "S8.44 insert beyond the bound in next scan");
  is(count_of(&all, "a-000x"), 1, "S8.44 insert behind cursor in next scan");
  is(all.n, 51, "second scan has 51 rows");

  /* Kind b. */
  pages = scan(s, "b", 3, &all, &bad, NULL, &err);
  ok(err == 0 && all.n == 10 && !bad, "kind b scan: 10 rows, pages <= 3");
  /* Unknown kind and a limit of 1. */
  pages = scan(s, "nothing", 5, &all, &bad, NULL, &err);
  ok(err == 0 && all.n == 0 && pages == 1,
     "scan of a kind with no rows: one empty page, done");
  pages = scan(s, "b", 1, &all, &bad, NULL, &err);
  ok(err == 0 && all.n == 10 && !bad, "limit 1 scan returns 10 rows");
  (void)pages;
  tu_check(s, "S8.5 check after worklist scans");
}

static void test_list(tu_env *e) {
  lash_store *s = e->s;
  lash_list_filter f;
  idlist l;
  int rc, i;
  size_t k;

  memset(&f, 0, sizeof f);
  memset(&l, 0, sizeof l);
  f.status = LASH_COMPLETED;
  rc = lash_list(s, NULL, &f, collect, &l);
  is(rc, 7, "list status=completed: a-040, a-050..054, a-000t");
  ok((size_t)rc == l.n && sorted(&l), "list passes rc rows in id order");
  {
    int allc = 1;
    for (k = 0; k < l.n; k++)
      if (l.status[k] != LASH_COMPLETED) allc = 0;
    ok(allc, "list status=completed: only completed rows");
  }

  memset(&l, 0, sizeof l);
  memset(&f, 0, sizeof f);
  f.kind = "b";
  rc = lash_list(s, NULL, &f, collect, &l);
  is(rc, 10, "list kind=b -> 10");
  ok(count_of(&l, "a-005b") == 1 && count_of(&l, "a-005") == 0,
     "list kind=b returns only b rows");

  memset(&l, 0, sizeof l);
  memset(&f, 0, sizeof f);
  f.status = LASH_WAITING;
  rc = lash_list(s, NULL, &f, collect, &l);
  ok(rc == 1 && count_of(&l, "a-010") == 1, "list status=waiting -> a-010");

  memset(&l, 0, sizeof l);
  memset(&f, 0, sizeof f);
  f.after = "a-045";
  rc = lash_list(s, NULL, &f, collect, &l);
  {
    int after_ok = rc > 0;
    for (k = 0; k < l.n && k < MAXIDS; k++)
      if (strcmp(l.id[k], "a-045") <= 0) after_ok = 0;
    ok(after_ok, "list after=a-045: only ids strictly after");
    is(count_of(&l, "a-045"), 0, "list after excludes the id itself");
    is(count_of(&l, "a-046"), 1, "list after includes the next id");
  }

  memset(&l, 0, sizeof l);
  memset(&f, 0, sizeof f);
  f.limit = 4;
  rc = lash_list(s, NULL, &f, collect, &l);
  ok(rc == 4 && l.n == 4 && sorted(&l), "list limit=4 -> 4 rows in order");
  iss(l.id[0], "a-000", "list from the start");

  memset(&l, 0, sizeof l);
  memset(&f, 0, sizeof f);
  f.live_only = 1;
  f.kind = "a";
  rc = lash_list(s, NULL, &f, collect, &l);
  is(rc, 51, "list live_only kind=a -> 51");

  memset(&l, 0, sizeof l);
  memset(&f, 0, sizeof f);
  f.status = LASH_COMPLETED;
  f.kind = "a";
  f.after = "a-050";
  f.limit = 2;
  rc = lash_list(s, NULL, &f, collect, &l);
  ok(rc == 2 && strcmp(l.id[0], "a-051") == 0 && strcmp(l.id[1], "a-052") == 0,
     "list status+kind+after+limit combined");

  /* Paging with after/limit visits everything once. */
  {
    char after[LASH_ID_MAX + 1] = "";
    int total = 0, pages = 0;
    do {
      memset(&l, 0, sizeof l);
      memset(&f, 0, sizeof f);
      f.after = after[0] ? after : NULL;
      f.limit = 9;
      rc = lash_list(s, NULL, &f, collect, &l);
      if (rc > 0) snprintf(after, sizeof after, "%s", l.id[rc - 1]);
      total += rc > 0 ? rc : 0;
      pages++;
    } while (rc == 9 && pages < 100);
    lash_stats st;
    memset(&st, 0, sizeof st);
    lash_store_stats(s, NULL, &st);
    is(total, (int)st.total, "paging lash_list with after/limit sees all");
  }

  memset(&f, 0, sizeof f);
  f.status = 99;
  rc = lash_list(s, NULL, &f, collect, &l);
  is(rc, LASH_EINVAL, "list with status 99 -> EINVAL");
  (void)i;
}

typedef struct chg {
  size_t n;
  uint64_t cseq[16];
  char id[16][64];
  int deleted[16];
  int status[16];
  uint64_t rec_cseq[16];
} chg;

static int on_change(void *ud, const lash_change_entry *c) {
  chg *x = (chg *)ud;
  if (x->n < 16) {
    x->cseq[x->n] = c->change_seq;
    snprintf(x->id[x->n], sizeof x->id[0], "%s", c->id);
    x->deleted[x->n] = c->deleted;
    x->status[x->n] = c->rec ? c->rec->status : -1;
    x->rec_cseq[x->n] = c->rec ? c->rec->change_seq : 0;
  }
  x->n++;
  return 0;
}

static void test_changes(tu_env *e) {
  lash_store *s = e->s;
  unsigned char pb[16];
  uint64_t cursor = lash_change_seq(s), next = 0, first_next;
  chg c;
  int rc;

  memset(&c, 0, sizeof c);
  rc = lash_changes_since(s, NULL, cursor, 0, on_change, &c, &next);
  ok(rc == 0 && c.n == 0, "no changes after the current change seq");
  is(next, cursor, "cursor stays when nothing changed");

  tu_reg(s, "ch-x", "c", LASH_RERUNNABLE, 0);
  tu_reg(s, "ch-y", "c", LASH_RERUNNABLE, 0);
  lash_append(s, NULL, "ch-x", "progress", tu_mp_str(pb, sizeof pb, "1"), NULL);
  tu_reg(s, "ch-z", "c", LASH_RERUNNABLE, 0);

  memset(&c, 0, sizeof c);
  rc = lash_changes_since(s, NULL, cursor, 0, on_change, &c, &next);
  is(rc, 3, "three ids changed");
  ok(c.n == 3 && strcmp(c.id[0], "ch-y") == 0 && strcmp(c.id[1], "ch-x") == 0 &&
         strcmp(c.id[2], "ch-z") == 0,
     "changes in change order, latest change per id (y, x, z)");
  ok(c.n == 3 && c.cseq[0] > cursor && c.cseq[0] < c.cseq[1] &&
         c.cseq[1] < c.cseq[2],
     "change seqs strictly increase after the cursor");
  ok(c.n == 3 && !c.deleted[0] && !c.deleted[1] && !c.deleted[2] &&
         c.status[1] == LASH_PENDING && c.rec_cseq[1] == c.cseq[1],
     "upserts carry their records");
  is(next, c.n == 3 ? c.cseq[2] : 0, "next cursor = last change seq");
  is(next, lash_change_seq(s), "next cursor = store change seq");

  memset(&c, 0, sizeof c);
  rc = lash_changes_since(s, NULL, next, 0, on_change, &c, &next);
  ok(rc == 0 && c.n == 0, "nothing after the new cursor");

  memset(&c, 0, sizeof c);
  rc = lash_changes_since(s, NULL, cursor, 1, on_change, &c, &first_next);
  ok(rc == 1 && c.n == 1 && strcmp(c.id[0], "ch-y") == 0,
     "limit 1 returns the first change");
  is(first_next, c.cseq[0], "limit 1 advances the cursor to that change");
  memset(&c, 0, sizeof c);
  rc = lash_changes_since(s, NULL, first_next, 1, on_change, &c, &first_next);
  ok(rc == 1 && strcmp(c.id[0], "ch-x") == 0, "the next page continues");

  complete_row(s, "ch-y");
  memset(&c, 0, sizeof c);
  rc = lash_changes_since(s, NULL, next, 0, on_change, &c, &next);
  ok(rc == 1 && strcmp(c.id[0], "ch-y") == 0 && c.status[0] == LASH_COMPLETED,
     "a completion shows up as one upsert");
}

int main(void) {
  tu_env e;
  tu_open(&e, NULL);
  test_worklist(&e);
  test_list(&e);
  test_changes(&e);
  tu_check(e.s, "S8.5 check at the end");
  tu_close(&e);
  return done_testing();
}
