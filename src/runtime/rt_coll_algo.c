/*
** rt_coll_algo.c: the algorithms of the runtime's collectives (README
** "Collectives"), as the steps rt_coll.c sends and receives.
**
** Domains.  A device's NVLink domain is d / nvlink_domain_size when the
** job sets it, else what the executor says (ts_exec_ops_t.domain; SimGrid:
** the host property nvlink_domain, else node).  A group none of whose
** members has a known domain is one domain (a single node: the platform
** says nothing, and every algorithm choice stays as before, ring); a
** member without one, in a group where others have one, is a domain of its
** own.  The group's shape: D domains in order of first appearance among
** the members (group order), member i at local rank l (its index among the
** members of its domain) in domain k; it is regular when every domain has
** the same number m of members.
**
** Algorithms, for a buffer of M bytes over n members:
**   ring: reduce-scatter step s (0 .. n-2): send slice (i - s - 1) mod n
**     to the next member, receive slice (i - s - 2) mod n from the
**     previous one and add it in; after n - 1 steps member i holds the sum
**     of slice i.  All-gather step s: send slice (i - s) mod n, receive
**     slice (i - s - 1) mod n and keep it.  All-reduce: the two in a row.
**     Each member sends 2 (n - 1) / n M (all-reduce) in 2 (n - 1) steps.
**   hierarchical (NCCL's and Megatron's two-level pattern; regular shapes
**     with D > 1 and m > 1): a ring reduce-scatter inside the domain over
**     m slices of M / m (local rank l ends with slice l of m, which is
**     slices l D .. l D + D - 1 of n), a ring all-reduce of that slice
**     among the D members of local rank l (one per domain: slice l D + k
**     of n is member (k, l)'s), and a ring all-gather inside the domain.
**     Each member sends 2 (m - 1) / m M inside its domain and
**     2 (D - 1) / D x M / m across domains, in 2 (m - 1) + 2 (D - 1) steps.
**     Reduce-scatter alone: the first two phases; member (k, l) then owns
**     slice l D + k of n (ts__rt_coll_shard), not slice i as with a ring;
**     all-gather alone: the last two, from those slices.
**   tree (NCCL's double binary tree, all-reduce only): two binary trees
**     over the member ranks, NCCL's ncclGetDtree (tree 0: node r's parent
**     and children by its lowest set bit; tree 1 the mirror r -> n - 1 - r
**     for even n, the shift r -> r + 1 for odd n, so that most members
**     are leaves in one tree and inner nodes in the other).  Half t of the
**     buffer (slice t of 2) is reduced up tree t to its root and broadcast
**     down it.  Not pipelined: each half travels whole, one message per
**     tree edge and direction (2 (n - 1) messages of M / 2 per tree), so
**     its time has about 2 log2(n) message latencies where the ring has
**     2 (n - 1).  A member works on the tree where it is lower first (its
**     height going up, its depth coming down), which lets the trees run
**     at once and cannot deadlock (each wait is for a member strictly
**     closer to the leaves, then to the root).
**   Broadcast: member 0 sends slices 0 .. n-1 to member 1, which forwards
**     each on arrival, and so on along the chain.  All-to-all: member i
**     sends its slice j to member j and keeps slice i; the slice received
**     from member j replaces its slice j.  Whatever the job asks.
**
** Choice (collective_algorithm "auto"), like NCCL's tuning: an all-reduce
** over a group that spans D > 1 domains and of at most TREE_BYTES x D
** bytes runs as a tree; an all-reduce, reduce-scatter or all-gather over
** a regular shape with D > 1 and m > 1 runs hierarchical; everything else
** as a ring.  "ring", "hierarchical" and "tree" force one where it
** applies (hierarchical: a regular shape with D > 1 and m > 1; tree:
** all-reduce) and run a ring elsewhere.
**
** Shapes are computed once per group and device (program context) and
** kept for the run; a collective carries a pointer to its group's.
*/
#include <assert.h>
#include <stdlib.h>

#include "rt_internal.h"
#include "ts_internal.h"

/* Auto: an all-reduce of at most this many bytes per domain spanned runs
** as a tree (NCCL picks trees for latency-bound sizes, up to a few MiB at
** scale). */
#define TREE_BYTES 65536.0

/* The two-level shape of a group as seen from one member. */
typedef struct rt_shape {
  struct rt_shape *next;
  const int *dev;
  int n, rank;
  int D, m;              /* domains; members per domain (0: not regular) */
  int k, l;              /* this member's domain and local rank */
  int *dom;              /* [m] group ranks of its domain, by local rank */
  int *peers;            /* [D] group ranks of local rank l, by domain */
} rt_shape_t;

struct rt_shapes {
  rt_shape_t *head;
};

/* Device d's domain: the job's nvlink_domain_size, else domain(xd, d)
** (NULL: none known, -1). */
static int domain_of(const ts_job_t *job, int (*domain)(void *, int), void *xd, int d) {
  int k = job->nvlink_domain_size;
  if (k > 0) return d / k;
  return domain ? domain(xd, d) : -1;
}

/* qsort orders: (domain id, member) pairs; runs by their first member. */
static int by_id(const void *a, const void *b) {
  const int *x = a, *y = b;
  return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : (x[1] > y[1]) - (x[1] < y[1]);
}

static int by_first(const void *a, const void *b) {
  const int *x = a, *y = b;
  return (x[1] > y[1]) - (x[1] < y[1]);
}

static rt_shape_t *make_shape(const ts_job_t *job, int (*domain)(void *, int), void *xd,
                              const ts_group_t *g) {
  int n = g->n;
  rt_shape_t *s = ts__xcalloc(1, sizeof *s);
  *s = (rt_shape_t){.dev = g->dev, .n = n, .rank = g->rank, .D = 1, .m = n};
  /* pair[2 i]: member's domain id, pair[2 i + 1]: the member */
  int *pair = ts__xmalloc((size_t)n * 2 * sizeof *pair), *di = ts__xmalloc((size_t)n * sizeof *di);
  int *li = ts__xmalloc((size_t)n * sizeof *li), *run = ts__xmalloc((size_t)n * 2 * sizeof *run);
  bool known = false;
  for (int i = 0; i < n; i++) {
    pair[2 * i] = domain_of(job, domain, xd, g->dev[i]);
    pair[2 * i + 1] = i;
    known |= pair[2 * i] >= 0;
  }
  /* Unknown members alone, or all together when no member is known. */
  for (int i = 0; i < n; i++)
    if (!known) pair[2 * i] = 0;
    else if (pair[2 * i] < 0) pair[2 * i] = -2 - i;
  /* Domains in order of first appearance (O(n log n): groups can be large). */
  qsort(pair, (size_t)n, 2 * sizeof *pair, by_id);
  int D = 0;
  for (int i = 0; i < n; i++)
    if (i == 0 || pair[2 * i] != pair[2 * i - 2]) {
      run[2 * D] = i;                  /* where the run starts in pair */
      run[2 * D + 1] = pair[2 * i + 1]; /* its first member */
      D++;
    }
  qsort(run, (size_t)D, 2 * sizeof *run, by_first);
  s->D = D;
  s->m = -1;
  for (int k = 0; k < D; k++) {
    int j = run[2 * k], l = 0;
    for (; j < n && (j == run[2 * k] || pair[2 * j] == pair[2 * j - 2]); j++, l++) {
      di[pair[2 * j + 1]] = k;
      li[pair[2 * j + 1]] = l; /* members ascend within a run */
    }
    if (s->m < 0) s->m = l;
    else if (s->m != l) s->m = 0;
  }
  s->k = di[g->rank];
  s->l = li[g->rank];
  if (s->m > 0) {
    s->dom = ts__xmalloc((size_t)s->m * sizeof *s->dom);
    s->peers = ts__xmalloc((size_t)D * sizeof *s->peers);
    for (int i = 0; i < n; i++) {
      if (di[i] == s->k) s->dom[li[i]] = i;
      if (li[i] == s->l) s->peers[di[i]] = i;
    }
  }
  free(pair);
  free(di);
  free(li);
  free(run);
  return s;
}

/* Program context (or world set-up): g's shape, cached on rt. */
static const rt_shape_t *shape_of(ts_rt_t *rt, const ts_group_t *g) {
  if (!rt->shapes) rt->shapes = ts__xcalloc(1, sizeof *rt->shapes);
  for (rt_shape_t *s = rt->shapes->head; s; s = s->next)
    if (s->dev == g->dev && s->n == g->n && s->rank == g->rank) return s;
  rt_shape_t *s = make_shape(rt->w->job, rt->w->ops->domain, rt->w->xd, g);
  s->next = rt->shapes->head;
  rt->shapes->head = s;
  return s;
}

static void shape_free(rt_shape_t *s) {
  free(s->dom);
  free(s->peers);
  free(s);
}

void ts__rt_coll_shapes_free(ts_rt_t *rt) {
  if (!rt->shapes) return;
  for (rt_shape_t *s = rt->shapes->head, *nx; s; s = nx) {
    nx = s->next;
    shape_free(s);
  }
  free(rt->shapes);
  rt->shapes = NULL;
}

/* ---- choice ---------------------------------------------------------------- */

bool ts__coll_two_level(const ts_job_t *job, const ts_group_t *g, int (*domain)(void *, int),
                        void *xd) {
  rt_shape_t *s = make_shape(job, domain, xd, g);
  bool two = s->D > 1 && s->m > 1;
  shape_free(s);
  return two;
}

ts_coll_alg_t ts__rt_coll_pick(ts_rt_t *rt, rt_coll_t *c) {
  c->shape = NULL;
  bool shaped = c->op == TS_COLL_ALLREDUCE || c->op == TS_COLL_REDUCE_SCATTER ||
                c->op == TS_COLL_ALLGATHER;
  if (!shaped || c->g.n <= 1) return TS_CALG_RING;
  const rt_shape_t *s = shape_of(rt, &c->g);
  bool hier = s->D > 1 && s->m > 1;
  ts_coll_alg_t want = rt->w->job->collective_algorithm, a = TS_CALG_RING;
  if (want == TS_CALG_TREE)
    a = c->op == TS_COLL_ALLREDUCE ? TS_CALG_TREE : TS_CALG_RING;
  else if (want == TS_CALG_HIERARCHICAL)
    a = hier ? TS_CALG_HIERARCHICAL : TS_CALG_RING;
  else if (want == TS_CALG_AUTO) {
    /* Folded runs (which never have hierarchical shapes: sim_fold.c
    ** declines them) run their small all-reduces as rings: the tree's
    ** messages are not the same after the shift that folds a class. */
    if (c->op == TS_COLL_ALLREDUCE && s->D > 1 && c->bytes <= TREE_BYTES * s->D && !rt->w->fold)
      a = TS_CALG_TREE;
    else if (hier)
      a = TS_CALG_HIERARCHICAL;
  }
  if (a == TS_CALG_HIERARCHICAL) c->shape = s;
  return a;
}

int ts__rt_coll_shard(ts_rt_t *rt, const ts_group_t *g) {
  rt_coll_t c = {.op = TS_COLL_REDUCE_SCATTER, .g = *g, .bytes = 0};
  if (ts__rt_coll_pick(rt, &c) != TS_CALG_HIERARCHICAL) return g->rank;
  return c.shape->l * c.shape->D + c.shape->k;
}

/* ---- steps of the algorithms (stream context) ------------------------------ */

static int mod(int a, int n) { return ((a % n) + n) % n; }

/* A ring over the m group ranks r[0 .. m-1] (NULL: 0 .. m-1), this member
** at position me: a reduce-scatter (reduce) or all-gather of the m slices
** base .. base + m - 1 of n_chunks, `part` bytes each; position j ends
** with (reduce-scatter) or starts with (all-gather) slice base + j. */
static void ring(rt_run_coll_t *x, const int *r, int m, int me, bool reduce, int base, int nch,
                 double part) {
  int next = (me + 1) % m, prev = (me + m - 1) % m;
  if (r) next = r[next], prev = r[prev];
  int off = reduce ? 1 : 0;
  if (ts__rt_ring_merged(x, r, m, next, prev, nch, part, reduce, 1)) return;
  for (int s = 0; s < m - 1 && !x->rt->w->failed; s++) {
    int out = base + mod(me - s - off, m), in = base + mod(me - s - off - 1, m);
    ts__rt_step_send(x, next, out, out, nch, part);
    ts__rt_step_recv(x, prev, in, in, nch, reduce);
  }
}

/* The hierarchical phases: reduce-scatter (inside, across) and all-gather
** (across, inside). */
static void hier(rt_run_coll_t *x, bool rs, bool ag) {
  const rt_shape_t *s = x->c->shape;
  int n = x->c->g.n, D = s->D, m = s->m;
  double M = x->c->bytes;
  assert(s && D * m == n);
  if (rs) {
    ring(x, s->dom, m, s->l, true, 0, m, M / m);
    ring(x, s->peers, D, s->k, true, s->l * D, n, M / n);
  }
  if (ag) {
    ring(x, s->peers, D, s->k, false, s->l * D, n, M / n);
    ring(x, s->dom, m, s->l, false, 0, m, M / m);
  }
}

/* NCCL's ncclGetBtree: rank r's parent *u and children *d0, *d1 (-1: none)
** in the binary tree over n ranks rooted at 0. */
static void btree(int n, int r, int *u, int *d0, int *d1) {
  int bit = 1;
  while (bit < n && !(bit & r)) bit <<= 1;
  if (r == 0) {
    *u = -1;
    *d0 = -1;
    *d1 = n > 1 ? bit >> 1 : -1;
    return;
  }
  int up = (r ^ bit) | (bit << 1);
  if (up >= n) up = r ^ bit;
  *u = up;
  int low = bit >> 1;
  *d0 = low == 0 ? -1 : r - low;
  int down = low == 0 ? -1 : r + low;
  while (down >= n) {
    down = low == 0 ? -1 : r + low;
    low >>= 1;
  }
  *d1 = down;
}

/* Tree t (0, 1) of NCCL's double binary tree (ncclGetDtree). */
static void dtree(int n, int r, int t, int *u, int *c0, int *c1) {
  if (t == 0) {
    btree(n, r, u, c0, c1);
  } else if (n % 2) { /* shifted by one */
    btree(n, (r - 1 + n) % n, u, c0, c1);
    *u = *u < 0 ? -1 : (*u + 1) % n;
    *c0 = *c0 < 0 ? -1 : (*c0 + 1) % n;
    *c1 = *c1 < 0 ? -1 : (*c1 + 1) % n;
  } else { /* mirrored */
    btree(n, n - 1 - r, u, c0, c1);
    *u = *u < 0 ? -1 : n - 1 - *u;
    *c0 = *c0 < 0 ? -1 : n - 1 - *c0;
    *c1 = *c1 < 0 ? -1 : n - 1 - *c1;
  }
}

static int tree_height(int n, int r, int t) {
  int u, c[2], h = 0;
  dtree(n, r, t, &u, &c[0], &c[1]);
  for (int i = 0; i < 2; i++)
    if (c[i] >= 0) {
      int hc = 1 + tree_height(n, c[i], t);
      if (hc > h) h = hc;
    }
  return h;
}

static int tree_depth(int n, int r, int t) {
  int depth = 0, u, c0, c1;
  for (dtree(n, r, t, &u, &c0, &c1); u >= 0; dtree(n, u, t, &u, &c0, &c1)) depth++;
  return depth;
}

static void tree(rt_run_coll_t *x) {
  int n = x->c->g.n, i = x->c->g.rank;
  double half = x->c->bytes / 2;
  int u[2], c[2][2], key[2][2];
  for (int t = 0; t < 2; t++) {
    dtree(n, i, t, &u[t], &c[t][0], &c[t][1]);
    key[0][t] = tree_height(n, i, t);
    key[1][t] = tree_depth(n, i, t);
  }
  for (int phase = 0; phase < 2; phase++) {
    int first = key[phase][1] < key[phase][0] ? 1 : 0;
    for (int k = 0; k < 2 && !x->rt->w->failed; k++) {
      int t = k ? 1 - first : first;
      if (phase == 0) { /* up: the children's sums into half t, then on */
        for (int j = 0; j < 2; j++)
          if (c[t][j] >= 0) ts__rt_step_recv(x, c[t][j], t, t, 2, 1);
        if (u[t] >= 0) ts__rt_step_send(x, u[t], t, t, 2, half);
      } else { /* down: the sum of half t from the parent, then on */
        if (u[t] >= 0) ts__rt_step_recv(x, u[t], t, t, 2, 0);
        for (int j = 0; j < 2; j++)
          if (c[t][j] >= 0) ts__rt_step_send(x, c[t][j], t, t, 2, half);
      }
    }
  }
}

void ts__rt_coll_run_alg(rt_run_coll_t *x) {
  const rt_coll_t *c = x->c;
  int n = c->g.n, i = c->g.rank;
  double part = c->bytes / n;
  bool h = c->alg == TS_CALG_HIERARCHICAL;
  switch (c->op) {
  case TS_COLL_ALLREDUCE:
    if (c->alg == TS_CALG_TREE) {
      tree(x);
    } else if (h) {
      hier(x, true, true);
    } else if (!ts__rt_ring_merged(x, NULL, n, (i + 1) % n, (i + n - 1) % n, n, part, true, 2)) {
      ring(x, NULL, n, i, true, 0, n, part);
      ring(x, NULL, n, i, false, 0, n, part);
    }
    break;
  case TS_COLL_REDUCE_SCATTER:
    if (h) hier(x, true, false);
    else ring(x, NULL, n, i, true, 0, n, part);
    break;
  case TS_COLL_ALLGATHER:
    if (h) hier(x, false, true);
    else ring(x, NULL, n, i, false, 0, n, part);
    break;
  case TS_COLL_BROADCAST:
    for (int k = 0; k < n && !x->rt->w->failed; k++) {
      if (i > 0) ts__rt_step_recv(x, i - 1, k, k, n, 0);
      if (i < n - 1) ts__rt_step_send(x, i + 1, k, k, n, part);
    }
    break;
  case TS_COLL_ALLTOALL:
    /* slice j goes to member j, where it becomes slice i */
    for (int k = 1; k < n; k++) ts__rt_step_send(x, (i + k) % n, (i + k) % n, i, n, part);
    for (int k = 1; k < n && !x->rt->w->failed; k++) {
      int j = mod(i - k, n);
      ts__rt_step_recv(x, j, j, i, n, 0);
    }
    break;
  default:
    assert(0 && "collective kind checked in ts_rt_coll_start");
  }
}
