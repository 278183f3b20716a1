/*
** ts_internal.h: internal helpers shared by the library's layers; not part
** of the public interface (trainsim.h).  Names are ts__*.
**
** Out-of-memory policy (the one policy of the whole library, README "How
** the code is laid out"): allocation goes through ts__xmalloc and friends,
** which never return NULL.  When memory runs out they print
** "trainsim: error: out of memory (N bytes)" on stderr and exit with
** EX_OSERR (71), as git's xmalloc does.  Outputs stay whole: every file is
** written to a temporary and renamed, so an exit leaves old files or none.
** Zero-size requests allocate one byte, so the result is never NULL.
*/
#ifndef TS_INTERNAL_H
#define TS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

void *ts__xmalloc(size_t n);
void *ts__xcalloc(size_t n, size_t sz);
void *ts__xrealloc(void *p, size_t n);
/* A copy of s, or of its first n bytes (ts__xstrndup), NUL-terminated;
** the caller frees it. */
char *ts__xstrdup(const char *s);
char *ts__xstrndup(const char *s, size_t n);

/* Reads a whole file into a new NUL-terminated buffer (the caller frees
** it) and stores its length in *len when len is not NULL.  Returns NULL
** with errno set when the file cannot be opened or read. */
char *ts__read_file(const char *path, size_t *len);

/* write(2) of all n bytes of p to fd, or read(2) of exactly n bytes into
** p, retried on EINTR.  False when the call fails or (reading) the input
** ends first; errno tells why when a call failed. */
bool ts__write_all(int fd, const void *p, size_t n);
bool ts__read_all(int fd, void *p, size_t n);

/* Parses a number with an optional unit suffix into SI base units:
** "50GBps", "200Gbps" (B/s), "2us" (s), "312Tf" (FLOP/s), "1e9".  what
** restricts the suffixes to one kind: 'b' bandwidth, 't' time, 'f' speed,
** 0 any.  False (out untouched) for anything else; defined in job_set.c. */
bool ts__parse_units(const char *s, char what, double *out);

#endif /* TS_INTERNAL_H */
