/*
** fuzz_util.h: what the libFuzzer harnesses of tests/fuzz/ share.
**
** The loaders read files by path, so a harness hands them its input as an
** anonymous in-memory file (memfd) named by /proc/self/fd/N: no disk
** writes, and the same path on every execution.  fuzz_check_result holds
** the loader's error contract, which every harness checks after a call:
** a failure returns a sysexits.h code recorded in err with a non-empty
** message and no result; a success records no error.  Functions are
** static inline: each harness is one translation unit.
*/
#ifndef TS_FUZZ_UTIL_H
#define TS_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "trainsim.h"

/* An in-memory file and its path (/proc/self/fd/N). */
typedef struct {
  int fd;
  char path[64];
} fuzz_file_t;

/* Creates f once (abort on failure: the harness cannot run without it). */
static inline void fuzz_file_open(fuzz_file_t *f, const char *name) {
  f->fd = memfd_create(name, 0);
  if (f->fd < 0) {
    perror("memfd_create");
    abort();
  }
  snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

/* Replaces f's contents by the n bytes of data. */
static inline void fuzz_file_write(fuzz_file_t *f, const void *data, size_t n) {
  if (ftruncate(f->fd, 0) != 0 || (n && pwrite(f->fd, data, n, 0) != (ssize_t)n)) {
    perror("memfd write");
    abort();
  }
}

/* Aborts (a finding) when rc and err break the error contract above.
** With TS_FUZZ_VERBOSE set in the environment it also prints each
** outcome, to see what the seeds reach (fuzzer -runs=N DIR). */
static inline void fuzz_check_result(int rc, const ts_err_t *err, const void *result) {
  static int verbose = -1;
  if (verbose < 0) verbose = getenv("TS_FUZZ_VERBOSE") != NULL;
  if (verbose) fprintf(stderr, "fuzz: rc %d %s\n", rc, rc ? err->msg : "");
  if (rc == 0 && (result == NULL || err->code != 0)) {
    fprintf(stderr, "fuzz: success without a result, or with an error recorded\n");
    abort();
  }
  if (rc != 0 && (result != NULL || err->code != rc || err->msg[0] == 0 || rc < 64 || rc > 78)) {
    fprintf(stderr, "fuzz: failure rc %d with code %d, message '%s'\n", rc, err->code,
            err->msg);
    abort();
  }
}

#endif
