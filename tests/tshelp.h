/*
** tshelp.h: helpers shared by trainsim's tests: temporary files, running
** a job given as a JSON string through the library, and running the
** trainsim command (whose path ctest passes in $TRAINSIM).
*/
#ifndef TSHELP_H
#define TSHELP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trainsim.h"
#include "ts_exec.h"
#include "ts_out.h"
#include "ts_sim.h"
#include "ts_internal.h"

/* Writes text to a new temporary file named like "/tmp/ts-test-XXXXXX<suffix>";
** returns the path (static buffer rotated among 8). */
static inline const char *th_write_tmp(const char *text, const char *suffix) {
  static char bufs[8][64];
  static int k;
  char *p = bufs[k++ % 8];
  snprintf(p, 64, "/tmp/ts-test-XXXXXX%s", suffix);
  int fd = mkstemps(p, (int)strlen(suffix));
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, "w");
  fputs(text, f);
  fclose(f);
  return p;
}

/* Reads a whole file into a malloc'd NUL-terminated string; its length goes
** to *len when len is not NULL.  NULL when the file cannot be opened or
** read (ts__read_file). */
static inline char *th_slurp(const char *path, size_t *len) { return ts__read_file(path, len); }

/* Loads the job text (with optional --set strings) and simulates it.
** Returns 0 and fills o, or the error code with err filled. */
static inline int th_simulate(const char *json, const char *const *sets, int n_sets, ts_job_t **job,
                              ts_outcome_t *o, ts_err_t *err) {
  const char *path = th_write_tmp(json, ".json");
  int rc = ts_job_load(path, sets, n_sets, job, err);
  unlink(path);
  if (rc) return rc;
  return ts_simulate(*job, o, err);
}

/* The compute event of device d with the given kind, stage and micro-batch. */
static inline const ts_event_t *th_find(const ts_outcome_t *o, int kind, int vstage, int mb) {
  for (int i = 0; i < o->run->n_events; i++) {
    const ts_event_t *e = &o->run->events[i];
    if (e->kind == kind && e->vstage == vstage && e->mb == mb) return e;
  }
  return NULL;
}

/* Runs "$TRAINSIM args..." through sh; captures stdout and stderr into
** malloc'd strings (may be NULL); returns the exit status or -1. */
static inline int th_cli(const char *args, char **out, char **err) {
  const char *bin = getenv("TRAINSIM");
  if (!bin) bin = "build/trainsim";
  char o[] = "/tmp/ts-test-out-XXXXXX", e[] = "/tmp/ts-test-err-XXXXXX";
  int fo = mkstemp(o), fe = mkstemp(e);
  close(fo);
  close(fe);
  size_t n = strlen(bin) + strlen(args) + 128;
  char *cmd = ts__xmalloc(n);
  snprintf(cmd, n, "'%s' %s >%s 2>%s", bin, args, o, e);
  int st = system(cmd);
  free(cmd);
  char *files[2] = {o, e};
  char **dst[2] = {out, err};
  for (int i = 0; i < 2; i++) {
    if (dst[i]) {
      FILE *f = fopen(files[i], "rb");
      char *buf = ts__xcalloc(1, 1 << 20);
      if (f) {
        size_t got = fread(buf, 1, (1 << 20) - 1, f);
        buf[got] = 0;
        fclose(f);
      }
      *dst[i] = buf;
    }
    unlink(files[i]);
  }
  return (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}

#endif
