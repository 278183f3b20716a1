/*
** ts_runtime.h: the runtime interface that schedule programs are written
** against (the executor interface behind it is ts_executor.h).
**
** A schedule (schedules/NAME.c) is an actor program: ts_schedule_t.program
** runs once per device, on its own actor (SimGrid) or thread (reference
** executor), and calls only the ts_rt_* functions below.  It never sees
** tensors, times or bytes: the runtime looks those up in the cost model
** (simulator) or does the real math (reference executor).
**
** Communication model.  Every device receives eagerly: a message starts to
** travel as soon as it is sent (ts_rt_send returns at once, like an isend
** whose buffer the runtime owns), one transfer at a time per (kind, sender,
** receiver) edge, in send order.  ts_rt_recv blocks until the message is
** there; ts_rt_arrived polls without blocking; ts_rt_wait_any blocks until
** any new message arrives (for opportunistic schedulers such as Varuna).
** Compute is one stream per device: ts_rt_compute blocks for the op's
** duration, so communication overlaps compute and compute never overlaps
** compute.
**
** The runtime checks the program: a backward before its forward, a forward
** whose input has not arrived, or an op run twice is an error that stops
** the run.  So is a device that ends while a peer still waits for it
** (deadlock), which is reported with what each blocked device waited for.
*/
#ifndef TS_RUNTIME_H
#define TS_RUNTIME_H

#include "trainsim.h"

typedef struct ts_rt ts_rt_t;

/* What a schedule program may read about the job and its own device. */
typedef struct ts_ctx {
  int device;        /* this device, 0..n_devices-1 */
  int n_devices;
  int stages;        /* p */
  int microbatches;  /* m */
  int chunks;        /* v */
  int iterations;
  ts_recompute_t recompute;
  const ts_layout_t *layout; /* = plan->layout */
  const ts_plan_t *plan;
  int n_local;       /* virtual stages held by this device */
  const int *local;  /* [n_local] their indices, ascending */
  const ts_job_t *job; /* the job (schedule "table" reads job->table) */
} ts_ctx_t;

/* A schedule: one file in schedules/, one line in schedules/registry.h. */
typedef struct ts_schedule {
  const char *name;   /* job file's "schedule" value */
  const char *title;  /* e.g. "1F1B (PipeDream-Flush / DAPPLE)" */
  /* Optional: checks the schedule's rules (divisibility, counts).  Returns
  ** 0 or EX_DATAERR with a message naming the job file and the field. */
  int (*check)(const ts_job_t *job, ts_err_t *err);
  /* Optional: the pipeline rule: the virtual stages of one pipeline over
  ** its positions (layout->n_devices of them); NULL means
  ** ts_layout_linear(stages, chunks).  The plan (ts_plan_for_job)
  ** replicates it over the other parallel dimensions. */
  ts_layout_t *(*pipeline)(const ts_job_t *job);
  /* The actor program, run once per device. */
  void (*program)(ts_rt_t *rt);
  /* Weight versions each stage keeps (PipeDream-2BW: 2); 0 means 1. */
  int weight_versions;
  /* 1: the model's weights live in host memory (Mobius): a compute op
  ** needs its stage's weights fetched (ts_rt_fetch), a backward needs a
  ** gradient buffer, and every stage's gradients must be written back
  ** (ts_rt_offload) before the program ends.  Optimizer states stay in
  ** host memory: the device holds no static weights, gradients or
  ** optimizer bytes. */
  int host_weights;
  /* host_weights schedules: the job's mapping when it names none
  ** ("cross", "block", ...; "cross" falls back to "sequential" when the
  ** devices do not split into mapping_groups groups). */
  const char *default_mapping;
  /* 1: the program runs model.moe's MoE layers (ts_rt_moe_*); a model with
  ** model.moe needs such a schedule. */
  int moe;
  /* What a job needs to be valid for this schedule and to exercise what
  ** sets it apart: `--set PATH=VALUE` strings, NULL-terminated (NULL: none),
  ** applied to a plain job (a dense transformer, one chunk, one iteration,
  ** recompute "none", devices = stages).  The conformance suite
  ** (tests/test_conformance.c) runs every registered schedule with them. */
  const char *const *requires;
  /* 1: the program sums the gradients of replicated parameters itself
  ** with ts_rt_coll_* (programs that test collectives); the runtime then
  ** starts no gradient collectives of its own (README "Data parallelism":
  ** otherwise it does, for every schedule). */
  int own_grad_sync;
  /* 1: the program picks its next op from the messages that have arrived
  ** (ts_rt_arrived, ts_rt_wait_any: Varuna, Chimera), so a device's op
  ** order follows the op and message times: executors agree on each
  ** device's ops, not necessarily on their order, and runs of the
  ** reference executor (real time) may differ from each other. */
  int order_by_arrival;
  /* 1: the program runs the job's table (job->table, README "Schedules from
  ** a file"): commands that try every schedule on a job (compare) leave
  ** the schedule out when the job names no table. */
  int needs_table;
  /* `trainsim compare`'s adjustments, in order, ended by an entry with set
  ** NULL (the field NULL: none): compare runs the schedule with set
  ** ("PATH=VALUE"; PATH chunks, iterations or recompute) when the job's
  ** value at PATH is not VALUE already (when NULL), or only when it is
  ** when (e.g. interleaved: "chunks=2" when "1"). */
  const struct ts_sched_set {
    const char *set;
    const char *when;
  } *compare_sets;
} ts_schedule_t;

/* Registry lookups: NULL when unknown. */
const ts_schedule_t *ts_schedule_find(const char *name);
/* The i-th registered schedule, NULL past the end. */
const ts_schedule_t *ts_schedule_at(int i);

/* ---- calls for schedule programs ---------------------------------- */

const ts_ctx_t *ts_rt_ctx(ts_rt_t *rt);
/* Runs a compute op of this device (blocks for its duration). */
void ts_rt_compute(ts_rt_t *rt, ts_kind_t kind, int vstage, int mb);
/* Sends vstage's activation (TS_SEND_ACT, to layout->next[vstage]) or its
** input gradient (TS_SEND_GRAD, to layout->prev[vstage]) of micro-batch mb.
** Returns at once. */
void ts_rt_send(ts_rt_t *rt, ts_kind_t kind, int vstage, int mb);
/* Blocks until the message that vstage (on this device) needs has arrived:
** TS_SEND_ACT: the activation from prev[vstage]; TS_SEND_GRAD: the
** gradient from next[vstage]. */
void ts_rt_recv(ts_rt_t *rt, ts_kind_t kind, int vstage, int mb);
/* Non-blocking: 1 when that message has arrived. */
int ts_rt_arrived(ts_rt_t *rt, ts_kind_t kind, int vstage, int mb);
/* Blocks until some message arrives that was not there when called. */
void ts_rt_wait_any(ts_rt_t *rt);
/* Current time in seconds since the iteration began. */
double ts_rt_now(ts_rt_t *rt);
/* Iteration boundary for multi-iteration schedules (2bw): ops recorded
** after this call carry the new iteration number. */
void ts_rt_next_iteration(ts_rt_t *rt);
/* Under full recompute, forwards of vstage (on this device) keep their full
** activations, so their backwards need no recompute (Varuna's last stage).
** No effect with recompute "none". */
void ts_rt_keep_activations(ts_rt_t *rt, int vstage);
/* Bytes of the weight gradients of vstage (one of this device's), for
** gradient all-reduces; for MoE parts without the experts' (they are not
** replicated). */
double ts_rt_gradient_bytes(ts_rt_t *rt, int vstage);
/* Lets every event of the current instant take effect before the program
** decides: a message that arrives at exactly this time becomes visible to
** ts_rt_arrived.  Opportunistic programs call it before each choice.  Takes
** no simulated time. */
void ts_rt_settle(ts_rt_t *rt);
/* The group of kind k that this device belongs to (ts_plan_group). */
ts_group_t ts_rt_group(ts_rt_t *rt, ts_group_kind_t k);

/* ---- collectives -----------------------------------------------------------
** Collectives run over a group (ts_rt_group: the plan's TP, EP, DP, PP or
** REPLICA group of this device) on the device's communication stream: an
** execution context of its own (SimGrid: an actor on the device's host;
** the reference executor: a thread), which runs the device's collectives
** one at a time in the order they were started, as NCCL runs a
** communicator's kernels on one stream.  So a collective overlaps the
** device's compute: ts_rt_coll_start returns at once and ts_rt_coll_wait
** blocks until this device's part is done.  Every member of the group must
** start the same collectives in the same order relative to its other
** collectives.  The runtime owns the algorithm (README "Collectives"):
**   all-reduce      ring: reduce-scatter then all-gather, 2 (n - 1) steps
**                   of bytes / n to the next member;
**   reduce-scatter  ring, n - 1 steps of bytes / n (bytes: the input);
**                   member i ends with the reduced chunk i;
**   all-gather      ring, n - 1 steps of bytes / n (bytes: the output);
**   broadcast       from member 0 along the ring, in n chunks of bytes / n,
**                   pipelined (each member forwards a chunk on arrival);
**   all-to-all      member i sends chunk j of bytes / n to member j, all
**                   at once.
** On SimGrid the steps are flows over the platform; executors with data
** (the reference executor) move and reduce the real arrays through
** coll_pack / coll_apply, so a wrong collective gives a wrong gradient. */


/* What a collective carries, for executors with data.  TS_BUF_GRADS: the
** weight gradients of every model part this device holds, in cost-row
** order, replicated weights only (a MoE part's experts are not); members
** of a REPLICA group hold the same parts, so their buffers line up.
** TS_BUF_WEIGHTS: the same parts' weights.  TS_BUF_NONE: bytes only. */
typedef enum ts_coll_buf {
  TS_BUF_NONE = 0,
  TS_BUF_GRADS,
  TS_BUF_WEIGHTS,
  TS_BUF_EXPERT_GRADS,  /* the experts' gradients of the device's MoE layers
                        ** (replicated over the DP group only) */
  TS_BUF_EXPERT_WEIGHTS, /* ... and their weights */
  TS_BUF_TP,            /* the partial activation (or activation gradient)
                        ** of the layer piece a TP all-reduce sums, or the
                        ** sequence slices an SP reduce-scatter or
                        ** all-gather moves (rt_tp.c); sized by the
                        ** executor */
  TS_BUF_TP_GRADS       /* the gradients of the parameters the device's
                        ** TP sync group holds replicated and computes
                        ** shares of (ts_cost_tp_sync_bytes), of the
                        ** units [unit_lo, unit_hi); laid out by the
                        ** executor */
} ts_coll_buf_t;


/* Starts op over the members of g (this device among them) on buf, whose
** size on each device is bytes (see above); vstage, one of this device's,
** labels the transfers in the timeline.  Returns a handle for
** ts_rt_coll_wait (-1 after a failure; a group of one member moves nothing
** and completes in its turn).  A program that ends with collectives running waits for
** them.  A buffer that a collective carries belongs to the stream from
** start to wait: the program must not run an op that writes it (a
** backward of those parts, for TS_BUF_GRADS) in between; the reference
** executor would race on the real arrays. */
int ts_rt_coll_start(ts_rt_t *rt, ts_coll_op_t op, const ts_group_t *g, int vstage,
                     ts_coll_buf_t buf, double bytes);
/* Blocks until the collective of handle h is done on this device. */
void ts_rt_coll_wait(ts_rt_t *rt, int h);
/* ts_rt_coll_start then ts_rt_coll_wait. */
void ts_rt_coll(ts_rt_t *rt, ts_coll_op_t op, const ts_group_t *g, int vstage, ts_coll_buf_t buf,
                double bytes);

/* ---- mixture of experts (schedule gshard; README "Mixture of experts") --
** The plan gives each device an expert-parallel lane r (its rank in its
** TS_GROUP_EP group); the EP devices of a stage hold its experts, E / EP
** each, lane r the experts r E/EP .. (r + 1) E/EP - 1. */

/* MoE layers in vstage's model part (0 for a dense model). */
int ts_rt_moe_layers(ts_rt_t *rt, int vstage);
/* Runs one piece of the forward or backward (TS_FORWARD or TS_BACKWARD) of
** (vstage, mb).  A part with n MoE layers has 2n + 1 pieces: piece 2i is
** dense segment i (the layers up to MoE layer i's attention and gate; the
** last one the rest of the part), piece 2i + 1 the experts of MoE layer i
** on this device, whose FLOPs come from the tokens they received.  A
** forward runs pieces 0, 1, ..., 2n and a backward 2n, ..., 0, with the
** all-to-alls of ts_rt_moe_alltoall in between, and no other op of the
** device inside; the rules of ts_rt_compute apply to the op as a whole. */
void ts_rt_moe_compute(ts_rt_t *rt, ts_kind_t kind, int vstage, int mb, int piece);
/* The all-to-all that comes next in the op (kind, vstage, mb) among the EP
** devices of vstage's stage: forward, after piece 2i the dispatch of MoE
** layer i (TS_SEND_DISPATCH: each device sends every peer its tokens for
** the peer's experts, the capacity-padded slots or the tokens kept as
** model.moe.alltoall says) and after piece 2i + 1 its combine
** (TS_SEND_COMBINE: the outputs go back); backward, after piece 2i + 2 the
** gradient of the combine, after piece 2i + 1 the gradient of the dispatch.
** All transfers start at once; returns when this device has received from
** every peer.  which must be the kind that comes next. */
void ts_rt_moe_alltoall(ts_rt_t *rt, ts_kind_t kind, ts_kind_t which, int vstage, int mb);

/* Names the op the program runs next in the runtime's errors (NULL or "":
** none; copied, cut at 383 bytes): a check that fails then reads
** "NAME: device D: what is wrong" instead of "schedule 'S': device D: ...",
** and a deadlock lists the device as "device D at NAME".  For programs that
** run ops from a file (schedule "table"), so that errors name the entry. */
void ts_rt_name_op(ts_rt_t *rt, const char *name);

/* 1 once the run has failed (a peer hit an error): programs may stop. */
int ts_rt_failed(ts_rt_t *rt);

/* ---- host memory (schedules with host_weights) ---------------------------
** Each device has two copy engines, one per direction, that run this
** device's copies one at a time in request order over the platform's route
** between the device and its host memory.  Device memory is a ledger:
** stashed activations (as in README "Memory") plus the weights of every
** fetched stage and the gradient buffers not yet written back.  A fetch
** reserves its bytes when its copy starts, and starts only when they fit in
** the device's capacity (the host's memory_bytes; unlimited when unknown):
** the time a fetch at the head of the queue waits for room is recorded as a
** room_wait event.  A fetch that can never fit is a deadlock. */

/* Queues the copy of vstage's weights (on this device) from host memory;
** with_grads also reserves its gradient buffer (needed by backwards).
** Returns at once. */
void ts_rt_fetch(ts_rt_t *rt, int vstage, int with_grads);
/* Blocks until vstage's weights are on the device. */
void ts_rt_fetch_wait(ts_rt_t *rt, int vstage);
/* Drops vstage's weights from the device (no transfer: host memory holds
** the master copy); frees their bytes at once. */
void ts_rt_evict(ts_rt_t *rt, int vstage);
/* Reserves, in the device ledger, the activation memory of count ops of
** kind (TS_FORWARD or TS_RECOMPUTE) of vstage, waiting (room_wait) until it
** fits; those ops then allocate from the reservation, a backward's frees of
** that stage refill it, and ts_rt_evict of the stage releases what is
** unused.  A program that prefetches reserves its current visit's
** activations first, so that the prefetch cannot take the room they need.
** Adds to an existing reservation. */
void ts_rt_reserve(ts_rt_t *rt, int vstage, ts_kind_t kind, int count);
/* Queues the write-back of vstage's gradient buffer to host memory; the
** buffer's bytes are freed when the copy ends.  Returns at once. */
void ts_rt_offload(ts_rt_t *rt, int vstage);
/* Blocks until every copy this device queued has ended. */
void ts_rt_host_wait(ts_rt_t *rt);

#endif /* TS_RUNTIME_H */
