/*
** test_limits.c: the bounds a job is checked against (README "Limits"):
** products of counts that later code holds in an int (at 2^31 - 1
** accepted, above it one error naming the fields), a synthetic model's
** seconds and bytes, and --set platform values after their units.
*/
#include <math.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "tshelp.h"
#include "tsunit.h"

/* A synthetic job of schedule sched with p stages, m micro-batches and i
** iterations; extra is spliced into the top level (", \"k\": v" or ""),
** model into the model object. */
static const char *job_text(const char *sched, int p, int m, int i, const char *model,
                            const char *extra) {
  static char buf[2048];
  snprintf(buf, sizeof buf,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2, "
           "\"activation_message_bytes\": 0, \"activation_bytes\": 1%s}, \"platform\": \"ideal\", "
           "\"schedule\": \"%s\", \"stages\": %d, \"microbatches\": %d, \"iterations\": %d%s}",
           model, sched, p, m, i, extra);
  return buf;
}

/* Loads text with the --set strings; returns the code, err filled. */
static int load(const char *text, const char *const *sets, int n, ts_err_t *err) {
  const char *path = th_write_tmp(text, ".json");
  ts_job_t *job = NULL;
  memset(err, 0, sizeof *err);
  int rc = ts_job_load(path, sets, n, &job, err);
  unlink(path);
  ts_job_free(job);
  return rc;
}

/* Asserts that loading fails with code and a one-line message holding
** the job file's name and each of the strings want (NULL-terminated). */
static void expect_error(const char *text, const char *const *sets, int n, int code,
                         const char *const *want) {
  ts_err_t err;
  int rc = load(text, sets, n, &err);
  CU_ASSERT_EQUAL(rc, code);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/tmp/ts-test-"));
  CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
  for (; *want; want++) {
    if (!strstr(err.msg, *want)) printf("\nmissing '%s' in: %s\n", *want, err.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, *want));
  }
}

static void expect_ok(const char *text, const char *const *sets, int n) {
  ts_err_t err;
  int rc = load(text, sets, n, &err);
  if (rc) printf("\nunexpected: %s\n", err.msg);
  CU_ASSERT_EQUAL(rc, 0);
}

/* 46340 x 46341 = 2147441940 <= 2^31 - 1 < 46341^2 (2^31 - 1 is prime). */
static void microbatches_x_iterations(void) {
  expect_ok(job_text("2bw", 1, 46340, 46341, "", ""), NULL, 0);
  expect_error(job_text("2bw", 1, 46341, 46341, "", ""), NULL, 0, EX_DATAERR,
               (const char *[]){"microbatches x iterations: 46341 x 46341 exceeds 2^31 - 1", NULL});
  /* The case: 65536 x 65536 wrapped to 0 micro-batches. */
  expect_error(job_text("2bw", 4, 65536, 65536, "", ""), NULL, 0, EX_DATAERR,
               (const char *[]){"microbatches x iterations: 65536 x 65536", NULL});
}

/* stages x chunks, and the runtime's cells stages x chunks x M. */
static void stages_x_chunks_and_cells(void) {
  expect_error(job_text("interleaved", 46341, 1, 1, "", ", \"chunks\": 46341"), NULL, 0,
               EX_DATAERR, (const char *[]){"stages x chunks: 46341 x 46341 exceeds", NULL});
  /* 2 x 1 x 46340 x 23170 = 2147317600 is at the bound; 2 x 1 x 46341 x
  ** 23171 = 2147535222 is above it with M itself below. */
  expect_ok(job_text("2bw", 2, 46340, 23170, "", ""), NULL, 0);
  expect_error(job_text("2bw", 2, 46341, 23171, "", ""), NULL, 0, EX_DATAERR,
               (const char *[]){"stages x chunks x microbatches x iterations: 2 x 1 x 46341 x 23171 "
                                "exceeds 2^31 - 1",
                                NULL});
}

/* micro_batch_size x seq_len: the tokens of a micro-batch. */
static void tokens_per_micro_batch(void) {
  expect_ok(job_text("1f1b", 2, 4, 1, "", ", \"micro_batch_size\": 46340, \"seq_len\": 46341"),
            NULL, 0);
  expect_error(job_text("1f1b", 2, 4, 1, "", ", \"micro_batch_size\": 46341, \"seq_len\": 46341"),
               NULL, 0, EX_DATAERR,
               (const char *[]){"micro_batch_size x seq_len: 46341 x 46341 exceeds", NULL});
}

/* A gshard job of 8 MoE layers of 8 experts with m micro-batches and
** the given capacity_factor. */
static const char *moe_text(int m, const char *cf) {
  static char buf[1024];
  snprintf(buf, sizeof buf,
           "{\"model\": {\"kind\": \"transformer\", \"layers\": 8, \"hidden\": 64, \"heads\": 4, "
           "\"vocab\": 100, \"moe\": {\"experts\": 8, \"every\": 1, \"capacity_factor\": %s}}, "
           "\"platform\": \"ideal\", \"schedule\": \"gshard\", \"stages\": 1, \"microbatches\": %d, "
           "\"seq_len\": 16}",
           cf, m);
  return buf;
}

/* The MoE routing's cells (layers x M x lanes x experts) and rows. */
static void moe_cells_and_rows(void) {
  expect_ok(moe_text(33554431, "2"), NULL, 0); /* 8 x 33554431 x 1 x 8 = 2^31 - 64 */
  expect_error(moe_text(33554432, "2"), NULL, 0, EX_DATAERR,
               (const char *[]){"model.moe: MoE layers x microbatches x iterations x expert_parallel "
                                "x experts: 8 x 33554432 x 1 x 1 x 8 exceeds 2^31 - 1",
                                NULL});
  /* 16 tokens in one group, capacity C = 16 x cf / 8 rounded up to a
  ** multiple of 4, 8 x 1 x C rows: 2^31 - 32 at cf = 134217726, 2^31 at
  ** cf = 134217727. */
  expect_ok(moe_text(4, "134217726"), NULL, 0);
  expect_error(moe_text(4, "134217727"), NULL, 0, EX_DATAERR,
               (const char *[]){"model.moe.capacity_factor: experts x groups x capacity: 8 x 1 x "
                                "268435456 token slots exceed 2^31 - 1",
                                NULL});
  expect_error(moe_text(4, "1e300"), NULL, 0, EX_DATAERR,
               (const char *[]){"model.moe.capacity_factor: experts x groups x capacity", NULL});
}

/* A synthetic model's seconds (at most 1e6 s) and bytes (at most 2^53). */
static void synthetic_seconds_and_bytes(void) {
  expect_ok(job_text("1f1b", 4, 4, 1, ", \"weights_bytes\": 9007199254740992", ""), NULL, 0);
  const char *s[] = {"model.forward_s=1e6", "model.backward_s=[1e6,2,2,2]"};
  expect_ok(job_text("1f1b", 4, 4, 1, "", ""), s, 2);
  const char *f[] = {"model.forward_s=1e308"};
  expect_error(job_text("1f1b", 4, 4, 1, "", ""), f, 1, EX_DATAERR,
               (const char *[]){"model.forward_s: 1e+308 s exceeds 1e6 s", NULL});
  const char *b[] = {"model.backward_s=[2,2,1000000.001,2]"};
  expect_error(job_text("1f1b", 4, 4, 1, "", ""), b, 1, EX_DATAERR,
               (const char *[]){"model.backward_s[2]: 1000000.001 s exceeds 1e6 s", NULL});
  const char *r[] = {"model.recompute_s=2e6"};
  expect_error(job_text("1f1b", 4, 4, 1, "", ""), r, 1, EX_DATAERR,
               (const char *[]){"model.recompute_s: 2000000 s exceeds", NULL});
  /* 2^53 + 2, the next double: bytes are no longer exact integers. */
  expect_error(job_text("1f1b", 4, 4, 1, ", \"weights_bytes\": 9007199254740994", ""), NULL, 0,
               EX_DATAERR,
               (const char *[]){"model.weights_bytes: 9007199254740994 B exceeds 2^53 B", NULL});
  const char *m[] = {"model.activation_message_bytes=1e300"};
  expect_error(job_text("1f1b", 4, 4, 1, "", ""), m, 1, EX_DATAERR,
               (const char *[]){"model.activation_message_bytes: 1.0000000000000001e+300 B exceeds",
                                NULL});
}

/* --set platform values, checked after their units (EX_USAGE). */
static void platform_values_after_units(void) {
  const char *text = job_text("1f1b", 4, 4, 1, "", "");
  static const struct { const char *set, *want; } bad[] = {
      {"platform.link.*.bandwidth=1e308TBps", "is not finite after its unit"},
      {"platform.link.*.bandwidth=0", "bandwidth 0 B/s is out of range"},
      {"platform.link.*.bandwidth=1e-300", "bandwidth 1e-300 B/s is out of range"},
      {"platform.link.*.bandwidth=2e30", "out of range (1 to 1e30 B/s)"},
      {"platform.link.*.latency=1e-303ns", "latency 1e-312 s is out of range"},
      {"platform.link.*.latency=1e-13", "latency 1e-13 s is out of range"},
      {"platform.link.*.latency=1e308", "latency 1e+308 s is out of range"},
      {"platform.link.*.latency=2e6s", "out of range (0, or 1e-12 s to 1e6 s)"},
      {"platform.host.*.speed=1e-300Tf", "speed 1e-288 FLOP/s is out of range"},
      {"platform.host.*.speed=1e300Pf", "is not finite after its unit"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *field = strchr(bad[i].set, '=');
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(field - bad[i].set), bad[i].set);
    expect_error(text, &bad[i].set, 1, EX_USAGE, (const char *[]){name, bad[i].want, NULL});
  }
  const char *ok[] = {"platform.link.*.latency=0", "platform.link.*.latency=1e-12",
                      "platform.link.*.latency=1e6", "platform.link.*.bandwidth=1",
                      "platform.link.*.bandwidth=1e30", "platform.host.*.speed=1e30"};
  expect_ok(text, ok, 6);
}

/* The command line: one line naming the file and the field, the exit
** status, and no output directory. */
static void cli_errors_leave_no_output(void) {
  static const struct { const char *args, *want; int rc; } c[] = {
      {"--set microbatches=65536 --set iterations=65537",
       "2bw-p4-m8-i3.json: microbatches x iterations: 65536 x 65537 exceeds 2^31 - 1", 65},
      {"--set model.forward_s=1e308", "2bw-p4-m8-i3.json: model.forward_s: 1e+308 s exceeds", 65},
      {"--set 'platform.link.*.bandwidth=1e308TBps'",
       "2bw-p4-m8-i3.json: --set 'platform.link.*.bandwidth': value '1e308TBps' is not finite", 64},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    char dir[] = "/tmp/ts-test-limits-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    rmdir(dir);
    char args[512];
    snprintf(args, sizeof args, "run examples/2bw-p4-m8-i3.json -o %s %s", dir, c[i].args);
    char *err = NULL;
    int rc = th_cli(args, NULL, &err);
    CU_ASSERT_EQUAL(rc, c[i].rc);
    CU_ASSERT_PTR_NOT_NULL(err && strstr(err, c[i].want));
    CU_ASSERT(err && strchr(err, '\n') == err + strlen(err) - 1); /* one line */
    struct stat st;
    CU_ASSERT_NOT_EQUAL(stat(dir, &st), 0);
    if (err && !strstr(err, c[i].want)) printf("\n%s", err);
    free(err);
  }
}

TS_TESTS{TS_TEST(microbatches_x_iterations), TS_TEST(stages_x_chunks_and_cells),
         TS_TEST(tokens_per_micro_batch),    TS_TEST(moe_cells_and_rows),
         TS_TEST(synthetic_seconds_and_bytes), TS_TEST(platform_values_after_units),
         TS_TEST(cli_errors_leave_no_output)};
TS_TEST_MAIN("limits")
