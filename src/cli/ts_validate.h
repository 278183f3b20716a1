/*
** ts_validate.h: `trainsim validate`, the simulator against the CPU
** reference executor on this machine.
*/
#ifndef TS_VALIDATE_H
#define TS_VALIDATE_H

/* The command:
**   trainsim validate JOB.json [-o DIR] [--set PATH=VALUE]... [--reps N]
**                    [--runs N] [--quiet]
** argv[0] is the command name ("validate"), as main.c passes it to every
** command (argc - 1, argv + 1).  Profiles this machine (each op the fastest
** of --reps timings, default 5), simulates the job's synthetic twin on a
** platform of the measured copy bandwidth, runs the job on the reference
** executor --runs times (default 5; the fastest run is the measurement,
** every run must meet the exact targets), writes DIR/validation.json, DIR/platform.xml,
** DIR/reference/ and DIR/simulated/ (summary.json, timeline.csv, trace.json,
** gantt.svg) and prints the comparison.  Returns 0 when both runs completed
** (whether or not the comparison met its targets: validation.json says), or
** a sysexits code after printing a one-line error, or TS_CLI_HELP_SHOWN
** (ts_cli_help.h) after printing its help for --help or -h. */
int ts_validate_main(int argc, char **argv);

#endif
