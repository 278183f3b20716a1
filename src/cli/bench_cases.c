/*
** bench_cases.c: `trainsim bench --case curve` and `--case allreduce`.
**
** curve: the cost of one simulated event and the memory of one device
** against the number of stages p = 8, 16, ..., 4,096: whole `trainsim run
** examples/bench-scale.json --set stages=P -f summary` processes (1F1B,
** m = 32, synthetic ops on the ideal platform; summary.json only, so that
** the figures are the simulation's and not the writers').  Events are
** 2 p m compute ops and 2 (p - 1) m transfers.  Seconds per event are
** CPU seconds (user + system of the process tree, robust to a loaded
** machine) above those of a one-stage, one-micro-batch run of the same
** job (start-up, SimGrid's initialisation, the summary), over the events;
** memory per device is the peak RSS above that run's, over p.
**
** allreduce: one 1 GiB ring all-reduce over 1,024 GPUs, with contention:
** a one-stage job with data_parallel 1,024 whose only layer holds 1 GiB of
** gradients in one bucket, collective_algorithm "ring", --exact (every GPU
** an actor), on a generated 128-node x 8-GPU platform (NVLink in a node,
** one InfiniBand rail per GPU on a fat tree).  A ring of 64 members or more
** sends each phase as one flow per GPU (README "Collectives"): 2,048
** flows, where 2 x 1,023 steps per GPU would be 2,095,104 transfers.
*/
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "ts_bench.h"
#include "ts_bench_int.h"

static int make_tmp(char *tmpdir) {
  if (mkdtemp(tmpdir)) return 0;
  fprintf(stderr, "trainsim: error: cannot create a temporary directory: %s\n", strerror(errno));
  return EX_CANTCREAT;
}

static void rm_tmp(const char *tmpdir) {
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd)) { /* best effort */
  }
}

/* Runs args repeat times; the medians of wall and CPU time, the largest
** peak RSS into *out.  -1 when a run failed. */
static int sample(const char *self, const char *const *args, const char *env, int repeat,
                  ts_bench_sample_t *out) {
  double wall[100], cpu[100], rss = 0;
  for (int i = 0; i < repeat; i++) {
    ts_bench_sample_t s;
    if (ts__bench_run_once(self, args, env, &s)) return -1;
    wall[i] = s.wall_s, cpu[i] = s.cpu_s;
    if (s.rss_mb > rss) rss = s.rss_mb;
  }
  *out = (ts_bench_sample_t){ts__bench_median(wall, repeat), ts__bench_median(cpu, repeat), rss};
  return 0;
}

int ts__bench_curve(const char *dir, int repeat) {
  char self[PATH_MAX], job[PATH_MAX], tmpdir[] = "/tmp/trainsim-bench-XXXXXX";
  if (ts__bench_self(self, sizeof self)) return EX_OSERR;
  snprintf(job, sizeof job, "%s/examples/bench-scale.json", TS_SOURCE_DIR);
  int rc = make_tmp(tmpdir);
  if (rc) return rc;
  const int m = 32; /* the job's microbatches */
  const char *base_args[] = {"run", job, "--set", "stages=1", "--set", "microbatches=1",
                             "-o", tmpdir, "-f", "summary", "--quiet", NULL};
  ts_bench_sample_t base;
  if (sample(self, base_args, NULL, repeat, &base)) {
    fprintf(stderr, "trainsim: error: %s: the base run failed\n", job);
    rm_tmp(tmpdir);
    return EX_SOFTWARE;
  }
  cJSON *o = cJSON_CreateObject(), *pts = cJSON_CreateArray();
  cJSON_AddStringToObject(o, "benchmark", "trainsim run examples/bench-scale.json --set stages=P -f summary");
  cJSON_AddStringToObject(o, "what", "1F1B, m=32, synthetic ops, ideal platform: 2pm compute ops + 2(p-1)m transfers");
  cJSON_AddNumberToObject(o, "repeat", repeat);
  cJSON_AddNumberToObject(o, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
  cJSON_AddNumberToObject(o, "base_cpu_s", base.cpu_s);
  cJSON_AddNumberToObject(o, "base_peak_rss_mb", base.rss_mb);
  for (int p = 8; p <= 4096 && !rc; p *= 2) {
    char st[32];
    snprintf(st, sizeof st, "stages=%d", p);
    const char *args[] = {"run", job, "--set", st, "-o", tmpdir, "-f", "summary", "--quiet", NULL};
    ts_bench_sample_t s;
    if (sample(self, args, NULL, repeat, &s)) {
      fprintf(stderr, "trainsim: error: %s --set %s: benchmark run failed\n", job, st);
      rc = EX_SOFTWARE;
      break;
    }
    double ops = 2.0 * p * m, xfers = 2.0 * (p - 1) * m, ev = ops + xfers;
    double spe = (s.cpu_s - base.cpu_s) / ev, kb = (s.rss_mb - base.rss_mb) * 1024.0 / p;
    cJSON *pt = cJSON_CreateObject();
    cJSON_AddNumberToObject(pt, "p", p);
    cJSON_AddNumberToObject(pt, "ops", ops);
    cJSON_AddNumberToObject(pt, "transfers", xfers);
    cJSON_AddNumberToObject(pt, "wall_s", s.wall_s);
    cJSON_AddNumberToObject(pt, "cpu_s", s.cpu_s);
    cJSON_AddNumberToObject(pt, "us_per_event", 1e6 * spe);
    cJSON_AddNumberToObject(pt, "peak_rss_mb", s.rss_mb);
    cJSON_AddNumberToObject(pt, "kb_per_device", kb);
    cJSON_AddItemToArray(pts, pt);
    fprintf(stderr, "bench: p = %4d: %.3f s wall, %.3f s CPU, %.2f us per event, %.1f MB, %.1f kB per device\n",
            p, s.wall_s, s.cpu_s, 1e6 * spe, s.rss_mb, kb);
  }
  rm_tmp(tmpdir);
  cJSON_AddItemToObject(o, "points", pts);
  if (rc) {
    cJSON_Delete(o);
    return rc;
  }
  if ((rc = ts__bench_write(dir, "bench-curve.json", o))) return rc;
  printf("bench: curve of p = 8 to 4096 -> %s/bench-curve.json\n", dir);
  return 0;
}

/* The all-reduce job, written into tmpdir/allreduce.json. */
static int write_allreduce_job(const char *tmpdir, char *job, size_t cap) {
  snprintf(job, cap, "%s/allreduce.json", tmpdir);
  FILE *f = fopen(job, "w");
  if (!f) return -1;
  fprintf(f,
          "{\"description\": \"One 1 GiB ring all-reduce over 1,024 GPUs (trainsim bench --case allreduce).\",\n"
          " \"model\": {\"kind\": \"synthetic\", \"forward_s\": 0, \"backward_s\": 0,\n"
          "           \"activation_message_bytes\": 0, \"activation_bytes\": 0, \"weights_bytes\": 1073741824},\n"
          " \"platform\": \"%s/ar1024.xml\", \"schedule\": \"1f1b\", \"stages\": 1, \"microbatches\": 1,\n"
          " \"data_parallel\": 1024, \"gradient_bucket_mb\": 1024, \"optimizer\": \"none\",\n"
          " \"collective_algorithm\": \"ring\"}\n",
          tmpdir);
  return fclose(f);
}

int ts__bench_allreduce(const char *dir, int repeat) {
  char self[PATH_MAX], job[PATH_MAX], plat[PATH_MAX], tmpdir[] = "/tmp/trainsim-bench-XXXXXX";
  if (ts__bench_self(self, sizeof self)) return EX_OSERR;
  int rc = make_tmp(tmpdir);
  if (rc) return rc;
  snprintf(plat, sizeof plat, "%s/ar1024.xml", tmpdir);
  const char *gen[] = {"platform", "--name", "ar1024", "--nodes", "128", "--gpus", "8", "-o", plat, NULL};
  ts_bench_sample_t s;
  if (ts__bench_run_once(self, gen, NULL, &s) || write_allreduce_job(tmpdir, job, sizeof job)) {
    fprintf(stderr, "trainsim: error: bench: cannot write the all-reduce job and platform\n");
    rm_tmp(tmpdir);
    return EX_CANTCREAT;
  }
  /* --exact: every GPU an actor, every flow simulated (contention modelled;
  ** folding would simulate one). */
  const char *args[] = {"run", job, "-o", tmpdir, "-f", "summary", "--quiet", "--exact", NULL};
  /* No watchdog: the end of the run (sorting 2 M events, their link
  ** traffic) reports no progress for a while on a loaded machine. */
  if (sample(self, args, "TRAINSIM_WATCHDOG_S=0", repeat, &s)) {
    fprintf(stderr, "trainsim: error: bench: the all-reduce run failed\n");
    rm_tmp(tmpdir);
    return EX_SOFTWARE;
  }
  char sum[PATH_MAX + 16];
  snprintf(sum, sizeof sum, "%s/summary.json", tmpdir);
  double T = -1;
  FILE *f = fopen(sum, "r");
  if (f) { /* summary.json of 1,024 devices: read it whole */
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *buf = malloc(len > 0 ? (size_t)len + 1 : 1);
    size_t n = buf && len > 0 ? fread(buf, 1, (size_t)len, f) : 0;
    if (buf) buf[n] = 0;
    fclose(f);
    cJSON *j = buf ? cJSON_Parse(buf) : NULL;
    free(buf);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, "iteration_time_s");
    if (cJSON_IsNumber(it)) T = it->valuedouble;
    cJSON_Delete(j);
  }
  rm_tmp(tmpdir);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "benchmark", "trainsim run (1 GiB ring all-reduce, data_parallel 1024) -f summary");
  cJSON_AddStringToObject(o, "what", "one 1 GiB ring all-reduce over 1024 GPUs, 128 nodes x 8 GPUs, contention modelled: 1024 flows (each GPU sends the ring all-reduce as one flow of both phases)");
  cJSON_AddNumberToObject(o, "repeat", repeat);
  cJSON_AddNumberToObject(o, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
  cJSON_AddNumberToObject(o, "wall_s_median", s.wall_s);
  cJSON_AddNumberToObject(o, "cpu_s_median", s.cpu_s);
  cJSON_AddNumberToObject(o, "peak_rss_mb_max", s.rss_mb);
  cJSON_AddNumberToObject(o, "simulated_s", T);
  cJSON_AddNumberToObject(o, "target_wall_s", 3.5);
  if ((rc = ts__bench_write(dir, "bench-allreduce.json", o))) return rc;
  printf("bench: 1 GiB ring all-reduce over 1024 GPUs: median %.3f s (%.3f s CPU), %.1f MB, %.6g s simulated -> %s/bench-allreduce.json\n",
         s.wall_s, s.cpu_s, s.rss_mb, T, dir);
  return 0;
}
