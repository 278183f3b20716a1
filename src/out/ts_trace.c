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
static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc(c, f);
    } else if (c < 0x20) {
      fprintf(f, "\\u%04x", c);
    } else {
      fputc(c, f);
    }
  }
  fputc('"', f);
}

/* A finite double for JSON ("%.15g"; non-finite values become 0). */
static void json_num(FILE *f, double v) {
  char buf[64];
  if (!isfinite(v)) v = 0;
  if (v == floor(v) && fabs(v) < 9e15) /* byte counts: exact, without %g */
    ts__fmt_int(buf, (long long)v);
  else
    snprintf(buf, sizeof buf, "%.15g", v + 0.0);
  fputs(buf, f);
}

/* Prints ns as microseconds with three decimals. */
static void put_us(FILE *f, int64_t ns) {
  char buf[64];
  int n = ts__fmt_int(buf, (long long)(ns / 1000));
  int64_t r = ns % 1000;
  buf[n++] = '.';
  buf[n++] = (char)('0' + r / 100);
  buf[n++] = (char)('0' + r / 10 % 10);
  buf[n++] = (char)('0' + r % 10);
  buf[n] = 0;
  fputs(buf, f);
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
static void sep(FILE *f, bool *first) {
  fputs(*first ? "\n" : ",\n", f);
  *first = false;
}

static void write_thread_name(FILE *f, bool *first, int pid, int tid, const char *name, int n) {
  sep(f, first);
  fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":\"%s",
          pid, tid, name);
  if (n > 1) fprintf(f, " %d", n);
  fputs("\"}}", f);
  sep(f, first);
  fprintf(f, "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
             "\"args\":{\"sort_index\":%d}}",
          pid, tid, tid);
}

/* Process and thread names of every device. */
static void write_metadata(FILE *f, bool *first, const ts_run_t *run, const dev_tracks_t *dt) {
  for (int d = 0; d < run->n_devices; d++) {
    char label[TS_NAME_MAX + 32];
    ts__device_label(run, d, label, sizeof label);
    sep(f, first);
    fprintf(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":",
            d + 1);
    json_str(f, label);
    fputs("}}", f);
    sep(f, first);
    fprintf(f, "{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
               "\"args\":{\"sort_index\":%d}}",
            d + 1, d);
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
static void write_span(FILE *f, const ts_event_t *e, int tid, int stage, int chunk, int64_t t0,
                       int64_t t1, double bytes) {
  fprintf(f, ",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,\"ts\":",
          ts_kind_name((ts_kind_t)e->kind), e->device + 1, tid);
  put_us(f, t0);
  fputs(",\"dur\":", f);
  put_us(f, t1 - t0);
  fprintf(f, ",\"args\":{\"kind\":\"%s\",\"stage\":%d,\"chunk\":%d,\"vstage\":%d,"
             "\"microbatch\":%d,\"iteration\":%d,\"bytes\":",
          ts_kind_name((ts_kind_t)e->kind), stage, chunk, e->vstage, e->mb, e->iteration);
  json_num(f, bytes);
}

/* The name, timing and args of a collective, optimizer or comm-wait
** event (after its separator): no from/to devices, as they are local to
** the device; a collective's args say its op, purpose, group and size. */
static void write_stream_event(FILE *f, const ts_result_t *r, const ts_event_t *e, int tid, int stage,
                               int chunk, int64_t t0, int64_t t1) {
  char name[96];
  if (e->kind == TS_COLLECTIVE)
    ts__coll_label(name, sizeof name, r, e);
  else
    snprintf(name, sizeof name, "%s", ts_kind_name((ts_kind_t)e->kind));
  fputs("{\"name\":", f);
  json_str(f, name);
  write_span(f, e, tid, stage, chunk, t0, t1, e->bytes);
  if (e->kind == TS_COLLECTIVE)
    fprintf(f, ",\"op\":\"%s\",\"purpose\":\"%s\",\"group\":\"%s\",\"members\":%d",
            ts_coll_op_name(TS_EV_COLL_OP(e->coll)), ts_coll_purpose_name(TS_EV_COLL_PURPOSE(e->coll)),
            ts__group_kind_name(TS_EV_COLL_GROUP(e->coll)), e->peer);
  fputs("}}", f);
}

static void write_event(FILE *f, bool *first, const ts_result_t *r, const ts_event_t *e, int tid) {
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
  if (compute)
    fprintf(f, "{\"name\":\"%c%d\"", kind_letter[e->kind], e->mb + 1);
  else if (ts_kind_is_host((ts_kind_t)e->kind)) /* named by stage */
    fprintf(f, "{\"name\":\"%s s%d\"", ts_kind_name((ts_kind_t)e->kind), stage);
  else if (e->flags & TS_EVF_A2A_CALL) /* a MoE all-to-all's whole call, not a flow */
    fprintf(f, "{\"name\":\"%s call %d\"", ts_kind_name((ts_kind_t)e->kind), e->mb + 1);
  else
    fprintf(f, "{\"name\":\"%s %d\"",
            e->kind == TS_SEND_ACT ? "act" : e->kind == TS_SEND_GRAD ? "grad" : ts_kind_name((ts_kind_t)e->kind), e->mb + 1);
  write_span(f, e, tid, stage, chunk, t0, t1, compute ? 0.0 : e->bytes);
  if (!compute) fprintf(f, ",\"from_device\":%d,\"to_device\":%d", e->device, e->peer);
  fputs("}}", f);
}

static void write_counter(FILE *f, bool *first, int pid, int64_t ns, double act, double total) {
  sep(f, first);
  fprintf(f, "{\"name\":\"memory\",\"ph\":\"C\",\"pid\":%d,\"tid\":0,\"ts\":", pid);
  put_us(f, ns);
  fputs(",\"args\":{\"activations_bytes\":", f);
  json_num(f, act);
  fputs(",\"total_bytes\":", f);
  json_num(f, total);
  fputs("}}", f);
}

/* The memory counter of every device with metrics: one point per step
** (of steps at the same nanosecond, the last), and a point at 0 when the
** first step comes later (weights are held from the start). */
static void write_memory(FILE *f, bool *first, const ts_metrics_t *m, int n_dev) {
  if (!m || !m->dev) return;
  for (int d = 0; d < n_dev && d < m->n_devices; d++) {
    const ts_device_metrics_t *dm = &m->dev[d];
    double fixed = (isfinite(dm->weights_bytes) ? dm->weights_bytes : 0) +
                   (isfinite(dm->gradients_bytes) ? dm->gradients_bytes : 0) +
                   (isfinite(dm->optimizer_bytes) ? dm->optimizer_bytes : 0);
    int n = dm->mem_t && dm->mem_bytes ? dm->n_mem : 0;
    if (n == 0 || ts__to_ns(dm->mem_t[0]) > 0) write_counter(f, first, d + 1, 0, 0.0, fixed);
    for (int i = 0; i < n; i++) {
      if (!isfinite(dm->mem_t[i])) continue;
      if (i + 1 < n && ts__to_ns(dm->mem_t[i + 1]) == ts__to_ns(dm->mem_t[i])) continue;
      double act = isfinite(dm->mem_bytes[i]) ? dm->mem_bytes[i] : 0.0;
      write_counter(f, first, d + 1, ts__to_ns(dm->mem_t[i]), act, act + fixed);
    }
    /* Host-memory schedules: weights arriving and leaving. */
    for (int i = 0; i < dm->n_res; i++) {
      if (i + 1 < dm->n_res && ts__to_ns(dm->res_t[i + 1]) == ts__to_ns(dm->res_t[i])) continue;
      sep(f, first);
      fprintf(f, "{\"name\":\"resident weights\",\"ph\":\"C\",\"pid\":%d,\"tid\":0,\"ts\":", d + 1);
      put_us(f, ts__to_ns(dm->res_t[i]));
      fputs(",\"args\":{\"weights_and_gradients_bytes\":", f);
      json_num(f, dm->res_bytes[i]);
      fputs("}}", f);
    }
  }
}

static void write_other(FILE *f, const ts_result_t *r) {
  const ts_job_t *job = r->job;
  const ts_metrics_t *m = r->metrics;
  fputs("\"otherData\":{\"generator\":\"trainsim " TS_VERSION "\"", f);
  if (job) {
    fputs(",\"schedule\":", f);
    json_str(f, job->schedule);
    fputs(",\"model\":", f);
    json_str(f, job->model.name);
    fprintf(f, ",\"stages\":%d,\"microbatches\":%d,\"chunks\":%d,\"iterations\":%d", job->stages,
            job->microbatches, job->chunks, job->iterations);
  }
  fputs(",\"executor\":", f);
  json_str(f, r->run->executor);
  if (m) {
    fputs(",\"iteration_time_s\":", f);
    json_num(f, m->iteration_time_s);
    fputs(",\"bubble_fraction\":", f);
    json_num(f, m->bubble_fraction);
  }
  fputs(",\"microbatch_numbering\":\"event names from 1 (as in the papers), args.microbatch from 0 (as in timeline.csv)\"}", f);
}

/* Writes trace.json for r to f.  Needs r->run (events sorted by start,
** as ts_run_sort leaves them: the track assignment relies on it); r->job,
** r->layout and r->metrics may be NULL.  Returns 0, EX_IOERR when a write
** fails, EX_SOFTWARE for NULL arguments.
** Does not close f. */
int ts_write_trace_json(const ts_result_t *r, FILE *f) {
  if (!r || !r->run || !f) return EX_SOFTWARE;
  const ts_run_t *run = r->run;
  int rc = 0, n = run->n_events, nd = run->n_devices > 0 ? run->n_devices : 0;
  int *track = ts__xmalloc((size_t)(n ? n : 1) * sizeof *track);
  dev_tracks_t *dt = ts__xcalloc((size_t)(nd ? nd : 1), sizeof *dt);

  /* Pass 1: tracks, so that thread names can precede the events. */
  for (int i = 0; i < n; i++) {
    const ts_event_t *e = &run->events[i];
    track[i] = -1;
    if (!event_kept(run, e)) continue;
    track_kind_t tk = track_kind(e->kind);
    tracks_t *t = tk == TR_COMP ? &dt[e->device].comp : tk == TR_COMM ? &dt[e->device].comm : &dt[e->device].coll;
    track[i] = track_take(t, ts__to_ns(e->start), ts__to_ns(e->end));
  }

  bool first = true;
  fputs("{\"traceEvents\":[", f);
  write_metadata(f, &first, run, dt);
  for (int i = 0; i < n; i++) {
    if (track[i] < 0) continue;
    const ts_event_t *e = &run->events[i];
    write_event(f, &first, r, e, tid_of(&dt[e->device], track_kind(e->kind), track[i]));
  }
  write_memory(f, &first, r->metrics, nd);
  fputs("\n],\n\"displayTimeUnit\":\"ms\",\n", f);
  write_other(f, r);
  fputs("\n}\n", f);
  if (fflush(f) != 0 || ferror(f)) rc = EX_IOERR;
  if (dt)
    for (int d = 0; d < nd; d++) {
      free(dt[d].comp.last_end);
      free(dt[d].comm.last_end);
      free(dt[d].coll.last_end);
    }
  free(dt);
  free(track);
  return rc;
}
