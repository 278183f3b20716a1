/*
** test_polish.c: small things of the outputs that looked wrong (issue 17,
** item 7).
**
** - tokens/s is null in summary.json, "n/a" in the report and absent from
**   the text summary for a synthetic model (its seq_len is made up), and
**   present for a transformer;
** - an interleaved synthetic job splits a stage's bytes over its chunks in
**   whole bytes (no 5.5 B): every part's activation and weight bytes, the
**   timeline's byte column and the peaks are whole, and the chunks of a
**   stage add up to the stage's bytes;
** - `bench` says when its median (or its peak RSS) is above its target;
** - `run` shows a progress line on stderr only when stderr is a terminal
**   (a pseudo-terminal here) and not with --quiet; captured stderr (a pipe)
**   never gets it.
*/
#include <fcntl.h>
#include <math.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trainsim.h"
#include "ts_bench.h"
#include "ts_exec.h"
#include "ts_out.h"
#include "tshelp.h"
#include "tsunit.h"

static char *capture(void (*fn)(const ts_result_t *, FILE *), const ts_result_t *r) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  fn(r, f);
  fclose(f);
  return buf;
}

static void summary_text(const ts_result_t *r, FILE *f) { ts_print_summary(r, f); }
static void summary_json(const ts_result_t *r, FILE *f) { ts_write_summary_json(r, f); }
static void report_html(const ts_result_t *r, FILE *f) { ts_write_report_html(r, f); }

static void tokens_per_s(void) {
  static const char *const jobs[2] = {
      "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
      " \"activation_bytes\": 1, \"activation_message_bytes\": 0},"
      " \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4}",
      "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 2,"
      " \"vocab\": 100}, \"seq_len\": 8, \"platform\": \"ideal\", \"schedule\": \"1f1b\","
      " \"stages\": 2, \"microbatches\": 4}"};
  for (int t = 0; t < 2; t++) {
    ts_job_t *job = NULL;
    ts_outcome_t o;
    ts_err_t err = {0};
    int rc = th_simulate(jobs[t], NULL, 0, &job, &o, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *txt = capture(summary_text, &o.r), *js = capture(summary_json, &o.r),
         *html = capture(report_html, &o.r);
    CU_ASSERT_PTR_NOT_NULL(strstr(txt, "samples/s"));
    if (t == 0) {
      CU_ASSERT_PTR_NULL(strstr(txt, "tokens/s"));
      CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"tokens_per_s\":\tnull"));
      CU_ASSERT_PTR_NOT_NULL(strstr(html, "n/a (synthetic model)"));
    } else {
      CU_ASSERT_PTR_NOT_NULL(strstr(txt, " tokens/s"));
      CU_ASSERT_PTR_NULL(strstr(js, "\"tokens_per_s\":\tnull"));
      CU_ASSERT(o.metrics->tokens_per_s > 0);
      TS_ASSERT_REL(o.metrics->tokens_per_s, o.metrics->samples_per_s * 8, 1e-12);
    }
    free(txt);
    free(js);
    free(html);
    ts_outcome_free(&o);
    ts_job_free(job);
  }
}

static bool whole(double b) { return b == floor(b); }

static void whole_bytes(void) {
  /* The shipped interleaved example: 1 byte per stage over 2 chunks. */
  const char *sets[] = {"model.weights_bytes=7"};
  ts_job_t *job = NULL;
  ts_err_t err = {0};
  char *text = th_slurp("examples/interleaved-p4-m8-v2.json", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  ts_outcome_t o;
  int rc = th_simulate(text, sets, 1, &job, &o, &err);
  free(text);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  const ts_cost_t *c = o.cost;
  CU_ASSERT_EQUAL(c->n_parts, 8);
  for (int st = 0; st < 4; st++) {
    const ts_part_cost_t *a = &c->part[st], *b = &c->part[st + 4];
    CU_ASSERT(whole(a->act_bytes) && whole(b->act_bytes));
    CU_ASSERT_EQUAL(a->act_bytes + b->act_bytes, 1); /* the stage's byte */
    CU_ASSERT_EQUAL(a->act_bytes, 1);                /* the first chunk takes it */
    CU_ASSERT_EQUAL(a->weights_bytes, 4);            /* 7 = 4 + 3 */
    CU_ASSERT_EQUAL(b->weights_bytes, 3);
    TS_ASSERT_REL(a->seconds[TS_FORWARD], 0.5, 1e-15); /* time still splits evenly */
  }
  for (int d = 0; d < o.metrics->n_devices; d++) {
    CU_ASSERT(whole(o.metrics->dev[d].peak_activation_bytes));
    CU_ASSERT(whole(o.metrics->dev[d].peak_memory_bytes));
    CU_ASSERT(whole(o.metrics->dev[d].weights_bytes));
  }
  for (int i = 0; i < o.run->n_events; i++) CU_ASSERT(whole(o.run->events[i].bytes));
  /* No "..._bytes": 5.5 line in summary.json. */
  char *js = capture(summary_json, &o.r), *save = NULL;
  for (char *l = strtok_r(js, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
    if (strstr(l, "bytes\":")) CU_ASSERT_PTR_NULL(strchr(strchr(l, ':'), '.'));
  free(js);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void bench_verdict(void) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  CU_ASSERT_EQUAL(ts_bench_verdict(f, 1.612, 40), 1);
  CU_ASSERT_EQUAL(ts_bench_verdict(f, 1.2, 250), 1);
  CU_ASSERT_EQUAL(ts_bench_verdict(f, 1.2, 40), 0);
  CU_ASSERT_EQUAL(ts_bench_verdict(f, TS_BENCH_TARGET_S, TS_BENCH_TARGET_MB), 0);
  fclose(f);
  CU_ASSERT_STRING_EQUAL(buf,
                         "bench: the median 1.612 s is above the target of 1.5 s\n"
                         "bench: the peak RSS 250.0 MB is above the target of 200 MB\n"
                         "bench: within the targets (1.5 s, 200 MB)\n"
                         "bench: within the targets (1.5 s, 200 MB)\n");
  free(buf);
}

/* Runs `trainsim run ... EXTRA` with stderr on a pseudo-terminal; returns
** what the terminal got (caller frees). */
static char *run_on_pty(const char *extra) {
  int master, slave;
  CU_ASSERT_EQUAL_FATAL(openpty(&master, &slave, NULL, NULL, NULL), 0);
  pid_t pid = fork();
  CU_ASSERT_FATAL(pid >= 0);
  if (pid == 0) {
    close(master);
    dup2(slave, 2);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    setenv("TRAINSIM_PROGRESS_AFTER_S", "0", 1);
    execl(getenv("TRAINSIM"), "trainsim", "run", "examples/bench-1f1b-p64.json", "--set",
          "microbatches=128", "-o", "/tmp/ts-polish-pty", "-f", "summary", extra, (char *)NULL);
    _exit(127);
  }
  close(slave);
  char *out = calloc(1, 1 << 20);
  size_t n = 0;
  for (;;) {
    ssize_t k = read(master, out + n, (1 << 20) - 1 - n);
    if (k <= 0) break;
    n += (size_t)k;
  }
  close(master);
  int st;
  waitpid(pid, &st, 0);
  CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  return out;
}

static void progress_line(void) {
  char *tty = run_on_pty(NULL);
  CU_ASSERT_PTR_NOT_NULL(strstr(tty, "\rsimulating: "));
  CU_ASSERT_PTR_NOT_NULL(strstr(tty, " transfers started, "));
  size_t n = strlen(tty);
  CU_ASSERT(n >= 4 && !strcmp(tty + n - 4, "\r\033[K")); /* erased at the end */
  free(tty);
  tty = run_on_pty("--quiet");
  CU_ASSERT_STRING_EQUAL(tty, "");
  free(tty);
  /* A pipe (what tests capture) gets nothing. */
  char *so = NULL, *se = NULL;
  setenv("TRAINSIM_PROGRESS_AFTER_S", "0", 1);
  CU_ASSERT_EQUAL(th_cli("run examples/bench-1f1b-p64.json --set microbatches=128 -o "
                         "/tmp/ts-polish-pipe -f summary",
                         &so, &se), 0);
  unsetenv("TRAINSIM_PROGRESS_AFTER_S");
  CU_ASSERT_STRING_EQUAL(se, "");
  CU_ASSERT_PTR_NULL(strstr(so, "simulating"));
  free(so);
  free(se);
  CU_ASSERT_EQUAL(system("rm -rf /tmp/ts-polish-pty /tmp/ts-polish-pipe"), 0);
}

TS_TESTS{TS_TEST(tokens_per_s), TS_TEST(whole_bytes), TS_TEST(bench_verdict),
         TS_TEST(progress_line)};
TS_TEST_MAIN("polish")
