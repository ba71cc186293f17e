/* register.c - register a process, read it back, and see that a
 * registration is idempotent and that a failed call changes nothing. */
#include "example.h"

int main(void) {
  lash_store *s = NULL;
  char err[256], in[32];
  lash_record rec;
  int created = 0;

  if (lash_store_open(ex_store_path("app.lash"), NULL, &s, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }

  lash_def def = {.id = "order-42",
                  .kind = "ship",
                  .input = ex_mpstr(in, "2 boxes"),
                  .disposition = LASH_RERUNNABLE,
                  .max_attempts = 3};
  CHECK(s, lash_register(s, NULL, &def, &created, &rec));
  EXPECT(created == 1 && rec.status == LASH_PENDING);
  printf("%s: %s, kind %s, change seq %llu\n", rec.id,
         lash_status_name(rec.status), rec.kind,
         (unsigned long long)rec.change_seq);
  lash_record_free(&rec);

  /* The same definition again: nothing written, created == 0. */
  CHECK(s, lash_register(s, NULL, &def, &created, NULL));
  EXPECT(created == 0);

  /* The same id with another definition: ECONFLICT, and the message names
   * the id and the field. The stored row is untouched. */
  lash_def other = def;
  other.kind = "return";
  int rc = lash_register(s, NULL, &other, NULL, NULL);
  EXPECT(rc == LASH_ECONFLICT);
  printf("expected failure: %s: %s\n", lash_err_name(rc), lash_errmsg(s));

  CHECK(s, lash_get(s, NULL, "order-42", &rec, NULL));
  EXPECT(strcmp(rec.kind, "ship") == 0 && rec.max_attempts == 3);
  EXPECT(rec.input.len == def.input.len &&
         memcmp(rec.input.data, def.input.data, def.input.len) == 0);
  lash_record_free(&rec); /* the record owns its strings and bytes */

  EXPECT(lash_get(s, NULL, "order-43", &rec, NULL) == LASH_ENOENT);
  lash_store_close(s);
  return 0;
}
