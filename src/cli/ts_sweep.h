/*
** ts_sweep.h: `trainsim sweep`, what-if sweeps over --set paths.
**
** Its help text (synopsis, options) is the "sweep" entry of cli_help.c.
*/
#ifndef TS_SWEEP_H
#define TS_SWEEP_H

#include "trainsim.h"

/* Runs the `sweep` command.  argv[0] is "sweep"; the options follow as on
** the command line.  Prints errors as one line "trainsim: error: ..." on
** stderr and returns 0 or a sysexits.h code (64 usage, 65 bad data or a
** sweep whose every point failed, its results written; 66 missing input,
** 73 cannot create an output, 74 I/O error), or TS_CLI_HELP_SHOWN
** (ts_cli_help.h) after printing its help for --help or -h. */
int ts_sweep_main(int argc, char **argv);

#endif
