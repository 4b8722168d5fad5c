/*
 * timeutil.c - clocks and RFC 3339 formatting/parsing (timeutil.h).
 *
 * Calendar arithmetic is done here with the proleptic Gregorian "days from
 * civil" formula rather than timegm()/gmtime_r(), so results do not depend
 * on the TZ environment or on the range of time_t, and parsing has no
 * locale-dependent strptime behaviour.
 */
#include "util/timeutil.h"

#include <stdio.h>
#include <time.h>

#include "util/common.h"

uint64_t time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 of y-m-d (m 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Bounds of years 0000 and 9999 in ms, for clamping. */
#define MS_MIN (-62167219200000LL)   /* 0000-01-01T00:00:00Z */
#define MS_MAX (253402300799999LL)   /* 9999-12-31T23:59:59.999Z */

void time_format_rfc3339(int64_t ms, char out[32])
{
    if (ms < MS_MIN) ms = MS_MIN;
    if (ms > MS_MAX) ms = MS_MAX;
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    /* The modulos are no-ops after the clamp; they bound the widths for
     * the compiler's format checker. */
    snprintf(out, 32, "%04u-%02u-%02uT%02u:%02u:%02uZ", (unsigned)y % 10000u, (unsigned)m % 100u,
             (unsigned)d % 100u, (unsigned)(rem / 3600) % 100u, (unsigned)(rem / 60 % 60),
             (unsigned)(rem % 60));
}

/* Reads exactly n digits at *p; -1 if any is not a digit. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int time_parse_rfc3339(const char *s, int64_t *ms)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h, mi, se, frac = 0;
    if (!s || !ms) return ENGRAM_EINVAL;
    if ((y = digits(&p, 4)) < 0 || *p++ != '-') return ENGRAM_EINVAL;
    if ((mo = digits(&p, 2)) < 0 || *p++ != '-') return ENGRAM_EINVAL;
    if ((d = digits(&p, 2)) < 0) return ENGRAM_EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ') return ENGRAM_EINVAL;
    p++;
    if ((h = digits(&p, 2)) < 0 || *p++ != ':') return ENGRAM_EINVAL;
    if ((mi = digits(&p, 2)) < 0 || *p++ != ':') return ENGRAM_EINVAL;
    if ((se = digits(&p, 2)) < 0) return ENGRAM_EINVAL;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3) frac = frac * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0) return ENGRAM_EINVAL;
        for (; nd < 3; nd++) frac *= 10;
    }
    int off = 0; /* minutes east of UTC */
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int oh, om;
        if ((oh = digits(&p, 2)) < 0 || *p++ != ':') return ENGRAM_EINVAL;
        if ((om = digits(&p, 2)) < 0) return ENGRAM_EINVAL;
        if (oh > 23 || om > 59) return ENGRAM_EINVAL;
        off = sign * (oh * 60 + om);
    } else {
        return ENGRAM_EINVAL;
    }
    if (*p != '\0') return ENGRAM_EINVAL;
    if (mo < 1 || mo > 12 || d < 1) return ENGRAM_EINVAL;
    if (d > mdays[mo - 1] + (mo == 2 && is_leap(y))) return ENGRAM_EINVAL;
    if (h > 23 || mi > 59 || se > 60) return ENGRAM_EINVAL;
    if (se == 60) se = 59;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - (int64_t)off * 60;
    *ms = secs * 1000 + frac;
    return 0;
}
