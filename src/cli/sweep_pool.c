/*
** sweep_pool.c: the worker processes of a local `trainsim sweep`.  At most
** -j N workers run at once; each forks for one point, simulates it as
** `trainsim run` would (ts_job_load with the fixed --set strings, then the
** point's and its adjustments) and writes its CSV row, or the error that must stop the sweep,
** on a pipe.  The parent polls the pipes, appends each row to the partial
** file with one write(2) and draws the progress bar.
*/
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "sweep_internal.h"
#include "ts_exec.h"
#include "ts_internal.h"

/* Simulates point i.  Returns 0 with its row in b (ok, or error for a job
** the rules reject and a schedule that fails or deadlocks), or the
** sysexits code of an error that must stop the sweep, with the message in
** b. */
static int point_compute(const sweep_t *s, long i, sb_t *b) {
  const char **sets;
  char **own, adj[SW_ADJ_MAX];
  int n;
  ts_err_t err = {0};
  ts_job_t *job = NULL;
  ts_outcome_t o;
  memset(&o, 0, sizeof o);
  int rc = ts__sw_point_sets(s, i, &sets, &own, &n, adj, sizeof adj, &err);
  if (!rc) rc = ts_job_load(s->job, sets, n, &job, &err);
  if (!rc) rc = ts_simulate(job, &o, &err);
  if (!rc) {
    /* Through the text of summary.json: cJSON prints some doubles with 15
    ** digits that do not read back exactly, and the row must hold what a
    ** `trainsim run` of the point (and --collect) reads. */
    cJSON *tree = ts__summary_json(&o.r);
    char *text = cJSON_Print(tree);
    cJSON *sum = text ? cJSON_Parse(text) : NULL;
    if (sum) {
      ts__sw_row_ok(s, i, adj, sum, b);
    } else {
      ts__sw_puts(b, "cannot print the summary (out of memory)");
      rc = EX_OSERR;
    }
    cJSON_Delete(sum);
    free(text);
    cJSON_Delete(tree);
  } else if (rc == EX_DATAERR || (rc == EX_SOFTWARE && !strncmp(err.msg, "schedule '", 10))) {
    /* the job's rules, or the schedule's own error or deadlock: an outcome
    ** of the point.  A simulation that died (a signal, a crash) is not. */
    ts__sw_row_error(s, i, adj, err.msg, b);
    rc = 0;
  } else {
    for (int k = 0; k < s->nv; k++) ts__sw_say_vary(err.msg, sizeof err.msg, s->v[k].path);
    ts__sw_puts(b, err.msg);
  }
  ts_outcome_free(&o);
  ts_job_free(job);
  ts__sw_point_sets_free(s, sets, own);
  return rc;
}

typedef struct sw_slot {
  pid_t pid;
  int fd;
  long point;
  sb_t out;
} sw_slot_t;

void ts__sw_progress_show(const sw_progress_t *pr) {
  if (!pr->bar) return;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  double el = (double)(t.tv_sec - pr->t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - pr->t0.tv_nsec);
  char bar[41];
  int fill = pr->total ? (int)(40 * pr->done / pr->total) : 40;
  for (int k = 0; k < 40; k++) bar[k] = k < fill ? '#' : '.';
  bar[40] = 0;
  fprintf(stderr, "\rsweep [%s] %ld/%ld points, %ld failed, %.1f s ", bar, pr->done, pr->total,
          pr->failed, el);
  if (pr->done == pr->total) fputc('\n', stderr);
  fflush(stderr);
}

/* Runs the points todo[0..n_todo-1] with at most jobs workers, appending
** each row to part_fd (one write per row) and taking it into s.  Returns 0,
** or the code of the first error that stopped the sweep (printed). */
int ts__sw_run_points(sweep_t *s, const long *todo, long n_todo, int jobs, int part_fd,
                      const char *part_path, sw_progress_t *pr) {
  sw_slot_t *slot = ts__xcalloc((size_t)jobs, sizeof *slot);
  struct pollfd *pfd = ts__xcalloc((size_t)jobs, sizeof *pfd);
  long next = 0;
  int active = 0, stop = 0;
  char stop_msg[1200] = "";
  for (int k = 0; k < jobs; k++) slot[k].pid = -1;
  for (;;) {
    while (!stop && next < n_todo && active < jobs) {
      int k = 0;
      while (slot[k].pid >= 0) k++;
      int p[2];
      if (pipe(p)) {
        stop = EX_OSERR;
        snprintf(stop_msg, sizeof stop_msg, "pipe: %s", strerror(errno));
        break;
      }
      fflush(NULL);
      pid_t pid = fork();
      if (pid < 0) {
        close(p[0]);
        close(p[1]);
        stop = EX_OSERR;
        snprintf(stop_msg, sizeof stop_msg, "fork: %s", strerror(errno));
        break;
      }
      if (pid == 0) { /* the worker: one point, its row on the pipe */
        close(p[0]);
        close(part_fd);
        for (int j = 0; j < jobs; j++)
          if (slot[j].pid >= 0) close(slot[j].fd);
        signal(SIGPIPE, SIG_DFL);
        sb_t b = {0};
        int rc = point_compute(s, todo[next], &b);
        bool ok = ts__write_all(p[1], b.s ? b.s : "", b.n);
        _exit(ok ? rc : EX_IOERR);
      }
      close(p[1]);
      slot[k] = (sw_slot_t){pid, p[0], todo[next], {0}};
      next++;
      active++;
    }
    if (!active) break;
    int n = 0;
    int map[SW_MAX_JOBS];
    for (int k = 0; k < jobs; k++)
      if (slot[k].pid >= 0) {
        pfd[n] = (struct pollfd){slot[k].fd, POLLIN, 0};
        map[n++] = k;
      }
    if (poll(pfd, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      stop = stop ? stop : EX_OSERR;
      break;
    }
    for (int q = 0; q < n; q++) {
      if (!pfd[q].revents) continue;
      sw_slot_t *sl = &slot[map[q]];
      char buf[4096];
      ssize_t got = read(sl->fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got > 0) {
        ts__sw_putn(&sl->out, buf, (size_t)got);
        continue;
      }
      /* end of the worker's output: reap it */
      close(sl->fd);
      int st = 0;
      while (waitpid(sl->pid, &st, 0) < 0 && errno == EINTR) {
      }
      active--;
      sl->pid = -1;
      const char *text = sl->out.s ? sl->out.s : "";
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && ts__sw_point_take(s, text)) {
        if (!ts__write_all(part_fd, text, strlen(text)) && !stop) {
          stop = EX_IOERR;
          snprintf(stop_msg, sizeof stop_msg, "%.900s: write failed: %s", part_path, strerror(errno));
        }
        pr->done++;
        if (!s->pt[sl->point].ok) pr->failed++;
        ts__sw_progress_show(pr);
      } else if (!stop) {
        if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
          stop = WEXITSTATUS(st);
          snprintf(stop_msg, sizeof stop_msg, "%.1100s", text);
        } else {
          stop = EX_SOFTWARE;
          snprintf(stop_msg, sizeof stop_msg, "sweep: the worker of point %ld %s", sl->point + 1,
                   WIFSIGNALED(st) ? "was killed by a signal" : "returned no row");
        }
      }
      free(sl->out.s);
      sl->out = (sb_t){0};
    }
  }
  if (stop) {
    if (pr->bar) fputc('\n', stderr);
    fprintf(stderr, "trainsim: error: %s\n", stop_msg[0] ? stop_msg : "sweep stopped");
  }
  free(slot);
  free(pfd);
  return stop;
}
