/*
** test_atomic.c: outputs are all old or all new (README "Outputs"), through
** the trainsim command in $TRAINSIM:
**   - a run killed (SIGKILL) at each commit step (the TRAINSIM_TEST_STOP_AT
**     hook) and at 20 fixed-seed random moments leaves DIR with the old
**     job's files or the new job's, a user's file kept, and no temporary
**     after the next run;
**   - SIGTERM during the writing leaves no temporary at all;
**   - a run whose writing fails leaves no new directory, with the same
**     message whether one process writes or two (ts_atomic.c write_all);
**   - two writer processes write the bytes one writes;
**   - a sweep killed right after its partial file was created, or at each
**     commit step, resumes to a sweep.csv byte-identical to an unkilled one.
*/
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "tshelp.h"
#include "tsunit.h"

#define JOB "examples/synthetic-1f1b.json"
#define NEW_SET "microbatches=256" /* the new job: 2.4 MB of outputs */
#define OLD_SET "microbatches=8"   /* the old job, already in DIR */

static const char *const g_files[] = {"summary.json", "timeline.csv", "trace.json", "gantt.svg",
                                      "report.html"};
#define N_FILES 5

static void __attribute__((constructor)) to_repo_root(void) {
  if (access(JOB, R_OK) != 0 && chdir(TS_SOURCE_DIR) != 0) perror("chdir " TS_SOURCE_DIR);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p) && errno != ENOENT ? -1 : 0;
}
static void rm_rf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void sleep_s(double s) {
  struct timespec t = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
  nanosleep(&t, NULL);
}

/* Starts "$TRAINSIM argv..." in its own process group, output discarded,
** with TRAINSIM_TEST_STOP_AT=stop when stop > 0. */
static pid_t start(int stop, const char *const *argv) {
  const char *bin = getenv("TRAINSIM");
  if (!bin) bin = "build/trainsim";
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    char s[16];
    snprintf(s, sizeof s, "%d", stop);
    if (stop > 0) setenv("TRAINSIM_TEST_STOP_AT", s, 1);
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    const char *a[32] = {bin};
    int n = 1;
    while (argv[n - 1] && n < 31) a[n] = argv[n - 1], n++;
    a[n] = NULL;
    execv(bin, (char *const *)a);
    _exit(127);
  }
  setpgid(pid, pid);
  return pid;
}

static int wait_status(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return st;
}

/* Runs to the end; returns the exit status (-SIG when killed). */
static int run(int stop, const char *const *argv) {
  int st = wait_status(start(stop, argv));
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static char *path_in(const char *dir, const char *name) {
  static char buf[4][1024];
  static int k;
  char *p = buf[k++ % 4];
  snprintf(p, 1024, "%s/%s", dir, name);
  return p;
}

static bool same_file(const char *a, const char *b) {
  size_t na, nb;
  char *x = th_slurp(a, &na), *y = th_slurp(b, &nb);
  bool same = x && y && na == nb && !memcmp(x, y, na);
  free(x);
  free(y);
  return same;
}

/* The entries of dir whose name holds ".tmp." (temporaries). */
static int temporaries(const char *dir, char *names, size_t cap) {
  DIR *d = opendir(dir);
  int n = 0;
  names[0] = 0;
  if (!d) return 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) {
      n++;
      size_t l = strlen(names);
      snprintf(names + l, cap - l, "%s ", e->d_name);
    }
  closedir(d);
  return n;
}

/* The fixture: base/ref-old and base/ref-new hold unkilled runs' outputs. */
typedef struct {
  char base[64], old_ref[128], new_ref[128], dir[128];
} fx_t;

static void fx_init(fx_t *f) {
  snprintf(f->base, sizeof f->base, "/tmp/ts-atomic-XXXXXX");
  CU_ASSERT_FATAL(mkdtemp(f->base) != NULL);
  snprintf(f->old_ref, sizeof f->old_ref, "%s/ref-old", f->base);
  snprintf(f->new_ref, sizeof f->new_ref, "%s/ref-new", f->base);
  snprintf(f->dir, sizeof f->dir, "%s/out", f->base);
  const char *a[] = {"run", JOB, "--set", OLD_SET, "-o", f->old_ref, "-q", NULL};
  const char *b[] = {"run", JOB, "--set", NEW_SET, "-o", f->new_ref, "-q", NULL};
  CU_ASSERT_FATAL(run(0, a) == 0 && run(0, b) == 0);
}

/* DIR afresh: the old job's outputs and a user's file. */
static void fx_reset(fx_t *f) {
  rm_rf(f->dir);
  mkdir(f->dir, 0755);
  for (int i = 0; i < N_FILES; i++) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp %s %s", path_in(f->old_ref, g_files[i]), path_in(f->dir, g_files[i]));
    CU_ASSERT_FATAL(system(cmd) == 0);
  }
  FILE *u = fopen(path_in(f->dir, "notes.txt"), "w");
  fputs("mine\n", u);
  fclose(u);
}

/* 0: DIR holds all the old files, 1: all the new ones, -1: a mix. */
static int fx_state(const fx_t *f) {
  int old = 0, new = 0;
  for (int i = 0; i < N_FILES; i++) {
    old += same_file(path_in(f->dir, g_files[i]), path_in(f->old_ref, g_files[i]));
    new += same_file(path_in(f->dir, g_files[i]), path_in(f->new_ref, g_files[i]));
  }
  char *u = th_slurp(path_in(f->dir, "notes.txt"), NULL);
  bool kept = u && !strcmp(u, "mine\n");
  free(u);
  return !kept ? -2 : old == N_FILES ? 0 : new == N_FILES ? 1 : -1;
}

/* The temporaries of DIR and its parent. */
static int fx_temps(const fx_t *f, char *names, size_t cap) {
  int n = temporaries(f->dir, names, cap);
  size_t l = strlen(names);
  return n + temporaries(f->base, names + l, cap - l);
}

/* After a kill: the next run (the old job, summary only) leaves no temporary. */
static void fx_next_run_cleans(const fx_t *f, const char *what) {
  const char *a[] = {"run", JOB, "--set", OLD_SET, "-f", "summary", "-o", f->dir, "-q", NULL};
  CU_ASSERT_EQUAL(run(0, a), 0);
  char names[2048];
  int n = fx_temps(f, names, sizeof names);
  if (n) printf("\n  %s: temporaries after the next run: %s\n", what, names);
  CU_ASSERT_EQUAL(n, 0);
}

static const char *const g_new_run[] = {"run", JOB, "--set", NEW_SET, "-o", NULL, "-q", NULL};

static void new_run_args(const fx_t *f, const char **a) {
  memcpy(a, g_new_run, sizeof g_new_run);
  a[5] = f->dir;
}

/* The hook kills the run just before its 1st step (the swap) and its 2nd
** (removing the old directory); there is no 3rd. */
static void kill_at_each_step(void) {
  fx_t f;
  fx_init(&f);
  const char *a[8];
  new_run_args(&f, a);
  for (int step = 1; step <= 3; step++) {
    fx_reset(&f);
    int rc = run(step, a);
    int want_state = step == 1 ? 0 : 1;
    printf("\n  stop at step %d: exit %d, DIR %s", step, rc,
           fx_state(&f) == 0 ? "old" : fx_state(&f) == 1 ? "new" : "MIXED");
    CU_ASSERT_EQUAL(rc, step <= 2 ? -SIGKILL : 0);
    CU_ASSERT_EQUAL(fx_state(&f), want_state);
    fx_next_run_cleans(&f, "step kill");
  }
  rm_rf(f.base);
}

/* SIGKILL at 20 moments drawn with a fixed seed over an unkilled run's
** duration. */
static void kill_at_random_moments(void) {
  fx_t f;
  fx_init(&f);
  const char *a[8];
  new_run_args(&f, a);
  fx_reset(&f);
  double t0 = now();
  CU_ASSERT_EQUAL_FATAL(run(0, a), 0);
  double T = now() - t0;
  unsigned seed = 18;
  int n_old = 0, n_new = 0, n_mixed = 0, n_left = 0;
  for (int k = 0; k < 20; k++) {
    fx_reset(&f);
    double at = T * (rand_r(&seed) / (double)RAND_MAX) * 1.1;
    pid_t pid = start(0, a);
    sleep_s(at);
    kill(-pid, SIGKILL);
    wait_status(pid);
    int s = fx_state(&f);
    n_old += s == 0, n_new += s == 1, n_mixed += s < 0;
    char names[2048];
    n_left += fx_temps(&f, names, sizeof names) > 0;
    CU_ASSERT(s == 0 || s == 1);
    fx_next_run_cleans(&f, "random kill");
  }
  printf("\n  20 kills over %.3f s: %d old, %d new, %d mixed; %d left temporaries (removed by the next run)\n",
         T, n_old, n_new, n_mixed, n_left);
  rm_rf(f.base);
}

/* SIGTERM as soon as a temporary appears, and a little later: the process
** ends by SIGTERM and leaves none. */
static void sigterm_leaves_no_temporaries(void) {
  fx_t f;
  fx_init(&f);
  const char *a[8];
  new_run_args(&f, a);
  const double delays[] = {0, 0.005, 0.02, 0.05};
  for (int k = 0; k < 4; k++) {
    fx_reset(&f);
    pid_t pid = start(0, a);
    char names[2048];
    double t0 = now();
    while (fx_temps(&f, names, sizeof names) == 0 && now() - t0 < 5) sleep_s(0.0005);
    sleep_s(delays[k]);
    kill(pid, SIGTERM);
    int st = wait_status(pid);
    int n = fx_temps(&f, names, sizeof names);
    if (n) printf("\n  SIGTERM after %g s: left %s\n", delays[k], names);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT(fx_state(&f) == 0 || fx_state(&f) == 1);
    CU_ASSERT(WIFSIGNALED(st) ? WTERMSIG(st) == SIGTERM : WEXITSTATUS(st) == 0);
  }
  rm_rf(f.base);
}

/* A write that fails (files limited to 40 blocks, SIGXFSZ ignored; the
** job's trace.json is larger, its simulation's result file smaller): exit
** 74 and no new directory, nothing next to it. */
static void failed_run_leaves_no_directory(void) {
  char base[] = "/tmp/ts-atomic-XXXXXX", cmd[1024], names[512];
  CU_ASSERT_FATAL(mkdtemp(base) != NULL);
  const char *bin = getenv("TRAINSIM");
  char *msg[2] = {NULL, NULL};
  /* With the forked writer (the default on two cores) and with one writer:
  ** the same exit status and message. */
  for (int jobs = 0; jobs < 2; jobs++) {
    snprintf(cmd, sizeof cmd,
             "trap '' XFSZ; ulimit -f 40; %s'%s' run tests/jobs/good-synthetic.json -o %s/new -q 2>%s/err",
             jobs ? "TRAINSIM_WRITE_JOBS=1 " : "", bin ? bin : "build/trainsim", base, base);
    int st = system(cmd);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 74);
    msg[jobs] = th_slurp(path_in(base, "err"), NULL);
    unlink(path_in(base, "err"));
    struct stat sb;
    CU_ASSERT(lstat(path_in(base, "new"), &sb) != 0);
    CU_ASSERT_EQUAL(temporaries(base, names, sizeof names), 0);
  }
  CU_ASSERT(msg[0] && msg[1] && strstr(msg[0], "trace.json: write failed") && strcmp(msg[0], msg[1]) == 0);
  free(msg[0]);
  free(msg[1]);
  rm_rf(base);
}

/* Two writer processes write the bytes one writes (every format). */
static void two_writers_write_serial_bytes(void) {
  char base[] = "/tmp/ts-atomic-XXXXXX", cmd[1024];
  CU_ASSERT_FATAL(mkdtemp(base) != NULL);
  const char *bin = getenv("TRAINSIM");
  for (int jobs = 0; jobs < 2; jobs++) {
    snprintf(cmd, sizeof cmd, "%s'%s' run %s --set %s -f all -o %s/%s -q 2>/dev/null", jobs ? "TRAINSIM_WRITE_JOBS=1 " : "",
             bin ? bin : "build/trainsim", JOB, NEW_SET, base, jobs ? "one" : "two");
    int st = system(cmd);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  const char *all[] = {"summary.json", "timeline.csv", "trace.json", "gantt.svg", "report.html", "paje.trace"};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/one/%s", base, all[i]);
    snprintf(b, sizeof b, "%s/two/%s", base, all[i]);
    if (!same_file(a, b)) fprintf(stderr, "\n  %s differs\n", all[i]);
    CU_ASSERT(same_file(a, b));
  }
  rm_rf(base);
}

#define SWEEP_VARY "microbatches=4,8,16,32,64,128,256,512"

static int sweep_run(int stop, const char *dir) {
  const char *a[] = {"sweep", JOB, "--vary", SWEEP_VARY, "-j", "1", "-o", dir, "-q", NULL};
  return run(stop, a);
}

/* A sweep killed right after its partial file was created (the empty file
** an interrupted older trainsim left), killed again after its first row,
** then resumed; and sweeps killed at each commit step, then resumed. */
static void sweep_resumes_after_kills(void) {
  char base[] = "/tmp/ts-atomic-XXXXXX", ref[128], dir[128], names[2048];
  CU_ASSERT_FATAL(mkdtemp(base) != NULL);
  snprintf(ref, sizeof ref, "%s/ref", base);
  snprintf(dir, sizeof dir, "%s/sw", base);
  CU_ASSERT_EQUAL_FATAL(sweep_run(0, ref), 0);
  mkdir(dir, 0755);
  fclose(fopen(path_in(dir, "sweep.csv.partial"), "w"));
  const char *a[] = {"sweep", JOB, "--vary", SWEEP_VARY, "-j", "1", "-o", dir, "-q", NULL};
  pid_t pid = start(0, a);
  double t0 = now();
  bool row = false;
  while (!row && now() - t0 < 10) {
    char *t = th_slurp(path_in(dir, "sweep.csv.partial"), NULL);
    row = t && strstr(t, ",ok,");
    free(t);
    if (!row) sleep_s(0.001);
  }
  kill(-pid, SIGKILL);
  wait_status(pid);
  CU_ASSERT(row);
  CU_ASSERT_EQUAL(sweep_run(0, dir), 0);
  CU_ASSERT(same_file(path_in(dir, "sweep.csv"), path_in(ref, "sweep.csv")));
  CU_ASSERT(same_file(path_in(dir, "sweep.svg"), path_in(ref, "sweep.svg")));
  for (int step = 1; step <= 4; step++) {
    rm_rf(dir);
    int rc = sweep_run(step, dir);
    CU_ASSERT_EQUAL(rc, step <= 3 ? -SIGKILL : 0);
    CU_ASSERT_EQUAL(sweep_run(0, dir), 0);
    CU_ASSERT(same_file(path_in(dir, "sweep.csv"), path_in(ref, "sweep.csv")));
    CU_ASSERT_EQUAL(temporaries(dir, names, sizeof names) + temporaries(base, names, sizeof names), 0);
    CU_ASSERT(access(path_in(dir, "sweep.csv.partial"), F_OK) != 0);
  }
  rm_rf(base);
}

TS_TESTS{TS_TEST(kill_at_each_step), TS_TEST(kill_at_random_moments),
         TS_TEST(sigterm_leaves_no_temporaries), TS_TEST(failed_run_leaves_no_directory),
         TS_TEST(two_writers_write_serial_bytes),
         TS_TEST(sweep_resumes_after_kills)};

TS_TEST_MAIN("atomic")
