/*
** test_inputs.c: hostile input, through the library and through the
** trainsim command (README "Errors and exit status"; issue 18, points 6
** and 7):
**   - control characters and terminal escapes in a field name or value
**     give a one-line error with the bytes escaped (\n, \x1b, \u009b);
**     ts__escape itself on UTF-8, bytes that are not UTF-8 and truncation;
**   - invalid UTF-8 in the model name or a placement host (in the file or
**     from --set) is rejected naming the field; a control character in
**     the model name too (gantt.svg could not hold it);
**   - a key given twice is an error, at the top level, nested
**     (model.layers) and in a Hugging Face config;
**   - an unknown or missing model_type in a Hugging Face config is an
**     error naming the config and the field, unless the job sets
**     gated_mlp (the documented fallback);
**   - /dev/zero, a FIFO, a directory and a (sparse) file over 64 MiB as a
**     job file fail at once with exit 66 and a one-line error;
**   - `sweep -o FILE` with FILE a regular file (or under one) exits 73.
** Files live in a fresh directory under /tmp.
*/
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#include "tshelp.h"
#include "tsunit.h"

/* ---- helpers ------------------------------------------------------------ */

static char dir[] = "/tmp/ts-inputs-XXXXXX";

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p) && errno != ENOENT ? -1 : 0;
}

/* The path dir/name in a static buffer (rotated among 4). */
static const char *at(const char *name) {
  static char bufs[4][256];
  static int k;
  char *p = bufs[k++ % 4];
  snprintf(p, 256, "%s/%s", dir, name);
  return p;
}

/* Writes text to dir/name; returns the path. */
static const char *put(const char *name, const char *text) {
  const char *p = at(name);
  FILE *f = fopen(p, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
  return p;
}

/* A small transformer job with extra top-level fields (JSON text ending
** in a comma, or "") and model fields (likewise). */
static char *job_text(const char *top, const char *model) {
  char *t = ts__xmalloc(4096);
  snprintf(t, 4096,
           "{%s\"model\": {%s\"kind\": \"transformer\", \"layers\": 2, \"hidden\": 64, "
           "\"heads\": 2, \"vocab\": 100}, \"platform\": \"ideal\", \"schedule\": \"1f1b\", "
           "\"stages\": 2, \"microbatches\": 2}",
           top, model);
  return t;
}

/* Loads the job at path with sets; returns the code and fills err. */
static int load(const char *path, const char *const *sets, int n_sets, ts_err_t *err) {
  memset(err, 0, sizeof *err);
  ts_job_t *job = NULL;
  int rc = ts_job_load(path, sets, n_sets, &job, err);
  ts_job_free(job);
  return rc;
}

/* Loads job text written to dir/name. */
static int load_text(const char *name, const char *text, ts_err_t *err) {
  return load(put(name, text), NULL, 0, err);
}

/* Whether s is one line: no control character at all. */
static bool one_line(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return false;
  return true;
}

static bool has(const char *s, const char *sub) { return s && strstr(s, sub) != NULL; }

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Runs "timeout 20 $TRAINSIM args" (memory bounded to 2 GB) with stdout
** and stderr into dir/out.txt and dir/err.txt; *err gets stderr (the
** caller frees it).  Returns the exit status (124: it hung). */
static int cli(char **err, const char *fmt, ...) {
  const char *bin = getenv("TRAINSIM");
  if (!bin) bin = "build/trainsim";
  char args[1024], cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "ulimit -v 2000000; timeout 20 '%s' %s >'%s/out.txt' 2>'%s/err.txt'",
           bin, args, dir, dir);
  int st = system(cmd);
  *err = th_slurp(at("err.txt"), NULL);
  if (!*err) *err = ts__xstrdup("");
  return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* stderr is exactly one "trainsim: error: " line. */
static bool one_error_line(const char *e) {
  size_t n = strlen(e);
  if (strncmp(e, "trainsim: error: ", 17) || e[n - 1] != '\n') return false;
  for (size_t i = 0; i + 1 < n; i++)
    if ((unsigned char)e[i] < 0x20 || e[i] == 0x7f) return false;
  return true;
}

/* ---- escaping ----------------------------------------------------------- */

static void test_escape_helper(void) {
  char b[64];
  CU_ASSERT_STRING_EQUAL(ts__escape(b, sizeof b, "a\nb\rc\td"), "a\\nb\\rc\\td");
  CU_ASSERT_STRING_EQUAL(ts__escape(b, sizeof b, "\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
  /* UTF-8 passes; a C1 CSI, a lone continuation byte, an overlong '/'
  ** and a surrogate do not. */
  CU_ASSERT_STRING_EQUAL(ts__escape(b, sizeof b, "\xc3\xa9\xe2\x86\x92\xf0\x9f\x98\x80"),
                         "\xc3\xa9\xe2\x86\x92\xf0\x9f\x98\x80");
  CU_ASSERT_STRING_EQUAL(ts__escape(b, sizeof b, "\xc2\x9b" "2J"), "\\u009b2J");
  CU_ASSERT_STRING_EQUAL(ts__escape(b, sizeof b, "x\x80y\xc0\xafz"), "x\\x80y\\xc0\\xafz");
  CU_ASSERT_STRING_EQUAL(ts__escape(b, sizeof b, "\xed\xa0\x80"), "\\xed\\xa0\\x80");
  CU_ASSERT_STRING_EQUAL(ts__escape(b, sizeof b, "\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
  /* Cut before an escape or character that does not fit. */
  CU_ASSERT_STRING_EQUAL(ts__escape(b, 5, "ab\ncd"), "ab\\n");
  CU_ASSERT_STRING_EQUAL(ts__escape(b, 4, "ab\ncd"), "ab");
  CU_ASSERT_STRING_EQUAL(ts__escape(b, 4, "a\xe2\x86\x92"), "a");
  CU_ASSERT(ts__utf8_valid("plain \xc3\xa9", NULL));
  size_t bad = 0;
  CU_ASSERT(!ts__utf8_valid("ab\xff", &bad));
  CU_ASSERT_EQUAL(bad, 2);
  CU_ASSERT(ts__has_control("a\x01"));
  CU_ASSERT(ts__has_control("a\xc2\x85"));
  CU_ASSERT(!ts__has_control("a\xc3\xa9"));
}

/* ts_err_set escapes whatever its arguments hold. */
static void test_err_set_one_line(void) {
  ts_err_t e = {0};
  CU_ASSERT_EQUAL(ts_err_set(&e, 65, "f: '%s'", "x\ny\x1b]0;t\x07\xff"), 65);
  CU_ASSERT_STRING_EQUAL(e.msg, "f: 'x\\ny\\x1b]0;t\\x07\\xff'");
}

/* An escape sequence and a newline in a field name and in a value. */
static void test_job_escapes_one_line(void) {
  ts_err_t err;
  char *t = job_text("\"sched\\u001b[31mule\\n\": 1, ", "");
  CU_ASSERT_EQUAL(load_text("key.json", t, &err), 65);
  free(t);
  CU_ASSERT(one_line(err.msg));
  CU_ASSERT(has(err.msg, "sched\\x1b[31mule\\n: unknown field"));
  CU_ASSERT(has(err.msg, "key.json"));

  put("value.json",
      "{\"model\": {\"kind\": \"transformer\", \"layers\": 2, \"hidden\": 64, \"heads\": 2, "
      "\"vocab\": 100}, \"platform\": \"ideal\", \"schedule\": \"x\\u001b[2J\\u009b\\r\\nevil\", "
      "\"stages\": 2, \"microbatches\": 2}");
  CU_ASSERT_EQUAL(load(at("value.json"), NULL, 0, &err), 65);
  CU_ASSERT(one_line(err.msg));
  CU_ASSERT(has(err.msg, "value.json: schedule: control character in a string"));
  /* A value that is echoed: a placement host (given twice). */
  t = job_text("\"placement\": [\"x\\u001b[2J\\u009b\\r\\nevil\", \"x\\u001b[2J\\u009b\\r\\nevil\"], ", "");
  CU_ASSERT_EQUAL(load_text("host.json", t, &err), 65);
  free(t);
  CU_ASSERT(one_line(err.msg));
  CU_ASSERT(has(err.msg, "placement[1]: host 'x\\x1b[2J\\u009b\\r\\nevil' already holds"));

  /* The same through the command: one line on stderr. */
  char *e = NULL;
  CU_ASSERT_EQUAL(cli(&e, "run '%s' -o '%s'", at("host.json"), at("o1")), 65);
  CU_ASSERT(one_error_line(e));
  CU_ASSERT(has(e, "x\\x1b[2J\\u009b\\r\\nevil"));
  free(e);
  CU_ASSERT_EQUAL(cli(&e, "run '%s' -o '%s'", at("key.json"), at("o1")), 65);
  CU_ASSERT(one_error_line(e));
  free(e);
  /* A --set path with a newline. */
  CU_ASSERT_EQUAL(cli(&e, "run '%s' --set \"$(printf 'sta\\nges=3')\" -o '%s'", at("value.json"),
                      at("o1")),
                  64);
  CU_ASSERT(one_error_line(e));
  CU_ASSERT(has(e, "unknown job field 'sta\\nges'"));
  free(e);
}

/* ---- strings that reach outputs ----------------------------------------- */

static void test_invalid_utf8_named(void) {
  ts_err_t err;
  char *t = job_text("", "\"name\": \"gpt\xff\", ");
  CU_ASSERT_EQUAL(load_text("name.json", t, &err), 65);
  free(t);
  CU_ASSERT(has(err.msg, "name.json: model.name: invalid UTF-8"));
  CU_ASSERT(one_line(err.msg));

  t = job_text("\"placement\": [\"h0\", \"h\xc3(\"], ", "");
  CU_ASSERT_EQUAL(load_text("place.json", t, &err), 65);
  free(t);
  CU_ASSERT(has(err.msg, "place.json: placement[1]: invalid UTF-8"));

  /* In a key, nested in an array of the job. */
  t = job_text("\"placement\": [\"h0\", \"h1\"], \"x\": [{\"k\xfe\": 1}], ", "");
  CU_ASSERT_EQUAL(load_text("keyutf.json", t, &err), 65);
  free(t);
  CU_ASSERT(has(err.msg, "x[0].k\\xfe: invalid UTF-8 in a key"));

  /* From --set, which the file check never sees. */
  t = job_text("", "");
  const char *good = put("good.json", t);
  free(t);
  const char *bad_set[] = {"model.name=ab\xe2\x28\xa1"};
  CU_ASSERT_EQUAL(load(good, bad_set, 1, &err), 65);
  CU_ASSERT(has(err.msg, "model.name: invalid UTF-8"));
  const char *ctl_set[] = {"model.name=a\x01z"};
  CU_ASSERT_EQUAL(load(good, ctl_set, 1, &err), 65);
  CU_ASSERT(has(err.msg, "model.name: control character"));
  /* Valid UTF-8 stays welcome. */
  const char *ok_set[] = {"model.name=mod\xc3\xa8le \xe2\x86\x92 7B"};
  CU_ASSERT_EQUAL(load(good, ok_set, 1, &err), 0);

  char *e = NULL;
  CU_ASSERT_EQUAL(cli(&e, "run '%s' -o '%s'", at("name.json"), at("o2")), 65);
  CU_ASSERT(one_error_line(e));
  CU_ASSERT(has(e, "model.name: invalid UTF-8"));
  free(e);
  struct stat st;
  CU_ASSERT(stat(at("o2"), &st) != 0);
}

/* ---- duplicate keys ------------------------------------------------------ */

static void test_duplicate_keys(void) {
  ts_err_t err;
  char *t = job_text("\"stages\": 4, ", "");
  CU_ASSERT_EQUAL(load_text("dup-top.json", t, &err), 65);
  free(t);
  CU_ASSERT(has(err.msg, "dup-top.json: stages: duplicate key"));

  t = job_text("", "\"layers\": 4, ");
  CU_ASSERT_EQUAL(load_text("dup-model.json", t, &err), 65);
  free(t);
  CU_ASSERT(has(err.msg, "dup-model.json: model.layers: duplicate key"));

  /* Deeper, inside an array, and in an object of many keys (sorted). */
  char big[8192] = "{\"a\": [1, {\"b\": {";
  for (int i = 0; i < 300; i++)
    snprintf(big + strlen(big), sizeof big - strlen(big), "\"k%d\": %d, ", i, i);
  strcat(big, "\"k7\": 0}}]}");
  CU_ASSERT_EQUAL(load_text("dup-deep.json", big, &err), 65);
  CU_ASSERT(has(err.msg, "dup-deep.json: a[1].b.k7: duplicate key"));

  /* In a Hugging Face config: the config file is named. */
  put("dup-config.json",
      "{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_embd\": 64, \"n_head\": 2, "
      "\"vocab_size\": 100, \"n_layer\": 12}");
  put("dup-hf.json", "{\"model\": \"dup-config.json\", \"platform\": \"ideal\", \"schedule\": "
                     "\"1f1b\", \"stages\": 2, \"microbatches\": 2}");
  CU_ASSERT_EQUAL(load(at("dup-hf.json"), NULL, 0, &err), 65);
  CU_ASSERT(has(err.msg, "dup-config.json: n_layer: duplicate key"));

  char *e = NULL;
  CU_ASSERT_EQUAL(cli(&e, "run '%s' -o '%s'", at("dup-model.json"), at("o3")), 65);
  CU_ASSERT(one_error_line(e));
  CU_ASSERT(has(e, "model.layers: duplicate key"));
  free(e);
}

/* ---- Hugging Face model_type --------------------------------------------- */

static void test_hf_model_type(void) {
  ts_err_t err;
  put("bert-config.json", "{\"model_type\": \"bert\", \"num_hidden_layers\": 2, "
                          "\"hidden_size\": 64, \"num_attention_heads\": 2, "
                          "\"intermediate_size\": 256, \"vocab_size\": 100}");
  put("none-config.json", "{\"num_hidden_layers\": 2, \"hidden_size\": 64, "
                          "\"num_attention_heads\": 2, \"vocab_size\": 100}");
  const char *tail = "\"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 2, "
                     "\"microbatches\": 2}";
  char t[1024];
  snprintf(t, sizeof t, "{\"model\": \"bert-config.json\", %s", tail);
  CU_ASSERT_EQUAL(load_text("bert.json", t, &err), 65);
  CU_ASSERT(has(err.msg, "bert-config.json: model_type: unknown model type 'bert'"));
  CU_ASSERT(has(err.msg, "gated_mlp"));
  snprintf(t, sizeof t, "{\"model\": \"none-config.json\", %s", tail);
  CU_ASSERT_EQUAL(load_text("none.json", t, &err), 65);
  CU_ASSERT(has(err.msg, "none-config.json: model_type: missing field"));

  /* The fallback: the job says which MLP the model has. */
  for (int gated = 0; gated < 2; gated++) {
    snprintf(t, sizeof t, "{\"model\": {\"config\": \"bert-config.json\", \"gated_mlp\": %s}, %s",
             gated ? "true" : "false", tail);
    ts_job_t *job = NULL;
    memset(&err, 0, sizeof err);
    CU_ASSERT_EQUAL_FATAL(ts_job_load(put("bert-fallback.json", t), NULL, 0, &job, &err), 0);
    CU_ASSERT_STRING_EQUAL(job->model.name, "bert");
    CU_ASSERT_EQUAL(job->model.gated_mlp, gated);
    ts_job_free(job);
  }

  char *e = NULL;
  CU_ASSERT_EQUAL(cli(&e, "run '%s' -o '%s'", at("bert.json"), at("o4")), 65);
  CU_ASSERT(one_error_line(e));
  CU_ASSERT(has(e, "model_type: unknown model type 'bert'"));
  free(e);
}

/* ---- unbounded and blocking reads ---------------------------------------- */

static void test_special_files_library(void) {
  ts_err_t err;
  const char *fifo = at("job.fifo");
  CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
  alarm(20); /* a read that blocks fails the suite instead of hanging it */
  double t0 = now_s();
  CU_ASSERT_EQUAL(load(fifo, NULL, 0, &err), 66);
  CU_ASSERT(has(err.msg, "job.fifo: cannot read job file"));
  CU_ASSERT(one_line(err.msg));
  errno = 0;
  CU_ASSERT_PTR_NULL(th_slurp(fifo, NULL));
  CU_ASSERT_EQUAL(errno, EINVAL);
  CU_ASSERT_STRING_EQUAL(ts__read_error(EINVAL), "not a regular file");
  CU_ASSERT_PTR_NULL(th_slurp("/dev/zero", NULL));
  CU_ASSERT_EQUAL(errno, EINVAL);
  CU_ASSERT_PTR_NULL(th_slurp(dir, NULL));
  CU_ASSERT_EQUAL(errno, EISDIR);

  /* A sparse file just over the cap is refused before it is read; one at
  ** the cap is read whole. */
  const char *big = at("big.json");
  int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL(ftruncate(fd, (off_t)TS_READ_MAX + 1), 0);
  close(fd);
  CU_ASSERT_PTR_NULL(th_slurp(big, NULL));
  CU_ASSERT_EQUAL(errno, EFBIG);
  CU_ASSERT(has(ts__read_error(EFBIG), "64 MiB"));
  CU_ASSERT_EQUAL(load(big, NULL, 0, &err), 66);
  CU_ASSERT(has(err.msg, "big.json: cannot read job file"));
  CU_ASSERT_EQUAL(truncate(big, (off_t)TS_READ_MAX), 0);
  size_t len = 0;
  char *all = th_slurp(big, &len);
  CU_ASSERT_PTR_NOT_NULL(all);
  CU_ASSERT_EQUAL(len, TS_READ_MAX);
  free(all);
  unlink(big);
  CU_ASSERT(now_s() - t0 < 10);
  alarm(0);
}

static void test_special_files_cli(void) {
  char *e = NULL;
  double t0 = now_s();
  CU_ASSERT_EQUAL(cli(&e, "run /dev/zero -o '%s'", at("o5")), 66);
  CU_ASSERT(now_s() - t0 < 5);
  CU_ASSERT(one_error_line(e));
  CU_ASSERT(has(e, "/dev/zero: cannot read job file"));
  free(e);
  const char *fifo = at("cli.fifo");
  CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
  t0 = now_s();
  CU_ASSERT_EQUAL(cli(&e, "run '%s' -o '%s'", fifo, at("o5")), 66);
  CU_ASSERT(now_s() - t0 < 5);
  CU_ASSERT(one_error_line(e));
  CU_ASSERT(has(e, "cli.fifo: cannot read job file"));
  free(e);
  struct stat st;
  CU_ASSERT(stat(at("o5"), &st) != 0);
}

/* ---- sweep -o FILE ------------------------------------------------------- */

static void test_sweep_output_is_file(void) {
  const char *file = put("not-a-dir", "x\n");
  char *e = NULL;
  CU_ASSERT_EQUAL(cli(&e, "sweep --vary microbatches=2,4 -q -o '%s'", file), 73);
  CU_ASSERT(one_error_line(e));
  CU_ASSERT(has(e, "not-a-dir: cannot create output directory"));
  free(e);
  CU_ASSERT_EQUAL(cli(&e, "sweep --vary microbatches=2,4 -q -o '%s/sub'", file), 73);
  CU_ASSERT(one_error_line(e));
  free(e);
  char *text = th_slurp(file, NULL);
  CU_ASSERT_STRING_EQUAL(text, "x\n");
  free(text);
}

static void setup_dir(void) __attribute__((constructor));
static void setup_dir(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    abort();
  }
}

static void cleanup_dir(void) __attribute__((destructor));
static void cleanup_dir(void) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

TS_TESTS{
    TS_TEST(test_escape_helper),        TS_TEST(test_err_set_one_line),
    TS_TEST(test_job_escapes_one_line), TS_TEST(test_invalid_utf8_named),
    TS_TEST(test_duplicate_keys),       TS_TEST(test_hf_model_type),
    TS_TEST(test_special_files_library), TS_TEST(test_special_files_cli),
    TS_TEST(test_sweep_output_is_file),
};

TS_TEST_MAIN("inputs")
