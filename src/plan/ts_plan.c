/*
** ts_plan.c: the parallel plan (trainsim.h, README "Parallel plan").
**
** What it models: how the devices of a job are organised.  A schedule's
** pipeline rule describes one pipeline (virtual stages, their chain, the
** position that holds each); the plan replicates that pipeline over the
** tensor-parallel ranks, expert-parallel lanes and data-parallel replicas,
** gives every device its coordinates, and names the groups that
** collectives run over.  It is pure bookkeeping: no costs, no times.
**
** Invariants (checked by assert in ts_plan_new):
** - devices = product of the degrees, and coordinates <-> device is a
**   bijection (the mixed-radix number of the coordinates in order);
** - every group of a kind partitions the devices, and each member's rank is
**   its index among the group's members;
** - plan vstage k R + r lives on the device of pipeline r whose position
**   holds the pipeline's vstage k.
*/
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "trainsim.h"
#include "ts_internal.h"
#include "ts_runtime.h"

static const char *const dim_names[TS_DIMS] = {"tp", "ep", "dp", "pp"};
static const ts_dim_t default_order[TS_DIMS] = {TS_DIM_TP, TS_DIM_EP, TS_DIM_DP, TS_DIM_PP};

const char *ts_dim_name(ts_dim_t d) { return d >= 0 && d < TS_DIMS ? dim_names[d] : "?"; }

int ts_plan_device(const ts_plan_t *p, const int *coord) {
  assert(p && coord);
  int d = 0;
  for (int i = TS_DIMS - 1; i >= 0; i--) {
    ts_dim_t dim = p->order[i];
    if (coord[dim] < 0 || coord[dim] >= p->degree[dim]) return -1;
    d = d * p->degree[dim] + coord[dim];
  }
  return d;
}

ts_group_t ts_plan_group(const ts_plan_t *p, ts_group_kind_t k, int d) {
  assert(k >= 0 && k < TS_GROUP_KINDS && d >= 0 && d < p->n_devices);
  int g = p->group_of[k][d];
  return (ts_group_t){.n = p->first[k][g + 1] - p->first[k][g],
                      .rank = p->rank_in[k][d],
                      .dev = p->members[k] + p->first[k][g]};
}

/* Sorting devices by (key, sort key, device): qsort_r's context. */
typedef struct by_key {
  const long *key, *sort_key;
} by_key_t;

static int cmp_by_key(const void *a, const void *b, void *arg) {
  const by_key_t *c = arg;
  int x = *(const int *)a, y = *(const int *)b;
  if (c->key[x] != c->key[y]) return c->key[x] < c->key[y] ? -1 : 1;
  if (c->sort_key[x] != c->sort_key[y]) return c->sort_key[x] < c->sort_key[y] ? -1 : 1;
  return (x > y) - (x < y);
}

static int cmp_int(const void *a, const void *b, void *arg) {
  const int *first = arg, x = first[*(const int *)a], y = first[*(const int *)b];
  return (x > y) - (x < y);
}

/* Groups of one kind from a key per device: devices of equal key form a
** group; groups are numbered by their lowest device, members ordered by
** sort_key (then device number).  O(n log n). */
static void make_groups(ts_plan_t *p, ts_group_kind_t k, const long *key, const long *sort_key) {
  int n = p->n_devices;
  int *sorted = ts__xmalloc((size_t)n * sizeof *sorted);
  for (int d = 0; d < n; d++) sorted[d] = d;
  by_key_t ctx = {key, sort_key};
  qsort_r(sorted, (size_t)n, sizeof *sorted, cmp_by_key, &ctx);
  /* Runs of equal key, each with its lowest device, then the runs in the
  ** order of their lowest devices. */
  int *run_at = ts__xmalloc(((size_t)n + 1) * sizeof *run_at), *low = ts__xmalloc((size_t)n * sizeof *low);
  int ng = 0;
  for (int i = 0; i < n; i++) {
    if (i == 0 || key[sorted[i]] != key[sorted[i - 1]]) {
      run_at[ng] = i;
      low[ng++] = sorted[i];
    } else if (sorted[i] < low[ng - 1]) {
      low[ng - 1] = sorted[i];
    }
  }
  run_at[ng] = n;
  int *runs = ts__xmalloc((size_t)(ng ? ng : 1) * sizeof *runs);
  for (int g = 0; g < ng; g++) runs[g] = g;
  qsort_r(runs, (size_t)ng, sizeof *runs, cmp_int, low);
  p->n_groups[k] = ng;
  p->group_of[k] = ts__xmalloc((size_t)n * sizeof(int));
  p->rank_in[k] = ts__xmalloc((size_t)n * sizeof(int));
  p->members[k] = ts__xmalloc((size_t)n * sizeof(int));
  p->first[k] = ts__xcalloc((size_t)ng + 1, sizeof(int));
  int at = 0;
  for (int g = 0; g < ng; g++) {
    int r = runs[g];
    p->first[k][g] = at;
    for (int i = run_at[r]; i < run_at[r + 1]; i++, at++) {
      int d = sorted[i];
      p->members[k][at] = d;
      p->group_of[k][d] = g;
      p->rank_in[k][d] = i - run_at[r];
    }
  }
  p->first[k][ng] = at;
  assert(at == n); /* every device in exactly one group */
  free(runs);
  free(low);
  free(run_at);
  free(sorted);
}

/* The cost rows each device holds, sorted: device d's are
** rows[start[d] .. start[d + 1]). */
typedef struct row_sets {
  const int *rows, *start;
} row_sets_t;

static int cmp_rows(const void *a, const void *b, void *arg) {
  const row_sets_t *c = arg;
  int x = *(const int *)a, y = *(const int *)b;
  int lx = c->start[x + 1] - c->start[x], ly = c->start[y + 1] - c->start[y];
  for (int i = 0; i < lx && i < ly; i++)
    if (c->rows[c->start[x] + i] != c->rows[c->start[y] + i])
      return c->rows[c->start[x] + i] < c->rows[c->start[y] + i] ? -1 : 1;
  if (lx != ly) return lx < ly ? -1 : 1;
  return (x > y) - (x < y);
}

/* REPLICA keys: devices holding the same set of cost rows share a key, the
** lowest such device.  O(n log n) comparisons of row sets. */
static void replica_keys(const ts_plan_t *p, long *key) {
  const ts_layout_t *L = p->layout;
  int n = p->n_devices;
  int *cnt = ts__xcalloc((size_t)n, sizeof(int));
  for (int v = 0; v < L->n_vstages; v++) cnt[L->dev[v]]++;
  int *start = ts__xcalloc((size_t)n + 1, sizeof(int));
  for (int d = 0; d < n; d++) start[d + 1] = start[d] + cnt[d];
  int *rows = ts__xmalloc((size_t)(L->n_vstages ? L->n_vstages : 1) * sizeof(int));
  memset(cnt, 0, (size_t)n * sizeof(int));
  for (int v = 0; v < L->n_vstages; v++) {
    int d = L->dev[v], *r = rows + start[d], i = cnt[d]++;
    while (i > 0 && r[i - 1] > L->part[v]) { /* a device holds few stages */
      r[i] = r[i - 1];
      i--;
    }
    r[i] = L->part[v];
  }
  int *sorted = ts__xmalloc((size_t)(n ? n : 1) * sizeof *sorted);
  for (int d = 0; d < n; d++) sorted[d] = d;
  row_sets_t ctx = {rows, start};
  qsort_r(sorted, (size_t)n, sizeof *sorted, cmp_rows, &ctx);
  /* Equal sets are adjacent, lowest device first. */
  for (int i = 0; i < n; i++) {
    int d = sorted[i];
    bool same = i > 0 && start[d + 1] - start[d] == start[sorted[i - 1] + 1] - start[sorted[i - 1]] &&
                !memcmp(rows + start[d], rows + start[sorted[i - 1]],
                        (size_t)(start[d + 1] - start[d]) * sizeof(int));
    key[d] = same ? key[sorted[i - 1]] : d;
  }
  free(sorted);
  free(rows);
  free(start);
  free(cnt);
}

static void build_groups(ts_plan_t *p) {
  int n = p->n_devices;
  long *key = ts__xmalloc((size_t)n * sizeof *key), *sk = ts__xmalloc((size_t)n * sizeof *sk);
  static const ts_dim_t varying[4] = {TS_DIM_TP, TS_DIM_EP, TS_DIM_DP, TS_DIM_PP};
  for (int k = 0; k < 4; k++) {
    ts_dim_t vary = varying[k];
    for (int d = 0; d < n; d++) {
      long kk = 0;
      for (int i = 0; i < TS_DIMS; i++)
        kk = kk * (p->degree[i] + 1) + (i == (int)vary ? p->degree[i] : ts_plan_coord(p, d, i));
      key[d] = kk;
      sk[d] = ts_plan_coord(p, d, vary);
    }
    make_groups(p, (ts_group_kind_t)k, key, sk);
  }
  replica_keys(p, key);
  /* Tensor-parallel ranks hold different shards of the same rows: each
  ** rank's replicas are its own group (the key unchanged at one rank). */
  for (int d = 0; d < n; d++) key[d] = key[d] * p->degree[TS_DIM_TP] + ts_plan_coord(p, d, TS_DIM_TP);
  for (int d = 0; d < n; d++) sk[d] = d;
  make_groups(p, TS_GROUP_REPLICA, key, sk);
  free(key);
  free(sk);
}

/* The layout of every pipeline from the one pipeline's. */
static ts_layout_t *replicate(const ts_plan_t *p, const ts_layout_t *pipe) {
  int R = p->replicas, nv = pipe->n_vstages;
  ts_layout_t *l = ts_layout_new(p->n_devices, nv * R);
  for (int k = 0; k < nv; k++)
    for (int r = 0; r < R; r++) {
      int v = k * R + r;
      int c[TS_DIMS];
      c[TS_DIM_TP] = r % p->degree[TS_DIM_TP];
      c[TS_DIM_EP] = r / p->degree[TS_DIM_TP] % p->degree[TS_DIM_EP];
      c[TS_DIM_DP] = r / (p->degree[TS_DIM_TP] * p->degree[TS_DIM_EP]);
      c[TS_DIM_PP] = pipe->dev[k];
      l->dev[v] = ts_plan_device(p, c);
      l->stage[v] = pipe->stage[k];
      l->chunk[v] = pipe->chunk[k];
      l->part[v] = pipe->part[k];
      l->next[v] = pipe->next[k] >= 0 ? pipe->next[k] * R + r : -1;
      l->prev[v] = pipe->prev[k] >= 0 ? pipe->prev[k] * R + r : -1;
      l->mb_lo[v] = pipe->mb_lo[k];
      l->mb_hi[v] = pipe->mb_hi[k];
      /* the invariant of the file header: pipeline r's position that holds k */
      assert(l->dev[v] >= 0 && ts_plan_coord(p, l->dev[v], TS_DIM_PP) == pipe->dev[k]);
    }
  return l;
}

int ts_plan_new(ts_layout_t *pipe, const int degree[TS_DIMS], const ts_dim_t *order,
                const char *path, ts_plan_t **out, ts_err_t *err) {
  *out = NULL;
  int deg[TS_DIMS];
  memcpy(deg, degree, sizeof deg);
  deg[TS_DIM_PP] = pipe->n_devices;
  if (!order) order = default_order;
  unsigned seen = 0;
  for (int i = 0; i < TS_DIMS; i++) {
    if (order[i] < 0 || order[i] >= TS_DIMS || (seen & (1u << order[i]))) {
      ts_layout_free(pipe);
      return ts_err_set(err, EX_DATAERR, "%s: rank order: it must name tp, ep, dp and pp once each",
                        path);
    }
    seen |= 1u << order[i];
  }
  long long n = 1;
  for (int i = 0; i < TS_DIMS; i++) {
    if (deg[i] < 1) {
      ts_layout_free(pipe);
      return ts_err_set(err, EX_DATAERR, "%s: %s degree %d: must be at least 1", path,
                        ts_dim_name((ts_dim_t)i), deg[i]);
    }
    n *= deg[i];
    if (n > 1 << 24) {
      ts_layout_free(pipe);
      return ts_err_set(err, EX_DATAERR,
                        "%s: the parallel degrees multiply to more than %d devices", path, 1 << 24);
    }
  }
  ts_plan_t *p = ts__xcalloc(1, sizeof *p);
  p->n_devices = (int)n;
  memcpy(p->degree, deg, sizeof deg);
  memcpy(p->order, order, sizeof p->order);
  p->replicas = deg[TS_DIM_TP] * deg[TS_DIM_EP] * deg[TS_DIM_DP];
  p->coord = ts__xmalloc((size_t)n * TS_DIMS * sizeof(int));
  for (int d = 0; d < p->n_devices; d++) {
    int rest = d;
    for (int i = 0; i < TS_DIMS; i++) {
      ts_dim_t dim = order[i];
      p->coord[(size_t)d * TS_DIMS + dim] = rest % deg[dim];
      rest /= deg[dim];
    }
    assert(ts_plan_device(p, p->coord + (size_t)d * TS_DIMS) == d);
  }
  if ((long long)pipe->n_vstages * p->replicas > 1 << 26) {
    ts_err_set(err, EX_DATAERR, "%s: %d virtual stages x %d pipelines exceed %d virtual stages",
               path, pipe->n_vstages, p->replicas, 1 << 26);
    ts_layout_free(pipe);
    free(p->coord);
    free(p);
    return EX_DATAERR;
  }
  p->layout = p->replicas == 1 ? pipe : replicate(p, pipe);
  if (p->replicas != 1) ts_layout_free(pipe);
  build_groups(p);
  *out = p;
  return 0;
}

ts_layout_t *ts_plan_pipeline(const ts_job_t *job, const ts_schedule_t *s) {
  return s->pipeline ? s->pipeline(job) : ts_layout_linear(job->stages, job->chunks);
}

/* The degrees of a job's plan other than pp (ts_plan_for_job): the
** tensor-parallel ranks, the expert-parallel lanes of a MoE schedule and
** the data-parallel replicas. */
static void job_degrees(const ts_job_t *job, const ts_schedule_t *s, int deg[TS_DIMS]) {
  for (int i = 0; i < TS_DIMS; i++) deg[i] = 1;
  if (s->moe && job->model.moe.experts > 0) deg[TS_DIM_EP] = job->model.moe.expert_parallel;
  if (job->data_parallel > 1) deg[TS_DIM_DP] = job->data_parallel;
  if (job->tensor_parallel > 1) deg[TS_DIM_TP] = job->tensor_parallel;
}

int ts_plan_for_job(const ts_job_t *job, const ts_schedule_t *s, ts_plan_t **out, ts_err_t *err) {
  ts_layout_t *pipe = ts_plan_pipeline(job, s);
  int deg[TS_DIMS];
  job_degrees(job, s, deg);
  /* The loader always sets rank_order; a job it did not fill in takes
  ** the default order. */
  return ts_plan_new(pipe, deg, job->rank_order[0] ? job->order : NULL, job->path, out, err);
}

long long ts_plan_job_devices(const ts_job_t *job, const ts_schedule_t *s, int *ep) {
  ts_layout_t *pipe = ts_plan_pipeline(job, s);
  int deg[TS_DIMS];
  job_degrees(job, s, deg);
  /* Saturated past 2^40: each factor is at most 1e8, so n never overflows. */
  long long n = pipe->n_devices;
  for (int i = 0; i < TS_DIMS; i++)
    if (i != TS_DIM_PP && (n *= deg[i]) > 1LL << 40) n = 1LL << 40;
  ts_layout_free(pipe);
  if (ep) *ep = deg[TS_DIM_EP];
  return n;
}

void ts_plan_free(ts_plan_t *p) {
  if (!p) return;
  for (int k = 0; k < TS_GROUP_KINDS; k++) {
    free(p->group_of[k]);
    free(p->rank_in[k]);
    free(p->first[k]);
    free(p->members[k]);
  }
  ts_layout_free(p->layout);
  free(p->coord);
  free(p);
}
