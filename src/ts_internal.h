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

/* The largest file ts__read_file reads (job files, Hugging Face configs,
** routing tables, sweep files): 64 MiB, README "Errors and exit status". */
#define TS_READ_MAX ((size_t)64 << 20)

/* Reads a whole regular file into a new NUL-terminated buffer (the caller
** frees it) and stores its length in *len when len is not NULL.  Returns
** NULL with errno set when the file cannot be opened or read, and never
** waits: EISDIR for a directory, EINVAL for anything else that is not a
** regular file (a FIFO, a device such as /dev/zero, a socket), EFBIG for a
** file over TS_READ_MAX bytes.  ts__read_error(errno) words these. */
char *ts__read_file(const char *path, size_t *len);
/* strerror(errnum), but ts__read_file's own reasons in words: "not a
** regular file" (EINVAL), "larger than the input limit of 64 MiB" (EFBIG).
** A static string. */
const char *ts__read_error(int errnum);

/* Strings.  ts__utf8_seq: the length (1 to 4) of the well-formed UTF-8
** sequence that starts at s (RFC 3629: no overlong forms, surrogates or
** code points over U+10FFFF), 0 when the bytes there are not one or s is
** at its NUL.  ts__utf8_valid: whether all of s is well-formed UTF-8;
** when not, the offset of the first bad byte goes to *bad (may be NULL).
** ts__has_control: whether s holds a C0 control character, DEL or a C1
** control (U+0080 to U+009F). */
size_t ts__utf8_seq(const char *s);
bool ts__utf8_valid(const char *s, size_t *bad);
bool ts__has_control(const char *s);
/* Copies src into dst (cap > 0 bytes with the NUL) so that the copy is one
** line of valid UTF-8: newline, carriage return and tab become \n, \r,
** \t; other C0 controls, DEL and bytes that are not UTF-8 become \xNN; C1
** controls \u00NN.  Cut before the first character or escape that does
** not fit.  Returns dst.  ts_err_set passes every message through it. */
char *ts__escape(char *dst, size_t cap, const char *src);

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

/* The ranges of numbers from the input, after their units (README "Job
** file", Limits), shared by the job loader and the platform checker. */
/* Seconds (latencies, a synthetic model's times) are at most this. */
#define TS__SECONDS_MAX 1e6
/* A latency is 0 or at least this: SimGrid's solver aborts on latencies
** near the smallest doubles (1e-303 ns). */
#define TS__LATENCY_MIN 1e-12
/* Bytes are doubles: integers are exact up to 2^53, the bound of a
** synthetic model's bytes. */
#define TS__BYTES_MAX 9007199254740992.0
/* Bandwidths (B/s) and speeds (FLOP/s) lie in [TS__RATE_MIN, TS__RATE_MAX]. */
#define TS__RATE_MIN 1.0
#define TS__RATE_MAX 1e30

/* The name of names (a NULL-terminated list) nearest to a misspelt word,
** for "did you mean 'X'?" (ts_suggest.c): the one at the smallest edit
** distance (insertions, deletions, substitutions and swaps of neighbours,
** ignoring case) when that distance is at most 1 + strlen(word) / 4 (at
** most 3) and below the name's length, else the one name word is a prefix of (at least 3 characters,
** exactly one such name), else NULL.  An exact match is not a suggestion
** (NULL).  The result points into names. */
const char *ts__suggest(const char *word, const char *const *names);
/* ts__suggest for the first n characters of word (n <= strlen(word)). */
const char *ts__suggest_n(const char *word, size_t n, const char *const *names);

#endif /* TS_INTERNAL_H */
