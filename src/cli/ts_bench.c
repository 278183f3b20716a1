/*
** ts_bench.c: `trainsim bench`.
**
** Times whole `trainsim run` processes (job loading, the SimGrid run in
** its child, metrics and all the output files) on the benchmark job
** examples/bench-1f1b-p64.json: 1F1B, p = 64 stages, m = 512 micro-batches
** on the 8-node x 8-GPU platform, 65,536 compute ops and 64,512 transfers.
** Wall time is measured with CLOCK_MONOTONIC around fork/exec/wait; peak
** RSS is the larger of the parent's and the simulation child's maximum
** resident set (wait4's rusage of the whole process tree is the max over
** children).  Writes DIR/bench.json atomically, prints the figures and says
** whether the median and the peak RSS are within their targets.
*/
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "trainsim.h"
#include "ts_out.h"
#include "ts_bench.h"

typedef struct {
  double wall_s;
  double rss_mb;
} sample_t;

static int run_once(const char *self, const char *job, const char *outdir, sample_t *s) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    execl(self, self, "run", job, "-o", outdir, "--quiet", (char *)NULL);
    _exit(127);
  }
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0)
    if (errno != EINTR) return -1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (!WIFEXITED(status) || WEXITSTATUS(status)) return -1;
  s->wall_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  struct rusage rc;
  getrusage(RUSAGE_CHILDREN, &rc); /* max over all waited-for descendants */
  long kb = ru.ru_maxrss > rc.ru_maxrss ? ru.ru_maxrss : rc.ru_maxrss;
  s->rss_mb = (double)kb / 1024.0;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int write_json(const void *arg, FILE *f) {
  char *s = cJSON_Print((const cJSON *)arg);
  int bad = !s || fputs(s, f) < 0 || fputc('\n', f) == EOF;
  free(s);
  return bad ? EX_IOERR : 0;
}

int ts_bench_run(const char *dir, int repeat) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "trainsim: error: cannot find my own executable\n");
    return EX_OSERR;
  }
  self[n] = 0;
  char job[PATH_MAX], tmpdir[] = "/tmp/trainsim-bench-XXXXXX";
  snprintf(job, sizeof job, "%s/examples/bench-1f1b-p64.json", TS_SOURCE_DIR);
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "trainsim: error: cannot create a temporary directory: %s\n", strerror(errno));
    return EX_CANTCREAT;
  }
  double wall[100], rss[100];
  for (int i = 0; i < repeat; i++) {
    sample_t s;
    if (run_once(self, job, tmpdir, &s)) {
      fprintf(stderr, "trainsim: error: %s: benchmark run failed\n", job);
      return EX_SOFTWARE;
    }
    wall[i] = s.wall_s;
    rss[i] = s.rss_mb;
    fprintf(stderr, "bench: run %d/%d: %.3f s, %.1f MB\n", i + 1, repeat, s.wall_s, s.rss_mb);
  }
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd)) { /* best effort */
  }
  qsort(wall, (size_t)repeat, sizeof *wall, cmp_double);
  qsort(rss, (size_t)repeat, sizeof *rss, cmp_double);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "benchmark", "trainsim run examples/bench-1f1b-p64.json");
  cJSON_AddStringToObject(o, "what", "1F1B, p=64, m=512, 8 nodes x 8 GPUs: 65536 compute ops + 64512 transfers, outputs included");
  cJSON_AddNumberToObject(o, "repeat", repeat);
  cJSON_AddNumberToObject(o, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
  cJSON_AddNumberToObject(o, "wall_s_median", wall[repeat / 2]);
  cJSON_AddNumberToObject(o, "wall_s_min", wall[0]);
  cJSON_AddNumberToObject(o, "wall_s_max", wall[repeat - 1]);
  cJSON_AddNumberToObject(o, "peak_rss_mb_max", rss[repeat - 1]);
  cJSON_AddNumberToObject(o, "target_wall_s", TS_BENCH_TARGET_S);
  cJSON_AddNumberToObject(o, "target_rss_mb", TS_BENCH_TARGET_MB);
  char path[PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/bench.json", dir);
  ts_err_t err = {0};
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  if (system(cmd)) {
    fprintf(stderr, "trainsim: error: %s: cannot create directory\n", dir);
    return EX_CANTCREAT;
  }
  int rc = ts_write_atomic(path, write_json, o, &err);
  cJSON_Delete(o);
  if (rc) {
    fprintf(stderr, "trainsim: error: %s\n", err.msg);
    return rc;
  }
  printf("bench: median %.3f s (min %.3f, max %.3f), peak RSS %.1f MB over %d runs -> %s\n",
         wall[repeat / 2], wall[0], wall[repeat - 1], rss[repeat - 1], repeat, path);
  ts_bench_verdict(stdout, wall[repeat / 2], rss[repeat - 1]);
  return 0;
}

int ts_bench_verdict(FILE *f, double median_s, double peak_rss_mb) {
  int over = 0;
  if (median_s > TS_BENCH_TARGET_S) {
    fprintf(f, "bench: the median %.3f s is above the target of %g s\n", median_s, TS_BENCH_TARGET_S);
    over = 1;
  }
  if (peak_rss_mb > TS_BENCH_TARGET_MB) {
    fprintf(f, "bench: the peak RSS %.1f MB is above the target of %g MB\n", peak_rss_mb,
            TS_BENCH_TARGET_MB);
    over = 1;
  }
  if (!over) fprintf(f, "bench: within the targets (%g s, %g MB)\n", TS_BENCH_TARGET_S, TS_BENCH_TARGET_MB);
  return over;
}
