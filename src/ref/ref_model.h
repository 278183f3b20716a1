/*
** ref_model.h: the math of a small GPT-style model in float64, for the CPU
** reference executor.
**
** The model is L pre-LayerNorm transformer blocks on hidden size d with H
** heads, FFN size f and sequence length s, without embeddings or LM head:
**   x1 = x + Attn(LN1(x)),   y = x1 + MLP(LN2(x1)),
** Attn = causal multi-head self-attention with a fused QKV projection
** (d x 3d, bias) and an output projection (d x d, bias); MLP = Linear(d, f)
** -> GELU (tanh approximation) -> Linear(f, d), both with bias; LayerNorm
** with gain and bias, eps 1e-5.  The input of block 0 is a fixed tensor and
** the loss after the last block is 0.5 * sum((y - t)^2) / N, where N is the
** number of samples in the WHOLE batch, so the gradients of the micro-batches
** of one iteration add up to the full-batch gradient.
**
** A pipeline stage is a range of blocks [first, first + count).  A forward
** leaves a stash (ts_ref_stash_t) that the matching backward consumes; the
** stash's tensors are allocated through an accounting allocator
** (ts_ref_mem_t), so a device knows exactly how many activation bytes it
** holds, and the closed forms ts_ref_stash_bytes / ts_ref_stash_input_bytes
** are what the allocator measures.
**
** Tensors are row-major arrays of doubles; an activation has rows = mb * s
** tokens (mb samples of s tokens, sample-major) and d columns.
**
** Thread safety: every function touches only the model and the buffers it is
** given; there are no globals and no static scratch.  Give each thread its
** own model (ts_ref_model_clone) and its own ts_ref_mem_t.
*/
#ifndef TS_REF_MODEL_H
#define TS_REF_MODEL_H

#include <stddef.h>

/* Shape and seed of the model.  All sizes must be positive and hidden a
** multiple of heads. */
typedef struct ts_ref_config {
  int layers, hidden, heads, ffn, seq;
  unsigned long seed; /* seeds gsl_rng_mt19937 for the initial parameters */
  /* Mixture of experts (experts 0: a dense model).  Layer l is a MoE layer
  ** when (l + 1) % moe_every == 0 (ts_moe_is_layer); its block keeps the
  ** dense block's parameter vector (the MLP's part unused, its gradients
  ** zero) and has MoE parameters of its own (ts_ref_moe_params). */
  int experts, expert_ffn, moe_every;
} ts_ref_config_t;

/* All parameters and gradient accumulators of the L blocks. */
typedef struct ts_ref_model ts_ref_model_t;

/* The parameter tensors of one block, in the order they lie in the block's
** flat vector (ts_ref_block_params, ts_ref_block_grad).  Weights are stored
** [in x out] row-major: a linear layer computes y = x W + b. */
typedef enum ts_ref_param {
  TS_REF_LN1_GAIN = 0, /* d */
  TS_REF_LN1_BIAS,     /* d */
  TS_REF_QKV_WEIGHT,   /* d x 3d; columns [0,d) Q, [d,2d) K, [2d,3d) V */
  TS_REF_QKV_BIAS,     /* 3d */
  TS_REF_PROJ_WEIGHT,  /* d x d */
  TS_REF_PROJ_BIAS,    /* d */
  TS_REF_LN2_GAIN,     /* d */
  TS_REF_LN2_BIAS,     /* d */
  TS_REF_FC1_WEIGHT,   /* d x f */
  TS_REF_FC1_BIAS,     /* f */
  TS_REF_FC2_WEIGHT,   /* f x d */
  TS_REF_FC2_BIAS,     /* d */
  TS_REF_PARAM_KINDS
} ts_ref_param_t;

/* Creates a model with deterministic parameters: every weight and bias is
** drawn from N(0, 0.02^2) and every LayerNorm gain is 1 + N(0, 0.02^2), in
** block order and then in ts_ref_param_t order, from gsl_rng_mt19937 seeded
** with c->seed.  Gradients start at zero.  Returns NULL when c is NULL, a
** size is not positive, hidden % heads != 0, or memory runs out.  The caller
** frees the model with ts_ref_model_free. */
ts_ref_model_t *ts_ref_model_new(const ts_ref_config_t *c);

/* Frees a model; accepts NULL. */
void ts_ref_model_free(ts_ref_model_t *m);

/* Deep copy of parameters and gradients (each pipeline device gets its own
** copy).  Returns NULL when m is NULL or memory runs out; the caller frees. */
ts_ref_model_t *ts_ref_model_clone(const ts_ref_model_t *m);

/* The configuration the model was built with (owned by the model). */
const ts_ref_config_t *ts_ref_model_config(const ts_ref_model_t *m);

/* Parameters per block: 4 d^2 + 2 d f + 9 d + f. */
size_t ts_ref_block_param_count(const ts_ref_config_t *c);

/* Offset of one parameter tensor in a block's flat vector; its length goes
** to *len when len is not NULL. */
size_t ts_ref_block_param_offset(const ts_ref_config_t *c, ts_ref_param_t which, size_t *len);

/* Sets every gradient accumulator to zero. */
void ts_ref_model_zero_grad(ts_ref_model_t *m);

/* Gradient of block l as a flat vector (ts_ref_param_t layout) of *n doubles,
** owned by the model; NULL when l is out of range. */
const double *ts_ref_block_grad(const ts_ref_model_t *m, int l, size_t *n);

/* Parameters of block l as a flat writable vector of *n doubles, owned by the
** model; NULL when l is out of range. */
double *ts_ref_block_params(ts_ref_model_t *m, int l, size_t *n);

/* 1 when layer l is a MoE layer of c. */
int ts_ref_is_moe_layer(const ts_ref_config_t *c, int l);

/* MoE parameters of MoE layer l as one flat writable vector of *n doubles
** (owned by the model; NULL when l is not a MoE layer): the gate W_g
** (hidden x experts), then every expert's W1 (hidden x expert_ffn), then
** every expert's W2 (expert_ffn x hidden).  Initial values: W_g zero (so
** that the first step routes as the simulator does, ts_moe.h), W1 and W2
** N(0, 1/hidden) and N(0, 1/expert_ffn) from gsl_rng_mt19937 seeded with
** seed + 3, layer by layer.  ts_ref_moe_grad: the gradients, same layout
** (writable: the executor accumulates into them). */
double *ts_ref_moe_params(ts_ref_model_t *m, int l, size_t *n);
double *ts_ref_moe_grad(const ts_ref_model_t *m, int l, size_t *n);

/* ------------------------------------------------------------------ */
/* Accounting allocator                                                */
/* ------------------------------------------------------------------ */

/* Accounting allocator for stashed tensors: every buffer a forward keeps for
** its backward is allocated through it, so a device knows exactly how many
** activation bytes it holds (current and peak).  One per device/thread; not
** thread-safe by itself.  Start it zeroed: ts_ref_mem_t mem = {0}.
** A backward's gradient buffers (ts_ref_backward_work_bytes) are counted
** while it runs; the forward's and recompute's per-call scratch, and the
** stash's own small bookkeeping struct, are not. */
typedef struct ts_ref_mem { size_t cur, peak; } ts_ref_mem_t;

/* malloc(bytes) counted in *mem (mem may be NULL: no accounting).  Returns
** NULL, and counts nothing, when memory runs out or bytes is 0.  Release with
** ts_ref_mem_free and the same byte count. */
void *ts_ref_mem_alloc(ts_ref_mem_t *mem, size_t bytes);

/* Frees p (NULL is fine and counts nothing) and takes bytes off mem->cur. */
void ts_ref_mem_free(ts_ref_mem_t *mem, void *p, size_t bytes);

/* Counts bytes of a buffer the caller owns (a message) for as long as an
** op uses it, and takes them off again (mem may be NULL).  The executor
** counts a message only during the op that fills or consumes it (README
** "Memory"), as the simulator's op transients do. */
void ts_ref_mem_hold(ts_ref_mem_t *mem, size_t bytes);
void ts_ref_mem_release(ts_ref_mem_t *mem, size_t bytes);

/* ------------------------------------------------------------------ */
/* Forward, recompute, backward                                        */
/* ------------------------------------------------------------------ */

/* The stash one micro-batch leaves between forward and backward for blocks
** [first, first + count).  A full stash keeps, per block, exactly:
**   xhat1  LN1 normalised input            n d
**   rstd1  LN1 inverse standard deviation  n
**   qkv    fused Q, K, V                   3 n d
**   probs  causal softmax probabilities    mb H s^2 (the full s x s square
**                                          per head, zeros above the diagonal)
**   attn   attention output before proj    n d
**   xhat2  LN2 normalised input            n d
**   rstd2  LN2 inverse standard deviation  n
**   hpre   MLP pre-activation (GELU input) n f
**   gelu   GELU output (FC2 input)         n f
** with n = mb s tokens, 8 bytes per double.  The LayerNorm outputs (the QKV
** and FC1 inputs) are rebuilt in the backward from xhat, gain and bias, so
** neither the block input nor the LN outputs are kept.  An input-only stash
** (keep = 0, full recompute) keeps a copy of the stage input, n d doubles. */
typedef struct ts_ref_stash ts_ref_stash_t;

/* What a forward keeps (its keep argument): TS_REF_KEEP_INPUT, a copy of
** the stage input (full recompute); TS_REF_KEEP_ALL, every tensor listed
** above; TS_REF_KEEP_SELECTIVE, all of them but probs (selective
** recompute, Korthikanti et al. 2022): the backward recomputes the
** attention core (the scores' softmax and the attention over V) of each
** block from its kept qkv, in a buffer of ts_ref_core_bytes counted with
** its gradient buffers. */
enum { TS_REF_KEEP_INPUT = 0, TS_REF_KEEP_ALL = 1, TS_REF_KEEP_SELECTIVE = 2 };

/* Forward of blocks [first, first + count) on x (mb_samples * seq rows, d
** columns), writing y (same shape; y may alias x).  With keep
** TS_REF_KEEP_ALL (any value but the two others) it keeps every tensor
** listed above in a new full stash; TS_REF_KEEP_SELECTIVE all but probs;
** with keep == 0 it keeps only a copy of x (what full recompute keeps) in
** an input-only stash.  Stashed
** tensors are allocated through mem (may be NULL).  Returns the stash, which
** the caller hands to ts_ref_backward (or ts_ref_stash_free); NULL, with
** nothing counted or written to m, on a bad range (one that holds a MoE
** layer included: those run through ref_moe_layer.h), mb_samples <= 0, or
** out of memory.  The model's parameters are read, not written. */
ts_ref_stash_t *ts_ref_forward(ts_ref_model_t *m, int first, int count, int mb_samples,
                               const double *x, double *y, int keep, ts_ref_mem_t *mem);

/* Recompute: turns an input-only stash into a full one by running the
** forward again from the stashed input (bitwise the same tensors as a
** keep != 0 forward), allocating the new tensors through mem.  The input
** copy stays until the stash is freed, as a checkpoint keeps its saved
** input until its backward ends (torch.utils.checkpoint's saved tensors),
** so afterwards the stash holds ts_ref_stash_bytes plus
** ts_ref_stash_input_bytes.  A full stash is left alone.  Returns 0, or EX_OSERR (sysexits.h) when
** memory runs out (the stash is then still input-only and nothing more is
** counted). */
int ts_ref_recompute(ts_ref_model_t *m, ts_ref_stash_t *st, ts_ref_mem_t *mem);

/* Backward through the blocks of st, last block first: given dy (gradient of
** the loss with respect to the stage output; not written), writes dx, the
** gradient with respect to the stage input (dx may be NULL for the first
** stage, and may alias dy), ACCUMULATES the parameter gradients into m, then
** frees the stash through mem, block by block as each is done (the input
** copy of a recomputed stash last).  Its gradient buffers,
** ts_ref_backward_work_bytes, are allocated through mem first and freed
** at the end.  An input-only
** stash is recomputed first (as ts_ref_recompute).  Returns 0; EX_USAGE when
** m, st or dy is NULL; or EX_OSERR when memory for workspace runs out.  On
** an error m and dx are untouched and st still belongs to the caller (it may
** have been recomputed). */
int ts_ref_backward(ts_ref_model_t *m, ts_ref_stash_t *st, const double *dy, double *dx,
                    ts_ref_mem_t *mem);

/* Frees a stash without running its backward (mem as for its allocation);
** accepts NULL. */
void ts_ref_stash_free(ts_ref_stash_t *st, ts_ref_mem_t *mem);

/* Non-zero when st holds every tensor its backward needs, zero when it holds
** only the stage input. */
int ts_ref_stash_is_full(const ts_ref_stash_t *st);

/* Bytes of tensors st holds now (what it has counted in its allocator). */
size_t ts_ref_stash_held_bytes(const ts_ref_stash_t *st);

/* Loss and its gradient at the last stage: returns 0.5 * sum((y - t)^2) /
** n_total over n doubles and writes dy = (y - t) / n_total (dy may alias y).
** n_total is the number of samples in the whole batch. */
double ts_ref_loss(const double *y, const double *t, size_t n, double n_total, double *dy);

/* Exact bytes that ts_ref_forward(keep != 0) stashes for count blocks and
** mb_samples samples:
**   8 * count * mb * s * (6 d + 2 f + 2 + H s)
** (the tensor list at ts_ref_stash_t).  0 on a bad config. */
size_t ts_ref_stash_bytes(const ts_ref_config_t *c, int count, int mb_samples);

/* Exact bytes one device stashes for count blocks and mb_samples samples
** under tensor parallelism of degree t (1: none), sequence parallelism sp
** and selective recompute sel: the tensor list at ts_ref_stash_t split as
** Korthikanti et al. 2022 (Table 2) split a layer's activations, and as
** the cost model's ts_cost_tp_layer_activation_bytes does, with n = mb s:
**   R = n (2 d + 2)      xhat1, rstd1, xhat2, rstd2 (the LayerNorms'),
**                        replicated without SP, n / t tokens with SP
**   X = n (4 d + 2 f)    qkv, attn, hpre, gelu: split by heads / columns
**   S = mb H s^2         probs: split by heads; none with sel
** 8 count (R + (X + S) / t) without SP, 8 count (R + X + S) / t with SP.
** ts_ref_stash_bytes is t = 1.  sp 2: the 2D grid (Optimus, t = q^2,
** ref_tp2d.c) blocks every tensor q x q, but keeps the rstd of the n / q
** rows of its row block: 8 count ((2 n d + X + S) / t + 2 n / q).  0 on a
** bad config or when t does not divide heads, hidden, ffn (and mb s with
** SP; the grid: q does not divide mb, heads, hidden, ffn). */
size_t ts_ref_tp_stash_bytes(const ts_ref_config_t *c, int count, int mb_samples, int t, int sp,
                             int sel);

/* Bytes of one block's attention probabilities, mb H s^2 doubles: what a
** selective backward recomputes, block by block, in one buffer. */
size_t ts_ref_core_bytes(const ts_ref_config_t *c, int mb_samples);

/* Attention cores the backwards computing with m recomputed (selective
** recompute), and how many of them rebuilt an attention output that is not
** bitwise the kept one (0 when the recompute is exact). */
long ts_ref_core_recomputes(const ts_ref_model_t *m, long *mismatches);

/* Exact bytes an input-only stash (keep == 0) holds: 8 * mb * s * d. */
size_t ts_ref_stash_input_bytes(const ts_ref_config_t *c, int mb_samples);

/* Exact bytes of the gradient buffers ts_ref_backward allocates through its
** allocator for one call: 8 * (8 n d + n f + s^2), n = mb * s (the output-
** and residual-gradient copies, the LayerNorm rebuild and its gradient, the
** attention-output, f-wide and fused-QKV gradients, and one head's s x s
** probability gradient); a backward of a selective stash adds
** ts_ref_core_bytes.  0 on a bad config. */
size_t ts_ref_backward_work_bytes(const ts_ref_config_t *c, int mb_samples);

/* What the executor's backward op holds on top of the stash:
** ts_ref_backward_work_bytes plus the output-gradient message it consumes
** and the input-gradient message it fills, 8 * n d each. */
size_t ts_ref_backward_transient_bytes(const ts_ref_config_t *c, int mb_samples);

/* FLOPs of one block's forward for mb_samples samples, a multiply-add
** counted as 2: the four matrix products with weights, 2 n (4 d^2 + 2 d f),
** plus the attention score and value products over the full s x s square,
** 4 mb s^2 d (the same as ts_cost's 2 b s (4 h^2 + 2 h f) + 4 b s^2 h).
** LayerNorm, softmax, GELU and bias adds are not counted.  The backward is
** 2x this. */
double ts_ref_block_forward_flops(const ts_ref_config_t *c, int mb_samples);

#endif
