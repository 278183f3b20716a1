/*
** fuzz_platform.c: libFuzzer harness for the platform checker
** (platforms/platform_check.h), which runs before SimGrid sees a file.
**
** The input is a platform XML file, parsed in memory (ts_platform_parse).
** When it parses, the route check runs on up to 8 of its hosts (the first
** ones in file order, read from the checker's representation), so that
** the route search of every zone kind is fuzzed too.  Findings are
** sanitizer reports, crashes, hangs (the checker promises to terminate on
** any bytes) and breaks of the error contract: a failure has a sysexits
** code and a non-empty message, and a success records no error.  Where
** the routes check and the platform is one Dijkstra zone, the router
** (platforms/platform_route.h) must find a route between every pair of
** those hosts, of links that exist.
*/
#include "fuzz_util.h"
#include "platform_check_internal.h"
#include "platform_route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_HOSTS = 8 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ts_err_t err = {0};
  ts_platform_t *p = ts_platform_parse("fuzz.xml", (const char *)data, size, &err);
  fuzz_check_result(p ? 0 : err.code ? err.code : -1, &err, p);
  if (!p) return 0;
  const char *hosts[MAX_HOSTS];
  int n = 0;
  for (int i = 0; i < p->n_np && n < MAX_HOSTS; i++)
    if (p->np[i].type == 'h') hosts[n++] = p->np[i].id;
  ts_err_t rerr = {0};
  int rc = ts_platform_check_routes(p, hosts, n, &rerr);
  fuzz_check_result(rc, &rerr, rc ? NULL : p);
  ts_router_t *r = rc ? NULL : ts_router_new(p);
  for (int i = 0; r && i < n; i++)
    for (int j = 0; j < n; j++) {
      int a = ts_router_vertex(r, hosts[i]), b = ts_router_vertex(r, hosts[j]);
      if (a < 0 || b < 0 || a == b) continue;
      const int *s;
      int k = ts_router_route(r, a, b, &s);
      if (k <= 0) __builtin_trap(); /* the check said a route exists */
      for (int l = 0; l < k; l++)
        if (s[l] < 0 || s[l] / 3 >= ts_router_n_links(r)) __builtin_trap();
    }
  ts_router_free(r);
  ts_platform_free(p);
  return 0;
}
