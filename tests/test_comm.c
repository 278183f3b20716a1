/*
** test_comm.c: communication timing on platforms whose links are known.
**   - one transfer of S bytes over one link takes L + S/B exactly;
**   - one forward takes flops / speed exactly;
**   - GPipe over a chain of equal links c = L + S/B takes
**     (m + p - 1)(t_f + t_b) + 2 (p - 1) c;
**   - receives are posted ahead: stage 1 starts micro-batch k at
**     (k + 1) t_f + c, with no latency added per micro-batch;
**   - 1F1B with communication matches a dependency-propagation oracle
**     computed here from the op order alone;
**   - --set overrides of link bandwidth, latency and host speed.
*/
#include <math.h>

#include "tshelp.h"
#include "tsunit.h"

/* A chain of n hosts h0..h{n-1} (speed 1e12, h1 at 2e12) where each
** consecutive pair is joined by its own link l<i> (bandwidth B, latency L). */
static const char *chain_platform(int n, const char *bw, const char *lat) {
  static char xml[16384];
  int k = snprintf(xml, sizeof xml,
                   "<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
                   "<platform version=\"4.1\">\n<zone id=\"z\" routing=\"Floyd\">\n");
  for (int i = 0; i < n; i++)
    k += snprintf(xml + k, sizeof xml - (size_t)k,
                  "  <host id=\"h%d\" speed=\"%s\"><prop id=\"memory_bytes\" value=\"1e12\"/></host>\n", i,
                  i == 1 ? "2e12f" : "1e12f");
  for (int i = 0; i + 1 < n; i++)
    k += snprintf(xml + k, sizeof xml - (size_t)k,
                  "  <link id=\"l%d\" bandwidth=\"%s\" latency=\"%s\"/>\n", i, bw, lat);
  for (int i = 0; i + 1 < n; i++)
    k += snprintf(xml + k, sizeof xml - (size_t)k,
                  "  <route src=\"h%d\" dst=\"h%d\"><link_ctn id=\"l%d\"/></route>\n", i,
                  i + 1, i);
  snprintf(xml + k, sizeof xml - (size_t)k, "</zone>\n</platform>\n");
  return th_write_tmp(xml, ".xml");
}

static int sim_on(const char *plat, const char *sched, int p, int m, double tf, double tb, double S,
                  const char *const *sets, int n_sets, ts_job_t **job, ts_outcome_t *o) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": %.17g, \"backward_s\": %.17g,"
           " \"activation_message_bytes\": %.17g, \"activation_bytes\": 1},"
           " \"platform\": \"%s\", \"schedule\": \"%s\", \"stages\": %d, \"microbatches\": %d}",
           tf, tb, S, plat, sched, p, m);
  ts_err_t err = {0};
  int rc = th_simulate(json, sets, n_sets, job, o, &err);
  if (rc) fprintf(stderr, "simulate: %s\n", err.msg);
  return rc;
}

static void test_one_transfer(void) {
  const char *plat = chain_platform(2, "25GBps", "2us");
  ts_job_t *job;
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(sim_on(plat, "gpipe", 2, 1, 1.0, 2.0, 1e9, NULL, 0, &job, &o), 0);
  double c = 2e-6 + 1e9 / 25e9;
  const ts_event_t *f1 = th_find(&o, TS_FORWARD, 1, 0);
  const ts_event_t *tx = th_find(&o, TS_SEND_ACT, 0, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(tx);
  TS_ASSERT_REL(tx->end - tx->start, c, 1e-9);
  TS_ASSERT_REL(tx->bytes, 1e9, 0);
  TS_ASSERT_REL(f1->start, 1.0 + c, 1e-9);
  TS_ASSERT_REL(o.metrics->iteration_time_s, 2 * (1.0 + 2.0) + 2 * c, 1e-9);
  TS_ASSERT_REL(o.metrics->p2p_bytes, 2e9, 1e-12);
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(plat);
}

static void test_forward_takes_flops_over_speed(void) {
  const char *plat = chain_platform(2, "25GBps", "2us");
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 64, \"heads\": 4,"
           " \"vocab\": 1000}, \"platform\": \"%s\", \"schedule\": \"gpipe\", \"stages\": 2,"
           " \"microbatches\": 2, \"seq_len\": 128, \"micro_batch_size\": 2}",
           plat);
  ts_job_t *job;
  ts_outcome_t o;
  ts_err_t err = {0};
  CU_ASSERT_EQUAL_FATAL(th_simulate(json, NULL, 0, &job, &o, &err), 0);
  /* By hand: per layer 24 b s h^2 + 4 b s^2 h with b = 2, s = 128, h = 64. */
  double b = 2, s = 128, h = 64, V = 1000;
  double layer = 24 * b * s * h * h + 4 * b * s * s * h;
  double f0 = 2 * layer, f1 = 2 * layer + 2 * b * s * h * V; /* LM head on the last stage */
  const ts_event_t *e0 = th_find(&o, TS_FORWARD, 0, 0), *e1 = th_find(&o, TS_FORWARD, 1, 0);
  const ts_event_t *b1 = th_find(&o, TS_BACKWARD, 1, 0);
  TS_ASSERT_REL(e0->end - e0->start, f0 / 1e12, 1e-9);
  TS_ASSERT_REL(e1->end - e1->start, f1 / 2e12, 1e-9); /* h1 runs at 2e12 */
  TS_ASSERT_REL(b1->end - b1->start, 2 * f1 / 2e12, 1e-9);
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(plat);
}

static void test_gpipe_chain(void) {
  const char *plat = chain_platform(4, "10GBps", "5us");
  int p = 4, m = 6;
  double tf = 0.01, tb = 0.02, S = 5e6, c = 5e-6 + S / 10e9;
  ts_job_t *job;
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(sim_on(plat, "gpipe", p, m, tf, tb, S, NULL, 0, &job, &o), 0);
  TS_ASSERT_REL(o.metrics->iteration_time_s, (m + p - 1) * (tf + tb) + 2 * (p - 1) * c, 1e-9);
  /* Receives are posted ahead: no latency accumulates per micro-batch. */
  for (int k = 0; k < m; k++) {
    const ts_event_t *f = th_find(&o, TS_FORWARD, 1, k);
    TS_ASSERT_REL(f->start, (k + 1) * tf + c, 1e-9);
  }
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(plat);
}

/* Oracle: replays each device's op order with start = max(previous op's
** end on the device, input arrival), arrival = producer's end + c. */
static void test_1f1b_matches_oracle(void) {
  const char *plat = chain_platform(4, "10GBps", "5us");
  int p = 4, m = 8;
  double tf = 0.01, tb = 0.02, S = 2e7, c = 5e-6 + S / 10e9;
  ts_job_t *job;
  ts_outcome_t o;
  CU_ASSERT_EQUAL_FATAL(sim_on(plat, "1f1b", p, m, tf, tb, S, NULL, 0, &job, &o), 0);
  double fend[4][8], bend[4][8];
  int order[4][16][2], n[4] = {0};
  for (int i = 0; i < o.run->n_events; i++) {
    const ts_event_t *e = &o.run->events[i];
    if (!ts_kind_is_compute(e->kind)) continue;
    int d = e->device;
    order[d][e->seq][0] = e->kind;
    order[d][e->seq][1] = e->mb;
    n[d]++;
  }
  for (int d = 0; d < p; d++) CU_ASSERT_EQUAL_FATAL(n[d], 2 * m);
  for (int d = 0; d < p; d++)
    for (int k = 0; k < m; k++) fend[d][k] = bend[d][k] = NAN;
  int pos[4] = {0};
  double free_at[4] = {0};
  for (int progress = 1; progress;) {
    progress = 0;
    for (int d = 0; d < p; d++) {
      while (pos[d] < 2 * m) {
        int kind = order[d][pos[d]][0], mb = order[d][pos[d]][1];
        double ready;
        if (kind == TS_FORWARD) {
          if (d > 0 && isnan(fend[d - 1][mb])) break;
          ready = d > 0 ? fend[d - 1][mb] + c : 0;
        } else {
          if (d < p - 1 && isnan(bend[d + 1][mb])) break;
          ready = d < p - 1 ? bend[d + 1][mb] + c : 0;
        }
        double start = ready > free_at[d] ? ready : free_at[d];
        double end = start + (kind == TS_FORWARD ? tf : tb);
        const ts_event_t *e = th_find(&o, kind, d, mb);
        TS_ASSERT_REL(e->start, start, 1e-9);
        if (kind == TS_FORWARD) fend[d][mb] = end; else bend[d][mb] = end;
        free_at[d] = end;
        pos[d]++;
        progress = 1;
      }
    }
  }
  TS_ASSERT_REL(o.metrics->iteration_time_s, free_at[0], 1e-9);
  CU_ASSERT(o.metrics->iteration_time_s > (m + p - 1) * (tf + tb)); /* communication shows */
  ts_outcome_free(&o);
  ts_job_free(job);
  unlink(plat);
}

static void test_overrides(void) {
  const char *plat = chain_platform(2, "25GBps", "2us");
  ts_job_t *job;
  ts_outcome_t o;
  const char *sets[] = {"platform.link.l*.bandwidth=12.5GBps", "platform.link.l0.latency=10us",
                        "platform.host.h0.speed=5e11"};
  CU_ASSERT_EQUAL_FATAL(sim_on(plat, "gpipe", 2, 1, 1.0, 2.0, 1e9, sets, 3, &job, &o), 0);
  const ts_event_t *tx = th_find(&o, TS_SEND_ACT, 0, 0);
  TS_ASSERT_REL(tx->end - tx->start, 10e-6 + 1e9 / 12.5e9, 1e-9);
  /* Synthetic seconds do not depend on speed; the device reports it. */
  TS_ASSERT_REL(o.run->devices[0].speed, 5e11, 1e-12);
  ts_outcome_free(&o);
  ts_job_free(job);
  /* A pattern that matches no link is an error, not a silent no-op. */
  const char *bad[] = {"platform.link.ib*.bandwidth=1GBps"};
  ts_err_t err = {0};
  char json[512];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 1,"
           " \"activation_message_bytes\": 1, \"activation_bytes\": 1}, \"platform\": \"%s\","
           " \"schedule\": \"gpipe\", \"stages\": 2, \"microbatches\": 1}", plat);
  int rc = th_simulate(json, bad, 1, &job, &o, &err);
  CU_ASSERT_NOT_EQUAL(rc, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "ib*"));
  ts_job_free(job);
  unlink(plat);
}

TS_TESTS{TS_TEST(test_one_transfer), TS_TEST(test_forward_takes_flops_over_speed),
         TS_TEST(test_gpipe_chain), TS_TEST(test_1f1b_matches_oracle), TS_TEST(test_overrides)};
TS_TEST_MAIN("comm")
