/*
** ts_paje.c: paje.trace, the run's events as a Paje trace, the format
** SimGrid's own tracing writes and ViTE (and pajeng) open.
**
** The file starts with the %EventDef header SimGrid writes (same event
** names and numbers, fields named as its non-basic header), extended by
** extra fields on PajePushState (Label, Microbatch, Stage, Chunk) and
** PajeStartLink (Label, Bytes), which Paje readers keep and show.  Then:
**
**   container types  D "device" under the root 0; under each device its
**                    lanes: C "compute" (compute ops, the optimizer step,
**                    comm waits), S "collectives" (the communication
**                    stream's collectives) and W "memory wait" (fetches
**                    waiting for device memory); M "host memory" under 0.
**   state types      OP on C, COLL on S, WAIT on W; one entity value per
**                    kind (and per collective op), with colours.
**   link types       P2P (D to D: activations, gradients, collective
**                    steps, MoE all-to-all flows), FETCH (M to D) and
**                    OFFLOAD (D to M); values are the kinds' names.
**   event type       EV on D: a stage's weights evicted (instant).
**
** One container per device ("device 3 (gpu3.node0)", alias d3) and one per
** lane actually used ("compute", alias c3.0; "compute 2", c3.1, only should
** ops overlap on a device, which a valid run never does; collectives s3.K
** and memory waits w3.K likewise, created only when the run has them).
** Each lane's ops never overlap (the first lane whose last op has ended
** takes the next, as in trace.json), so an op is a PajePushState at its
** start and a PajePopState at its end; a transfer is a PajeStartLink on
** the root at its start and a PajeEndLink at its end, keyed by its index
** in the run ("e17").  Records are sorted by time, ties in the order of
** the run's events (a lane's pop before its next push), so times never
** decrease.  Times are seconds printed from whole nanoseconds with nine
** decimals; containers are created at 0 and destroyed at the last end.
** Events left out of trace.json (a device outside the run, an unknown
** kind, non-finite or negative times) are left out here; a transfer whose
** peer is no device of the run is left out too.  Output is byte-for-byte
** deterministic.  --devices and --kinds keep fewer events (a transfer to a
** device left out is left out); the size limit (100 MB by default,
** --paje-max-mb) stops new states and links from a time on while those
** open still end, and a last "#" line and stderr say so.  Records are
** assembled without printf (ts_fmt_num.c).
*/
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_out.h"
#include "ts_internal.h"

/* Lane groups of a device: compute, communication stream, memory waits. */
enum { G_COMP, G_COLL, G_WAIT, G_N };
static const char group_type[G_N] = {'C', 'S', 'W'};
static const char *const group_name[G_N] = {"compute", "collectives", "memory wait"};
static const char *const group_state[G_N] = {"OP", "COLL", "WAIT"};

/* How an event is drawn. */
typedef enum { AS_NONE, AS_STATE, AS_LINK, AS_EVENT } draw_t;

/* One line of the time-ordered body. */
typedef enum { R_PUSH, R_POP, R_START, R_END, R_NEW } rec_kind_t;
typedef struct rec {
  int64_t t;   /* ns */
  int64_t gen; /* generation order: the tie-break */
  int ev;      /* index in run->events */
  int kind;    /* rec_kind_t */
} rec_t;

/* Per device and group: when each lane's last op ends (ns). */
typedef struct lanes {
  int n, cap;
  int64_t *last_end;
} lanes_t;

/* Names of the state values beyond the compute kinds. */
static const char *const extra_state[] = {"optimizer", "comm_wait", "room_wait"};

/* Okabe-Ito colours (Paje "r g b" in 0..1) of the compute kinds, in
** ts_kind_t order, then optimizer, comm_wait, room_wait. */
static const char *const state_colour[TS_COMPUTE_KINDS + 3] = {
    "0.337 0.706 0.914", /* forward: sky blue */
    "0.835 0.369 0.000", /* backward: vermilion */
    "0.941 0.894 0.259", /* recompute: yellow */
    "0.902 0.624 0.000", /* backward_input: orange */
    "0.000 0.620 0.451", /* weight_grad: bluish green */
    "0.800 0.475 0.655", /* optimizer: reddish purple */
    "0.600 0.600 0.600", /* comm_wait: grey */
    "0.750 0.750 0.750", /* room_wait: light grey */
};

/* Seconds with nine decimals from ns (>= 0). */
static void put_time(ts__lb_t *f, int64_t ns) {
  char buf[64];
  int n = ts__fmt_int(buf, (long long)(ns / 1000000000));
  int64_t r = ns % 1000000000;
  buf[n++] = '.';
  for (int64_t div = 100000000; div > 0; div /= 10) buf[n++] = (char)('0' + r / div % 10);
  buf[n] = 0;
  ts__lb_s(f, buf);
}

/* A quoted Paje string: double quotes, backslashes and control characters
** become '?'. */
static void put_str(ts__lb_t *f, const char *s) {
  ts__lb_c(f, '"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    ts__lb_c(f, (char)(c < 0x20 || c == '"' || c == '\\' ? '?' : c));
  }
  ts__lb_c(f, '"');
}

/* A whole number exactly, anything else with %.17g; non-finite: 0. */
static void put_num(ts__lb_t *f, double v) {
  if (!isfinite(v)) v = 0;
  if (v == floor(v) && fabs(v) < 9e15)
    ts__lb_i(f, (long long)v);
  else
    ts__lb_g17(f, v);
}

static void header(FILE *f) {
  static const char *const defs[] = {
      "PajeDefineContainerType 0", "Alias string", "Type string", "Name string", NULL,
      "PajeDefineVariableType 1", "Alias string", "Type string", "Name string", "Color color", NULL,
      "PajeDefineStateType 2", "Alias string", "Type string", "Name string", NULL,
      "PajeDefineEventType 3", "Alias string", "Type string", "Name string", NULL,
      "PajeDefineLinkType 4", "Alias string", "Type string", "StartContainerType string",
      "EndContainerType string", "Name string", NULL,
      "PajeDefineEntityValue 5", "Alias string", "Type string", "Name string", "Color color", NULL,
      "PajeCreateContainer 6", "Time date", "Alias string", "Type string", "Container string",
      "Name string", NULL,
      "PajeDestroyContainer 7", "Time date", "Type string", "Name string", NULL,
      "PajePushState 12", "Time date", "Type string", "Container string", "Value string",
      "Label string", "Microbatch int", "Stage int", "Chunk int", NULL,
      "PajePopState 13", "Time date", "Type string", "Container string", NULL,
      "PajeStartLink 15", "Time date", "Type string", "Container string", "Value string",
      "StartContainer string", "Key string", "Label string", "Bytes double", NULL,
      "PajeEndLink 16", "Time date", "Type string", "Container string", "Value string",
      "EndContainer string", "Key string", NULL,
      "PajeNewEvent 17", "Time date", "Type string", "Container string", "Value string", NULL,
      NULL};
  for (int i = 0; defs[i]; i++) {
    fprintf(f, "%%EventDef %s\n", defs[i]);
    for (i++; defs[i]; i++) fprintf(f, "%%       %s\n", defs[i]);
    fputs("%EndEventDef\n", f);
  }
}

static bool event_kept(const ts_run_t *run, const ts_event_t *e) {
  return e->device >= 0 && e->device < run->n_devices && e->kind >= 0 &&
         e->kind < TS_KIND_COUNT && isfinite(e->start) && isfinite(e->end) && e->start >= 0 &&
         e->end >= e->start;
}

/* How e is drawn, and for a state its lane group. */
static draw_t draw_of(const ts_run_t *run, const ts_event_t *e, int *group, const ts_out_opts_t *o) {
  if (!event_kept(run, e) || !ts__out_keeps(o, e)) return AS_NONE;
  ts_kind_t k = (ts_kind_t)e->kind;
  *group = k == TS_COLLECTIVE ? G_COLL : k == TS_ROOM_WAIT ? G_WAIT : G_COMP;
  if (ts_kind_is_compute(k) || ts_kind_is_stream(k) || k == TS_ROOM_WAIT) return AS_STATE;
  if (k == TS_EVICT) return AS_EVENT;
  if (k == TS_FETCH || k == TS_OFFLOAD) return AS_LINK;
  if (ts_kind_is_transfer(k) && e->peer >= 0 && e->peer < run->n_devices &&
      (!o || ts_devlist_has(&o->devices, e->peer)))
    return AS_LINK;
  return AS_NONE;
}

/* The first lane free at start, or a new one; records end on it. */
static int lane_take(lanes_t *l, int64_t start, int64_t end) {
  int k;
  for (k = 0; k < l->n; k++)
    if (l->last_end[k] <= start) break;
  if (k == l->n) {
    if (l->n == l->cap) {
      l->cap = l->cap ? 2 * l->cap : 2;
      l->last_end = ts__xrealloc(l->last_end, (size_t)l->cap * sizeof *l->last_end);
    }
    l->n++;
  }
  l->last_end[k] = end;
  return k;
}

/* The state value alias of a state event: "v<kind>" for the compute
** kinds, the optimizer, comm waits and room waits, "c<op>" for a
** collective. */
static void put_state_value(ts__lb_t *f, const ts_event_t *e) {
  if (e->kind == TS_COLLECTIVE) {
    ts__lb_c(f, 'c');
    ts__lb_i(f, (int)TS_EV_COLL_OP(e->coll) < TS_COLL_OPS ? (int)TS_EV_COLL_OP(e->coll) : 0);
  } else {
    ts__lb_c(f, 'v');
    ts__lb_i(f, e->kind);
  }
}

/* Type definitions, entity values and containers (at time 0). */
static void define(ts__lb_t *b, const ts_run_t *run, lanes_t (*lanes)[G_N], bool host, const ts_out_opts_t *o) {
  FILE *f = b->f;
  fputs("0 D 0 \"device\"\n", f);
  for (int g = 0; g < G_N; g++) fprintf(f, "0 %c D \"%s\"\n", group_type[g], group_name[g]);
  fputs("0 M 0 \"host memory\"\n", f);
  for (int g = 0; g < G_N; g++) fprintf(f, "2 %s %c \"%s\"\n", group_state[g], group_type[g],
                                        g == G_COMP ? "op" : g == G_COLL ? "collective" : "wait");
  fputs("3 EV D \"evict\"\n", f);
  fputs("4 P2P 0 D D \"transfer\"\n4 FETCH 0 M D \"fetch\"\n4 OFFLOAD 0 D M \"offload\"\n", f);
  for (int k = 0; k < TS_COMPUTE_KINDS; k++)
    fprintf(f, "5 v%d OP \"%s\" \"%s\"\n", k, ts_kind_name((ts_kind_t)k), state_colour[k]);
  const int extra_kind[] = {TS_OPTIMIZER, TS_COMM_WAIT, TS_ROOM_WAIT};
  for (int i = 0; i < 3; i++)
    fprintf(f, "5 v%d %s \"%s\" \"%s\"\n", extra_kind[i], i < 2 ? "OP" : "WAIT", extra_state[i],
            state_colour[TS_COMPUTE_KINDS + i]);
  for (int k = 0; k < TS_COLL_OPS; k++)
    fprintf(f, "5 c%d COLL \"%s\" \"%s\"\n", k, ts_coll_op_name((ts_coll_op_t)k),
            k % 2 ? "0.000 0.447 0.698" : "0.337 0.706 0.914");
  for (int k = TS_SEND_ACT; k <= TS_SEND_COMBINE; k++)
    fprintf(f, "5 l%d P2P \"%s\" \"0.2 0.2 0.2\"\n", k, ts_kind_name((ts_kind_t)k));
  fprintf(f, "5 l%d FETCH \"fetch\" \"0.0 0.447 0.698\"\n", TS_FETCH);
  fprintf(f, "5 l%d OFFLOAD \"offload\" \"0.835 0.369 0.0\"\n", TS_OFFLOAD);
  fprintf(f, "5 x%d EV \"evict\" \"0.0 0.0 0.0\"\n", TS_EVICT);
  for (int d = 0; d < run->n_devices; d++) {
    if (o && !ts_devlist_has(&o->devices, d)) continue;
    char label[TS_NAME_MAX + 32];
    ts__device_label(run, d, label, sizeof label);
    fprintf(f, "6 0.000000000 d%d D 0 ", d);
    put_str(b, label);
    ts__lb_c(b, '\n');
    ts__lb_flush(b, f);
    for (int g = 0; g < G_N; g++) {
      int n = lanes[d][g].n;
      if (g == G_COMP && n < 1) n = 1; /* every device has its compute lane */
      for (int k = 0; k < n; k++) {
        fprintf(f, "6 0.000000000 %c%d.%d %c d%d \"%s", group_type[g] + 32, d, k, group_type[g], d,
                group_name[g]);
        if (k) fprintf(f, " %d", k + 1);
        fputs("\"\n", f);
      }
    }
  }
  if (host) fputs("6 0.000000000 m M 0 \"host memory\"\n", f);
}

static int rec_cmp(const void *a, const void *b) {
  const rec_t *x = a, *y = b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  return (x->gen > y->gen) - (x->gen < y->gen);
}

/* The stage and chunk of e's virtual stage (the vstage and 0 without a
** layout entry). */
static void stage_of(const ts_result_t *r, const ts_event_t *e, int *stage, int *chunk) {
  const ts_layout_t *L = r->layout;
  *stage = e->vstage;
  *chunk = 0;
  if (L && e->vstage >= 0 && e->vstage < L->n_vstages) {
    *stage = L->stage[e->vstage];
    *chunk = L->chunk[e->vstage];
  }
}

/* A state's label: "F3" style for compute ops, ts__coll_label for
** collectives, the kind's name for the rest. */
static void state_label(char *buf, size_t n, const ts_result_t *r, const ts_event_t *e) {
  static const char letter[TS_COMPUTE_KINDS] = {'F', 'B', 'R', 'b', 'W'};
  if (ts_kind_is_compute((ts_kind_t)e->kind))
    snprintf(buf, n, "%c%d", letter[e->kind], e->mb + 1);
  else if (e->kind == TS_COLLECTIVE)
    ts__coll_label(buf, n, r, e);
  else
    snprintf(buf, n, "%s", ts_kind_name((ts_kind_t)e->kind));
}

/* " " then s */
static void sp_s(ts__lb_t *f, const char *s) {
  ts__lb_c(f, ' ');
  ts__lb_s(f, s);
}

/* " " then the letter and the number: " d3", " l5", " e17" */
static void sp_ci(ts__lb_t *f, char c, long long v) {
  ts__lb_c(f, ' ');
  ts__lb_c(f, c);
  ts__lb_i(f, v);
}

/* Writes one body record. */
static void put_rec(ts__lb_t *f, const ts_result_t *r, const rec_t *x, const int *lane, const int *grp) {
  const ts_event_t *e = &r->run->events[x->ev];
  char cont[48], label[160];
  int g = grp[x->ev];
  int cn = 0;
  cont[cn++] = (char)(group_type[g] + 32);
  cn += ts__fmt_int(cont + cn, e->device);
  cont[cn++] = '.';
  ts__fmt_int(cont + cn, lane[x->ev]);
  bool fetch = e->kind == TS_FETCH, offload = e->kind == TS_OFFLOAD;
  const char *ltype = fetch ? "FETCH" : offload ? "OFFLOAD" : "P2P";
  int stage, chunk;
  stage_of(r, e, &stage, &chunk);
  switch ((rec_kind_t)x->kind) {
  case R_PUSH:
    state_label(label, sizeof label, r, e);
    ts__lb_s(f, "12 ");
    put_time(f, x->t);
    sp_s(f, group_state[g]);
    sp_s(f, cont);
    ts__lb_c(f, ' ');
    put_state_value(f, e);
    ts__lb_c(f, ' ');
    put_str(f, label);
    ts__lb_c(f, ' ');
    ts__lb_i(f, e->mb);
    ts__lb_c(f, ' ');
    ts__lb_i(f, stage);
    ts__lb_c(f, ' ');
    ts__lb_i(f, chunk);
    ts__lb_c(f, '\n');
    break;
  case R_POP:
    ts__lb_s(f, "13 ");
    put_time(f, x->t);
    sp_s(f, group_state[g]);
    sp_s(f, cont);
    ts__lb_c(f, '\n');
    break;
  case R_START:
    ts__lb_s(f, "15 ");
    put_time(f, x->t);
    sp_s(f, ltype);
    ts__lb_s(f, " 0");
    sp_ci(f, 'l', e->kind);
    if (fetch) ts__lb_s(f, " m");
    else sp_ci(f, 'd', e->device);
    sp_ci(f, 'e', x->ev);
    ts__lb_c(f, ' ');
    if (fetch || offload) snprintf(label, sizeof label, "%s s%d", ts_kind_name((ts_kind_t)e->kind), stage);
    else if (e->kind == TS_SEND_COLL) ts__coll_label(label, sizeof label, r, e);
    else {
      size_t n = strlen(ts_kind_name((ts_kind_t)e->kind));
      memcpy(label, ts_kind_name((ts_kind_t)e->kind), n);
      label[n] = ' ';
      ts__fmt_int(label + n + 1, e->mb + 1);
    }
    put_str(f, label);
    ts__lb_c(f, ' ');
    put_num(f, e->bytes);
    ts__lb_c(f, '\n');
    break;
  case R_END:
    ts__lb_s(f, "16 ");
    put_time(f, x->t);
    sp_s(f, ltype);
    ts__lb_s(f, " 0");
    sp_ci(f, 'l', e->kind);
    if (offload) ts__lb_s(f, " m");
    else sp_ci(f, 'd', fetch ? e->device : e->peer);
    sp_ci(f, 'e', x->ev);
    ts__lb_c(f, '\n');
    break;
  case R_NEW:
    ts__lb_s(f, "17 ");
    put_time(f, x->t);
    ts__lb_s(f, " EV");
    sp_ci(f, 'd', e->device);
    sp_ci(f, 'x', e->kind);
    ts__lb_c(f, '\n');
    break;
  }
}

int ts_write_paje(const ts_result_t *r, FILE *f) { return ts_write_paje_opts(r, NULL, f); }

/* The body records in time order, cut where the size limit is reached:
** from there on no op or transfer starts, and those already started end.
** Returns the records written; *cut_t: the time of the first left out. */
static int write_body(ts__lb_t *b, const ts_result_t *r, const rec_t *recs, int nr, const int *lane,
                      const int *grp, long long room, int64_t *cut_t, int *started_n) {
  bool *started = ts__xcalloc((size_t)(r->run->n_events > 0 ? r->run->n_events : 1), sizeof *started);
  bool cut = false;
  int written = 0;
  for (int i = 0; i < nr; i++) {
    const rec_t *x = &recs[i];
    bool opens = x->kind == R_PUSH || x->kind == R_START || x->kind == R_NEW;
    if (opens && !cut && room >= 0 && ts__lb_size(b) >= room) {
      cut = true;
      *cut_t = x->t;
    }
    if (cut && (opens ? true : !started[x->ev])) continue;
    if (opens) {
      started[x->ev] = true;
      ++*started_n;
    }
    put_rec(b, r, x, lane, grp);
    written++;
  }
  free(started);
  return cut ? written : -1;
}

int ts_write_paje_opts(const ts_result_t *r, const ts_out_opts_t *o, FILE *f) {
  const ts_run_t *run = r->run;
  int n = run->n_events, nd = run->n_devices;
  lanes_t (*lanes)[G_N] = ts__xcalloc((size_t)(nd > 0 ? nd : 1), sizeof *lanes);
  int *lane = ts__xcalloc((size_t)(n > 0 ? n : 1), sizeof *lane);
  int *grp = ts__xcalloc((size_t)(n > 0 ? n : 1), sizeof *grp);
  /* Start records come in time order (the events are sorted by start, and
  ** their generation numbers grow); only the end records need a sort,
  ** then the two merge (rec_cmp's order, as one sort of all would give). */
  rec_t *starts = ts__xcalloc((size_t)(n > 0 ? n : 1), sizeof *starts);
  rec_t *ends = ts__xcalloc((size_t)(n > 0 ? n : 1), sizeof *ends);
  int ns = 0, ne = 0;
  bool in_order = true; /* a hand-built run may not be sorted */
  ts__lb_t *b = ts__xcalloc(1, sizeof *b);
  b->f = f;
  int nr = 0, kept = 0;
  int64_t t_end = 0;
  bool host = false;
  for (int i = 0; i < n; i++) {
    const ts_event_t *e = &run->events[i];
    int g = G_COMP;
    draw_t how = draw_of(run, e, &g, o);
    if (how == AS_NONE) continue;
    kept++;
    int64_t t0 = ts__to_ns(e->start), t1 = ts__to_ns(e->end);
    if (t1 > t_end) t_end = t1;
    grp[i] = g;
    if (how == AS_STATE) lane[i] = lane_take(&lanes[e->device][g], t0, t1);
    if (e->kind == TS_FETCH || e->kind == TS_OFFLOAD) host = true;
    rec_kind_t first = how == AS_STATE ? R_PUSH : how == AS_LINK ? R_START : R_NEW;
    starts[ns++] = (rec_t){t0, nr, i, first};
    in_order = in_order && (ns < 2 || rec_cmp(&starts[ns - 2], &starts[ns - 1]) < 0);
    nr++;
    if (how != AS_EVENT) {
      ends[ne++] = (rec_t){t1, nr, i, first == R_PUSH ? R_POP : R_END};
      nr++;
    }
  }
  if (!in_order) qsort(starts, (size_t)ns, sizeof *starts, rec_cmp);
  qsort(ends, (size_t)ne, sizeof *ends, rec_cmp);
  rec_t *recs = ts__xmalloc((size_t)(nr > 0 ? nr : 1) * sizeof *recs);
  for (int a = 0, c = 0, k = 0; k < nr; k++)
    recs[k] = c >= ne || (a < ns && rec_cmp(&starts[a], &ends[c]) < 0) ? starts[a++] : ends[c++];
  free(starts);
  free(ends);
  fputs("# trainsim: Paje trace of one run (ViTE, pajeng); times in seconds\n", f);
  if (run->fold) { /* README "Symmetry folding": the representatives' events only */
    char *reps = ts__fold_reps(run);
    fprintf(f, "# trainsim: folded run: only devices %s (one per class of tensor-parallel ranks x data-parallel "
               "replicas, %d of %d) have events; every other device's are its representative's\n",
            reps, ts__fold_classes(run), run->n_devices);
    free(reps);
  }
  header(f);
  define(b, run, lanes, host, o);
  ts__lb_flush(b, f);
  /* The limit, less the header already written and room for the ends. */
  double mb = o && o->paje_max_mb ? o->paje_max_mb : TS_OUT_DEFAULT_MAX_MB;
  long at = ftell(f);
  long long room = mb < 0 ? -1 : (long long)(mb * 1e6) - (at > 0 ? at : 0) - 64LL * (4 * nd + 16) - 65536;
  if (mb >= 0 && room < 0) room = 0;
  int64_t cut_t = 0;
  int started = 0;
  int written = write_body(b, r, recs, nr, lane, grp, room, &cut_t, &started);
  /* Destroy the lanes, then the devices and the host memory. */
  for (int d = 0; d < nd; d++) {
    if (o && !ts_devlist_has(&o->devices, d)) continue;
    for (int g = 0; g < G_N; g++)
      for (int k = 0; k < (g == G_COMP && lanes[d][g].n < 1 ? 1 : lanes[d][g].n); k++) {
        ts__lb_s(b, "7 ");
        put_time(b, t_end);
        ts__lb_c(b, ' ');
        ts__lb_c(b, group_type[g]);
        sp_ci(b, (char)(group_type[g] + 32), d);
        ts__lb_c(b, '.');
        ts__lb_i(b, k);
        ts__lb_c(b, '\n');
      }
  }
  for (int d = 0; d < nd; d++) {
    if (o && !ts_devlist_has(&o->devices, d)) continue;
    ts__lb_s(b, "7 ");
    put_time(b, t_end);
    ts__lb_s(b, " D");
    sp_ci(b, 'd', d);
    ts__lb_c(b, '\n');
  }
  if (host) {
    ts__lb_s(b, "7 ");
    put_time(b, t_end);
    ts__lb_s(b, " M m\n");
  }
  if (written >= 0) { /* stated in the file and once on stderr */
    char line[256];
    snprintf(line, sizeof line, "# trainsim: cut at %g MB: %d of %d events written, none started from %.9f s on; "
             "--paje-max-mb raises the limit (0: none)\n", mb, started, kept, (double)cut_t / 1e9);
    ts__lb_s(b, line);
    if (!(o && o->quiet_notes))
      fprintf(stderr, "trainsim: note: paje.trace cut at %g MB: %d of %d events written; --paje-max-mb raises the limit (0: none)\n",
              mb, started, kept);
  }
  ts__lb_flush(b, f);
  for (int d = 0; d < nd; d++)
    for (int g = 0; g < G_N; g++) free(lanes[d][g].last_end);
  free(b);
  free(lanes);
  free(lane);
  free(grp);
  free(recs);
  return ferror(f) ? EX_IOERR : 0;
}
