/*
** ts_cli_help.h: the command line's help (`trainsim --help`, `trainsim
** COMMAND --help` or -h, `trainsim help COMMAND`) and its "did you mean"
** errors for unknown options and commands.  The help text lives in
** cli_help.c, one entry per command; the man page src/cli/trainsim.1 is
** tested against it (tests/test_help.c).
*/
#ifndef TS_CLI_HELP_H
#define TS_CLI_HELP_H

#include <getopt.h>
#include <stdio.h>

/* What a command returns after it printed its help on stdout (asked with
** --help or -h among its options): main exits 0. */
#define TS_CLI_HELP_SHOWN (-1)

/* The i-th command's name ("run", "compare", ...), NULL past the end. */
const char *ts__cli_command_at(int i);

/* Writes the help of command cmd to f, or the whole help (every command,
** the registered schedules, the job file's fields) when cmd is NULL.
** Returns 0, or EX_USAGE after printing the unknown-command error when cmd
** is not a command. */
int ts__cli_help(const char *cmd, FILE *f);

/* For a getopt_long answer '?' of command cmd (opterr = 0, so optind and
** optopt describe the option; opts is the command's table): when the option
** is --help or -h, prints cmd's help on stdout and returns
** TS_CLI_HELP_SHOWN; otherwise prints the one-line error "trainsim: error:
** CMD: unknown option 'OPT'" (with "; did you mean '--NAME'?" when a long
** option of opts is near) and returns EX_USAGE. */
int ts__cli_unknown_option(const char *cmd, char **argv, const struct option *opts);

/* Prints the one-line error for an unknown command word (with the nearest
** command when one is near) and returns EX_USAGE. */
int ts__cli_unknown_command(const char *word);

#endif /* TS_CLI_HELP_H */
