/*
** ts_executor.h: the executor interface behind the runtime, for executors
** only (the SimGrid one in sim/, the CPU reference one in src/ref/).
** Schedules include ts_runtime.h, which does not declare any of this: a
** program cannot reach an executor's operations or the world's internals.
**
** An executor provides ts_exec_ops_t, creates the world of a run
** (ts__world_new) with one runtime state per device, runs each device's
** program (ts__rt_main) and, when an executor has communication streams,
** their loops (ts__rt_comm_main) on contexts of its own, delivers messages
** and copies back into the runtime (ts__rt_deliver, ts__rt_host_done), and
** collects the events (ts__world_finish).
*/
#ifndef TS_EXECUTOR_H
#define TS_EXECUTOR_H

#include "ts_runtime.h"

/* Communication streams per device, as NCCL communicators: collectives of
** one group kind (ts_group_kind_t; TS_GROUP_KINDS: a group that is none of
** the plan's) run on the device's stream of that kind, in start order, so
** that tensor-parallel collectives never queue behind data-parallel
** gradient buckets.  A stream is spawned at its first collective. */
#define TS_STREAMS (TS_GROUP_KINDS + 1)

/* The wait slot of device d's program (stream -1) or of its communication
** stream stream (0 .. TS_STREAMS - 1), n devices: (1 + stream) n + d.
** Executors keep 1 + TS_STREAMS slots per device. */
static inline int ts__stream_slot(int n, int d, int stream) { return (1 + stream) * n + d; }

/* One step of a collective, as the executor sees it: slice chunk of the
** n_chunks equal slices of this device's buffer (buf of the device's parts)
** goes to peer (pack), or the peer's slice peer_chunk came from it (apply)
** and is added into this device's slice chunk (reduce 1) or replaces it
** (reduce 0). */
typedef struct ts_coll_step {
  ts_coll_op_t op;
  ts_coll_buf_t buf;
  int unit_lo, unit_hi; /* the region of buf: the device's gradient units
                        ** [unit_lo, unit_hi) (ts_unit_t); unit_hi < 0: the
                        ** whole buffer.  Slices are of the region. */
  int id;        /* the collective's number on this device, in start order */
  int vstage;    /* its label stage */
  int peer;
  int chunk;      /* this device's slice: read (pack) or written (apply) */
  int peer_chunk; /* the peer's slice: where it lands (pack) or whence it
                  ** came (apply); differs from chunk for all-to-all only */
  int n_chunks;
  int reduce;
  int stream;     /* the communication stream (0 .. TS_STREAMS - 1) that
                  ** runs it: payload FIFOs are per (stream, sender,
                  ** receiver), since streams interleave their sends */
} ts_coll_step_t;
/* Data parallelism (src/runtime/rt_dp.c, README "Data parallelism").  A
** device's parameters are a list of units: the layers of the model parts
** (cost rows) it holds, in cost-row order, each part's layers in order (a
** synthetic part is one unit).  Unit u of device d is layer
** ts__rt_unit(rt, u).layer of part .part.  The embedding belongs to the
** first unit of part 0, the LM head to the last unit of the last part.  A
** gradient bucket, a ZeRO-3 gathering unit and an optimizer region are
** ranges of units; the members of a REPLICA group hold the same parts, so
** their unit lists are the same. */
typedef struct ts_unit {
  int part, layer;       /* cost row, and model layer (first_layer + i) */
  double grad_bytes;     /* gradient bytes of its replicated parameters */
  double expert_bytes;   /* gradient bytes of its experts (MoE layers) */
  double params, expert_params; /* parameters (replicated, experts) */
  double share;          /* its fraction of its part's compute */
} ts_unit_t;

/* A range of units of one buffer, and the shard of it a device owns (ZeRO):
** slice shard of n_shards (n_shards 1: all of it). */
typedef struct ts_region {
  ts_coll_buf_t buf;     /* TS_BUF_GRADS / TS_BUF_WEIGHTS: the replicated
                         ** parameters; TS_BUF_EXPERT_*: the experts */
  int unit_lo, unit_hi;
  int shard, n_shards;
} ts_region_t;

/* One message of a MoE all-to-all as the payload hooks see it. */
typedef struct ts_a2a_msg {
  ts_kind_t op;     /* TS_FORWARD or TS_BACKWARD: the op of the call */
  ts_kind_t which;  /* TS_SEND_DISPATCH or TS_SEND_COMBINE */
  int vstage, mb;   /* the op (the calling device's virtual stage) */
  int layer;        /* MoE layer of the op's part: 0 .. ts_rt_moe_layers - 1 */
  int peer;         /* the other device: receiver (pack) or sender (apply) */
  int lane, peer_lane; /* EP ranks of the calling device and of peer */
} ts_a2a_msg_t;

typedef struct ts_exec_ops {
  /* Seconds since the run began. */
  double (*now)(void *xd);
  /* Performs the compute op; returns when done. */
  void (*compute)(void *xd, int device, ts_kind_t kind, int vstage, int mb,
                  double flops, double seconds);
  /* Starts a transfer of bytes from device to peer; the executor later
  ** calls ts__rt_deliver on the receiving device's rt with the same key.
  ** For TS_SEND_COLL, vstage_to is the sender's label stage and mb the
  ** step's sequence number; peers need not be layout neighbours. */
  void (*send)(void *xd, int device, int peer, ts_kind_t kind, int vstage_to,
               int mb, double bytes);
  /* Blocking primitives the runtime builds receives on.  lock/unlock guard
  ** the device's inbox; wait releases the lock until notify; notify wakes
  ** the device's waiters.  (SimGrid: a mutex and a condition; threads:
  ** pthread ones.)  Waits and notifies name a slot: slot d is device d's
  ** program, slot ts__stream_slot(n_devices, d, s) its communication
  ** stream s (spawn_comm); all use device d's lock. */
  void (*lock)(void *xd, int device);
  void (*unlock)(void *xd, int device);
  void (*wait)(void *xd, int slot);
  void (*notify)(void *xd, int slot);
  /* Called when a device's program fails, to stop the others. */
  void (*abort_all)(void *xd);
  /* Optional: returns once every event of the current instant has taken
  ** effect (see ts_rt_settle); NULL where time is real. */
  void (*settle)(void *xd, int device);
  /* Host memory (needed by schedules with host_weights): starts copying
  ** vstage's weights to the device (h2d 1) or its gradients back (h2d 0);
  ** bytes is the copy's size.  The executor calls ts__rt_host_done when the
  ** copy ended, from any context but without holding the device's lock
  ** (possibly before host_copy returns). */
  void (*host_copy)(void *xd, int device, int h2d, int vstage, double bytes);
  /* Optional: vstage's weights left the device (the reference executor
  ** poisons them, so that a use after eviction shows). */
  void (*host_evict)(void *xd, int device, int vstage);
  /* Optional: the device's memory in bytes; 0 or NULL: unlimited. */
  double (*capacity)(void *xd, int device);
  /* Starts device's communication stream `stream` (0 .. TS_STREAMS - 1),
  ** a context that runs ts__rt_comm_main(ts__world_rt(w, device), stream)
  ** concurrently with the device's program and its other streams, and may
  ** block in wait(ts__stream_slot(n_devices, device, stream)); called at
  ** the stream's first collective.  Required of every executor. */
  void (*spawn_comm)(void *xd, int device, int stream);
  /* Optional: the device's NVLink domain for the collective algorithms
  ** (rt_coll_algo.c): a number >= 0, equal for devices of one domain, or
  ** -1 when the platform does not say (SimGrid: the host property
  ** nvlink_domain, else node).  NULL: -1 for every device.  The job's
  ** nvlink_domain_size, when set, takes precedence. */
  int (*domain)(void *xd, int device);
  /* Optional, executors with data: coll_pack is called by the sender just
  ** before a collective step's send, coll_apply by the receiver just after
  ** the matching message was consumed (messages of one sender are consumed
  ** in send order, so a FIFO of payloads per (sender, receiver) pair
  ** matches them). */
  void (*coll_pack)(void *xd, int device, const struct ts_coll_step *st);
  void (*coll_apply)(void *xd, int device, const struct ts_coll_step *st);
  /* ---- mixture of experts (ts_rt_moe_*), all optional ---- */
  /* Performs piece `piece` of a MoE forward or backward (ts_rt_moe_compute);
  ** NULL: the runtime calls compute instead (the piece does not matter
  ** where only FLOPs do). */
  void (*moe_compute)(void *xd, int device, ts_kind_t kind, int vstage, int mb, int piece,
                      double flops, double seconds);
  /* Payload hooks of the MoE all-to-alls, for executors that move real
  ** token rows: a2a_pack is called on the sending device just before each
  ** send of an all-to-all, a2a_apply on the receiving device just after the
  ** matching message was consumed (outside the device's lock).  Messages of
  ** one kind between a pair of devices are consumed in send order, so an
  ** executor may keep a FIFO of payloads per (kind, sender, receiver). */
  void (*a2a_pack)(void *xd, int device, const ts_a2a_msg_t *m);
  void (*a2a_apply)(void *xd, int device, const ts_a2a_msg_t *m);
  /* ---- data parallelism (rt_dp.c), all optional ---- */
  /* 1: an op's compute cannot be cut into pieces (real math): the runtime
  ** then runs every op whole and does what falls inside it (bucket starts,
  ** ZeRO-3 gathers) before or after. */
  int whole_ops;
  /* The optimizer step of device's parameters for iteration it: for each of
  ** the n regions, update the device's shard from its gradients there;
  ** bytes: the memory the step reads and writes.  Returns when done (the
  ** simulator: bytes / memory bandwidth; the reference executor: SGD,
  ** TS_REF_LR).  NULL: the step takes no time and changes nothing. */
  void (*optimizer)(void *xd, int device, int it, int n, const ts_region_t *r, double bytes);
  /* Called on device's communication stream when one of its collectives is
  ** done there (st: op, buf, region, n_chunks; chunk = the device's rank). */
  void (*coll_end)(void *xd, int device, const struct ts_coll_step *st);
  /* ZeRO 3: device drops the gathered parameters of region r except its own
  ** shard (the reference executor poisons them); called for every unit
  ** before the first op and after every op that used them. */
  void (*release)(void *xd, int device, const ts_region_t *r);
  /* Optional, executors with data (rt_tp.c): called by device's program
  ** just before it starts a TS_BUF_TP collective (op) of the op (kind,
  ** vstage, mb), so that the executor fills the buffer first (sequence
  ** parallelism: the LayerNorm on the device's tokens that precedes an
  ** all-gather; 2d: the blocks of a SUMMA step, slot = the chain's
  ** unit_lo, -1 for the 1d collectives).  NULL: nothing to fill. */
  void (*tp_prepare)(void *xd, int device, ts_kind_t kind, int vstage, int mb, ts_coll_op_t op,
                     int slot);
  /* ---- symmetry folding (ts__world_fold), optional ---- */
  /* Sends one message that stands for `steps` consecutive ring steps of a
  ** collective to the same peer (bytes: their sum; mb: the first step's
  ** sequence number): it arrives (steps - 1) route latencies after one
  ** transfer of bytes would.  The runtime uses it only on a folded world,
  ** for a ring phase over a group whose members all fold onto the sender.
  ** NULL: every step is sent by itself. */
  void (*send_steps)(void *xd, int device, int peer, ts_kind_t kind, int vstage_to, int mb,
                     double bytes, int steps);
  /* 1: one device runs at a time (SimGrid's actors are cooperative): every
  ** device records its events into one log, in the order they happen,
  ** instead of a compute and a transfer log of its own (threads need
  ** those).  One log written in order costs a fifth of the 128 logs of the
  ** benchmark job, and ts__world_finish moves it into the run whole. */
  int one_log;
} ts_exec_ops_t;


/* The shared runtime state of one run, used by executors. */
typedef struct ts_world ts_world_t;

/* Creates the world for a job: layout, cost table and one rt per device.
** xd is the executor's own data, passed back to every ops call. */
ts_world_t *ts__world_new(const ts_job_t *job, const ts_schedule_t *sched,
                          const ts_plan_t *plan, const ts_cost_t *cost,
                          const ts_exec_ops_t *ops, void *xd);
ts_rt_t *ts__world_rt(ts_world_t *w, int device);
/* Symmetry folding (ts_fold.h): only the representatives (fold[d] == d)
** run their programs; ts__world_finish then checks and collects those
** alone.  fold ([n_devices], not owned, valid until ts__world_finish) NULL:
** every device runs (the default). */
void ts__world_fold(ts_world_t *w, const int *fold);
/* Runs the schedule's program for one device, waits for its collectives,
** and marks it done. */
void ts__rt_main(ts_rt_t *rt);
/* Communication stream `stream` of rt's device (ops->spawn_comm): runs its
** collectives in start order; returns once the program has ended and
** every collective of the stream is done (or the run failed). */
void ts__rt_comm_main(ts_rt_t *rt, int stream);
/* Executor callback: a message reached rt's device. */
void ts__rt_deliver(ts_rt_t *rt, int from_device, ts_kind_t kind, int vstage_to,
                    int mb, double bytes, double t_start, double t_end);
/* Executor callback: a host_copy of rt's device ended. */
void ts__rt_host_done(ts_rt_t *rt, int h2d, int vstage, double t_start, double t_end);
/* After the executor finished: checks that every device completed and
** every op ran; moves the events into run, sorted (ts_run_sort) unless the
** world is folded (the executor relabels the transfers, then sorts).
** Returns 0 or EX_SOFTWARE (schedule error, deadlock) with a message. */
int ts__world_finish(ts_world_t *w, ts_run_t *run, ts_err_t *err);
void ts__world_free(ts_world_t *w);
/* Data parallelism: device's units (ts_unit_t), *n their count; owned by
** the runtime, valid for the run. */
const ts_unit_t *ts__rt_units(const ts_rt_t *rt, int *n);
/* 1 when vstage's forwards keep their activations (ts_rt_keep_activations). */
int ts__rt_keeps(const ts_rt_t *rt, int vstage);

/* True when group g has the two-level shape the hierarchical algorithm
** needs (D > 1 domains of m > 1 members each), domains as rt_coll_algo.c
** says (the job's nvlink_domain_size, else domain(xd, device), which may be
** NULL).  For executors deciding before a world exists. */
bool ts__coll_two_level(const ts_job_t *job, const ts_group_t *g, int (*domain)(void *, int),
                        void *xd);

/* Rings of this many members or more run each phase as one message per
** member (ts__rt_ring_merged; README "Collectives"). */
#define TS_RING_MERGE_MIN 64

#endif /* TS_EXECUTOR_H */
