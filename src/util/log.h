/*
 * log.h - leveled logging, one JSON object per line on stderr.
 *
 * The macros test the level before any formatting is done. Each line carries
 * the time, level, message and, when the calling thread has one set, the
 * request id (log_set_request_id). Index and store code never log: they
 * return statuses.
 */
#ifndef ENGRAM_LOG_H
#define ENGRAM_LOG_H

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

extern int log_level;

/* Returns 0, or ENGRAM_EINVAL for an unknown name. */
int log_set_level_name(const char *name);
/* The thread's current request id (copied; NULL clears). */
void log_set_request_id(const char *id);
const char *log_request_id(void);
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes one preformatted JSON object line (the access log). */
void log_write_json_line(const char *json, unsigned long len);

#define LOG_AT(lvl, ...) do { if ((lvl) >= log_level) log_write((lvl), __VA_ARGS__); } while (0)
#define log_debug(...) LOG_AT(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_WARN, __VA_ARGS__)
#define log_error(...) LOG_AT(LOG_ERROR, __VA_ARGS__)

#endif
