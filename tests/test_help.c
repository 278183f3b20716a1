/*
** test_help.c: the command line's help, its "did you mean" errors and the
** manual page.
**   - every command answers --help, -h and `trainsim help CMD` with the same
**     text on stdout, exit 0, nothing on stderr, nothing written (also when
**     --help follows a job file and -o);
**   - `trainsim --help` holds every command's help, every registered
**     schedule with its title and every job field of the loader's schema;
**   - every long option a command's help names is one the command accepts;
**   - unknown commands, options, job fields and --set paths are one line
**     naming the nearest known name, with the exit codes of before; without
**     a near name the message is the one of before, byte for byte;
**   - ts__suggest itself (distances, case, prefixes, exact names);
**   - the man page names exactly the options of each command's --help, every
**     registered schedule and every job field (and nothing unknown), renders
**     without groff warnings, and `cmake --install` puts it under
**     share/man/man1.
*/
#include <ctype.h>
#include <sys/stat.h>

#include "job/job_internal.h"
#include "ts_cli_help.h"
#include "ts_runtime.h"
#include "tshelp.h"
#include "tsunit.h"

#define JOB "tests/jobs/good-synthetic.json"
#define MAN TS_SOURCE_DIR "/src/cli/trainsim.1"

/* Runs trainsim with args; returns the exit status, fills out and err
** (malloc'd, never NULL). */
static int cli(const char *args, char **out, char **err) {
  int rc = th_cli(args, out, err);
  if (!*out) *out = ts__xcalloc(1, 1);
  if (!*err) *err = ts__xcalloc(1, 1);
  return rc;
}

/* Command c's help as ts__cli_help writes it (malloc'd), in this process:
** the CLI runs of help_every_command check that trainsim prints the same. */
static char *help_of(const char *c) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(ts__cli_help(c, f), 0);
  fclose(f);
  return buf;
}

/* ---- option tokens -------------------------------------------------- */

/* A set of option tokens ("--set", "-o"), at most 64 of 32 characters. */
typedef struct {
  int n;
  char s[64][32];
} tokset_t;

static bool tok_has(const tokset_t *t, const char *s) {
  for (int i = 0; i < t->n; i++)
    if (!strcmp(t->s[i], s)) return true;
  return false;
}

/* Adds every option token of text: "--name" (letters, digits, '-') or "-x"
** (one letter not followed by a letter, digit or '-'), each not preceded
** by a letter, digit, '-' or '/' (so "zb-h1", "--uplink-bw/-lat" give
** only "--uplink-bw"). */
static void tok_scan(tokset_t *t, const char *text) {
  for (const char *p = text; *p; p++) {
    if (*p != '-' || (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '-' || p[-1] == '/')))
      continue;
    const char *q = p + 1;
    size_t n;
    if (*q == '-' && isalpha((unsigned char)q[1])) {
      n = 2 + strspn(q + 1, "abcdefghijklmnopqrstuvwxyz0123456789-");
    } else if (isalpha((unsigned char)*q) && !isalnum((unsigned char)q[1]) && q[1] != '-') {
      n = 2;
    } else {
      continue;
    }
    while (n > 2 && p[n - 1] == '-') n--;
    char tok[32];
    snprintf(tok, sizeof tok, "%.*s", (int)n, p);
    if (!tok_has(t, tok) && t->n < 64) snprintf(t->s[t->n++], sizeof t->s[0], "%s", tok);
    p += n - 1;
  }
}

/* The man page with roff's font changes removed and "\-" as "-" (malloc'd). */
static char *man_text(void) {
  char *raw = th_slurp(MAN, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(raw);
  char *out = ts__xcalloc(strlen(raw) + 1, 1), *o = out;
  for (const char *p = raw; *p; p++) {
    if (p[0] == '\\' && p[1] == 'f' && p[2]) {
      p += 2;
    } else if (p[0] == '\\' && (p[1] == '-' || p[1] == '&')) {
      if (p[1] == '-') *o++ = '-';
      p++;
    } else {
      *o++ = *p;
    }
  }
  free(raw);
  return out;
}

/* The part of man from the line "head" to the next .SS or .SH line
** (malloc'd), or NULL when man has no such line. */
static char *man_section(const char *man, const char *head) {
  char key[64];
  snprintf(key, sizeof key, "\n%s\n", head);
  const char *a = strstr(man, key);
  if (!a) return NULL;
  a += strlen(key);
  const char *b = a;
  while ((b = strchr(b, '\n')) && strncmp(b, "\n.SS ", 5) && strncmp(b, "\n.SH ", 5)) b++;
  return ts__xstrndup(a, b ? (size_t)(b - a) : strlen(a));
}

/* ---- help ----------------------------------------------------------- */

static void help_every_command(void) {
  char *base = ts__xstrdup("/tmp/ts-help-XXXXXX");
  CU_ASSERT_FATAL(mkdtemp(base) != NULL);
  int n = 0;
  for (int i = 0; ts__cli_command_at(i); i++, n++) {
    const char *c = ts__cli_command_at(i);
    char args[512], want[64], *o1, *e1;
    snprintf(args, sizeof args, "%s --help", c);
    int rc = cli(args, &o1, &e1);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(e1, "");
    snprintf(want, sizeof want, "usage: trainsim %s ", c);
    CU_ASSERT(strncmp(o1, want, strlen(want)) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(o1, "Exit status: 0 success, 64 usage"));
    char *mine = help_of(c);
    CU_ASSERT_STRING_EQUAL(o1, mine);
    free(mine);
    /* its body (after the usage lines) is part of the whole help */
    const char *body = strstr(o1, "\n\n"), *end = strstr(o1, "\nExit status");
    CU_ASSERT_FATAL(body && end && end > body);
    char *b = ts__xstrndup(body + 2, (size_t)(end - body - 2)), *all = help_of(NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(all, b));
    free(b);
    free(all);
    const char *forms[] = {"%s -h", "help %s", "%s " JOB " -o %s/out --help"};
    for (int f = 0; f < 3; f++) {
      char *o2, *e2;
      snprintf(args, sizeof args, forms[f], c, base);
      rc = cli(args, &o2, &e2);
      if (rc || strcmp(o1, o2) || e2[0])
        printf("\n  '%s': exit %d, stderr [%.200s]\n", args, rc, e2);
      CU_ASSERT_EQUAL(rc, 0);
      CU_ASSERT_STRING_EQUAL(o2, o1);
      CU_ASSERT_STRING_EQUAL(e2, "");
      free(o2);
      free(e2);
    }
    char out[600];
    snprintf(out, sizeof out, "%s/out", base);
    struct stat st;
    CU_ASSERT(stat(out, &st) != 0); /* --help wrote nothing */
    free(o1);
    free(e1);
  }
  CU_ASSERT_EQUAL(n, 7); /* run compare place sweep validate platform bench */
  rmdir(base);
  free(base);
}

static void help_lists_everything(void) {
  char *all, *err;
  CU_ASSERT_EQUAL(cli("--help", &all, &err), 0);
  CU_ASSERT_STRING_EQUAL(err, "");
  /* the registry's schedules, each with its title, on a line of its own */
  int n = 0;
  for (int i = 0; ts_schedule_at(i); i++, n++) {
    const ts_schedule_t *s = ts_schedule_at(i);
    char line[256];
    snprintf(line, sizeof line, "\n  %s ", s->name);
    const char *at = strstr(all, line);
    CU_ASSERT_PTR_NOT_NULL(at);
    if (at) CU_ASSERT(strncmp(strchr(at + 3, ' ') + strspn(strchr(at + 3, ' '), " "), s->title,
                              strlen(s->title)) == 0);
  }
  CU_ASSERT(n >= 11);
  const char *jf = strstr(all, "\nJob file: ");
  CU_ASSERT_PTR_NOT_NULL_FATAL(jf);
  CU_ASSERT_PTR_NOT_NULL(strstr(jf, "README \"Job file\""));
  for (int i = 0; ts__job_fields[i]; i++) {
    char w[64];
    snprintf(w, sizeof w, " %s", ts__job_fields[i]);
    const char *at = strstr(jf, w);
    CU_ASSERT(at && (at[strlen(w)] == ',' || at[strlen(w)] == '\n'));
  }
  CU_ASSERT_PTR_NOT_NULL(strstr(all, "trainsim COMMAND --help"));
  char *h2, *e2;
  CU_ASSERT_EQUAL(cli("-h", &h2, &e2), 0);
  CU_ASSERT_STRING_EQUAL(h2, all);
  free(h2);
  free(e2);
  CU_ASSERT_EQUAL(cli("help", &h2, &e2), 0);
  CU_ASSERT_STRING_EQUAL(h2, all);
  free(h2);
  free(e2);
  free(all);
  free(err);
}

/* Every long option in a command's help is accepted by the command: with
** "=1" (or, for an option that takes no argument, alone) before an unknown
** option, the error names the unknown one or the value, never the option. */
static void help_options_are_real(void) {
  int checked = 0;
  for (int i = 0; ts__cli_command_at(i); i++) {
    const char *c = ts__cli_command_at(i);
    char args[256], *o, *e, *h = help_of(c);
    tokset_t t = {0};
    tok_scan(&t, h);
    free(h);
    for (int k = 0; k < t.n; k++) {
      if (t.s[k][1] != '-' || !strcmp(t.s[k], "--help")) continue;
      char bad[128];
      snprintf(args, sizeof args, "%s %s=1 --zz-not-an-option", c, t.s[k]);
      int rc = cli(args, &o, &e);
      snprintf(bad, sizeof bad, "unknown option '%s=1'", t.s[k]);
      if (strstr(e, bad)) { /* no argument: try it alone */
        free(o);
        free(e);
        snprintf(args, sizeof args, "%s %s --zz-not-an-option", c, t.s[k]);
        rc = cli(args, &o, &e);
      }
      snprintf(bad, sizeof bad, "unknown option '%s", t.s[k]);
      if (strstr(e, bad) || (rc != 64 && rc != 65 && rc != 66))
        printf("\n  '%s': exit %d: %.200s\n", args, rc, e);
      CU_ASSERT(strstr(e, bad) == NULL);
      CU_ASSERT(rc == 64 || rc == 65 || rc == 66);
      checked++;
      free(o);
      free(e);
    }
  }
  CU_ASSERT(checked >= 40);
}

/* ---- did you mean --------------------------------------------------- */

typedef struct {
  const char *args;
  int code;
  const char *line; /* the whole of stderr */
} err_case_t;

static void suggestions_and_exit_codes(void) {
  static const err_case_t cases[] = {
      {"rn", 64, "trainsim: error: unknown command 'rn'; did you mean 'run'? (see trainsim --help)\n"},
      {"comapre " JOB, 64,
       "trainsim: error: unknown command 'comapre'; did you mean 'compare'? (see trainsim --help)\n"},
      {"help swep", 64, "trainsim: error: unknown command 'swep'; did you mean 'sweep'? (see trainsim --help)\n"},
      {"--hepl", 64, "trainsim: error: unknown command '--hepl'; did you mean '--help'? (see trainsim --help)\n"},
      {"run " JOB " --exector simgrid", 64,
       "trainsim: error: run: unknown option '--exector'; did you mean '--executor'? (see trainsim --help)\n"},
      {"run " JOB " --fromats=summary", 64,
       "trainsim: error: run: unknown option '--fromats=summary'; did you mean '--formats'? (see trainsim --help)\n"},
      {"compare " JOB " --quite", 64,
       "trainsim: error: compare: unknown option '--quite'; did you mean '--quiet'? (see trainsim --help)\n"},
      {"place " JOB " --ouptut x", 64,
       "trainsim: error: place: unknown option '--ouptut'; did you mean '--output'? (see trainsim --help)\n"},
      {"sweep " JOB " --vray microbatches=1,2", 64,
       "trainsim: error: sweep: unknown option '--vray'; did you mean '--vary'? (see trainsim --help)\n"},
      {"validate " JOB " --rnus 2", 64,
       "trainsim: error: validate: unknown option '--rnus'; did you mean '--runs'? (see trainsim --help)\n"},
      {"platform --nodse 2", 64,
       "trainsim: error: platform: unknown option '--nodse'; did you mean '--nodes'? (see trainsim --help)\n"},
      {"bench --repeats 2", 64,
       "trainsim: error: bench: unknown option '--repeats'; did you mean '--repeat'? (see trainsim --help)\n"},
      {"run " JOB " --hlep", 64,
       "trainsim: error: run: unknown option '--hlep'; did you mean '--help'? (see trainsim --help)\n"},
      {"run tests/jobs/bad-unknown-field.json", 65,
       "trainsim: error: tests/jobs/bad-unknown-field.json: microbatch: unknown field; did you mean "
       "'microbatches'?\n"},
      {"run tests/jobs/bad-unknown-model-field.json", 65,
       "trainsim: error: tests/jobs/bad-unknown-model-field.json: model.hiden: unknown field; did you "
       "mean 'hidden'?\n"},
      {"run " JOB " --set microbatch=4", 64,
       "trainsim: error: " JOB ": --set 'microbatch': unknown job field 'microbatch'; did you mean "
       "'microbatches'?\n"},
      {"run " JOB " --set model.forward=1", 64,
       "trainsim: error: " JOB ": --set 'model.forward': unknown synthetic model field 'forward'; did "
       "you mean 'forward_s'?\n"},
      {"run " JOB " --set 'platform.link.ib*.bandwith=1GBps'", 64,
       "trainsim: error: " JOB ": --set 'platform.link.ib*.bandwith': unknown link field 'bandwith'; "
       "did you mean 'bandwidth'?\n"},
      /* nothing near: the messages of before, byte for byte */
      {"frob", 64, "trainsim: error: unknown command 'frob' (see trainsim --help)\n"},
      {"run " JOB " --bogus", 64, "trainsim: error: run: unknown option '--bogus' (see trainsim --help)\n"},
      {"run " JOB " -x", 64, "trainsim: error: run: unknown option '-x' (see trainsim --help)\n"},
      {"run " JOB " --set", 64,
       "trainsim: error: run: option '--set' requires an argument (see trainsim --help)\n"},
      {"validate " JOB " --reps", 64,
       "trainsim: error: validate: option requires an argument: '--reps' (see trainsim --help)\n"},
      {"sweep " JOB " --bogus", 64, "trainsim: error: sweep: unknown option '--bogus' (see trainsim --help)\n"},
      {"run " JOB " --set foo=1", 64,
       "trainsim: error: " JOB ": --set 'foo': unknown job field 'foo'\n"},
      {"help run extra", 64,
       "trainsim: error: help takes at most one command (see trainsim --help)\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *o, *e;
    int rc = cli(cases[i].args, &o, &e);
    if (rc != cases[i].code || strcmp(e, cases[i].line))
      printf("\n  '%s': exit %d (want %d)\n   got  %s   want %s", cases[i].args, rc, cases[i].code, e,
             cases[i].line);
    CU_ASSERT_EQUAL(rc, cases[i].code);
    CU_ASSERT_STRING_EQUAL(e, cases[i].line);
    CU_ASSERT_STRING_EQUAL(o, "");
    free(o);
    free(e);
  }
}

static void suggest_unit(void) {
  static const char *const names[] = {"microbatches", "micro_batch_size", "schedule", "stages",
                                      "seq_len", "zero", NULL};
  CU_ASSERT_STRING_EQUAL(ts__suggest("microbatch", names), "microbatches");
  CU_ASSERT_STRING_EQUAL(ts__suggest("MicroBatches", names), "microbatches"); /* case */
  CU_ASSERT_STRING_EQUAL(ts__suggest("shcedule", names), "schedule");         /* a swap */
  CU_ASSERT_STRING_EQUAL(ts__suggest("stage", names), "stages");
  CU_ASSERT_STRING_EQUAL(ts__suggest("seq", names), "seq_len");     /* the one name it starts */
  CU_ASSERT_PTR_NULL(ts__suggest("micro", names));                  /* two names start with it */
  CU_ASSERT_PTR_NULL(ts__suggest("schedule", names));               /* known: no suggestion */
  CU_ASSERT_PTR_NULL(ts__suggest("bogus", names));
  CU_ASSERT_PTR_NULL(ts__suggest("", names));
  CU_ASSERT_STRING_EQUAL(ts__suggest("zer0", names), "zero");
  CU_ASSERT_PTR_NULL(ts__suggest("xy", names));
  static const char *const one[] = {"a", NULL};
  CU_ASSERT_PTR_NULL(ts__suggest("b", one)); /* every character differs */
  CU_ASSERT_PTR_NULL(ts__suggest_n("stagesXYZ", 6, names)); /* "stages": known */
  CU_ASSERT_STRING_EQUAL(ts__suggest_n("stagexyz", 5, names), "stages");
}

/* ---- the man page ----------------------------------------------------- */

static void man_agrees_with_help(void) {
  char *man = man_text();
  for (int i = 0; ts__cli_command_at(i); i++) {
    const char *c = ts__cli_command_at(i);
    char head[64], *o = help_of(c);
    snprintf(head, sizeof head, ".SS %s", c);
    char *sec = man_section(man, head);
    CU_ASSERT_PTR_NOT_NULL(sec);
    if (!sec) {
      printf("\n  the man page has no section '%s'\n", head);
      continue;
    }
    tokset_t th = {0}, tm = {0};
    tok_scan(&th, o);
    tok_scan(&tm, sec);
    CU_ASSERT(th.n >= 3);
    for (int k = 0; k < th.n; k++) {
      if (!tok_has(&tm, th.s[k])) printf("\n  %s: '%s' is in --help, not in the man page\n", c, th.s[k]);
      CU_ASSERT(tok_has(&tm, th.s[k]));
    }
    for (int k = 0; k < tm.n; k++) {
      if (!tok_has(&th, tm.s[k])) printf("\n  %s: '%s' is in the man page, not in --help\n", c, tm.s[k]);
      CU_ASSERT(tok_has(&th, tm.s[k]));
    }
    free(sec);
    free(o);
  }
  free(man);
}

/* The .TP entries of a man section: the word after each ".TP\n.B ". */
static int tp_names(const char *sec, char names[][64], int cap) {
  int n = 0;
  for (const char *p = sec; (p = strstr(p, ".TP\n.B ")) && n < cap; p++)
    sscanf(p + 7, "%63s", names[n++]);
  return n;
}

static void man_lists_schedules_and_fields(void) {
  char *man = man_text();
  char *sched = man_section(man, ".SH SCHEDULES"), *job = man_section(man, ".SH JOB FILE");
  CU_ASSERT_PTR_NOT_NULL_FATAL(sched);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  char names[64][64];
  int n = tp_names(sched, names, 64), n_reg = 0;
  for (int k = 0; k < n; k++) {
    if (!ts_schedule_find(names[k])) printf("\n  the man page lists an unknown schedule '%s'\n", names[k]);
    CU_ASSERT_PTR_NOT_NULL(ts_schedule_find(names[k]));
  }
  for (int i = 0; ts_schedule_at(i); i++, n_reg++) {
    bool found = false;
    for (int k = 0; k < n; k++) found |= !strcmp(names[k], ts_schedule_at(i)->name);
    if (!found) printf("\n  the man page does not list the schedule '%s'\n", ts_schedule_at(i)->name);
    CU_ASSERT(found);
  }
  CU_ASSERT_EQUAL(n, n_reg);
  n = tp_names(job, names, 64);
  int n_fields = 0;
  for (int k = 0; k < n; k++) {
    if (!ts__in_list(ts__job_fields, names[k])) printf("\n  the man page lists an unknown job field '%s'\n", names[k]);
    CU_ASSERT(ts__in_list(ts__job_fields, names[k]));
  }
  for (int i = 0; ts__job_fields[i]; i++, n_fields++) {
    bool found = false;
    for (int k = 0; k < n; k++) found |= !strcmp(names[k], ts__job_fields[i]);
    if (!found) printf("\n  the man page does not list the job field '%s'\n", ts__job_fields[i]);
    CU_ASSERT(found);
  }
  CU_ASSERT_EQUAL(n, n_fields);
  /* the command sections are exactly the commands */
  const char *cs = strstr(man, "\n.SH COMMANDS\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(cs);
  int n_ss = 0;
  for (const char *p = cs; (p = strstr(p, "\n.SS ")) && p < strstr(cs, "\n.SH SCHEDULES"); p++) n_ss++;
  int n_cmd = 0;
  while (ts__cli_command_at(n_cmd)) n_cmd++;
  CU_ASSERT_EQUAL(n_ss, n_cmd);
  free(sched);
  free(job);
  free(man);
}

/* groff renders the page without warnings (when groff is installed), and
** `cmake --install` puts it, unchanged, under share/man/man1. */
static void man_renders_and_installs(void) {
  if (system("command -v groff >/dev/null 2>&1") == 0) {
    int st = system("groff -man -ww -z '" MAN "' 2>/tmp/ts-help-groff.txt && ! test -s /tmp/ts-help-groff.txt");
    CU_ASSERT(st == 0);
    if (st) CU_ASSERT(system("cat /tmp/ts-help-groff.txt") >= 0);
    unlink("/tmp/ts-help-groff.txt");
  } else {
    printf("\n  note: groff is not installed; the page's rendering was not checked\n");
  }
  const char *build = getenv("TS_BUILD_DIR");
  CU_ASSERT_PTR_NOT_NULL_FATAL(build);
  char *pre = ts__xstrdup("/tmp/ts-help-inst-XXXXXX");
  CU_ASSERT_FATAL(mkdtemp(pre) != NULL);
  char cmd[2048], path[1024];
  snprintf(cmd, sizeof cmd, "cmake --install '%s' --prefix '%s' >/dev/null", build, pre);
  CU_ASSERT(system(cmd) == 0);
  snprintf(path, sizeof path, "%s/share/man/man1/trainsim.1", pre);
  char *inst = th_slurp(path, NULL), *src = th_slurp(MAN, NULL);
  CU_ASSERT_PTR_NOT_NULL(inst);
  if (inst && src) CU_ASSERT_STRING_EQUAL(inst, src);
  snprintf(path, sizeof path, "%s/bin/trainsim", pre);
  CU_ASSERT(access(path, X_OK) == 0);
  free(inst);
  free(src);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", pre);
  CU_ASSERT(system(cmd) == 0);
  free(pre);
}

TS_TESTS{TS_TEST(help_every_command),      TS_TEST(help_lists_everything),
         TS_TEST(help_options_are_real),   TS_TEST(suggestions_and_exit_codes),
         TS_TEST(suggest_unit),            TS_TEST(man_agrees_with_help),
         TS_TEST(man_lists_schedules_and_fields), TS_TEST(man_renders_and_installs)};

TS_TEST_MAIN("help")
