/*
** ts_trace.c: trace.json, the run in the Chrome Trace Event Format, for
** ui.perfetto.dev and chrome://tracing.
**
** Layout of the trace: one process per device (pid = device + 1, named
** "device <d> (<host>)", sorted by device index).  Thread 1 "compute"
** holds the device's compute events; thread 2 "communication" holds the
** transfers it sends.  Transfers may overlap on one device, and complete
** ("X") events on one thread must nest, so overlapping transfers go to
** further threads "communication 2", "communication 3", ... (tids 3, 4,
** ...), chosen greedily: the first whose last event has ended.  Compute
** events never overlap on a device in a valid run; should they, the same
** rule puts the extra ones on "compute 2", ... after the communication
** threads.  Event names are a kind letter and the micro-batch counted
** from 1: F3 forward, B3 backward, R3 recompute, b3 backward_input, W3
** weight_grad; transfers read "act 3" and "grad 3".  Runs with data
** parallelism add, per device with collectives, a track "collectives"
** for its communication stream (tids after the compute tracks; further
** "collectives 2", ... only should its spans overlap), whose spans are
** named by ts__coll_label ("all-reduce grads b3"); the optimizer step
** ("optimizer") and comm waits ("comm_wait") go on the compute track.  A "memory" counter
** per device gives the activation bytes held and the total with weights,
** gradients and optimizer state, from the metrics' memory steps.
**
** Times are microseconds printed from whole nanoseconds ("%lld.%03lld"):
** start and end are rounded once each, so ts + dur is exactly the rounded
** end, and events that touch in seconds touch in the trace instead of
** overlapping by a rounding error.  Events with a device outside the run,
** an unknown kind or non-finite or negative times are left out; every
** number printed is finite.  Output is byte-for-byte deterministic.
**
** Options (ts_out_opts_t, README "Outputs"): --devices and --kinds keep
** fewer events (otherData.filter says which); the size limit (100 MB by
** default, --trace-max-mb) cuts the events from a time on, and the memory
** counters after that time or where the limit is reached, which
** otherData.truncated and one line on stderr state.  Records are
** assembled without printf (ts_fmt_num.c says why).
*/
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_out.h"
#include "ts_internal.h"

/* Name letters of the compute kinds (ts_kind_t order): the split
** backward's halves are B and W, as the zero-bubble papers name them (a
** run that splits the backward has no whole backward, so B is never
** ambiguous); args.kind keeps the stable kind name. */
static const char kind_letter[TS_COMPUTE_KINDS] = {'F', 'B', 'R', 'B', 'W'};

/* A tid's track of one device: when its last event ends (ns). */
typedef struct tracks {
  int n, cap;
  int64_t *last_end;
} tracks_t;

/* Per device: compute tracks, communication (transfer) tracks and the
** collective tracks of its communication stream. */
typedef struct dev_tracks {
  tracks_t comp, comm, coll;
} dev_tracks_t;

/* Where an event goes: compute, transfer or collective tracks. */
typedef enum { TR_COMP, TR_COMM, TR_COLL } track_kind_t;

static track_kind_t track_kind(int kind) {
  if (ts_kind_is_compute((ts_kind_t)kind) || kind == TS_OPTIMIZER || kind == TS_COMM_WAIT) return TR_COMP;
  return kind == TS_COLLECTIVE ? TR_COLL : TR_COMM;
}

/* Writes s as a JSON string: quotes, backslashes and control characters
** escaped; other bytes (UTF-8) as they are. */
static void json_str(ts__lb_t *f, const char *s) {
  static const char hex[] = "0123456789abcdef";
  ts__lb_c(f, '"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      ts__lb_c(f, '\\');
      ts__lb_c(f, (char)c);
    } else if (c < 0x20) {
      ts__lb_s(f, "\\u00");
      ts__lb_c(f, hex[c >> 4]);
      ts__lb_c(f, hex[c & 15]);
    } else {
      ts__lb_c(f, (char)c);
    }
  }
  ts__lb_c(f, '"');
}

/* A finite double for JSON ("%.15g"; non-finite values become 0). */
static void json_num(ts__lb_t *f, double v) {
  if (!isfinite(v)) v = 0;
  if (v == floor(v) && fabs(v) < 9e15) { /* byte counts: exact, without %g */
    ts__lb_i(f, (long long)v);
    return;
  }
  char buf[64];
  snprintf(buf, sizeof buf, "%.15g", v + 0.0);
  ts__lb_s(f, buf);
}

/* Prints ns (>= 0) as microseconds with three decimals, in place. */
static void put_us(ts__lb_t *f, int64_t ns) {
  char *p = ts__lb_reserve(f, 32);
  int n = ts__fmt_int(p, (long long)(ns / 1000));
  int r = (int)(ns % 1000);
  p[n++] = '.';
  p[n++] = (char)('0' + r / 100);
  memcpy(p + n, ts__digits2 + 2 * (r % 100), 2);
  f->n += n + 2;
}

/* ",\"KEY\":" then the number v */
static void kv_i(ts__lb_t *f, const char *key, long long v) {
  ts__lb_s(f, key);
  ts__lb_i(f, v);
}

/* The first track free at start (its last event ended at or before it),
** or a new one; records end on it.  Returns the track index. */
static int track_take(tracks_t *t, int64_t start, int64_t end) {
  assert(t->n <= t->cap && start <= end);
  int k;
  for (k = 0; k < t->n; k++)
    if (t->last_end[k] <= start) break;
  if (k == t->n) {
    if (t->n == t->cap) {
      int cap = t->cap ? 2 * t->cap : 4;
      t->last_end = ts__xrealloc(t->last_end, (size_t)cap * sizeof *t->last_end);
      t->cap = cap;
    }
    t->n++;
  }
  t->last_end[k] = end;
  return k;
}

static bool event_kept(const ts_run_t *run, const ts_event_t *e) {
  return e->device >= 0 && e->device < run->n_devices && e->kind >= 0 &&
         e->kind < TS_KIND_COUNT && isfinite(e->start) && isfinite(e->end) && e->start >= 0 &&
         e->end >= e->start;
}

/* tid of track k of a device: compute 0 -> 1, communication k -> 2 + k,
** compute k > 0 after the communication tracks, collectives after those. */
static int tid_of(const dev_tracks_t *dt, track_kind_t tk, int k) {
  if (tk == TR_COMM) return 2 + k;
  int n_comm = dt->comm.n > 0 ? dt->comm.n : 1, n_comp = dt->comp.n > 0 ? dt->comp.n : 1;
  if (tk == TR_COLL) return 2 + n_comm + (n_comp - 1) + k;
  if (k == 0) return 1;
  return 2 + n_comm + (k - 1);
}

/* Starts one event object: a separator unless it is the first. */
static void sep(ts__lb_t *f, bool *first) {
  ts__lb_s(f, *first ? "\n" : ",\n");
  *first = false;
}

static void write_thread_name(ts__lb_t *f, bool *first, int pid, int tid, const char *name, int n) {
  sep(f, first);
  kv_i(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":", pid);
  kv_i(f, ",\"tid\":", tid);
  ts__lb_s(f, ",\"args\":{\"name\":\"");
  ts__lb_s(f, name);
  if (n > 1) {
    ts__lb_c(f, ' ');
    ts__lb_i(f, n);
  }
  ts__lb_s(f, "\"}}");
  sep(f, first);
  kv_i(f, "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":", pid);
  kv_i(f, ",\"tid\":", tid);
  kv_i(f, ",\"args\":{\"sort_index\":", tid);
  ts__lb_s(f, "}}");
}

/* Process and thread names of every device kept. */
static void write_metadata(ts__lb_t *f, bool *first, const ts_run_t *run, const dev_tracks_t *dt,
                           const ts_out_opts_t *o) {
  for (int d = 0; d < run->n_devices; d++) {
    if (o && !ts_devlist_has(&o->devices, d)) continue;
    char label[TS_NAME_MAX + 32];
    ts__device_label(run, d, label, sizeof label);
    sep(f, first);
    kv_i(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":", d + 1);
    ts__lb_s(f, ",\"tid\":0,\"args\":{\"name\":");
    json_str(f, label);
    ts__lb_s(f, "}}");
    sep(f, first);
    kv_i(f, "{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":", d + 1);
    kv_i(f, ",\"tid\":0,\"args\":{\"sort_index\":", d);
    ts__lb_s(f, "}}");
    int n_comp = dt[d].comp.n > 0 ? dt[d].comp.n : 1, n_comm = dt[d].comm.n > 0 ? dt[d].comm.n : 1;
    for (int k = 0; k < n_comp; k++)
      write_thread_name(f, first, d + 1, tid_of(&dt[d], TR_COMP, k), "compute", k + 1);
    for (int k = 0; k < n_comm; k++)
      write_thread_name(f, first, d + 1, tid_of(&dt[d], TR_COMM, k), "communication", k + 1);
    for (int k = 0; k < dt[d].coll.n; k++)
      write_thread_name(f, first, d + 1, tid_of(&dt[d], TR_COLL, k), "collectives", k + 1);
  }
}

/* After an event's name: its category, track, start and duration, and the
** args every event has (kind, place, micro-batch, iteration, bytes); the
** caller adds its own args and closes the object. */
static void write_span(ts__lb_t *f, const ts_event_t *e, int tid, int stage, int chunk, int64_t t0,
                       int64_t t1, double bytes) {
  const char *kind = ts_kind_name((ts_kind_t)e->kind);
  ts__lb_s(f, ",\"cat\":\"");
  ts__lb_s(f, kind);
  kv_i(f, "\",\"ph\":\"X\",\"pid\":", e->device + 1);
  kv_i(f, ",\"tid\":", tid);
  ts__lb_s(f, ",\"ts\":");
  put_us(f, t0);
  ts__lb_s(f, ",\"dur\":");
  put_us(f, t1 - t0);
  ts__lb_s(f, ",\"args\":{\"kind\":\"");
  ts__lb_s(f, kind);
  kv_i(f, "\",\"stage\":", stage);
  kv_i(f, ",\"chunk\":", chunk);
  kv_i(f, ",\"vstage\":", e->vstage);
  kv_i(f, ",\"microbatch\":", e->mb);
  kv_i(f, ",\"iteration\":", e->iteration);
  ts__lb_s(f, ",\"bytes\":");
  json_num(f, bytes);
}

/* The name, timing and args of a collective, optimizer or comm-wait
** event (after its separator): no from/to devices, as they are local to
** the device; a collective's args say its op, purpose, group and size. */
static void write_stream_event(ts__lb_t *f, const ts_result_t *r, const ts_event_t *e, int tid, int stage,
                               int chunk, int64_t t0, int64_t t1) {
  char name[96];
  if (e->kind == TS_COLLECTIVE)
    ts__coll_label(name, sizeof name, r, e);
  else
    snprintf(name, sizeof name, "%s", ts_kind_name((ts_kind_t)e->kind));
  ts__lb_s(f, "{\"name\":");
  json_str(f, name);
  write_span(f, e, tid, stage, chunk, t0, t1, e->bytes);
  if (e->kind == TS_COLLECTIVE) {
    ts__lb_s(f, ",\"op\":\"");
    ts__lb_s(f, ts_coll_op_name(TS_EV_COLL_OP(e->coll)));
    ts__lb_s(f, "\",\"purpose\":\"");
    ts__lb_s(f, ts_coll_purpose_name(TS_EV_COLL_PURPOSE(e->coll)));
    ts__lb_s(f, "\",\"group\":\"");
    ts__lb_s(f, ts__group_kind_name(TS_EV_COLL_GROUP(e->coll)));
    kv_i(f, "\",\"members\":", e->peer);
  }
  ts__lb_s(f, "}}");
}

static void write_event(ts__lb_t *f, bool *first, const ts_result_t *r, const ts_event_t *e, int tid) {
  const ts_layout_t *L = r->layout;
  bool compute = ts_kind_is_compute((ts_kind_t)e->kind);
  int stage = e->vstage, chunk = 0;
  if (L && e->vstage >= 0 && e->vstage < L->n_vstages) {
    stage = L->stage[e->vstage];
    chunk = L->chunk[e->vstage];
  }
  int64_t t0 = ts__to_ns(e->start), t1 = ts__to_ns(e->end);
  sep(f, first);
  if (ts_kind_is_stream((ts_kind_t)e->kind)) {
    write_stream_event(f, r, e, tid, stage, chunk, t0, t1);
    return;
  }
  ts__lb_s(f, "{\"name\":\"");
  if (compute) {
    ts__lb_c(f, kind_letter[e->kind]);
    ts__lb_i(f, e->mb + 1);
  } else if (ts_kind_is_host((ts_kind_t)e->kind)) { /* named by stage */
    ts__lb_s(f, ts_kind_name((ts_kind_t)e->kind));
    ts__lb_s(f, " s");
    ts__lb_i(f, stage);
  } else if (e->flags & TS_EVF_A2A_CALL) { /* a MoE all-to-all's whole call, not a flow */
    ts__lb_s(f, ts_kind_name((ts_kind_t)e->kind));
    ts__lb_s(f, " call ");
    ts__lb_i(f, e->mb + 1);
  } else {
    ts__lb_s(f, e->kind == TS_SEND_ACT ? "act" : e->kind == TS_SEND_GRAD ? "grad" : ts_kind_name((ts_kind_t)e->kind));
    ts__lb_c(f, ' ');
    ts__lb_i(f, e->mb + 1);
  }
  ts__lb_c(f, '"');
  write_span(f, e, tid, stage, chunk, t0, t1, compute ? 0.0 : e->bytes);
  if (!compute) {
    kv_i(f, ",\"from_device\":", e->device);
    kv_i(f, ",\"to_device\":", e->peer);
  }
  ts__lb_s(f, "}}");
}

static void write_counter(ts__lb_t *f, bool *first, int pid, int64_t ns, double act, double total) {
  sep(f, first);
  kv_i(f, "{\"name\":\"memory\",\"ph\":\"C\",\"pid\":", pid);
  ts__lb_s(f, ",\"tid\":0,\"ts\":");
  put_us(f, ns);
  ts__lb_s(f, ",\"args\":{\"activations_bytes\":");
  json_num(f, act);
  ts__lb_s(f, ",\"total_bytes\":");
  json_num(f, total);
  ts__lb_s(f, "}}");
}

/* How far the writing got: the size limit (bytes, < 0 none), the events
** written and kept, and where the events and counters were cut. */
typedef struct cut {
  long long limit;
  int written, kept;
  bool events_cut, counters_cut;
  int64_t events_at, counters_at; /* ns: the first left out */
} cut_t;

/* The memory counter of every device kept with metrics: one point per step
** (of steps at the same nanosecond, the last), and a point at 0 when the
** first step comes later (weights are held from the start).  With a size
** limit, only points before the events' cut, while the limit allows. */
static void write_memory(ts__lb_t *f, bool *first, const ts_metrics_t *m, int n_dev, const ts_out_opts_t *o,
                         cut_t *c) {
  if (!m || !m->dev) return;
  long long room = c->limit < 0 ? -1 : c->limit - 4096;
  for (int d = 0; d < n_dev && d < m->n_devices; d++) {
    if (o && !ts_devlist_has(&o->devices, d)) continue;
    const ts_device_metrics_t *dm = &m->dev[d];
    double fixed = (isfinite(dm->weights_bytes) ? dm->weights_bytes : 0) +
                   (isfinite(dm->gradients_bytes) ? dm->gradients_bytes : 0) +
                   (isfinite(dm->optimizer_bytes) ? dm->optimizer_bytes : 0);
    int n = dm->mem_t && dm->mem_bytes ? dm->n_mem : 0;
    if (n == 0 || ts__to_ns(dm->mem_t[0]) > 0) write_counter(f, first, d + 1, 0, 0.0, fixed);
    for (int i = 0; i < n; i++) {
      if (!isfinite(dm->mem_t[i])) continue;
      if (i + 1 < n && ts__to_ns(dm->mem_t[i + 1]) == ts__to_ns(dm->mem_t[i])) continue;
      int64_t t = ts__to_ns(dm->mem_t[i]);
      if (c->events_cut && t >= c->events_at) break;
      if (room >= 0 && ts__lb_size(f) >= room) {
        if (!c->counters_cut || t < c->counters_at) c->counters_at = t;
        c->counters_cut = true;
        break;
      }
      double act = isfinite(dm->mem_bytes[i]) ? dm->mem_bytes[i] : 0.0;
      write_counter(f, first, d + 1, t, act, act + fixed);
    }
    /* Host-memory schedules: weights arriving and leaving. */
    for (int i = 0; i < dm->n_res; i++) {
      if (i + 1 < dm->n_res && ts__to_ns(dm->res_t[i + 1]) == ts__to_ns(dm->res_t[i])) continue;
      if (c->events_cut && ts__to_ns(dm->res_t[i]) >= c->events_at) break;
      if (room >= 0 && ts__lb_size(f) >= room) {
        c->counters_cut = true;
        break;
      }
      sep(f, first);
      kv_i(f, "{\"name\":\"resident weights\",\"ph\":\"C\",\"pid\":", d + 1);
      ts__lb_s(f, ",\"tid\":0,\"ts\":");
      put_us(f, ts__to_ns(dm->res_t[i]));
      ts__lb_s(f, ",\"args\":{\"weights_and_gradients_bytes\":");
      json_num(f, dm->res_bytes[i]);
      ts__lb_s(f, "}}");
    }
  }
}

/* "0-7,64" from a device list; kind names from a mask. */
static void put_devlist(ts__lb_t *f, const ts_devlist_t *l) {
  for (int i = 0; i < l->n; i++) {
    if (i) ts__lb_c(f, ',');
    ts__lb_i(f, l->lo[i]);
    if (l->hi[i] != l->lo[i]) {
      ts__lb_c(f, '-');
      ts__lb_i(f, l->hi[i]);
    }
  }
}

/* The filters and the cut in otherData, only when there are some. */
static void write_limits(ts__lb_t *f, const ts_result_t *r, const ts_out_opts_t *o, const cut_t *c) {
  if (o && (o->devices.n || o->kinds)) {
    ts__lb_s(f, ",\"filter\":{\"devices\":\"");
    if (o->devices.n) put_devlist(f, &o->devices);
    else ts__lb_s(f, "all");
    ts__lb_s(f, "\",\"kinds\":\"");
    for (int k = 0, n = 0; k < TS_KIND_COUNT; k++)
      if (!o->kinds || (o->kinds >> k) & 1) {
        if (n++) ts__lb_c(f, ',');
        ts__lb_s(f, ts_kind_name((ts_kind_t)k));
      }
    ts__lb_s(f, "\"}");
  }
  if (r->run->fold) { /* README "Symmetry folding": the representatives' events only */
    char *reps = ts__fold_reps(r->run);
    kv_i(f, ",\"fold\":{\"devices\":", r->run->n_devices);
    kv_i(f, ",\"classes\":", ts__fold_classes(r->run));
    ts__lb_s(f, ",\"simulated_devices\":\"");
    ts__lb_s(f, reps);
    ts__lb_s(f, "\",\"note\":\"folded run: only the simulated devices (one per class of tensor-parallel ranks x "
                "data-parallel replicas) have events; every other device's are its representative's "
                "(summary.json fold.representative)\"}");
    free(reps);
  }
  if (c->events_cut || c->counters_cut) {
    kv_i(f, ",\"truncated\":{\"max_bytes\":", c->limit);
    kv_i(f, ",\"events_written\":", c->written);
    kv_i(f, ",\"events\":", c->kept);
    ts__lb_s(f, ",\"events_from_us_left_out\":");
    if (c->events_cut) put_us(f, c->events_at);
    else ts__lb_s(f, "null");
    ts__lb_s(f, ",\"memory_counters_complete\":");
    ts__lb_s(f, c->counters_cut ? "false" : "true");
    ts__lb_s(f, ",\"note\":\"the trace was cut to stay under its size limit: trainsim run --trace-max-mb MB raises it, 0 removes it; --devices and --kinds keep fewer events\"}");
  }
}

static void write_other(ts__lb_t *f, const ts_result_t *r, const ts_out_opts_t *o, const cut_t *c) {
  const ts_job_t *job = r->job;
  const ts_metrics_t *m = r->metrics;
  ts__lb_s(f, "\"otherData\":{\"generator\":\"trainsim " TS_VERSION "\"");
  if (job) {
    ts__lb_s(f, ",\"schedule\":");
    json_str(f, job->schedule);
    ts__lb_s(f, ",\"model\":");
    json_str(f, job->model.name);
    kv_i(f, ",\"stages\":", job->stages);
    kv_i(f, ",\"microbatches\":", job->microbatches);
    kv_i(f, ",\"chunks\":", job->chunks);
    kv_i(f, ",\"iterations\":", job->iterations);
  }
  ts__lb_s(f, ",\"executor\":");
  json_str(f, r->run->executor);
  if (m) {
    ts__lb_s(f, ",\"iteration_time_s\":");
    json_num(f, m->iteration_time_s);
    ts__lb_s(f, ",\"bubble_fraction\":");
    json_num(f, m->bubble_fraction);
  }
  write_limits(f, r, o, c);
  ts__lb_s(f, ",\"microbatch_numbering\":\"event names from 1 (as in the papers), args.microbatch from 0 (as in timeline.csv)\"}");
}

/* Writes trace.json for r to f.  Needs r->run (events sorted by start,
** as ts_run_sort leaves them: the track assignment relies on it); r->job,
** r->layout and r->metrics may be NULL.  Returns 0, EX_IOERR when a write
** fails, EX_SOFTWARE for NULL arguments.
** Does not close f. */
int ts_write_trace_json(const ts_result_t *r, FILE *f) { return ts_write_trace_json_opts(r, NULL, f); }

int ts_write_trace_json_opts(const ts_result_t *r, const ts_out_opts_t *o, FILE *f) {
  if (!r || !r->run || !f) return EX_SOFTWARE;
  const ts_run_t *run = r->run;
  int rc = 0, n = run->n_events, nd = run->n_devices > 0 ? run->n_devices : 0;
  int *track = ts__xmalloc((size_t)(n ? n : 1) * sizeof *track);
  dev_tracks_t *dt = ts__xcalloc((size_t)(nd ? nd : 1), sizeof *dt);
  ts__lb_t *b = ts__xcalloc(1, sizeof *b);
  b->f = f;
  double mb = o && o->trace_max_mb ? o->trace_max_mb : TS_OUT_DEFAULT_MAX_MB;
  cut_t c = {.limit = mb < 0 ? -1 : (long long)(mb * 1e6)};

  /* Pass 1: tracks, so that thread names can precede the events. */
  for (int i = 0; i < n; i++) {
    const ts_event_t *e = &run->events[i];
    track[i] = -1;
    if (!event_kept(run, e) || !ts__out_keeps(o, e)) continue;
    track_kind_t tk = track_kind(e->kind);
    tracks_t *t = tk == TR_COMP ? &dt[e->device].comp : tk == TR_COMM ? &dt[e->device].comm : &dt[e->device].coll;
    track[i] = track_take(t, ts__to_ns(e->start), ts__to_ns(e->end));
    c.kept++;
  }

  /* The events get the limit less room for the counters (when there are
  ** some) and the closing object. */
  bool counters = r->metrics && r->metrics->dev;
  long long ev_room = c.limit < 0 ? -1 : counters ? c.limit / 100 * 85 : c.limit - 4096;
  bool first = true;
  ts__lb_s(b, "{\"traceEvents\":[");
  write_metadata(b, &first, run, dt, o);
  for (int i = 0; i < n; i++) {
    if (track[i] < 0) continue;
    const ts_event_t *e = &run->events[i];
    if (ev_room >= 0 && ts__lb_size(b) >= ev_room) {
      c.events_cut = true;
      c.events_at = ts__to_ns(e->start);
      break;
    }
    write_event(b, &first, r, e, tid_of(&dt[e->device], track_kind(e->kind), track[i]));
    c.written++;
  }
  write_memory(b, &first, r->metrics, nd, o, &c);
  ts__lb_s(b, "\n],\n\"displayTimeUnit\":\"ms\",\n");
  write_other(b, r, o, &c);
  ts__lb_s(b, "\n}\n");
  ts__lb_flush(b, f);
  if ((c.events_cut || c.counters_cut) && !(o && o->quiet_notes))
    fprintf(stderr, "trainsim: note: trace.json cut at %g MB: %d of %d events written%s; "
                    "--trace-max-mb raises the limit (0: none), --devices and --kinds keep fewer\n",
            mb, c.written, c.kept, c.counters_cut ? ", memory counters incomplete" : "");
  if (fflush(f) != 0 || ferror(f)) rc = EX_IOERR;
  if (dt)
    for (int d = 0; d < nd; d++) {
      free(dt[d].comp.last_end);
      free(dt[d].comm.last_end);
      free(dt[d].coll.last_end);
    }
  free(b);
  free(dt);
  free(track);
  return rc;
}
