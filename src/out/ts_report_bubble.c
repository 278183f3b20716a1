/*
** ts_report_bubble.c: the parts of report.html that make the page stand on
** its own: "How to read this page" (the terms the page uses, only those
** that apply to the job) and "The bubble", which sets the measured bubble
** fraction beside the schedule's closed form when the schedule has one
** (README's schedule table: GPipe and 1F1B (p - 1)/(m + p - 1),
** interleaved (p - 1)/(v m + p - 1), ZB-H1 from its iteration time,
** Chimera (D - 2)/(2N + D - 2), PipeDream-2BW (p - 1)/(m I + p - 1)),
** states the formula, its value and the difference, and names what the
** closed form leaves out where this run has it: unequal stages (the
** busiest and least busy devices) and transfers that take time.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ts_report_int.h"

/* Mean duration of the events of kind (compute kinds), NAN when none. */
static double mean_dur(const ts_run_t *run, int kind) {
  double sum = 0;
  long n = 0;
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    if (e->kind == kind && isfinite(e->start) && isfinite(e->end) && e->end >= e->start) {
      sum += e->end - e->start;
      n++;
    }
  }
  return n ? sum / n : NAN;
}

static bool has_kind(const ts_run_t *run, int kind) {
  for (int i = 0; i < run->n_events; i++)
    if (run->events[i].kind == kind) return true;
  return false;
}

/* One term of the reading guide. */
static void term(FILE *f, const char *t, const char *d) {
  fprintf(f, "<dt>%s</dt><dd>%s</dd>\n", t, d);
}

void ts__report_write_intro(FILE *f, const ts_result_t *r) {
  const ts_job_t *j = r->job;
  fputs("<section id=\"read\">\n<h2>How to read this page</h2>\n<dl class=\"defs\">\n", f);
  term(f, "stage, device", "the model's layers are cut into stages, one after the other; each device (a GPU) "
                           "runs its stage(s) and passes activations forward to the next stage and "
                           "gradients back to the previous one");
  term(f, "micro-batch", "the batch is split into m micro-batches that follow each other through the "
                         "stages, so that several stages work at once");
  term(f, "forward, backward", "the forward of a micro-batch through a stage computes its activations, "
                               "which the stage keeps (stashes) until the backward of that micro-batch "
                               "computes the gradients and frees them");
  if (has_kind(r->run, TS_RECOMPUTE))
    term(f, "recompute", "with activation recomputation a stage keeps only its input and computes the "
                         "forward again just before the backward: less memory, more compute");
  if (has_kind(r->run, TS_BACKWARD_INPUT) || has_kind(r->run, TS_WEIGHT_GRAD))
    term(f, "B, W", "the backward split in two, as in the zero-bubble papers: B, the gradient of the "
                    "stage's input, which the previous stage waits for; W, the gradient of the weights, "
                    "which nobody waits for and can fill idle time");
  term(f, "iteration time", "the time from the first operation to the last of one training step");
  term(f, "bubble", "time a device sits idle inside the pipeline's span, waiting for work from its "
                    "neighbours (blank in the chart); the bubble fraction is its share of devices x span");
  if (r->cost && r->cost->has_flops)
    term(f, "MFU", "model FLOPs utilisation: the FLOPs the model needs per second, over the devices' "
                   "peak FLOP/s");
  term(f, "model states, activations", "model states (weights, their gradients, the optimizer's state) "
                                       "are held for the whole step; activations come and go with the "
                                       "micro-batches (the memory charts)");
  if (j && j->data_parallel > 1)
    term(f, "data parallelism", "the whole pipeline is replicated; replicas average their gradients "
                                "in collectives (all-reduce and friends) before the optimizer step");
  fputs("</dl>\n</section>\n", f);
}

/* The closed form of the schedule's bubble fraction: its formula (HTML),
** its value and the conditions it assumes.  false when there is none. */
static bool closed_form(const ts_result_t *r, char *formula, size_t n, double *bf, const char **cond) {
  const ts_job_t *j = r->job;
  if (!j) return false;
  double p = j->stages, m = j->microbatches, v = j->chunks > 1 ? j->chunks : 1;
  const char *s = j->schedule;
  bool moe = r->cost && r->cost->moe;
  *cond = "equal stages and free transfers";
  if (!strcmp(s, "gpipe") || !strcmp(s, "1f1b") || (!moe && (!strcmp(s, "gshard") || !strcmp(s, "gshard-gpipe")))) {
    *bf = (p - 1) / (m + p - 1);
    snprintf(formula, n, "(p &minus; 1) / (m + p &minus; 1) = %.0f / %.0f", p - 1, m + p - 1);
  } else if (!strcmp(s, "interleaved")) {
    *bf = (p - 1) / (v * m + p - 1);
    snprintf(formula, n, "(p &minus; 1) / (v m + p &minus; 1) = %.0f / %.0f", p - 1, v * m + p - 1);
  } else if (!strcmp(s, "2bw")) {
    double I = j->iterations > 0 ? j->iterations : 1;
    *bf = (p - 1) / (m * I + p - 1);
    snprintf(formula, n, "(p &minus; 1) / (m I + p &minus; 1) = %.0f / %.0f", p - 1, m * I + p - 1);
  } else if (!strcmp(s, "chimera")) {
    *bf = (p - 2) / (2 * m + p - 2);
    snprintf(formula, n, "(D &minus; 2) / (2N + D &minus; 2) = %.0f / %.0f", p - 2, 2 * m + p - 2);
    *cond = "t<sub>f</sub> = t<sub>b</sub>, N &ge; D, equal stages and free transfers";
  } else if (!strcmp(s, "zb-h1")) {
    double tf = mean_dur(r->run, TS_FORWARD), tb = mean_dur(r->run, TS_BACKWARD_INPUT);
    double tw = mean_dur(r->run, TS_WEIGHT_GRAD);
    if (!isfinite(tf + tb + tw)) return false;
    double idle = (p - 1) * (tf + tb - tw), T = m * (tf + tb + tw) + idle;
    *bf = idle / T;
    snprintf(formula, n,
             "(p &minus; 1)(T<sub>F</sub> + T<sub>B</sub> &minus; T<sub>W</sub>) / [m (T<sub>F</sub> + "
             "T<sub>B</sub> + T<sub>W</sub>) + (p &minus; 1)(T<sub>F</sub> + T<sub>B</sub> &minus; "
             "T<sub>W</sub>)] with this run's mean op times");
    *cond = "m &ge; p, T<sub>W</sub> &le; T<sub>B</sub>, equal stages and free transfers";
  } else {
    return false;
  }
  return true;
}

void ts__report_write_bubble(FILE *f, const ts_result_t *r) {
  const ts_metrics_t *m = r->metrics;
  if (!m || !isfinite(m->bubble_fraction)) return;
  fputs("<section id=\"bubble\">\n<h2>The bubble</h2>\n<p class=\"note\">", f);
  fprintf(f, "Measured bubble fraction: <b>%.4f</b> (the idle share of devices &times; the pipeline's "
             "span).",
          m->bubble_fraction + 0.0);
  char formula[512];
  double bf = NAN;
  const char *cond = "";
  if (closed_form(r, formula, sizeof formula, &bf, &cond)) {
    fprintf(f, " The schedule's closed form, which assumes %s: %s = <b>%.4f</b>. ", cond, formula, bf);
    double d = m->bubble_fraction - bf;
    if (fabs(d) < 5e-4)
      fputs("The run matches it.", f);
    else
      fprintf(f, "The run is %.4f %s.", fabs(d), d > 0 ? "above it" : "below it");
  } else {
    fputs(" This schedule has no closed form for its bubble (its order depends on when work "
          "arrives, or on host-memory copies); the chart shows where the idle time is.",
          f);
  }
  /* What the closed form leaves out, where this run has it. */
  int lo = -1, hi = -1;
  for (int d = 0; m->dev && d < m->n_devices; d++) {
    if (lo < 0 || m->dev[d].busy_s < m->dev[lo].busy_s) lo = d;
    if (hi < 0 || m->dev[d].busy_s > m->dev[hi].busy_s) hi = d;
  }
  if (lo >= 0 && m->dev[lo].busy_s > 0 && m->dev[hi].busy_s > 1.005 * m->dev[lo].busy_s) {
    char a[48], b[48];
    fprintf(f, " The stages are not equal: device %d computes for %s, device %d for %s (%.1f %% more); "
               "the busiest stage sets the pace and the others wait for it, which adds to the bubble.",
            hi, ts__report_time(a, sizeof a, m->dev[hi].busy_s), lo,
            ts__report_time(b, sizeof b, m->dev[lo].busy_s),
            100.0 * (m->dev[hi].busy_s / m->dev[lo].busy_s - 1.0));
  }
  double xfer = 0;
  for (int i = 0; i < r->run->n_events; i++) {
    const ts_event_t *e = &r->run->events[i];
    if ((e->kind == TS_SEND_ACT || e->kind == TS_SEND_GRAD) && e->end > e->start) xfer += e->end - e->start;
  }
  if (xfer > 0 && m->p2p_bytes > 0) {
    char a[48];
    fprintf(f, " Transfers between stages take time on this platform (%s sent in all): a stage waits "
               "for its input to arrive, which the closed form counts as free.",
            ts__report_bytes(a, sizeof a, m->p2p_bytes));
  }
  fputs("</p>\n</section>\n", f);
}
