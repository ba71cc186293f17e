/* fuzz/replay.c - a main for the fuzz targets without libFuzzer: replays
 * every file named on the command line, or every file of a directory named
 * there (sorted), through LLVMFuzzerTestOneInput once, one TAP line each.
 * A crash or a sanitizer report ends the run (ctest fails it). */
#define _GNU_SOURCE 1
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int n_run;

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  long n;
  if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
      fseek(f, 0, SEEK_SET) != 0) {
    printf("not ok %d - cannot read %s\n", ++n_run, path);
    if (f != NULL) fclose(f);
    return 1;
  }
  /* A copy of exactly n bytes, so ASan sees a read past the input. */
  buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
    printf("not ok %d - cannot read %s\n", ++n_run, path);
    free(buf);
    fclose(f);
    return 1;
  }
  fclose(f);
  fflush(stdout);
  LLVMFuzzerTestOneInput(buf, (size_t)n);
  free(buf);
  printf("ok %d - %s\n", ++n_run, path);
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char **names = NULL, path[4096];
  size_t n = 0, cap = 0, i;
  int bad = 0;
  if (d == NULL) {
    printf("not ok %d - cannot open %s\n", ++n_run, dir);
    return 1;
  }
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      char **p = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
      if (p == NULL) break;
      names = p;
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof *names, by_name);
  for (i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    bad |= replay_file(path);
    free(names[i]);
  }
  free(names);
  return bad;
}

int main(int argc, char **argv) {
  int i, bad = 0;
  struct stat st;
  for (i = 1; i < argc; i++) {
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
      bad |= replay_dir(argv[i]);
    else
      bad |= replay_file(argv[i]);
  }
  printf("1..%d\n", n_run);
  if (n_run == 0) printf("# no corpus files given\n");
  return bad || n_run == 0;
}
