/*
** sim_internal.h: the SimGrid executor's own state, shared by its files
** (ts_sim.c: executor operations, actors, and the fork that runs a
** simulation in a child process; sim_setup.c: the child's set-up of the
** platform, devices, overrides and edges, and the link traffic it reports).
*/
#ifndef TS_SIM_INTERNAL_H
#define TS_SIM_INTERNAL_H

#include <simgrid/actor.h>
#include <simgrid/host.h>
#include <simgrid/link.h>
#include <simgrid/mailbox.h>
#include <simgrid/semaphore.h>

#include "platform_check.h"
#include "ts_executor.h"
#include "ts_sim.h"

typedef struct sim_msg {
  int from, kind, to, mb;
  double bytes, t_put;
  int dest;  /* the device it is delivered to: the edge's receiver, or under
             ** symmetry folding that receiver's representative */
  double extra; /* seconds its receiving daemon waits before delivering it:
                ** the latencies of the ring steps a merged message stands
                ** for (ts_exec_ops_t.send_steps), else 0 */
} sim_msg_t;

typedef struct sim_edge {
  int kind, from, to;
  sg_mailbox_t mbox;
  struct sim_x *x;
  double lat;      /* route latency from -> to, once lat_known */
  int lat_known;
} sim_edge_t;

typedef struct sim_dev {
  sg_host_t host;
  sg_host_t dram;  /* its host memory (schedules with host_weights) */
  double memory;   /* memory_bytes, 0 unknown */
  double mem_bw;   /* memory_bandwidth in B/s, 0 unknown (the optimizer step
                   ** then takes no time) */
  double factor;  /* speed override factor */
  const struct ts_gemm_curve *curve; /* host property gemm_curve, or NULL:
                                     ** compute takes flops / speed */
  double peak;     /* peak_flops, 0 unknown (the curve's own then) */
  const struct ts_op_work *op_wk[TS_COMPUTE_KINDS]; /* the last op work of each kind and */
  double op_s[TS_COMPUTE_KINDS];                    /* its seconds on the curve (x_compute) */
  sg_actor_t actor;
  sg_sem_t wake[1 + TS_STREAMS]; /* wait() blocks on it: [0] the program,
                     ** [1 + s] communication stream s */
  int waiting[1 + TS_STREAMS]; /* blocked in wait() */
  int n_out;
  sim_edge_t **out;
} sim_dev_t;

/* Host-pair routes, cached (sim_route.c). */
typedef struct sim_routes sim_routes_t;

typedef struct sim_x {
  ts_world_t *w;
  const ts_cost_t *cost;    /* the op work of GEMM-curve hosts */
  const ts_layout_t *lay;
  int n;
  sim_dev_t *dev;
  int n_edges;
  sim_edge_t *edges;
  int *domain;              /* [n] NVLink domains (ts_sim.c), NULL until asked */
  const ts_plan_t *plan;
  int *fold;                /* symmetry folding (sim_fold.c): each device's
                            ** representative; NULL: every device runs */
  ts_platform_t *pc;        /* the checker's reading of the platform (NULL:
                            ** the ideal one) */
  sim_routes_t *routes;     /* route look-ups (sim_route.c) */
} sim_x_t;

/* Route look-ups after the platform is loaded (sim_route.c): pc, the
** checker's reading of it (NULL is fine), lets one-Dijkstra-zone platforms
** be routed without SimGrid's search.  ts__sim_route gives the links of
** the route from host a to host b (a != b; routes exist once the platform
** is sealed), in sg_host_get_route's order, *n of them; the array stays
** valid until a look-up of a pair not asked before. */
sim_routes_t *ts__sim_routes_new(const ts_platform_t *pc);
const sg_link_t *ts__sim_route(sim_routes_t *r, sg_host_t a, sg_host_t b, int *n);
/* Whether the routes still come from platforms/platform_route.c. */
bool ts__sim_routes_own(const sim_routes_t *r);
void ts__sim_routes_free(sim_routes_t *r);


/* The executor operations and the actors (ts_sim.c). */
extern const ts_exec_ops_t ts__sim_ops;
void ts__sim_device_actor(int argc, char **argv);
void ts__sim_edge_actor(int argc, char **argv);

/* In the forked child (sim_setup.c): loads the platform, places the
** devices, runs the simulation and fills run (events, devices, links) or
** err. */
int ts__sim_child(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
                  const ts_cost_t *cost, ts_run_t *run, ts_err_t *err);

/* Progress for the parent's watchdog (sim_setup.c): in the child,
** ts__sim_progress writes one byte to ts__sim_progress_fd (non-blocking;
** -1: no watchdog) at most every ts__sim_progress_every seconds.  The
** simulation calls ts__sim_tick as it computes, sends and delivers: one
** call in 16 reads the clock (calls are microseconds apart, a large
** platform's solve milliseconds; reading the clock at every call took 2%
** of the benchmark's run). */
extern int ts__sim_progress_fd;
extern double ts__sim_progress_every;
extern unsigned ts__sim_ticks;
void ts__sim_progress(void);
static inline void ts__sim_tick(void) {
  if (!(++ts__sim_ticks & 15)) ts__sim_progress();
}

/* Symmetry folding (sim_fold.c, README "Symmetry folding").  The class
** map when the plan folds and the platform keeps its symmetry (malloc'd),
** else NULL (ts_sim_exact, nothing to fold, or an asymmetric platform:
** then ts__sim_fold_note says why, for stderr). */
/* The NVLink domain of device (host property nvlink_domain, else node; -1:
** neither), numbered in order of first appearance (ts_exec_ops_t.domain). */
int ts__sim_domain(void *xd, int device);
int *ts__sim_fold_setup(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
                        const sim_x_t *x);
extern char ts__sim_fold_note[1024];
/* The child prints a note on the parent's stderr (ts__sim_stderr, a copy
** taken before its own stderr went to the log) as soon as it knows, unless
** this process printed one already (ts__sim_noted, inherited at fork and
** set by the parent when a result carries a note). */
extern int ts__sim_stderr;
extern bool ts__sim_noted;
void ts__sim_note(const char *note);
/* At a send from *from to *dest (a folded device): the message goes to
** *dest's representative, from the sender's image, its vstage mapped. */
void ts__sim_fold_send(const sim_x_t *x, int *from, int *dest, int kind, int *vstage);
/* After the run: every transfer event becomes its representative's send. */
void ts__sim_fold_events(const sim_x_t *x, ts_run_t *run);
/* The routes of a folded run's transfers over their classes: for the
** representative's send a -> b, every class member's image of it.  Built
** after ts__sim_fold_events, with each link's data set to its 1-based
** index in sg_link_list (link_traffic); ts__sim_fold_route gives the
** indices (repeats where members' routes share a link) and their count. */
typedef struct sim_fold_routes sim_fold_routes_t;
sim_fold_routes_t *ts__sim_fold_routes(const sim_x_t *x, const ts_run_t *run);
const int *ts__sim_fold_route(const sim_fold_routes_t *r, int a, int b, int *n);
void ts__sim_fold_routes_free(sim_fold_routes_t *r);

#endif
