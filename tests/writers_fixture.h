/*
** writers_fixture.h: what the writer tests share (test_writers.c: gantt.svg,
** test_writers_trace.c: trace.json): hand-built results (a tiny GPipe run
** and runs of a small dependency-driven list scheduler with their
** busy/idle and memory steps), writing to memory, and the checks every
** trace must pass.  Functions are static inline: each test file uses some.
*/
#ifndef WRITERS_FIXTURE_H
#define WRITERS_FIXTURE_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "trainsim.h"
#include "ts_out.h"
#include "tsunit.h"
#include "ts_internal.h"

/* ------------------------------------------------------------------ */
/* Fixtures                                                            */
/* ------------------------------------------------------------------ */

/* A result and everything it points to, owned here. */
typedef struct fixture {
  ts_result_t r;
  ts_job_t *job;
  ts_layout_t *layout;
  ts_run_t *run;
  ts_metrics_t *metrics;
  int n_compute, n_transfer;
} fixture_t;

static inline fixture_t *fixture_new(const char *schedule, int stages, int mbs, int chunks) {
  fixture_t *fx = ts__xcalloc(1, sizeof *fx);
  fx->job = ts__xcalloc(1, sizeof *fx->job);
  snprintf(fx->job->schedule, sizeof fx->job->schedule, "%s", schedule);
  snprintf(fx->job->model.name, sizeof fx->job->model.name, "synthetic");
  fx->job->stages = stages;
  fx->job->microbatches = mbs;
  fx->job->chunks = chunks;
  fx->job->iterations = 1;
  fx->layout = ts_layout_linear(stages, chunks);
  fx->run = ts_run_new(stages);
  snprintf(fx->run->executor, sizeof fx->run->executor, "reference");
  for (int d = 0; d < stages; d++)
    snprintf(fx->run->devices[d].name, sizeof fx->run->devices[d].name, "gpu%d.node", d);
  fx->metrics = ts__xcalloc(1, sizeof *fx->metrics);
  fx->metrics->n_devices = stages;
  fx->metrics->dev = ts__xcalloc((size_t)stages, sizeof *fx->metrics->dev);
  fx->r = (ts_result_t){.job = fx->job, .layout = fx->layout, .run = fx->run,
                        .metrics = fx->metrics};
  return fx;
}

static inline void fixture_free(fixture_t *fx) {
  if (!fx) return;
  for (int d = 0; d < fx->metrics->n_devices; d++) {
    free(fx->metrics->dev[d].mem_t);
    free(fx->metrics->dev[d].mem_bytes);
  }
  free(fx->metrics->dev);
  free(fx->metrics);
  ts_run_free(fx->run);
  ts_layout_free(fx->layout);
  free(fx->job);
  free(fx);
}

static inline void push(fixture_t *fx, int dev, int peer, int vstage, int mb, ts_kind_t kind, int seq,
                 double start, double end, double bytes) {
  ts_event_t e = {.device = dev, .peer = peer, .vstage = vstage, .mb = mb, .kind = kind,
                  .seq = seq, .start = start, .end = end, .bytes = bytes};
  ts_run_push(fx->run, &e);
  if (ts_kind_is_compute(kind))
    fx->n_compute++;
  else
    fx->n_transfer++;
}

static inline void mem_step(ts_device_metrics_t *dm, double t, double bytes) {
  dm->mem_t = ts__xrealloc(dm->mem_t, (size_t)(dm->n_mem + 1) * sizeof *dm->mem_t);
  dm->mem_bytes = ts__xrealloc(dm->mem_bytes, (size_t)(dm->n_mem + 1) * sizeof *dm->mem_bytes);
  dm->mem_t[dm->n_mem] = t;
  dm->mem_bytes[dm->n_mem++] = bytes;
}

/* Busy, idle and bubble fractions from the compute events; T = last end. */
static inline void fill_busy(fixture_t *fx) {
  double T = 0, idle = 0;
  for (int i = 0; i < fx->run->n_events; i++)
    if (fx->run->events[i].end > T) T = fx->run->events[i].end;
  for (int i = 0; i < fx->run->n_events; i++) {
    const ts_event_t *e = &fx->run->events[i];
    if (ts_kind_is_compute(e->kind)) fx->metrics->dev[e->device].busy_s += e->end - e->start;
  }
  for (int d = 0; d < fx->metrics->n_devices; d++) {
    ts_device_metrics_t *dm = &fx->metrics->dev[d];
    dm->idle_s = T - dm->busy_s;
    dm->bubble_fraction = dm->idle_s / T;
    dm->weights_bytes = 1e6;
    dm->gradients_bytes = 1e6;
    dm->optimizer_bytes = 6e6;
    idle += dm->idle_s;
  }
  fx->metrics->iteration_time_s = T;
  fx->metrics->bubble_fraction = idle / (fx->metrics->n_devices * T);
}

#define MS 1e-3

/* GPipe, p = 2, m = 2, forward 1 ms, backward 2 ms.  Device 0's first
** activation takes 1.5 ms (a slow link), so its second (sent at 2 ms)
** overlaps it: the trace needs two communication tracks on device 0.
** Device 0's host name holds every XML and JSON special character. */
static inline fixture_t *gpipe_2x2(void) {
  fixture_t *fx = fixture_new("gpipe", 2, 2, 1);
  snprintf(fx->run->devices[0].name, sizeof fx->run->devices[0].name, "a<&>\"b'\\c");
  double A = 4e6, M = 1e6;
  push(fx, 0, 0, 0, 0, TS_FORWARD, 0, 0.0 * MS, 1.0 * MS, 0);
  push(fx, 0, 0, 0, 1, TS_FORWARD, 1, 1.0 * MS, 2.0 * MS, 0);
  push(fx, 0, 1, 0, 0, TS_SEND_ACT, 0, 1.0 * MS, 2.5 * MS, M);
  push(fx, 0, 1, 0, 1, TS_SEND_ACT, 0, 2.0 * MS, 2.1 * MS, M);
  push(fx, 1, 1, 1, 0, TS_FORWARD, 0, 2.5 * MS, 3.5 * MS, 0);
  push(fx, 1, 1, 1, 1, TS_FORWARD, 1, 3.5 * MS, 4.5 * MS, 0);
  push(fx, 1, 1, 1, 1, TS_BACKWARD, 2, 4.5 * MS, 6.5 * MS, 0);
  push(fx, 1, 1, 1, 0, TS_BACKWARD, 3, 6.5 * MS, 8.5 * MS, 0);
  push(fx, 1, 0, 1, 1, TS_SEND_GRAD, 0, 6.5 * MS, 6.6 * MS, M);
  push(fx, 1, 0, 1, 0, TS_SEND_GRAD, 0, 8.5 * MS, 8.6 * MS, M);
  push(fx, 0, 0, 0, 1, TS_BACKWARD, 2, 6.6 * MS, 8.6 * MS, 0);
  push(fx, 0, 0, 0, 0, TS_BACKWARD, 3, 8.6 * MS, 10.6 * MS, 0);
  ts_run_sort(fx->run);
  ts_device_metrics_t *d0 = &fx->metrics->dev[0], *d1 = &fx->metrics->dev[1];
  mem_step(d0, 0.0 * MS, A);
  mem_step(d0, 1.0 * MS, 2 * A);
  mem_step(d0, 8.6 * MS, A);
  mem_step(d0, 10.6 * MS, 0);
  mem_step(d1, 2.5 * MS, A);
  mem_step(d1, 3.5 * MS, 2 * A);
  mem_step(d1, 6.5 * MS, A);
  mem_step(d1, 6.5 * MS, A); /* a repeated time: only one counter point */
  mem_step(d1, 8.5 * MS, 0);
  fill_busy(fx);
  return fx;
}

/* Operation orders the generator knows. */
typedef enum { ORDER_1F1B, ORDER_BREADTH_FIRST } order_t;

typedef struct gen_opts {
  int p, m, v;
  order_t order;
  bool split;      /* backward as backward_input then weight_grad */
  bool recompute;  /* recompute before each backward */
  double lat;      /* transfer time, seconds */
} gen_opts_t;

typedef struct op {
  ts_kind_t kind;
  int vstage, mb;
} op_t;

/* The program of device s. */
static inline int program(const gen_opts_t *o, int s, op_t *ops) {
  int n = 0, p = o->p, m = o->m;
  ts_kind_t bk = o->split ? TS_BACKWARD_INPUT : TS_BACKWARD;
#define BACK(k, i)                                                      \
  do {                                                                  \
    if (o->recompute) ops[n++] = (op_t){TS_RECOMPUTE, (k), (i)};        \
    ops[n++] = (op_t){bk, (k), (i)};                                    \
    if (o->split) ops[n++] = (op_t){TS_WEIGHT_GRAD, (k), (i)};          \
  } while (0)
  if (o->order == ORDER_1F1B) {
    int w = p - s - 1 < m ? p - s - 1 : m, f = 0, b = 0;
    while (f < w) ops[n++] = (op_t){TS_FORWARD, s, f++};
    while (f < m) {
      ops[n++] = (op_t){TS_FORWARD, s, f++};
      BACK(s, b);
      b++;
    }
    while (b < m) {
      BACK(s, b);
      b++;
    }
  } else {
    for (int c = 0; c < o->v; c++)
      for (int i = 0; i < m; i++) ops[n++] = (op_t){TS_FORWARD, c * p + s, i};
    for (int c = o->v - 1; c >= 0; c--)
      for (int i = 0; i < m; i++) BACK(c * p + s, i);
  }
#undef BACK
  return n;
}

/* Runs the programs as soon as their inputs are there (forward 1 ms,
** backward 2 ms or 1 + 1 ms split, recompute 1 ms, all divided by v),
** and records events, busy/idle and activation memory steps. */
static inline fixture_t *generate(const char *name, const gen_opts_t *o) {
  int p = o->p, m = o->m, v = o->v, nv = p * v;
  fixture_t *fx = fixture_new(name, p, m, v);
  double tf = 1.0 * MS / v, A = 8e6 / v;
  double *f_end = ts__xmalloc((size_t)nv * m * sizeof *f_end);
  double *g_end = ts__xmalloc((size_t)nv * m * sizeof *g_end); /* input gradient ready */
  for (int i = 0; i < nv * m; i++) f_end[i] = g_end[i] = -1;
  op_t **prog = ts__xcalloc((size_t)p, sizeof *prog);
  int *len = ts__xcalloc((size_t)p, sizeof *len), *pc = ts__xcalloc((size_t)p, sizeof *pc);
  double *free_at = ts__xcalloc((size_t)p, sizeof *free_at), *act = ts__xcalloc((size_t)p, sizeof *act);
  for (int s = 0; s < p; s++) {
    prog[s] = ts__xmalloc((size_t)4 * v * m * sizeof **prog);
    len[s] = program(o, s, prog[s]);
  }
  for (bool progress = true; progress;) {
    progress = false;
    for (int s = 0; s < p; s++) {
      while (pc[s] < len[s]) {
        op_t op = prog[s][pc[s]];
        int k = op.vstage, i = op.mb, dev = k % p;
        double ready = free_at[s], dur = tf;
        if (op.kind == TS_FORWARD && k > 0) {
          double t = f_end[(k - 1) * m + i];
          if (t < 0) break;
          ready = fmax(ready, t + ((k - 1) % p != dev ? o->lat : 0));
        } else if (op.kind == TS_BACKWARD || op.kind == TS_BACKWARD_INPUT) {
          double t = k + 1 < nv ? g_end[(k + 1) * m + i] : f_end[k * m + i];
          if (t < 0) break;
          ready = fmax(ready, t + (k + 1 < nv && (k + 1) % p != dev ? o->lat : 0));
          dur = op.kind == TS_BACKWARD ? 2 * tf : tf;
        }
        double end = ready + dur;
        push(fx, s, s, k, i, op.kind, pc[s], ready, end, 0);
        ts_device_metrics_t *dm = &fx->metrics->dev[s];
        if (op.kind == TS_FORWARD) {
          f_end[k * m + i] = end;
          mem_step(dm, ready, act[s] += A);
          if (k + 1 < nv && (k + 1) % p != s)
            push(fx, s, (k + 1) % p, k, i, TS_SEND_ACT, 0, end, end + o->lat, A / 8);
        } else if (op.kind == TS_BACKWARD || op.kind == TS_BACKWARD_INPUT) {
          g_end[k * m + i] = end;
          if (k > 0 && (k - 1) % p != s)
            push(fx, s, (k - 1) % p, k, i, TS_SEND_GRAD, 0, end, end + o->lat, A / 8);
        }
        if (op.kind == (o->split ? TS_WEIGHT_GRAD : TS_BACKWARD))
          mem_step(dm, end, act[s] -= A);
        free_at[s] = end;
        pc[s]++;
        progress = true;
      }
    }
  }
  for (int s = 0; s < p; s++) {
    CU_ASSERT_EQUAL(pc[s], len[s]); /* the program ran to its end */
    free(prog[s]);
  }
  free(prog);
  free(len);
  free(pc);
  free(free_at);
  free(act);
  free(f_end);
  free(g_end);
  ts_run_sort(fx->run);
  fill_busy(fx);
  return fx;
}

/* ------------------------------------------------------------------ */
/* Writing to memory                                                   */
/* ------------------------------------------------------------------ */

typedef int (*writer_fn)(const ts_result_t *, FILE *);

/* The bytes a writer produces (owned by the caller), or NULL. */
static inline char *write_mem(writer_fn fn, const ts_result_t *r, size_t *len) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  if (!f) return NULL;
  int rc = fn(r, f);
  fclose(f);
  CU_ASSERT_EQUAL(rc, 0);
  if (len) *len = n;
  return buf;
}

/* gantt.svg drawn with options o, as a malloc'd string. */
static inline char *gantt_mem(const ts_result_t *r, const ts_gantt_opts_t *o) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  if (!f) return NULL;
  int rc = ts_write_gantt_svg_opts(r, o, f);
  fclose(f);
  CU_ASSERT_EQUAL(rc, 0);
  return buf;
}

static inline void maybe_save(const char *stem, const char *ext, const char *data) {
  const char *dir = getenv("TS_WRITERS_OUT");
  if (!dir || !data) return;
  char path[TS_PATH_MAX];
  snprintf(path, sizeof path, "%s/%s.%s", dir, stem, ext);
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(data, f);
    fclose(f);
  }
}

static inline int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

/* ------------------------------------------------------------------ */
/* Trace checks                                                        */
/* ------------------------------------------------------------------ */

typedef struct span {
  int pid, tid;
  double ts, dur;
} span_t;

static inline int span_cmp(const void *pa, const void *pb) {
  const span_t *a = pa, *b = pb;
  if (a->pid != b->pid) return a->pid < b->pid ? -1 : 1;
  if (a->tid != b->tid) return a->tid < b->tid ? -1 : 1;
  return a->ts < b->ts ? -1 : a->ts > b->ts;
}

static inline double num(const cJSON *o, const char *key) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
  CU_ASSERT_PTR_NOT_NULL_FATAL(it);
  CU_ASSERT_FATAL(cJSON_IsNumber(it));
  return it->valuedouble;
}

static inline const char *str(const cJSON *o, const char *key) {
  const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
  CU_ASSERT_PTR_NOT_NULL_FATAL(it);
  CU_ASSERT_FATAL(cJSON_IsString(it));
  return it->valuestring;
}

/* The properties every trace must have; returns the parsed document
** (caller deletes it) for further checks. */
static inline cJSON *check_trace(const fixture_t *fx, const char *json) {
  const ts_run_t *run = fx->run;
  cJSON *doc = cJSON_Parse(json);
  CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
  CU_ASSERT_STRING_EQUAL(str(doc, "displayTimeUnit"), "ms");
  CU_ASSERT(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "otherData")));
  const cJSON *evs = cJSON_GetObjectItemCaseSensitive(doc, "traceEvents");
  CU_ASSERT_FATAL(cJSON_IsArray(evs));

  int n = cJSON_GetArraySize(evs), n_spans = 0, n_compute = 0, n_transfer = 0;
  span_t *spans = ts__xcalloc((size_t)n + 1, sizeof *spans);
  int *process_names = ts__xcalloc((size_t)run->n_devices + 1, sizeof *process_names);
  int *counters = ts__xcalloc((size_t)run->n_devices + 1, sizeof *counters);
  /* thread_name seen for (pid, tid): tids below 64 are plenty here */
  bool(*named)[64] = ts__xcalloc((size_t)run->n_devices + 1, sizeof *named);
  double t_end_us = 0;
  for (int i = 0; i < run->n_events; i++) t_end_us = fmax(t_end_us, run->events[i].end * 1e6);

  const cJSON *e;
  cJSON_ArrayForEach(e, evs) {
    const char *ph = str(e, "ph"), *name = str(e, "name");
    int pid = (int)num(e, "pid");
    CU_ASSERT_FATAL(pid >= 1 && pid <= run->n_devices);
    if (!strcmp(ph, "M")) {
      const cJSON *args = cJSON_GetObjectItemCaseSensitive(e, "args");
      CU_ASSERT_FATAL(cJSON_IsObject(args));
      if (!strcmp(name, "process_name")) {
        char want[TS_NAME_MAX + 32];
        snprintf(want, sizeof want, "device %d (%s)", pid - 1, run->devices[pid - 1].name);
        CU_ASSERT_STRING_EQUAL(str(args, "name"), want);
        process_names[pid - 1]++;
      } else if (!strcmp(name, "thread_name")) {
        int tid = (int)num(e, "tid");
        CU_ASSERT_FATAL(tid >= 1 && tid < 64);
        named[pid - 1][tid] = true;
        const char *tn = str(args, "name");
        CU_ASSERT(!strncmp(tn, tid == 1 ? "compute" : "communication", tid == 1 ? 7 : 13) ||
                  !strncmp(tn, "compute ", 8));
      }
    } else if (!strcmp(ph, "X")) {
      double ts = num(e, "ts"), dur = num(e, "dur");
      CU_ASSERT(ts >= 0);
      CU_ASSERT(dur >= 0);
      CU_ASSERT(ts + dur <= t_end_us + 1e-3);
      spans[n_spans++] = (span_t){pid, (int)num(e, "tid"), ts, dur};
      const cJSON *args = cJSON_GetObjectItemCaseSensitive(e, "args");
      CU_ASSERT_FATAL(cJSON_IsObject(args));
      const char *kind = str(args, "kind");
      CU_ASSERT_STRING_EQUAL(str(e, "cat"), kind);
      int mb = (int)num(args, "microbatch"); /* from 0, as in timeline.csv */
      CU_ASSERT(mb >= 0);
      (void)num(args, "stage");
      (void)num(args, "chunk");
      (void)num(args, "iteration");
      CU_ASSERT(num(args, "bytes") >= 0);
      bool compute = false;
      for (int k = 0; k < TS_COMPUTE_KINDS; k++) compute |= !strcmp(kind, ts_kind_name(k));
      if (compute) {
        n_compute++;
        CU_ASSERT_EQUAL((int)num(e, "tid"), 1); /* valid runs: one compute track */
        CU_ASSERT_EQUAL(atoi(name + 1), mb + 1); /* "F3": letter, micro-batch from 1 */
        CU_ASSERT(strchr("FBRbW", name[0]) != NULL);
      } else {
        n_transfer++;
        CU_ASSERT((int)num(e, "tid") >= 2);
      }
    } else if (!strcmp(ph, "C")) {
      CU_ASSERT_STRING_EQUAL(name, "memory");
      const cJSON *args = cJSON_GetObjectItemCaseSensitive(e, "args");
      CU_ASSERT(num(e, "ts") >= 0);
      double act = num(args, "activations_bytes"), total = num(args, "total_bytes");
      CU_ASSERT(act >= 0);
      CU_ASSERT(total >= act);
      counters[pid - 1]++;
    } else {
      CU_FAIL("unexpected event phase");
    }
  }
  CU_ASSERT_EQUAL(n_compute, fx->n_compute);
  CU_ASSERT_EQUAL(n_transfer, fx->n_transfer);
  for (int d = 0; d < run->n_devices; d++) {
    CU_ASSERT_EQUAL(process_names[d], 1);
    CU_ASSERT(counters[d] >= 1);
    CU_ASSERT(named[d][1] && named[d][2]);
  }

  /* Complete events on one thread never overlap, and each thread has a name. */
  qsort(spans, (size_t)n_spans, sizeof *spans, span_cmp);
  for (int i = 0; i < n_spans; i++) {
    CU_ASSERT(spans[i].tid < 64 && named[spans[i].pid - 1][spans[i].tid]);
    if (i > 0 && spans[i].pid == spans[i - 1].pid && spans[i].tid == spans[i - 1].tid)
      CU_ASSERT(spans[i - 1].ts + spans[i - 1].dur <= spans[i].ts + 1e-6);
  }
  free(spans);
  free(process_names);
  free(counters);
  free(named);
  return doc;
}


#endif
