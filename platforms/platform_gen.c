/*
** platform_gen.c: the figures of generated SimGrid platforms: the shipped
** presets (with the header-comment lines each file carries), the GPU speed
** calibrated from a measurement file, and the check of a ts_platgen_t
** before it is written.  The XML itself is written by platform_gen_write.c,
** which also explains what is modelled and how the routes are expressed.
*/
#include "platform_gen.h"
#include "platform_gen_internal.h"
#include "ts_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <cjson/cJSON.h>

/* ------------------------------------------------------------------ */
/* Presets                                                             */
/* ------------------------------------------------------------------ */

/* The sustained H200 speed that ts_platgen_calibrated_speed computes from
** shared/calibration/h200-single-gpu.json (h = 8192: 596594847473301.2,
** h = 12288: 610268721813785.5; mean 603431784643543.38 FLOP/s with
** %.17g, printed 603431784643543.4 in the XML, 61% of the 989e12 bf16
** dense peak).  tests/test_platform_gen.c checks they agree. */
#define TS_H200_CALIBRATED_SPEED 603431784643543.38

typedef struct preset {
  ts_platgen_t g;
  const char *const *about; /* header comment lines, NULL-terminated */
} preset_t;

static const char *const about_dgx[] = {
    "DGX-A100-like: 2 nodes x 8 NVIDIA A100 80GB SXM.",
    "speed: 0.6 x the 312e12 FLOP/s bf16 dense peak = 187.2e12 FLOP/s",
    "  sustained (an assumed fraction, not a measurement).",
    "memory: 80 GiB = 85899345920 bytes per GPU; memory bandwidth",
    "  2.039e12 B/s (HBM2e, NVIDIA A100 datasheet, 80GB SXM).",
    "NVLink 3 through NVSwitch: 300e9 B/s per direction per GPU",
    "  (600 GB/s bidirectional), latency 2 us.",
    "InfiniBand HDR 200 Gb/s = 25e9 B/s per GPU NIC (8 rails per node),",
    "  latency 1 us; non-blocking fabric 2 x 8 x 25e9 = 400e9 B/s, 1 us.",
    "gemm_curve: a100 (transformer ops timed from their GEMM shapes; the",
    "  H200 curve's shape scaled to A100 figures, README Model of time).",
    NULL};

static const char *const about_h200[] = {
    "HGX-H200-like: 1 node x 8 NVIDIA H200 SXM.",
    "memory: 150109880320 bytes per GPU (total_mem_bytes measured on one",
    "  H200, shared/calibration/h200-single-gpu.json).",
    "memory bandwidth: 4.8e12 B/s (HBM3e, NVIDIA H200 datasheet).",
    "peak_flops: 989e12 FLOP/s bf16 dense.",
    "speed: 603431784643543.4 FLOP/s sustained (61% of peak), from that",
    "  calibration file: over its layers with h >= 8192 (h = 8192, 12288),",
    "  the mean of 3 x fwd_flops / fwd_bwd_s with",
    "  fwd_flops = approx_fwd_tflops x 1e12 x fwd_s (forward + backward =",
    "  3 forward FLOPs).  trainsim platform (option calibration FILE)",
    "  applies the same rule to another file.",
    "NVLink 4 through NVSwitch: 450e9 B/s per direction per GPU",
    "  (900 GB/s bidirectional); latency 2 us, assumed as for the A100.",
    "InfiniBand NDR 400 Gb/s = 50e9 B/s per GPU NIC, 1 us, non-blocking",
    "  fabric: these links exist only when generated with nodes > 1.",
    "gemm_curve: h200 (transformer ops timed from their GEMM shapes, fitted",
    "  to the GEMMs of that calibration file, README Model of time).",
    NULL};

static const char *const about_pcie[] = {
    "Workstation-like: 1 node x 4 RTX-4090-like GPUs, 24 GiB =",
    "  25769803776 bytes each, no NVLink; memory bandwidth 1.008e12 B/s",
    "  (GDDR6X, 21 Gb/s x 384 bits, NVIDIA RTX 4090 specifications).",
    "peak_flops: 165e12 FLOP/s (RTX 4090 bf16 dense tensor peak with fp32",
    "  accumulate); speed: 100e12 FLOP/s sustained (assumed).",
    "GPUs talk over PCIe 4.0 x16, about 25e9 B/s per direction per GPU,",
    "  latency 5 us; the root complex or PCIe switch joining them is taken",
    "  as non-blocking.",
    "InfiniBand (25e9 B/s per GPU NIC, 1 us, non-blocking fabric): these",
    "  links exist only when generated with nodes > 1.",
    NULL};

static const char *const about_commodity[] = {
    "Commodity server like the Mobius paper's (Feng et al., ASPLOS 2023):",
    "  8 RTX-3090-Ti-like GPUs of 24 GiB = 25769803776 bytes, two CPU",
    "  sockets, four GPUs behind one PCIe switch under each socket's root",
    "  complex, no NVLink and no GPU peer-to-peer beyond the switch.",
    "memory bandwidth: 1.008e12 B/s (GDDR6X, 21 Gb/s x 384 bits, NVIDIA",
    "  RTX 3090 Ti specifications).",
    "peak_flops: 80e12 FLOP/s (fp16 tensor, fp32 accumulate); speed:",
    "  48e12 FLOP/s sustained (0.6 x peak, assumed).",
    "GPU links: PCIe 3.0 x8, 7.88e9 B/s raw, taken as 6.5e9 B/s effective",
    "  per direction (assumed ~83% after packet overheads), latency 1 us.",
    "Switch uplinks: PCIe 3.0 x16, 13e9 B/s effective (assumed), 1 us: four",
    "  GPUs copying at once share one uplink (26e9 B/s of demand).",
    "Sockets: UPI/QPI 20e9 B/s per direction, 0.5 us (assumed).",
    "DRAM per socket: 100e9 B/s, 0.1 us (assumed, six DDR4 channels),",
    "  128 GiB = 137438953472 bytes.",
    "Nodes (commodity-2node): one 25 GbE NIC per node (3.125e9 B/s, 10 us)",
    "  under socket 0, non-blocking Ethernet switch.",
    NULL};

static const char *const about_h200_pcie[] = {
    "Newer node for host-memory training: 8 NVIDIA H200 (the figures of",
    "  hgx-h200: calibrated speed 603431784643543.4 FLOP/s, 150109880320",
    "  bytes, peak 989e12, memory bandwidth 4.8e12 B/s), two CPU sockets,",
    "  two GPUs per PCIe 5.0 switch.",
    "GPU links: PCIe 5.0 x16 at 55308653992.02973 B/s, the pinned",
    "  host-to-device bandwidth measured for 256 MiB copies on one H200",
    "  (shared/calibration/h200-single-gpu.json, pcie, bytes 268435456,",
    "  pinned, h2d_GBps), latency 1 us; pageable copies measured 3-5x",
    "  slower there: this platform assumes pinned host buffers.",
    "Switch uplinks: PCIe 5.0 x16 at the same measured rate (assumed).",
    "Sockets: UPI 60e9 B/s per direction, 0.5 us; DRAM per socket 250e9",
    "  B/s, 0.1 us, 1 TiB = 1099511627776 bytes (assumed).",
    "gemm_curve: h200, as hgx-h200.",
    NULL};

#define TS_H200_PINNED_H2D 55308653992.02973

static const preset_t presets[] = {
    {{.name = "dgx-a100-2node", .nodes = 2, .gpus = 8,
      .gpu_speed = 187.2e12, /* 0.6 x 312e12 */
      .gpu_peak_flops = 312e12, .gpu_memory = 85899345920.0, .gpu_memory_bw = 2.039e12,
      .nvlink_bw = 300e9, .nvlink_lat = 2e-6,
      .ib_bw = 25e9, .ib_lat = 1e-6,
      .fabric_bw = 2 * 8 * 25e9, .fabric_lat = 1e-6, .pcie_only = 0, .gpu_curve = "a100"},
     about_dgx},
    {{.name = "hgx-h200", .nodes = 1, .gpus = 8,
      .gpu_speed = TS_H200_CALIBRATED_SPEED,
      .gpu_peak_flops = 989e12, .gpu_memory = 150109880320.0, .gpu_memory_bw = 4.8e12,
      .nvlink_bw = 450e9, .nvlink_lat = 2e-6,
      .ib_bw = 50e9, .ib_lat = 1e-6,
      .fabric_bw = 1 * 8 * 50e9, .fabric_lat = 1e-6, .pcie_only = 0, .gpu_curve = "h200"},
     about_h200},
    {{.name = "pcie-4gpu", .nodes = 1, .gpus = 4,
      .gpu_speed = 100e12, .gpu_peak_flops = 165e12, .gpu_memory = 25769803776.0,
      .gpu_memory_bw = 1.008e12,
      .nvlink_bw = 25e9, .nvlink_lat = 5e-6,
      .ib_bw = 25e9, .ib_lat = 1e-6,
      .fabric_bw = 1 * 4 * 25e9, .fabric_lat = 1e-6, .pcie_only = 1},
     about_pcie},
    {{.name = "commodity-8gpu", .nodes = 1, .gpus = 8,
      .gpu_speed = 48e12, .gpu_peak_flops = 80e12, .gpu_memory = 25769803776.0,
      .gpu_memory_bw = 1.008e12,
      .nvlink_bw = 6.5e9, .nvlink_lat = 1e-6,
      .ib_bw = 3.125e9, .ib_lat = 10e-6,
      .fabric_bw = 1 * 3.125e9, .fabric_lat = 1e-6, .pcie_only = 1,
      .topology = 1, .sockets = 2, .gpus_per_switch = 4,
      .uplink_bw = 13e9, .uplink_lat = 1e-6, .socket_bw = 20e9, .socket_lat = 0.5e-6,
      .dram_bw = 100e9, .dram_lat = 0.1e-6, .host_memory = 137438953472.0},
     about_commodity},
    {{.name = "commodity-2node", .nodes = 2, .gpus = 8,
      .gpu_speed = 48e12, .gpu_peak_flops = 80e12, .gpu_memory = 25769803776.0,
      .gpu_memory_bw = 1.008e12,
      .nvlink_bw = 6.5e9, .nvlink_lat = 1e-6,
      .ib_bw = 3.125e9, .ib_lat = 10e-6,
      .fabric_bw = 2 * 3.125e9, .fabric_lat = 1e-6, .pcie_only = 1,
      .topology = 1, .sockets = 2, .gpus_per_switch = 4,
      .uplink_bw = 13e9, .uplink_lat = 1e-6, .socket_bw = 20e9, .socket_lat = 0.5e-6,
      .dram_bw = 100e9, .dram_lat = 0.1e-6, .host_memory = 137438953472.0},
     about_commodity},
    {{.name = "h200-pcie-8gpu", .nodes = 1, .gpus = 8,
      .gpu_speed = TS_H200_CALIBRATED_SPEED, .gpu_peak_flops = 989e12,
      .gpu_memory = 150109880320.0, .gpu_memory_bw = 4.8e12,
      .nvlink_bw = TS_H200_PINNED_H2D, .nvlink_lat = 1e-6,
      .ib_bw = 50e9, .ib_lat = 1e-6,
      .fabric_bw = 1 * 50e9, .fabric_lat = 1e-6, .pcie_only = 1,
      .topology = 1, .sockets = 2, .gpus_per_switch = 2,
      .uplink_bw = TS_H200_PINNED_H2D, .uplink_lat = 1e-6, .socket_bw = 60e9,
      .socket_lat = 0.5e-6, .dram_bw = 250e9, .dram_lat = 0.1e-6,
      .host_memory = 1099511627776.0, .gpu_curve = "h200"},
     about_h200_pcie},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

const char *const ts_platgen_preset_names[] = {"dgx-a100-2node", "hgx-h200", "pcie-4gpu",
                                                "commodity-8gpu", "commodity-2node",
                                                "h200-pcie-8gpu", NULL};

int ts_platgen_preset(const char *name, ts_platgen_t *g, ts_err_t *err) {
  for (size_t i = 0; i < N_PRESETS; i++)
    if (name && strcmp(name, presets[i].g.name) == 0) {
      *g = presets[i].g;
      return 0;
    }
  return ts_err_set(err, EX_USAGE,
                    "unknown platform preset '%s' (known: dgx-a100-2node, hgx-h200, pcie-4gpu, "
                    "commodity-8gpu, commodity-2node, h200-pcie-8gpu)",
                    name ? name : "(null)");
}

const char *const *ts__platgen_about(const ts_platgen_t *g) {
  for (size_t i = 0; i < N_PRESETS; i++) {
    const ts_platgen_t *p = &presets[i].g;
    if (strcmp(g->name, p->name) == 0 && g->nodes == p->nodes && g->gpus == p->gpus &&
        g->gpu_speed == p->gpu_speed && g->gpu_peak_flops == p->gpu_peak_flops &&
        g->gpu_memory == p->gpu_memory && g->gpu_memory_bw == p->gpu_memory_bw &&
        strcmp(g->gpu_curve, p->gpu_curve) == 0 &&
        g->nvlink_bw == p->nvlink_bw &&
        g->nvlink_lat == p->nvlink_lat && g->ib_bw == p->ib_bw && g->ib_lat == p->ib_lat &&
        g->fabric_bw == p->fabric_bw && g->fabric_lat == p->fabric_lat &&
        (g->pcie_only != 0) == (p->pcie_only != 0) && g->topology == p->topology &&
        (g->topology == 0 ||
         (g->sockets == p->sockets && g->gpus_per_switch == p->gpus_per_switch &&
          g->uplink_bw == p->uplink_bw && g->uplink_lat == p->uplink_lat &&
          g->socket_bw == p->socket_bw && g->socket_lat == p->socket_lat &&
          g->dram_bw == p->dram_bw && g->dram_lat == p->dram_lat &&
          g->host_memory == p->host_memory)))
      return presets[i].about;
  }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Calibration                                                         */
/* ------------------------------------------------------------------ */

/* The number field of layers[i], which must be finite and > 0; fills
** *out, or the error naming the file and layers[i].field. */
static int layer_number(const char *path, const cJSON *layer, int i, const char *field,
                        double *out, ts_err_t *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(layer, field);
  if (!v) return ts_err_set(err, EX_DATAERR, "%s: layers[%d].%s: missing", path, i, field);
  if (!cJSON_IsNumber(v))
    return ts_err_set(err, EX_DATAERR, "%s: layers[%d].%s: expected a number", path, i, field);
  if (!isfinite(v->valuedouble) || !(v->valuedouble > 0))
    return ts_err_set(err, EX_DATAERR, "%s: layers[%d].%s: expected a finite positive number, got %g",
                      path, i, field, v->valuedouble);
  *out = v->valuedouble;
  return 0;
}

int ts_platgen_calibrated_speed(const char *path, double *speed, ts_err_t *err) {
  size_t len = 0;
  char *text = ts__read_file(path, &len);
  if (!text) return ts_err_set(err, EX_NOINPUT, "%s: cannot read calibration file: %s", path, ts__read_error(errno));
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  int rc = 0;
  if (!root) {
    int line = 1;
    for (const char *p = text; end && p < end && *p; p++) line += *p == '\n';
    rc = ts_err_set(err, EX_DATAERR, "%s: line %d: malformed JSON", path, line);
    goto out_free_text;
  }
  const cJSON *layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
  if (!cJSON_IsArray(layers)) {
    rc = ts_err_set(err, EX_DATAERR, "%s: layers: %s", path,
                    layers ? "expected an array" : "missing");
    goto out_free_json;
  }
  /* The mean over the qualifying layers, summed in file order. */
  double sum = 0;
  int n = 0, i = 0;
  const cJSON *layer;
  cJSON_ArrayForEach(layer, layers) {
    double h, fwd_s, fwd_bwd_s, tflops;
    if (!cJSON_IsObject(layer)) {
      rc = ts_err_set(err, EX_DATAERR, "%s: layers[%d]: expected an object", path, i);
      goto out_free_json;
    }
    if ((rc = layer_number(path, layer, i, "h", &h, err))) goto out_free_json;
    if (h >= 8192) {
      if ((rc = layer_number(path, layer, i, "approx_fwd_tflops", &tflops, err)) ||
          (rc = layer_number(path, layer, i, "fwd_s", &fwd_s, err)) ||
          (rc = layer_number(path, layer, i, "fwd_bwd_s", &fwd_bwd_s, err)))
        goto out_free_json;
      double fwd_flops = tflops * 1e12 * fwd_s;
      sum += 3 * fwd_flops / fwd_bwd_s;
      n++;
    }
    i++;
  }
  if (n == 0) {
    rc = ts_err_set(err, EX_DATAERR, "%s: layers: no entry with h >= 8192 to calibrate the speed", path);
    goto out_free_json;
  }
  *speed = sum / n;
  if (!isfinite(*speed))
    rc = ts_err_set(err, EX_DATAERR, "%s: layers: the calibrated speed is not finite", path);
out_free_json:
  cJSON_Delete(root);
out_free_text:
  free(text);
  return rc;
}

int ts_platgen_speed_from_calibration(const char *path, ts_platgen_t *g, ts_err_t *err) {
  double s;
  int rc = ts_platgen_calibrated_speed(path, &s, err);
  if (rc == 0) g->gpu_speed = s;
  return rc;
}

/* ------------------------------------------------------------------ */
/* Checking                                                            */
/* ------------------------------------------------------------------ */

static int check_figure(const char *field, double v, ts_err_t *err) {
  if (!isfinite(v) || !(v > 0))
    return ts_err_set(err, EX_USAGE, "platform: %s must be a finite positive number, got %g", field, v);
  return 0;
}

int ts_platgen_check(const ts_platgen_t *g, ts_err_t *err) {
  size_t len = strnlen(g->name, sizeof g->name);
  if (len == 0 || len == sizeof g->name)
    return ts_err_set(err, EX_USAGE, "platform: name must have 1 to %zu characters",
                      sizeof g->name - 1);
  for (size_t i = 0; i < len; i++) {
    char c = g->name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    if (!ok || (c == '-' && (i == 0 || i == len - 1 || g->name[i + 1] == '-')))
      return ts_err_set(err, EX_USAGE,
                        "platform: name '%s' may hold only letters, digits, '.', '_' and single "
                        "inner '-'",
                        g->name);
  }
  if ((strncmp(g->name, "node", 4) == 0 && g->name[4] >= '0' && g->name[4] <= '9') ||
      strcmp(g->name, "ib-ingress") == 0 || strcmp(g->name, "ib-egress") == 0)
    return ts_err_set(err, EX_USAGE, "platform: name '%s' collides with a host or router name",
                      g->name);
  if (g->nodes <= 0)
    return ts_err_set(err, EX_USAGE, "platform: nodes must be positive, got %d", g->nodes);
  if (g->gpus <= 0)
    return ts_err_set(err, EX_USAGE, "platform: gpus must be positive, got %d", g->gpus);
  if ((long long)g->nodes * g->gpus > TS_PLATGEN_MAX_HOSTS)
    return ts_err_set(err, EX_USAGE, "platform: nodes x gpus = %lld exceeds %d hosts",
                      (long long)g->nodes * g->gpus, TS_PLATGEN_MAX_HOSTS);
  int rc;
  if ((rc = check_figure("gpu_speed", g->gpu_speed, err)) ||
      (rc = check_figure("gpu_peak_flops", g->gpu_peak_flops, err)) ||
      (rc = check_figure("gpu_memory", g->gpu_memory, err)) ||
      (rc = check_figure("gpu_memory_bw", g->gpu_memory_bw, err)) ||
      (rc = check_figure("nvlink_bw", g->nvlink_bw, err)) ||
      (rc = check_figure("nvlink_lat", g->nvlink_lat, err)) ||
      (rc = check_figure("ib_bw", g->ib_bw, err)) ||
      (rc = check_figure("ib_lat", g->ib_lat, err)) ||
      (rc = check_figure("fabric_bw", g->fabric_bw, err)) ||
      (rc = check_figure("fabric_lat", g->fabric_lat, err)))
    return rc;
  if (g->topology == 1) {
    if (g->sockets != 1 && g->sockets != 2)
      return ts_err_set(err, EX_USAGE, "platform: sockets must be 1 or 2, got %d", g->sockets);
    if (g->gpus_per_switch <= 0 || g->gpus % g->gpus_per_switch ||
        (g->gpus / g->gpus_per_switch) % g->sockets)
      return ts_err_set(err, EX_USAGE,
                        "platform: gpus_per_switch: %d GPUs must fill whole PCIe switches of %d, "
                        "shared equally by %d sockets",
                        g->gpus, g->gpus_per_switch, g->sockets);
    if ((rc = check_figure("uplink_bw", g->uplink_bw, err)) ||
        (rc = check_figure("uplink_lat", g->uplink_lat, err)) ||
        (rc = check_figure("socket_bw", g->socket_bw, err)) ||
        (rc = check_figure("socket_lat", g->socket_lat, err)) ||
        (rc = check_figure("dram_bw", g->dram_bw, err)) ||
        (rc = check_figure("dram_lat", g->dram_lat, err)) ||
        (rc = check_figure("host_memory", g->host_memory, err)))
      return rc;
  } else if (g->topology != 0) {
    return ts_err_set(err, EX_USAGE, "platform: unknown topology %d", g->topology);
  }
  return 0;
}
