/*
** ts_place.c: `trainsim place`, the stage placement with the lowest
** simulated iteration time for a host-memory schedule (mobius, gpipe-swap)
** and a given partition (the job's stages).
**
** Search space.  Stages go round-robin over an order of the G GPUs (stage
** k on order[k mod G]), the family that holds Mobius' sequential and cross
** mappings.  GPUs of one group (mapping_groups groups of G / groups GPUs,
** numbered group-major: GPUs behind one PCIe switch or root complex) are
** taken as interchangeable, so an order is a sequence of group labels,
** each label used G / groups times, the i-th use of a label meaning that
** group's i-th GPU; the first label is fixed to group 0 (the groups are
** symmetric).  G = 8 in 2 groups: 35 orders, each simulated in full on the
** job's platform, so contention on shared uplinks, activation transfers
** across sockets and room waits all count.  Above TS_PLACE_MAX orders the
** search refuses (EX_USAGE) rather than sample.
**
** Outputs, written atomically into DIR: place.csv (every order, best
** first: rank, order, the mapping as stage -> GPU, iteration time, largest
** room wait, largest uplink utilisation) and the five files of the best
** placement's run.  Ties keep the order in which orders were enumerated
** (lexicographic in labels), so the result is deterministic.
*/
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_out.h"
#include "ts_place.h"
#include "ts_runtime.h"
#include "ts_exec.h"
#include "ts_internal.h"

#define TS_PLACE_MAX 5000

typedef struct cand {
  int *order;          /* [G] GPU order */
  double time, room, uplink;
  int rank;
} cand_t;

typedef struct place {
  const ts_job_t *job;
  cand_t *c;
  int n, G, S;
} place_t;

/* Orders to simulate: label sequences with the first label 0, i.e. the
** multinomial (G - 1)! / ((per - 1)! per!^(groups - 1)). */
static double count_orders(int G, int groups, int per) {
  double n = 1;
  int left = G - 1;
  for (int g = 0; g < groups; g++) {
    int k = g ? per : per - 1;
    for (int i = 1; i <= k; i++) n = n * (left - k + i) / i; /* C(left, k) */
    left -= k;
  }
  return n;
}

/* Appends every label sequence with left[g] uses of label g remaining. */
static void enumerate(place_t *p, int *labels, int pos, int *left, int groups, int per) {
  if (pos == p->G) {
    cand_t *c = &p->c[p->n++];
    int *used = ts__xcalloc((size_t)groups, sizeof *used);
    c->order = ts__xmalloc((size_t)p->G * sizeof *c->order);
    for (int j = 0; j < p->G; j++) c->order[j] = labels[j] * per + used[labels[j]]++;
    free(used);
    return;
  }
  for (int g = 0; g < groups; g++) {
    if (!left[g] || (pos == 0 && g != 0)) continue;
    left[g]--;
    labels[pos] = g;
    enumerate(p, labels, pos + 1, left, groups, per);
    left[g]++;
  }
}

/* "0 4 1 5 ...": the n GPUs of order, space-separated, cut to fit cap. */
static const char *fmt_order(char *buf, size_t cap, const int *order, int n) {
  buf[0] = 0;
  for (int j = 0; j < n && strlen(buf) < cap - 8; j++)
    snprintf(buf + strlen(buf), cap - strlen(buf), "%s%d", j ? " " : "", order[j]);
  return buf;
}

static double max_uplink(const ts_run_t *run, double T) {
  double u = 0;
  for (int i = 0; i < run->n_links; i++) {
    const ts_link_use_t *l = &run->links[i];
    if (strncmp(l->name, "uplink-", 7) || !(l->bandwidth > 0) || !(T > 0)) continue;
    double x = l->bytes / (l->bandwidth * T);
    if (x > u) u = x;
  }
  return u;
}

static int cand_cmp(const void *a, const void *b) {
  const cand_t *x = a, *y = b;
  if (x->time != y->time) return x->time < y->time ? -1 : 1;
  return (x->rank > y->rank) - (x->rank < y->rank);
}

static int write_csv(const void *arg, FILE *f) {
  const place_t *p = arg;
  fputs("rank,order,mapping,iteration_time_s,max_room_wait_s,max_uplink_utilisation\n", f);
  for (int i = 0; i < p->n; i++) {
    const cand_t *c = &p->c[i];
    fprintf(f, "%d,\"", i + 1);
    for (int j = 0; j < p->G; j++) fprintf(f, "%s%d", j ? " " : "", c->order[j]);
    fputs("\",\"", f);
    for (int k = 0; k < p->S; k++) fprintf(f, "%s%d", k ? " " : "", c->order[k % p->G]);
    fprintf(f, "\",%.17g,%.17g,%.17g\n", c->time, c->room, c->uplink);
  }
  return ferror(f) ? EX_IOERR : 0;
}

/* Simulates job with stage k on order[k mod G]; fills o. */
static int simulate_order(ts_job_t *job, const int *order, ts_outcome_t *o, ts_err_t *err) {
  for (int k = 0; k < job->stages; k++) job->mapping[k] = order[k % job->devices];
  return ts_simulate(job, o, err);
}

int ts_place(const char *path, const char *const *sets, int n_sets, const char *dir, bool quiet,
             ts_err_t *err) {
  ts_job_t *job = NULL;
  int rc = ts_job_load(path, sets, n_sets, &job, err);
  if (rc) return rc;
  const ts_schedule_t *s = ts_schedule_find(job->schedule);
  int G = job->devices, ng = job->mapping_groups, S = job->stages;
  if (!s->host_weights) {
    rc = ts_err_set(err, EX_USAGE,
                    "%s: schedule: place searches placements for schedules that keep weights in "
                    "host memory (mobius, gpipe-swap), not '%s'",
                    job->path, job->schedule);
    goto out_job;
  }
  if (G % ng) {
    rc = ts_err_set(err, EX_DATAERR, "%s: mapping_groups: %d devices do not split into %d groups",
                    job->path, G, ng);
    goto out_job;
  }
  double total = count_orders(G, ng, G / ng);
  if (total > TS_PLACE_MAX) {
    rc = ts_err_set(err, EX_USAGE,
                    "%s: devices: %d GPUs in %d groups give %.0f orders, more than the %d place "
                    "simulates",
                    job->path, G, ng, total, TS_PLACE_MAX);
    goto out_job;
  }
  place_t p = {job, ts__xcalloc((size_t)total, sizeof(cand_t)), 0, G, S};
  int *labels = ts__xcalloc((size_t)(G > 0 ? G : 1), sizeof *labels);
  int *left = ts__xcalloc((size_t)(ng > 0 ? ng : 1), sizeof *left);
  for (int g = 0; g < ng; g++) left[g] = G / ng;
  enumerate(&p, labels, 0, left, ng, G / ng);
  free(labels);
  free(left);
  free(job->mapping);
  job->mapping = ts__xcalloc((size_t)S, sizeof *job->mapping);
  snprintf(job->mapping_rule, sizeof job->mapping_rule, "explicit");
  for (int i = 0; i < p.n && !rc; i++) {
    ts_outcome_t o;
    ts_err_t e = {0};
    if ((rc = simulate_order(job, p.c[i].order, &o, &e))) {
      char ord[256];
      ts_err_set(err, rc, "place: GPU order %s: %s", fmt_order(ord, sizeof ord, p.c[i].order, G),
                 e.msg);
      break;
    }
    double T = o.metrics->iteration_time_s * job->iterations;
    p.c[i].time = o.metrics->iteration_time_s;
    p.c[i].uplink = max_uplink(o.run, T);
    for (int d = 0; d < o.metrics->n_devices; d++)
      if (o.metrics->dev[d].room_wait_s > p.c[i].room) p.c[i].room = o.metrics->dev[d].room_wait_s;
    p.c[i].rank = i;
    ts_outcome_free(&o);
  }
  if (rc) goto out_cands;
  qsort(p.c, (size_t)p.n, sizeof *p.c, cand_cmp);
  ts_outcome_t best;
  if ((rc = simulate_order(job, p.c[0].order, &best, err))) goto out_cands;
  char csv[TS_PATH_MAX + 16];
  snprintf(csv, sizeof csv, "%s/place.csv", dir);
  if (!(rc = ts_write_dir(dir, err)) && !(rc = ts_write_outputs(&best.r, dir, err)))
    rc = ts_write_atomic(csv, write_csv, &p, err);
  if (!rc && !quiet) {
    printf("trainsim place: %s, %d stages on %d GPUs in %d groups: %d orders simulated\n",
           job->schedule, S, G, ng, p.n);
    printf("  %-4s %-24s %-16s %s\n", "rank", "GPU order", "iteration (s)", "max uplink use");
    for (int i = 0; i < p.n && i < 5; i++) {
      char ord[128];
      printf("  %-4d %-24s %-16.6g %.3f\n", i + 1, fmt_order(ord, sizeof ord, p.c[i].order, G),
             p.c[i].time, p.c[i].uplink);
    }
    printf("  best: \"mapping\": [");
    for (int k = 0; k < S; k++) printf("%s%d", k ? ", " : "", p.c[0].order[k % G]);
    printf("]\n  outputs          %s/{place.csv,summary.json,timeline.csv,trace.json,gantt.svg,report.html}\n",
           dir);
  }
  ts_outcome_free(&best);
out_cands:
  for (int i = 0; i < p.n; i++) free(p.c[i].order);
  free(p.c);
out_job:
  ts_job_free(job);
  return rc;
}
