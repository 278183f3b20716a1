/*
** test_paje.c: paje.trace (ts_paje.c), read back by a small Paje reader.
**
** The reader takes the %EventDef header as the file declares it (event
** names, numbers and field names; nothing about the layout is assumed
** beyond the Paje format) and replays the body: container types and
** containers (each created once, inside an existing one), entity values,
** push/pop pairs per container (a pop needs its push) and links matched by
** key.  The checks: every time field never decreases; each line has as many
** fields as its definition; every op, collective, optimizer step and comm
** wait of the run is exactly one state on a lane of its device's container,
** with its kind (or collective op) as value, its micro-batch and its start
** and end (within 1 ns); every transfer is exactly one link from the
** sender's container to the receiver's (fetches from and offloads to the
** host memory container), with its kind, bytes and times; nothing else is
** in the file.  Jobs: a small transformer under 1F1B on both executors, a
** data-parallel GPipe run (collectives and their ring steps) and Mobius on a
** PCIe platform (fetches, offloads, evictions).  The file is byte-identical
** when written twice.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "trainsim.h"
#include "ts_exec.h"
#include "ts_out.h"
#include "tshelp.h"
#include "tsunit.h"

#define MAXF 16    /* fields per event definition */
#define MAXD 32    /* event definitions */
#define MAXC 256   /* containers */
#define MAXV 64    /* entity values */
#define MAXS 4096  /* states and links */
#define TOK 160

typedef struct def {
  int id;
  char name[48];
  int nf;
  char field[MAXF][32];
} def_t;

typedef struct cont {
  char alias[32], type[16], parent[32], name[TOK];
  int device;  /* the device it belongs to (-1: host memory or none) */
  int depth;   /* open states (push minus pop) */
  double push_t[4];
  char push_v[4][32];
  int push_mb[4];
} cont_t;

/* A state or link read back. */
typedef struct item {
  int device, peer; /* link: start and end devices (-1: host memory) */
  char value[32];   /* the entity value's name */
  int mb;
  double t0, t1, bytes;
  int used;
} item_t;

typedef struct paje {
  int nd, nc, nv, ns, nl, n_new;
  def_t def[MAXD];
  cont_t cont[MAXC];
  char val_alias[MAXV][16], val_name[MAXV][32];
  item_t state[MAXS], link[MAXS];
  char key[MAXS][16];
  int link_open[MAXS];
  double last_t;
  int errors;
} paje_t;

static void bad(paje_t *p, const char *what, const char *line) {
  if (p->errors++ < 5) fprintf(stderr, "\n  paje: %s: %s\n", what, line);
}

/* Splits a body line into tokens (quoted strings keep their spaces). */
static int tokens(char *s, char tok[][TOK], int max) {
  int n = 0;
  while (*s) {
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '\n') break;
    char *start = s, end = ' ';
    if (*s == '"') end = *s++, start = s;
    while (*s && *s != '\n' && (end == '"' ? *s != '"' : (*s != ' ' && *s != '\t'))) s++;
    if (n < max) snprintf(tok[n], TOK, "%.*s", (int)(s - start), start);
    n++;
    if (*s == '"') s++;
  }
  return n;
}

static const char *field(const def_t *d, char tok[][TOK], const char *name) {
  for (int i = 0; i < d->nf; i++)
    if (!strcmp(d->field[i], name)) return tok[i + 1];
  return NULL;
}

static cont_t *find_cont(paje_t *p, const char *alias) {
  for (int i = 0; i < p->nc; i++)
    if (!strcmp(p->cont[i].alias, alias)) return &p->cont[i];
  return NULL;
}

static const char *value_name(paje_t *p, const char *alias) {
  for (int i = 0; i < p->nv; i++)
    if (!strcmp(p->val_alias[i], alias)) return p->val_name[i];
  return alias;
}

/* The device of container alias c (a lane: its device's), -2 unknown. */
static int dev_of(paje_t *p, const char *c) {
  cont_t *x = find_cont(p, c);
  return x ? x->device : -2;
}

/* Reports what went wrong with the line and leaves body_line. */
#define BAD(what)       \
  do {                  \
    bad(p, what, copy); \
    return;             \
  } while (0)

static void body_line(paje_t *p, char *line) {
  char tok[MAXF + 1][TOK], copy[512];
  snprintf(copy, sizeof copy, "%s", line);
  int n = tokens(line, tok, MAXF + 1);
  const def_t *d = NULL;
  for (int i = 0; i < p->nd; i++)
    if (p->def[i].id == atoi(tok[0])) d = &p->def[i];
  if (!d) BAD("undefined event");
  if (n != d->nf + 1) BAD("field count");
  const char *t = field(d, tok, "Time");
  double time = t ? strtod(t, NULL) : 0;
  if (t && time < p->last_t) bad(p, "time decreases", copy);
  if (t) p->last_t = time;
  if (!strcmp(d->name, "PajeDefineEntityValue") && p->nv < MAXV) {
    snprintf(p->val_alias[p->nv], 16, "%s", field(d, tok, "Alias"));
    snprintf(p->val_name[p->nv++], 32, "%s", field(d, tok, "Name"));
  } else if (!strcmp(d->name, "PajeCreateContainer")) {
    const char *alias = field(d, tok, "Alias"), *parent = field(d, tok, "Container");
    if (find_cont(p, alias) || p->nc == MAXC) BAD("container created twice");
    cont_t *up = find_cont(p, parent);
    if (!up && strcmp(parent, "0")) BAD("parent not created");
    cont_t *c = &p->cont[p->nc++];
    memset(c, 0, sizeof *c);
    snprintf(c->alias, sizeof c->alias, "%s", alias);
    snprintf(c->type, sizeof c->type, "%s", field(d, tok, "Type"));
    snprintf(c->name, sizeof c->name, "%s", field(d, tok, "Name"));
    c->device = up ? up->device : -1;
    if (!up) sscanf(c->name, "device %d", &c->device);
  } else if (!strcmp(d->name, "PajePushState")) {
    cont_t *c = find_cont(p, field(d, tok, "Container"));
    if (!c || c->depth == 4) BAD("push");
    c->push_t[c->depth] = time;
    snprintf(c->push_v[c->depth], 32, "%s", value_name(p, field(d, tok, "Value")));
    c->push_mb[c->depth++] = atoi(field(d, tok, "Microbatch"));
  } else if (!strcmp(d->name, "PajePopState")) {
    cont_t *c = find_cont(p, field(d, tok, "Container"));
    if (!c || c->depth == 0 || p->ns == MAXS) BAD("pop without push");
    if (c->depth > 1) bad(p, "states overlap on one lane", copy);
    c->depth--;
    item_t *s = &p->state[p->ns++];
    *s = (item_t){c->device, -1, "", c->push_mb[c->depth], c->push_t[c->depth], time, 0, 0};
    snprintf(s->value, sizeof s->value, "%s", c->push_v[c->depth]);
  } else if (!strcmp(d->name, "PajeStartLink")) {
    if (p->nl == MAXS) BAD("too many links");
    int k = p->nl++;
    item_t *l = &p->link[k];
    *l = (item_t){dev_of(p, field(d, tok, "StartContainer")), -2, "", 0, time, NAN,
                  strtod(field(d, tok, "Bytes"), NULL), 0};
    snprintf(l->value, sizeof l->value, "%s", value_name(p, field(d, tok, "Value")));
    snprintf(p->key[k], 16, "%s", field(d, tok, "Key"));
    p->link_open[k] = 1;
  } else if (!strcmp(d->name, "PajeEndLink")) {
    const char *key = field(d, tok, "Key");
    int k = p->nl - 1;
    while (k >= 0 && (!p->link_open[k] || strcmp(p->key[k], key))) k--;
    if (k < 0) BAD("end of a link never started");
    p->link_open[k] = 0;
    p->link[k].peer = dev_of(p, field(d, tok, "EndContainer"));
    p->link[k].t1 = time;
    if (strcmp(value_name(p, field(d, tok, "Value")), p->link[k].value)) bad(p, "link value", copy);
  } else if (!strcmp(d->name, "PajeNewEvent")) {
    p->n_new++;
  }
}

/* Reads a Paje file; returns it (caller frees) or NULL. */
static paje_t *paje_read(const char *text) {
  paje_t *p = calloc(1, sizeof *p);
  char *buf = strdup(text), *save = NULL;
  def_t *open = NULL;
  for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (line[0] == '#') continue;
    if (!strncmp(line, "%EventDef ", 10)) {
      CU_ASSERT_FATAL(p->nd < MAXD);
      open = &p->def[p->nd++];
      CU_ASSERT_EQUAL(sscanf(line + 10, "%47s %d", open->name, &open->id), 2);
    } else if (!strncmp(line, "%EndEventDef", 12)) {
      open = NULL;
    } else if (line[0] == '%') {
      CU_ASSERT_PTR_NOT_NULL_FATAL(open);
      CU_ASSERT_FATAL(open->nf < MAXF);
      char type[32];
      CU_ASSERT_EQUAL(sscanf(line + 1, "%31s %31s", open->field[open->nf++], type), 2);
    } else {
      body_line(p, line);
    }
  }
  free(buf);
  for (int k = 0; k < p->nl; k++)
    if (p->link_open[k]) bad(p, "link never ended", p->key[k]);
  for (int i = 0; i < p->nc; i++)
    if (p->cont[i].depth) bad(p, "state never popped", p->cont[i].alias);
  return p;
}

static bool near(double a, double b) { return fabs(a - b) <= 1e-9 + 1e-12 * fabs(b); }

/* The value name a run event must carry. */
static const char *want_value(const ts_event_t *e) {
  return e->kind == TS_COLLECTIVE ? ts_coll_op_name(TS_EV_COLL_OP(e->coll)) : ts_kind_name(e->kind);
}

/* Writes r's paje.trace to memory (twice: the same bytes), reads it back
** and matches it against the run's events.  Returns the reader's view. */
static paje_t *check_run(const ts_result_t *r) {
  char *a = NULL, *b = NULL;
  size_t na = 0, nb = 0;
  FILE *f = open_memstream(&a, &na);
  CU_ASSERT_EQUAL(ts_write_paje(r, f), 0);
  fclose(f);
  f = open_memstream(&b, &nb);
  CU_ASSERT_EQUAL(ts_write_paje(r, f), 0);
  fclose(f);
  CU_ASSERT(na == nb && !memcmp(a, b, na));
  CU_ASSERT_PTR_NOT_NULL(strstr(a, "%EventDef PajePushState"));
  paje_t *p = paje_read(a);
  free(a);
  free(b);
  CU_ASSERT_EQUAL(p->errors, 0);
  const ts_run_t *run = r->run;
  int n_state = 0, n_link = 0, n_evict = 0;
  for (int i = 0; i < run->n_events; i++) {
    const ts_event_t *e = &run->events[i];
    ts_kind_t k = (ts_kind_t)e->kind;
    bool state = ts_kind_is_compute(k) || ts_kind_is_stream(k) || k == TS_ROOM_WAIT;
    bool link = ts_kind_is_transfer(k) || k == TS_FETCH || k == TS_OFFLOAD;
    n_evict += k == TS_EVICT;
    if (!state && !link) continue;
    item_t *set = state ? p->state : p->link;
    int n = state ? p->ns : p->nl, found = -1;
    int from = k == TS_FETCH ? -1 : e->device;
    int to = link ? (k == TS_FETCH ? e->device : k == TS_OFFLOAD ? -1 : e->peer) : -1;
    for (int j = 0; j < n && found < 0; j++) {
      item_t *x = &set[j];
      if (x->used || x->device != from || strcmp(x->value, want_value(e))) continue;
      if (!near(x->t0, e->start) || !near(x->t1, e->end)) continue;
      if (state ? x->mb != e->mb : (x->peer != to || x->bytes != e->bytes)) continue;
      found = j;
    }
    if (found < 0)
      fprintf(stderr, "\n  paje: missing %s of device %d, mb %d, [%.9f, %.9f]\n", ts_kind_name(k),
              e->device, e->mb, e->start, e->end);
    CU_ASSERT(found >= 0);
    if (found >= 0) set[found].used = 1;
    n_state += state;
    n_link += link;
  }
  CU_ASSERT_EQUAL(p->ns, n_state); /* nothing else */
  CU_ASSERT_EQUAL(p->nl, n_link);
  CU_ASSERT_EQUAL(p->n_new, n_evict);
  /* One container per device, named after it. */
  int devs = 0;
  for (int i = 0; i < p->nc; i++) devs += !strcmp(p->cont[i].type, "D");
  CU_ASSERT_EQUAL(devs, run->n_devices);
  return p;
}

static const char *const small_tf =
    "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 16, \"heads\": 2,"
    " \"ffn_hidden\": 64, \"vocab\": 100}, \"seq_len\": 8, \"micro_batch_size\": 2,"
    " \"platform\": \"ideal\", \"schedule\": \"1f1b\", \"stages\": 2, \"microbatches\": 4}";

static void both_executors(void) {
  ts_job_t *job = th_load_job(small_tf);
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  int n_ops[2] = {0, 0};
  for (int x = 0; x < 2; x++) {
    const ts_executor_t *ex = ts_executor_at(x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
    ts_outcome_t o;
    ts_err_t err = {0};
    int rc = ts_execute(job, NULL, ex, &o, &err);
    if (rc) fprintf(stderr, "%s: %s\n", ex->name, err.msg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    paje_t *p = check_run(&o.r);
    for (int i = 0; i < p->ns; i++) /* the compute ops: the same on both */
      for (int k = 0; k < TS_COMPUTE_KINDS; k++)
        n_ops[x] += !strcmp(p->state[i].value, ts_kind_name((ts_kind_t)k));
    CU_ASSERT(p->ns >= 2 * 2 * 4); /* a forward and a backward per stage and micro-batch */
    CU_ASSERT(p->nl > 0);
    free(p);
    ts_outcome_free(&o);
  }
  CU_ASSERT_EQUAL(n_ops[0], n_ops[1]);
  ts_job_free(job);
}

static void data_parallel(void) {
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  const char *json =
      "{\"model\": {\"kind\": \"transformer\", \"layers\": 4, \"hidden\": 64, \"heads\": 4,"
      " \"vocab\": 100}, \"platform\": \"ideal\", \"schedule\": \"gpipe\", \"stages\": 2,"
      " \"microbatches\": 2, \"seq_len\": 16, \"data_parallel\": 2}";
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  paje_t *p = check_run(&o.r);
  int coll = 0, steps = 0;
  for (int i = 0; i < p->ns; i++) coll += !strcmp(p->state[i].value, "all-reduce");
  for (int i = 0; i < p->nl; i++) steps += !strcmp(p->link[i].value, ts_kind_name(TS_SEND_COLL));
  CU_ASSERT_EQUAL(coll, 4); /* one gradient all-reduce per device (one bucket) */
  CU_ASSERT(steps > 0);     /* its ring steps, as arrows */
  CU_ASSERT_PTR_NOT_NULL(find_cont(p, "s0.0")); /* the collectives lane */
  free(p);
  ts_outcome_free(&o);
  ts_job_free(job);
}

static void host_memory(void) {
  char json[4096], cwd[2048];
  snprintf(json, sizeof json,
           "{\"model\": {\"kind\": \"synthetic\", \"forward_s\": 1, \"backward_s\": 2,"
           " \"activation_message_bytes\": 1e6, \"activation_bytes\": 0, \"weights_bytes\": 0.5e9},"
           " \"platform\": \"%s/platforms/commodity-8gpu.xml\", \"schedule\": \"mobius\","
           " \"stages\": 4, \"devices\": 4, \"microbatches\": 4}",
           getcwd(cwd, sizeof cwd) ? cwd : ".");
  ts_job_t *job = NULL;
  ts_outcome_t o;
  ts_err_t err = {0};
  int rc = th_simulate(json, NULL, 0, &job, &o, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  paje_t *p = check_run(&o.r);
  int fetch = 0, offload = 0;
  for (int i = 0; i < p->nl; i++) {
    fetch += !strcmp(p->link[i].value, "fetch") && p->link[i].device == -1;
    offload += !strcmp(p->link[i].value, "offload") && p->link[i].peer == -1;
  }
  CU_ASSERT_EQUAL(fetch, 4);
  CU_ASSERT_EQUAL(offload, 4);
  CU_ASSERT_EQUAL(p->n_new, 4); /* the evictions */
  CU_ASSERT_PTR_NOT_NULL(find_cont(p, "m"));
  free(p);
  ts_outcome_free(&o);
  ts_job_free(job);
}

/* The reader itself catches a broken file (a pop without its push, time
** going back, a link never ended). */
static void reader_negative(void) {
  static const char *const hdr =
      "%EventDef PajeCreateContainer 6\n% Time date\n% Alias string\n% Type string\n"
      "% Container string\n% Name string\n%EndEventDef\n"
      "%EventDef PajePushState 12\n% Time date\n% Type string\n% Container string\n"
      "% Value string\n% Label string\n% Microbatch int\n% Stage int\n% Chunk int\n%EndEventDef\n"
      "%EventDef PajePopState 13\n% Time date\n% Type string\n% Container string\n%EndEventDef\n"
      "6 0 d0 D 0 \"device 0\"\n";
  static const char *const bodies[] = {
      "13 1.0 OP d0\n",                                      /* pop without push */
      "12 2.0 OP d0 v0 \"F1\" 0 0 0\n13 1.0 OP d0\n",       /* time goes back */
      "12 1.0 OP d0 v0 \"F1\" 0 0 0\n",                     /* never popped */
      "12 1.0 OP d9 v0 \"F1\" 0 0 0\n13 2.0 OP d9\n",       /* unknown container */
      "12 1.0 OP d0 v0 \"F1\" 0 0\n13 2.0 OP d0\n",         /* a field short */
  };
  char text[2048];
  for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
    snprintf(text, sizeof text, "%s%s", hdr, bodies[i]);
    paje_t *p = paje_read(text);
    CU_ASSERT(p->errors > 0);
    free(p);
  }
  snprintf(text, sizeof text, "%s12 1.0 OP d0 v0 \"F 1\" 2 0 0\n13 2.0 OP d0\n", hdr);
  paje_t *p = paje_read(text);
  CU_ASSERT_EQUAL(p->errors, 0);
  CU_ASSERT_EQUAL(p->ns, 1);
  CU_ASSERT_EQUAL(p->state[0].device, 0);
  CU_ASSERT_EQUAL(p->state[0].mb, 2);
  CU_ASSERT(near(p->state[0].t1, 2.0));
  free(p);
}

TS_TESTS{TS_TEST(reader_negative), TS_TEST(both_executors), TS_TEST(data_parallel),
         TS_TEST(host_memory)};
TS_TEST_MAIN("paje")
