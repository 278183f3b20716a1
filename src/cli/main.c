/*
** main.c: the trainsim command line.
**
**   trainsim run [JOB.json] [-o DIR] [-f LIST] [--set PATH=VALUE]... [--executor NAME]
**                [--quiet]
**   trainsim compare [JOB.json] [-o DIR] [--set PATH=VALUE]... [--executor NAME] [--quiet]
**   trainsim place [JOB.json] [-o DIR] [--set PATH=VALUE]... [--quiet]
**   trainsim platform (--preset NAME | --nodes N --gpus G ...) [-o FILE]
**   trainsim bench [-o DIR] [--repeat N]
**   trainsim --help | --version
**
** Errors are one line on stderr, "trainsim: error: <file>: <place>: <what>",
** and the exit status is a sysexits.h code.  Nothing is written unless the
** whole run succeeded.
*/
#include <getopt.h>
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
#include "ts_place.h"
#include "ts_sweep.h"
#include "ts_validate.h"
#include "ts_internal.h"

static const char usage[] =
    "usage: trainsim run [JOB.json] [-o DIR] [-f LIST] [--set PATH=VALUE]... [--executor NAME]\n"
    "                    [--quiet]\n"
    "       trainsim compare [JOB.json] [-o DIR] [--set PATH=VALUE]... [--executor NAME]\n"
    "                        [--quiet]\n"
    "       trainsim place JOB.json [-o DIR] [--set PATH=VALUE]... [--quiet]\n"
    "       trainsim sweep [JOB.json] --vary PATH=V1,V2,... [--vary ...] [-o DIR] [-j N]\n"
    "                      [--metric NAME] [--set PATH=VALUE]... [--emit-jobs DIR2] [--quiet]\n"
    "       trainsim sweep --collect DIR2 [-o DIR] [--metric NAME] [--quiet]\n"
    "       trainsim validate JOB.json [-o DIR] [--set PATH=VALUE]... [--reps N] [--runs N] [--quiet]\n"
    "       trainsim platform (--preset NAME | --nodes N --gpus G [figures]) [-o FILE]\n"
    "       trainsim bench [-o DIR] [--repeat N]\n"
    "       trainsim --help | --version\n"
    "\n"
    "run       simulate one training iteration of JOB.json (the shipped default job\n"
    "          when omitted: GPT-3 6.7B, 1F1B, two DGX-A100-like nodes) and write\n"
    "          summary.json, timeline.csv, trace.json, gantt.svg and report.html\n"
    "          into DIR\n"
    "          (default ./trainsim-out).\n"
    "            -o, --output DIR     output directory\n"
    "            -f, --formats LIST   write only these outputs: comma-separated file\n"
    "                                 names or their stems (summary,gantt.svg);\n"
    "                                 default all\n"
    "            --set PATH=VALUE     override a job field (microbatches=16,\n"
    "                                 model.layers=24, schedule=gpipe) or a platform\n"
    "                                 figure by name or glob pattern:\n"
    "                                 platform.link.ib*.bandwidth=50GBps\n"
    "                                 platform.link.nvlink*.latency=1us\n"
    "                                 platform.host.node0-*.speed=150Tf\n"
    "            --executor NAME      simgrid (default: simulate on the job's platform)\n"
    "                                 or reference (run a small transformer job on\n"
    "                                 this CPU, one thread per device, and write the\n"
    "                                 measured run's outputs)\n"
    "            -q, --quiet          no summary on stdout\n"
    "compare   run every applicable schedule on JOB.json (with the adjustments\n"
    "          each schedule's rules need, listed) and write compare.csv and\n"
    "          compare.svg (their Gantt charts on one time axis) into DIR;\n"
    "          --executor as for run.\n"
    "place     for a job whose weights live in host memory (mobius, gpipe-swap),\n"
    "          simulate every round-robin order of the GPUs up to the symmetry of\n"
    "          their mapping_groups and write place.csv (best first) and the\n"
    "          outputs of the best placement into DIR.\n"
    "sweep     run JOB.json at every point of the cartesian product of the --vary\n"
    "          lists (any --set path; values split at commas outside [] {} \"\")\n"
    "          in parallel worker processes and write sweep.csv (one row per point,\n"
    "          in cartesian order: the varied values, status, the summary metrics)\n"
    "          and sweep.svg (--metric against the first varied path, one line per\n"
    "          value of the others) into DIR (default ./trainsim-sweep).  Re-running\n"
    "          the same command resumes: points already in DIR are not recomputed.\n"
    "            --vary PATH=V1,V2,...  a varied path and its values (repeatable)\n"
    "            -j, --jobs N         worker processes (default: online cores)\n"
    "            --metric NAME        plotted metric (default iteration_time_s;\n"
    "                                 any numeric column of sweep.csv)\n"
    "            --emit-jobs DIR2     run nothing; write DIR2/points.csv and\n"
    "                                 DIR2/commands.txt (one `trainsim run` per\n"
    "                                 line) for GNU parallel or a SLURM array\n"
    "            --collect DIR2       merge the emitted points' results into DIR\n"
    "            -q, --quiet          no progress and no table\n"
    "validate  run JOB.json (a small transformer) on the CPU reference executor, one\n"
    "          thread per device, and on the simulator with this machine's profiled op\n"
    "          times; write validation.json, platform.xml, reference/ and simulated/\n"
    "          into DIR (default ./trainsim-out) and print the comparison.\n"
    "platform  write a SimGrid platform (DTD 4.1) for N nodes x G GPUs.\n"
    "            --preset NAME        dgx-a100-2node, hgx-h200, pcie-4gpu, commodity-8gpu,\n"
    "                                 commodity-2node, h200-pcie-8gpu (PCIe trees with\n"
    "                                 host memory: --uplink-bw/-lat, --socket-bw/-lat,\n"
    "                                 --dram-bw/-lat, --host-memory, --gpus-per-switch,\n"
    "                                 --sockets)\n"
    "            --nodes N --gpus G   cluster shape\n"
    "            --gpu-speed F --gpu-peak F --gpu-memory BYTES --gpu-memory-bw B\n"
    "            --nvlink-bw B --nvlink-lat S --ib-bw B --ib-lat S\n"
    "            --fabric-bw B --fabric-lat S   (B/s and seconds, plain numbers)\n"
    "            --calibration FILE   sustained GPU speed from a calibration JSON\n"
    "            -o FILE              output file (default stdout)\n"
    "bench     time the p=64, m=512 1F1B benchmark and write bench.json into DIR\n"
    "          (default results/).\n"
    "\n"
    "Exit status: 0 success, 64 usage, 65 bad input data, 66 missing input,\n"
    "70 schedule error or deadlock, 73 cannot create output, 74 I/O error.\n";

static int die(const ts_err_t *e) {
  fprintf(stderr, "trainsim: error: %s\n", e->msg);
  return e->code ? e->code : EX_SOFTWARE;
}

static int usage_error(const char *msg) {
  fprintf(stderr, "trainsim: error: %s (see trainsim --help)\n", msg);
  return EX_USAGE;
}

/* getopt_long with opterr = 0 and a leading ':' returns '?' for an unknown
** option and ':' for a missing argument; this says which, in one line. */
static int option_error(const char *cmd, int c, char **argv) {
  const char *opt = argv[optind - 1];
  if (c == ':')
    fprintf(stderr, "trainsim: error: %s: option '%s' requires an argument (see trainsim --help)\n",
            cmd, opt);
  else
    fprintf(stderr, "trainsim: error: %s: unknown option '%s' (see trainsim --help)\n", cmd, opt);
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
                                       {"figure-width", required_argument, 0, 'F'},
                                       {"font-size", required_argument, 0, 'F'},
                                       {"no-title", no_argument, 0, 'F'},
                                       {"style", required_argument, 0, 'F'},
                                       {0, 0, 0, 0}};
  const char *out = "trainsim-out", *executor = NULL;
  const char **sets = ts__xcalloc((size_t)argc + 1, sizeof *sets);
  int n_sets = 0, quiet = 0, c;
  unsigned formats = TS_FORMATS_ALL;
  ts_gantt_opts_t fig = {0}; /* the figure options (README "gantt.svg") */
  ts_err_t err = {0};
  optind = 1;
  opterr = 0;
  int li = 0;
  while ((c = getopt_long(argc, argv, ":o:s:qf:", opts, &li)) != -1) {
    if (c == 'F') { /* gantt.svg and report.html's figure: run only */
      if (compare) ts_err_set(&err, EX_USAGE, "%s: --%s applies to run only", names[cmd], opts[li].name);
      if (compare || ts_gantt_opt_set(&fig, opts[li].name, optarg, &err)) {
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
    else {
      free(sets);
      return option_error(names[cmd], c, argv);
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
                              : ts_compare(path, sets, n_sets, ex, out, quiet, &err);
    free(sets);
    return rc ? die(&err) : 0;
  }
  ts_job_t *job = NULL;
  ts_outcome_t o;
  int rc = ts_job_load(path, sets, n_sets, &job, &err);
  free(sets);
  if (rc) return die(&err);
  rc = ts_execute(job, NULL, ex, &o, &err);
  if (!rc) rc = ts_write_outputs_fig(&o.r, out, formats, &fig, &err);
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
      {0, 0, 0, 0}};
  ts_platgen_t g;
  ts_err_t err = {0};
  /* Start from the DGX-A100 preset's figures; options override them. */
  if (ts_platgen_preset("dgx-a100-2node", &g, &err)) return die(&err);
  const char *out = NULL, *calib = NULL;
  int c, rc = 0, fabric_given = 0;
  optind = 1;
  opterr = 0;
  while (!rc && (c = getopt_long(argc, argv, ":o:", opts, NULL)) != -1) {
    double v;
    switch (c) {
      case 'P':
        if (ts_platgen_preset(optarg, &g, &err)) return die(&err);
        break;
      case 'n':
      case 'g':
        if ((rc = parse_pos(c == 'n' ? "--nodes" : "--gpus", optarg, &v))) break;
        if (v != (int)v || v > 65536) return usage_error("--nodes and --gpus take whole numbers up to 65536");
        if (c == 'n') g.nodes = (int)v; else g.gpus = (int)v;
        break;
      case 1: rc = parse_pos("--gpu-speed", optarg, &g.gpu_speed); break;
      case 2: rc = parse_pos("--gpu-peak", optarg, &g.gpu_peak_flops); break;
      case 3: rc = parse_pos("--gpu-memory", optarg, &g.gpu_memory); break;
      case 22: rc = parse_pos("--gpu-memory-bw", optarg, &g.gpu_memory_bw); break;
      case 4: rc = parse_pos("--nvlink-bw", optarg, &g.nvlink_bw); break;
      case 5: rc = parse_pos("--nvlink-lat", optarg, &g.nvlink_lat); break;
      case 6: rc = parse_pos("--ib-bw", optarg, &g.ib_bw); break;
      case 7: rc = parse_pos("--ib-lat", optarg, &g.ib_lat); break;
      case 8: rc = parse_pos("--fabric-bw", optarg, &g.fabric_bw); fabric_given = 1; break;
      case 9: rc = parse_pos("--fabric-lat", optarg, &g.fabric_lat); break;
      case 10: calib = optarg; break;
      case 11: snprintf(g.name, sizeof g.name, "%s", optarg); break;
      case 12: g.pcie_only = 1; break;
      case 13: rc = parse_pos("--uplink-bw", optarg, &g.uplink_bw); break;
      case 14: rc = parse_pos("--socket-bw", optarg, &g.socket_bw); break;
      case 15: rc = parse_pos("--dram-bw", optarg, &g.dram_bw); break;
      case 16: rc = parse_pos("--uplink-lat", optarg, &g.uplink_lat); break;
      case 17: rc = parse_pos("--socket-lat", optarg, &g.socket_lat); break;
      case 18: rc = parse_pos("--dram-lat", optarg, &g.dram_lat); break;
      case 19: rc = parse_pos("--host-memory", optarg, &g.host_memory); break;
      case 20:
      case 21:
        if ((rc = parse_pos(c == 20 ? "--gpus-per-switch" : "--sockets", optarg, &v))) break;
        if (v != (int)v || v > 65536) return usage_error("--gpus-per-switch and --sockets take whole numbers");
        if (c == 20) g.gpus_per_switch = (int)v; else g.sockets = (int)v;
        break;
      case 'o': out = optarg; break;
      default: return option_error("platform", c, argv);
    }
  }
  if (rc) return rc;
  if (optind < argc) return usage_error("platform takes no positional argument");
  /* The fabric is non-blocking unless told otherwise: every NIC at full rate. */
  if (!fabric_given) g.fabric_bw = g.nodes * (g.topology == 1 ? 1 : g.gpus) * g.ib_bw;
  if (g.topology != 1 && (g.uplink_bw > 0 || g.socket_bw > 0 || g.dram_bw > 0 || g.uplink_lat > 0 ||
                          g.socket_lat > 0 || g.dram_lat > 0 || g.host_memory > 0 ||
                          g.gpus_per_switch > 0 || g.sockets > 0))
    return usage_error("--uplink-*, --socket-*, --dram-*, --host-memory, --gpus-per-switch and --sockets need a PCIe-tree preset (commodity-8gpu, commodity-2node, h200-pcie-8gpu)");
  if (calib && ts_platgen_speed_from_calibration(calib, &g, &err)) return die(&err);
  if (ts_platgen_check(&g, &err)) return die(&err);
  if (!out) return ts_platgen_write(&g, stdout);
  if (ts_write_atomic(out, write_platform, &g, &err)) return die(&err);
  return 0;
}

static int cmd_bench(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"repeat", required_argument, 0, 'r'},
                                       {0, 0, 0, 0}};
  const char *dir = "results";
  int repeat = 5, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":o:r:", opts, NULL)) != -1) {
    if (c == 'o') {
      dir = optarg;
    } else if (c == 'r') {
      char *end;
      long v = strtol(optarg, &end, 10);
      if (*end || v < 1 || v > 100) return usage_error("bench: --repeat takes 1 to 100");
      repeat = (int)v;
    } else {
      return option_error("bench", c, argv);
    }
  }
  if (optind < argc) return usage_error("bench takes no positional argument");
  return ts_bench_run(dir, repeat);
}

int main(int argc, char **argv) {
  if (argc < 2) return usage_error("no command given");
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    fputs(usage, stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    printf("trainsim %s\n", TS_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
  if (!strcmp(cmd, "compare")) return cmd_compare(argc - 1, argv + 1);
  if (!strcmp(cmd, "place")) return cmd_place(argc - 1, argv + 1);
  if (!strcmp(cmd, "sweep")) return ts_sweep_main(argc - 1, argv + 1);
  if (!strcmp(cmd, "validate")) return ts_validate_main(argc - 1, argv + 1);
  if (!strcmp(cmd, "platform")) return cmd_platform(argc - 1, argv + 1);
  if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
  fprintf(stderr, "trainsim: error: unknown command '%s' (see trainsim --help)\n", cmd);
  return EX_USAGE;
}
