/*
** platform_gen.c: the figures of generated SimGrid platforms: the shipped
** presets (with the header-comment lines each file carries, and their
** sources) and the check of a ts_platgen_t before it is written.  The GPU
** speed calibration is in platform_calib.c; the XML is written by
** platform_topo.c (fat trees, which also explains the model and the
** routes) and platform_gen_write.c (the command line, the PCIe tree).
*/
#include "platform_gen.h"
#include "platform_gen_internal.h"
#include "ts_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <stdio.h>
#include <sysexits.h>

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
    "DGX-A100-like nodes of 8 NVIDIA A100 80GB SXM.",
    "speed: 0.6 x the 312e12 FLOP/s bf16 dense peak = 187.2e12 FLOP/s",
    "  sustained (an assumed fraction, not a measurement).",
    "memory: 80 GiB = 85899345920 bytes per GPU; memory bandwidth",
    "  2.039e12 B/s (HBM2e, NVIDIA A100 datasheet, 80GB SXM).",
    "NVLink 3 through NVSwitch: 300e9 B/s per direction per GPU",
    "  (600 GB/s bidirectional), latency 2 us.",
    "InfiniBand HDR 200 Gb/s = 25e9 B/s per GPU NIC (8 rails per node),",
    "  latency 1 us, behind PCIe 4.0 x16 (31.5e9 B/s raw; 0.5 us assumed, so",
    "  NIC to NIC through one leaf takes 3 us as the old fabric did).",
    "Fabric: a DGX SuperPOD scalable unit (NVIDIA DGX SuperPOD reference",
    "  architecture, DGX A100): rail-optimised, leaves of 40-port HDR",
    "  switches (20 ports down, 20 up: non-blocking, 1:1), 2 tiers; each",
    "  trunk link 0.5 us (assumed: leaf-spine-leaf 1 us).",
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
    "InfiniBand NDR 400 Gb/s = 50e9 B/s per GPU NIC, 1 us, behind PCIe",
    "  5.0 x16 (63e9 B/s, 0.5 us); rail-optimised 2-tier fat tree of 64-port NDR",
    "  leaves (32 down, 1:1), 0.5 us per trunk: these links exist only",
    "  when generated with nodes > 1.",
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
    "InfiniBand (25e9 B/s per GPU NIC, 1 us, behind PCIe at 25e9 B/s and",
    "  0.5 us, all on one leaf of 32",
    "  ports, 1:1, 0.5 us per trunk): these links exist only when",
    "  generated with nodes > 1.",
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

static const char *const about_superpod[] = {
    "DGX SuperPOD (DGX A100), like NVIDIA's Selene: nodes of 8 A100 80GB",
    "  SXM with the figures of dgx-a100-2node (speed 187.2e12 FLOP/s",
    "  assumed, 85899345920 bytes, 2.039e12 B/s, NVLink 3 300e9 B/s per",
    "  direction through NVSwitch, 2 us).",
    "Compute fabric (NVIDIA DGX SuperPOD reference architecture, DGX A100;",
    "  Selene): 8 InfiniBand HDR 200 Gb/s = 25e9 B/s NICs per node (one",
    "  per GPU, 1 us, PCIe 4.0 x16 31.5e9 B/s, 0.5 us), rail-optimised: scalable",
    "  units of 20 nodes, GPU k of each on the unit's leaf k (40-port HDR",
    "  switches, 20 down, 20 up), three tiers (leaf, spine, core), full",
    "  fat tree (1:1 at both tiers); 0.5 us per trunk link (assumed).",
    "The reference design has 140 nodes (7 units); use nodes to resize.",
    "gemm_curve: a100.",
    NULL};

static const char *const about_h100[] = {
    "DGX H100 cluster: nodes of 8 NVIDIA H100 80GB SXM.",
    "peak_flops: 989e12 FLOP/s bf16 dense; speed 0.6 x peak = 593.4e12",
    "  (assumed); memory 80 GiB = 85899345920 bytes; memory bandwidth",
    "  3.35e12 B/s (HBM3, NVIDIA H100 datasheet, SXM).",
    "NVLink 4 through NVSwitch: 450e9 B/s per direction per GPU (900 GB/s",
    "  bidirectional), 2 us (assumed as for the A100).",
    "Compute fabric (NVIDIA DGX SuperPOD reference architecture, DGX H100):",
    "  8 ConnectX-7 InfiniBand NDR 400 Gb/s = 50e9 B/s NICs per node, 1 us,",
    "  PCIe 5.0 x16 (63e9 B/s, 0.5 us); rail-optimised scalable units of 32 nodes",
    "  on 64-port NDR leaves (32 down, 32 up, 1:1), two tiers (leaf,",
    "  spine); 0.5 us per trunk link (assumed).  Use nodes to resize (the",
    "  reference design: 4 units, 127 nodes).",
    "gemm_curve: h100.",
    NULL};

static const char *const about_nvl72[] = {
    "GB200 NVL72 racks: 18 compute trays of 4 Blackwell GPUs per rack, one",
    "  NVLink 5 domain of 72 GPUs per rack through the NVLink switch trays",
    "  (NVIDIA GB200 NVL72 datasheet): 1.8 TB/s bidirectional per GPU =",
    "  900e9 B/s per direction, 2 us (assumed).",
    "Per GPU: bf16 dense peak 2.5e15 FLOP/s (180 PFLOPS per rack), speed",
    "  0.6 x peak = 1.5e15 (assumed); HBM3e 186e9 bytes (13.4 TB per rack),",
    "  8e12 B/s (576 TB/s per rack); no GEMM curve.",
    "Between racks: one ConnectX-7 400 Gb/s = 50e9 B/s NIC per GPU, 1 us,",
    "  PCIe 5.0 x16 63e9 B/s, 0.5 us; rail-optimised 2-tier fat tree, a scalable",
    "  unit of one rack (18 trays) per 64-port NDR leaf set (32 down, 1:1),",
    "  0.5 us per trunk link (assumed).  nodes = trays (18 per rack).",
    NULL};

#define TS_H200_PINNED_H2D 55308653992.02973

/* The DGX-A100 figures and its SuperPOD unit's fabric (about_dgx). */
#define A100_GPU                                                                      \
  .gpus = 8, .gpu_speed = 187.2e12, /* 0.6 x 312e12 */                               \
      .gpu_peak_flops = 312e12, .gpu_memory = 85899345920.0, .gpu_memory_bw = 2.039e12, \
      .nvlink_bw = 300e9, .nvlink_lat = 2e-6, .nvlink_domain = 8
#define A100_FABRIC(tiers_)                                                       \
  .tiers = tiers_, .rails = 1, .leaf_ports = 20, .su_nodes = 20, .oversub_leaf = 1, \
  .oversub_spine = 1, .nic_pcie_bw = 31.5e9, .nic_pcie_lat = 0.5e-6

static const preset_t presets[] = {
    {{.name = "dgx-a100-2node", .nodes = 2, A100_GPU,
      .ib_bw = 25e9, .ib_lat = 1e-6, .fabric_lat = 0.5e-6, .gpu_curve = "a100",
      A100_FABRIC(2)},
     about_dgx},
    {{.name = "hgx-h200", .nodes = 1, .gpus = 8,
      .gpu_speed = TS_H200_CALIBRATED_SPEED,
      .gpu_peak_flops = 989e12, .gpu_memory = 150109880320.0, .gpu_memory_bw = 4.8e12,
      .nvlink_bw = 450e9, .nvlink_lat = 2e-6,
      .ib_bw = 50e9, .ib_lat = 1e-6, .fabric_lat = 0.5e-6, .gpu_curve = "h200",
      .nvlink_domain = 8, .tiers = 2, .rails = 1, .leaf_ports = 32, .su_nodes = 32,
      .oversub_leaf = 1, .oversub_spine = 1, .nic_pcie_bw = 63e9, .nic_pcie_lat = 0.5e-6},
     about_h200},
    {{.name = "pcie-4gpu", .nodes = 1, .gpus = 4,
      .gpu_speed = 100e12, .gpu_peak_flops = 165e12, .gpu_memory = 25769803776.0,
      .gpu_memory_bw = 1.008e12,
      .nvlink_bw = 25e9, .nvlink_lat = 5e-6,
      .ib_bw = 25e9, .ib_lat = 1e-6, .fabric_lat = 0.5e-6, .pcie_only = 1,
      .nvlink_domain = 4, .tiers = 2, .rails = 0, .leaf_ports = 32, .su_nodes = 8,
      .oversub_leaf = 1, .oversub_spine = 1, .nic_pcie_bw = 25e9, .nic_pcie_lat = 0.5e-6},
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
    {{.name = "dgx-a100-superpod", .nodes = 140, A100_GPU,
      .ib_bw = 25e9, .ib_lat = 1e-6, .fabric_lat = 0.5e-6, .gpu_curve = "a100",
      A100_FABRIC(3)},
     about_superpod},
    {{.name = "dgx-h100", .nodes = 32, .gpus = 8,
      .gpu_speed = 593.4e12, /* 0.6 x 989e12 */
      .gpu_peak_flops = 989e12, .gpu_memory = 85899345920.0, .gpu_memory_bw = 3.35e12,
      .nvlink_bw = 450e9, .nvlink_lat = 2e-6, .nvlink_domain = 8, .gpu_curve = "h100",
      .ib_bw = 50e9, .ib_lat = 1e-6, .fabric_lat = 0.5e-6, .tiers = 2, .rails = 1,
      .leaf_ports = 32, .su_nodes = 32, .oversub_leaf = 1, .oversub_spine = 1,
      .nic_pcie_bw = 63e9, .nic_pcie_lat = 0.5e-6},
     about_h100},
    {{.name = "gb200-nvl72", .nodes = 18, .gpus = 4,
      .gpu_speed = 1.5e15, /* 0.6 x 2.5e15 */
      .gpu_peak_flops = 2.5e15, .gpu_memory = 186e9, .gpu_memory_bw = 8e12,
      .nvlink_bw = 900e9, .nvlink_lat = 2e-6, .nvlink_domain = 72,
      .ib_bw = 50e9, .ib_lat = 1e-6, .fabric_lat = 0.5e-6, .tiers = 2, .rails = 1,
      .leaf_ports = 32, .su_nodes = 18, .oversub_leaf = 1, .oversub_spine = 1,
      .nic_pcie_bw = 63e9, .nic_pcie_lat = 0.5e-6},
     about_nvl72},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

const char *const ts_platgen_preset_names[] = {"dgx-a100-2node", "hgx-h200", "pcie-4gpu",
                                                "commodity-8gpu", "commodity-2node",
                                                "h200-pcie-8gpu", "dgx-a100-superpod",
                                                "dgx-h100", "gb200-nvl72", NULL};

int ts_platgen_preset(const char *name, ts_platgen_t *g, ts_err_t *err) {
  for (size_t i = 0; i < N_PRESETS; i++)
    if (name && strcmp(name, presets[i].g.name) == 0) {
      *g = presets[i].g;
      return 0;
    }
  const char *near = name ? ts__suggest(name, ts_platgen_preset_names) : NULL;
  char known[512];
  size_t k = 0;
  known[0] = 0;
  for (const char *const *p = ts_platgen_preset_names; *p; p++)
    k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", k ? ", " : "", *p);
  return ts_err_set(err, EX_USAGE, "--preset: unknown platform preset '%s'%s%s%s (known: %s)",
                    name ? name : "(null)", near ? "; did you mean '" : "", near ? near : "",
                    near ? "'?" : "", known);
}

/* True when g and p have the same figures, their names and node counts
** aside. */
static bool same_figures(const ts_platgen_t *g, const ts_platgen_t *p) {
  bool same = g->gpus == p->gpus && g->gpu_speed == p->gpu_speed &&
              g->gpu_peak_flops == p->gpu_peak_flops && g->gpu_memory == p->gpu_memory &&
              g->gpu_memory_bw == p->gpu_memory_bw && strcmp(g->gpu_curve, p->gpu_curve) == 0 &&
              g->nvlink_bw == p->nvlink_bw && g->nvlink_lat == p->nvlink_lat &&
              g->ib_bw == p->ib_bw && g->ib_lat == p->ib_lat && g->fabric_lat == p->fabric_lat &&
              (g->pcie_only != 0) == (p->pcie_only != 0) && g->topology == p->topology;
  if (!same) return false;
  if (g->topology == 1)
    return g->fabric_bw == p->fabric_bw && g->sockets == p->sockets &&
           g->gpus_per_switch == p->gpus_per_switch && g->uplink_bw == p->uplink_bw &&
           g->uplink_lat == p->uplink_lat && g->socket_bw == p->socket_bw &&
           g->socket_lat == p->socket_lat && g->dram_bw == p->dram_bw &&
           g->dram_lat == p->dram_lat && g->host_memory == p->host_memory;
  return g->nvlink_domain == p->nvlink_domain && g->tiers == p->tiers && g->rails == p->rails &&
         g->leaf_ports == p->leaf_ports && g->su_nodes == p->su_nodes &&
         g->oversub_leaf == p->oversub_leaf && g->oversub_spine == p->oversub_spine &&
         g->nic_pcie_bw == p->nic_pcie_bw && g->nic_pcie_lat == p->nic_pcie_lat;
}

const ts_platgen_t *ts__platgen_base(const ts_platgen_t *g) {
  /* The preset of g's own name first, so a renamed copy of one preset
  ** that equals another names the right one. */
  for (size_t i = 0; i < N_PRESETS; i++)
    if (strcmp(g->name, presets[i].g.name) == 0 && same_figures(g, &presets[i].g))
      return &presets[i].g;
  for (size_t i = 0; i < N_PRESETS; i++)
    if (same_figures(g, &presets[i].g)) return &presets[i].g;
  return NULL;
}

const char *const *ts__platgen_about(const ts_platgen_t *g) {
  const ts_platgen_t *p = ts__platgen_base(g);
  for (size_t i = 0; p && i < N_PRESETS; i++)
    if (p == &presets[i].g) return presets[i].about;
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Checking                                                            */
/* ------------------------------------------------------------------ */

static int check_figure(const char *field, double v, ts_err_t *err) {
  if (!isfinite(v) || !(v > 0))
    return ts_err_set(err, EX_USAGE, "platform: %s must be a finite positive number, got %g", field, v);
  return 0;
}

/* The fat tree's numbers (topology 0), one-line errors naming the option. */
static int check_fat_tree(const ts_platgen_t *g, ts_err_t *err) {
  int rc;
  if ((rc = check_figure("--nic-pcie-bw", g->nic_pcie_bw, err))) return rc;
  if (!isfinite(g->nic_pcie_lat) || g->nic_pcie_lat < 0)
    return ts_err_set(err, EX_USAGE, "platform: --nic-pcie-lat must be >= 0, got %g", g->nic_pcie_lat);
  if (!isfinite(g->oversub_leaf) || !(g->oversub_leaf > 0))
    return ts_err_set(err, EX_USAGE,
                      "platform: --oversub-leaf must be a ratio > 0 (down:up, 1 non-blocking), got %g",
                      g->oversub_leaf);
  if (!isfinite(g->oversub_spine) || !(g->oversub_spine > 0))
    return ts_err_set(err, EX_USAGE,
                      "platform: --oversub-spine must be a ratio > 0 (down:up, 1 non-blocking), got %g",
                      g->oversub_spine);
  if (g->tiers != 2 && g->tiers != 3)
    return ts_err_set(err, EX_USAGE, "platform: --tiers must be 2 or 3, got %d", g->tiers);
  if (g->rails != 0 && g->rails != 1)
    return ts_err_set(err, EX_USAGE, "platform: rails must be on or off");
  if (g->leaf_ports <= 0 || g->leaf_ports > TS_PLATGEN_MAX_HOSTS)
    return ts_err_set(err, EX_USAGE, "platform: --leaf-ports must be 1 to %d, got %d",
                      TS_PLATGEN_MAX_HOSTS, g->leaf_ports);
  if (g->su_nodes <= 0 || g->su_nodes > TS_PLATGEN_MAX_HOSTS)
    return ts_err_set(err, EX_USAGE, "platform: --su-nodes must be 1 to %d, got %d",
                      TS_PLATGEN_MAX_HOSTS, g->su_nodes);
  if (!g->rails && g->gpus > g->leaf_ports)
    return ts_err_set(err, EX_USAGE,
                      "platform: --leaf-ports: %d GPUs (NICs) per node do not fit on one leaf of %d "
                      "ports (without rails a node's NICs share one leaf)",
                      g->gpus, g->leaf_ports);
  if (g->rails && g->su_nodes > g->leaf_ports)
    return ts_err_set(err, EX_USAGE,
                      "platform: --leaf-ports: a rail leaf takes one NIC of each of the %d nodes of "
                      "a scalable unit (--su-nodes) but has %d ports",
                      g->su_nodes, g->leaf_ports);
  int dom = g->nvlink_domain ? g->nvlink_domain : g->gpus;
  if (dom <= 0 || dom % g->gpus)
    return ts_err_set(err, EX_USAGE,
                      "platform: --nvlink-domain: %d GPUs per domain must be whole nodes of %d GPUs",
                      dom, g->gpus);
  int nd = dom / g->gpus, npl = g->leaf_ports / g->gpus;
  if (g->tiers == 3 && g->su_nodes % nd)
    return ts_err_set(err, EX_USAGE,
                      "platform: --su-nodes: a scalable unit (pod) of %d nodes must hold whole NVLink "
                      "domains of %d nodes",
                      g->su_nodes, nd);
  if (g->tiers == 3 && !g->rails && g->su_nodes % npl)
    return ts_err_set(err, EX_USAGE,
                      "platform: --su-nodes: a pod of %d nodes must hold whole leaves of %d nodes",
                      g->su_nodes, npl);
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
  static const char *const taken[] = {"node", "leaf", "spine", "domain", "core", "eth-"};
  bool collides = false;
  for (size_t i = 0; i < sizeof taken / sizeof *taken; i++)
    if (strncmp(g->name, taken[i], strlen(taken[i])) == 0) collides = true;
  if (collides)
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
      (rc = check_figure("fabric_lat", g->fabric_lat, err)))
    return rc;
  if (g->topology == 0) return check_fat_tree(g, err);
  if (g->topology == 1) {
    if ((rc = check_figure("fabric_bw", g->fabric_bw, err))) return rc;
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
