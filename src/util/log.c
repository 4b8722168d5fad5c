/*
 * log.c - JSON-lines logger on stderr. One write(2) per line so lines from
 * different threads never interleave.
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/json.h"

int log_level = LOG_INFO;
static _Thread_local char req_id[129];

static const char *level_names[] = {"debug", "info", "warn", "error"};

int log_set_level_name(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, level_names[i]) == 0) { log_level = i; return 0; }
    }
    return -20004; /* ENGRAM_EINVAL */
}

void log_set_request_id(const char *id)
{
    if (!id) { req_id[0] = '\0'; return; }
    snprintf(req_id, sizeof req_id, "%s", id);
}

const char *log_request_id(void) { return req_id; }

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

void log_write_json_line(const char *json, unsigned long len)
{
    char line[8192];
    if (len + 1 <= sizeof line) {
        memcpy(line, json, len);
        line[len] = '\n';
        write_all(line, len + 1);
    } else {
        write_all(json, len);
        write_all("\n", 1);
    }
}

void log_write(int level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char ts[64];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "ts", ts);
    jw_kstr(&w, "level", level_names[level < 0 ? 0 : level > 3 ? 3 : level]);
    jw_kstr(&w, "msg", msg);
    if (req_id[0]) jw_kstr(&w, "request_id", req_id);
    jw_obj_end(&w);
    if (!b.err) log_write_json_line(b.data, b.len);
    buf_free(&b);
}
