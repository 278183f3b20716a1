/*
** main.c: the trainsim command line.
**
**   trainsim run [JOB.json] [-o DIR] [-f LIST] [--set PATH=VALUE]... [--executor NAME]
**                [--quiet]
**   trainsim compare [JOB.json] [-o DIR] [--set PATH=VALUE]... [--executor NAME]
**                    [--schedules A,B,...] [--quiet]
**   trainsim place [JOB.json] [-o DIR] [--set PATH=VALUE]... [--quiet]
**   trainsim platform (--preset NAME | --nodes N --gpus G ...) [-o FILE]
**   trainsim bench [-o DIR] [--repeat N] [--case CASE]
**   trainsim COMMAND --help | trainsim help COMMAND | trainsim --help | --version
**
** The help text of every command is in cli_help.c (ts_cli_help.h).
** Errors are one line on stderr, "trainsim: error: <file>: <place>: <what>",
** and the exit status is a sysexits.h code.  Nothing is written unless the
** whole run succeeded.
*/
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "platform_gen.h"
#include "trainsim.h"
#include "ts_out.h"
#include "ts_bench.h"
#include "ts_compare.h"
#include "ts_exec.h"
#include "ts_gemm.h"
#include "ts_place.h"
#include "ts_sim.h"
#include "ts_sweep.h"
#include "ts_validate.h"
#include "ts_internal.h"
#include "ts_cli_help.h"

static int die(const ts_err_t *e) {
  fprintf(stderr, "trainsim: error: %s\n", e->msg);
  return e->code ? e->code : EX_SOFTWARE;
}

static int usage_error(const char *msg) {
  fprintf(stderr, "trainsim: error: %s (see trainsim --help)\n", msg);
  return EX_USAGE;
}

/* getopt_long with opterr = 0 and a leading ':' returns '?' for an unknown
** option and ':' for a missing argument; this says which, in one line, or
** prints cmd's help for --help and -h (TS_CLI_HELP_SHOWN). */
static int option_error(const char *cmd, int c, char **argv, const struct option *opts) {
  const char *opt = argv[optind - 1];
  if (c != ':') return ts__cli_unknown_option(cmd, argv, opts);
  fprintf(stderr, "trainsim: error: %s: option '%s' requires an argument (see trainsim --help)\n",
          cmd, opt);
  return EX_USAGE;
}

enum { CMD_RUN, CMD_COMPARE, CMD_PLACE };
static int cmd_run_or_compare(int argc, char **argv, int cmd);
static int cmd_run(int argc, char **argv) { return cmd_run_or_compare(argc, argv, CMD_RUN); }
static int cmd_compare(int argc, char **argv) { return cmd_run_or_compare(argc, argv, CMD_COMPARE); }
static int cmd_place(int argc, char **argv) { return cmd_run_or_compare(argc, argv, CMD_PLACE); }

static int cmd_run_or_compare(int argc, char **argv, int cmd) {
  static const char *const names[] = {"run", "compare", "place"};
  bool compare = cmd != CMD_RUN;
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"set", required_argument, 0, 's'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"formats", required_argument, 0, 'f'},
                                       {"executor", required_argument, 0, 'x'},
                                       {"schedules", required_argument, 0, 'S'},
                                       {"figure-width", required_argument, 0, 'F'},
                                       {"font-size", required_argument, 0, 'F'},
                                       {"no-title", no_argument, 0, 'F'},
                                       {"style", required_argument, 0, 'F'},
                                       {"gantt-devices", required_argument, 0, 'F'},
                                       {"gantt-max-rows", required_argument, 0, 'F'},
                                       {"trace-max-mb", required_argument, 0, 'F'},
                                       {"paje-max-mb", required_argument, 0, 'F'},
                                       {"devices", required_argument, 0, 'F'},
                                       {"kinds", required_argument, 0, 'F'},
                                       {"exact", no_argument, 0, 'E'},
                                       {"fold", no_argument, 0, 'G'},
                                       {0, 0, 0, 0}};
  const char *out = "trainsim-out", *executor = NULL, *schedules = NULL;
  const char **sets = ts__xcalloc((size_t)argc + 1, sizeof *sets);
  int n_sets = 0, quiet = 0, c;
  unsigned formats = TS_FORMATS_DEFAULT;
  ts_out_opts_t oo = {0}; /* the output and figure options (README "Outputs") */
  ts_err_t err = {0};
  optind = 1;
  opterr = 0;
  int li = 0;
  while ((c = getopt_long(argc, argv, ":o:s:qf:", opts, &li)) != -1) {
    if (c == 'F') { /* the outputs and the figure: run only */
      if (compare) ts_err_set(&err, EX_USAGE, "%s: --%s applies to run only", names[cmd], opts[li].name);
      if (compare || ts_out_opt_set(&oo, opts[li].name, optarg, &err)) {
        free(sets);
        return die(&err);
      }
    } else if (c == 'f') { /* compare and place write their own files, not the formats */
      if (compare) ts_err_set(&err, EX_USAGE, "%s: -f/--formats applies to run only", names[cmd]);
      if (compare || ts_formats_parse(optarg, &formats, &err)) {
        free(sets);
        return die(&err);
      }
    } else if (c == 'o')
      out = optarg;
    else if (c == 's')
      sets[n_sets++] = optarg;
    else if (c == 'q')
      quiet = 1;
    else if (c == 'x')
      executor = optarg;
    else if ((c == 'E' || c == 'G') && cmd != CMD_PLACE && ts_sim_fold == (c == 'E' ? 1 : -1)) {
      free(sets);
      return usage_error("--exact and --fold exclude each other");
    } else if (c == 'E' && cmd != CMD_PLACE)
      ts_sim_fold = -1; /* no symmetry folding (ts_sim.h) */
    else if (c == 'G' && cmd != CMD_PLACE)
      ts_sim_fold = 1; /* symmetry folding at any size */
    else if (c == 'S' && cmd == CMD_COMPARE)
      schedules = optarg;
    else {
      free(sets);
      return option_error(names[cmd], c, argv, opts);
    }
  }
  if (argc - optind > 1) {
    free(sets);
    return usage_error(cmd == CMD_PLACE     ? "place takes at most one job file"
                       : cmd == CMD_COMPARE ? "compare takes at most one job file"
                                            : "run takes at most one job file");
  }
  const char *path = optind < argc ? argv[optind] : NULL;
  const ts_executor_t *ex = ts_executor_at(0);
  if (executor && cmd == CMD_PLACE) {
    free(sets);
    return usage_error("place: --executor: place searches placements on the simulator only");
  }
  if (executor && ts_executor_lookup(executor, &ex, &err)) {
    free(sets);
    fprintf(stderr, "trainsim: error: %s: %s\n", names[cmd], err.msg);
    return EX_USAGE;
  }
  if (compare) {
    int rc = cmd == CMD_PLACE ? ts_place(path, sets, n_sets, out, quiet, &err)
                              : ts_compare(path, sets, n_sets, schedules, ex, out, quiet, &err);
    free(sets);
    return rc ? die(&err) : 0;
  }
  ts_job_t *job = NULL;
  ts_outcome_t o;
  int rc = ts_job_load(path, sets, n_sets, &job, &err);
  free(sets);
  if (rc) return die(&err);
  ts_sim_progress = !quiet; /* a progress line on a terminal (ts_sim.h) */
  rc = ts_execute(job, NULL, ex, &o, &err);
  if (!rc) rc = ts_write_outputs_opts(&o.r, out, formats, &oo, &err);
  if (!rc && !quiet) {
    ts_print_summary(&o.r, stdout);
    bool many = (formats & (formats - 1)) != 0;
    printf("  outputs          %s/%s", out, many ? "{" : "");
    ts_formats_print(stdout, formats, ",");
    puts(many ? "}" : "");
  }
  if (rc) die(&err);
  ts_outcome_free(&o);
  ts_job_free(job);
  return rc;
}

static int parse_pos(const char *opt, const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || !(v > 0) || v > 1e30) {
    fprintf(stderr, "trainsim: error: %s: expected a positive number, got '%s'\n", opt, s);
    return EX_USAGE;
  }
  *out = v;
  return 0;
}

/* A value of --set's units (ts__parse_units) of kind what: 'b' bandwidth
** (a unit required: "200e9" would silently be B/s), 't' seconds, 'f'
** FLOP/s; > 0, or >= 0 when zero_ok.  A one-line error naming opt. */
static int parse_unit(const char *opt, const char *s, char what, int zero_ok, double *out) {
  char *end;
  double v;
  (void)strtod(s, &end);
  if (what == 'b' && end != s && *end == 0) {
    fprintf(stderr,
            "trainsim: error: %s: a bandwidth needs a unit (200Gbps, 25GBps, 25e9Bps), got '%s'\n",
            opt, s);
    return EX_USAGE;
  }
  if (!ts__parse_units(s, what, &v) || !(zero_ok ? v >= 0 : v > 0) || v > 1e30) {
    fprintf(stderr, "trainsim: error: %s: expected a %s number%s, got '%s'\n", opt,
            zero_ok ? "non-negative" : "positive",
            what == 'b' ? " with a unit (200Gbps, 25GBps)" : what == 't' ? " of seconds (2us, 1e-6)"
                                                                       : "",
            s);
    return EX_USAGE;
  }
  *out = v;
  return 0;
}

/* A whole number 1..65536 for opt. */
static int parse_count(const char *opt, const char *s, int *out) {
  double v;
  int rc = parse_pos(opt, s, &v);
  if (rc) return rc;
  if (v != (int)v || v > 65536) {
    fprintf(stderr, "trainsim: error: %s: expected a whole number up to 65536, got '%s'\n", opt, s);
    return EX_USAGE;
  }
  *out = (int)v;
  return 0;
}

/* A ratio (any finite number here; ts_platgen_check says why <= 0 fails). */
static int parse_ratio(const char *opt, const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || !isfinite(v)) {
    fprintf(stderr, "trainsim: error: %s: expected a ratio such as 2 (2:1), got '%s'\n", opt, s);
    return EX_USAGE;
  }
  *out = v;
  return 0;
}

static int write_platform(const void *arg, FILE *f) { return ts_platgen_write(arg, f); }

static int cmd_platform(int argc, char **argv) {
  static const struct option opts[] = {
      {"preset", required_argument, 0, 'P'},     {"nodes", required_argument, 0, 'n'},
      {"gpus", required_argument, 0, 'g'},       {"gpu-speed", required_argument, 0, 1},
      {"gpu-peak", required_argument, 0, 2},     {"gpu-memory", required_argument, 0, 3},
      {"nvlink-bw", required_argument, 0, 4},    {"nvlink-lat", required_argument, 0, 5},
      {"ib-bw", required_argument, 0, 6},        {"ib-lat", required_argument, 0, 7},
      {"fabric-bw", required_argument, 0, 8},    {"fabric-lat", required_argument, 0, 9},
      {"calibration", required_argument, 0, 10}, {"name", required_argument, 0, 11},
      {"pcie-only", no_argument, 0, 12},         {"output", required_argument, 0, 'o'},
      {"uplink-bw", required_argument, 0, 13},   {"socket-bw", required_argument, 0, 14},
      {"dram-bw", required_argument, 0, 15},     {"uplink-lat", required_argument, 0, 16},
      {"socket-lat", required_argument, 0, 17},  {"dram-lat", required_argument, 0, 18},
      {"host-memory", required_argument, 0, 19}, {"gpus-per-switch", required_argument, 0, 20},
      {"sockets", required_argument, 0, 21},     {"gpu-memory-bw", required_argument, 0, 22},
      {"gemm-curve", required_argument, 0, 23},  {"nvlink-domain", required_argument, 0, 24},
      {"tiers", required_argument, 0, 25},       {"rails", required_argument, 0, 26},
      {"leaf-ports", required_argument, 0, 27},  {"su-nodes", required_argument, 0, 28},
      {"oversub-leaf", required_argument, 0, 29}, {"oversub-spine", required_argument, 0, 30},
      {"nic-pcie-bw", required_argument, 0, 31}, {"nic-pcie-lat", required_argument, 0, 32},
      {0, 0, 0, 0}};
  ts_platgen_t g;
  ts_err_t err = {0};
  /* Start from the DGX-A100 preset's figures; options override them. */
  if (ts_platgen_preset("dgx-a100-2node", &g, &err)) return die(&err);
  const char *out = NULL, *calib = NULL, *tree_opt = NULL, *fat_opt = NULL;
  int c, li, rc = 0, fabric_given = 0, figures_given = 0, curve_given = 0, domain_given = 0;
  int one_node_domain = 1; /* the preset's NVLink domain is one node */
  optind = 1;
  opterr = 0;
  while (!rc && (li = -1, c = getopt_long(argc, argv, ":o:", opts, &li)) != -1) {
    if (c >= 13 && c <= 21 && li >= 0) tree_opt = opts[li].name;
    if (c >= 24 && c <= 32 && li >= 0) fat_opt = opts[li].name;
    switch (c) {
      case 'P':
        if (ts_platgen_preset(optarg, &g, &err)) return die(&err);
        one_node_domain = g.nvlink_domain == g.gpus;
        break;
      case 'n': rc = parse_count("--nodes", optarg, &g.nodes); break;
      case 'g': rc = parse_count("--gpus", optarg, &g.gpus); break;
      case 1: rc = parse_unit("--gpu-speed", optarg, 'f', 0, &g.gpu_speed); figures_given = 1; break;
      case 2: rc = parse_unit("--gpu-peak", optarg, 'f', 0, &g.gpu_peak_flops); figures_given = 1; break;
      case 23:
        if (strcmp(optarg, "none") && !ts_gemm_curve(optarg))
          return usage_error("--gemm-curve takes a100, h100, h200 or none");
        snprintf(g.gpu_curve, sizeof g.gpu_curve, "%s", strcmp(optarg, "none") ? optarg : "");
        curve_given = 1;
        break;
      case 3: rc = parse_pos("--gpu-memory", optarg, &g.gpu_memory); break;
      case 22: rc = parse_unit("--gpu-memory-bw", optarg, 'b', 0, &g.gpu_memory_bw); break;
      case 4: rc = parse_unit("--nvlink-bw", optarg, 'b', 0, &g.nvlink_bw); break;
      case 5: rc = parse_unit("--nvlink-lat", optarg, 't', 0, &g.nvlink_lat); break;
      case 6: rc = parse_unit("--ib-bw", optarg, 'b', 0, &g.ib_bw); break;
      case 7: rc = parse_unit("--ib-lat", optarg, 't', 0, &g.ib_lat); break;
      case 8: rc = parse_unit("--fabric-bw", optarg, 'b', 0, &g.fabric_bw); fabric_given = 1; break;
      case 9: rc = parse_unit("--fabric-lat", optarg, 't', 0, &g.fabric_lat); break;
      case 10: calib = optarg; break;
      case 11: snprintf(g.name, sizeof g.name, "%s", optarg); break;
      case 12: g.pcie_only = 1; break;
      case 13: rc = parse_unit("--uplink-bw", optarg, 'b', 0, &g.uplink_bw); break;
      case 14: rc = parse_unit("--socket-bw", optarg, 'b', 0, &g.socket_bw); break;
      case 15: rc = parse_unit("--dram-bw", optarg, 'b', 0, &g.dram_bw); break;
      case 16: rc = parse_unit("--uplink-lat", optarg, 't', 0, &g.uplink_lat); break;
      case 17: rc = parse_unit("--socket-lat", optarg, 't', 0, &g.socket_lat); break;
      case 18: rc = parse_unit("--dram-lat", optarg, 't', 0, &g.dram_lat); break;
      case 19: rc = parse_pos("--host-memory", optarg, &g.host_memory); break;
      case 20: rc = parse_count("--gpus-per-switch", optarg, &g.gpus_per_switch); break;
      case 21: rc = parse_count("--sockets", optarg, &g.sockets); break;
      case 24: rc = parse_count("--nvlink-domain", optarg, &g.nvlink_domain); domain_given = 1; break;
      case 25: rc = parse_count("--tiers", optarg, &g.tiers); break;
      case 26:
        if (strcmp(optarg, "on") && strcmp(optarg, "off"))
          return usage_error("--rails takes on (rail-optimised) or off (a node's NICs on one leaf)");
        g.rails = !strcmp(optarg, "on");
        break;
      case 27: rc = parse_count("--leaf-ports", optarg, &g.leaf_ports); break;
      case 28: rc = parse_count("--su-nodes", optarg, &g.su_nodes); break;
      case 29: rc = parse_ratio("--oversub-leaf", optarg, &g.oversub_leaf); break;
      case 30: rc = parse_ratio("--oversub-spine", optarg, &g.oversub_spine); break;
      case 31: rc = parse_unit("--nic-pcie-bw", optarg, 'b', 0, &g.nic_pcie_bw); break;
      case 32: rc = parse_unit("--nic-pcie-lat", optarg, 't', 1, &g.nic_pcie_lat); break;
      case 'o': out = optarg; break;
      default: return option_error("platform", c, argv, opts);
    }
  }
  if (rc) return rc;
  if (optind < argc) return usage_error("platform takes no positional argument");
  /* Another GPU's figures drop the preset's curve unless one is named. */
  if (figures_given && !curve_given) g.gpu_curve[0] = 0;
  /* A node of another size keeps a one-node NVLink domain unless told. */
  if (g.topology == 0 && !domain_given && one_node_domain) g.nvlink_domain = g.gpus;
  if (g.topology == 1) {
    /* The Ethernet switch is non-blocking unless told otherwise. */
    if (!fabric_given) g.fabric_bw = g.nodes * g.ib_bw;
    if (fat_opt) {
      fprintf(stderr, "trainsim: error: --%s: a PCIe-tree preset has no fat tree\n", fat_opt);
      return EX_USAGE;
    }
  } else if (fabric_given) {
    return usage_error("--fabric-bw: a fat tree has no fabric link: its trunks follow --leaf-ports, "
                       "--oversub-leaf and --oversub-spine");
  } else if (tree_opt) {
    fprintf(stderr,
            "trainsim: error: --%s: needs a PCIe-tree preset (commodity-8gpu, commodity-2node, "
            "h200-pcie-8gpu)\n",
            tree_opt);
    return EX_USAGE;
  }
  if (calib && ts_platgen_speed_from_calibration(calib, &g, &err)) return die(&err);
  if (ts_platgen_check(&g, &err)) return die(&err);
  if (!out) return ts_platgen_write(&g, stdout);
  if (ts_write_atomic(out, write_platform, &g, &err)) return die(&err);
  return 0;
}

static int cmd_bench(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"repeat", required_argument, 0, 'r'},
                                       {"case", required_argument, 0, 'c'},
                                       {0, 0, 0, 0}};
  const char *dir = "results", *bcase = NULL;
  int repeat = 5, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":o:r:c:", opts, NULL)) != -1) {
    if (c == 'o') {
      dir = optarg;
    } else if (c == 'c') {
      if (strcmp(optarg, "p64") && strcmp(optarg, "curve") && strcmp(optarg, "allreduce"))
        return usage_error("bench: --case takes p64, curve or allreduce");
      bcase = optarg;
    } else if (c == 'r') {
      char *end;
      long v = strtol(optarg, &end, 10);
      if (*end || v < 1 || v > 100) return usage_error("bench: --repeat takes 1 to 100");
      repeat = (int)v;
    } else {
      return option_error("bench", c, argv, opts);
    }
  }
  if (optind < argc) return usage_error("bench takes no positional argument");
  return ts_bench_run(dir, repeat, bcase);
}

/* The command's exit status: 0 after it printed its help. */
static int exit_status(int rc) { return rc == TS_CLI_HELP_SHOWN ? 0 : rc; }

int main(int argc, char **argv) {
  if (argc < 2) return usage_error("no command given");
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    if (argc > 3) return usage_error("help takes at most one command");
    return ts__cli_help(argc == 3 ? argv[2] : NULL, stdout);
  }
  if (!strcmp(cmd, "--version")) {
    printf("trainsim %s\n", TS_VERSION);
    return 0;
  }
  int rc;
  if (!strcmp(cmd, "run")) rc = cmd_run(argc - 1, argv + 1);
  else if (!strcmp(cmd, "compare")) rc = cmd_compare(argc - 1, argv + 1);
  else if (!strcmp(cmd, "place")) rc = cmd_place(argc - 1, argv + 1);
  else if (!strcmp(cmd, "sweep")) rc = ts_sweep_main(argc - 1, argv + 1);
  else if (!strcmp(cmd, "validate")) rc = ts_validate_main(argc - 1, argv + 1);
  else if (!strcmp(cmd, "platform")) rc = cmd_platform(argc - 1, argv + 1);
  else if (!strcmp(cmd, "bench")) rc = cmd_bench(argc - 1, argv + 1);
  else return ts__cli_unknown_command(cmd);
  return exit_status(rc);
}
