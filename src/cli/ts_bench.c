/*
** ts_bench.c: `trainsim bench`.
**
** Case p64 (the default) times whole `trainsim run` processes (job
** loading, the SimGrid run in its child, metrics and all the output files)
** on the benchmark job examples/bench-1f1b-p64.json: 1F1B, p = 64 stages,
** m = 512 micro-batches on the 8-node x 8-GPU platform, 65,536 compute ops
** and 64,512 transfers, each run next to the bare SimGrid loop of the same
** pattern (bench_bare.c), and reports the ratio.  Wall time is measured
** with CLOCK_MONOTONIC around fork/exec/wait, CPU time and peak RSS from
** wait4's rusage of the whole process tree (user + system time of the
** command and its simulation child; the larger of their maximum resident
** sets).  Writes DIR/bench.json atomically, prints the figures and says
** whether the median and the peak RSS are within their targets.  Cases
** curve and allreduce are in bench_cases.c.
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
#include "ts_bench_int.h"

int ts__bench_run_once(const char *self, const char *const *args, const char *env,
                       ts_bench_sample_t *s) {
  struct timespec t0, t1;
  const char *argv[32];
  int n = 0;
  argv[n++] = self;
  for (int i = 0; args[i] && n < 31; i++) argv[n++] = args[i];
  argv[n] = NULL;
  fflush(NULL);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (env) putenv((char *)env);
    execv(self, (char *const *)argv);
    _exit(127);
  }
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0)
    if (errno != EINTR) return -1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (!WIFEXITED(status) || WEXITSTATUS(status)) return -1;
  s->wall_s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  /* Linux's wait4 reports RUSAGE_BOTH of the child: its own and its
  ** waited-for children's time, the larger of their maximum RSS. */
  s->cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  s->rss_mb = (double)ru.ru_maxrss / 1024.0;
  return 0;
}

int ts__bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int write_json(const void *arg, FILE *f) {
  char *s = cJSON_Print((const cJSON *)arg);
  int bad = !s || fputs(s, f) < 0 || fputc('\n', f) == EOF;
  free(s);
  return bad ? EX_IOERR : 0;
}

int ts__bench_write(const char *dir, const char *name, cJSON *o) {
  char cmd[PATH_MAX + 64], path[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  if (system(cmd)) {
    fprintf(stderr, "trainsim: error: %s: cannot create directory\n", dir);
    cJSON_Delete(o);
    return EX_CANTCREAT;
  }
  snprintf(path, sizeof path, "%s/%s", dir, name);
  ts_err_t err = {0};
  int rc = ts_write_atomic(path, write_json, o, &err);
  cJSON_Delete(o);
  if (rc) fprintf(stderr, "trainsim: error: %s\n", err.msg);
  return rc;
}

double ts__bench_median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, ts__bench_cmp_double);
  return v[n / 2];
}

int ts__bench_self(char *self, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", self, cap - 1);
  if (n <= 0) {
    fprintf(stderr, "trainsim: error: cannot find my own executable\n");
    return EX_OSERR;
  }
  self[n] = 0;
  return 0;
}

/* Case p64: the benchmark job and the bare loop, run by turns so that a
** load on the machine weighs on both alike. */
static int bench_p64(const char *dir, int repeat) {
  char self[PATH_MAX];
  if (ts__bench_self(self, sizeof self)) return EX_OSERR;
  char job[PATH_MAX], tmpdir[] = "/tmp/trainsim-bench-XXXXXX";
  snprintf(job, sizeof job, "%s/examples/bench-1f1b-p64.json", TS_SOURCE_DIR);
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "trainsim: error: cannot create a temporary directory: %s\n", strerror(errno));
    return EX_CANTCREAT;
  }
  char env[PATH_MAX + 32];
  snprintf(env, sizeof env, "TRAINSIM_BENCH_BARE=%s", job);
  const char *bargs[] = {"bench", NULL};
  double wall[100], cpu[100], rss[100], bwall[100], bcpu[100], brss[100], awall[100];
  /* The default outputs (what a run writes without -f), then every format
  ** (-f all: paje.trace too), each next to a bare loop. */
  const char *args[] = {"run", job, "-o", tmpdir, "--quiet", NULL};
  const char *all_args[] = {"run", job, "-o", tmpdir, "--quiet", "-f", "all", NULL};
  int rc = 0;
  for (int i = 0; i < repeat && !rc; i++) {
    ts_bench_sample_t s, b = {0}, a = {0};
    if (ts__bench_run_once(self, args, NULL, &s) || ts__bench_run_once(self, all_args, NULL, &a)) {
      fprintf(stderr, "trainsim: error: %s: benchmark run failed\n", job);
      rc = EX_SOFTWARE;
    } else if (ts__bench_run_once(self, bargs, env, &b)) {
      fprintf(stderr, "trainsim: error: %s: the bare SimGrid loop failed\n", job);
      rc = EX_SOFTWARE;
    } else {
      wall[i] = s.wall_s, cpu[i] = s.cpu_s, rss[i] = s.rss_mb, awall[i] = a.wall_s;
      bwall[i] = b.wall_s, bcpu[i] = b.cpu_s, brss[i] = b.rss_mb;
      fprintf(stderr,
              "bench: run %d/%d: %.3f s (%.3f s CPU), %.1f MB; with -f all %.3f s; bare SimGrid loop %.3f s "
              "(%.3f s CPU)\n",
              i + 1, repeat, s.wall_s, s.cpu_s, s.rss_mb, a.wall_s, b.wall_s, b.cpu_s);
    }
  }
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd)) { /* best effort */
  }
  if (rc) return rc;
  double med = ts__bench_median(wall, repeat), bmed = ts__bench_median(bwall, repeat);
  double cmed = ts__bench_median(cpu, repeat), bcmed = ts__bench_median(bcpu, repeat);
  double amed = ts__bench_median(awall, repeat);
  ts__bench_median(rss, repeat);
  ts__bench_median(brss, repeat);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "benchmark", "trainsim run examples/bench-1f1b-p64.json");
  cJSON_AddStringToObject(o, "what", "1F1B, p=64, m=512, 8 nodes x 8 GPUs: 65536 compute ops + 64512 transfers, outputs included");
  cJSON_AddStringToObject(o, "outputs", "the default: summary.json, timeline.csv, trace.json, gantt.svg, report.html");
  cJSON_AddNumberToObject(o, "repeat", repeat);
  cJSON_AddNumberToObject(o, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
  cJSON_AddNumberToObject(o, "wall_s_median", med);
  cJSON_AddNumberToObject(o, "wall_s_min", wall[0]);
  cJSON_AddNumberToObject(o, "wall_s_max", wall[repeat - 1]);
  cJSON_AddNumberToObject(o, "cpu_s_median", cmed);
  cJSON_AddNumberToObject(o, "peak_rss_mb_max", rss[repeat - 1]);
  cJSON_AddNumberToObject(o, "target_wall_s", TS_BENCH_TARGET_S);
  cJSON_AddNumberToObject(o, "target_rss_mb", TS_BENCH_TARGET_MB);
  cJSON_AddStringToObject(o, "bare", "the same 1F1B pattern as bare SimGrid actors (src/cli/bench_bare.c), no outputs");
  cJSON_AddNumberToObject(o, "bare_wall_s_median", bmed);
  cJSON_AddNumberToObject(o, "bare_wall_s_min", bwall[0]);
  cJSON_AddNumberToObject(o, "bare_cpu_s_median", bcmed);
  cJSON_AddNumberToObject(o, "bare_peak_rss_mb_max", brss[repeat - 1]);
  cJSON_AddNumberToObject(o, "ratio_wall", bmed > 0 ? med / bmed : 0);
  cJSON_AddNumberToObject(o, "ratio_cpu", bcmed > 0 ? cmed / bcmed : 0);
  cJSON_AddNumberToObject(o, "target_ratio", TS_BENCH_TARGET_RATIO);
  cJSON_AddNumberToObject(o, "all_formats_wall_s_median", amed); /* -f all: paje.trace too */
  cJSON_AddNumberToObject(o, "all_formats_ratio_wall", bmed > 0 ? amed / bmed : 0);
  if ((rc = ts__bench_write(dir, "bench.json", o))) return rc;
  printf("bench: median %.3f s (min %.3f, max %.3f), peak RSS %.1f MB over %d runs -> %s/bench.json\n",
         med, wall[0], wall[repeat - 1], rss[repeat - 1], repeat, dir);
  printf("bench: bare SimGrid loop median %.3f s: %.2fx in wall time, %.2fx in CPU time (target %gx)\n",
         bmed, bmed > 0 ? med / bmed : 0, bcmed > 0 ? cmed / bcmed : 0, TS_BENCH_TARGET_RATIO);
  printf("bench: with -f all (paje.trace too) median %.3f s: %.2fx in wall time\n", amed, bmed > 0 ? amed / bmed : 0);
  ts_bench_verdict(stdout, med, rss[repeat - 1]);
  return 0;
}

int ts_bench_run(const char *dir, int repeat, const char *bcase) {
  const char *bare = getenv("TRAINSIM_BENCH_BARE");
  if (bare && *bare) return ts__bench_bare_main(bare);
  if (!bcase || !strcmp(bcase, "p64")) return bench_p64(dir, repeat);
  if (!strcmp(bcase, "curve")) return ts__bench_curve(dir, repeat);
  if (!strcmp(bcase, "allreduce")) return ts__bench_allreduce(dir, repeat);
  fprintf(stderr, "trainsim: error: bench: unknown case '%s' (known cases: p64, curve, allreduce)\n", bcase);
  return EX_USAGE;
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
