/*
** test_whatif_fabric.c: the closed form behind results/whatif-fabric/
** (README "What-if sweeps"): a data-parallel gradient all-reduce on a
** fat tree whose leaf tier is oversubscribed 1:1, 2:1 and 4:1.
**
** The cluster is 2 nodes x 2 GPUs of the dgx-a100-2node preset, without
** rails and with 2 ports a leaf, so each node has a leaf of its own and
** every inter-node flow crosses both leaves' trunks (2 NICs' worth / r).
** A one-stage synthetic job of 4 replicas holding G gradient bytes each
** runs one all-reduce after its program (overlap_grad_reduce false), and
** device 0's dp_comm_s must equal, to 1e-9:
**   - hierarchical: 2 (m - 1) c_nv(G / m) + 2 (D - 1) c_x(G / n), m = D = 2,
**     n = 4, where the cross phase runs the two local ranks' rings at once,
**     so 2 flows share each trunk direction: each flow gets
**     min(NIC, trunk / 2), which halves at 2:1 and quarters at 4:1;
**   - ring (0 -> 1 NVLink, 1 -> 2 cross, 2 -> 3 NVLink, 3 -> 0 cross):
**     2 (n - 1) c_x(G / n) with one flow per trunk direction, at
**     min(NIC, trunk): 2:1 leaves it at the NIC's rate (the trunk still
**     carries one NIC's worth), 4:1 halves it.
** c_nv(S) = 2 nvlink_lat + S / nvlink_bw; c_x(S) = 2 (nic_pcie_lat +
** ib_lat + fabric_lat) + S / rate.
*/
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "platform_gen.h"
#include "tshelp.h"
#include "tsunit.h"

static const double G = 4e8;

/* The cluster at leaf ratio r, written to a new temporary file (path in
** buf); returns 0, or -1 with nothing to remove. */
static int fabric(double r, ts_platgen_t *g, char *buf, size_t cap) {
  ts_err_t err = {0};
  memset(g, 0, sizeof *g);
  if (ts_platgen_preset("dgx-a100-2node", g, &err)) return -1;
  g->nodes = 2, g->gpus = 2, g->nvlink_domain = 2, g->rails = 0, g->leaf_ports = 2;
  g->oversub_leaf = r;
  if (ts_platgen_check(g, &err)) return -1;
  snprintf(buf, cap, "/tmp/ts-whatif-fabric-XXXXXX.xml");
  int fd = mkstemps(buf, 4);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  if (!f) return -1;
  int rc = ts_platgen_write(g, f);
  if (fclose(f) || rc) {
    unlink(buf);
    return -1;
  }
  return 0;
}

/* Device 0's dp_comm_s for algorithm algo at ratio r; -1 on failure. */
static double dp_comm(double r, const char *algo, ts_platgen_t *g) {
  char plat[64];
  if (fabric(r, g, plat, sizeof plat)) return -1;
  char json[1024];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 0.001, \"backward_s\": 0.002,"
           " \"activation_message_bytes\": 0, \"activation_bytes\": 1, \"weights_bytes\": %.17g},"
           " \"platform\": \"%s\", \"schedule\": \"gpipe\", \"stages\": 1, \"microbatches\": 1,"
           " \"data_parallel\": 4, \"overlap_grad_reduce\": false,"
           " \"collective_algorithm\": \"%s\"}",
           G, plat, algo);
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  unlink(plat);
  if (rc) {
    fprintf(stderr, "\n%s\n", err.msg);
    return -1;
  }
  double t = o.metrics->dev[0].dp_comm_s;
  ts_outcome_free(&o);
  ts_job_free(job);
  return t;
}

static double min2(double a, double b) { return a < b ? a : b; }

static void test_trunk_ratio_closed_form(void) {
  const double ratios[] = {1, 2, 4};
  double hier[3], ring[3];
  for (int i = 0; i < 3; i++) {
    ts_platgen_t g;
    hier[i] = dp_comm(ratios[i], "hierarchical", &g);
    ring[i] = dp_comm(ratios[i], "ring", &g);
    CU_ASSERT_FATAL(hier[i] > 0 && ring[i] > 0);
    double trunk = ts_platgen_leaf_trunk_bw(&g);
    CU_ASSERT_EQUAL(trunk, 2 * g.ib_bw / ratios[i]);
    double lat_x = 2 * (g.nic_pcie_lat + g.ib_lat + g.fabric_lat);
    double c_nv = 2 * g.nvlink_lat + (G / 2) / g.nvlink_bw;
    double hier_cf = 2 * c_nv + 2 * (lat_x + (G / 4) / min2(g.ib_bw, trunk / 2));
    double ring_cf = 6 * (lat_x + (G / 4) / min2(g.ib_bw, trunk));
    printf("  [1:%g hierarchical %.6f s (closed form %.6f), ring %.6f s (%.6f)] ", ratios[i],
           hier[i], hier_cf, ring[i], ring_cf);
    TS_ASSERT_REL(hier[i], hier_cf, 1e-9);
    TS_ASSERT_REL(ring[i], ring_cf, 1e-9);
  }
  /* What the what-if reads off: the cross phase doubles per halving of the
  ** trunk, the ring only once the trunk is below one NIC's worth. */
  TS_ASSERT_REL(hier[1] - hier[0], 2 * (G / 4) / 25e9, 1e-9);
  TS_ASSERT_REL(hier[2] - hier[0], 3 * 2 * (G / 4) / 25e9, 1e-9);
  TS_ASSERT_REL(ring[1], ring[0], 1e-12);
  TS_ASSERT_REL(ring[2] - ring[0], 6 * (G / 4) / 25e9, 1e-9);
}

TS_TESTS{
    TS_TEST(test_trunk_ratio_closed_form),
};

TS_TEST_MAIN("whatif_fabric")
