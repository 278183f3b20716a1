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

#include <stddef.h>

void *ts__xmalloc(size_t n);
void *ts__xcalloc(size_t n, size_t sz);
void *ts__xrealloc(void *p, size_t n);
/* A copy of s, or of its first n bytes (ts__xstrndup), NUL-terminated;
** the caller frees it. */
char *ts__xstrdup(const char *s);
char *ts__xstrndup(const char *s, size_t n);

#endif /* TS_INTERNAL_H */
