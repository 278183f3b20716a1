/*
** ts_sweep.h: `trainsim sweep`, what-if sweeps over --set paths.
**
** Usage text for main.c (the lines to add to its usage[] string):
**
**   "       trainsim sweep [JOB.json] --vary PATH=V1,V2,... [--vary ...] [-o DIR] [-j N]\n"
**   "                      [--metric NAME] [--set PATH=VALUE]... [--emit-jobs DIR2] [--quiet]\n"
**   "       trainsim sweep --collect DIR2 [-o DIR] [--metric NAME] [--quiet]\n"
**
** and, after the "compare" paragraph:
**
**   "sweep     run JOB.json at every point of the cartesian product of the --vary\n"
**   "          lists (any --set path; values split at commas outside [] {} \"\")\n"
**   "          in parallel worker processes and write sweep.csv (one row per point,\n"
**   "          in cartesian order: the varied values, status, the summary metrics)\n"
**   "          and sweep.svg (--metric against the first varied path, one line per\n"
**   "          value of the others) into DIR (default ./trainsim-sweep).  Re-running\n"
**   "          the same command resumes: points already in DIR are not recomputed.\n"
**   "            --vary PATH=V1,V2,...  a varied path and its values (repeatable)\n"
**   "            -j, --jobs N         worker processes (default: online cores)\n"
**   "            --metric NAME        plotted metric (default iteration_time_s;\n"
**   "                                 any numeric column of sweep.csv)\n"
**   "            --emit-jobs DIR2     run nothing; write DIR2/points.csv and\n"
**   "                                 DIR2/commands.txt (one `trainsim run` per\n"
**   "                                 line) for GNU parallel or a SLURM array\n"
**   "            --collect DIR2       merge the emitted points' results into DIR\n"
**   "            -q, --quiet          no progress and no table\n"
*/
#ifndef TS_SWEEP_H
#define TS_SWEEP_H

#include "trainsim.h"

/* Runs the `sweep` command.  argv[0] is "sweep"; the options follow as on
** the command line.  Prints errors as one line "trainsim: error: ..." on
** stderr and returns 0 or a sysexits.h code (64 usage, 65 bad data or a
** sweep whose every point failed, its results written; 66 missing input,
** 73 cannot create an output, 74 I/O error). */
int ts_sweep_main(int argc, char **argv);

#endif
