/*
 * spool.h - request bodies kept in an unlinked temporary file instead of
 * memory (large uploads), then handed to the handler as a read-only
 * mapping. Internal to src/http (server.c); see http.h spool_dir.
 *
 * The file is created without a name (O_TMPFILE) or, where the file system
 * cannot, with mkostemp and unlinked at once: a crash leaves nothing behind.
 * Writes go through a bounded buffer owned by the caller, so memory stays
 * O(buffer) whatever the body size; the mapping's pages are the page cache.
 *
 * Thread-safety: one owner at a time (the connection's owner).
 */
#ifndef ENGRAM_HTTP_SPOOL_H
#define ENGRAM_HTTP_SPOOL_H

#include <stddef.h>

typedef struct http_spool {
    int fd;           /* -1 when closed */
    size_t len;       /* bytes written */
    char *map;        /* after spool_map: len + 1 bytes, the last one NUL */
    size_t map_len;
} http_spool_t;

#define HTTP_SPOOL_INIT {-1, 0, NULL, 0}

/* Makes dir (mode 0700) if it is missing; 0, or -errno / ENGRAM_EINVAL when
 * the path exists and is not a directory. */
int spool_dir_prepare(const char *dir);
/* Opens an anonymous temporary file in dir. 0 or -errno. */
int spool_open(http_spool_t *sp, const char *dir);
/* Appends all n bytes. 0, -errno (ENOSPC, EIO...). */
int spool_write(http_spool_t *sp, const void *p, size_t n);
/* Ends writing: appends one NUL (not counted in len) and maps the file
 * read-only; *data points at len bytes followed by NUL, valid until
 * spool_close. 0 or -errno. */
int spool_map(http_spool_t *sp, const char **data);
/* Unmaps and closes (the file disappears with its last reference). */
void spool_close(http_spool_t *sp);

#endif
