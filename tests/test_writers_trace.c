/*
** test_writers_trace.c: trace.json's own cases (ts_trace.c): the tiny GPipe
** run's tracks, names, memory counter and determinism; rounding of
** back-to-back events; overlapping compute; and the size limit and the
** filters (--trace-max-mb, --devices, --kinds), each stated in otherData.
** The fixtures are writers_fixture.h's.
*/
#include "writers_fixture.h"

static void test_trace_gpipe(void) {
  fixture_t *fx = gpipe_2x2();
  char *json = write_mem(ts_write_trace_json, &fx->r, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(json);
  cJSON *doc = check_trace(fx, json);

  /* The overlapping activations: the second on device 0's tid 3, named. */
  bool tid3 = false, named3 = false;
  int counters_d1 = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "traceEvents")) {
    const char *ph = str(e, "ph");
    int pid = (int)num(e, "pid"), tid = (int)num(e, "tid");
    if (!strcmp(ph, "X") && pid == 1 && tid == 3) {
      tid3 = true;
      CU_ASSERT_STRING_EQUAL(str(e, "name"), "act 2");
      CU_ASSERT_DOUBLE_EQUAL(num(e, "ts"), 2000.0, 1e-9);
      CU_ASSERT_DOUBLE_EQUAL(num(e, "dur"), 100.0, 1e-9);
      CU_ASSERT_EQUAL((int)num(cJSON_GetObjectItemCaseSensitive(e, "args"), "to_device"), 1);
    }
    if (!strcmp(ph, "M") && pid == 1 && tid == 3 && !strcmp(str(e, "name"), "thread_name"))
      named3 = !strcmp(str(cJSON_GetObjectItemCaseSensitive(e, "args"), "name"), "communication 2");
    if (!strcmp(ph, "X") && pid == 2 && !strcmp(str(e, "name"), "B2")) {
      CU_ASSERT_DOUBLE_EQUAL(num(e, "ts"), 4500.0, 1e-9);
      CU_ASSERT_DOUBLE_EQUAL(num(e, "dur"), 2000.0, 1e-9);
      CU_ASSERT_STRING_EQUAL(str(e, "cat"), "backward");
    }
    if (!strcmp(ph, "C") && pid == 1 && num(e, "ts") == 1000.0) {
      const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "args");
      CU_ASSERT_DOUBLE_EQUAL(num(a, "activations_bytes"), 8e6, 0);
      CU_ASSERT_DOUBLE_EQUAL(num(a, "total_bytes"), 16e6, 0); /* + 1 + 1 + 6 MB */
    }
    if (!strcmp(ph, "C") && pid == 2) counters_d1++;
  }
  CU_ASSERT(tid3);
  CU_ASSERT(named3);
  /* Device 1: a point at 0 (first step at 2.5 ms), then 5 steps, one repeated. */
  CU_ASSERT_EQUAL(counters_d1, 5);
  const cJSON *other = cJSON_GetObjectItemCaseSensitive(doc, "otherData");
  CU_ASSERT_STRING_EQUAL(str(other, "schedule"), "gpipe");
  CU_ASSERT_DOUBLE_EQUAL(num(other, "iteration_time_s"), 10.6e-3, 1e-15);
  cJSON_Delete(doc);

  char *again = write_mem(ts_write_trace_json, &fx->r, NULL);
  CU_ASSERT_STRING_EQUAL(json, again);
  free(again);
  free(json);
  fixture_free(fx);
}

/* Back-to-back events with durations of k/7 ms: start and end rounded
** separately, ts + dur of one event must not pass the next ts. */
static void test_trace_rounding(void) {
  fixture_t *fx = fixture_new("gpipe", 2, 40, 1);
  double t = 1.0 / 3.0 * MS, free1 = 0;
  for (int i = 0; i < 40; i++) {
    double d = (i % 6 + 1) / 7.0 * MS, arrive = t + d + d / 3.0;
    double s1 = arrive > free1 ? arrive : free1;
    push(fx, 0, 0, 0, i, TS_FORWARD, i, t, t + d, 0);
    push(fx, 0, 1, 0, i, TS_SEND_ACT, 0, t + d, arrive, 1e3);
    push(fx, 1, 1, 1, i, TS_FORWARD, i, s1, s1 + d, 0);
    free1 = s1 + d;
    t += d;
  }
  ts_run_sort(fx->run);
  fill_busy(fx);
  char *json = write_mem(ts_write_trace_json, &fx->r, NULL);
  cJSON_Delete(check_trace(fx, json));
  free(json);
  fixture_free(fx);
}

/* Overlapping compute events (an executor bug) still give a loadable
** trace: the second goes to a "compute 2" thread after communication. */
static void test_trace_overlapping_compute(void) {
  fixture_t *fx = fixture_new("gpipe", 1, 2, 1);
  push(fx, 0, 0, 0, 0, TS_FORWARD, 0, 0.0, 2.0 * MS, 0);
  push(fx, 0, 0, 0, 1, TS_FORWARD, 1, 1.0 * MS, 3.0 * MS, 0);
  ts_run_sort(fx->run);
  char *json = write_mem(ts_write_trace_json, &fx->r, NULL);
  cJSON *doc = cJSON_Parse(json);
  CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
  int tids = 0;
  bool named = false;
  const cJSON *e;
  cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(doc, "traceEvents")) {
    if (!strcmp(str(e, "ph"), "X")) tids |= 1 << (int)num(e, "tid");
    if (!strcmp(str(e, "name"), "thread_name") && num(e, "tid") == 3)
      named = !strcmp(str(cJSON_GetObjectItemCaseSensitive(e, "args"), "name"), "compute 2");
  }
  CU_ASSERT_EQUAL(tids, (1 << 1) | (1 << 3));
  CU_ASSERT(named);
  cJSON_Delete(doc);
  free(json);
  fixture_free(fx);
}

TS_TESTS{
    TS_TEST(test_trace_gpipe),
    TS_TEST(test_trace_rounding),
    TS_TEST(test_trace_overlapping_compute),
};

TS_TEST_MAIN("trace.json")
