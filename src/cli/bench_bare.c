/*
** bench_bare.c: the bare SimGrid loop that `trainsim bench` measures
** trainsim against (README "Results and benchmark").
**
** It runs the benchmark job's 1F1B pattern with nothing of trainsim's
** runtime, checks or outputs: one actor per stage on the job's platform
** (the hosts in trainsim's order: sorted by name, memory endpoints left
** out), trainsim's SimGrid configuration (ts_sim_cfg), each op an exec of
** the op's seconds from the same cost model (GEMM curve, peak and memory
** bandwidth of the host, as the SimGrid executor computes them), each
** activation and gradient a detached put on a mailbox per edge whose
** receiver is set, so the transfer starts at put time (as trainsim's
** always-posted receives do), and a get by the receiving stage.  Nothing
** is recorded or written.  `trainsim bench` runs it as a process of its
** own (itself, with TRAINSIM_BENCH_BARE naming the job), so that both
** sides pay the same start-up: loading the program, the job and its cost
** model.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <simgrid/actor.h>
#include <simgrid/comm.h>
#include <simgrid/engine.h>
#include <simgrid/exec.h>
#include <simgrid/host.h>
#include <simgrid/mailbox.h>

#include "trainsim.h"
#include "ts_bench_int.h"
#include "ts_exec.h"
#include "ts_gemm.h"
#include "ts_sim.h"

typedef struct bare {
  int p, m;
  const ts_cost_t *cost;
  const ts_layout_t *lay;
  sg_host_t *host;          /* [p] */
  sg_mailbox_t *act, *grad; /* [p]: into stage s (act from s - 1, grad from s + 1) */
} bare_t;

static bare_t B;
static int token; /* the payload every put carries (SimGrid refuses NULL) */

static double prop(sg_host_t h, const char *name) {
  const char *v = sg_host_get_property_value(h, name);
  return v ? strtod(v, NULL) : 0;
}

/* The exec amount of stage s's op of kind, as ts_sim.c's x_compute has it. */
static double amount(int s, ts_kind_t kind) {
  sg_host_t h = B.host[s];
  const ts_op_work_t *wk = &B.cost->part[B.lay->part[s]].work[kind];
  const char *cn = sg_host_get_property_value(h, "gemm_curve");
  const ts_gemm_curve_t *c = cn ? ts_gemm_curve(cn) : NULL;
  if (c && wk->flops > 0)
    return ts_gemm_op_seconds(c, prop(h, "peak_flops"), prop(h, "memory_bandwidth"), wk) *
           sg_host_get_speed(h);
  return wk->flops;
}

static void put(sg_mailbox_t mb, double bytes) {
  sg_comm_detach(sg_mailbox_put_init(mb, &token, (long)bytes), NULL);
}

static void stage(int argc, char **argv) {
  (void)argc, (void)argv;
  int s = (int)(intptr_t)sg_actor_self_get_data(), p = B.p, m = B.m;
  double fa = amount(s, TS_FORWARD), ba = amount(s, TS_BACKWARD);
  double act = B.cost->part[B.lay->part[s]].msg_bytes;
  double grad = s > 0 ? B.cost->part[B.lay->part[s - 1]].msg_bytes : 0;
  int warmup = p - s - 1 < m ? p - s - 1 : m, f = 0, b = 0;
  /* Transfers into this stage start at put time (the receiver is set). */
  sg_mailbox_set_receiver(sg_mailbox_get_name(B.act[s]));
  sg_mailbox_set_receiver(sg_mailbox_get_name(B.grad[s]));
  for (int i = 0; i < 2 * m; i++) {
    /* Warm-up forwards, then one forward and one backward, then the rest. */
    bool fwd = f < warmup || (f < m && (f - warmup) == b);
    if (fwd) {
      if (s > 0) sg_mailbox_get(B.act[s]);
      sg_actor_execute(fa);
      if (s < p - 1) put(B.act[s + 1], act);
      f++;
    } else {
      if (s < p - 1) sg_mailbox_get(B.grad[s]);
      sg_actor_execute(ba);
      if (s > 0) put(B.grad[s - 1], grad);
      b++;
    }
  }
}

static int host_cmp(const void *a, const void *b) {
  return strverscmp(sg_host_get_name(*(const sg_host_t *)a), sg_host_get_name(*(const sg_host_t *)b));
}

/* Runs the loop; 0 on success. */
static int bare_child(const ts_job_t *job, const ts_layout_t *lay, const ts_cost_t *cost) {
  int argc = 1;
  char *argv[16] = {"trainsim-bare"};
  for (int i = 0; ts_sim_cfg[i]; i++) argv[argc++] = (char *)ts_sim_cfg[i];
  argv[argc] = NULL;
  simgrid_init(&argc, argv);
  simgrid_load_platform(job->platform);
  size_t nh = sg_host_count(), kept = 0;
  sg_host_t *hosts = sg_host_list();
  for (size_t i = 0; i < nh; i++)
    if (!sg_host_get_property_value(hosts[i], "memory_endpoint")) hosts[kept++] = hosts[i];
  qsort(hosts, kept, sizeof *hosts, host_cmp);
  B = (bare_t){job->stages, job->microbatches, cost, lay, hosts, NULL, NULL};
  if ((size_t)B.p > kept) return 1;
  B.act = calloc((size_t)B.p, sizeof *B.act);
  B.grad = calloc((size_t)B.p, sizeof *B.grad);
  for (int s = 0; s < B.p; s++) {
    char name[64];
    snprintf(name, sizeof name, "act:%d", s);
    B.act[s] = sg_mailbox_by_name(name);
    snprintf(name, sizeof name, "grad:%d", s);
    B.grad[s] = sg_mailbox_by_name(name);
  }
  for (int s = 0; s < B.p; s++) {
    char name[32];
    snprintf(name, sizeof name, "stage%d", s);
    sg_actor_t a = sg_actor_init(name, hosts[s]);
    sg_actor_set_data(a, (void *)(intptr_t)s);
    sg_actor_start_(a, stage, 0, NULL);
  }
  simgrid_run();
  return 0;
}

int ts__bench_bare_main(const char *path) {
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  ts_outcome_t o;
  if (ts_job_load(path, NULL, 0, &job, &err) || ts_exec_prepare(job, NULL, &o, &err)) {
    fprintf(stderr, "trainsim: error: %s\n", err.msg);
    ts_job_free(job);
    return err.code ? err.code : 70;
  }
  return bare_child(job, o.layout, o.cost) ? 70 : 0; /* the process exits next */
}
