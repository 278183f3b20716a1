/*
** ts_report.c: report.html, everything about one run on one page.
**
** The page holds, in order: a header naming the job; the key figures; the
** Gantt chart (gantt.svg's own drawing, ts_write_gantt_svg, inlined); a
** memory-over-time chart per device (model states as a constant band,
** stashed activations stacked on it as a step plot, the capacity as a
** dashed line when the host has one); the summary table with each metric's
** definition (the text of README's summary.json table); the per-device
** table with the definitions of its columns.
**
** Hover: every Gantt box carries its <title> (a browser shows it without
** JS).  A small inline script replaces it by a styled tooltip on mouseover
** of rect.op and rect.xfer (and of each memory chart), and marks the page
** ready: <body data-ready="1" data-boxes="N"> once it ran, N the boxes it
** found.  Opened as report.html#selftest, it also hovers the first box and
** copies the tooltip's text into <body data-selftest> (for the tests).
** The compute boxes' titles are extended with the activation bytes the op
** stashes or frees, computed as ts_metrics.c does.
**
** Assumptions: events sorted by start (ts_run_sort).  Runs with more than
** TS_REPORT_MAX_EVENTS events get no inline Gantt chart (a page of tens of
** MB is slow to open); the page says so and points to gantt.svg.  Memory
** charts with more steps than twice their width in pixels are drawn as
** their per-pixel maximum, so peaks stay visible and the page stays small.
**
** Self-contained: no URL is referenced but the SVG namespace; no external
** style sheet, script, font or image.  Deterministic: fixed number formats,
** nothing from clocks, pointers or the environment.
*/
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_out.h"
#include "ts_moe.h"
#include "ts_report.h"

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

/* Writes s with HTML's special characters escaped. */
static void html_put(FILE *f, const char *s) { ts__xml_put(f, s, strlen(s)); }

typedef struct unit {
  const char *name;
  double per_s;
} unit_t;

static unit_t unit_for(double t) {
  if (t >= 1.0 || !(t > 0)) return (unit_t){"s", 1.0};
  if (t >= 1e-3) return (unit_t){"ms", 1e3};
  if (t >= 1e-6) return (unit_t){"us", 1e6};
  return (unit_t){"ns", 1e9};
}

/* "668.43 ms": four significant digits or so, in the unit t reads best. */
static const char *fmt_time(char *buf, size_t n, double t) {
  if (!isfinite(t)) return snprintf(buf, n, "n/a"), buf;
  unit_t u = unit_for(fabs(t));
  double v = t * u.per_s, a = fabs(v);
  snprintf(buf, n, "%.*f %s", a >= 100 ? 1 : a >= 10 ? 2 : 3, v + 0.0, u.name);
  return buf;
}

static const char *fmt_bytes(char *buf, size_t n, double b) {
  if (!isfinite(b)) return snprintf(buf, n, "n/a"), buf;
  return ts__human_bytes(b, buf, n);
}

/* "123 T": v with a decimal SI prefix, 4 significant digits. */
static const char *fmt_si(char *buf, size_t n, double v, const char *unit) {
  static const char *const p[] = {"", "k", "M", "G", "T", "P", "E"};
  int k = 0;
  double a = fabs(v);
  while (a >= 1000.0 && k < 6) {
    a /= 1000.0;
    v /= 1000.0;
    k++;
  }
  snprintf(buf, n, "%.4g %s%s", v + 0.0, p[k], unit);
  return buf;
}

/* ------------------------------------------------------------------ */
/* Definitions: README's summary.json table                            */
/* ------------------------------------------------------------------ */

/* Rows of the summary table, in README's order. */
enum {
  D_VERSION, D_JOB, D_ITER, D_BUBBLE, D_OVERHEAD, D_IDEAL,
  D_SAMPLES, D_TOKENS, D_FLOPS, D_MFU, D_P2P, D_PARAMS
};

typedef struct def {
  const char *name, *text;
} def_t;

static const def_t top_defs[] = {
    [D_VERSION] = {"trainsim_version, executor",
                   "the version, and simgrid (simulated) or reference (measured by the CPU reference executor)"},
    [D_JOB] = {"job.*", "the job as run, after --set: file, schedule, model name, platform as written in the "
                        "job, stages, microbatches, micro_batch_size, seq_len, chunks, iterations, recompute, "
                        "bytes_per_element; for mobius and gpipe-swap also devices, mapping (the rule, "
                        "or the device of each stage) and mapping_groups"},
    [D_ITER] = {"iteration_time_s",
                "makespan T / iterations; T = latest end of any op or transfer (the run starts at 0)"},
    [D_BUBBLE] = {"bubble_fraction", "idle share of devices x makespan: sum over devices of (T - busy) / "
                                     "(devices x T). Only compute ops count as busy"},
    [D_OVERHEAD] = {"bubble_overhead", "(T - ideal) / ideal, ideal = the largest per-device busy time "
                                       "(Megatron's \"bubble time fraction\" when stages are equal)"},
    [D_IDEAL] = {"ideal_time_s", "the largest per-device busy time, divided by the iterations"},
    [D_SAMPLES] = {"throughput.samples_per_s", "microbatches x micro_batch_size x iterations / T (gshard with model.moe: x expert_parallel, since each lane runs its own micro-batches)"},
    [D_TOKENS] = {"throughput.tokens_per_s", "samples_per_s x seq_len"},
    [D_FLOPS] = {"throughput.flops_per_s_per_gpu", "model FLOPs (forward + backward, recompute not counted) of "
                                                   "the run / (T x devices); null for synthetic models"},
    [D_MFU] = {"throughput.mfu", "flops_per_s_per_gpu / mean peak_flops of the devices (host property "
                                 "peak_flops, else its speed); null for synthetic models"},
    [D_P2P] = {"p2p_bytes", "bytes of all transfers between devices: activations, gradients, all-reduce "
                            "steps and MoE all-to-all flows; copies to and from host memory are not "
                            "included (see devices[].host_bytes)"},
    [D_PARAMS] = {"job.model_parameters",
                  "parameters of the whole model, 12 l h^2 + 13 l h + (V + s) h at ffn = 4h"},
};
#define N_TOP (int)(sizeof top_defs / sizeof top_defs[0])

/* The "moe" object of summary.json (README), shown for every run. */
static const def_t moe_defs[] = {
    {"moe.experts, moe.expert_parallel, moe.capacity_factor, moe.group_size, moe.skew, moe.exponent, moe.seed, moe.alltoall",
     "the job's MoE settings as run (group_size resolved: tokens per gating group S; exponent only for zipf); the moe object appears only for MoE models"},
    {"moe.capacity",
     "expert capacity C per group: ceil(S x capacity_factor / E) rounded up to a multiple of capacity_multiple"},
    {"moe.moe_layers",
     "MoE layers in the model"},
    {"moe.alltoall_time_share",
     "sum over devices of the time spent inside all-to-all calls (from the call, when its flows start, to its return, when the last peer's flow has arrived: transfer time plus waiting for late peers) / (devices x T)"},
    {"moe.moe_layer_forward_s",
     "mean over devices, MoE layers and micro-batches of one MoE layer's forward: from the start of its dispatch call to the end of its combine call (dispatch, expert compute, combine)"},
    {"moe.moe_layer_backward_s",
     "the same for the backward: from the start of the combine's gradient all-to-all to the end of the dispatch's gradient all-to-all"},
    {"moe.expert_load_imbalance",
     "max over mean, over experts, of the token choices routed to each expert before capacity, summed over MoE layers, micro-batches and lanes (1 = balanced; E = all to one expert)"},
    {"moe.tokens_dropped",
     "token choices (first or dispatched second) beyond their expert's capacity, summed likewise; a token whose choices are all dropped passes through the residual"},
    {"moe.tokens_computed",
     "token choices the experts computed (kept), summed likewise"},
    {"moe.aux_loss",
     "GShard's auxiliary load-balancing loss, E^2 x mean_e(mean gate x top-1 fraction), averaged over groups, lanes, micro-batches and MoE layers (1 when balanced)"},
    {"moe.expert_load",
     "per expert, the token choices it computed, summed likewise"},
};
#define N_MOE_DEFS (int)(sizeof moe_defs / sizeof moe_defs[0])

static const def_t dev_defs[] = {
    {"devices[].device", "the device index (the order of placement, or of the platform's hosts)"},
    {"devices[].name", "the host the device runs on"},
    {"devices[].stages", "the (virtual) stages the device holds, with their layers"},
    {"devices[].busy_s, idle_s", "sum of the device's compute-op durations; T - busy"},
    {"devices[].bubble_fraction", "idle_s / T"},
    {"devices[].peak_inflight_microbatches",
     "the most (stage, micro-batch) pairs held at once whose forward has started and whose backward has "
     "not finished (each chunk of an interleaved device counts)"},
    {"devices[].peak_activation_bytes", "the most activation bytes stashed at once (see Memory)"},
    {"devices[].weights_bytes, gradients_bytes, optimizer_bytes",
     "model states of the parameters the device holds: bytes_per_element, bytes_per_element, and 12 (fp32 "
     "master, Adam m and v; 8 when bytes_per_element >= 4) bytes per parameter. A device holding two stages "
     "(chimera) or chunks counts each; 2bw keeps two weight versions, so its weights count twice. A "
     "synthetic model's weights_bytes is per stage, and its gradients the same size"},
    {"devices[].peak_memory_bytes",
     "weights + gradients + optimizer + peak activations; for mobius and gpipe-swap, the peak over time "
     "of activations + resident weights + gradient buffers (no static states: they live in host memory)"},
    {"devices[].memory_capacity_bytes", "the host's memory_bytes property; null when unknown"},
    {"devices[].fits", "peak_memory_bytes <= memory_capacity_bytes (true when unknown)"},
    {"devices[].p2p_bytes_sent", "bytes this device sent"},
    {"devices[].speed_flops", "the sustained FLOP/s used for its compute"},
    {"devices[].host_bytes", "(mobius, gpipe-swap) bytes copied between the device and host memory: "
                             "weights fetched plus gradients written back"},
    {"devices[].room_wait_s",
     "(mobius, gpipe-swap) total time the device waited for device memory to free up: fetches at the "
     "head of its copy queue with the copy engine free, and reservations of a visit's activation memory "
     "(the room_wait rows of the timeline)"},
    {"devices[].peak_resident_bytes",
     "(mobius, gpipe-swap) the most weight and gradient-buffer bytes on the device at once"},
    {"links[]", "per platform link that carried traffic (simulator only; a SPLITDUPLEX link's directions "
                "_UP and _DOWN separately), sorted by name: name, bandwidth_Bps (as simulated), bytes (of "
                "every transfer whose route crosses it, host copies included) and utilisation = bytes / "
                "(bandwidth_Bps x T)"},
};
#define N_DEV_DEFS (int)(sizeof dev_defs / sizeof dev_defs[0])

/* ------------------------------------------------------------------ */
/* Page parts                                                          */
/* ------------------------------------------------------------------ */

static const char css[] =
    "<style>\n"
    ":root{--ink:#1b1f24;--mute:#5b6470;--line:#d7dce2;--bg:#ffffff;--panel:#f6f8fa;--accent:#0072B2}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;padding:24px 32px 48px;font:14px/1.45 'DejaVu Sans',Verdana,Arial,Helvetica,sans-serif;"
    "color:var(--ink);background:var(--bg)}\n"
    "h1{font-size:22px;margin:0 0 4px}\n"
    "h2{font-size:17px;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}\n"
    "p.sub{color:var(--mute);margin:0 0 16px}\n"
    "p.note{color:var(--mute);margin:4px 0 8px;max-width:72em}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}\n"
    ".card{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:10px 14px;"
    "min-width:170px}\n"
    ".card .k{color:var(--mute);font-size:12px}\n"
    ".card .v{font-size:20px;font-weight:bold}\n"
    ".card.bad .v{color:#C00000}\n"
    ".chart{overflow-x:auto;border:1px solid var(--line);border-radius:6px;padding:4px;background:#fff}\n"
    ".chart svg{display:block}\n"
    ".mems{display:flex;flex-wrap:wrap;gap:10px}\n"
    ".mems svg{border:1px solid var(--line);border-radius:6px;background:#fff}\n"
    ".key{display:flex;flex-wrap:wrap;gap:18px;margin:4px 0 10px;color:var(--mute);font-size:13px}\n"
    ".key i{display:inline-block;width:14px;height:12px;margin-right:6px;vertical-align:-1px;"
    "border:1px solid #888}\n"
    ".key i.cap{height:0;border:0;border-top:2px dashed #C00000;vertical-align:4px}\n"
    "table{border-collapse:collapse;margin:6px 0}\n"
    "th,td{border-bottom:1px solid var(--line);padding:5px 10px;text-align:left;vertical-align:top}\n"
    "th{background:var(--panel);font-size:13px}\n"
    "td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}\n"
    "td.def{color:var(--mute);max-width:56em}\n"
    "table.devs td{white-space:nowrap}\n"
    ".scroll{overflow-x:auto}\n"
    "code{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:12.5px}\n"
    "dl.defs{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;max-width:90em}\n"
    "dl.defs dt{font-weight:bold}\n"
    "dl.defs dd{margin:0;color:var(--mute)}\n"
    "rect.op.hover,rect.xfer.hover{stroke:#000;stroke-width:2}\n"
    "#ts-tip{position:fixed;z-index:10;pointer-events:none;max-width:440px;padding:6px 9px;"
    "background:#1b1f24;color:#fff;border-radius:4px;font-size:12.5px;line-height:1.35;"
    "box-shadow:0 2px 8px rgba(0,0,0,.3);white-space:pre-line}\n"
    "#ts-tip[hidden]{display:none}\n"
    "footer{margin-top:36px;color:var(--mute);font-size:12px}\n"
    "</style>\n";

/* Delegated handlers: one listener for any number of boxes. */
static const char script[] =
    "<script>\n"
    "(function () {\n"
    "  'use strict';\n"
    "  var tip = document.getElementById('ts-tip');\n"
    "  var SEL = 'rect.op, rect.xfer, .mem-hit';\n"
    "  function hit(ev) { var t = ev.target; return t && t.closest ? t.closest(SEL) : null; }\n"
    "  function text(el) {\n"
    "    var t = el.getAttribute('data-tip');\n"
    "    if (t === null) {\n"
    "      var ti = el.querySelector('title');\n"
    "      t = ti ? ti.textContent : '';\n"
    "      el.setAttribute('data-tip', t);\n"
    "      if (ti) el.removeChild(ti);\n"
    "    }\n"
    "    return t;\n"
    "  }\n"
    "  function place(ev) {\n"
    "    var x = ev.clientX + 14, y = ev.clientY + 14;\n"
    "    var w = tip.offsetWidth, h = tip.offsetHeight;\n"
    "    if (x + w > window.innerWidth - 4) x = Math.max(4, ev.clientX - w - 14);\n"
    "    if (y + h > window.innerHeight - 4) y = Math.max(4, ev.clientY - h - 14);\n"
    "    tip.style.left = x + 'px';\n"
    "    tip.style.top = y + 'px';\n"
    "  }\n"
    "  document.addEventListener('mouseover', function (ev) {\n"
    "    var el = hit(ev);\n"
    "    if (!el) return;\n"
    "    var t = text(el);\n"
    "    if (!t) return;\n"
    "    tip.textContent = t;\n"
    "    tip.hidden = false;\n"
    "    el.classList.add('hover');\n"
    "    place(ev);\n"
    "  });\n"
    "  document.addEventListener('mousemove', function (ev) { if (!tip.hidden) place(ev); });\n"
    "  document.addEventListener('mouseout', function (ev) {\n"
    "    var el = hit(ev);\n"
    "    if (!el) return;\n"
    "    tip.hidden = true;\n"
    "    el.classList.remove('hover');\n"
    "  });\n"
    "  var boxes = document.querySelectorAll('rect.op, rect.xfer');\n"
    "  document.body.setAttribute('data-boxes', String(boxes.length));\n"
    "  if (location.hash === '#selftest' && boxes.length) {\n"
    "    boxes[0].dispatchEvent(new MouseEvent('mouseover', {bubbles: true, clientX: 20, clientY: 20}));\n"
    "    document.body.setAttribute('data-selftest', tip.hidden ? '' : tip.textContent);\n"
    "  }\n"
    "  document.body.setAttribute('data-ready', '1');\n"
    "})();\n"
    "</script>\n";

static double run_t_max(const ts_run_t *run) {
  double t = 0;
  for (int i = 0; i < run->n_events; i++)
    if (isfinite(run->events[i].end) && run->events[i].end > t) t = run->events[i].end;
  return t;
}

static void write_head(FILE *f, const ts_result_t *r) {
  const ts_job_t *j = r->job;
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"generator\" content=\"trainsim " TS_VERSION "\">\n<title>trainsim report: ", f);
  if (j) {
    html_put(f, j->schedule);
    fprintf(f, " p=%d m=%d", j->stages, j->microbatches);
    if (j->model.name[0]) {
      fputs(", ", f);
      html_put(f, j->model.name);
    }
  } else {
    fputs("run", f);
  }
  fputs("</title>\n", f);
  fputs(css, f);
  fputs("</head>\n<body>\n", f);
}

static void write_header(FILE *f, const ts_result_t *r) {
  const ts_job_t *j = r->job;
  fputs("<header>\n<h1>", f);
  if (j) {
    html_put(f, j->schedule);
    fprintf(f, " \xE2\x80\x94 p=%d m=%d", j->stages, j->microbatches);
    if (j->chunks > 1) fprintf(f, " v=%d", j->chunks);
    if (j->iterations > 1) fprintf(f, " iterations=%d", j->iterations);
  } else {
    fputs("trainsim run", f);
  }
  fputs("</h1>\n<p class=\"sub\">", f);
  if (j) {
    fputs("model <b>", f);
    html_put(f, j->model.name[0] ? j->model.name : "unnamed");
    fputs("</b> \xC2\xB7 platform <b>", f);
    html_put(f, j->platform_arg[0] ? j->platform_arg : j->platform);
    fprintf(f, "</b> \xC2\xB7 micro-batch size %d \xC2\xB7 sequence %d \xC2\xB7 recompute %s \xC2\xB7 job <code>",
            j->micro_batch_size, j->seq_len, j->recompute == TS_RECOMPUTE_FULL ? "full" : "none");
    html_put(f, j->path);
    fputs("</code> \xC2\xB7 ", f);
  }
  fprintf(f, "%d device%s \xC2\xB7 ", r->run->n_devices, r->run->n_devices == 1 ? "" : "s");
  html_put(f, r->run->executor[0] ? r->run->executor : "unknown");
  fputs(" executor \xC2\xB7 trainsim " TS_VERSION "</p>\n", f);
  fputs("</header>\n", f);
}

static void card(FILE *f, const char *k, const char *v, bool bad) {
  fprintf(f, "<div class=\"card%s\"><div class=\"k\">", bad ? " bad" : "");
  html_put(f, k);
  fputs("</div><div class=\"v\">", f);
  html_put(f, v);
  fputs("</div></div>\n", f);
}

static void write_cards(FILE *f, const ts_result_t *r) {
  const ts_metrics_t *m = r->metrics;
  if (!m) return;
  char a[64], b[64];
  fputs("<div class=\"cards\">\n", f);
  card(f, "iteration time", fmt_time(a, sizeof a, m->iteration_time_s), false);
  snprintf(b, sizeof b, "%.4f", m->bubble_fraction + 0.0);
  card(f, "bubble fraction", b, false);
  card(f, "throughput", fmt_si(a, sizeof a, m->samples_per_s, "samples/s"), false);
  if (r->cost && r->cost->has_flops) {
    snprintf(b, sizeof b, "%.1f %%", 100.0 * m->mfu);
    card(f, "MFU", b, false);
  }
  double worst = 0;
  int nofit = 0;
  for (int d = 0; d < m->n_devices; d++) {
    if (m->dev[d].peak_memory_bytes > worst) worst = m->dev[d].peak_memory_bytes;
    nofit += !m->dev[d].fits;
  }
  card(f, "largest peak memory", fmt_bytes(a, sizeof a, worst), nofit > 0);
  if (nofit) {
    snprintf(b, sizeof b, "%d device%s", nofit, nofit == 1 ? "" : "s");
    card(f, "over capacity", b, true);
  }
  fputs("</div>\n", f);
}

/* ------------------------------------------------------------------ */
/* Gantt chart                                                         */
/* ------------------------------------------------------------------ */

/* Mirrors ts_gantt.c's test of the events it draws. */
static bool drawn(const ts_run_t *run, const ts_event_t *e) {
  return e->device >= 0 && e->device < run->n_devices && e->kind >= 0 && e->kind < TS_KIND_COUNT &&
         isfinite(e->start) && isfinite(e->end) && e->start >= 0 && e->end >= e->start;
}

/* Per compute event drawn (in drawing order), the activation bytes it
** stashes (> 0) or frees (< 0), as ts_metrics.c accounts them.  NULL when
** the job, layout or cost is missing. */
static double *op_bytes(const ts_result_t *r, int *n_out) {
  const ts_job_t *job = r->job;
  const ts_layout_t *L = r->layout;
  const ts_cost_t *C = r->cost;
  *n_out = 0;
  if (!job || !L || !C) return NULL;
  long M = (long)job->microbatches * (job->iterations > 0 ? job->iterations : 1);
  double *held = calloc((size_t)L->n_vstages * (size_t)(M > 0 ? M : 1), sizeof *held);
  double *out = malloc((size_t)(r->run->n_events ? r->run->n_events : 1) * sizeof *out);
  if (!held || !out) {
    free(held);
    free(out);
    return NULL;
  }
  bool full = job->recompute == TS_RECOMPUTE_FULL;
  int n = 0;
  for (int i = 0; i < r->run->n_events; i++) {
    const ts_event_t *e = &r->run->events[i];
    if (!drawn(r->run, e) || !ts_kind_is_compute((ts_kind_t)e->kind)) continue;
    double v = 0;
    if (e->vstage >= 0 && e->vstage < L->n_vstages && e->mb >= 0 && e->mb < M) {
      const ts_part_cost_t *pc = &C->part[L->part[e->vstage]];
      size_t c = (size_t)e->vstage * (size_t)M + (size_t)e->mb;
      if (e->kind == TS_FORWARD)
        v = full && !(e->flags & TS_EVF_KEEP) ? pc->act_input_bytes : pc->act_bytes;
      else if (e->kind == TS_RECOMPUTE)
        v = pc->act_bytes;
      held[c] += v;
      if (e->kind == TS_BACKWARD || e->kind == TS_WEIGHT_GRAD) {
        v = -held[c];
        held[c] = 0;
      }
    }
    out[n++] = v;
  }
  free(held);
  *n_out = n;
  return out;
}

/* Copies the Gantt SVG to f, adding to each compute box's title the bytes
** the op stashes or frees.  The boxes come in the order of the events
** (ts_gantt.c draws compute events in array order); should a title not
** start with the expected kind, the remaining titles are copied as they
** are. */
static void copy_gantt(FILE *f, const char *svg, const ts_result_t *r) {
  int n_ops;
  double *ob = op_bytes(r, &n_ops);
  static const char tag[] = "<rect class=\"op ";
  const char *p = svg;
  int k = 0;
  bool enrich = ob != NULL;
  int ev = 0; /* next compute event drawn */
  while (enrich) {
    const char *q = strstr(p, tag);
    if (!q || k >= n_ops) break;
    const char *t = strstr(q, "<title>"), *te = t ? strstr(t, "</title>") : NULL;
    if (!te) break;
    /* the kind of the box: its title's first word */
    while (ev < r->run->n_events &&
           !(drawn(r->run, &r->run->events[ev]) && ts_kind_is_compute((ts_kind_t)r->run->events[ev].kind)))
      ev++;
    if (ev >= r->run->n_events) break;
    const char *kn = ts_kind_name((ts_kind_t)r->run->events[ev].kind);
    size_t kl = strlen(kn);
    if (strncmp(t + 7, kn, kl) || t[7 + kl] != ' ') break;
    fwrite(p, 1, (size_t)(te - p), f);
    double v = ob[k++];
    ev++;
    char b[48];
    if (v > 0)
      fprintf(f, ", stashes %s of activations", fmt_bytes(b, sizeof b, v));
    else if (v < 0)
      fprintf(f, ", frees %s of activations", fmt_bytes(b, sizeof b, -v));
    p = te;
  }
  fputs(p, f);
  free(ob);
}

static int write_gantt(FILE *f, const ts_result_t *r) {
  fputs("<section id=\"gantt\">\n<h2>Pipeline schedule</h2>\n", f);
  if (r->run->n_events > TS_REPORT_MAX_EVENTS) {
    fprintf(f, "<p class=\"note\">This run has %d events, more than the %d this page draws inline: "
               "the Gantt chart is left out to keep the page small and quick to open. It is in "
               "<code>gantt.svg</code>, written beside this page by <code>trainsim run</code>.</p>\n"
               "</section>\n",
            r->run->n_events, TS_REPORT_MAX_EVENTS);
    return 0;
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (!m) return EX_OSERR;
  int rc = ts_write_gantt_svg(r, m);
  if (fclose(m)) rc = rc ? rc : EX_OSERR;
  if (!rc) {
    fputs("<p class=\"note\">One row per device; boxes are compute operations numbered by "
          "micro-batch (from 1), thin bars under a row are the transfers the device sends. "
          "Hover a box for its details.</p>\n<div class=\"chart\">\n",
          f);
    copy_gantt(f, buf, r);
    fputs("</div>\n</section>\n", f);
  }
  free(buf);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Memory over time                                                    */
/* ------------------------------------------------------------------ */

#define M_W 430.0
#define M_H 190.0
#define M_LEFT 64.0
#define M_RIGHT 14.0
#define M_TOP 30.0
#define M_BOTTOM 38.0
#define M_PW (M_W - M_LEFT - M_RIGHT)
#define M_PH (M_H - M_TOP - M_BOTTOM)
#define RGB_RES "#44AA99" /* resident weights: the Gantt chart's fetch teal */
#define RGB_STATES "#BBBBBB"
#define RGB_ACT "#56B4E9"
#define RGB_ACT_LINE "#0072B2"
#define RGB_CAP "#C00000"

static double nice_step(double span, double target) {
  double raw = span / target, mag = pow(10.0, floor(log10(raw))), norm = raw / mag;
  return (norm <= 1.0 ? 1.0 : norm <= 2.0 ? 2.0 : norm <= 5.0 ? 5.0 : 10.0) * mag;
}

/* Binary unit in which b reads between 1 and 1024. */
static void byte_unit(double b, const char **name, double *per) {
  static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int i = 0;
  *per = 1;
  while (b >= 1024.0 * *per && i < 5) {
    *per *= 1024.0;
    i++;
  }
  *name = u[i];
}

static double states_of(const ts_device_metrics_t *dm) {
  return dm->weights_bytes + dm->gradients_bytes + dm->optimizer_bytes;
}

/* The activation step function of dm as a polygon on top of the states
** band: exact steps when they are few, else the maximum over each pixel
** column (so that no peak disappears). */
static void mem_path(FILE *f, const ts_device_metrics_t *dm, double t_max, double y_of_0,
                     double px_per_byte, double base) {
  int n = dm->mem_t && dm->mem_bytes ? dm->n_mem : 0;
  double sx = M_PW / t_max;
  fprintf(f, "<path class=\"act\" fill=\"%s\" fill-opacity=\"0.55\" stroke=\"%s\" stroke-width=\"1\" "
             "d=\"M%.2f,%.2f",
          RGB_ACT, RGB_ACT_LINE, M_LEFT, y_of_0 - base * px_per_byte);
  if (n <= 2 * (int)M_PW) {
    for (int i = 0; i < n; i++) {
      double t = fmin(fmax(dm->mem_t[i], 0), t_max), b = isfinite(dm->mem_bytes[i]) ? dm->mem_bytes[i] : 0;
      fprintf(f, " H%.2f V%.2f", M_LEFT + t * sx, y_of_0 - (base + b) * px_per_byte);
    }
  } else {
    int cols = (int)M_PW;
    double *mx = calloc((size_t)cols, sizeof *mx);
    if (mx) {
      for (int i = 0; i < n; i++) {
        double t0 = fmin(fmax(dm->mem_t[i], 0), t_max);
        double t1 = i + 1 < n ? fmin(fmax(dm->mem_t[i + 1], 0), t_max) : t_max;
        double b = isfinite(dm->mem_bytes[i]) ? dm->mem_bytes[i] : 0;
        int c0 = (int)floor(t0 * sx), c1 = (int)ceil(t1 * sx);
        if (c1 <= c0) c1 = c0 + 1;
        for (int c = c0; c < c1 && c < cols; c++)
          if (c >= 0 && b > mx[c]) mx[c] = b;
      }
      for (int c = 0; c < cols; c++)
        fprintf(f, " V%.2f H%.2f", y_of_0 - (base + mx[c]) * px_per_byte, M_LEFT + c + 1.0);
      free(mx);
    }
  }
  fprintf(f, " H%.2f V%.2f H%.2f Z\"/>\n", M_LEFT + M_PW, y_of_0 - base * px_per_byte, M_LEFT);
}

static void write_mem_chart(FILE *f, const ts_result_t *r, int d, double t_max, double y_max) {
  const ts_device_metrics_t *dm = &r->metrics->dev[d];
  const char *un;
  double per;
  byte_unit(y_max, &un, &per);
  double step = nice_step(y_max / per, 4.0) * per;
  double top = ceil(y_max / step - 1e-9) * step;
  if (!(top > 0)) top = 1;
  double ppb = M_PH / top, y0 = M_TOP + M_PH, base = states_of(dm);
  char a[48], b[48], c[48], e[48];

  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"mem\" width=\"%.0f\" height=\"%.0f\" "
             "viewBox=\"0 0 %.0f %.0f\" font-size=\"11\">\n",
          M_W, M_H, M_W, M_H);
  fprintf(f, "<text x=\"%.2f\" y=\"18\" font-weight=\"bold\" font-size=\"12\">device %d</text>", M_LEFT, d);
  /* after "device d" in 12 px bold: about 7.6 px a character */
  double name_x = M_LEFT + 10.0 + 7.6 * snprintf(NULL, 0, "device %d", d);
  fprintf(f, "<text x=\"%.2f\" y=\"18\" fill=\"#5b6470\">", name_x);
  html_put(f, r->run->devices[d].name);
  fprintf(f, " \xC2\xB7 peak %s", fmt_bytes(a, sizeof a, dm->peak_memory_bytes));
  if (dm->memory_capacity_bytes > 0) fprintf(f, " of %s", fmt_bytes(b, sizeof b, dm->memory_capacity_bytes));
  if (!dm->fits) fputs(" \xE2\x80\x94 does not fit", f);
  fputs("</text>\n", f);

  /* y grid and labels */
  fputs("<g class=\"grid\" stroke=\"#e3e6ea\">\n", f);
  int nt = (int)floor(top / step + 0.5);
  for (int i = 0; i <= nt; i++)
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", M_LEFT, y0 - i * step * ppb,
            M_LEFT + M_PW, y0 - i * step * ppb);
  fputs("</g>\n<g text-anchor=\"end\" fill=\"#333333\">\n", f);
  double su = step / per;
  int dec = su >= 1 ? 0 : (int)ceil(-log10(su) - 1e-9);
  for (int i = 0; i <= nt; i++)
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">%.*f</text>\n", M_LEFT - 6.0, y0 - i * step * ppb + 4.0, dec,
            i * su);
  fputs("</g>\n", f);
  fprintf(f, "<text x=\"0\" y=\"0\" transform=\"translate(14,%.2f) rotate(-90)\" text-anchor=\"middle\" "
             "fill=\"#333333\">memory (%s)</text>\n",
          M_TOP + M_PH / 2.0, un);

  /* model states band, activations on top, capacity */
  if (base > 0)
    fprintf(f, "<rect class=\"states\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n",
            M_LEFT, y0 - base * ppb, M_PW, base * ppb, RGB_STATES);
  mem_path(f, dm, t_max, y0, ppb, base);
  if (dm->n_res > 0) { /* host-memory schedules: weights arriving and leaving */
    fprintf(f, "<path class=\"res\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" d=\"M%.2f,%.2f",
            RGB_RES, M_LEFT, y0);
    for (int i = 0; i < dm->n_res; i++)
      fprintf(f, " H%.2f V%.2f", M_LEFT + fmin(fmax(dm->res_t[i], 0), t_max) * M_PW / t_max,
              y0 - (isfinite(dm->res_bytes[i]) ? dm->res_bytes[i] : 0) * ppb);
    fprintf(f, " H%.2f\"/>\n", M_LEFT + M_PW);
  }
  if (dm->memory_capacity_bytes > 0 && dm->memory_capacity_bytes <= top)
    fprintf(f, "<line class=\"capacity\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
               "stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n",
            M_LEFT, y0 - dm->memory_capacity_bytes * ppb, M_LEFT + M_PW, y0 - dm->memory_capacity_bytes * ppb,
            RGB_CAP);

  /* time axis */
  unit_t u = unit_for(t_max);
  double ts = nice_step(t_max, 5.0);
  double tsu = ts * u.per_s;
  int tdec = tsu >= 1 ? 0 : (int)ceil(-log10(tsu) - 1e-9);
  if (tdec > 9) tdec = 9;
  fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n", M_LEFT, y0,
          M_LEFT + M_PW, y0);
  fputs("<g text-anchor=\"middle\" fill=\"#333333\">\n", f);
  int ntt = (int)floor(t_max / ts * (1.0 + 1e-9));
  for (int i = 0; i <= ntt; i++) {
    double x = M_LEFT + i * ts * M_PW / t_max;
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>", x, y0, x, y0 + 4.0);
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">%.*f</text>\n", x, y0 + 16.0, tdec, i * tsu);
  }
  fprintf(f, "<text x=\"%.2f\" y=\"%.2f\">time (%s)</text>\n</g>\n", M_LEFT + M_PW / 2.0, y0 + 32.0, u.name);

  /* hover area: the device's memory figures */
  fprintf(f, "<rect class=\"mem-hit\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"transparent\">"
             "<title>device %d (",
          M_LEFT, M_TOP, M_PW, M_PH, d);
  html_put(f, r->run->devices[d].name);
  fprintf(f, "): model states %s (weights %s, gradients %s, optimizer %s); peak activations %s",
          fmt_bytes(a, sizeof a, base), fmt_bytes(b, sizeof b, dm->weights_bytes),
          fmt_bytes(c, sizeof c, dm->gradients_bytes), fmt_bytes(e, sizeof e, dm->optimizer_bytes),
          fmt_bytes(b, sizeof b, dm->peak_activation_bytes));
  if (dm->n_res > 0)
    fprintf(f, "; peak resident weights and gradient buffers %s (room waits %.3g s)",
            fmt_bytes(a, sizeof a, dm->peak_resident_bytes), dm->room_wait_s);
  fprintf(f, "; peak memory %s", fmt_bytes(a, sizeof a, dm->peak_memory_bytes));
  if (dm->memory_capacity_bytes > 0)
    fprintf(f, " of %s capacity", fmt_bytes(c, sizeof c, dm->memory_capacity_bytes));
  fprintf(f, "; %d micro-batches in flight at most</title></rect>\n", dm->peak_inflight);
  fputs("</svg>\n", f);
}

static void write_memory(FILE *f, const ts_result_t *r) {
  const ts_metrics_t *m = r->metrics;
  fputs("<section id=\"memory\">\n<h2>Memory over time</h2>\n", f);
  if (!m || !m->dev || m->n_devices < 1) {
    fputs("<p class=\"note\">n/a: no metrics.</p>\n</section>\n", f);
    return;
  }
  /* One scale for all devices: the largest peak, and the capacities that
  ** are within 1.5 times of it (a capacity far above every peak would
  ** flatten the plots; the chart titles give it). */
  double t_max = run_t_max(r->run), y_max = 0;
  if (!(t_max > 0)) t_max = 1;
  for (int d = 0; d < m->n_devices; d++) y_max = fmax(y_max, m->dev[d].peak_memory_bytes);
  int cap_on = 0, cap_off = 0;
  double peak = y_max;
  for (int d = 0; d < m->n_devices; d++) {
    double c = m->dev[d].memory_capacity_bytes;
    if (c > 0 && (c <= 1.5 * peak || !(peak > 0))) {
      y_max = fmax(y_max, c);
      cap_on++;
    } else if (c > 0) {
      cap_off++;
    }
  }
  if (!(y_max > 0)) y_max = 1;
  fputs("<p class=\"note\">Per device, on one scale: the model states (weights, gradients and optimizer "
        "state) are held throughout; the activations a forward stashes are held until its backward ends "
        "(see README, Memory).",
        f);
  if (m->dev[0].n_res > 0)
    fputs(" Weights live in host memory here: the teal line is the weights and gradient buffers "
          "on the device over time, fetched, evicted and written back (see README, Mobius); the area "
          "is the activations.",
          f);
  if (cap_off)
    fputs(" Capacities far above every peak are left off the scale; each chart's title gives its "
          "device's capacity.",
          f);
  fputs("</p>\n<div class=\"key\">", f);
  fprintf(f, "<span><i style=\"background:%s\"></i>model states</span>"
             "<span><i style=\"background:%s\"></i>activations</span>",
          RGB_STATES, RGB_ACT);
  if (cap_on) fputs("<span><i class=\"cap\"></i>capacity</span>", f);
  fputs("</div>\n<div class=\"mems\">\n", f);
  for (int d = 0; d < m->n_devices; d++) write_mem_chart(f, r, d, t_max, y_max);
  fputs("</div>\n</section>\n", f);
}

/* ------------------------------------------------------------------ */
/* Tables                                                              */
/* ------------------------------------------------------------------ */

/* One row of the summary table: the metric, its value as shown and exact
** (v, x), and its definition. */
static void write_row(FILE *f, const def_t *d, const char *v, const char *x) {
  fputs("<tr><td><code>", f);
  html_put(f, d->name);
  fputs("</code></td><td class=\"num\">", f);
  html_put(f, v);
  fputs("</td><td class=\"num\"><code>", f);
  html_put(f, x);
  fputs("</code></td><td class=\"def\">", f);
  html_put(f, d->text);
  fputs("</td></tr>\n", f);
}

/* The rows of the "moe" object: values for MoE runs, n/a otherwise. */
static void write_moe_rows(FILE *f, const ts_result_t *r) {
  const ts_metrics_t *m = r->metrics;
  const ts_moe_cost_t *mc = r->cost ? r->cost->moe : NULL;
  for (int i = 0; i < N_MOE_DEFS; i++) {
    char v[160] = "n/a (no MoE layers)", x[64] = "";
    double val = NAN;
    if (mc && m && r->job) {
      const ts_moe_t *mo = &r->job->model.moe;
      switch (i) {
        case 0:
          snprintf(v, sizeof v, "E=%d, EP=%d, cf=%g, S=%d, %s, seed %lu, %s", mo->experts,
                   mo->expert_parallel, mo->capacity_factor, mc->S,
                   mo->skew == TS_MOE_ZIPF ? "zipf" : mo->skew == TS_MOE_TABLE ? "table" : "uniform",
                   mo->seed, mo->alltoall_tokens ? "tokens" : "capacity");
          break;
        case 1:
          snprintf(v, sizeof v, "%d", (int)(val = ts_moe_capacity(mc->S, mc->E, mo->capacity_factor,
                                                                   mo->capacity_multiple)));
          break;
        case 2: snprintf(v, sizeof v, "%d", (int)(val = mc->n_layers)); break;
        case 3: snprintf(v, sizeof v, "%.4f", val = m->alltoall_share); break;
        case 4: fmt_time(v, sizeof v, val = m->moe_forward_s); break;
        case 5: fmt_time(v, sizeof v, val = m->moe_backward_s); break;
        case 6: snprintf(v, sizeof v, "%.4f", val = m->expert_imbalance); break;
        case 7: snprintf(v, sizeof v, "%lld", m->tokens_dropped); val = (double)m->tokens_dropped; break;
        case 8: {
          long long k = 0;
          for (int e = 0; e < m->n_expert_load; e++) k += m->expert_load[e];
          snprintf(v, sizeof v, "%lld", k);
          val = (double)k;
          break;
        }
        case 9: snprintf(v, sizeof v, "%.4f", val = m->aux_loss); break;
        default: {
          size_t n = 0;
          v[0] = 0;
          for (int e = 0; e < m->n_expert_load && e < 8; e++)
            n += (size_t)snprintf(v + n, sizeof v - n, "%s%lld", e ? ", " : "", m->expert_load[e]);
          if (m->n_expert_load > 8) snprintf(v + n, sizeof v - n, ", \xE2\x80\xA6");
        }
      }
    }
    if (isfinite(val)) snprintf(x, sizeof x, "%.17g", val);
    write_row(f, &moe_defs[i], v, x);
  }
}

static void write_summary(FILE *f, const ts_result_t *r) {
  const ts_metrics_t *m = r->metrics;
  bool flops = r->cost && r->cost->has_flops;
  fputs("<section id=\"summary\">\n<h2>Summary</h2>\n<p class=\"note\">The figures of "
        "<code>summary.json</code>, with their definitions.</p>\n<div class=\"scroll\"><table>\n"
        "<tr><th>metric</th><th>value</th><th>exact</th><th>definition</th></tr>\n",
        f);
  for (int i = 0; i < N_TOP; i++) {
    char v[96] = "n/a", x[64] = "";
    double val = NAN;
    bool have = m != NULL;
    switch (i) {
      case D_VERSION:
        snprintf(v, sizeof v, "%s, %s", TS_VERSION, r->run->executor[0] ? r->run->executor : "unknown");
        break;
      case D_JOB:
        if (r->job)
          snprintf(v, sizeof v, "%.32s, p=%d, m=%d, b=%d, s=%d", r->job->schedule, r->job->stages,
                   r->job->microbatches, r->job->micro_batch_size, r->job->seq_len);
        break;
      case D_ITER: if (have) fmt_time(v, sizeof v, val = m->iteration_time_s); break;
      case D_BUBBLE: if (have) snprintf(v, sizeof v, "%.4f", val = m->bubble_fraction); break;
      case D_OVERHEAD: if (have) snprintf(v, sizeof v, "%.4f", val = m->bubble_overhead); break;
      case D_IDEAL: if (have) fmt_time(v, sizeof v, val = m->ideal_time_s); break;
      case D_SAMPLES: if (have) fmt_si(v, sizeof v, val = m->samples_per_s, "samples/s"); break;
      case D_TOKENS: if (have) fmt_si(v, sizeof v, val = m->tokens_per_s, "tokens/s"); break;
      case D_FLOPS:
        if (have && flops) fmt_si(v, sizeof v, val = m->flops_per_s_per_gpu, "FLOP/s");
        else snprintf(v, sizeof v, "n/a (synthetic model)");
        break;
      case D_MFU:
        if (have && flops) snprintf(v, sizeof v, "%.2f %%", 100.0 * (val = m->mfu));
        else snprintf(v, sizeof v, "n/a (synthetic model)");
        break;
      case D_P2P: if (have) fmt_bytes(v, sizeof v, val = m->p2p_bytes); break;
      case D_PARAMS:
        if (flops && (val = r->cost->model_params) >= 1e9)
          snprintf(v, sizeof v, "%.4g billion", val / 1e9);
        else if (flops)
          snprintf(v, sizeof v, "%.4g million", val / 1e6);
        else
          snprintf(v, sizeof v, "n/a (synthetic model)");
        break;
    }
    if (isfinite(val)) snprintf(x, sizeof x, "%.17g", val);
    write_row(f, &top_defs[i], v, x);
  }
  write_moe_rows(f, r);
  fputs("</table></div>\n</section>\n", f);
}

static void write_devices(FILE *f, const ts_result_t *r) {
  const ts_metrics_t *m = r->metrics;
  const ts_layout_t *L = r->layout;
  fputs("<section id=\"devices\">\n<h2>Devices</h2>\n", f);
  if (!m || !m->dev) {
    fputs("<p class=\"note\">n/a: no metrics.</p>\n</section>\n", f);
    return;
  }
  fputs("<div class=\"scroll\"><table class=\"devs\">\n<tr><th>device</th><th>name</th><th>stages</th><th>busy_s</th>"
        "<th>idle_s</th><th>bubble_fraction</th><th>peak_inflight_microbatches</th>"
        "<th>peak_activation_bytes</th><th>weights_bytes</th><th>gradients_bytes</th>"
        "<th>optimizer_bytes</th><th>peak_memory_bytes</th><th>memory_capacity_bytes</th>"
        "<th>fits</th><th>p2p_bytes_sent</th><th>speed_flops</th></tr>\n",
        f);
  for (int d = 0; d < m->n_devices && d < r->run->n_devices; d++) {
    const ts_device_metrics_t *dm = &m->dev[d];
    char a[64];
    fprintf(f, "<tr><td class=\"num\">%d</td><td>", d);
    html_put(f, r->run->devices[d].name);
    fputs("</td><td>", f);
    int shown = 0;
    for (int v = 0; L && v < L->n_vstages; v++) {
      if (L->dev[v] != d) continue;
      if (shown++ == 24) {
        fputs(", \xE2\x80\xA6", f);
        break;
      }
      fprintf(f, "%s%d", shown > 1 ? ", " : "", L->stage[v]);
      if (L->chunk[v] > 0 || (r->job && r->job->chunks > 1)) fprintf(f, ".%d", L->chunk[v]);
      if (r->cost && r->cost->has_flops && L->part[v] < r->cost->n_parts) {
        const ts_part_cost_t *pc = &r->cost->part[L->part[v]];
        if (pc->n_layers > 0)
          fprintf(f, " (layers %d\xE2\x80\x93%d)", pc->first_layer, pc->first_layer + pc->n_layers - 1);
      }
    }
    if (!L) fputs("n/a", f);
    fprintf(f, "</td><td class=\"num\">%s</td>", fmt_time(a, sizeof a, dm->busy_s));
    fprintf(f, "<td class=\"num\">%s</td>", fmt_time(a, sizeof a, dm->idle_s));
    fprintf(f, "<td class=\"num\">%.4f</td><td class=\"num\">%d</td>", dm->bubble_fraction + 0.0,
            dm->peak_inflight);
    fprintf(f, "<td class=\"num\">%s</td>", fmt_bytes(a, sizeof a, dm->peak_activation_bytes));
    fprintf(f, "<td class=\"num\">%s</td>", fmt_bytes(a, sizeof a, dm->weights_bytes));
    fprintf(f, "<td class=\"num\">%s</td>", fmt_bytes(a, sizeof a, dm->gradients_bytes));
    fprintf(f, "<td class=\"num\">%s</td>", fmt_bytes(a, sizeof a, dm->optimizer_bytes));
    fprintf(f, "<td class=\"num\">%s</td>", fmt_bytes(a, sizeof a, dm->peak_memory_bytes));
    if (dm->memory_capacity_bytes > 0)
      fprintf(f, "<td class=\"num\">%s</td>", fmt_bytes(a, sizeof a, dm->memory_capacity_bytes));
    else
      fputs("<td class=\"num\">unknown</td>", f);
    fprintf(f, "<td>%s</td>", dm->fits ? "yes" : "<b style=\"color:#C00000\">no</b>");
    fprintf(f, "<td class=\"num\">%s</td>", fmt_bytes(a, sizeof a, dm->send_bytes));
    fprintf(f, "<td class=\"num\">%s</td></tr>\n", fmt_si(a, sizeof a, r->run->devices[d].speed, "FLOP/s"));
  }
  fputs("</table></div>\n<dl class=\"defs\">\n", f);
  for (int i = 0; i < N_DEV_DEFS; i++) {
    fputs("<dt><code>", f);
    html_put(f, dev_defs[i].name);
    fputs("</code></dt><dd>", f);
    html_put(f, dev_defs[i].text);
    fputs("</dd>\n", f);
  }
  fputs("</dl>\n</section>\n", f);
}

/* ------------------------------------------------------------------ */
/* The page                                                            */
/* ------------------------------------------------------------------ */

int ts_write_report_html(const ts_result_t *r, FILE *f) {
  if (!r || !r->run || !f) return EX_SOFTWARE;
  write_head(f, r);
  write_header(f, r);
  write_cards(f, r);
  int rc = write_gantt(f, r);
  if (rc) return rc;
  write_memory(f, r);
  write_summary(f, r);
  write_devices(f, r);
  fputs("<footer>Generated by trainsim " TS_VERSION ". This page is self-contained: it loads "
        "nothing from the network or from other files.</footer>\n"
        "<div id=\"ts-tip\" role=\"tooltip\" hidden></div>\n",
        f);
  fputs(script, f);
  fputs("</body>\n</html>\n", f);
  return fflush(f) || ferror(f) ? EX_IOERR : 0;
}
