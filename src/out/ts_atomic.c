/*
** ts_atomic.c: the atomic writing of output files (README "Outputs").
**
** A set of files (the outputs of a run, a sweep's results) goes into DIR
** all new or not at all.  The files are written into a fresh sibling
** directory ".BASE.tmp.PID" (BASE: DIR's last name), every other entry of
** DIR (a user's file, an output this run does not write) is hard-linked
** into it, and it is swapped with DIR in one renameat2(RENAME_EXCHANGE)
** (a plain rename when DIR does not exist yet); the old directory, now
** under the temporary name, is then removed.  A reader therefore sees the
** old set or the new one, never a mix.
**
** Where a swap cannot be made (DIR holds a subdirectory or something that
** cannot be hard-linked, is a symbolic link, a mount point, ".", not ours,
** or its parent is not writable), the files are written as
** "DIR/.NAME.tmp.PID" and renamed one at a time, as a single file is by
** ts_write_atomic: each file is then whole, but the set is not atomic.
**
** Temporaries never outlive their process for long: SIGTERM, SIGINT and
** SIGHUP remove the current ones (their paths are recorded beforehand, so
** the handler only calls unlink and rmdir) and then end the process by the
** same signal; after a SIGKILL the next write into DIR removes every
** ".X.tmp.PID" of a process that no longer runs (in DIR, and the sibling
** directories of DIR).
**
** Test hook: with TRAINSIM_TEST_STOP_AT=N in the environment the process
** kills itself (SIGKILL) just before its N-th commit step, a step being a
** rename, the swap, or the removal of the old directory after it.
*/
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "ts_out.h"
#include "ts_internal.h"

/* ---- the temporaries a signal removes ----------------------------------- */

/* The paths of the current temporaries: files to unlink, then a directory
** to remove.  Entries are published (n incremented) only once complete, so
** the handler sees whole strings. */
static struct {
  char **path;
  volatile sig_atomic_t n;
  int cap;
  char *dir;
  struct sigaction old[3];
  bool caught[3];
} g_tmp;

static const int g_sigs[3] = {SIGTERM, SIGINT, SIGHUP};

/* The forked writer while it runs (write_all), in the parent; 0 otherwise. */
static volatile pid_t g_writer;

static void on_signal(int sig) {
  /* The writer first, so that it creates nothing after the unlinks (its
  ** temporaries are in this process's record too). */
  if (g_writer > 0) {
    kill(g_writer, SIGKILL);
    waitpid(g_writer, NULL, 0);
  }
  for (int i = 0; i < g_tmp.n; i++) unlink(g_tmp.path[i]);
  if (g_tmp.dir) rmdir(g_tmp.dir);
  signal(sig, SIG_DFL);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  sigprocmask(SIG_UNBLOCK, &s, NULL);
  raise(sig);
  _exit(128 + sig);
}

/* Starts recording up to cap temporaries, dir (copied; NULL for none)
** removed after them, and catches the signals not ignored. */
static void reg_begin(int cap, const char *dir) {
  assert(!g_tmp.path);
  g_tmp.path = ts__xcalloc((size_t)(cap > 0 ? cap : 1), sizeof *g_tmp.path);
  g_tmp.cap = cap;
  g_tmp.n = 0;
  g_tmp.dir = dir ? ts__xstrdup(dir) : NULL;
  atomic_signal_fence(memory_order_seq_cst);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigfillset(&sa.sa_mask);
  for (int i = 0; i < 3; i++) {
    g_tmp.caught[i] = sigaction(g_sigs[i], NULL, &g_tmp.old[i]) == 0 &&
                      g_tmp.old[i].sa_handler != SIG_IGN && sigaction(g_sigs[i], &sa, NULL) == 0;
  }
}

/* Records path (copied) as a temporary; returns the copy. */
static const char *reg_add(const char *path) {
  assert(g_tmp.n < g_tmp.cap);
  char *p = ts__xstrdup(path);
  g_tmp.path[g_tmp.n] = p;
  atomic_signal_fence(memory_order_seq_cst);
  g_tmp.n = g_tmp.n + 1;
  return p;
}

/* Stops recording and restores the signals' handlers. */
static void reg_end(void) {
  for (int i = 0; i < 3; i++)
    if (g_tmp.caught[i]) sigaction(g_sigs[i], &g_tmp.old[i], NULL);
  int n = g_tmp.n;
  g_tmp.n = 0;
  atomic_signal_fence(memory_order_seq_cst);
  for (int i = 0; i < n; i++) free(g_tmp.path[i]);
  free(g_tmp.path);
  free(g_tmp.dir);
  memset(&g_tmp, 0, sizeof g_tmp);
}

/* Removes every recorded temporary (the failure path). */
static void reg_remove_all(void) {
  for (int i = 0; i < g_tmp.n; i++) unlink(g_tmp.path[i]);
  if (g_tmp.dir) rmdir(g_tmp.dir);
}

/* The test hook: SIGKILL before the N-th commit step. */
static void commit_step(void) {
  static int count;
  const char *s = getenv("TRAINSIM_TEST_STOP_AT");
  if (s && atoi(s) == ++count) raise(SIGKILL);
}

/* ---- names ---------------------------------------------------------------- */

static char *join(const char *dir, const char *name) {
  size_t cap = strlen(dir) + strlen(name) + 2;
  char *p = ts__xmalloc(cap);
  snprintf(p, cap, "%s/%s", dir, name);
  return p;
}

/* The temporary name path is written under before the rename: ".NAME.tmp.PID"
** in path's directory.  Sized to fit; the caller frees it. */
static char *tmp_name(const char *path) {
  assert(path && *path);
  const char *slash = strrchr(path, '/');
  int dir_len = slash ? (int)(slash - path) + 1 : 0;
  const char *base = path + dir_len;
  long pid = (long)getpid();
  size_t cap = (size_t)snprintf(NULL, 0, "%.*s.%s.tmp.%ld", dir_len, path, base, pid) + 1;
  char *out = ts__xmalloc(cap);
  snprintf(out, cap, "%.*s.%s.tmp.%ld", dir_len, path, base, pid);
  return out;
}

/* Whether name is ".X.tmp.PID" (X not empty; with want, X equals it), and
** its PID, into *pid. */
static bool tmp_pattern(const char *name, const char *want, long *pid) {
  size_t n = strlen(name);
  const char *dot = NULL;
  for (const char *p = name + n; p > name; p--)
    if (!strncmp(p - 1, ".tmp.", 5)) {
      dot = p - 1;
      break;
    }
  if (name[0] != '.' || !dot || dot == name + 1) return false;
  if (want && (strlen(want) != (size_t)(dot - name - 1) || strncmp(name + 1, want, strlen(want))))
    return false;
  char *end;
  const char *digits = dot + 5;
  *pid = strtol(digits, &end, 10);
  return *digits && !*end && *pid > 0;
}

/* Whether the temporary of pid belongs to a process that no longer runs.
** Our own PID counts as dead: cleaning runs before this process makes any
** temporary of its own, so such a name was left by an earlier process that
** had the same PID. */
static bool pid_dead(long pid) {
  return pid == (long)getpid() || (kill((pid_t)pid, 0) == -1 && errno == ESRCH);
}

/* DIR split into its parent and last name (trailing slashes dropped); the
** caller frees both.  Returns false for "/", "." and ".." as last names. */
static bool split_dir(const char *dir, char **parent, char **base) {
  char *d = ts__xstrdup(dir);
  size_t n = strlen(d);
  while (n > 1 && d[n - 1] == '/') d[--n] = 0;
  char *slash = strrchr(d, '/');
  const char *b = slash ? slash + 1 : d;
  if (!*b || !strcmp(b, ".") || !strcmp(b, "..")) {
    free(d);
    return false;
  }
  *base = ts__xstrdup(b);
  if (!slash)
    *parent = ts__xstrdup(".");
  else if (slash == d)
    *parent = ts__xstrdup("/");
  else {
    *slash = 0;
    *parent = ts__xstrdup(d);
  }
  free(d);
  return true;
}

/* ---- stale temporaries ------------------------------------------------- */

/* Removes a stale sibling directory: its files (hard links of DIR's or
** outputs never swapped in, or the old set after a swap), then itself.
** A subdirectory is not ours: then the directory is left. */
static void remove_stale_dir(const char *path) {
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *p = join(path, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && !S_ISDIR(st.st_mode)) unlink(p);
    free(p);
  }
  closedir(d);
  rmdir(path);
}

/* Removes the ".X.tmp.PID" files of dead processes in dir (X equal to only
** when only is not NULL). */
static void clean_files(const char *dir, const char *only) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  long pid;
  while ((e = readdir(d))) {
    if (!tmp_pattern(e->d_name, only, &pid) || !pid_dead(pid)) continue;
    char *p = join(dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) unlink(p);
    free(p);
  }
  closedir(d);
}

void ts_out_clean_stale(const char *dir) {
  clean_files(dir, NULL);
  char *parent, *base;
  if (!split_dir(dir, &parent, &base)) return;
  DIR *d = opendir(parent);
  if (d) {
    struct dirent *e;
    long pid;
    while ((e = readdir(d))) {
      if (!tmp_pattern(e->d_name, base, &pid) || !pid_dead(pid)) continue;
      char *p = join(parent, e->d_name);
      struct stat st;
      if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_stale_dir(p);
      free(p);
    }
    closedir(d);
  }
  free(parent);
  free(base);
}

/* ---- single files -------------------------------------------------------- */

static int mkdir_p(const char *dir) {
  char tmp[TS_PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", dir);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0777) && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(tmp, 0777) && errno != EEXIST) return -1;
  struct stat st;
  if (stat(tmp, &st) || !S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

int ts_write_dir(const char *dir, ts_err_t *err) {
  if (mkdir_p(dir))
    return ts_err_set(err, EX_CANTCREAT, "%s: cannot create output directory: %s", dir,
                      strerror(errno));
  return 0;
}

/* Writes fn's output to tmp; messages name path.  0 or EX_* with err set
** (and tmp removed). */
static int write_tmp(const char *path, const char *tmp, ts_write_fn fn, const void *arg,
                     ts_err_t *err) {
  FILE *f = fopen(tmp, "w");
  if (!f) return ts_err_set(err, EX_CANTCREAT, "%s: cannot create: %s", path, strerror(errno));
  errno = 0;
  int rc = fn(arg, f);
  if (fflush(f) || ferror(f)) rc = rc ? rc : EX_IOERR;
  int e = errno;
  if (fclose(f)) rc = rc ? rc : EX_IOERR;
  if (rc) {
    unlink(tmp);
    return ts_err_set(err, rc, "%s: write failed: %s", path, strerror(e ? e : errno ? errno : EIO));
  }
  return 0;
}

/* Writes fs[i] into tmp[i] (messages naming path[i]) for every i: in this
** process alone, or, where the machine has two cores or more and there
** are two files or more, in this process and one forked writer, each
** taking the next file from a shared counter, the heaviest (weight) first.
** Every file is written by one process, so the bytes are those of a
** serial write.  0, or the error of the first failing file in fs's order
** (as a serial write would stop at), with every tmp[i] then removed.
** TRAINSIM_WRITE_JOBS=1 in the environment keeps it to one process. */
static int write_all(char *const *path, char *const *tmp, const ts_out_file_t *fs, int n, ts_err_t *err) {
  int *order = ts__xmalloc((size_t)(n > 0 ? n : 1) * sizeof *order);
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = 1; i < n; i++) /* stable: by weight, heaviest first */
    for (int j = i; j > 0 && fs[order[j]].weight > fs[order[j - 1]].weight; j--) {
      int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  const char *jobs = getenv("TRAINSIM_WRITE_JOBS");
  bool two = n >= 2 && sysconf(_SC_NPROCESSORS_ONLN) >= 2 && !(jobs && atoi(jobs) == 1);
  struct shared {
    _Atomic int next;
    _Atomic int stop;
    ts_err_t err[];
  } *sh = NULL;
  size_t bytes = sizeof *sh + (size_t)n * sizeof(ts_err_t);
  if (two) {
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sh = m == MAP_FAILED ? NULL : m;
  }
  if (!sh) sh = ts__xcalloc(1, bytes), two = false;
  pid_t pid = -1, parent = getpid();
  if (two) {
    fflush(NULL);
    pid = fork();
  }
  if (pid == 0) { /* the writer dies with the parent (a SIGKILL'd parent's temporaries go with the next run) */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
  } else if (pid > 0) {
    g_writer = pid;
  }
  for (;;) { /* both processes: the next file, until none is left or one failed */
    if (atomic_load(&sh->stop)) break;
    int k = atomic_fetch_add(&sh->next, 1);
    if (k >= n) break;
    int i = order[k];
    if (write_tmp(path[i], tmp[i], fs[i].fn, fs[i].arg, &sh->err[i])) atomic_store(&sh->stop, 1);
  }
  if (pid == 0) _exit(0); /* the forked writer: no atexit handlers, no stdio of the parent's */
  if (pid > 0) {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    g_writer = 0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { /* it died: its file is unfinished */
      int first = -1;
      for (int i = 0; i < n && first < 0; i++)
        if (!sh->err[i].code) first = i;
      if (first >= 0)
        ts_err_set(&sh->err[first], EX_SOFTWARE, "%s: the writer process died (status %d)", path[first], st);
    }
  }
  int rc = 0;
  for (int i = 0; i < n && !rc; i++)
    if (sh->err[i].code) {
      rc = sh->err[i].code;
      *err = sh->err[i];
    }
  if (rc)
    for (int i = 0; i < n; i++) unlink(tmp[i]);
  if (two) munmap(sh, bytes);
  else free(sh);
  free(order);
  return rc;
}

int ts_write_atomic(const char *path, ts_write_fn fn, const void *arg, ts_err_t *err) {
  char *tmp = tmp_name(path);
  const char *slash = strrchr(path, '/');
  char *dir = slash ? ts__xstrdup(path) : ts__xstrdup(".");
  if (slash) dir[slash - path + (slash == path)] = 0;
  clean_files(dir, slash ? slash + 1 : path);
  free(dir);
  reg_begin(1, NULL);
  reg_add(tmp);
  int rc = write_tmp(path, tmp, fn, arg, err);
  if (!rc) commit_step();
  if (!rc && rename(tmp, path)) {
    int e = errno;
    unlink(tmp);
    rc = ts_err_set(err, EX_CANTCREAT, "%s: cannot rename into place: %s", path, strerror(e));
  }
  reg_end();
  free(tmp);
  return rc;
}

/* ---- sets of files ------------------------------------------------------ */

/* The file-by-file way: every file to "DIR/.NAME.tmp.PID", then renamed one
** at a time; on failure nothing new is left.  Each file whole, the set not
** atomic (see the file's comment). */
static int write_files(const char *dir, const ts_out_file_t *fs, int n, ts_err_t *err) {
  int rc = ts_write_dir(dir, err);
  if (rc) return rc;
  char **path = ts__xcalloc((size_t)n, sizeof *path);
  reg_begin(n, NULL);
  for (int i = 0; i < n; i++) path[i] = join(dir, fs[i].file);
  for (int i = 0; i < n; i++) {
    char *tmp = tmp_name(path[i]);
    reg_add(tmp);
    free(tmp);
  }
  rc = write_all(path, g_tmp.path, fs, n, err);
  /* A target that cannot be replaced (a directory) fails before anything
  ** is renamed; a rename that fails anyway undoes the ones before it. */
  for (int i = 0; i < n && !rc; i++) {
    struct stat st;
    if (lstat(path[i], &st) == 0 && S_ISDIR(st.st_mode))
      rc = ts_err_set(err, EX_CANTCREAT, "%s: cannot replace: it is a directory", path[i]);
  }
  int renamed = 0;
  for (; renamed < n && !rc; renamed++) {
    commit_step();
    if (rename(g_tmp.path[renamed], path[renamed])) {
      rc = ts_err_set(err, EX_CANTCREAT, "%s: cannot rename into place: %s", path[renamed],
                      strerror(errno));
      break;
    }
  }
  if (rc) {
    for (int i = 0; i < renamed; i++) unlink(path[i]);
    reg_remove_all();
  }
  reg_end();
  for (int i = 0; i < n; i++) free(path[i]);
  free(path);
  return rc;
}

static bool in_set(const ts_out_file_t *fs, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(fs[i].file, name)) return true;
  return false;
}

/* Whether an existing DIR can be swapped: a real directory of ours, on
** its parent's file system, writable, holding only files and symbolic
** links.  Counts its entries into *n_entries. */
static bool swappable(const char *dir, const char *parent, int *n_entries) {
  struct stat st, pst;
  if (lstat(dir, &st) || !S_ISDIR(st.st_mode) || stat(parent, &pst) || st.st_dev != pst.st_dev ||
      st.st_uid != geteuid() || access(dir, W_OK | X_OK) || access(parent, W_OK | X_OK))
    return false;
  DIR *d = opendir(dir);
  if (!d) return false;
  struct dirent *e;
  bool ok = true;
  *n_entries = 0;
  while (ok && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *p = join(dir, e->d_name);
    ok = lstat(p, &st) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode));
    free(p);
    ++*n_entries;
  }
  closedir(d);
  return ok;
}

/* Hard-links every entry of dir that the set does not write (and that is
** not someone's temporary) into tmp.  Returns false when one cannot be. */
static bool link_others(const char *dir, const char *tmp, const ts_out_file_t *fs, int n) {
  DIR *d = opendir(dir);
  if (!d) return false;
  struct dirent *e;
  bool ok = true;
  long pid;
  while (ok && (e = readdir(d))) {
    const char *name = e->d_name;
    if (!strcmp(name, ".") || !strcmp(name, "..") || in_set(fs, n, name) ||
        tmp_pattern(name, NULL, &pid))
      continue;
    if (g_tmp.n == g_tmp.cap) { /* an entry created since the count */
      ok = false;
      break;
    }
    char *from = join(dir, name), *to = join(tmp, name);
    reg_add(to);
    ok = linkat(AT_FDCWD, from, AT_FDCWD, to, 0) == 0;
    free(from);
    free(to);
  }
  closedir(d);
  return ok;
}

/* Empties the old directory (at old, after the swap) and removes it.  A
** file that DIR does not hold (one created during the swap) is linked
** into DIR first, so no file of the user's is lost. */
static void remove_old(const char *old, const char *dir, const ts_out_file_t *fs, int n) {
  DIR *d = opendir(old);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *p = join(old, e->d_name), *q = join(dir, e->d_name);
    struct stat a, b;
    bool keep = !in_set(fs, n, e->d_name) && lstat(q, &b) != 0 &&
                linkat(AT_FDCWD, p, AT_FDCWD, q, 0) != 0;
    if (!keep && lstat(p, &a) == 0 && !S_ISDIR(a.st_mode)) unlink(p);
    free(p);
    free(q);
  }
  closedir(d);
  rmdir(old);
}

/* The swap: 1 when it could not be tried (write the files one by one
** instead), else 0 or EX_* with err set. */
static int write_swap(const char *dir, const ts_out_file_t *fs, int n, ts_err_t *err) {
  char *parent, *base;
  if (!split_dir(dir, &parent, &base)) return 1;
  struct stat st;
  bool exists = lstat(dir, &st) == 0;
  int n_entries = 0, rc = 0;
  if (!exists && mkdir_p(parent))
    rc = ts_err_set(err, EX_CANTCREAT, "%s: cannot create output directory: %s", dir,
                    strerror(errno));
  else if (exists && !swappable(dir, parent, &n_entries))
    rc = 1;
  size_t cap = strlen(parent) + strlen(base) + 32;
  char *tmp = ts__xmalloc(cap);
  snprintf(tmp, cap, "%s/.%s.tmp.%ld", parent, base, (long)getpid());
  if (!rc && mkdir(tmp, exists ? 0700 : 0777)) {
    rc = exists || errno == EEXIST ? 1
                                   : ts_err_set(err, EX_CANTCREAT, "%s: cannot create output directory: %s",
                                                dir, strerror(errno));
  }
  if (rc) {
    free(tmp);
    free(parent);
    free(base);
    return rc;
  }
  reg_begin(n + n_entries, tmp);
  if (exists && (chmod(tmp, st.st_mode & 07777) || !link_others(dir, tmp, fs, n))) rc = 1;
  if (!rc) {
    char **path = ts__xcalloc((size_t)n, sizeof *path), **t = ts__xcalloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++) {
      path[i] = join(dir, fs[i].file);
      char *ti = join(tmp, fs[i].file);
      t[i] = (char *)reg_add(ti);
      free(ti);
    }
    rc = write_all(path, t, fs, n, err);
    for (int i = 0; i < n; i++) free(path[i]);
    free(path);
    free(t);
  }
  if (!rc) {
    commit_step();
    int r = exists ? renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) : rename(tmp, dir);
    if (r && exists && (errno == EINVAL || errno == ENOSYS || errno == EXDEV || errno == EPERM))
      rc = 1; /* no exchange on this file system */
    else if (r)
      rc = ts_err_set(err, EX_CANTCREAT, "%s: cannot move the new outputs into place: %s", dir,
                      strerror(errno));
    else if (exists) {
      commit_step();
      remove_old(tmp, dir, fs, n);
    }
  }
  if (rc) reg_remove_all();
  reg_end();
  free(tmp);
  free(parent);
  free(base);
  return rc;
}

int ts_write_set(const char *dir, const ts_out_file_t *fs, int n, ts_err_t *err) {
  if (n == 0) return ts_write_dir(dir, err);
  ts_out_clean_stale(dir);
  int rc = write_swap(dir, fs, n, err);
  return rc == 1 ? write_files(dir, fs, n, err) : rc;
}

/* ---- the outputs of a run --------------------------------------------- */

typedef struct {
  const ts_result_t *r;
  ts_result_writer_fn fn;
  const ts_out_opts_t *o;
} writer_arg_t;

/* The writers that take options get them; the others only r. */
static int call_writer(const void *arg, FILE *f) {
  const writer_arg_t *w = arg;
  if (!w->o) return w->fn(w->r, f);
  if (w->fn == ts_write_gantt_svg) return ts_write_gantt_svg_opts(w->r, &w->o->fig, f);
  if (w->fn == ts_write_report_html) return ts_write_report_html_opts(w->r, &w->o->fig, f);
  if (w->fn == ts_write_trace_json) return ts_write_trace_json_opts(w->r, w->o, f);
  if (w->fn == ts_write_timeline_csv) return ts_write_timeline_csv_opts(w->r, w->o, f);
  if (w->fn == ts_write_paje) return ts_write_paje_opts(w->r, w->o, f);
  return w->fn(w->r, f);
}

int ts_write_outputs(const ts_result_t *r, const char *dir, ts_err_t *err) {
  return ts_write_outputs_fig(r, dir, TS_FORMATS_DEFAULT, NULL, err);
}

int ts_write_outputs_mask(const ts_result_t *r, const char *dir, unsigned mask, ts_err_t *err) {
  return ts_write_outputs_fig(r, dir, mask, NULL, err);
}

int ts_write_outputs_fig(const ts_result_t *r, const char *dir, unsigned mask,
                         const ts_gantt_opts_t *fig, ts_err_t *err) {
  ts_out_opts_t o = {0};
  if (fig) o.fig = *fig;
  return ts_write_outputs_opts(r, dir, mask, &o, err);
}

int ts_write_outputs_opts(const ts_result_t *r, const char *dir, unsigned mask, const ts_out_opts_t *o,
                          ts_err_t *err) {
  /* The chosen formats, in the registry's order. */
  writer_arg_t a[TS_N_FORMATS];
  ts_out_file_t fs[TS_N_FORMATS];
  int n = 0;
  for (int i = 0; i < TS_N_FORMATS; i++)
    if (mask & TS_FORMAT_BIT(i)) {
      const ts_format_t *f = ts_format_at(i);
      a[n] = (writer_arg_t){r, f->write, o};
      fs[n] = (ts_out_file_t){f->file, call_writer, &a[n], f->weight};
      n++;
    }
  int rc = ts_write_set(dir, fs, n, err);
  if (!rc) ts__fold_note(r, mask, o); /* a folded run's traces: representatives only */
  return rc;
}
