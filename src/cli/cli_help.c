/*
** cli_help.c: the help text of every command and how it is printed.
**
** One entry per command: its synopsis (the usage lines) and its body (what
** it does and its options).  `trainsim --help` prints every synopsis, every
** body, the exit status, the schedules of the registry and the job file's
** fields (the loader's schema); `trainsim COMMAND --help` prints that
** command's synopsis and body and the exit status.  The man page
** (src/cli/trainsim.1) documents the same options: tests/test_help.c fails
** when a command's help and its man page section name different options.
**
** Unknown options and commands get "did you mean 'X'?" from ts__suggest.
*/
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "ts_cli_help.h"
#include "ts_internal.h"
#include "ts_runtime.h"
#include "job/job_internal.h"

/* A command's help.  synopsis: its usage lines, each printed after
** "usage: " (the first) or seven spaces, so continuation lines are
** indented to sit under the arguments; body: paragraphs whose first line
** starts with the command's name at column 0, options indented by 12. */
typedef struct help_cmd {
  const char *name, *synopsis, *body;
} help_cmd_t;

static const help_cmd_t cmds[] = {
    {"run",
     "trainsim run [JOB.json] [-o DIR] [-f LIST] [--set PATH=VALUE]... [--executor NAME]\n"
     "             [--figure-width PX] [--font-size PX] [--no-title] [--style STYLE]\n"
     "             [--gantt-devices LIST] [--gantt-max-rows N] [--trace-max-mb MB]\n"
     "             [--paje-max-mb MB] [--devices LIST] [--kinds LIST] [--exact | --fold]\n"
     "             [--quiet]\n",
     "run       simulate one training iteration of JOB.json (the shipped default job\n"
     "          when omitted: GPT-3 2.7B, 1F1B, two DGX-A100-like nodes) and write\n"
     "          summary.json, timeline.csv, trace.json, gantt.svg and report.html\n"
     "          into DIR\n"
     "          (default ./trainsim-out).\n"
     "            -o, --output DIR     output directory\n"
     "            -f, --formats LIST   write only these outputs: comma-separated file\n"
     "                                 names or their stems (summary,gantt.svg), or\n"
     "                                 all; default all but paje.trace\n"
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
     "            --figure-width PX    gantt.svg's width (default 480: 8 pt text at\n"
     "                                 single-column width)\n"
     "            --font-size PX       the figures' text size (default 16)\n"
     "            --no-title           no title and subtitle on the figure\n"
     "            --style STYLE        screen (default) or print (no grid, black text)\n"
     "            --gantt-devices LIST only these devices' rows in gantt.svg (0-7,64)\n"
     "            --gantt-max-rows N   gantt.svg's rows at most (default 64): beyond,\n"
     "                                 identical devices share a row, then rows are\n"
     "                                 chosen evenly, then tiny boxes merge, and the\n"
     "                                 figure says so; 0: every device and box\n"
     "            --trace-max-mb MB    cut trace.json at MB (default 100; 0: no limit)\n"
     "            --paje-max-mb MB     cut paje.trace at MB (default 100; 0: no limit)\n"
     "            --devices LIST       timeline.csv, trace.json and paje.trace hold\n"
     "                                 these devices' events only (0-7,64)\n"
     "            --kinds LIST         ... and these kinds only: timeline.csv's kind\n"
     "                                 names, compute, transfers\n"
     "            --exact              simulate every device (jobs of 256 devices or\n"
     "                                 more fold identical tensor ranks and replicas\n"
     "                                 onto one by default: README \"Symmetry folding\")\n"
     "            --fold               fold them at any size\n"
     "            -q, --quiet          no summary on stdout\n"},
    {"compare",
     "trainsim compare [JOB.json] [-o DIR] [--set PATH=VALUE]... [--executor NAME]\n"
     "                 [--schedules A,B,...] [--exact | --fold] [--quiet]\n",
     "compare   run every applicable schedule on JOB.json (with the adjustments\n"
     "          each schedule's rules need, listed) and write compare.csv and\n"
     "          compare.svg (their Gantt charts on one time axis, rows labelled\n"
     "          with the stages each device holds) into DIR; a schedule that is\n"
     "          the same program on this job as an earlier one is skipped, naming\n"
     "          it; --executor as for run.\n"
     "            --schedules A,B,...  run only these schedules, in this order\n"
     "            -o, --output DIR     output directory (default ./trainsim-out)\n"
     "            --set PATH=VALUE     override a job field or platform figure, as for run\n"
     "            --executor NAME      simgrid (default) or reference, as for run\n"
     "            --exact, --fold      as for run\n"
     "            -q, --quiet          no table on stdout\n"},
    {"place",
     "trainsim place JOB.json [-o DIR] [--set PATH=VALUE]... [--quiet]\n",
     "place     for a job whose weights live in host memory (mobius, gpipe-swap),\n"
     "          simulate every round-robin order of the GPUs up to the symmetry of\n"
     "          their mapping_groups and write place.csv (best first) and the\n"
     "          outputs of the best placement into DIR.\n"
     "            -o, --output DIR     output directory (default ./trainsim-out)\n"
     "            --set PATH=VALUE     override a job field or platform figure, as for run\n"
     "            -q, --quiet          no table on stdout\n"},
    {"sweep",
     "trainsim sweep [JOB.json] --vary PATH=V1,V2,... [--vary ...] [-o DIR] [-j N]\n"
     "               [--metric NAME] [--set PATH=VALUE]... [--emit-jobs DIR2] [--quiet]\n"
     "trainsim sweep --collect DIR2 [-o DIR] [--metric NAME] [--quiet]\n",
     "sweep     run JOB.json at every point of the cartesian product of the --vary\n"
     "          lists (any --set path; values split at commas outside [] {} \"\")\n"
     "          in parallel worker processes and write sweep.csv (one row per point,\n"
     "          in cartesian order: the varied values, status, the summary metrics)\n"
     "          and sweep.svg (--metric against the first varied path, one line per\n"
     "          value of the others) into DIR (default ./trainsim-sweep).  Re-running\n"
     "          the same command resumes: points already in DIR are not recomputed.\n"
     "            --vary PATH=V1,V2,...  a varied path and its values (repeatable)\n"
     "            -o, --output DIR     output directory\n"
     "            -j, --jobs N         worker processes (default: online cores)\n"
     "            --metric NAME        plotted metric (default iteration_time_s;\n"
     "                                 any numeric column of sweep.csv)\n"
     "            --set PATH=VALUE     a fixed override of every point, as for run\n"
     "            --emit-jobs DIR2     run nothing; write DIR2/points.csv and\n"
     "                                 DIR2/commands.txt (one `trainsim run` per\n"
     "                                 line) for GNU parallel or a SLURM array\n"
     "            --collect DIR2       merge the emitted points' results into DIR\n"
     "            -q, --quiet          no progress and no table\n"},
    {"validate",
     "trainsim validate JOB.json [-o DIR] [--set PATH=VALUE]... [--reps N] [--runs N] [--quiet]\n",
     "validate  run JOB.json (a small transformer) on the CPU reference executor, one\n"
     "          thread per device, and on the simulator with this machine's profiled op\n"
     "          times; write validation.json, platform.xml, reference/ and simulated/\n"
     "          into DIR (default ./trainsim-out) and print the comparison.\n"
     "            -o, --output DIR     output directory\n"
     "            --set PATH=VALUE     override a job field, as for run\n"
     "            --reps N             timed repetitions of each profiled op, the\n"
     "                                 fastest kept (1 to 100, default 5)\n"
     "            --runs N             reference runs, the fastest the measurement\n"
     "                                 (1 to 100, default 5)\n"
     "            --exact              simulate every device, as for run\n"
     "            -q, --quiet          no comparison on stdout\n"},
    {"platform",
     "trainsim platform (--preset NAME | --nodes N --gpus G [figures]) [-o FILE]\n",
     "platform  write a SimGrid platform (DTD 4.1) for N nodes x G GPUs: NVLink\n"
     "          domains, one NIC per GPU on a 2- or 3-tier fat tree (README Platforms).\n"
     "            --preset NAME        dgx-a100-2node, hgx-h200, pcie-4gpu, commodity-8gpu,\n"
     "                                 commodity-2node, h200-pcie-8gpu, dgx-a100-superpod,\n"
     "                                 dgx-h100, gb200-nvl72 (--nodes resizes one)\n"
     "            --nodes N --gpus G   cluster shape\n"
     "            --gpu-speed F --gpu-peak F --gpu-memory BYTES --gpu-memory-bw B\n"
     "            --gemm-curve NAME    a100, h100, h200 or none: the GEMM efficiency\n"
     "                                 curve the hosts name (--gpu-speed or --gpu-peak\n"
     "                                 without it: none)\n"
     "            --nvlink-bw B --nvlink-lat S --ib-bw B --ib-lat S\n"
     "            --nic-pcie-bw B --nic-pcie-lat S --fabric-lat S (each trunk link)\n"
     "                                 B needs a unit (200Gbps, 25GBps); S: 2us or s\n"
     "            --nvlink-domain N    GPUs per NVLink domain (8 a node, 72 an NVL72)\n"
     "            --tiers N --rails on|off   2 or 3 tiers; rail-optimised or not\n"
     "            --leaf-ports N --su-nodes N   NIC ports a leaf; nodes a scalable unit\n"
     "            --oversub-leaf R --oversub-spine R   down:up ratios (> 0, 1 non-blocking)\n"
     "            --fabric-bw B --uplink-bw B --uplink-lat S --socket-bw B --socket-lat S\n"
     "            --dram-bw B --dram-lat S --host-memory BYTES\n"
     "            --gpus-per-switch N --sockets N   (PCIe-tree presets only)\n"
     "            --pcie-only          GPUs talk over PCIe only (no NVLink)\n"
     "            --name NAME          the platform's name (a comment in the XML)\n"
     "            --calibration FILE   sustained GPU speed from a calibration JSON\n"
     "            -o, --output FILE    output file (default stdout; written atomically)\n"},
    {"bench",
     "trainsim bench [-o DIR] [--repeat N] [--case CASE]\n",
     "bench     time the p=64, m=512 1F1B benchmark next to a bare SimGrid loop\n"
     "          of the same pattern and write bench.json into DIR\n"
     "          (default results/).\n"
     "            -o, --output DIR     output directory\n"
     "            --repeat N           timed runs (1 to 100, default 5)\n"
     "            --case CASE          p64 (default), curve (seconds per event and\n"
     "                                 memory per device for p = 8 to 4096:\n"
     "                                 bench-curve.json) or allreduce (a 1 GiB\n"
     "                                 ring all-reduce over 1024 GPUs:\n"
     "                                 bench-allreduce.json)\n"},
};
enum { N_CMDS = sizeof cmds / sizeof *cmds };

static const char exit_status[] =
    "Exit status: 0 success, 64 usage, 65 bad input data, 66 missing input,\n"
    "70 schedule error or deadlock, 73 cannot create output, 74 I/O error.\n";

const char *ts__cli_command_at(int i) { return i >= 0 && i < N_CMDS ? cmds[i].name : NULL; }

/* Prints synopsis lines, the first after first ("usage: " or seven spaces),
** the others after seven spaces. */
static void print_synopsis(FILE *f, const char *synopsis, const char *first) {
  const char *prefix = first;
  for (const char *s = synopsis; *s;) {
    size_t n = strcspn(s, "\n");
    fprintf(f, "%s%.*s\n", prefix, (int)n, s);
    prefix = "       ";
    s += n + (s[n] == '\n');
  }
}

/* Prints names (NULL-terminated) separated by ", " and wrapped before
** column 80, each line after indent. */
static void print_wrapped(FILE *f, const char *indent, const char *const *names) {
  size_t col = 0;
  for (int i = 0; names[i]; i++) {
    size_t len = strlen(names[i]) + (names[i + 1] ? 1 : 0);
    if (col && col + 1 + len > 79) {
      fputc('\n', f);
      col = 0;
    }
    col += (size_t)fprintf(f, "%s%s%s", col ? " " : indent, names[i], names[i + 1] ? "," : "");
  }
  if (col) fputc('\n', f);
}

/* The whole help: every command, the schedules and the job fields. */
static void print_all(FILE *f) {
  for (int i = 0; i < N_CMDS; i++) print_synopsis(f, cmds[i].synopsis, i ? "       " : "usage: ");
  fputs("       trainsim COMMAND --help   (or -h, or trainsim help COMMAND: one command)\n"
        "       trainsim --help | --version\n\n",
        f);
  for (int i = 0; i < N_CMDS; i++) fputs(cmds[i].body, f);
  fprintf(f, "\n%s", exit_status);
  fputs("\nSchedules (the job's \"schedule\"; README \"Comparing schedules\"):\n", f);
  size_t w = 0;
  for (int i = 0; ts_schedule_at(i); i++)
    if (strlen(ts_schedule_at(i)->name) > w) w = strlen(ts_schedule_at(i)->name);
  for (int i = 0; ts_schedule_at(i); i++) {
    const ts_schedule_t *s = ts_schedule_at(i);
    fprintf(f, "  %-*s  %s\n", (int)w, s->name, s->title ? s->title : "");
  }
  fputs("\nJob file: a JSON object (README \"Job file\": each field's meaning and\n"
        "default; unknown fields are errors) with the fields\n",
        f);
  print_wrapped(f, "  ", ts__job_fields);
  fputs("\nSee also man trainsim, and README.md.\n", f);
}

int ts__cli_help(const char *cmd, FILE *f) {
  if (!cmd) {
    print_all(f);
    return 0;
  }
  for (int i = 0; i < N_CMDS; i++)
    if (!strcmp(cmds[i].name, cmd)) {
      print_synopsis(f, cmds[i].synopsis, "usage: ");
      fprintf(f, "\n%s\n%s", cmds[i].body, exit_status);
      return 0;
    }
  return ts__cli_unknown_command(cmd);
}

int ts__cli_unknown_option(const char *cmd, char **argv, const struct option *opts) {
  const char *arg = argv[optind - 1];
  if (optopt == 'h' || !strcmp(arg, "--help")) {
    ts__cli_help(cmd, stdout);
    return TS_CLI_HELP_SHOWN;
  }
  const char *near = NULL;
  if (optopt == 0 && !strncmp(arg, "--", 2)) { /* an unknown long option */
    int n = 0;
    while (opts[n].name) n++;
    const char **names = ts__xcalloc((size_t)n + 2, sizeof *names);
    for (int i = 0; i < n; i++) names[i] = opts[i].name;
    names[n] = "help";
    near = ts__suggest_n(arg + 2, strcspn(arg + 2, "="), names);
    if (near)
      fprintf(stderr, "trainsim: error: %s: unknown option '%s'; did you mean '--%s'? (see trainsim --help)\n",
              cmd, arg, near);
    free(names);
  }
  if (!near) fprintf(stderr, "trainsim: error: %s: unknown option '%s' (see trainsim --help)\n", cmd, arg);
  return EX_USAGE;
}

int ts__cli_unknown_command(const char *word) {
  const char *names[N_CMDS + 4];
  for (int i = 0; i < N_CMDS; i++) names[i] = cmds[i].name;
  names[N_CMDS] = "help";
  names[N_CMDS + 1] = "--help";
  names[N_CMDS + 2] = "--version";
  names[N_CMDS + 3] = NULL;
  const char *near = ts__suggest(word, names);
  if (near)
    fprintf(stderr, "trainsim: error: unknown command '%s'; did you mean '%s'? (see trainsim --help)\n",
            word, near);
  else
    fprintf(stderr, "trainsim: error: unknown command '%s' (see trainsim --help)\n", word);
  return EX_USAGE;
}
