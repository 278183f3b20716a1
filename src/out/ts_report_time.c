/*
** ts_report_time.c: report.html's "Where the time goes" section: per
** pipeline stage, the mean over its devices (tensor- and data-parallel
** ranks) of the time split (README "Time split": compute, exposed TP
** wait, pipeline wait, exposed DP wait, optimizer step, idle, which add up
** to T), as a table and a stacked bar (plain HTML, no SVG) per stage,
** then the whole run's.
*/
#include <math.h>
#include <stdlib.h>

#include "ts_report_int.h"

/* The parts in the split's order, with their colours (Okabe-Ito). */
#define N_PARTS 6
static const char *const part_name[N_PARTS] = {"compute", "TP exposed", "PP wait",
                                               "DP exposed", "optimizer", "idle"};
static const char *const part_rgb[N_PARTS] = {"#0072B2", "#E69F00", "#009E73",
                                              "#CC79A7", "#56B4E9", "#DDDDDD"};
#define BAR_W 320.0 /* px */

static void parts_of(const ts_time_split_t *s, double x[N_PARTS]) {
  x[0] = s->compute_s, x[1] = s->tp_exposed_s, x[2] = s->pp_wait_s;
  x[3] = s->dp_exposed_s, x[4] = s->optimizer_s, x[5] = s->idle_s;
}

/* One row: its label, devices, the parts (seconds) and their bar over T. */
static void row(FILE *f, const char *label, int n, const double x[N_PARTS], double T) {
  char a[48];
  fprintf(f, "<tr><td>%s</td><td class=\"num\">%d</td>", label, n);
  for (int p = 0; p < N_PARTS; p++)
    fprintf(f, "<td class=\"num\">%s</td>", ts__report_time(a, sizeof a, x[p]));
  fprintf(f, "<td><div style=\"display:flex;width:%.0fpx;height:14px;background:#fff\">", BAR_W);
  for (int p = 0; p < N_PARTS; p++) {
    double w = T > 0 ? 100.0 * x[p] / T : 0;
    if (!(w > 0)) continue;
    fprintf(f, "<span style=\"width:%.3f%%;background:%s\" title=\"%s %s (%.1f %%)\"></span>", w,
            part_rgb[p], part_name[p], ts__report_time(a, sizeof a, x[p]), w);
  }
  fputs("</div></td></tr>\n", f);
}

void ts__report_write_time(FILE *f, const ts_result_t *r) {
  const ts_metrics_t *m = r->metrics;
  const ts_layout_t *lay = r->layout;
  if (!m || !m->dev || m->n_devices < 1 || !lay) return;
  double T = m->iteration_time_s * (r->job ? r->job->iterations : 1);
  int ns = r->job && r->job->stages > 0 ? r->job->stages : 1;
  double(*sum)[N_PARTS] = calloc((size_t)ns, sizeof *sum);
  int *cnt = calloc((size_t)ns, sizeof *cnt);
  if (!sum || !cnt) {
    free(sum);
    free(cnt);
    return;
  }
  /* A device's stage: that of the first (virtual) stage it holds. */
  for (int d = 0; d < m->n_devices; d++) {
    int s = -1;
    for (int v = 0; v < lay->n_vstages && s < 0; v++)
      if (lay->dev[v] == d) s = lay->stage[v];
    if (s < 0 || s >= ns) continue;
    double x[N_PARTS];
    parts_of(&m->dev[d].split, x);
    for (int p = 0; p < N_PARTS; p++) sum[s][p] += x[p];
    cnt[s]++;
  }
  fputs("<section id=\"time\">\n<h2>Where the time goes</h2>\n<p class=\"note\">Each device's run "
        "(T) cut by what its compute stream does, the first that applies: compute, waiting for a "
        "tensor-parallel collective (TP exposed), a pipeline message to it in flight (PP wait), "
        "waiting for another collective (DP exposed), the optimizer step, and idle (the bubble "
        "proper). Per stage, the mean over its devices; the parts add up to T.</p>\n<div class=\"key\">",
        f);
  for (int p = 0; p < N_PARTS; p++)
    fprintf(f, "<span><i style=\"background:%s\"></i>%s</span>", part_rgb[p], part_name[p]);
  fputs("</div>\n<div class=\"scroll\"><table class=\"devs\"><tr><th>stage</th><th>devices</th>", f);
  for (int p = 0; p < N_PARTS; p++) fprintf(f, "<th>%s</th>", part_name[p]);
  fputs("<th>share of T</th></tr>\n", f);
  for (int s = 0; s < ns; s++) {
    if (!cnt[s]) continue;
    double x[N_PARTS];
    for (int p = 0; p < N_PARTS; p++) x[p] = sum[s][p] / cnt[s];
    char label[24];
    snprintf(label, sizeof label, "%d", s);
    row(f, label, cnt[s], x, T);
  }
  double x[N_PARTS];
  parts_of(&m->split, x);
  row(f, "all", m->n_devices, x, T);
  fputs("</table></div>\n</section>\n", f);
  free(sum);
  free(cnt);
}
