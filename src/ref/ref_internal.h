/*
** ref_internal.h: the reference executor's own state, shared by its files
** (ts_ref.c: the run and its set-up; ref_exec.c: the executor operations,
** threads, synchronisation and deadlock detection; ref_versions.c: weight
** versions; ref_coll.c: the communication streams and the collectives'
** payloads and the region walk; ref_dp.c: data parallelism's units,
** optimizer step, ZeRO slices and release; ref_tp.c, ref_tp_sp.c,
** ref_tp2d.c: tensor (1D, 2D) and sequence parallelism's sharded pieces;
** ref_oracle.c: the one-thread
** oracles; ref_twin.c: the
** synthetic twin job).  Not part of the public interface (ts_ref.h).
**
** What the executor models: a pipeline-parallel training iteration as it
** really runs.  One POSIX thread per device runs the schedule program
** through the runtime front-end (src/runtime/); each compute op is the float64 math of
** ref_model.c on the device's own model clone; a send copies the tensor
** into a new buffer and drops it into the receiver's inbox.  What it
** measures is what the simulator predicts: op start and end times
** (CLOCK_MONOTONIC), the order of each device's ops, and each device's
** stashed activation bytes (its ts_ref_mem_t).
**
** Assumptions and choices:
** - Synchronisation is one global mutex (every device's lock() takes it) and
**   one condition variable per wait slot: slot d for device d's program,
**   slot (1 + s) n + d for its communication stream s (ts__stream_slot),
**   a thread of its own started by the stream's first collective
**   (spawn_comm) that runs ts__rt_comm_main.  A send copies outside the mutex and
**   delivers under it, so a message is either absent or complete; there are
**   no messages in flight, which is what makes deadlock detection exact:
**   the number of running contexts (program and stream threads started, not
**   waiting, not ended) is kept under the mutex; wait() takes the context
**   off, notify() puts the context it wakes back on (on the waker's side, so
**   a woken context that has not run yet still counts), and when the count
**   reaches 0 with a device unfinished (or a stream not ended) nobody can
**   ever send again: a deadlock.  The waiting threads
**   then leave through pthread_exit from inside wait() (the front-end's wait
**   loops only end on arrival or failure), with their "waiting for" text
**   still set, and ts__world_finish reports them.
** - A collective step's payload (ref_coll.c) is the slice of the device's
**   buffer (ts_ref.h: the gradients or weights of the replicated parts it
**   holds), copied on the sending stream into a FIFO per (sender, receiver)
**   under the mutex before the runtime delivers the step, and added or
**   copied into the receiver's slice by the receiving stream after the
**   runtime consumed it.  A device's buffer is touched only by its stream
**   while a collective runs (the program started it after its compute and
**   waits for it before the next), so the arrays need no lock.
** - Executor errors (out of memory) cannot stop the front-end, so after one
**   every later op is skipped (messages still flow, empty) and ts_ref_run
**   returns the error when the program is done.
** - Threads are pinned one per allowed core when there are enough cores, so
**   that timing noise comes from the math, not from migrations.
** - Memory behaves like a GPU framework's caching allocator: the process
**   gets one malloc arena, no trimming and mmap only above 32 MiB
**   (ts_ref_allocator_setup), and before the clock starts the run touches
**   about as much heap as its devices can hold at once, so compute ops do
**   not pay for page faults (on a 2-core VM the faults of a fresh 9.4 MB
**   stash cost a third of a 70 ms forward) and an op takes the same time
**   whether or not it is the first to reach a given amount of memory.
** - The tables of a device (stashes, outputs waiting to be sent, inbox)
**   are indexed by (local virtual stage, micro-batch); only the inbox is
**   shared, and only under the mutex.
** - Weight versions (ts_ref.h) are per virtual stage: V full model clones
**   of which the stage uses its own blocks, touched only by its device's
**   thread, so they need no lock.  The gradients of iteration t accumulate
**   in the clone of the version it computes with; the update adds them to
**   the device model's gradients (the run's sum, gathered at the end) and
**   reuses that clone for W(t + 1).
*/
#ifndef TS_REF_INTERNAL_H
#define TS_REF_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "ts_moe.h"
#include "ts_executor.h"
#include "ts_ref.h"

enum { SLOT_ACT = 0, SLOT_GRAD = 1 };

struct ref_x;

/* One wait slot: a condition and whether its context waits (under x->mu). */
typedef struct ref_wake {
  pthread_cond_t cond;
  int waiting;
} ref_wake_t;

typedef struct ref_dev {
  struct ref_x *x;
  int id;
  int cpu;                  /* pinned core, or -1 */
  pthread_t thread;
  int started;              /* thread created (joined at the end) */
  ref_wake_t wake[1 + TS_STREAMS]; /* slots d (program) and (1 + s) n + d
                            ** (stream s) */
  int finished;             /* under x->mu */
  pthread_t comm_thread[TS_STREAMS]; /* the communication streams (spawn_comm) */
  int comm_started[TS_STREAMS]; /* under x->mu; started: joined at the end */
  int comm_running;         /* under x->mu: streams started and not ended */
  ts_ref_model_t *model;    /* own clone: parameters read, gradients summed */
  ts_ref_mem_t mem;         /* stashed activation bytes */
  int n_local;              /* virtual stages of this device */
  ts_ref_stash_t **stash;   /* [n_local * M] */
  /* [n_local * M] split backwards (ZB-H1): what the input-gradient half
  ** leaves for the weight-gradient half, counted in mem until it runs */
  struct ref_wg_hold { void *p; size_t bytes; } *wg_hold;
  double **out;             /* [2 * n_local * M] y of forwards, dx of backwards */
  double **inbox;           /* [2 * n_local * M] received; under x->mu */
  int lane;                 /* its data lane: EP coordinate + EP x DP one */
  struct ts__ref_moe_op **moe; /* [n_local * M] MoE ops in flight (MoE jobs) */
  /* Data parallelism (ref_dp.c): its units, the layers of the parts it
  ** holds in cost-row order (ts_unit_t), and the experts of its EP rank. */
  int n_units, *unit_layer; /* [n_units] model layer of each unit */
  int e_lo, e_n;            /* its experts: e_lo .. e_lo + e_n - 1 */
  struct ts__ref_tp *tp;    /* tensor parallelism (ref_tp.c); NULL when t = 1 */
  /* The slices it owns (ZeRO): those of its gradients after a
  ** reduce-scatter (coll_end) and those of its weights the optimizer
  ** updated; under own_mu (the stream's hooks may run under x->mu).
  ** ts_ref.c assembles the run's results from them. */
  struct ref_own { ts_coll_buf_t buf; int unit_lo, unit_hi, shard, n_shards; } *own;
  int n_own, cap_own;
  pthread_mutex_t own_mu;
  int own_mu_init;
} ref_dev_t;

/* The weight versions of one virtual stage in a versioned run (ts_ref.h);
** touched only by the thread of the stage's device.  Version W(k) lives in
** slot k mod V (k >= -d: W(-d) .. W(-1) are copies of W(0)); its gradient
** accumulator collects the gradients of iteration k + d, the only iteration
** that computes with it, until the update of that iteration reuses the
** slot for W(k + d + 1) = W(k + d) - lr x those gradients. */
typedef struct ref_stage {
  ts_ref_model_t **slot;    /* [V] full clones; only this stage's blocks used */
  int newest;               /* W(newest) is the newest version */
  int *bwd;                 /* [iterations] backwards done, per iteration */
  int *inflight;            /* [iterations] forwards whose backward is to come */
  int peak_live;            /* most versions live at once */
} ref_stage_t;

typedef struct ref_x {
  const ts_job_t *job;
  const ts_layout_t *lay;
  const ts_cost_t *cost;
  ts_world_t *w;
  ts_ref_config_t cfg;
  int n, M, mbs;
  size_t n_el;              /* doubles of one activation: mbs x seq x hidden */
  double N;                 /* samples in the batch (loss normaliser) */
  const double *X, *T;      /* [M x n_el] inputs and targets */
  int *loc;                 /* [n_vstages] index among its device's stages */
  struct timespec t0;
  pthread_mutex_t mu;
  int running, deadlock, aborted; /* under mu: running contexts (programs
                            ** and streams), deadlock declared, run aborted */
  int comm_err, comm_err_dev; /* under mu: a stream thread could not start */
  ts_ref_model_t *host;     /* host memory (schedules with host_weights):
                            ** master parameters, written-back gradients */
  atomic_int fatal;         /* an executor error happened: skip the math */
  int fatal_code;           /* under mu */
  char fatal_msg[512];      /* under mu */
  ref_dev_t *dev;
  /* Versioned runs (iterations > 1): */
  int versioned, V, d, I;   /* versions declared, staleness V - 1, iterations */
  ref_stage_t *stg;         /* [n_vstages], NULL when not versioned */
  /* Data lanes (EP x DP) and MoE: */
  const ts_plan_t *plan;
  int lanes;                /* micro-batch mb of lane r reads batch entry r M + mb */
  struct ref_msg **fifo;    /* [2 x n x n] all-to-all payloads per (combine,
                            ** sender, receiver): heads; under mu */
  long *expert_rows;        /* [n x n_moe_layers x M] rows each device's experts
                            ** computed (NULL: dense) */
  struct ref_cq *cq;        /* [TS_STREAMS x n x n] collective payloads per
                            ** (stream, sender, receiver), index (stream x n +
                            ** sender) x n + receiver; under mu */
} ref_x_t;

/* ---- small helpers ------------------------------------------------------- */

/* Index of (v, mb) in a device's per-stage tables. */
static inline size_t ts__ref_cell(const ref_x_t *x, int v, int mb) {
  return (size_t)x->loc[v] * (size_t)x->M + (size_t)mb;
}

/* Index of (slot, v, mb) in a device's out and inbox tables. */
static inline size_t ts__ref_slot_cell(const ref_x_t *x, const ref_dev_t *dv, int slot, int v,
                                       int mb) {
  return (size_t)slot * (size_t)dv->n_local * (size_t)x->M + ts__ref_cell(x, v, mb);
}

/* Takes the buffer out of *p (leaving NULL); the caller owns it. */
static inline double *ts__ref_take(double **p) {
  double *b = *p;
  *p = NULL;
  return b;
}

/* Takes the array out of *p (leaving NULL); the caller owns it. */
static inline long *ts__ref_take_long(long **p) {
  long *b = *p;
  *p = NULL;
  return b;
}

/* ---- ref_exec.c ------------------------------------------------------------ */

/* The executor operations of the reference executor (ts_exec_ops_t). */
extern const ts_exec_ops_t ts__ref_ops;
/* The global mutex, with a per-thread note that this thread holds it. */
void ts__ref_lock(ref_x_t *x);
void ts__ref_unlock(ref_x_t *x);
/* Records the first executor error (later ones are dropped); later ops are
** skipped.  Callable with or without the mutex. */
void ts__ref_fatal(ref_x_t *x, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Seconds of CLOCK_MONOTONIC since the run began (xd: the ref_x_t). */
double ts__ref_now(void *xd);
/* Under the mutex: declares a deadlock when no device runs and one is
** unfinished. */
void ts__ref_check_deadlock(ref_x_t *x);
/* Fills blocks [first, first + count) of m with NaN. */
void ts__ref_poison_blocks(ts_ref_model_t *m, int first, int count);
/* Thread body of one device (arg: its ref_dev_t). */
void *ts__ref_device_main(void *arg);

/* ---- ref_coll.c: communication streams and collective payloads ----------- */

/* The executor hooks spawn_comm, coll_pack and coll_apply (ts_exec_ops_t). */
void ts__ref_spawn_comm(void *xd, int device, int stream);
void ts__ref_coll_pack(void *xd, int device, const ts_coll_step_t *st);
void ts__ref_coll_apply(void *xd, int device, const ts_coll_step_t *st);
/* Allocates x->cq (x->n set).  Returns 0 or EX_OSERR. */
int ts__ref_coll_setup(ref_x_t *x);
/* Frees every queued payload and x->cq; accepts a NULL x->cq. */
void ts__ref_coll_free(ref_x_t *x);
/* Joins the stream threads that were started. */
void ts__ref_coll_join(ref_x_t *x);
/* Modes of ts__ref_walk: read the slice into flat, add flat into it, copy
** flat over it, add alpha x flat into it, set it to alpha. */
enum { TS__REF_READ = 0, TS__REF_ADD, TS__REF_COPY, TS__REF_AXPY, TS__REF_FILL };
/* Walks the region [unit_lo, unit_hi) of device d's buffer buf (ts_ref.h;
** unit_hi < 0: all its units) in model m (NULL: the device's own) over the
** elements [lo, hi) of the region with the given mode (flat: [hi - lo]
** doubles, unused by TS__REF_FILL); returns the region's length N.
** lo = hi = 0 only sizes it.  Units out of range are skipped. */
size_t ts__ref_walk(ref_x_t *x, int d, ts_ref_model_t *m, ts_coll_buf_t buf, int unit_lo,
                    int unit_hi, size_t lo, size_t hi, double *flat, int mode, double alpha);
/* Slice k of n of N elements: [k N / n, (k + 1) N / n). */
static inline void ts__ref_slice(size_t N, int k, int n, size_t *lo, size_t *hi) {
  *lo = n > 0 ? (size_t)k * N / (size_t)n : 0;
  *hi = n > 0 ? (size_t)(k + 1) * N / (size_t)n : N;
}
/* The wait slot of slot number slot (0 .. (1 + TS_STREAMS) n - 1). */
static inline ref_wake_t *ts__ref_wake(ref_x_t *x, int slot) {
  return &x->dev[slot % x->n].wake[slot / x->n];
}

/* The input of a forward of (v, mb): the batch entry of the device's lane
** for the first stage, else the activation taken from the device's own
** output table or its inbox (*owned: that buffer, the caller frees it). */
const double *ts__ref_fwd_input(ref_x_t *x, ref_dev_t *dv, int v, int mb, double **owned);
/* The output gradient of a backward of (v, mb), owned by the caller: the
** loss gradient of the stage's own output on the last stage, else taken
** from the output table or the inbox; NULL when missing. */
double *ts__ref_bwd_dy(ref_x_t *x, ref_dev_t *dv, int v, int mb);

/* ---- ref_dp.c: data parallelism ------------------------------------------- */

/* The executor hooks optimizer, coll_end and release (ts_exec_ops_t). */
void ts__ref_optimizer(void *xd, int device, int it, int n, const ts_region_t *r, double bytes);
void ts__ref_coll_end(void *xd, int device, const ts_coll_step_t *st);
void ts__ref_release(void *xd, int device, const ts_region_t *r);
/* Fills every device's units and experts (x->plan, lay, cost, dev set).
** Returns 0 or EX_OSERR. */
int ts__ref_dp_setup(ref_x_t *x);
/* Checks device d's units against the runtime's (ts__rt_units: the same
** layers in the same order); a difference is an executor error. */
void ts__ref_dp_check(ref_x_t *x, int d);
/* Frees what ts__ref_dp_setup and the hooks allocated. */
void ts__ref_dp_free(ref_x_t *x);
/* Overlays on g the slices the devices own (ZeRO): gradients after their
** reduce-scatters (params 0), weights after the optimizer's update
** (params 1).  Returns 0 or EX_OSERR. */
int ts__ref_dp_assemble(ref_x_t *x, ts_ref_model_t *g, int params);

/* ---- ref_moe_exec.c: MoE ops and their all-to-alls ------------------------ */

/* The executor hooks moe_compute, a2a_pack and a2a_apply (ts_exec_ops_t). */
void ts__ref_moe_compute(void *xd, int device, ts_kind_t kind, int v, int mb, int piece,
                         double flops, double seconds);
void ts__ref_a2a_pack(void *xd, int device, const ts_a2a_msg_t *m);
void ts__ref_a2a_apply(void *xd, int device, const ts_a2a_msg_t *m);
/* Frees the MoE ops left on device dv and every queued payload. */
void ts__ref_moe_free(ref_x_t *x);
/* Fills g's MoE gradients (params 0) or weights (params 1) from the
** devices: a gate's from first[l], the first device holding layer l, an
** expert's from a device of its lane. */
void ts__ref_moe_gather(ref_x_t *x, ts_ref_model_t *g, const int *first, int params);

/* ---- ref_tp.c: tensor parallelism ---------------------------------------- */

typedef struct ts__ref_tp ref_tp_t;
/* Allocates every device's TP state when tensor_parallel > 1 (x->dev,
** plan, cfg, n_local set).  Returns 0 or EX_OSERR (ts__ref_tp_free frees
** what was allocated). */
int ts__ref_tp_setup(ref_x_t *x);
/* Frees the TP states and the stashes left in them. */
void ts__ref_tp_free(ref_x_t *x);
/* Runs the next TP piece of op (kind, v, mb) on device dv (x_compute). */
void ts__ref_tp_compute(ref_x_t *x, ref_dev_t *dv, ts_kind_t kind, int v, int mb);
/* The executor hook tp_prepare (ts_exec_ops_t): sequence parallelism's
** work before a TS_BUF_TP collective (ref_tp_sp.c). */
void ts__ref_tp_prepare(void *xd, int device, ts_kind_t kind, int v, int mb, ts_coll_op_t op,
                        int slot);
/* coll_end of a TS_BUF_TP collective on device: after the op's last one,
** forms its output (or input gradient). */
void ts__ref_tp_coll_end(ref_x_t *x, int device);
/* The TS_BUF_TP buffer of device d (*n doubles), under 2d its slot
** (ref_tp2d.c); NULL without TP. */
double *ts__ref_tp_buf(ref_x_t *x, int d, int slot, size_t *n);
/* 2d: before a step of a TS_BUF_TP chain is packed or applied on device,
** computes what the step's slot holds when its content depends on an
** earlier chain of the same GEMM (a reduce's partial, the dA a broadcast
** carries); no-op otherwise.  On the device's stream. */
void ts__ref_tp2d_touch(ref_x_t *x, int device, const ts_coll_step_t *st);
/* 2d: 1 when slot is a reduce chain's (its members add what they receive). */
int ts__ref_tp2d_reduces(ref_x_t *x, int device, int slot);
/* The gradient arrays of layer l of model m (device d's) that its TP sync
** group all-reduces (TS_BUF_TP_GRADS; trainsim.h ts_cost_tp_sync_bytes):
** with sequence parallelism the two LayerNorms' gains and biases and b_o,
** b_2; in 2d the LayerNorms and the device's grid column's block of every
** bias.  Writes at most TS__REF_TP_SYNC_SEGS (pointer, length) pairs in
** that order; returns their count (0: none). */
#define TS__REF_TP_SYNC_SEGS 12
int ts__ref_tp_sync_segs(ref_x_t *x, int d, ts_ref_model_t *m, int l, double **seg,
                         size_t *len);
/* Copies into g the shards of the TP ranks other than that of first[l]
** (the device whose values g holds) of every block: gradients (params 0)
** or weights (params 1). */
void ts__ref_tp_assemble(ref_x_t *x, ts_ref_model_t *g, const int *first, int params);

/* ---- ref_versions.c ---------------------------------------------------------- */

/* Slot of weight version k among the V of a stage. */
int ts__ref_vslot(const ref_x_t *x, int k);
/* The model micro-batch mb computes with on virtual stage v (the device's
** own model without versions); NULL after recording the executor error
** when that version is not computed yet.  op names the op in the error. */
ts_ref_model_t *ts__ref_stage_model(ref_x_t *x, ref_dev_t *dv, int v, int mb, const char *op);
/* Bookkeeping after a versioned forward (backward 0) or backward of mb on
** v: in-flight counts, due updates, the live-version check.  No-op without
** versions. */
void ts__ref_versions_after(ref_x_t *x, ref_dev_t *dv, int v, int mb, int backward);

/* ---- ref_oracle.c ------------------------------------------------------------ */

/* The batch's inputs and targets: M micro-batches of mbs samples each,
** drawn from seeds c->seed + 1 (X) and c->seed + 2 (T).  Returns 0 and
** two malloc'd arrays (caller frees), or EX_OSERR with both NULL. */
int ts__ref_make_data(const ts_ref_config_t *c, int M, int mbs, double **X, double **T);

#endif /* TS_REF_INTERNAL_H */
