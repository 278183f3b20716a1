/*
** trainsim.h: the public interface of libtrainsim.
**
** trainsim simulates one training iteration (or a few) of a parallel
** training schedule.  A job (ts_job_t) names a model, a platform and a
** schedule.  The cost model turns the model into per-virtual-stage costs
** (ts_cost_t).  A schedule (schedules/) is an actor program written against
** the runtime interface (ts_runtime.h); an executor (the SimGrid one in
** sim/, the CPU reference one in src/ref/) runs one actor per device and
** produces a timeline of events (ts_event_t).  Metrics and writers turn the
** timeline into summary.json, timeline.csv, trace.json and gantt.svg.
**
** Naming: public symbols are ts_<object>_<verb>; internal non-static
** symbols shared between files are ts__<name>.  Functions that can fail
** return 0 on success or a sysexits.h code and fill a ts_err_t.
** Ownership: whoever calls a *_load / *_build / *_new function frees the
** result with the matching *_free, which accepts NULL.
*/
#ifndef TRAINSIM_H
#define TRAINSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TS_VERSION "0.1.0"

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* One error: a sysexits.h code and a one-line message that names the
** file, the place (line or field path) and what is wrong. */
typedef struct ts_err {
  int code;        /* 0 when no error; else EX_DATAERR, EX_NOINPUT, ... */
  char msg[1024];  /* without the "trainsim: error: " prefix */
} ts_err_t;

/* Records the first error only (later calls keep the first message) and
** returns code, so callers write `return ts_err_set(err, EX_..., ...)`. */
int ts_err_set(ts_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ */
/* Operation kinds                                                     */
/* ------------------------------------------------------------------ */

typedef enum ts_kind {
  TS_FORWARD = 0,    /* forward pass of one (virtual) stage, one micro-batch */
  TS_BACKWARD,       /* whole backward (input and weight gradients) */
  TS_RECOMPUTE,      /* forward recomputation before a backward */
  TS_BACKWARD_INPUT, /* input-gradient half of a split backward ("B", "b") */
  TS_WEIGHT_GRAD,    /* weight-gradient half of a split backward ("W", "B") */
  TS_COMPUTE_KINDS,  /* number of compute kinds; kinds below are transfers */
  TS_SEND_ACT = TS_COMPUTE_KINDS, /* activation to the next stage */
  TS_SEND_GRAD,                   /* gradient to the previous stage */
  TS_SEND_COLL,                   /* one step of a collective (all-reduce) */
  TS_SEND_DISPATCH, /* MoE all-to-all dispatch (tokens to the experts) or,
                    ** in a backward, its gradient (back to the tokens) */
  TS_SEND_COMBINE,  /* MoE all-to-all combine (expert outputs back to the
                    ** tokens) or, in a backward, its gradient */
  TS_COLLECTIVE, /* one collective on a device's communication stream, from
                 ** when the stream began it to when its part was done
                 ** (ts_event_t.coll says which; bytes: sent by the device;
                 ** peer: the group's member count) */
  TS_OPTIMIZER,  /* the optimizer step of the device's (sharded) parameters,
                 ** on its compute stream (bytes: memory read + written) */
  TS_COMM_WAIT,  /* the compute stream blocked on a collective it needs
                 ** (exposed communication; vstage: the collective's label) */
  TS_FETCH,     /* host memory -> device: a stage's weights (peer -1: DRAM) */
  TS_OFFLOAD,   /* device -> host memory: a stage's gradients */
  TS_EVICT,     /* a stage's weights dropped from device memory (instant) */
  TS_ROOM_WAIT, /* a queued fetch waiting for device memory to free up */
  TS_KIND_COUNT
} ts_kind_t;

/* Stable lower-case names used in files: "forward", "send_act", ... */
const char *ts_kind_name(ts_kind_t kind);
static inline bool ts_kind_is_compute(ts_kind_t k) { return k < TS_COMPUTE_KINDS; }
/* Device-local stream events: a collective's span, the optimizer step and
** a wait for communication (not transfers between devices). */
static inline bool ts_kind_is_stream(ts_kind_t k) {
  return k == TS_COLLECTIVE || k == TS_OPTIMIZER || k == TS_COMM_WAIT;
}
/* Transfers between devices (send_act .. combine): device -> peer. */
static inline bool ts_kind_is_transfer(ts_kind_t k) {
  return k >= TS_SEND_ACT && k <= TS_SEND_COMBINE;
}
/* Host-memory events (fetch, offload, evict, room_wait: the last kinds). */
static inline bool ts_kind_is_host(ts_kind_t k) { return k >= TS_FETCH && k < TS_KIND_COUNT; }

/* ------------------------------------------------------------------ */
/* Model and job                                                       */
/* ------------------------------------------------------------------ */

typedef enum {
  TS_PARTITION_UNIFORM = 0, TS_PARTITION_BALANCED, TS_PARTITION_EXPLICIT
} ts_partition_t;
/* "uniform", "balanced", "explicit". */
const char *ts_partition_name(ts_partition_t p);

typedef enum { TS_MODEL_TRANSFORMER = 0, TS_MODEL_SYNTHETIC } ts_model_kind_t;
/* none, full (every layer rebuilt from the part's input before its
** backward) or selective (Korthikanti et al. 2022: only the attention core,
** recomputed inside the backward; README "Tensor parallelism"). */
typedef enum { TS_RECOMPUTE_NONE = 0, TS_RECOMPUTE_FULL, TS_RECOMPUTE_SELECTIVE } ts_recompute_t;
/* "none", "full", "selective". */
const char *ts_recompute_name(ts_recompute_t r);

/* Mixture-of-experts layers (GShard top-2; README "Mixture of experts").
** experts == 0: a dense model. */
typedef enum { TS_MOE_UNIFORM = 0, TS_MOE_ZIPF, TS_MOE_TABLE } ts_moe_skew_t;
typedef struct ts_moe {
  int experts;            /* E */
  double capacity_factor; /* C = ceil(S x capacity_factor / E) ... */
  int capacity_multiple;  /* ... rounded up to a multiple of this (4) */
  int group_size;         /* S, tokens per gating group (0: all tokens of a
                          ** micro-batch on a device) */
  int expert_parallel;    /* EP degree: devices per stage */
  int every;              /* layer l is MoE when (l + 1) % every == 0 */
  int expert_ffn;         /* hidden size of one expert's MLP */
  bool alltoall_tokens;   /* all-to-all carries the tokens routed (true) or,
                          ** as GShard's einsum dispatch, capacity-padded
                          ** buffers of C slots per expert and group (false) */
  ts_moe_skew_t skew;
  double exponent;        /* Zipf exponent */
  double *table;          /* [experts] top-1 probabilities (skew "table"), owned */
  unsigned long seed;
} ts_moe_t;

/* Position embeddings, normalisation and linear biases of a transformer
** (README "Models"). */
typedef enum { TS_POSITION_LEARNED = 0, TS_POSITION_ROTARY } ts_position_t;
typedef enum { TS_NORM_LAYERNORM = 0, TS_NORM_RMSNORM } ts_norm_t;
typedef enum { TS_BIAS_ALL = 0, TS_BIAS_NONE, TS_BIAS_QKV } ts_bias_t;

typedef struct ts_model {
  ts_model_kind_t kind;
  char name[128]; /* free text: "gpt3-6.7b", the HF model_type, "synthetic" */
  /* transformer */
  int layers, hidden, heads, ffn_hidden, vocab;
  bool flash_attention, dropout;
  bool gated_mlp;          /* SwiGLU-style MLP: 3 matrices of h x ffn (Llama) */
  /* Attention and embedding shapes (README "Models"); the defaults are a
  ** GPT-style model counted as Narayanan et al. 2021 do. */
  int kv_heads;            /* key/value heads: heads (MHA), fewer (GQA), 1 (MQA) */
  int head_dim;            /* d: Q is h x (heads d), K and V h x (kv_heads d);
                           ** default hidden / heads */
  bool tie_embeddings;     /* the LM head is the word embedding (default true) */
  ts_position_t position;  /* learned (max_positions x h parameters) or rotary */
  int max_positions;       /* rows of a learned position table; 0: seq_len */
  ts_norm_t norm;          /* LayerNorm (2 h parameters) or RMSNorm (h) */
  ts_bias_t bias;          /* which linear layers have biases (default all) */
  bool final_norm;         /* a norm after the last layer (default false) */
  /* synthetic: one value per stage (arrays of job.stages entries, owned) */
  double *forward_s, *backward_s, *recompute_s, *weight_grad_s;
  double *activation_bytes;         /* stashed per micro-batch per stage */
  double activation_message_bytes;  /* one activation (and gradient) message */
  double *weights_bytes;            /* per stage, default 0 */
  double *forward_transient_bytes;  /* per stage, default 0: held while each
                                    ** forward op of the stage runs (each
                                    ** chunk's op holds all of it) */
  double *backward_transient_bytes; /* likewise for each backward (or input-
                                    ** gradient half) op */
  ts_moe_t moe;                     /* transformer only */
} ts_model_t;

/* The parallel dimensions.  A device has one coordinate per dimension:
** its tensor-parallel rank, expert-parallel lane, data-parallel replica
** and pipeline position (the device's index within its pipeline; with
** more stages than devices, as in Mobius, a position holds many stages). */
typedef enum ts_dim { TS_DIM_TP = 0, TS_DIM_EP, TS_DIM_DP, TS_DIM_PP, TS_DIMS } ts_dim_t;

/* Collective operations (ts_runtime.h runs them; README "Collectives"). */
typedef enum ts_coll_op {
  TS_COLL_ALLREDUCE = 0,
  TS_COLL_REDUCE_SCATTER,
  TS_COLL_ALLGATHER,
  TS_COLL_BROADCAST,
  TS_COLL_ALLTOALL,
  TS_COLL_OPS
} ts_coll_op_t;

/* What a collective is for, for metrics and outputs. */
typedef enum ts_coll_purpose {
  TS_CP_SCHEDULE = 0, /* started by the schedule program itself */
  TS_CP_GRADS,        /* data parallel: a gradient bucket's all-reduce (zero 0)
                      ** or reduce-scatter (zero 1-3) */
  TS_CP_PARAMS,       /* zero 1, 2: all-gather of updated parameters after the
                      ** optimizer step */
  TS_CP_GATHER,       /* zero 3: all-gather of a unit's parameters before its
                      ** forward, recompute or backward */
  TS_CP_TP,           /* tensor parallel: a layer's all-reduce (or, with
                      ** sequence parallelism, reduce-scatter / all-gather) */
  TS_CP_PURPOSES
} ts_coll_purpose_t;

/* "all-reduce", "reduce-scatter", "all-gather", "broadcast", "all-to-all". */
const char *ts_coll_op_name(ts_coll_op_t op);
/* "schedule", "grads", "params", "gather", "tp". */
const char *ts_coll_purpose_name(ts_coll_purpose_t p);
/* 1 for the purposes that belong to data parallelism (grads, params,
** gather). */
static inline bool ts_coll_purpose_is_dp(ts_coll_purpose_t p) {
  return p == TS_CP_GRADS || p == TS_CP_PARAMS || p == TS_CP_GATHER;
}

typedef enum { TS_OPTIMIZER_ADAM = 0, TS_OPTIMIZER_NONE } ts_optimizer_t;
/* The job's collective_algorithm (README "Collectives"): auto (the rule
** of rt_coll_algo.c), ring, hierarchical (two-level: inside the NVLink
** domain, across domains, inside) or tree (NCCL's double binary tree). */
typedef enum {
  TS_CALG_AUTO = 0, TS_CALG_RING, TS_CALG_HIERARCHICAL, TS_CALG_TREE, TS_CALGS
} ts_coll_alg_t;
/* Its name as the job writes it ("auto", "ring", ...). */
const char *ts_coll_alg_name(ts_coll_alg_t a);

#define TS_NAME_MAX 256
#define TS_PATH_MAX 4096

/* A schedule table (the job's "table" file, run by schedule "table";
** README "Schedules from a file"): for each pipeline stage (a device of
** one pipeline) the compute ops it runs, in order.  The schedule sends and
** receives what the ops need; recompute ops are listed or, under recompute
** "full" on a stage that lists none, run before each backward. */
typedef struct ts_table_op {
  ts_kind_t kind; /* a compute kind (TS_FORWARD .. TS_WEIGHT_GRAD) */
  int mb;         /* micro-batch, from 0 */
  int chunk;      /* the stage's model chunk, from 0 (interleaved layouts) */
} ts_table_op_t;

typedef struct ts_table {
  char path[TS_PATH_MAX]; /* the file as resolved; errors name it */
  int n_stages;
  int *n_ops;             /* [n_stages] */
  ts_table_op_t **ops;    /* [n_stages][n_ops[s]]: stage s's op k */
} ts_table_t;

/* Reads a table file (JSON, or CSV when path ends in ".csv"; README
** "Schedules from a file") into *out (free with ts_table_free).  Errors
** name the file and the place (line:column for malformed JSON, the field
** path such as stages[2][5].kind, or line:field for CSV): EX_NOINPUT when
** the file cannot be read, EX_DATAERR for bad content. */
int ts_table_load(const char *path, ts_table_t **out, ts_err_t *err);
void ts_table_free(ts_table_t *t);

typedef struct ts_job {
  char path[TS_PATH_MAX];      /* job file, or "<default job>" */
  char base_dir[TS_PATH_MAX];  /* relative paths in the job resolve here */
  ts_model_t model;
  char platform[TS_PATH_MAX];  /* resolved path, or "ideal" */
  char platform_arg[TS_PATH_MAX]; /* as written in the job (for reports) */
  bool platform_ideal;
  char schedule[64];
  int stages;            /* pipeline stages = devices in the pipeline */
  int microbatches;
  int micro_batch_size;  /* samples per micro-batch (default 1) */
  int seq_len;           /* tokens per sample (default 1024; HF: n_positions) */
  int chunks;            /* model chunks per device (interleaved; default 1) */
  int iterations;        /* iterations simulated (asynchronous schedules; 1) */
  ts_recompute_t recompute;
  char **placement;      /* device -> host name, NULL for platform order */
  int n_placement;
  int devices;           /* devices of the job; default stages (mobius: fewer) */
  int *mapping;          /* [stages] stage -> device (schedules with devices <
                         ** stages); NULL: by mapping_rule */
  char mapping_rule[16]; /* "sequential", "cross", "block" or "explicit" */
  int mapping_groups;    /* root-complex groups for "cross" (default 2) */
  int bytes_per_element; /* default 2 */
  /* How the model's layers are cut into its stages x chunks parts (README
  ** "Partitioning"): uniform (as evenly as possible, earlier parts take
  ** the remainder), balanced (the slowest part's time minimised, LM head
  ** included) or explicit (layers_per_stage). */
  ts_partition_t partition;
  int *layers_per_stage; /* [n_layers_per_stage] explicit split, or NULL */
  int n_layers_per_stage; /* stages x chunks when given */
  /* data parallelism (README "Data parallelism") */
  int data_parallel;     /* d: replicas of the whole pipeline (default 1) */
  char rank_order[32];   /* as written, default "tp-dp-pp" */
  ts_dim_t order[TS_DIMS]; /* rank_order parsed, fastest-varying first (an
                         ** order without "ep" has it right after "tp") */
  int zero;              /* ZeRO stage 0-3 (0: DDP) */
  int fsdp_unit;         /* zero 3: layers per gathering unit (default 1) */
  double gradient_bucket_mb; /* gradient bucket cap in MiB (default 25; the
                         ** first bucket 1 MiB) */
  bool overlap_grad_reduce; /* buckets start during the backward (true) or
                         ** all after it (false) */
  ts_optimizer_t optimizer; /* "adam" (default): the step is simulated;
                         ** "none": no optimizer step */
  /* collectives (README "Collectives") */
  ts_coll_alg_t collective_algorithm; /* default auto */
  int nvlink_domain_size; /* > 0: devices d / size share an NVLink domain;
                         ** 0 (default): the platform's host properties */
  /* tensor parallelism (README "Tensor parallelism") */
  int tensor_parallel;   /* t: devices a layer is split over (default 1) */
  char tensor_parallel_mode[8]; /* "1d" (default), "2d", "2.5d" or "3d" */
  int tensor_parallel_grid; /* q: "2d" t = q x q (Optimus / SUMMA), "2.5d"
                         ** t = q x q x depth (Tesseract), "3d" t = q^3
                         ** (Bian et al.); 0 for "1d" */
  int tensor_parallel_depth; /* d of "2.5d" (default 1) */
  bool tensor_parallel_cube; /* "3d" */
  bool sequence_parallel; /* each all-reduce a reduce-scatter + all-gather;
                         ** LayerNorm and dropout on s / t tokens */
  bool pipeline_scatter_gather; /* pipeline messages of b s h / t per device
                         ** (default true when t > 1) */
  /* platform overrides from --set platform.{link,host}.PATTERN.FIELD */
  struct ts_override {
    char what;           /* 'l' link, 'h' host */
    char pattern[TS_NAME_MAX];
    char field[32];      /* "bandwidth", "latency", "speed" */
    double value;        /* in B/s, s or FLOP/s */
  } *overrides;
  int n_overrides;
  /* "table": the schedule table the job names (path relative to the job
  ** file), read at load; NULL when the job names none.  Only schedule
  ** "table" runs it; other schedules ignore it. */
  ts_table_t *table;
} ts_job_t;

/* Loads a job from a JSON file (path NULL: the shipped default job) and
** applies `--set PATH=VALUE` strings.  Validates every field; errors name
** the file and the field path (or line for malformed JSON) and return
** EX_NOINPUT (missing file), EX_DATAERR (bad content) or EX_USAGE (bad
** --set).  On success *out is owned by the caller (ts_job_free). */
int ts_job_load(const char *path, const char *const *sets, int n_sets,
                ts_job_t **out, ts_err_t *err);
/* As ts_job_load, but validates only the known top-level fields, the
** schedule's name and the counts and sizes (stages, microbatches, chunks,
** iterations, recompute, ...): not the model, the platform, the devices
** or the schedule's rules.  For callers that need the values a job asks
** for before they know whether it is valid (the sweep's adjustments);
** the other fields of *out are unset. */
int ts_job_load_sizes(const char *path, const char *const *sets, int n_sets,
                      ts_job_t **out, ts_err_t *err);
void ts_job_free(ts_job_t *job);

/* ------------------------------------------------------------------ */
/* Layout: virtual stages and where they live                          */
/* ------------------------------------------------------------------ */

/* A job's model is cut into n_vstages virtual stages (stages x chunks for
** the linear schedules).  vstage k runs on device dev[k]; chains are
** linear: activations go k -> next[k], gradients next[k] -> k. */
typedef struct ts_layout {
  int n_devices;
  int n_vstages;
  int *dev;      /* [n_vstages] device of each virtual stage */
  int *stage;    /* [n_vstages] pipeline stage index (0..stages-1) */
  int *chunk;    /* [n_vstages] chunk index on its device */
  int *next;     /* [n_vstages] next virtual stage, -1 at the end */
  int *prev;     /* [n_vstages] previous virtual stage, -1 at the start */
  int *part;     /* [n_vstages] which slice of the model: cost row index */
  int *mb_lo, *mb_hi; /* [n_vstages] micro-batches [lo, hi) pass through the
                      ** stage; hi < 0 means all of them (the default) */
} ts_layout_t;

ts_layout_t *ts_layout_new(int n_devices, int n_vstages);
/* The default: n_vstages = stages x chunks, vstage k on device k % stages,
** chunk k / stages, one chain 0 -> 1 -> ... -> n_vstages - 1. */
ts_layout_t *ts_layout_linear(int stages, int chunks);
void ts_layout_free(ts_layout_t *l);
/* Pipeline rules (src/plan/plan_rules.c): Chimera's two pipelines in
** opposite directions over job->stages positions, and job->stages stages
** mapped onto job->devices positions by the job's mapping (Mobius).
** Caller frees with ts_layout_free. */
ts_layout_t *ts_pipeline_bidirectional(const ts_job_t *job);
ts_layout_t *ts_pipeline_mapped(const ts_job_t *job);

/* ------------------------------------------------------------------ */
/* Parallel plan: every device's coordinates and groups                */
/* ------------------------------------------------------------------ */


/* Groups a device belongs to.  TP, EP, DP: the devices that differ from it
** in that coordinate only, ordered by it; PP: the devices of its pipeline
** (same TP, EP and DP coordinates), ordered by position; REPLICA: the
** devices that hold the same model parts (the same set of cost rows) and
** so must sum their gradients of the replicated weights: the EP lanes and
** DP replicas of a stage, or Chimera's two devices that hold the same pair
** of stages; ordered by device number. */
typedef enum ts_group_kind {
  TS_GROUP_TP = 0, TS_GROUP_EP, TS_GROUP_DP, TS_GROUP_PP, TS_GROUP_REPLICA, TS_GROUP_KINDS
} ts_group_kind_t;

/* One group as seen from a member: n devices dev[0 .. n-1] (owned by the
** plan) and the member's own index rank among them. */
typedef struct ts_group {
  int n, rank;
  const int *dev;
} ts_group_t;

/* How a job is spread over devices.  The schedule's pipeline rule
** (ts_schedule_t.pipeline) gives the virtual stages of one pipeline over
** degree[TS_DIM_PP] positions; the plan replicates that pipeline for every
** combination of the other coordinates.  Numbering (behaviour of every
** schedule so far, README "Parallel plan"):
**   replica r = tp + TP (ep + EP dp) of R = TP x EP x DP;
**   virtual stage k of the pipeline in replica r is plan vstage k R + r,
**   its chain neighbours likewise, its cost row the pipeline's;
**   device of coordinates c: the mixed-radix number of c with
**   order[0] fastest (default order tp, ep, dp, pp: Megatron's
**   "tp-dp-pp" with expert lanes inside the replica).
** Schedules address virtual stages, micro-batches and groups; they never
** compute device numbers. */
typedef struct ts_plan {
  int n_devices;
  int degree[TS_DIMS];
  ts_dim_t order[TS_DIMS];   /* dimensions, fastest-varying first */
  int replicas;              /* R: pipelines (TP x EP x DP) */
  int *coord;                /* [n_devices x TS_DIMS] coordinates */
  ts_layout_t *layout;       /* every virtual stage of every pipeline */
  /* groups, per kind: group_of[d] is d's group, whose members are
  ** members[first[g] .. first[g + 1]); rank_in[d] d's index there */
  int n_groups[TS_GROUP_KINDS];
  int *group_of[TS_GROUP_KINDS], *rank_in[TS_GROUP_KINDS];
  int *first[TS_GROUP_KINDS], *members[TS_GROUP_KINDS];
} ts_plan_t;

/* Builds the plan from one pipeline's layout (owned by the plan from then
** on, also on error) and the degrees of the other dimensions (each >= 1;
** degree[TS_DIM_PP] is taken from pipe->n_devices).  order NULL: the
** default.  Returns 0 and *out (free with ts_plan_free), or EX_DATAERR
** naming path when a degree is below 1, the order does not name every
** dimension once, or the device count overflows. */
int ts_plan_new(ts_layout_t *pipe, const int degree[TS_DIMS], const ts_dim_t *order,
                const char *path, ts_plan_t **out, ts_err_t *err);
/* The plan of a job under its schedule: the schedule's pipeline rule (or
** ts_layout_linear), expert-parallel lanes from model.moe when the
** schedule runs MoE layers, job->data_parallel replicas in job->order,
** and job->tensor_parallel tensor ranks.  Errors as
** ts_plan_new. */
struct ts_schedule;
int ts_plan_for_job(const ts_job_t *job, const struct ts_schedule *s, ts_plan_t **out,
                    ts_err_t *err);
/* One pipeline of the job: its schedule's pipeline rule, or
** ts_layout_linear(stages, chunks).  Caller frees with ts_layout_free. */
ts_layout_t *ts_plan_pipeline(const ts_job_t *job, const struct ts_schedule *s);
/* The devices ts_plan_for_job's plan would have, without building its
** groups (cheap for job checks); *ep (may be NULL) its expert lanes. */
long long ts_plan_job_devices(const ts_job_t *job, const struct ts_schedule *s, int *ep);
void ts_plan_free(ts_plan_t *p);
/* Device of the given coordinates ([TS_DIMS]); -1 when out of range. */
int ts_plan_device(const ts_plan_t *p, const int *coord);
/* Coordinate dim of device d. */
static inline int ts_plan_coord(const ts_plan_t *p, int d, ts_dim_t dim) {
  return p->coord[(size_t)d * TS_DIMS + dim];
}
/* The group of kind k that device d belongs to. */
ts_group_t ts_plan_group(const ts_plan_t *p, ts_group_kind_t k, int d);
/* "tp", "ep", "dp", "pp". */
const char *ts_dim_name(ts_dim_t d);

/* ------------------------------------------------------------------ */
/* Cost model                                                          */
/* ------------------------------------------------------------------ */

/* What one compute op does, for hosts that name a GEMM efficiency curve
** (src/cost/ts_gemm.h, README "Model of time"): count GEMMs of each shape
** (an m x k by k x n product), memory-bound bytes and attention FLOPs. */
typedef struct ts_gemm_shape { double m, n, k, count; } ts_gemm_shape_t;
#define TS_OP_GEMMS 16
typedef struct ts_op_work {
  int n_gemm;
  ts_gemm_shape_t gemm[TS_OP_GEMMS];
  double mem_bytes;  /* read + written by LayerNorm, GELU, softmax, ... */
  double attn_flops; /* flash attention: FLOPs its kernels really do */
  double flops;      /* the op's FLOPs this describes: a piece of f FLOPs
                     ** takes f / flops of the op's time; 0: none */
} ts_op_work_t;

/* Costs of one model part (one virtual stage) for one micro-batch.
** A transformer gives FLOPs (time = flops / device speed); a synthetic
** model gives seconds directly (flops fields are 0). */
typedef struct ts_part_cost {
  int first_layer, n_layers;
  double flops[TS_COMPUTE_KINDS];   /* per compute kind */
  double seconds[TS_COMPUTE_KINDS]; /* synthetic only */
  double act_bytes;       /* stashed from forward to backward, recompute none */
  double act_input_bytes; /* stashed with recompute full (the part's input) */
  double rec_bytes;       /* a recompute adds these at its start and holds
                          ** them until the backward ends (README "Memory") */
  double fwd_tmp_bytes;   /* transient: held while a forward op runs */
  double bwd_tmp_bytes;   /* transient: held while a backward (or its
                          ** input-gradient half) runs */
  double msg_bytes;       /* activation leaving this part (= gradient back) */
  double params;          /* parameters held by this part */
  double weights_bytes, gradients_bytes, optimizer_bytes;
  ts_op_work_t work[TS_COMPUTE_KINDS]; /* transformer: GEMM-curve hosts */
} ts_part_cost_t;

typedef struct ts_cost {
  int n_parts;
  ts_part_cost_t *part;   /* [n_parts] */
  double model_params;    /* whole model (formula, tied embeddings once) */
  double model_flops_per_iteration; /* forward + backward, no recompute */
  bool has_flops;
  struct ts_moe_cost *moe; /* MoE layers and routing (ts_moe.h), or NULL */
} ts_cost_t;

/* Builds the cost table for a job cut into n_parts parts by the job's
** partition (ts_cost_split).  Returns EX_DATAERR (e.g. more parts than
** layers, or a layers_per_stage of another length) with a message naming
** the job file. */
int ts_cost_build(const ts_job_t *job, int n_parts, ts_cost_t **out, ts_err_t *err);
void ts_cost_free(ts_cost_t *c);

/* The layers of each of the n_parts parts of a transformer job, into
** count[n_parts] (README "Partitioning"): uniform splits as evenly as
** possible with earlier parts taking the remainder; balanced minimises the
** slowest part's forward + backward (+ recompute) FLOPs, counting the
** embedding on the first part and the LM head on the last, and among the
** splits that do keeps the parts as even as possible (earlier parts take
** the remainder); explicit copies layers_per_stage.  Needs 1 <= n_parts
** <= model.layers; returns EX_DATAERR naming the job file otherwise, or
** when layers_per_stage does not have n_parts entries. */
int ts_cost_split(const ts_job_t *job, int n_parts, int *count, ts_err_t *err);

/* The balanced split itself: n layers of w FLOPs each into p >= 1
** contiguous parts of at least one layer (1 <= p <= n), the first part
** adding e_first and the last e_last (both when p = 1), minimising the
** largest part's FLOPs; ties as ts_cost_split says.  Writes count[p]. */
void ts_cost_balanced_split(int n, int p, double w, double e_first, double e_last, int *count);

/* Activation bytes one transformer layer keeps for one micro-batch
** (Korthikanti et al. 2022, generalised to bytes_per_element, flash
** attention and dropout; see README "Memory"). */
double ts_cost_layer_activation_bytes(const ts_model_t *m, int seq, int mbs, int bpe);
/* The same per device under 1D tensor parallelism over t ranks, with
** sequence parallelism sp and recompute rec (Korthikanti et al. 2022
** Table 2; README "Tensor parallelism"); t = 1, sp false and rec not
** selective give ts_cost_layer_activation_bytes. */
double ts_cost_tp_layer_activation_bytes(const ts_model_t *m, int seq, int mbs, int bpe, int t,
                                         bool sp, ts_recompute_t rec);
/* The same under 2.5D (Tesseract, Wang et al. 2021) on q x q x d devices:
** SUMMA in each of the d depth layers, A's blocks m / (d q) x k / q:
**   3 (q - 1) / q^2 x sum over GEMMs of (m k / d + k n) x bpe
** (the depth all-reduce of the weight gradients, once an iteration, is
** not included: README "Tensor parallelism"). */
double ts_cost_tp25d_layer_bytes(const ts_model_t *m, int seq, int mbs, int bpe, int q, int d);
/* The same under 3D (Bian et al. 2021) on q^3 devices: per GEMM, forward
** an all-gather of A's block along y, of B's along x and a reduce-scatter
** of C's along z; backward an all-gather of dC along z and reduce-scatters
** of dA along y and dB along x; each block (m k, k n, m n) / q^2:
**   2 (q - 1) / q^3 x sum over GEMMs of (m k + k n + m n) x bpe. */
double ts_cost_tp3d_layer_bytes(const ts_model_t *m, int seq, int mbs, int bpe, int q);
/* Bytes one device sends per transformer layer per micro-batch, forward
** and backward, under 2D tensor parallelism on a q x q grid (Optimus, Xu
** et al. 2021; README "Tensor parallelism"): for each of the layer's four
** GEMMs (m = mbs seq rows, k x n weights) the forward's q row broadcasts
** of A's m/q x k/q blocks and q column broadcasts of B's k/q x n/q blocks,
** and the backward's two SUMMA products (dA = dC B^T, dB = A^T dC: a
** broadcast and a reduce of the same blocks each), a chain over q members
** sending (q - 1) / q of a block per device per step:
**   3 (q - 1) / q^2 x sum over GEMMs of (m k + k n) x bpe.
** q = 1 gives 0. */
double ts_cost_tp2d_layer_bytes(const ts_model_t *m, int seq, int mbs, int bpe, int q);
/* The message of the all-reduce of replicated gradients that a device
** runs over its TP sync group once per iteration, after the data-parallel
** gradient sync and before the optimizer (README "Tensor parallelism"),
** holding `layers` transformer layers (and the final norm when last and
** model.final_norm): the parameters every member holds whole but computes
** only a share of the gradient of.
**   1D with sequence_parallel (Megatron's _allreduce_layernorm_grads, the
**   parameters marked sequence_parallel): per layer the two norms (2 x 2 h
**   for LayerNorm's gain and bias, 2 h for RMSNorm) and the output biases
**   of the two row-split GEMMs (b_o, b_2: 2 h, with model.bias "all"),
**   each rank's share being its tokens'; group: the t ranks.
**   2D (t = q x q) and 2.5D (each depth layer's q x q grid): the two norms
**   whole and the device's grid column's block of every bias, (q_w + 2 kv
**   + h + (k - 1) f + h) / q with model.bias "all" ((q_w + 2 kv) / q with
**   "qkv"), each row block's rows giving a share; group: the q members of
**   its grid column (in its depth layer; 2.5d's depth all-reduce of every
**   gradient then sums the depth layers' shares, README "Tensor
**   parallelism").
** In bytes (bytes_per_element per element); *group is the group's size.
** 0 (and *group 1) for every other job: 1D without SP computes the whole
** gradients on every rank; 3d is not modelled. */
double ts_cost_tp_sync_bytes(const ts_job_t *job, int layers, bool last, int *group);
/* Parameters of the transformer (src/cost/ts_cost.c): 12 l h^2 + 13 l h +
** (V + s) h for a GPT-style model with the default fields; seq is the
** position table's length when model.max_positions is 0. */
double ts_cost_transformer_params(const ts_model_t *m, int seq);

/* ------------------------------------------------------------------ */
/* Timeline                                                            */
/* ------------------------------------------------------------------ */

/* One row of the timeline.  Compute events: device runs kind on vstage for
** micro-batch mb over [start, end].  Transfer events: device sends to peer
** (kind TS_SEND_*), vstage is the sending virtual stage; start is when the
** transfer could begin, end when the data has arrived.  seq orders a
** device's compute events in program order. */
typedef struct ts_event {
  int32_t device, peer, vstage, mb, kind, seq;
  int32_t iteration, flags; /* TS_EVF_* */
  int32_t coll;             /* TS_COLLECTIVE and TS_SEND_COLL: TS_EV_COLL(op,
                            ** purpose, group kind); else 0 */
  double start, end, bytes;
} ts_event_t;

/* The coll field of a collective's events: its op, purpose and group kind. */
#define TS_EV_COLL(op, purpose, group) ((int32_t)(op) | ((int32_t)(purpose) << 8) | ((int32_t)(group) << 16))
#define TS_EV_COLL_OP(c) ((ts_coll_op_t)((c) & 0xff))
#define TS_EV_COLL_PURPOSE(c) ((ts_coll_purpose_t)(((c) >> 8) & 0xff))
#define TS_EV_COLL_GROUP(c) ((int)(((c) >> 16) & 0xff))

/* A forward that kept its full activations although the job recomputes
** (ts_rt_keep_activations): no recompute precedes its backward. */
#define TS_EVF_KEEP 1
/* MoE (schedule gshard): a forward or backward run in pieces.  CONT: not
** its first piece; MORE: not its last; EXPERT: the expert compute of a MoE
** layer; A2A_CALL: a transfer-kind event from a device to itself spanning
** one all-to-all call (from the call to its return). */
#define TS_EVF_CONT 2
#define TS_EVF_MORE 4
#define TS_EVF_EXPERT 8
#define TS_EVF_A2A_CALL 16
#define TS_EVF_A2A_BWD 32 /* with A2A_CALL: the call of a backward */
/* A fetch that also reserved the stage's gradient buffer (backward pass). */
#define TS_EVF_GRADS 64

typedef struct ts_device_info {
  char name[TS_NAME_MAX];  /* host name */
  double speed;            /* sustained FLOP/s used for compute */
  double peak_flops;       /* for MFU (host property peak_flops; else speed) */
  double memory_bytes;     /* capacity (host property memory_bytes; 0 unknown) */
  double memory_bandwidth; /* B/s (host property memory_bandwidth; 0 unknown:
                           ** the optimizer step then takes no time) */
} ts_device_info_t;

/* Traffic of one platform link over the run.  A SPLITDUPLEX link's two
** directions are separate entries ("X_UP", "X_DOWN").  The transfers are
** the run's transfer, fetch and offload events whose route crosses the
** link, each in flight from its start to its end (README "summary.json",
** links[]; ts__link_* in src/out/ts_out.h derive class and utilisation). */
typedef struct ts_link_use {
  char name[TS_NAME_MAX];
  double bandwidth;   /* B/s, as simulated (after --set overrides) */
  double bytes;       /* bytes of every transfer whose route crosses it */
  double busy_s;      /* union of those transfers' spans: time with at
                      ** least one in flight (<= the run's makespan) */
  double flow_s;      /* sum of those transfers' spans */
  int fatpipe;        /* 1: a FATPIPE link (its bandwidth caps each flow
                      ** and is not shared between them), 0: shared */
} ts_link_use_t;

/* What an executor returns: the events sorted by (start, device, seq,
** kind), plus the devices used. */
typedef struct ts_run {
  int n_events, cap_events;
  ts_event_t *events;
  int n_devices;
  ts_device_info_t *devices;
  char executor[32];       /* "simgrid" or "reference" */
  /* reference executor only: measured activation bytes (NULL in sim) */
  double *measured_peak_act_bytes; /* [n_devices] */
  /* simulator only: bytes each platform link carried (links with traffic,
  ** sorted by name; NULL when none) */
  int n_links;
  ts_link_use_t *links;
  /* reference executor only: most weight versions one of the device's
  ** stages held live at once (1 without versions; NULL in sim) */
  int *measured_weight_versions;   /* [n_devices] */
  /* simulator only: the platform's device hosts (not memory endpoints)
  ** the job leaves unused (the first n_devices hosts in platform order,
  ** or the placement's, run the job); 0 on the ideal platform */
  int hosts_unused;
  /* simulator with symmetry folding (README "Symmetry folding"): each
  ** device's representative ([n_devices], owned; fold[d] == d for a
  ** representative).  Only representatives have events (their transfers
  ** as they sent them); a folded device's results are its
  ** representative's (metrics copy them).  NULL: every device simulated. */
  int *fold;
} ts_run_t;

ts_run_t *ts_run_new(int n_devices);
void ts_run_push(ts_run_t *r, const ts_event_t *e);
void ts_run_sort(ts_run_t *r);
void ts_run_free(ts_run_t *r);

/* ------------------------------------------------------------------ */
/* Metrics                                                             */
/* ------------------------------------------------------------------ */

/* Where a device's time goes (README "Time split"): [0, T] cut by what its
** compute stream does, in this order of precedence; the six add up to T. */
typedef struct ts_time_split {
  double compute_s;    /* compute ops */
  double tp_exposed_s; /* waits for tensor-parallel collectives */
  double dp_exposed_s; /* waits for other collectives */
  double optimizer_s;  /* the optimizer step */
  double pp_wait_s;    /* a pipeline message to the device in flight */
  double idle_s;       /* the rest: the bubble proper */
} ts_time_split_t;

typedef struct ts_device_metrics {
  double busy_s, idle_s, bubble_fraction;
  int peak_inflight;       /* max over held parts of in-flight micro-batches */
  double peak_activation_bytes;
  double weights_bytes, gradients_bytes, optimizer_bytes;
  double peak_memory_bytes, memory_capacity_bytes;
  bool fits;
  double send_bytes;       /* point-to-point bytes sent */
  double host_bytes;       /* bytes fetched from and offloaded to host memory */
  double room_wait_s;      /* time fetches waited for device memory */
  double peak_resident_bytes; /* host-memory schedules: peak weights + gradient
                              ** buffers on the device */
  /* collectives and data parallelism (README "Data parallelism") */
  double coll_bytes[TS_COLL_OPS]; /* bytes the device sent in each kind */
  double dp_bytes;         /* bytes sent in data-parallel collectives */
  double dp_comm_s;        /* time inside data-parallel collectives (union of
                           ** their spans on the communication stream) */
  double exposed_comm_s;   /* time the compute stream waited for collectives
                           ** other than tensor-parallel ones */
  double optimizer_s;      /* the optimizer step's duration */
  double gathered_peak_bytes; /* zero 3: most gathered parameters held at once */
  /* tensor parallelism (README "Tensor parallelism"; 0 at t = 1) */
  double tp_bytes;         /* bytes sent in tensor-parallel collectives */
  double tp_comm_s;        /* union of their spans */
  double tp_exposed_s;     /* time the compute stream waited for them */
  /* time split (metrics_time.c) and the union of the spans of the
  ** pipeline messages the device sends or receives */
  ts_time_split_t split;
  double pp_comm_s;
  /* memory over time: (time, activation bytes) steps, owned */
  int n_mem;
  double *mem_t, *mem_bytes;
  /* host-memory schedules: (time, weights + gradient buffers on the
  ** device) steps, owned; n_res 0 otherwise */
  int n_res;
  double *res_t, *res_bytes;
} ts_device_metrics_t;

typedef struct ts_metrics {
  double iteration_time_s;
  double bubble_fraction;
  double bubble_overhead;
  double ideal_time_s;
  double samples_per_s, tokens_per_s;
  double flops_per_s_per_gpu; /* 0 when the model has no FLOPs */
  double mfu;                 /* 0 when the model has no FLOPs */
  double p2p_bytes;           /* point-to-point bytes (not collectives) */
  double pipeline_time_s;     /* end of the last pipeline op (compute or p2p
                              ** transfer), per iteration */
  double optimizer_s;         /* max over devices of the optimizer step */
  double coll_bytes[TS_COLL_OPS]; /* sum over devices */
  double dp_bytes;            /* sum over devices */
  double dp_comm_s, exposed_comm_s; /* max over devices */
  double dp_comm_share;       /* dp_comm_s / makespan */
  double tp_bytes;            /* sum over devices */
  double tp_comm_s, tp_exposed_s; /* max over devices */
  ts_time_split_t split;      /* mean over devices */
  double pp_comm_s;           /* max over devices */
  /* MoE (zeros for dense models): README "Mixture of experts" */
  double alltoall_share;      /* all-to-all call time / (devices x T) */
  double expert_imbalance;    /* max over mean of tokens per expert */
  long long tokens_dropped;   /* token choices beyond capacity */
  double aux_loss;            /* mean over layers, micro-batches, groups */
  double moe_forward_s;       /* mean MoE layer forward: dispatch call start
                              ** to combine call end */
  double moe_backward_s;      /* mean MoE layer backward (combine gradient
                              ** start to dispatch gradient end) */
  int n_expert_load;
  long long *expert_load;     /* [experts] tokens each expert computed, owned */
  int n_devices;
  ts_device_metrics_t *dev;   /* [n_devices] */
} ts_metrics_t;

/* Derives every metric of summary.json from a run.  Never fails. */
ts_metrics_t *ts_metrics_compute(const ts_job_t *job, const struct ts_schedule *sched,
                                 const ts_plan_t *plan, const ts_cost_t *cost,
                                 const ts_run_t *run);
void ts_metrics_free(ts_metrics_t *m);

/* ------------------------------------------------------------------ */
/* Output writers                                                      */
/* ------------------------------------------------------------------ */

/* Everything one simulation produced, for the writers. */
typedef struct ts_result {
  const ts_job_t *job;
  const ts_layout_t *layout;
  const ts_cost_t *cost;
  const ts_run_t *run;
  const ts_metrics_t *metrics;
  const struct ts_schedule *sched; /* the schedule that ran (NULL: none) */
} ts_result_t;

/* The writers of these results (summary.json, timeline.csv, trace.json,
** gantt.svg, report.html), the output-format registry and the atomic file
** writing are the out layer's: src/out/ts_out.h.  The core does not see
** that header, so it cannot call a writer. */

#endif /* TRAINSIM_H */
