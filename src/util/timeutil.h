/*
 * timeutil.h - clocks and RFC 3339 timestamps.
 *
 * All functions are thread-safe and allocate nothing.
 */
#ifndef ENGRAM_TIMEUTIL_H
#define ENGRAM_TIMEUTIL_H

#include <stdint.h>

/* Monotonic clock in nanoseconds (for durations; the origin is arbitrary). */
uint64_t time_mono_ns(void);
/* Wall clock: milliseconds since the Unix epoch. */
int64_t time_now_ms(void);
/* Formats ms (since the epoch, UTC) as "2026-11-21T12:00:00Z": seconds
 * precision, the fraction is dropped (rounded towards minus infinity).
 * Years outside 0000..9999 are clamped to the nearest end of that range. */
void time_format_rfc3339(int64_t ms, char out[32]);
/* Parses an RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS", optional fraction
 * (".123", any number of digits, kept to milliseconds), then "Z" or a
 * "+HH:MM"/"-HH:MM" offset. "t"/"z" and a space instead of "T" are accepted
 * as RFC 3339 allows. Leap second 60 is read as 59. The whole string must be
 * the timestamp. Returns 0 with *ms set, or ENGRAM_EINVAL. */
int time_parse_rfc3339(const char *s, int64_t *ms);

#endif
