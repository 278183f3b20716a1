/*
** rt_internal.h: the runtime front-end's own state, shared by its files
** (ts_runtime.c: checks, compute and point-to-point messages; rt_world.c:
** the world of one run and its end-of-run checks; rt_host.c: host memory;
** rt_moe.c: mixture-of-experts pieces and all-to-alls; rt_coll.c:
** collectives and their streams; rt_coll_algo.c: their algorithms).  Not for schedules or executors: they use ts_runtime.h.
*/
#ifndef TS_RT_INTERNAL_H
#define TS_RT_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "ts_executor.h"

enum { MSG_ACT = 0, MSG_GRAD = 1 };

/* What a blocked device or stream waits for, kept as its parts and worded
** only when a deadlock is reported (ts__rt_wait_text): the waits are on the
** hot path of every receive, and printf is slow here (README "Outputs"). */
typedef enum {
  RT_W_NONE,  /* not waiting */
  RT_W_MSG,   /* "<s> for stage <a> micro-batch <b>" */
  RT_W_ANY,   /* "any message" */
  RT_W_COLL,  /* "its <s> #<a>" */
  RT_W_STEP,  /* "<s> #<a>: a step from device <b>" */
  RT_W_MOE,   /* "the <s> of stage <a> micro-batch <b> from device <c>" */
  RT_W_TEXT   /* text */
} rt_wait_kind_t;
typedef struct rt_wait {
  rt_wait_kind_t kind;
  const char *s; /* a string that outlives the wait (a name) */
  int a, b, c;
  char text[160];
} rt_wait_t;

/* Records a wait of kind k with its parts (its text, for RT_W_TEXT, is set
** by the caller): fields only, text is left alone (it is 160 bytes, and
** this runs on every wait). */
static inline void ts__rt_wait_set(rt_wait_t *w, rt_wait_kind_t k, const char *s, int a, int b, int c) {
  w->kind = k;
  w->s = s;
  w->a = a;
  w->b = b;
  w->c = c;
}

/* w's words into buf (cap bytes); "" when not waiting.  Returns buf. */
const char *ts__rt_wait_text(const rt_wait_t *w, char *buf, size_t cap);

struct ts_rt {
  ts_world_t *w;
  ts_ctx_t ctx;
  int M;                 /* micro-batches over all iterations */
  unsigned char *done[TS_COMPUTE_KINDS]; /* [n_local * M] */
  unsigned char *arrived[2], *consumed[2], *sent[2];
  unsigned char *keep;   /* [n_local] forwards keep full activations */
  struct rt_peer *peers; /* [cap_peers] messages counted per sending device
                         ** (ts__rt_peer): a hash table, O(peers) not
                         ** O(devices), so that memory per device stays flat */
  int n_peers, cap_peers;
  struct rt_coll *colls; /* collectives started, in start order (under the
                         ** device lock once a stream runs) */
  int n_colls, cap_colls;
  struct rt_stream *streams; /* [TS_STREAMS] communication streams, one per
                         ** group kind (rt_coll.c) */
  struct rt_shapes *shapes; /* groups' two-level shapes (rt_coll_algo.c;
                         ** program context, or world set-up) */
  int moe_kind, moe_v, moe_mb, moe_pieces, moe_a2a; /* the MoE op in progress:
                         ** pieces run and all-to-alls done; moe_kind -1: none */
  int a2a_calls;         /* all-to-all calls made: their events' seq, so that
                         ** calls starting at one instant sort in program order */
  long n_arrivals;
  long polled;           /* n_arrivals at the last ts_rt_arrived, -1 after a
                         ** ts_rt_wait_any (read by executors without settle) */
  long polls;            /* ts_rt_arrived calls since the last progress */
  int seq;
  bool finished;
  rt_wait_t waiting;     /* what a blocked device waits for */
  char opname[384];      /* ts_rt_name_op's name of the current op, or "" */
  ts_run_t *cev;         /* compute events (own thread); w->log when shared */
  ts_run_t *tev;         /* transfer events (under the inbox lock); w->log when shared */
  /* host memory (sched->host_weights only; own thread or, in SimGrid, the
  ** copy actors of this device, which never run concurrently with it) */
  struct rt_host *host;
  /* data parallelism (rt_dp.c; NULL for host_weights schedules) */
  struct rt_dp *dp;
  /* tensor parallelism (rt_tp.c; NULL at t = 1) */
  struct rt_tp *tp;
};
typedef struct rt_dp rt_dp_t;
typedef struct rt_tp rt_tp_t;

enum { W_HOST = 0, W_QUEUED, W_COPYING, W_RESIDENT };
enum { G_NONE = 0, G_RESERVED, G_OFFLOADING, G_WRITTEN };

typedef struct rt_host {
  unsigned char *w, *g;   /* [n_local] weight and gradient-buffer states */
  unsigned char *fgrads;  /* [n_local] the queued fetch reserves gradients */
  double *req_t;          /* [n_local] when the fetch was queued */
  int *q[2];              /* [n_local] FIFOs of local indices: 0 D2H, 1 H2D */
  int qhead[2], qtail[2];
  int busy[2];            /* a copy of that direction is running */
  double free_t[2];       /* when the engine last became free */
  double *held;           /* [n_local * M] activation bytes per (stage, mb) */
  double *resv, *resv_used; /* [n_local] activation reservations (ts_rt_reserve) */
  double used, cap;       /* ledger and capacity (0: unlimited) */
  double want;            /* bytes a blocked compute op waits to allocate */
  double blocked_need;    /* > 0 while blocked on room: what it needs */
  int pumping, again;
} rt_host_t;

/* Counts of the messages one device received from one sender that the
** runtime matches by sender: collective steps and MoE all-to-all messages
** (dispatch, combine), arrived and consumed; collective steps per
** communication stream s at PEER_COLL + s. */
enum { PEER_DISPATCH = 0, PEER_COMBINE, PEER_COLL, PEER_KINDS = PEER_COLL + TS_STREAMS };
typedef struct rt_peer {
  int dev;               /* the sender, or -1: a free slot */
  long in[PEER_KINDS], used[PEER_KINDS];
} rt_peer_t;

struct ts_world {
  const ts_job_t *job;
  const ts_schedule_t *sched;
  const ts_plan_t *plan;
  const ts_layout_t *lay; /* = plan->layout */
  const ts_cost_t *cost;
  const ts_exec_ops_t *ops;
  void *xd;
  int n;
  ts_rt_t *rt;
  const int *fold;        /* symmetry folding (ts__world_fold): each device's
                          ** representative; NULL: every device runs */
  int *lidx;              /* [n_vstages] index of each vstage among its own
                          ** device's (shared: one array, not one per device) */
  atomic_int failed;      /* set once, by the first failing device */
  ts_err_t err;
  ts_run_t *log;          /* ops->one_log: every device's cev and tev */
};

/* One collective as started by the program. */
typedef struct rt_coll {
  ts_coll_op_t op;
  ts_coll_buf_t buf;
  int vstage;
  double bytes;
  ts_group_t g;          /* members (owned by the plan or static) */
  int unit_lo, unit_hi;  /* region of buf (unit_hi < 0: all of it) */
  ts_coll_purpose_t purpose;
  int group_kind;        /* ts_group_kind_t, or TS_GROUP_KINDS: another group */
  int mb;                /* its label micro-batch (zero 3) or bucket, or -1 */
  ts_coll_alg_t alg;     /* the algorithm it runs (never auto once queued) */
  const struct rt_shape *shape; /* its group's two-level shape (hierarchical
                         ** only; owned by rt->shapes) */
  int shard;             /* the slice of g.n this member owns after it
                         ** (reduce-scatter; ts__rt_coll_shard) */
  bool done;
} rt_coll_t;

/* One communication stream of a device (rt_coll.c).  Its queue and flags
** are under the device lock; in and used are written under it (deliver,
** receive), allocated at the first step that arrives or is awaited. */
typedef struct rt_stream {
  int *q;                /* handles queued on it, in start order */
  int n, cap;
  int next;              /* index in q of the next one it runs */
  bool spawned;          /* spawn_comm was called */
  bool ended;            /* it returned (or was never spawned) */
  long seq;              /* steps it sent */
  rt_wait_t waiting;     /* what it waits for */
} rt_stream_t;

/* A collective as its stream runs it (rt_coll.c, rt_coll_algo.c). */
typedef struct rt_run_coll {
  ts_rt_t *rt;
  const rt_coll_t *c;
  int id, stream, slot;
  double sent;           /* bytes this device sent in it */
} rt_run_coll_t;

#define POLL_LIMIT 10000000L

/* Index of vstage v (checked by the caller: 0 <= v < n_vstages) among this
** device's vstages, or -1 when another device holds it. */
static inline int ts__rt_li(const ts_rt_t *rt, int v) {
  return rt->w->lay->dev[v] == rt->ctx.device ? rt->w->lidx[v] : -1;
}
/* The counters of the messages from device dev (added, at zero, on first
** use).  Call under the device's lock; the pointer stays valid until the
** next call on the same device (the table may grow), so a loop that waits
** looks it up again after each wait. */
rt_peer_t *ts__rt_peer(ts_rt_t *rt, int dev);

/* Records the first error of the run (fmt takes a string, then v and mb)
** and stops every device. */
void ts__rt_fail(ts_rt_t *rt, const char *fmt, const char *a, int v, int mb);
/* Index of (v, mb) in this device's tables, or -1 after failing. */
long ts__rt_cell(ts_rt_t *rt, const char *what, int v, int mb);
bool ts__rt_done_at(ts_rt_t *rt, ts_kind_t k, int v, int mb);
bool ts__rt_backward_done(ts_rt_t *rt, int v, int mb);
/* Checks that kind may run now on (v, mb) (cell c); fails and returns
** false if not. */
bool ts__rt_may_run(ts_rt_t *rt, ts_kind_t kind, int v, int mb, long c);
/* Records a compute op of this device, next in program order. */
void ts__rt_push_compute(ts_rt_t *rt, ts_kind_t kind, int v, int mb, int flags, double t0,
                         double t1);
/* Host memory (rt_host.c): the activation ledger around a compute op. */
void ts__rt_host_alloc(ts_rt_t *rt, ts_kind_t kind, int v, int mb, long c);
void ts__rt_host_free(ts_rt_t *rt, ts_kind_t kind, int v, long c);
/* 1 when no copy of the device is queued or running (li < 0: any stage). */
bool ts__rt_copies_done(ts_rt_t *rt, int li);
/* Collectives (rt_coll.c): set-up and clean-up of a device's streams
** (rt->streams). */
void ts__rt_coll_init(ts_rt_t *rt);
void ts__rt_coll_free(ts_rt_t *rt);
/* Waits for every collective the program started. */
void ts__rt_coll_finish(ts_rt_t *rt);
/* Waits for every collective started so far, on every stream; waits that
** block are TS_COMM_WAIT events labelled (v, mb). */
void ts__rt_coll_wait_all(ts_rt_t *rt, int v, int mb);
/* Under the device lock: a step of stream s from device `from` arrived. */
void ts__rt_coll_arrived(ts_rt_t *rt, int s, int from);
/* After the program: wakes the streams that were spawned (they return
** once their queue is empty). */
void ts__rt_coll_wake(ts_rt_t *rt);
/* For the deadlock report: true when a spawned stream has not returned;
** waiting (cap bytes) then says what the first such stream waits for (""
** if not known). */
bool ts__rt_coll_stuck(const ts_rt_t *rt, char *waiting, size_t cap);
/* The mb of a collective step's message: its sequence number on stream s
** (ts_exec_ops_t.send), and back. */
static inline int ts__rt_coll_tag(long seq, int s) { return (int)(seq * TS_STREAMS + s); }
static inline int ts__rt_coll_tag_stream(int tag) { return tag % TS_STREAMS; }
static inline int ts__rt_coll_tag_seq(int tag) { return tag / TS_STREAMS; }
/* A step of collective x: this device's slice chunk of n_chunks goes to
** member peer_rank, where it lands in slice peer_chunk (send); or member
** peer_rank's slice peer_chunk is received into slice chunk, added in
** (reduce) or replacing it (recv).  bytes: the message's size. */
void ts__rt_step_send(rt_run_coll_t *x, int peer_rank, int chunk, int peer_chunk, int n_chunks,
                      double bytes);
void ts__rt_step_recv(rt_run_coll_t *x, int peer_rank, int chunk, int peer_chunk, int n_chunks,
                      int reduce);
/* Algorithms (rt_coll_algo.c, README "Collectives"): the algorithm
** collective c runs (its op, group, bytes and the job's
** collective_algorithm); the slice of g->n that member g->rank owns after
** a reduce-scatter over g (and holds before an all-gather); and the steps
** of x's collective (stream context).
** Program context only (the shapes are cached on rt).  pick also sets
** c->shape. */
ts_coll_alg_t ts__rt_coll_pick(ts_rt_t *rt, rt_coll_t *c);
int ts__rt_coll_shard(ts_rt_t *rt, const ts_group_t *g);
void ts__rt_coll_run_alg(rt_run_coll_t *x);
bool ts__rt_ring_merged(rt_run_coll_t *x, const int *r, int m, int next, int prev, int n_chunks,
                        double part, bool reduce, int phases);
void ts__rt_coll_shapes_free(ts_rt_t *rt);
/* Queues collective c (checked by the caller) on the device's stream;
** returns its handle. */
int ts__rt_coll_queue(ts_rt_t *rt, const rt_coll_t *c);
/* Waits for the collective of handle h on the compute stream; a wait that
** blocks is recorded as a TS_COMM_WAIT event labelled (v, mb). */
void ts__rt_coll_wait_at(ts_rt_t *rt, int h, int v, int mb);
/* Data parallelism (rt_dp.c): set-up and clean-up of rt->dp; before and
** after the program; an op's compute (possibly in pieces) with its
** events; a part's gradient op that ran elsewhere (MoE). */
void ts__rt_dp_init(ts_rt_t *rt);
void ts__rt_dp_free(ts_rt_t *rt);
void ts__rt_dp_begin(ts_rt_t *rt);
void ts__rt_dp_end(ts_rt_t *rt);
void ts__rt_dp_compute(ts_rt_t *rt, ts_kind_t kind, int v, int mb, int flags, double flops,
                       double seconds);
void ts__rt_dp_grads_done(ts_rt_t *rt, int v);
/* Tensor parallelism (rt_tp.c): set-up (by ts__rt_dp_init, once rt->dp
** exists; nothing at t = 1) and clean-up of rt->tp. */
void ts__rt_tp_init(ts_rt_t *rt);
void ts__rt_tp_free(ts_rt_t *rt);
/* 1 when ops of kind run layer by layer as TP pieces. */
bool ts__rt_tp_splits(const ts_rt_t *rt, ts_kind_t kind);
/* Runs one layer of op (kind, v, mb) with its flops and seconds as TP
** pieces with their collectives, and records the pieces' compute events
** (flags plus CONT / MORE: first, last say whether this layer begins or
** ends the op). */
void ts__rt_tp_layer(ts_rt_t *rt, ts_kind_t kind, int v, int mb, int flags, double flops,
                     double seconds, bool first, bool last);
/* The all-reduce of the replicated gradients over the device's TP sync
** group (ts_cost_tp_sync_bytes; README "Tensor parallelism"), started and
** waited for; called by ts__rt_dp_end once the data-parallel gradient
** collectives are done, before the optimizer.  Nothing where the job has
** none. */
void ts__rt_tp_sync(ts_rt_t *rt);

#endif
