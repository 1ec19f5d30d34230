/* Replays the fuzz corpus without libFuzzer: each file named on the command
 * line (or each file of each directory named) is fed once to the harness's
 * LLVMFuzzerTestOneInput. Built with the ordinary compiler, so that make
 * check replays the corpus where clang's libFuzzer is not installed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    return 1;
  }
  uint8_t *data = NULL;
  size_t len = 0, cap = 0, n;
  do {
    if (len == cap) {
      cap = cap * 2 + 4096;
      uint8_t *d = realloc(data, cap);
      if (d == NULL) {
        fclose(f);
        free(data);
        return 1;
      }
      data = d;
    }
    n = fread(data + len, 1, cap - len, f);
    len += n;
  } while (n > 0);
  fclose(f);
  LLVMFuzzerTestOneInput(data, len);
  free(data);
  return 0;
}

static int by_name(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
  int fail = 0, runs = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      struct dirent **names;
      int n = scandir(argv[i], &names, NULL, NULL);
      if (n < 0) {
        perror(argv[i]);
        return 1;
      }
      qsort(names, (size_t)n, sizeof names[0], by_name);
      for (int j = 0; j < n; j++) {
        char path[4096];
        if (names[j]->d_name[0] != '.') {
          snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
          fail |= replay_file(path);
          runs++;
        }
        free(names[j]);
      }
      free(names);
    } else {
      fail |= replay_file(argv[i]);
      runs++;
    }
  }
  /* A mismatch aborts inside the harness; reaching here means every input
   * ran clean. */
  printf("fuzz replay: %d passed, %d failed\n", fail ? 0 : runs, fail);
  return fail;
}
