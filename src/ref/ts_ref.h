/*
** ts_ref.h: the CPU reference executor of the runtime interface.
**
** The same schedule programs that SimGrid simulates (schedules/) run here on
** POSIX threads, one per device, and every compute op is the real forward,
** recompute or backward of a small float64 GPT (ref_model.h) on that
** device's own copy of the model.  Activations and gradients travel as
** malloc'd copies between the threads.  Collectives (ts_rt_coll_*) run on
** a communication-stream thread per device and move and reduce real
** arrays: the buffer of a device is the concatenation, over its units (the
** layers of the parts, cost rows, it holds, in cost-row order: ts_unit_t),
** of each unit's replicated arrays, its block vector (ts_ref_block_grad
** layout) and, for a MoE layer, its gate (ts_ref_moe_grad's first hidden x
** experts elements); TS_BUF_GRADS is the gradients of the device's own
** model, TS_BUF_WEIGHTS its parameters (in a versioned run, the device
** model's: the sum of the updates' gradients, the initial weights),
** TS_BUF_EXPERT_GRADS / _WEIGHTS the W1 then the W2 of the experts of its
** EP rank at its MoE units (nothing at the others), TS_BUF_NONE nothing.
** A step covers the region of units [unit_lo, unit_hi) of its buffer
** (unit_hi < 0: all); slice k of n is elements [k N / n, (k + 1) N / n)
** of the region.  A step whose slice does not line up
** with the receiver's (another kind, region, slice or length) is an error
** (EX_SOFTWARE, "... the group's members do not hold the same model
** parts"); a program must not compute on its parts while a collective
** over them runs.  The run is measured, not predicted:
** event times come from the monotonic clock and each device's peak of
** stashed activation bytes from its accounting allocator, so a simulated run
** of the same job can be checked against it (`trainsim validate`).
**
** The job decides the model (there is no separate option struct):
**   model.kind must be "transformer" (a synthetic model has no math: an
**   error); its layers, hidden, heads and ffn_hidden are the reference
**   model's shape; gated_mlp must be false (the reference MLP is plain
**   GELU); vocab, flash_attention, dropout and bytes_per_element only shape
**   the simulator's cost model and are ignored here (no embeddings, no
**   dropout, float64 everywhere);
**   seq_len is the sequence length and micro_batch_size the samples per
**   micro-batch;
**   virtual stage v holds the blocks cost->part[layout->part[v]]
**   (first_layer, n_layers) of the cost table built for the job.
** Parameters, inputs X and targets T are drawn from gsl_rng_mt19937 seeded
** with TS_REF_SEED (parameters), TS_REF_SEED + 1 (X) and TS_REF_SEED + 2
** (T).  The batch has lanes x microbatches x iterations x micro_batch_size
** samples, lanes = EP x data_parallel (the data lane of a device is its EP
** coordinate + EP x its DP one); micro-batch mb of lane r reads entry r M +
** mb (M = microbatches x iterations, mbs samples each) of X and T, and the
** loss is divided by the batch's sample count, so the micro-batch gradients
** of all replicas add up to the whole-batch gradient of ts_ref_oracle.
**
** Data parallelism (data_parallel d, zero; README "Data parallelism"): the
** replicas are device threads like the others, each on its own lane, and
** the runtime's gradient buckets, ZeRO gathers and reduce-scatters are real
** collectives over these buffers (whole_ops: the runtime runs each op
** whole).  After a reduce-scatter of gradients a device zeroes its slices
** other than its own (ZeRO: gradients are sharded, later micro-batches add
** into zeros); the optimizer step (ts_exec_ops_t.optimizer; the runtime
** calls it after one iteration with optimizer "adam", not for host_weights
** schedules) is plain SGD, W -= TS_REF_LR x G, on the device's shard of
** each region from its own (summed) gradients; a ZeRO-3 release makes the
** region's weights outside the own shard NaN, so that an op that runs
** without its all-gather gives NaN.
**
** Weight versions.  A run of one iteration computes every micro-batch with
** W(0) (also for a schedule with several weight versions: W(k < 0) = W(0))
** and ends with the runtime's optimizer step, W(1) = W(0) - TS_REF_LR x g
** (none with optimizer "none" or host_weights: the weights stay W(0)).  A
** run of several iterations is versioned: with V =
** max(weight_versions, 1) and d = V - 1, the micro-batches of iteration
** t = mb div microbatches run their forward, recompute and backward with
** the weights W(t - d) (W(k < 0) = W(0) = the initial parameters), and each
** virtual stage, right after its last backward of iteration t (and never
** before the update of t - 1), applies plain SGD to its own blocks:
**   W(t + 1) = W(t) - TS_REF_LR x g_t,  g_t = the sum of iteration t's
**   micro-batch gradients there, all computed with W(t - d).
** For PipeDream-2BW (V = 2) that is its rule, gradients one step stale:
** W(t + 1) = W(t) - lr grad f_t(W(t - 1)); V = 1 over several iterations
** is synchronous SGD, which needs a flush between iterations.  Each stage
** holds its versions as separate parameter buffers, V of them (the update
** of t writes W(t + 1) over W(t - d), whose only user was iteration t),
** and the run checks the semantics as it goes:
**   - an op of iteration t finds W(t - d) already computed on its stage,
**     else the run fails with "reference executor: device D: forward of
**     stage S micro-batch MB (iteration T) needs weight version K, not yet
**     computed: the update of iteration U still waits for N of its m
**     backwards on this stage (...)";
**   - a stage's live versions (the newest, and the one of every iteration
**     with a micro-batch in flight there: forward done, backward not yet;
**     W(k < 0) counts as W(0)) never number more than V, else "... holds N
**     weight versions live ...".  With in-order updates the first check
**     implies this one; it stays as an invariant and gives the peak.
** The update has no op of its own: it runs inside the backward that
** completes the iteration on that stage, and its time counts there.
*/
#ifndef TS_REF_H
#define TS_REF_H

#include "ref_model.h"
#include "trainsim.h"
#include "ts_runtime.h"

/* Seed of the reference model's parameters (X and T use the next two). */
#define TS_REF_SEED 1234UL

/* Learning rate of the plain SGD step of versioned runs and of
** ts_ref_oracle_sgd: small enough that the tiny test models do not diverge
** over a few steps (at 1.0 synchronous SGD blows up), large enough that a
** step changes the next gradient measurably. */
#define TS_REF_LR 0.01

/* The reference model configuration of a job: fills *cfg from the job's
** transformer model and seq_len, seed TS_REF_SEED.  Returns 0, or
** EX_DATAERR naming the job file when the model is synthetic, gated, or
** its shape is not one the reference model accepts. */
int ts_ref_config_for_job(const ts_job_t *job, ts_ref_config_t *cfg, ts_err_t *err);

/* Runs sched on one thread per device with real math.  lay and cost are the
** ones the simulator would use for the job (cost from ts_cost_build of the
** same job; only its layer ranges are read).
**
** On success returns 0 and *out (caller frees with ts_run_free): the events
** sorted as by ts_run_sort, times in seconds of CLOCK_MONOTONIC since the
** start of the run, executor "reference", devices named "cpu<core>" when the
** thread was pinned to that core (devices <= cores) else "thread<d>", speed
** 0, and run->measured_peak_act_bytes[d], the peak of device d's accounting
** allocator (stashed activations only: messages in flight and per-op
** workspace are not counted, as in the simulator's memory model), and
** run->measured_weight_versions[d], the most weight versions one of device
** d's stages held live at once (1 in a run without versions; 2BW: 2).
** When grads is not NULL, *grads receives a new model (caller frees with
** ts_ref_model_free) whose parameters are the final weights, to compare
** with ts_ref_oracle_sgd (one iteration: W(1) as the first device holding
** each block has it after the optimizer step and, ZeRO 1 and 2, the
** parameters' all-gather; ZeRO 3: each slice from the device that owns it
** and updated it; W(0) where no step ran; in a versioned run W(iterations)
** of the stage holding each block) and whose gradients are, for each
** block, those held by the first (lowest-numbered) device holding it, the
** first member of its REPLICA group, except that a slice a device owns
** after a reduce-scatter (ZeRO) comes from that device.  After the
** schedule's gradient all-reduce over that group every member holds the
** sum of every micro-batch's gradient, each taken with the weights it
** computed with (so equal to ts_ref_oracle's when all used W(0), as in
** 2BW over at most two iterations); a schedule that replicates a block
** and does not all-reduce it leaves the first member's share there, a
** wrong gradient.  ts_ref_run_ex's extra->dev_models gives every device's
** own gradients, to check every replica.
** Schedules that keep weights in host memory (host_weights: mobius,
** gpipe-swap) run against a host model: each device's own model holds NaN
** until a fetch copies a stage's blocks in (and again after the eviction),
** and a write-back adds the device's block gradients into the host model
** and zeroes them on the device; copies are synchronous, on the device's
** thread.  *grads is then a copy of the host model: the initial weights
** and the gradients written back.
**
** Errors: EX_DATAERR (not a transformer job, or a cost table whose layer
** ranges do not fit the model), EX_OSERR (thread creation or memory), or
** EX_SOFTWARE for a schedule error or a deadlock ("deadlock: device d waits
** for ...", from the runtime) or a weight-version error (above).  Nothing
** is returned in *out or *grads then.
**
** Side effect: calls ts_ref_allocator_setup (process-wide mallopt) and
** touches, before the clock starts, about as much heap as the devices can
** hold at once (at most 1 GiB).
**
** Approximations (none for GPipe, 1F1B, interleaved 1F1B and 2BW):
** - a split backward (ZB-H1) does all its math in the input-gradient half;
**   that half then holds, in the accounting allocator, as many bytes as the
**   backward released until the weight-gradient op frees them (what a real
**   weight-gradient half needs: the GEMMs' inputs and output gradients),
**   so memory follows the split while the two halves' times do not;
** - a communication stream is a thread, not pinned; its collectives take
**   real time (copies and adds) but no link is modelled. */
int ts_ref_run(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
               const ts_cost_t *cost, ts_run_t **out, ts_ref_model_t **grads, ts_err_t *err);

/* Weight of the MoE auxiliary loss in the reference model's loss: the loss
** adds TS_REF_MOE_AUX / N x (sum over MoE layers, lanes, micro-batches and
** gating groups of the group's auxiliary loss), N the batch's samples. */
#define TS_REF_MOE_AUX 0.01

/* What a run adds beyond ts_ref_run's results (ts_ref_run_ex). */
typedef struct ts_ref_extra {
  int n_devices, n_moe_layers, M, layers;
  /* [n_devices] every device's own model after the run (owned): its
  ** gradients are the device's, after the schedule's collectives, for the
  ** blocks it holds (holds) and, at MoE layers, the gate and the experts
  ** of its EP lane (ts_rt_moe_*); zero elsewhere.  Parameters: the
  ** device's (NaN where a host_weights schedule evicted them). */
  ts_ref_model_t **dev_models;
  /* [n_devices x layers]: 1 where device d holds block l. */
  unsigned char *holds;
  /* MoE jobs: [(d x n_moe_layers + j) x M + mb] token rows device d's
  ** experts computed at MoE layer j for micro-batch mb (from every lane of
  ** its stage, its own included); NULL for a dense job.  Owned. */
  long *expert_rows;
} ts_ref_extra_t;

/* ts_ref_run, also filling *extra when extra is not NULL (free it with
** ts_ref_extra_free, also after an error).  MoE jobs (model.moe) run here
** only: with a schedule that runs MoE layers (gshard, gshard-gpipe), one
** iteration, recompute "none"; else EX_DATAERR.  A MoE run: every device
** holds the tokens of its lane (the plan's EP coordinate: lane r's
** micro-batch mb reads batch entry r x M + mb, and the batch has lanes x
** M x micro_batch_size samples, the loss's normaliser) and its E/EP
** experts; the runtime's MoE pieces run the reference model's MoE blocks
** (ref_moe_layer.h) and the all-to-alls move the real token rows between
** the device threads.  *grads then also holds the MoE gradients: each
** gate's from the first device holding its layer (after the schedule's
** all-reduce over the EP lanes, their sum), each expert's from the device
** holding it; the dense blocks', as for every schedule, from the first
** device holding them. */
int ts_ref_run_ex(const ts_job_t *job, const ts_schedule_t *sched, const ts_plan_t *plan,
                  const ts_cost_t *cost, ts_run_t **out, ts_ref_model_t **grads,
                  ts_ref_extra_t *extra, ts_err_t *err);
void ts_ref_extra_free(ts_ref_extra_t *e);

/* Makes malloc behave like a caching allocator for the rest of the process
** (mallopt: one arena, no trimming, mmap only above 32 MiB), so that freed
** activation memory stays mapped and ops do not pay page faults.
** ts_ref_run calls it; profilers call it before timing ops.  Idempotent. */
void ts_ref_allocator_setup(void);

/* Cores this process may run on (its affinity mask); their numbers go to
** cpus[0 .. min(result, cap)) when cpus is not NULL.  At least 1. */
int ts_ref_cores(int *cpus, int cap);

/* The oracle: one forward and one backward of all blocks on the whole batch
** (every lane's: EP x job->data_parallel of them) on one thread, same
** parameters, X, T and normalisation as ts_ref_run.
** Returns a new model holding the gradients (caller frees), or NULL when the
** job is not one ts_ref_config_for_job accepts or memory runs out. */
ts_ref_model_t *ts_ref_oracle(const ts_job_t *job);

/* The sequential oracle of a versioned run: job->iterations steps of plain
** SGD on one thread, iteration t computing the gradient g_t of its m
** micro-batches of every replica r < d = job->data_parallel (entries r m I
** + t m .. r m I + (t + 1) m - 1 of mbs samples, loss normalised by all d x
** m x iterations x mbs samples, as in ts_ref_run) with the weights
** W(max(t - staleness, 0)), then W(t + 1) = W(t) - TS_REF_LR g_t, from W(0)
** = the initial parameters.  staleness 1 is PipeDream-2BW's rule, 0 plain
** synchronous SGD.  Returns a new model (caller frees) whose parameters are
** W(iterations) and whose gradients are the sum of the g_t; NULL when the
** job is not one ts_ref_config_for_job accepts, staleness < 0, or memory
** runs out. */
ts_ref_model_t *ts_ref_oracle_sgd(const ts_job_t *job, int staleness);

/* Builds the synthetic twin of a transformer job: a job whose cost model
** counts exactly the reference executor's tensors, for the simulator.  cost
** is the job's own cost table (ts_cost_build with the layout's part count);
** part k belongs to stage k % stages, as in the synthetic cost model.
**   forward_s, backward_s, recompute_s   fwd_s[s], bwd_s[s], rec_s[s]: the
**                                        seconds of stage s (all its chunks
**                                        together; rec_s NULL: = fwd_s)
**   activation_bytes[s]                  ts_ref_stash_bytes of the layers of
**                                        stage s for one micro-batch
**   activation_message_bytes             ts_ref_stash_input_bytes (the input
**                                        copy kept under full recompute, and
**                                        the size of every message)
**   weights_bytes[s]                     8 x parameters of stage s
**   forward_transient_bytes              ts_ref_stash_input_bytes (the output
**                                        message a forward fills)
**   backward_transient_bytes             ts_ref_backward_transient_bytes
** (the reference has no embeddings or LM head: nothing stands for the
** formula's terms of those).  With tensor_parallel t > 1 (1d, SP or not,
** or 2d): activation_bytes[s] is one rank's, ts_ref_tp_stash_bytes,
** weights_bytes / t, no transients (the TP path counts none), and the t x
** data_parallel TP ranks and replicas become t x data_parallel replicas,
** the same devices in the same numbering (EX_DATAERR naming rank_order
** unless tp varies right before dp)
** and schedule, stages, microbatches, micro_batch_size, seq_len, chunks,
** iterations, recompute, data_parallel, rank_order, zero, fsdp_unit,
** gradient_bucket_mb, overlap_grad_reduce and optimizer copied from job
** (and, for schedules with
** host_weights, devices, mapping_groups and the mapping: the rule's name or
** the explicit stage -> device list); platform is a path or "ideal".
** The twin is written as JSON to a temporary file, loaded with ts_job_load
** and the file removed; its path then reads "<job path> (reference twin)"
** and its model name "<model name>-twin".  When a stage's parts hold
** different numbers of layers the synthetic model (which splits a stage's
** figures evenly among its chunks) cannot be exact: EX_DATAERR.  Returns 0
** and *out (caller frees with ts_job_free), or a sysexits code. */
int ts_ref_sim_job(const ts_job_t *job, const ts_cost_t *cost, const double *fwd_s,
                   const double *bwd_s, const double *rec_s, const char *platform,
                   ts_job_t **out, ts_err_t *err);

#endif /* TS_REF_H */
