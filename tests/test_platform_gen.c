/*
** test_platform_gen.c: the platform generator (platforms/platform_gen.c,
** platform_gen_write.c) and the command trainsim platform.
**
** Checks the presets and ts_platgen_check, the calibration rule, that the
** shipped platforms/<preset>.xml are exactly what the presets generate,
** the XML's text (declaration order, link classes and counts, no FATPIPE
** in a fat tree), the regenerate command, and the command's units and
** one-line errors (no partial file).  The fat trees inside SimGrid (routes,
** scale, oversubscription) are tested by tests/test_topology.c.  Runs from
** the repository root.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>


#include "platform_gen.h"
#include "tshelp.h"
#include "tsunit.h"

#include <cjson/cJSON.h>

#define CALIBRATION_FILE "../shared/calibration/h200-single-gpu.json"

/* ---- helpers ------------------------------------------------------- */

/* The XML for g as a malloc'd string (NULL when the write failed). */
static char *generate(const ts_platgen_t *g) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  int rc = ts_platgen_write(g, f);
  fclose(f);
  if (rc) {
    free(buf);
    return NULL;
  }
  return buf;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  int c;
  while ((c = fgetc(f)) != EOF) fputc(c, m);
  fclose(m);
  fclose(f);
  return buf;
}

/* Writes text to a new temporary file with the given suffix; returns 0. */
static int write_tmp(const char *text, const char *suffix, char *path, size_t cap) {
  snprintf(path, cap, "/tmp/ts-platgen-XXXXXX%s", suffix);
  int fd = mkstemps(path, (int)strlen(suffix));
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

static ts_platgen_t preset(const char *name) {
  ts_platgen_t g;
  memset(&g, 0, sizeof g);
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_platgen_preset(name, &g, &err), 0);
  return g;
}

/* ---- tests ---------------------------------------------------------- */

static void test_presets(void) {
  for (const char *const *n = ts_platgen_preset_names; *n; n++) {
    ts_platgen_t g = preset(*n);
    ts_err_t err = {0};
    CU_ASSERT_STRING_EQUAL(g.name, *n);
    CU_ASSERT_EQUAL(ts_platgen_check(&g, &err), 0);
    /* A PCIe tree's Ethernet switch is non-blocking (one NIC per node);
    ** a fat tree has no fabric link, and its leaves fit their NICs. */
    if (g.topology == 1) CU_ASSERT_EQUAL(g.fabric_bw, g.nodes * g.ib_bw);
    if (g.topology == 0) {
      CU_ASSERT_EQUAL(g.fabric_bw, 0);
      CU_ASSERT(g.rails ? g.su_nodes <= g.leaf_ports : g.gpus <= g.leaf_ports);
      CU_ASSERT(g.nic_pcie_bw >= g.ib_bw); /* the NIC, not its PCIe path, limits */
    }
  }
  ts_platgen_t g = preset("dgx-a100-2node");
  CU_ASSERT(g.nodes == 2 && g.gpus == 8 && !g.pcie_only);
  TS_ASSERT_REL(g.gpu_speed, 0.6 * 312e12, 1e-15);
  CU_ASSERT_EQUAL(g.gpu_peak_flops, 312e12);
  CU_ASSERT_EQUAL(g.gpu_memory, 85899345920.0);
  CU_ASSERT(g.nvlink_bw == 300e9 && g.nvlink_lat == 2e-6 && g.ib_bw == 25e9 && g.ib_lat == 1e-6);
  CU_ASSERT(g.fabric_lat == 0.5e-6 && g.rails && g.tiers == 2 && g.leaf_ports == 20);
  CU_ASSERT(g.oversub_leaf == 1 && g.nvlink_domain == 8 && g.nic_pcie_bw == 31.5e9);
  CU_ASSERT_EQUAL(g.gpu_memory_bw, 2.039e12); /* A100 80GB SXM datasheet */
  g = preset("hgx-h200");
  CU_ASSERT_EQUAL(g.gpu_memory_bw, 4.8e12); /* H200 datasheet */
  CU_ASSERT_EQUAL(preset("h200-pcie-8gpu").gpu_memory_bw, 4.8e12);
  CU_ASSERT_EQUAL(preset("commodity-8gpu").gpu_memory_bw, 1.008e12); /* RTX 3090 Ti */
  CU_ASSERT_EQUAL(preset("commodity-2node").gpu_memory_bw, 1.008e12);
  CU_ASSERT(g.nodes == 1 && g.gpus == 8 && g.nvlink_bw == 450e9 && g.gpu_peak_flops == 989e12);
  CU_ASSERT_EQUAL(g.gpu_memory, 150109880320.0);
  g = preset("pcie-4gpu");
  CU_ASSERT(g.nodes == 1 && g.gpus == 4 && g.pcie_only && g.gpu_speed == 100e12);
  CU_ASSERT(g.gpu_peak_flops == 165e12 && g.gpu_memory == 24.0 * 1024 * 1024 * 1024);
  CU_ASSERT(g.nvlink_bw == 25e9 && g.nvlink_lat == 5e-6);
  CU_ASSERT_EQUAL(g.gpu_memory_bw, 1.008e12); /* RTX 4090 */

  /* The SuperPOD (Selene), DGX H100 and GB200 NVL72 presets (README). */
  g = preset("dgx-a100-superpod");
  CU_ASSERT(g.nodes == 140 && g.gpus == 8 && g.tiers == 3 && g.rails && g.ib_bw == 25e9);
  CU_ASSERT(g.leaf_ports == 20 && g.su_nodes == 20 && g.oversub_leaf == 1 && g.oversub_spine == 1);
  g = preset("dgx-h100");
  CU_ASSERT(g.gpus == 8 && g.ib_bw == 50e9 && g.nvlink_bw == 450e9 && g.tiers == 2 && g.rails);
  CU_ASSERT(g.gpu_peak_flops == 989e12 && g.gpu_memory_bw == 3.35e12 && !strcmp(g.gpu_curve, "h100"));
  g = preset("gb200-nvl72");
  CU_ASSERT(g.gpus == 4 && g.nvlink_domain == 72 && g.nodes == 18 && g.nvlink_bw == 900e9);

  ts_err_t err = {0};
  ts_platgen_t before = g;
  CU_ASSERT_EQUAL(ts_platgen_preset("dgx-a100-supepod", &g, &err), EX_USAGE);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'dgx-a100-supepod'"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "did you mean 'dgx-a100-superpod'?"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "hgx-h200"));
  CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
  CU_ASSERT_EQUAL(memcmp(&before, &g, sizeof g), 0);
}

static void expect_rejected(const ts_platgen_t *g, const char *field) {
  ts_err_t err = {0};
  CU_ASSERT_EQUAL(ts_platgen_check(g, &err), EX_USAGE);
  if (!strstr(err.msg, field)) fprintf(stderr, "\n  message '%s' does not name '%s'\n", err.msg, field);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, field));
}

static void test_check_rejects(void) {
  const ts_platgen_t ok = preset("dgx-a100-2node");
  ts_platgen_t g;
  g = ok, g.nodes = 0;
  expect_rejected(&g, "nodes");
  g = ok, g.gpus = -1;
  expect_rejected(&g, "gpus");
  g = ok, g.nodes = 65536, g.gpus = 8;
  expect_rejected(&g, "hosts");
  g = ok, g.nvlink_bw = -300e9;
  expect_rejected(&g, "nvlink_bw");
  g = ok, g.ib_bw = 0;
  expect_rejected(&g, "ib_bw");
  g = ok, g.ib_lat = NAN;
  expect_rejected(&g, "ib_lat");
  g = preset("commodity-2node"), g.fabric_bw = INFINITY;
  expect_rejected(&g, "fabric_bw");
  g = ok, g.fabric_lat = -1e-6;
  expect_rejected(&g, "fabric_lat");
  g = ok, g.gpu_speed = 0;
  expect_rejected(&g, "gpu_speed");
  g = ok, g.gpu_peak_flops = -1;
  expect_rejected(&g, "gpu_peak_flops");
  g = ok, g.gpu_memory = 0;
  expect_rejected(&g, "gpu_memory");
  g = ok, g.gpu_memory_bw = 0;
  expect_rejected(&g, "gpu_memory_bw");
  g = ok, g.gpu_memory_bw = NAN;
  expect_rejected(&g, "gpu_memory_bw");
  g = ok, g.nvlink_lat = 0;
  expect_rejected(&g, "nvlink_lat");
  g = ok, strcpy(g.name, "a--b"); /* would end the XML comment */
  expect_rejected(&g, "name");
  g = ok, strcpy(g.name, "");
  expect_rejected(&g, "name");
  g = ok, strcpy(g.name, "x\"y");
  expect_rejected(&g, "name");
  g = ok, strcpy(g.name, "node3");
  expect_rejected(&g, "name");
  g = ok, strcpy(g.name, "leaf3");
  expect_rejected(&g, "name");
  g = ok, strcpy(g.name, "core");
  expect_rejected(&g, "name");
  /* Fat trees whose numbers do not fit. */
  g = ok, g.rails = 0, g.leaf_ports = 4; /* 8 NICs on a 4-port leaf */
  expect_rejected(&g, "--leaf-ports");
  g = ok, g.su_nodes = 32; /* 32 nodes on a 20-port rail leaf */
  expect_rejected(&g, "--leaf-ports");
  g = ok, g.oversub_leaf = 0;
  expect_rejected(&g, "--oversub-leaf");
  g = ok, g.oversub_spine = -2;
  expect_rejected(&g, "--oversub-spine");
  g = ok, g.oversub_leaf = NAN;
  expect_rejected(&g, "--oversub-leaf");
  g = ok, g.tiers = 4;
  expect_rejected(&g, "--tiers");
  g = ok, g.nvlink_domain = 12; /* not whole nodes of 8 */
  expect_rejected(&g, "--nvlink-domain");
  g = preset("gb200-nvl72"), g.tiers = 3, g.su_nodes = 9; /* a rack across two pods */
  expect_rejected(&g, "--su-nodes");
  g = ok, g.nic_pcie_bw = 0;
  expect_rejected(&g, "--nic-pcie-bw");
  g = ok, g.nic_pcie_lat = -1;
  expect_rejected(&g, "--nic-pcie-lat");
  ts_err_t err = {0};
  g = ok, strcpy(g.name, "my_cluster-2.v1"), g.nodes = 3, g.gpus = 4, g.nvlink_domain = 4;
  CU_ASSERT_EQUAL(ts_platgen_check(&g, &err), 0);
}

/* platforms/<preset>.xml must be what the preset generates, byte for byte. */
static void test_shipped_files(void) {
  static const char *const shipped[] = {"dgx-a100-2node", "hgx-h200",        "pcie-4gpu",
                                        "commodity-8gpu", "commodity-2node", "h200-pcie-8gpu",
                                        NULL};
  for (const char *const *n = shipped; *n; n++) {
    ts_platgen_t g = preset(*n);
    char path[128], cmd[128];
    snprintf(path, sizeof path, "platforms/%s.xml", *n);
    char *want = generate(&g), *got = read_text(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    if (!got) fprintf(stderr, "\n  cannot read %s (the test runs from the repository root)\n", path);
    CU_ASSERT_PTR_NOT_NULL(got);
    if (got) {
      if (strcmp(got, want) != 0)
        fprintf(stderr, "\n  %s differs from the preset's output: regenerate it\n", path);
      CU_ASSERT_STRING_EQUAL(got, want);
    }
    snprintf(cmd, sizeof cmd, "value=\"trainsim platform --preset %s\"", *n);
    CU_ASSERT_PTR_NOT_NULL(strstr(want, cmd));
    free(want);
    free(got);
  }
}

/* The text of the XML: declaration order, link classes, comments. */
static void test_xml_shape(void) {
  ts_platgen_t g = preset("dgx-a100-2node");
  char *x = generate(&g), *y = generate(&g);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  CU_ASSERT_STRING_EQUAL(x, y); /* deterministic */
  CU_ASSERT_EQUAL(strncmp(x, "<?xml version='1.0'?>\n<!--", 26), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(x, "<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n<platform version=\"4.1\">"));
  /* Hosts declared node by node, GPU by GPU. */
  const char *prev = x;
  for (int n = 0; n < 2; n++)
    for (int k = 0; k < 8; k++) {
      char id[64];
      snprintf(id, sizeof id, "<host id=\"node%d-gpu%d\" speed=\"187200000000000f\">", n, k);
      const char *p = strstr(x, id);
      CU_ASSERT_PTR_NOT_NULL(p);
      CU_ASSERT(p > prev);
      if (p) prev = p;
    }
  CU_ASSERT_EQUAL(count(x, "<host "), 16);
  CU_ASSERT_EQUAL(count(x, "<prop id=\"memory_bytes\" value=\"85899345920\"/>"), 16);
  CU_ASSERT_EQUAL(count(x, "<prop id=\"peak_flops\" value=\"312000000000000\"/>"), 16);
  CU_ASSERT_EQUAL(count(x, "<prop id=\"memory_bandwidth\" value=\"2039000000000\"/>"), 16);
  /* A figure off the preset: the regenerate command names it. */
  g.gpu_memory_bw = 1.5e12;
  char *z = generate(&g);
  CU_ASSERT_PTR_NOT_NULL_FATAL(z);
  CU_ASSERT_EQUAL(count(z, "<prop id=\"memory_bandwidth\" value=\"1500000000000\"/>"), 16);
  CU_ASSERT_PTR_NOT_NULL(strstr(z, " --gpu-memory-bw 1500000000000Bps "));
  free(z);
  CU_ASSERT_EQUAL(count(x, "<link id=\"nvlink-node"), 16);
  CU_ASSERT_EQUAL(count(x, "<link id=\"ib-node"), 16);
  CU_ASSERT_EQUAL(count(x, "<link id=\"pcie-node"), 16); /* the GPU-NIC paths */
  /* 8 rail leaves of one scalable unit, each a 20 x 25e9 / 1 trunk. */
  CU_ASSERT_EQUAL(count(x, "-spine\" bandwidth=\"500000000000Bps\" latency=\"5e-07s\""), 8);
  CU_ASSERT_EQUAL(count(x, "<link "), 56);
  CU_ASSERT_EQUAL(count(x, "sharing_policy=\"SPLITDUPLEX\""), 56);
  CU_ASSERT_PTR_NULL(strstr(x, "FATPIPE\""));
  CU_ASSERT_PTR_NULL(strstr(x, "ib-fabric"));
  CU_ASSERT_EQUAL(count(x, "<prop id=\"node\" value=\"1\"/>"), 8);
  CU_ASSERT_EQUAL(count(x, "<prop id=\"nvlink_domain\" value=\"1\"/>"), 8);
  /* GPU 3 of both nodes on leaf 3. */
  CU_ASSERT_PTR_NOT_NULL(strstr(x, "<route src=\"node1-nic3\" dst=\"leaf3\" symmetrical=\"NO\"><link_ctn id=\"ib-node1-gpu3\" direction=\"UP\"/></route>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(x, "<link id=\"nvlink-node1-gpu7\" bandwidth=\"300000000000Bps\" latency=\"2e-06s\""));
  /* No double hyphen inside comments (XML forbids it). */
  for (const char *c = x; (c = strstr(c, "<!--"));) {
    const char *e = strstr(c + 4, "-->");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    for (const char *p = c + 4; p < e; p++) CU_ASSERT_FALSE(p[0] == '-' && p[1] == '-');
    c = e + 3;
  }
  free(x);
  free(y);

  /* One node: no InfiniBand at all; PCIe names. */
  g = preset("pcie-4gpu");
  x = generate(&g);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  CU_ASSERT_EQUAL(count(x, "<link id=\"pcie-node0-gpu"), 4);
  CU_ASSERT_PTR_NULL(strstr(x, "nvlink-"));
  CU_ASSERT_PTR_NULL(strstr(x, "\"ib-"));
  free(x);

  /* A platform that is not a preset records every option. */
  g = preset("hgx-h200");
  g.nodes = 3, g.ib_lat = 2e-6;
  char cmd[1024];
  ts_platgen_command(&g, cmd, sizeof cmd);
  CU_ASSERT_PTR_NOT_NULL(strstr(cmd, "trainsim platform --name hgx-h200 --nodes 3 --gpus 8 "));
  CU_ASSERT_PTR_NOT_NULL(strstr(cmd, " --gpu-speed 603431784643543.4 "));
  CU_ASSERT_PTR_NOT_NULL(strstr(cmd, " --ib-bw 50000000000Bps --ib-lat 2e-06s "));
  CU_ASSERT_PTR_NOT_NULL(strstr(cmd, " --tiers 2 --rails on --leaf-ports 32 --su-nodes 32 "));
  CU_ASSERT_PTR_NULL(strstr(cmd, "--preset"));
  CU_ASSERT_PTR_NULL(strstr(cmd, "--pcie-only"));
  /* A preset resized or renamed keeps its short form. */
  g = preset("dgx-a100-superpod");
  g.nodes = 128;
  ts_platgen_command(&g, cmd, sizeof cmd);
  CU_ASSERT_STRING_EQUAL(cmd, "trainsim platform --preset dgx-a100-superpod --nodes 128");
  strcpy(g.name, "pod");
  ts_platgen_command(&g, cmd, sizeof cmd);
  CU_ASSERT_STRING_EQUAL(cmd, "trainsim platform --preset dgx-a100-superpod --name pod --nodes 128");
  g = preset("hgx-h200");
  ts_platgen_command(&g, cmd, sizeof cmd);
  CU_ASSERT_STRING_EQUAL(cmd, "trainsim platform --preset hgx-h200");
}

static void test_write_error(void) {
  FILE *f = fopen("/dev/full", "w");
  if (!f) {
    printf("(no /dev/full: skipped) ");
    return;
  }
  ts_platgen_t g = preset("dgx-a100-2node");
  CU_ASSERT_EQUAL(ts_platgen_write(&g, f), EX_IOERR);
  fclose(f);
}

/* The hgx-h200 preset speed is what the calibration rule gives. */
static void test_calibration_shared_file(void) {
  if (access(CALIBRATION_FILE, R_OK) != 0) {
    printf("(note: %s absent, calibration agreement not checked) ", CALIBRATION_FILE);
    return;
  }
  ts_platgen_t g = preset("hgx-h200"), h = g;
  ts_err_t err = {0};
  h.gpu_speed = 0;
  CU_ASSERT_EQUAL(ts_platgen_speed_from_calibration(CALIBRATION_FILE, &h, &err), 0);
  if (h.gpu_speed != g.gpu_speed)
    fprintf(stderr, "\n  calibration gives %.17g, preset has %.17g\n", h.gpu_speed, g.gpu_speed);
  CU_ASSERT_EQUAL(h.gpu_speed, g.gpu_speed);
  h.gpu_speed = g.gpu_speed;
  CU_ASSERT_EQUAL(memcmp(&g, &h, sizeof g), 0); /* nothing else changed */
}

/* h200-pcie-8gpu's PCIe rate is the calibration file's pinned host-to-device
** bandwidth for 256 MiB copies, and its GPUs are hgx-h200's. */
static void test_calibration_pcie(void) {
  if (access(CALIBRATION_FILE, R_OK) != 0) {
    printf("(note: %s absent, PCIe calibration not checked) ", CALIBRATION_FILE);
    return;
  }
  char *text = read_text(CALIBRATION_FILE);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  cJSON *root = cJSON_Parse(text), *e;
  double h2d = 0;
  cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "pcie")) {
    if (cJSON_GetObjectItem(e, "bytes")->valuedouble == 268435456.0 &&
        cJSON_IsTrue(cJSON_GetObjectItem(e, "pinned")))
      h2d = cJSON_GetObjectItem(e, "h2d_GBps")->valuedouble * 1e9;
  }
  cJSON_Delete(root);
  free(text);
  ts_platgen_t g = preset("h200-pcie-8gpu"), h = preset("hgx-h200");
  TS_ASSERT_REL(g.nvlink_bw, h2d, 1e-15);
  TS_ASSERT_REL(g.uplink_bw, h2d, 1e-15);
  CU_ASSERT(g.gpu_speed == h.gpu_speed && g.gpu_memory == h.gpu_memory && g.topology == 1);
}

static int calib_text(const char *text, double *speed, ts_err_t *err) {
  char path[64];
  if (write_tmp(text, ".json", path, sizeof path)) return -1;
  int rc = ts_platgen_calibrated_speed(path, speed, err);
  unlink(path);
  return rc;
}

static void test_calibration_rule(void) {
  ts_err_t err = {0};
  double s = 0;
  /* Small layers are ignored; the rule is 3 x tflops x 1e12 x fwd_s / fwd_bwd_s. */
  CU_ASSERT_EQUAL(calib_text("{\"layers\": ["
                             "{\"h\": 4096, \"approx_fwd_tflops\": 1, \"fwd_s\": 1, \"fwd_bwd_s\": 1},"
                             "{\"h\": 8192, \"approx_fwd_tflops\": 500, \"fwd_s\": 0.002, \"fwd_bwd_s\": 0.006},"
                             "{\"h\": 16384, \"approx_fwd_tflops\": 600, \"fwd_s\": 0.01, \"fwd_bwd_s\": 0.025}]}",
                             &s, &err),
                  0);
  TS_ASSERT_REL(s, (500e12 * 0.002 * 3 / 0.006 + 600e12 * 0.01 * 3 / 0.025) / 2, 1e-15);

  ts_platgen_t g = preset("dgx-a100-2node");
  const double before = g.gpu_speed;
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(ts_platgen_speed_from_calibration("/nonexistent/calib.json", &g, &err), EX_NOINPUT);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/calib.json"));
  CU_ASSERT_EQUAL(g.gpu_speed, before);

  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\n\"layers\": [\n{\"h\": 8192,,}]}", &s, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "line 3"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\"layers\": [{\"h\": 8192, \"approx_fwd_tflops\": 5, \"fwd_bwd_s\": 1}]}", &s, &err),
                  EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "layers[0].fwd_s"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\"layers\": [{\"h\": 8192, \"approx_fwd_tflops\": 5, \"fwd_s\": 1, \"fwd_bwd_s\": -1}]}",
                             &s, &err),
                  EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "layers[0].fwd_bwd_s"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\"layers\": [{\"h\": 1024, \"approx_fwd_tflops\": 5, \"fwd_s\": 1, \"fwd_bwd_s\": 3}]}",
                             &s, &err),
                  EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "h >= 8192"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\"layers\": {}}", &s, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "layers"));
  err = (ts_err_t){0};
  CU_ASSERT_EQUAL(calib_text("{\"gemm\": []}", &s, &err), EX_DATAERR);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "layers: missing"));
}

/* trainsim platform reads --set's units and refuses plain bandwidths. */
static void test_cli_units(void) {
  char *out = NULL, *err = NULL;
  CU_ASSERT_EQUAL_FATAL(th_cli("platform --preset dgx-h100 --nodes 4 --ib-bw 200Gbps --nvlink-bw 0.3TBps"
                               " --ib-lat 2us --fabric-lat 1us --gpu-speed 500Tf",
                               &out, &err),
                        0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "<link id=\"ib-node3-gpu7\" bandwidth=\"25000000000Bps\" latency=\"2e-06s\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "<link id=\"nvlink-node0-gpu0\" bandwidth=\"300000000000Bps\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "-spine\" bandwidth=\"800000000000Bps\" latency=\"1e-06s\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "speed=\"500000000000000f\""));
  /* Its regenerate command writes the same file. */
  const char *k = strstr(out, "id=\"regenerate\" value=\"trainsim ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(k);
  k += strlen("id=\"regenerate\" value=\"trainsim ");
  char args[2048], *again = NULL;
  snprintf(args, sizeof args, "%.*s", (int)strcspn(k, "\""), k);
  CU_ASSERT_PTR_NOT_NULL(strstr(args, " --ib-bw 25000000000Bps "));
  CU_ASSERT_EQUAL(th_cli(args, &again, NULL), 0);
  CU_ASSERT_STRING_EQUAL(again, out);
  free(again);
  free(out);
  free(err);
  /* A resized preset regenerates in its short form. */
  CU_ASSERT_EQUAL_FATAL(th_cli("platform --preset gb200-nvl72 --nodes 36 --oversub-leaf 2", &out, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "<prop id=\"nvlink_domain\" value=\"1\"/>"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "--oversub-leaf 2 "));
  free(out);
  CU_ASSERT_EQUAL_FATAL(th_cli("platform --preset gb200-nvl72 --nodes 36", &out, NULL), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "value=\"trainsim platform --preset gb200-nvl72 --nodes 36\""));
  free(out);
}

/* Bad input: one line naming the option, a sysexits code, no file. */
static void test_cli_errors(void) {
  static const struct { const char *args, *msg; int rc; } cases[] = {
      {"--ib-bw 200e9", "trainsim: error: --ib-bw: a bandwidth needs a unit (200Gbps, 25GBps, 25e9Bps), got '200e9'\n", 64},
      {"--nvlink-bw 25", "--nvlink-bw: a bandwidth needs a unit", 64},
      {"--ib-bw 25GB", "--ib-bw: expected a positive number with a unit", 64},
      {"--ib-lat 2Gbps", "--ib-lat: expected a positive number of seconds", 64},
      {"--preset dgx-a100-supepod", "did you mean 'dgx-a100-superpod'?", 64},
      {"--rails off --leaf-ports 4", "--leaf-ports: 8 GPUs (NICs) per node do not fit on one leaf of 4 ports", 64},
      {"--oversub-leaf 0", "--oversub-leaf must be a ratio > 0", 64},
      {"--oversub-spine -1", "--oversub-spine must be a ratio > 0", 64},
      {"--oversub-leaf two", "--oversub-leaf: expected a ratio", 64},
      {"--tiers 4", "--tiers must be 2 or 3", 64},
      {"--rails maybe", "--rails takes on", 64},
      {"--fabric-bw 100GBps", "--fabric-bw: a fat tree has no fabric link", 64},
      {"--uplink-bw 10GBps", "--uplink-bw: needs a PCIe-tree preset", 64},
      {"--preset commodity-8gpu --tiers 3", "--tiers: a PCIe-tree preset has no fat tree", 64},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char path[] = "/tmp/ts-platgen-cli-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path); /* the command must not create it */
    char args[512];
    snprintf(args, sizeof args, "platform %s -o %s", cases[i].args, path);
    char *out = NULL, *err = NULL;
    int rc = th_cli(args, &out, &err);
    if (rc != cases[i].rc || !strstr(err, cases[i].msg))
      fprintf(stderr, "\n  %s: exit %d, '%s'\n", args, rc, err);
    CU_ASSERT_EQUAL(rc, cases[i].rc);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].msg));
    CU_ASSERT_EQUAL(count(err, "\n"), 1); /* one line */
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    free(out);
    free(err);
  }
}

TS_TESTS{
    TS_TEST(test_presets),
    TS_TEST(test_check_rejects),
    TS_TEST(test_shipped_files),
    TS_TEST(test_xml_shape),
    TS_TEST(test_write_error),
    TS_TEST(test_calibration_shared_file),
    TS_TEST(test_calibration_pcie),
    TS_TEST(test_calibration_rule),
    TS_TEST(test_cli_units),
    TS_TEST(test_cli_errors),
};

TS_TEST_MAIN("platform_gen")
