/*
 * spool.c - anonymous temporary files for large request bodies. Contract in
 * spool.h.
 *
 * Why a file and a mapping: a 100 MB upload read into memory costs 100 MB of
 * heap for the body plus whatever the handler copies; in a file it costs the
 * page cache, which the kernel can write back and drop, and the handler still
 * sees one contiguous NUL-terminated buffer (the multipart parser works on a
 * memory view). The NUL is written into the file so the mapping never ends
 * exactly on a page boundary of the data (reading past EOF would be SIGBUS).
 */
#include "http/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/common.h"

int spool_dir_prepare(const char *dir)
{
    if (!dir || !dir[0]) return ENGRAM_EINVAL;
    if (mkdir(dir, 0700) == 0) return 0;
    if (errno != EEXIST) return -errno;
    struct stat st;
    if (stat(dir, &st) != 0) return -errno;
    if (!S_ISDIR(st.st_mode)) return ENGRAM_EINVAL;
    /* Somebody else's temporary files never go here: keep it private. */
    if ((st.st_mode & 077) && chmod(dir, 0700) != 0) return -errno;
    return 0;
}

int spool_open(http_spool_t *sp, const char *dir)
{
    sp->fd = -1;
    sp->len = 0;
    sp->map = NULL;
    sp->map_len = 0;
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) {
        sp->fd = fd;
        return 0;
    }
    /* EOPNOTSUPP/EISDIR/EINVAL: the file system has no O_TMPFILE. */
    if (errno == ENOENT || errno == EACCES || errno == ENOSPC || errno == EMFILE ||
        errno == ENFILE || errno == EROFS)
        return -errno;
#endif
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/upload-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof path) return ENGRAM_EINVAL;
    int tfd = mkostemp(path, O_CLOEXEC);
    if (tfd < 0) return -errno;
    if (unlink(path) != 0) {
        int rc = -errno;
        close(tfd);
        return rc;
    }
    sp->fd = tfd;
    return 0;
}

int spool_write(http_spool_t *sp, const void *p, size_t n)
{
    if (sp->fd < 0 || sp->map) return ENGRAM_EINVAL;
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(sp->fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (w == 0) return -EIO;
        c += w;
        n -= (size_t)w;
        sp->len += (size_t)w;
    }
    return 0;
}

int spool_map(http_spool_t *sp, const char **data)
{
    if (sp->fd < 0 || sp->map) return ENGRAM_EINVAL;
    size_t len = sp->len;
    int rc = spool_write(sp, "", 1);
    sp->len = len;
    if (rc) return rc;
    void *m = mmap(NULL, len + 1, PROT_READ, MAP_SHARED, sp->fd, 0);
    if (m == MAP_FAILED) return -errno;
    /* Handlers read the body front to back, once. */
    madvise(m, len + 1, MADV_SEQUENTIAL);
    sp->map = m;
    sp->map_len = len + 1;
    *data = m;
    return 0;
}

void spool_close(http_spool_t *sp)
{
    if (sp->map) munmap(sp->map, sp->map_len);
    if (sp->fd >= 0) close(sp->fd);
    sp->fd = -1;
    sp->map = NULL;
    sp->map_len = 0;
    sp->len = 0;
}
